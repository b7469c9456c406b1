import assert from "node:assert/strict";
import { xxh3Hex } from "../_util/hash.ts";
import { chunkShapeLabel, chunkShapeOf, planHash } from "./plan_hash.ts";

const base = "SELECT * FROM t";

Deno.test("chunkShapeLabel writes the Rust tool's labels", () => {
  assert.equal(chunkShapeLabel({ kind: "date", days: 7 }), "date_7d");
  assert.equal(chunkShapeLabel({ kind: "dense" }), "dense_rn");
  assert.equal(chunkShapeLabel({ kind: "count", count: 4 }), "count_4");
  assert.equal(chunkShapeLabel({ kind: "range", size: 1000 }), "1000\x1frange");
});

Deno.test("chunkShapeOf follows the precedence days, dense, count, size", () => {
  const spec = { chunkByDays: 3, chunkDense: true, chunkCount: 5, chunkSize: 10 };
  assert.deepEqual(chunkShapeOf(spec), { kind: "date", days: 3 });
  assert.deepEqual(chunkShapeOf({ chunkDense: true, chunkCount: 5, chunkSize: 10 }), {
    kind: "dense",
  });
  assert.deepEqual(chunkShapeOf({ chunkDense: false, chunkCount: 5, chunkSize: 10 }), {
    kind: "count",
    count: 5,
  });
  assert.deepEqual(chunkShapeOf({ chunkDense: false, chunkSize: 10 }), { kind: "range", size: 10 });
  assert.deepEqual(chunkShapeOf({ chunkDense: false, chunkSize: 10 }, 250), {
    kind: "range",
    size: 250,
  });
});

Deno.test("planHash is the xxh3-64 of query, column and shape joined by unit separators", async () => {
  const got = await planHash(base, { column: "id", shape: { kind: "range", size: 100 } });
  const expected = await xxh3Hex(new TextEncoder().encode("SELECT * FROM t\x1fid\x1f100\x1frange"));
  assert.equal(got, expected);
  assert.match(got, /^[0-9a-f]{16}$/);
});

Deno.test("planHash changes when the query, the column or any part of the shape changes", async () => {
  const hashes = await Promise.all([
    planHash(base, { column: "id", shape: { kind: "range", size: 100 } }),
    planHash(base + " ", { column: "id", shape: { kind: "range", size: 100 } }),
    planHash(base, { column: "id2", shape: { kind: "range", size: 100 } }),
    planHash(base, { column: "id", shape: { kind: "range", size: 101 } }),
    planHash(base, { column: "id", shape: { kind: "count", count: 100 } }),
    planHash(base, { column: "id", shape: { kind: "dense" } }),
    planHash(base, { column: "id", shape: { kind: "date", days: 100 } }),
  ]);
  assert.equal(new Set(hashes).size, hashes.length);
  assert.equal(
    await planHash(base, { column: "id", shape: { kind: "dense" } }),
    hashes[5],
    "the hash is deterministic",
  );
});
