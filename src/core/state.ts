/**
 * The state contract: cursors, file log, run metrics, schema baselines, chunk checkpoints,
 * progression, run journal and run aggregates, as kept in `.rivet_state.db`.
 *
 * Layer: core. Imports nothing from `src/`.
 *
 * The contract is split into roles, each named after what the code that uses it does:
 *
 * | role                              | holds                                  | used by              |
 * | --------------------------------- | -------------------------------------- | -------------------- |
 * | {@linkcode CursorStore}           | incremental cursors, progression       | runs, `state` cmds   |
 * | {@linkcode FileLog}               | committed parts, quarantine marks      | runs, `--resume`     |
 * | {@linkcode ChunkLedger}           | checkpointed runs, tasks, claims       | chunked runs         |
 * | {@linkcode RunHistory}            | metrics, journals, run aggregates      | `metrics`, `journal` |
 * | {@linkcode SchemaBaselines}       | schema drift baselines                 | schema drift check   |
 * | {@linkcode RunTraces}             | chunk timelines and samples of runs    | `report`             |
 *
 * {@linkcode StateStore} is all of them on one connection plus `close`. Each role's doc says
 * what it promises (ordering, atomicity, what survives a crash) and which of its operations must
 * be transactional: that list is what every backend keeps (the SQLite file, and the PostgreSQL
 * store selected by `RIVET_STATE_URL`, ADR-0016). Everything else is single statements.
 *
 * Every method takes one record (an object of named fields) and is async, so that such a
 * backend can implement the same contract. Times are ISO-8601 UTC strings. Numbers are JS
 * numbers: row and byte counts stay far below 2^53. Returned objects are the caller's own:
 * changing them never changes stored state.
 *
 * @module
 */
import type { RunTrace } from "./run_trace.ts";

/** Lifecycle of a checkpointed chunk task: `pending → running → completed | failed`. */
export type ChunkTaskStatus = "pending" | "running" | "completed" | "failed";

/** Lifecycle of a checkpointed chunked run. */
export type ChunkRunStatus = "in_progress" | "completed";

/** Final status of one export run, as `export_metrics.status` records it. */
export type RunStatus = "success" | "failed" | "skipped";

/** Which boundary of `export_progression` a record describes. */
export type ProgressionBoundary = "committed" | "verified";

/** How a multi-export invocation ran its exports (`run_aggregate.parallel_mode`). */
export type ParallelMode = "sequential" | "parallel-threads" | "parallel-processes";

/** The incremental cursor of one export (`export_state`). */
export interface CursorEntry {
  /** Export name; with the identity, the key. */
  readonly exportName: string;
  /**
   * The identity of the export's source and query (`plan/identity.ts`) the cursor belongs to.
   * Absent for a cursor stored before identities existed (a state file older than schema v5):
   * the next run of that export with any identity takes it over.
   */
  readonly configIdentity?: string;
  /** Rendered cursor value (`plan/cursor.ts`), or null when the run produced no usable cursor. */
  readonly lastCursorValue: string | null;
  /** When the cursor was advanced. */
  readonly lastRunAt: string;
}

/**
 * Whether a file log row still describes a live part: `quarantined` once `--resume` moved the
 * object to `_quarantine/<run_id>/` (the row is kept as history, never deleted).
 */
export type PartStatus = "committed" | "quarantined";

/** One committed part in the file log (`file_log`). */
export interface PartEntry {
  readonly runId: string;
  readonly exportName: string;
  /** Object key relative to the destination root. */
  readonly fileName: string;
  readonly rowCount: number;
  readonly bytes: number;
  /** `parquet` or `csv`. */
  readonly format: string;
  /** Compression codec, when the format has one. */
  readonly compression?: string;
  readonly createdAt: string;
  /** `xxh3:<16 lowercase hex>` of the part's bytes, the manifest's `content_fingerprint`. */
  readonly contentFingerprint?: string;
  /** Base64 MD5 of the part's bytes, the manifest's `content_md5`. */
  readonly contentMd5?: string;
  /** The chunk the part belongs to, for chunked runs. */
  readonly chunkIndex?: number;
  /** 0-based index of the part within its chunk (or its export, unchunked) when parts rotate. */
  readonly partIndex?: number;
  /**
   * Absent means `committed`: rows written before schema v2, or recorded without a status, read
   * back without one.
   */
  readonly status?: PartStatus;
}

/** Parts of one run that `--resume` quarantined, by file name. */
export interface QuarantinedPartsEntry {
  readonly runId: string;
  /** Object keys as recorded in the file log (duplicates are harmless). */
  readonly fileNames: readonly string[];
}

/** Selects rows of a history table, newest first. */
export interface ListOptions {
  /** Only this export; every export when omitted. */
  readonly exportName?: string;
  /** At most this many rows (the newest). */
  readonly last: number;
}

/**
 * One export run (`export_metrics`), with the Rust tool's full column list. Required fields are
 * known for every run; the rest are recorded when the run measured them.
 */
export interface MetricsEntry {
  readonly runId: string;
  readonly exportName: string;
  readonly runAt: string;
  readonly durationMs: number;
  readonly totalRows: number;
  readonly status: RunStatus;
  readonly peakRssMb?: number;
  readonly errorMessage?: string;
  readonly tuningProfile?: string;
  readonly format?: string;
  readonly mode?: string;
  readonly filesProduced?: number;
  readonly bytesWritten?: number;
  readonly retries?: number;
  readonly validated?: boolean;
  readonly schemaChanged?: boolean;
  readonly filesCommitted?: number;
  readonly reconciled?: boolean;
  readonly sourceCount?: number;
  readonly qualityPassed?: boolean;
  readonly pgTempBytesDelta?: number;
  readonly batchSize?: number;
  readonly batchSizeMemoryMb?: number;
  readonly skipReason?: string;
  readonly schemaFingerprint?: string;
  readonly chunkSize?: number;
  readonly parallel?: number;
  readonly sourceType?: string;
  readonly destinationType?: string;
  readonly rivetVersion?: string;
  readonly longestChunkMs?: number;
}

/** One column of a schema baseline. */
export interface SchemaColumnEntry {
  readonly name: string;
  /** Type name as the drift check compares it. */
  readonly type: string;
}

/** The drift baseline of one export (`export_schema`). */
export interface SchemaEntry {
  readonly exportName: string;
  readonly columns: readonly SchemaColumnEntry[];
  readonly updatedAt: string;
  /**
   * Longest value in bytes per string/binary column over the successful runs (shape drift,
   * `shape_drift_warn_factor`); absent before the first run that tracked it.
   */
  readonly shape?: Readonly<Record<string, number>>;
}

/** One planned window of a checkpointed chunked run; its index is its position in the plan. */
export interface ChunkBoundsEntry {
  /** Rendered lower bound, or null when the window is open below. */
  readonly startKey: string | null;
  /** Rendered upper bound, or null when the window is open above. */
  readonly endKey: string | null;
}

/** A new checkpointed chunked run and its tasks (`chunk_run` + `chunk_task`). */
export interface ChunkPlanEntry {
  readonly runId: string;
  readonly exportName: string;
  /** xxh3-64 hex of base query, column and shape: `--resume` requires it unchanged. */
  readonly planHash: string;
  /** `chunk_max_attempts`: a task is claimed at most this many times. */
  readonly maxAttempts: number;
  /** Task `i` is `tasks[i]`, created `pending` with 0 attempts. */
  readonly tasks: readonly ChunkBoundsEntry[];
  /** Creation time; now when omitted. */
  readonly createdAt?: string;
}

/** A checkpointed chunked run (`chunk_run`). */
export interface ChunkRunEntry {
  readonly runId: string;
  readonly exportName: string;
  readonly planHash: string;
  readonly status: ChunkRunStatus;
  readonly maxAttempts: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** One chunk task (`chunk_task`). */
export interface ChunkTaskEntry extends ChunkBoundsEntry {
  readonly runId: string;
  readonly chunkIndex: number;
  readonly status: ChunkTaskStatus;
  /** Claims so far, the current one included. */
  readonly attempts: number;
  readonly lastError?: string;
  /**
   * Class of the failure of a `failed` task: `transient` (the run ran out of its retry budget,
   * or of disk space: `--resume` gives the task a fresh budget) or `permanent` (a deterministic
   * error: only `--resume --force` or `state reset-chunks` retries it). Absent for other
   * statuses, and for failures recorded before state schema v3 (treated as transient).
   */
  readonly failure?: ChunkFailureClass;
  readonly rowsWritten?: number;
  /** First file the chunk committed. */
  readonly fileName?: string;
  readonly updatedAt: string;
  /** Host name of the process that claimed the task last (absent before state schema v5). */
  readonly claimedByHost?: string;
  /** Process id of that claimer. */
  readonly claimedByPid?: number;
  /** Until when the claim holds, when the claimer asked for a lease. */
  readonly leaseExpiresAt?: string;
}

/** Who claims a chunk task (`claimChunk`), recorded on the task. */
export interface ChunkClaimOptions {
  /** Host name of the claimer; the store's host when omitted. */
  readonly host?: string;
  /** Process id of the claimer; the store's process when omitted. */
  readonly pid?: number;
  /** Length of the claim's lease in ms; no expiry is recorded when omitted. */
  readonly leaseMs?: number;
}

/** Who holds the finish of a run (`claimChunkRunFinish`). */
export interface ChunkFinishClaim {
  /** True when the caller holds the finish now (or held it already): it writes the manifest. */
  readonly claimed: boolean;
  /** Host name of the holder (the caller when claimed). */
  readonly host?: string;
  /** Process id of the holder. */
  readonly pid?: number;
}

/** Whether a chunk's failure may go away by itself (see `ChunkTaskEntry.failure`). */
export type ChunkFailureClass = "transient" | "permanent";

/** Names one task of a run. */
export interface ChunkRefEntry {
  readonly runId: string;
  readonly chunkIndex: number;
}

/** A task finished: `running → completed`. */
export interface ChunkDoneEntry extends ChunkRefEntry {
  readonly rowsWritten: number;
  /** First file the chunk committed, if any. */
  readonly fileName?: string;
}

/** A task failed: `running → failed`. */
export interface ChunkFailedEntry extends ChunkRefEntry {
  /** Redacted error message. */
  readonly error: string;
  /**
   * False for a permanent error: attempts are pinned to the maximum so that the same run never
   * claims the task again (a deterministic failure would otherwise burn every attempt), and the
   * task's `failure` is `permanent`. Defaults to true (`failure: transient`).
   */
  readonly retryable?: boolean;
}

/** One boundary of `export_progression` (advisory: what was last committed or verified). */
export interface ProgressionEntry {
  readonly exportName: string;
  readonly boundary: ProgressionBoundary;
  /** Strategy label, e.g. `incremental`, `chunked`. */
  readonly strategy: string;
  readonly cursor?: string;
  readonly chunkIndex?: number;
  readonly runId: string;
  readonly at: string;
}

/** Both boundaries of one export, as `state progression` shows them. */
export interface ExportProgressionEntry {
  readonly exportName: string;
  readonly committed?: ProgressionEntry;
  readonly verified?: ProgressionEntry;
}

/** The event digest of one run (`run_journal`). */
export interface JournalEntry {
  readonly runId: string;
  readonly exportName: string;
  readonly finishedAt: string;
  /** JSON-serialisable journal (the run's events, as `rivet journal` prints them); JSON text. */
  readonly journal: unknown;
}

/** Selects journal rows, newest first. */
export interface JournalListOptions extends ListOptions {
  /** Only this run. */
  readonly runId?: string;
}

/** One export's line in a run aggregate (its `per_export` list). */
export interface AggregateExportEntry {
  readonly exportName: string;
  readonly status: RunStatus;
  readonly runId: string;
  readonly rows: number;
  readonly files: number;
  readonly bytes: number;
  readonly durationMs: number;
  readonly mode: string;
  readonly errorMessage?: string;
}

/** One multi-export invocation (`run_aggregate`). */
export interface RunAggregateEntry {
  /** `agg_<ts>`. */
  readonly id: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly configPath?: string;
  readonly parallelMode: ParallelMode;
  readonly totalExports: number;
  readonly successCount: number;
  readonly failedCount: number;
  readonly skippedCount: number;
  readonly totalRows: number;
  readonly totalFiles: number;
  readonly totalBytes: number;
  /** Stored as `details_json`. */
  readonly perExport: readonly AggregateExportEntry[];
}

/**
 * Where each export stands: its incremental cursor and its progression boundaries, both keyed by
 * export name and replaced in place (upserts).
 *
 * Promises: `advanceCursor` is one atomic write, durable once it resolves; a crash during it
 * leaves the previous cursor (the caller advances only after `_SUCCESS`, so a cursor never
 * points past committed data). `resetExport` removes the cursor and the progression together or
 * not at all. The progression is advisory (what `state progression` shows); nothing decides from
 * it.
 *
 * Transactional in any backend: `advanceCursor` (one upsert, one delete), `adoptCursor` and
 * `resetExport` (two deletes).
 */
export interface CursorStore {
  /**
   * The cursor of an export: with `identity`, the one stored for that identity, else one stored
   * without identity (an older state file), else undefined; without `identity`, the most recently
   * advanced one of any identity (inspection).
   */
  readCursor(exportName: string, identity?: string): Promise<CursorEntry | undefined>;
  /** Every stored cursor, by export name then identity (`state show`). */
  listCursors(): Promise<CursorEntry[]>;
  /**
   * Sets the cursor of an export for its identity (upsert on name and identity), and drops the
   * export's cursor stored without identity, which this one replaces, in the same transaction.
   * Call only after every part is committed.
   */
  advanceCursor(entry: CursorEntry): Promise<void>;
  /**
   * Gives the export's cursor stored under another identity to `identity` (`state adopt`): the
   * source or query changed on purpose and the position is still right. Replaces a cursor already
   * stored for `identity`. One transaction.
   *
   * @returns `adopted`, `none` (no cursor under another identity) or `ambiguous` (several: nothing
   *   changed; reset instead).
   */
  adoptCursor(exportName: string, identity: string): Promise<"adopted" | "none" | "ambiguous">;
  /**
   * Deletes every cursor (all identities) and the progression of an export (`state reset -e`), in
   * one transaction.
   *
   * @returns Whether there was anything to delete.
   */
  resetExport(exportName: string): Promise<boolean>;
  /** Sets one boundary of an export's progression, keeping the other. */
  saveProgression(entry: ProgressionEntry): Promise<void>;
  /** Both boundaries of an export, or undefined when none was ever saved. */
  readProgression(exportName: string): Promise<ExportProgressionEntry | undefined>;
}

/**
 * The file log: one row per part committed at the destination, kept as history (rows are never
 * deleted; withdrawn parts are marked `quarantined`).
 *
 * Promises: rows come back in the order they were recorded (an insertion sequence, not a clock),
 * newest first for `listFiles`, oldest first for `listRunParts`. A part is recorded after its
 * commit, so a crash in between leaves a committed file without a row (the leftovers check
 * finds it), never a row without a file. `markPartsQuarantined` marks all the listed rows of a
 * run or none.
 *
 * Transactional in any backend: `markPartsQuarantined` (one statement); `recordPart` is a
 * single insert.
 */
export interface FileLog {
  /** Appends a committed part to the file log. */
  recordPart(entry: PartEntry): Promise<void>;
  /** File log rows, newest first. */
  listFiles(options: ListOptions): Promise<PartEntry[]>;
  /**
   * The file log rows of one run, oldest first (a resumed run rebuilds its manifest from them).
   * Quarantined rows are included, with their status.
   */
  listRunParts(runId: string): Promise<PartEntry[]>;
  /**
   * Marks the file log rows of one run whose file names are listed as `quarantined` (`--resume`
   * moved those parts aside); the rows stay as history. Every row of the run with a listed name
   * that is not quarantined yet is marked, so call it before the chunk is rewritten under the
   * same name.
   *
   * @returns How many rows were newly marked (rows already quarantined are not counted).
   */
  markPartsQuarantined(entry: QuarantinedPartsEntry): Promise<number>;
}

/**
 * The chunk ledger of checkpointed runs (ADR-0008): one `chunk_run` per planned run and one
 * `chunk_task` per window, `pending → running → completed | failed`.
 *
 * Promises: at most one run per export is `in_progress` (a second plan is refused with
 * `ConfigError` `state.chunk_run_in_progress`). A claim is atomic across connections, threads
 * and processes: no two callers ever receive the same task, and tasks are handed out lowest
 * index first. A crash leaves a claimed task `running` (never `completed` without its rows
 * written); `--resume` puts it back with `resetRunningChunks`. A completed run never hides a
 * task that is not `completed`.
 *
 * Transactional in any backend: `saveChunkPlan` (run and tasks together), `claimChunk` (select
 * and update under one write lock: `FOR UPDATE SKIP LOCKED` or a serialisable transaction in
 * PostgreSQL), `completeChunk`, `reopenChunk` (task and run status together), `completeChunkRun`
 * (check and mark under one lock) and `resetChunks` (runs and their tasks).
 */
export interface ChunkLedger {
  /**
   * Length in ms of the leases the pipeline asks for when it claims tasks, set when the ledger
   * is shared by several processes on several hosts (PostgreSQL): a claim whose lease ran out
   * (its host died) is taken over by another claimer. Absent on a single-host ledger (SQLite),
   * whose claims hold until `--resume` resets them.
   */
  readonly chunkLeaseMs?: number;
  /**
   * Creates a checkpointed run (`in_progress`) and its `pending` tasks in one transaction.
   * Throws `ConfigError` `state.chunk_run_in_progress` when the export already has a run in
   * progress (resume it or reset the chunks).
   */
  saveChunkPlan(entry: ChunkPlanEntry): Promise<void>;
  /**
   * Atomically claims the lowest-index task of an `in_progress` run that is `pending`,
   * `failed` with attempts below the run's maximum, or `running` under a lease that expired (its
   * claimer died) with attempts below the maximum: it becomes `running` with attempts + 1, recording who holds it (host, pid,
   * lease expiry).
   *
   * @param runId The run.
   * @param claimer Who claims; this process on this host when omitted.
   * @returns The claimed task, or undefined when none is claimable.
   */
  claimChunk(runId: string, claimer?: ChunkClaimOptions): Promise<ChunkTaskEntry | undefined>;
  /** `running → completed` with the rows written and the first file. */
  completeChunk(entry: ChunkDoneEntry): Promise<void>;
  /** `running → failed` with the error and its class (`failure`). */
  failChunk(entry: ChunkFailedEntry): Promise<void>;
  /**
   * Puts a task back to `pending` with 0 attempts and no error (resume found its part missing
   * or drifted, or gives a failed task a fresh retry budget).
   * A `completed` run goes back to `in_progress` in the same transaction, so that the task can
   * be claimed (`--resume --force` after a completed run); that throws `ConfigError`
   * `state.chunk_run_in_progress` if the export has another run in progress.
   */
  reopenChunk(entry: ChunkRefEntry): Promise<void>;
  /**
   * Extends the lease of a `running` task, only for the claimer that holds it (same host and
   * pid).
   *
   * @param entry The task.
   * @param claimer The holder and the new lease length (`leaseMs` from now).
   * @returns False when the task is no longer this claimer's or no longer running.
   */
  renewChunkLease(entry: ChunkRefEntry, claimer: ChunkClaimOptions): Promise<boolean>;
  /**
   * Resets the tasks a crash left `running` to `pending` (`--resume`): those without a live
   * lease (never leased, or expired). A task another process holds under a live lease is kept.
   *
   * @returns How many tasks were reset.
   */
  resetRunningChunks(runId: string): Promise<number>;
  /**
   * Atomically claims the finish of a run (writing its manifest and `_SUCCESS` and marking it
   * completed), so that exactly one of the processes sharing it does it. The claim is taken when
   * nobody holds it, when its lease expired (the finisher died), or when the caller holds it
   * already; a `completed` run reports its finisher.
   *
   * @param runId The run.
   * @param claimer The claimer and its lease; this process on this host when omitted.
   * @returns Whether the caller holds the finish, and who does.
   * @throws {RangeError} When the run is unknown.
   */
  claimChunkRunFinish(runId: string, claimer?: ChunkClaimOptions): Promise<ChunkFinishClaim>;
  /**
   * Marks a run `completed` once every task is (idempotent). Throws `RangeError` when the run is
   * unknown or a task is not `completed`: the caller fails the run with resume hints instead,
   * so a completed run never hides unfinished checkpoints.
   */
  completeChunkRun(runId: string): Promise<void>;
  /** The newest checkpointed run of an export, whatever its status. */
  latestChunkRun(exportName: string): Promise<ChunkRunEntry | undefined>;
  /** The tasks of a run, by index. */
  listChunkTasks(runId: string): Promise<ChunkTaskEntry[]>;
  /**
   * Deletes every checkpointed run of an export and its tasks (`state reset-chunks`).
   *
   * @returns How many runs were deleted.
   */
  resetChunks(exportName: string): Promise<number>;
}

/**
 * What ran: one metrics row per export run, the event journal of each run, and the aggregate of
 * each multi-export invocation (`rivet metrics`, `rivet journal`).
 *
 * Promises: append-only history (an aggregate with the same id is replaced), listed newest
 * first in recording order. Each write is one statement; the history is informational, so a
 * crash may lose the rows of the run it interrupted but never changes what was exported.
 *
 * Transactional in any backend: nothing beyond single statements.
 */
export interface RunHistory {
  /** Appends the metrics row of one export run. */
  recordRun(entry: MetricsEntry): Promise<void>;
  /** Metrics rows, newest first. */
  listMetrics(options: ListOptions): Promise<MetricsEntry[]>;
  /** Appends the journal of one run (a resumed run appends a second row). */
  appendJournal(entry: JournalEntry): Promise<void>;
  /** Journal rows, newest first. */
  listJournal(options: JournalListOptions): Promise<JournalEntry[]>;
  /** Stores the aggregate of a multi-export invocation (replaces one with the same id). */
  saveRunAggregate(entry: RunAggregateEntry): Promise<void>;
  /** Stored aggregates, newest first. */
  listRunAggregates(options: Pick<ListOptions, "last">): Promise<RunAggregateEntry[]>;
}

/**
 * The schema drift baseline of each export: the column names and types of its last successful
 * run, replaced as a whole (one upsert, so a crash leaves the old baseline or the new one).
 */
export interface SchemaBaselines {
  /** The drift baseline of an export, or undefined before its first successful run. */
  readSchema(exportName: string): Promise<SchemaEntry | undefined>;
  /** Replaces the drift baseline of an export. */
  saveSchema(entry: SchemaEntry): Promise<void>;
}

/** Options of {@linkcode RunTraces.saveRunTrace}. */
export interface SaveRunTraceOptions {
  /** Traces kept per export, this one included; older ones are deleted (default 20). */
  readonly keep?: number;
}

/**
 * The trace of each export run (`rivet report`): chunk attempts per lane and samples of rows
 * and memory, bounded in size by the recorder (`TRACE_LIMITS`). Each process that works on a
 * run stores its own trace: a run resumed after a failure, or shared by several hosts, has
 * several traces under one run id and export.
 *
 * Promises: the newest `keep` traces per export are kept, newest by recording order. A trace is
 * the trace of one writer: its host, process and start time (`saveRunTrace` stamps this host and
 * process when the trace has none). Saving again for the same writer replaces its trace (a run
 * saves its trace as it goes, so that a process killed mid-run leaves what it did); another
 * writer under the same run id adds its own. Transactional in any backend: `saveRunTrace`
 * (the insert and the deletion of older traces are one transaction, so the store never holds
 * more than `keep` of an export, nor loses the new one).
 */
export interface RunTraces {
  /** Stores the trace of one export run and deletes that export's older traces past `keep`. */
  saveRunTrace(trace: RunTrace, options?: SaveRunTraceOptions): Promise<void>;
  /**
   * The newest trace of a run (of `exportName` when given: a run id may cover several exports).
   */
  readRunTrace(runId: string, exportName?: string): Promise<RunTrace | undefined>;
  /** Every stored trace of a run of one export, by start time (oldest first). */
  readRunTraces(runId: string, exportName: string): Promise<RunTrace[]>;
  /** The newest trace of an export, or undefined when none is stored. */
  latestRunTrace(exportName: string): Promise<RunTrace | undefined>;
}

/** How many traces of each export the store keeps by default. */
export const RUN_TRACES_KEPT = 20;

/**
 * Persistent state of rivet: every role on one connection, plus its lifecycle. One writer per
 * export (single-writer by design); chunk claims are nevertheless atomic, so several connections
 * never receive the same task. Code that needs one role takes that role's interface.
 */
export interface StateStore
  extends
    CursorStore,
    FileLog,
    ChunkLedger,
    RunHistory,
    SchemaBaselines,
    RunTraces,
    AsyncDisposable {
  /** Closes the store. Idempotent; every later call rejects. */
  close(): Promise<void>;
}
