import assert from "node:assert/strict";
import { ConfigError } from "../core/errors.ts";
import { DIALECTS } from "./dialect.ts";
import { partitionNullCountSql, planPartitions } from "./partition.ts";

const { postgres: pg, mysql: my, mssql: ms } = DIALECTS;
const Q = "SELECT * FROM events";
const base = { parentName: "events", column: "created_at", hasNulls: false } as const;

Deno.test("planPartitions makes one day child per date across a leap day, then the NULL child", () => {
  const kids = planPartitions(Q, {
    ...base,
    dialect: pg,
    min: "2024-02-28 08:00:00+00",
    max: "2024-03-01",
    granularity: "day",
    hasNulls: true,
  });
  assert.deepEqual(kids.map((k) => k.name), [
    "events__2024-02-28",
    "events__2024-02-29",
    "events__2024-03-01",
    "events__null",
  ]);
  assert.deepEqual(kids[1], {
    name: "events__2024-02-29",
    label: "2024-02-29",
    lo: "2024-02-29",
    hi: "2024-03-01",
    where: `"created_at" >= '2024-02-29' AND "created_at" < '2024-03-01'`,
    sql: `SELECT * FROM (${Q}) AS _rivet_part WHERE "created_at" >= '2024-02-29' AND ` +
      `"created_at" < '2024-03-01'`,
    partition: "created_at=2024-02-29",
  });
  assert.deepEqual(kids[3], {
    name: "events__null",
    label: "null",
    where: `"created_at" IS NULL`,
    sql: `SELECT * FROM (${Q}) AS _rivet_part WHERE "created_at" IS NULL`,
    partition: "created_at=__HIVE_DEFAULT_PARTITION__",
  });
});

Deno.test("planPartitions snaps month buckets to month edges and keeps empty months", () => {
  const kids = planPartitions(Q, {
    ...base,
    dialect: my,
    min: "2023-12-15",
    max: "2024-03-01",
    granularity: "month",
  });
  assert.deepEqual(kids.map((k) => [k.label, k.lo, k.hi]), [
    ["2023-12", "2023-12-01", "2024-01-01"],
    ["2024-01", "2024-01-01", "2024-02-01"],
    ["2024-02", "2024-02-01", "2024-03-01"],
    ["2024-03", "2024-03-01", "2024-04-01"],
  ]);
  assert.equal(kids[2]!.where, "`created_at` >= '2024-02-01' AND `created_at` < '2024-03-01'");
  assert.equal(kids[2]!.partition, "created_at=2024-02");
});

Deno.test("planPartitions makes year buckets and writes SQL Server dates unambiguously", () => {
  const kids = planPartitions(Q, {
    ...base,
    dialect: ms,
    column: "a]b",
    min: "2022-05-01",
    max: "2024-02-29",
    granularity: "year",
  });
  assert.deepEqual(kids.map((k) => k.name), ["events__2022", "events__2023", "events__2024"]);
  assert.equal(kids[0]!.where, "[a]]b] >= '20220101' AND [a]]b] < '20230101'");
  assert.equal(kids[0]!.partition, "a]b=2022");
});

Deno.test("planPartitions with no values gives only the NULL child, or nothing at all", () => {
  const nulls = planPartitions(Q, {
    ...base,
    dialect: pg,
    min: null,
    max: null,
    granularity: "day",
    hasNulls: true,
  });
  assert.deepEqual(nulls.map((k) => k.name), ["events__null"]);
  assert.deepEqual(
    planPartitions(Q, { ...base, dialect: pg, min: null, max: null, granularity: "day" }),
    [],
  );
});

Deno.test("planPartitions handles year 1 and leaves the last bucket of year 9999 open-ended", () => {
  const first = planPartitions(Q, {
    ...base,
    dialect: pg,
    min: "0001-01-01",
    max: "0001-01-01",
    granularity: "year",
  });
  assert.deepEqual([first[0]!.label, first[0]!.lo, first[0]!.hi], [
    "0001",
    "0001-01-01",
    "0002-01-01",
  ]);
  const last = planPartitions(Q, {
    ...base,
    dialect: pg,
    min: "9999-12-31",
    max: "9999-12-31",
    granularity: "month",
  });
  assert.equal(last[0]!.hi, undefined);
  assert.equal(last[0]!.where, `"created_at" >= '9999-12-01'`);
});

Deno.test("planPartitions refuses bounds that are not dates, naming the export and column", () => {
  assert.throws(
    () => planPartitions(Q, { ...base, dialect: pg, min: "42", max: "43", granularity: "day" }),
    (e: unknown) =>
      e instanceof ConfigError && e.code === "plan.partition_not_a_date" &&
      e.message.includes("'events'") && e.message.includes("'created_at'"),
  );
});

Deno.test("partitionNullCountSql counts NULLs of the quoted column over the base query", () => {
  assert.equal(
    partitionNullCountSql(Q, { dialect: pg, column: 'a"b' }),
    `SELECT COUNT(*) FROM (${Q}) AS _rivet_nc WHERE "a""b" IS NULL`,
  );
  assert.equal(
    partitionNullCountSql(Q, { dialect: my, column: "a`b" }),
    `SELECT COUNT(*) FROM (${Q}) AS _rivet_nc WHERE \`a\`\`b\` IS NULL`,
  );
  assert.equal(
    partitionNullCountSql(Q, { dialect: ms, column: "a]b" }),
    `SELECT COUNT_BIG(*) FROM (${Q}) AS _rivet_nc WHERE [a]]b] IS NULL`,
  );
});
