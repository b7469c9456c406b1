/**
 * Small catalog and boundary probes (min/max, NULL counts, primary keys) run through the same
 * `Source.read` as data, so they share its connection, timeouts and type mapping. Values come
 * back in the cursor rendering (`plan/cursor.ts`): integers as decimal text, dates `YYYY-MM-DD`,
 * timestamps `YYYY-MM-DDTHH:MM:SS.ffffff`.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import type { ColumnInfo, ReadOptions, Source } from "../core/source.ts";
import { renderCellAt } from "../plan/cursor.ts";

/** Settings of a probe. */
export interface ProbeOptions {
  readonly signal?: AbortSignal;
  /** Statement timeout in seconds (0 = none). */
  readonly statementTimeoutS?: number;
  /** Keep at most this many rows (default 1000). */
  readonly maxRows?: number;
  /** `columns:` overrides, so that probed columns are typed as the export's are. */
  readonly columnOverrides?: Readonly<Record<string, string>>;
  /** `parquet_types: portable`, so that probed columns are typed as the file writes them. */
  readonly portableTypes?: boolean;
  /** Values bound to the statement's parameters (a MySQL chunk statement's). */
  readonly params?: readonly (string | number | bigint | boolean | null)[];
}

/** Read options of a probe: small batches, no throttle, the probe's own timeout. */
function probeReadOptions(options: ProbeOptions, batchSize: number): ReadOptions {
  return {
    batchSize,
    batchMemoryBytes: 4 * 1024 * 1024,
    statementTimeoutS: options.statementTimeoutS ?? 0,
    lockTimeoutS: 0,
    throttleMs: 0,
    maxValueMb: 0,
    columnOverrides: options.columnOverrides ?? {},
    ...(options.portableTypes ? { portableTypes: true } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

/**
 * The columns a query returns, read from a statement that returns no row
 * (`SELECT * FROM (<q>) AS _rivet_cols WHERE 1 = 0`): the drift check of the worker engine,
 * which must judge the columns before any worker writes.
 *
 * @param source An open source.
 * @param baseSql The export's base query.
 * @param options Signal, timeout and the export's `columns:` overrides.
 * @returns The columns as the source maps them.
 */
export async function probeColumns(
  source: Source,
  baseSql: string,
  options: ProbeOptions = {},
): Promise<readonly ColumnInfo[]> {
  const stream = await source.read(
    { sql: `SELECT * FROM (${baseSql}) AS _rivet_cols WHERE 1 = 0`, params: [] },
    probeReadOptions(options, 1),
  );
  await stream.batches.cancel().catch(() => {});
  return stream.columns;
}

/**
 * Runs a probe and returns its rows, each cell rendered as text (undefined for NULL or a type
 * without a rendering).
 *
 * @param source An open source.
 * @param sql The probe statement.
 * @param options Signal, timeout, row limit.
 * @returns The rows.
 */
export async function probeRows(
  source: Source,
  sql: string,
  options: ProbeOptions = {},
): Promise<(string | undefined)[][]> {
  const maxRows = options.maxRows ?? 1000;
  const stream = await source.read(
    { sql, params: options.params ?? [] },
    probeReadOptions(options, Math.max(100, maxRows)),
  );
  const rows: (string | undefined)[][] = [];
  const reader = stream.batches.getReader();
  try {
    // Probes return a handful of rows: read to the end, so the source closes its statement
    // the normal way, and keep the first `maxRows`.
    while (true) {
      const { value: batch, done } = await reader.read();
      if (done) break;
      for (let r = 0; r < batch.numRows && rows.length < maxRows; r++) {
        const row: (string | undefined)[] = [];
        for (let c = 0; c < batch.numCols; c++) row.push(renderCellAt(batch, c, r));
        rows.push(row);
      }
    }
  } finally {
    reader.releaseLock();
  }
  return rows;
}

/**
 * The first cell of a one-row probe, rendered as text; undefined for NULL or no row.
 *
 * @param source An open source.
 * @param sql The probe statement.
 * @param options Signal and timeout.
 * @returns The value.
 */
export async function probeScalar(
  source: Source,
  sql: string,
  options: ProbeOptions = {},
): Promise<string | undefined> {
  const rows = await probeRows(source, sql, { ...options, maxRows: 1 });
  return rows[0]?.[0];
}
