/**
 * The `--json` documents of the inspection commands (`state show|files|chunks|progression`,
 * `metrics`, `journal`): one JSON object per command whose single key holds an array, with
 * snake_case field names that match `rivet run --json` wherever the same fact appears
 * (`export_name`, `run_id`, `rows`, `files`, `bytes`, `duration_ms`, `mode`, `status`,
 * `error_message`).
 *
 * Conventions, the same in every document: every field is always present (a fact that was not
 * recorded is `null`, never a missing key); times are ISO-8601 UTC strings; counts are JSON
 * numbers (the state keeps them as exact integers, far below 2^53); cursor values and chunk
 * bounds are strings exactly as stored, so a bigint or decimal cursor never loses digits. Every
 * string is redacted, as the human tables are.
 *
 * Each state record's fields are mapped by a table typed over the record's keys, so a field added
 * to a state record fails type checking here until it has a JSON name.
 *
 * Layer: cli.
 *
 * @module
 */
import type {
  ChunkRunEntry,
  ChunkTaskEntry,
  CursorEntry,
  ExportProgressionEntry,
  JournalEntry,
  MetricsEntry,
  PartEntry,
  ProgressionEntry,
} from "../../core/state.ts";
import { redact } from "../../_util/redact.ts";

/** A JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | {
  [key: string]: JsonValue;
};

type JsonRecord = { [key: string]: JsonValue };

/** The JSON name of every field of a state record (`null`: left out). */
type JsonNames<T> = { readonly [K in keyof Required<T>]: string | null };

/**
 * One JSON document on its own: `{"<key>": [...]}`, indented like `rivet run --json`, every
 * string redacted (cursor values and file names come from the data), ending with a newline.
 *
 * @param key The top-level key (`cursors`, `files`, `chunk_runs`, `progression`, `runs`,
 *   `journals`).
 * @param items The array.
 * @returns The text to print on stdout.
 *
 * @example
 * ```ts
 * import { jsonDocument } from "./state_json.ts";
 * if (jsonDocument("runs", []) !== '{\n  "runs": []\n}\n') throw new Error();
 * ```
 */
export function jsonDocument(key: string, items: readonly JsonValue[]): string {
  return JSON.stringify(
    { [key]: items },
    (_k, value: unknown) => (typeof value === "string" ? redact(value) : value),
    2,
  ) + "\n";
}

/**
 * Maps a record through a table of JSON names: every key of the table is emitted, `null` when
 * the record lacks it.
 */
function mapped<T extends object>(record: T, names: JsonNames<T>): JsonRecord {
  const out: JsonRecord = {};
  for (const [field, name] of Object.entries(names) as [keyof T & string, string | null][]) {
    if (name === null) continue;
    const value = record[field] as JsonValue | undefined;
    out[name] = value === undefined ? null : value;
  }
  return out;
}

const cursorNames = {
  exportName: "export_name",
  configIdentity: "config_identity",
  lastCursorValue: "last_cursor_value",
  lastRunAt: "last_run_at",
} as const satisfies JsonNames<CursorEntry>;

/**
 * `state show --json`: one incremental cursor, `{export_name, config_identity, last_cursor_value,
 * last_run_at}` (`config_identity` null for a cursor stored before identities existed).
 */
export const cursorJson = (c: CursorEntry): JsonRecord => mapped(c, cursorNames);

const partNames = {
  runId: "run_id",
  exportName: "export_name",
  fileName: "file_name",
  rowCount: "rows",
  bytes: "bytes",
  format: "format",
  compression: "compression",
  createdAt: "created_at",
  contentFingerprint: "content_fingerprint",
  contentMd5: "content_md5",
  chunkIndex: "chunk_index",
  partIndex: "part_index",
  status: "status",
} as const satisfies JsonNames<PartEntry>;

/**
 * `state files --json`: one file log row. `status` is `committed` unless `--resume` quarantined
 * the part.
 *
 * @param f The file log row.
 * @returns The row with snake_case names.
 */
export function partJson(f: PartEntry): JsonRecord {
  return { ...mapped(f, partNames), status: f.status ?? "committed" };
}

const chunkRunNames = {
  runId: "run_id",
  exportName: "export_name",
  planHash: "plan_hash",
  status: "status",
  maxAttempts: "max_attempts",
  createdAt: "created_at",
  updatedAt: "updated_at",
} as const satisfies JsonNames<ChunkRunEntry>;

const chunkTaskNames = {
  // The run is the parent object's.
  runId: null,
  chunkIndex: "chunk_index",
  status: "status",
  failure: "failure",
  attempts: "attempts",
  startKey: "start_key",
  endKey: "end_key",
  rowsWritten: "rows",
  fileName: "file_name",
  lastError: "last_error",
  updatedAt: "updated_at",
  // Who holds (or last held) the task: null before state schema v5.
  claimedByHost: "host",
  claimedByPid: "pid",
  leaseExpiresAt: "lease_expires_at",
} as const satisfies JsonNames<ChunkTaskEntry>;

/**
 * `state chunks --json`: a checkpointed run with its tasks and their counts by status.
 *
 * @param run The run.
 * @param tasks Its tasks, by chunk index.
 * @returns The run with `task_counts` and `tasks`.
 */
export function chunkRunJson(run: ChunkRunEntry, tasks: readonly ChunkTaskEntry[]): JsonRecord {
  const count = (status: string) => tasks.filter((t) => t.status === status).length;
  return {
    ...mapped(run, chunkRunNames),
    task_counts: {
      total: tasks.length,
      completed: count("completed"),
      failed: count("failed"),
      running: count("running"),
      pending: count("pending"),
    },
    tasks: tasks.map((t) => mapped(t, chunkTaskNames)),
  };
}

const boundaryNames = {
  exportName: null,
  boundary: null,
  strategy: "strategy",
  cursor: "cursor",
  chunkIndex: "chunk_index",
  runId: "run_id",
  at: "at",
} as const satisfies JsonNames<ProgressionEntry>;

/**
 * `state progression --json`: both boundaries of one export, each `null` when never recorded.
 *
 * @param p The export's progression.
 * @returns `{export_name, committed, verified}`.
 */
export function progressionJson(p: ExportProgressionEntry): JsonRecord {
  const boundary = (b: ProgressionEntry | undefined) =>
    b === undefined ? null : mapped(b, boundaryNames);
  return {
    export_name: p.exportName,
    committed: boundary(p.committed),
    verified: boundary(p.verified),
  };
}

const metricsNames = {
  runId: "run_id",
  exportName: "export_name",
  runAt: "run_at",
  status: "status",
  mode: "mode",
  totalRows: "rows",
  filesProduced: "files",
  bytesWritten: "bytes",
  durationMs: "duration_ms",
  errorMessage: "error_message",
  peakRssMb: "peak_rss_mb",
  tuningProfile: "tuning_profile",
  format: "format",
  retries: "retries",
  validated: "validated",
  schemaChanged: "schema_changed",
  filesCommitted: "files_committed",
  reconciled: "reconciled",
  sourceCount: "source_count",
  qualityPassed: "quality_passed",
  pgTempBytesDelta: "pg_temp_bytes_delta",
  batchSize: "batch_size",
  batchSizeMemoryMb: "batch_size_memory_mb",
  skipReason: "skip_reason",
  schemaFingerprint: "schema_fingerprint",
  chunkSize: "chunk_size",
  parallel: "parallel",
  sourceType: "source_type",
  destinationType: "destination_type",
  rivetVersion: "rivet_version",
  longestChunkMs: "longest_chunk_ms",
} as const satisfies JsonNames<MetricsEntry>;

/**
 * `metrics --json`: one run of one export, every column of the run history (`rows`, `files`,
 * `bytes` as in `rivet run --json`).
 */
export const metricsJson = (m: MetricsEntry): JsonRecord => mapped(m, metricsNames);

/** Shape of a journal as `rivet run` stores it (see `pipeline/run_record.ts`). */
export interface StoredJournal {
  readonly events?: readonly {
    event: string;
    at?: string;
    key?: string;
    rows?: number;
    bytes?: number;
    code?: string;
    message?: string;
  }[];
  readonly completed?: {
    status?: string;
    mode?: string;
    rows?: number;
    files?: number;
    bytes?: number;
    durationMs?: number;
    retries?: number;
    error?: string;
  };
}

/**
 * `journal --json`: one run's digest and its recorded events.
 *
 * @param entry The journal row.
 * @returns `{run_id, export_name, finished_at, status, mode, rows, files, bytes, duration_ms,
 *   retries, error_message, events: [{event, at, key, rows, bytes, code, message}]}`.
 */
export function journalJson(entry: JournalEntry): JsonRecord {
  const j = (entry.journal ?? {}) as StoredJournal;
  const c = j.completed ?? {};
  const orNull = <T extends JsonValue>(v: T | undefined): T | null => v === undefined ? null : v;
  return {
    run_id: entry.runId,
    export_name: entry.exportName,
    finished_at: entry.finishedAt,
    status: orNull(c.status),
    mode: orNull(c.mode),
    rows: orNull(c.rows),
    files: orNull(c.files),
    bytes: orNull(c.bytes),
    duration_ms: orNull(c.durationMs),
    retries: c.retries ?? 0,
    error_message: orNull(c.error),
    events: (j.events ?? []).map((e) => ({
      event: e.event,
      at: orNull(e.at),
      key: orNull(e.key),
      rows: orNull(e.rows),
      bytes: orNull(e.bytes),
      code: orNull(e.code),
      message: orNull(e.message),
    })),
  };
}
