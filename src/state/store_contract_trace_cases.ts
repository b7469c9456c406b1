/**
 * The state contract's cases for run traces (`rivet report`): a trace round-trips whole, the
 * newest of an export is found, a run's trace of one export is told from another's, saving the
 * same run again replaces it, and only the newest `keep` traces of an export are kept.
 * Part of the case table of `store_contract_cases.ts`.
 *
 * Layer: state (tests only: imported by the contract runs, never by product code).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { RunTrace } from "../core/run_trace.ts";
import type { StateStore } from "../core/state.ts";

/** A small trace of run `runId` of `exportName`. */
function trace(runId: string, exportName = "orders", rows = 10): RunTrace {
  return {
    version: 1,
    runId,
    exportName,
    startedAt: "2026-01-01T00:00:00.000Z",
    finishedAt: "2026-01-01T00:00:01.000Z",
    lanes: ["worker 1", "worker 2"],
    chunks: [
      { chunk: 0, attempt: 1, lane: 0, startMs: 0, endMs: 40, outcome: "retried", error: "e" },
      {
        chunk: 0,
        attempt: 2,
        lane: 1,
        startMs: 50,
        endMs: 90,
        outcome: "completed",
        rows,
        bytes: 700,
        range: "1 .. 10",
        quarantined: 1,
      },
    ],
    omittedChunks: 3,
    samples: [{ tMs: 10, rows: 5, rssBytes: 1_000 }, { tMs: 90, rows, rssBytes: 2_000 }],
  };
}

/** The trace cases: a name and a body run against a fresh, empty store. */
export const traceCases: readonly (readonly [string, (s: StateStore) => Promise<void>])[] = [
  [
    "a run trace round-trips whole; the newest of an export is the latest",
    async (s) => {
      assert.equal(await s.latestRunTrace("orders"), undefined);
      assert.equal(await s.readRunTrace("r1"), undefined);
      await s.saveRunTrace(trace("r1"));
      await s.saveRunTrace(trace("r2"));
      await s.saveRunTrace(trace("r3", "users"));
      assert.deepEqual(await s.readRunTrace("r1"), trace("r1"));
      assert.deepEqual(await s.latestRunTrace("orders"), trace("r2"));
      assert.deepEqual(await s.latestRunTrace("users"), trace("r3", "users"));
      assert.equal(await s.readRunTrace("r1", "users"), undefined);
    },
  ],
  [
    "saving a run's trace again replaces it (and makes it the newest)",
    async (s) => {
      await s.saveRunTrace(trace("r1"));
      await s.saveRunTrace(trace("r2"));
      await s.saveRunTrace(trace("r1", "orders", 99));
      assert.equal((await s.readRunTrace("r1", "orders"))?.chunks[1]?.rows, 99);
      assert.equal((await s.latestRunTrace("orders"))?.runId, "r1");
    },
  ],
  [
    "only the newest `keep` traces of an export are kept; other exports keep theirs",
    async (s) => {
      await s.saveRunTrace(trace("u1", "users"));
      for (let i = 1; i <= 5; i++) await s.saveRunTrace(trace(`r${i}`), { keep: 3 });
      for (const gone of ["r1", "r2"]) assert.equal(await s.readRunTrace(gone), undefined, gone);
      for (const kept of ["r3", "r4", "r5", "u1"]) {
        assert.ok(await s.readRunTrace(kept), kept);
      }
      // The default keeps 20.
      for (let i = 6; i <= 30; i++) await s.saveRunTrace(trace(`r${i}`));
      assert.equal(await s.readRunTrace("r10"), undefined);
      assert.ok(await s.readRunTrace("r11"));
    },
  ],
];
