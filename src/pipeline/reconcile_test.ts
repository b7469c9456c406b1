/**
 * The reconcile report's JSON: what `rivet reconcile --format json` writes, `rivet repair
 * --report` reads back unchanged, and anything else is refused with `repair.bad_report`.
 */
import assert from "node:assert/strict";
import { ConfigError } from "../core/errors.ts";
import { parseReconcileReport, type ReconcileReport, reconcileReportJson } from "./reconcile.ts";

const report: ReconcileReport = {
  export: "orders",
  runId: "orders_20260131T010203.004",
  runStatus: "completed",
  planHash: "abc123",
  chunkColumn: "id",
  chunkShape: "range, 70 per chunk",
  checkedAt: "2026-01-31T02:00:00.000Z",
  notCompleted: 0,
  matched: 1,
  mismatched: 1,
  unknown: 1,
  chunks: [
    {
      chunkIndex: 0,
      startKey: "1",
      endKey: "70",
      status: "match",
      recordedRows: 70,
      sourceRows: 70,
    },
    {
      chunkIndex: 1,
      startKey: "71",
      endKey: "140",
      status: "mismatch",
      recordedRows: 70,
      sourceRows: 65,
    },
    { chunkIndex: 2, startKey: "141", endKey: null, status: "unknown", note: "the count failed" },
  ],
};

Deno.test("a reconcile report survives its JSON form", () => {
  const text = JSON.stringify(reconcileReportJson(report));
  assert.deepEqual(parseReconcileReport(text), report);
});

Deno.test("anything but a reconcile report is refused as such", () => {
  const json = reconcileReportJson(report);
  const chunks = json.chunks as Record<string, unknown>[];
  const cases: [string, string][] = [
    ["not json", "it is not JSON"],
    ["[]", "not an object"],
    [JSON.stringify({ ...json, export: 3 }), "'export' is missing"],
    [JSON.stringify({ ...json, plan_hash: undefined }), "'plan_hash' is missing"],
    [JSON.stringify({ ...json, chunks: {} }), "'chunks' is not a list"],
    [JSON.stringify({ ...json, chunks: [{ ...chunks[0], status: "MATCH" }] }), "status"],
    [JSON.stringify({ ...json, chunks: [{ ...chunks[0], recorded_rows: -1 }] }), "not a count"],
    [JSON.stringify({ ...json, chunks: [{ ...chunks[0], chunk_index: null }] }), "missing"],
  ];
  for (const [text, why] of cases) {
    assert.throws(() => parseReconcileReport(text), (error) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, "repair.bad_report");
      assert.ok(error.message.includes(why), `${error.message} names ${why}`);
      return true;
    });
  }
});
