import assert from "node:assert/strict";
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { exactParsers } from "../../tests/_helpers/parquet_oracle.ts";
import { Field, RecordBatch, Schema } from "../core/arrow.ts";
import { PermanentError } from "../core/errors.ts";
import {
  decodeCompactStruct,
  encodeCompactStruct,
  rewriteFooterLogicalTypes,
  rewriteParquetTail,
  type ThriftStruct,
  type ThriftValue,
} from "./_parquet_footer.ts";
import {
  batchOf,
  decimalCol,
  int32ListCol,
  int64Col,
  jsonCol,
  memorySink,
  timestampCol,
  utf8Col,
  uuidCol,
  uuidListCol,
} from "./_test_batches.ts";
import { createParquetFormat } from "./parquet.ts";

// deno-lint-ignore no-explicit-any
type Meta = any;

const te = new TextEncoder();
const bin = (s: string): ThriftValue => ({ kind: "binary", value: te.encode(s) });
const i32 = (value: number): ThriftValue => ({ kind: "i32", value });
const struct = (...fields: [number, ThriftValue][]): ThriftStruct => ({
  kind: "struct",
  fields: fields.map(([id, value]) => ({ id, value })),
});

const UUID_BYTES = Uint8Array.from({ length: 16 }, (_, i) => i * 17);

/** One field of every compact type, encoded by hand from the Thrift compact-protocol spec. */
const HAND_BYTES = Uint8Array.from([
  0x11, // field 1 (delta 1), BOOLEAN_TRUE
  0x12, // field 2, BOOLEAN_FALSE
  0x13,
  0xff, // field 3, BYTE -1
  0x14,
  0x03, // field 4, I16 -2 (zigzag 3)
  0x15,
  0xfe,
  0xff,
  0xff,
  0xff,
  0x0f, // field 5, I32 2147483647 (zigzag 4294967294)
  0x16,
  ...Array(9).fill(0xff),
  0x01, // field 6, I64 -2^63 (zigzag 2^64-1)
  0x17,
  0,
  0,
  0,
  0,
  0,
  0,
  0xf8,
  0x3f, // field 7, DOUBLE 1.5
  0x18,
  0x02,
  0x68,
  0x69, // field 8, BINARY "hi"
  0x19,
  0x25,
  0x02,
  0x01, // field 9, LIST size 2 of I32: 1, -1
  0x1a,
  0x08, // field 10, SET size 0 of BINARY
  0x1b,
  0x01,
  0x85,
  0x01,
  0x61,
  0x02, // field 11, MAP size 1, BINARY→I32: "a" → 1
  0x1c,
  0x15,
  0x0e,
  0x00, // field 12, STRUCT { 1: I32 7 }
  0x1d,
  ...UUID_BYTES, // field 13, UUID
  0x05,
  0x3c,
  0x00, // field 30 (delta 17: long form, zigzag i16 60), I32 0
  0x05,
  0x04,
  0x02, // field 2 after 30 (decreasing: long form), I32 1
  0x01,
  0x01, // field -1 (long form, zigzag 1), BOOLEAN_TRUE
  0x00, // STOP
]);

const HAND_TREE: ThriftStruct = {
  kind: "struct",
  fields: [
    { id: 1, value: { kind: "bool", value: true } },
    { id: 2, value: { kind: "bool", value: false } },
    { id: 3, value: { kind: "byte", value: -1 } },
    { id: 4, value: { kind: "i16", value: -2 } },
    { id: 5, value: i32(2147483647) },
    { id: 6, value: { kind: "i64", value: -(2n ** 63n) } },
    { id: 7, value: { kind: "double", value: 1.5, raw: Uint8Array.of(0, 0, 0, 0, 0, 0, 248, 63) } },
    { id: 8, value: bin("hi") },
    { id: 9, value: { kind: "list", elementType: 5, elements: [i32(1), i32(-1)] } },
    { id: 10, value: { kind: "set", elementType: 8, elements: [] } },
    { id: 11, value: { kind: "map", keyType: 8, valueType: 5, entries: [[bin("a"), i32(1)]] } },
    { id: 12, value: struct([1, i32(7)]) },
    { id: 13, value: { kind: "uuid", value: UUID_BYTES } },
    { id: 30, value: i32(0) },
    { id: 2, value: i32(1) },
    { id: -1, value: { kind: "bool", value: true } },
  ],
};

Deno.test("The compact codec decodes every type from hand-encoded bytes and re-encodes them byte for byte", () => {
  assert.deepEqual(decodeCompactStruct(HAND_BYTES), HAND_TREE);
  assert.deepEqual(encodeCompactStruct(HAND_TREE), HAND_BYTES);
});

Deno.test("The compact codec keeps fields it is not asked to decode as raw bytes, written back verbatim", async () => {
  const shallow = decodeCompactStruct(HAND_BYTES, { only: [12] });
  assert.deepEqual(shallow.fields.map((f) => f.value.kind), [
    "bool",
    "bool",
    ...Array(9).fill("raw"),
    "struct",
    "raw",
    "raw",
    "raw",
    "bool",
  ]);
  assert.deepEqual(shallow.fields[7]!.value, {
    kind: "raw",
    type: 8,
    bytes: Uint8Array.of(0x02, 0x68, 0x69),
  });
  assert.deepEqual(shallow.fields[11]!.value, struct([1, i32(7)]));
  assert.deepEqual(encodeCompactStruct(shallow), HAND_BYTES);
  // The same on a real footer: only the schema (field 2) decoded.
  const footer = footerOf(await writeFile(sampleBatch()));
  const tree = decodeCompactStruct(footer, { only: [2] });
  assert.equal(tree.fields.find((f) => f.id === 2)!.value.kind, "list");
  assert.equal(tree.fields.find((f) => f.id === 4)!.value.kind, "raw");
  assert.deepEqual(encodeCompactStruct(tree), footer);
});

Deno.test("The compact codec keeps the long list size form, large sizes and container booleans", () => {
  const bytes = Uint8Array.from([
    0x19,
    0xf5,
    0x0f,
    ...Array(15).fill(0x00), // field 1, LIST of 15 I32 zeros (long size form)
    0x19,
    0xf5,
    0x02,
    0x02,
    0x04, // field 2, LIST of 2 I32 written in the long form (non-canonical)
    0x19,
    0x31,
    0x01,
    0x02,
    0x00, // field 3, LIST of 3 booleans: true, false, false spelled 0
    0x1a,
    0x22,
    0x01,
    0x02, // field 4, SET of booleans, element type spelled 2
    0x1b,
    0x00, // field 5, empty MAP
    0x05,
    0x0c,
    0x00, // field 6 in the long header form where a delta fits (non-canonical)
    0x00,
  ]);
  const tree = decodeCompactStruct(bytes);
  const [long, short, bools, set, map, id6] = tree.fields;
  assert.equal(long!.value.kind === "list" && long!.value.elements.length, 15);
  assert.equal(long!.value.kind === "list" && long!.value.longSize, undefined);
  assert.deepEqual(short!.value, {
    kind: "list",
    elementType: 5,
    elements: [i32(1), i32(2)],
    longSize: true,
  });
  assert.deepEqual(bools!.value, {
    kind: "list",
    elementType: 1,
    elements: [
      { kind: "bool", value: true },
      { kind: "bool", value: false },
      { kind: "bool", value: false, raw: 0 },
    ],
  });
  assert.equal(set!.value.kind === "set" && set!.value.elementType, 2);
  assert.deepEqual(map!.value, { kind: "map", keyType: 0, valueType: 0, entries: [] });
  assert.deepEqual(id6, { id: 6, value: i32(0), longHeader: true });
  assert.deepEqual(encodeCompactStruct(tree), bytes);
  // Edited values fall back to the canonical spelling.
  if (bools!.value.kind === "list") (bools!.value.elements[2] as { value: boolean }).value = true;
  const field6: { longHeader?: boolean } = id6!;
  delete field6.longHeader;
  const edited = encodeCompactStruct(tree);
  assert.deepEqual([...edited.subarray(23, 28)], [0x19, 0x31, 0x01, 0x02, 0x01]);
  assert.deepEqual([...edited.subarray(-9)], [
    0x1a,
    0x22,
    0x01,
    0x02,
    0x1b,
    0x00,
    0x15,
    0x00,
    0x00,
  ]);
});

Deno.test("The compact codec round-trips integer extremes, varint boundaries and odd doubles", () => {
  const i64s = [
    0n,
    -1n,
    1n,
    2n ** 48n - 1n,
    2n ** 48n,
    -(2n ** 48n),
    -(2n ** 48n) - 1n,
    2n ** 53n + 1n,
    2n ** 63n - 1n,
    -(2n ** 63n),
  ];
  const i32s = [0, -1, 63, 64, -64, -65, 8191, 8192, 2 ** 31 - 1, -(2 ** 31)];
  const i16s = [-32768, 32767, 0];
  const bytes8 = [-128, 127, 0];
  const nan = Uint8Array.of(1, 0, 0, 0, 0, 0, 0xf8, 0x7f); // a NaN with a payload
  const doubles = [-0, Infinity, -Infinity, 5e-324, Number.MAX_VALUE];
  const tree: ThriftStruct = {
    kind: "struct",
    fields: [
      ...i64s.map((value, i) => ({ id: i + 1, value: { kind: "i64", value } as ThriftValue })),
      ...i32s.map((value, i) => ({ id: 20 + i, value: i32(value) })),
      ...i16s.map((value, i) => ({ id: 40 + i, value: { kind: "i16", value } as ThriftValue })),
      ...bytes8.map((value, i) => ({ id: 50 + i, value: { kind: "byte", value } as ThriftValue })),
      ...doubles.map((value, i) => ({
        id: 60 + i,
        value: { kind: "double", value } as ThriftValue,
      })),
      { id: 70, value: { kind: "binary", value: new Uint8Array(300).fill(7) } },
      { id: 71, value: { kind: "binary", value: new Uint8Array(0) } },
    ],
  };
  const encoded = encodeCompactStruct(tree);
  const back = decodeCompactStruct(encoded);
  assert.equal(back.fields.length, tree.fields.length);
  back.fields.forEach((f, i) => {
    const want = tree.fields[i]!;
    assert.equal(f.id, want.id);
    assert.equal(f.value.kind, want.value.kind);
    assert.deepEqual(
      (f.value as { value: unknown }).value,
      (want.value as { value: unknown }).value,
    );
  });
  assert.deepEqual(encodeCompactStruct(back), encoded);
  // -2^63 and 2^63-1 take ten bytes, the longest 64-bit varint.
  assert.deepEqual(
    [...encodeCompactStruct(struct([1, { kind: "i64", value: 2n ** 63n - 1n }]))],
    [0x16, 0xfe, ...Array(8).fill(0xff), 0x01, 0x00],
  );
  // A NaN payload survives decoding and re-encoding.
  const withNan = Uint8Array.of(0x17, ...nan, 0x00);
  const nanTree = decodeCompactStruct(withNan);
  assert.ok(Number.isNaN((nanTree.fields[0]!.value as { value: number }).value));
  assert.deepEqual(encodeCompactStruct(nanTree), withNan);
});

Deno.test("The compact codec refuses truncated, trailing, unknown-type and oversized input", () => {
  const refused = (bytes: number[], detail: RegExp) =>
    assert.throws(
      () => decodeCompactStruct(Uint8Array.from(bytes)),
      (e: unknown) =>
        e instanceof PermanentError && e.code === "format.parquet_footer_invalid" &&
        detail.test(e.message),
    );
  refused([0x15], /truncated/);
  refused([0x18, 0x05, 0x61], /overruns/);
  refused([0x15, 0x02, 0x00, 0x00], /1 bytes follow/);
  refused([0x1e, 0x00], /unknown compact type 14/);
  refused([0x19, 0xf5, 0xff, 0xff, 0xff, 0xff, 0x0f], /list of 4294967295 overruns/);
  refused([0x15, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], /too long/);
  refused(Array(200).fill(0x1c), /nesting deeper/);
  // Skipped (raw) fields are bounds-checked the same way.
  for (
    const bytes of [[0x18, 0x05, 0x61], [0x1e, 0x00], [0x1c, 0x15], [0x16, ...Array(11).fill(0xff)]]
  ) {
    assert.throws(
      () => decodeCompactStruct(Uint8Array.from(bytes), { only: [] }),
      (e: unknown) => e instanceof PermanentError && e.code === "format.parquet_footer_invalid",
    );
  }
});

/** Column set of the real-footer tests: several types, NULLs, a list, statistics. */
function sampleBatch(n = 900) {
  const at = <T>(f: (i: number) => T) =>
    Array.from({ length: n }, (_, i) => (i % 11 === 3 ? null : f(i)));
  return batchOf([
    int64Col("id", Array.from({ length: n }, (_, i) => BigInt(i))),
    utf8Col("name", at((i) => `name ${i}`)),
    uuidCol("u", at((i) => `${i.toString(16).padStart(8, "0")}-0000-4000-8000-000000000000`)),
    jsonCol("j", at((i) => `{"i":${i}}`)),
    decimalCol("amount", { precision: 12, scale: 2 }, at((i) => BigInt(i * 101))),
    timestampCol("at", "UTC", at((i) => BigInt(i) * 1_000_000n)),
    int32ListCol("tags", at((i) => [i, i + 1])),
  ]);
}

/** The batch with every `ARROW:extension:name` removed, so rivet leaves the footer as written. */
function withoutExtensions(batch: RecordBatch): RecordBatch {
  const fields = batch.schema.fields.map((f) =>
    new Field(
      f.name,
      f.type,
      f.nullable,
      new Map([...f.metadata].filter(([k]) => k !== "ARROW:extension:name")),
    )
  );
  return new RecordBatch(new Schema(fields), batch.data);
}

async function writeFile(batch: RecordBatch): Promise<Uint8Array> {
  const format = await createParquetFormat({
    kind: "parquet",
    compression: "snappy",
    parquet: { rowGroupStrategy: "fixed_rows", rowGroupRows: 250, targetRowGroupMb: 1 },
  });
  const mem = memorySink();
  const encoder = format.createEncoder(batch.schema, mem.sink);
  await encoder.write(batch);
  await encoder.close();
  return mem.bytes();
}

function footerOf(file: Uint8Array): Uint8Array {
  const length = new DataView(file.buffer, file.byteOffset).getUint32(file.length - 8, true);
  return file.subarray(file.length - 8 - length, file.length - 8);
}

function schemaElement(tree: ThriftStruct, name: string): ThriftStruct {
  const list = tree.fields.find((f) => f.id === 2)!.value as { elements: ThriftStruct[] };
  return list.elements.find((el) => {
    const v = el.fields.find((f) => f.id === 4)?.value;
    return v?.kind === "binary" && new TextDecoder().decode(v.value) === name;
  })!;
}

Deno.test("A real parquet-wasm footer decodes and re-encodes byte for byte", async () => {
  for (const batch of [withoutExtensions(sampleBatch()), sampleBatch()]) {
    const footer = footerOf(await writeFile(batch));
    const tree = decodeCompactStruct(footer);
    // FileMetaData: version, schema, num_rows, row_groups (4 of 250 rows), key/value metadata.
    assert.deepEqual(tree.fields.find((f) => f.id === 3)!.value, { kind: "i64", value: 900n });
    const groups = tree.fields.find((f) => f.id === 4)!.value as { elements: unknown[] };
    assert.equal(groups.elements.length, 4);
    assert.deepEqual(encodeCompactStruct(tree, footer.length), footer);
  }
});

Deno.test("rewriteFooterLogicalTypes sets UUID and JSON and changes nothing else", async () => {
  const footer = footerOf(await writeFile(withoutExtensions(sampleBatch())));
  const columns = new Map([["u", "uuid"], ["j", "json"]] as const);
  const rewritten = rewriteFooterLogicalTypes(footer, columns);
  const before = decodeCompactStruct(footer);
  const after = decodeCompactStruct(rewritten);
  const u = schemaElement(after, "u");
  const j = schemaElement(after, "j");
  const emptyUnion = (id: number) => struct([id, struct()]);
  assert.deepEqual(u.fields.find((f) => f.id === 10)?.value, emptyUnion(14));
  assert.equal(u.fields.find((f) => f.id === 6), undefined);
  assert.deepEqual(j.fields.find((f) => f.id === 10)?.value, emptyUnion(12));
  assert.deepEqual(j.fields.find((f) => f.id === 6)?.value, i32(19));
  // Fields stay in id order, so the re-encoding is canonical.
  for (const el of [u, j]) {
    assert.deepEqual(
      el.fields.map((f) => f.id),
      [...el.fields.map((f) => f.id)].sort((a, b) => a - b),
    );
  }
  // Take the edits out again: the rest is the original footer, byte for byte.
  assert.deepEqual(schemaElement(before, "j").fields.find((f) => f.id === 6)?.value, i32(0));
  for (const name of ["u", "j"]) {
    const el = schemaElement(after, name);
    const original = schemaElement(before, name);
    el.fields = el.fields.filter((f) => f.id !== 6 && f.id !== 10);
    el.fields.push(...original.fields.filter((f) => f.id === 6 || f.id === 10));
    el.fields.sort((a, b) => a.id - b.id);
  }
  assert.deepEqual(encodeCompactStruct(after), footer);
  // An independent reader sees the new types.
  const file = new Uint8Array(rewritten.length + 12);
  file.set(te.encode("PAR1"));
  file.set(rewritten, 4);
  new DataView(file.buffer).setUint32(rewritten.length + 4, rewritten.length, true);
  file.set(te.encode("PAR1"), rewritten.length + 8);
  const meta: Meta = parquetMetadata(file.buffer);
  const byName = Object.fromEntries(meta.schema.map((e: Meta) => [e.name, e]));
  assert.deepEqual(byName.u.logical_type, { type: "UUID" });
  assert.equal(byName.u.type_length, 16);
  assert.deepEqual(byName.j.logical_type, { type: "JSON" });
  assert.equal(byName.j.converted_type, "JSON");
  assert.deepEqual(byName.name.logical_type, { type: "STRING" });
  assert.equal(Number(meta.num_rows), 900);
});

Deno.test("rewriteFooterLogicalTypes refuses columns that are missing, nested or of the wrong type", async () => {
  const footer = footerOf(await writeFile(withoutExtensions(sampleBatch())));
  assert.equal(rewriteFooterLogicalTypes(footer, new Map()), footer);
  const refused = (columns: Map<string, "uuid" | "json">, detail: RegExp) =>
    assert.throws(
      () => rewriteFooterLogicalTypes(footer, columns),
      (e: unknown) =>
        e instanceof PermanentError && e.code === "format.parquet_footer_invalid" &&
        detail.test(e.message),
    );
  refused(new Map([["nope", "uuid"]]), /no top-level leaf column named 'nope'/);
  // `item` is the list's leaf, not a top-level column; `tags` is a group.
  refused(new Map([["item", "json"]]), /'item'/);
  refused(new Map([["tags", "json"]]), /'tags'/);
  refused(new Map([["name", "uuid"]]), /'name' is not FIXED_LEN_BYTE_ARRAY\(16\)/);
  refused(new Map([["id", "json"]]), /'id' is not BYTE_ARRAY/);
});

Deno.test("rewriteFooterLogicalTypes annotates the elements of a uuid list (uuid_list)", async () => {
  const footer = footerOf(await writeFile(withoutExtensions(sampleBatch())));
  // `tags` is a list of int32 in the sample: the leaf is refused as not FIXED_LEN_BYTE_ARRAY(16),
  // and a top-level leaf is not a list.
  const refused = (name: string, detail: RegExp) =>
    assert.throws(
      () => rewriteFooterLogicalTypes(footer, new Map([[name, "uuid_list"]])),
      (e: unknown) => e instanceof PermanentError && detail.test(e.message),
    );
  refused("tags", /'tags' is not FIXED_LEN_BYTE_ARRAY\(16\)/);
  refused("u", /no top-level leaf column named 'u'/);
  // Written by the format, a uuid[] column's elements come out UUID-annotated, values intact.
  const a = "00112233-4455-6677-8899-aabbccddeeff";
  const b = "ffffffff-ffff-4fff-bfff-ffffffffffff";
  const file = await writeFile(
    batchOf([int64Col("id", [1n, 2n, 3n]), uuidListCol("us", [[a, null, b], null, []])]),
  );
  const meta: Meta = parquetMetadata(file.buffer as ArrayBuffer);
  const item = meta.schema.find((e: Meta) => e.name === "item");
  assert.deepEqual(item.logical_type, { type: "UUID" });
  assert.equal(item.converted_type, undefined);
  const rows = await parquetReadObjects({
    file: file.buffer as ArrayBuffer,
    // deno-lint-ignore no-explicit-any
    parsers: exactParsers as any,
    compressors,
  });
  assert.deepEqual(rows.map((r) => r.us), [[a, null, b], null, []]);
});

Deno.test("rewriteParquetTail gives the same bytes however the tail is chunked", async () => {
  const file = await writeFile(withoutExtensions(sampleBatch()));
  const footer = footerOf(file);
  const columns = new Map([["u", "uuid"], ["j", "json"]] as const);
  const newFooter = rewriteFooterLogicalTypes(footer, columns);
  const start = file.length - 8 - footer.length;
  const concat = (chunks: Uint8Array[]) => {
    const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
    let o = 0;
    for (const c of chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  };
  const expected = concat([
    file.subarray(0, start),
    newFooter,
    Uint8Array.of(...new Uint8Array(Uint32Array.of(newFooter.length).buffer), 80, 65, 82, 49),
  ]);
  const splits: Uint8Array[][] = [
    [file],
    [file.subarray(0, start), file.subarray(start)],
    [file.subarray(0, start + 5), file.subarray(start + 5, file.length - 3), file.subarray(-3)],
    Array.from({ length: 40 }, (_, i) => file.subarray(file.length - 40 + i, file.length - 39 + i))
      .reduce((acc, c) => [...acc, c], [file.subarray(0, file.length - 40)]),
  ];
  for (const chunks of splits) {
    const out = rewriteParquetTail(chunks, columns);
    assert.deepEqual(concat(out), expected);
    // Bytes before the footer are passed on as views, not copies.
    assert.equal(out[0]!.buffer, file.buffer);
  }
  // Chunk by chunk down to single bytes across the footer.
  const bytewise = [
    file.subarray(0, start - 2),
    ...Array.from(file.subarray(start - 2), (b) => Uint8Array.of(b)),
  ];
  assert.deepEqual(concat(rewriteParquetTail(bytewise, columns)), expected);
});

Deno.test("rewriteParquetTail refuses a tail without the whole footer or the magic", async () => {
  const file = await writeFile(withoutExtensions(sampleBatch()));
  const columns = new Map([["u", "uuid"]] as const);
  const refused = (chunks: Uint8Array[], detail: RegExp) =>
    assert.throws(
      () => rewriteParquetTail(chunks, columns),
      (e: unknown) =>
        e instanceof PermanentError && e.code === "format.parquet_footer_invalid" &&
        detail.test(e.message),
    );
  refused([file.subarray(-100)], /starts before the 100 held bytes/);
  refused([file.subarray(0, -1)], /magic/);
  refused([], /magic/);
});
