/**
 * Chunked mode: the boundary probes (NULL guard, min/max, COUNT), the window math for range,
 * `chunk_count`, dense and `chunk_by_days` chunks, and each chunk's statement. Bounds are
 * bigints, so 64-bit keys beyond 2^53 stay exact. Columns are quoted identifiers everywhere, the
 * min/max probes included: a column name from the config never reaches the SQL raw, so it
 * cannot inject SQL.
 *
 * Layer: plan (pure). Imports only `core/` and `plan/`.
 *
 * @module
 */
import { PermanentError } from "../core/errors.ts";
import { daysFromCivil, formatDay, parseDay } from "./_calendar.ts";
import { dateLiteral, type Dialect, quoteIdent } from "./dialect.ts";
import { fastPathTableOf, type PlannedSql } from "./query.ts";

/** Synthetic ordinal column of `chunk_dense`. */
export const CHUNK_ROW_NUMBER_COLUMN = "_rivet_chunk_rn";

/** An inclusive window `[start, end]`. */
export interface ChunkWindow {
  readonly start: bigint;
  readonly end: bigint;
}

/** Options of {@linkcode planChunkWindows}. */
export interface ChunkWindowOptions {
  /** Lowest key; null/undefined (empty table, unparseable) counts as 0. */
  readonly min: bigint | number | null | undefined;
  /** Highest key; null/undefined counts as 0. */
  readonly max: bigint | number | null | undefined;
  /** Keys per window (`chunk_size`, ≥ 1). Ignored when `chunkCount` is given. */
  readonly chunkSize?: number | bigint;
  /** Number of windows (`chunk_count`, ≥ 1): size = ceil((max − min + 1) / N). */
  readonly chunkCount?: number | bigint;
  /** Column name, for the error raised when the plan would hold too many windows. */
  readonly column?: string;
}

/**
 * Most windows one plan may hold. A sparse 64-bit key with a small `chunk_size` could otherwise
 * ask for billions of window objects (and checkpoint rows) before reading a single row.
 */
export const MAX_CHUNK_WINDOWS = 1_000_000;

function toBig(name: string, v: bigint | number | null | undefined): bigint {
  if (v === null || v === undefined) return 0n;
  if (typeof v === "bigint") return v;
  if (!Number.isSafeInteger(v)) throw new RangeError(`${name} must be an integer, got ${v}`);
  return BigInt(v);
}

function positive(name: string, v: number | bigint): bigint {
  const b = toBig(name, v);
  if (b < 1n) throw new RangeError(`${name} must be >= 1, got ${v}`);
  return b;
}

/**
 * Splits `[min, max]` into inclusive windows of `chunkSize` keys, the last clipped to `max`
 * (the Rust tool's windows). A missing min/max is 0, so an empty table gives the single window
 * 0..0, whose statement returns no rows but still a schema. `max < min` gives no window.
 *
 * @param options Bounds and either `chunkSize` or `chunkCount`.
 * @returns The windows in key order, adjacent and non-overlapping.
 *
 * @example
 * ```ts
 * import { planChunkWindows } from "./chunks.ts";
 * const w = planChunkWindows({ min: 1, max: 10, chunkCount: 3 });
 * if (w.map((x) => `${x.start}-${x.end}`).join() !== "1-4,5-8,9-10") throw new Error();
 * ```
 */
export function planChunkWindows(options: ChunkWindowOptions): ChunkWindow[] {
  const min = toBig("min", options.min);
  const max = toBig("max", options.max);
  if (max < min) return [];
  const span = max - min + 1n;
  let size: bigint;
  if (options.chunkCount !== undefined) {
    const count = positive("chunkCount", options.chunkCount);
    size = (span + count - 1n) / count;
  } else {
    size = positive("chunkSize", options.chunkSize ?? 100_000);
  }
  const count = (span + size - 1n) / size;
  if (count > BigInt(MAX_CHUNK_WINDOWS)) {
    const what = options.column === undefined
      ? "The chunk key"
      : `Chunk column '${options.column}'`;
    throw new PermanentError(
      `${what} spans ${span} values (${min}..${max}), which would make ${count} chunks, more than ${MAX_CHUNK_WINDOWS}; raise chunk_size, set chunk_count, or use chunk_dense for a sparse key`,
      { code: "plan.too_many_chunks" },
    );
  }
  const windows: ChunkWindow[] = [];
  for (let start = min; start <= max; start += size) {
    const end = start + size - 1n;
    windows.push({ start, end: end < max ? end : max });
  }
  return windows;
}

/**
 * Windows over the ordinals 1..`total` of `chunk_dense`. An empty result (`total` 0) still gets
 * one window, 1..1, for the same reason an empty table gets 0..0 in range mode: the export then
 * writes its schema-only output instead of nothing.
 *
 * @param options `total` from the COUNT probe and `chunkSize`.
 * @returns The ordinal windows.
 */
export function planDenseWindows(
  options: { total: bigint | number; chunkSize?: number | bigint },
): ChunkWindow[] {
  const total = toBig("total", options.total);
  if (total <= 0n) return [{ start: 1n, end: 1n }];
  return planChunkWindows({
    min: 1n,
    max: total,
    ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
  });
}

/** A `chunk_by_days` window: inclusive day numbers and the half-open date bounds. */
export interface DateWindow {
  /** First day, days since 1970-01-01. */
  readonly startDay: number;
  /** Last day (inclusive). */
  readonly endDay: number;
  /** `YYYY-MM-DD` of `startDay` (inclusive bound). */
  readonly from: string;
  /** `YYYY-MM-DD` of `endDay + 1` (exclusive bound); absent when that is past 9999-12-31. */
  readonly until?: string;
}

const LAST_DAY = daysFromCivil({ year: 9999, month: 12, day: 31 });

/**
 * Windows of `days` calendar days between the min and max dates (`chunk_by_days`).
 * Bounds are the probe scalars as text (`2024-01-05`, `2024-01-05 10:00:00+00`, …) or day
 * numbers. No bound (an empty or all-NULL column) gives no window.
 *
 * @param options Min, max and window length in days.
 * @returns The date windows.
 */
export function planDateWindows(options: {
  min: string | number | null | undefined;
  max: string | number | null | undefined;
  days: number;
}): DateWindow[] {
  if (options.min == null || options.max == null) return [];
  const minDay = toDay("min", options.min);
  const maxDay = toDay("max", options.max);
  return planChunkWindows({ min: minDay, max: maxDay, chunkSize: options.days }).map((w) => {
    const startDay = Number(w.start);
    const endDay = Number(w.end);
    const from = formatDay(startDay);
    return endDay >= LAST_DAY
      ? { startDay, endDay, from }
      : { startDay, endDay, from, until: formatDay(endDay + 1) };
  });
}

function toDay(name: string, v: string | number): number {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v)) throw new RangeError(`${name} day must be an integer, got ${v}`);
    return v;
  }
  const day = parseDay(v);
  if (day === undefined) throw new RangeError(`${name} is not a date: ${JSON.stringify(v)}`);
  return day;
}

/** Options shared by the chunk statements. */
export interface ChunkSqlOptions {
  readonly dialect: Dialect;
  /** `chunk_column`. */
  readonly column: string;
  /**
   * The table when the export is the `table:` form; when absent, recognised from the base query
   * (exactly `SELECT * FROM <ident>`).
   */
  readonly fastPathTable?: string;
}

function integerText(name: string, v: bigint | number): string {
  return String(toBig(name, v));
}

/**
 * One range chunk: `SELECT * FROM <t> WHERE <c> BETWEEN s AND e` on the fast path, else
 * `SELECT * FROM (<q>) AS _rivet WHERE <c> BETWEEN s AND e`. No ORDER BY.
 *
 * @param base The export's base query.
 * @param options Dialect, column, bounds and fast-path table.
 * @returns The statement.
 *
 * @example
 * ```ts
 * import { chunkRangeSql } from "./chunks.ts";
 * import { DIALECTS } from "./dialect.ts";
 * const sql = chunkRangeSql("SELECT * FROM t", {
 *   dialect: DIALECTS.mysql, column: "id", start: 1, end: 10,
 * });
 * if (sql !== "SELECT * FROM t WHERE `id` BETWEEN 1 AND 10") throw new Error(sql);
 * ```
 */
export function chunkRangeSql(
  base: string,
  options: ChunkSqlOptions & { start: bigint | number; end: bigint | number },
): string {
  const column = quoteIdent(options.dialect, options.column);
  const range = `${column} BETWEEN ${integerText("start", options.start)} AND ${
    integerText("end", options.end)
  }`;
  return `SELECT * FROM ${fromClause(base, options.fastPathTable, "_rivet")} WHERE ${range}`;
}

/**
 * One `chunk_by_days` chunk: `… WHERE <c> >= '<from>' AND <c> < '<until>'` (fast path or
 * wrapped as range chunks are).
 *
 * @param base The export's base query.
 * @param options Dialect, column, the window and fast-path table.
 * @returns The statement.
 */
export function chunkDateSql(
  base: string,
  options: ChunkSqlOptions & { window: Pick<DateWindow, "from" | "until"> },
): string {
  const { dialect } = options;
  const column = quoteIdent(dialect, options.column);
  const { from, until } = options.window;
  const upper = until === undefined ? "" : ` AND ${column} < ${dateLiteral(dialect, until)}`;
  return `SELECT * FROM ${fromClause(base, options.fastPathTable, "_rivet")} WHERE ${column} >= ${
    dateLiteral(dialect, from)
  }${upper}`;
}

/**
 * One dense chunk: ordinals from `ROW_NUMBER() OVER (ORDER BY <c>)` between the window bounds.
 * Always wrapped; `_rivet_chunk_rn` is listed in `strippedColumns`.
 *
 * @param base The export's base query.
 * @param options Dialect, ordering column and ordinal bounds.
 * @returns The statement.
 */
export function chunkDenseSql(
  base: string,
  options: { dialect: Dialect; column: string; start: bigint | number; end: bigint | number },
): PlannedSql {
  const column = quoteIdent(options.dialect, options.column);
  const rn = CHUNK_ROW_NUMBER_COLUMN;
  return {
    sql:
      `SELECT * FROM (SELECT _rivet_i.*, ROW_NUMBER() OVER (ORDER BY _rivet_i.${column}) AS ${rn}` +
      ` FROM (${base}) AS _rivet_i) AS _rivet_w WHERE _rivet_w.${rn} BETWEEN ${
        integerText("start", options.start)
      } AND ${integerText("end", options.end)}`,
    params: [],
    strippedColumns: [rn],
  };
}

function fromClause(base: string, fastPathTable: string | undefined, alias: string): string {
  return fastPathTableOf(base, fastPathTable) ?? `(${base}) AS ${alias}`;
}

/**
 * The NULL guard of range and date chunks: `SELECT COUNT(*) - COUNT(<c>) FROM <t>` (fast path) or
 * `… FROM (<q>) AS _rivet_nullcnt`. Any non-zero result must stop the export.
 *
 * @param base The export's base query.
 * @param options Dialect, column and fast-path table.
 * @returns The probe.
 */
export function nullGuardSql(base: string, options: ChunkSqlOptions): string {
  const column = quoteIdent(options.dialect, options.column);
  const count = options.dialect.count;
  return `SELECT ${count}(*) - ${count}(${column}) FROM ${
    fromClause(base, options.fastPathTable, "_rivet_nullcnt")
  }`;
}

/**
 * The boundary probes: `SELECT min(<c>) FROM <t>` / `SELECT max(<c>) FROM <t>` on the fast path,
 * else over `(<q>) AS _rivet`.
 *
 * @param base The export's base query.
 * @param options Dialect, column and fast-path table.
 * @returns Both probes.
 *
 * @example
 * ```ts
 * import { minMaxSql } from "./chunks.ts";
 * import { DIALECTS } from "./dialect.ts";
 * const { min } = minMaxSql("SELECT a FROM t", { dialect: DIALECTS.postgres, column: 'x"y' });
 * if (min !== `SELECT min("x""y") FROM (SELECT a FROM t) AS _rivet`) throw new Error(min);
 * ```
 */
export function minMaxSql(base: string, options: ChunkSqlOptions): { min: string; max: string } {
  const column = quoteIdent(options.dialect, options.column);
  const from = fromClause(base, options.fastPathTable, "_rivet");
  return { min: `SELECT min(${column}) FROM ${from}`, max: `SELECT max(${column}) FROM ${from}` };
}

/**
 * The row count of `chunk_dense`: `SELECT COUNT(*) FROM <t>` or `… FROM (<q>) AS _rivet`.
 *
 * @param base The export's base query.
 * @param options Dialect (its counting aggregate) and fast-path table.
 * @returns The probe.
 */
export function countSql(
  base: string,
  options: { dialect: Dialect; fastPathTable?: string },
): string {
  return `SELECT ${options.dialect.count}(*) FROM ${
    fromClause(base, options.fastPathTable, "_rivet")
  }`;
}
