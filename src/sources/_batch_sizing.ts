/**
 * How many rows the next batch of a read holds: every source starts with a 500-row probe,
 * measures the Arrow bytes per row, then sizes each batch to the memory target.
 *
 * Layer: sources. Pure.
 *
 * @module
 */

/** Rows of the first batch, used to measure bytes per row. */
export const PROBE_ROWS = 500;
/** Memory target when none is configured (64 MB, the Rust tool's default). */
const DEFAULT_MEMORY_TARGET = 64 * 1024 * 1024;

/**
 * Rows of the next batch after a measured one.
 *
 * @param bytesPerRow Measured Arrow bytes per row.
 * @param limits Ceiling (`batchSize`) and memory target in bytes (0 = the 64 MB default).
 * @returns clamp(target / bytesPerRow, 500, batchSize).
 *
 * @example
 * ```ts
 * import { nextBatchRows } from "./_batch_sizing.ts";
 * if (nextBatchRows(100, { batchSize: 10_000, batchMemoryBytes: 100_000 }) !== 1000) throw new Error();
 * ```
 */
export function nextBatchRows(
  bytesPerRow: number,
  limits: { batchSize: number; batchMemoryBytes: number },
): number {
  const target = limits.batchMemoryBytes > 0 ? limits.batchMemoryBytes : DEFAULT_MEMORY_TARGET;
  const n = Math.floor(target / Math.max(1, bytesPerRow));
  return Math.max(1, Math.min(limits.batchSize, Math.max(PROBE_ROWS, n)));
}

/**
 * Rows of the batch after one just cut, within the live `rowCap` that `auto_shrink` lowers.
 *
 * @param bytes Arrow bytes of the batch just cut.
 * @param rows Its rows (> 0).
 * @param limits Ceiling and memory target, as for {@linkcode nextBatchRows}.
 * @param rowCap The read's live ceiling, if any.
 * @returns At least 1.
 *
 * @example
 * ```ts
 * import { rowsAfterBatch } from "./_batch_sizing.ts";
 * const limits = { batchSize: 10_000, batchMemoryBytes: 100_000 };
 * if (rowsAfterBatch(50_000, 500, limits, { value: 700 }) !== 700) throw new Error();
 * ```
 */
export function rowsAfterBatch(
  bytes: number,
  rows: number,
  limits: { batchSize: number; batchMemoryBytes: number },
  rowCap?: { readonly value: number },
): number {
  return Math.max(1, Math.min(nextBatchRows(bytes / rows, limits), rowCap?.value ?? Infinity));
}
