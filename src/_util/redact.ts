/**
 * Secret hygiene for every text that leaves the process: credentials where they stand as
 * credentials, long registered secrets anywhere, and terminal control bytes.
 *
 * What is masked:
 * - URL userinfo: `scheme://user:pw@host` becomes `scheme://REDACTED@host`;
 * - the value of a credential-looking key/value pair, whatever it is: `password=…`, `pwd=…`,
 *   `secret=…`, `token=…`, `key=…`, `api_key=…`, Azure `AccountKey=…`, SAS `sig=…`,
 *   `X-Amz-Signature=…`, JSON `"password": "…"`, and `Authorization: Bearer …` headers;
 * - a registered secret of {@linkcode LONG_SECRET} characters or more, and its percent-encoded
 *   forms, wherever it appears.
 *
 * A shorter registered secret is masked only in those credential positions: masking every
 * occurrence of, say, `rivet` would turn the path `.rivet/runs` into `.***` and a bucket
 * `rivet-data` into `***-data`.
 *
 * Every pass is a single left-to-right scan (no regex that can backtrack over its own input), so
 * the cost is linear in the text length, whatever the text and however many secrets are known.
 *
 * Layer: _util. Imports nothing from `src/`.
 *
 * @module
 */

/** Registered secrets at least this long are masked anywhere in the text. */
export const LONG_SECRET = 8;

const registered = new Set<string>();
// The automaton matching every registered secret; rebuilt when the set changes.
let automaton: Automaton | undefined;

/**
 * Remembers a secret value. One of {@linkcode LONG_SECRET} characters or more (and its
 * percent-encoded forms) is then removed from any text; a shorter one is masked only where it
 * stands as a credential (URL userinfo, `password=`-style pairs), as every value there is.
 *
 * @param value The secret (password, token, URL with credentials).
 */
export function registerSecret(value: string): void {
  if (value.length < LONG_SECRET || registered.has(value)) return;
  registered.add(value);
  for (const encoded of [encodeURIComponent(value), encodeURI(value)]) {
    if (encoded !== value) registered.add(encoded);
  }
  automaton = undefined;
}

/** An Aho-Corasick automaton over the registered secrets (UTF-16 code units). */
interface Automaton {
  /** Children of each state, by code unit. State 0 is the root. */
  readonly next: Map<number, number>[];
  /** Failure link of each state: the longest proper suffix that is also a trie path. */
  readonly fail: number[];
  /** Length of the longest secret ending at each state (0 = none). */
  readonly out: number[];
}

function buildAutomaton(): Automaton {
  const next: Map<number, number>[] = [new Map()];
  const fail = [0];
  const out = [0];
  for (const secret of registered) {
    let state = 0;
    for (let i = 0; i < secret.length; i++) {
      const code = secret.charCodeAt(i);
      let child = next[state]!.get(code);
      if (child === undefined) {
        child = next.length;
        next.push(new Map());
        fail.push(0);
        out.push(0);
        next[state]!.set(code, child);
      }
      state = child;
    }
    out[state] = Math.max(out[state]!, secret.length);
  }
  // Breadth first, so a state's failure target is complete before its children need it.
  const queue = [...next[0]!.values()];
  for (let head = 0; head < queue.length; head++) {
    const state = queue[head]!;
    for (const [code, child] of next[state]!) {
      let f = fail[state]!;
      while (f !== 0 && !next[f]!.has(code)) f = fail[f]!;
      const target = next[f]!.get(code);
      fail[child] = target !== undefined && target !== child ? target : 0;
      out[child] = Math.max(out[child]!, out[fail[child]!]!);
      queue.push(child);
    }
  }
  return { next, fail, out };
}

/**
 * Replaces every stretch covered by registered secrets with `***` in one pass over the text
 * (Aho-Corasick): linear in the text length whatever the secrets share. Overlapping or adjacent
 * secrets become a single `***`.
 */
function maskLongSecrets(text: string): string {
  if (registered.size === 0) return text;
  automaton ??= buildAutomaton();
  const { next, fail, out } = automaton;
  // cover[i] > 0 when position i is inside a secret: +1 at a match's start, -1 after its end.
  let cover: Int32Array | undefined;
  let state = 0;
  for (let j = 0; j < text.length; j++) {
    const code = text.charCodeAt(j);
    let target = next[state]!.get(code);
    while (target === undefined && state !== 0) {
      state = fail[state]!;
      target = next[state]!.get(code);
    }
    state = target ?? 0;
    const length = out[state]!;
    if (length > 0) {
      cover ??= new Int32Array(text.length + 1);
      cover[j - length + 1]! += 1;
      cover[j + 1]! -= 1;
    }
  }
  if (cover === undefined) return text;
  let result = "";
  let depth = 0;
  let copied = 0;
  for (let i = 0; i < text.length; i++) {
    const was = depth;
    depth += cover[i]!;
    if (was === 0 && depth > 0) {
      result += text.slice(copied, i) + "***";
    } else if (was > 0 && depth === 0) copied = i;
  }
  return depth > 0 ? result : result + text.slice(copied);
}

// C0 controls except TAB and LF, DEL, C1 controls, and ESC-introduced sequences (CSI, OSC, ...).
// Each alternative starts at an ESC and its repeated classes exclude ESC, so scans never overlap.
// deno-lint-ignore no-control-regex
const escapeSequence = /\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])?/g;
// deno-lint-ignore no-control-regex
const controlBytes = /[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f]/g;

const schemeChar = /[A-Za-z0-9+.-]/;
const letter = /[A-Za-z]/;
const userinfoStop = /[\s/?#]/;

/** Where a URL with credentials stands in a text. */
export interface UrlUserinfo {
  /** Offset of the scheme's first letter. */
  readonly start: number;
  /** Offset of the userinfo (just after `://`). */
  readonly userinfo: number;
  /** Offset of the `@` that ends the userinfo. */
  readonly at: number;
}

/**
 * Finds every `scheme://userinfo@` in a text, where userinfo ends at the LAST `@` before `/`,
 * `?`, `#`, whitespace or another `stop` character (so a password holding `@` is covered whole),
 * and the scheme starts with a letter followed by letters, digits, `+`, `.` or `-`. A bare
 * `user@host` (no scheme) is not a match.
 *
 * Written as a scan from each `://`: the scheme is read backwards and the userinfo forwards, and
 * no stretch is read twice, so the cost is linear in the text length.
 *
 * @param text Any text.
 * @param stop Characters that also end a userinfo (e.g. quotes in YAML text).
 * @returns The matches, in order.
 *
 * @example
 * ```ts
 * import { findUrlUserinfo } from "./redact.ts";
 * const [m] = findUrlUserinfo("see pg://a:b@c/d");
 * if (m?.start !== 4 || m.userinfo !== 9 || m.at !== 12) throw new Error(JSON.stringify(m));
 * ```
 */
export function findUrlUserinfo(text: string, stop: RegExp = userinfoStop): UrlUserinfo[] {
  const found: UrlUserinfo[] = [];
  let from = 0;
  let floor = 0;
  for (;;) {
    const sep = text.indexOf("://", from);
    if (sep < 0) return found;
    let start = sep;
    while (start > floor && schemeChar.test(text[start - 1]!)) start--;
    while (start < sep && !letter.test(text[start]!)) start++;
    let end = sep + 3;
    let lastAt = -1;
    while (end < text.length && !stop.test(text[end]!)) {
      if (text[end] === "@") lastAt = end;
      end++;
    }
    if (start < sep && lastAt >= 0) {
      found.push({ start, userinfo: sep + 3, at: lastAt });
      floor = lastAt + 1;
    } else floor = sep + 3;
    // The stretch holds no '/', so the next "://" can only begin at its last character.
    from = Math.max(sep + 3, end - 1);
  }
}

/** `scheme://userinfo@` → `scheme://REDACTED@` (see {@linkcode findUrlUserinfo}). */
function redactUserinfo(text: string): string {
  const found = findUrlUserinfo(text);
  if (found.length === 0) return text;
  let out = "";
  let copied = 0;
  for (const m of found) {
    out += text.slice(copied, m.userinfo) + "REDACTED";
    copied = m.at;
  }
  return out + text.slice(copied);
}

// Credential keys whose value is masked whatever it is. Those after `(?<![A-Za-z0-9_])` must be
// whole words (`key=` but not `partition_key=`); the others may end a longer name
// (`sslpassword=`, `client_secret=`, `X-Amz-Security-Token=`).
const credentialKey = "(?:(?<![A-Za-z0-9_])(?:key|sig|pwd|pass)|password|passwd|secret|token|" +
  "api[_-]?key|access[_-]?key|account[_-]?key|secret[_-]?key|shared[_-]?access[_-]?key|" +
  "private[_-]?key|signature|credentials?)";
// `name=value` (URL queries, connection strings, libpq conninfo), or JSON `"name": "value"`.
const credentialPair = new RegExp(
  `(${credentialKey}=)(?:"([^"\\n]{0,4096})"|'([^'\\n]{0,4096})'|([^\\s&;,"'<>)\\]}]+))` +
    `|(${credentialKey}"\\s{0,8}:\\s{0,8}")((?:[^"\\\\\\n]|\\\\.){0,4096})"`,
  "gi",
);
const authorization =
  /((?:proxy-)?authorization["']?\s{0,8}[:=]\s{0,8}["']?)((?:basic|bearer|digest|token|sharedkey|negotiate)\s{1,8})?([^\s"',;]+)/gi;

function maskPair(
  _all: string,
  key: string | undefined,
  doubleQuoted: string | undefined,
  singleQuoted: string | undefined,
  bare: string | undefined,
  jsonKey: string | undefined,
  jsonValue: string | undefined,
): string {
  if (jsonKey !== undefined) return jsonValue === "" ? `${jsonKey}"` : `${jsonKey}***"`;
  if (doubleQuoted !== undefined) return `${key}"***"`;
  if (singleQuoted !== undefined) return `${key}'***'`;
  return bare === undefined ? _all : `${key}***`;
}

/**
 * Removes credentials and terminal control sequences from text meant for a log, an error, a
 * report or a notification. Idempotent, UTF-8 safe, linear in the text length.
 *
 * @param text Any text.
 * @returns The text with `scheme://REDACTED@`, credential values and long registered secrets as
 *   `***`, and no control bytes.
 *
 * @example
 * ```ts
 * import { redact } from "./redact.ts";
 * const out = redact("postgresql://app:p@ss@db:5432/x failed; password=hunter2");
 * if (out !== "postgresql://REDACTED@db:5432/x failed; password=***") throw new Error(out);
 * ```
 */
export function redact(text: string): string {
  let out = text.replace(escapeSequence, "").replace(controlBytes, "");
  out = redactUserinfo(out);
  // Known secrets before the pattern rules, which would otherwise cut a registered value (a SAS
  // token holding `sig=`) so that it no longer matches whole.
  out = maskLongSecrets(out);
  out = out.replace(credentialPair, maskPair);
  return out.replace(
    authorization,
    (_m, head: string, scheme: string | undefined) => `${head}${scheme ?? ""}***`,
  );
}
