/**
 * Resolves how a chunked export runs: keyset paging, windows over a column (range, `chunk_count`,
 * dense, `chunk_by_days`), or a snapshot when a small `table:` is not worth chunking. The catalog
 * and boundary probes run through the source; the SQL comes from `plan/`.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import { ConfigError, PermanentError } from "../core/errors.ts";
import type { EventSink } from "../core/events.ts";
import type { Source } from "../core/source.ts";
import type { ExportSpec, SourceKind } from "../core/spec.ts";
import type { ChunkBoundsEntry } from "../core/state.ts";
import {
  chunkSizeFromMemory,
  isIntegerTypeName,
  primaryKeySql,
  tableEstimateSql,
  uniqueKeySql,
} from "../plan/catalog.ts";
import {
  chunkDateSql,
  chunkDenseSql,
  chunkRangeSql,
  countSql,
  minMaxSql,
  nullGuardSql,
  planChunkWindows,
  planDateWindows,
  planDenseWindows,
} from "../plan/chunks.ts";
import { dialectOf } from "../plan/dialect.ts";
import { type ChunkShape, chunkShapeOf, planHash } from "../plan/plan_hash.ts";
import type { PlannedSql } from "../plan/query.ts";
import { probeRows, probeScalar } from "./probe.ts";

/** Windows over a column: what a chunked run executes and checkpoints. */
export interface WindowedChunking {
  readonly kind: "windows";
  readonly column: string;
  readonly shape: ChunkShape;
  /** `--resume` requires the same hash: the stored tasks must line up with these windows. */
  readonly planHash: string;
}

/** How a chunked export runs. */
export type Chunking =
  | WindowedChunking
  | { readonly kind: "keyset"; readonly keyColumn: string; readonly pageSize: number }
  | { readonly kind: "snapshot"; readonly reason: string };

/** What the planner needs. */
export interface ChunkPlanContext {
  readonly source: Source;
  readonly kind: SourceKind;
  /** The export's base query. */
  readonly baseSql: string;
  readonly emit: EventSink;
  readonly signal?: AbortSignal;
  readonly statementTimeoutS?: number;
}

function tableOf(spec: ExportSpec) {
  return spec.query.kind === "table"
    ? { ...(spec.query.schema ? { schema: spec.query.schema } : {}), table: spec.query.table }
    : undefined;
}

function tableLabel(t: { schema?: string; table: string }): string {
  return t.schema ? `${t.schema}.${t.table}` : t.table;
}

/**
 * Decides the chunking of an export: keyset for `chunk_by_key` (and MySQL tables whose only
 * usable key is a unique one), else windows over `chunk_column` or the table's integer primary
 * key, else an error. A `table:` export whose catalog estimate fits in one chunk, with no
 * explicit shape knob, runs as a snapshot.
 *
 * @param spec The export.
 * @param ctx Source, engine and base query.
 * @returns The chunking.
 */
export async function resolveChunking(spec: ExportSpec, ctx: ChunkPlanContext): Promise<Chunking> {
  const table = tableOf(spec);
  const probe = { ...(ctx.signal ? { signal: ctx.signal } : {}), statementTimeoutS: 60 };
  if (spec.chunkByKey !== undefined) {
    if (table) {
      const keys = await probeRows(ctx.source, uniqueKeySql(ctx.kind, table), probe);
      if (!keys.some((row) => row[0] === spec.chunkByKey)) {
        throw new ConfigError(
          `export '${spec.name}': chunk_by_key '${spec.chunkByKey}' is not a single-column NOT NULL ` +
            `unique key of ${tableLabel(table)}`,
          {
            code: "chunk.key_not_unique",
            hint: keys.length > 0
              ? `use one of: ${keys.map((r) => r[0]).join(", ")}`
              : "add a unique index on a NOT NULL column, or use chunk_column",
          },
        );
      }
    }
    return { kind: "keyset", keyColumn: spec.chunkByKey, pageSize: spec.chunkSize };
  }

  let column = spec.chunkColumn;
  let estimate: { rows?: number; rowBytes?: number } | undefined;
  const readEstimate = async () => {
    if (!table) return {};
    if (estimate) return estimate;
    const row = (await probeRows(ctx.source, tableEstimateSql(ctx.kind, table), probe))[0] ?? [];
    const rows = row[0] === undefined ? undefined : Number(row[0]);
    const rowBytes = row[1] === undefined ? undefined : Number(row[1]);
    estimate = {
      ...(rows !== undefined && Number.isFinite(rows) ? { rows } : {}),
      ...(rowBytes !== undefined && Number.isFinite(rowBytes) ? { rowBytes } : {}),
    };
    return estimate;
  };

  if (column === undefined) {
    if (!table) {
      throw new ConfigError(`export '${spec.name}': chunked mode needs chunk_column`, {
        code: "chunk.column_missing",
        hint: "set chunk_column (an integer column, or a date with chunk_by_days), or use table: " +
          "so rivet can find the integer primary key",
      });
    }
    const pk = await probeRows(ctx.source, primaryKeySql(ctx.kind, table), probe);
    if (pk.length === 1 && pk[0]![0] !== undefined && isIntegerTypeName(pk[0]![1] ?? "")) {
      column = pk[0]![0];
      ctx.emit({
        type: "warning",
        export: spec.name,
        code: "chunk.column_auto",
        message: `export '${spec.name}': chunk_column not set; auto-resolved to '${column}' ` +
          `(the integer primary key of ${tableLabel(table)}); set \`chunk_column:\` ` +
          "explicitly to choose another column or to pin this one",
      });
    } else {
      const unique = ctx.kind !== "postgres"
        ? await probeRows(ctx.source, uniqueKeySql(ctx.kind, table), probe)
        : [];
      const key = unique[0]?.[0];
      if (key !== undefined) {
        ctx.emit({
          type: "warning",
          export: spec.name,
          code: "chunk.keyset_auto",
          message: `export '${spec.name}': ${tableLabel(table)} has no single-column integer ` +
            `primary key; paging with keyset on its unique key '${key}' instead`,
        });
        return { kind: "keyset", keyColumn: key, pageSize: spec.chunkSize };
      }
      throw new ConfigError(
        `export '${spec.name}': ${tableLabel(table)} has no single-column integer primary key ` +
          "to chunk on",
        {
          code: "chunk.column_missing",
          hint: "set chunk_column (an integer column, or a date with chunk_by_days), " +
            "chunk_dense: true with an ordering column, or chunk_by_key on a unique key",
        },
      );
    }
  }

  let chunkSize = spec.chunkSize;
  if (spec.chunkSizeMemoryMb !== undefined) {
    chunkSize = chunkSizeFromMemory(spec.chunkSizeMemoryMb, (await readEstimate()).rowBytes);
  }
  const explicitShape = spec.chunkCount !== undefined || spec.chunkByDays !== undefined ||
    spec.chunkCheckpoint || spec.chunkDense;
  // Only an auto-resolved or memory-sized plan reads the catalog (an explicit chunk_column
  // never touches the database at plan time, as the Rust tool promises).
  if (
    table && !explicitShape && (spec.chunkColumn === undefined || estimate !== undefined)
  ) {
    const rows = (await readEstimate()).rows;
    if (rows !== undefined && rows > 0 && rows <= chunkSize) {
      return {
        kind: "snapshot",
        reason: `the catalog estimates ${rows} rows for ${
          tableLabel(table)
        }, within one chunk of ${chunkSize}`,
      };
    }
  }
  const shape = chunkShapeOf(spec, chunkSize);
  return {
    kind: "windows",
    column,
    shape,
    planHash: await planHash(ctx.baseSql, { column, shape }),
  };
}

/**
 * Cuts the windows of a run from the boundary probes: the NULL guard (range and date), then
 * min/max, or the row count for dense windows.
 *
 * @param spec The export.
 * @param chunking The resolved windows.
 * @param ctx Source, engine and base query.
 * @returns One bounds entry per chunk, in order.
 */
export async function planWindows(
  spec: ExportSpec,
  chunking: WindowedChunking,
  ctx: ChunkPlanContext,
): Promise<ChunkBoundsEntry[]> {
  const dialect = dialectOf(ctx.kind);
  const { column, shape } = chunking;
  const probe = {
    ...(ctx.signal ? { signal: ctx.signal } : {}),
    statementTimeoutS: ctx.statementTimeoutS ?? 0,
  };
  const sqlOptions = { dialect, column };
  if (shape.kind === "dense") {
    const total = await probeScalar(ctx.source, countSql(ctx.baseSql, { dialect }), probe);
    return planDenseWindows({ total: BigInt(total ?? "0"), chunkSize: spec.chunkSize }).map(
      (w) => ({ startKey: String(w.start), endKey: String(w.end) }),
    );
  }
  const nulls = await probeScalar(ctx.source, nullGuardSql(ctx.baseSql, sqlOptions), probe);
  if (nulls !== undefined && nulls !== "0") {
    throw new PermanentError(
      `export '${spec.name}': chunk_column '${column}' has ${nulls} NULL values, which no ` +
        "chunk window would export",
      {
        code: "chunk.column_has_nulls",
        hint: "chunk on a NOT NULL column, filter the NULLs out in the query, use chunk_dense: " +
          "true, or mode: full",
      },
    );
  }
  const bounds = minMaxSql(ctx.baseSql, sqlOptions);
  const min = await probeScalar(ctx.source, bounds.min, probe);
  const max = await probeScalar(ctx.source, bounds.max, probe);
  if (shape.kind === "date") {
    return planDateWindows({ min, max, days: shape.days }).map((w) => ({
      startKey: w.from,
      endKey: w.until ?? null,
    }));
  }
  const integer = /^-?\d+$/;
  for (const value of [min, max]) {
    if (value !== undefined && !integer.test(value)) {
      throw new ConfigError(
        `export '${spec.name}': chunk_column '${column}' is not an integer column (its bounds ` +
          `look like '${value}')`,
        {
          code: "chunk.column_not_integer",
          hint: "use chunk_by_days for a date or timestamp column, chunk_dense: true for other " +
            "ordered columns, or an integer chunk_column",
        },
      );
    }
  }
  const windows = planChunkWindows({
    min: min === undefined ? null : BigInt(min),
    max: max === undefined ? null : BigInt(max),
    ...(shape.kind === "count" ? { chunkCount: shape.count } : { chunkSize: shape.size }),
    column,
  });
  return windows.map((w) => ({ startKey: String(w.start), endKey: String(w.end) }));
}

/**
 * The statement of one chunk, from its stored bounds (a resumed run rebuilds it the same way).
 *
 * @param baseSql The export's base query.
 * @param chunking The windows.
 * @param bounds The chunk's bounds.
 * @param kind The source engine.
 * @returns SQL, parameters and synthetic columns.
 */
export function chunkStatement(
  baseSql: string,
  chunking: WindowedChunking,
  bounds: ChunkBoundsEntry,
  kind: SourceKind,
): PlannedSql {
  const dialect = dialectOf(kind);
  const { column, shape } = chunking;
  if (shape.kind === "date") {
    return {
      sql: chunkDateSql(baseSql, {
        dialect,
        column,
        window: {
          from: bounds.startKey ?? "0001-01-01",
          ...(bounds.endKey === null ? {} : { until: bounds.endKey }),
        },
      }),
      params: [],
      strippedColumns: [],
    };
  }
  const start = BigInt(bounds.startKey ?? "0");
  const end = BigInt(bounds.endKey ?? "0");
  if (shape.kind === "dense") return chunkDenseSql(baseSql, { dialect, column, start, end });
  return {
    sql: chunkRangeSql(baseSql, { dialect, column, start, end }),
    params: [],
    strippedColumns: [],
  };
}
