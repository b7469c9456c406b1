import assert from "node:assert/strict";
import type { ErrorInfo } from "../core/errors.ts";
import { extraDelayMs, retryDelayMs } from "./retry.ts";

const transient = (extra: Partial<ErrorInfo>): ErrorInfo => ({
  name: "TransientError",
  code: "source.transient",
  message: "x",
  exitCode: 2,
  ...extra,
});

Deno.test("extraDelayMs follows the reference's retry classes for both engines", () => {
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
  assert.deepEqual([1, 2, 3].map((attempt) => retryDelayMs(lost, { attempt, backoffMs: 2000 })), [
    2000,
    4000,
    8000,
  ]);
  assert.equal(retryDelayMs(transient({ sqlstate: "40P01" }), { attempt: 1, backoffMs: 50 }), 1050);
});
