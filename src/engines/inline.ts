/**
 * The inline engine: runs the selected exports one after the other in this process. It is the
 * composition root that resolves each export's plan and opens its source, format and
 * destination, then hands them to `runExport`.
 *
 * Layer: engines (composition root).
 *
 * @module
 */
import { type ExitCode, InterruptedError, worstExitCode } from "../core/errors.ts";
import {
  destinationWarnings,
  type EventSink,
  type Outcome,
  type RivetEvent,
} from "../core/events.ts";
import { redact } from "../_util/redact.ts";
import type { ConfigSpec, ExportSpec, SourceKind } from "../core/spec.ts";
import { checkTlsPolicy, exportSql, mergeTuning, resolveConnection } from "../config/mod.ts";
import { openSource } from "../sources/mod.ts";
import { createFormat, parquetLevelNotApplied } from "../formats/mod.ts";
import { openDestination } from "../destinations/mod.ts";
import { openStateStore } from "../state/mod.ts";
import type { StateStore } from "../core/state.ts";
import { dialectOf } from "../plan/dialect.ts";
import { COALESCED_CURSOR_COLUMN, planIncrementalSql, planTimeWindowSql } from "../plan/query.ts";
import { VERSION } from "../version.ts";
import { exportErrorInfo, type ExportPlan, runExport } from "../pipeline/run_export.ts";
import { retriesInRun, retryDelayMs } from "../pipeline/retry.ts";
import { rivetCommand } from "../pipeline/hints.ts";
import { runId as makeRunId, runStartOf } from "../pipeline/naming.ts";
import { runChunkedExport } from "../pipeline/run_chunked.ts";
import { sweepLeftovers } from "../pipeline/leftovers.ts";
import { startChunkWorkers } from "./workers.ts";
import { MANIFEST_KEY, SUCCESS_KEY } from "../pipeline/manifest.ts";
import { probeRows, probeScalar } from "../pipeline/probe.ts";
import { pressureSql } from "../plan/catalog.ts";
import type { Source } from "../core/source.ts";
import type { Destination } from "../core/destination.ts";
import type { ChunkRunEntry } from "../core/state.ts";
import { ConfigError, DataIntegrityError } from "../core/errors.ts";
import { minMaxSql } from "../plan/chunks.ts";
import { partitionNullCountSql, planPartitions } from "../plan/partition.ts";
import { resolveDestination, withPartition } from "../plan/placeholders.ts";
import { sleep } from "../_util/abort.ts";

/** Options of {@linkcode runExports}. */
export interface InlineRunOptions {
  readonly emit: EventSink;
  readonly signal: AbortSignal;
  /** `--param` values, for `query_file` substitution. */
  readonly params: Readonly<Record<string, string>>;
  /** Base directory of relative local destination paths (the process CWD). */
  readonly cwd: string;
  /** Environment lookup. */
  readonly env?: (name: string) => string | undefined;
  /** `--resume`: continue checkpointed chunked runs (and pass the `_SUCCESS` gate). */
  readonly resume?: boolean;
  /** `--force`: with `--resume`, go on although the destination holds `_SUCCESS`. */
  readonly force?: boolean;
}

/** What a run did. */
export interface RunResult {
  readonly exitCode: ExitCode;
  readonly outcomes: readonly Outcome[];
  readonly startedAt: string;
  readonly finishedAt: string;
}

/**
 * Runs exports sequentially. A failing export does not stop the next one; the exit code is the
 * most serious class among them.
 *
 * @param config The loaded config.
 * @param exports The exports to run, in order.
 * @param options Event sink, abort signal, params and base directory.
 * @returns Outcomes and the exit code.
 */
export async function runExports(
  config: ConfigSpec,
  exports: readonly ExportSpec[],
  options: InlineRunOptions,
): Promise<RunResult> {
  const startedAt = new Date();
  const outcomes: Outcome[] = [];
  // A corrupt or foreign state file stops the run here, before anything is read or written.
  await using state = await openStateStore(config.dir);
  for (const spec of exports) {
    if (options.signal.aborted) break;
    outcomes.push(...await runExportWithState(config, spec, { ...options, state }));
  }
  return runResult(outcomes, { startedAt, signal: options.signal });
}

/**
 * The result of a run from its outcomes: the exit code is the most serious class among them,
 * 130 when the run was interrupted.
 *
 * @param outcomes Every export's outcome.
 * @param facts Start of the run and its abort signal.
 * @returns The run result.
 */
export function runResult(
  outcomes: readonly Outcome[],
  facts: { startedAt: Date; signal: AbortSignal },
): RunResult {
  const codes = outcomes.map((o) => o.error?.exitCode ?? 0);
  if (facts.signal.aborted) codes.push(130);
  return {
    exitCode: worstExitCode(codes),
    outcomes,
    startedAt: facts.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
  };
}

/**
 * Runs one export from the config with an open state store: expands `partition_by` into its
 * children (run one after the other), retries transient failures, and records metrics and the
 * journal. Engines that run exports concurrently call it once per export.
 *
 * @param config The loaded config.
 * @param spec The export.
 * @param options The run's options and the open state store.
 * @returns One outcome, or one per partition.
 */
export async function runExportWithState(
  config: ConfigSpec,
  spec: ExportSpec,
  options: InlineRunOptions & { readonly state: StateStore },
): Promise<Outcome[]> {
  const { state } = options;
  if (spec.partitionBy !== undefined) {
    // The parent becomes one ordinary export per calendar bucket (plus a NULL bucket), run in
    // its place.
    const expanded = await expandPartitions(config, spec, options);
    if (!Array.isArray(expanded)) {
      options.emit({ type: "export_finished", outcome: expanded });
      return [expanded];
    }
    const outcomes: Outcome[] = [];
    for (const child of expanded) {
      if (options.signal.aborted) break;
      outcomes.push(...await runExportWithState(config, child, options));
    }
    return outcomes;
  }
  const journal: JournalEvent[] = [];
  const emit = (event: RivetEvent) => {
    const entry = journalEventOf(event);
    if (entry) journal.push(entry);
    options.emit(event);
  };
  const outcome = await runOneWithRetries(config, spec, { ...options, emit, state });
  await recordMetrics(state, config, spec, outcome, options);
  await recordJournal(state, outcome, journal, options);
  return [outcome];
}

/** Options of one export's run: the run's options plus its open state store. */
type ExportRunOptions = InlineRunOptions & { readonly state: StateStore };

async function runOneWithRetries(
  config: ConfigSpec,
  spec: ExportSpec,
  options: ExportRunOptions,
): Promise<Outcome> {
  const tuning = mergeTuning(config.source, spec);
  const ignoredLevel = parquetLevelNotApplied(spec.format);
  if (ignoredLevel) {
    options.emit({
      type: "warning",
      export: spec.name,
      code: "format.level_not_applied",
      message: `export '${spec.name}': ${ignoredLevel}`,
    });
  }
  let attempt = 0;
  // Whether an attempt got past connecting: from then on the export is underway, and a refused
  // connection is an outage to ride through rather than a port where nothing listens.
  let reached = false;
  // Warnings that belong to the export, not to one attempt (e.g. TLS not enforced).
  const once = new Set<string>();
  while (true) {
    const outcome = await runOne(config, spec, options, tuning, once);
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
    const delayMs = retryDelayMs(outcome.error!, { attempt, backoffMs: tuning.retryBackoffMs });
    options.emit({
      type: "warning",
      export: spec.name,
      code: "run.retrying",
      message:
        `export '${spec.name}': ${outcome.error?.message}; retry ${attempt}/${tuning.maxRetries} in ${delayMs} ms`,
    });
    await sleep(delayMs, options.signal);
  }
}

async function runOne(
  config: ConfigSpec,
  spec: ExportSpec,
  options: ExportRunOptions,
  tuning: ReturnType<typeof mergeTuning>,
  warned: Set<string>,
): Promise<Outcome> {
  let startedAt = new Date();
  let runId = makeRunId(spec.name, startedAt);
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  try {
    const connection = await resolveConnection(config.source, {
      configDir: config.dir,
      env,
      exportName: spec.name,
    });
    for (const message of checkTlsPolicy(connection, config.source.tls).warnings) {
      // Once per export: a retried attempt resolves the same connection again.
      if (warned.has(message)) continue;
      warned.add(message);
      options.emit({
        type: "warning",
        export: spec.name,
        code: "source.tls_not_enforced",
        message,
      });
    }
    const baseSql = await exportSql(spec, config.dir, { params: options.params, env });
    const resumeRun = await checkpointGate(spec, options, config.path);
    if (resumeRun) {
      startedAt = runStartOf(resumeRun.runId) ?? startedAt;
      runId = resumeRun.runId;
    }
    const format = await createFormat(spec.format);
    const destinationSpec = resolveDestination(spec.destination, {
      exportName: spec.name,
      at: startedAt,
    });
    await using destination = await openDestination(destinationSpec, {
      baseDir: options.cwd,
      env,
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
    const openOwnSource = () =>
      openSource(config.source, connection, {
        signal: options.signal,
        onWarning: (w) =>
          options.emit({ type: "warning", export: spec.name, code: w.code, message: w.message }),
      });
    const common = {
      spec,
      runId,
      tuning,
      startedAt,
      sourceInfo: {
        engine: config.source.kind,
        ...(spec.query.kind === "table"
          ? { ...(spec.query.schema ? { schema: spec.query.schema } : {}), table: spec.query.table }
          : {}),
      },
    };
    await using sampler = tuning.adaptive
      ? pressureSampler(openOwnSource, config.source.kind)
      : undefined;
    const deps = {
      format,
      destination,
      emit: options.emit,
      signal: options.signal,
      rss: () => Deno.memoryUsage().rss,
      state: options.state,
      ...(sampler ? { pressure: sampler.sample } : {}),
    };
    if (spec.mode === "chunked") {
      return await runChunkedExport(
        {
          ...common,
          baseSql,
          sourceKind: config.source.kind,
          ...(resumeRun ? { resumeRun, force: options.force === true } : {}),
          configPath: config.path,
        },
        {
          ...deps,
          connect: openOwnSource,
          parallelExecutor: (size) =>
            startChunkWorkers(size, {
              source: config.source,
              connection,
              spec,
              tuning,
              startedAt,
              destination: destinationSpec,
              baseDir: options.cwd,
              configDir: config.dir,
              emit: options.emit,
              signal: options.signal,
              env,
            }),
        },
      );
    }
    const query = await planQuery(config, spec, baseSql, options.state, startedAt);
    await using source = await openOwnSource();
    const plan: ExportPlan = { ...common, ...query };
    return await runExport(plan, { ...deps, source });
  } catch (error) {
    // Failures before the pipeline started (connection, plan): same outcome shape.
    return failedOutcome(spec, { tuning, startedAt, runId, error, signal: options.signal });
  }
}

/**
 * The outcome of an export that failed before (or outside) its pipeline: connection, plan, a
 * child process that died.
 *
 * @param spec The export.
 * @param facts Tuning, start, run id, the error, and the run's signal (an aborted run reports
 *   the interrupt whatever the error).
 * @returns The failed outcome.
 */
export function failedOutcome(
  spec: ExportSpec,
  facts: {
    tuning: ReturnType<typeof mergeTuning>;
    startedAt: Date;
    runId: string;
    error: unknown;
    signal?: AbortSignal;
    peakRssMb?: number;
  },
): Outcome {
  const failure = facts.signal?.aborted
    ? new InterruptedError("interrupted before it finished")
    : facts.error;
  const now = new Date();
  return {
    export: spec.name,
    runId: facts.runId,
    status: "failed",
    mode: spec.mode,
    rows: 0,
    files: 0,
    bytes: 0,
    durationMs: now.getTime() - facts.startedAt.getTime(),
    startedAt: facts.startedAt.toISOString(),
    finishedAt: now.toISOString(),
    output: "",
    compression: spec.format.compression,
    format: spec.format.kind,
    peakRssMb: facts.peakRssMb ?? Math.round(Deno.memoryUsage().rss / 1024 / 1024),
    tuningProfile: facts.tuning.profileLabel,
    batchSize: facts.tuning.batchSize,
    error: exportErrorInfo(spec.name, failure),
  };
}

/**
 * The SQL of one run: the base query for `full`, the window from midnight `days_window` days ago
 * for `time_window`, the cursor-bounded query for `incremental` (`cursor > last`, or every row
 * on the first run) with the column whose last value becomes the next cursor.
 */
async function planQuery(
  config: ConfigSpec,
  spec: ExportSpec,
  baseSql: string,
  state: StateStore,
  startedAt: Date,
): Promise<Pick<ExportPlan, "sql" | "params" | "cursorColumn" | "stripColumns">> {
  if (spec.mode === "time_window") {
    // Stateless and overlapping by design: every run re-reads from UTC midnight of today minus
    // days_window, whatever earlier runs exported.
    const planned = planTimeWindowSql(baseSql, {
      dialect: dialectOf(config.source.kind),
      timeColumn: spec.timeColumn!,
      type: spec.timeColumnType,
      daysWindow: spec.daysWindow!,
      now: startedAt,
    });
    return { sql: planned.sql, params: planned.params };
  }
  if (spec.mode !== "incremental") return { sql: baseSql };
  const cursor = await state.readCursor(spec.name);
  const coalesce = spec.incrementalCursorMode === "coalesce";
  const planned = planIncrementalSql(baseSql, {
    dialect: dialectOf(config.source.kind),
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
  };
}

/**
 * Records the run's metrics row; a failure only warns (the data and exit code are final).
 *
 * @param state The open state store.
 * @param config The config (source type).
 * @param spec The export.
 * @param o Its outcome.
 * @param options Where the warning goes.
 */
export async function recordMetrics(
  state: StateStore,
  config: ConfigSpec,
  spec: ExportSpec,
  o: Outcome,
  options: Pick<InlineRunOptions, "emit">,
): Promise<void> {
  try {
    await state.recordRun({
      runId: o.runId,
      exportName: o.export,
      runAt: o.startedAt,
      durationMs: o.durationMs,
      totalRows: o.rows,
      status: o.status,
      peakRssMb: o.peakRssMb,
      ...(o.error ? { errorMessage: redact(o.error.message) } : {}),
      tuningProfile: o.tuningProfile,
      format: o.format,
      mode: o.mode,
      filesProduced: o.files,
      bytesWritten: o.bytes,
      filesCommitted: o.files,
      batchSize: o.batchSize,
      ...(spec.mode === "chunked" ? { chunkSize: spec.chunkSize, parallel: spec.parallel } : {}),
      ...(o.status === "skipped" ? { skipReason: "empty result (skip_empty)" } : {}),
      sourceType: config.source.kind,
      destinationType: spec.destination.kind,
      rivetVersion: VERSION,
    });
  } catch (error) {
    options.emit({
      type: "warning",
      export: spec.name,
      code: "state.metrics_failed",
      message: `export '${spec.name}': could not record the run's metrics: ${
        error instanceof Error ? error.message : String(error)
      }`,
    });
  }
}

/** One line of a run's journal (what `rivet journal` prints), JSON-safe and redacted. */
export interface JournalEvent {
  readonly event: "file_written" | "retry_attempted" | "schema_changed" | "warning";
  readonly at: string;
  readonly key?: string;
  readonly rows?: number;
  readonly bytes?: number;
  readonly code?: string;
  readonly message?: string;
}

/**
 * The journal line of a run event, or undefined for events the journal does not keep.
 *
 * @param event A run event.
 * @returns The journal line.
 */
export function journalEventOf(event: RivetEvent): JournalEvent | undefined {
  const at = new Date().toISOString();
  if (event.type === "part_committed") {
    return { event: "file_written", at, key: event.key, rows: event.rows, bytes: event.bytes };
  }
  if (event.type !== "warning") return undefined;
  const message = redact(event.message);
  if (event.code === "run.retrying" || event.code === "destination.retrying") {
    return { event: "retry_attempted", at, message };
  }
  if (event.code === "schema.drift") return { event: "schema_changed", at, message };
  return { event: "warning", at, code: event.code, message };
}

/**
 * Stores the run's journal next to its metrics; a failure only warns.
 *
 * @param state The open state store.
 * @param o The outcome.
 * @param events The run's journal events.
 * @param options Where the warning goes.
 */
export async function recordJournal(
  state: StateStore,
  o: Outcome,
  events: readonly JournalEvent[],
  options: Pick<InlineRunOptions, "emit">,
): Promise<void> {
  try {
    await state.appendJournal({
      runId: o.runId,
      exportName: o.export,
      finishedAt: o.finishedAt,
      journal: {
        events,
        completed: {
          status: o.status,
          mode: o.mode,
          rows: o.rows,
          files: o.files,
          bytes: o.bytes,
          durationMs: o.durationMs,
          retries: events.filter((e) => e.event === "retry_attempted").length,
          ...(o.error ? { error: redact(o.error.message) } : {}),
        },
      },
    });
  } catch (error) {
    options.emit({
      type: "warning",
      export: o.export,
      code: "state.journal_failed",
      message: `export '${o.export}': could not record the run's journal: ${
        error instanceof Error ? error.message : String(error)
      }`,
    });
  }
}

/**
 * The duplicate guard: a transient failure after files were committed is not retried (a retry
 * would write their rows twice) and exits 3 instead of 2 (docs/run-guarantees.md, "Retries").
 */
function duplicateGuard(outcome: Outcome): Outcome {
  const error = outcome.error;
  if (!error || error.exitCode !== 2 || outcome.files === 0) return outcome;
  const guarded = new DataIntegrityError(error.message, {
    code: "run.duplicate_guard",
    hint: `${outcome.files} file(s) were already committed and are kept, so the export was not ` +
      "retried (a retry would duplicate their rows); dedupe by content_fingerprint or clean the " +
      "destination before re-running, or use chunk_checkpoint: true and --resume",
  });
  return { ...outcome, error: exportErrorInfo(outcome.export, guarded) };
}

/**
 * The checkpoint gate of a chunked export (docs/run-guarantees.md, "Resume"): a fresh run is
 * refused while an earlier one is in progress; `--resume` needs a checkpointed run to continue and
 * returns it.
 */
async function checkpointGate(
  spec: ExportSpec,
  options: ExportRunOptions,
  configPath: string,
): Promise<ChunkRunEntry | undefined> {
  if (spec.mode !== "chunked" || !spec.chunkCheckpoint) return undefined;
  const latest = await options.state.latestChunkRun(spec.name);
  if (!options.resume) {
    if (latest?.status === "in_progress") {
      const tasks = await options.state.listChunkTasks(latest.runId);
      const done = tasks.filter((t) => t.status === "completed").length;
      const failed = tasks.filter((t) => t.status === "failed").length;
      throw new ConfigError(
        `export '${spec.name}': checkpointed run ${latest.runId} is still in progress ` +
          `(${done} of ${tasks.length} chunks completed${failed > 0 ? `, ${failed} failed` : ""})`,
        {
          code: "state.chunk_run_in_progress",
          hint: `continue it with '${
            rivetCommand("run", spec.name, configPath, " --resume")
          }', or discard it with '${rivetCommand("state reset-chunks", spec.name, configPath)}'`,
        },
      );
    }
    return undefined;
  }
  if (!latest) {
    throw new ConfigError(
      `export '${spec.name}': --resume needs an in-progress checkpoint, and this export has no ` +
        "checkpointed run",
      {
        code: "resume.nothing_to_resume",
        hint: "run it once without --resume; chunk_checkpoint: true then records its chunks",
      },
    );
  }
  return latest;
}

/**
 * The `_SUCCESS` gate: `--resume` into a prefix that already holds `_SUCCESS` is refused
 * unless `--force`; a fresh run into a prefix with an earlier manifest only warns, since its
 * new files will sit next to the old ones.
 */
async function successGate(
  spec: ExportSpec,
  destination: Destination,
  options: ExportRunOptions,
): Promise<void> {
  if (!destination.capabilities.persistent) return;
  const success = await destination.stat(SUCCESS_KEY, { signal: options.signal });
  if (options.resume) {
    if (success && !options.force) {
      const checkpointed = spec.mode === "chunked" && spec.chunkCheckpoint;
      throw new ConfigError(
        `export '${spec.name}': ${destination.uri} already holds _SUCCESS: the run there ` +
          `completed${
            checkpointed ? "" : `, and a ${spec.mode} export has no checkpoint to continue`
          }`,
        {
          code: "resume.already_complete",
          hint: checkpointed
            ? "add --force to re-verify the parts and resume anyway, or run without --resume " +
              "for a new run"
            : "run without --resume to export it again (the new files go next to the old " +
              "ones), or add --force",
        },
      );
    }
    return;
  }
  const manifest = success ?? await destination.stat(MANIFEST_KEY, { signal: options.signal });
  if (manifest) {
    options.emit({
      type: "warning",
      export: spec.name,
      code: "run.prefix_not_empty",
      message:
        `export '${spec.name}': ${destination.uri} already holds ${
          success ? "_SUCCESS" : "manifest.json"
        } of an earlier run; this run adds its files next to the old ones and its manifest lists ` +
        "only the new files (readers that glob the folder will count both runs)",
    });
  }
}

/**
 * Expands a `partition_by` export into one child per calendar bucket between the column's min
 * and max, plus a NULL bucket. Returns the children, or the parent's failed outcome when
 * the probes fail.
 */
async function expandPartitions(
  config: ConfigSpec,
  spec: ExportSpec,
  options: InlineRunOptions,
): Promise<ExportSpec[] | Outcome> {
  const startedAt = new Date();
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const tuning = mergeTuning(config.source, spec);
  try {
    const connection = await resolveConnection(config.source, {
      configDir: config.dir,
      env,
      exportName: spec.name,
    });
    const baseSql = await exportSql(spec, config.dir, { params: options.params, env });
    const dialect = dialectOf(config.source.kind);
    const column = spec.partitionBy!;
    await using source = await openSource(config.source, connection, { signal: options.signal });
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
    return children.map((child): ExportSpec => ({
      ...rest,
      name: child.name,
      query: { kind: "query", sql: child.sql },
      destination: withPartition(spec.destination, child.partition),
    }));
  } catch (error) {
    return failedOutcome(spec, {
      tuning,
      startedAt,
      runId: makeRunId(spec.name, startedAt),
      error,
      signal: options.signal,
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
