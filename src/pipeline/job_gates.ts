/**
 * The gates one export passes before and after it runs: the checkpoint gate of a checkpointed
 * chunked export, the `_SUCCESS` gate of the destination, and the duplicate guard of a failure
 * after committed files (docs/run-guarantees.md, "Resume" and "Retries").
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import { ConfigError, DataIntegrityError } from "../core/errors.ts";
import type { EventSink, Outcome } from "../core/events.ts";
import type { Destination } from "../core/destination.ts";
import type { ExportSpec } from "../core/spec.ts";
import type { ChunkRunEntry, StateStore } from "../core/state.ts";
import { rivetCommand } from "./hints.ts";
import { MANIFEST_KEY, SUCCESS_KEY } from "./manifest.ts";
import { exportErrorInfo } from "./run_export.ts";

/** What the gates need to know about the run. */
export interface GateContext {
  readonly state: StateStore;
  readonly emit: EventSink;
  readonly signal: AbortSignal;
  /** `--resume`. */
  readonly resume?: boolean;
  /** `--force`. */
  readonly force?: boolean;
}

/**
 * The duplicate guard: a transient failure after files were committed is not retried (a retry
 * would write their rows twice) and exits 3 instead of 2.
 *
 * @param outcome An export's final outcome.
 * @returns The outcome, its error turned into `run.duplicate_guard` when files were committed.
 */
export function duplicateGuard(outcome: Outcome): Outcome {
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
 * The checkpoint gate of a chunked export: a fresh run is refused while an earlier one is in
 * progress; `--resume` needs a checkpointed run to continue and returns it.
 *
 * @param spec The export.
 * @param ctx The state store and the resume flag.
 * @param configPath The config file, for the hints' commands.
 * @returns The run to resume, or undefined for a fresh run.
 * @throws {ConfigError} `state.chunk_run_in_progress` or `resume.nothing_to_resume`.
 */
export async function checkpointGate(
  spec: ExportSpec,
  ctx: Pick<GateContext, "state" | "resume">,
  configPath: string,
): Promise<ChunkRunEntry | undefined> {
  if (spec.mode !== "chunked" || !spec.chunkCheckpoint) return undefined;
  const latest = await ctx.state.latestChunkRun(spec.name);
  if (!ctx.resume) {
    if (latest?.status === "in_progress") {
      const tasks = await ctx.state.listChunkTasks(latest.runId);
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
 *
 * @param spec The export.
 * @param destination Its open destination.
 * @param ctx Events, signal and the resume flags.
 * @throws {ConfigError} `resume.already_complete`.
 */
export async function successGate(
  spec: ExportSpec,
  destination: Destination,
  ctx: Omit<GateContext, "state">,
): Promise<void> {
  if (!destination.capabilities.persistent) return;
  const success = await destination.stat(SUCCESS_KEY, { signal: ctx.signal });
  if (ctx.resume) {
    if (success && !ctx.force) {
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
  const manifest = success ?? await destination.stat(MANIFEST_KEY, { signal: ctx.signal });
  if (manifest) {
    ctx.emit({
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
