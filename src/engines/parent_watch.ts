/**
 * How a `--parallel-export-processes` child notices that its parent is gone.
 *
 * The parent starts every child with a pipe on its stdin and never writes to it. When the parent
 * dies, however it dies (SIGKILL, the OOM killer, a crash), the operating system closes its end
 * and the child's read of stdin ends (EOF), on every OS. Signals cannot do this: a SIGKILLed
 * parent sends nothing, and its children would go on reading from the database and committing
 * files for a run nobody waits for.
 *
 * On EOF the child:
 * 1. seals its writes: revokes its `write` permission (and each worker it started revokes its
 *    own when told), so no file, local part or marker can be committed from then on: an upload
 *    in its commit window fails instead of landing (its staging file is left for the next run
 *    to clean up);
 * 2. aborts its run with {@linkcode ParentGone} as the reason: queries are cancelled on the
 *    server (the same path as Ctrl-C), workers are told to stop;
 * 3. exits after {@linkcode PARENT_GONE_EXIT_MS} at the latest, whatever is still running (a
 *    cloud upload in its last request, a worker that does not answer).
 *
 * Layer: engines.
 *
 * @module
 */

/** Milliseconds a child whose parent is gone gets to cancel its queries before it exits. */
export const PARENT_GONE_EXIT_MS = 1000;

/** The abort reason of a child whose parent process is gone. */
export class ParentGone extends Error {
  constructor() {
    super("its parent process is gone");
    this.name = "ParentGone";
  }
}

/**
 * Whether an abort reason says the parent process is gone (so writes must be sealed, not only
 * stopped).
 *
 * @param reason An `AbortSignal`'s reason.
 * @returns True for {@linkcode ParentGone}.
 */
export function isParentGone(reason: unknown): boolean {
  return reason instanceof ParentGone;
}

/**
 * Revokes this thread's `write` permission for good: nothing more can be written, renamed or
 * removed from here (a worker's grant is its own: each worker seals itself).
 */
export function sealWrites(): void {
  try {
    Deno.permissions.revokeSync({ name: "write" });
  } catch {
    // Not revocable here: the exit deadline still bounds what can happen.
  }
}

/** Options of {@linkcode watchParent}. */
export interface WatchParentOptions {
  /** The pipe from the parent; default `Deno.stdin.readable`. */
  readonly stdin?: ReadableStream<Uint8Array>;
  /** Called {@linkcode PARENT_GONE_EXIT_MS} after the parent is gone (the process must end). */
  readonly onDeadline: () => void;
  /** Override of {@linkcode PARENT_GONE_EXIT_MS}. */
  readonly deadlineMs?: number;
  /** What seals this thread's writes; default {@linkcode sealWrites} (tests pass their own). */
  readonly seal?: () => void;
}

/**
 * Watches the pipe from the parent: on its end, seals writes, aborts the returned signal with
 * {@linkcode ParentGone} and arms the exit deadline.
 *
 * @param options The pipe and what ends the process.
 * @returns A signal aborted when the parent is gone.
 *
 * @example
 * ```ts ignore
 * import { watchParent } from "./parent_watch.ts";
 * const parentGone = watchParent({ onDeadline: () => Deno.exit(130) });
 * ```
 */
export function watchParent(options: WatchParentOptions): AbortSignal {
  const controller = new AbortController();
  const stdin = options.stdin ?? Deno.stdin.readable;
  (async () => {
    try {
      const reader = stdin.getReader();
      // The parent never writes; whatever arrives is ignored until the pipe ends.
      while (!(await reader.read()).done) { /* keep reading */ }
    } catch {
      // A broken pipe is a parent that is gone, too.
    }
    (options.seal ?? sealWrites)();
    controller.abort(new ParentGone());
    setTimeout(options.onDeadline, options.deadlineMs ?? PARENT_GONE_EXIT_MS);
  })();
  return controller.signal;
}
