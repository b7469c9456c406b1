/**
 * Maps PostgreSQL server errors (SQLSTATE) and socket failures to rivet error classes. One place,
 * so the retry classifier sees the same codes whichever statement failed.
 *
 * @module
 */
import { ConfigError, PermanentError, type RivetError, TransientError } from "../../core/errors.ts";
import { ONLY_READS_HINT } from "../_server_text.ts";
import type { PgErrorFields } from "./_messages.ts";

const DOCTOR_HINT =
  "check that the server is running and that host and port are right and reachable from here, then retry";

/** A transient PostgreSQL failure that keeps its SQLSTATE for the retry classifier. */
export class PgTransientError extends TransientError {
  /** SQLSTATE, or undefined for socket-level failures. */
  readonly sqlstate: string | undefined;
  /**
   * @param message What failed.
   * @param options Code, hint, cause and SQLSTATE.
   */
  constructor(
    message: string,
    options: { code: string; hint?: string; cause?: unknown; sqlstate?: string },
  ) {
    super(message, options);
    this.name = "TransientError";
    this.sqlstate = options.sqlstate;
  }
}

/** A permanent PostgreSQL failure that keeps its SQLSTATE. */
export class PgPermanentError extends PermanentError {
  /** SQLSTATE of the server error. */
  readonly sqlstate: string | undefined;
  /**
   * @param message What failed.
   * @param options Code, hint, cause and SQLSTATE.
   */
  constructor(
    message: string,
    options: { code: string; hint?: string; cause?: unknown; sqlstate?: string },
  ) {
    super(message, options);
    this.name = "PermanentError";
    this.sqlstate = options.sqlstate;
  }
}

/** Context that makes messages name what failed. */
export interface PgErrorContext {
  /** Login role, for auth failures. */
  readonly user?: string;
  /** `host:port`. */
  readonly endpoint?: string;
}

function serverText(fields: PgErrorFields): string {
  let text = fields.message;
  if (fields.detail) text += ` (${fields.detail})`;
  return text;
}

/**
 * Turns a server ErrorResponse into the rivet error a user can act on.
 *
 * @param fields Parsed ErrorResponse.
 * @param context Role and endpoint for the message.
 * @returns A TransientError or PermanentError subclass carrying `sqlstate`.
 *
 * @example
 * ```ts
 * import { classifyPgError } from "./_errors.ts";
 * const e = classifyPgError({ severity: "ERROR", code: "40001", message: "could not serialize" });
 * if (e.exitCode !== 2) throw new Error("serialization failures are transient");
 * ```
 */
export function classifyPgError(fields: PgErrorFields, context: PgErrorContext = {}): RivetError {
  const s = fields.code;
  const where = context.endpoint ? ` on ${context.endpoint}` : "";
  const hint = fields.hint;
  const common = { sqlstate: s, ...(hint === undefined ? {} : { hint }) };
  if (s.startsWith("28")) {
    return new PgPermanentError(
      `Authentication failed for user '${context.user ?? "?"}'${where}: check the password, ` +
        "the role and pg_hba.conf",
      { code: "source.auth_failed", sqlstate: s },
    );
  }
  if (s === "57014") {
    return new PgPermanentError(
      `The query was cancelled by statement_timeout${where} (${fields.message}): raise ` +
        "tuning.statement_timeout_s or narrow the query",
      { code: "source.statement_timeout", ...common },
    );
  }
  if (
    s.startsWith("08") || s === "57P01" || s === "57P02" || s === "57P03" || s.startsWith("53") ||
    s === "40001" || s === "40P01" || s === "55P03"
  ) {
    return new PgTransientError(
      `PostgreSQL reported a transient failure${where}: ${serverText(fields)} [${s}]; retry later`,
      { code: "source.transient", ...common },
    );
  }
  if (s === "25006" || (s === "0A000" && /data-modifying/i.test(fields.message))) {
    // 25006: a write inside rivet's READ ONLY transaction (e.g. a function called by the query);
    // 0A000: a data-modifying WITH, which a cursor refuses before anything runs.
    const context = fields.where ? ` (in ${fields.where.replace(/\s+/g, " ")})` : "";
    return new PgPermanentError(
      `The query tried to change data and PostgreSQL refused it${where}: ` +
        `${serverText(fields)}${context}`,
      { code: "source.read_only", sqlstate: s, hint: ONLY_READS_HINT },
    );
  }
  if (s === "42501") {
    return new PgPermanentError(
      `Permission denied${where}: ${serverText(fields)}; grant SELECT on that object to the ` +
        "export role",
      { code: "source.permission_denied", ...common },
    );
  }
  if (s === "42P01" || s === "42703" || s === "3F000" || s === "42883") {
    return new PgPermanentError(
      `${
        capitalize(serverText(fields))
      }${where}: check the table, column or schema name in the query`,
      { code: "source.undefined_object", ...common },
    );
  }
  if (s === "42601") {
    const pos = fields.position ? ` at character ${fields.position}` : "";
    return new PgPermanentError(
      `SQL syntax error${pos}${where}: ${serverText(fields)}; fix the query`,
      { code: "source.syntax_error", ...common },
    );
  }
  return new PgPermanentError(
    `PostgreSQL error${where}: ${serverText(fields)} [${s}]`,
    { code: "source.query_failed", ...common },
  );
}

function capitalize(text: string): string {
  return text.length === 0 ? text : text[0]!.toUpperCase() + text.slice(1);
}

/**
 * Turns a failure to dial into a transient `source.connect_failed`, never echoing credentials.
 *
 * @param error What `Deno.connect` threw.
 * @param endpoint `host:port`.
 * @returns The rivet error.
 */
export function connectFailed(error: unknown, endpoint: string): RivetError {
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    return new ConfigError(
      `Cannot connect to PostgreSQL at ${endpoint}: network permission denied; run with ` +
        `--allow-net=${endpoint}`,
      { code: "source.net_permission", cause: error },
    );
  }
  const what = error instanceof Deno.errors.ConnectionRefused
    ? "connection refused"
    : error instanceof Deno.errors.TimedOut
    ? "timed out"
    : error instanceof Error
    ? error.message
    : String(error);
  // A refused connection gets its own code: nothing listens there, so retrying at once is
  // pointless and the engine fails fast (exit 2) at the start of a run, as the Rust tool does.
  const refused = error instanceof Deno.errors.ConnectionRefused;
  return new PgTransientError(`Cannot connect to PostgreSQL at ${endpoint}: ${what}`, {
    code: refused ? "source.connection_refused" : "source.connect_failed",
    hint: DOCTOR_HINT,
    cause: error,
  });
}

/**
 * A connection that broke mid-conversation (EOF, reset, broken pipe).
 *
 * @param endpoint `host:port`.
 * @param cause What the socket threw, if anything.
 * @returns A transient `source.connection_lost`.
 */
export function connectionLost(endpoint: string, cause?: unknown): RivetError {
  const what = cause instanceof Error ? `: ${cause.message}` : "";
  return new PgTransientError(
    `Lost the connection to PostgreSQL at ${endpoint}${what}`,
    { code: "source.connection_lost", hint: DOCTOR_HINT, cause },
  );
}
