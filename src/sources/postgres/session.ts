/**
 * {@linkcode SqlSession} over the PostgreSQL wire client: what the PostgreSQL state store talks
 * through. Parameters go through the extended protocol (Parse/Bind/Execute, text format), so
 * values are never spliced into SQL text.
 *
 * Layer: sources. Imports core/ and _util/ only.
 *
 * @module
 */
import type { SqlParam, SqlResult, SqlSession } from "../../core/sql_session.ts";
import { PgConnection, type PgConnectOptions, type SimpleResult } from "./wire.ts";

/**
 * Rows a statement affected or returned, from its command tag: the last number of `INSERT 0 1`,
 * `UPDATE 3`, `SELECT 2`; 0 for tags without one (`BEGIN`).
 *
 * @example
 * ```ts
 * import { tagRowCount } from "./session.ts";
 * if (tagRowCount("INSERT 0 7") !== 7 || tagRowCount("BEGIN") !== 0) throw new Error();
 * ```
 */
export function tagRowCount(tag: string | undefined): number {
  const match = /\s(\d+)$/.exec(tag ?? "");
  return match ? Number(match[1]) : 0;
}

function toResult(result: SimpleResult): SqlResult {
  return {
    columns: result.fields.map((f) => f.name),
    rows: result.rows,
    rowCount: tagRowCount(result.tags[result.tags.length - 1]),
  };
}

/** A {@linkcode SqlSession} on one {@linkcode PgConnection}. */
export class PgSqlSession implements SqlSession {
  readonly #pg: PgConnection;

  private constructor(pg: PgConnection) {
    this.#pg = pg;
  }

  /**
   * Connects and logs in.
   *
   * @param options Server, credentials, TLS (the caller applies the TLS policy first).
   * @returns The open session.
   */
  static async connect(options: PgConnectOptions): Promise<PgSqlSession> {
    return new PgSqlSession(await PgConnection.connect(options));
  }

  /** True once closed or after the connection was lost. */
  get broken(): boolean {
    return this.#pg.broken;
  }

  /** Runs SQL; with `params`, one statement through Parse/Bind/Execute. */
  async query(sql: string, params?: readonly SqlParam[]): Promise<SqlResult> {
    return toResult(
      params === undefined ? await this.#pg.query(sql) : await this.#pg.queryParams(sql, params),
    );
  }

  /** Closes the connection. Idempotent. */
  close(): Promise<void> {
    this.#pg.close();
    return Promise.resolve();
  }
}
