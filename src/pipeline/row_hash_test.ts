import assert from "node:assert/strict";
import {
  Binary,
  Bool,
  type Data,
  DateDay,
  Decimal,
  Field,
  FixedSizeBinary,
  Float64,
  Int32,
  Int64,
  List,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  TimeMicrosecond,
  TimestampMicrosecond,
  TimestampNanosecond,
  Uint64,
  Utf8,
} from "../core/arrow.ts";
import { createRowHasher, renderColumnData, renderDecimal } from "./row_hash.ts";
import { xxh3Hex } from "../_util/hash.ts";

const text = new TextDecoder();

/** The cells of a rendered column as strings (NULL as "\0"). */
function cells(data: Data, field?: Field): string[] {
  const r = renderColumnData(data, field);
  return Array.from(
    { length: data.length },
    (_, i) => text.decode(r.bytes.subarray(r.offsets[i]!, r.offsets[i + 1]!)),
  );
}

/** Validity bitmap with the given rows NULL. */
function nulls(length: number, rows: number[]): Uint8Array {
  const bits = new Uint8Array((length + 7) >> 3).fill(0xff);
  for (const i of rows) bits[i >> 3]! &= ~(1 << (i & 7));
  return bits;
}

function utf8Data(values: string[]): Data {
  const bytes = values.map((v) => new TextEncoder().encode(v));
  const offsets = new Int32Array(values.length + 1);
  bytes.forEach((b, i) => (offsets[i + 1] = offsets[i]! + b.length));
  const all = new Uint8Array(offsets[values.length]!);
  bytes.forEach((b, i) => all.set(b, offsets[i]!));
  return makeData({ type: new Utf8(), length: values.length, valueOffsets: offsets, data: all });
}

Deno.test("renderColumnData: integers, floats and decimals by value", () => {
  const ints = makeData({
    type: new Int32(),
    length: 3,
    data: Int32Array.of(7, -12, 0),
    nullBitmap: nulls(3, [2]),
  });
  assert.deepEqual(cells(ints), ["7", "-12", "\0"]);
  const big = makeData({
    type: new Int64(),
    length: 2,
    data: BigInt64Array.of(-9223372036854775808n, 7n),
  });
  assert.deepEqual(cells(big), ["-9223372036854775808", "7"]);
  const ubig = makeData({ type: new Uint64(), length: 1, data: BigUint64Array.of(2n ** 64n - 1n) });
  assert.deepEqual(cells(ubig), ["18446744073709551615"]);
  const floats = makeData({
    type: new Float64(),
    length: 7,
    data: Float64Array.of(1.5, 1e21, 1.5e-7, NaN, -0, -Infinity, 0.1),
  });
  assert.deepEqual(cells(floats), ["1.5", "1e+21", "1.5e-7", "NaN", "0", "-Infinity", "0.1"]);
  // Decimal128: four little-endian 32-bit words per value.
  const words = new Uint32Array(12);
  const put = (i: number, v: bigint) => {
    const u = BigInt.asUintN(128, v);
    for (let w = 0; w < 4; w++) words[i * 4 + w] = Number((u >> BigInt(32 * w)) & 0xffffffffn);
  };
  put(0, 1250n);
  put(1, -5n);
  put(2, 10n ** 30n);
  const dec = makeData({ type: new Decimal(2, 38, 128), length: 3, data: words });
  assert.deepEqual(cells(dec), ["12.50", "-0.05", "10000000000000000000000000000.00"]);
  assert.equal(renderDecimal(42n, 0), "42");
  assert.equal(renderDecimal(-7n, 3), "-0.007");
});

Deno.test("renderColumnData: dates, times and timestamps in UTC", () => {
  const days = makeData({
    type: new DateDay(),
    length: 6,
    data: Int32Array.of(19782, -1, 0, 2932896, -719162, 2932897),
  });
  assert.deepEqual(cells(days), [
    "2024-02-29",
    "1969-12-31",
    "1970-01-01",
    "9999-12-31",
    "0001-01-01",
    "+10000-01-01",
  ]);
  const ts = makeData({
    type: new TimestampMicrosecond("UTC"),
    length: 4,
    data: BigInt64Array.of(1709209496789012n, -1n, 253402300799999999n, 1709164800000000n),
  });
  assert.deepEqual(cells(ts), [
    "2024-02-29T12:24:56.789012Z",
    "1969-12-31T23:59:59.999999Z",
    // Beyond 2^53 µs: the exact (BigInt) path.
    "9999-12-31T23:59:59.999999Z",
    "2024-02-29T00:00:00.000000Z",
  ]);
  // The zone label does not change the rendering: the stored instant is rendered in UTC.
  const naive = makeData({
    type: new TimestampMicrosecond(),
    length: 1,
    data: BigInt64Array.of(1709209496789012n),
  });
  assert.deepEqual(cells(naive), ["2024-02-29T12:24:56.789012Z"]);
  const ns = makeData({
    type: new TimestampNanosecond("UTC"),
    length: 1,
    data: BigInt64Array.of(1n),
  });
  assert.deepEqual(cells(ns), ["1970-01-01T00:00:00.000000001Z"]);
  const time = makeData({
    type: new TimeMicrosecond(),
    length: 1,
    data: BigInt64Array.of(45296789012n),
  });
  assert.deepEqual(cells(time), ["12:34:56.789012"]);
});

Deno.test("renderColumnData: text, binary, uuid, booleans and lists", () => {
  assert.deepEqual(cells(utf8Data(["widget", "ünï ✓", ""])), ["widget", "ünï ✓", ""]);
  const bin = makeData({
    type: new Binary(),
    length: 1,
    valueOffsets: Int32Array.of(0, 2),
    data: Uint8Array.of(0xde, 0xad),
  });
  const r = renderColumnData(bin, undefined);
  assert.deepEqual([...r.bytes], [0xde, 0xad]);
  const uuidBytes = Uint8Array.from(
    "a0eebc999c0b4ef8bb6d6bb9bd380a11".match(/../g)!.map((h) => parseInt(h, 16)),
  );
  const uuidField = new Field(
    "u",
    new FixedSizeBinary(16),
    true,
    new Map([["rivet.logical_type", "uuid"]]),
  );
  const uuid = makeData({ type: new FixedSizeBinary(16), length: 1, data: uuidBytes });
  assert.deepEqual(cells(uuid, uuidField), ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]);
  const bools = makeData({
    type: new Bool(),
    length: 3,
    data: Uint8Array.of(0b001),
    nullBitmap: nulls(3, [2]),
  });
  assert.deepEqual(cells(bools), ["true", "false", "\0"]);
  const child = makeData({
    type: new Int32(),
    length: 3,
    data: Int32Array.of(1, 2, 0),
    nullBitmap: nulls(3, [2]),
  });
  const list = makeData({
    type: new List(new Field("item", new Int32(), true)),
    length: 2,
    valueOffsets: Int32Array.of(0, 3, 3),
    child,
  });
  assert.deepEqual(cells(list), ['["1","2",null]', "[]"]);
});

function batchOf(fields: Field[], children: Data[]): RecordBatch {
  const rows = children[0]!.length;
  return new RecordBatch(
    new Schema(fields),
    makeData({ type: new Struct(fields), length: rows, nullCount: 0, children }),
  );
}

Deno.test("row hash: xxh3-64 of the cells each followed by 0x1F; equal values hash alike", async () => {
  const hash = await createRowHasher();
  const a = batchOf(
    [new Field("id", new Int32()), new Field("name", new Utf8(), true)],
    [
      makeData({ type: new Int32(), length: 2, data: Int32Array.of(1, 2) }),
      (() => {
        const d = utf8Data(["widget", ""]);
        return makeData({
          type: new Utf8(),
          length: 2,
          valueOffsets: d.valueOffsets,
          data: d.values,
          nullBitmap: nulls(2, [1]),
        });
      })(),
    ],
  );
  const hashes = hash(a);
  const expect0 = BigInt.asIntN(
    64,
    BigInt(`0x${await xxh3Hex(new TextEncoder().encode("1\x1fwidget\x1f"))}`),
  );
  assert.equal(hashes[0], expect0);
  const expect1 = BigInt.asIntN(
    64,
    BigInt(`0x${await xxh3Hex(Uint8Array.of(0x32, 0x1f, 0, 0x1f))}`),
  );
  assert.equal(hashes[1], expect1, "NULL is one 0x00 byte");
  // An Int64 column with the same values gives the same hashes.
  const b = batchOf(
    [new Field("id", new Int64()), new Field("name", new Utf8(), true)],
    [
      makeData({ type: new Int64(), length: 2, data: BigInt64Array.of(1n, 2n) }),
      a.data.children[1]!,
    ],
  );
  assert.deepEqual([...hash(b)], [...hashes]);
  // A sliced batch (non-zero Data offset) hashes its own rows.
  assert.deepEqual([...hash(a.slice(1, 2))], [hashes[1]]);
});

Deno.test("row hash throughput on a 100k-row batch (printed)", async () => {
  const rows = 100_000;
  const ids = Int32Array.from({ length: rows }, (_, i) => i);
  const amounts = Float64Array.from({ length: rows }, (_, i) => i / 7);
  const stamps = BigInt64Array.from({ length: rows }, (_, i) => 1709209496789012n + BigInt(i));
  const names = utf8Data(Array.from({ length: rows }, (_, i) => `customer name ${i}`));
  const batch = batchOf(
    [
      new Field("id", new Int32()),
      new Field("name", new Utf8()),
      new Field("amount", new Float64()),
      new Field("at", new TimestampMicrosecond("UTC")),
    ],
    [
      makeData({ type: new Int32(), length: rows, data: ids }),
      names,
      makeData({ type: new Float64(), length: rows, data: amounts }),
      makeData({ type: new TimestampMicrosecond("UTC"), length: rows, data: stamps }),
    ],
  );
  const hash = await createRowHasher();
  hash(batch); // warm up
  const started = performance.now();
  const out = hash(batch);
  const seconds = (performance.now() - started) / 1000;
  assert.equal(out.length, rows);
  assert.equal(new Set(out).size, rows);
  console.log(`row hash: ${Math.round(rows / seconds)} rows/s (4 columns, ${rows} rows)`);
});
