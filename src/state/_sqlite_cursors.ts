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

/** Keyed by export name and identity ('' in the column: stored before identities existed). */
export const CURSOR = table<CursorEntry>({
  text: ["exportName", "lastCursorValue", "lastRunAt"],
  optional: { text: ["configIdentity"] },
});

/** A cursor row as an entry: the '' identity of an older file reads back as absent. */
export function cursorFromRow(row: Row): CursorEntry {
  const entry = fromRow(row, CURSOR);
  if (entry.configIdentity !== "") return entry;
  const { configIdentity: _, ...legacy } = entry;
  return legacy;
}

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
  return {
    readCursor(exportName, identity) {
      if (identity === undefined) {
        const sql = "SELECT * FROM export_state WHERE export_name = ? " +
          "ORDER BY last_run_at DESC, config_identity LIMIT 1";
        return conn.first(sql, [exportName], cursorFromRow);
      }
      // This identity's cursor first; one stored before identities existed, else.
      const sql =
        "SELECT * FROM export_state WHERE export_name = ? AND config_identity IN (?, '') " +
        "ORDER BY config_identity = '' LIMIT 1";
      return conn.first(sql, [exportName, identity], cursorFromRow);
    },

    listCursors() {
      const sql = "SELECT * FROM export_state ORDER BY export_name, config_identity";
      return conn.list(sql, [], cursorFromRow);
    },

    advanceCursor(entry) {
      const identity = entry.configIdentity ?? "";
      // A kill before COMMIT must leave the previous cursor (the `in_state_write` crash point).
      return conn.write((db) => {
        db.prepare(
          "INSERT INTO export_state (export_name, config_identity, last_cursor_value, last_run_at) " +
            "VALUES (?, ?, ?, ?) ON CONFLICT (export_name, config_identity) DO UPDATE SET " +
            "last_cursor_value = excluded.last_cursor_value, last_run_at = excluded.last_run_at",
        ).run(entry.exportName, identity, entry.lastCursorValue, entry.lastRunAt);
        if (identity !== "") {
          // The cursor of an older file, which this export has now taken over.
          db.prepare("DELETE FROM export_state WHERE export_name = ? AND config_identity = ''")
            .run(entry.exportName);
        }
      }, { crashPoint: true });
    },

    adoptCursor(exportName, identity) {
      return conn.write((db) => {
        const others = db.prepare(
          "SELECT config_identity FROM export_state WHERE export_name = ? AND config_identity <> ?",
        ).all(exportName, identity);
        if (others.length === 0) return "none" as const;
        if (others.length > 1) return "ambiguous" as const;
        db.prepare("DELETE FROM export_state WHERE export_name = ? AND config_identity = ?")
          .run(exportName, identity);
        db.prepare(
          "UPDATE export_state SET config_identity = ? WHERE export_name = ? AND config_identity = ?",
        ).run(identity, exportName, others[0]!.config_identity as string);
        return "adopted" as const;
      });
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
