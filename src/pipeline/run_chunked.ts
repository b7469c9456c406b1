/**
 * Runs a chunked export: one statement and one part set per chunk (or keyset page), each
 * committed as soon as its read finished, so a crash loses at most the chunk in flight. With
 * `chunk_checkpoint: true` every chunk is a task in the state store, claimed, completed or
 * failed one by one, and `--resume` continues an interrupted run after checking what it left at
 * the destination (`chunk_resume.ts`; the errors a run ends with are built in `chunk_errors.ts`).
 *
 * Write order per chunk: encoder finished → parts committed → file log
 * (`after_chunk_file:<i>`) → task completed (`after_chunk_complete:<i>`); after every chunk:
 * `manifest.json` (`before_success_marker`) → `_SUCCESS` → run completed → progression. The run
 * stays `in_progress` until its manifest and marker are written, so a run that could not write
 * them is finished by `--resume`, and no plain run starts beside it.
 *
 * A transient chunk failure (a lost or refused connection: the run is underway) is retried
 * within the unit with backoff; a chunk that still fails is claimed again after another
 * jittered backoff, up to `chunk_max_attempts` claims. A chunk that runs out of attempts, a
 * permanent failure and a full disk stop the run: exit 2 with a `--resume` hint for the first and
 * the last (`--resume` gives transiently failed chunks a fresh budget), exit 1 for a permanent
 * one (retried only by `--resume --force`).
 *
 * Chunks run one after another here; `parallel` is honoured by the worker engine.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import {
  errorFromInfo,
  InterruptedError,
  isResourceExhausted,
  PermanentError,
  RivetError,
  toErrorInfo,
} from "../core/errors.ts";
import type { ExportStatus, Outcome } from "../core/events.ts";
import type { Source } from "../core/source.ts";
import type { SourceKind } from "../core/spec.ts";
import type { ChunkBoundsEntry, ChunkRunEntry, PartEntry } from "../core/state.ts";
import { planKeysetPageSql } from "../plan/query.ts";
import { dialectOf } from "../plan/dialect.ts";
import { sleep } from "../_util/abort.ts";
import { runChunkUnit, type UnitContext, type UnitResult, type UnitSpec } from "./chunk_unit.ts";
import { redact } from "../_util/redact.ts";
import { crashPoint } from "../_util/test_hook.ts";
import {
  type Chunking,
  chunkStatement,
  planWindows,
  resolveChunking,
  type WindowedChunking,
} from "./chunk_plan.ts";
import { fileNameTag } from "./naming.ts";
import { rivetCommand } from "./hints.ts";
import { retryDelayMs } from "./retry.ts";
import { chunkVerdict } from "./chunk_decisions.ts";
import { probeColumns } from "./probe.ts";
import { withMetaColumns } from "./meta_columns.ts";
import { enforceRunQuality, mergeStats, type StatementStats } from "./quality.ts";
import {
  type DriftGuard,
  driftGuard,
  type ExportPlan,
  outcomeOf,
  type PipelineDeps,
  recordPart,
  type RunPart,
  writeRunManifest,
} from "./run_export.ts";
import { checkpointError, chunkError, type ChunkFailure } from "./chunk_errors.ts";
import {
  type QuarantineContext,
  quarantineObject,
  quarantineOrphans,
  reconcileResume,
  takeOverChunk,
} from "./chunk_resume.ts";
import {
  claimFinish,
  claimOrWait,
  keepFinish,
  keepLease,
  type LeaseContext,
} from "./chunk_lease.ts";
import { chunkStarted, crashRetried, freeLane } from "./run_trace_recorder.ts";

/** A chunked export's plan: the base query instead of one statement. */
export interface ChunkedExportPlan extends Omit<ExportPlan, "sql" | "params"> {
  /** The export's base query; chunk statements wrap it. */
  readonly baseSql: string;
  /** Source engine, for the SQL dialect. */
  readonly sourceKind: SourceKind;
  /**
   * The checkpointed run `--resume` continues (its run id and start time are this plan's), or
   * undefined for a fresh run.
   */
  readonly resumeRun?: ChunkRunEntry;
  /**
   * `--resume --force`: chunks that failed permanently in the resumed run are given a new
   * budget too (transiently failed chunks always are).
   */
  readonly force?: boolean;
  /** The config file, so that hints print commands that run as they are. */
  readonly configPath?: string;
  /**
   * `rivet apply`: the chunking and windows a plan recorded, run instead of resolving and
   * probing them again (no catalog or min/max queries).
   */
  readonly preset?: ChunkPreset;
}

/** The chunking of a chunked export decided beforehand (`rivet plan`), and its windows. */
export interface ChunkPreset {
  readonly chunking: Chunking;
  /** The windows, in order, when `chunking` is windowed. */
  readonly windows?: readonly ChunkBoundsEntry[];
}

/** Error code of a unit whose runner died (the worker engine's crashed worker). */
export const WORKER_CRASHED = "engine.worker_crashed";

/** Runs chunk units, possibly several at once and elsewhere (the worker engine). */
export interface ChunkExecutor extends AsyncDisposable {
  /** How many units may run at once. */
  readonly size: number;
  /** Runs one unit; never rejects for a unit failure (see `UnitResult.failure`). */
  run(unit: UnitSpec): Promise<UnitResult>;
}

/** Collaborators of a chunked run: a source per connection instead of one open source. */
export interface ChunkedDeps extends Omit<PipelineDeps, "source"> {
  /** Opens a new connection (the first, and a fresh one after a transient failure). */
  readonly connect: () => Promise<Source>;
  /**
   * Starts `size` parallel chunk runners (the Web Worker engine) for an export with
   * `parallel > 1`; without it, chunks run one by one in this thread.
   */
  readonly parallelExecutor?: (size: number) => Promise<ChunkExecutor>;
}

/** One committed file of the run, as the manifest and the summary count it. */
interface CommittedFile extends RunPart {
  readonly chunkIndex: number;
  readonly partIndex: number;
}

/** One chunk to run: its index, bounds and claim number. */
interface ChunkTask {
  readonly chunkIndex: number;
  readonly bounds: ChunkBoundsEntry;
  readonly attempt: number;
  /** The worker slot it runs on (0-based), set when it is started. */
  readonly lane?: number;
}

/**
 * Runs a chunked export. Never throws for an export failure: the failure is in
 * `outcome.error`.
 *
 * @param plan The export, its base query and the run to resume, if any.
 * @param deps Connection factory, format, destination, state, events, signal.
 * @returns The outcome.
 */
export async function runChunkedExport(
  plan: ChunkedExportPlan,
  deps: ChunkedDeps,
): Promise<Outcome> {
  const now = deps.now ?? (() => new Date());
  const { spec, tuning } = plan;
  const started = now();
  const files: CommittedFile[] = [];
  let rows = 0;
  let peakRss = deps.rss?.() ?? 0;
  let source: Source | undefined;
  let priorParts: PartEntry[] = [];
  /** The chunks' quality and shape stats, merged as they come in. */
  let stats: StatementStats | undefined;
  deps.emit({ type: "export_started", export: spec.name, runId: plan.runId, mode: spec.mode });

  const connection = async (): Promise<Source> => {
    source ??= await deps.connect();
    return source;
  };
  const dropConnection = async () => {
    const s = source;
    source = undefined;
    try {
      await s?.[Symbol.asyncDispose]();
    } catch {
      // A connection that failed is closed as far as we are concerned.
    }
  };
  const finish = (status: ExportStatus, error?: unknown): Outcome =>
    outcomeOf(plan, deps, {
      status,
      started,
      finished: now(),
      rows,
      committed: files.map((f) => ({ size: f.sizeBytes })),
      peakRss,
      error,
    });

  let drift: DriftGuard | undefined;
  /** `run --validate`: every unit re-counts its parts before committing them. */
  const recount = plan.validate ? { recount: true } : {};
  const unitContext = (): UnitContext => ({
    spec,
    tuning,
    startedAt: plan.startedAt,
    format: deps.format,
    destination: deps.destination,
    emit: deps.emit,
    signal: deps.signal,
    connection,
    dropConnection,
    ...(deps.rss ? { rss: deps.rss } : {}),
    ...(deps.pressure ? { pressure: deps.pressure } : {}),
    ...(drift ? { onColumns: drift.check } : {}),
  });
  const inlineExecutor: ChunkExecutor = {
    size: 1,
    run: (unit) => runChunkUnit(unit, unitContext()),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
  let executor: ChunkExecutor = inlineExecutor;
  /** Marks the checkpointed run completed; runs after the manifest and `_SUCCESS`. */
  let completeCheckpoint: (() => Promise<void>) | undefined;
  let writingManifest = false;
  /** Who finished the run when another process sharing it claimed the finish. */
  let finishedBy: string | undefined;
  /** Stops renewing the finish of a shared run this process claimed. */
  let stopFinishLease: (() => void) | undefined;
  /** A checkpointed run exists in the state store (planned, or being resumed). */
  let checkpointKept = false;
  const resumeHint = rivetCommand("run", spec.name, plan.configPath, " --resume");
  const resetHint = rivetCommand("state reset-chunks", spec.name, plan.configPath);
  const errorContext = { exportName: spec.name, resumeHint, resetHint };
  /** Where this run moves files aside (`_quarantine/<run_id>/`). */
  const quarantine: QuarantineContext = {
    exportName: spec.name,
    runId: plan.runId,
    destination: deps.destination,
    emit: deps.emit,
    signal: deps.signal,
  };
  try {
    drift = await driftGuard(spec, deps);
    const ctx = {
      source: await connection(),
      kind: plan.sourceKind,
      baseSql: plan.baseSql,
      emit: deps.emit,
      signal: deps.signal,
      statementTimeoutS: tuning.statementTimeoutS,
    };
    const chunking = plan.preset?.chunking ?? await resolveChunking(spec, ctx);
    if (chunking.kind === "snapshot") {
      deps.emit({
        type: "warning",
        export: spec.name,
        code: "chunk.downgraded",
        message: `export '${spec.name}': running as one snapshot query: ${chunking.reason}`,
      });
      const tag = await fileNameTag(deps.destination, spec.name, plan.startedAt, deps.signal);
      const result = await executor.run({
        chunkIndex: 0,
        naming: "single",
        sql: plan.baseSql,
        params: [],
        ...(tag === undefined ? {} : { nameTag: tag }),
        ...recount,
      });
      await absorb(result);
      if (result.failure) {
        throw chunkError(spec.name, { chunkIndex: 0, error: result.failure }, {
          unit: "query",
          committedFiles: files.length,
        });
      }
    } else if (chunking.kind === "keyset") {
      if (spec.chunkCheckpoint || spec.parallel > 1) {
        deps.emit({
          type: "warning",
          export: spec.name,
          code: "chunk.keyset_sequential",
          message: `export '${spec.name}': keyset paging runs sequentially without checkpoints; ` +
            "chunk_checkpoint and parallel are ignored",
        });
      }
      await runKeyset(chunking);
    } else {
      await runWindows(chunking, ctx);
    }
    if (deps.signal.aborted) throw new InterruptedError("interrupted before it finished");
    if (finishedBy !== undefined) {
      // Another process sharing the run wrote the manifest and _SUCCESS.
      deps.emit({
        type: "warning",
        export: spec.name,
        code: "chunk.finished_elsewhere",
        message: `export '${spec.name}': run ${plan.runId} is completed; ${finishedBy} ` +
          "finished it (manifest and _SUCCESS)",
      });
      return finish(rows === 0 && spec.skipEmpty ? "skipped" : "success");
    }

    // Quality gates judge the aggregate of every chunk, before manifest.json and _SUCCESS.
    enforceRunQuality(spec, stats, drift.warn("quality.warning"), { files, priorParts });
    drift.shape(stats?.maxBytes);
    await drift.saveBaseline(now());
    const status: ExportStatus = rows === 0 && spec.skipEmpty && priorParts.length === 0
      ? "skipped"
      : "success";
    writingManifest = true;
    await writeRunManifest(plan, deps, {
      status,
      startedAt: plan.startedAt,
      finishedAt: now(),
      columns: drift.columns(),
      parts: manifestParts(),
    });
    writingManifest = false;
    await completeCheckpoint?.();
    return finish(status);
  } catch (error) {
    let failure = deps.signal.aborted && !(error instanceof RivetError && error.exitCode === 3)
      ? new InterruptedError("interrupted before it finished")
      : error;
    if (writingManifest && spec.chunkCheckpoint && !deps.signal.aborted) {
      // Every chunk is in; only the manifest or _SUCCESS is missing, and the run stays in
      // progress: --resume re-verifies the parts and writes them.
      const info = toErrorInfo(error);
      failure = new RivetError(
        `export '${spec.name}': every chunk completed, but the run could not be finished: ` +
          `${info.message}${isResourceExhausted(info) ? "; free space and run --resume" : ""}`,
        {
          code: info.code,
          exitCode: info.exitCode,
          hint: `continue with '${resumeHint}' (the committed chunks are kept and checked)`,
          cause: error,
        },
      );
    } else if (checkpointKept && !(failure instanceof InterruptedError)) {
      // Any other failure after the chunks were planned (a probe, a state write) leaves the
      // checkpoint in progress, which blocks the next plain run: say how to go on.
      const info = toErrorInfo(failure);
      if (!info.hint?.includes("--resume")) {
        failure = errorFromInfo({
          ...info,
          hint: `${info.hint ? `${info.hint}; ` : ""}the run's checkpoint is kept: continue ` +
            `with '${resumeHint}', or discard it with '${resetHint}'`,
        });
      }
    }
    // The manifest of a failed run lists what was committed, for `--resume` and for readers.
    if (files.length > 0 || priorParts.length > 0) {
      await writeRunManifest(plan, deps, {
        status: "failed",
        startedAt: plan.startedAt,
        finishedAt: now(),
        columns: drift?.columns() ?? [],
        parts: manifestParts(),
      }).catch(() => {});
    }
    return finish("failed", failure);
  } finally {
    stopFinishLease?.();
    if (executor !== inlineExecutor) {
      try {
        await executor[Symbol.asyncDispose]();
      } catch {
        // Workers that cannot be closed are terminated by their pool.
      }
    }
    await dropConnection();
  }

  /** Takes a unit's committed parts into the run: totals, file list and the file log. */
  async function absorb(result: UnitResult): Promise<void> {
    rows += result.rows;
    peakRss = Math.max(peakRss, result.peakRss);
    if (result.stats) stats = mergeStats(stats, result.stats, spec.quality?.uniqueMaxEntries);
    for (const part of result.parts) {
      files.push({
        path: part.key,
        rows: part.rows,
        sizeBytes: part.size,
        contentFingerprint: `xxh3:${part.xxh3}`,
        contentMd5: part.md5,
        chunkIndex: result.chunkIndex,
        partIndex: part.partIndex,
      });
      await recordPart(plan, deps, {
        part: { ...part, index: part.partIndex },
        key: part.key,
        chunkIndex: result.chunkIndex,
      });
      await crashPoint("after_manifest_update");
    }
  }

  /**
   * Runs the windows: planned fresh (checkpointed runs store them as tasks) or, on `--resume`,
   * the stored tasks after reconciliation. Up to `executor.size` chunks run at once; this thread
   * alone writes state.
   */
  async function runWindows(
    chunking: WindowedChunking,
    ctx: Parameters<typeof planWindows>[2],
  ): Promise<void> {
    const state = spec.chunkCheckpoint ? deps.state : undefined;
    if (spec.chunkCheckpoint && !state) throw new TypeError("chunk_checkpoint needs a state store");
    const { runId } = plan;
    let planned: ChunkBoundsEntry[] | undefined;
    if (state && plan.resumeRun) {
      if (plan.resumeRun.planHash !== chunking.planHash) {
        throw new PermanentError(
          `export '${spec.name}': the plan changed since run ${runId} started (base query, ` +
            "chunk column or chunk shape), so its chunks would not line up",
          {
            code: "resume.plan_changed",
            hint: `restore the plan of that run and resume, or discard it with ` +
              `'${resetHint}' and run without --resume`,
          },
        );
      }
      checkpointKept = true;
      priorParts = await reconcileResume({
        ...quarantine,
        state,
        startedAt: plan.startedAt,
        force: plan.force === true,
        shared: state.chunkLeaseMs !== undefined,
        resumeHint,
        resetHint,
      });
    } else {
      planned = plan.preset?.windows
        ? [...plan.preset.windows]
        : await planWindows(spec, chunking, ctx);
      if (state) {
        await state.saveChunkPlan({
          runId,
          exportName: spec.name,
          planHash: chunking.planHash,
          maxAttempts: spec.chunkMaxAttempts ?? tuning.maxRetries + 1,
          tasks: planned,
          createdAt: plan.startedAt.toISOString(),
        });
        checkpointKept = true;
      }
    }
    const maxAttempts = plan.resumeRun?.maxAttempts ??
      spec.chunkMaxAttempts ?? tuning.maxRetries + 1;
    const stored = state ? await state.listChunkTasks(runId) : [];
    const total = planned?.length ?? stored.length;
    deps.emit({
      type: "chunks_planned",
      export: spec.name,
      total,
      done: stored.filter((t) => t.status === "completed").length,
    });
    if (spec.parallel > 1 && deps.parallelExecutor && total > 1) {
      // Workers do not see the state store: the drift check runs here, on the result's
      // columns, before any worker writes.
      drift!.check(withMetaColumns(
        spec,
        await probeColumns(await connection(), plan.baseSql, {
          signal: deps.signal,
          statementTimeoutS: tuning.statementTimeoutS,
          columnOverrides: spec.columns,
          portableTypes: spec.format.parquetTypes === "portable",
        }),
      ));
      executor = await deps.parallelExecutor(Math.min(spec.parallel, total));
    }
    let cursor = 0;
    // A ledger shared by several hosts: claims carry leases (see chunk_lease.ts).
    const lease: LeaseContext | undefined = state?.chunkLeaseMs === undefined ? undefined : {
      ledger: state,
      leaseMs: state.chunkLeaseMs,
      exportName: spec.name,
      emit: deps.emit,
      signal: deps.signal,
    };
    const next = async (): Promise<ChunkTask | undefined> => {
      await memoryPause();
      if (state) {
        // Wait for other hosts' chunks only when this process has none of its own in flight.
        const task = lease && inflight.size === 0
          ? await claimOrWait(lease, runId)
          : await state.claimChunk(runId, lease && { leaseMs: lease.leaseMs });
        return task && { chunkIndex: task.chunkIndex, bounds: task, attempt: task.attempts };
      }
      if (cursor >= planned!.length) return undefined;
      const chunkIndex = cursor++;
      return { chunkIndex, bounds: planned![chunkIndex]!, attempt: 1 };
    };
    let stop = false;
    let lastFailure: ChunkFailure | undefined;
    const inflight = new Set<Promise<void>>();
    // Lanes of the chunks in flight: at most `executor.size`, each a worker slot of the pool.
    const busyLanes = new Set<number>();
    const handle = async (task: ChunkTask): Promise<void> => {
      if (!lease) return await runTask(task);
      const release = keepLease(lease, { runId, chunkIndex: task.chunkIndex });
      try {
        // An earlier claim (a host that died, a failed attempt) may have committed parts of
        // this chunk: they are moved aside before it is written again.
        if (task.attempt > 1) {
          await takeOverChunk(quarantine, state!, plan.startedAt, task.chunkIndex);
        }
        await runTask(task);
      } finally {
        release();
      }
    };
    const runTask = async (task: ChunkTask): Promise<void> => {
      const statement = chunkStatement(plan.baseSql, chunking, task.bounds, plan.sourceKind);
      const lane = task.lane ?? 0;
      const started = chunkStarted(spec.name, task, lane);
      deps.emit(started);
      const unit: UnitSpec = {
        chunkIndex: task.chunkIndex,
        lane,
        naming: "chunk",
        sql: statement.sql,
        params: statement.params,
        stripColumns: statement.strippedColumns,
        rowsBefore: rows,
        ...recount,
      };
      let result = await executor.run(unit);
      // A runner that died mid-chunk (a crashed worker) is not the chunk's fault: whatever it
      // committed without reporting is moved aside, and the chunk runs again on a new runner.
      for (let crash = 1; result.failure?.code === WORKER_CRASHED; crash++) {
        const moved = await quarantineOrphans(
          { ...quarantine, startedAt: plan.startedAt },
          task.chunkIndex,
          new Set([...files.map((f) => f.path), ...priorParts.map((p) => p.fileName)]),
        );
        if (crash > tuning.maxRetries || deps.signal.aborted) break;
        for (const event of crashRetried(started, result.failure, moved.length)) deps.emit(event);
        result = await executor.run(unit);
      }
      await absorb(result);
      const verdict = chunkVerdict(
        {
          ...(result.failure ? { failure: result.failure } : {}),
          keys: result.parts.map((p) => p.key),
        },
        {
          aborted: deps.signal.aborted,
          stopping: stop,
          checkpointed: state !== undefined,
          attempt: task.attempt,
          maxAttempts,
        },
      );
      if (verdict.kind === "completed") {
        await crashPoint(`after_chunk_file:${task.chunkIndex}`);
        if (state) {
          await state.completeChunk({
            runId,
            chunkIndex: task.chunkIndex,
            rowsWritten: result.rows,
            ...(result.parts[0] === undefined ? {} : { fileName: result.parts[0].key }),
          });
          await crashPoint(`after_chunk_complete:${task.chunkIndex}`);
        }
        deps.emit({
          type: "chunk_completed",
          export: spec.name,
          chunk: task.chunkIndex,
          rows: result.rows,
          files: result.parts.length,
          durationMs: result.durationMs,
          lane,
          bytes: result.parts.reduce((sum, p) => sum + p.size, 0),
        });
        return;
      }
      if (verdict.kind === "interrupted") {
        if (state) await state.reopenChunk({ runId, chunkIndex: task.chunkIndex });
        stop = true;
        return;
      }
      const info = result.failure!;
      const { again } = verdict;
      lastFailure = { chunkIndex: task.chunkIndex, error: info };
      if (state) {
        // Parts a failed chunk managed to commit would be written again by its next claim.
        const orphans = verdict.quarantine;
        for (const key of orphans) {
          await quarantineObject(quarantine, key, "its chunk failed and runs again");
        }
        if (orphans.length > 0) {
          await state.markPartsQuarantined({ runId, fileNames: [...orphans] });
        }
        await state.failChunk({
          runId,
          chunkIndex: task.chunkIndex,
          error: redact(info.message),
          retryable: verdict.retryable,
        });
      }
      deps.emit({
        type: "chunk_failed",
        export: spec.name,
        chunk: task.chunkIndex,
        attempt: task.attempt,
        message: redact(info.message),
        willRetry: again,
        lane,
        quarantined: state ? verdict.quarantine.length : 0,
      });
      deps.emit({
        type: "warning",
        export: spec.name,
        code: "chunk.failed",
        message: `export '${spec.name}': chunk ${task.chunkIndex} failed (attempt ` +
          `${task.attempt}${state ? ` of ${maxAttempts}` : ""}): ${info.message}`,
      });
      if (!again) {
        stop = true;
        return;
      }
      // The next claim waits too (the lowest failed chunk is claimed first): without the wait,
      // a source that is down for a few seconds would burn every attempt of every chunk at once.
      const delayMs = retryDelayMs(info, {
        attempt: task.attempt,
        backoffMs: tuning.retryBackoffMs,
      });
      deps.emit({
        type: "warning",
        export: spec.name,
        code: "run.retrying",
        message: `export '${spec.name}': chunk ${task.chunkIndex} runs again (attempt ` +
          `${task.attempt + 1} of ${maxAttempts}) in ${delayMs} ms`,
      });
      await sleep(delayMs, deps.signal);
    };
    let crashed: unknown;
    while (!stop && !deps.signal.aborted) {
      while (inflight.size < executor.size && !stop && !deps.signal.aborted) {
        const claimed = await next();
        if (!claimed) break;
        const task = { ...claimed, lane: freeLane(busyLanes) };
        busyLanes.add(task.lane);
        const running: Promise<void> = handle(task).catch((error) => {
          crashed ??= error;
          stop = true;
        }).finally(() => {
          inflight.delete(running);
          busyLanes.delete(task.lane);
        });
        inflight.add(running);
      }
      if (inflight.size === 0) break;
      await Promise.race(inflight);
    }
    await Promise.all(inflight);
    if (crashed !== undefined) throw crashed;
    if (deps.signal.aborted) return;
    if (!state) {
      if (lastFailure) {
        throw chunkError(spec.name, lastFailure, { committedFiles: files.length });
      }
      return;
    }
    const tasks = await state.listChunkTasks(runId);
    const open = tasks.filter((t) => t.status !== "completed");
    priorParts = await state.listRunParts(runId);
    if (open.length > 0) throw checkpointError(errorContext, open, tasks.length, lastFailure);
    if (lease) {
      finishedBy = await claimFinish(lease, runId);
      if (finishedBy !== undefined) return;
      stopFinishLease = keepFinish(lease, runId);
    }
    // Completed only once the manifest and _SUCCESS are written (see the module's write order).
    completeCheckpoint = async () => {
      await state.completeChunkRun(runId);
      const last = tasks.at(-1);
      try {
        await state.saveProgression({
          exportName: spec.name,
          boundary: "committed",
          strategy: "chunked",
          ...(last ? { chunkIndex: last.chunkIndex } : {}),
          runId,
          at: now().toISOString(),
        });
      } catch (error) {
        deps.emit({
          type: "warning",
          export: spec.name,
          code: "state.progression_failed",
          message: `export '${spec.name}': could not record the progression: ${
            error instanceof Error ? error.message : String(error)
          }`,
        });
      }
    };
  }

  /** The run's parts: those of earlier attempts (resume) and this process's, by chunk. */
  function manifestParts(): RunPart[] {
    const byKey = new Map<string, CommittedFile>();
    for (const p of priorParts) {
      if (p.status === "quarantined" || p.contentFingerprint === undefined) continue;
      byKey.set(p.fileName, {
        path: p.fileName,
        rows: p.rowCount,
        sizeBytes: p.bytes,
        contentFingerprint: p.contentFingerprint,
        contentMd5: p.contentMd5 ?? "",
        chunkIndex: p.chunkIndex ?? 0,
        partIndex: p.partIndex ?? 0,
      });
    }
    for (const f of files) byKey.set(f.path, f);
    return [...byKey.values()].sort((a, b) =>
      a.chunkIndex - b.chunkIndex || a.partIndex - b.partIndex
    ).map(({ path, rows, sizeBytes, contentFingerprint, contentMd5 }) => ({
      path,
      rows,
      sizeBytes,
      contentFingerprint,
      contentMd5,
    }));
  }

  /** `memory_threshold_mb`: before a chunk, wait once for RSS to fall below the threshold. */
  async function memoryPause(): Promise<void> {
    if (!deps.rss || tuning.memoryThresholdMb <= 0) return;
    const rssMb = deps.rss() / 1024 / 1024;
    if (rssMb <= tuning.memoryThresholdMb) return;
    deps.emit({
      type: "warning",
      export: spec.name,
      code: "tuning.memory_threshold",
      message: `export '${spec.name}': RSS ${Math.round(rssMb)} MB is above memory_threshold_mb ` +
        `(${tuning.memoryThresholdMb}); pausing 5 s before the next chunk`,
    });
    await sleep(5_000, deps.signal);
  }

  async function runKeyset(chunking: Extract<Chunking, { kind: "keyset" }>): Promise<void> {
    const dialect = dialectOf(plan.sourceKind);
    const tag = await fileNameTag(deps.destination, spec.name, plan.startedAt, deps.signal);
    let lastKey: string | undefined;
    let integerKey = false;
    for (let page = 0;; page++) {
      if (deps.signal.aborted) return;
      await memoryPause();
      const planned = planKeysetPageSql(plan.baseSql, {
        dialect,
        keyColumn: chunking.keyColumn,
        limit: chunking.pageSize,
        ...(lastKey === undefined ? {} : { lastKey }),
        integerKey,
      });
      const result = await executor.run({
        chunkIndex: page,
        naming: "keyset",
        sql: planned.sql,
        params: planned.params,
        cursorColumn: chunking.keyColumn,
        rowsBefore: rows,
        ...(tag === undefined ? {} : { nameTag: tag }),
        ...recount,
      });
      await absorb(result);
      if (result.failure) {
        throw chunkError(spec.name, { chunkIndex: page, error: result.failure }, {
          unit: "page",
          committedFiles: files.length,
        });
      }
      if (result.rows < chunking.pageSize) return;
      if (result.lastCursor === undefined) {
        throw new PermanentError(
          `export '${spec.name}': keyset page ${page} ended on a key of column ` +
            `'${chunking.keyColumn}' that cannot be rendered as a bound`,
          {
            code: "chunk.keyset_key_unreadable",
            hint: "use an integer, text, date, timestamp or uuid key for chunk_by_key",
          },
        );
      }
      lastKey = result.lastCursor;
      integerKey = result.keyIsInteger === true;
    }
  }
}
