/**
 * `MysqlSource`: the {@linkcode Source} contract over npm:mysql2 for MySQL and MariaDB. One
 * connection, one read at a time; a broken connection is replaced on the next call.
 *
 * @module
 */
import type { SignalOptions, SourceSpec, Warning } from "../../core/spec.ts";
import type {
  BatchStream,
  ConnectionInfo,
  ReadOptions,
  ReadRequest,
  Source,
} from "../../core/source.ts";
import { classifyMysqlError, type MysqlErrorContext } from "./_errors.ts";
import {
  connectMysql,
  killQuery,
  type MysqlConfig,
  mysqlConfig,
  type MysqlConnection,
  runStatement,
} from "./connect.ts";
import { flavourOf, type MysqlFlavour, readQuery } from "./read.ts";

/** Options of {@linkcode openMysqlSource}. */
export interface MysqlSourceOptions extends SignalOptions {
  /** Receives warnings (code `source.zero_date`: zero dates exported as NULL, once per column). */
  readonly onWarning?: (warning: Warning) => void;
}

/** A MySQL/MariaDB source holding one connection. */
export class MysqlSource implements Source {
  /** Always `mysql`. */
  readonly kind = "mysql" as const;
  readonly #config: MysqlConfig;
  readonly #errors: MysqlErrorContext;
  readonly #onWarning: ((warning: Warning) => void) | undefined;
  #conn: MysqlConnection | undefined;
  #broken = false;
  #reading = false;

  /**
   * @param config mysql2 options (holds the password).
   * @param errors Names for error messages.
   * @param onWarning Warnings sink.
   */
  constructor(
    config: MysqlConfig,
    errors: MysqlErrorContext,
    onWarning?: (warning: Warning) => void,
  ) {
    this.#config = config;
    this.#errors = errors;
    this.#onWarning = onWarning;
  }

  /** Opens (or reopens after a failure) the connection. */
  async connection(): Promise<MysqlConnection> {
    if (this.#conn && !this.#broken) return this.#conn;
    this.#close();
    const conn = await connectMysql(this.#config, this.#errors);
    // A fatal socket error with no command running is emitted on the connection; without a
    // listener it would be thrown as an uncaught error.
    conn.on("error", () => {
      if (this.#conn === conn) this.#broken = true;
    });
    conn.on("end", () => {
      if (this.#conn === conn) this.#broken = true;
    });
    this.#conn = conn;
    this.#broken = false;
    return conn;
  }

  /** Server thread id of the current connection (for tests and diagnostics). */
  get threadId(): number | undefined {
    return this.#conn?.threadId ?? undefined;
  }

  /** Server family of the current connection. */
  get flavour(): MysqlFlavour {
    return flavourOf(this.#conn?._handshakePacket?.serverVersion);
  }

  /** {@inheritDoc Source.read} */
  async read(request: ReadRequest, options: ReadOptions): Promise<BatchStream> {
    if (this.#reading) {
      throw new Error("MysqlSource: one read at a time; finish or cancel the previous stream");
    }
    this.#reading = true;
    try {
      const conn = await this.connection();
      return await readQuery(conn, request, options, {
        flavour: flavourOf(conn._handshakePacket?.serverVersion),
        errors: this.#errors,
        killQuery: (threadId) => killQuery(this.#config, threadId),
        markBroken: () => {
          if (this.#conn === conn) this.#close();
        },
        onWarning: this.#onWarning,
        onDone: () => (this.#reading = false),
      });
    } catch (error) {
      this.#reading = false;
      throw error;
    }
  }

  /** {@inheritDoc Source.ping} */
  async ping(options: SignalOptions = {}): Promise<void> {
    options.signal?.throwIfAborted();
    const conn = await this.connection();
    try {
      await runStatement(conn, "SELECT 1");
    } catch (error) {
      throw classifyMysqlError(error, this.#errors);
    }
  }

  #close(): void {
    const conn = this.#conn;
    this.#conn = undefined;
    this.#broken = false;
    try {
      conn?.destroy();
    } catch { /* already closed */ }
  }

  /** Closes the connection. */
  [Symbol.asyncDispose](): Promise<void> {
    this.#close();
    return Promise.resolve();
  }
}

/**
 * Connects to MySQL or MariaDB and returns a source. Fails fast on bad credentials or TLS settings.
 *
 * @param spec `source` block (TLS).
 * @param connection Host, port, user, password, database.
 * @param options Warnings sink and signal.
 * @returns A connected source; dispose it with `await using`.
 */
export async function openMysqlSource(
  spec: SourceSpec,
  connection: ConnectionInfo,
  options: MysqlSourceOptions = {},
): Promise<MysqlSource> {
  const config = await mysqlConfig(connection, spec.tls);
  const source = new MysqlSource(
    config,
    {
      user: connection.user,
      endpoint: `${connection.host}:${connection.port}`,
      ...(connection.password === undefined ? {} : { password: connection.password }),
    },
    options.onWarning,
  );
  options.signal?.throwIfAborted();
  await source.connection();
  return source;
}
