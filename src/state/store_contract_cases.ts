/**
 * The state contract as a table of cases, shared by the runs of the contract on every backend:
 * SQLite on a file and in memory (`store_contract_test.ts`) and PostgreSQL (an end-to-end test
 * with a throwaway server).
 *
 * Layer: state (tests only: imported by the contract runs, never by product code).
 *
 * @module
 */
import assert from "node:assert/strict";
import { ConfigError } from "../core/errors.ts";
import type { ChunkPlanEntry, MetricsEntry, PartEntry, StateStore } from "../core/state.ts";
import { CRASH_EXIT_CODE } from "../_util/test_hook.ts";
import { leaseCases } from "./store_contract_lease_cases.ts";
import { traceCases } from "./store_contract_trace_cases.ts";

export const T0 = "2024-05-01T10:00:00.000Z";
export const T1 = "2024-05-01T11:00:00.000Z";
export const T2 = "2024-05-01T12:00:00.000Z";

export function part(
  exportName: string,
  fileName: string,
  extra: Partial<PartEntry> = {},
): PartEntry {
  return {
    runId: `${exportName}_20240501T100000.000`,
    exportName,
    fileName,
    rowCount: 10,
    bytes: 1234,
    format: "parquet",
    createdAt: T0,
    ...extra,
  };
}

const fullMetrics: MetricsEntry = {
  runId: "orders_20240501T100000.000",
  exportName: "orders",
  runAt: T0,
  durationMs: 1500,
  totalRows: 1_000_000,
  status: "failed",
  peakRssMb: 312,
  errorMessage: "connection reset",
  tuningProfile: "balanced",
  format: "parquet",
  mode: "chunked",
  filesProduced: 4,
  bytesWritten: 9_007_199_254, // > 2^32: integers survive the round trip
  retries: 2,
  validated: false,
  schemaChanged: true,
  filesCommitted: 3,
  reconciled: true,
  sourceCount: 1_000_001,
  qualityPassed: false,
  pgTempBytesDelta: 0,
  batchSize: 10000,
  batchSizeMemoryMb: 64,
  skipReason: "empty",
  schemaFingerprint: "abcd1234abcd1234",
  chunkSize: 50000,
  parallel: 4,
  sourceType: "postgres",
  destinationType: "local",
  rivetVersion: "0.1.0",
  longestChunkMs: 800,
};

/**
 * A plan of export `orders` (hash `h`) with `tasks` windows `1`–`2`, `2`–`3`, …; `extra`
 * overrides any field.
 */
function chunkPlan(
  runId: string,
  maxAttempts: number,
  tasks: number,
  extra: Partial<ChunkPlanEntry> = {},
): ChunkPlanEntry {
  return {
    runId,
    exportName: "orders",
    planHash: "h",
    maxAttempts,
    tasks: Array.from({ length: tasks }, (_, i) => ({ startKey: `${i + 1}`, endKey: `${i + 2}` })),
    ...extra,
  };
}

/** One case: a name and a body run against a fresh, empty store. */
export type Case = readonly [name: string, body: (store: StateStore) => Promise<void>];

/** Claims and completes every task of a run, as a successful chunked run does. */
async function finishTasks(s: StateStore, runId: string): Promise<void> {
  for (let task = await s.claimChunk(runId); task; task = await s.claimChunk(runId)) {
    await s.completeChunk({ runId, chunkIndex: task.chunkIndex, rowsWritten: 1 });
  }
}

/** A part of a chunked run carrying every resume field. */
function resumePart(fileName: string, chunkIndex: number, partIndex: number): PartEntry {
  return part("orders", fileName, {
    runId: "r1",
    contentFingerprint: `xxh3:${chunkIndex.toString(16).padStart(8, "0")}${
      partIndex.toString(16).padStart(8, "0")
    }`,
    contentMd5: "1B2M2Y8AsgTpgAmY7PhCfg==",
    chunkIndex,
    partIndex,
  });
}

/** The contract of `core/state.ts`, as cases any backend must pass. */
/** Advances export `o`'s cursor for `identity`. */
function advance(s: StateStore, identity: string, value: string, at: string): Promise<void> {
  return s.advanceCursor({
    exportName: "o",
    configIdentity: identity,
    lastCursorValue: value,
    lastRunAt: at,
  });
}

export const cases: readonly Case[] = [
  ["reads no cursor for an export that never advanced", async (s) => {
    assert.equal(await s.readCursor("orders"), undefined);
    assert.deepEqual(await s.listCursors(), []);
  }],
  ["advances a cursor, overwrites it and lists cursors by export name", async (s) => {
    await s.advanceCursor({ exportName: "orders", lastCursorValue: "41", lastRunAt: T0 });
    await s.advanceCursor({ exportName: "orders", lastCursorValue: "42", lastRunAt: T1 });
    await s.advanceCursor({ exportName: "accounts", lastCursorValue: null, lastRunAt: T2 });
    assert.deepEqual(await s.readCursor("orders"), {
      exportName: "orders",
      lastCursorValue: "42",
      lastRunAt: T1,
    });
    assert.deepEqual((await s.listCursors()).map((c) => [c.exportName, c.lastCursorValue]), [
      ["accounts", null],
      ["orders", "42"],
    ]);
  }],
  ["resetExport deletes the cursor and the progression of that export only", async (s) => {
    await s.advanceCursor({ exportName: "a", lastCursorValue: "1", lastRunAt: T0 });
    await s.advanceCursor({ exportName: "b", lastCursorValue: "2", lastRunAt: T0 });
    await s.saveProgression({
      exportName: "a",
      boundary: "committed",
      strategy: "incremental",
      cursor: "1",
      runId: "r",
      at: T0,
    });
    assert.equal(await s.resetExport("a"), true);
    assert.equal(await s.readCursor("a"), undefined);
    assert.equal(await s.readProgression("a"), undefined);
    assert.equal((await s.readCursor("b"))?.lastCursorValue, "2");
    assert.equal(await s.resetExport("a"), false);
  }],
  [
    "keys cursors by export name and identity: two configs reusing a name never share one",
    async (s) => {
      await advance(s, "aaaa", "5", T0);
      await advance(s, "bbbb", "9", T1);
      assert.equal((await s.readCursor("o", "aaaa"))?.lastCursorValue, "5");
      assert.equal((await s.readCursor("o", "bbbb"))?.lastCursorValue, "9");
      assert.equal(await s.readCursor("o", "cccc"), undefined, "another identity has none");
      // Without an identity: the most recently advanced (inspection).
      assert.equal((await s.readCursor("o"))?.configIdentity, "bbbb");
      assert.deepEqual(
        (await s.listCursors()).map((c) => [c.exportName, c.configIdentity, c.lastCursorValue]),
        [["o", "aaaa", "5"], ["o", "bbbb", "9"]],
      );
      assert.equal(await s.resetExport("o"), true, "reset removes every identity's cursor");
      assert.deepEqual(await s.listCursors(), []);
    },
  ],
  [
    "a cursor stored without identity is read by any identity and replaced by its first advance",
    async (s) => {
      await s.advanceCursor({ exportName: "o", lastCursorValue: "3", lastRunAt: T0 });
      const legacy = await s.readCursor("o", "aaaa");
      assert.deepEqual(legacy, { exportName: "o", lastCursorValue: "3", lastRunAt: T0 });
      await advance(s, "aaaa", "4", T1);
      assert.deepEqual(
        (await s.listCursors()).map((c) => [c.configIdentity, c.lastCursorValue]),
        [["aaaa", "4"]],
        "the identity-less cursor is gone",
      );
    },
  ],
  [
    "adoptCursor gives the one other identity's cursor to this one, and refuses to guess",
    async (s) => {
      assert.equal(await s.adoptCursor("o", "new"), "none");
      await advance(s, "old", "7", T0);
      await advance(s, "new", "1", T1);
      assert.equal(await s.adoptCursor("o", "new"), "adopted");
      assert.deepEqual(
        (await s.listCursors()).map((c) => [c.configIdentity, c.lastCursorValue]),
        [["new", "7"]],
        "the adopted position replaces the new identity's own",
      );
      assert.equal(await s.adoptCursor("o", "new"), "none");
      await advance(s, "x", "2", T1);
      await advance(s, "y", "3", T1);
      assert.equal(await s.adoptCursor("o", "new"), "ambiguous");
      assert.equal((await s.listCursors()).length, 3, "nothing changed");
    },
  ],
  ["lists the file log newest first, filtered by export and limited by last", async (s) => {
    await s.recordPart(part("orders", "orders_1.parquet", { compression: "zstd" }));
    await s.recordPart(part("users", "users_1.csv", { format: "csv" }));
    await s.recordPart(part("orders", "orders_2.parquet", { rowCount: 0, bytes: 0 }));
    const all = await s.listFiles({ last: 50 });
    assert.deepEqual(all.map((f) => f.fileName), [
      "orders_2.parquet",
      "users_1.csv",
      "orders_1.parquet",
    ]);
    assert.deepEqual(all[2], part("orders", "orders_1.parquet", { compression: "zstd" }));
    assert.equal("compression" in all[0]!, false);
    assert.deepEqual(
      (await s.listFiles({ exportName: "orders", last: 1 })).map((f) => f.fileName),
      [
        "orders_2.parquet",
      ],
    );
    assert.deepEqual(await s.listFiles({ exportName: "nobody", last: 10 }), []);
  }],
  ["records the resume fields of a part and reads them back unchanged", async (s) => {
    const full = { ...resumePart("orders_c3_p1.parquet", 3, 1), status: "committed" as const };
    await s.recordPart(full);
    await s.recordPart(resumePart("orders_c0_p0.parquet", 0, 0));
    const [newest, oldest] = await s.listFiles({ exportName: "orders", last: 10 });
    assert.deepEqual(oldest, full);
    assert.equal(newest?.chunkIndex, 0, "0 is a value, not an absent field");
    assert.equal(newest?.partIndex, 0);
    assert.equal("status" in newest!, false, "no status recorded, none read back");
    // A part without the optional fields reads back without them.
    await s.recordPart(part("orders", "plain.parquet", { runId: "r2" }));
    const [plain] = await s.listRunParts("r2");
    for (const field of ["contentFingerprint", "contentMd5", "chunkIndex", "partIndex", "status"]) {
      assert.equal(field in plain!, false, field);
    }
  }],
  ["lists the parts of one run oldest first, whatever their export", async (s) => {
    await s.recordPart(resumePart("c0.parquet", 0, 0));
    await s.recordPart(part("orders", "other_run.parquet", { runId: "r0" }));
    await s.recordPart(resumePart("c2.parquet", 2, 0));
    await s.recordPart(resumePart("c1.parquet", 1, 0));
    await s.recordPart(resumePart("c1_b.parquet", 1, 1));
    const parts = await s.listRunParts("r1");
    assert.deepEqual(parts.map((p) => [p.fileName, p.chunkIndex, p.partIndex]), [
      ["c0.parquet", 0, 0],
      ["c2.parquet", 2, 0],
      ["c1.parquet", 1, 0],
      ["c1_b.parquet", 1, 1],
    ]);
    assert.deepEqual(parts[1], resumePart("c2.parquet", 2, 0));
    assert.deepEqual(await s.listRunParts("no_such_run"), []);
  }],
  ["marks the listed parts of one run quarantined and keeps them as history", async (s) => {
    await s.recordPart(resumePart("c0.parquet", 0, 0));
    await s.recordPart(resumePart("c1.parquet", 1, 0));
    await s.recordPart(resumePart("c2.parquet", 2, 0));
    // Same name in another run: not that run's part.
    await s.recordPart(part("orders", "c1.parquet", { runId: "r0" }));
    const marked = await s.markPartsQuarantined({
      runId: "r1",
      fileNames: ["c1.parquet", "c2.parquet", "c2.parquet", "never_logged.parquet"],
    });
    assert.equal(marked, 2);
    assert.deepEqual((await s.listRunParts("r1")).map((p) => [p.fileName, p.status]), [
      ["c0.parquet", undefined],
      ["c1.parquet", "quarantined"],
      ["c2.parquet", "quarantined"],
    ]);
    assert.equal((await s.listRunParts("r0"))[0]?.status, undefined);
    assert.equal(
      (await s.listFiles({ exportName: "orders", last: 10 })).filter((p) =>
        p.status === "quarantined"
      ).length,
      2,
      "listFiles shows the status too",
    );
    // Already quarantined rows are not counted again; an empty list changes nothing.
    assert.equal(await s.markPartsQuarantined({ runId: "r1", fileNames: ["c1.parquet"] }), 0);
    assert.equal(await s.markPartsQuarantined({ runId: "r1", fileNames: [] }), 0);
    // The chunk rewritten under the same name is a new, committed row beside the old one.
    await s.recordPart({ ...resumePart("c1.parquet", 1, 0), status: "committed" });
    assert.deepEqual(
      (await s.listRunParts("r1")).filter((p) => p.fileName === "c1.parquet").map((p) => p.status),
      ["quarantined", "committed"],
    );
  }],
  ["records every metrics column and reads it back unchanged", async (s) => {
    await s.recordRun(fullMetrics);
    const minimal: MetricsEntry = {
      runId: "orders_20240501T110000.000",
      exportName: "orders",
      runAt: T1,
      durationMs: 3,
      totalRows: 0,
      status: "success",
    };
    await s.recordRun(minimal);
    await s.recordRun({ ...minimal, exportName: "users", runId: "users_x" });
    const rows = await s.listMetrics({ exportName: "orders", last: 20 });
    assert.deepEqual(rows, [minimal, fullMetrics]);
    assert.deepEqual((await s.listMetrics({ last: 1 })).map((m) => m.runId), ["users_x"]);
  }],
  ["saves and replaces the schema baseline of an export", async (s) => {
    assert.equal(await s.readSchema("orders"), undefined);
    const columns = [{ name: "id", type: "int64" }, { name: "note", type: "utf8" }];
    await s.saveSchema({ exportName: "orders", columns, updatedAt: T0 });
    assert.deepEqual(await s.readSchema("orders"), {
      exportName: "orders",
      columns,
      updatedAt: T0,
    });
    await s.saveSchema({ exportName: "orders", columns: [columns[0]!], updatedAt: T1 });
    assert.deepEqual((await s.readSchema("orders"))?.columns, [columns[0]]);
    // The longest values of shape drift are kept with the baseline, and replaced with it.
    await s.saveSchema({ exportName: "orders", columns, updatedAt: T1, shape: { note: 12 } });
    assert.deepEqual((await s.readSchema("orders"))?.shape, { note: 12 });
    await s.saveSchema({ exportName: "orders", columns, updatedAt: T1 });
    assert.equal((await s.readSchema("orders"))?.shape, undefined);
  }],
  ["claims tasks in index order, once each, until none is left", async (s) => {
    await s.saveChunkPlan({
      runId: "r1",
      exportName: "orders",
      planHash: "h1",
      maxAttempts: 3,
      createdAt: T0,
      tasks: [
        { startKey: "1", endKey: "100" },
        { startKey: "101", endKey: "200" },
        { startKey: "201", endKey: null },
      ],
    });
    const tasks = await s.listChunkTasks("r1");
    assert.deepEqual(tasks.map((t) => [t.chunkIndex, t.status, t.attempts]), [
      [0, "pending", 0],
      [1, "pending", 0],
      [2, "pending", 0],
    ]);
    const first = await s.claimChunk("r1");
    assert.equal(first?.chunkIndex, 0);
    assert.equal(first?.status, "running");
    assert.equal(first?.attempts, 1);
    assert.equal(first?.startKey, "1");
    assert.equal((await s.claimChunk("r1"))?.chunkIndex, 1);
    const last = await s.claimChunk("r1");
    assert.deepEqual([last?.chunkIndex, last?.startKey, last?.endKey], [2, "201", null]);
    assert.equal(await s.claimChunk("r1"), undefined);
    assert.equal(await s.claimChunk("no_such_run"), undefined);
  }],
  ["records who holds a claimed task (host, pid, lease) and clears it on reset", async (s) => {
    await s.saveChunkPlan(chunkPlan("r1", 3, 3));
    const before = Date.now();
    const first = await s.claimChunk("r1", { host: "worker-a", pid: 41, leaseMs: 60_000 });
    assert.deepEqual([first?.claimedByHost, first?.claimedByPid], ["worker-a", 41]);
    const lease = Date.parse(first?.leaseExpiresAt ?? "");
    assert.ok(lease >= before + 60_000 && lease <= Date.now() + 60_000, `${lease}`);
    const mine = await s.claimChunk("r1");
    assert.equal(mine?.claimedByPid, Deno.pid, "this process when no claimer is given");
    assert.equal(mine?.leaseExpiresAt, undefined, "no lease unless asked for");
    await s.completeChunk({ runId: "r1", chunkIndex: 0, rowsWritten: 1 });
    const done = (await s.listChunkTasks("r1"))[0]!;
    assert.deepEqual([done.claimedByHost, done.leaseExpiresAt], ["worker-a", undefined]);
    assert.equal(await s.resetRunningChunks("r1"), 1);
    const reset = (await s.listChunkTasks("r1"))[1]!;
    assert.deepEqual([reset.status, reset.claimedByHost, reset.claimedByPid], [
      "pending",
      undefined,
      undefined,
    ]);
    await s.reopenChunk({ runId: "r1", chunkIndex: 0 });
    assert.equal((await s.listChunkTasks("r1"))[0]?.claimedByHost, undefined);
  }],
  [
    "round-trips quotes, backslashes, dollar quotes and non-ASCII in names and values",
    async (s) => {
      const name = `o'r\\d"e$$r;s -- $1 ? ü\u0001`;
      const file = `${name}/part ''$$\\.parquet`;
      await s.advanceCursor({
        exportName: name,
        lastCursorValue: `'; DROP TABLE x; --\\`,
        lastRunAt: T0,
      });
      assert.equal((await s.readCursor(name))?.lastCursorValue, `'; DROP TABLE x; --\\`);
      await s.recordPart(part(name, file, { runId: "r$$1" }));
      assert.deepEqual((await s.listRunParts("r$$1")).map((p) => [p.exportName, p.fileName]), [
        [name, file],
      ]);
      assert.equal(await s.markPartsQuarantined({ runId: "r$$1", fileNames: [file] }), 1);
      await s.saveChunkPlan(chunkPlan("r'2", 1, 1, {
        exportName: name,
        tasks: [{ startKey: `'\\$$`, endKey: null }],
      }));
      assert.equal((await s.claimChunk("r'2"))?.startKey, `'\\$$`);
      assert.equal((await s.latestChunkRun(name))?.runId, "r'2");
      assert.equal(await s.resetExport(name), true);
      assert.equal(await s.readCursor(name), undefined);
    },
  ],
  ["retries a failed task before later pending ones, up to the maximum attempts", async (s) => {
    await s.saveChunkPlan(chunkPlan("r1", 2, 2));
    assert.equal((await s.claimChunk("r1"))?.chunkIndex, 0);
    await s.failChunk({ runId: "r1", chunkIndex: 0, error: "timeout" });
    const retry = await s.claimChunk("r1");
    assert.deepEqual([retry?.chunkIndex, retry?.attempts, retry?.lastError], [0, 2, "timeout"]);
    await s.failChunk({ runId: "r1", chunkIndex: 0, error: "timeout again" });
    // attempts == max: task 0 stays failed, task 1 is next.
    assert.equal((await s.claimChunk("r1"))?.chunkIndex, 1);
    await s.completeChunk({ runId: "r1", chunkIndex: 1, rowsWritten: 7, fileName: "f1.parquet" });
    assert.equal(await s.claimChunk("r1"), undefined);
    const tasks = await s.listChunkTasks("r1");
    assert.deepEqual(
      tasks.map((t) => [t.status, t.attempts, t.lastError, t.rowsWritten, t.fileName]),
      [["failed", 2, "timeout again", undefined, undefined], [
        "completed",
        1,
        undefined,
        7,
        "f1.parquet",
      ]],
    );
  }],
  ["pins a permanent failure so that it is never claimed again", async (s) => {
    await s.saveChunkPlan(chunkPlan("r1", 5, 1));
    await s.claimChunk("r1");
    await s.failChunk({ runId: "r1", chunkIndex: 0, error: "syntax error", retryable: false });
    assert.equal(await s.claimChunk("r1"), undefined);
    assert.equal((await s.listChunkTasks("r1"))[0]?.attempts, 5);
    assert.equal((await s.listChunkTasks("r1"))[0]?.failure, "permanent");
  }],
  ["records the class of a failure and clears it on claim, completion and reopen", async (s) => {
    await s.saveChunkPlan(chunkPlan("r1", 2, 2));
    const failure = async () => (await s.listChunkTasks("r1")).map((t) => t.failure);
    await s.claimChunk("r1");
    await s.failChunk({ runId: "r1", chunkIndex: 0, error: "connection refused" });
    assert.deepEqual(await failure(), ["transient", undefined]);
    await s.claimChunk("r1");
    assert.deepEqual(await failure(), [undefined, undefined], "a claim starts a new attempt");
    await s.failChunk({ runId: "r1", chunkIndex: 0, error: "refused again", retryable: true });
    // The budget is spent: the task is not claimable, but it is known to be transient, and a
    // reopen (what --resume does) gives it a fresh budget.
    assert.equal((await s.claimChunk("r1"))?.chunkIndex, 1);
    await s.failChunk({ runId: "r1", chunkIndex: 1, error: "division by zero", retryable: false });
    assert.deepEqual(await failure(), ["transient", "permanent"]);
    assert.equal(await s.claimChunk("r1"), undefined);
    await s.reopenChunk({ runId: "r1", chunkIndex: 0 });
    const reopened = (await s.listChunkTasks("r1"))[0]!;
    assert.deepEqual(
      [reopened.status, reopened.attempts, reopened.failure, reopened.lastError],
      ["pending", 0, undefined, undefined],
    );
    assert.equal((await s.claimChunk("r1"))?.chunkIndex, 0);
    await s.completeChunk({ runId: "r1", chunkIndex: 0, rowsWritten: 1 });
    assert.deepEqual(await failure(), [undefined, "permanent"]);
  }],
  ["resets running tasks to pending and keeps their attempts", async (s) => {
    await s.saveChunkPlan(chunkPlan("r1", 3, 3));
    await s.claimChunk("r1");
    await s.claimChunk("r1");
    await s.completeChunk({ runId: "r1", chunkIndex: 0, rowsWritten: 1 });
    assert.equal(await s.resetRunningChunks("r1"), 1);
    assert.equal(await s.resetRunningChunks("r1"), 0);
    const tasks = await s.listChunkTasks("r1");
    assert.deepEqual(tasks.map((t) => [t.status, t.attempts]), [
      ["completed", 1],
      ["pending", 1],
      ["pending", 0],
    ]);
    const again = await s.claimChunk("r1");
    assert.deepEqual([again?.chunkIndex, again?.attempts], [1, 2]);
  }],
  ["reopens a completed task for rewrite with a fresh attempt budget", async (s) => {
    await s.saveChunkPlan(chunkPlan("r1", 1, 1));
    await s.claimChunk("r1");
    await s.completeChunk({ runId: "r1", chunkIndex: 0, rowsWritten: 3, fileName: "x.parquet" });
    await s.reopenChunk({ runId: "r1", chunkIndex: 0 });
    const [task] = await s.listChunkTasks("r1");
    assert.deepEqual([task?.status, task?.attempts, task?.rowsWritten, task?.fileName], [
      "pending",
      0,
      undefined,
      undefined,
    ]);
    assert.equal((await s.claimChunk("r1"))?.chunkIndex, 0);
  }],
  ["completes a run only once every task is, and only a run that exists", async (s) => {
    await s.saveChunkPlan(chunkPlan("r1", 1, 3));
    await s.claimChunk("r1");
    await s.completeChunk({ runId: "r1", chunkIndex: 0, rowsWritten: 1 });
    await s.claimChunk("r1");
    await s.failChunk({ runId: "r1", chunkIndex: 1, error: "boom" });
    await assert.rejects(
      s.completeChunkRun("r1"),
      (e: unknown) =>
        e instanceof RangeError && /2 task\(s\) not completed \(1, 2\)/.test(e.message),
    );
    assert.equal((await s.latestChunkRun("orders"))?.status, "in_progress", "nothing changed");
    await assert.rejects(s.completeChunkRun("no_such_run"), RangeError);
    await s.reopenChunk({ runId: "r1", chunkIndex: 1 });
    await finishTasks(s, "r1");
    await s.completeChunkRun("r1");
    const done = await s.latestChunkRun("orders");
    assert.equal(done?.status, "completed");
    await s.completeChunkRun("r1"); // idempotent
    assert.deepEqual(await s.latestChunkRun("orders"), done);
    // A plan without tasks has nothing left to do.
    await s.saveChunkPlan(chunkPlan("e1", 1, 0, { exportName: "empty" }));
    await s.completeChunkRun("e1");
    assert.equal((await s.latestChunkRun("empty"))?.status, "completed");
  }],
  ["reopening a task of a completed run puts the run back in progress", async (s) => {
    const plan = chunkPlan("r1", 1, 2);
    await s.saveChunkPlan({ ...plan, runId: "r1", createdAt: T0 });
    await finishTasks(s, "r1");
    await s.completeChunkRun("r1");
    assert.equal(await s.claimChunk("r1"), undefined);
    // --resume --force found part 1 missing: the task must be claimable again.
    await s.reopenChunk({ runId: "r1", chunkIndex: 1 });
    assert.equal((await s.latestChunkRun("orders"))?.status, "in_progress");
    const again = await s.claimChunk("r1");
    assert.deepEqual([again?.chunkIndex, again?.attempts], [1, 1]);
    await s.completeChunk({ runId: "r1", chunkIndex: 1, rowsWritten: 1 });
    await s.completeChunkRun("r1");
    // Once the export has a newer run in progress, the old one stays closed and unchanged.
    await s.saveChunkPlan({ ...plan, runId: "r2", createdAt: T1 });
    await assert.rejects(
      s.reopenChunk({ runId: "r1", chunkIndex: 0 }),
      (e: unknown) => e instanceof ConfigError && e.code === "state.chunk_run_in_progress",
    );
    assert.deepEqual((await s.listChunkTasks("r1")).map((t) => t.status), [
      "completed",
      "completed",
    ]);
    assert.equal(await s.claimChunk("r1"), undefined);
  }],
  ["refuses a second plan under a run id already used", async (s) => {
    const plan = chunkPlan("r1", 1, 1);
    await s.saveChunkPlan(plan);
    await finishTasks(s, "r1");
    await s.completeChunkRun("r1");
    await assert.rejects(
      s.saveChunkPlan({ ...plan, tasks: [] }),
      (e: unknown) => e instanceof RangeError && e.message.includes("'r1' already exists"),
    );
    assert.equal((await s.listChunkTasks("r1")).length, 1, "the first plan is intact");
  }],
  ["refuses a second chunk plan while one is in progress, allows it once completed", async (s) => {
    const plan = chunkPlan("r1", 3, 1, { createdAt: T0 });
    await s.saveChunkPlan(plan);
    await assert.rejects(
      s.saveChunkPlan({ ...plan, runId: "r2", createdAt: T1 }),
      (e: unknown) =>
        e instanceof ConfigError && e.code === "state.chunk_run_in_progress" &&
        e.message.includes("'orders'") && e.message.includes("'r1'"),
    );
    assert.equal((await s.latestChunkRun("orders"))?.runId, "r1");
    // A failed plan left nothing behind.
    assert.deepEqual(await s.listChunkTasks("r2"), []);
    await s.saveChunkPlan({ ...plan, exportName: "users", runId: "u1" });
    await finishTasks(s, "r1");
    await s.completeChunkRun("r1");
    assert.equal(await s.claimChunk("r1"), undefined, "a completed run hands out nothing");
    await s.saveChunkPlan({ ...plan, runId: "r2", createdAt: T1, planHash: "h2" });
    const latest = await s.latestChunkRun("orders");
    assert.deepEqual(
      [latest?.runId, latest?.status, latest?.planHash, latest?.maxAttempts, latest?.createdAt],
      ["r2", "in_progress", "h2", 3, T1],
    );
    assert.equal(await s.latestChunkRun("nobody"), undefined);
  }],
  ["resetChunks deletes every run and task of one export", async (s) => {
    const plan = chunkPlan("r1", 3, 1);
    await s.saveChunkPlan({ ...plan, runId: "r1", exportName: "orders", createdAt: T0 });
    await finishTasks(s, "r1");
    await s.completeChunkRun("r1");
    await s.saveChunkPlan({ ...plan, runId: "r2", exportName: "orders", createdAt: T1 });
    await s.saveChunkPlan({ ...plan, runId: "u1", exportName: "users" });
    assert.equal(await s.resetChunks("orders"), 2);
    assert.equal(await s.latestChunkRun("orders"), undefined);
    assert.deepEqual(await s.listChunkTasks("r1"), []);
    assert.deepEqual(await s.listChunkTasks("r2"), []);
    assert.equal((await s.listChunkTasks("u1")).length, 1);
    assert.equal(await s.resetChunks("orders"), 0);
    // The export may start afresh after a reset.
    await s.saveChunkPlan({ ...plan, runId: "r3", exportName: "orders" });
  }],
  ["rejects updates of a task the run does not have", async (s) => {
    await s.saveChunkPlan(chunkPlan("r1", 1, 0, { exportName: "o" }));
    await assert.rejects(
      s.completeChunk({ runId: "r1", chunkIndex: 0, rowsWritten: 1 }),
      RangeError,
    );
    await assert.rejects(s.failChunk({ runId: "r9", chunkIndex: 0, error: "x" }), RangeError);
    await assert.rejects(s.reopenChunk({ runId: "r1", chunkIndex: 3 }), RangeError);
    await assert.rejects(
      s.saveChunkPlan(chunkPlan("r2", 0, 0, { exportName: "p" })),
      RangeError,
    );
  }],
  ["keeps the committed and verified progression boundaries independently", async (s) => {
    assert.equal(await s.readProgression("orders"), undefined);
    const committed = {
      exportName: "orders",
      boundary: "committed" as const,
      strategy: "chunked",
      chunkIndex: 7,
      runId: "r1",
      at: T0,
    };
    await s.saveProgression(committed);
    assert.deepEqual(await s.readProgression("orders"), { exportName: "orders", committed });
    const verified = {
      exportName: "orders",
      boundary: "verified" as const,
      strategy: "incremental",
      cursor: "2024-05-01T00:00:00.000000",
      runId: "r0",
      at: T1,
    };
    await s.saveProgression(verified);
    const next = { ...committed, chunkIndex: 9, runId: "r2", at: T2 };
    await s.saveProgression(next);
    assert.deepEqual(await s.readProgression("orders"), {
      exportName: "orders",
      committed: next,
      verified,
    });
  }],
  ["appends journals, including two for one resumed run, newest first", async (s) => {
    const journal = { events: [{ type: "RunCompleted", rows: 3, ok: true, note: null }] };
    await s.appendJournal({ runId: "r1", exportName: "orders", finishedAt: T0, journal });
    await s.appendJournal({ runId: "u1", exportName: "users", finishedAt: T1, journal: [] });
    await s.appendJournal({ runId: "r1", exportName: "orders", finishedAt: T2, journal: "again" });
    assert.deepEqual((await s.listJournal({ last: 5 })).map((j) => j.finishedAt), [T2, T1, T0]);
    const r1 = await s.listJournal({ exportName: "orders", runId: "r1", last: 5 });
    assert.deepEqual(r1, [
      { runId: "r1", exportName: "orders", finishedAt: T2, journal: "again" },
      { runId: "r1", exportName: "orders", finishedAt: T0, journal },
    ]);
    assert.equal((await s.listJournal({ runId: "r1", last: 1 })).length, 1);
  }],
  ["saves run aggregates, replacing one with the same id", async (s) => {
    const aggregate = {
      id: "agg_20240501T100000",
      startedAt: T0,
      finishedAt: T1,
      durationMs: 3_600_000,
      configPath: "/etc/rivet/plan.yaml",
      parallelMode: "sequential" as const,
      totalExports: 2,
      successCount: 1,
      failedCount: 1,
      skippedCount: 0,
      totalRows: 10,
      totalFiles: 1,
      totalBytes: 100,
      perExport: [
        {
          exportName: "orders",
          status: "success" as const,
          runId: "r1",
          rows: 10,
          files: 1,
          bytes: 100,
          durationMs: 5,
          mode: "full",
        },
        {
          exportName: "users",
          status: "failed" as const,
          runId: "u1",
          rows: 0,
          files: 0,
          bytes: 0,
          durationMs: 2,
          mode: "incremental",
          errorMessage: "boom",
        },
      ],
    };
    await s.saveRunAggregate(aggregate);
    const { configPath: _omit, ...noPath } = { ...aggregate, id: "agg_2", finishedAt: T2 };
    await s.saveRunAggregate(noPath);
    assert.deepEqual(await s.listRunAggregates({ last: 10 }), [noPath, aggregate]);
    await s.saveRunAggregate({ ...aggregate, totalRows: 11 });
    const again = await s.listRunAggregates({ last: 10 });
    assert.equal(again.length, 2);
    assert.equal(again[1]?.totalRows, 11);
  }],
  ["returns copies, so callers cannot change stored state", async (s) => {
    await s.saveSchema({
      exportName: "o",
      columns: [{ name: "id", type: "int64" }],
      updatedAt: T0,
    });
    const read = await s.readSchema("o");
    (read!.columns as unknown as { name: string }[])[0]!.name = "mutated";
    assert.equal((await s.readSchema("o"))?.columns[0]?.name, "id");
  }],
  ["rejects calls once closed", async (s) => {
    await s.close();
    await assert.rejects(s.readCursor("x"));
    await assert.rejects(s.recordPart(part("o", "f")));
    await assert.rejects(s.listRunParts("r"));
    await assert.rejects(s.markPartsQuarantined({ runId: "r", fileNames: [] }));
    await s.close(); // idempotent
  }],
  ...leaseCases,
  ...traceCases,
];

/** A write killed inside its transaction, and what it must leave. */
export interface CrashCase {
  readonly name: string;
  /** Writes the state the killed call must leave as it is. */
  setup(state: StateStore): Promise<void>;
  /** The call, as the source text of a statement on `state`. */
  readonly call: string;
  /** What the state reads back after the kill. */
  check(state: StateStore): Promise<void>;
}

/** The writes that carry the `in_state_write` crash point. */
export const crashCases: readonly CrashCase[] = [
  {
    name: "advanceCursor keeps the previous cursor",
    setup: (s) => s.advanceCursor({ exportName: "o", lastCursorValue: "1", lastRunAt: T0 }),
    call: `state.advanceCursor({ exportName: "o", lastCursorValue: "2", lastRunAt: "x" })`,
    async check(s) {
      assert.deepEqual(await s.readCursor("o"), {
        exportName: "o",
        lastCursorValue: "1",
        lastRunAt: T0,
      });
    },
  },
  {
    name: "completeChunk leaves the task running",
    async setup(s) {
      const tasks = [{ startKey: "1", endKey: "2" }];
      await s.saveChunkPlan({ runId: "r1", exportName: "o", planHash: "h", maxAttempts: 1, tasks });
      await s.claimChunk("r1");
    },
    call: `state.completeChunk({ runId: "r1", chunkIndex: 0, rowsWritten: 5 })`,
    async check(s) {
      const [task] = await s.listChunkTasks("r1");
      assert.deepEqual([task?.status, task?.rowsWritten], ["running", undefined]);
    },
  },
];

/**
 * Runs `call` on a `state` that `open` (module source ending in a `state` constant) opens, in a
 * child process armed to crash at `in_state_write`, and checks that it crashed there.
 *
 * @param open Source text that imports a store and declares `const state`.
 * @param call A statement on `state` (a {@linkcode CrashCase}'s `call`).
 * @param env Extra environment of the child.
 */
export async function crashInChild(
  open: string,
  call: string,
  env: Record<string, string> = {},
): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", `${open}\nawait ${call};\nconsole.log("not reached");`],
    env: { ...env, RIVET_TEST_CRASH_AT: "in_state_write" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, CRASH_EXIT_CODE, stderr);
  assert.match(stderr, /crashing at in_state_write/);
}
