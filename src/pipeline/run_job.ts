/**
 * Runs one export job: the orchestration every engine shares. A `partition_by` export becomes
 * one child job per calendar bucket; each job passes the checkpoint and `_SUCCESS` gates, has
 * its destination's leftovers swept, runs as one query (`run_export.ts`) or chunk by chunk
 * (`run_chunked.ts`), is retried with backoff while its failure is transient and nothing was
 * committed, and leaves a metrics row and a journal in the state store.
 *
 * The pipeline opens nothing itself: the engine that runs the job hands it {@linkcode JobOpeners}
 * (how to connect, encode, write, and start chunk workers), so the same orchestration runs in
 * this thread, in an export worker and in a child process.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import { readJobCursor } from "./cursor_identity.ts";
import type { Destination } from "../core/destination.ts";
import type { EventSink, Outcome, RivetEvent } from "../core/events.ts";
import { destinationWarnings } from "../core/events.ts";
import type { Format } from "../core/format.ts";
import type { ExportJob } from "../core/job.ts";
import type { Source } from "../core/source.ts";
import type { CdcOpenOptions, CdcReader } from "../core/cdc.ts";
import { runCdcJob } from "./cdc_job.ts";
import { PermanentError } from "../core/errors.ts";
import type { DestinationSpec, ExportSpec, FormatSpec, SourceKind } from "../core/spec.ts";
import type { StateStore } from "../core/state.ts";
import { sleep } from "../_util/abort.ts";
import { dialectOf } from "../plan/dialect.ts";
import { COALESCED_CURSOR_COLUMN, planIncrementalSql, planTimeWindowSql } from "../plan/query.ts";
import { pressureSql } from "../plan/catalog.ts";
import { minMaxSql } from "../plan/chunks.ts";
import { partitionNullCountSql, planPartitions } from "../plan/partition.ts";
import { resolveDestination, withPartition } from "../plan/placeholders.ts";
import { retriesInRun, retryStep } from "./retry.ts";
import { runId as makeRunId, runStartOf } from "./naming.ts";
import { sweepLeftovers } from "./leftovers.ts";
import { probeRows, probeScalar } from "./probe.ts";
import { type ExportPlan, runExport } from "./run_export.ts";
import { type ChunkExecutor, type ChunkPreset, runChunkedExport } from "./run_chunked.ts";
import { checkpointGate, duplicateGuard, successGate } from "./job_gates.ts";
import { checkAfterRun } from "./run_checks.ts";
import {
  failedOutcome,
  type JournalEvent,
  journalEventOf,
  recordJournal,
  recordMetrics,
  recordTrace,
} from "./run_record.ts";
import { createTraceRecorder } from "./run_trace_recorder.ts";
import { traceCheckpoints } from "./trace_checkpoints.ts";

/** How the engine running a job connects, encodes, writes and parallelises. */
export interface JobOpeners {
  /** Opens a new connection to the job's source. */
  source(
    job: ExportJob,
    options: { signal: AbortSignal; onWarning?: (w: { code: string; message: string }) => void },
  ): Promise<Source>;
  /** Creates the encoder of a format. */
  format(spec: FormatSpec): Promise<Format>;
  /** Opens a destination whose placeholders are filled. */
  destination(
    spec: DestinationSpec,
    options: { signal: AbortSignal; warn: (message: string, code?: string) => void },
  ): Promise<Destination>;
  /** Opens the change stream of a `mode: cdc` job's table. */
  cdc?(job: ExportJob, options: CdcOpenOptions): Promise<CdcReader>;
  /**
   * Starts `size` chunk runners elsewhere (the Web Worker engine) for a chunked export with
   * `parallel > 1`; without it, chunks run one by one in this thread.
   */
  chunkWorkers?(
    job: ExportJob,
    facts: {
      size: number;
      startedAt: Date;
      destination: DestinationSpec;
      emit: EventSink;
      signal: AbortSignal;
    },
  ): Promise<ChunkExecutor>;
}

/** What one job runs with. */
export interface JobRunOptions {
  readonly state: StateStore;
  readonly emit: EventSink;
  readonly signal: AbortSignal;
  readonly open: JobOpeners;
  /** Current resident set size in bytes. */
  readonly rss: () => number;
  /** `--resume`: continue checkpointed chunked runs (and pass the `_SUCCESS` gate). */
  readonly resume?: boolean;
  /** `--force`: with `--resume`, go on although the destination holds `_SUCCESS`. */
  readonly force?: boolean;
  /** `rivet apply`: a chunked job's recorded chunking and windows (not for `partition_by`). */
  readonly chunkPreset?: ChunkPreset;
  /** `--validate`: re-count each part before its commit, read the output back after the run. */
  readonly validate?: boolean;
  /** `--reconcile` (implies `--validate`): compare the source's COUNT(*) with the rows committed. */
  readonly reconcile?: boolean;
}

const MB = 1024 * 1024;

/**
 * Runs one job to its outcomes (one, or one per partition), recording metrics and journal.
 * Never throws for an export failure.
 *
 * @param job The resolved export.
 * @param options State, events, signal, openers, resume flags.
 * @returns One outcome, or one per partition.
 */
export async function runJob(job: ExportJob, options: JobRunOptions): Promise<Outcome[]> {
  for (const warning of job.warnings) {
    options.emit({ type: "warning", export: job.spec.name, ...warning });
  }
  return await runResolved(job, options);
}

async function runResolved(job: ExportJob, options: JobRunOptions): Promise<Outcome[]> {
  if (job.spec.partitionBy !== undefined) {
    // The parent becomes one ordinary export per calendar bucket (plus a NULL bucket), run in
    // its place.
    const expanded = await expandPartitions(job, options);
    if (!Array.isArray(expanded)) {
      options.emit({ type: "export_finished", outcome: expanded });
      return [expanded];
    }
    const outcomes: Outcome[] = [];
    for (const child of expanded) {
      if (options.signal.aborted) break;
      outcomes.push(...await runResolved(child, options));
    }
    return outcomes;
  }
  const journal: JournalEvent[] = [];
  // The run id is the outcome's (set below, when it is known); times count from here.
  const recorder = createTraceRecorder({
    runId: "",
    exportName: job.spec.name,
    startedAt: new Date(),
    rss: options.rss,
  });
  const checkpoints = traceCheckpoints(options.state, recorder, job.spec.name);
  const emit = (event: RivetEvent) => {
    const entry = journalEventOf(event);
    if (entry) journal.push(entry);
    recorder.event(event);
    checkpoints.event(event);
    options.emit(event);
  };
  const outcome = job.spec.mode === "cdc"
    ? await runCdc(job, { ...options, emit })
    : await runWithRetries(job, { ...options, emit });
  await recordMetrics(options.state, outcome, {
    spec: job.spec,
    sourceKind: job.source.kind,
    emit: options.emit,
  });
  await recordJournal(options.state, outcome, journal, options.emit);
  await checkpoints.done();
  await recordTrace(options.state, outcome, recorder.trace(new Date()), options.emit);
  return [outcome];
}

/**
 * A cdc job is not retried whole: its committed parts are checkpointed, and the next run (a
 * scheduler's retry of exit 2) continues from the checkpoint.
 */
async function runCdc(job: ExportJob, options: JobRunOptions): Promise<Outcome> {
  const open = options.open;
  const cdc = open.cdc?.bind(open);
  const outcome = cdc
    ? await runCdcJob(job, {
      state: options.state,
      emit: options.emit,
      signal: options.signal,
      rss: options.rss,
      ...(options.validate ? { validate: true } : {}),
      ...(options.reconcile ? { reconcile: true } : {}),
      connect: () => open.source(job, { signal: options.signal }),
      open: {
        cdc,
        format: (spec) => open.format(spec),
        destination: (spec, o) => open.destination(spec, o),
      },
    })
    : failedOutcome(job.spec, {
      tuning: job.tuning,
      startedAt: new Date(),
      error: new PermanentError(
        `export '${job.spec.name}': this engine cannot open change streams`,
        { code: "cdc.engine_unavailable" },
      ),
      peakRssMb: Math.round(options.rss() / MB),
    });
  options.emit({ type: "export_finished", outcome });
  return outcome;
}

async function runWithRetries(job: ExportJob, options: JobRunOptions): Promise<Outcome> {
  const { spec, tuning } = job;
  let attempt = 0;
  // Whether an attempt got past connecting: from then on the export is underway, and a refused
  // connection is an outage to ride through rather than a port where nothing listens.
  let reached = false;
  while (true) {
    const outcome = await runOnce(job, options);
    const error = outcome.error;
    // A refused connection at the very start fails fast: nothing listens on that port, and a
    // scheduler retries exit 2 on its own schedule. A full disk waits for the operator.
    // Everything else transient is retried with backoff.
    const retry = error !== undefined && retriesInRun(error, { underway: reached });
    if (
      error !== undefined && error.code !== "source.connection_refused" &&
      error.code !== "source.connect_failed"
    ) reached = true;
    // Single-query exports withdraw what they committed when they fail, so a transient failure
    // leaves no committed part behind and the whole export can be retried on a new connection.
    // Chunked exports retry each chunk themselves and are never retried whole.
    if (
      !retry || outcome.files > 0 || spec.mode === "chunked" ||
      attempt >= tuning.maxRetries || options.signal.aborted
    ) {
      // A checkpointed chunked run keeps its committed chunks for --resume: no duplicate guard.
      const guarded = spec.mode === "chunked" && spec.chunkCheckpoint
        ? outcome
        : duplicateGuard(outcome);
      options.emit({ type: "export_finished", outcome: guarded });
      return guarded;
    }
    attempt += 1;
    const { delayMs, warning } = retryStep(spec.name, error, {
      attempt,
      maxRetries: tuning.maxRetries,
      backoffMs: tuning.retryBackoffMs,
    });
    options.emit(warning);
    await sleep(delayMs, options.signal);
  }
}

/** One attempt of a job: gates, leftovers, then the single-query or chunked pipeline. */
async function runOnce(job: ExportJob, options: JobRunOptions): Promise<Outcome> {
  const { spec, tuning } = job;
  let startedAt = new Date();
  let runId = makeRunId(spec.name, startedAt);
  try {
    const resumeRun = await checkpointGate(spec, options, job.configPath);
    if (resumeRun) {
      startedAt = runStartOf(resumeRun.runId) ?? startedAt;
      runId = resumeRun.runId;
    }
    const format = await options.open.format(spec.format);
    const destinationSpec = resolveDestination(spec.destination, {
      exportName: spec.name,
      at: startedAt,
    });
    await using destination = await options.open.destination(destinationSpec, {
      signal: options.signal,
      warn: destinationWarnings(options.emit, spec.name),
    });
    await successGate(spec, destination, options);
    await sweepLeftovers(destination, {
      exportName: spec.name,
      state: options.state,
      emit: options.emit,
      signal: options.signal,
      ...(resumeRun ? { resumeRunId: resumeRun.runId } : {}),
    });
    const connect = () =>
      options.open.source(job, {
        signal: options.signal,
        onWarning: (w) =>
          options.emit({ type: "warning", export: spec.name, code: w.code, message: w.message }),
      });
    const validate = options.validate === true || options.reconcile === true;
    const checks = {
      job,
      validate,
      reconcile: options.reconcile === true,
      destination,
      connect,
      state: options.state,
      emit: options.emit,
      signal: options.signal,
    };
    const common = {
      spec,
      runId,
      tuning,
      startedAt,
      ...(validate ? { validate } : {}),
      sourceInfo: {
        engine: job.source.kind,
        ...(spec.query.kind === "table"
          ? { ...(spec.query.schema ? { schema: spec.query.schema } : {}), table: spec.query.table }
          : {}),
      },
    };
    await using sampler = tuning.adaptive ? pressureSampler(connect, job.source.kind) : undefined;
    const deps = {
      format,
      destination,
      emit: options.emit,
      signal: options.signal,
      rss: options.rss,
      state: options.state,
      ...(sampler ? { pressure: sampler.sample } : {}),
    };
    if (spec.mode === "chunked") {
      const workers = options.open.chunkWorkers?.bind(options.open);
      const chunked = await runChunkedExport(
        {
          ...common,
          baseSql: job.baseSql,
          sourceKind: job.source.kind,
          ...(resumeRun ? { resumeRun, force: options.force === true } : {}),
          configPath: job.configPath,
          ...(options.chunkPreset && spec.partitionBy === undefined
            ? { preset: options.chunkPreset }
            : {}),
        },
        {
          ...deps,
          connect,
          ...(workers
            ? {
              parallelExecutor: (size: number) =>
                workers(job, {
                  size,
                  startedAt,
                  destination: destinationSpec,
                  emit: options.emit,
                  signal: options.signal,
                }),
            }
            : {}),
        },
      );
      return await checkAfterRun(chunked, checks);
    }
    const query = await planQuery(job, options.state, startedAt);
    await using source = await connect();
    const plan: ExportPlan = { ...common, ...query };
    return await checkAfterRun(await runExport(plan, { ...deps, source }), checks);
  } catch (error) {
    // Failures before the pipeline started (a gate, the destination, the plan): same outcome
    // shape.
    return failedOutcome(spec, {
      tuning,
      startedAt,
      runId,
      error,
      signal: options.signal,
      peakRssMb: Math.round(options.rss() / MB),
    });
  }
}

/**
 * The SQL of one run: the base query for `full`, the window from midnight `days_window` days ago
 * for `time_window`, the cursor-bounded query for `incremental` (`cursor > last`, or every row
 * on the first run) with the column whose last value becomes the next cursor.
 */
async function planQuery(
  job: ExportJob,
  state: StateStore,
  startedAt: Date,
): Promise<
  Pick<ExportPlan, "sql" | "params" | "cursorColumn" | "stripColumns" | "cursorIdentity">
> {
  const { spec, baseSql } = job;
  const dialect = dialectOf(job.source.kind);
  if (spec.mode === "time_window") {
    // Stateless and overlapping by design: every run re-reads from UTC midnight of today minus
    // days_window, whatever earlier runs exported.
    const planned = planTimeWindowSql(baseSql, {
      dialect,
      timeColumn: spec.timeColumn!,
      type: spec.timeColumnType,
      daysWindow: spec.daysWindow!,
      now: startedAt,
    });
    return { sql: planned.sql, params: planned.params };
  }
  if (spec.mode !== "incremental") return { sql: baseSql };
  const cursor = await readJobCursor(state, job);
  const coalesce = spec.incrementalCursorMode === "coalesce";
  const planned = planIncrementalSql(baseSql, {
    dialect,
    cursorColumn: spec.cursorColumn!,
    mode: spec.incrementalCursorMode,
    ...(spec.cursorFallbackColumn === undefined
      ? {}
      : { fallbackColumn: spec.cursorFallbackColumn }),
    ...(cursor?.lastCursorValue == null ? {} : { lastCursor: cursor.lastCursorValue }),
  });
  return {
    sql: planned.sql,
    params: planned.params,
    cursorColumn: coalesce ? COALESCED_CURSOR_COLUMN : spec.cursorColumn!,
    stripColumns: planned.strippedColumns,
    cursorIdentity: job.configIdentity,
  };
}

/**
 * Expands a `partition_by` job into one child job per calendar bucket between the column's min
 * and max, plus a NULL bucket. Returns the children, or the parent's failed outcome when the
 * probes fail.
 */
async function expandPartitions(
  job: ExportJob,
  options: JobRunOptions,
): Promise<ExportJob[] | Outcome> {
  const { spec, tuning, baseSql } = job;
  const startedAt = new Date();
  try {
    const dialect = dialectOf(job.source.kind);
    const column = spec.partitionBy!;
    await using source = await options.open.source(job, { signal: options.signal });
    const probe = { signal: options.signal, statementTimeoutS: tuning.statementTimeoutS };
    const bounds = minMaxSql(baseSql, { dialect, column });
    const min = (await probeRows(source, bounds.min, probe))[0]?.[0];
    const max = (await probeRows(source, bounds.max, probe))[0]?.[0];
    const nulls = (await probeRows(
      source,
      partitionNullCountSql(baseSql, { dialect, column }),
      probe,
    ))[0]?.[0];
    const children = planPartitions(baseSql, {
      dialect,
      parentName: spec.name,
      column,
      min,
      max,
      granularity: spec.partitionGranularity,
      hasNulls: nulls !== undefined && nulls !== "0",
    });
    options.emit({
      type: "warning",
      export: spec.name,
      code: "partition.expanded",
      message: `export '${spec.name}': partition_by ${column} (${spec.partitionGranularity}) ` +
        `gives ${children.length} partition export(s)`,
    });
    const { partitionBy: _dropped, ...rest } = spec;
    return children.map((child): ExportJob => {
      const childSpec: ExportSpec = {
        ...rest,
        name: child.name,
        query: { kind: "query", sql: child.sql },
        destination: withPartition(spec.destination, child.partition),
      };
      return { ...job, spec: childSpec, baseSql: child.sql, warnings: [] };
    });
  } catch (error) {
    return failedOutcome(spec, {
      tuning,
      startedAt,
      error,
      signal: options.signal,
      peakRssMb: Math.round(options.rss() / MB),
    });
  }
}

/**
 * The `adaptive` pressure sampler: a second connection, opened at the first sample, that reads
 * the write-pressure counter. Any failure turns sampling off (the batch size then stays put).
 */
function pressureSampler(
  connect: () => Promise<Source>,
  kind: SourceKind,
): AsyncDisposable & { sample: () => Promise<number | undefined> } {
  let source: Source | undefined;
  let broken = false;
  return {
    async sample() {
      if (broken) return undefined;
      try {
        source ??= await connect();
        const value = await probeScalar(source, pressureSql(kind), { statementTimeoutS: 5 });
        return value === undefined ? undefined : Number(value);
      } catch {
        broken = true;
        return undefined;
      }
    },
    async [Symbol.asyncDispose]() {
      await source?.[Symbol.asyncDispose]();
    },
  };
}
