/**
 * {@linkcode FileLog} on SQLite: `file_log`, whose `id` is the recording order.
 *
 * Layer: state (private).
 *
 * @module
 */
import type { FileLog, PartEntry } from "../core/state.ts";
import { num, type Row, setIfPresent, type SqliteConnection, text } from "./_sqlite_conn.ts";

/**
 * The file log role of a SQLite store.
 *
 * @param conn The store's connection.
 * @returns The role's methods, bound to `conn`.
 */
export function sqliteFileLog(conn: SqliteConnection): FileLog {
  return {
    recordPart(entry) {
      return conn.run((db) => {
        db.prepare(
          `INSERT INTO file_log (run_id, export_name, file_name, row_count, bytes, format,
             compression, created_at, content_fingerprint, content_md5, chunk_index, part_index,
             status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          entry.runId,
          entry.exportName,
          entry.fileName,
          entry.rowCount,
          entry.bytes,
          entry.format,
          entry.compression ?? null,
          entry.createdAt,
          entry.contentFingerprint ?? null,
          entry.contentMd5 ?? null,
          entry.chunkIndex ?? null,
          entry.partIndex ?? null,
          entry.status ?? null,
        );
      });
    },

    listFiles(options) {
      return conn.run(() => conn.history("file_log", options).map(partFromRow));
    },

    listRunParts(runId) {
      // idx_file_log_run holds rowids in order, so this reads the index without a sort.
      return conn.run((db) =>
        (db.prepare("SELECT * FROM file_log WHERE run_id = ? ORDER BY id").all(runId) as Row[])
          .map(partFromRow)
      );
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

function partFromRow(row: Row): PartEntry {
  const out: Record<string, unknown> = {
    runId: text(row, "run_id"),
    exportName: text(row, "export_name"),
    fileName: text(row, "file_name"),
    rowCount: num(row, "row_count"),
    bytes: num(row, "bytes"),
    format: text(row, "format"),
    createdAt: text(row, "created_at"),
  };
  setIfPresent(out, "compression", row.compression);
  setIfPresent(out, "contentFingerprint", row.content_fingerprint);
  setIfPresent(out, "contentMd5", row.content_md5);
  setIfPresent(out, "chunkIndex", row.chunk_index, "int");
  setIfPresent(out, "partIndex", row.part_index, "int");
  setIfPresent(out, "status", row.status);
  return out as unknown as PartEntry;
}
