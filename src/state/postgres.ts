/**
 * The state store on PostgreSQL, selected by `RIVET_STATE_URL`: the tables, columns and
 * semantics of the SQLite store in a schema of its own (`rivet_state` by default), so that
 * several processes on several hosts share cursors, the file log, the history and, above all,
 * the chunk ledger of one checkpointed run.
 *
 * The store is written against {@linkcode SqlSession} (core): the wire client lives in
 * `sources/postgres/`, and the composition root (`engines/state.ts`) connects it. Composed of
 * `_pg_roles` (cursors, file log, history, schema baselines) and `_pg_chunks` (the ledger) on
 * one {@linkcode PgStateConnection}; schema and migrations are `_pg_open`.
 *
 * Layer: state.
 *
 * @module
 */
import type { SqlSession } from "../core/sql_session.ts";
import type { StateStore } from "../core/state.ts";
import { pgChunkLedger } from "./_pg_chunks.ts";
import { PgStateConnection } from "./_pg_conn.ts";
import { checkSchemaName, DEFAULT_STATE_SCHEMA, preparePgState } from "./_pg_open.ts";
import {
  pgCursorStore,
  pgFileLog,
  pgRunHistory,
  pgRunTraces,
  pgSchemaBaselines,
} from "./_pg_roles.ts";

export { checkSchemaName, DEFAULT_STATE_SCHEMA };

/** Options of {@linkcode PostgresStateStore.open}. */
export interface PostgresStateStoreOptions {
  /** The schema of the state tables; {@linkcode DEFAULT_STATE_SCHEMA} when omitted. */
  readonly schema?: string;
  /** `host:port/database` for messages (never the password). */
  readonly where: string;
  /** Lease of chunk claims in ms (60 s when omitted). */
  readonly chunkLeaseMs?: number;
}

/** {@linkcode StateStore} on a PostgreSQL schema. */
export interface PostgresStateStore extends StateStore {
  /** The state schema. */
  readonly schema: string;
  /** `host:port/database`. */
  readonly where: string;
}

/** Opens PostgreSQL state stores. */
export const PostgresStateStore = {
  /**
   * Creates the schema if missing, migrates it and returns the store, which owns the session
   * from then on (closing the store closes it; a failed open closes it too).
   *
   * @param session An open session to the state database.
   * @param options Schema and location.
   * @returns The open store.
   */
  async open(session: SqlSession, options: PostgresStateStoreOptions): Promise<PostgresStateStore> {
    const schema = options.schema ?? DEFAULT_STATE_SCHEMA;
    try {
      await preparePgState(session, schema, options.where);
    } catch (error) {
      await session.close();
      throw error;
    }
    const conn = new PgStateConnection(session, `${options.where} schema ${schema}`);
    const close = () => conn.close();
    return {
      schema,
      where: options.where,
      ...pgCursorStore(conn),
      ...pgFileLog(conn),
      ...pgChunkLedger(
        conn,
        options.chunkLeaseMs === undefined ? {} : { leaseMs: options.chunkLeaseMs },
      ),
      ...pgRunHistory(conn),
      ...pgRunTraces(conn),
      ...pgSchemaBaselines(conn),
      close,
      [Symbol.asyncDispose]: close,
    };
  },
};
