import assert from "node:assert/strict";
import { globPattern, selectedByGlobs } from "./discover.ts";

Deno.test("globs: * and ? only, everything else literal, whole name", () => {
  assert.ok(globPattern("ord*").test("orders"));
  assert.ok(globPattern("ord?rs").test("orders"));
  assert.ok(!globPattern("ord?rs").test("ordrs"));
  assert.ok(!globPattern("orders").test("orders_2024"));
  assert.ok(!globPattern("a.b").test("axb"));
  assert.ok(globPattern("a+b[1]").test("a+b[1]"));
  assert.ok(!globPattern("Orders").test("orders"), "case-sensitive");
});

Deno.test("include/exclude: exclude beats include, a dotted glob matches schema.name", () => {
  const t = { schema: "sales", name: "tmp_orders" };
  assert.ok(selectedByGlobs(t, [], []));
  assert.ok(selectedByGlobs(t, ["*orders"], []));
  assert.ok(!selectedByGlobs(t, ["*orders"], ["tmp_*"]));
  assert.ok(!selectedByGlobs(t, ["customers"], []));
  assert.ok(selectedByGlobs(t, ["sales.*"], []));
  assert.ok(!selectedByGlobs(t, [], ["sales.tmp_?rders"]));
});
