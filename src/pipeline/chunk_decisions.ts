/**
 * What a chunked run does with each task and file, as pure functions: the loop in
 * `run_chunked.ts` and the resume in `chunk_resume.ts` gather the facts (a unit's result, what
 * the destination holds) and carry out the decision; the rules themselves live here, where they
 * are tested without a database or a destination.
 *
 * Layer: pipeline. Imports core/ only.
 *
 * @module
 */
import type { ErrorInfo } from "../core/errors.ts";
import type { ChunkTaskEntry, PartEntry } from "../core/state.ts";
import { retriesInRun } from "./retry.ts";

/** What happens to a chunk after its unit ran. */
export type ChunkVerdict =
  /** The unit succeeded: log its parts, complete the task. */
  | { readonly kind: "completed" }
  /** The run was interrupted: give the claim back, stop claiming. */
  | { readonly kind: "interrupted" }
  /**
   * The unit failed. Its committed parts are quarantined when the task is checkpointed (its
   * next claim writes them again); `again` says whether this run claims it again (after a
   * backoff), else the run stops claiming. `retryable` is recorded for `--resume`: a transient
   * failure gets a fresh budget there, a permanent one only with `--force`.
   */
  | {
    readonly kind: "failed";
    readonly again: boolean;
    readonly retryable: boolean;
    readonly quarantine: readonly string[];
  };

/**
 * Decides what a unit's result means for its chunk.
 *
 * A transient failure (the run is underway) that the unit's own retries did not ride out is
 * claimed again while the task has attempts left; a permanent failure would fail every time, a
 * full disk waits for the operator, and a chunk out of attempts means the outage outlasts the
 * budget: each stops the run. Runs without checkpoints never claim a chunk twice.
 *
 * @param result The unit's failure (undefined on success) and the keys it committed.
 * @param facts Whether the run was interrupted or is already stopping, whether the run is
 *   checkpointed, and the task's claim number and budget.
 * @returns The verdict.
 *
 * @example
 * ```ts
 * import { chunkVerdict } from "./chunk_decisions.ts";
 * const v = chunkVerdict({ keys: [] }, {
 *   aborted: false, stopping: false, checkpointed: true, attempt: 1, maxAttempts: 3,
 * });
 * if (v.kind !== "completed") throw new Error(v.kind);
 * ```
 */
export function chunkVerdict(
  result: { readonly failure?: ErrorInfo; readonly keys: readonly string[] },
  facts: {
    readonly aborted: boolean;
    readonly stopping: boolean;
    readonly checkpointed: boolean;
    readonly attempt: number;
    readonly maxAttempts: number;
  },
): ChunkVerdict {
  const info = result.failure;
  if (!info) return { kind: "completed" };
  // An interrupt is not the chunk's fault: the attempt is given back.
  if (facts.aborted) return { kind: "interrupted" };
  const again = facts.checkpointed && !facts.stopping &&
    retriesInRun(info, { underway: true }) && facts.attempt < facts.maxAttempts;
  return {
    kind: "failed",
    again,
    retryable: info.exitCode === 2,
    quarantine: facts.checkpointed ? result.keys : [],
  };
}

/**
 * What the destination holds for one recorded part of a completed chunk, as the resume read it
 * back (`verify.ts`'s `checkPart`): intact, missing, another size, or other bytes.
 */
export type PartObservation =
  | { readonly kind: "intact" }
  | { readonly kind: "missing" }
  | { readonly kind: "size"; readonly size: number }
  | { readonly kind: "content" };

/** What `--resume` does with a run, before any chunk runs again. */
export interface ResumePlan {
  /** Chunks that run again because a part is missing or drifted (ascending). */
  readonly reopen: readonly number[];
  /** Files moved to `_quarantine/<run_id>/`, with the reason, in decision order. */
  readonly quarantine: ReadonlyMap<string, string>;
  /** Recorded parts missing at the destination, for a warning each. */
  readonly missing: readonly { readonly fileName: string; readonly chunkIndex: number }[];
  /** Failed chunks that get a fresh budget (ascending). */
  readonly revive: readonly number[];
  /** Chunks that failed permanently and stay failed (no `--force`). */
  readonly keptFailed: readonly ChunkTaskEntry[];
}

/**
 * Decides a resume. A part of a chunk that did not complete is quarantined; a part missing at the
 * destination reopens its chunk; a part whose size or fingerprint drifted is quarantined and
 * reopens its chunk; every other part of a reopened chunk goes too, so the rewrite does not
 * duplicate rows; a file of this run that the state does not track is quarantined. Failed chunks
 * get a fresh budget, except permanent failures without `force`.
 *
 * @param facts The run's tasks (indexed by chunk), its live parts with what the destination
 *   holds for each part of a completed chunk, the keys listed at the destination, the run's file
 *   name prefix, and `--force`.
 * @returns The plan; `chunk_resume.ts` carries it out.
 */
export function planResume(facts: {
  readonly tasks: readonly ChunkTaskEntry[];
  readonly parts: readonly PartEntry[];
  readonly observed: ReadonlyMap<string, PartObservation>;
  readonly listed: readonly string[];
  readonly runFilePrefix: string;
  readonly force: boolean;
}): ResumePlan {
  const { tasks, parts, observed } = facts;
  const reopen = new Set<number>();
  const quarantine = new Map<string, string>();
  const missing: { fileName: string; chunkIndex: number }[] = [];
  for (const part of parts) {
    const task = part.chunkIndex === undefined ? undefined : tasks[part.chunkIndex];
    if (!task || task.status !== "completed") {
      quarantine.set(part.fileName, "its chunk did not complete and runs again");
      continue;
    }
    const seen = observed.get(part.fileName) ?? { kind: "missing" };
    if (seen.kind === "missing") {
      reopen.add(task.chunkIndex);
      missing.push({ fileName: part.fileName, chunkIndex: task.chunkIndex });
      continue;
    }
    const drifted = seen.kind === "size"
      ? `its size is ${seen.size} bytes, the run recorded ${part.bytes}`
      : seen.kind === "content"
      ? "its content no longer matches the recorded fingerprint"
      : undefined;
    if (drifted) {
      quarantine.set(part.fileName, drifted);
      reopen.add(task.chunkIndex);
    }
  }
  for (const part of parts) {
    if (part.chunkIndex !== undefined && reopen.has(part.chunkIndex)) {
      if (!quarantine.has(part.fileName)) {
        quarantine.set(part.fileName, "another part of its chunk is missing or drifted");
      }
    }
  }
  const tracked = new Set(parts.map((p) => p.fileName));
  for (const key of facts.listed) {
    if (key.startsWith("_quarantine/")) continue;
    const base = key.slice(key.lastIndexOf("/") + 1);
    if (base.startsWith(facts.runFilePrefix) && !tracked.has(key)) {
      quarantine.set(key, "the run's state does not track it");
    }
  }
  // A transient failure (an outage that outlasted the retries, a full disk) may be gone now; a
  // permanent one would fail again: only --force retries it.
  const revive: number[] = [];
  const keptFailed: ChunkTaskEntry[] = [];
  for (const task of tasks) {
    if (task.status !== "failed" || reopen.has(task.chunkIndex)) continue;
    if (task.failure === "permanent" && !facts.force) keptFailed.push(task);
    else revive.push(task.chunkIndex);
  }
  return {
    reopen: [...reopen].sort((a, b) => a - b),
    quarantine,
    missing,
    revive,
    keptFailed,
  };
}
