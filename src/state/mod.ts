/**
 * State: cursors, file log, metrics, schema baselines, chunk checkpoints, progression, journal
 * and run aggregates, behind the {@linkcode StateStore} contract of `core/state.ts` and its
 * roles ({@linkcode CursorStore}, {@linkcode FileLog}, {@linkcode ChunkLedger},
 * {@linkcode RunHistory}, {@linkcode SchemaBaselines}). Two implementations: SQLite, on the
 * state file or in memory (the default), and PostgreSQL, on a schema of a shared server (selected
 * by `RIVET_STATE_URL` in `engines/state.ts`).
 *
 * Layer: state. Imports core/ and _util/ only; never sources/, formats/, destinations/ or
 * pipeline/. May call `Deno.*`.
 *
 * @module
 */
export type {
  ChunkLedger,
  CursorStore,
  FileLog,
  RunHistory,
  SchemaBaselines,
  StateStore,
} from "../core/state.ts";
export { openMemoryStateStore, openStateStore, type OpenStateStoreOptions } from "./open.ts";
export {
  checkSchemaName,
  DEFAULT_STATE_SCHEMA,
  PostgresStateStore,
  type PostgresStateStoreOptions,
} from "./postgres.ts";
export {
  MEMORY_PATH,
  SqliteStateStore,
  type SqliteStateStoreOptions,
  STATE_APPLICATION_ID,
  STATE_DB_FILE,
  STATE_SCHEMA_VERSION,
  stateDbPath,
} from "./sqlite.ts";
