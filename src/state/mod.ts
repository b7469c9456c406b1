/**
 * State: cursors, file log, metrics, schema baselines, chunk checkpoints, progression, journal
 * and run aggregates, behind the {@linkcode StateStore} contract of `core/state.ts`.
 *
 * Layer: state. Imports core/ and _util/ only; never sources/, formats/, destinations/ or
 * pipeline/. May call `Deno.*`.
 *
 * @module
 */
export type { StateStore } from "../core/state.ts";
export { openStateStore, type OpenStateStoreOptions } from "./open.ts";
export {
  SqliteStateStore,
  type SqliteStateStoreOptions,
  STATE_APPLICATION_ID,
  STATE_DB_FILE,
  STATE_SCHEMA_VERSION,
  stateDbPath,
} from "./sqlite.ts";
export { MemoryStateStore } from "./memory.ts";
