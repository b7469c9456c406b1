import assert from "node:assert/strict";
import {
  DateMillisecond,
  Decimal,
  Field,
  FixedSizeBinary,
  Int32,
  Int8,
  List,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  TimeNanosecond,
  TimestampNanosecond,
  Uint32,
  Utf8,
} from "../core/arrow.ts";
import { ConfigError, PermanentError } from "../core/errors.ts";
import type { FormatSpec } from "../core/spec.ts";
import {
  batchOf,
  binaryCol,
  boolCol,
  dateCol,
  days,
  decimalCol,
  float32Col,
  float64Col,
  int16Col,
  int32Col,
  int64Col,
  jsonCol,
  memorySink,
  micros,
  timeCol,
  timestampCol,
  uint64Col,
  utf8Col,
  uuidCol,
} from "./_test_batches.ts";
import { createCsvFormat, CSV_CHUNK_BYTES } from "./csv.ts";

const CSV: FormatSpec = { kind: "csv", compression: "none" };
const fixtures = new URL("../../tests/fixtures/csv/", import.meta.url);

async function golden(name: string): Promise<Uint8Array> {
  return await Deno.readFile(new URL(name, fixtures));
}

async function encode(batches: RecordBatch[], schema = batches[0]!.schema) {
  const mem = memorySink();
  const encoder = createCsvFormat(CSV).createEncoder(schema, mem.sink);
  for (const b of batches) await encoder.write(b);
  await encoder.close();
  return { bytes: mem.bytes(), encoder, chunks: mem.chunks };
}

function assertBytes(actual: Uint8Array, expected: Uint8Array): void {
  const dec = new TextDecoder();
  assert.equal(dec.decode(actual), dec.decode(expected));
  assert.deepEqual(actual, expected);
}

const hex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));

Deno.test("CSV renders every supported type byte for byte like the golden file", async () => {
  const batch = batchOf([
    boolCol("b", [true, false, null, true]),
    int16Col("i16", [-32768, 32767, null, 0]),
    int32Col("i32", [-2147483648, 2147483647, null, 0]),
    int64Col("i64", [-(2n ** 63n), 2n ** 63n - 1n, null, -9007199254740993n]),
    uint64Col("u64", [0n, 2n ** 64n - 1n, null, 9007199254740993n]),
    float32Col("f32", [1.5, -0.1, null, NaN]),
    float64Col("f64", [0.1, 1e21, null, -Infinity]),
    decimalCol("dec", { precision: 12, scale: 2 }, [-5n, 1234500n, null, 0n]),
    decimalCol("dec38", { precision: 38, scale: 0 }, [
      10n ** 38n - 1n,
      -(10n ** 38n - 1n),
      null,
      0n,
    ]),
    utf8Col("txt", ["plain", "", null, "naïve ☃ 日本"]),
    binaryCol("bin", [hex("00ff10"), new Uint8Array(0), null, hex("deadbeef")]),
    uuidCol("uid", [
      "123e4567-e89b-12d3-a456-426614174000",
      "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
      null,
      "00000000-0000-0000-0000-000000000000",
    ]),
    dateCol("d", [days("0001-01-01"), days("9999-12-31"), null, -1]),
    timeCol("t", [0n, 86399999999n, null, 45296789012n]),
    timestampCol("ts", null, [
      micros("0001-01-01T00:00:00"),
      micros("9999-12-31T23:59:59", 999999),
      null,
      -1n,
    ]),
    timestampCol("tstz", "UTC", [
      0n,
      micros("2024-02-29T12:34:56", 1),
      null,
      micros("2000-01-01T00:00:00"),
    ]),
    jsonCol("js", ['{"a":1,"b":"x"}', "[]", null, null]),
  ]);
  const { bytes, encoder } = await encode([batch]);
  assertBytes(bytes, await golden("types.csv"));
  assert.equal(encoder.rowsWritten, 4);
  assert.equal(encoder.bytesWritten, bytes.length);
});

Deno.test("CSV prints floats like Rust's Display: no exponent, NaN, inf, -0", async () => {
  const f64 = [
    0,
    -0,
    1,
    0.1,
    1e21,
    1e-7,
    123456789012345680000,
    Number.MAX_VALUE,
    5e-324,
    Infinity,
    -1.5e-10,
    123.456,
    null,
    -1e-7,
  ];
  const f32 = [
    0,
    -0,
    1,
    0.1,
    1e10,
    1e-7,
    16777216,
    3.4028234663852886e38,
    1.401298464324817e-45,
    Infinity,
    NaN,
    3.14159,
    null,
    -Infinity,
  ];
  const { bytes } = await encode([batchOf([float64Col("f64", f64), float32Col("f32", f32)])]);
  assertBytes(bytes, await golden("floats.csv"));
});

Deno.test("CSV quotes only cells and header names containing comma, quote, CR or LF", async () => {
  const schema = batchOf([int32Col("id", [1]), utf8Col("a,b", [""]), utf8Col('q"x', [""])]);
  const batch = batchOf([
    int32Col("id", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    utf8Col("a,b", [
      "plain",
      "has,comma",
      'has "quote"',
      "line\nbreak",
      "cr\rx",
      "crlf\r\nx",
      " spaces ",
      "",
      '"',
      "unicode ✓ é",
    ]),
    utf8Col('q"x', [null, "", "x", null, null, null, null, null, null, ""]),
  ]);
  const { bytes } = await encode([batch], schema.schema);
  assertBytes(bytes, await golden("quoting.csv"));
});

Deno.test("CSV renders dates, times and timestamps exactly from years 1 to 10000 and BC", async () => {
  const dayUs = 86_400_000_000n;
  const y10000 = days("9999-12-31") + 1;
  const bc2 = days("-0001-01-01"); // astronomical year -1 = 2 BC
  const batch = batchOf([
    dateCol("d", [
      days("0001-01-01"),
      days("0999-12-31"),
      -1,
      0,
      days("2000-02-29"),
      days("9999-12-31"),
      y10000,
      days("0001-01-01") - 1,
      null,
    ]),
    timeCol("t", [0n, 1n, dayUs - 1n, 43_200_500_000n, dayUs, null, null, null, null]),
    timestampCol("ts", null, [
      micros("0001-01-01T00:00:00"),
      micros("0999-12-31T23:59:59", 999999),
      -1n,
      0n,
      micros("2000-02-29T23:59:59", 999999),
      micros("9999-12-31T23:59:59", 999999),
      BigInt(y10000) * dayUs,
      BigInt(bc2) * dayUs,
      null,
    ]),
    timestampCol("tstz", "UTC", [
      micros("0001-01-01T00:00:00", 1),
      micros("1000-01-01T00:00:00"),
      -1_000_000n,
      1n,
      2_147_483_648_000_000n,
      micros("9999-12-31T23:59:59", 999999),
      null,
      null,
      null,
    ]),
  ]);
  const { bytes } = await encode([batch]);
  assertBytes(bytes, await golden("temporal.csv"));
});

Deno.test("CSV renders decimals exactly with the scale applied, up to 38 digits", async () => {
  const max38 = 10n ** 38n - 1n;
  const batch = batchOf([
    decimalCol("d12_2", { precision: 12, scale: 2 }, [-5n, 0n, 1234500n, -110n, null]),
    decimalCol("d38_0", { precision: 38, scale: 0 }, [max38, -max38, 0n, -1n, null]),
    decimalCol("d38_38", { precision: 38, scale: 38 }, [1n, -max38, 0n, null, null]),
    decimalCol("d18_6", { precision: 18, scale: 6 }, [
      2n ** 53n - 1n,
      2n ** 53n + 1n,
      -(2n ** 53n + 1n),
      123456789012345678n,
      null,
    ]),
    decimalCol("d5_5", { precision: 5, scale: 5 }, [12345n, -1n, 99999n, null, null]),
    decimalCol("d20_4", { precision: 20, scale: 4 }, [2n ** 60n, -(2n ** 60n), 1n, -10000n, null]),
  ]);
  const { bytes } = await encode([batch]);
  assertBytes(bytes, await golden("decimals.csv"));
});

Deno.test("CSV writes only the header for a file without rows", async () => {
  const schema = batchOf([int32Col("id", []), utf8Col("name", [])]).schema;
  const mem = memorySink();
  const encoder = createCsvFormat(CSV).createEncoder(schema, mem.sink);
  await encoder.close();
  assertBytes(mem.bytes(), await golden("empty.csv"));
  assert.equal(encoder.rowsWritten, 0);
});

Deno.test("CSV output of many batches equals the output of one batch", async () => {
  const n = 5000;
  const ids = Array.from({ length: n }, (_, i) => BigInt(i * 7919 - 20000));
  const names = Array.from({ length: n }, (_, i) => i % 13 === 0 ? null : `name ${i},"${i % 3}"`);
  const whole = batchOf([int64Col("id", ids), utf8Col("name", names)]);
  const one = await encode([whole]);
  const parts: RecordBatch[] = [];
  for (let s = 0; s < n; s += 777) parts.push(whole.slice(s, Math.min(n, s + 777)));
  const many = await encode(parts);
  assert.deepEqual(many.bytes, one.bytes);
  assert.equal(many.encoder.rowsWritten, n);
  assert.equal(many.encoder.bytesWritten, one.bytes.length);
});

Deno.test("CSV reads sliced batches (non-zero offsets) correctly, including booleans", async () => {
  const whole = batchOf([
    boolCol("b", [true, false, null, true, false, true, null, false, true, true]),
    int32Col("n", [0, 1, 2, null, 4, 5, 6, 7, 8, 9]),
  ]);
  const { bytes } = await encode([whole.slice(3, 9)]);
  assert.equal(
    new TextDecoder().decode(bytes),
    "b,n\ntrue,\nfalse,4\ntrue,5\n,6\nfalse,7\ntrue,8\n",
  );
});

Deno.test("CSV hands large batches to the sink in chunks of about 1 MB", async () => {
  const n = 100_000;
  const text = Array.from({ length: n }, (_, i) => `row number ${i} with some padding text`);
  const { chunks, bytes, encoder } = await encode([batchOf([utf8Col("t", text)])]);
  assert.ok(chunks.length >= 3, `expected several chunks, got ${chunks.length}`);
  for (const c of chunks.slice(0, -1)) assert.ok(c.length >= CSV_CHUNK_BYTES);
  assert.ok(chunks.every((c) => c.length < CSV_CHUNK_BYTES + 65536));
  assert.equal(encoder.bytesWritten, bytes.length);
  const lines = new TextDecoder().decode(bytes).split("\n");
  assert.equal(lines.length, n + 2);
  assert.equal(lines[n], `row number ${n - 1} with some padding text`);
});

Deno.test("CSV grows its buffer for a single value larger than a chunk", async () => {
  const big = "x".repeat(3 * CSV_CHUNK_BYTES) + ",";
  const { bytes } = await encode([batchOf([utf8Col("t", [big, "y"])])]);
  assert.equal(new TextDecoder().decode(bytes), `t\n"${big}"\ny\n`);
});

Deno.test("CSV refuses types it cannot hold, naming the column", () => {
  const cases: [string, Field][] = [
    ["tags", new Field("tags", new List(new Field("item", new Int32(), true)), true)],
    ["wide", new Field("wide", new Decimal(2, 50, 256), true)],
    ["fsb8", new Field("fsb8", new FixedSizeBinary(8), true)],
    ["d64", new Field("d64", new DateMillisecond(), true)],
    ["tns", new Field("tns", new TimeNanosecond(), true)],
    ["tsns", new Field("tsns", new TimestampNanosecond("UTC"), true)],
    ["tiny", new Field("tiny", new Int8(), true)],
    ["u32", new Field("u32", new Uint32(), true)],
  ];
  for (const [name, field] of cases) {
    const schema = new Schema([new Field("ok", new Utf8(), true), field]);
    assert.throws(
      () => createCsvFormat(CSV).createEncoder(schema, memorySink().sink),
      (e: unknown) =>
        e instanceof ConfigError && e.code === "format.csv_unsupported_type" &&
        e.message.includes(`'${name}'`) && !e.message.endsWith("."),
      name,
    );
  }
});

Deno.test("CSV refuses a compression codec", () => {
  assert.throws(
    () => createCsvFormat({ kind: "csv", compression: "gzip" }),
    (e: unknown) => e instanceof ConfigError && e.code === "format.csv_compression",
  );
});

Deno.test("CSV rejects a batch whose columns differ from the file schema", async () => {
  const schema = batchOf([int32Col("id", [1])]).schema;
  const encoder = createCsvFormat(CSV).createEncoder(schema, memorySink().sink);
  const other = batchOf([utf8Col("id", ["1"])]);
  await assert.rejects(
    encoder.write(other),
    (e: unknown) => e instanceof PermanentError && e.code === "format.schema_mismatch",
  );
});

Deno.test("CSV abort aborts the sink and close after abort is refused", async () => {
  let aborted: unknown;
  const sink = new WritableStream<Uint8Array>({ abort: (r) => void (aborted = r) });
  const schema = batchOf([int32Col("id", [1])]).schema;
  const encoder = createCsvFormat(CSV).createEncoder(schema, sink);
  await encoder.write(batchOf([int32Col("id", [1, 2])]));
  await encoder.abort("stop");
  assert.equal(aborted, "stop");
  await assert.rejects(encoder.close(), (e: unknown) => e instanceof PermanentError);
});

Deno.test("CSV surfaces a sink failure from close", async () => {
  const sink = new WritableStream<Uint8Array>({
    write: () => Promise.reject(new Error("disk full")),
  });
  const schema = batchOf([int32Col("id", [1])]).schema;
  const encoder = createCsvFormat(CSV).createEncoder(schema, sink);
  await encoder.write(batchOf([int32Col("id", [1])])).catch(() => {});
  await assert.rejects(encoder.close(), /disk full/);
});

// A zero-length Struct child set is what the source emits for an empty result set.
Deno.test("CSV accepts a zero-row batch and writes only the header", async () => {
  const schema = new Schema([new Field("id", new Int32(), true)]);
  const empty = new RecordBatch(
    schema,
    makeData({
      type: new Struct(schema.fields),
      length: 0,
      nullCount: 0,
      children: [makeData({ type: new Int32(), length: 0 })],
    }),
  );
  const { bytes } = await encode([empty], schema);
  assert.equal(new TextDecoder().decode(bytes), "id\n");
});

Deno.test("CSV quotes long cells at any byte offset exactly like a byte-by-byte writer", async () => {
  // Cells longer than the short-copy threshold, specials at every position mod 4, and a column
  // whose value bytes start at an unaligned offset (sliced out of a larger buffer).
  const cells: string[] = [];
  for (let i = 0; i < 64; i++) {
    const body = "x".repeat(40 + i);
    const at = i % body.length;
    const special = [",", '"', "\n", "\r", "", '""'][i % 6]!;
    cells.push(body.slice(0, at) + special + body.slice(at) + (i % 5 === 0 ? '"' : ""));
  }
  const expected = "t\n" +
    cells.map((c) => /[",\n\r]/.test(c) ? `"${c.replaceAll('"', '""')}"` : c).join("\n") + "\n";
  const batch = batchOf([utf8Col("t", ["pad", ...cells])]).slice(1);
  const { bytes } = await encode([batch]);
  assert.equal(new TextDecoder().decode(bytes), expected);
});
