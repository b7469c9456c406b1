import assert from "node:assert/strict";
import {
  Binary,
  Field,
  Int32,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Utf8,
} from "../../core/arrow.ts";
import type { CdcChunk } from "../../core/cdc.ts";
import { RivetError } from "../../core/errors.ts";
import { ChunkSplitter } from "./_cdc_chunks.ts";

const table = new Schema([new Field("id", new Int32(), false)]);

function lsn(n: number): Uint8Array {
  const b = new Uint8Array(10);
  b[9] = n;
  return b;
}

function binary(values: Uint8Array[]) {
  const offsets = new Int32Array(values.length + 1);
  values.forEach((v, i) => offsets[i + 1] = offsets[i]! + v.length);
  const bytes = new Uint8Array(offsets[values.length]!);
  values.forEach((v, i) => bytes.set(v, offsets[i]!));
  return makeData({
    type: new Binary(),
    length: values.length,
    valueOffsets: offsets,
    data: bytes,
  });
}

/** A window batch: rows of [transaction, seqval, operation, id]. */
function windowBatch(
  rows: [number, number, number, number][],
  idType: Int32 | Utf8 = new Int32(),
): RecordBatch {
  const n = rows.length;
  const int = (k: number) =>
    makeData({ type: new Int32(), length: n, data: Int32Array.from(rows.map((r) => r[k]!)) });
  const id = idType instanceof Int32 ? int(3) : makeData({
    type: new Utf8(),
    length: n,
    valueOffsets: new Int32Array(n + 1),
    data: new Uint8Array(0),
  });
  const fields = [
    new Field("__$start_lsn", new Binary()),
    new Field("__$seqval", new Binary()),
    new Field("__$operation", new Int32()),
    new Field("id", idType),
  ];
  const children = [
    binary(rows.map((r) => lsn(r[0]))),
    binary(rows.map((r) => lsn(r[1]))),
    int(2),
    id,
  ];
  return new RecordBatch(
    new Schema(fields),
    makeData({ type: new Struct(fields), length: n, nullCount: 0, children }),
  );
}

const hex = (n: number) => `0x${n.toString(16).toUpperCase().padStart(20, "0")}`;

/** A chunk as `ids|ops|commit`. */
function show(c: CdcChunk): string {
  const ids = Array.from({ length: c.batch.numRows }, (_, i) => c.batch.getChild("id")!.get(i));
  return `${ids.join(",")}|${[...c.ops].join("")}|${c.commit ? c.commit.lsn : "-"}`;
}

Deno.test("ChunkSplitter: chunks end at transaction ends; a batch's tail waits for the next", () => {
  const split = new ChunkSplitter(table, "dbo.t");
  // Transactions 1 (ids 1, 2), 2 (id 3, 4 across the batch edge), 3 (id 5).
  const a = split.push(windowBatch([[1, 1, 2, 1], [1, 2, 2, 2], [2, 3, 4, 3]]));
  assert.deepEqual(a.map(show), [`1,2|00|${hex(1)}`], "transaction 2 may go on");
  const b = split.push(windowBatch([[2, 4, 1, 4], [3, 5, 2, 5]]));
  assert.deepEqual(b.map(show), ["3|1|-", `4|2|${hex(2)}`]);
  assert.deepEqual(split.finish().map(show), [`5|0|${hex(3)}`], "the window's end ends it");
  assert.deepEqual(split.finish(), []);
});

Deno.test("ChunkSplitter: positions, the table's schema, the __$ columns gone", () => {
  const split = new ChunkSplitter(table, "dbo.t");
  const [c] = [...split.push(windowBatch([[7, 9, 2, 1], [8, 10, 1, 2]])), ...split.finish()];
  assert.deepEqual(c!.positions, [`{"lsn":"${hex(7)}","seqval":"${hex(9)}"}`]);
  assert.deepEqual(c!.batch.schema.fields.map(String), table.fields.map(String));
  assert.deepEqual(c!.batch.schema.fields.map((f) => f.name), ["id"]);
});

Deno.test("ChunkSplitter: a transaction held across batches keeps going without a commit", () => {
  const split = new ChunkSplitter(table, "dbo.t");
  assert.deepEqual(split.push(windowBatch([[4, 1, 2, 1]])), []);
  assert.deepEqual(split.push(windowBatch([[4, 2, 2, 2]])).map(show), ["1|0|-"]);
  assert.deepEqual(split.push(windowBatch([])), []);
  assert.deepEqual(split.finish().map(show), [`2|0|${hex(4)}`]);
});

Deno.test("ChunkSplitter: change data of another shape fails with cdc.schema_changed", () => {
  const split = new ChunkSplitter(table, "dbo.t");
  assert.throws(
    () => split.push(windowBatch([[1, 1, 2, 0]], new Utf8())),
    (e) => e instanceof RivetError && e.code === "cdc.schema_changed" && e.exitCode === 4,
  );
});
