import assert from "node:assert/strict";
import { ConfigError } from "../../core/errors.ts";
import { decimalPrecision, type MysqlField, planColumns } from "./_types.ts";

const U = 32;
const f = (
  name: string,
  columnType: number,
  extra: Partial<MysqlField> = {},
): MysqlField => ({
  name,
  columnType,
  flags: 0,
  columnLength: 11,
  decimals: 0,
  characterSet: 63,
  ...extra,
});

Deno.test("the wire definitions map to their Arrow types", () => {
  const table: [MysqlField, string, string][] = [
    [f("a", 1, { columnLength: 1 }), "tinyint(1)", "Bool"],
    [f("a", 16, { columnLength: 1, flags: U }), "bit(1)", "Bool"],
    [f("a", 16, { columnLength: 8, flags: U }), "bit(8)", "Int64"],
    [f("a", 1, { columnLength: 4 }), "tinyint", "Int16"],
    [f("a", 1, { columnLength: 3, flags: U }), "tinyint unsigned", "Int16"],
    [f("a", 2), "smallint", "Int16"],
    [f("a", 2, { flags: U }), "smallint unsigned", "Int32"],
    [f("a", 13, { flags: U }), "year", "Int16"],
    [f("a", 9), "mediumint", "Int32"],
    [f("a", 9, { flags: U }), "mediumint unsigned", "Int32"],
    [f("a", 3), "int", "Int32"],
    [f("a", 3, { flags: U }), "int unsigned", "Int64"],
    [f("a", 8), "bigint", "Int64"],
    [f("a", 8, { flags: U }), "bigint unsigned", "Uint64"],
    [f("a", 246, { columnLength: 14, decimals: 2 }), "decimal(12,2)", "Decimal[12e+2]"],
    [f("a", 4), "float", "Float32"],
    [f("a", 5), "double", "Float64"],
    [f("a", 10), "date", "Date32<DAY>"],
    [f("a", 11, { decimals: 6 }), "time(6)", "Time64<MICROSECOND>"],
    [f("a", 12, { decimals: 6 }), "datetime(6)", "Timestamp<MICROSECOND>"],
    [f("a", 7), "timestamp", "Timestamp<MICROSECOND, UTC>"],
    [f("a", 253, { characterSet: 224 }), "varchar", "Utf8"],
    [f("a", 252, { characterSet: 224 }), "text", "Utf8"],
    [f("a", 252), "blob", "Binary"],
    [f("a", 254), "binary", "Binary"],
    [f("a", 245), "json", "Utf8"],
    [f("a", 252, { characterSet: 224, extendedFormat: "json" }), "json", "Utf8"],
    [f("a", 254, { characterSet: 224, flags: 256 }), "enum", "Utf8"],
    [f("a", 254, { characterSet: 224, flags: 2048 }), "set", "Utf8"],
  ];
  for (const [field, native, arrow] of table) {
    const p = planColumns([field], {});
    assert.equal(p.columns[0]!.nativeType, native);
    assert.equal(String(p.columns[0]!.arrowType), arrow, native);
  }
  const json = planColumns([f("j", 245)], {});
  assert.equal(json.columns[0]!.logicalType, "json");
  assert.equal(json.schema.fields[0]!.metadata.get("ARROW:extension:name"), "arrow.json");
  const e = planColumns([f("e", 254, { characterSet: 224, flags: 256 })], {});
  assert.equal(e.columns[0]!.logicalType, "enum");
  assert.equal(e.columns[0]!.fidelity, "compatible");
});

Deno.test("decimal precision subtracts the sign and point from the display length", () => {
  assert.equal(decimalPrecision({ columnLength: 14, decimals: 2, flags: 0 }), 12);
  assert.equal(decimalPrecision({ columnLength: 13, decimals: 2, flags: U }), 12);
  assert.equal(decimalPrecision({ columnLength: 11, decimals: 0, flags: 0 }), 10);
  assert.equal(decimalPrecision({ columnLength: 38, decimals: 0, flags: U }), 38);
});

Deno.test("every unsupported column is named in one error, with a remedy", () => {
  assert.throws(
    () =>
      planColumns([
        f("g", 255),
        f("ok", 3),
        f("big", 246, { columnLength: 67, decimals: 30 }),
      ], {}),
    (e: unknown) =>
      e instanceof ConfigError && e.code === "source.unsupported_types" &&
      e.message.includes("'g' (geometry)") && e.message.includes("'big' (decimal(65,30))") &&
      e.message.includes("CAST(g AS CHAR)") && !e.message.includes("'ok'"),
  );
});

Deno.test("overrides apply where the wire value allows them and are refused elsewhere", () => {
  const p = planColumns([
    f("u", 254, { characterSet: 224, columnLength: 144 }),
    f("b", 254, { columnLength: 16 }),
    f("i", 2),
    f("d", 246, { columnLength: 67, decimals: 30 }),
    f("t", 12, { decimals: 6 }),
  ], { u: "uuid", b: "uuid", i: "bigint", d: "decimal(38,10)", t: "timestamptz" });
  assert.deepEqual(p.columns.map((c) => String(c.arrowType)), [
    "FixedSizeBinary[16]",
    "FixedSizeBinary[16]",
    "Int64",
    "Decimal[38e+10]",
    "Timestamp<MICROSECOND, UTC>",
  ]);
  assert.throws(
    () => planColumns([f("x", 3, { flags: U }), f("y", 5)], { x: "int32", y: "uuid" }),
    (e: unknown) =>
      e instanceof ConfigError && e.message.includes("'x' (int unsigned)") &&
      e.message.includes("'y' (double)"),
  );
  assert.throws(
    () => planColumns([f("x", 3)], { x: "varchar(9)" }),
    (e: unknown) => e instanceof ConfigError && e.message.includes("not a known type"),
  );
});
