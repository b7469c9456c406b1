/**
 * Maps MySQL/MariaDB server error numbers and mysql2/socket failures to rivet error classes
 * (permanent or transient; the table is in docs/run-guarantees.md, "Retries"). One place, so every
 * statement's failure is classified alike. An error number not listed here is permanent.
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

/** A transient MySQL failure that keeps its error number for the retry classifier. */
export class MysqlTransientError extends ServerTransientError {}

/** A MySQL failure that a retry cannot fix. */
export class MysqlPermanentError extends ServerPermanentError {}

/** Context that makes messages name what failed. */
export interface MysqlErrorContext {
  /** Login user, for auth failures. */
  readonly user?: string;
  /** `host:port`. */
  readonly endpoint?: string;
  /** Password to scrub from any server or driver text (defence in depth). */
  readonly password?: string;
  /** `source.tls.mode` of a connection that asked for TLS; absent for plaintext. */
  readonly tlsMode?: TlsMode;
}

/** The fields of a mysql2 error that classification reads. */
interface DriverError {
  readonly errno?: number;
  readonly code?: string;
  readonly sqlMessage?: string;
  readonly message?: string;
  readonly fatal?: boolean;
}

/** mysql2's own codes of a lost connection, besides the socket's. */
const TRANSIENT_SOCKET = new Set([
  ...SOCKET_ERROR_CODES,
  "PROTOCOL_CONNECTION_LOST",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "ERR_STREAM_DESTROYED",
]);

/** A failed TLS upgrade: a rejected certificate is a config problem, anything else transient. */
function tlsHandshakeError(text: string, where: string, cause: unknown): RivetError {
  if (
    /certificate|self.signed|issuer|verify|expired|unknown ?ca|CERT_|altnames|cert's CN/i.test(text)
  ) {
    return certificateRejected("MySQL server", text, where, cause);
  }
  return new MysqlTransientError(`TLS handshake with MySQL${where} failed: ${text}`, {
    code: "source.connect_failed",
    hint: CONNECT_HINT,
    driverCode: "HANDSHAKE_SSL_ERROR",
    cause,
  });
}

/**
 * Turns any error raised while talking to MySQL into the rivet error a user can act on.
 *
 * @param error What mysql2 (or the socket) raised.
 * @param context User, endpoint and password (scrubbed from texts) for the message.
 * @returns A MysqlTransientError or MysqlPermanentError (ConfigError for a network permission).
 *
 * @example
 * ```ts
 * import { classifyMysqlError } from "./_errors.ts";
 * const e = classifyMysqlError({ errno: 1213, code: "ER_LOCK_DEADLOCK", message: "Deadlock" });
 * if (e.exitCode !== 2) throw new Error("deadlocks are transient");
 * ```
 */
export function classifyMysqlError(error: unknown, context: MysqlErrorContext = {}): RivetError {
  if (error instanceof ConfigError || error instanceof TransientError) return error;
  if (error instanceof PermanentError) return error;
  const e = (typeof error === "object" && error !== null ? error : {}) as DriverError;
  const where = context.endpoint ? ` on ${context.endpoint}` : "";
  const raw = e.sqlMessage ?? e.message ?? String(error);
  const text = scrubServerText(raw, context.password);
  const errno = typeof e.errno === "number" ? e.errno : undefined;
  const code = typeof e.code === "string" ? e.code : undefined;
  const num = { ...(errno === undefined ? {} : { errno }), cause: error };
  if (
    code === "NotCapable" || code === "PermissionDenied" ||
    /NotCapable|Requires net access/.test(raw)
  ) {
    return new ConfigError(
      `Cannot connect to MySQL${where}: network permission denied; run with --allow-net`,
      { code: "source.net_permission", cause: error },
    );
  }
  if (code === "HANDSHAKE_NO_SSL_SUPPORT") {
    return new ConfigError(
      `The MySQL server${where} does not accept TLS but source.tls.mode is ` +
        `'${context.tlsMode ?? "require"}'; enable TLS on the server (ssl_cert, ssl_key) or set ` +
        "source.tls.mode: disable",
      { code: "source.tls_unavailable", cause: error },
    );
  }
  if (code === "HANDSHAKE_SSL_ERROR") return tlsHandshakeError(text, where, error);
  switch (errno) {
    case 1045:
      return new MysqlPermanentError(
        `Access denied for user '${context.user ?? "?"}'${where}: check the password and that ` +
          "the user may log in from this host" +
          (context.tlsMode === undefined
            ? "; if the account requires TLS (REQUIRE SSL), add a source.tls block " +
              "(tls: {mode: verify-full, ca_file: <CA PEM>})"
            : ""),
        { code: "source.auth_failed", errno },
      );
    case 1044:
    case 1142:
    case 1143:
    case 1227:
    case 1370:
      return new MysqlPermanentError(
        `Permission denied${where}: ${text} [${errno}]; grant SELECT on that object to the ` +
          "export user",
        { code: "source.permission_denied", ...num },
      );
    case 1049:
    case 1146:
    case 1054:
    case 1305:
      return new MysqlPermanentError(
        `${text}${where} [${errno}]: check the database, table or column name in the query`,
        { code: "source.undefined_object", ...num },
      );
    case 1064:
    case 1149:
      return new MysqlPermanentError(
        `SQL syntax error${where}: ${text} [${errno}]; fix the query`,
        {
          code: "source.syntax_error",
          ...num,
        },
      );
    case 1792:
      // A write inside rivet's READ ONLY transaction (e.g. a stored function called by the query,
      // or a locking read).
      return new MysqlPermanentError(
        `The query tried to change data and the server refused it${where}: ${text} [${errno}]`,
        { code: "source.read_only", hint: ONLY_READS_HINT, ...num },
      );
    case 3024:
    case 1969:
      return new MysqlPermanentError(
        `The query was stopped by the statement timeout${where} (${text}) [${errno}]: raise ` +
          "tuning.statement_timeout_s or narrow the query",
        { code: "source.statement_timeout", ...num },
      );
    case 1040:
    case 1053:
    case 1203:
      return new MysqlTransientError(
        `MySQL is busy or shutting down${where}: ${text} [${errno}]; retry later`,
        { code: "source.server_unavailable", hint: CONNECT_HINT, ...num },
      );
    case 1205:
    case 1213:
      return new MysqlTransientError(
        `MySQL reported a lock conflict${where}: ${text} [${errno}]; retry later`,
        { code: "source.transient", ...num },
      );
    case 2006:
    case 2013:
    case 1927:
    case 1317:
      // 1317 "Query execution was interrupted" here means someone else killed the query (our own
      // cancel swallows it); 1927 is MariaDB's "Connection was killed".
      return new MysqlTransientError(`Lost the connection to MySQL${where}: ${text} [${errno}]`, {
        code: "source.connection_lost",
        hint: CONNECT_HINT,
        ...num,
      });
  }
  if (code === "ECONNREFUSED") {
    // Nothing listens there: the engine fails fast on this code at the start of a run, as the
    // Rust tool does.
    return new MysqlTransientError(`Cannot connect to MySQL${where}: connection refused`, {
      code: "source.connection_refused",
      hint: CONNECT_HINT,
      driverCode: code,
      cause: error,
    });
  }
  if (code !== undefined && TRANSIENT_SOCKET.has(code)) {
    const lost = code === "PROTOCOL_CONNECTION_LOST" || code === "ECONNRESET" || code === "EPIPE" ||
      code === "ERR_STREAM_DESTROYED";
    return new MysqlTransientError(
      `${lost ? "Lost the connection to" : "Cannot connect to"} MySQL${where}: ${text} [${code}]`,
      {
        code: lost ? "source.connection_lost" : "source.connect_failed",
        hint: CONNECT_HINT,
        driverCode: code,
        cause: error,
      },
    );
  }
  if (errno === undefined && e.fatal === true) {
    return new MysqlTransientError(`Lost the connection to MySQL${where}: ${text}`, {
      code: "source.connection_lost",
      hint: CONNECT_HINT,
      ...(code === undefined ? {} : { driverCode: code }),
      cause: error,
    });
  }
  return new MysqlPermanentError(
    `MySQL error${where}: ${text}${errno === undefined ? "" : ` [${errno}]`}`,
    { code: "source.query_failed", ...num },
  );
}
