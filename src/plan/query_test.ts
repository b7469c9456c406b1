import assert from "node:assert/strict";
import { DIALECTS } from "./dialect.ts";
import {
  fastPathTableOf,
  planIncrementalSql,
  planKeysetPageSql,
  planTimeWindowSql,
  tableFormOf,
} from "./query.ts";

const { postgres: pg, mysql: my, mssql: ms } = DIALECTS;
const Q = "SELECT * FROM t WHERE a = 1";
const HOSTILE = "'; DROP TABLE x; --\\";

Deno.test("planIncrementalSql orders by the cursor on the first run of every engine", () => {
  for (const [dialect, c] of [[pg, '"id"'], [my, "`id`"], [ms, "[id]"]] as const) {
    assert.deepEqual(
      planIncrementalSql(Q, { dialect, cursorColumn: "id", mode: "single_column" }),
      { sql: `SELECT * FROM (${Q}) AS _rivet ORDER BY ${c}`, params: [], strippedColumns: [] },
    );
  }
});

Deno.test("planIncrementalSql filters strictly after the stored cursor with each engine's literal", () => {
  const opts = { cursorColumn: "id", mode: "single_column", lastCursor: "42" } as const;
  assert.deepEqual(planIncrementalSql(Q, { ...opts, dialect: pg }), {
    sql: `SELECT * FROM (${Q}) AS _rivet WHERE "id" > E'42' ORDER BY "id"`,
    params: [],
    strippedColumns: [],
  });
  assert.deepEqual(planIncrementalSql(Q, { ...opts, dialect: my }), {
    sql: `SELECT * FROM (${Q}) AS _rivet WHERE \`id\` > ? ORDER BY \`id\``,
    params: ["42"],
    strippedColumns: [],
  });
  assert.deepEqual(planIncrementalSql(Q, { ...opts, dialect: ms }), {
    sql: `SELECT * FROM (${Q}) AS _rivet WHERE [id] > N'42' ORDER BY [id]`,
    params: [],
    strippedColumns: [],
  });
});

Deno.test("planIncrementalSql keeps hostile cursor values and column names inert", () => {
  const base = { mode: "single_column", lastCursor: HOSTILE } as const;
  assert.equal(
    planIncrementalSql("SELECT 1", { ...base, dialect: pg, cursorColumn: 'a"b' }).sql,
    `SELECT * FROM (SELECT 1) AS _rivet WHERE "a""b" > E'\\'; DROP TABLE x; --\\\\' ORDER BY "a""b"`,
  );
  const mysql = planIncrementalSql("SELECT 1", { ...base, dialect: my, cursorColumn: "a`b" });
  assert.equal(mysql.sql, "SELECT * FROM (SELECT 1) AS _rivet WHERE `a``b` > ? ORDER BY `a``b`");
  assert.deepEqual(mysql.params, [HOSTILE]);
  assert.equal(
    planIncrementalSql("SELECT 1", { ...base, dialect: ms, cursorColumn: "a]b" }).sql,
    "SELECT * FROM (SELECT 1) AS _rivet WHERE [a]]b] > N'''; DROP TABLE x; --\\' ORDER BY [a]]b]",
  );
});

Deno.test("planIncrementalSql in coalesce mode adds the synthetic cursor and lists it for stripping", () => {
  const opts = {
    cursorColumn: "updated_at",
    fallbackColumn: "created_at",
    mode: "coalesce",
  } as const;
  assert.deepEqual(planIncrementalSql(Q, { ...opts, dialect: pg }), {
    sql: `SELECT _rivet.*, COALESCE(_rivet."updated_at", _rivet."created_at") AS ` +
      `"_rivet_coalesced_cursor" FROM (${Q}) AS _rivet ORDER BY ` +
      `COALESCE(_rivet."updated_at", _rivet."created_at"), _rivet."updated_at", _rivet."created_at"`,
    params: [],
    strippedColumns: ["_rivet_coalesced_cursor"],
  });
  assert.deepEqual(
    planIncrementalSql(Q, { ...opts, dialect: my, lastCursor: "2024-01-01T00:00:00.000000" }),
    {
      sql: "SELECT _rivet.*, COALESCE(_rivet.`updated_at`, _rivet.`created_at`) AS " +
        `\`_rivet_coalesced_cursor\` FROM (${Q}) AS _rivet WHERE ` +
        "COALESCE(_rivet.`updated_at`, _rivet.`created_at`) > ? ORDER BY " +
        "COALESCE(_rivet.`updated_at`, _rivet.`created_at`), _rivet.`updated_at`, _rivet.`created_at`",
      params: ["2024-01-01T00:00:00.000000"],
      strippedColumns: ["_rivet_coalesced_cursor"],
    },
  );
  assert.equal(
    planIncrementalSql("SELECT 1", { ...opts, dialect: ms, lastCursor: "x'y" }).sql,
    "SELECT _rivet.*, COALESCE(_rivet.[updated_at], _rivet.[created_at]) AS " +
      "[_rivet_coalesced_cursor] FROM (SELECT 1) AS _rivet WHERE " +
      "COALESCE(_rivet.[updated_at], _rivet.[created_at]) > N'x''y' ORDER BY " +
      "COALESCE(_rivet.[updated_at], _rivet.[created_at]), _rivet.[updated_at], _rivet.[created_at]",
  );
  assert.throws(
    () => planIncrementalSql(Q, { dialect: pg, cursorColumn: "a", mode: "coalesce" }),
    RangeError,
  );
});

Deno.test("planKeysetPageSql pages with LIMIT, or OFFSET/FETCH on SQL Server", () => {
  assert.deepEqual(planKeysetPageSql(Q, { dialect: pg, keyColumn: "k", limit: 500 }), {
    sql: `SELECT * FROM (${Q}) AS _rivet ORDER BY "k" LIMIT 500`,
    params: [],
    strippedColumns: [],
  });
  assert.deepEqual(
    planKeysetPageSql(Q, { dialect: pg, keyColumn: "k", limit: 500, lastKey: "it's" }).sql,
    `SELECT * FROM (${Q}) AS _rivet WHERE "k" > E'it\\'s' ORDER BY "k" LIMIT 500`,
  );
  assert.deepEqual(planKeysetPageSql(Q, { dialect: my, keyColumn: "k", limit: 2, lastKey: "7" }), {
    sql: `SELECT * FROM (${Q}) AS _rivet WHERE \`k\` > ? ORDER BY \`k\` LIMIT 2`,
    params: ["7"],
    strippedColumns: [],
  });
  // An integer key is inlined as a number literal, exact beyond 2^53.
  assert.deepEqual(
    planKeysetPageSql(Q, {
      dialect: my,
      keyColumn: "k",
      limit: 2,
      lastKey: "9007199254740993",
      integerKey: true,
    }),
    {
      sql: `SELECT * FROM (${Q}) AS _rivet WHERE \`k\` > 9007199254740993 ORDER BY \`k\` LIMIT 2`,
      params: [],
      strippedColumns: [],
    },
  );
  assert.equal(
    planKeysetPageSql(Q, { dialect: ms, keyColumn: "k", limit: 2 }).sql,
    `SELECT * FROM (${Q}) AS _rivet ORDER BY [k] OFFSET 0 ROWS FETCH NEXT 2 ROWS ONLY`,
  );
  assert.equal(
    planKeysetPageSql(Q, { dialect: ms, keyColumn: "k", limit: 2, lastKey: "b0f5" }).sql,
    `SELECT * FROM (${Q}) AS _rivet WHERE [k] > N'b0f5' ORDER BY [k] OFFSET 0 ROWS FETCH NEXT 2 ROWS ONLY`,
  );
  assert.throws(() => planKeysetPageSql(Q, { dialect: pg, keyColumn: "k", limit: 0 }), RangeError);
});

Deno.test("planTimeWindowSql starts at UTC midnight days_window days back, across a year boundary", () => {
  const now = new Date("2024-01-02T23:59:59.999Z");
  const pgPlan = planTimeWindowSql(Q, {
    dialect: pg,
    timeColumn: "ts",
    type: "timestamp",
    daysWindow: 2,
    now,
  });
  assert.equal(pgPlan.sql, `SELECT * FROM (${Q}) AS _rivet WHERE "ts" >= '2023-12-31 00:00:00'`);
  assert.equal(pgPlan.since, "2023-12-31");
  assert.equal(pgPlan.sinceEpochSeconds, Date.UTC(2023, 11, 31) / 1000);
  assert.deepEqual(pgPlan.params, []);
  const msPlan = planTimeWindowSql(Q, {
    dialect: ms,
    timeColumn: "t]s",
    type: "timestamp",
    daysWindow: 2,
    now,
  });
  assert.equal(msPlan.sql, `SELECT * FROM (${Q}) AS _rivet WHERE [t]]s] >= '2023-12-31T00:00:00'`);
});

Deno.test("planTimeWindowSql crosses a leap-year month boundary and compares epoch seconds for unix", () => {
  const now = new Date("2024-03-01T00:00:00.000Z");
  const plan = planTimeWindowSql("SELECT 1", {
    dialect: my,
    timeColumn: "epoch",
    type: "unix",
    daysWindow: 1,
    now,
  });
  assert.equal(plan.since, "2024-02-29");
  assert.equal(plan.sinceEpochSeconds, 1_709_164_800);
  assert.equal(plan.sql, "SELECT * FROM (SELECT 1) AS _rivet WHERE `epoch` >= 1709164800");
  const zero = planTimeWindowSql("SELECT 1", {
    dialect: pg,
    timeColumn: "d",
    type: "timestamp",
    daysWindow: 0,
    now: new Date("2023-03-01T12:00:00Z"),
  });
  assert.equal(zero.since, "2023-03-01");
  const beforeEpoch = planTimeWindowSql("SELECT 1", {
    dialect: pg,
    timeColumn: "d",
    type: "unix",
    daysWindow: 1,
    now: new Date("1970-01-01T06:00:00Z"),
  });
  assert.equal(beforeEpoch.sql, `SELECT * FROM (SELECT 1) AS _rivet WHERE "d" >= -86400`);
  assert.throws(
    () =>
      planTimeWindowSql("SELECT 1", {
        dialect: pg,
        timeColumn: "d",
        type: "unix",
        daysWindow: -1,
        now,
      }),
    RangeError,
  );
});

Deno.test("tableFormOf accepts exactly SELECT * FROM <ident> and nothing more", () => {
  assert.equal(tableFormOf("SELECT * FROM orders"), "orders");
  assert.equal(tableFormOf("  select *  from  shop.orders \n"), "shop.orders");
  for (
    const q of [
      "SELECT * FROM orders o",
      "SELECT * FROM orders;",
      "SELECT * FROM orders WHERE id > 1",
      "SELECT id FROM orders",
      "SELECT * FROM a.b.c",
      'SELECT * FROM "orders"',
      "SELECT * FROM (SELECT * FROM t) x",
      "SELECT * FROM 1t",
    ]
  ) {
    assert.equal(tableFormOf(q), undefined, q);
  }
  assert.equal(fastPathTableOf("SELECT 1", "shop.orders"), "shop.orders");
  assert.throws(() => fastPathTableOf("SELECT 1", "orders; DROP TABLE x"), RangeError);
});
