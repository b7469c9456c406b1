/**
 * The one session the PostgreSQL roles share: calls are serialised (one conversation at a time
 * on the wire), a write is a `BEGIN … COMMIT` transaction, rows come back by column name.
 *
 * Layer: state (private).
 *
 * @module
 */
import type { SqlParam, SqlSession } from "../core/sql_session.ts";
import type { ListOptions } from "../core/state.ts";
import { crashPoint } from "../_util/test_hook.ts";
import { historyQuery, type WriteOptions } from "./_sqlite_conn.ts";
import type { Row } from "./_sqlite_rows.ts";

/** A value as a bound parameter: numbers as their decimal text, absent as NULL. */
export type PgValue = string | number | bigint | null | undefined | ArrayBufferView;

function param(value: PgValue): SqlParam {
  if (value === null || value === undefined) return null;
  if (ArrayBuffer.isView(value)) throw new TypeError("binary state values are not supported");
  return String(value);
}

/** What a role runs SQL through, inside or outside a transaction. */
export interface PgQuery {
  /** Rows of one statement, by column name. */
  rows(sql: string, params?: readonly PgValue[]): Promise<Row[]>;
  /** Rows the statement affected. */
  exec(sql: string, params?: readonly PgValue[]): Promise<number>;
}

/** The shared session of a PostgreSQL store. */
export class PgStateConnection {
  /** Where the store lives, for messages: `host:port/database schema <name>` (no password). */
  readonly label: string;
  #session: SqlSession | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  /**
   * @param session The open session, its `search_path` already set to the state schema.
   * @param label Where the store lives, for messages.
   */
  constructor(session: SqlSession, label: string) {
    this.#session = session;
    this.label = label;
  }

  #live(): SqlSession {
    if (this.#session === undefined) throw new Error(`State store '${this.label}' is closed`);
    return this.#session;
  }

  #query(session: SqlSession): PgQuery {
    return {
      async rows(sql, params = []) {
        const result = await session.query(sql, params.map(param));
        return result.rows.map((values) => {
          const row: Row = {};
          result.columns.forEach((name, i) => row[name] = values[i] ?? null);
          return row;
        });
      },
      async exec(sql, params = []) {
        return (await session.query(sql, params.map(param))).rowCount;
      },
    };
  }

  /** Runs `body` after every earlier call finished, so that calls never interleave. */
  #serial<T>(body: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(body, body);
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Runs `body` outside an explicit transaction: reads and single-statement writes. */
  run<T>(body: (q: PgQuery) => Promise<T>): Promise<T> {
    return this.#serial(() => body(this.#query(this.#live())));
  }

  /** Runs `body` in one transaction: committed when it resolves, rolled back when it throws. */
  write<T>(body: (q: PgQuery) => Promise<T>, options: WriteOptions = {}): Promise<T> {
    return this.#serial(async () => {
      const session = this.#live();
      await session.query("BEGIN");
      try {
        const out = await body(this.#query(session));
        const hook = options.crashPoint ? crashPoint("in_state_write") : undefined;
        if (hook) await hook;
        await session.query("COMMIT");
        return out;
      } catch (error) {
        if (!session.broken) await session.query("ROLLBACK").catch(() => {});
        throw error;
      }
    });
  }

  /** The first row of a query, mapped, or undefined when there is none. */
  async first<T>(
    sql: string,
    params: readonly PgValue[],
    map: (row: Row) => T,
  ): Promise<T | undefined> {
    const [row] = await this.run((q) => q.rows(sql, params));
    return row === undefined ? undefined : map(row);
  }

  /** Every row of a query, mapped. */
  async list<T>(sql: string, params: readonly PgValue[], map: (row: Row) => T): Promise<T[]> {
    return (await this.run((q) => q.rows(sql, params))).map(map);
  }

  /**
   * Newest-first rows of a history table whose `id` is its insertion order.
   *
   * @param table The table (a constant of the caller, never input).
   * @param options Export filter, row limit and, for the journal, the run.
   * @param map Row to entry.
   */
  history<T>(
    table: string,
    options: ListOptions & { readonly runId?: string | undefined },
    map: (row: Row) => T,
  ): Promise<T[]> {
    return this.list(...historyQuery(table, options, dollar), map);
  }

  /** Closes the session. Idempotent. */
  async close(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    await session?.close();
  }
}

/** `$1, $2, …`: the PostgreSQL placeholder of the `i`-th (0-based) value. */
export function dollar(i: number): string {
  return `$${i + 1}`;
}
