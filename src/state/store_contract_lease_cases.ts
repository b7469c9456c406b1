/**
 * The state contract's cases for a ledger shared by several hosts: claim leases (renewal by the
 * holder, take-over after expiry, reset keeping live leases) and the single finisher of a run.
 * Part of the case table of `store_contract_cases.ts`.
 *
 * Layer: state (tests only: imported by the contract runs, never by product code).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ChunkPlanEntry, StateStore } from "../core/state.ts";

/** A run `r1` of export `orders` with `tasks` windows and 3 attempts each. */
function plan(tasks: number): ChunkPlanEntry {
  const windows = [...Array(tasks).keys()].map((i) => ({ startKey: String(i), endKey: null }));
  return { runId: "r1", exportName: "orders", planHash: "h", maxAttempts: 3, tasks: windows };
}

/** The lease and finisher cases: a name and a body run against a fresh, empty store. */
export const leaseCases: readonly (readonly [string, (s: StateStore) => Promise<void>])[] = [
  [
    "a live lease survives reset; an expired one is taken over; only its holder renews",
    async (s) => {
      await s.saveChunkPlan(plan(3));
      const a = { host: "host-a", pid: 11 };
      const b = { host: "host-b", pid: 22 };
      assert.equal((await s.claimChunk("r1", { ...a, leaseMs: 60_000 }))?.chunkIndex, 0);
      assert.equal((await s.claimChunk("r1", { ...b, leaseMs: 1 }))?.chunkIndex, 1);
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(
        await s.renewChunkLease({ runId: "r1", chunkIndex: 0 }, { ...b, leaseMs: 1 }),
        false,
      );
      const before = Date.now();
      assert.equal(
        await s.renewChunkLease({ runId: "r1", chunkIndex: 0 }, { ...a, leaseMs: 90_000 }),
        true,
      );
      const renewed = Date.parse((await s.listChunkTasks("r1"))[0]?.leaseExpiresAt ?? "");
      assert.ok(renewed >= before + 90_000, `${renewed}`);
      // host-b died: its task is taken over (a new attempt) before the next pending one.
      const taken = await s.claimChunk("r1", { host: "host-c", pid: 33, leaseMs: 60_000 });
      assert.deepEqual([taken?.chunkIndex, taken?.attempts, taken?.claimedByHost], [
        1,
        2,
        "host-c",
      ]);
      assert.equal(
        await s.renewChunkLease({ runId: "r1", chunkIndex: 1 }, { ...b, leaseMs: 1 }),
        false,
      );
      assert.equal(await s.resetRunningChunks("r1"), 0, "live leases are kept");
      assert.equal((await s.claimChunk("r1"))?.chunkIndex, 2, "a claim without a lease");
      assert.equal(await s.resetRunningChunks("r1"), 1, "never leased: reset");
      assert.deepEqual((await s.listChunkTasks("r1")).map((t) => t.status), [
        "running",
        "running",
        "pending",
      ]);
      // A task whose lease expired with no attempt left is not claimed again (a chunk that kills
      // every host that runs it stops after the run's maximum attempts); --resume resets it.
      const c = { host: "host-c", pid: 33 };
      assert.equal(
        await s.renewChunkLease({ runId: "r1", chunkIndex: 1 }, { ...c, leaseMs: 1 }),
        true,
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      const third = await s.claimChunk("r1", { host: "host-d", pid: 44, leaseMs: 1 });
      assert.deepEqual([third?.chunkIndex, third?.attempts], [1, 3]);
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal((await s.claimChunk("r1", { ...a, leaseMs: 60_000 }))?.chunkIndex, 2);
      assert.equal(await s.claimChunk("r1", { ...a, leaseMs: 60_000 }), undefined);
      assert.equal(await s.resetRunningChunks("r1"), 1, "only the expired task");
      assert.equal((await s.listChunkTasks("r1"))[1]?.status, "pending");
    },
  ],
  ["exactly one process holds the finish of a run; a dead finisher is replaced", async (s) => {
    await s.saveChunkPlan(plan(1));
    const a = { host: "host-a", pid: 11 };
    const b = { host: "host-b", pid: 22 };
    assert.deepEqual(await s.claimChunkRunFinish("r1", { ...a, leaseMs: 60_000 }), {
      claimed: true,
      ...a,
    });
    assert.deepEqual(await s.claimChunkRunFinish("r1", { ...b, leaseMs: 60_000 }), {
      claimed: false,
      ...a,
    });
    // The holder claims again (renewal), this time with a lease that runs out at once.
    assert.equal((await s.claimChunkRunFinish("r1", { ...a, leaseMs: 1 })).claimed, true);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal((await s.claimChunkRunFinish("r1", { ...b, leaseMs: 60_000 })).claimed, true);
    assert.deepEqual(await s.claimChunkRunFinish("r1", a), { claimed: false, ...b });
    for (let t = await s.claimChunk("r1"); t; t = await s.claimChunk("r1")) {
      await s.completeChunk({ runId: "r1", chunkIndex: t.chunkIndex, rowsWritten: 1 });
    }
    await s.completeChunkRun("r1");
    assert.deepEqual(await s.claimChunkRunFinish("r1", { ...b, leaseMs: 60_000 }), {
      claimed: false,
      ...b,
    }, "a completed run reports its finisher and is never claimed again");
    await assert.rejects(s.claimChunkRunFinish("no_such_run"), RangeError);
  }],
];
