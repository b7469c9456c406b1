/**
 * The one connection the SQLite roles share, and the row helpers they all use: how a call
 * becomes a promise, how a write becomes a transaction, how a history table is listed.
 *
 * Layer: state (private).
 *
 * @module
 */
import type { DatabaseSync, SQLInputValue } from "node:sqlite";
import type { ListOptions } from "../core/state.ts";
import { crashPoint } from "../_util/test_hook.ts";

/** One result row, by column name. */
export type Row = Record<string, SQLInputValue | null>;

/** How a column's value converts between SQLite and an entry field. */
export type ColumnKind = "text" | "int" | "bool";

/** Now, as the ISO-8601 UTC string every stored time is. */
export function nowIso(): string {
  return new Date().toISOString();
}

/** A column read as text. */
export function text(row: Row, column: string): string {
  return String(row[column]);
}

/** A column read as a number. */
export function num(row: Row, column: string): number {
  return Number(row[column]);
}

/** A nullable text column: null stays null. */
export function textOrNull(row: Row, column: string): string | null {
  return row[column] === null ? null : text(row, column);
}

/** Copies the non-null columns into `out[field]`, so optional fields stay absent, not undefined. */
export function setIfPresent(
  out: Record<string, unknown>,
  field: string,
  value: unknown,
  kind: ColumnKind = "text",
): void {
  if (value === null || value === undefined) return;
  out[field] = kind === "bool"
    ? value === 1 || value === 1n
    : kind === "int"
    ? Number(value)
    : value;
}

/** An entry field as a bound parameter: absent becomes NULL, a boolean 0 or 1. */
export function toSql(value: unknown, kind: ColumnKind = "text"): SQLInputValue {
  if (value === undefined || value === null) return null;
  if (kind === "bool") return value ? 1 : 0;
  return value as SQLInputValue;
}

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

  /**
   * Newest-first rows of a history table whose `id` is its insertion order.
   *
   * @param table The table (a constant of the caller, never input).
   * @param options Export filter and row limit.
   * @param runId Only this run, when given.
   */
  history(table: string, options: ListOptions, runId?: string): Row[] {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (options.exportName !== undefined) {
      where.push("export_name = ?");
      params.push(options.exportName);
    }
    if (runId !== undefined) {
      where.push("run_id = ?");
      params.push(runId);
    }
    const filter = where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "";
    params.push(limit(options.last));
    return this.db.prepare(`SELECT * FROM ${table}${filter} ORDER BY id DESC LIMIT ?`)
      .all(...params) as Row[];
  }

  /** Closes the database. Idempotent. */
  close(): void {
    this.#db?.close();
    this.#db = undefined;
  }
}

/** A `last` option as a LIMIT: a whole number, at least 0. */
export function limit(last: number): number {
  return Math.max(0, Math.trunc(last));
}
