import assert from "node:assert/strict";
import { ConfigError } from "../../core/errors.ts";
import type { PgFieldDescription } from "./_messages.ts";
import { type PgTypeInfo, planColumns, type TypeLookup } from "./_types.ts";

function field(name: string, typeOid: number, typeModifier = -1): PgFieldDescription {
  return { name, tableOid: 0, columnNumber: 0, typeOid, typeSize: -1, typeModifier, format: 0 };
}

function numericTypmod(p: number, s: number): number {
  return ((p << 16) | s) + 4;
}

const catalog: PgTypeInfo[] = [
  { oid: 90001, name: "mood", type: "e", baseOid: 0, baseTypmod: -1, elemOid: 0, category: "E" },
  {
    oid: 90002,
    name: "_mood",
    type: "b",
    baseOid: 0,
    baseTypmod: -1,
    elemOid: 90001,
    category: "A",
  },
  { oid: 869, name: "inet", type: "b", baseOid: 0, baseTypmod: -1, elemOid: 0, category: "I" },
  { oid: 600, name: "point", type: "b", baseOid: 0, baseTypmod: -1, elemOid: 0, category: "G" },
  {
    oid: 90003,
    name: "cents",
    type: "d",
    baseOid: 1700,
    baseTypmod: numericTypmod(12, 2),
    elemOid: 0,
    category: "N",
  },
  { oid: 90004, name: "citext", type: "b", baseOid: 0, baseTypmod: -1, elemOid: 0, category: "S" },
];

function lookup(calls: number[][] = []): TypeLookup {
  return (oids) => {
    calls.push([...oids]);
    return Promise.resolve(
      new Map(catalog.filter((c) => oids.includes(c.oid)).map((c) => [c.oid, c])),
    );
  };
}

Deno.test("planColumns maps built-in OIDs without touching the catalog", async () => {
  const calls: number[][] = [];
  const plans = await planColumns(
    [field("a", 20), field("b", 1700, numericTypmod(12, 2)), field("c", 1184), field("d", 1007)],
    { overrides: {}, lookup: lookup(calls) },
  );
  assert.equal(calls.length, 0);
  assert.deepEqual(plans.columns.map((c) => c.nativeType), [
    "int8",
    "numeric(12,2)",
    "timestamptz",
    "int4[]",
  ]);
  assert.deepEqual(plans.formats, [1, 1, 1, 1]);
  assert.equal(plans.schema.fields[3]!.metadata.get("rivet.fidelity"), "compatible");
  assert.ok(plans.schema.fields.every((f) => f.nullable));
});

Deno.test("planColumns looks unknown OIDs up once and resolves enums, enum arrays, domains", async () => {
  const calls: number[][] = [];
  const plans = await planColumns(
    [field("m", 90001), field("ms", 90002), field("c", 90003), field("t", 90004)],
    { overrides: {}, lookup: lookup(calls) },
  );
  assert.equal(calls.length, 1);
  assert.deepEqual(plans.columns.map((c) => [c.nativeType, c.logicalType ?? "", c.fidelity]), [
    ["mood", "enum", "compatible"],
    ["mood[]", "enum", "compatible"],
    ["cents", "", "exact"],
    ["citext", "", "exact"],
  ]);
});

Deno.test("planColumns lists every unsupported column in one ConfigError with fixes", async () => {
  const err = await planColumns(
    [
      field("ip", 869),
      field("ok", 23),
      field("p", 600),
      field("n", 1700),
      field("big", 1700, numericTypmod(50, 2)),
    ],
    { overrides: {}, lookup: lookup() },
  ).catch((e) => e);
  assert.ok(err instanceof ConfigError);
  assert.equal(err.code, "source.unsupported_types");
  for (
    const part of [
      "'ip' (inet)",
      "'p' (point)",
      "'n' (numeric)",
      "'big' (numeric(50,2))",
      "decimal(38,9)",
      "ip::text",
    ]
  ) {
    assert.ok(err.message.includes(part), `${part} missing in ${err.message}`);
  }
  assert.ok(!err.message.includes("'ok'"));
});

Deno.test("planColumns applies overrides and refuses those it cannot honour", async () => {
  const plans = await planColumns(
    [field("n", 1700), field("ip", 869), field("ts", 1114), field("i", 21), field("u", 25)],
    {
      overrides: { n: "decimal(38,9)", ip: "text", ts: "timestamp_tz", i: "int64", u: "uuid" },
      lookup: lookup(),
    },
  );
  assert.deepEqual(plans.formats, [1, 0, 1, 1, 0]);
  assert.equal(plans.columns[2]!.arrowType?.toString(), "Timestamp<MICROSECOND, UTC>");
  assert.equal(plans.columns[3]!.arrowType?.toString(), "Int64");
  assert.equal(plans.schema.fields[4]!.metadata.get("ARROW:extension:name"), "arrow.uuid");
  const err = await planColumns([field("d", 1082)], {
    overrides: { d: "int32" },
    lookup: lookup(),
  }).catch((e) => e);
  assert.ok(err instanceof ConfigError);
  assert.match(err.message, /override 'int32' cannot be applied to date/);
});

Deno.test("planColumns marks json and uuid with Arrow extension names", async () => {
  const plans = await planColumns([field("j", 3802), field("u", 2950), field("js", 199)], {
    overrides: {},
    lookup: lookup(),
  });
  const meta = plans.schema.fields.map((f) => f.metadata);
  assert.equal(meta[0]!.get("ARROW:extension:name"), "arrow.json");
  assert.equal(meta[0]!.get("ARROW:extension:metadata"), "");
  assert.equal(meta[1]!.get("ARROW:extension:name"), "arrow.uuid");
  assert.equal(meta[1]!.get("rivet.logical_type"), "uuid");
  // Lists keep the logical type but no extension on the list field itself.
  assert.equal(meta[2]!.get("rivet.logical_type"), "json");
  assert.equal(meta[2]!.get("ARROW:extension:name"), undefined);
});
