/**
 * The state store: `.rivet_state.db`, a SQLite file next to the config, opened with Deno's
 * built-in `node:sqlite`, in WAL mode; or, for tests and library users who keep nothing, a
 * private `:memory:` database with the same schema and the same code.
 *
 * A file is migrated only once it is recognised as rivet's (a 0-byte file, an empty SQLite
 * database, or one carrying rivet's `application_id`); anything else is refused with the file
 * left byte-for-byte untouched, and the run stops before anything is read.
 *
 * The store is composed of one module per role of `core/state.ts` (`_sqlite_cursors`,
 * `_sqlite_file_log`, `_sqlite_chunks`, `_sqlite_history`, `_sqlite_schema`), all on one
 * {@linkcode SqliteConnection}; opening and migrating is `_sqlite_open`.
 *
 * Layer: state.
 *
 * @module
 */
import { join } from "node:path";
import type { StateStore } from "../core/state.ts";
import { STATE_APPLICATION_ID, STATE_SCHEMA_VERSION } from "./_migrations.ts";
import { sqliteChunkLedger } from "./_sqlite_chunks.ts";
import { attempt, SqliteConnection } from "./_sqlite_conn.ts";
import { sqliteCursorStore } from "./_sqlite_cursors.ts";
import { sqliteFileLog } from "./_sqlite_file_log.ts";
import { sqliteRunHistory, sqliteRunTraces } from "./_sqlite_history.ts";
import { MEMORY_PATH, openDatabase, type SqliteStateStoreOptions } from "./_sqlite_open.ts";
import { sqliteSchemaBaselines } from "./_sqlite_schema.ts";

export { MEMORY_PATH, type SqliteStateStoreOptions, STATE_APPLICATION_ID, STATE_SCHEMA_VERSION };

/** File name of the state database, in the config file's directory. */
export const STATE_DB_FILE = ".rivet_state.db";

/**
 * Path of the state database for a config directory.
 *
 * @param configDir Directory of the config file (not the CWD).
 * @returns `<configDir>/.rivet_state.db`.
 *
 * @example
 * ```ts
 * import { stateDbPath } from "./sqlite.ts";
 * if (stateDbPath("/etc/rivet") !== "/etc/rivet/.rivet_state.db") throw new Error("path");
 * ```
 */
export function stateDbPath(configDir: string): string {
  return join(configDir, STATE_DB_FILE);
}

/**
 * {@linkcode StateStore} on a SQLite database. Synchronous `node:sqlite` calls behind an async
 * contract; every multi-statement write is one transaction.
 */
export interface SqliteStateStore extends StateStore {
  /** Path of the database file, or `:memory:`. */
  readonly path: string;
}

/**
 * Opens SQLite state stores.
 *
 * @example Open, advance a cursor, read it back
 * ```ts
 * import { SqliteStateStore } from "./sqlite.ts";
 * const dir = await Deno.makeTempDir();
 * await using state = await SqliteStateStore.open(`${dir}/.rivet_state.db`);
 * await state.advanceCursor({
 *   exportName: "orders",
 *   lastCursorValue: "42",
 *   lastRunAt: "2024-01-01T00:00:00Z",
 * });
 * if ((await state.readCursor("orders"))?.lastCursorValue !== "42") throw new Error("cursor");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export const SqliteStateStore = {
  /**
   * Opens (creating with mode 0600 if missing) and migrates a state file. Refuses, leaving the
   * file untouched, a corrupt file (`state.corrupt`), another application's SQLite database
   * (`state.foreign`) and a schema newer than this build (`state.schema_too_new`).
   * {@linkcode MEMORY_PATH} (`:memory:`) opens a fresh private database instead of a file.
   *
   * @param path File path, usually {@linkcode stateDbPath}, or `:memory:`.
   * @param options Busy timeout.
   * @returns The open store.
   */
  open(path: string, options: SqliteStateStoreOptions = {}): Promise<SqliteStateStore> {
    return attempt(() => compose(new SqliteConnection(path, openDatabase(path, options))));
  },
};

/** Every role on the one connection, plus its lifecycle. */
function compose(conn: SqliteConnection): SqliteStateStore {
  const close = () => attempt(() => conn.close());
  return {
    path: conn.path,
    ...sqliteCursorStore(conn),
    ...sqliteFileLog(conn),
    ...sqliteChunkLedger(conn),
    ...sqliteRunHistory(conn),
    ...sqliteRunTraces(conn),
    ...sqliteSchemaBaselines(conn),
    close,
    [Symbol.asyncDispose]: close,
  };
}
