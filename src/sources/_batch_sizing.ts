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
