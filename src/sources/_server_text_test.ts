import assert from "node:assert/strict";
import {
  clipServerText,
  firstKeyword,
  MAX_SERVER_TEXT,
  notASelectError,
  statementStart,
  wrappedWrite,
} from "./_server_text.ts";

Deno.test("clipServerText keeps short texts and cuts long ones, saying how much", () => {
  assert.equal(clipServerText("short"), "short");
  const exact = "y".repeat(MAX_SERVER_TEXT);
  assert.equal(clipServerText(exact), exact);
  const out = clipServerText("x".repeat(200_000));
  assert.equal(out, `${"x".repeat(4096)}… [truncated 195,904 characters]`);
});

Deno.test("clipServerText never splits a surrogate pair", () => {
  const text = "a".repeat(9) + "🦀".repeat(10);
  const out = clipServerText(text, 10);
  assert.equal(out, `${"a".repeat(9)}… [truncated 20 characters]`);
  assert.ok(out.isWellFormed());
});

Deno.test("clipServerText is linear: 10 MB in well under a second", () => {
  const started = performance.now();
  const out = clipServerText("z".repeat(10_000_000));
  assert.ok(out.endsWith("[truncated 9,995,904 characters]"));
  assert.ok(performance.now() - started < 1000);
});

Deno.test("firstKeyword and statementStart skip blanks and comments", () => {
  assert.equal(firstKeyword("  -- purge\n /* x */ delete FROM t"), "DELETE");
  assert.equal(firstKeyword("# mysql comment\nDROP TABLE t"), "DROP");
  assert.equal(firstKeyword("(SELECT 1)"), undefined);
  assert.equal(firstKeyword(""), undefined);
  assert.equal(firstKeyword("x".repeat(100)), "X".repeat(32));
  assert.equal(statementStart("  -- a\nSELECT"), 7);
  assert.equal(statementStart("/* never closed"), 15);
});

Deno.test("notASelectError is permanent, names the statement and the fix", () => {
  const e = notASelectError("MySQL", "DELETE FROM t", "no result columns");
  assert.equal(e.code, "source.not_a_select");
  assert.equal(e.exitCode, 1);
  assert.equal(
    e.message,
    "The query is not a read (DELETE): no result columns; nothing was run on MySQL",
  );
  assert.equal(e.hint, "rivet only reads; use a SELECT");
  const into = notASelectError("MySQL", "SELECT 1 INTO @x", "no result columns", true);
  assert.match(into.message, /^The query is not a read: no result columns; it ran inside rivet's/);
  const wrapped = notASelectError(
    "PostgreSQL",
    "SELECT * FROM (drop table t) AS _rivet",
    "wrapped",
  );
  assert.match(wrapped.message, /^The query is not a read \(DROP\): wrapped;/);
});

Deno.test("wrappedWrite finds a write in rivet's FROM (<query>) wrapping only", () => {
  assert.equal(wrappedWrite("SELECT MIN(id) FROM (DELETE FROM t) AS _rivet"), "DELETE");
  assert.equal(wrappedWrite("SELECT * FROM (\n  update t SET v = 1) AS _rivet"), "UPDATE");
  assert.equal(wrappedWrite("SELECT * FROM (SELECT 1) AS x"), undefined);
  assert.equal(wrappedWrite("SELECT REPLACE(v, 'a', 'b') FROM t"), undefined);
  assert.equal(wrappedWrite("SELECT (close - open) AS d FROM (SELECT 1) q"), undefined);
  const started = performance.now();
  assert.equal(wrappedWrite(`SELECT ${"FROM ( ".repeat(100_000)}x`), undefined);
  assert.ok(performance.now() - started < 1000);
});
