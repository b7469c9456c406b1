/**
 * Dials MySQL/MariaDB through npm:mysql2 (one connection, not a pool). The only file of the MySQL
 * source that calls `Deno.*` (it reads `ca_file`).
 *
 * TLS semantics (`source.tls`; absent = plaintext, config already refused remote hosts without it):
 * - `disable`: plaintext.
 * - `require`, `verify-ca`: TLS with the certificate chain verified against `ca_file` (or the
 *   system roots) but not the host name. Stricter than MySQL's `REQUIRED`, which verifies nothing.
 * - `verify-full`: chain and host name verified, before the credentials are sent.
 * - `accept_invalid_hostnames`: skips the host name check (what `verify-ca` does); the chain is
 *   still verified. Config warns "TLS is not enforced" for a remote host.
 * - `accept_invalid_certs`: refused with a ConfigError. Switching certificate verification off is
 *   not something rivet does silently for MySQL; point `ca_file` at the server's CA instead.
 *
 * The host name check is ours, not mysql2's: mysql2 3.24's `ssl.verifyIdentity` checks an IP host
 * against the name `localhost` (it passes no `servername` for IPs and Node then defaults to
 * `localhost`), and ignores `ssl.checkServerIdentity`. So {@linkcode connectMysql} wraps the
 * connection's `startTLS` and runs `tls.checkServerIdentity(host, certificate)` once the handshake
 * is done and before mysql2 sends the login packet.
 *
 * @module
 */
import mysql from "mysql2";
import { checkServerIdentity, type PeerCertificate } from "node:tls";
import { ConfigError } from "../../core/errors.ts";
import { readCaFile } from "../_ca_file.ts";
import type { ConnectionInfo } from "../../core/source.ts";
import type { TlsMode, TlsSpec } from "../../core/spec.ts";
import { classifyMysqlError, type MysqlErrorContext } from "./_errors.ts";

/** The mysql2 connection (callback API) as this source uses it, private fields included. */
export interface MysqlConnection {
  readonly threadId: number | null;
  readonly _handshakePacket?: { readonly serverVersion?: string };
  /** The socket; a TLS socket once `startTLS` has upgraded it. */
  readonly stream?: unknown;
  /** Upgrades the socket to TLS (mysql2 internal, called by the handshake command). */
  startTLS?: (onSecure: (err?: Error) => void) => void;
  execute(options: Record<string, unknown>): MysqlCommand;
  prepare(
    options: Record<string, unknown>,
    cb: (err: unknown, statement: { readonly columns?: readonly unknown[] }) => void,
  ): unknown;
  query(options: Record<string, unknown>, cb: (err: unknown, rows: unknown) => void): unknown;
  unprepare(sql: string): unknown;
  pause(): void;
  resume(): void;
  destroy(): void;
  end(cb?: (err?: unknown) => void): void;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  removeListener(event: string, listener: (...args: unknown[]) => void): unknown;
}

/** A running mysql2 command (Execute), an EventEmitter. */
export interface MysqlCommand {
  on(event: string, listener: (...args: never[]) => void): MysqlCommand;
  /** Overridden so mysql2 hands us each row packet instead of parsing it. */
  buildParserFromFields: unknown;
}

/**
 * Connection settings, ready for mysql2; holds the password, never log it. TLS settings of rivet's
 * own (mode, host to verify) ride under a symbol key, which mysql2's option check does not see.
 */
export type MysqlConfig = Readonly<Record<string, unknown>>;

/** What rivet checks itself on a TLS connection (see the module comment). */
interface RivetTls {
  readonly mode: TlsMode;
  /** Host name or IP the server certificate must be valid for; absent = chain only. */
  readonly verifyHost?: string;
}

const RIVET_TLS: unique symbol = Symbol("rivet.mysql.tls");

function rivetTls(config: MysqlConfig): RivetTls | undefined {
  return (config as { [RIVET_TLS]?: RivetTls })[RIVET_TLS];
}

/**
 * Checks the TLS options this source can honour, before any socket is opened.
 *
 * @param tls `source.tls`.
 */
export function checkTlsSupport(tls: TlsSpec | undefined): void {
  if (tls === undefined || tls.mode === "disable") return;
  if (tls.acceptInvalidCerts) {
    throw new ConfigError(
      "source.tls.accept_invalid_certs is not supported for MySQL: rivet does not switch " +
        "certificate verification off; set source.tls.ca_file to the server's CA certificate instead",
      { code: "config.not_supported" },
    );
  }
}

/**
 * Builds the mysql2 connection options: binary-safe settings (no value parsing by the driver is
 * relied on), UTC session, utf8mb4, TLS from `source.tls`.
 *
 * @param connection Host, port, user, password, database, URL parameters.
 * @param tls `source.tls`.
 * @returns Options for `mysql.createConnection`.
 */
export async function mysqlConfig(
  connection: ConnectionInfo,
  tls: TlsSpec | undefined,
): Promise<MysqlConfig> {
  checkTlsSupport(tls);
  const timeoutS = Number(connection.params["connect_timeout"] ?? "0");
  let ssl: Record<string, unknown> | undefined;
  let own: RivetTls | undefined;
  if (tls !== undefined && tls.mode !== "disable") {
    const ca = tls.caFile ? await readCaFile(tls.caFile) : undefined;
    const checkHost = tls.mode === "verify-full" && !tls.acceptInvalidHostnames;
    // verifyIdentity stays off: mysql2 would check the wrong name for IP hosts (module comment).
    ssl = { rejectUnauthorized: true, verifyIdentity: false, ...(ca ? { ca } : {}) };
    own = { mode: tls.mode, ...(checkHost ? { verifyHost: connection.host } : {}) };
  }
  const config: Record<string | symbol, unknown> = {
    host: connection.host,
    port: connection.port,
    user: connection.user,
    ...(connection.password === undefined ? {} : { password: connection.password }),
    ...(connection.database ? { database: connection.database } : {}),
    charset: "UTF8MB4_GENERAL_CI",
    timezone: "Z",
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    decimalNumbers: false,
    jsonStrings: true,
    rowsAsArray: true,
    multipleStatements: false,
    connectTimeout: Number.isFinite(timeoutS) && timeoutS > 0 ? timeoutS * 1000 : 10_000,
    ...(ssl ? { ssl } : {}),
  };
  if (own) config[RIVET_TLS] = own;
  return config;
}

function peerCertificate(stream: unknown): PeerCertificate | undefined {
  const socket = stream as { getPeerCertificate?: (detailed?: boolean) => PeerCertificate };
  if (typeof socket?.getPeerCertificate !== "function") return undefined;
  const cert = socket.getPeerCertificate(true);
  return cert && Object.keys(cert).length > 0 ? cert : undefined;
}

/**
 * Makes the TLS upgrade of `conn` fail unless the server certificate is valid for `host`. Runs
 * between the handshake and mysql2's login packet, so no credential reaches a server with a
 * certificate for another name.
 */
function enforceHostName(conn: MysqlConnection, host: string): void {
  const startTls = conn.startTLS;
  if (typeof startTls !== "function") {
    // Fail closed: without the hook the name would go unchecked (mysql2 bump, ADR-0007).
    throw new Error("mysql2 has no Connection.startTLS: the TLS host name cannot be verified");
  }
  conn.startTLS = (onSecure) => {
    startTls.call(conn, (err) => {
      if (err) return onSecure(err);
      const cert = peerCertificate(conn.stream);
      const mismatch = cert === undefined
        ? new Error(`the server sent no certificate to check against '${host}'`)
        : checkServerIdentity(host, cert);
      onSecure(mismatch ?? undefined);
    });
  };
}

/**
 * Opens one connection and waits for the handshake.
 *
 * @param config From {@linkcode mysqlConfig}.
 * @param context Names for error messages (and the password to scrub).
 * @returns The connected mysql2 connection.
 */
export function connectMysql(
  config: MysqlConfig,
  context: MysqlErrorContext,
): Promise<MysqlConnection> {
  const own = rivetTls(config);
  const errors: MysqlErrorContext = own ? { ...context, tlsMode: own.mode } : context;
  return new Promise((resolve, reject) => {
    let conn: MysqlConnection | undefined;
    try {
      conn = mysql.createConnection(config as never) as unknown as MysqlConnection;
      // The handshake starts on a later tick (socket connect), so the hook is in place in time.
      if (own?.verifyHost !== undefined) enforceHostName(conn, own.verifyHost);
    } catch (error) {
      try {
        conn?.destroy();
      } catch { /* not open */ }
      reject(classifyMysqlError(error, errors));
      return;
    }
    const opened = conn;
    const onError = (error: unknown) => {
      opened.removeListener("connect", onConnect);
      try {
        opened.destroy();
      } catch { /* already closed */ }
      reject(classifyMysqlError(error, errors));
    };
    const onConnect = () => {
      opened.removeListener("error", onError);
      resolve(opened);
    };
    opened.once("error", onError);
    opened.once("connect", onConnect);
  });
}

/**
 * Runs one statement that returns no rows (or whose rows are ignored).
 *
 * @param conn An idle connection.
 * @param sql The statement.
 * @returns The rows (arrays of strings), when any.
 */
export function runStatement(conn: MysqlConnection, sql: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    conn.query({ sql }, (err, rows) => (err ? reject(err) : resolve(rows)));
  });
}

/**
 * Prepares a statement without running it, and tells how many result columns the server reports
 * for it: 0 for anything that returns no rows (DELETE, UPDATE, INSERT, DDL, CALL, SET, …). mysql2
 * keeps the statement in its cache, so the `execute` that follows does not prepare it again.
 *
 * @param conn An idle connection.
 * @param sql The statement.
 * @returns Its number of result columns.
 */
export function prepareColumns(conn: MysqlConnection, sql: string): Promise<number> {
  return new Promise((resolve, reject) => {
    conn.prepare(
      { sql },
      (err, statement) => (err ? reject(err) : resolve(statement.columns?.length ?? 0)),
    );
  });
}

/**
 * Stops the statement running on another connection: `KILL QUERY <thread id>` from a second,
 * short-lived connection (the first one is busy streaming).
 *
 * @param config Same settings as the busy connection.
 * @param threadId Server thread id of the busy connection.
 */
export async function killQuery(config: MysqlConfig, threadId: number): Promise<void> {
  const conn = await connectMysql(config, {});
  try {
    await runStatement(conn, `KILL QUERY ${Math.trunc(threadId)}`);
  } finally {
    conn.destroy();
  }
}
