import assert from "node:assert/strict";
import {
  cursorValueSql,
  dateLiteral,
  DIALECTS,
  limitClause,
  midnightLiteral,
  quoteIdent,
} from "./dialect.ts";

const { postgres: pg, mysql: my, mssql: ms } = DIALECTS;

Deno.test("quoteIdent doubles the closing quote of each engine so hostile names stay one identifier", () => {
  assert.equal(quoteIdent(pg, "id"), '"id"');
  assert.equal(quoteIdent(pg, 'a"b'), '"a""b"');
  assert.equal(quoteIdent(pg, 'x" OR 1=1 --'), '"x"" OR 1=1 --"');
  assert.equal(quoteIdent(my, "a`b"), "`a``b`");
  assert.equal(quoteIdent(my, 'a"b'), '`a"b`');
  assert.equal(quoteIdent(ms, "a]b"), "[a]]b]");
  assert.equal(quoteIdent(ms, "a[b"), "[a[b]");
});

Deno.test("cursorValueSql escapes quotes and backslashes for PostgreSQL with an E string", () => {
  assert.deepEqual(cursorValueSql(pg, "'; DROP TABLE x; --"), {
    sql: "E'\\'; DROP TABLE x; --'",
    params: [],
  });
  assert.deepEqual(cursorValueSql(pg, "C:\\tmp\\'"), { sql: "E'C:\\\\tmp\\\\\\''", params: [] });
});

Deno.test("cursorValueSql binds the value for MySQL and never puts it in the SQL", () => {
  const hostile = "'; DROP TABLE x; --\\";
  assert.deepEqual(cursorValueSql(my, hostile), { sql: "?", params: [hostile] });
});

Deno.test("cursorValueSql doubles quotes in an N string for SQL Server and keeps backslashes", () => {
  assert.deepEqual(cursorValueSql(ms, "'; DROP TABLE x; --"), {
    sql: "N'''; DROP TABLE x; --'",
    params: [],
  });
  assert.deepEqual(cursorValueSql(ms, "a\\b"), { sql: "N'a\\b'", params: [] });
});

Deno.test("cursorValueSql makes a SQL Server timestamp cursor a datetime2, so datetime columns compare", () => {
  assert.deepEqual(cursorValueSql(ms, "2024-01-03T00:00:00.123456"), {
    sql: "CAST(N'2024-01-03T00:00:00.123456' AS datetime2(7))",
    params: [],
  });
  // A timestamp_ns cursor keeps the seven digits SQL Server has.
  assert.equal(
    cursorValueSql(ms, "2024-01-03T00:00:00.123456700").sql,
    "CAST(N'2024-01-03T00:00:00.1234567' AS datetime2(7))",
  );
  // Anything else stays a string: dates, text that merely starts like a timestamp.
  assert.equal(cursorValueSql(ms, "2024-01-03").sql, "N'2024-01-03'");
  assert.equal(
    cursorValueSql(ms, "2024-01-03T00:00:00.1'; DROP TABLE x; --").sql,
    "N'2024-01-03T00:00:00.1''; DROP TABLE x; --'",
  );
});

Deno.test("limitClause spells LIMIT/OFFSET per engine and rejects non-integers", () => {
  assert.equal(limitClause(pg, { limit: 10 }), "LIMIT 10");
  assert.equal(limitClause(my, { limit: 10, offset: 20 }), "LIMIT 10 OFFSET 20");
  assert.equal(limitClause(ms, { limit: 10 }), "OFFSET 0 ROWS FETCH NEXT 10 ROWS ONLY");
  assert.equal(limitClause(ms, { limit: 10, offset: 5 }), "OFFSET 5 ROWS FETCH NEXT 10 ROWS ONLY");
  assert.throws(() => limitClause(pg, { limit: 0 }), RangeError);
  assert.throws(() => limitClause(pg, { limit: 1.5 }), RangeError);
  assert.throws(() => limitClause(pg, { limit: 1, offset: -1 }), RangeError);
});

Deno.test("date literals are ISO on PostgreSQL and MySQL and language-proof on SQL Server", () => {
  assert.equal(dateLiteral(pg, "2024-02-29"), "'2024-02-29'");
  assert.equal(dateLiteral(my, "2024-02-29"), "'2024-02-29'");
  assert.equal(dateLiteral(ms, "2024-02-29"), "'20240229'");
  assert.equal(midnightLiteral(pg, "0001-01-01"), "'0001-01-01 00:00:00'");
  assert.equal(midnightLiteral(ms, "9999-12-31"), "'9999-12-31T00:00:00'");
  assert.throws(() => dateLiteral(pg, "2024-01-01' OR '1"), RangeError);
  assert.throws(() => midnightLiteral(pg, "+10000-01-01"), RangeError);
});
