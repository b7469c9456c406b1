import assert from "node:assert/strict";
import { PermanentError } from "../core/errors.ts";
import {
  chunkDateSql,
  chunkDenseSql,
  chunkRangeSql,
  countSql,
  MAX_CHUNK_WINDOWS,
  minMaxSql,
  nullGuardSql,
  planChunkWindows,
  planDateWindows,
  planDenseWindows,
} from "./chunks.ts";
import { DIALECTS } from "./dialect.ts";

const { postgres: pg, mysql: my, mssql: ms } = DIALECTS;
const T = "SELECT * FROM shop.orders";
const Q = "SELECT id, v FROM orders WHERE v > 0";
const pairs = (w: { start: bigint; end: bigint }[]) => w.map((x) => [x.start, x.end]);

Deno.test("planChunkWindows cuts inclusive windows and clips the last one to max", () => {
  assert.deepEqual(pairs(planChunkWindows({ min: 1, max: 100, chunkSize: 30 })), [
    [1n, 30n],
    [31n, 60n],
    [61n, 90n],
    [91n, 100n],
  ]);
  assert.deepEqual(pairs(planChunkWindows({ min: 0, max: 99, chunkSize: 50 })), [[0n, 49n], [
    50n,
    99n,
  ]]);
});

Deno.test("planChunkWindows gives one window when min equals max and for an empty table", () => {
  assert.deepEqual(pairs(planChunkWindows({ min: 42, max: 42, chunkSize: 10 })), [[42n, 42n]]);
  assert.deepEqual(pairs(planChunkWindows({ min: null, max: null, chunkSize: 10 })), [[0n, 0n]]);
  assert.deepEqual(pairs(planChunkWindows({ min: undefined, max: undefined, chunkCount: 4 })), [[
    0n,
    0n,
  ]]);
});

Deno.test("planChunkWindows handles negative keys and gives nothing when max is below min", () => {
  assert.deepEqual(pairs(planChunkWindows({ min: -10, max: -1, chunkSize: 4 })), [
    [-10n, -7n],
    [-6n, -3n],
    [-2n, -1n],
  ]);
  assert.deepEqual(pairs(planChunkWindows({ min: -3, max: 3, chunkCount: 2 })), [[-3n, 0n], [
    1n,
    3n,
  ]]);
  assert.deepEqual(planChunkWindows({ min: 5, max: 4, chunkSize: 1 }), []);
});

Deno.test("planChunkWindows derives the size from chunk_count, even beyond the span", () => {
  assert.deepEqual(pairs(planChunkWindows({ min: 1, max: 10, chunkCount: 3 })), [
    [1n, 4n],
    [5n, 8n],
    [9n, 10n],
  ]);
  assert.deepEqual(pairs(planChunkWindows({ min: 1, max: 3, chunkCount: 10 })), [
    [1n, 1n],
    [2n, 2n],
    [3n, 3n],
  ]);
  assert.deepEqual(pairs(planChunkWindows({ min: 1, max: 12, chunkCount: 4, chunkSize: 1 })), [
    [1n, 3n],
    [4n, 6n],
    [7n, 9n],
    [10n, 12n],
  ]);
});

Deno.test("planChunkWindows keeps 64-bit keys exact and covers the span without gaps", () => {
  const max = 9_223_372_036_854_775_807n;
  const w = planChunkWindows({ min: max - 10n, max, chunkSize: 3 });
  assert.deepEqual(w.at(-1), { start: max - 1n, end: max });
  for (const [min, maxN, size] of [[-7, 20, 3], [0, 0, 1], [5, 1004, 7], [-1, 1, 100]]) {
    const ws = planChunkWindows({ min: min!, max: maxN!, chunkSize: size! });
    assert.equal(ws[0]!.start, BigInt(min!));
    assert.equal(ws.at(-1)!.end, BigInt(maxN!));
    for (let i = 1; i < ws.length; i++) assert.equal(ws[i]!.start, ws[i - 1]!.end + 1n);
  }
});

Deno.test("planChunkWindows refuses invalid sizes and plans with too many windows", () => {
  assert.throws(() => planChunkWindows({ min: 1, max: 2, chunkSize: 0 }), RangeError);
  assert.throws(() => planChunkWindows({ min: 1, max: 2, chunkCount: 0 }), RangeError);
  assert.throws(() => planChunkWindows({ min: 1.5, max: 2, chunkSize: 1 }), RangeError);
  assert.throws(
    () => planChunkWindows({ min: 0, max: MAX_CHUNK_WINDOWS, chunkSize: 1, column: "id" }),
    (e: unknown) =>
      e instanceof PermanentError && e.code === "plan.too_many_chunks" &&
      e.message.includes("Chunk column 'id'"),
  );
});

Deno.test("planDenseWindows covers ordinals 1..N and keeps one window for an empty result", () => {
  assert.deepEqual(pairs(planDenseWindows({ total: 5, chunkSize: 2 })), [[1n, 2n], [3n, 4n], [
    5n,
    5n,
  ]]);
  assert.deepEqual(pairs(planDenseWindows({ total: 0, chunkSize: 2 })), [[1n, 1n]]);
});

Deno.test("planDateWindows cuts day windows across a leap day with exclusive upper bounds", () => {
  assert.deepEqual(planDateWindows({ min: "2024-02-27", max: "2024-03-02 10:11:12+00", days: 2 }), [
    { startDay: 19780, endDay: 19781, from: "2024-02-27", until: "2024-02-29" },
    { startDay: 19782, endDay: 19783, from: "2024-02-29", until: "2024-03-02" },
    { startDay: 19784, endDay: 19784, from: "2024-03-02", until: "2024-03-03" },
  ]);
  assert.deepEqual(planDateWindows({ min: "2023-06-15", max: "2023-06-15", days: 7 }), [
    { startDay: 19523, endDay: 19523, from: "2023-06-15", until: "2023-06-16" },
  ]);
  assert.deepEqual(planDateWindows({ min: null, max: null, days: 1 }), []);
  assert.deepEqual(planDateWindows({ min: "9999-12-30", max: "9999-12-31", days: 1 }).at(-1), {
    startDay: 2_932_896,
    endDay: 2_932_896,
    from: "9999-12-31",
  });
  assert.throws(
    () => planDateWindows({ min: "2023-02-30", max: "2023-03-01", days: 1 }),
    RangeError,
  );
});

Deno.test("chunkRangeSql uses the table directly on the fast path and wraps any other query", () => {
  const w = { column: "id", start: 1, end: 100 };
  assert.equal(
    chunkRangeSql(T, { ...w, dialect: pg }),
    `SELECT * FROM shop.orders WHERE "id" BETWEEN 1 AND 100`,
  );
  assert.equal(
    chunkRangeSql(T, { ...w, dialect: my }),
    "SELECT * FROM shop.orders WHERE `id` BETWEEN 1 AND 100",
  );
  assert.equal(
    chunkRangeSql(T, { ...w, dialect: ms }),
    "SELECT * FROM shop.orders WHERE [id] BETWEEN 1 AND 100",
  );
  assert.equal(
    chunkRangeSql(Q, { ...w, dialect: pg }),
    `SELECT * FROM (${Q}) AS _rivet WHERE "id" BETWEEN 1 AND 100`,
  );
  assert.equal(
    chunkRangeSql(Q, { ...w, dialect: my, fastPathTable: "orders" }),
    "SELECT * FROM orders WHERE `id` BETWEEN 1 AND 100",
  );
  assert.equal(
    chunkRangeSql(Q, { dialect: ms, column: "a]b", start: -5n, end: 9_007_199_254_740_993n }),
    `SELECT * FROM (${Q}) AS _rivet WHERE [a]]b] BETWEEN -5 AND 9007199254740993`,
  );
  assert.equal(
    chunkRangeSql(T, { dialect: pg, column: 'a"b', start: 0, end: 0 }),
    `SELECT * FROM shop.orders WHERE "a""b" BETWEEN 0 AND 0`,
  );
});

Deno.test("chunkDateSql filters a half-open date window in each dialect", () => {
  const window = { from: "2024-02-28", until: "2024-03-01" };
  assert.equal(
    chunkDateSql(T, { dialect: pg, column: "d", window }),
    `SELECT * FROM shop.orders WHERE "d" >= '2024-02-28' AND "d" < '2024-03-01'`,
  );
  assert.equal(
    chunkDateSql(Q, { dialect: my, column: "a`b", window }),
    `SELECT * FROM (${Q}) AS _rivet WHERE \`a\`\`b\` >= '2024-02-28' AND \`a\`\`b\` < '2024-03-01'`,
  );
  assert.equal(
    chunkDateSql(Q, { dialect: ms, column: "d", window }),
    `SELECT * FROM (${Q}) AS _rivet WHERE [d] >= '20240228' AND [d] < '20240301'`,
  );
  assert.equal(
    chunkDateSql(T, { dialect: pg, column: "d", window: { from: "9999-12-31" } }),
    `SELECT * FROM shop.orders WHERE "d" >= '9999-12-31'`,
  );
});

Deno.test("chunkDenseSql numbers rows over the wrapped query and strips the ordinal", () => {
  for (const [dialect, c] of [[pg, '"a""b"'], [my, '`a"b`'], [ms, '[a"b]']] as const) {
    assert.deepEqual(chunkDenseSql(T, { dialect, column: 'a"b', start: 1, end: 5000 }), {
      sql: `SELECT * FROM (SELECT _rivet_i.*, ROW_NUMBER() OVER (ORDER BY _rivet_i.${c}) AS ` +
        `_rivet_chunk_rn FROM (${T}) AS _rivet_i) AS _rivet_w WHERE _rivet_w._rivet_chunk_rn ` +
        "BETWEEN 1 AND 5000",
      params: [],
      strippedColumns: ["_rivet_chunk_rn"],
    });
  }
});

Deno.test("the NULL guard, min/max and COUNT probes quote the column on both paths", () => {
  assert.equal(
    nullGuardSql(T, { dialect: pg, column: 'x"); DROP TABLE t; --' }),
    `SELECT COUNT(*) - COUNT("x""); DROP TABLE t; --") FROM shop.orders`,
  );
  assert.equal(
    nullGuardSql(Q, { dialect: my, column: "id" }),
    `SELECT COUNT(*) - COUNT(\`id\`) FROM (${Q}) AS _rivet_nullcnt`,
  );
  assert.equal(
    nullGuardSql(Q, { dialect: ms, column: "id" }),
    // SQL Server's COUNT is an int: COUNT_BIG does not overflow past 2^31 rows.
    `SELECT COUNT_BIG(*) - COUNT_BIG([id]) FROM (${Q}) AS _rivet_nullcnt`,
  );
  assert.deepEqual(minMaxSql(T, { dialect: my, column: "a`b" }), {
    min: "SELECT min(`a``b`) FROM shop.orders",
    max: "SELECT max(`a``b`) FROM shop.orders",
  });
  assert.deepEqual(minMaxSql(Q, { dialect: ms, column: "a]b" }), {
    min: `SELECT min([a]]b]) FROM (${Q}) AS _rivet`,
    max: `SELECT max([a]]b]) FROM (${Q}) AS _rivet`,
  });
  assert.equal(countSql(T, { dialect: pg }), "SELECT COUNT(*) FROM shop.orders");
  assert.equal(countSql(Q, { dialect: pg }), `SELECT COUNT(*) FROM (${Q}) AS _rivet`);
  assert.equal(countSql(T, { dialect: ms }), "SELECT COUNT_BIG(*) FROM shop.orders");
});
