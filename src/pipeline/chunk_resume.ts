/**
 * `--resume` of a checkpointed chunked run, and the quarantine: what an interrupted run left at
 * the destination is reconciled with what its state recorded before any chunk runs again, and a
 * file that cannot be trusted is moved into `_quarantine/<run_id>/` (never deleted), so readers
 * that glob the folder do not count its rows and nobody loses a copy.
 *
 * {@linkcode reconcileResume} runs once, before the resumed run's chunks;
 * {@linkcode quarantineOrphans} and {@linkcode quarantineObject} also run during a run, for the
 * unreported files of a crashed runner and the committed parts of a chunk that failed and runs
 * again.
 *
 * Layer: pipeline. Imports core/ and other pipeline modules only.
 *
 * @module
 */
import type { Destination } from "../core/destination.ts";
import { RivetError } from "../core/errors.ts";
import type { EventSink } from "../core/events.ts";
import type { PartEntry, StateStore } from "../core/state.ts";
import { SUCCESS_KEY } from "./manifest.ts";
import { chunkFilePrefix } from "./naming.ts";
import { checkPart } from "./verify.ts";
import { type PartObservation, planResume } from "./chunk_decisions.ts";

/** Where files are moved aside, and who hears about it. */
export interface QuarantineContext {
  /** The export, named in warnings. */
  readonly exportName: string;
  /** The run: files go to `_quarantine/<run_id>/`. */
  readonly runId: string;
  readonly destination: Destination;
  readonly emit: EventSink;
  readonly signal: AbortSignal;
}

/** What {@linkcode reconcileResume} needs besides the quarantine. */
export interface ResumeContext extends QuarantineContext {
  /** Holds the resumed run's chunk tasks and file log. */
  readonly state: StateStore;
  /** The resumed run's start time, which its file names carry. */
  readonly startedAt: Date;
  /** `--resume --force`: chunks that failed permanently get a new budget too. */
  readonly force: boolean;
  /**
   * The run is shared by processes on other hosts (a ledger with leases): the files and parts
   * of chunks that are not completed may be theirs, being written now, so they are left alone
   * (a chunk taken over from a dead host is cleaned when it is claimed: `takeOverChunk`).
   */
  readonly shared?: boolean;
  /** The `--resume` command of this export, named in warnings. */
  readonly resumeHint: string;
  /** The command that discards the run's checkpoint, named in warnings. */
  readonly resetHint: string;
}

/**
 * Reconciles a resumed run with its destination. Tasks a crash left running go back to pending;
 * each part a completed chunk recorded is checked at the destination (present, same size, same
 * xxh3). A missing part reopens its chunk; a part that drifted, a part of a chunk that did not
 * complete, and an untracked file of this run move to `_quarantine/<run_id>/`, and their chunks
 * run again (so do the other parts of a reopened chunk, so its rewrite does not duplicate rows).
 * A `_SUCCESS` left from before is set aside too when anything changes. Chunks that failed get a
 * fresh retry budget, except permanent failures without `--force`. Nothing is deleted.
 *
 * @param ctx State, destination, run, hints, event sink and signal.
 * @returns The run's parts that are not quarantined, as the manifest will list them.
 */
export async function reconcileResume(ctx: ResumeContext): Promise<PartEntry[]> {
  const { state, runId, exportName, destination, emit, signal, resumeHint, resetHint } = ctx;
  const reset = await state.resetRunningChunks(runId);
  if (reset > 0) {
    emit({
      type: "warning",
      export: exportName,
      code: "resume.running_reset",
      message: `export '${exportName}': ${reset} chunk(s) left running by the interrupted run ` +
        "go back to pending",
    });
  }
  const tasks = await state.listChunkTasks(runId);
  const parts = (await state.listRunParts(runId)).filter((p) => p.status !== "quarantined");
  // The facts: what the destination holds for each part of a completed chunk.
  const observed = new Map<string, PartObservation>();
  for (const part of parts) {
    const task = part.chunkIndex === undefined ? undefined : tasks[part.chunkIndex];
    if (task?.status !== "completed") continue;
    const fingerprint = part.contentFingerprint;
    const drift = await checkPart(destination, {
      key: part.fileName,
      sizeBytes: part.bytes,
      ...(fingerprint === undefined
        ? {}
        : { xxh3: fingerprint.startsWith("xxh3:") ? fingerprint.slice(5) : fingerprint }),
    }, { readContent: true, signal });
    observed.set(
      part.fileName,
      drift === undefined ? { kind: "intact" } : drift.kind === "md5" ? { kind: "content" } : drift,
    );
  }
  const listed: string[] = [];
  for await (const object of destination.list("", { signal })) listed.push(object.key);
  const plan = planResume({
    tasks,
    parts: ctx.shared ? parts.filter((p) => observed.has(p.fileName)) : parts,
    observed,
    listed: ctx.shared ? [] : listed,
    runFilePrefix: chunkFilePrefix(exportName, ctx.startedAt),
    force: ctx.force,
  });
  for (const { fileName, chunkIndex } of plan.missing) {
    emit({
      type: "warning",
      export: exportName,
      code: "resume.part_missing",
      message: `export '${exportName}': ${fileName} of chunk ${chunkIndex} is missing at the ` +
        "destination; the chunk runs again",
    });
  }
  if (plan.quarantine.size > 0 || plan.reopen.length > 0) {
    // The old marker would vouch for a prefix that is changing: set it aside first.
    if (await destination.stat(SUCCESS_KEY, { signal })) {
      await quarantineObject(ctx, SUCCESS_KEY, "the resumed run rewrites it");
    }
  }
  for (const [key, why] of plan.quarantine) {
    if (await destination.stat(key, { signal })) await quarantineObject(ctx, key, why);
  }
  if (plan.quarantine.size > 0) {
    await state.markPartsQuarantined({ runId, fileNames: [...plan.quarantine.keys()] });
  }
  for (const chunkIndex of plan.reopen) await state.reopenChunk({ runId, chunkIndex });
  for (const task of plan.keptFailed) {
    emit({
      type: "warning",
      export: exportName,
      code: "resume.failed_permanently",
      message: `export '${exportName}': chunk ${task.chunkIndex} failed permanently ` +
        `(${task.lastError ?? "no error recorded"}) and is not retried; fix the cause and ` +
        `run '${resumeHint} --force', or discard the run with '${resetHint}'`,
    });
  }
  for (const chunkIndex of plan.revive) await state.reopenChunk({ runId, chunkIndex });
  if (plan.revive.length > 0) {
    emit({
      type: "warning",
      export: exportName,
      code: "resume.failed_retried",
      message: `export '${exportName}': ${plan.revive.length} failed chunk(s) run again with a ` +
        "fresh retry budget",
    });
  }
  return (await state.listRunParts(runId)).filter((p) => p.status !== "quarantined");
}

/**
 * Moves aside the files of chunk `index` that this run never recorded (a runner that crashed
 * may have committed some before it could report them).
 *
 * @param ctx Destination, run, event sink, signal, and the run's start time (in its file names).
 * @param index The chunk.
 * @param known Every file the run recorded (this process's and earlier attempts').
 */
export async function quarantineOrphans(
  ctx: QuarantineContext & { readonly startedAt: Date },
  index: number,
  known: ReadonlySet<string>,
  why = "its runner crashed before reporting it",
): Promise<string[]> {
  const prefix = `${chunkFilePrefix(ctx.exportName, ctx.startedAt)}${index}_`;
  const orphans: string[] = [];
  for await (const object of ctx.destination.list("", { signal: ctx.signal })) {
    if (object.key.startsWith("_quarantine/") || known.has(object.key)) continue;
    if (object.key.slice(object.key.lastIndexOf("/") + 1).startsWith(prefix)) {
      orphans.push(object.key);
    }
  }
  for (const key of orphans) await quarantineObject(ctx, key, why);
  return orphans;
}

/**
 * Before a claimed chunk of a shared run is written again (its earlier holder died or failed),
 * moves aside every file of the chunk at the destination and marks them quarantined in the
 * file log, so the manifest lists only the new ones.
 *
 * @param ctx Destination, run, event sink and signal.
 * @param state The file log.
 * @param startedAt The run's start time (in its file names).
 * @param index The chunk.
 */
export async function takeOverChunk(
  ctx: QuarantineContext,
  state: Pick<StateStore, "markPartsQuarantined">,
  startedAt: Date,
  index: number,
): Promise<void> {
  const moved = await quarantineOrphans(
    { ...ctx, startedAt },
    index,
    new Set(),
    "an earlier claim of its chunk wrote it, and the chunk runs again",
  );
  if (moved.length > 0) {
    await state.markPartsQuarantined({ runId: ctx.runId, fileNames: moved });
  }
}

/**
 * Moves `key` to `_quarantine/<run_id>/<key>` (`.1`, `.2`, … when that name is taken) and says
 * why in a `resume.quarantined` warning.
 *
 * @param ctx Destination, run, event sink and signal.
 * @param key The object.
 * @param why The reason, ending the warning.
 */
export async function quarantineObject(
  ctx: QuarantineContext,
  key: string,
  why: string,
): Promise<void> {
  const target = `_quarantine/${ctx.runId}/${key}`;
  for (let n = 0;; n++) {
    try {
      await ctx.destination.move(key, n === 0 ? target : `${target}.${n}`, {
        signal: ctx.signal,
      });
      ctx.emit({
        type: "warning",
        export: ctx.exportName,
        code: "resume.quarantined",
        message: `export '${ctx.exportName}': moved ${key} to ${
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
