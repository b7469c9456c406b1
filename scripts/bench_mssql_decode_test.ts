import assert from "node:assert/strict";
import { measure, median } from "./bench_mssql_decode.ts";

Deno.test("the decode benchmark parses every row it encodes, in both modes", () => {
  for (const mode of ["tedious", "rivet"] as const) {
    const m = measure(mode, 23_000);
    assert.equal(m.rows, 23_000);
    assert.equal(m.batches, mode === "rivet" ? 3 : 0, "10,000-row batches and the rest");
    assert.ok(m.rowsPerS > 0 && Number.isFinite(m.rowsPerS), `${mode}: ${m.rowsPerS}`);
    assert.ok(m.rssMb > 0);
  }
});

Deno.test("median of odd and even counts", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
});
