/**
 * Connecting to SQL Server with npm:tedious: the driver config from the resolved connection and
 * `source.tls`, the login, and small helpers that run a statement and collect its (small) result.
 *
 * TLS (`source.tls`; the config layer already applied the TLS-or-loopback policy):
 * - no `tls:` block: a remote host is encrypted with full certificate verification, as SQL
 *   Server's own drivers do by default; a loopback host is plaintext unless the URL says
 *   `encrypt=true`. URL parameters `encrypt` and `trust_server_certificate` refine this.
 * - `mode: disable` → plaintext; `require` → encrypted, certificate not verified;
 *   `verify-ca` / `verify-full` → encrypted and verified, `ca_file` as the trust root;
 *   `accept_invalid_certs` → not verified. tedious checks the host name whenever it verifies.
 *
 * @module
 */
import { Connection, type ConnectionConfiguration, Request } from "tedious";
import type { ConnectionInfo } from "../../core/source.ts";
import type { TlsMode, TlsSpec } from "../../core/spec.ts";
import { ConfigError } from "../../core/errors.ts";
import { isLoopbackHost } from "../../_util/loopback.ts";
import { TRUST_SERVER_CERTIFICATE, urlBoolean } from "../../_util/url_params.ts";
import { readCaFile } from "../_ca_file.ts";
import { classifyMssqlError, type MssqlErrorContext } from "./_errors.ts";

/** A tedious connection. */
export type MssqlConnection = Connection;

/** What {@linkcode mssqlConfig} resolved: the driver config and names for messages. */
export interface MssqlConfig {
  readonly driver: ConnectionConfiguration;
  readonly errors: MssqlErrorContext;
}

/** Effective TLS: encrypt or not, and whether the certificate is verified. */
export interface MssqlTls {
  readonly encrypt: boolean;
  readonly trustServerCertificate: boolean;
  /** For messages: the mode in effect. */
  readonly mode: TlsMode;
}

/**
 * The TLS settings a connection uses (see the module comment).
 *
 * @param connection Host and URL parameters.
 * @param tls `source.tls`, undefined when none was written.
 * @returns Whether to encrypt and whether to trust any certificate.
 *
 * @example
 * ```ts
 * import { mssqlTls } from "./connect.ts";
 * const remote = { host: "db.example.com", port: 1433, user: "u", database: "d", params: {} };
 * if (!mssqlTls(remote, undefined).encrypt) throw new Error("encrypted by default");
 * ```
 */
export function mssqlTls(connection: ConnectionInfo, tls: TlsSpec | undefined): MssqlTls {
  const encryptParam = urlBoolean(connection.params, "encrypt");
  const trustParam = urlBoolean(connection.params, ...TRUST_SERVER_CERTIFICATE);
  if (tls === undefined) {
    const encrypt = encryptParam ?? !isLoopbackHost(connection.host);
    const trust = trustParam ?? false;
    return {
      encrypt,
      trustServerCertificate: trust,
      mode: !encrypt ? "disable" : trust ? "require" : "verify-full",
    };
  }
  if (tls.mode === "disable") {
    return { encrypt: false, trustServerCertificate: false, mode: "disable" };
  }
  const trust = tls.mode === "require" || tls.acceptInvalidCerts || (trustParam ?? false);
  return { encrypt: true, trustServerCertificate: trust, mode: tls.mode };
}

function positiveSeconds(params: Readonly<Record<string, string>>, key: string): number {
  const text = params[key];
  if (text === undefined) return 15;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || n > 3600) {
    throw new ConfigError(`source URL parameter ${key}=${text} is not a number of seconds`, {
      code: "config.invalid_url",
      hint: `write ${key}=<1..3600>`,
    });
  }
  return n;
}

/**
 * The tedious configuration of a connection. Reads `ca_file` when one is set.
 *
 * @param connection Host, port, login, database and URL parameters (`instance`, `encrypt`,
 *   `trust_server_certificate`, `application_name`, `application_intent`, `connect_timeout`).
 * @param tls `source.tls`.
 * @returns Driver config (holds the password) and message context.
 */
export async function mssqlConfig(
  connection: ConnectionInfo,
  tls: TlsSpec | undefined,
): Promise<MssqlConfig> {
  const effective = mssqlTls(connection, tls);
  const instance = connection.params.instance?.trim() || undefined;
  const ca = tls?.caFile && effective.encrypt && !effective.trustServerCertificate
    ? await readCaFile(tls.caFile)
    : undefined;
  const intent = connection.params.application_intent?.trim().toLowerCase();
  if (intent !== undefined && intent !== "readonly" && intent !== "readwrite") {
    throw new ConfigError(`source URL parameter application_intent=${intent} is not known`, {
      code: "config.invalid_url",
      hint: "write application_intent=readonly (or readwrite)",
    });
  }
  const driver: ConnectionConfiguration = {
    server: connection.host,
    authentication: {
      type: "default",
      options: { userName: connection.user, password: connection.password ?? "" },
    },
    options: {
      ...(instance === undefined ? { port: connection.port } : { instanceName: instance }),
      ...(connection.database === "" ? {} : { database: connection.database }),
      encrypt: effective.encrypt,
      trustServerCertificate: effective.trustServerCertificate,
      ...(ca === undefined ? {} : { cryptoCredentialsDetails: { ca } }),
      appName: connection.params.application_name ?? "rivet",
      readOnlyIntent: intent === "readonly",
      connectTimeout: positiveSeconds(connection.params, "connect_timeout") * 1000,
      // Statements are timed per request (`statement_timeout_s`); tedious' 15 s default would
      // cut every long export.
      requestTimeout: 0,
      cancelTimeout: 5000,
      rowCollectionOnRequestCompletion: false,
      useColumnNames: false,
      useUTC: true,
      lowerCaseGuids: true,
      enableArithAbort: true,
      // A dropped connection must fail the read, not be retried silently inside the driver.
      maxRetriesOnTransientErrors: 0,
    },
  };
  return {
    driver,
    errors: {
      user: connection.user,
      endpoint: instance === undefined
        ? `${connection.host}:${connection.port}`
        : `${connection.host}\\${instance}`,
      tlsMode: effective.mode,
      ...(connection.password === undefined ? {} : { password: connection.password }),
    },
  };
}

/**
 * Opens a connection and logs in.
 *
 * @param config From {@linkcode mssqlConfig}.
 * @param signal Aborts the attempt.
 * @returns A logged-in connection.
 */
export function connectMssql(config: MssqlConfig, signal?: AbortSignal): Promise<Connection> {
  signal?.throwIfAborted();
  return new Promise<Connection>((resolve, reject) => {
    const conn = new Connection(config.driver);
    let settled = false;
    const onAbort = () => {
      if (settled) return;
      settled = true;
      try {
        conn.close();
      } catch { /* not open */ }
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    // tedious emits `error` for failures outside a request; without a listener Node's emitter
    // would throw it as an uncaught exception.
    conn.on("error", () => {});
    conn.connect((error) => {
      signal?.removeEventListener("abort", onAbort);
      if (settled) return;
      settled = true;
      if (error) {
        try {
          conn.close();
        } catch { /* never opened */ }
        reject(classifyMssqlError(error, config.errors));
      } else {
        resolve(conn);
      }
    });
  });
}

/** Rows of a small result, each an array of values in column order. */
export type SmallRows = unknown[][];

/**
 * Runs one batch of T-SQL and collects every row of its results (for probes and session
 * statements only: the rows are kept in memory).
 *
 * @param conn An idle connection.
 * @param sql The batch.
 * @param errors Message context.
 * @returns The rows.
 */
export function runBatch(
  conn: Connection,
  sql: string,
  errors: MssqlErrorContext,
): Promise<SmallRows> {
  return new Promise<SmallRows>((resolve, reject) => {
    const rows: SmallRows = [];
    const request = new Request(sql, (error) => {
      if (error) reject(classifyMssqlError(error, errors));
      else resolve(rows);
    });
    request.on("row", (columns: { value: unknown }[]) => {
      rows.push(columns.map((c) => c.value));
    });
    conn.execSqlBatch(request);
  });
}
