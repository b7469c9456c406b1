/**
 * State: cursors, file log, metrics, schema baselines, chunk checkpoints, progression, journal
 * and run aggregates, behind the {@linkcode StateStore} contract of `core/state.ts` and its
 * roles ({@linkcode CursorStore}, {@linkcode FileLog}, {@linkcode ChunkLedger},
 * {@linkcode RunHistory}, {@linkcode SchemaBaselines}). One implementation: SQLite, on the
 * state file or in memory.
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
  MEMORY_PATH,
  SqliteStateStore,
  type SqliteStateStoreOptions,
  STATE_APPLICATION_ID,
  STATE_DB_FILE,
  STATE_SCHEMA_VERSION,
  stateDbPath,
} from "./sqlite.ts";
