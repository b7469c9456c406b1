/**
 * Opens the state store of a config (the SQLite file next to it), or a private in-memory one.
 *
 * Layer: state.
 *
 * @module
 */
import type { StateStore } from "../core/state.ts";
import {
  MEMORY_PATH,
  SqliteStateStore,
  type SqliteStateStoreOptions,
  stateDbPath,
} from "./sqlite.ts";

/** Options of {@linkcode openStateStore}. */
export type OpenStateStoreOptions = SqliteStateStoreOptions;

/**
 * Opens (creating and migrating as needed) `.rivet_state.db` in the config file's directory.
 * Runs choose between it and the PostgreSQL store (`RIVET_STATE_URL`) in `engines/state.ts`.
 *
 * @param configDir Directory of the config file, not the CWD (as the Rust tool does).
 * @param options Busy timeout.
 * @returns The open store; dispose it with `await using`.
 *
 * @example
 * ```ts
 * import { openStateStore } from "./open.ts";
 * const dir = await Deno.makeTempDir();
 * {
 *   await using state = await openStateStore(dir);
 *   await state.recordPart({
 *     runId: "r", exportName: "e", fileName: "e.parquet", rowCount: 1, bytes: 10,
 *     format: "parquet", createdAt: "2024-01-01T00:00:00Z",
 *   });
 * }
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function openStateStore(
  configDir: string,
  options: OpenStateStoreOptions = {},
): Promise<StateStore> {
  return SqliteStateStore.open(stateDbPath(configDir), options);
}

/**
 * Opens a fresh SQLite state store in memory: the same schema, code and semantics as the state
 * file, nothing persisted, gone at `close`. For tests, and for library callers of `runExport`
 * who want the file log and cursor calls without keeping state.
 *
 * @returns The open store; dispose it with `await using`.
 *
 * @example
 * ```ts
 * import { openMemoryStateStore } from "./open.ts";
 * await using state = await openMemoryStateStore();
 * await state.saveChunkPlan({
 *   runId: "r1", exportName: "e", planHash: "h", maxAttempts: 2,
 *   tasks: [{ startKey: "1", endKey: "10" }],
 * });
 * if ((await state.claimChunk("r1"))?.chunkIndex !== 0) throw new Error("claim");
 * ```
 */
export function openMemoryStateStore(): Promise<StateStore> {
  return SqliteStateStore.open(MEMORY_PATH);
}
