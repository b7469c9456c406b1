import assert from "node:assert/strict";
import { clip, collapsePrefix, collapseRepeatedExportPrefixes, prefixOnce } from "./text.ts";

Deno.test("prefixOnce adds a missing prefix and never doubles one", () => {
  const p = "export 'o': ";
  assert.equal(prefixOnce(p, "boom"), "export 'o': boom");
  assert.equal(prefixOnce(p, "export 'o': boom"), "export 'o': boom");
  assert.equal(prefixOnce(p, "export 'o': export 'o': boom"), "export 'o': boom");
  assert.equal(
    prefixOnce(p, "chunk 3 failed: export 'o': refused"),
    "export 'o': chunk 3 failed: refused",
  );
  // Another export's prefix is data, not a repeat.
  assert.equal(prefixOnce(p, "export 'b': x"), "export 'o': export 'b': x");
});

Deno.test("collapsePrefix keeps at most one prefix, adding none", () => {
  const p = "export 'o': ";
  assert.equal(collapsePrefix(p, "boom"), "boom");
  assert.equal(collapsePrefix(p, "export 'o': export 'o': boom"), "export 'o': boom");
  assert.equal(collapseRepeatedExportPrefixes("a: export 'x': export 'x': b"), "a: export 'x': b");
});

Deno.test("clip cuts long texts, says how much, and is fast", () => {
  assert.equal(clip("short", 10), "short");
  assert.equal(clip("x".repeat(20), 5), "xxxxx… [15 more characters cut]");
  // A surrogate pair is never split.
  assert.equal(clip("ab\u{1f600}cd", 3), "ab… [4 more characters cut]");
  const started = performance.now();
  clip("y".repeat(5_000_000));
  collapseRepeatedExportPrefixes("export '".repeat(500_000));
  assert.ok(performance.now() - started < 1_000);
});
