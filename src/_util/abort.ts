/**
 * Waiting that an AbortSignal can cut short.
 *
 * Layer: _util. Imports nothing from `src/`.
 *
 * @module
 */

/**
 * Resolves after `ms` milliseconds, or at once when `signal` aborts (never rejects: the caller
 * checks the signal itself). `ms <= 0` resolves immediately.
 *
 * @param ms How long to wait.
 * @param signal Ends the wait early.
 * @returns A promise that resolves when the time is up or the signal aborts.
 *
 * @example
 * ```ts
 * import { sleep } from "./abort.ts";
 * const controller = new AbortController();
 * const started = Date.now();
 * const waiting = sleep(10_000, controller.signal);
 * controller.abort();
 * await waiting;
 * if (Date.now() - started > 1000) throw new Error("the abort ends the wait");
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
