import assert from "node:assert/strict";
import type { RivetEvent } from "../core/events.ts";
import type { StateStore } from "../core/state.ts";
import { openMemoryStateStore } from "../state/mod.ts";
import * as lease from "./chunk_lease.ts";

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A store with run `r1` of 2 tasks, and the lease context of a process on it. */
async function setup(
  leaseMs: number,
): Promise<{ s: StateStore; ctx: lease.LeaseContext; events: RivetEvent[] }> {
  const s = await openMemoryStateStore();
  await s.saveChunkPlan({
    runId: "r1",
    exportName: "orders",
    planHash: "h",
    maxAttempts: 3,
    tasks: [{ startKey: "1", endKey: "2" }, { startKey: "2", endKey: null }],
  });
  const events: RivetEvent[] = [];
  const ctx = {
    ledger: s,
    leaseMs,
    exportName: "orders",
    emit: (e: RivetEvent) => events.push(e),
    signal: new AbortController().signal,
  };
  return { s, ctx, events };
}

Deno.test("claimOrWait waits for a task another host holds and takes it over when its lease expires", async () => {
  const { s, ctx, events } = await setup(200);
  await using _ = s;
  assert.equal((await lease.claimOrWait(ctx, "r1"))?.chunkIndex, 0);
  await s.claimChunk("r1", { host: "dead-host", pid: 7, leaseMs: 300 });
  await s.completeChunk({ runId: "r1", chunkIndex: 0, rowsWritten: 1 });
  const taken = await lease.claimOrWait(ctx, "r1");
  assert.deepEqual([taken?.chunkIndex, taken?.attempts], [1, 2]);
  assert.equal(taken?.claimedByPid, Deno.pid);
  const waiting = events.filter((e) => e.type === "warning" && e.code === "chunk.waiting");
  assert.equal(waiting.length, 1);
  assert.match(JSON.stringify(waiting[0]), /held by dead-host pid 7/);
  await s.completeChunk({ runId: "r1", chunkIndex: 1, rowsWritten: 1 });
  assert.equal(await lease.claimOrWait(ctx, "r1"), undefined, "nothing running: done");
});

Deno.test("keepLease renews the holder's lease, and warns once when another process took the task", async () => {
  const { s, ctx, events } = await setup(600);
  await using _ = s;
  const task = (await s.claimChunk("r1", { leaseMs: 600 }))!;
  const stop = lease.keepLease(ctx, task);
  try {
    await pause(1_300);
    const held = (await s.listChunkTasks("r1"))[0]!;
    assert.ok(Date.parse(held.leaseExpiresAt!) > Date.now(), "renewed past its first expiry");
    // Another host holds the task now (as after an expiry): renewal fails from then on.
    await s.reopenChunk({ runId: "r1", chunkIndex: 0 });
    const other = await s.claimChunk("r1", { host: "other", pid: 9, leaseMs: 60_000 });
    assert.equal(other?.chunkIndex, 0);
    await pause(800);
  } finally {
    stop();
  }
  const lost = events.filter((e) => e.type === "warning" && e.code === "chunk.lease_lost");
  assert.equal(lost.length, 1, JSON.stringify(events));
});

Deno.test("keepFinish holds the finish past its first lease; claimFinish waits for it, then reports the finisher", async () => {
  const { s, ctx } = await setup(300);
  await using _ = s;
  assert.equal(await lease.claimFinish(ctx, "r1"), undefined, "this process finishes");
  const stop = lease.keepFinish(ctx, "r1");
  try {
    await pause(900);
    const other = await s.claimChunkRunFinish("r1", { host: "other", pid: 9, leaseMs: 300 });
    assert.equal(other.claimed, false, "still this process's finish");
  } finally {
    stop();
  }
  for (let t = await s.claimChunk("r1"); t; t = await s.claimChunk("r1")) {
    await s.completeChunk({ runId: "r1", chunkIndex: t.chunkIndex, rowsWritten: 1 });
  }
  await s.completeChunkRun("r1");
  const otherCtx = { ...ctx, ledger: s };
  assert.equal(await lease.claimFinish(otherCtx, "r1"), `${Deno.hostname()} pid ${Deno.pid}`);
});

Deno.test("keepLease stays quiet once the task is no longer running (failed and waiting for its retry)", async () => {
  const { s, ctx, events } = await setup(150);
  await using _ = s;
  const task = (await s.claimChunk("r1", { leaseMs: 150 }))!;
  const stop = lease.keepLease(ctx, task);
  try {
    await s.failChunk({ runId: "r1", chunkIndex: 0, error: "boom" });
    await pause(400);
  } finally {
    stop();
  }
  assert.deepEqual(events, []);
});

Deno.test("claimOrWait does not wait for an expired task that has no attempt left", async () => {
  const { s, ctx } = await setup(60_000);
  await using _ = s;
  for (let i = 0; i < 3; i++) {
    assert.equal((await s.claimChunk("r1", { host: "dying", pid: i, leaseMs: 1 }))?.chunkIndex, 0);
    await pause(10);
  }
  assert.equal((await lease.claimOrWait(ctx, "r1"))?.chunkIndex, 1);
  await s.completeChunk({ runId: "r1", chunkIndex: 1, rowsWritten: 1 });
  assert.equal(await lease.claimOrWait(ctx, "r1"), undefined, "the run ends without chunk 0");
});
