import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import valueParser from "tedious/lib/value-parser.js";
import { Connection } from "tedious";
import { type DayTicks, installExactDecoders, originalReadValue } from "./_decode.ts";
import {
  col,
  days0001,
  decimalValue,
  KNOWN_GUID,
  nbcRow,
  parse,
  PARSER_OPTIONS,
  row,
  stream,
  TdsParser,
  toHex,
  val,
} from "../../../tests/_helpers/tds_tokens.ts";

installExactDecoders();

const big = (words: unknown) => decimalValue(words);
const unixDays = (y: number, m: number, d: number) => days0001(y, m, d) - 719_162;
const MAX38 = 10n ** 38n - 1n;
Deno.test("the hook replaces readValue on the exports object tedious' row parser reads", () => {
  installExactDecoders();
  const installed = valueParser.readValue;
  installExactDecoders();
  assert.equal(valueParser.readValue, installed, "a second install changes nothing");
  assert.notEqual(originalReadValue(), installed);
  const [r] = parse([stream([col.intN("b", 8)], row([val.int(-(2n ** 63n), 8)]))]);
  assert.equal(r![0], -(2n ** 63n), "the row parser went through the hook");
});

Deno.test("a Connection of the tedious package parses its token stream through the hook", async () => {
  // The same module instance as the subpath import: the connection's own parser (never
  // connected, so no socket) returns the exact form.
  const connection = new Connection({
    server: "127.0.0.1",
    authentication: { type: "default", options: { userName: "u", password: "p" } },
    options: { useColumnNames: false },
  });
  const rows: unknown[][] = [];
  const handler = {
    onColMetadata() {},
    onDone() {},
    onRow(token: { columns: { value: unknown }[] }) {
      rows.push(token.columns.map((c) => c.value));
    },
  };
  const bytes = stream(
    [col.intN("b", 8), col.guid("g")],
    row([
      val.int(-5n, 8),
      val.guid(KNOWN_GUID.wire),
    ]),
  );
  const internal = connection as unknown as {
    createTokenStreamParser(message: Buffer[], handler: unknown): {
      on(event: string, listener: (e?: unknown) => void): void;
    };
  };
  const parser = internal.createTokenStreamParser([Buffer.from(bytes)], handler);
  await new Promise((resolve, reject) => {
    parser.on("end", resolve);
    parser.on("error", reject);
  });
  assert.equal(rows[0]![0], -5n);
  assert.equal(toHex(rows[0]![1]), KNOWN_GUID.hex);
});

Deno.test("tedious' own reader loses these values (the reason for the hook)", () => {
  const buf = Buffer.from(val.decimal(MAX38, 38));
  const meta = { type: { name: "DecimalN" }, precision: 38, scale: 0 };
  const lossy = originalReadValue()(buf, 0, meta as never, PARSER_OPTIONS as never).value;
  assert.equal(typeof lossy, "number");
  assert.notEqual(BigInt(lossy as number), MAX38);
});

Deno.test("decimal and numeric: extremes of decimal(38,0) and decimal(38,38), small widths, NULL", () => {
  const columns = [
    col.decimalN("d38", 38, 0),
    col.decimalN("f38", 38, 38, true),
    col.decimalN("d5", 5, 2),
    col.decimalN("d12", 12, 2),
    col.decimalN("d28", 28, 10, true),
  ];
  const rows = parse([stream(
    columns,
    row([
      val.decimal(MAX38, 38),
      val.decimal(MAX38, 38),
      val.decimal(-150n, 5),
      val.decimal(1234n, 12),
      val.decimal(-(10n ** 27n), 28),
    ]),
    row([
      val.decimal(-MAX38, 38),
      val.decimal(-MAX38, 38),
      val.decimal(99999n, 5),
      val.decimal(-(10n ** 12n - 1n), 12),
      val.decimal(0n, 28),
    ]),
    row([val.decimal(1n, 38), val.decimal(-1n, 38), val.null8(), val.null8(), val.null8()]),
    nbcRow([null, null, null, null, null]),
    // Negation carries across zero words.
    row([
      val.decimal(-(2n ** 96n), 38),
      val.decimal(-(2n ** 64n), 38),
      val.decimal(-1n, 5),
      val.decimal(-(2n ** 32n), 12),
      val.decimal(-(2n ** 64n), 28),
    ]),
  )]);
  assert.deepEqual(rows[0]!.map(big), [MAX38, MAX38, -150n, 1234n, -(10n ** 27n)]);
  assert.deepEqual(rows[1]!.map(big), [-MAX38, -MAX38, 99999n, -(10n ** 12n - 1n), 0n]);
  assert.deepEqual(rows[2]!.slice(0, 2).map(big), [1n, -1n]);
  assert.deepEqual(rows[2]!.slice(2), [null, null, null]);
  assert.deepEqual(rows[3], [null, null, null, null, null]);
  assert.deepEqual(rows[4]!.map(big), [
    -(2n ** 96n),
    -(2n ** 64n),
    -1n,
    -(2n ** 32n),
    -(2n ** 64n),
  ]);
});

Deno.test("money and smallmoney: min and max as value × 10⁴, nullable and fixed forms", () => {
  const columns = [
    col.moneyN("m", 8),
    col.moneyN("sm", 4),
    col.fixed("mf", 0x3c),
    col.fixed("smf", 0x7a),
  ];
  const fixedMoney = (v: bigint) => val.money(v).slice(1);
  const fixedSmall = (v: number) => val.smallMoney(v).slice(1);
  const rows = parse([stream(
    columns,
    row([
      val.money(-(2n ** 63n)),
      val.smallMoney(-(2 ** 31)),
      fixedMoney(2n ** 63n - 1n),
      fixedSmall(2 ** 31 - 1),
    ]),
    row([
      val.money(2n ** 63n - 1n),
      val.smallMoney(2 ** 31 - 1),
      fixedMoney(-12345n),
      fixedSmall(-1),
    ]),
    row([val.null8(), val.null8(), fixedMoney(0n), fixedSmall(0)]),
  )]);
  // -922337203685477.5808 and 922337203685477.5807; -214748.3648 and 214748.3647.
  assert.deepEqual(rows[0]!.map(big), [-(2n ** 63n), -(2n ** 31n), 2n ** 63n - 1n, 2n ** 31n - 1n]);
  assert.deepEqual(rows[1]!.map(big), [2n ** 63n - 1n, 2n ** 31n - 1n, -12345n, -1n]);
  assert.deepEqual(rows[2], [null, null, new Uint32Array(4), new Uint32Array(4)]);
});

Deno.test("bigint is a JS bigint at ±2^63; narrower integers stay tedious' numbers", () => {
  const columns = [col.intN("b", 8), col.fixed("bf", 0x7f), col.intN("i", 4), col.intN("t", 1)];
  const rows = parse([stream(
    columns,
    row([val.int(-(2n ** 63n), 8), le8(2n ** 63n - 1n), val.int(-(2 ** 31), 4), val.int(255, 1)]),
    row([val.int(2n ** 63n - 1n, 8), le8(-1n), val.null8(), val.null8()]),
    row([val.null8(), le8(0n), val.int(7, 4), val.int(0, 1)]),
  )]);
  assert.deepEqual(rows, [
    [-(2n ** 63n), 2n ** 63n - 1n, -(2 ** 31), 255],
    [2n ** 63n - 1n, -1n, null, null],
    [null, 0n, 7, 0],
  ]);
});

function le8(v: bigint): number[] {
  return val.int(v, 8).slice(1);
}

Deno.test("datetime and smalldatetime: their ranges, 1/300 s rounded to 100 ns", () => {
  const columns = [
    col.dateTimeN("dt", 8),
    col.dateTimeN("sdt", 4),
    col.fixed("dtf", 0x3d),
    col.fixed("sdtf", 0x3a),
  ];
  const d1900 = (y: number, m: number, d: number) => unixDays(y, m, d) + 25_567;
  const rows = parse([stream(
    columns,
    row([
      val.dateTime(d1900(1753, 1, 1), 0),
      val.smallDateTime(0, 0),
      val.dateTime(d1900(9999, 12, 31), 86_399 * 300 + 299).slice(1),
      val.smallDateTime(65_535, 1439).slice(1),
    ]),
    row([
      val.dateTime(d1900(9999, 12, 31), 86_399 * 300 + 299),
      val.smallDateTime(d1900(2079, 6, 6), 1439),
      val.dateTime(0, 1).slice(1),
      val.smallDateTime(0, 0).slice(1),
    ]),
    nbcRow([null, null, val.dateTime(0, 2).slice(1), val.smallDateTime(0, 1).slice(1)]),
  )]);
  const lastTick = 863_999_966_667; // 23:59:59.997 is 23:59:59.9966667 as datetime2
  assert.deepEqual(rows[0], [
    { days: unixDays(1753, 1, 1), ticks: 0 },
    { days: unixDays(1900, 1, 1), ticks: 0 },
    { days: unixDays(9999, 12, 31), ticks: lastTick },
    { days: unixDays(2079, 6, 6), ticks: 1439 * 600_000_000 },
  ]);
  assert.deepEqual(rows[1], [
    { days: unixDays(9999, 12, 31), ticks: lastTick },
    { days: unixDays(2079, 6, 6), ticks: 1439 * 600_000_000 },
    { days: unixDays(1900, 1, 1), ticks: 33_333 },
    { days: -25_567, ticks: 0 },
  ]);
  assert.deepEqual(rows[2], [
    null,
    null,
    { days: -25_567, ticks: 66_667 },
    { days: -25_567, ticks: 600_000_000 },
  ]);
});

Deno.test("date, time(n), datetime2(n): first and last values, scales scaled to 100 ns", () => {
  const columns = [
    col.date("d"),
    col.time("t7", 7),
    col.time("t0", 0),
    col.dateTime2("dt7", 7),
    col.dateTime2("dt3", 3),
  ];
  const last = days0001(9999, 12, 31);
  const rows = parse([stream(
    columns,
    row([
      val.date(0),
      val.time(863_999_999_999, 7),
      val.time(86_399, 0),
      val.dateTime2(0, 0, 7),
      val.dateTime2(45_296_789, days0001(2024, 2, 29), 3),
    ]),
    row([
      val.date(last),
      val.time(0, 7),
      val.time(3600, 0),
      val.dateTime2(863_999_999_999, last, 7),
      val.dateTime2(86_399_999, last, 3),
    ]),
    row([val.null8(), val.null8(), val.null8(), val.null8(), val.null8()]),
  )]);
  const dt = (days: number, ticks: number): DayTicks => ({ days, ticks });
  assert.deepEqual(rows[0], [
    dt(-719_162, 0),
    dt(0, 863_999_999_999),
    dt(0, 863_990_000_000),
    dt(-719_162, 0),
    dt(unixDays(2024, 2, 29), 452_967_890_000),
  ]);
  assert.deepEqual(rows[1], [
    dt(2_932_896, 0),
    dt(0, 0),
    dt(0, 36_000_000_000),
    dt(2_932_896, 863_999_999_999),
    dt(2_932_896, 863_999_990_000),
  ]);
  assert.deepEqual(rows[2], [null, null, null, null, null]);
});

Deno.test("datetimeoffset: the wire's UTC time, whatever the offset (+14:00, -12:00)", () => {
  const columns = [col.dateTimeOffset("a", 7), col.dateTimeOffset("b", 2)];
  // 2024-01-01 00:30 +14:00 is 2023-12-31 10:30 UTC; 2024-01-01 23:00 -12:00 is 01-02 11:00 UTC.
  const rows = parse([stream(
    columns,
    row([
      val.dateTimeOffset(37_800 * 10_000_000 + 1, days0001(2023, 12, 31), 840, 7),
      val.dateTimeOffset(39_600 * 100, days0001(2024, 1, 2), -720, 2),
    ]),
    row([val.null8(), val.dateTimeOffset(0, days0001(9999, 12, 31), 0, 2)]),
  )]);
  assert.deepEqual(rows, [
    [
      { days: unixDays(2023, 12, 31), ticks: 378_000_000_001 },
      { days: unixDays(2024, 1, 2), ticks: 396_000_000_000 },
    ],
    [null, { days: 2_932_896, ticks: 0 }],
  ]);
});

Deno.test("uniqueidentifier: RFC 4122 byte order of the known GUID, NULL", () => {
  const rows = parse([stream(
    [col.guid("g")],
    row([val.guid(KNOWN_GUID.wire)]),
    row([val.null8()]),
  )]);
  // 6F9619FF-8B86-D011-B42D-00C04FC964FF
  assert.equal(toHex(rows[0]![0]), KNOWN_GUID.hex);
  assert.equal(rows[1]![0], null);
});

Deno.test("other types are read by tedious as before", () => {
  const columns = [col.nvarchar("s", 20), col.varbinary("v", 8), col.bitN("b"), col.floatN("f", 8)];
  const rows = parse([stream(
    columns,
    row([val.nvarchar("héllo ✓"), val.varbinary([1, 2, 3]), [1, 1], [8, ...f64(1.5)]]),
    row([val.null16(), val.null16(), val.null8(), val.null8()]),
  )]);
  assert.equal(rows[0]![0], "héllo ✓");
  assert.deepEqual([...(rows[0]![1] as Uint8Array)], [1, 2, 3]);
  assert.deepEqual(rows[0]!.slice(2), [true, 1.5]);
  assert.deepEqual(rows[1], [null, null, null, null]);
});

function f64(v: number): number[] {
  return [...new Uint8Array(Float64Array.of(v).buffer)];
}

Deno.test("a value cut at any byte by a packet boundary decodes the same (NotEnoughData retry)", () => {
  const columns = [
    col.decimalN("d", 38, 4),
    col.moneyN("m", 8),
    col.intN("b", 8),
    col.dateTime2("t", 7),
    col.dateTimeOffset("o", 7),
    col.dateTimeN("dt", 8),
    col.guid("g"),
    col.date("day"),
  ];
  const bytes = stream(
    columns,
    row([
      val.decimal(-MAX38, 38),
      val.money(-(2n ** 63n)),
      val.int(2n ** 63n - 1n, 8),
      val.dateTime2(863_999_999_999, days0001(9999, 12, 31), 7),
      val.dateTimeOffset(1, days0001(1, 1, 1), -720, 7),
      val.dateTime(-53_690, 25_919_999),
      val.guid(KNOWN_GUID.wire),
      val.date(days0001(1970, 1, 1)),
    ]),
  );
  const whole = parse([bytes]);
  assert.equal(big(whole[0]![0]), -MAX38);
  for (let cut = 1; cut < bytes.length; cut++) {
    const split = parse([bytes.slice(0, cut), bytes.slice(cut)]);
    assert.deepEqual(split, whole, `cut at byte ${cut}`);
  }
  // One byte at a time.
  assert.deepEqual(parse(Array.from(bytes, (b) => Uint8Array.of(b))), whole);
});

Deno.test("decoded values do not keep a view into the parser's buffer", () => {
  const bytes = stream(
    [col.decimalN("d", 38, 0), col.guid("g")],
    row([val.decimal(MAX38, 38), val.guid(KNOWN_GUID.wire)]),
  );
  const chunk = Buffer.from(bytes);
  const parser = new TdsParser(PARSER_OPTIONS);
  parser.write(chunk);
  const values: unknown[] = [];
  for (let token = parser.read(); token !== undefined; token = parser.read()) {
    if (token.name === "ROW") {
      for (const c of (token as unknown as { columns: { value: unknown }[] }).columns) {
        values.push(c.value);
      }
    }
  }
  chunk.fill(0);
  assert.equal(big(values[0]), MAX38);
  assert.equal(toHex(values[1]), KNOWN_GUID.hex);
});

Deno.test("a malformed length fails like tedious does", () => {
  const bad = stream([col.decimalN("d", 38, 0)], row([[6, 1, 0, 0, 0, 0]]));
  assert.throws(() => parse([bad]), /Unsupported numeric dataLength 6/);
  const guid = stream([col.guid("g")], row([[4, 1, 2, 3, 4]]));
  assert.throws(() => parse([guid]), /Unsupported guid size 4/);
});
