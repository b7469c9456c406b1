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
import { type Row, setIfPresent, type SqliteConnection, text, textOrNull } from "./_sqlite_conn.ts";

/**
 * The cursor role of a SQLite store.
 *
 * @param conn The store's connection.
 * @returns The role's methods, bound to `conn`.
 */
export function sqliteCursorStore(conn: SqliteConnection): CursorStore {
  return {
    readCursor(exportName) {
      return conn.run((db) => {
        const row = db.prepare("SELECT * FROM export_state WHERE export_name = ?").get(
          exportName,
        ) as Row | undefined;
        return row === undefined ? undefined : cursorFromRow(row);
      });
    },

    listCursors() {
      return conn.run((db) =>
        (db.prepare("SELECT * FROM export_state ORDER BY export_name").all() as Row[])
          .map(cursorFromRow)
      );
    },

    advanceCursor(entry) {
      // A kill before COMMIT must leave the previous cursor (the `in_state_write` crash point).
      return conn.write((db) => {
        db.prepare(
          `INSERT INTO export_state (export_name, last_cursor_value, last_run_at) VALUES (?, ?, ?)
           ON CONFLICT (export_name) DO UPDATE SET last_cursor_value = excluded.last_cursor_value,
             last_run_at = excluded.last_run_at`,
        ).run(entry.exportName, entry.lastCursorValue, entry.lastRunAt);
      }, { crashPoint: true });
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
      const p = `last_${entry.boundary}`;
      const cols = [`${p}_strategy`, `${p}_cursor`, `${p}_chunk_index`, `${p}_run_id`, `${p}_at`];
      return conn.run((db) => {
        db.prepare(
          `INSERT INTO export_progression (export_name, ${cols.join(", ")})
           VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (export_name) DO UPDATE SET ${
            cols.map((c) => `${c} = excluded.${c}`).join(", ")
          }`,
        ).run(
          entry.exportName,
          entry.strategy,
          entry.cursor ?? null,
          entry.chunkIndex ?? null,
          entry.runId,
          entry.at,
        );
      });
    },

    readProgression(exportName) {
      return conn.run((db) => {
        const row = db.prepare("SELECT * FROM export_progression WHERE export_name = ?")
          .get(exportName) as Row | undefined;
        if (row === undefined) return undefined;
        const out: Record<string, unknown> = { exportName };
        for (const boundary of ["committed", "verified"] as const) {
          const mark = progressionFromRow(row, exportName, boundary);
          if (mark !== undefined) out[boundary] = mark;
        }
        return out as unknown as ExportProgressionEntry;
      });
    },
  };
}

function cursorFromRow(row: Row): CursorEntry {
  return {
    exportName: text(row, "export_name"),
    lastCursorValue: textOrNull(row, "last_cursor_value"),
    lastRunAt: text(row, "last_run_at"),
  };
}

function progressionFromRow(
  row: Row,
  exportName: string,
  boundary: ProgressionBoundary,
): ProgressionEntry | undefined {
  const p = `last_${boundary}`;
  if (row[`${p}_run_id`] === null) return undefined;
  const out: Record<string, unknown> = {
    exportName,
    boundary,
    strategy: text(row, `${p}_strategy`),
    runId: text(row, `${p}_run_id`),
    at: text(row, `${p}_at`),
  };
  setIfPresent(out, "cursor", row[`${p}_cursor`]);
  setIfPresent(out, "chunkIndex", row[`${p}_chunk_index`], "int");
  return out as unknown as ProgressionEntry;
}
