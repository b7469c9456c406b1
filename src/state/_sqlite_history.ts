/**
 * {@linkcode RunHistory} on SQLite: `export_metrics`, `run_journal` and `run_aggregate`.
 *
 * Layer: state (private).
 *
 * @module
 */
import type {
  JournalEntry,
  MetricsEntry,
  RunAggregateEntry,
  RunHistory,
  RunTraces,
} from "../core/state.ts";
import { limit, type SqliteConnection } from "./_sqlite_conn.ts";
import { fromRow, insert, table } from "./_sqlite_rows.ts";
import { runTraces } from "./_traces.ts";

/** The optional columns are recorded when the run measured them. */
export const METRICS = table<MetricsEntry>({
  text: ["runId", "exportName", "runAt", "status"],
  int: ["durationMs", "totalRows"],
  optional: {
    text: [
      "errorMessage",
      "tuningProfile",
      "format",
      "mode",
      "skipReason",
      "schemaFingerprint",
      "sourceType",
      "destinationType",
      "rivetVersion",
    ],
    int: [
      "peakRssMb",
      "filesProduced",
      "bytesWritten",
      "retries",
      "filesCommitted",
      "sourceCount",
      "pgTempBytesDelta",
      "batchSize",
      "batchSizeMemoryMb",
      "chunkSize",
      "parallel",
      "longestChunkMs",
    ],
    bool: ["validated", "schemaChanged", "reconciled", "qualityPassed"],
  },
});

export const JOURNAL = table<JournalEntry>({
  text: ["runId", "exportName", "finishedAt"],
  json: ["journal"],
  rename: { journal: "journal_json" },
});

export const AGGREGATE = table<RunAggregateEntry>({
  text: ["id", "startedAt", "finishedAt", "parallelMode"],
  int: [
    "durationMs",
    "totalExports",
    "successCount",
    "failedCount",
    "skippedCount",
    "totalRows",
    "totalFiles",
    "totalBytes",
  ],
  json: ["perExport"],
  optional: { text: ["configPath"] },
  rename: { id: "run_aggregate_id", perExport: "details_json" },
});

/**
 * The run history role of a SQLite store.
 *
 * @param conn The store's connection.
 * @returns The role's methods, bound to `conn`.
 */
export function sqliteRunHistory(conn: SqliteConnection): RunHistory {
  return {
    recordRun(entry) {
      return conn.run((db) => insert(db, "export_metrics", METRICS, entry));
    },

    listMetrics(options) {
      return conn.history("export_metrics", options, (row) => fromRow(row, METRICS));
    },

    appendJournal(entry) {
      return conn.run((db) => insert(db, "run_journal", JOURNAL, entry));
    },

    listJournal(options) {
      return conn.history("run_journal", options, (row) => fromRow(row, JOURNAL), options.runId);
    },

    saveRunAggregate(entry) {
      return conn.run((db) => insert(db, "run_aggregate", AGGREGATE, entry, "INSERT OR REPLACE"));
    },

    listRunAggregates(options) {
      return conn.list(
        "SELECT * FROM run_aggregate ORDER BY finished_at DESC, rowid DESC LIMIT ?",
        [limit(options.last)],
        (row) => fromRow(row, AGGREGATE),
      );
    },
  };
}

/**
 * The run trace role of a SQLite store (`run_trace`, insertion order by `rowid`).
 *
 * @param conn The store's connection.
 * @returns The role's methods, bound to `conn`.
 */
export function sqliteRunTraces(conn: SqliteConnection): RunTraces {
  return runTraces(
    {
      write: (statements) =>
        conn.write((db) => {
          for (const { sql, params } of statements) db.prepare(sql).run(...params);
        }),
      firstJson: ({ sql, params }) => conn.first(sql, params, (row) => String(row.trace_json)),
      allJson: ({ sql, params }) => conn.list(sql, params, (row) => String(row.trace_json)),
    },
    () => "?",
    "rowid",
  );
}
