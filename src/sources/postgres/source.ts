/**
 * `PostgresSource`: the {@linkcode Source} contract over our own wire client. One connection,
 * one read at a time; a broken connection is replaced on the next call.
 *
 * Each new connection asks `pg_backend_pid()` once and compares it with the pid announced at
 * login: a pooler answers the login itself. Only then a second statement tells a transaction
 * pooler (the two statements ran on different backends) from another pooler; each kind warns
 * once per source (`_pooler.ts`).
 *
 * @module
 */
import type { SignalOptions, SourceSpec, Warning } from "../../core/spec.ts";
import type { BatchStream, ReadOptions, ReadRequest, Source } from "../../core/source.ts";
import type { ConnectionInfo } from "../../core/source.ts";
import { checkTlsSupport } from "./connect.ts";
import { readQuery } from "./read.ts";
import { PgConnection, type PgConnectOptions } from "./wire.ts";
import { classifyPostgres, reportFront } from "../_pooler.ts";

/** Options of {@linkcode openPostgresSource}. */
export interface PostgresSourceOptions extends SignalOptions {
  /** Receives server notices/warnings as rivet warnings (code `source.notice`). */
  readonly onWarning?: (warning: Warning) => void;
}

/** A PostgreSQL source holding one connection. */
export class PostgresSource implements Source {
  /** Always `postgres`. */
  readonly kind = "postgres" as const;
  readonly #connect: PgConnectOptions;
  readonly #front: {
    onWarning: ((warning: Warning) => void) | undefined;
    reported: Set<string>;
  };
  #conn: PgConnection | undefined;
  #reading = false;

  /**
   * @param connect Dial and login options.
   * @param onWarning Receives the pooler warnings.
   */
  constructor(connect: PgConnectOptions, onWarning?: (warning: Warning) => void) {
    this.#connect = connect;
    this.#front = { onWarning, reported: new Set() };
  }

  /** Opens (or reopens after a failure) the connection. */
  async connection(): Promise<PgConnection> {
    if (this.#conn && !this.#conn.broken) return this.#conn;
    this.#conn?.close();
    this.#conn = await PgConnection.connect(this.#connect);
    await this.#probeFront(this.#conn);
    return this.#conn;
  }

  /** Tells a pooler from the server (see the module notes). A failed probe is ignored. */
  async #probeFront(conn: PgConnection): Promise<void> {
    const backendPid = async () =>
      Number((await conn.query("SELECT pg_backend_pid()")).rows[0]?.[0]);
    try {
      const pids = [await backendPid()];
      if (pids[0] !== conn.backendPid) pids.push(await backendPid());
      const kind = classifyPostgres({ loginPid: conn.backendPid, backendPids: pids });
      const detail = kind === "transaction_pooler"
        ? `two statements of one connection ran on backends ${pids[0]} and ${pids[1]}`
        : `the backend pid (${pids[0]}) is not the one announced at login`;
      reportFront(kind, detail, this.#front);
    } catch {
      // A diagnostic only: a server without pg_backend_pid() still exports.
    }
  }

  /** Backend process id of the current connection (for tests and diagnostics). */
  get backendPid(): number | undefined {
    return this.#conn?.backendPid;
  }

  /** {@inheritDoc Source.read} */
  async read(request: ReadRequest, options: ReadOptions): Promise<BatchStream> {
    if (this.#reading) {
      throw new Error("PostgresSource: one read at a time; finish or cancel the previous stream");
    }
    this.#reading = true;
    try {
      const conn = await this.connection();
      return await readQuery(conn, request, options, { onDone: () => (this.#reading = false) });
    } catch (error) {
      this.#reading = false;
      throw error;
    }
  }

  /** {@inheritDoc Source.ping} */
  async ping(options: SignalOptions = {}): Promise<void> {
    options.signal?.throwIfAborted();
    const conn = await this.connection();
    await conn.query("SELECT 1");
  }

  /** Closes the connection. */
  [Symbol.asyncDispose](): Promise<void> {
    this.#conn?.close();
    this.#conn = undefined;
    return Promise.resolve();
  }
}

/**
 * Connects to PostgreSQL and returns a source. Fails fast on bad credentials or TLS settings.
 *
 * @param spec `source` block (TLS mode).
 * @param connection Host, port, user, password, database.
 * @param options Warnings sink.
 * @returns A connected source; dispose it with `await using`.
 */
export async function openPostgresSource(
  spec: SourceSpec,
  connection: ConnectionInfo,
  options: PostgresSourceOptions = {},
): Promise<PostgresSource> {
  checkTlsSupport(spec.tls);
  const source = new PostgresSource(
    postgresConnectOptions(spec, connection, options.onWarning),
    options.onWarning,
  );
  options.signal?.throwIfAborted();
  await source.connection();
  return source;
}

/**
 * Dial and login options of a configured source: what every connection to it uses (the change
 * reader's too, so it follows the same TLS policy and timeout).
 *
 * @param spec `source` block (TLS mode).
 * @param connection Host, port, user, password, database, `connect_timeout`.
 * @param onWarning Receives server notices as `source.notice` warnings.
 * @returns The options.
 */
export function postgresConnectOptions(
  spec: SourceSpec,
  connection: ConnectionInfo,
  onWarning?: (warning: Warning) => void,
): PgConnectOptions {
  const timeout = Number(connection.params["connect_timeout"] ?? "0");
  return {
    host: connection.host,
    port: connection.port,
    user: connection.user,
    password: connection.password,
    database: connection.database,
    tls: spec.tls,
    ...(Number.isFinite(timeout) && timeout > 0 ? { connectTimeoutMs: timeout * 1000 } : {}),
    ...(onWarning
      ? {
        onNotice: (f) =>
          onWarning({ code: "source.notice", message: `PostgreSQL ${f.severity}: ${f.message}` }),
      }
      : {}),
  };
}
