/**
 * Small text helpers for messages: a prefix added only when it is not there yet (so wrapping an
 * error never prints `export 'x': export 'x': …`), and clipping of very long texts for display.
 *
 * Layer: _util. Imports nothing from `src/`.
 *
 * @module
 */

/**
 * Prefixes `message` with `prefix` exactly once: a copy already at its head is kept (not
 * doubled), and copies that wrapped errors left inside (`…: export 'x': …`) are dropped.
 *
 * @param prefix E.g. `export 'orders': `.
 * @param message The message, possibly already prefixed by a lower layer.
 * @returns The message with the prefix exactly once, at its head.
 *
 * @example
 * ```ts
 * import { prefixOnce } from "./text.ts";
 * const once = prefixOnce("export 'o': ", "export 'o': chunk 3 failed: export 'o': refused");
 * if (once !== "export 'o': chunk 3 failed: refused") throw new Error(once);
 * ```
 */
export function prefixOnce(prefix: string, message: string): string {
  return prefix + withoutPrefix(prefix, message);
}

/**
 * Drops repeated copies of `prefix` from `message` without adding one: a message that starts
 * with the prefix keeps one copy there.
 *
 * @param prefix E.g. `export 'orders': `.
 * @param message Any message.
 * @returns The message with at most one copy of the prefix, at its head.
 */
export function collapsePrefix(prefix: string, message: string): string {
  return message.startsWith(prefix) ? prefixOnce(prefix, message) : withoutPrefix(prefix, message);
}

function withoutPrefix(prefix: string, message: string): string {
  let body = message;
  while (body.startsWith(prefix)) body = body.slice(prefix.length);
  return body.replaceAll(`: ${prefix}`, ": ");
}

/**
 * The `export 'name': ` prefix of messages about one export.
 *
 * @param name The export's name.
 * @returns The prefix, ending with `: `.
 */
export function exportPrefix(name: string): string {
  return `export '${name}': `;
}

/**
 * Collapses an `export 'x': ` prefix repeated back to back (`export 'x': export 'x': …`) into
 * one, wherever it occurs in the text: a guard for messages built by layers that each add it.
 *
 * @param text Any message.
 * @returns The message without adjacent repeats of an export prefix.
 *
 * @example
 * ```ts
 * import { collapseRepeatedExportPrefixes } from "./text.ts";
 * const out = collapseRepeatedExportPrefixes("export 'o': export 'o': boom");
 * if (out !== "export 'o': boom") throw new Error(out);
 * ```
 */
export function collapseRepeatedExportPrefixes(text: string): string {
  // Each match starts at a literal "export '" and the name is bounded: linear in the text.
  return text.replace(/(export '[^'\n]{1,200}': )\1+/g, "$1");
}

/** Longest text {@linkcode clip} keeps by default (characters). */
export const CLIP_CHARS = 8 * 1024;

/**
 * Shortens a text for display, keeping its head and saying how much was cut. Linear.
 *
 * @param text Any text (an error message that may quote a long query or value).
 * @param max The number of characters kept.
 * @returns The text itself when short enough, else its head plus `… [N more characters cut]`.
 *
 * @example
 * ```ts
 * import { clip } from "./text.ts";
 * if (clip("abcdef", 3) !== "abc… [3 more characters cut]") throw new Error();
 * ```
 */
export function clip(text: string, max = CLIP_CHARS): string {
  if (text.length <= max) return text;
  const { head, cut } = headOf(text, max);
  return `${head}… [${cut} more characters cut]`;
}

/**
 * The first `max` UTF-16 code units of a text, one fewer when the last would split a surrogate
 * pair (the head stays well-formed), and how many code units are left out.
 *
 * @param text Any text.
 * @param max Code units to keep at most.
 * @returns The head and the number cut.
 *
 * @example
 * ```ts
 * import { headOf } from "./text.ts";
 * const { head, cut } = headOf("ab🦀", 3);
 * if (head !== "ab" || cut !== 2) throw new Error();
 * ```
 */
export function headOf(text: string, max: number): { head: string; cut: number } {
  if (text.length <= max) return { head: text, cut: 0 };
  let end = max;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return { head: text.slice(0, end), cut: text.length - end };
}
