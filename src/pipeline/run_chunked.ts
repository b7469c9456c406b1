/**
 * Runs a chunked export (reference §3.3, §3.4, §3.7): one statement and one part set per chunk
 * (or keyset page), each committed as soon as its read finished, so a crash loses at most the
 * chunk in flight. With `chunk_checkpoint: true` every chunk is a task in the state store,
 * claimed, completed or failed one by one, and `--resume` continues an interrupted run after
 * checking what it left at the destination.
 *
 * Write order per chunk: encoder finished → parts committed → file log
 * (`after_chunk_file:<i>`) → task completed (`after_chunk_complete:<i>`); after every chunk:
 * run completed → progression → `manifest.json` (`before_success_marker`) → `_SUCCESS`.
 *
 * Chunks run one after another here; `parallel` is honoured by the worker engine.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import {
  DataIntegrityError,
  InterruptedError,
  PermanentError,
  RivetError,
  toErrorInfo,
  TransientError,
} from "../core/errors.ts";
import type { ExportStatus, Outcome } from "../core/events.ts";
import type { Source } from "../core/source.ts";
import type { SourceKind } from "../core/spec.ts";
import type { ChunkBoundsEntry, ChunkRunEntry, PartEntry } from "../core/state.ts";
import { planKeysetPageSql } from "../plan/query.ts";
import { dialectOf } from "../plan/dialect.ts";
import { sleep } from "../_util/abort.ts";
import { createXxh3 } from "../_util/hash.ts";
import { redact } from "../_util/redact.ts";
import { crashPoint } from "../_util/test_hook.ts";
import {
  type Chunking,
  chunkStatement,
  planWindows,
  resolveChunking,
  type WindowedChunking,
} from "./chunk_plan.ts";
import { chunkFilePrefix, chunkName, keysetName, partName, randomHex16 } from "./naming.ts";
import { abortUncommitted, readStatement, type StagedPart } from "./part_writer.ts";
import { retryDelayMs } from "./retry.ts";
import {
  commitPart,
  type DriftGuard,
  driftGuard,
  type ExportPlan,
  outcomeOf,
  type PipelineDeps,
  type RunPart,
  writeRunManifest,
} from "./run_export.ts";
import { SUCCESS_KEY } from "./manifest.ts";

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
}

/** Collaborators of a chunked run: a source per connection instead of one open source. */
export interface ChunkedDeps extends Omit<PipelineDeps, "source"> {
  /** Opens a new connection (the first, and a fresh one after a transient failure). */
  readonly connect: () => Promise<Source>;
}

/** One committed file of the run, as the manifest and the summary count it. */
interface CommittedFile extends RunPart {
  readonly chunkIndex: number;
  readonly partIndex: number;
}

/** Why a chunk stopped. */
interface ChunkFailure {
  readonly chunkIndex: number;
  readonly error: unknown;
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
  const ext = deps.format.extension;
  const files: CommittedFile[] = [];
  let rows = 0;
  let peakRss = deps.rss?.() ?? 0;
  let source: Source | undefined;
  let priorParts: PartEntry[] = [];
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
    const chunking = await resolveChunking(spec, ctx);
    if (chunking.kind === "snapshot") {
      deps.emit({
        type: "warning",
        export: spec.name,
        code: "chunk.downgraded",
        message: `export '${spec.name}': running as one snapshot query: ${chunking.reason}`,
      });
      await runUnit({ sql: plan.baseSql, params: [] }, { chunkIndex: 0, naming: "single" });
    } else if (chunking.kind === "keyset") {
      if (spec.chunkCheckpoint) {
        deps.emit({
          type: "warning",
          export: spec.name,
          code: "chunk.keyset_no_checkpoint",
          message: `export '${spec.name}': keyset paging runs sequentially without checkpoints; ` +
            "chunk_checkpoint and parallel are ignored",
        });
      }
      await runKeyset(chunking);
    } else if (spec.chunkCheckpoint) {
      await runCheckpointed(chunking, ctx);
    } else {
      const tasks = await planWindows(spec, chunking, ctx);
      let failure: ChunkFailure | undefined;
      for (const [index, bounds] of tasks.entries()) {
        if (deps.signal.aborted) break;
        await memoryPause();
        const result = await runChunk(chunking, index, bounds);
        if (result.failure) {
          failure = result.failure;
          break;
        }
      }
      if (failure) throw chunkError(failure, { checkpointed: false, total: tasks.length });
    }
    if (deps.signal.aborted) throw new InterruptedError("interrupted before it finished");

    await drift.saveBaseline(now());
    const status: ExportStatus = rows === 0 && spec.skipEmpty && priorParts.length === 0
      ? "skipped"
      : "success";
    await writeRunManifest(plan, deps, {
      status,
      startedAt: plan.startedAt,
      finishedAt: now(),
      columns: drift.columns(),
      parts: manifestParts(),
    });
    return finish(status);
  } catch (error) {
    const failure = deps.signal.aborted && !(error instanceof RivetError && error.exitCode === 3)
      ? new InterruptedError("interrupted before it finished")
      : error;
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
    await dropConnection();
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

  /**
   * Reads one statement and commits its parts. Transient failures before any commit are
   * retried on a new connection up to `max_retries`; the returned failure is the last error.
   */
  async function runUnit(
    statement: { sql: string; params: readonly (string | number | bigint | boolean | null)[] } & {
      stripColumns?: readonly string[];
      cursorColumn?: string;
    },
    unit: { chunkIndex: number; naming: "chunk" | "keyset" | "single" },
  ): Promise<
    {
      rows: number;
      keys: string[];
      lastCursor?: string;
      keyIsInteger?: boolean;
      failure?: ChunkFailure;
    }
  > {
    const hex = randomHex16();
    const name = (part: number, split: boolean) => {
      if (unit.naming === "chunk") {
        return chunkName(spec.name, {
          at: plan.startedAt,
          extension: ext,
          chunk: unit.chunkIndex,
          hex,
          part,
          split,
        });
      }
      if (unit.naming === "keyset") {
        return keysetName(spec.name, {
          at: plan.startedAt,
          extension: ext,
          page: unit.chunkIndex,
          part,
          split,
        });
      }
      return partName(spec.name, { at: plan.startedAt, extension: ext, index: part, split });
    };
    let attempt = 0;
    while (true) {
      let staged: StagedPart[] = [];
      let committedNow = 0;
      try {
        const result = await readStatement(
          {
            sql: statement.sql,
            params: statement.params,
            ...(statement.stripColumns ? { stripColumns: statement.stripColumns } : {}),
            ...(statement.cursorColumn ? { cursorColumn: statement.cursorColumn } : {}),
          },
          {
            spec,
            tuning,
            source: await connection(),
            format: deps.format,
            destination: deps.destination,
            emit: deps.emit,
            signal: deps.signal,
            stagingKey: (index) => name(index, true),
            ...(deps.rss ? { rss: deps.rss } : {}),
            ...(deps.pressure ? { pressure: deps.pressure } : {}),
            rowsBefore: rows,
            onColumns: drift!.check,
          },
        );
        staged = result.staged;
        peakRss = Math.max(peakRss, result.peakRss);
        const split = staged.length > 1;
        const keys: string[] = [];
        for (const part of staged) {
          const key = name(part.index, split);
          await commitPart(plan, deps, { part, key, chunkIndex: unit.chunkIndex });
          committedNow += 1;
          keys.push(key);
          files.push({
            path: key,
            rows: part.rows,
            sizeBytes: part.size,
            contentFingerprint: `xxh3:${part.xxh3}`,
            contentMd5: part.md5,
            chunkIndex: unit.chunkIndex,
            partIndex: part.index,
          });
        }
        rows += result.rows;
        const cursorType = result.columns.find((c) => c.name === statement.cursorColumn)?.arrowType;
        return {
          rows: result.rows,
          keys,
          keyIsInteger: /^u?int\d+$/i.test(String(cursorType)),
          ...(result.lastCursor === undefined ? {} : { lastCursor: result.lastCursor }),
        };
      } catch (error) {
        await abortUncommitted(staged, error);
        const info = toErrorInfo(error);
        const transient = info.exitCode === 2 && info.code !== "source.connection_refused";
        if (transient) await dropConnection();
        if (
          !transient || committedNow > 0 || attempt >= tuning.maxRetries || deps.signal.aborted
        ) {
          return { rows: 0, keys: [], failure: { chunkIndex: unit.chunkIndex, error } };
        }
        attempt += 1;
        const delayMs = retryDelayMs(info, { attempt, backoffMs: tuning.retryBackoffMs });
        deps.emit({
          type: "warning",
          export: spec.name,
          code: "run.retrying",
          message: `export '${spec.name}': chunk ${unit.chunkIndex}: ${info.message}; retry ` +
            `${attempt}/${tuning.maxRetries} in ${delayMs} ms`,
        });
        await sleep(delayMs, deps.signal);
      }
    }
  }

  /** One window: read, commit, file log, then the `after_chunk_file` crash point. */
  async function runChunk(
    chunking: WindowedChunking,
    index: number,
    bounds: ChunkBoundsEntry,
  ): Promise<{ rows: number; keys: string[]; failure?: ChunkFailure }> {
    const statement = chunkStatement(plan.baseSql, chunking, bounds, plan.sourceKind);
    const result = await runUnit(
      { sql: statement.sql, params: statement.params, stripColumns: statement.strippedColumns },
      { chunkIndex: index, naming: "chunk" },
    );
    if (!result.failure) await crashPoint(`after_chunk_file:${index}`);
    return result;
  }

  async function runKeyset(chunking: Extract<Chunking, { kind: "keyset" }>): Promise<void> {
    const dialect = dialectOf(plan.sourceKind);
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
      const statement = planned;
      const result = await runUnit(
        {
          sql: statement.sql,
          params: statement.params,
          cursorColumn: chunking.keyColumn,
        },
        { chunkIndex: page, naming: "keyset" },
      );
      if (result.failure) {
        throw chunkError(result.failure, { checkpointed: false, total: page + 1, unit: "page" });
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

  async function runCheckpointed(
    chunking: WindowedChunking,
    ctx: Parameters<typeof planWindows>[2],
  ): Promise<void> {
    const state = deps.state;
    if (!state) throw new TypeError("chunk_checkpoint needs a state store");
    const { runId } = plan;
    if (plan.resumeRun) {
      if (plan.resumeRun.planHash !== chunking.planHash) {
        throw new PermanentError(
          `export '${spec.name}': the plan changed since run ${runId} started (base query, ` +
            "chunk column or chunk shape), so its chunks would not line up",
          {
            code: "resume.plan_changed",
            hint: `restore the plan of that run and resume, or discard it with ` +
              `'rivet state reset-chunks -e ${spec.name}' and run without --resume`,
          },
        );
      }
      await reconcileResume();
    } else {
      const tasks = await planWindows(spec, chunking, ctx);
      await state.saveChunkPlan({
        runId,
        exportName: spec.name,
        planHash: chunking.planHash,
        maxAttempts: spec.chunkMaxAttempts ?? tuning.maxRetries + 1,
        tasks,
        createdAt: plan.startedAt.toISOString(),
      });
    }
    let lastFailure: ChunkFailure | undefined;
    while (!deps.signal.aborted) {
      await memoryPause();
      const task = await state.claimChunk(runId);
      if (!task) break;
      const result = await runChunk(chunking, task.chunkIndex, task);
      if (result.failure) {
        const interrupted = deps.signal.aborted;
        if (interrupted) {
          // An interrupt is not the chunk's fault: give the attempt back.
          await state.reopenChunk({ runId, chunkIndex: task.chunkIndex });
          break;
        }
        lastFailure = result.failure;
        const info = toErrorInfo(result.failure.error);
        await state.failChunk({
          runId,
          chunkIndex: task.chunkIndex,
          error: redact(info.message),
          retryable: info.exitCode === 2,
        });
        deps.emit({
          type: "warning",
          export: spec.name,
          code: "chunk.failed",
          message: `export '${spec.name}': chunk ${task.chunkIndex} failed (attempt ` +
            `${task.attempts}): ${info.message}`,
        });
        // A permanent error (syntax, privilege, type) would fail every chunk: stop here.
        if (info.exitCode !== 2) break;
        continue;
      }
      await state.completeChunk({
        runId,
        chunkIndex: task.chunkIndex,
        rowsWritten: result.rows,
        ...(result.keys[0] === undefined ? {} : { fileName: result.keys[0] }),
      });
      await crashPoint(`after_chunk_complete:${task.chunkIndex}`);
    }
    if (deps.signal.aborted) return;
    const tasks = await state.listChunkTasks(runId);
    const open = tasks.filter((t) => t.status !== "completed");
    priorParts = await state.listRunParts(runId);
    if (open.length > 0) {
      throw chunkError(lastFailure ?? { chunkIndex: open[0]!.chunkIndex, error: undefined }, {
        checkpointed: true,
        total: tasks.length,
        open: open.length,
      });
    }
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
  }

  /**
   * `--resume` (§3.7, reliability §1.4 M8): tasks a crash left running go back to pending; each
   * part a completed chunk recorded is checked at the destination (present, same size, same
   * xxh3). A missing part reopens its chunk; a part that drifted, a part of a chunk that did not
   * complete, and an untracked file of this run move to `_quarantine/<run_id>/`, and their
   * chunks run again. Nothing is deleted.
   */
  async function reconcileResume(): Promise<void> {
    const state = deps.state!;
    const { runId } = plan;
    const reset = await state.resetRunningChunks(runId);
    if (reset > 0) {
      deps.emit({
        type: "warning",
        export: spec.name,
        code: "resume.running_reset",
        message: `export '${spec.name}': ${reset} chunk(s) left running by the interrupted run ` +
          "go back to pending",
      });
    }
    const tasks = await state.listChunkTasks(runId);
    const parts = (await state.listRunParts(runId)).filter((p) => p.status !== "quarantined");
    const reopen = new Set<number>();
    const quarantine = new Map<string, string>();
    for (const part of parts) {
      const task = part.chunkIndex === undefined ? undefined : tasks[part.chunkIndex];
      if (!task || task.status !== "completed") {
        quarantine.set(part.fileName, "its chunk did not complete and runs again");
        continue;
      }
      const meta = await deps.destination.stat(part.fileName, { signal: deps.signal });
      if (!meta) {
        reopen.add(task.chunkIndex);
        deps.emit({
          type: "warning",
          export: spec.name,
          code: "resume.part_missing",
          message: `export '${spec.name}': ${part.fileName} of chunk ${task.chunkIndex} is ` +
            "missing at the destination; the chunk runs again",
        });
        continue;
      }
      const drifted = meta.size !== part.bytes
        ? `its size is ${meta.size} bytes, the run recorded ${part.bytes}`
        : part.contentFingerprint !== undefined &&
            (await fingerprintOf(part.fileName)) !== part.contentFingerprint
        ? "its content no longer matches the recorded fingerprint"
        : undefined;
      if (drifted) {
        quarantine.set(part.fileName, drifted);
        reopen.add(task.chunkIndex);
      }
    }
    // Every other part of a reopened chunk goes too, so the rewrite does not duplicate rows.
    for (const part of parts) {
      if (part.chunkIndex !== undefined && reopen.has(part.chunkIndex)) {
        if (!quarantine.has(part.fileName)) {
          quarantine.set(part.fileName, "another part of its chunk is missing or drifted");
        }
      }
    }
    const tracked = new Set(parts.map((p) => p.fileName));
    const prefix = chunkFilePrefix(spec.name, plan.startedAt);
    for await (const object of deps.destination.list("", { signal: deps.signal })) {
      if (object.key.startsWith("_quarantine/")) continue;
      const base = object.key.slice(object.key.lastIndexOf("/") + 1);
      if (base.startsWith(prefix) && !tracked.has(object.key)) {
        quarantine.set(object.key, "the run's state does not track it");
      }
    }
    if (quarantine.size > 0 || reopen.size > 0) {
      // The old marker would vouch for a prefix that is changing: set it aside first.
      if (await deps.destination.stat(SUCCESS_KEY, { signal: deps.signal })) {
        await quarantineObject(SUCCESS_KEY, "the resumed run rewrites it");
      }
    }
    for (const [key, why] of quarantine) {
      if (await deps.destination.stat(key, { signal: deps.signal })) {
        await quarantineObject(key, why);
      }
    }
    if (quarantine.size > 0) {
      await state.markPartsQuarantined({ runId, fileNames: [...quarantine.keys()] });
    }
    for (const chunkIndex of reopen) await state.reopenChunk({ runId, chunkIndex });
    priorParts = (await state.listRunParts(runId)).filter((p) => p.status !== "quarantined");
  }

  async function quarantineObject(key: string, why: string): Promise<void> {
    const target = `_quarantine/${plan.runId}/${key}`;
    for (let n = 0;; n++) {
      try {
        await deps.destination.move(key, n === 0 ? target : `${target}.${n}`, {
          signal: deps.signal,
        });
        deps.emit({
          type: "warning",
          export: spec.name,
          code: "resume.quarantined",
          message: `export '${spec.name}': moved ${key} to ${
            n === 0 ? target : `${target}.${n}`
          }: ${why}`,
        });
        return;
      } catch (error) {
        if (error instanceof RivetError && error.code === "destination.exists" && n < 100) continue;
        throw error;
      }
    }
  }

  async function fingerprintOf(key: string): Promise<string> {
    const hasher = await createXxh3();
    const stream = await deps.destination.read(key, { signal: deps.signal });
    for await (const chunk of stream) hasher.update(chunk);
    return `xxh3:${hasher.digest()}`;
  }

  function chunkError(
    failure: ChunkFailure,
    info: { checkpointed: boolean; total: number; open?: number; unit?: string },
  ): RivetError {
    const unit = info.unit ?? "chunk";
    const cause = failure.error === undefined ? undefined : toErrorInfo(failure.error);
    const what = cause ? `: ${cause.message}` : "";
    if (info.checkpointed) {
      const message = `export '${spec.name}': ${info.open} of ${info.total} chunks did not ` +
        `complete (chunk ${failure.chunkIndex}${what})`;
      const hint = `resume with 'rivet run --resume -e ${spec.name}' (completed chunks are ` +
        `kept), or discard the run with 'rivet state reset-chunks -e ${spec.name}'`;
      return cause?.exitCode === 2
        ? new TransientError(message, { code: "chunk.incomplete", hint })
        : new PermanentError(message, { code: cause?.code ?? "chunk.incomplete", hint });
    }
    const message = `export '${spec.name}': ${unit} ${failure.chunkIndex} failed${what}`;
    if (files.length > 0 && cause?.exitCode === 2) {
      // The duplicate guard (§8.3): earlier chunks are committed, so a whole-export retry would
      // write their rows twice.
      return new DataIntegrityError(message, {
        code: "run.duplicate_guard",
        hint: `${files.length} file(s) were already committed and are kept; a retry of the whole ` +
          "export would duplicate them. Re-run after cleaning the destination, or set " +
          "chunk_checkpoint: true so that --resume continues where it stopped",
      });
    }
    if (failure.error instanceof RivetError) return failure.error;
    return new PermanentError(message, { code: cause?.code ?? "chunk.failed" });
  }
}
