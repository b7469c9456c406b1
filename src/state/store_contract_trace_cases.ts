/**
 * The state contract's cases for run traces (`rivet report`): a trace round-trips whole, the
 * newest of an export is found, a run's trace of one export is told from another's, the traces
 * of several processes of one run are all kept (one per writer, replaced when it saves again),
 * and only the newest `keep` traces of an export are kept.
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

/** A stored trace without the host and process the store stamped on it. */
function unstamped(t: RunTrace | undefined): RunTrace | undefined {
  if (t === undefined) return undefined;
  const { host: _host, pid: _pid, ...rest } = t;
  return rest;
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
      assert.deepEqual(unstamped(await s.readRunTrace("r1")), trace("r1"));
      assert.deepEqual(unstamped(await s.latestRunTrace("orders")), trace("r2"));
      assert.deepEqual(unstamped(await s.latestRunTrace("users")), trace("r3", "users"));
      assert.equal(await s.readRunTrace("r1", "users"), undefined);
    },
  ],
  [
    "a run's traces of several processes are all kept, in order; the newest is the run's trace",
    async (s) => {
      await s.saveRunTrace(trace("r1"));
      await s.saveRunTrace(trace("r2"));
      // A resume of r1 (or another host joining it) stores its own trace.
      await s.saveRunTrace({ ...trace("r1", "orders", 99), host: "host-b", pid: 7 });
      const all = await s.readRunTraces("r1", "orders");
      assert.deepEqual(all.map((t) => t.chunks[1]?.rows), [10, 99]);
      assert.deepEqual([all[1]!.host, all[1]!.pid], ["host-b", 7], "a given host is kept");
      assert.equal(typeof all[0]!.pid, "number", "stamped with the saving process");
      assert.equal((await s.readRunTrace("r1", "orders"))?.chunks[1]?.rows, 99);
      assert.equal((await s.latestRunTrace("orders"))?.runId, "r1");
      assert.deepEqual(await s.readRunTraces("r1", "users"), []);
      assert.deepEqual(await s.readRunTraces("nope", "orders"), []);
    },
  ],
  [
    "a process saving its trace again (as the run goes) replaces its own, not another's",
    async (s) => {
      const mine = { ...trace("r1"), host: "host-a", pid: 1 };
      const theirs = {
        ...trace("r1"),
        host: "host-b",
        pid: 2,
        startedAt: "2026-01-01T00:00:05.000Z",
      };
      await s.saveRunTrace(mine);
      await s.saveRunTrace(theirs);
      await s.saveRunTrace({ ...mine, chunks: [], finishedAt: "2026-01-01T00:00:09.000Z" });
      const all = await s.readRunTraces("r1", "orders");
      assert.deepEqual(all.map((t) => [t.host, t.chunks.length]), [["host-a", 0], ["host-b", 2]]);
      // The same process in a later run of the export (another start) is another writer.
      await s.saveRunTrace({ ...mine, startedAt: "2026-01-01T00:00:10.000Z" });
      assert.equal((await s.readRunTraces("r1", "orders")).length, 3);
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
