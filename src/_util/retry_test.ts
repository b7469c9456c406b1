import assert from "node:assert/strict";
import { backoffMs, type RetryLoop, withRetries } from "./retry.ts";

const messageOf = (error: unknown) => error instanceof Error ? error.message : String(error);
class GaveUp extends Error {}

/** A loop that retries everything with tiny fixed delays, recording what it was told. */
function recordingLoop(overrides: Partial<RetryLoop> = {}) {
  const warnings: { retry: number; delayMs: number; reason: string }[] = [];
  const failures: { error: unknown; attempts: number }[] = [];
  const loop: RetryLoop = {
    retries: 3,
    signal: undefined,
    transient: () => true,
    failure: (error, attempts) => {
      failures.push({ error, attempts });
      return new GaveUp(`gave up after ${attempts}`);
    },
    delayMs: (failed) => failed + 1,
    warn: (error, retry, delayMs) => warnings.push({ retry, delayMs, reason: messageOf(error) }),
    ...overrides,
  };
  return { loop, warnings, failures };
}

Deno.test("withRetries retries transient failures, announcing each retry before its wait", async () => {
  const { loop, warnings } = recordingLoop();
  const seen: number[] = [];
  const value = await withRetries(loop, (n) => {
    seen.push(n);
    return n < 2 ? Promise.reject(new Error(`busy ${n}`)) : Promise.resolve("done");
  });
  assert.equal(value, "done");
  assert.deepEqual(seen, [0, 1, 2]);
  assert.deepEqual(warnings, [
    { retry: 1, delayMs: 1, reason: "busy 0" },
    { retry: 2, delayMs: 2, reason: "busy 1" },
  ]);
});

Deno.test("withRetries stops after the last retry and throws the store's failure", async () => {
  const { loop, warnings, failures } = recordingLoop();
  let calls = 0;
  await assert.rejects(
    withRetries(loop, () => {
      calls++;
      return Promise.reject(new Error("down"));
    }),
    (error: unknown) => error instanceof GaveUp && error.message === "gave up after 4",
  );
  assert.equal(calls, 4, "the first attempt and 3 retries");
  assert.equal(warnings.length, 3);
  assert.equal(failures.length, 1);
  assert.equal(messageOf(failures[0]!.error), "down");
});

Deno.test("withRetries throws a failure that is not transient at once, without a warning", async () => {
  const { loop, warnings, failures } = recordingLoop({ transient: () => false });
  let calls = 0;
  await assert.rejects(
    withRetries(loop, () => {
      calls++;
      return Promise.reject(new Error("refused"));
    }),
    /gave up after 1/,
  );
  assert.equal(calls, 1);
  assert.deepEqual(warnings, []);
  assert.equal(failures[0]!.attempts, 1);
});

Deno.test("withRetries ends with the signal's reason: before the first attempt and during a wait", async () => {
  const before = new AbortController();
  const reason = new Error("stopped by the user");
  before.abort(reason);
  let calls = 0;
  await assert.rejects(
    withRetries(recordingLoop({ signal: before.signal }).loop, () => {
      calls++;
      return Promise.resolve(1);
    }),
    (error: unknown) => error === reason,
  );
  assert.equal(calls, 0);

  const during = new AbortController();
  const { loop, failures } = recordingLoop({ signal: during.signal, delayMs: () => 60_000 });
  const started = performance.now();
  const running = withRetries(loop, () => Promise.reject(new Error("busy")));
  setTimeout(() => during.abort(reason), 20);
  await assert.rejects(running, (error: unknown) => error === reason);
  assert.ok(performance.now() - started < 10_000, "the abort cuts the 60 s wait short");
  assert.deepEqual(failures, [], "an abort is not the store's failure");
});

Deno.test("backoffMs doubles from the base, caps, and jitters within the given factors", () => {
  const at = (r: number) => () => r;
  const pipeline = { baseMs: 100, jitter: [0.75, 1.25] } as const;
  assert.equal(backoffMs(0, pipeline, at(0.5)), 100);
  assert.equal(backoffMs(2, pipeline, at(0.5)), 400);
  assert.equal(backoffMs(2, pipeline, at(0)), 300);
  const store = { baseMs: 200, maxMs: 10_000, jitter: [1, 2] } as const;
  assert.equal(backoffMs(1, store, at(0)), 400);
  assert.equal(backoffMs(1, store, at(0.999)), 800);
  assert.equal(backoffMs(10, store, at(0.5)), 10_000, "capped after the jitter too");
  for (let i = 0; i < 100; i++) {
    const wait = backoffMs(3, store);
    assert.ok(wait >= 1600 && wait <= 3200, String(wait));
  }
});
