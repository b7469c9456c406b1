import assert from "node:assert/strict";
import {
  DateDay,
  DateMillisecond,
  Decimal,
  Field,
  FixedSizeBinary,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  TimestampMicrosecond,
  TimestampNanosecond,
  Uint64,
  Utf8,
} from "../core/arrow.ts";
import { PermanentError } from "../core/errors.ts";
import { formatFloat64, lastCursorOf, renderCursor } from "./cursor.ts";

const US = new TimestampMicrosecond();

Deno.test("renderCursor prints integers, float64 and strings as they are", () => {
  assert.equal(renderCursor(-32768, new Int16()), "-32768");
  assert.equal(renderCursor(7, new Int32()), "7");
  assert.equal(renderCursor(9_223_372_036_854_775_807n, new Int64()), "9223372036854775807");
  assert.equal(renderCursor(18_446_744_073_709_551_615n, new Uint64()), "18446744073709551615");
  assert.equal(renderCursor(2.5, new Float64()), "2.5");
  assert.equal(renderCursor("O'Brien\\", new Utf8()), "O'Brien\\");
  assert.equal(renderCursor(null, new Int32()), undefined);
});

Deno.test("formatFloat64 never uses an exponent, as Rust prints floats", () => {
  assert.equal(formatFloat64(1e21), "1000000000000000000000");
  assert.equal(formatFloat64(1.5e-7), "0.00000015");
  assert.equal(formatFloat64(-1.25e22), "-12500000000000000000000");
  assert.equal(formatFloat64(1), "1");
  assert.equal(formatFloat64(0.1), "0.1");
  assert.equal(formatFloat64(-0), "-0");
  assert.equal(formatFloat64(NaN), "NaN");
  assert.equal(formatFloat64(-Infinity), "-inf");
});

Deno.test("renderCursor prints microsecond timestamps with six digits and no offset", () => {
  assert.equal(renderCursor(1_700_000_000_123_456n, US), "2023-11-14T22:13:20.123456");
  assert.equal(
    renderCursor(1_700_000_000_000_000n, new TimestampMicrosecond("UTC")),
    "2023-11-14T22:13:20.000000",
  );
  assert.equal(renderCursor(0n, US), "1970-01-01T00:00:00.000000");
});

Deno.test("renderCursor floors negative microseconds into the previous second", () => {
  assert.equal(renderCursor(-1n, US), "1969-12-31T23:59:59.999999");
  assert.equal(renderCursor(-1_000_000n, US), "1969-12-31T23:59:59.000000");
  assert.equal(renderCursor(-1_500_001n, US), "1969-12-31T23:59:58.499999");
});

Deno.test("renderCursor reaches years 1 and 9999 exactly", () => {
  // 0001-01-01T00:00:00 and 9999-12-31T23:59:59.999999 in µs since the epoch.
  assert.equal(renderCursor(-62_135_596_800_000_000n, US), "0001-01-01T00:00:00.000000");
  assert.equal(renderCursor(253_402_300_799_999_999n, US), "9999-12-31T23:59:59.999999");
  assert.equal(renderCursor(-719_162, new DateDay()), "0001-01-01");
  assert.equal(renderCursor(2_932_896, new DateDay()), "9999-12-31");
});

Deno.test("renderCursor keeps all nine digits of nanosecond timestamps", () => {
  const ns = new TimestampNanosecond();
  assert.equal(renderCursor(1_700_000_000_123_456_700n, ns), "2023-11-14T22:13:20.123456700");
  assert.equal(renderCursor(-1n, ns), "1969-12-31T23:59:59.999999999");
});

Deno.test("renderCursor prints dates, leap days included", () => {
  assert.equal(renderCursor(19_723, new DateDay()), "2024-01-01");
  assert.equal(renderCursor(19_782, new DateDay()), "2024-02-29");
  assert.equal(renderCursor(-1, new DateDay()), "1969-12-31");
  assert.equal(renderCursor(-86_400_000n, new DateMillisecond()), "1969-12-31");
});

Deno.test("renderCursor hyphenates 16-byte UUIDs", () => {
  const bytes = Uint8Array.from({ length: 16 }, (_, i) => i * 17);
  assert.equal(
    renderCursor(bytes, new FixedSizeBinary(16)),
    "00112233-4455-6677-8899-aabbccddeeff",
  );
  assert.equal(renderCursor(new Uint8Array(8), new FixedSizeBinary(8)), undefined);
});

Deno.test("renderCursor gives no cursor for decimal, float32 and other types", () => {
  assert.equal(renderCursor(new Uint32Array(4), new Decimal(2, 12, 128)), undefined);
  assert.equal(renderCursor(1.5, new Float32()), undefined);
  assert.equal(renderCursor({}, new Struct([])), undefined);
});

function batchOf(fields: Field[], children: ReturnType<typeof makeData>[], length: number) {
  const schema = new Schema(fields);
  const data = makeData({ type: new Struct(fields), length, nullCount: 0, children });
  return new RecordBatch(schema, data);
}

Deno.test("lastCursorOf reads exact microseconds from the last row, not through a Date", () => {
  const ts = makeData({
    type: US,
    length: 3,
    data: new BigInt64Array([1n, 2n, 1_700_000_000_123_457n]),
  });
  const batch = batchOf([new Field("ts", US)], [ts], 3);
  assert.equal(lastCursorOf(batch, "ts"), "2023-11-14T22:13:20.123457");
});

Deno.test("lastCursorOf skips trailing NULLs and reads strings and sliced batches", () => {
  // Validity 0b011: rows 0 and 1 valid, row 2 NULL (PostgreSQL sorts NULLs last).
  const ids = makeData({
    type: new Int64(),
    length: 3,
    nullCount: 1,
    nullBitmap: Uint8Array.of(0b011),
    data: new BigInt64Array([10n, 20n, 0n]),
  });
  const encoder = new TextEncoder();
  const names = makeData({
    type: new Utf8(),
    length: 3,
    valueOffsets: Int32Array.of(0, 1, 3, 6),
    data: encoder.encode("abbccc"),
  });
  const batch = batchOf([new Field("id", new Int64(), true), new Field("name", new Utf8())], [
    ids,
    names,
  ], 3);
  assert.equal(lastCursorOf(batch, "id"), "20");
  assert.equal(lastCursorOf(batch, "name"), "ccc");
  assert.equal(lastCursorOf(batch.slice(0, 2), "name"), "bb");
  const days = makeData({ type: new DateDay(), length: 4, data: Int32Array.of(1, 2, 3, 19_782) });
  const dated = batchOf([new Field("d", new DateDay())], [days], 4);
  assert.equal(lastCursorOf(dated.slice(1, 3), "d"), "1970-01-04");
  assert.equal(lastCursorOf(dated, "d"), "2024-02-29");
});

Deno.test("lastCursorOf returns undefined for an empty or all-NULL batch", () => {
  const empty = batchOf([new Field("id", new Int32())], [
    makeData({ type: new Int32(), length: 0, data: new Int32Array(0) }),
  ], 0);
  assert.equal(lastCursorOf(empty, "id"), undefined);
  const allNull = batchOf([new Field("id", new Int32(), true)], [
    makeData({
      type: new Int32(),
      length: 2,
      nullCount: 2,
      nullBitmap: Uint8Array.of(0),
      data: new Int32Array(2),
    }),
  ], 2);
  assert.equal(lastCursorOf(allNull, "id"), undefined);
});

Deno.test("lastCursorOf names a cursor column that the result lacks", () => {
  const batch = batchOf([new Field("id", new Int32())], [
    makeData({ type: new Int32(), length: 1, data: Int32Array.of(1) }),
  ], 1);
  assert.throws(
    () => lastCursorOf(batch, "updated_at"),
    (e: unknown) =>
      e instanceof PermanentError && e.code === "plan.cursor_column_missing" &&
      e.message.includes("'updated_at'"),
  );
});
