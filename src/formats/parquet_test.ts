import assert from "node:assert/strict";
import { parquetMetadata, parquetReadObjects, parquetSchema } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import {
  Compression as WasmCompression,
  readParquet,
  Table as WasmTable,
  transformParquetStream,
  WriterPropertiesBuilder,
} from "parquet-wasm/esm";
import {
  Decimal,
  Field,
  RecordBatch,
  Schema,
  Table,
  tableFromIPC,
  tableToIPC,
  Utf8,
} from "../core/arrow.ts";
import { ConfigError, PermanentError } from "../core/errors.ts";
import type { Compression, FormatSpec, ParquetSpec } from "../core/spec.ts";
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
  int32ListCol,
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
import { decodeCompactStruct } from "./_parquet_footer.ts";
import {
  createParquetFormat,
  DEFAULT_ROW_GROUP_BYTES,
  estimateRowBytes,
  LIBRARY_DEFAULT_ROW_GROUP_ROWS,
  planRowGroups,
} from "./parquet.ts";

// deno-lint-ignore no-explicit-any
type Row = Record<string, any>;
// deno-lint-ignore no-explicit-any
type Meta = any;

const N = 1200;

/** Extremes first, then generated values with a NULL every 7th row. */
function sample<T>(extremes: readonly (T | null)[], gen: (i: number) => T): (T | null)[] {
  return Array.from(
    { length: N },
    (_, i) => i < extremes.length ? extremes[i]! : i % 7 === 0 ? null : gen(i),
  );
}

const hexBytes = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const max38 = 10n ** 38n - 1n;

/** Every column type the sources produce, with NULLs and extremes. */
function allTypes() {
  const values = {
    b: sample<boolean>([true, false, null], (i) => i % 3 === 0),
    i16: sample<number>([-32768, 32767, null, 0], (i) => (i * 37) % 32768 - 16000),
    i32: sample<number>([-2147483648, 2147483647, null], (i) => i * 1_000_003 - 600_000_000),
    i64: sample<bigint>(
      [-(2n ** 63n), 2n ** 63n - 1n, null, 0n, 9007199254740993n],
      (i) => BigInt(i) * 123456789012345n - 2n ** 60n,
    ),
    u64: sample<bigint>([0n, 2n ** 64n - 1n, null, 2n ** 63n], (i) => BigInt(i) * 99991n),
    f32: sample<number>(
      [NaN, Infinity, -Infinity, -0, null, 3.4028234663852886e38],
      (i) => Math.fround(i / 7),
    ),
    f64: sample<number>(
      [NaN, Infinity, -Infinity, -0, null, 5e-324, Number.MAX_VALUE],
      (i) => i * Math.PI * 1e10,
    ),
    dec12_2: sample<bigint>(
      [-5n, 0n, null, 999999999999n, -999999999999n],
      (i) => BigInt(i * 1234567 - 500000000),
    ),
    dec38_0: sample<bigint>([max38, -max38, null, 0n], (i) => BigInt(i) * 10n ** 30n + 7n),
    dec38_10: sample<bigint>([max38, -1n, null], (i) => -BigInt(i) * 10n ** 25n - 1n),
    dec5_2: sample<bigint>([99999n, -99999n, null], (i) => BigInt((i * 31) % 99999)),
    txt: sample<string>(
      ["", null, "naïve ☃ 日本 🎉", 'a,"b"\n', "x".repeat(5000)],
      (i) => `text ${i}`,
    ),
    js: sample<string>(['{"a":1}', null, "[]", '"str"'], (i) => `{"i":${i}}`),
    bin: sample<Uint8Array>(
      [new Uint8Array(0), null, hexBytes("00ff")],
      (i) => Uint8Array.from({ length: i % 40 }, (_, k) => (i + k) & 255),
    ),
    uid: sample<string>(
      ["00000000-0000-0000-0000-000000000000", null, "ffffffff-ffff-ffff-ffff-ffffffffffff"],
      (i) =>
        `${(i * 2654435761 >>> 0).toString(16).padStart(8, "0")}-0000-4000-8000-${
          i.toString(16).padStart(12, "0")
        }`,
    ),
    d: sample<number>([days("0001-01-01"), days("9999-12-31"), null, -1, 0], (i) => i * 97 - 50000),
    t: sample<bigint>(
      [0n, 86_399_999_999n, null, 86_400_000_000n],
      (i) => BigInt(i) * 71_999_999n % 86_400_000_000n,
    ),
    ts: sample<bigint>(
      [micros("0001-01-01T00:00:00"), micros("9999-12-31T23:59:59", 999999), null, -1n],
      (i) => BigInt(i) * 1_000_000_007n - 10n ** 12n,
    ),
    tstz: sample<bigint>(
      [micros("0001-01-01T00:00:00", 1), micros("9999-12-31T23:59:59", 999999), null, 0n],
      (i) => BigInt(i) * 86_400_000_001n,
    ),
    tags: sample<(number | null)[]>(
      [[], null, [1, null, 3], [-2147483648]],
      (i) => Array.from({ length: i % 5 }, (_, k) => k % 3 === 2 ? null : i * k),
    ),
  };
  const batch = batchOf([
    boolCol("b", values.b),
    int16Col("i16", values.i16),
    int32Col("i32", values.i32),
    int64Col("i64", values.i64),
    uint64Col("u64", values.u64),
    float32Col("f32", values.f32),
    float64Col("f64", values.f64),
    decimalCol("dec12_2", { precision: 12, scale: 2 }, values.dec12_2),
    decimalCol("dec38_0", { precision: 38, scale: 0 }, values.dec38_0),
    decimalCol("dec38_10", { precision: 38, scale: 10 }, values.dec38_10),
    decimalCol("dec5_2", { precision: 5, scale: 2 }, values.dec5_2),
    utf8Col("txt", values.txt),
    jsonCol("js", values.js),
    binaryCol("bin", values.bin),
    uuidCol("uid", values.uid),
    dateCol("d", values.d),
    timeCol("t", values.t),
    timestampCol("ts", null, values.ts),
    timestampCol("tstz", "UTC", values.tstz),
    int32ListCol("tags", values.tags),
  ]);
  return { values, batch };
}

/** Big-endian two's complement bytes (Parquet FLBA decimals) to a bigint. */
function beToBigInt(bytes: Uint8Array): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return BigInt.asIntN(bytes.length * 8, v);
}

/** What hyparquet should read back for each source value. */
function expected(values: ReturnType<typeof allTypes>["values"], row: number): Row {
  // UUID and JSON columns carry their logical types, so hyparquet gives hyphenated strings and
  // parsed JSON.
  const json = (s: string | null) => s === null ? null : JSON.parse(s);
  const v = <T>(a: readonly T[]) => a[row]!;
  return {
    b: v(values.b),
    i16: v(values.i16),
    i32: v(values.i32),
    i64: v(values.i64),
    u64: v(values.u64),
    f32: v(values.f32) === null ? null : Math.fround(v(values.f32)!),
    f64: v(values.f64),
    dec12_2: v(values.dec12_2),
    dec38_0: v(values.dec38_0),
    dec38_10: v(values.dec38_10),
    dec5_2: v(values.dec5_2),
    txt: v(values.txt),
    js: json(v(values.js)),
    bin: v(values.bin),
    uid: v(values.uid),
    d: v(values.d),
    t: v(values.t),
    ts: v(values.ts),
    tstz: v(values.tstz),
    tags: v(values.tags),
  };
}

async function writeParquet(
  batches: RecordBatch[],
  spec: Partial<FormatSpec> = {},
  schema = batches[0]!.schema,
) {
  const format = await createParquetFormat({ kind: "parquet", compression: "zstd", ...spec });
  const mem = memorySink();
  const encoder = format.createEncoder(schema, mem.sink);
  for (const b of batches) await encoder.write(b);
  await encoder.close();
  const bytes = mem.bytes();
  return {
    bytes,
    encoder,
    chunks: mem.chunks,
    metadata: parquetMetadata(bytes.buffer as ArrayBuffer) as Meta,
  };
}

/**
 * Reads every row with hyparquet, raw: decimals as unscaled integers (their logical annotation
 * is stripped from a copy of the metadata), timestamps as µs bigints, dates as day numbers.
 */
async function readRaw(bytes: Uint8Array, metadata: Meta): Promise<Row[]> {
  const raw = structuredClone(metadata);
  for (const el of raw.schema) {
    if (el.converted_type === "DECIMAL") {
      delete el.converted_type;
      delete el.logical_type;
    }
  }
  const rows = await parquetReadObjects({
    file: bytes.buffer as ArrayBuffer,
    metadata: raw,
    compressors,
    utf8: false,
    parsers: {
      timestampFromMicroseconds: (v: bigint) => v,
      dateFromDays: (d: number) => d,
    },
  }) as Row[];
  return rows.map((r) => ({
    ...r,
    dec12_2: r.dec12_2 === null ? null : BigInt(r.dec12_2),
    dec38_0: r.dec38_0 === null ? null : beToBigInt(r.dec38_0),
    dec38_10: r.dec38_10 === null ? null : beToBigInt(r.dec38_10),
    dec5_2: r.dec5_2 === null ? null : BigInt(r.dec5_2),
    u64: r.u64 === null ? null : BigInt.asUintN(64, r.u64),
  }));
}

function element(metadata: Meta, name: string): Meta {
  return metadata.schema.find((e: Meta) => e.name === name);
}

for (const compression of ["zstd", "snappy", "gzip", "lz4", "none"] satisfies Compression[]) {
  Deno.test(`Parquet with ${compression} round-trips every type value by value through hyparquet`, async () => {
    const { values, batch } = allTypes();
    const { bytes, metadata, encoder } = await writeParquet([batch], { compression });
    const codec =
      { zstd: "ZSTD", snappy: "SNAPPY", gzip: "GZIP", lz4: "LZ4_RAW", none: "UNCOMPRESSED" }[
        compression
      ];
    for (const col of metadata.row_groups[0].columns) assert.equal(col.meta_data.codec, codec);
    const rows = await readRaw(bytes, metadata);
    assert.equal(rows.length, N);
    for (let i = 0; i < N; i++) assert.deepEqual(rows[i], expected(values, i), `row ${i}`);
    assert.equal(encoder.rowsWritten, N);
    assert.equal(encoder.bytesWritten, bytes.length);
  });
}

Deno.test("Parquet footer says created_by rivet and carries the logical types", async () => {
  const { batch } = allTypes();
  const { metadata } = await writeParquet([batch]);
  assert.equal(metadata.created_by, "rivet");
  assert.equal(Number(metadata.num_rows), N);
  assert.deepEqual(element(metadata, "ts").logical_type, {
    type: "TIMESTAMP",
    isAdjustedToUTC: false,
    unit: "MICROS",
  });
  assert.deepEqual(element(metadata, "tstz").logical_type, {
    type: "TIMESTAMP",
    isAdjustedToUTC: true,
    unit: "MICROS",
  });
  assert.deepEqual(element(metadata, "dec12_2").logical_type, {
    type: "DECIMAL",
    precision: 12,
    scale: 2,
  });
  assert.equal(element(metadata, "dec38_10").type, "FIXED_LEN_BYTE_ARRAY");
  assert.deepEqual(element(metadata, "dec38_10").logical_type, {
    type: "DECIMAL",
    precision: 38,
    scale: 10,
  });
  assert.deepEqual(element(metadata, "d").logical_type, { type: "DATE" });
  assert.deepEqual(element(metadata, "t").logical_type, {
    type: "TIME",
    isAdjustedToUTC: false,
    unit: "MICROS",
  });
  assert.deepEqual(element(metadata, "txt").logical_type, { type: "STRING" });
  assert.deepEqual(element(metadata, "u64").logical_type, {
    type: "INTEGER",
    bitWidth: 64,
    isSigned: false,
  });
  assert.deepEqual(element(metadata, "tags").logical_type, { type: "LIST" });
  // Every source column is nullable.
  for (const name of Object.keys(expected(allTypes().values, 0))) {
    assert.equal(element(metadata, name).repetition_type, "OPTIONAL", name);
  }
  // Statistics are on.
  const i64 = metadata.row_groups[0].columns.find((c: Meta) =>
    c.meta_data.path_in_schema[0] === "i64"
  );
  assert.ok(i64.meta_data.statistics?.null_count !== undefined);
});

Deno.test("Parquet long-text columns carry no min/max statistics; short ones keep theirs", async () => {
  const rows = 200;
  const code = Array.from({ length: rows }, (_, i) => `c${i % 7}`);
  // Mean above 128 bytes (with NULLs, which do not count), and a column just under it.
  const body = Array.from({ length: rows }, (_, i) => i % 4 === 0 ? null : `${i} `.repeat(60));
  const note = Array.from({ length: rows }, (_, i) => "n".repeat(100 + (i % 20)));
  const batch = batchOf([utf8Col("code", code), utf8Col("body", body), utf8Col("note", note)]);
  const { bytes, metadata } = await writeParquet([batch]);
  const stats = (name: string) =>
    metadata.row_groups[0].columns.find((c: Meta) => c.meta_data.path_in_schema[0] === name)
      .meta_data.statistics;
  assert.equal(stats("body"), undefined);
  assert.equal(stats("code")?.min_value, "c0");
  assert.equal(stats("code")?.max_value, "c6");
  assert.ok(stats("note")?.max_value !== undefined);
  // The values themselves are untouched.
  const back = await parquetReadObjects({ file: bytes.buffer as ArrayBuffer, compressors });
  assert.deepEqual(back.map((r) => r.body), body);
});

Deno.test("Parquet UUID and JSON columns carry the UUID and JSON logical types", async () => {
  const { values, batch } = allTypes();
  const { bytes, metadata } = await writeParquet([batch]);
  const uid = element(metadata, "uid");
  assert.equal(uid.type, "FIXED_LEN_BYTE_ARRAY");
  assert.equal(uid.type_length, 16);
  assert.deepEqual(uid.logical_type, { type: "UUID" });
  assert.equal(uid.converted_type, undefined);
  const js = element(metadata, "js");
  assert.equal(js.type, "BYTE_ARRAY");
  assert.deepEqual(js.logical_type, { type: "JSON" });
  assert.equal(js.converted_type, "JSON");
  // The plain text column keeps STRING.
  assert.deepEqual(element(metadata, "txt").logical_type, { type: "STRING" });
  assert.equal(element(metadata, "txt").converted_type, "UTF8");
  // hyparquet's schema tree agrees, and its default parsers turn the values into UUID strings and
  // parsed JSON.
  const tree = parquetSchema(metadata);
  const byName = Object.fromEntries(tree.children.map((c: Meta) => [c.element.name, c.element]));
  assert.equal(byName.uid.logical_type?.type, "UUID");
  assert.equal(byName.js.logical_type?.type, "JSON");
  const rows = await parquetReadObjects({
    file: bytes.buffer as ArrayBuffer,
    compressors,
    columns: ["uid", "js"],
  }) as Row[];
  assert.equal(rows.length, N);
  for (let i = 0; i < N; i++) {
    const want = values.js[i];
    assert.deepEqual(rows[i], {
      uid: values.uid[i],
      js: want === null ? null : JSON.parse(want!),
    }, `row ${i}`);
  }
});

Deno.test("Parquet files with UUID and JSON logical types read back through parquet-rs unchanged", async () => {
  const { values, batch } = allTypes();
  const { bytes } = await writeParquet([batch]);
  // parquet-wasm's own reader (parquet-rs): the file stays valid and the Arrow schema, field
  // metadata and values come back as written.
  const table = tableFromIPC(readParquet(bytes).intoIPCStream());
  assert.equal(table.numRows, N);
  for (const name of ["uid", "js"]) {
    const got = table.schema.fields.find((f) => f.name === name)!;
    const want = batch.schema.fields.find((f) => f.name === name)!;
    assert.equal(String(got.type), String(want.type), name);
    assert.deepEqual(Object.fromEntries(got.metadata), Object.fromEntries(want.metadata), name);
  }
  const uid = table.getChild("uid")!;
  const js = table.getChild("js")!;
  for (let i = 0; i < N; i++) {
    const u = values.uid[i]!;
    assert.deepEqual(uid.get(i), u === null ? null : hexBytes(u.replaceAll("-", "")), `uid ${i}`);
    assert.equal(js.get(i), values.js[i], `js ${i}`);
  }
});

Deno.test("Parquet rewrites only the footer: the bytes before it are those of the plain file", async () => {
  const { batch } = allTypes();
  const plainSchema = new Schema(batch.schema.fields.map((f) =>
    new Field(
      f.name,
      f.type,
      f.nullable,
      new Map([...f.metadata].filter(([k]) => k !== "ARROW:extension:name")),
    )
  ));
  const annotated = await writeParquet([batch]);
  const plain = await writeParquet([new RecordBatch(plainSchema, batch.data)]);
  const footerStart = (b: Uint8Array) =>
    b.length - 8 - new DataView(b.buffer, b.byteOffset).getUint32(b.length - 8, true);
  const start = footerStart(plain.bytes);
  assert.equal(footerStart(annotated.bytes), start);
  assert.deepEqual(annotated.bytes.subarray(0, start), plain.bytes.subarray(0, start));
  assert.equal(element(plain.metadata, "uid").logical_type, undefined);
  assert.deepEqual(element(annotated.metadata, "uid").logical_type, { type: "UUID" });
  // The row groups (offsets, sizes, statistics bytes) are the same Thrift values.
  const rowGroups = (b: Uint8Array) =>
    decodeCompactStruct(b.subarray(footerStart(b), b.length - 8)).fields.find((f) => f.id === 4);
  assert.deepEqual(rowGroups(annotated.bytes), rowGroups(plain.bytes));
});

Deno.test("Parquet with UUID and JSON columns still streams row groups before the footer", async () => {
  const n = 6000;
  const batch = batchOf([
    uuidCol(
      "u",
      Array.from(
        { length: n },
        (_, i) => `${i.toString(16).padStart(8, "0")}-0000-4000-8000-000000000000`,
      ),
    ),
    jsonCol("j", Array.from({ length: n }, (_, i) => `{"i":${i}}`)),
  ]);
  const format = await createParquetFormat({
    kind: "parquet",
    compression: "zstd",
    parquet: { rowGroupStrategy: "fixed_rows", rowGroupRows: 1000, targetRowGroupMb: 1 },
  });
  const mem = memorySink();
  const encoder = format.createEncoder(batch.schema, mem.sink);
  for (let s = 0; s < n; s += 500) await encoder.write(batch.slice(s, s + 500));
  // Only what the writer emits after the input ends (last row group and footer) is held back.
  const beforeClose = encoder.bytesWritten;
  assert.ok(beforeClose > 0, "row groups reach the sink before close()");
  await encoder.close();
  const bytes = mem.bytes();
  assert.equal(encoder.bytesWritten, bytes.length);
  assert.ok(beforeClose < bytes.length);
  const metadata: Meta = parquetMetadata(bytes.buffer as ArrayBuffer);
  assert.equal(metadata.row_groups.length, 6);
  assert.deepEqual(element(metadata, "u").logical_type, { type: "UUID" });
  assert.deepEqual(element(metadata, "j").logical_type, { type: "JSON" });
  const rows = await parquetReadObjects({ file: bytes.buffer as ArrayBuffer, compressors });
  assert.equal(rows.length, n);
  assert.equal(
    rows[n - 1]!.u,
    `${(n - 1).toString(16).padStart(8, "0")}-0000-4000-8000-000000000000`,
  );
  assert.deepEqual(rows[n - 1]!.j, { i: n - 1 });
});

Deno.test("Parquet without UUID or JSON columns passes parquet-wasm's chunks on untouched", async () => {
  const batch = batchOf([
    int64Col("id", Array.from({ length: 3000 }, (_, i) => BigInt(i))),
    utf8Col("txt", Array.from({ length: 3000 }, (_, i) => `row ${i}`)),
  ]);
  const parquet: ParquetSpec = {
    rowGroupStrategy: "fixed_rows",
    rowGroupRows: 1000,
    targetRowGroupMb: 1,
  };
  const ours = await writeParquet([batch.slice(0, 1500), batch.slice(1500)], { parquet });
  // The same batches straight through parquet-wasm, with the encoder's writer settings.
  const props = new WriterPropertiesBuilder()
    .setCompression(WasmCompression.ZSTD)
    .setCreatedBy("rivet")
    .setDictionaryEnabled(false)
    .setMaxRowGroupSize(1000)
    .build();
  const wasmBatches = [batch.slice(0, 1500), batch.slice(1500)].flatMap((b) => {
    const t = WasmTable.fromIPCStream(tableToIPC(new Table(b), "stream"));
    return t.recordBatches();
  });
  const input = new ReadableStream({
    pull: (c) => {
      const next = wasmBatches.shift();
      if (next === undefined) c.close();
      else c.enqueue(next);
    },
  }, { highWaterMark: 0 });
  const direct: Uint8Array[] = [];
  for await (const chunk of await transformParquetStream(input, props)) direct.push(chunk);
  assert.deepEqual(ours.chunks.map((c) => c.length), direct.map((c) => c.length));
  assert.deepEqual(ours.chunks, direct);
});

Deno.test("Parquet keeps every field's metadata in the footer's ARROW:schema", async () => {
  const { batch } = allTypes();
  const { metadata } = await writeParquet([batch]);
  const kv = metadata.key_value_metadata.find((e: Meta) => e.key === "ARROW:schema");
  assert.ok(kv, "ARROW:schema present");
  // The value is a base64 IPC schema message; add an end-of-stream marker and let Arrow JS parse it.
  const msg = Uint8Array.from(atob(kv.value), (c) => c.charCodeAt(0));
  const stream = new Uint8Array(msg.length + 8);
  stream.set(msg);
  stream.set([255, 255, 255, 255, 0, 0, 0, 0], msg.length);
  const schema = tableFromIPC(stream).schema;
  for (const field of batch.schema.fields) {
    const got = schema.fields.find((f) => f.name === field.name)!;
    assert.ok(got, field.name);
    assert.deepEqual(
      Object.fromEntries(got.metadata),
      Object.fromEntries(field.metadata),
      field.name,
    );
    assert.equal(String(got.type), String(field.type), field.name);
  }
  assert.equal(
    schema.fields.find((f) => f.name === "uid")!.metadata.get("ARROW:extension:name"),
    "arrow.uuid",
  );
  assert.equal(
    schema.fields.find((f) => f.name === "tstz")!.type.toString(),
    "Timestamp<MICROSECOND, UTC>",
  );
});

Deno.test("Parquet from many batches holds the same rows as from one batch", async () => {
  const { values, batch } = allTypes();
  const parts: RecordBatch[] = [];
  for (let s = 0; s < N; s += 250) parts.push(batch.slice(s, Math.min(N, s + 250)));
  const many = await writeParquet(parts);
  const rows = await readRaw(many.bytes, many.metadata);
  assert.equal(rows.length, N);
  for (let i = 0; i < N; i++) assert.deepEqual(rows[i], expected(values, i), `row ${i}`);
  assert.equal(many.encoder.rowsWritten, N);
});

Deno.test("Parquet writes identical bytes for identical rows", async () => {
  const { batch } = allTypes();
  const a = await writeParquet([batch]);
  const b = await writeParquet([batch]);
  assert.deepEqual(a.bytes, b.bytes);
});

Deno.test("Parquet writes a readable schema-only file when no rows arrive", async () => {
  const { batch } = allTypes();
  const { bytes, metadata, encoder } = await writeParquet([], {}, batch.schema);
  assert.equal(Number(metadata.num_rows), 0);
  assert.equal(metadata.created_by, "rivet");
  assert.deepEqual(
    metadata.schema.slice(1).filter((e: Meta) => e.name !== "list" && e.name !== "item").map((
      e: Meta,
    ) => e.name),
    batch.schema.fields.map((f) => f.name),
  );
  assert.deepEqual(await readRaw(bytes, metadata), []);
  assert.equal(encoder.rowsWritten, 0);
  assert.equal(encoder.bytesWritten, bytes.length);
});

Deno.test("Parquet fixed_rows strategy cuts row groups at row_group_rows", async () => {
  const n = 3500;
  const batch = batchOf([int64Col("id", Array.from({ length: n }, (_, i) => BigInt(i)))]);
  const parquet: ParquetSpec = {
    rowGroupStrategy: "fixed_rows",
    rowGroupRows: 1000,
    targetRowGroupMb: 128,
  };
  const { metadata } = await writeParquet([batch.slice(0, 1700), batch.slice(1700)], { parquet });
  assert.deepEqual(metadata.row_groups.map((g: Meta) => Number(g.num_rows)), [
    1000,
    1000,
    1000,
    500,
  ]);
});

Deno.test("Parquet auto strategy sizes row groups as target MB over the estimated row bytes", async () => {
  const n = 250_000;
  const ids = new Array<bigint>(n);
  for (let i = 0; i < n; i++) ids[i] = BigInt(i);
  const batch = batchOf([int64Col("id", ids)]);
  const parquet: ParquetSpec = { rowGroupStrategy: "auto", targetRowGroupMb: 1 };
  // 1 MB / (8 + 1) bytes = 116,508 rows.
  const { metadata } = await writeParquet([batch], { parquet });
  assert.deepEqual(
    metadata.row_groups.map((g: Meta) => Number(g.num_rows)),
    [116_508, 116_508, 16_984],
  );
});

Deno.test("Parquet max_row_group_mb also bounds the measured bytes of a row group", async () => {
  // Estimated 257 bytes/row, so 1 MB caps rows at 4,080; the real rows are ~1 KB, so the writer's
  // byte ceiling (1 MB) closes groups after about a thousand rows.
  const n = 5000;
  const text = Array.from({ length: n }, (_, i) => `${i}`.padEnd(1000, "abcdefghij"));
  const batch = batchOf([utf8Col("t", text)]);
  const parquet: ParquetSpec = { rowGroupStrategy: "auto", targetRowGroupMb: 64, maxRowGroupMb: 1 };
  // The writer checks its byte ceiling between the batches it is given (as the pipeline sends
  // them: many batches per row group); one huge batch is cut by the row ceiling only.
  const parts: RecordBatch[] = [];
  for (let s = 0; s < n; s += 500) parts.push(batch.slice(s, s + 500));
  const { metadata, bytes } = await writeParquet(parts, { parquet, compression: "none" });
  const sizes = metadata.row_groups.map((g: Meta) => Number(g.num_rows));
  assert.ok(sizes.length >= 4, `expected byte-bounded row groups, got ${sizes}`);
  assert.ok(sizes.every((s: number) => s <= 1100), `row groups over 1 MB: ${sizes}`);
  assert.equal(sizes.reduce((a: number, b: number) => a + b, 0), n);
  const rows = await parquetReadObjects({ file: bytes.buffer as ArrayBuffer, compressors });
  assert.equal(rows[4999]!.t, text[4999]);
});

Deno.test("planRowGroups sizes row groups per strategy and clamps", () => {
  const narrow = new Schema(
    batchOf([
      int64Col("a", []),
      int32Col("b", []),
      decimalCol("c", { precision: 12, scale: 2 }, []),
      utf8Col("d", []),
      timestampCol("e", "UTC", []),
    ]).schema.fields,
  );
  // 8 + 4 + 16 + 256 + 8 + 5 columns.
  assert.equal(estimateRowBytes(narrow), 297);
  assert.deepEqual(planRowGroups(narrow), {
    maxRows: LIBRARY_DEFAULT_ROW_GROUP_ROWS,
    maxBytes: DEFAULT_ROW_GROUP_BYTES,
  });
  assert.deepEqual(
    planRowGroups(narrow, { rowGroupStrategy: "fixed_rows", targetRowGroupMb: 128 }),
    {
      maxRows: LIBRARY_DEFAULT_ROW_GROUP_ROWS,
    },
  );
  assert.deepEqual(
    planRowGroups(narrow, { rowGroupStrategy: "fixed_memory", targetRowGroupMb: 128 }),
    { maxRows: Math.floor(128 * 1048576 / 297) },
  );
  const tiny = new Schema([new Field("flag", boolCol("x", []).field.type, true)]);
  assert.equal(
    planRowGroups(tiny, { rowGroupStrategy: "auto", targetRowGroupMb: 1024 }).maxRows,
    10_000_000,
  );
  const wide = new Schema(
    Array.from({ length: 100 }, (_, i) => new Field(`s${i}`, new Utf8(), true)),
  );
  assert.equal(
    planRowGroups(wide, { rowGroupStrategy: "auto", targetRowGroupMb: 1 }).maxRows,
    1000,
  );
  assert.deepEqual(
    planRowGroups(narrow, { rowGroupStrategy: "auto", targetRowGroupMb: 128, maxRowGroupMb: 16 }),
    { maxRows: Math.floor(16 * 1048576 / 297), maxBytes: 16 * 1048576 },
  );
  assert.equal(
    planRowGroups(wide, { rowGroupStrategy: "auto", targetRowGroupMb: 128, maxRowGroupMb: 1 })
      .maxRows,
    1000,
  );
});

Deno.test("Parquet rejects a batch whose columns differ from the file schema", async () => {
  const format = await createParquetFormat({ kind: "parquet", compression: "zstd" });
  const schema = batchOf([int32Col("id", [1])]).schema;
  const encoder = format.createEncoder(schema, memorySink().sink);
  await assert.rejects(
    encoder.write(batchOf([utf8Col("id", ["1"])])),
    (e: unknown) => e instanceof PermanentError && e.code === "format.schema_mismatch",
  );
});

Deno.test("Parquet refuses a negative decimal scale, naming the column", async () => {
  const format = await createParquetFormat({ kind: "parquet", compression: "zstd" });
  const schema = new Schema([new Field("big", new Decimal(-2, 10, 128), true)]);
  assert.throws(
    () => format.createEncoder(schema, memorySink().sink),
    (e: unknown) =>
      e instanceof ConfigError && e.code === "format.parquet_unsupported_type" &&
      e.message.includes("'big'"),
  );
});

Deno.test("Parquet abort aborts the sink and later calls are refused", async () => {
  const format = await createParquetFormat({ kind: "parquet", compression: "zstd" });
  let aborted: unknown;
  const sink = new WritableStream<Uint8Array>({ abort: (r) => void (aborted = r) });
  const { batch } = allTypes();
  const encoder = format.createEncoder(batch.schema, sink);
  await encoder.write(batch);
  await encoder.abort("stop");
  assert.equal(aborted, "stop");
  await assert.rejects(encoder.write(batch));
  await assert.rejects(encoder.close());
});

Deno.test("Parquet surfaces a sink failure", async () => {
  const format = await createParquetFormat({
    kind: "parquet",
    compression: "zstd",
    parquet: { rowGroupStrategy: "fixed_rows", rowGroupRows: 1000, targetRowGroupMb: 1 },
  });
  const sink = new WritableStream<Uint8Array>({
    write: () => Promise.reject(new Error("disk full")),
  });
  const batch = batchOf([int64Col("id", Array.from({ length: 5000 }, (_, i) => BigInt(i)))]);
  const encoder = format.createEncoder(batch.schema, sink);
  const attempt = async () => {
    for (let s = 0; s < 5000; s += 500) await encoder.write(batch.slice(s, s + 500));
    await encoder.close();
  };
  await assert.rejects(attempt(), /disk full/);
});
