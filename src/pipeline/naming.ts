/**
 * Run ids and object names, as the Rust tool forms them: pure functions of the export name and
 * the run's start time, always in UTC, plus {@linkcode fileNameTag}, the one look-up at the
 * destination that keeps the names of two runs in the same second apart.
 *
 * Layer: pipeline. Imports core/ only.
 *
 * @module
 */
import type { Destination } from "../core/destination.ts";

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
 * Run id `<export>_<YYYYMMDD>T<HHMMSS>.<ms>`.
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
 * With a `tag` (see {@linkcode fileNameTag}) the stamp is followed by `_<tag>`:
 * `<export>_<stamp>_<tag>.<ext>`.
 *
 * @param exportName The export.
 * @param options Start time, extension, part index, whether the output has several parts, and
 *   the collision tag, if any.
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
  options: { at: Date; extension: string; index: number; split: boolean; tag?: string },
): string {
  const base = `${exportName}_${fileStamp(options.at)}${tagSuffix(options.tag)}`;
  return options.split
    ? `${base}_part${options.index}.${options.extension}`
    : `${base}.${options.extension}`;
}

function tagSuffix(tag: string | undefined): string {
  return tag === undefined ? "" : `_${tag}`;
}

/**
 * The tag that keeps a run's single-query or keyset file names apart from those of an earlier
 * run of the same export in the same second (same `<export>_<stamp>`): undefined when the plain
 * names are free (the usual case: names stay `<export>_<YYYYMMDD>_<HHMMSS>.<ext>`), else 8 random
 * hex digits. The destination's no-clobber commit still guards the race of two runs at once.
 *
 * @param destination Where the run writes.
 * @param exportName The export.
 * @param at The run's start.
 * @param signal Abort signal.
 * @returns The tag, or undefined.
 */
export async function fileNameTag(
  destination: Pick<Destination, "list">,
  exportName: string,
  at: Date,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const base = `${exportName}_${fileStamp(at)}`;
  for await (const object of destination.list(base, signal ? { signal } : {})) {
    const rest = object.key.slice(base.length);
    if (/^(\.|_part\d|_keyset\d)/.test(rest)) return randomHex16().slice(0, 8);
  }
  return undefined;
}

/**
 * 16 random lowercase hex digits: the collision guard of chunk file names (a re-run or resume in
 * the same second never produces a name that exists).
 *
 * @returns The digits.
 */
export function randomHex16(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  let hex = "";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return hex;
}

/**
 * Name of a chunk's file: `<export>_<stamp>_chunk<idx>_<16 hex>.<ext>`, with `_p<i>` before the
 * extension when `max_file_size` rotated the chunk into several parts.
 *
 * @param exportName The export.
 * @param options Run start, extension, chunk index, random digits, part index and whether the
 *   chunk has several parts.
 * @returns The object name.
 *
 * @example
 * ```ts
 * import { chunkName } from "./naming.ts";
 * const at = new Date("2026-01-02T03:04:05Z");
 * const name = chunkName("o", { at, extension: "csv", chunk: 3, hex: "00ff00ff00ff00ff", part: 1, split: true });
 * if (name !== "o_20260102_030405_chunk3_00ff00ff00ff00ff_p1.csv") throw new Error(name);
 * ```
 */
export function chunkName(
  exportName: string,
  options: {
    at: Date;
    extension: string;
    chunk: number;
    hex: string;
    part: number;
    split: boolean;
  },
): string {
  const rotated = options.split ? `_p${options.part}` : "";
  return `${
    chunkFilePrefix(exportName, options.at)
  }${options.chunk}_${options.hex}${rotated}.${options.extension}`;
}

/**
 * The name prefix shared by every chunk file of one run (`<export>_<stamp>_chunk`): a resume
 * finds the run's untracked files by it.
 *
 * @param exportName The export.
 * @param at The run's start.
 * @returns The prefix.
 */
export function chunkFilePrefix(exportName: string, at: Date): string {
  return `${exportName}_${fileStamp(at)}_chunk`;
}

/**
 * Name of a keyset page's file: `<export>_<stamp>_keyset<page>.<ext>`, with `_p<i>` when the page
 * was rotated into several parts and `_<tag>` after the stamp when {@linkcode fileNameTag} gave
 * one.
 *
 * @param exportName The export.
 * @param options Run start, extension, page, part index, whether the page has several parts and
 *   the collision tag, if any.
 * @returns The object name.
 */
export function keysetName(
  exportName: string,
  options: {
    at: Date;
    extension: string;
    page: number;
    part: number;
    split: boolean;
    tag?: string;
  },
): string {
  const rotated = options.split ? `_p${options.part}` : "";
  return `${exportName}_${fileStamp(options.at)}${
    tagSuffix(options.tag)
  }_keyset${options.page}${rotated}.${options.extension}`;
}

/**
 * The start time encoded in a run id (`<export>_<YYYYMMDD>T<HHMMSS>.<ms>`), so that a resumed
 * run keeps its file stamps and `{date}` folder.
 *
 * @param runIdText A run id from {@linkcode runId}.
 * @returns The instant, or undefined when the id has another shape.
 *
 * @example
 * ```ts
 * import { runId, runStartOf } from "./naming.ts";
 * const at = new Date("2026-01-02T03:04:05.078Z");
 * if (runStartOf(runId("my_export", at))?.getTime() !== at.getTime()) throw new Error();
 * ```
 */
export function runStartOf(runIdText: string): Date | undefined {
  const m = /_(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})$/.exec(runIdText);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s, ms] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s, ms));
}
