/**
 * Shared by both database sources: bounding the texts a server sends back in its errors, and the
 * "rivet only reads" refusal of a query that is not a read.
 *
 * Layer: sources. Imports core/ and _util/ only.
 *
 * A server error may quote the statement, a value or a token of it (PostgreSQL's `invalid input
 * syntax for type integer: "<the whole literal>"`), so its text is as long as the query. Such a
 * text is cut to {@linkcode MAX_SERVER_TEXT} characters where the server error becomes a rivet
 * error, so that no later step (redaction, terminal sanitising, the run report, the state
 * journal) ever handles hundreds of kilobytes per error.
 *
 * @module
 */
import { PermanentError } from "../core/errors.ts";
import { headOf } from "../_util/text.ts";

/** Characters kept of one server text field (message, detail, hint, context). */
export const MAX_SERVER_TEXT = 4096;

/** The remedy of a query that tries to change data. */
export const ONLY_READS_HINT = "rivet only reads; use a SELECT";

/**
 * Cuts a server text to `max` characters and says how much was cut.
 *
 * @param text Text received from the server or the driver.
 * @param max Characters to keep.
 * @returns `text` itself when short enough, else its head and `… [truncated N characters]`.
 *
 * @example
 * ```ts
 * import { clipServerText } from "./_server_text.ts";
 * const out = clipServerText("x".repeat(10_000), 10);
 * if (out !== "xxxxxxxxxx… [truncated 9,990 characters]") throw new Error(out);
 * ```
 */
export function clipServerText(text: string, max: number = MAX_SERVER_TEXT): string {
  if (text.length <= max) return text;
  const { head, cut } = headOf(text, max);
  return `${head}… [truncated ${cut.toLocaleString("en-US")} characters]`;
}

/**
 * The first keyword of a statement, after blanks and comments (`-- …`, `# …`, `/* … *\/`).
 *
 * @param sql A statement.
 * @returns The keyword, upper case and at most 32 characters, or undefined when it does not start
 *   with a word (e.g. a parenthesis).
 */
export function firstKeyword(sql: string): string | undefined {
  const start = statementStart(sql);
  const m = /^[A-Za-z_]+/.exec(sql.slice(start, start + 33));
  return m ? m[0].slice(0, 32).toUpperCase() : undefined;
}

/**
 * Index of the first character of a statement that is not a blank or inside a comment.
 *
 * @param sql A statement.
 * @returns A UTF-16 index into `sql` (its length when there is nothing else).
 */
export function statementStart(sql: string): number {
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r" || c === "\f") {
      i++;
    } else if ((c === "-" && sql[i + 1] === "-") || c === "#") {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? n : end + 1;
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? n : end + 2;
    } else {
      break;
    }
  }
  return i;
}

/**
 * The write or DDL statement that rivet's own wrapping put in a FROM clause: chunked, incremental
 * and probe reads run `SELECT … FROM (<query>) AS _rivet…`, so a `query: DELETE …` reaches the
 * server as `FROM (DELETE …` and fails as a syntax error before anything runs. No read has a
 * subquery starting with these words, so the syntax error is really "not a SELECT".
 *
 * @param sql The statement that failed with a syntax error.
 * @returns The keyword, upper case, or undefined.
 */
export function wrappedWrite(sql: string): string | undefined {
  const m = WRAPPED_WRITE.exec(sql);
  return m ? m[1]!.toUpperCase() : undefined;
}

/** Why a wrapped write fails, for {@linkcode notASelectError}. */
export const WRAPPED_HOW = "rivet reads it as a subquery (`SELECT … FROM (<query>)`), which " +
  "the server cannot parse";

const WRAPPED_WRITE =
  /\bFROM\s*\(\s*(DELETE|UPDATE|INSERT|REPLACE|MERGE|CREATE|DROP|ALTER|TRUNCATE|RENAME|GRANT|REVOKE|CALL|SET|DO)\s/i;

/**
 * The refusal of a statement that returns no rows (DELETE, UPDATE, INSERT, DDL, CALL, SET …).
 *
 * @param engine `PostgreSQL` or `MySQL`, for the message.
 * @param sql The statement (only a keyword of it is quoted).
 * @param how What established it, e.g. "the server reports no result columns for it".
 * @param ran True when the statement did run (inside the read-only transaction, then rolled
 *   back), false when it was refused before it ran.
 * @returns A permanent `source.not_a_select` error.
 */
export function notASelectError(
  engine: string,
  sql: string,
  how: string,
  ran = false,
): PermanentError {
  const keyword = wrappedWrite(sql) ?? firstKeyword(sql);
  const what = ran
    ? `it ran inside rivet's read-only ${engine} transaction, which was rolled back`
    : `nothing was run on ${engine}`;
  return new PermanentError(
    `The query is not a read${keyword && keyword !== "SELECT" ? ` (${keyword})` : ""}: ${how}; ` +
      what,
    { code: "source.not_a_select", hint: ONLY_READS_HINT },
  );
}

/**
 * Server or driver text made safe for a message: the password masked, control characters
 * replaced (messages stay printable on one line), then cut to a few KB (after the masking, so a
 * cut never leaves half a password).
 *
 * @param text The server's or driver's text.
 * @param password The connection's password, if any.
 * @returns Printable text.
 *
 * @example
 * ```ts
 * import { scrubServerText } from "./_server_text.ts";
 * if (scrubServerText("bad pw hunter2\x1b[31m", "hunter2") !== "bad pw ***?[31m") throw new Error();
 * ```
 */
export function scrubServerText(text: string, password: string | undefined): string {
  let out = text;
  if (password && password.length > 0) out = out.split(password).join("***");
  // deno-lint-ignore no-control-regex
  return clipServerText(out.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "?").trimEnd());
}
