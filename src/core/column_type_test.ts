import assert from "node:assert/strict";
import { ConfigError } from "../core/errors.ts";
import { parseColumnType } from "./column_type.ts";

Deno.test("parseColumnType maps every override alias case-insensitively", () => {
  const table: Record<string, string> = {
    bool: "bool",
    BOOLEAN: "bool",
    int2: "int16",
    SmallInt: "int16",
    int16: "int16",
    int4: "int32",
    int: "int32",
    integer: "int32",
    int32: "int32",
    int8: "int64",
    bigint: "int64",
    int64: "int64",
    float4: "float32",
    real: "float32",
    float32: "float32",
    float8: "float64",
    double: "float64",
    "double precision": "float64",
    "DOUBLE   PRECISION": "float64",
    float64: "float64",
    text: "utf8",
    varchar: "utf8",
    string: "utf8",
    char: "utf8",
    bpchar: "utf8",
    name: "utf8",
    binary: "binary",
    bytea: "binary",
    blob: "binary",
    varbinary: "binary",
    date: "date",
    json: "json",
    JSONB: "json",
    uuid: "uuid",
    timestamp: "timestamp",
    timestamp_ns: "timestamp_ns",
    timestamp_tz: "timestamp_tz",
    timestamptz: "timestamp_tz",
    timestamp_utc: "timestamp_tz",
    timestamp_tz_ns: "timestamp_tz_ns",
    timestamptz_ns: "timestamp_tz_ns",
  };
  for (const [text, kind] of Object.entries(table)) {
    assert.deepEqual(parseColumnType(text), { kind }, text);
  }
});

Deno.test("parseColumnType reads decimal and numeric precision and scale", () => {
  assert.deepEqual(parseColumnType("decimal(12,2)"), { kind: "decimal", precision: 12, scale: 2 });
  assert.deepEqual(parseColumnType(" NUMERIC( 76 , 0 ) "), {
    kind: "decimal",
    precision: 76,
    scale: 0,
  });
  assert.deepEqual(parseColumnType("numeric(1,1)"), { kind: "decimal", precision: 1, scale: 1 });
});

Deno.test("parseColumnType refuses bad strings, naming them and listing accepted forms", () => {
  for (
    const text of ["decimal(0,0)", "decimal(77,2)", "numeric(5,6)", "decimal(10)", "money", ""]
  ) {
    assert.throws(() => parseColumnType(text), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, "config.bad_column_type");
      assert.ok(error.message.includes(`'${text}'`), error.message);
      assert.match(error.message, /accepted: .*decimal\(p,s\)/);
      return true;
    }, text);
  }
});
