/**
 * The one backoff and retry loop of the tree: exponential backoff with jitter (used by the
 * pipeline's in-run retries of a source and by every object store's per-request retries), and
 * a loop that runs an attempt until it passes, fails for good, runs out of retries or is
 * aborted.
 *
 * Layer: _util. Imports only `_util/`.
 *
 * @module
 */
import { sleep } from "./abort.ts";

/** The shape of a backoff: where it starts, where it stops growing, how it is jittered. */
export interface Backoff {
  /** Delay before the first retry; it doubles per retry. */
  readonly baseMs: number;
  /** Largest delay, jitter included; no bound when omitted. */
  readonly maxMs?: number;
  /**
   * The doubled delay is scaled by a random factor in `[low, high)`, so that callers that
   * failed together do not retry in step.
   */
  readonly jitter: readonly [low: number, high: number];
}

/**
 * Milliseconds to wait before retry number `retry` (0 for the first): `baseMs × 2^retry`, capped
 * at `maxMs`, scaled by the jitter factor, capped again, rounded to whole milliseconds.
 *
 * @param retry How many retries came before this one.
 * @param backoff Base, cap and jitter.
 * @param random Source of the jitter, a number in [0, 1); `Math.random` by default.
 * @returns The delay.
 *
 * @example
 * ```ts
 * import { backoffMs } from "./retry.ts";
 * const half = () => 0.5;
 * if (backoffMs(2, { baseMs: 100, jitter: [0.75, 1.25] }, half) !== 400) throw new Error();
 * if (backoffMs(9, { baseMs: 100, maxMs: 1000, jitter: [1, 2] }, half) !== 1000) throw new Error();
 * ```
 */
export function backoffMs(
  retry: number,
  backoff: Backoff,
  random: () => number = Math.random,
): number {
  const cap = backoff.maxMs ?? Infinity;
  const step = Math.min(cap, backoff.baseMs * 2 ** retry);
  const [low, high] = backoff.jitter;
  return Math.round(Math.min(cap, step * (low + (high - low) * random())));
}

/** How {@linkcode withRetries} runs an operation. */
export interface RetryLoop {
  /** Retries after the first attempt. */
  readonly retries: number;
  /**
   * Ends the loop: checked before each attempt and after each failure (its reason is thrown
   * as it is), and it cuts the wait between attempts short.
   */
  readonly signal: AbortSignal | undefined;
  /** Whether a failure may pass on another attempt. */
  transient(error: unknown): boolean;
  /** The error to throw for a failure that is not retried, or after the last attempt. */
  failure(error: unknown, attempts: number): unknown;
  /** Milliseconds to wait after attempt `failed` (0-based) failed. */
  delayMs(failed: number): number;
  /** Reports the retry about to run (1-based) after `delayMs`. */
  warn(error: unknown, retry: number, delayMs: number): void;
}

/**
 * Runs `attempt` until it succeeds, a failure is not transient, the retries are spent, or the
 * loop's signal aborts. Each retry is announced through `warn` before the wait.
 *
 * @param loop The policy, classification and warning.
 * @param attempt One attempt; gets its number, 0 for the first.
 * @returns What the first successful attempt returned.
 * @throws The signal's reason when it aborted; else `loop.failure(error, attempts)`.
 *
 * @example
 * ```ts
 * import { withRetries } from "./retry.ts";
 * let calls = 0;
 * const value = await withRetries({
 *   retries: 2,
 *   signal: undefined,
 *   transient: () => true,
 *   failure: (error) => error,
 *   delayMs: () => 1,
 *   warn: () => {},
 * }, () => ++calls < 3 ? Promise.reject(new Error("busy")) : Promise.resolve(calls));
 * if (value !== 3) throw new Error(String(value));
 * ```
 */
export async function withRetries<T>(
  loop: RetryLoop,
  attempt: (n: number) => Promise<T>,
): Promise<T> {
  const { signal } = loop;
  for (let n = 0;; n++) {
    signal?.throwIfAborted();
    try {
      return await attempt(n);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (n >= loop.retries || !loop.transient(error)) throw loop.failure(error, n + 1);
      const wait = loop.delayMs(n);
      loop.warn(error, n + 1, wait);
      await sleep(wait, signal);
    }
  }
}
