/**
 * `MysqlSource`: the {@linkcode Source} contract over npm:mysql2 for MySQL and MariaDB. One
 * connection, one read at a time; a broken connection is replaced on the next call.
 *
 * Each new connection asks `CONNECTION_ID()` and `@@version_comment` once: ProxySQL and MaxScale
 * name themselves, and any proxy that answers the login itself gives another connection id than
 * the server's. Only then two more statements look for multiplexing (the id changes) and
 * ProxySQL's `@@proxy_version`; each kind warns once per source (`_pooler.ts`).
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
import { ConnectionSlot } from "../_connection_slot.ts";
import { classifyMysql, reportFront } from "../_pooler.ts";

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
  readonly #slot: ConnectionSlot<MysqlConnection>;

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
    const front = { onWarning, reported: new Set<string>() };
    this.#slot = new ConnectionSlot("MysqlSource", {
      open: async () => {
        const conn = await connectMysql(config, errors);
        await probeFront(conn, front);
        return conn;
      },
      destroy: (conn) => conn.destroy(),
    });
  }

  /** Opens (or reopens after a failure) the connection. */
  connection(): Promise<MysqlConnection> {
    return this.#slot.get();
  }

  /** Server thread id of the current connection (for tests and diagnostics). */
  get threadId(): number | undefined {
    return this.#slot.current?.threadId ?? undefined;
  }

  /** Server family of the current connection. */
  get flavour(): MysqlFlavour {
    return flavourOf(this.#slot.current?._handshakePacket?.serverVersion);
  }

  /** {@inheritDoc Source.read} */
  read(request: ReadRequest, options: ReadOptions): Promise<BatchStream> {
    return this.#slot.read(undefined, (conn, done) =>
      readQuery(conn, request, options, {
        flavour: flavourOf(conn._handshakePacket?.serverVersion),
        errors: this.#errors,
        killQuery: (threadId) => killQuery(this.#config, threadId),
        markBroken: () => this.#slot.discard(conn),
        onWarning: this.#onWarning,
        onDone: done,
      }));
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

  /** Closes the connection. */
  [Symbol.asyncDispose](): Promise<void> {
    this.#slot.close();
    return Promise.resolve();
  }
}

/** The first row of a statement, as an array; undefined when it failed. */
function firstRow(conn: MysqlConnection, sql: string): Promise<readonly unknown[] | undefined> {
  return new Promise((resolve) => {
    conn.query(
      { sql, rowsAsArray: true },
      (err, rows) => resolve(err ? undefined : (rows as unknown[][] | undefined)?.[0]),
    );
  });
}

/** Tells a proxy from the server (see the module notes). Never fails the connection. */
async function probeFront(
  conn: MysqlConnection,
  front: Parameters<typeof reportFront>[2],
): Promise<void> {
  const first = await firstRow(conn, "SELECT CONNECTION_ID(), @@version_comment");
  if (first === undefined) return;
  const handshakeId = conn.threadId ?? undefined;
  const ids = [Number(first[0])];
  let proxyVersion: string | undefined;
  if (ids[0] !== handshakeId) {
    const again = await firstRow(conn, "SELECT CONNECTION_ID()");
    if (again !== undefined) ids.push(Number(again[0]));
    const proxy = await firstRow(conn, "SELECT @@proxy_version");
    if (proxy?.[0] != null) proxyVersion = String(proxy[0]);
  }
  const versionComment = first[1] == null ? undefined : String(first[1]);
  const kind = classifyMysql({
    handshakeId,
    serverVersion: conn._handshakePacket?.serverVersion,
    versionComment,
    connectionIds: ids,
    ...(proxyVersion === undefined ? {} : { proxyVersion }),
  });
  const detail = kind === "multiplexed"
    ? `CONNECTION_ID() was ${ids[0]}, then ${ids[1]}`
    : kind === "proxy"
    ? `the server's connection id ${ids[0]} is not the ${handshakeId} given at login`
    : `version comment '${versionComment ?? ""}'${
      proxyVersion === undefined ? "" : `, proxy version ${proxyVersion}`
    }`;
  reportFront(kind, detail, front);
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
