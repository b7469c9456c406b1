import assert from "node:assert/strict";
import { PermanentError } from "../core/errors.ts";
import {
  DEFAULT_RETRY,
  existsError,
  growingBackoff,
  isConnectionError,
  isTransientStatus,
  messageOf,
  networkCodes,
  notFoundError,
  type RetryLoop,
  withRetries,
} from "./_cloud.ts";

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
      return new PermanentError(`gave up after ${attempts}`, { code: "test.gave_up" });
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
    (error: unknown) => error instanceof PermanentError && error.message === "gave up after 4",
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

Deno.test("growingBackoff doubles from the base up to the cap, jittered up to twice the step", () => {
  for (let failed = 0; failed < 12; failed++) {
    const step = Math.min(DEFAULT_RETRY.maxDelayMs, DEFAULT_RETRY.baseDelayMs * 2 ** failed);
    for (let i = 0; i < 50; i++) {
      const wait = growingBackoff(failed, DEFAULT_RETRY);
      assert.ok(wait >= step, `${wait} >= ${step}`);
      assert.ok(wait <= Math.min(DEFAULT_RETRY.maxDelayMs, 2 * step), `${wait} within the cap`);
    }
  }
  assert.deepEqual(DEFAULT_RETRY, { retries: 5, baseDelayMs: 200, maxDelayMs: 10_000 });
});

Deno.test("transient statuses are 5xx, 408 and 429; network codes are shared plus the store's", () => {
  for (const status of [500, 501, 502, 503, 504, 599, 408, 429]) {
    assert.equal(isTransientStatus(status), true, String(status));
  }
  for (const status of [undefined, 0, 200, 400, 401, 403, 404, 409, 412]) {
    assert.equal(isTransientStatus(status), false, String(status));
  }
  const codes = networkCodes("EXTRA_CODE");
  for (const code of ["ECONNRESET", "ECONNREFUSED", "EPIPE", "ETIMEDOUT", "EXTRA_CODE"]) {
    assert.ok(codes.has(code), code);
  }
  assert.ok(!networkCodes().has("EXTRA_CODE"), "a store's extra codes are its own");
  assert.ok(isConnectionError(new Deno.errors.ConnectionReset("reset")));
  assert.ok(!isConnectionError(new Error("connection reset")), "only Deno's error classes");
});

Deno.test("existsError and notFoundError carry the stable codes and the fix", () => {
  const exists = existsError("S3 destination", "s3://b/k.csv");
  assert.equal(exists.code, "destination.exists");
  assert.equal(
    exists.message,
    "S3 destination refuses to overwrite the committed object 's3://b/k.csv'; remove it or " +
      "write to another prefix (rivet never replaces a committed part)",
  );
  const cause = new Error("404");
  const missing = notFoundError("GCS has no object 'gs://b/k'", cause);
  assert.equal(missing.code, "destination.not_found");
  assert.equal(
    missing.message,
    "GCS has no object 'gs://b/k'; check the key, or list the destination to see what it holds",
  );
  assert.equal(missing.cause, cause);
  assert.equal(notFoundError("x").cause, undefined);
});
