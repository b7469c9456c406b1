/**
 * A SQL session: the small seam between a store written in SQL (the PostgreSQL state store) and
 * the wire client that talks to the server, so that `state/` never imports `sources/`.
 *
 * Layer: core. Imports nothing from `src/`.
 *
 * @module
 */

/** A bound parameter, sent as text (the server casts it); `null` is SQL NULL. */
export type SqlParam = string | null;

/** What one statement returned. */
export interface SqlResult {
  /** Column names of the rows, in order (empty for a statement without rows). */
  readonly columns: readonly string[];
  /** Rows as text, `null` for SQL NULL. */
  readonly rows: readonly (readonly (string | null)[])[];
  /** Rows the statement affected or returned, from its command tag (`UPDATE 3` → 3). */
  readonly rowCount: number;
}

/**
 * One server session, one conversation at a time. Transactions are plain SQL (`BEGIN`,
 * `COMMIT`, `ROLLBACK`); the caller serialises its calls.
 */
export interface SqlSession {
  /**
   * Runs SQL. With `params`, exactly one statement with `$1`, `$2`, … placeholders, values sent
   * apart from the text (never spliced into it); without, one or more statements.
   */
  query(sql: string, params?: readonly SqlParam[]): Promise<SqlResult>;
  /** True once the session cannot be used again (closed, or its connection was lost). */
  readonly broken: boolean;
  /** Ends the session. Idempotent. */
  close(): Promise<void>;
}
