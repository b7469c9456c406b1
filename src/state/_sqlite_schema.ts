/**
 * {@linkcode SchemaBaselines} on SQLite: `export_schema`, one JSON column list per export.
 *
 * Layer: state (private).
 *
 * @module
 */
import type { SchemaBaselines } from "../core/state.ts";
import { type Row, type SqliteConnection, text } from "./_sqlite_conn.ts";

/**
 * The schema baseline role of a SQLite store.
 *
 * @param conn The store's connection.
 * @returns The role's methods, bound to `conn`.
 */
export function sqliteSchemaBaselines(conn: SqliteConnection): SchemaBaselines {
  return {
    readSchema(exportName) {
      return conn.run((db) => {
        const row = db.prepare("SELECT * FROM export_schema WHERE export_name = ?").get(
          exportName,
        ) as Row | undefined;
        if (row === undefined) return undefined;
        return {
          exportName,
          columns: JSON.parse(text(row, "columns_json")),
          updatedAt: text(row, "updated_at"),
        };
      });
    },

    saveSchema(entry) {
      return conn.run((db) => {
        // Only name and type are the baseline, whatever else the caller's columns carry.
        const columns = entry.columns.map(({ name, type }) => ({ name, type }));

        db.prepare(
          `INSERT INTO export_schema (export_name, columns_json, updated_at) VALUES (?, ?, ?)
           ON CONFLICT (export_name) DO UPDATE SET columns_json = excluded.columns_json,
             updated_at = excluded.updated_at`,
        ).run(entry.exportName, JSON.stringify(columns), entry.updatedAt);
      });
    },
  };
}
