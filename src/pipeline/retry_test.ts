import assert from "node:assert/strict";
import type { ErrorInfo } from "../core/errors.ts";
import { extraDelayMs, retriesInRun, retryDelayMs, retryStep } from "./retry.ts";

const transient = (extra: Partial<ErrorInfo>): ErrorInfo => ({
  name: "TransientError",
  code: "source.transient",
  message: "x",
  exitCode: 2,
  ...extra,
});

Deno.test("extraDelayMs adds the extra delay of each retry class for both engines", () => {
  const cases: [Partial<ErrorInfo>, number][] = [
    [{ sqlstate: "57P01" }, 15_000],
    [{ sqlstate: "57P03" }, 15_000],
    [{ sqlstate: "53300" }, 15_000],
    [{ sqlstate: "53100" }, 5_000],
    [{ sqlstate: "40001" }, 1_000],
    [{ sqlstate: "40P01" }, 1_000],
    [{ sqlstate: "08006" }, 0],
    [{ sqlstate: "55P03" }, 0],
    [{ errno: 1040 }, 15_000],
    [{ errno: 1053 }, 15_000],
    [{ errno: 1213 }, 1_000],
    [{ errno: 1205 }, 1_000],
    [{ errno: 2013 }, 0],
    [{ code: "source.server_unavailable" }, 15_000],
    [{ code: "source.connection_lost" }, 0],
  ];
  for (const [extra, want] of cases) {
    assert.equal(extraDelayMs(transient(extra)), want, JSON.stringify(extra));
  }
});

Deno.test("retryDelayMs doubles the backoff per attempt and adds the class delay", () => {
  const lost = transient({ code: "source.connection_lost" });
  const middle = () => 0.5;
  assert.deepEqual(
    [1, 2, 3].map((attempt) => retryDelayMs(lost, { attempt, backoffMs: 2000, random: middle })),
    [2000, 4000, 8000],
  );
  assert.equal(
    retryDelayMs(transient({ sqlstate: "40P01" }), { attempt: 1, backoffMs: 50, random: middle }),
    1050,
  );
});

Deno.test("retryDelayMs jitters the backoff by ±25 % but never the class delay", () => {
  const lost = transient({ code: "source.connection_lost" });
  assert.equal(retryDelayMs(lost, { attempt: 2, backoffMs: 1000, random: () => 0 }), 1500);
  assert.equal(retryDelayMs(lost, { attempt: 2, backoffMs: 1000, random: () => 0.999999 }), 2500);
  const shutdown = transient({ sqlstate: "57P01" });
  assert.equal(retryDelayMs(shutdown, { attempt: 1, backoffMs: 100, random: () => 0 }), 15_075);
  // Real randomness: the delays of several parallel retries differ and stay in range.
  const delays = Array.from(
    { length: 50 },
    () => retryDelayMs(lost, { attempt: 1, backoffMs: 1000 }),
  );
  assert.ok(delays.every((d) => d >= 750 && d <= 1250), String(delays));
  assert.ok(new Set(delays).size > 1, "the jitter spreads retries apart");
});

Deno.test("retriesInRun: transient yes, permanent and resource exhaustion no, refused once underway", () => {
  const refused = transient({ code: "source.connection_refused" });
  assert.equal(retriesInRun(refused, { underway: false }), false);
  assert.equal(retriesInRun(refused, { underway: true }), true);
  assert.equal(
    retriesInRun(transient({ code: "source.connection_lost" }), { underway: false }),
    true,
  );
  assert.equal(
    retriesInRun(transient({ code: "destination.disk_full" }), { underway: true }),
    false,
  );
  assert.equal(
    retriesInRun(transient({ code: "destination.too_many_open_files" }), { underway: true }),
    false,
  );
  assert.equal(
    retriesInRun({ ...transient({}), exitCode: 1, code: "source.syntax_error" }, {
      underway: true,
    }),
    false,
  );
});

Deno.test("retryStep: one run.retrying wording for an export and for a unit of it", () => {
  const lost: ErrorInfo = {
    name: "TransientError",
    code: "source.connection_lost",
    message: "connection lost",
    exitCode: 2,
  };
  const whole = retryStep("orders", lost, { attempt: 1, maxRetries: 3, backoffMs: 100 });
  assert.ok(whole.delayMs > 0, String(whole.delayMs));
  assert.equal(whole.warning.code, "run.retrying");
  assert.equal(
    whole.warning.message,
    `export 'orders': connection lost; retry 1/3 in ${whole.delayMs} ms`,
  );
  const unit = retryStep("orders", lost, {
    attempt: 2,
    maxRetries: 3,
    backoffMs: 100,
    unit: "chunk 4",
  });
  assert.match(
    unit.warning.message,
    /^export 'orders': chunk 4: connection lost; retry 2\/3 in \d+ ms$/,
  );
});
