/**
 * The repair plan: the flagged chunks of a report with the bounds the state recorded (an edited
 * report cannot choose what is re-exported), unknown chunks left out, and a report naming a chunk
 * the run does not have refused.
 */
import assert from "node:assert/strict";
import type { ChunkTaskEntry } from "../core/state.ts";
import type { ReconcileReport } from "./reconcile.ts";
import { planRepair } from "./repair.ts";

const task = (chunkIndex: number, startKey: string, endKey: string): ChunkTaskEntry => ({
  runId: "orders_20260131T010203.004",
  chunkIndex,
  startKey,
  endKey,
  status: "completed",
  attempts: 1,
  rowsWritten: 70,
  updatedAt: "2026-01-31T01:03:00.000Z",
});

const report = (chunks: ReconcileReport["chunks"]): ReconcileReport => ({
  export: "orders",
  runId: "orders_20260131T010203.004",
  runStatus: "completed",
  planHash: "abc",
  chunkColumn: "id",
  chunkShape: "range, 70 per chunk",
  checkedAt: "",
  notCompleted: 0,
  matched: 0,
  mismatched: 0,
  unknown: 0,
  chunks,
});

Deno.test("the plan takes the flagged chunks with the bounds the state recorded", () => {
  const plan = planRepair(
    report([
      { chunkIndex: 0, startKey: "1", endKey: "70", status: "match" },
      // An edited report: its bounds are ignored.
      { chunkIndex: 1, startKey: "0; DROP TABLE x", endKey: "9e99", status: "mismatch" },
      { chunkIndex: 2, startKey: "141", endKey: "210", status: "unknown", note: "no count" },
    ]),
    [task(0, "1", "70"), task(1, "71", "140"), task(2, "141", "210")],
  );
  assert.deepEqual(
    plan.items.map((i) => [i.chunkIndex, i.startKey, i.endKey, i.status]),
    [[1, "71", "140", "planned"]],
  );
  assert.deepEqual(plan.unknown.map((c) => c.chunkIndex), [2]);
  assert.equal(plan.executed, false);
});

Deno.test("a flagged chunk the run does not have is refused", () => {
  assert.throws(
    () =>
      planRepair(report([{ chunkIndex: 9, startKey: "1", endKey: "2", status: "mismatch" }]), [
        task(0, "1", "70"),
      ]),
    (error: Error & { code?: string }) => error.code === "repair.report_mismatch",
  );
});
