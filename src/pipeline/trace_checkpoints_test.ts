import assert from "node:assert/strict";
import type { RunTrace } from "../core/run_trace.ts";
import { createTraceRecorder } from "./run_trace_recorder.ts";
import { CHECKPOINT_EVERY_MS, traceCheckpoints } from "./trace_checkpoints.ts";

const X = "orders";

/** A recorder and checkpoints on a fake clock, saving into `saved`. */
function setup(failFirst = false) {
  const clock = { t: Date.UTC(2026, 0, 1) };
  const saved: RunTrace[] = [];
  let calls = 0;
  const store = {
    saveRunTrace(trace: RunTrace) {
      calls++;
      if (failFirst && calls === 1) return Promise.reject(new Error("state is busy"));
      saved.push(trace);
      return Promise.resolve();
    },
  };
  const recorder = createTraceRecorder({
    runId: "",
    exportName: X,
    startedAt: new Date(clock.t),
    now: () => clock.t,
  });
  const checkpoints = traceCheckpoints(store, recorder, X, () => clock.t);
  const feed = (event: Parameters<typeof recorder.event>[0]) => {
    recorder.event(event);
    checkpoints.event(event);
  };
  return { clock, saved, feed, checkpoints };
}

Deno.test("trace checkpoints: saved at the start, then at most every interval on chunk events", async () => {
  const { clock, saved, feed, checkpoints } = setup();
  feed({ type: "chunk_started", export: X, chunk: 0, attempt: 1, lane: 0 });
  assert.equal(saved.length, 0, "nothing before the run id is known");
  feed({ type: "export_started", export: X, runId: "r1", mode: "chunked" });
  for (let i = 0; i < 100; i++) {
    clock.t += 100;
    feed({ type: "batch_read", export: X, rows: 10, totalRows: (i + 1) * 10 });
    if (i % 10 === 9) {
      feed({ type: "chunk_completed", export: X, chunk: 0, rows: 100, files: 1, durationMs: 1 });
      feed({ type: "chunk_started", export: X, chunk: 0, attempt: 1, lane: 0 });
    }
  }
  feed({ type: "chunk_started", export: "other", chunk: 9, attempt: 1, lane: 0 });
  await checkpoints.done();
  // 10 s of run: the start, then one save per 2 s at most.
  assert.ok(
    saved.length >= 2 && saved.length <= 1 + 10_000 / CHECKPOINT_EVERY_MS,
    `${saved.length}`,
  );
  assert.ok(saved.every((t) => t.runId === "r1" && t.exportName === X));
  assert.equal(saved[0]!.chunks.length, 1, "the start: chunk 0 running");
  assert.equal(saved.at(-1)!.finishedAt, undefined, "a checkpoint has no end");
  assert.ok(saved.at(-1)!.chunks.length > 1, "later checkpoints hold the attempts so far");
  // Stopped: later events save nothing.
  const count = saved.length;
  clock.t += 60_000;
  feed({ type: "chunk_completed", export: X, chunk: 0, rows: 1, files: 1, durationMs: 1 });
  await checkpoints.done();
  assert.equal(saved.length, count);
});

Deno.test("trace checkpoints: a failed save is dropped and the next one still happens", async () => {
  const { clock, saved, feed, checkpoints } = setup(true);
  feed({ type: "export_started", export: X, runId: "r1", mode: "chunked" });
  clock.t += CHECKPOINT_EVERY_MS;
  feed({ type: "chunk_started", export: X, chunk: 0, attempt: 1, lane: 0 });
  await checkpoints.done();
  assert.equal(saved.length, 1);
  assert.equal(saved[0]!.chunks[0]?.outcome, "running");
});
