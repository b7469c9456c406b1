import assert from "node:assert/strict";
import {
  Binary,
  Decimal,
  Field,
  FixedSizeBinary,
  Int32,
  List,
  TimeMicrosecond,
  TimestampMicrosecond,
  TimestampNanosecond,
  Uint64,
  Utf8,
} from "../core/arrow.ts";
import { judgeForTarget, parseTarget, type Target, worseFidelity } from "./targets.ts";

const exact = (arrowType: ConstructorParameters<typeof Field>[1]) => ({
  arrowType,
  fidelity: "exact" as const,
});
const fidelity = (target: Target, column: Parameters<typeof judgeForTarget>[1]) =>
  judgeForTarget(target, column).fidelity;

Deno.test("targets: names and aliases", () => {
  assert.equal(parseTarget("bq"), "bigquery");
  assert.equal(parseTarget("DUCK"), "duckdb");
  assert.equal(parseTarget("sf"), "snowflake");
  assert.equal(parseTarget("spark"), "spark");
  assert.equal(parseTarget("polars"), "polars");
  assert.equal(parseTarget("excel"), undefined);
});

Deno.test("targets: uuid", () => {
  const uuid = { ...exact(new FixedSizeBinary(16)), logicalType: "uuid" as const };
  assert.equal(fidelity("spark", uuid), "unsupported");
  assert.equal(fidelity("polars", uuid), "unsupported");
  assert.match(judgeForTarget("spark", uuid).note!, /Spark cannot read the Arrow UUID/);
  assert.deepEqual(judgeForTarget("duckdb", uuid), { fidelity: "exact", targetType: "UUID" });
  assert.equal(fidelity("bigquery", uuid), "compatible");
  assert.equal(fidelity("spark", exact(new FixedSizeBinary(16))), "exact", "plain bytes");
});

Deno.test("targets: uuid and json recommend parquet_types: portable where the reader fails", () => {
  const uuid = { ...exact(new FixedSizeBinary(16)), logicalType: "uuid" as const };
  const json = {
    arrowType: new Utf8(),
    fidelity: "logical_string" as const,
    logicalType: "json" as const,
  };
  const uuids = {
    arrowType: new List(new Field("item", new FixedSizeBinary(16), true)),
    fidelity: "compatible" as const,
    logicalType: "uuid" as const,
  };
  for (const target of ["spark", "polars"] as const) {
    assert.match(judgeForTarget(target, uuid).note!, /parquet_types: portable/, target);
  }
  assert.equal(fidelity("polars", json), "unsupported");
  assert.match(judgeForTarget("polars", json).note!, /Polars cannot read the Arrow JSON.*portable/);
  assert.equal(fidelity("duckdb", json), "logical_string");
  assert.equal(fidelity("spark", uuids), "unsupported");
  assert.match(judgeForTarget("spark", uuids).note!, /list elements: set parquet_types: portable/);
  assert.equal(fidelity("polars", uuids), "compatible");
  // Portable columns are plain text (no logical type): every reader takes them.
  for (const target of ["spark", "polars", "duckdb", "bigquery", "snowflake"] as const) {
    const text = { arrowType: new Utf8(), fidelity: "logical_string" as const };
    assert.equal(fidelity(target, text), "logical_string", target);
  }
});

Deno.test("targets: decimals above 38 digits", () => {
  const wide = exact(new Decimal(2, 50, 256));
  assert.deepEqual(judgeForTarget("bigquery", wide), {
    fidelity: "compatible",
    targetType: "BIGNUMERIC(50,2)",
  });
  assert.equal(fidelity("duckdb", wide), "lossy");
  for (const t of ["snowflake", "spark", "polars"] as const) {
    assert.equal(fidelity(t, wide), "unsupported", t);
  }
  const money = exact(new Decimal(2, 12, 128));
  for (const t of ["bigquery", "snowflake", "spark", "polars", "duckdb"] as const) {
    assert.equal(fidelity(t, money), "exact", t);
  }
  assert.equal(judgeForTarget("bigquery", money).targetType, "NUMERIC(12,2)");
  assert.equal(fidelity("bigquery", exact(new Decimal(20, 38, 128))), "compatible", "scale > 9");
});

Deno.test("targets: timestamps, times, unsigned, lists, and the source as the floor", () => {
  const ns = exact(new TimestampNanosecond("UTC"));
  assert.equal(fidelity("spark", ns), "unsupported");
  assert.equal(fidelity("bigquery", ns), "lossy");
  assert.equal(fidelity("snowflake", ns), "exact");
  assert.equal(
    judgeForTarget("bigquery", exact(new TimestampMicrosecond())).targetType,
    "DATETIME",
  );
  assert.equal(
    judgeForTarget("bigquery", exact(new TimestampMicrosecond("UTC"))).targetType,
    "TIMESTAMP",
  );
  assert.equal(fidelity("spark", exact(new TimeMicrosecond())), "unsupported");
  assert.equal(fidelity("bigquery", exact(new Uint64())), "lossy");
  assert.equal(fidelity("snowflake", exact(new Uint64())), "exact");
  const list = {
    arrowType: new List(new Field("item", new Int32(), true)),
    fidelity: "compatible" as const,
  };
  assert.equal(fidelity("spark", list), "compatible", "never better than the source");
  assert.equal(fidelity("bigquery", list), "compatible");
  for (const t of [new Utf8(), new Binary(), new Int32()]) {
    assert.equal(fidelity("bigquery", exact(t)), "exact");
  }
  const json = {
    arrowType: new Utf8(),
    fidelity: "logical_string" as const,
    logicalType: "json" as const,
  };
  assert.deepEqual(judgeForTarget("duckdb", json), {
    fidelity: "logical_string",
    targetType: "VARCHAR",
  });
  assert.deepEqual(judgeForTarget("spark", { arrowType: undefined, fidelity: "unsupported" }), {
    fidelity: "unsupported",
    targetType: "(none)",
  });
  assert.equal(worseFidelity("lossy", "compatible"), "lossy");
});
