// The trace recorder over scripted event sequences: a parallel run with one failure and its
// retry, a run of 100,000 chunks that stays within the trace's bounds and a memory budget, and
// the thinning of samples (even, first and last kept).
import assert from "node:assert/strict";
import type { RivetEvent } from "../core/events.ts";
import { TRACE_LIMITS } from "../core/run_trace.ts";
import type { ErrorInfo } from "../core/errors.ts";
import { chunkStarted, crashRetried, createTraceRecorder } from "./run_trace_recorder.ts";

const X = "orders";

function clocked() {
  const clock = { t: 0 };
  const recorder = createTraceRecorder({
    runId: "run-1",
    exportName: X,
    startedAt: new Date(Date.UTC(2026, 0, 1)),
    now: () => Date.UTC(2026, 0, 1) + clock.t,
  });
  return { clock, recorder };
}

Deno.test("recorder: a parallel run with one failure and one retry", () => {
  const { clock, recorder } = clocked();
  const at = (t: number, event: RivetEvent) => {
    clock.t = t;
    recorder.event(event);
  };
  const started = (chunk: number, lane: number, attempt = 1): RivetEvent => ({
    type: "chunk_started",
    export: X,
    chunk,
    attempt,
    lane,
    range: `${chunk * 10 + 1} .. ${chunk * 10 + 10}`,
  });
  const done = (chunk: number, lane: number): RivetEvent => ({
    type: "chunk_completed",
    export: X,
    chunk,
    rows: 10,
    files: 1,
    durationMs: 0,
    lane,
    bytes: 100 + chunk,
  });
  at(0, started(0, 0));
  at(0, started(1, 1));
  at(0, started(2, 2));
  recorder.rss(50_000_000);
  at(10, { type: "batch_read", export: X, rows: 10, totalRows: 10 });
  at(20, done(0, 0));
  at(25, {
    type: "chunk_failed",
    export: X,
    chunk: 1,
    attempt: 1,
    message: "connection reset\nstack…",
    willRetry: true,
    lane: 1,
    quarantined: 2,
  });
  at(26, { type: "batch_read", export: "other", rows: 99, totalRows: 99 });
  at(30, started(3, 0));
  at(30, done(2, 2));
  at(40, started(1, 1, 2));
  recorder.rss(70_000_000);
  at(300, { type: "batch_read", export: X, rows: 20, totalRows: 30 });
  at(310, done(3, 0));
  at(320, done(1, 1));
  const trace = recorder.trace(new Date(Date.UTC(2026, 0, 1) + 400));
  assert.equal(trace.version, 1);
  assert.equal(trace.runId, "run-1");
  assert.equal(trace.startedAt, "2026-01-01T00:00:00.000Z");
  assert.equal(trace.finishedAt, "2026-01-01T00:00:00.400Z");
  assert.deepEqual(trace.lanes, ["worker 1", "worker 2", "worker 3"]);
  assert.equal(trace.omittedChunks, undefined);
  assert.deepEqual(trace.chunks, [
    {
      chunk: 0,
      attempt: 1,
      lane: 0,
      startMs: 0,
      endMs: 20,
      outcome: "completed",
      rows: 10,
      bytes: 100,
      range: "1 .. 10",
    },
    {
      chunk: 1,
      attempt: 1,
      lane: 1,
      startMs: 0,
      endMs: 25,
      outcome: "retried",
      range: "11 .. 20",
      error: "connection reset",
    },
    {
      chunk: 2,
      attempt: 1,
      lane: 2,
      startMs: 0,
      endMs: 30,
      outcome: "completed",
      rows: 10,
      bytes: 102,
      range: "21 .. 30",
    },
    {
      chunk: 3,
      attempt: 1,
      lane: 0,
      startMs: 30,
      endMs: 310,
      outcome: "completed",
      rows: 10,
      bytes: 103,
      range: "31 .. 40",
    },
    {
      chunk: 1,
      attempt: 2,
      lane: 1,
      startMs: 40,
      endMs: 320,
      outcome: "completed",
      rows: 10,
      bytes: 101,
      range: "11 .. 20",
      quarantined: 2,
    },
  ]);
  assert.deepEqual(trace.samples, [
    { tMs: 10, rows: 10, rssBytes: 50_000_000 },
    { tMs: 300, rows: 30, rssBytes: 70_000_000 },
    { tMs: 400, rows: 30, rssBytes: 70_000_000 },
  ]);
});

Deno.test("recorder: attempts never finished are interrupted at the end, running before", () => {
  const { clock, recorder } = clocked();
  recorder.event({ type: "chunk_started", export: X, chunk: 7, attempt: 1, lane: 1 });
  clock.t = 50;
  recorder.event({
    type: "chunk_failed",
    export: X,
    chunk: 8,
    attempt: 1,
    message: "never started here",
    willRetry: false,
  });
  assert.equal(recorder.trace().chunks[0]?.outcome, "running");
  assert.equal(recorder.trace().chunks[0]?.endMs, undefined);
  // Started again without an end (the whole export was retried): the first one was interrupted.
  clock.t = 60;
  recorder.event({ type: "chunk_started", export: X, chunk: 7, attempt: 1, lane: 0 });
  const end = recorder.trace(new Date(Date.UTC(2026, 0, 1) + 90));
  assert.deepEqual(end.chunks, [
    { chunk: 7, attempt: 1, lane: 1, startMs: 0, endMs: 60, outcome: "interrupted" },
    { chunk: 7, attempt: 2, lane: 0, startMs: 60, endMs: 90, outcome: "interrupted" },
  ]);
});

Deno.test("recorder: a chunk run again within one claim (its runner crashed) gets the next attempt", () => {
  const { clock, recorder } = clocked();
  const bounds = { startKey: "1", endKey: "9" };
  const started = chunkStarted(X, { chunkIndex: 3, attempt: 1, bounds }, 2);
  recorder.event(started);
  clock.t = 40;
  const crash = { code: "engine.worker_crashed", message: "worker 3 crashed", exitCode: 1 };
  const events = crashRetried(started, crash as ErrorInfo, 1);
  assert.deepEqual(events.map((e) => e.type), ["chunk_failed", "chunk_started"]);
  for (const event of events) recorder.event(event);
  clock.t = 100;
  // The second run fails too, and the ledger's next claim of the chunk is its attempt 2.
  recorder.event({ ...started, type: "chunk_failed", message: "boom", willRetry: true });
  recorder.event({ ...started, attempt: 2 });
  clock.t = 130;
  recorder.event({
    type: "chunk_completed",
    export: X,
    chunk: 3,
    rows: 9,
    files: 1,
    durationMs: 30,
  });
  const chunks = recorder.trace().chunks;
  assert.deepEqual(
    chunks.map((c) => [c.attempt, c.outcome, c.lane, c.range, c.quarantined ?? 0]),
    [[1, "retried", 2, "1 .. 9", 0], [2, "retried", 2, "1 .. 9", 1], [
      3,
      "completed",
      2,
      "1 .. 9",
      0,
    ]],
  );
  assert.match(chunks[0]!.error!, /worker 3 crashed/);
});

Deno.test("recorder: 100,000 chunks stay within the limits, keeping failures and the slowest", () => {
  const { clock, recorder } = clocked();
  const total = 100_000;
  for (let chunk = 0; chunk < total; chunk++) {
    const lane = chunk % 3;
    clock.t = chunk * 10;
    recorder.event({ type: "chunk_started", export: X, chunk, attempt: 1, lane });
    recorder.event({ type: "batch_read", export: X, rows: 100, totalRows: (chunk + 1) * 100 });
    recorder.rss(1_000_000 + chunk);
    // Durations cycle 1..997 ms; chunk 50,000 fails for good.
    clock.t += 1 + (chunk * 7919) % 997;
    if (chunk === 50_000) {
      recorder.event({
        type: "chunk_failed",
        export: X,
        chunk,
        attempt: 1,
        message: "boom",
        willRetry: false,
        lane,
      });
    } else {
      recorder.event({
        type: "chunk_completed",
        export: X,
        chunk,
        rows: 100,
        files: 1,
        durationMs: 0,
        lane,
      });
    }
  }
  const trace = recorder.trace(new Date(Date.UTC(2026, 0, 1) + total * 10 + 1000));
  assert.equal(trace.chunks.length, TRACE_LIMITS.chunks);
  assert.equal(trace.omittedChunks, total - TRACE_LIMITS.chunks);
  assert.ok(trace.samples.length <= TRACE_LIMITS.samples, `${trace.samples.length} samples`);
  assert.ok(trace.samples.length >= TRACE_LIMITS.samples / 4, `${trace.samples.length} samples`);
  assert.ok(trace.chunks.some((c) => c.chunk === 50_000 && c.outcome === "failed"));
  // The kept completed attempts are the slowest: none shorter than any omitted one.
  const kept = new Set(trace.chunks.map((c) => c.chunk));
  const shortestKept = Math.min(
    ...trace.chunks.filter((c) => c.outcome === "completed").map((c) => c.endMs! - c.startMs),
  );
  for (let chunk = 0; chunk < total; chunk++) {
    if (kept.has(chunk)) continue;
    assert.ok(1 + (chunk * 7919) % 997 <= shortestKept, `chunk ${chunk} omitted but slower`);
  }
  // Start order.
  for (let i = 1; i < trace.chunks.length; i++) {
    assert.ok(trace.chunks[i - 1]!.startMs <= trace.chunks[i]!.startMs);
  }
});

Deno.test("recorder: thinning keeps the samples even, the first and the last", () => {
  const clock = { t: 0 };
  const recorder = createTraceRecorder({
    runId: "r",
    exportName: X,
    startedAt: new Date(0),
    now: () => clock.t,
    sampleEveryMs: 10,
    limits: { chunks: 10, samples: 8 },
  });
  for (let i = 1; i <= 1000; i++) {
    clock.t = i * 10;
    recorder.event({ type: "batch_read", export: X, rows: 1, totalRows: i });
  }
  const trace = recorder.trace(new Date(10_005));
  const times = trace.samples.map((s) => s.tMs);
  assert.ok(times.length <= 8, times.join());
  assert.equal(times[0], 10);
  assert.equal(times.at(-1), 10_005);
  assert.equal(trace.samples.at(-1)!.rows, 1000);
  // Even: the gaps between kept samples (but the last) are equal.
  const gaps = times.slice(1, -1).map((t, i) => t - times[i]!);
  assert.ok(gaps.every((g) => g === gaps[0]), gaps.join());
});
