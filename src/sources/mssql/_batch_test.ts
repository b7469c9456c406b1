import assert from "node:assert/strict";
import type { RecordBatch } from "../../core/arrow.ts";
import { PermanentError } from "../../core/errors.ts";
import { installExactDecoders } from "./_decode.ts";
import { mssqlColumns } from "./_types.ts";
import { MssqlBatchBuilder, type MssqlBatchOptions, mssqlSchema } from "./_batch.ts";
import {
  col,
  days0001,
  decimalValue,
  KNOWN_GUID,
  nbcRow,
  parseTokens,
  row,
  stream,
  type TdsColumn,
  toHex,
  val,
} from "../../../tests/_helpers/tds_tokens.ts";

installExactDecoders();

/** Rows through tedious' parser and the hook, then into a builder of their columns. */
function builderFor(
  columns: readonly TdsColumn[],
  rows: readonly Uint8Array[],
  overrides: Record<string, string> = {},
  options: MssqlBatchOptions = {},
) {
  const parsed = parseTokens([stream(columns, ...rows)]);
  const cols = mssqlColumns(parsed.metadata as never, overrides);
  const builder = new MssqlBatchBuilder(cols, mssqlSchema(cols), options);
  return { builder, rows: parsed.rows };
}

function batchOf(
  columns: readonly TdsColumn[],
  rows: readonly Uint8Array[],
  overrides: Record<string, string> = {},
): { batch: RecordBatch; truncated: string[] } {
  const { builder, rows: parsed } = builderFor(columns, rows, overrides);
  for (const r of parsed) builder.appendRow(r);
  return { batch: builder.finish(), truncated: builder.truncated() };
}

/** The raw values buffer and validity of a column (one chunk). */
function column(batch: RecordBatch, name: string) {
  const v = batch.getChild(name)!;
  const data = v.data[0]!;
  return { values: data.values, valid: (i: number) => v.isValid(i), vector: v };
}

function decimals(batch: RecordBatch, name: string): (bigint | null)[] {
  const { values, valid } = column(batch, name);
  return Array.from({ length: batch.numRows }, (_, i) => valid(i) ? decimalValue(values, i) : null);
}

function int64s(batch: RecordBatch, name: string): (bigint | null)[] {
  const { values, valid } = column(batch, name);
  const all = new BigInt64Array(values.buffer, values.byteOffset, batch.numRows);
  return Array.from(all, (v, i) => valid(i) ? v : null);
}

const MAX38 = 10n ** 38n - 1n;
const US_DAY = 86_400_000_000n;
const unixDays = (y: number, m: number, d: number) => BigInt(days0001(y, m, d) - 719_162);

Deno.test("decimal, money and smallmoney become Decimal128 words, NULLs as validity", () => {
  const { batch } = batchOf(
    [col.decimalN("d", 38, 0), col.decimalN("f", 38, 38), col.moneyN("m", 8), col.moneyN("s", 4)],
    [
      row([
        val.decimal(MAX38, 38),
        val.decimal(-MAX38, 38),
        val.money(-(2n ** 63n)),
        val.smallMoney(-(2 ** 31)),
      ]),
      row([
        val.decimal(-MAX38, 38),
        val.decimal(1n, 38),
        val.money(2n ** 63n - 1n),
        val.smallMoney(2 ** 31 - 1),
      ]),
      nbcRow([null, null, null, null]),
    ],
  );
  assert.deepEqual(decimals(batch, "d"), [MAX38, -MAX38, null]);
  assert.deepEqual(decimals(batch, "f"), [-MAX38, 1n, null]);
  assert.deepEqual(decimals(batch, "m"), [-(2n ** 63n), 2n ** 63n - 1n, null]);
  assert.deepEqual(decimals(batch, "s"), [-(2n ** 31n), 2n ** 31n - 1n, null]);
  assert.equal(String(batch.schema.fields[2]!.type), "Decimal[19e+4]");
});

Deno.test("integers, floats, bits, text, bytes and uuids land as their Arrow values", () => {
  const { batch } = batchOf(
    [
      col.intN("b", 8),
      col.intN("i", 4),
      col.fixed("t", 0x30),
      col.floatN("r", 4),
      col.floatN("f", 8),
      col.bitN("x"),
      col.nvarchar("s", 40),
      col.varbinary("v", 8),
      col.guid("g"),
    ],
    [
      row([
        val.int(-(2n ** 63n), 8),
        val.int(-(2 ** 31), 4),
        [255],
        [4, ...new Uint8Array(Float32Array.of(1.5).buffer)],
        [8, ...new Uint8Array(Float64Array.of(-0.1).buffer)],
        [1, 1],
        val.nvarchar("héllo ✓ 😀"),
        val.varbinary([0, 255]),
        val.guid(KNOWN_GUID.wire),
      ]),
      row([
        val.int(2n ** 63n - 1n, 8),
        val.null8(),
        [0],
        val.null8(),
        val.null8(),
        [1, 0],
        val.nvarchar(""),
        val.varbinary([]),
        val.null8(),
      ]),
      row([
        val.null8(),
        val.int(7, 4),
        [1],
        val.null8(),
        val.null8(),
        val.null8(),
        val.null16(),
        val.null16(),
        val.null8(),
      ]),
    ],
  );
  assert.deepEqual(int64s(batch, "b"), [-(2n ** 63n), 2n ** 63n - 1n, null]);
  assert.deepEqual(batch.getChild("i")!.toArray().slice(0, 3), Int32Array.of(-(2 ** 31), 0, 7));
  assert.equal(batch.getChild("i")!.isValid(1), false);
  assert.deepEqual([...batch.getChild("t")!.toArray()], [255, 0, 1]);
  assert.equal(batch.getChild("r")!.get(0), 1.5);
  assert.equal(batch.getChild("f")!.get(0), -0.1);
  assert.deepEqual([0, 1, 2].map((i) => batch.getChild("x")!.get(i)), [true, false, null]);
  assert.deepEqual([0, 1, 2].map((i) => batch.getChild("s")!.get(i)), ["héllo ✓ 😀", "", null]);
  const v = batch.getChild("v")!;
  assert.deepEqual([...v.get(0)!], [0, 255]);
  assert.deepEqual([...v.get(1)!], []);
  assert.equal(v.get(2), null);
  const g = batch.getChild("g")!;
  assert.equal(toHex(g.get(0)), KNOWN_GUID.hex);
  assert.equal(g.get(1), null);
});

Deno.test("dates, times and timestamps in µs; 100 ns digits cut and reported once per column", () => {
  const last = days0001(9999, 12, 31);
  const d1900 = (y: number, m: number, d: number) => Number(unixDays(y, m, d)) + 25_567;
  const columns = [
    col.date("d"),
    col.time("t7", 7),
    col.time("t3", 3),
    col.dateTime2("dt7", 7),
    col.dateTime2("dt3", 3),
    col.dateTimeN("dt", 8),
    col.dateTimeN("sdt", 4),
    col.dateTimeOffset("o", 7),
  ];
  const { builder, rows } = builderFor(columns, [
    row([
      val.date(0),
      val.time(863_999_999_999, 7),
      val.time(86_399_999, 3),
      val.dateTime2(0, 0, 7),
      val.dateTime2(86_399_999, last, 3),
      val.dateTime(d1900(1753, 1, 1), 0),
      val.smallDateTime(0, 0),
      val.dateTimeOffset(863_999_999_990, last, 840, 7),
    ]),
    row([
      val.date(last),
      val.time(10, 7),
      val.null8(),
      val.dateTime2(863_999_999_999, last, 7),
      val.null8(),
      val.dateTime(d1900(9999, 12, 31), 86_399 * 300 + 299),
      val.smallDateTime(d1900(2079, 6, 6), 1439),
      val.dateTimeOffset(0, days0001(1, 1, 1), -720, 7),
    ]),
    nbcRow([null, null, null, null, null, val.dateTime(0, 1), null, null]),
  ]);
  for (const r of rows) builder.appendRow(r);
  assert.equal(builder.rows, 3);
  const batch = builder.finish();
  assert.deepEqual(builder.truncated(), ["t7", "dt7"]);

  const endOfTime = unixDays(9999, 12, 31) * US_DAY;
  assert.deepEqual([0, 1, 2].map((i) => batch.getChild("d")!.data[0]!.values[i]), [
    -719_162,
    2_932_896,
    0,
  ]);
  assert.equal(batch.getChild("d")!.isValid(2), false);
  assert.deepEqual(int64s(batch, "t7"), [86_399_999_999n, 1n, null]);
  assert.deepEqual(int64s(batch, "t3"), [86_399_999_000n, null, null]);
  assert.deepEqual(int64s(batch, "dt7"), [
    unixDays(1, 1, 1) * US_DAY, // -62135596800000000
    endOfTime + 86_399_999_999n,
    null,
  ]);
  assert.deepEqual(int64s(batch, "dt3"), [endOfTime + 86_399_999_000n, null, null]);
  // datetime 23:59:59.997 (tick 299, 23:59:59.99666…) is 23:59:59.996667; tick 1 (0.00333… s)
  // rounds up to .003334: never below the stored value, so a cursor on it is exact.
  assert.deepEqual(int64s(batch, "dt"), [
    unixDays(1753, 1, 1) * US_DAY,
    endOfTime + 86_399_996_667n,
    unixDays(1900, 1, 1) * US_DAY + 3_334n,
  ]);
  assert.deepEqual(int64s(batch, "sdt"), [
    unixDays(1900, 1, 1) * US_DAY,
    unixDays(2079, 6, 6) * US_DAY + 1439n * 60_000_000n,
    null,
  ]);
  assert.deepEqual(int64s(batch, "o"), [
    endOfTime + 86_399_999_999n,
    unixDays(1, 1, 1) * US_DAY,
    null,
  ]);
  assert.equal(String(batch.schema.fields[7]!.type), "Timestamp<MICROSECOND, UTC>");

  // The next batch starts empty; the report stays one name per column.
  const again = builderFor(columns, [rowOf(863_999_999_999)]);
  for (const r of again.rows) builder.appendRow(r);
  const second = builder.finish();
  assert.equal(second.numRows, 1);
  assert.deepEqual(builder.truncated(), ["t7", "dt7"]);
});

/** A row of the timestamp test's columns, every value at `ticks` past 9999-12-31. */
function rowOf(ticks: number): Uint8Array {
  const last = days0001(9999, 12, 31);
  return row([
    val.date(last),
    val.time(ticks, 7),
    val.null8(),
    val.dateTime2(ticks, last, 7),
    val.null8(),
    val.null8(),
    val.null8(),
    val.null8(),
  ]);
}

Deno.test("timestamp_ns keeps the 100 ns digit; outside the nanosecond range it fails", () => {
  const { batch, truncated } = batchOf(
    [col.dateTime2("t", 7), col.dateTimeN("dt", 8)],
    [
      row([val.dateTime2(863_999_999_999, days0001(2262, 4, 10), 7), val.dateTime(0, 1)]),
      row([val.dateTime2(1, days0001(1677, 9, 22), 7), val.null8()]),
    ],
    { t: "timestamp_ns", dt: "timestamp_ns" },
  );
  assert.deepEqual(truncated, []);
  assert.deepEqual(int64s(batch, "t"), [
    (unixDays(2262, 4, 10) * US_DAY + 86_399_999_999n) * 1000n + 900n,
    unixDays(1677, 9, 22) * US_DAY * 1000n + 100n,
  ]);
  assert.deepEqual(int64s(batch, "dt"), [unixDays(1900, 1, 1) * US_DAY * 1000n + 3_333_300n, null]);

  const { builder, rows } = builderFor(
    [col.dateTime2("t", 7)],
    [row([val.dateTime2(0, 0, 7)])],
    { t: "timestamp_ns" },
  );
  assert.throws(
    () => builder.appendRow(rows[0]!),
    (e: unknown) =>
      e instanceof PermanentError && e.code === "source.timestamp_out_of_range" &&
      e.message.includes("'t'") && e.message.includes("0001-01-01") &&
      e.message.includes("timestamp_ns"),
  );
});

Deno.test("a decimal override rescales exactly, and refuses what it would truncate or overflow", () => {
  const columns = [col.decimalN("d", 12, 2)];
  const values = [val.decimal(1234n, 12), val.decimal(-1230n, 12)];
  const wider = batchOf(columns, values.map((v) => row([v])), { d: "decimal(14,4)" }).batch;
  assert.deepEqual(decimals(wider, "d"), [123400n, -123000n]);
  assert.equal(String(wider.schema.fields[0]!.type), "Decimal[14e+4]");
  const fewer = batchOf(columns, [row([values[1]!])], { d: "decimal(12,1)" }).batch;
  assert.deepEqual(decimals(fewer, "d"), [-123n]);

  const failing = (override: string) => {
    const { builder, rows } = builderFor(columns, [row([values[0]!])], { d: override });
    return () => builder.appendRow(rows[0]!);
  };
  assert.throws(
    failing("decimal(12,1)"),
    (e: unknown) =>
      e instanceof PermanentError && e.code === "source.numeric_truncated" &&
      e.message.includes("holds 12.34") && e.message.includes("decimal(12,1)"),
  );
  assert.throws(
    failing("decimal(3,2)"),
    (e: unknown) =>
      e instanceof PermanentError && e.code === "source.numeric_overflow" &&
      e.message.includes("holds 12.34") && e.message.includes("decimal(3,2)"),
  );
  // money is decimal(19,4) underneath: -123.45 as decimal(20,2).
  const money = batchOf([col.moneyN("m", 8)], [row([val.money(-1_234_500n)])], {
    m: "decimal(20,2)",
  });
  assert.deepEqual(decimals(money.batch, "m"), [-12345n]);
});

Deno.test("uuid overrides read text and 16 bytes; anything else is NULL", () => {
  const { batch } = batchOf(
    [col.nvarchar("s", 40), col.varbinary("b", 16)],
    [
      row([val.nvarchar(KNOWN_GUID.text), val.varbinary(range(16))]),
      row([val.nvarchar("not a uuid"), val.varbinary(range(4))]),
      row([val.null16(), val.null16()]),
    ],
    { s: "uuid", b: "uuid" },
  );
  const s = batch.getChild("s")!;
  assert.equal(toHex(s.get(0)), KNOWN_GUID.hex);
  assert.deepEqual([s.get(1), s.get(2)], [null, null]);
  const b = batch.getChild("b")!;
  assert.deepEqual([...b.get(0)!], range(16));
  assert.deepEqual([b.get(1), b.get(2)], [null, null]);
});

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

Deno.test("max_value_mb refuses a larger text or binary value, counting UTF-8 bytes", () => {
  const tooLarge = (column: TdsColumn, value: number[]) => {
    const { builder, rows } = builderFor([column], [row([value])], {}, { maxValueBytes: 10 });
    return () => builder.appendRow(rows[0]!);
  };
  const refused = (name: string) => (e: unknown) =>
    e instanceof PermanentError && e.code === "source.value_too_large" &&
    e.message.includes(`'${name}'`) && e.message.includes("max_value_mb");
  assert.throws(tooLarge(col.nvarchar("s", 40), val.nvarchar("✓✓✓✓")), refused("s"));
  assert.throws(tooLarge(col.nvarchar("a", 40), val.nvarchar("abcdefghijk")), refused("a"));
  assert.throws(tooLarge(col.varbinary("b", 16), val.varbinary(range(11))), refused("b"));
  const fits = builderFor([col.nvarchar("s", 40)], [row([val.nvarchar("✓✓✓")])], {}, {
    maxValueBytes: 10,
  });
  fits.builder.appendRow(fits.rows[0]!);
  assert.equal(fits.builder.finish().getChild("s")!.get(0), "✓✓✓");
});

Deno.test("byteSize grows with the batch and finish starts the next one empty", () => {
  const { builder, rows } = builderFor(
    [col.nvarchar("s", 4000)],
    Array.from({ length: 300 }, (_, i) => row([val.nvarchar(`value ${i} `.repeat(20))])),
    {},
    { rows: 8 },
  );
  const empty = builder.byteSize();
  for (const r of rows) builder.appendRow(r);
  assert.ok(builder.byteSize() > empty + 300 * 160, String(builder.byteSize()));
  const first = builder.finish();
  assert.equal(first.numRows, 300);
  assert.equal(first.getChild("s")!.get(299), "value 299 ".repeat(20));
  assert.equal(builder.rows, 0);
  builder.appendRow(rows[5]!);
  const second = builder.finish();
  assert.equal(second.numRows, 1);
  assert.equal(second.getChild("s")!.get(0), "value 5 ".repeat(20));
  assert.equal(first.getChild("s")!.get(5), "value 5 ".repeat(20), "the first batch is intact");
});

Deno.test("a batch larger than the builders' capacity keeps every value across each growth", () => {
  // The builders start at 8 values and double: rows 8, 16, 32, … land right after a growth.
  const n = 100;
  const { builder, rows } = builderFor(
    [
      col.intN("i", 4),
      col.floatN("f", 8),
      col.date("d"),
      col.time("t", 6),
      col.dateTime2("ts", 6),
    ],
    Array.from({ length: n }, (_, i) =>
      row([
        val.int(i + 1, 4),
        [8, ...new Uint8Array(Float64Array.of(i + 0.5).buffer)],
        val.date(i + 1),
        val.time(i + 1, 6),
        val.dateTime2(i + 1, i + 1, 6),
      ])),
    {},
    { rows: 8 },
  );
  for (const r of rows) builder.appendRow(r);
  const batch = builder.finish();
  const values = (name: string) =>
    Array.from({ length: n }, (_, i) => batch.getChild(name)!.get(i));
  assert.deepEqual(values("i"), Array.from({ length: n }, (_, i) => i + 1));
  assert.deepEqual(values("f"), Array.from({ length: n }, (_, i) => i + 0.5));
  const lost = (name: string) =>
    values(name).flatMap((v, i) => (v === values(name)[0] && i > 0 ? [i] : []));
  for (const name of ["d", "t", "ts"]) assert.deepEqual(lost(name), [], `${name}: no value reset`);
  for (const name of ["d", "t", "ts"]) {
    assert.equal(new Set(values(name).map(String)).size, n, `${name}: ${n} distinct values`);
  }
});
