/**
 * {@linkcode SchemaBaselines} on SQLite: `export_schema`, one JSON column list per export.
 *
 * Layer: state (private).
 *
 * @module
 */
import type { SchemaBaselines, SchemaEntry } from "../core/state.ts";
import type { SqliteConnection } from "./_sqlite_conn.ts";
import { fromRow, table, upsert } from "./_sqlite_rows.ts";

/** Keyed by export name. */
export const SCHEMA = table<SchemaEntry>({
  text: ["exportName", "updatedAt"],
  json: ["columns"],
  optional: { json: ["shape"] },
  rename: { columns: "columns_json", shape: "shape_json" },
});

const SELECT = "SELECT * FROM export_schema WHERE export_name = ?";

/**
 * The schema baseline role of a SQLite store.
 *
 * @param conn The store's connection.
 * @returns The role's methods, bound to `conn`.
 */
export function sqliteSchemaBaselines(conn: SqliteConnection): SchemaBaselines {
  return {
    readSchema(exportName) {
      return conn.first(SELECT, [exportName], (row) => fromRow(row, SCHEMA));
    },

    saveSchema(entry) {
      return conn.run((db) => {
        // Only name and type are the baseline, whatever else the caller's columns carry.
        const columns = entry.columns.map(({ name, type }) => ({ name, type }));
        upsert(db, "export_schema", SCHEMA, { ...entry, columns });
      });
    },
  };
}
