/**
 * Test support (TDS test server): PostgreSQL errors as the SQL Server errors a client would see
 * for the same fault (number, class and message text), so error classification is tested
 * against SQL Server's numbers.
 *
 * @module
 */
import type { ServerMessage } from "./tokens.ts";

/** A PostgreSQL error as postgres.js raises it. */
interface PgError {
  readonly code?: string;
  readonly message?: string;
}

const quotedName = (message: string) => /"([^"]*)"/.exec(message)?.[1] ?? "";

/** The SQL Server error for a PostgreSQL error (or a translator/parser failure). */
export function sqlServerError(
  err: unknown,
  ctx: { database: string; spid: number },
): ServerMessage {
  if (err instanceof SyntaxError) {
    const message = /^(Incorrect syntax|Must declare|Unclosed|Column, parameter)/.test(err.message)
      ? err.message
      : `Incorrect syntax: ${err.message}`;
    return { number: /^Must declare/.test(message) ? 137 : 102, class: 15, state: 1, message };
  }
  const e = err as PgError;
  const message = e.message ?? String(err);
  switch (e.code) {
    case "42601": {
      const near = /at or near "([^"]*)"/.exec(message)?.[1] ?? "";
      return { number: 102, class: 15, message: `Incorrect syntax near '${near}'.` };
    }
    case "42P01":
      return {
        number: 208,
        class: 16,
        message: `Invalid object name '${quotedName(message).replace(/^dbo\./, "")}'.`,
      };
    case "42703":
      return {
        number: 207,
        class: 16,
        message: `Invalid column name '${quotedName(message).replace(/^.*\./, "")}'.`,
      };
    case "42501": {
      const object = /for (?:table|view|relation) (\S+)/.exec(message)?.[1] ?? "";
      return {
        number: 229,
        class: 14,
        message:
          `The SELECT permission was denied on the object '${object}', database '${ctx.database}', schema 'dbo'.`,
      };
    }
    case "42883": {
      const fn = /function (\w+)\(/.exec(message)?.[1] ?? "";
      return {
        number: 195,
        class: 15,
        message: `'${fn}' is not a recognized built-in function name.`,
      };
    }
    case "55P03":
      return {
        number: 1222,
        class: 16,
        state: 56,
        message: "Lock request time out period exceeded.",
      };
    case "40P01":
      return {
        number: 1205,
        class: 13,
        state: 51,
        message:
          `Transaction (Process ID ${ctx.spid}) was deadlocked on lock resources with another ` +
          "process and has been chosen as the deadlock victim. Rerun the transaction.",
      };
    case "22012":
      return { number: 8134, class: 16, message: "Divide by zero error encountered." };
    case "23505":
      return {
        number: 2627,
        class: 14,
        message: `Violation of UNIQUE KEY constraint. Cannot insert duplicate key. ${message}`,
      };
    case "57014":
      return { number: 3617, class: 25, message: "The query was canceled." };
    case "22003":
      return { number: 8115, class: 16, message: `Arithmetic overflow error. ${message}` };
    default:
      return { number: 50000, class: 16, message };
  }
}
