/**
 * The errors a chunked run ends with when chunks did not complete: exit code, message and the
 * hint naming the command that goes on (`--resume`, `--resume --force`, `state reset-chunks`).
 *
 * Layer: pipeline. Imports core/ only.
 *
 * @module
 */
import {
  DataIntegrityError,
  errorFromInfo,
  type ErrorInfo,
  isResourceExhausted,
  PermanentError,
  type RivetError,
  TransientError,
} from "../core/errors.ts";
import type { ChunkTaskEntry } from "../core/state.ts";

/** Why a chunk stopped. */
export interface ChunkFailure {
  readonly chunkIndex: number;
  readonly error: ErrorInfo | undefined;
}

/** The export and the commands a hint names. */
export interface ChunkErrorContext {
  readonly exportName: string;
  /** The `--resume` command of this export. */
  readonly resumeHint: string;
  /** The command that discards the run's checkpoint. */
  readonly resetHint: string;
}

/**
 * The error of a checkpointed run that ends with chunks not completed: exit 1 naming
 * `--resume --force` when a chunk failed permanently, else exit 2 naming `--resume` (with
 * "free space" first when the disk is full).
 *
 * @param ctx The export and the commands the hint names.
 * @param open The tasks that did not complete.
 * @param total How many chunks the run has.
 * @param last The last chunk failure of this process, if any.
 * @returns The run's error.
 */
export function checkpointError(
  ctx: ChunkErrorContext,
  open: readonly ChunkTaskEntry[],
  total: number,
  last: ChunkFailure | undefined,
): RivetError {
  const { exportName, resumeHint, resetHint } = ctx;
  const counts = `${open.length} of ${total} chunks did not complete`;
  const permanent = open.find((t) => t.status === "failed" && t.failure === "permanent");
  if (permanent) {
    const cause = last?.chunkIndex === permanent.chunkIndex ? last.error : undefined;
    const why = cause?.message ?? permanent.lastError ?? "no error recorded";
    // The cause keeps its class: schema drift stays exit 4, a checksum mismatch exit 3.
    return errorFromInfo({
      name: cause?.name ?? "PermanentError",
      code: cause?.code ?? "chunk.failed_permanently",
      exitCode: cause?.exitCode ?? 1,
      message: `export '${exportName}': ${counts}; chunk ${permanent.chunkIndex} failed ` +
        `permanently: ${why}`,
      hint: `a plain --resume does not retry it: fix the cause, then run '${resumeHint} ` +
        `--force' (completed chunks are kept), or discard the run with '${resetHint}'`,
    });
  }
  const cause = last?.error;
  if (cause && isResourceExhausted(cause)) {
    return new TransientError(
      `export '${exportName}': ${cause.message}; free space and run --resume (${counts})`,
      {
        code: cause.code,
        hint: `once space is free, continue with '${resumeHint}' (completed chunks are kept)`,
      },
    );
  }
  const what = last ? ` (chunk ${last.chunkIndex}${cause ? `: ${cause.message}` : ""})` : "";
  return new TransientError(`export '${exportName}': ${counts}${what}`, {
    code: "chunk.incomplete",
    hint: `continue with '${resumeHint}' once the source is reachable (completed chunks are ` +
      `kept, failed ones get a fresh retry budget), or discard the run with '${resetHint}'`,
  });
}

/**
 * The error of a chunked run without checkpoints whose unit failed (a chunk, a keyset page, or
 * the one query of a run downgraded to a snapshot): the cause as it was (`chunk.failed`, exit 1,
 * when none was reported), except a transient failure after files were committed, which becomes
 * a data-integrity error (exit 3, `run.duplicate_guard`), since retrying the whole export would
 * write the committed rows twice.
 *
 * @param exportName The export.
 * @param failure The unit and why it stopped.
 * @param info What the unit is called (`chunk` by default) and how many files the run committed.
 * @returns The run's error.
 */
export function chunkError(
  exportName: string,
  failure: ChunkFailure,
  info: { readonly unit?: string; readonly committedFiles: number },
): RivetError {
  const unit = info.unit ?? "chunk";
  const cause = failure.error;
  const what = cause ? `: ${cause.message}` : "";
  const message = `export '${exportName}': ${unit} ${failure.chunkIndex} failed${what}`;
  if (info.committedFiles > 0 && cause?.exitCode === 2) {
    // The duplicate guard: earlier chunks are committed, so a whole-export retry would write
    // their rows twice.
    return new DataIntegrityError(message, {
      code: "run.duplicate_guard",
      hint:
        `${info.committedFiles} file(s) were already committed and are kept; a retry of the whole ` +
        "export would duplicate them. Re-run after cleaning the destination, or set " +
        "chunk_checkpoint: true so that --resume continues where it stopped",
    });
  }
  if (cause) return errorFromInfo(cause);
  return new PermanentError(message, { code: "chunk.failed" });
}
