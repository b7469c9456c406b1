/**
 * Whether and when to retry a transient failure: exponential backoff from `retry_backoff_ms`,
 * jittered so that parallel chunks and exports that failed together do not hammer a recovering
 * server in step, plus an extra delay for the error classes that need the server to recover
 * first.
 *
 * Layer: pipeline. Imports core/ and _util/ only.
 *
 * @module
 */
import { type ErrorInfo, isResourceExhausted } from "../core/errors.ts";
import { backoffMs } from "../_util/retry.ts";

/**
 * Extra delay of a transient error's class: +15 s while the server starts, stops or has no free
 * connection; +5 s for other resource exhaustion; +1 s after a deadlock or serialization failure;
 * nothing for connection resets and lock timeouts.
 *
 * @param error The failure.
 * @returns Milliseconds to add to the backoff.
 *
 * @example
 * ```ts
 * import { extraDelayMs } from "./retry.ts";
 * const e = { name: "E", code: "source.transient", message: "", exitCode: 2 as const, sqlstate: "57P03" };
 * if (extraDelayMs(e) !== 15_000) throw new Error();
 * ```
 */
export function extraDelayMs(error: ErrorInfo): number {
  const { sqlstate, errno, code } = error;
  if (sqlstate !== undefined) {
    if (/^57P0[123]$/.test(sqlstate) || sqlstate === "53300") return 15_000;
    if (sqlstate === "40001" || sqlstate === "40P01") return 1_000;
    if (sqlstate.startsWith("53")) return 5_000;
    return 0;
  }
  if (errno !== undefined) {
    if (errno === 1040 || errno === 1053 || errno === 1203) return 15_000;
    if (errno === 1205 || errno === 1213) return 1_000;
    return 0;
  }
  return code === "source.server_unavailable" ? 15_000 : 0;
}

/** Options of {@linkcode retryDelayMs}. */
export interface RetryDelayOptions {
  /** 1-based number of the retry about to happen. */
  readonly attempt: number;
  /** `retry_backoff_ms`. */
  readonly backoffMs: number;
  /** Source of the jitter, a number in [0, 1); `Math.random` when omitted. */
  readonly random?: () => number;
}

/**
 * Delay before retry number `attempt` (1-based): `backoffMs × 2^(attempt−1)`, scaled by a random
 * factor between 0.75 and 1.25 (jitter), plus the class's extra delay (not jittered: it is the
 * time a server needs to come back).
 *
 * @param error The failure being retried.
 * @param options Attempt number, `retry_backoff_ms` and the jitter source.
 * @returns Milliseconds to wait.
 *
 * @example
 * ```ts
 * import { retryDelayMs } from "./retry.ts";
 * const e = { name: "E", code: "source.connection_lost", message: "", exitCode: 2 as const };
 * if (retryDelayMs(e, { attempt: 3, backoffMs: 100, random: () => 0.5 }) !== 400) throw new Error();
 * const d = retryDelayMs(e, { attempt: 3, backoffMs: 100 });
 * if (d < 300 || d > 500) throw new Error();
 * ```
 */
export function retryDelayMs(error: ErrorInfo, options: RetryDelayOptions): number {
  const backoff = { baseMs: options.backoffMs, jitter: [0.75, 1.25] } as const;
  return backoffMs(options.attempt - 1, backoff, options.random) + extraDelayMs(error);
}

/**
 * Whether a failure may be retried within the run that saw it: it must be transient; a full disk
 * or a lack of file handles waits for the operator instead (the run stays resumable); and a
 * refused connection is retried only once the run is underway, i.e. after it reached the server
 * at least once. A refused connection at the very start fails fast (nothing listens there, and
 * the scheduler retries exit 2 on its own schedule), while one in the middle of a run is an
 * outage that a few retries ride through.
 *
 * @param error The failure.
 * @param context Whether the run has already reached the source.
 * @returns True when the failure should be retried after {@linkcode retryDelayMs}.
 *
 * @example
 * ```ts
 * import { retriesInRun } from "./retry.ts";
 * const refused = { name: "E", code: "source.connection_refused", message: "", exitCode: 2 as const };
 * if (retriesInRun(refused, { underway: false }) || !retriesInRun(refused, { underway: true })) {
 *   throw new Error();
 * }
 * ```
 */
export function retriesInRun(error: ErrorInfo, context: { readonly underway: boolean }): boolean {
  if (error.exitCode !== 2 || isResourceExhausted(error)) return false;
  return context.underway || error.code !== "source.connection_refused";
}

/**
 * The `run.retrying` warning of one retry of an export or a unit of it, and its delay: the one
 * wording the journal counts as a retry.
 *
 * @param exportName The export.
 * @param error What failed.
 * @param step The retry about to happen (1-based), the budget, the base backoff, and what is
 *   retried when it is less than the whole export (e.g. `chunk 3`).
 * @returns The delay to wait and the warning to emit first.
 */
export function retryStep(
  exportName: string,
  error: ErrorInfo,
  step: {
    readonly attempt: number;
    readonly maxRetries: number;
    readonly backoffMs: number;
    readonly unit?: string;
  },
): {
  delayMs: number;
  warning: { type: "warning"; export: string; code: string; message: string };
} {
  const delayMs = retryDelayMs(error, { attempt: step.attempt, backoffMs: step.backoffMs });
  const what = step.unit === undefined ? "" : `${step.unit}: `;
  return {
    delayMs,
    warning: {
      type: "warning",
      export: exportName,
      code: "run.retrying",
      message: `export '${exportName}': ${what}${error.message}; retry ${step.attempt}/` +
        `${step.maxRetries} in ${delayMs} ms`,
    },
  };
}
