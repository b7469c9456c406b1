/**
 * The plan hash of a checkpointed chunked run: xxh3-64 hex of the base query, the chunk column
 * and the shape label, joined by U+001F (unit separator) as the Rust tool does, so that
 * `--resume` refuses a run whose windows would not line up with the stored tasks.
 *
 * Layer: plan (pure). Imports only `core/` and `_util/`.
 *
 * @module
 */
import { xxh3Hex } from "../_util/hash.ts";
import type { ExportSpec } from "../core/spec.ts";

/** How a chunked run cuts its windows. */
export type ChunkShape =
  | { readonly kind: "date"; readonly days: number }
  | { readonly kind: "dense" }
  | { readonly kind: "count"; readonly count: number }
  | { readonly kind: "range"; readonly size: number };

const SEPARATOR = "\x1f";

/**
 * The shape of an export's chunks, with the Rust tool's precedence: `chunk_by_days`, then
 * `chunk_dense`, then `chunk_count`, else `chunk_size` range windows.
 *
 * @param spec The export (its chunk keys).
 * @param effectiveChunkSize `chunk_size` after `chunk_size_memory_mb` (defaults to the spec's).
 * @returns The shape.
 */
export function chunkShapeOf(
  spec: Pick<ExportSpec, "chunkByDays" | "chunkDense" | "chunkCount" | "chunkSize">,
  effectiveChunkSize: number = spec.chunkSize,
): ChunkShape {
  if (spec.chunkByDays !== undefined) return { kind: "date", days: spec.chunkByDays };
  if (spec.chunkDense) return { kind: "dense" };
  if (spec.chunkCount !== undefined) return { kind: "count", count: spec.chunkCount };
  return { kind: "range", size: effectiveChunkSize };
}

/**
 * The shape's label inside the hashed text: `date_<d>d`, `dense_rn`, `count_<n>`, or
 * `<size>` U+001F `range`.
 */
export function chunkShapeLabel(shape: ChunkShape): string {
  switch (shape.kind) {
    case "date":
      return `date_${shape.days}d`;
    case "dense":
      return "dense_rn";
    case "count":
      return `count_${shape.count}`;
    case "range":
      return `${shape.size}${SEPARATOR}range`;
  }
}

/**
 * The plan hash of a checkpointed run.
 *
 * @param base The base query the chunks are cut from.
 * @param options The chunk column and shape.
 * @returns 16 lowercase hex digits.
 *
 * @example
 * ```ts
 * import { planHash } from "./plan_hash.ts";
 * const a = await planHash("SELECT * FROM t", { column: "id", shape: { kind: "range", size: 10 } });
 * const b = await planHash("SELECT * FROM t", { column: "id", shape: { kind: "range", size: 20 } });
 * if (a.length !== 16 || a === b) throw new Error();
 * ```
 */
export function planHash(
  base: string,
  options: { column: string; shape: ChunkShape },
): Promise<string> {
  const text = base + SEPARATOR + options.column + SEPARATOR + chunkShapeLabel(options.shape);
  return xxh3Hex(new TextEncoder().encode(text));
}
