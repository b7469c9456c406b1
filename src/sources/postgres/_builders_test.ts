import assert from "node:assert/strict";
import { Field, Int32, Int64, List, Utf8, Vector } from "../../core/arrow.ts";
import { FixedBuilder, ListBuilder, VarBuilder } from "./_builders.ts";

Deno.test("VarBuilder grows past its first guess and keeps NULLs apart from empty values", () => {
  const b = new VarBuilder();
  b.reset(2);
  const bytes = new TextEncoder().encode("hello wörld".repeat(200));
  b.push(bytes, 0, bytes.length);
  b.appendNull();
  b.push(bytes, 0, 0);
  const v = new Vector([b.finish(new Utf8())]);
  assert.deepEqual(v.toArray(), ["hello wörld".repeat(200), null, ""]);
  assert.equal(v.nullCount, 1);
});

Deno.test("FixedBuilder exposes int64 halves as BigInt64 values", () => {
  const b = new FixedBuilder<Int32Array>(Int32Array, { width: 2, bigint: true });
  b.reset(1);
  let i = b.slot() << 1;
  b.data[i] = -1;
  b.data[i + 1] = 0x7fffffff;
  b.appendNull();
  i = b.slot() << 1;
  b.data[i] = 0;
  b.data[i + 1] = -2147483648;
  const v = new Vector([b.finish(new Int64())]);
  assert.deepEqual([...v], [9223372036854775807n, null, -9223372036854775808n]);
});

Deno.test("ListBuilder keeps NULL lists, empty lists and NULL elements", () => {
  const child = new FixedBuilder<Int32Array>(Int32Array);
  const b = new ListBuilder(child, new Int32());
  b.reset(1);
  child.data[child.slot()] = 7;
  child.appendNull();
  b.endList();
  b.appendNull();
  b.endList();
  const v = new Vector([b.finish(new List(new Field("item", new Int32(), true)))]);
  assert.deepEqual([...v].map((x: Iterable<unknown> | null) => x === null ? null : [...x]), [
    [7, null],
    null,
    [],
  ]);
});
