/**
 * How long to wait before retrying a transient failure (reference §8.3, reliability.md §1.6):
 * exponential backoff from `retry_backoff_ms`, plus an extra delay for the error classes that
 * need the server to recover first.
 *
 * Layer: pipeline. Pure.
 *
 * @module
 */
import type { ErrorInfo } from "../core/errors.ts";

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

/**
 * Delay before retry number `attempt` (1-based): `backoffMs × 2^(attempt−1)` plus the class's
 * extra delay.
 *
 * @param error The failure being retried.
 * @param options Attempt number and `retry_backoff_ms`.
 * @returns Milliseconds to wait.
 *
 * @example
 * ```ts
 * import { retryDelayMs } from "./retry.ts";
 * const e = { name: "E", code: "source.connection_lost", message: "", exitCode: 2 as const };
 * if (retryDelayMs(e, { attempt: 3, backoffMs: 100 }) !== 400) throw new Error();
 * ```
 */
export function retryDelayMs(
  error: ErrorInfo,
  options: { readonly attempt: number; readonly backoffMs: number },
): number {
  return options.backoffMs * 2 ** (options.attempt - 1) + extraDelayMs(error);
}
