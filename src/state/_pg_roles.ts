/**
 * The single-table roles on PostgreSQL: {@linkcode CursorStore} (`export_state`,
 * `export_progression`), {@linkcode FileLog} (`file_log`), {@linkcode RunHistory}
 * (`export_metrics`, `run_journal`, `run_aggregate`) and {@linkcode SchemaBaselines}
 * (`export_schema`). The entry ↔ row mappings are the SQLite store's, so both backends store a
 * field under the same column.
 *
 * Layer: state (private).
 *
 * @module
 */
import type {
  CursorStore,
  FileLog,
  RunHistory,
  RunTraces,
  SchemaBaselines,
} from "../core/state.ts";
import { dollar, type PgQuery, type PgStateConnection } from "./_pg_conn.ts";
import { cursorFromRow, PROGRESSION, progressionFromRow } from "./_sqlite_cursors.ts";
import { PART } from "./_sqlite_file_log.ts";
import { AGGREGATE, JOURNAL, METRICS } from "./_sqlite_history.ts";
import { limit } from "./_sqlite_conn.ts";
import { fromRow, insertSql, params, type Row, type Table, upsertClause } from "./_sqlite_rows.ts";
import { SCHEMA } from "./_sqlite_schema.ts";
import { runTraces } from "./_traces.ts";

/** Inserts an entry as one row; with `upsert`, sets the mapped columns of an existing key. */
function insert<T>(q: PgQuery, name: string, table: Table<T>, entry: T, upsert = false) {
  const sql = insertSql("INSERT", name, table, dollar) + (upsert ? upsertClause(table) : "");
  return q.exec(sql, params(entry, table));
}

/**
 * The cursor role of a PostgreSQL store.
 *
 * @param conn The store's session.
 * @returns The role's methods, bound to `conn`.
 */
export function pgCursorStore(conn: PgStateConnection): CursorStore {
  return {
    readCursor(exportName, identity) {
      if (identity === undefined) {
        const sql = "SELECT * FROM export_state WHERE export_name = $1 " +
          `ORDER BY last_run_at DESC, config_identity COLLATE "C" LIMIT 1`;
        return conn.first(sql, [exportName], cursorFromRow);
      }
      // This identity's cursor first (false sorts before true); one stored without, else.
      const sql = "SELECT * FROM export_state WHERE export_name = $1 " +
        "AND config_identity IN ($2, '') ORDER BY config_identity = '' LIMIT 1";
      return conn.first(sql, [exportName, identity], cursorFromRow);
    },

    listCursors() {
      // Byte order, as SQLite sorts: independent of the database's collation.
      const sql = `SELECT * FROM export_state ORDER BY export_name COLLATE "C", ` +
        `config_identity COLLATE "C"`;
      return conn.list(sql, [], cursorFromRow);
    },

    async advanceCursor(entry) {
      const identity = entry.configIdentity ?? "";
      // A kill before COMMIT must leave the previous cursor (the `in_state_write` crash point).
      await conn.write(async (q) => {
        await q.exec(
          "INSERT INTO export_state (export_name, config_identity, last_cursor_value, " +
            "last_run_at) VALUES ($1, $2, $3, $4) ON CONFLICT (export_name, config_identity) " +
            "DO UPDATE SET last_cursor_value = excluded.last_cursor_value, " +
            "last_run_at = excluded.last_run_at",
          [entry.exportName, identity, entry.lastCursorValue, entry.lastRunAt],
        );
        if (identity !== "") {
          // The cursor stored before identities existed, which this export has taken over.
          await q.exec(
            "DELETE FROM export_state WHERE export_name = $1 AND config_identity = ''",
            [entry.exportName],
          );
        }
      }, { crashPoint: true });
    },

    adoptCursor(exportName, identity) {
      return conn.write(async (q) => {
        const others = await q.rows(
          "SELECT config_identity FROM export_state WHERE export_name = $1 " +
            "AND config_identity <> $2 FOR UPDATE",
          [exportName, identity],
        );
        if (others.length === 0) return "none" as const;
        if (others.length > 1) return "ambiguous" as const;
        await q.exec("DELETE FROM export_state WHERE export_name = $1 AND config_identity = $2", [
          exportName,
          identity,
        ]);
        await q.exec(
          "UPDATE export_state SET config_identity = $1 WHERE export_name = $2 " +
            "AND config_identity = $3",
          [identity, exportName, String(others[0]!.config_identity)],
        );
        return "adopted" as const;
      });
    },

    resetExport(exportName) {
      return conn.write(async (q) => {
        const a = await q.exec("DELETE FROM export_state WHERE export_name = $1", [exportName]);
        const b = await q.exec("DELETE FROM export_progression WHERE export_name = $1", [
          exportName,
        ]);
        return a + b > 0;
      });
    },

    async saveProgression(entry) {
      // Only this boundary's columns are set: the other boundary stays as it was.
      const table = PROGRESSION[entry.boundary];
      await conn.run((q) => insert(q, "export_progression", table, entry, true));
    },

    readProgression(exportName) {
      const sql = "SELECT * FROM export_progression WHERE export_name = $1";
      return conn.first(sql, [exportName], (row) => progressionFromRow(exportName, row));
    },
  };
}

/**
 * The file log role of a PostgreSQL store.
 *
 * @param conn The store's session.
 * @returns The role's methods, bound to `conn`.
 */
export function pgFileLog(conn: PgStateConnection): FileLog {
  const partFromRow = (row: Row) => fromRow(row, PART);
  return {
    async recordPart(entry) {
      await conn.run((q) => insert(q, "file_log", PART, entry));
    },

    listFiles(options) {
      return conn.history("file_log", options, partFromRow);
    },

    listRunParts(runId) {
      const sql = "SELECT * FROM file_log WHERE run_id = $1 ORDER BY id";
      return conn.list(sql, [runId], partFromRow);
    },

    markPartsQuarantined(entry) {
      // One statement, so the marking is atomic; the names travel as one JSON parameter.
      return conn.run((q) => {
        if (entry.fileNames.length === 0) return Promise.resolve(0);
        return q.exec(
          `UPDATE file_log SET status = 'quarantined'
           WHERE run_id = $1 AND (status IS NULL OR status <> 'quarantined')
             AND file_name IN (SELECT json_array_elements_text($2::json))`,
          [entry.runId, JSON.stringify(entry.fileNames)],
        );
      });
    },
  };
}

/**
 * The run history role of a PostgreSQL store.
 *
 * @param conn The store's session.
 * @returns The role's methods, bound to `conn`.
 */
export function pgRunHistory(conn: PgStateConnection): RunHistory {
  return {
    async recordRun(entry) {
      await conn.run((q) => insert(q, "export_metrics", METRICS, entry));
    },

    listMetrics(options) {
      return conn.history("export_metrics", options, (row) => fromRow(row, METRICS));
    },

    async appendJournal(entry) {
      await conn.run((q) => insert(q, "run_journal", JOURNAL, entry));
    },

    listJournal(options) {
      return conn.history("run_journal", options, (row) => fromRow(row, JOURNAL));
    },

    async saveRunAggregate(entry) {
      // Delete and insert, as SQLite's INSERT OR REPLACE does: the replacement is the newest.
      await conn.write(async (q) => {
        await q.exec("DELETE FROM run_aggregate WHERE run_aggregate_id = $1", [entry.id]);
        await insert(q, "run_aggregate", AGGREGATE, entry);
      });
    },

    listRunAggregates(options) {
      return conn.list(
        "SELECT * FROM run_aggregate ORDER BY finished_at DESC, seq DESC LIMIT $1",
        [limit(options.last)],
        (row) => fromRow(row, AGGREGATE),
      );
    },
  };
}

/**
 * The schema baseline role of a PostgreSQL store.
 *
 * @param conn The store's session.
 * @returns The role's methods, bound to `conn`.
 */
export function pgSchemaBaselines(conn: PgStateConnection): SchemaBaselines {
  return {
    readSchema(exportName) {
      const sql = "SELECT * FROM export_schema WHERE export_name = $1";
      return conn.first(sql, [exportName], (row) => fromRow(row, SCHEMA));
    },

    async saveSchema(entry) {
      // Only name and type are the baseline, whatever else the caller's columns carry.
      const columns = entry.columns.map(({ name, type }) => ({ name, type }));
      await conn.run((q) => insert(q, "export_schema", SCHEMA, { ...entry, columns }, true));
    },
  };
}

/**
 * The run trace role of a PostgreSQL store (`run_trace`, insertion order by `seq`).
 *
 * @param conn The store's session.
 * @returns The role's methods, bound to `conn`.
 */
export function pgRunTraces(conn: PgStateConnection): RunTraces {
  return runTraces(
    {
      write: (statements) =>
        conn.write(async (q) => {
          for (const { sql, params } of statements) await q.exec(sql, params);
        }),
      firstJson: ({ sql, params }) => conn.first(sql, params, (row) => String(row.trace_json)),
      allJson: ({ sql, params }) => conn.list(sql, params, (row) => String(row.trace_json)),
    },
    dollar,
    "seq",
  );
}
