import assert from "node:assert/strict";
import { ConfigError } from "../../core/errors.ts";
import { mssqlColumn, type MssqlColumnMeta, mssqlColumns } from "./_types.ts";
import { mssqlSchema } from "./_batch.ts";
import {
  col,
  colMetadata,
  parseTokens,
  type TdsColumn,
} from "../../../tests/_helpers/tds_tokens.ts";

/** tedious' own metadata of the columns, from a COLMETADATA token through its parser. */
function metadataOf(...columns: Parameters<typeof colMetadata>[0]): MssqlColumnMeta[] {
  return parseTokens([colMetadata(columns)]).metadata as MssqlColumnMeta[];
}

const m = (colName: string, name: string, extra: Partial<MssqlColumnMeta> = {}) =>
  ({ colName, type: { name }, ...extra }) as MssqlColumnMeta;

Deno.test("every SQL Server type maps to its Arrow type, named as SQL Server names it", () => {
  // Through tedious' parser: [column, native type, Arrow type, fidelity].
  const table: [TdsColumn, string, string, string][] = [
    [col.bitN("a"), "bit", "Bool", "exact"],
    [col.fixed("a", 0x30), "tinyint", "Int16", "exact"],
    [col.intN("a", 1), "tinyint", "Int16", "exact"],
    [col.fixed("a", 0x34), "smallint", "Int16", "exact"],
    [col.intN("a", 4), "int", "Int32", "exact"],
    [col.intN("a", 8), "bigint", "Int64", "exact"],
    [col.fixed("a", 0x7f), "bigint", "Int64", "exact"],
    [col.decimalN("a", 12, 2), "decimal(12,2)", "Decimal[12e+2]", "exact"],
    [col.decimalN("a", 38, 38, true), "numeric(38,38)", "Decimal[38e+38]", "exact"],
    [col.moneyN("a", 8), "money", "Decimal[19e+4]", "exact"],
    [col.moneyN("a", 4), "smallmoney", "Decimal[10e+4]", "exact"],
    [col.fixed("a", 0x3c), "money", "Decimal[19e+4]", "exact"],
    [col.fixed("a", 0x7a), "smallmoney", "Decimal[10e+4]", "exact"],
    [col.floatN("a", 4), "real", "Float32", "exact"],
    [col.floatN("a", 8), "float", "Float64", "exact"],
    [col.date("a"), "date", "Date32<DAY>", "exact"],
    [col.time("a", 7), "time(7)", "Time64<MICROSECOND>", "lossy"],
    [col.time("a", 3), "time(3)", "Time64<MICROSECOND>", "exact"],
    [col.dateTime2("a", 7), "datetime2(7)", "Timestamp<MICROSECOND>", "lossy"],
    [col.dateTime2("a", 0), "datetime2(0)", "Timestamp<MICROSECOND>", "exact"],
    [col.dateTimeOffset("a", 7), "datetimeoffset(7)", "Timestamp<MICROSECOND, UTC>", "lossy"],
    [col.dateTimeN("a", 8), "datetime", "Timestamp<MICROSECOND>", "lossy"],
    [col.dateTimeN("a", 4), "smalldatetime", "Timestamp<MICROSECOND>", "exact"],
    [col.fixed("a", 0x3d), "datetime", "Timestamp<MICROSECOND>", "lossy"],
    [col.guid("a"), "uniqueidentifier", "FixedSizeBinary[16]", "exact"],
    [col.nvarchar("a", 40), "nvarchar(40)", "Utf8", "exact"],
    [col.varbinary("a", 16), "varbinary(16)", "Binary", "exact"],
  ];
  const parsed = metadataOf(...table.map(([c]) => c));
  parsed.forEach((meta, i) => {
    const c = mssqlColumn(meta);
    assert.deepEqual([c.nativeType, String(c.arrowType), c.fidelity], table[i]!.slice(1));
  });
  // Types the token helper does not encode, as tedious' metadata parser describes them.
  const byHand: [MssqlColumnMeta, string, string][] = [
    [m("a", "Char", { dataLength: 10 }), "char(10)", "Utf8"],
    [m("a", "VarChar", { dataLength: 0xffff }), "varchar(max)", "Utf8"],
    [m("a", "NChar", { dataLength: 20 }), "nchar(10)", "Utf8"],
    [m("a", "NVarChar", { dataLength: 0xffff }), "nvarchar(max)", "Utf8"],
    [m("a", "Text", { dataLength: 2 ** 31 - 1 }), "text", "Utf8"],
    [m("a", "NText", { dataLength: 2 ** 31 - 2 }), "ntext", "Utf8"],
    [m("a", "Xml"), "xml", "Utf8"],
    [m("a", "Binary", { dataLength: 16 }), "binary(16)", "Binary"],
    [m("a", "VarBinary", { dataLength: 0xffff }), "varbinary(max)", "Binary"],
    [m("a", "Image", { dataLength: 2 ** 31 - 1 }), "image", "Binary"],
  ];
  for (const [meta, native, arrow] of byHand) {
    const c = mssqlColumn(meta);
    assert.deepEqual([c.nativeType, String(c.arrowType), c.fidelity], [native, arrow, "exact"]);
  }
});

Deno.test("uniqueidentifier carries the uuid logical type and Arrow extension, as elsewhere", () => {
  const [g] = mssqlColumns(metadataOf(col.guid("g")), {});
  assert.equal(g!.logicalType, "uuid");
  const field = mssqlSchema([g!]).fields[0]!;
  assert.equal(field.metadata.get("ARROW:extension:name"), "arrow.uuid");
  assert.equal(field.metadata.get("ARROW:extension:metadata"), "");
  assert.equal(field.metadata.get("rivet.logical_type"), "uuid");
  assert.equal(field.metadata.get("rivet.native_type"), "uniqueidentifier");
  assert.equal(field.metadata.get("rivet.fidelity"), "exact");
});

Deno.test("sql_variant and CLR types are refused together, each naming the cast that fixes it", () => {
  const columns = mssqlColumns([
    m("v", "Variant"),
    m("ok", "IntN", { dataLength: 4 }),
    m("shape", "UDT", { udtInfo: { typeName: "geography" } }),
    m("plane", "UDT", { udtInfo: { typeName: "geometry" } }),
    m("node", "UDT", { udtInfo: { typeName: "hierarchyid" } }),
  ], {});
  assert.equal(columns[0]!.fidelity, "unsupported");
  assert.equal(columns[0]!.arrowType, undefined);
  assert.match(columns[0]!.unsupportedReason!, /CAST\(v AS nvarchar\(max\)\)/);
  assert.throws(
    () => mssqlSchema(columns),
    (e: unknown) =>
      e instanceof ConfigError && e.code === "source.unsupported_types" &&
      e.message.includes("'v' (sql_variant)") && e.message.includes("'shape' (geography)") &&
      e.message.includes("shape.STAsText()") && e.message.includes("'plane' (geometry)") &&
      e.message.includes("'node' (hierarchyid)") && e.message.includes("node.ToString()") &&
      !e.message.includes("'ok'"),
  );
});

Deno.test("overrides apply where the values allow them and are refused elsewhere", () => {
  const metas = metadataOf(
    col.dateTime2("t", 7),
    col.dateTimeN("dt", 8),
    col.dateTimeOffset("o", 7),
    col.intN("i", 2),
    col.fixed("ti", 0x30),
    col.floatN("r", 4),
    col.decimalN("d", 12, 2),
    col.moneyN("m", 8),
    col.nvarchar("u", 36),
    col.varbinary("b", 16),
    col.nvarchar("j", 100),
    col.guid("g"),
  );
  const columns = mssqlColumns(metas, {
    t: "timestamp_ns",
    dt: "timestamp_tz",
    o: "timestamp",
    i: "int32",
    ti: "int16",
    r: "double",
    d: "decimal(20,4)",
    m: "numeric(38,2)",
    u: "uuid",
    b: "UUID",
    j: "jsonb",
    g: "uuid",
  });
  assert.deepEqual(columns.map((c) => String(c.arrowType)), [
    "Timestamp<NANOSECOND>",
    "Timestamp<MICROSECOND, UTC>",
    "Timestamp<MICROSECOND>",
    "Int32",
    "Int16",
    "Float64",
    "Decimal[20e+4]",
    "Decimal[38e+2]",
    "FixedSizeBinary[16]",
    "FixedSizeBinary[16]",
    "Utf8",
    "FixedSizeBinary[16]",
  ]);
  assert.deepEqual(columns.map((c) => c.logicalType), [
    ...Array(8).fill(undefined),
    "uuid",
    "uuid",
    "json",
    "uuid",
  ]);
  assert.equal(columns[6]!.plan!.rescale, true, "another scale is checked value by value");
  assert.equal(mssqlColumn(metas[6]!, "decimal(14,2)").plan!.rescale, false);
  assert.equal(mssqlColumn(metas[6]!, "decimal(10,2)").plan!.rescale, true);

  const refused = mssqlColumns(
    metadataOf(
      col.intN("a", 8),
      col.fixed("b", 0x30),
      col.floatN("c", 8),
      col.date("d"),
      col.intN("e", 4),
      col.guid("f"),
      col.varbinary("g", 8),
    ),
    {
      a: "int32",
      b: "bool",
      c: "float32",
      d: "timestamp",
      e: "decimal(10,0)",
      f: "text",
      g: "json",
    },
  );
  for (const c of refused) {
    assert.equal(c.fidelity, "unsupported", c.name);
    assert.match(c.unsupportedReason!, /cannot be applied to .*; cast the column in the query/);
  }
  assert.throws(
    () => mssqlSchema(refused),
    (e: unknown) =>
      e instanceof ConfigError && e.message.includes("'a' (bigint)") &&
      e.message.includes("override 'int32' cannot be applied to bigint") &&
      e.message.includes("'g' (varbinary(8))"),
  );
  const unknown = mssqlColumn(metas[0]!, "varchar(9)");
  assert.match(
    unknown.unsupportedReason!,
    /override 'varchar\(9\)' is not a known type \(accepted:/,
  );
  const wide = mssqlColumn(metas[6]!, "decimal(40,2)");
  assert.match(wide.unsupportedReason!, /exceeds the 38 digits of Decimal128/);
});

Deno.test("an override is looked up by the column's own name only", () => {
  const columns = mssqlColumns(metadataOf(col.intN("toString", 4)), {});
  assert.equal(String(columns[0]!.arrowType), "Int32");
});
