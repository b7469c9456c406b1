import assert from "node:assert/strict";
import type { ErrorInfo } from "../core/errors.ts";
import type { ChunkTaskEntry, PartEntry } from "../core/state.ts";
import { chunkVerdict, type PartObservation, planResume } from "./chunk_decisions.ts";

const error = (exitCode: 1 | 2, code: string): ErrorInfo => ({
  name: "RivetError",
  code,
  message: `${code} happened`,
  exitCode,
});
const lost = error(2, "source.connection_lost");
const refused = error(2, "source.connection_refused");
const permanent = error(1, "source.query_failed");
const diskFull = error(2, "destination.disk_full");

const facts = {
  aborted: false,
  stopping: false,
  checkpointed: true,
  attempt: 1,
  maxAttempts: 3,
};

Deno.test("chunkVerdict: a success completes, an interrupt gives the claim back", () => {
  assert.deepEqual(chunkVerdict({ keys: ["a"] }, facts), { kind: "completed" });
  assert.deepEqual(
    chunkVerdict({ failure: lost, keys: ["a"] }, { ...facts, aborted: true }),
    { kind: "interrupted" },
  );
});

Deno.test("chunkVerdict: a transient failure is claimed again while attempts are left", () => {
  const keys = ["orders_chunk3_0.parquet"];
  assert.deepEqual(chunkVerdict({ failure: lost, keys }, facts), {
    kind: "failed",
    again: true,
    retryable: true,
    quarantine: keys,
  });
  // A refused connection mid-run is an outage to ride out, not a port where nothing listens.
  assert.equal((chunkVerdict({ failure: refused, keys }, facts) as { again: boolean }).again, true);
  const last = chunkVerdict({ failure: lost, keys }, { ...facts, attempt: 3 });
  assert.deepEqual(last, { kind: "failed", again: false, retryable: true, quarantine: keys });
  const stopping = chunkVerdict({ failure: lost, keys }, { ...facts, stopping: true });
  assert.equal((stopping as { again: boolean }).again, false);
});

Deno.test("chunkVerdict: permanent failures and a full disk stop the run", () => {
  assert.deepEqual(chunkVerdict({ failure: permanent, keys: [] }, facts), {
    kind: "failed",
    again: false,
    retryable: false,
    quarantine: [],
  });
  // A full disk waits for the operator, but --resume gives it a fresh budget.
  assert.deepEqual(chunkVerdict({ failure: diskFull, keys: [] }, facts), {
    kind: "failed",
    again: false,
    retryable: true,
    quarantine: [],
  });
});

Deno.test("chunkVerdict: without checkpoints nothing is claimed twice or quarantined", () => {
  assert.deepEqual(
    chunkVerdict({ failure: lost, keys: ["x"] }, { ...facts, checkpointed: false }),
    { kind: "failed", again: false, retryable: true, quarantine: [] },
  );
});

const RUN = "orders_20261203T120000Z";
const task = (chunkIndex: number, extra: Partial<ChunkTaskEntry> = {}): ChunkTaskEntry => ({
  runId: RUN,
  chunkIndex,
  status: "completed",
  attempts: 1,
  startKey: String(chunkIndex * 10),
  endKey: String(chunkIndex * 10 + 9),
  updatedAt: "2026-12-03T12:00:00.000Z",
  ...extra,
});
const part = (fileName: string, chunkIndex: number, bytes = 100): PartEntry => ({
  runId: RUN,
  exportName: "orders",
  fileName,
  rowCount: 10,
  bytes,
  format: "parquet",
  createdAt: "2026-12-03T12:00:01.000Z",
  contentFingerprint: `xxh3:${fileName.length.toString(16).padStart(16, "0")}`,
  chunkIndex,
  partIndex: 0,
});
const PREFIX = "orders_20261203_120000_chunk";
const intact = (p: PartEntry): [string, PartObservation] => [p.fileName, { kind: "intact" }];

Deno.test("planResume: an intact run changes nothing", () => {
  const parts = [part(`${PREFIX}0_0.parquet`, 0), part(`${PREFIX}1_0.parquet`, 1)];
  const plan = planResume({
    tasks: [task(0), task(1), task(2, { status: "pending" })],
    parts,
    observed: new Map(parts.map(intact)),
    listed: [...parts.map((p) => p.fileName), "manifest.json", "other_20250101_000000.parquet"],
    runFilePrefix: PREFIX,
    force: false,
  });
  assert.deepEqual(plan.reopen, []);
  assert.deepEqual([...plan.quarantine], []);
  assert.deepEqual(plan.missing, []);
  assert.deepEqual(plan.revive, []);
});

Deno.test("planResume: missing and drifted parts reopen their chunk with its other parts", () => {
  const a0 = part(`${PREFIX}0_0.parquet`, 0);
  const a1 = { ...part(`${PREFIX}0_1.parquet`, 0), partIndex: 1 };
  const b0 = part(`${PREFIX}1_0.parquet`, 1);
  const c0 = part(`${PREFIX}2_0.parquet`, 2);
  const d0 = part(`${PREFIX}3_0.parquet`, 3);
  const plan = planResume({
    tasks: [task(0), task(1), task(2), task(3, { status: "running" })],
    parts: [a0, a1, b0, c0, d0],
    observed: new Map([
      [a0.fileName, { kind: "missing" }],
      intact(a1),
      [b0.fileName, { kind: "size", size: 99 }],
      [c0.fileName, { kind: "content" }],
    ]),
    listed: [a1.fileName, b0.fileName, c0.fileName, d0.fileName],
    runFilePrefix: PREFIX,
    force: false,
  });
  assert.deepEqual(plan.reopen, [0, 1, 2]);
  assert.deepEqual(plan.missing, [{ fileName: a0.fileName, chunkIndex: 0 }]);
  assert.deepEqual([...plan.quarantine], [
    [b0.fileName, "its size is 99 bytes, the run recorded 100"],
    [c0.fileName, "its content no longer matches the recorded fingerprint"],
    [d0.fileName, "its chunk did not complete and runs again"],
    // The missing part is marked too, so its file log row no longer counts.
    [a0.fileName, "another part of its chunk is missing or drifted"],
    [a1.fileName, "another part of its chunk is missing or drifted"],
  ]);
});

Deno.test("planResume: untracked files of this run are quarantined, others are left alone", () => {
  const plan = planResume({
    tasks: [task(0)],
    parts: [],
    observed: new Map(),
    listed: [
      `${PREFIX}0_0.parquet`,
      `sub/${PREFIX}5_0.parquet`,
      `_quarantine/${RUN}/${PREFIX}0_0.parquet`,
      "orders_20261202_120000_chunk0_0.parquet",
      "_SUCCESS",
    ],
    runFilePrefix: PREFIX,
    force: false,
  });
  assert.deepEqual([...plan.quarantine.keys()], [
    `${PREFIX}0_0.parquet`,
    `sub/${PREFIX}5_0.parquet`,
  ]);
});

Deno.test("planResume: failed chunks get a fresh budget, permanent ones only with force", () => {
  const tasks = [
    task(0, { status: "failed", failure: "transient" }),
    task(1, { status: "failed", failure: "permanent", lastError: "syntax error" }),
    task(2, { status: "failed" }),
  ];
  const base = { parts: [], observed: new Map(), listed: [], runFilePrefix: PREFIX };
  const plain = planResume({ ...base, tasks, force: false });
  assert.deepEqual(plain.revive, [0, 2]);
  assert.deepEqual(plain.keptFailed.map((t) => t.chunkIndex), [1]);
  const forced = planResume({ ...base, tasks, force: true });
  assert.deepEqual(forced.revive, [0, 1, 2]);
  assert.deepEqual(forced.keptFailed, []);
});
