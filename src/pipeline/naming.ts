/**
 * Run ids and object names (reference §4.3, §6): pure functions of the export name and the run's
 * start time, always in UTC.
 *
 * Layer: pipeline. Imports core/ only.
 *
 * @module
 */

function pad(value: number, width = 2): string {
  return String(value).padStart(width, "0");
}

/**
 * `YYYYMMDD_HHMMSS` of a UTC instant, as used in file names.
 *
 * @param at The run's start time.
 * @returns The stamp.
 *
 * @example
 * ```ts
 * import { fileStamp } from "./naming.ts";
 * if (fileStamp(new Date("2026-01-02T03:04:05.678Z")) !== "20260102_030405") throw new Error();
 * ```
 */
export function fileStamp(at: Date): string {
  return `${at.getUTCFullYear()}${pad(at.getUTCMonth() + 1)}${pad(at.getUTCDate())}_` +
    `${pad(at.getUTCHours())}${pad(at.getUTCMinutes())}${pad(at.getUTCSeconds())}`;
}

/**
 * Run id `<export>_<YYYYMMDD>T<HHMMSS>.<ms>` (reference §6).
 *
 * @param exportName The export.
 * @param at The run's start time.
 * @returns The run id.
 *
 * @example
 * ```ts
 * import { runId } from "./naming.ts";
 * const id = runId("orders", new Date("2026-01-02T03:04:05.078Z"));
 * if (id !== "orders_20260102T030405.078") throw new Error(id);
 * ```
 */
export function runId(exportName: string, at: Date): string {
  return `${exportName}_${fileStamp(at).replace("_", "T")}.${pad(at.getUTCMilliseconds(), 3)}`;
}

/**
 * Name of a data file of a single-query export: `<export>_<stamp>.<ext>`, or
 * `<export>_<stamp>_part<i>.<ext>` when `max_file_size` split the output into several parts.
 *
 * @param exportName The export.
 * @param options Start time, extension, part index and whether the output has several parts.
 * @returns The object name.
 *
 * @example
 * ```ts
 * import { partName } from "./naming.ts";
 * const at = new Date("2026-01-02T03:04:05Z");
 * if (partName("o", { at, extension: "csv", index: 1, split: true }) !== "o_20260102_030405_part1.csv") {
 *   throw new Error();
 * }
 * ```
 */
export function partName(
  exportName: string,
  options: { at: Date; extension: string; index: number; split: boolean },
): string {
  const base = `${exportName}_${fileStamp(options.at)}`;
  return options.split
    ? `${base}_part${options.index}.${options.extension}`
    : `${base}.${options.extension}`;
}
