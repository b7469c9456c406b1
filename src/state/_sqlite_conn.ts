/**
 * The one connection the SQLite roles share: how a call becomes a promise, how a write becomes
 * a transaction, how rows are read and listed.
 *
 * Layer: state (private).
 *
 * @module
 */
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import type { ListOptions } from "../core/state.ts";
import { crashPoint } from "../_util/test_hook.ts";
import type { Row } from "./_sqlite_rows.ts";

/**
 * Runs `body` and returns its result as a promise, so that a synchronous throw (a SQLite error,
 * a closed store) rejects instead of escaping the async contract.
 */
export function attempt<T>(body: () => T): Promise<T> {
  return new Promise((resolve) => resolve(body()));
}

/** Options of {@linkcode SqliteConnection.write}. */
export interface WriteOptions {
  /**
   * Stops at the `in_state_write` crash point before `COMMIT` when a test arms it (see
   * `docs/run-guarantees.md`): a kill there must leave the previous state.
   */
  readonly crashPoint?: boolean;
}

/**
 * An open `node:sqlite` database behind the async contract. Synchronous calls: a transaction
 * never stays open across a yield (unless a test arms the crash point), so callers sharing the
 * connection (the worker engine's chunk loop) never interleave inside one.
 */
export class SqliteConnection {
  /** Path of the database file, or `:memory:`. */
  readonly path: string;
  #db: DatabaseSync | undefined;

  /**
   * @param path Path of the database, for messages.
   * @param db The open, migrated database; closed by {@linkcode close}.
   */
  constructor(path: string, db: DatabaseSync) {
    this.path = path;
    this.#db = db;
  }

  /** The database; throws once closed. */
  get db(): DatabaseSync {
    if (this.#db === undefined) throw new Error(`State store '${this.path}' is closed`);
    return this.#db;
  }

  /**
   * Runs `body` outside an explicit transaction: for reads and single-statement writes (SQLite
   * makes each statement atomic).
   */
  run<T>(body: (db: DatabaseSync) => T): Promise<T> {
    return attempt(() => body(this.db));
  }

  /** Runs `body` in a `BEGIN IMMEDIATE` transaction (the write lock is taken up front). */
  async write<T>(body: (db: DatabaseSync) => T, options: WriteOptions = {}): Promise<T> {
    const db = this.db;
    db.exec("BEGIN IMMEDIATE");
    try {
      const out = body(db);
      // No await unless a test hook is armed: concurrent callers must never see this
      // transaction open across a yield.
      const hook = options.crashPoint ? crashPoint("in_state_write") : undefined;
      if (hook) await hook;
      db.exec("COMMIT");
      return out;
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }

  /** The first row of a query, mapped, or undefined when there is none. */
  first<T>(
    sql: string,
    params: readonly SQLInputValue[],
    map: (row: Row) => T,
  ): Promise<T | undefined> {
    return this.run((db) => {
      const row = db.prepare(sql).get(...params) as Row | undefined;
      return row === undefined ? undefined : map(row);
    });
  }

  /** Every row of a query, mapped. */
  list<T>(sql: string, params: readonly SQLInputValue[], map: (row: Row) => T): Promise<T[]> {
    return this.run((db) => all(db, sql, params, map));
  }

  /**
   * Newest-first rows of a history table whose `id` is its insertion order.
   *
   * @param table The table (a constant of the caller, never input).
   * @param options Export filter and row limit.
   * @param map Row to entry.
   * @param runId Only this run, when given.
   */
  history<T>(
    table: string,
    options: ListOptions,
    map: (row: Row) => T,
    runId?: string,
  ): Promise<T[]> {
    return this.run((db) => all(db, ...historyQuery(table, { ...options, runId }), map));
  }

  /** Closes the database. Idempotent. */
  close(): void {
    this.#db?.close();
    this.#db = undefined;
  }
}

function all<T>(
  db: DatabaseSync,
  sql: string,
  params: readonly SQLInputValue[],
  map: (row: Row) => T,
): T[] {
  return (db.prepare(sql).all(...params) as Row[]).map(map);
}

/**
 * The newest-first query of a history table: export and run filters, then the row limit.
 *
 * @param table The table (a constant of the caller, never input).
 * @param options Export filter, row limit and, for the journal, the run.
 * @param placeholder The placeholder of the `i`-th value (0-based): `?` in SQLite, `$1`, … in
 *   PostgreSQL.
 * @returns The SQL and its values.
 */
export function historyQuery(
  table: string,
  options: ListOptions & { readonly runId?: string | undefined },
  placeholder: (i: number) => string = () => "?",
): [string, SQLInputValue[]] {
  const where: string[] = [];
  const params: SQLInputValue[] = [];
  const filters = [["export_name", options.exportName], ["run_id", options.runId]] as const;
  for (const [column, value] of filters) {
    if (value === undefined) continue;
    where.push(`${column} = ${placeholder(params.length)}`);
    params.push(value);
  }
  const filter = where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "";
  const last = placeholder(params.length);
  params.push(limit(options.last));
  return [`SELECT * FROM ${table}${filter} ORDER BY id DESC LIMIT ${last}`, params];
}

/** A `last` option as a LIMIT: a whole number, at least 0. */
export function limit(last: number): number {
  return Math.max(0, Math.trunc(last));
}
