import assert from "node:assert/strict";
import {
  clipServerText,
  firstKeyword,
  MAX_SERVER_TEXT,
  notASelectError,
  statementStart,
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

Deno.test("notASelectError is permanent, names the keyword and the fix", () => {
  const e = notASelectError("MySQL", "DELETE FROM t", "no result columns");
  assert.equal(e.code, "source.not_a_select");
  assert.equal(e.exitCode, 1);
  assert.match(
    e.message,
    /^The query is not a SELECT \(it starts with DELETE\): no result columns; nothing was run on MySQL$/,
  );
  assert.equal(e.hint, "rivet only reads; use a SELECT");
});
