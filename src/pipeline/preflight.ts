/**
 * Preflight of one export: what a run would do and whether it can, found without reading a row.
 * `rivet check` prints it per export, `rivet doctor` runs its access probe, and `rivet plan`
 * records it in the plan artifact.
 *
 * What it does, in order, through the export's own source connection:
 * 1. the access probe: the export's query run for no row (`SELECT * FROM (<q>) AS _rivet_probe
 *    LIMIT 0`, `SELECT TOP 0 …` on SQL Server), with the export's `columns:` overrides; a missing
 *    table, column or privilege fails here, and the result's columns come back typed as a run
 *    would type them (unsupported ones included);
 * 2. the caller's schema check (`checkSchema`: e.g. CSV refuses list columns; injected because
 *    formats are not this layer's to open);
 * 3. the strategy: `full`, `incremental`, `time_window`, or for `chunked` the run's own chunking
 *    decision (windows, keyset, or the snapshot downgrade of a small table);
 * 4. for a `table:` export, the catalog's row estimate and width and the indexed columns (never a
 *    scan); the cursor range (min/max of the driving column) only when that column is indexed;
 * 5. the verdict (`plan/verdict.ts`).
 *
 * Nothing here throws for a problem of the export: each lands in `failures` (the run would fail:
 * exit 1 for `rivet check`) or `warnings` (advisory). Only an interrupt propagates.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import type { Schema } from "../core/arrow.ts";
import { type ErrorInfo, InterruptedError, toErrorInfo } from "../core/errors.ts";
import type { ExportJob } from "../core/job.ts";
import { type ColumnInfo, type Source, UnsupportedColumnsError } from "../core/source.ts";
import type { ExportMode } from "../core/spec.ts";
import { indexedColumnsSql, tableEstimateSql, zeroRowSql } from "../plan/catalog.ts";
import { minMaxSql } from "../plan/chunks.ts";
import { dialectOf } from "../plan/dialect.ts";
import { judge, type PreflightWarning, type Strategy, type Verdict } from "../plan/verdict.ts";
import { resolveChunking } from "./chunk_plan.ts";
import { probeRows, probeScalar } from "./probe.ts";

export type { PreflightWarning, Strategy, Verdict } from "../plan/verdict.ts";

/** Settings of a preflight. */
export interface PreflightOptions {
  readonly signal?: AbortSignal;
  /** Statement timeout of each probe in seconds (default 60; 0 = none). */
  readonly statementTimeoutS?: number;
  /**
   * Judges the probed schema against the export's format; throws a RivetError naming the column
   * when the format cannot write it (e.g. a list column in CSV).
   */
  readonly checkSchema?: (schema: Schema) => void | Promise<void>;
}

/** The hint of a failed access probe that brought none. */
const ACCESS_HINT =
  "check the export's table:, query: or query_file: and the user's privileges on it";
/** The hint of unsupported columns. */
const UNSUPPORTED_HINT =
  "set a columns: override for each column named (e.g. text), or cast it in a query:";

/** The result of the access probe. */
export interface AccessProbe {
  /** Whether the query ran. */
  readonly ok: boolean;
  /** Why not, when it did not. */
  readonly error?: ErrorInfo;
  /** The result's columns, as a run types them (empty when the query did not run). */
  readonly columns: readonly ColumnInfo[];
  /** The Arrow schema, when every column is supported. */
  readonly schema?: Schema;
  /** The refusal of unsupported columns, when some are. */
  readonly unsupported?: ErrorInfo;
}

/** What the preflight found for one export. */
export interface Preflight {
  readonly export: string;
  readonly strategy: Strategy;
  readonly mode: ExportMode;
  /** The catalog's estimate (`table:` exports); undefined when unknown. */
  readonly rowEstimate?: number;
  /** The catalog's average row width in bytes; undefined when unknown. */
  readonly rowWidthBytes?: number;
  /** The column that drives the reads: cursor, chunk, key or time column. */
  readonly cursorColumn?: string;
  /** Whether that column leads an index; undefined when it cannot be told (a `query:` export). */
  readonly cursorIndexed?: boolean;
  /** Min and max of that column (only read when it is indexed); undefined values are NULL. */
  readonly cursorRange?: { readonly min?: string; readonly max?: string };
  readonly access: AccessProbe;
  readonly verdict: Verdict;
  readonly recommendedProfile: string;
  readonly recommendedParallel: number;
  readonly warnings: readonly PreflightWarning[];
  /** What makes a run of this export fail before it reads a row. */
  readonly failures: readonly ErrorInfo[];
}

function timeout(options: PreflightOptions): number {
  return options.statementTimeoutS ?? 60;
}

function rethrowInterrupt(error: unknown, signal: AbortSignal | undefined): void {
  if (signal?.aborted || error instanceof InterruptedError) throw error;
}

/**
 * Runs the export's query for no row.
 *
 * @param source An open source of the export's engine.
 * @param job The export.
 * @param options Signal and timeout.
 * @returns Whether it ran, its columns, and the refusal of unsupported columns if any.
 */
export async function probeAccess(
  source: Source,
  job: Pick<ExportJob, "baseSql" | "spec" | "source">,
  options: PreflightOptions = {},
): Promise<AccessProbe> {
  try {
    const stream = await source.read(
      { sql: zeroRowSql(job.source.kind, job.baseSql), params: [] },
      {
        batchSize: 1,
        batchMemoryBytes: 1024 * 1024,
        statementTimeoutS: timeout(options),
        lockTimeoutS: 0,
        throttleMs: 0,
        maxValueMb: 0,
        columnOverrides: job.spec.columns,
        ...(job.spec.format.parquetTypes === "portable" ? { portableTypes: true } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
    await stream.batches.cancel().catch(() => {});
    return { ok: true, columns: stream.columns, schema: stream.schema };
  } catch (error) {
    rethrowInterrupt(error, options.signal);
    const info = toErrorInfo(error);
    if (error instanceof UnsupportedColumnsError) {
      return {
        ok: true,
        columns: error.columns,
        unsupported: { ...info, hint: info.hint ?? UNSUPPORTED_HINT },
      };
    }
    return { ok: false, error: { ...info, hint: info.hint ?? ACCESS_HINT }, columns: [] };
  }
}

/** A failure of the export, named once. */
function named(job: ExportJob, info: ErrorInfo): ErrorInfo {
  const prefix = `export '${job.spec.name}': `;
  return info.message.startsWith(prefix) ? info : { ...info, message: prefix + info.message };
}

/** The strategy of an export, and the column that drives its reads. */
async function strategyOf(
  job: ExportJob,
  source: Source,
  options: PreflightOptions,
  warnings: PreflightWarning[],
): Promise<{ strategy: Strategy; column?: string }> {
  const spec = job.spec;
  switch (spec.mode) {
    case "incremental":
      return {
        strategy: "incremental",
        ...(spec.cursorColumn ? { column: spec.cursorColumn } : {}),
      };
    case "time_window":
      return { strategy: "time_window", ...(spec.timeColumn ? { column: spec.timeColumn } : {}) };
    case "chunked": {
      const chunking = await resolveChunking(spec, {
        source,
        kind: job.source.kind,
        baseSql: job.baseSql,
        statementTimeoutS: timeout(options),
        ...(options.signal ? { signal: options.signal } : {}),
        emit: (event) => {
          if (event.type !== "warning") return;
          warnings.push({
            code: event.code,
            message: event.message,
            suggestion: "set the chunking keys explicitly to pin this choice",
          });
        },
      });
      if (chunking.kind === "keyset") return { strategy: "keyset", column: chunking.keyColumn };
      if (chunking.kind === "snapshot") {
        warnings.push({
          code: "preflight.snapshot_downgrade",
          message: `runs as one snapshot query: ${chunking.reason}`,
          suggestion: "nothing to do; set chunk_checkpoint: true to force chunking",
        });
        return { strategy: "snapshot-downgrade" };
      }
      return { strategy: "chunked-windows", column: chunking.column };
    }
    case "cdc":
      return { strategy: "cdc" };
    default:
      return { strategy: "full" };
  }
}

/** What the catalog says about a `table:` export: size and indexed columns (undefined: unknown). */
async function catalogFacts(
  job: ExportJob,
  source: Source,
  options: PreflightOptions,
): Promise<{ rows?: number; rowBytes?: number; indexed?: readonly string[] }> {
  const q = job.spec.query;
  if (q.kind !== "table") return {};
  const table = { ...(q.schema ? { schema: q.schema } : {}), table: q.table };
  const probe = {
    statementTimeoutS: timeout(options),
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const number = (v: string | undefined) => {
    const n = v === undefined ? NaN : Number(v);
    return Number.isFinite(n) && n > 0 ? { value: n } : undefined;
  };
  const [estimate] = await probeRows(source, tableEstimateSql(job.source.kind, table), probe);
  const rows = number(estimate?.[0]);
  const width = number(estimate?.[1]);
  const indexed = await probeRows(source, indexedColumnsSql(job.source.kind, table), probe);
  return {
    ...(rows ? { rows: rows.value } : {}),
    ...(width ? { rowBytes: Math.round(width.value) } : {}),
    indexed: indexed.flatMap((r) => (r[0] === undefined ? [] : [r[0]])),
  };
}

const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Preflight of one export (see the module text for what it runs).
 *
 * @param job The resolved export.
 * @param source An open source for it.
 * @param options Signal, probe timeout and the format's schema check.
 * @returns What a run would do, the verdict, warnings and the failures a run would hit.
 * @throws {InterruptedError} When the signal fires; nothing else.
 */
export async function preflight(
  job: ExportJob,
  source: Source,
  options: PreflightOptions = {},
): Promise<Preflight> {
  const failures: ErrorInfo[] = [];
  const warnings: PreflightWarning[] = [];
  const access = await probeAccess(source, job, options);
  if (access.error) failures.push(named(job, access.error));
  if (access.unsupported) failures.push(named(job, access.unsupported));
  if (access.schema && options.checkSchema) {
    try {
      await options.checkSchema(access.schema);
    } catch (error) {
      rethrowInterrupt(error, options.signal);
      failures.push(named(job, toErrorInfo(error)));
    }
  }

  let strategy: Strategy = job.spec.mode === "chunked" ? "chunked-windows" : "full";
  let column: string | undefined;
  let facts: Awaited<ReturnType<typeof catalogFacts>> = {};
  let cursorRange: Preflight["cursorRange"];
  if (access.ok) {
    try {
      ({ strategy, column } = await strategyOf(job, source, options, warnings));
    } catch (error) {
      rethrowInterrupt(error, options.signal);
      failures.push(named(job, toErrorInfo(error)));
    }
    try {
      facts = await catalogFacts(job, source, options);
    } catch (error) {
      rethrowInterrupt(error, options.signal);
      const info = toErrorInfo(error);
      warnings.push({
        code: "preflight.catalog_unavailable",
        message: `the catalog could not be read (${info.message})`,
        suggestion: "grant read access to the catalog views, or ignore: the estimate is advisory",
      });
    }
  }
  const columnExists = column === undefined || !access.ok
    ? undefined
    : access.columns.some((c) => same(c.name, column!));
  if (column !== undefined && columnExists === false) {
    failures.push({
      name: "ConfigError",
      code: "preflight.column_missing",
      exitCode: 1,
      message: `export '${job.spec.name}': column '${column}' is not among the columns of the ` +
        "export's query",
      hint: `the query returns: ${access.columns.map((c) => c.name).join(", ")}`,
    });
  }
  const columnIndexed = column === undefined || facts.indexed === undefined
    ? undefined
    : facts.indexed.some((c) => same(c, column!));
  if (columnIndexed && columnExists && strategy !== "keyset") {
    const { min, max } = minMaxSql(job.baseSql, {
      dialect: dialectOf(job.source.kind),
      column: column!,
    });
    const probe = {
      statementTimeoutS: timeout(options),
      ...(options.signal ? { signal: options.signal } : {}),
    };
    try {
      const [lo, hi] = [
        await probeScalar(source, min, probe),
        await probeScalar(source, max, probe),
      ];
      cursorRange = {
        ...(lo !== undefined ? { min: lo } : {}),
        ...(hi !== undefined ? { max: hi } : {}),
      };
    } catch (error) {
      rethrowInterrupt(error, options.signal);
    }
  }

  const judgement = judge({
    strategy,
    ...(facts.rows !== undefined ? { rowEstimate: facts.rows } : {}),
    parallel: job.spec.mode === "chunked" ? job.spec.parallel : 1,
    accessOk: access.ok && failures.length === 0,
    ...(column !== undefined ? { column } : {}),
    ...(columnExists !== undefined ? { columnExists } : {}),
    ...(columnIndexed !== undefined ? { columnIndexed } : {}),
    ...(job.source.environment ? { environment: job.source.environment } : {}),
  });
  return {
    export: job.spec.name,
    strategy,
    mode: job.spec.mode,
    ...(facts.rows !== undefined ? { rowEstimate: facts.rows } : {}),
    ...(facts.rowBytes !== undefined ? { rowWidthBytes: facts.rowBytes } : {}),
    ...(column !== undefined ? { cursorColumn: column } : {}),
    ...(columnIndexed !== undefined ? { cursorIndexed: columnIndexed } : {}),
    ...(cursorRange ? { cursorRange } : {}),
    access,
    verdict: judgement.verdict,
    recommendedProfile: judgement.recommendedProfile,
    recommendedParallel: judgement.recommendedParallel,
    warnings: [...warnings, ...judgement.warnings],
    failures,
  };
}
