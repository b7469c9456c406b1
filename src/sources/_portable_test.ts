import assert from "node:assert/strict";
import type { Data } from "../core/arrow.ts";
import { Field, FixedSizeBinary, Int64, List, makeData } from "../core/arrow.ts";
import { RecordBatch, Schema, Struct, Utf8 } from "../core/arrow.ts";
import type { BatchStream, ColumnInfo } from "../core/source.ts";
import { portableStream, uuidBytesToText } from "./_portable.ts";

type Cell = string | null;

/** Validity bits of a column from its values (undefined when nothing is null). */
function bits(values: readonly unknown[]): { nullBitmap?: Uint8Array; nullCount: number } {
  const nulls = values.filter((v) => v === null).length;
  if (nulls === 0) return { nullCount: 0 };
  const nullBitmap = new Uint8Array((values.length + 7) >> 3);
  for (let i = 0; i < values.length; i++) {
    if (values[i] !== null) nullBitmap[i >> 3]! |= 1 << (i & 7);
  }
  return { nullBitmap, nullCount: nulls };
}

/** A FixedSizeBinary(16) column parsed from uuid text (any case). */
function uuids(values: readonly Cell[]): Data {
  const bytes = new Uint8Array(values.length * 16);
  values.forEach((v, i) => {
    const hex = v?.replaceAll("-", "") ?? "";
    for (let k = 0; k < hex.length / 2; k++) {
      bytes[i * 16 + k] = Number.parseInt(hex.substring(2 * k, 2 * k + 2), 16);
    }
  });
  return makeData({
    type: new FixedSizeBinary(16),
    length: values.length,
    data: bytes,
    ...bits(values),
  });
}

/** A Utf8 column. */
function strings(values: readonly Cell[]): Data {
  const enc = values.map((v) => new TextEncoder().encode(v ?? ""));
  const valueOffsets = new Int32Array(values.length + 1);
  enc.forEach((b, i) => valueOffsets[i + 1] = valueOffsets[i]! + b.length);
  const data = new Uint8Array(valueOffsets[values.length]!);
  enc.forEach((b, i) => data.set(b, valueOffsets[i]!));
  return makeData({ type: new Utf8(), length: values.length, valueOffsets, data, ...bits(values) });
}

/** A List<FixedSizeBinary(16)> column (a PostgreSQL uuid[]). */
function uuidLists(values: readonly (readonly Cell[] | null)[]): Data {
  const valueOffsets = new Int32Array(values.length + 1);
  values.forEach((v, i) => valueOffsets[i + 1] = valueOffsets[i]! + (v?.length ?? 0));
  return makeData({
    type: new List(new Field("item", new FixedSizeBinary(16), true)),
    length: values.length,
    valueOffsets,
    child: uuids(values.flatMap((v) => v ?? [])),
    ...bits(values),
  } as never) as Data;
}

/** A field with the metadata a source attaches. */
function field(name: string, data: Data, native: string, extra: Record<string, string> = {}) {
  return new Field(
    name,
    data.type,
    true,
    new Map(Object.entries({ "rivet.native_type": native, "rivet.fidelity": "exact", ...extra })),
  );
}

function batchOf(columns: readonly [Field, Data][]): RecordBatch {
  const schema = new Schema(columns.map(([f]) => f));
  const length = columns[0]![1].length;
  const children = columns.map(([, d]) => d);
  return new RecordBatch(
    schema,
    makeData({ type: new Struct(schema.fields), length, nullCount: 0, children }),
  );
}

const UUID_EXT = { "ARROW:extension:name": "arrow.uuid", "rivet.logical_type": "uuid" };
const JSON_EXT = { "ARROW:extension:name": "arrow.json", "rivet.logical_type": "json" };

const A = "00112233-4455-6677-8899-aabbccddeeff";
const B = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
const Z = "00000000-0000-0000-0000-000000000000";

function text(data: Data): (string | null)[] {
  const out: (string | null)[] = [];
  const dec = new TextDecoder();
  for (let i = 0; i < data.length; i++) {
    if (!data.getValid(i)) {
      out.push(null);
      continue;
    }
    const o = data.valueOffsets!;
    out.push(dec.decode((data.values as Uint8Array).subarray(o[i]!, o[i + 1]!)));
  }
  return out;
}

function streamOf(batch: RecordBatch): BatchStream {
  const columns: ColumnInfo[] = batch.schema.fields.map((f) => ({
    name: f.name,
    nativeType: f.metadata.get("rivet.native_type") ?? "?",
    arrowType: f.type,
    fidelity: "exact",
    ...(f.metadata.get("rivet.logical_type") === undefined
      ? {}
      : { logicalType: f.metadata.get("rivet.logical_type") as "uuid" | "json" }),
  }));
  return {
    schema: batch.schema,
    columns,
    batches: ReadableStream.from([batch]),
  };
}

Deno.test("uuidBytesToText formats 16 bytes as lowercase 8-4-4-4-12 text, nulls taking no bytes", () => {
  const data = uuids([A, null, B.toUpperCase(), Z]);
  const out = uuidBytesToText(data);
  assert.equal(out.nullCount, 1);
  assert.deepEqual(text(out), [A, null, B, Z]);
  assert.deepEqual([...out.valueOffsets], [0, 36, 36, 72, 108]);
});

Deno.test("uuidBytesToText honours a sliced column's offset and validity", () => {
  const whole = uuids([Z, null, A, null, B, Z, Z, Z, null, A]);
  const sliced = whole.slice(1, 7); // offset 1, length 7
  assert.deepEqual(text(uuidBytesToText(sliced)), [null, A, null, B, Z, Z, Z]);
  const noNulls = makeData({
    type: new FixedSizeBinary(16),
    length: 1,
    data: new Uint8Array(16).fill(0xab),
  });
  assert.deepEqual(text(uuidBytesToText(noNulls)), [
    "abababab-abab-abab-abab-abababababab",
  ]);
});

Deno.test("portableStream writes uuid, uuid[] and json as plain text without extensions", async () => {
  const ids = makeData({ type: new Int64(), length: 3, data: new BigInt64Array([1n, 2n, 3n]) });
  const u = uuids([A, null, B]);
  const j = strings(['{"a":1}', null, "[]"]);
  const us = uuidLists([[A, null], null, []]);
  const str = strings(["x", "y", null]);
  const batch = batchOf([
    [field("id", ids, "int8"), ids],
    [field("u", u, "uuid", UUID_EXT), u],
    [field("j", j, "jsonb", JSON_EXT), j],
    [field("us", us, "uuid[]", { "rivet.logical_type": "uuid" }), us],
    [field("s", str, "text"), str],
  ]);
  const stream = portableStream(streamOf(batch));
  const fields = new Map(stream.schema.fields.map((f) => [f.name, f]));
  assert.equal(String(fields.get("u")!.type), "Utf8");
  assert.equal(String(fields.get("us")!.type), "List<Utf8>");
  for (const name of ["u", "j", "us"]) {
    const keys = [...fields.get(name)!.metadata.keys()];
    assert.ok(!keys.some((k) => k.startsWith("ARROW:extension")), `${name}: ${keys}`);
    assert.ok(!keys.includes("rivet.logical_type"), name);
    assert.equal(fields.get(name)!.metadata.get("rivet.fidelity"), "logical_string");
  }
  assert.equal(fields.get("id"), batch.schema.fields[0], "untouched columns stay as they are");
  const info = new Map(stream.columns.map((c) => [c.name, c]));
  assert.equal(info.get("u")!.fidelity, "logical_string");
  assert.equal(info.get("u")!.logicalType, undefined);
  assert.equal(String(info.get("u")!.arrowType), "Utf8");
  assert.equal(info.get("s")!.fidelity, "exact");
  const got: RecordBatch[] = [];
  for await (const b of stream.batches) got.push(b);
  assert.equal(got.length, 1);
  const out = got[0]!;
  assert.deepEqual(out.schema.fields, stream.schema.fields);
  assert.deepEqual(text(out.getChild("u")!.data[0]!), [A, null, B]);
  assert.deepEqual(text(out.getChild("j")!.data[0]!), ['{"a":1}', null, "[]"]);
  const lists = out.getChild("us")!;
  assert.deepEqual([...lists].map((v: Iterable<unknown> | null) => v === null ? null : [...v]), [
    [A, null],
    null,
    [],
  ]);
  // Applying it again changes nothing: the stream is already portable.
  const again = portableStream({ ...stream, batches: ReadableStream.from([]) });
  assert.equal(again.schema, stream.schema);
});

Deno.test("portableStream returns a stream without uuid or json columns unchanged", () => {
  const s = strings(["x"]);
  const stream = streamOf(batchOf([[field("s", s, "text"), s]]));
  assert.equal(portableStream(stream), stream);
});
