/**
 * "Did you mean" suggestions for unknown keys, enum variants and export names.
 *
 * Layer: config. Pure, no I/O.
 *
 * @module
 */

/**
 * Levenshtein edit distance (insert, delete, substitute each cost 1).
 *
 * @param a First string.
 * @param b Second string.
 * @returns The number of edits turning `a` into `b`.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let previous = new Array<number>(b.length + 1);
  let current = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) previous[j] = j;
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    [previous, current] = [current, previous];
  }
  return previous[b.length]!;
}

/**
 * The closest candidate to a mistyped word, or undefined when none is close.
 *
 * Close means a case-insensitive edit distance of at most `max(2, floor(len / 3))` (the nearest
 * wins, first listed on ties); failing that, one word containing the other when the shorter one
 * has at least 3 characters. This is the Rust tool's rule, so `mystery_key` suggests nothing.
 *
 * @param word The unknown word as written.
 * @param candidates The valid words.
 * @returns One suggestion or undefined.
 *
 * @example
 * ```ts
 * import { suggest } from "./suggest.ts";
 * if (suggest("chunk_colum", ["chunk_column", "chunk_size"]) !== "chunk_column") throw new Error();
 * ```
 */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  const limit = Math.max(2, Math.floor(lower.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best !== undefined) return best;
  for (const candidate of candidates) {
    const other = candidate.toLowerCase();
    const shorter = other.length < lower.length ? other : lower;
    if (shorter.length >= 3 && (lower.includes(other) || other.includes(lower))) return candidate;
  }
  return undefined;
}

/**
 * Renders a list of valid words the way serde does: "`a`", "`a` or `b`", "one of `a`, `b`, `c`".
 *
 * @param words Valid words.
 * @returns The phrase that follows "expected".
 */
export function expectedPhrase(words: readonly string[]): string {
  const ticked = words.map((w) => `\`${w}\``);
  if (ticked.length === 0) return "nothing";
  if (ticked.length === 1) return ticked[0]!;
  if (ticked.length === 2) return `${ticked[0]} or ${ticked[1]}`;
  return `one of ${ticked.join(", ")}`;
}
