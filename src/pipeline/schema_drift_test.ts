import assert from "node:assert/strict";
import { describeDrift, schemaDrift } from "./schema_drift.ts";

Deno.test("schemaDrift finds added, removed and retyped columns, and ignores order", () => {
  const before = [{ name: "a", type: "Int32" }, { name: "b", type: "Utf8" }, {
    name: "c",
    type: "Int64",
  }];
  assert.equal(schemaDrift(before, [...before].reverse()), undefined);
  const drift = schemaDrift(before, [
    { name: "a", type: "Int64" },
    { name: "c", type: "Int64" },
    { name: "d", type: "Bool" },
  ]);
  assert.deepEqual(drift, {
    added: ["d"],
    removed: ["b"],
    retyped: [{ name: "a", from: "Int32", to: "Int64" }],
  });
  assert.equal(describeDrift(drift!), "added d; removed b; retyped a (Int32 → Int64)");
});
