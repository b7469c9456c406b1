/**
 * TDS test server: every SQL Server type of the SQL Server source, with NULLs and the extremes of
 * each, read back through unmodified tedious; and the exact wire bytes of the encodings tedious
 * turns into lossy JS values (money, decimal, datetime, datetimeoffset, GUID byte order).
 */
import assert from "node:assert/strict";
import { startTdsServer } from "../_helpers/tds_server.ts";
import { closeTds, connectTds, runTds } from "../_helpers/tds/client.ts";
import { writeValue } from "../_helpers/tds/values.ts";
import { parseType } from "../_helpers/tds/types.ts";
import { Writer } from "../_helpers/tds/wire.ts";

const GUID = "6F9619FF-8B86-D011-B42D-00C04FC964FF";
const POINT = "0xE6100000010C3333333333D34740F6285C8FC2955EC0"; // POINT(-122.34 47.65) SRID 4326
const LONG_N = "ü".repeat(5000);
const LONG_A = "x".repeat(9000);

/** Plain T-SQL: runs on a real SQL Server as written. */
const FIXTURE = `
CREATE TABLE [dbo].[types_t] (
  [id] int NOT NULL PRIMARY KEY,
  [c_bit] bit NULL, [c_tinyint] tinyint NULL, [c_smallint] smallint NULL, [c_int] int NULL,
  [c_bigint] bigint NULL, [c_decimal] decimal(38,10) NULL, [c_numeric] numeric(9,2) NULL,
  [c_money] money NULL, [c_smallmoney] smallmoney NULL, [c_real] real NULL, [c_float] float NULL,
  [c_date] date NULL, [c_time] time(7) NULL, [c_time3] time(3) NULL, [c_datetime] datetime NULL,
  [c_datetime2] datetime2(7) NULL, [c_datetime2_3] datetime2(3) NULL,
  [c_smalldatetime] smalldatetime NULL, [c_dto] datetimeoffset(7) NULL,
  [c_char] char(5) NULL, [c_varchar] varchar(20) NULL, [c_nchar] nchar(3) NULL,
  [c_nvarchar] nvarchar(50) NULL, [c_nvarcharmax] nvarchar(max) NULL, [c_varcharmax] varchar(max) NULL,
  [c_text] text NULL, [c_ntext] ntext NULL, [c_xml] xml NULL,
  [c_binary] binary(4) NULL, [c_varbinary] varbinary(10) NULL, [c_varbinarymax] varbinary(max) NULL,
  [c_image] image NULL, [c_guid] uniqueidentifier NULL, [c_variant] sql_variant NULL,
  [c_geography] geography NULL, [c_hierarchyid] hierarchyid NULL
);
INSERT INTO [dbo].[types_t] VALUES
 (1, 0, 0, -32768, -2147483648, -9223372036854775808,
  -999999999999999999999999999.9999999999, -9999999.99, -922337203685477.5808, -214748.3648,
  -3.40E+38, -1.79E+308, '0001-01-01', CAST('00:00:00' AS time(7)), '00:00:00.000',
  '1753-01-01 00:00:00.000', CAST('0001-01-01 00:00:00' AS datetime2(7)), '0001-01-01 00:00:00.000',
  '1900-01-01 00:00', CAST('0001-01-01 00:00:00 -14:00' AS datetimeoffset(7)),
  '', '', N'', N'', N'', '', '', N'', N'<a/>', 0x00000000, 0x, 0x, 0x,
  '00000000-0000-0000-0000-000000000000', N'', CAST(${POINT} AS geography), CAST(0x AS hierarchyid)),
 (2, 1, 255, 32767, 2147483647, 9223372036854775807,
  999999999999999999999999999.9999999999, 9999999.99, 922337203685477.5807, 214748.3647,
  3.40E+38, 1.79E+308, '9999-12-31', CAST('23:59:59.9999999' AS time(7)), '23:59:59.999',
  '9999-12-31 23:59:59.997', CAST('9999-12-31 23:59:59.9999999' AS datetime2(7)),
  '9999-12-31 23:59:59.999', '2079-06-06 23:59',
  CAST('9999-12-31 23:59:59.9999999 +14:00' AS datetimeoffset(7)),
  'abc', 'café €', N'日本', N'😀 ünï', N'${LONG_N}', '${LONG_A}', 'text ü', N'ntext 日本',
  N'<a b="1">x</a>', 0x01020304, 0xDEADBEEF, 0x00FF, 0x0102, '${GUID}', N'variant',
  CAST(${POINT} AS geography), CAST(0x58 AS hierarchyid)),
 (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL),
 (4, 1, 7, 1, 1, 1, 12345.6789012345, 1234.5, 12.3456, -0.5, 0.5, 0.1, '2024-02-29',
  CAST('12:34:56.1234567' AS time(7)), '12:34:56.789', '2024-02-29 12:34:56.997',
  CAST('2024-02-29 12:34:56.1234567' AS datetime2(7)), '2024-02-29 12:34:56.789', '2024-02-29 12:35',
  CAST('2024-02-29 12:34:56.1234567 +05:30' AS datetimeoffset(7)),
  'a', 'b', N'c', N'd', N'e', 'f', 'g', N'h', N'<i/>', 0xFF, 0x00, 0x01, 0x02,
  '${GUID}', N'v', NULL, NULL);
`;

const utc = (s: string) => new Date(s).getTime();
const ns = (d: unknown) => (d as { nanosecondsDelta?: number }).nanosecondsDelta;
const hex = (b: unknown) =>
  Array.from(b as Uint8Array).map((x) => x.toString(16).padStart(2, "0")).join("");
const close = (a: unknown, b: number) =>
  assert.ok(Math.abs((a as number) / b - 1) < 1e-12, `${a} ≈ ${b}`);

Deno.test({
  name: "TDS server: every type reads back through tedious with NULLs and extremes",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using srv = await startTdsServer();
    await srv.sql(FIXTURE);
    const conn = await connectTds({
      ...srv.login,
      host: srv.host,
      port: srv.port,
      database: srv.database,
    });
    try {
      const { columns, rows } = await runTds(conn, "SELECT * FROM [dbo].[types_t] ORDER BY [id]");
      const col = (name: string) => columns.findIndex((c) => c.colName === name);
      const at = (id: number, name: string) => rows[id - 1]![col(name)];
      const typeOf = (name: string) => columns[col(name)]!.type.name;
      assert.deepEqual(
        columns.map((c) => typeOf(c.colName)),
        [
          "IntN",
          "BitN",
          "IntN",
          "IntN",
          "IntN",
          "IntN",
          "DecimalN",
          "NumericN",
          "MoneyN",
          "MoneyN",
          "FloatN",
          "FloatN",
          "Date",
          "Time",
          "Time",
          "DateTimeN",
          "DateTime2",
          "DateTime2",
          "DateTimeN",
          "DateTimeOffset",
          "Char",
          "VarChar",
          "NChar",
          "NVarChar",
          "NVarChar",
          "VarChar",
          "Text",
          "NText",
          "Xml",
          "Binary",
          "VarBinary",
          "VarBinary",
          "Image",
          "UniqueIdentifier",
          "Variant",
          "UDT",
          "UDT",
        ],
      );
      const meta = (name: string) => columns[col(name)]!;
      assert.deepEqual([meta("c_decimal").precision, meta("c_decimal").scale], [38, 10]);
      assert.deepEqual([meta("c_numeric").precision, meta("c_numeric").scale], [9, 2]);
      assert.equal(meta("c_time").scale, 7);
      assert.equal(meta("c_datetime2_3").scale, 3);
      assert.equal(meta("c_nvarchar").dataLength, 100);
      assert.equal(meta("c_nvarcharmax").dataLength, 0xffff);
      assert.equal(meta("c_geography").udtInfo?.typeName, "geography");
      assert.equal(meta("c_hierarchyid").udtInfo?.typeName, "hierarchyid");

      // NULL row: every column but the key is NULL (sent in an NBCROW bitmap).
      assert.deepEqual(rows[2]!.slice(1), Array(36).fill(null));

      // Integers and bit.
      assert.deepEqual(
        [1, 2].map((id) =>
          ["c_bit", "c_tinyint", "c_smallint", "c_int", "c_bigint"].map((c) => at(id, c))
        ),
        [[false, 0, -32768, -2147483648, "-9223372036854775808"], [
          true,
          255,
          32767,
          2147483647,
          "9223372036854775807",
        ]],
      );
      // Decimals and money: tedious hands out floats; exact where a double is exact.
      close(at(1, "c_decimal"), -999999999999999999999999999.9999999999);
      close(at(2, "c_money"), 922337203685477.5807);
      close(at(1, "c_money"), -922337203685477.5808);
      assert.deepEqual(
        ["c_numeric", "c_money", "c_smallmoney", "c_real", "c_float"].map((c) => at(4, c)),
        [1234.5, 12.3456, -0.5, 0.5, 0.1],
      );
      assert.deepEqual([at(1, "c_smallmoney"), at(2, "c_smallmoney")], [-214748.3648, 214748.3647]);
      assert.deepEqual([at(1, "c_numeric"), at(2, "c_numeric")], [-9999999.99, 9999999.99]);
      assert.deepEqual([at(1, "c_real"), at(2, "c_real")], [
        Math.fround(-3.4e38),
        Math.fround(3.4e38),
      ]);
      assert.deepEqual([at(1, "c_float"), at(2, "c_float")], [-1.79e308, 1.79e308]);

      // Dates and times (tedious: UTC Date plus nanosecondsDelta for the 100-ns ticks).
      const t = (id: number, name: string) => (at(id, name) as Date).getTime();
      assert.equal(t(1, "c_date"), utc("0001-01-01T00:00:00Z"));
      assert.equal(t(2, "c_date"), utc("9999-12-31T00:00:00Z"));
      assert.equal(t(2, "c_time"), utc("1970-01-01T23:59:59.999Z"));
      assert.equal(ns(at(2, "c_time")), 0.0009999);
      assert.equal(t(4, "c_time3"), utc("1970-01-01T12:34:56.789Z"));
      assert.equal(t(1, "c_datetime"), utc("1753-01-01T00:00:00Z"));
      assert.equal(t(2, "c_datetime"), utc("9999-12-31T23:59:59.997Z"));
      assert.equal(t(4, "c_datetime"), utc("2024-02-29T12:34:56.997Z"));
      assert.equal(t(1, "c_datetime2"), utc("0001-01-01T00:00:00Z"));
      assert.equal(t(2, "c_datetime2"), utc("9999-12-31T23:59:59.999Z"));
      assert.equal(ns(at(2, "c_datetime2")), 0.0009999);
      assert.equal(t(4, "c_datetime2"), utc("2024-02-29T12:34:56.123Z"));
      assert.equal(Math.round(ns(at(4, "c_datetime2"))! * 1e7), 4567);
      assert.equal(t(2, "c_datetime2_3"), utc("9999-12-31T23:59:59.999Z"));
      assert.equal(t(1, "c_smalldatetime"), utc("1900-01-01T00:00:00Z"));
      assert.equal(t(2, "c_smalldatetime"), utc("2079-06-06T23:59:00Z"));
      // datetimeoffset: the UTC instant.
      assert.equal(t(1, "c_dto"), utc("0001-01-01T14:00:00Z"));
      assert.equal(t(2, "c_dto"), utc("9999-12-31T09:59:59.999Z"));
      assert.equal(t(4, "c_dto"), utc("2024-02-29T07:04:56.123Z"));
      assert.equal(Math.round(ns(at(4, "c_dto"))! * 1e7), 4567);

      // Strings: char/nchar padded like SQL Server, code page 1252 for varchar, UCS-2 for nvarchar.
      assert.deepEqual(
        ["c_char", "c_varchar", "c_nchar", "c_nvarchar", "c_text", "c_ntext", "c_xml"].map((c) =>
          at(2, c)
        ),
        ["abc  ", "café €", "日本 ", "😀 ünï", "text ü", "ntext 日本", '<a b="1">x</a>'],
      );
      assert.deepEqual(["c_char", "c_varchar", "c_nvarchar", "c_text"].map((c) => at(1, c)), [
        "     ",
        "",
        "",
        "",
      ]);
      assert.equal(at(2, "c_nvarcharmax"), LONG_N);
      assert.equal(at(2, "c_varcharmax"), LONG_A);
      assert.equal(at(1, "c_nvarcharmax"), "");

      // Binary.
      assert.deepEqual(
        ["c_binary", "c_varbinary", "c_varbinarymax", "c_image"].map((c) => hex(at(2, c))),
        ["01020304", "deadbeef", "00ff", "0102"],
      );
      assert.deepEqual(["c_varbinary", "c_varbinarymax"].map((c) => hex(at(1, c))), ["", ""]);

      // GUID, variant, CLR types (raw serialized bytes).
      assert.equal(at(2, "c_guid"), GUID);
      assert.equal(at(1, "c_guid"), "00000000-0000-0000-0000-000000000000");
      assert.equal(at(2, "c_variant"), "variant");
      assert.equal(hex(at(2, "c_geography")), POINT.slice(2).toLowerCase());
      assert.equal(hex(at(2, "c_hierarchyid")), "58");
      assert.deepEqual([at(4, "c_geography"), at(4, "c_hierarchyid")], [null, null]);
    } finally {
      await closeTds(conn);
    }
  },
});

const bytes = (type: string, value: string) => {
  const w = new Writer();
  writeValue(w, parseType(type)!, new TextEncoder().encode(value));
  return hex(w.view()).toUpperCase();
};

Deno.test("TDS server: wire bytes of GUIDs, money, decimal, dates and times are SQL Server's", () => {
  // Mixed-endian GUID: the first three groups little-endian.
  assert.equal(bytes("uniqueidentifier", GUID), "10" + "FF19966F868B11D0B42D00C04FC964FF");
  // money: (high i32, low u32) of value × 10⁴; -1.0000 = -10000 = 0xFFFFFFFF_FFFFD8F0.
  assert.equal(bytes("money", "-1.0000"), "08" + "FFFFFFFF" + "F0D8FFFF");
  assert.equal(bytes("money", "922337203685477.5807"), "08" + "FFFFFF7F" + "FFFFFFFF");
  assert.equal(bytes("smallmoney", "1.5"), "04" + "983A0000");
  // decimal(9,2) -12.34: length 5, sign 0, magnitude 1234 little-endian.
  assert.equal(bytes("decimal(9,2)", "-12.34"), "05" + "00" + "D2040000");
  assert.equal(bytes("decimal(38,0)", "1"), "11" + "01" + "01" + "00".repeat(15));
  // date: 3-byte days since 0001-01-01 (2000-01-01 is day 730119 = 0x0B2407).
  assert.equal(bytes("date", "2000-01-01"), "03" + "07240B");
  // datetime: days since 1900-01-01, then 1/300-s ticks (00:00:01.000 = 300 ticks).
  assert.equal(bytes("datetime", "1900-01-02 00:00:01"), "08" + "01000000" + "2C010000");
  // smalldatetime: u16 days, u16 minutes.
  assert.equal(bytes("smalldatetime", "1900-01-02 01:01:00"), "04" + "0100" + "3D00");
  // time(7) 00:00:01: 10,000,000 units in 5 bytes; time(0): 1 in 3 bytes.
  assert.equal(bytes("time(7)", "00:00:01.0000000"), "05" + "8096980000");
  assert.equal(bytes("time(0)", "00:00:01"), "03" + "010000");
  // datetime2(3) 2000-01-01 00:00:00.001: 1 unit in 4 bytes, then the date.
  assert.equal(bytes("datetime2(3)", "2000-01-01 00:00:00.001"), "07" + "01000000" + "07240B");
  // datetimeoffset(0) 2000-01-01 01:00 +01:00 = 00:00 UTC, offset +60 minutes.
  assert.equal(
    bytes("datetimeoffset(0)", "2000-01-01 01:00:00.0000000 +01:00"),
    "08" + "000000" + "07240B" + "3C00",
  );
});
