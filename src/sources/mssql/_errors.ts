/**
 * SQL Server and tedious failures → rivet's error classes, so the pipeline decides retry or stop
 * the same way for every source: a login failure or a missing object is permanent (exit 1) with
 * the fix; a deadlock victim, a lock timeout, a reset connection or an Azure SQL "database busy"
 * is transient (exit 2, retried).
 *
 * tedious reports two families: `ConnectionError` (`ELOGIN`, `ESOCKET`, `ETIMEOUT`, `EENCRYPT`,
 * `EINSTLOOKUP`, `ECLOSE`) while connecting, and `RequestError` (`EREQUEST` with the server's
 * error `number`, `ECANCEL`, `ETIMEOUT`, `ECLOSE`) while a statement runs.
 *
 * @module
 */
import { ConfigError, PermanentError, type RivetError, TransientError } from "../../core/errors.ts";
import {
  certificateRejected,
  CONNECT_HINT,
  ServerPermanentError,
  ServerTransientError,
  SOCKET_ERROR_CODES,
} from "../_server_errors.ts";
import type { TlsMode } from "../../core/spec.ts";
import { ONLY_READS_HINT, scrubServerText } from "../_server_text.ts";

/** A retryable SQL Server failure (`errno`: the server's error number, e.g. 1205). */
export class MssqlTransientError extends ServerTransientError {}

/** A SQL Server failure that a retry cannot fix. */
export class MssqlPermanentError extends ServerPermanentError {}

/** Names used in messages. */
export interface MssqlErrorContext {
  /** Login name, for authentication failures. */
  readonly user?: string;
  /** `host:port` or `host\instance`. */
  readonly endpoint?: string;
  /** Password to scrub from any server or driver text (defence in depth). */
  readonly password?: string;
  /** TLS mode in effect (`disable` for plaintext). */
  readonly tlsMode?: TlsMode;
}

interface DriverError {
  readonly number?: number;
  readonly code?: string;
  readonly message?: string;
  readonly cause?: unknown;
  readonly errors?: readonly unknown[];
}

/** Server error numbers that a retry may cure. */
const TRANSIENT_NUMBERS = new Map<number, string>([
  [1205, "SQL Server chose this session as a deadlock victim"],
  [1222, "the lock timeout (tuning.lock_timeout_s) expired waiting for a lock"],
  [3960, "a snapshot update conflict aborted the transaction"],
  [701, "the server ran out of memory for the query"],
  [8645, "the server timed out waiting for memory to run the query"],
  [6005, "SQL Server is shutting down"],
  [233, "the connection was closed by the server"],
  [10053, "the connection was aborted"],
  [10054, "the connection was reset by the server"],
  [10060, "a network timeout"],
  [64, "the network name is no longer available"],
  // Azure SQL: database moving, paused, throttled or at its session or worker limit.
  [40613, "the Azure SQL database is not currently available"],
  [40197, "the Azure SQL service failed to process the request"],
  [40501, "the Azure SQL service is busy"],
  [49918, "Azure SQL has not enough resources to process the request"],
  [49919, "Azure SQL is busy processing create or update requests"],
  [49920, "Azure SQL is busy with too many operations"],
  [4221, "the secondary replica is not ready for read-only access"],
  [10928, "the Azure SQL resource limit (sessions or workers) was reached"],
  [10929, "the Azure SQL resource limit (sessions or workers) was reached"],
  [976, "the database is not accessible on this replica yet"],
  [983, "the availability replica is not accessible"],
]);

const UNDEFINED_OBJECT = new Set([207, 208, 2812, 4121, 4104, 1088, 15151, 911, 4060]);
const PERMISSION = new Set([229, 230, 262, 297, 300, 916, 15247]);
const SYNTAX = new Set([102, 103, 105, 156, 170, 319, 1038, 8180, 4145, 8155, 8156, 1033]);

/** tedious' own codes, which wrap the socket error we look for. */
const TEDIOUS_CODES = new Set(["ESOCKET", "ELOGIN", "ETIMEOUT", "EREQUEST", "ECLOSE", "EENCRYPT"]);

/** The innermost Node-style error code of a chain (`ECONNREFUSED` inside an AggregateError). */
function causeCode(error: unknown, depth = 0): string | undefined {
  if (depth > 5 || typeof error !== "object" || error === null) return undefined;
  const e = error as DriverError;
  if (typeof e.code === "string" && /^E[A-Z]+$/.test(e.code) && !TEDIOUS_CODES.has(e.code)) {
    return e.code;
  }
  for (const inner of e.errors ?? []) {
    const found = causeCode(inner, depth + 1);
    if (found !== undefined) return found;
  }
  return causeCode(e.cause, depth + 1);
}

function allText(error: unknown, depth = 0): string {
  if (depth > 5 || typeof error !== "object" || error === null) return "";
  const e = error as DriverError;
  const inner = [...(e.errors ?? []), e.cause].map((x) => allText(x, depth + 1)).join(" ");
  return `${e.message ?? ""} ${inner}`;
}

/**
 * Classifies a tedious error (or anything thrown while reading SQL Server).
 *
 * @param error What was thrown.
 * @param context Names for the message.
 * @returns A rivet error: ConfigError, MssqlPermanentError or MssqlTransientError.
 *
 * @example
 * ```ts
 * import { classifyMssqlError } from "./_errors.ts";
 * const e = classifyMssqlError({ code: "EREQUEST", number: 1205, message: "deadlock" });
 * if (e.exitCode !== 2) throw new Error();
 * ```
 */
export function classifyMssqlError(error: unknown, context: MssqlErrorContext = {}): RivetError {
  if (error instanceof ConfigError || error instanceof TransientError) return error;
  if (error instanceof PermanentError) return error;
  const e = (typeof error === "object" && error !== null ? error : {}) as DriverError;
  const where = context.endpoint ? ` on ${context.endpoint}` : "";
  const raw = e.message ?? String(error);
  const text = scrubServerText(raw, context.password);
  const number = typeof e.number === "number" ? e.number : undefined;
  const code = typeof e.code === "string" ? e.code : undefined;
  const num = { ...(number === undefined ? {} : { errno: number }), cause: error };
  const everything = allText(error);
  if (/NotCapable|Requires net access|PermissionDenied/.test(everything)) {
    return new ConfigError(
      `Cannot connect to SQL Server${where}: network permission denied; run with --allow-net`,
      { code: "source.net_permission", cause: error },
    );
  }
  if (code === "ELOGIN" || number === 18456 || number === 18452 || number === 18488) {
    return new MssqlPermanentError(
      `Login failed for user '${context.user ?? "?"}'${where}: check the user name and password ` +
        "and that the login may connect to that database (SQL Server logs the exact reason " +
        "as error 18456 with a state number)",
      { code: "source.auth_failed", ...num },
    );
  }
  if (code === "EENCRYPT") {
    return new ConfigError(
      /requires encryption/i.test(raw)
        ? `The SQL Server${where} requires encryption but the source is set to plaintext; ` +
          "remove `tls: {mode: disable}` / encrypt=false"
        : `The SQL Server${where} does not offer encryption but the source requires TLS; enable ` +
          "TLS on the server or set source.tls.mode: disable (plaintext)",
      { code: "source.tls_unavailable", cause: error },
    );
  }
  if (
    /certificate|self[- ]signed|unable to verify|UNABLE_TO_|CERT_|DEPTH_ZERO/i.test(everything) &&
    (code === "ESOCKET" || code === undefined)
  ) {
    return certificateRejected(
      "SQL Server",
      scrubServerText(everything.trim(), context.password),
      where,
      error,
      ", or `tls: {mode: require}` to encrypt without verifying it",
    );
  }
  if (code === "EINSTLOOKUP") {
    return new MssqlTransientError(
      `Cannot resolve the SQL Server named instance${where}: ${text}; check the instance name ` +
        "and that SQL Server Browser answers on UDP 1434, or give the instance's port instead",
      { code: "source.connect_failed", hint: CONNECT_HINT, driverCode: code, cause: error },
    );
  }
  if (number !== undefined) {
    const transient = TRANSIENT_NUMBERS.get(number);
    if (transient !== undefined) {
      return new MssqlTransientError(
        `SQL Server${where}: ${transient}: ${text} [${number}]; retry later`,
        {
          code: number === 1205 || number === 1222 || number === 3960
            ? "source.transient"
            : "source.server_unavailable",
          hint: CONNECT_HINT,
          ...num,
        },
      );
    }
    if (number === 3952) {
      return new MssqlPermanentError(
        `Snapshot isolation is not allowed in this database${where}: ${text} [${number}]`,
        {
          code: "source.query_failed",
          hint: "ALTER DATABASE <db> SET ALLOW_SNAPSHOT_ISOLATION ON, or let rivet fall back to " +
            "READ COMMITTED",
          ...num,
        },
      );
    }
    if (UNDEFINED_OBJECT.has(number)) {
      return new MssqlPermanentError(
        `${text}${where} [${number}]: check the database, schema, table or column name in the ` +
          "query",
        { code: "source.undefined_object", ...num },
      );
    }
    if (PERMISSION.has(number)) {
      return new MssqlPermanentError(
        `Permission denied${where}: ${text} [${number}]; GRANT SELECT on that object to the ` +
          "export user",
        { code: "source.permission_denied", ...num },
      );
    }
    if (SYNTAX.has(number)) {
      return new MssqlPermanentError(
        `SQL syntax error${where}: ${text} [${number}]; fix the query`,
        {
          code: "source.syntax_error",
          ...num,
        },
      );
    }
    if (number === 3906 || number === 3908 || number === 262) {
      return new MssqlPermanentError(
        `The query tried to change data and the server refused it${where}: ${text} [${number}]`,
        { code: "source.read_only", hint: ONLY_READS_HINT, ...num },
      );
    }
    return new MssqlPermanentError(`SQL Server${where} refused the query: ${text} [${number}]`, {
      code: "source.query_failed",
      ...num,
    });
  }
  if (code === "ETIMEOUT" && /Timeout: Request failed to complete/i.test(raw)) {
    return new MssqlPermanentError(
      `The query was stopped by the statement timeout${where} (${text}): raise ` +
        "tuning.statement_timeout_s or narrow the query",
      { code: "source.statement_timeout", cause: error },
    );
  }
  const inner = causeCode(error);
  if (inner === "ECONNREFUSED") {
    return new MssqlTransientError(`Cannot connect to SQL Server${where}: connection refused`, {
      code: "source.connection_refused",
      hint: CONNECT_HINT,
      driverCode: inner,
      cause: error,
    });
  }
  if (code === "ETIMEOUT") {
    return new MssqlTransientError(`Cannot connect to SQL Server${where}: ${text} [ETIMEOUT]`, {
      code: "source.connect_failed",
      hint: CONNECT_HINT,
      driverCode: code,
      cause: error,
    });
  }
  if (
    code === "ESOCKET" || code === "ECLOSE" ||
    (inner !== undefined && SOCKET_ERROR_CODES.has(inner))
  ) {
    const lost = code === "ECLOSE" || inner === "ECONNRESET" || inner === "EPIPE" ||
      /closed|reset|ended|lost/i.test(raw);
    return new MssqlTransientError(
      `${lost ? "Lost the connection to" : "Cannot connect to"} SQL Server${where}: ${text}`,
      {
        code: lost ? "source.connection_lost" : "source.connect_failed",
        hint: CONNECT_HINT,
        ...(inner ?? code ? { driverCode: (inner ?? code)! } : {}),
        cause: error,
      },
    );
  }
  return new MssqlPermanentError(`SQL Server${where}: ${text}`, {
    code: "source.query_failed",
    cause: error,
  });
}
