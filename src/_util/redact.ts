/**
 * Secret hygiene for every text that leaves the process: URL userinfo, registered secret values
 * (and their percent-encoded forms) and terminal control bytes.
 *
 * Layer: _util. Imports core/ only.
 *
 * @module
 */

const registered = new Set<string>();

/**
 * Remembers a secret value so that {@linkcode redact} removes it from any text, including its
 * percent-encoded form. Values shorter than 4 characters are ignored (they would mangle text).
 *
 * @param value The secret (password, token, URL with credentials).
 */
export function registerSecret(value: string): void {
  if (value.length < 4) return;
  registered.add(value);
  for (const encoded of [encodeURIComponent(value), encodeURI(value)]) {
    if (encoded !== value) registered.add(encoded);
  }
}

// scheme://userinfo@ where userinfo ends at the LAST '@' before '/', '?', '#' or whitespace, so a
// password holding '@' does not leak. A bare user@host (no scheme) is left alone.
const urlUserinfo = /([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^\s/?#]*)@/g;

// C0 controls except TAB and LF, DEL, C1 controls, and ESC-introduced sequences (CSI, OSC, ...).
// deno-lint-ignore no-control-regex
const escapeSequence = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])?/g;
// deno-lint-ignore no-control-regex
const controlBytes = /[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]/g;

/**
 * Removes credentials and terminal control sequences from text meant for a log, an error, a
 * report or a notification. Idempotent and UTF-8 safe.
 *
 * @param text Any text.
 * @returns The text with `scheme://REDACTED@`, registered secrets as `***`, and no control bytes.
 *
 * @example
 * ```ts
 * import { redact } from "./redact.ts";
 * const out = redact("postgresql://app:p@ss@db:5432/x failed");
 * if (out !== "postgresql://REDACTED@db:5432/x failed") throw new Error(out);
 * ```
 */
export function redact(text: string): string {
  let out = text.replace(escapeSequence, "").replace(controlBytes, "");
  out = out.replace(urlUserinfo, (_m, scheme: string) => `${scheme}REDACTED@`);
  if (registered.size > 0) {
    // Longest first, so a secret that contains another is removed whole.
    for (const secret of [...registered].sort((a, b) => b.length - a.length)) {
      if (out.includes(secret)) out = out.split(secret).join("***");
    }
  }
  return out;
}
