/**
 * The error classes of a database server's failures, shared by the MySQL and SQL Server sources:
 * permanent or transient, keeping the server's error number (`errno`, which also crosses worker
 * and process boundaries in `ErrorInfo`) and the driver's own code. Also the one hint for
 * failures to reach a server.
 *
 * Layer: sources. Imports core/ only.
 *
 * @module
 */
import { ConfigError, PermanentError, TransientError } from "../core/errors.ts";

/** The hint of every failure to reach or keep a connection. */
export const CONNECT_HINT =
  "check that the server is running and that host and port are right and reachable from here, then retry";

/** Options of the server error classes. */
export interface ServerErrorOptions {
  readonly code: string;
  readonly hint?: string;
  readonly cause?: unknown;
  /** The server's error number (MySQL 1205, SQL Server 1205, …). */
  readonly errno?: number;
  /** The driver's or socket's code (`ECONNRESET`, `ESOCKET`, …). */
  readonly driverCode?: string;
}

/** A retryable server failure that keeps its error number for the retry classifier. */
export class ServerTransientError extends TransientError {
  /** Server error number, or undefined for socket-level failures. */
  readonly errno: number | undefined;
  /** Driver or socket error code. */
  readonly driverCode: string | undefined;
  /**
   * @param message What failed.
   * @param options Code, hint, cause, server error number and driver code.
   */
  constructor(message: string, options: ServerErrorOptions) {
    super(message, options);
    this.name = "TransientError";
    this.errno = options.errno;
    this.driverCode = options.driverCode;
  }
}

/** A server failure a retry cannot fix. */
export class ServerPermanentError extends PermanentError {
  /** Server error number. */
  readonly errno: number | undefined;
  /**
   * @param message What failed.
   * @param options Code, hint, cause and server error number.
   */
  constructor(message: string, options: Omit<ServerErrorOptions, "driverCode">) {
    super(message, options);
    this.name = "PermanentError";
    this.errno = options.errno;
  }
}

/** Node socket error codes that a retry may cure (the network, DNS, a reset connection). */
export const SOCKET_ERROR_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ECONNABORTED",
]);

/** TLS text of a server certificate issued for another host name. */
const HOST_MISMATCH = /does not match certificate|altnames|cert's CN|Hostname\/IP does not match/i;

/**
 * The error of a server certificate the TLS handshake rejected: a config problem with the fix.
 *
 * @param server How the message names the server (`MySQL server`, `SQL Server`).
 * @param text The TLS error text (scrubbed).
 * @param where ` on host:port`, or empty.
 * @param cause The driver's error.
 * @param alternative A further way out, appended to the fix of a rejected chain.
 * @returns `source.tls_verify_failed`.
 */
export function certificateRejected(
  server: string,
  text: string,
  where: string,
  cause: unknown,
  alternative = "",
): ConfigError {
  if (HOST_MISMATCH.test(text)) {
    return new ConfigError(
      `TLS certificate of the ${server}${where} is not valid for that host name: ${text}; ` +
        "connect with a host name the certificate was issued for, or use source.tls.mode: " +
        "verify-ca (chain only, with source.tls.ca_file)",
      { code: "source.tls_verify_failed", cause },
    );
  }
  return new ConfigError(
    `TLS certificate of the ${server}${where} was rejected: ${text}; set source.tls.ca_file to ` +
      `the CA certificate (PEM) that signed the server certificate${alternative}`,
    { code: "source.tls_verify_failed", cause },
  );
}
