/**
 * {@linkcode FileLog} on SQLite: `file_log`, whose `id` is the recording order.
 *
 * Layer: state (private).
 *
 * @module
 */
import type { FileLog, PartEntry } from "../core/state.ts";
import type { SqliteConnection } from "./_sqlite_conn.ts";
import { fromRow, insert, type Row, table } from "./_sqlite_rows.ts";

/** The optional columns are NULL in rows written before schema v2: read back absent. */
export const PART = table<PartEntry>({
  text: ["runId", "exportName", "fileName", "format", "createdAt"],
  int: ["rowCount", "bytes"],
  optional: {
    text: ["compression", "contentFingerprint", "contentMd5", "status"],
    int: ["chunkIndex", "partIndex"],
  },
});

/**
 * The file log role of a SQLite store.
 *
 * @param conn The store's connection.
 * @returns The role's methods, bound to `conn`.
 */
export function sqliteFileLog(conn: SqliteConnection): FileLog {
  const partFromRow = (row: Row) => fromRow(row, PART);
  return {
    recordPart(entry) {
      return conn.run((db) => insert(db, "file_log", PART, entry));
    },

    listFiles(options) {
      return conn.history("file_log", options, partFromRow);
    },

    listRunParts(runId) {
      // idx_file_log_run holds rowids in order, so this reads the index without a sort.
      return conn.list("SELECT * FROM file_log WHERE run_id = ? ORDER BY id", [runId], partFromRow);
    },

    markPartsQuarantined(entry) {
      // One statement, so the marking is atomic; the names travel as one JSON parameter, which
      // has no bound-variable limit.
      return conn.run((db) => {
        if (entry.fileNames.length === 0) return 0;
        return Number(
          db.prepare(
            `UPDATE file_log SET status = 'quarantined'
             WHERE run_id = ? AND (status IS NULL OR status <> 'quarantined')
               AND file_name IN (SELECT value FROM json_each(?))`,
          ).run(entry.runId, JSON.stringify(entry.fileNames)).changes,
        );
      });
    },
  };
}
