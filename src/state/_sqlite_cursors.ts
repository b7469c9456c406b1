/**
 * {@linkcode CursorStore} on SQLite: `export_state` (cursors) and `export_progression`.
 *
 * Layer: state (private).
 *
 * @module
 */
import type {
  CursorEntry,
  CursorStore,
  ExportProgressionEntry,
  ProgressionBoundary,
  ProgressionEntry,
} from "../core/state.ts";
import type { SqliteConnection } from "./_sqlite_conn.ts";
import { fromRow, type Row, table, upsert } from "./_sqlite_rows.ts";

/** Keyed by export name. */
export const CURSOR = table<CursorEntry>({ text: ["exportName", "lastCursorValue", "lastRunAt"] });

/** One boundary of a progression row: its own `last_<boundary>_*` columns, keyed by export. */
function boundary(name: ProgressionBoundary) {
  return table<ProgressionEntry>({
    prefix: `last_${name}_`,
    text: ["exportName", "strategy", "runId", "at"],
    optional: { text: ["cursor"], int: ["chunkIndex"] },
    rename: { exportName: "export_name" },
  });
}

export const PROGRESSION = { committed: boundary("committed"), verified: boundary("verified") };

/**
 * The cursor role of a SQLite store.
 *
 * @param conn The store's connection.
 * @returns The role's methods, bound to `conn`.
 */
export function sqliteCursorStore(conn: SqliteConnection): CursorStore {
  const cursorFromRow = (row: Row) => fromRow(row, CURSOR);
  return {
    readCursor(exportName) {
      const sql = "SELECT * FROM export_state WHERE export_name = ?";
      return conn.first(sql, [exportName], cursorFromRow);
    },

    listCursors() {
      return conn.list("SELECT * FROM export_state ORDER BY export_name", [], cursorFromRow);
    },

    advanceCursor(entry) {
      // A kill before COMMIT must leave the previous cursor (the `in_state_write` crash point).
      return conn.write((db) => upsert(db, "export_state", CURSOR, entry), { crashPoint: true });
    },

    resetExport(exportName) {
      return conn.write((db) => {
        const a = db.prepare("DELETE FROM export_state WHERE export_name = ?").run(exportName);
        const b = db.prepare("DELETE FROM export_progression WHERE export_name = ?")
          .run(exportName);
        return Number(a.changes) + Number(b.changes) > 0;
      });
    },

    saveProgression(entry) {
      // Only this boundary's columns are set: the other boundary stays as it was.
      return conn.run((db) => upsert(db, "export_progression", PROGRESSION[entry.boundary], entry));
    },

    readProgression(exportName) {
      const sql = "SELECT * FROM export_progression WHERE export_name = ?";
      return conn.first(sql, [exportName], (row) => progressionFromRow(exportName, row));
    },
  };
}

/** Both boundaries of a progression row; a boundary never saved stays absent. */
export function progressionFromRow(exportName: string, row: Row): ExportProgressionEntry {
  const out: Record<string, unknown> = { exportName };
  for (const name of ["committed", "verified"] as const) {
    if (row[`last_${name}_run_id`] === null) continue;
    out[name] = { ...fromRow(row, PROGRESSION[name]), boundary: name };
  }
  return out as unknown as ExportProgressionEntry;
}
