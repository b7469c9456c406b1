/**
 * Errors shared by the state stores, so both backends fail with the same code and words.
 *
 * Layer: state (private).
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";
import type { ChunkRefEntry } from "../core/state.ts";

/** A fresh checkpointed run while another run of the export is still in progress. */
export function chunkRunInProgress(exportName: string, runId: string): ConfigError {
  return new ConfigError(
    `export '${exportName}': checkpointed run '${runId}' is still in progress: resume it with ` +
      "--resume or discard it with 'rivet state reset-chunks'",
    {
      code: "state.chunk_run_in_progress",
      hint: `rivet run --resume -e ${exportName} continues it; rivet state reset-chunks -e ` +
        `${exportName} drops its checkpoints`,
    },
  );
}

/** A chunk update naming a task the plan does not have: a programmer error. */
export function unknownChunk(entry: ChunkRefEntry): RangeError {
  return new RangeError(`No chunk task ${entry.chunkIndex} in run '${entry.runId}'`);
}

/** A chunk run update naming a run that does not exist: a programmer error. */
export function unknownChunkRun(runId: string): RangeError {
  return new RangeError(`No chunk run '${runId}'`);
}

/** A second plan under a run id already used: a programmer error (run ids carry a timestamp). */
export function chunkRunExists(runId: string): RangeError {
  return new RangeError(`Chunk run '${runId}' already exists`);
}

/**
 * `completeChunkRun` while tasks are unfinished: the caller must check first (a completed run
 * must never hide unfinished chunks).
 */
export function chunkRunIncomplete(runId: string, unfinished: readonly number[]): RangeError {
  const shown = unfinished.slice(0, 10).join(", ");
  const more = unfinished.length > 10 ? ", …" : "";
  return new RangeError(
    `Chunk run '${runId}' cannot be completed: ${unfinished.length} task(s) not completed ` +
      `(${shown}${more})`,
  );
}
