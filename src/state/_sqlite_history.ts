/**
 * {@linkcode RunHistory} on SQLite: `export_metrics`, `run_journal` and `run_aggregate`.
 *
 * Layer: state (private).
 *
 * @module
 */
import type { SQLInputValue } from "node:sqlite";
import type { MetricsEntry, RunAggregateEntry, RunHistory } from "../core/state.ts";
import {
  type ColumnKind,
  limit,
  num,
  type Row,
  setIfPresent,
  type SqliteConnection,
  text,
  toSql,
} from "./_sqlite_conn.ts";

/** `export_metrics` columns after the required ones, as [field, column, kind]. */
const METRIC_OPTIONAL: ReadonlyArray<readonly [keyof MetricsEntry, string, ColumnKind]> = [
  ["peakRssMb", "peak_rss_mb", "int"],
  ["errorMessage", "error_message", "text"],
  ["tuningProfile", "tuning_profile", "text"],
  ["format", "format", "text"],
  ["mode", "mode", "text"],
  ["filesProduced", "files_produced", "int"],
  ["bytesWritten", "bytes_written", "int"],
  ["retries", "retries", "int"],
  ["validated", "validated", "bool"],
  ["schemaChanged", "schema_changed", "bool"],
  ["filesCommitted", "files_committed", "int"],
  ["reconciled", "reconciled", "bool"],
  ["sourceCount", "source_count", "int"],
  ["qualityPassed", "quality_passed", "bool"],
  ["pgTempBytesDelta", "pg_temp_bytes_delta", "int"],
  ["batchSize", "batch_size", "int"],
  ["batchSizeMemoryMb", "batch_size_memory_mb", "int"],
  ["skipReason", "skip_reason", "text"],
  ["schemaFingerprint", "schema_fingerprint", "text"],
  ["chunkSize", "chunk_size", "int"],
  ["parallel", "parallel", "int"],
  ["sourceType", "source_type", "text"],
  ["destinationType", "destination_type", "text"],
  ["rivetVersion", "rivet_version", "text"],
  ["longestChunkMs", "longest_chunk_ms", "int"],
];
const METRIC_REQUIRED = [
  ["runId", "run_id"],
  ["exportName", "export_name"],
  ["runAt", "run_at"],
  ["durationMs", "duration_ms"],
  ["totalRows", "total_rows"],
  ["status", "status"],
] as const;
const METRIC_COLUMNS = [...METRIC_REQUIRED.map(([, c]) => c), ...METRIC_OPTIONAL.map(([, c]) => c)];
const INSERT_METRIC = `INSERT INTO export_metrics (${METRIC_COLUMNS.join(", ")}) VALUES (${
  METRIC_COLUMNS.map(() => "?").join(", ")
})`;

/**
 * The run history role of a SQLite store.
 *
 * @param conn The store's connection.
 * @returns The role's methods, bound to `conn`.
 */
export function sqliteRunHistory(conn: SqliteConnection): RunHistory {
  return {
    recordRun(entry) {
      return conn.run((db) => {
        const values: SQLInputValue[] = [
          ...METRIC_REQUIRED.map(([field]) => entry[field] as SQLInputValue),
          ...METRIC_OPTIONAL.map(([field, , kind]) => toSql(entry[field], kind)),
        ];
        db.prepare(INSERT_METRIC).run(...values);
      });
    },

    listMetrics(options) {
      return conn.run(() => conn.history("export_metrics", options).map(metricsFromRow));
    },

    appendJournal(entry) {
      return conn.run((db) => {
        db.prepare(
          `INSERT INTO run_journal (run_id, export_name, finished_at, journal_json)
           VALUES (?, ?, ?, ?)`,
        ).run(
          entry.runId,
          entry.exportName,
          entry.finishedAt,
          JSON.stringify(entry.journal ?? null),
        );
      });
    },

    listJournal(options) {
      return conn.run(() =>
        conn.history("run_journal", options, options.runId).map((row) => ({
          runId: text(row, "run_id"),
          exportName: text(row, "export_name"),
          finishedAt: text(row, "finished_at"),
          journal: JSON.parse(text(row, "journal_json")),
        }))
      );
    },

    saveRunAggregate(entry) {
      return conn.run((db) => {
        db.prepare(
          `INSERT OR REPLACE INTO run_aggregate (run_aggregate_id, started_at, finished_at,
             duration_ms, config_path, parallel_mode, total_exports, success_count, failed_count,
             skipped_count, total_rows, total_files, total_bytes, details_json)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          entry.id,
          entry.startedAt,
          entry.finishedAt,
          entry.durationMs,
          entry.configPath ?? null,
          entry.parallelMode,
          entry.totalExports,
          entry.successCount,
          entry.failedCount,
          entry.skippedCount,
          entry.totalRows,
          entry.totalFiles,
          entry.totalBytes,
          JSON.stringify(entry.perExport),
        );
      });
    },

    listRunAggregates(options) {
      return conn.run((db) =>
        (db.prepare(
          "SELECT * FROM run_aggregate ORDER BY finished_at DESC, rowid DESC LIMIT ?",
        ).all(limit(options.last)) as Row[]).map(aggregateFromRow)
      );
    },
  };
}

function metricsFromRow(row: Row): MetricsEntry {
  const out: Record<string, unknown> = {
    runId: text(row, "run_id"),
    exportName: text(row, "export_name"),
    runAt: text(row, "run_at"),
    durationMs: num(row, "duration_ms"),
    totalRows: num(row, "total_rows"),
    status: text(row, "status"),
  };
  for (const [field, column, kind] of METRIC_OPTIONAL) setIfPresent(out, field, row[column], kind);
  return out as unknown as MetricsEntry;
}

function aggregateFromRow(row: Row): RunAggregateEntry {
  const out: Record<string, unknown> = {
    id: text(row, "run_aggregate_id"),
    startedAt: text(row, "started_at"),
    finishedAt: text(row, "finished_at"),
    durationMs: num(row, "duration_ms"),
    parallelMode: text(row, "parallel_mode"),
    totalExports: num(row, "total_exports"),
    successCount: num(row, "success_count"),
    failedCount: num(row, "failed_count"),
    skippedCount: num(row, "skipped_count"),
    totalRows: num(row, "total_rows"),
    totalFiles: num(row, "total_files"),
    totalBytes: num(row, "total_bytes"),
    perExport: JSON.parse(text(row, "details_json")),
  };
  setIfPresent(out, "configPath", row.config_path);
  return out as unknown as RunAggregateEntry;
}
