import assert from "node:assert/strict";
import { editDistance, expectedPhrase, suggest } from "./suggest.ts";

Deno.test("editDistance counts inserts, deletes and substitutions", () => {
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("", "abc"), 3);
  assert.equal(editDistance("same", "same"), 0);
});

Deno.test("suggest picks the nearest key case-insensitively within max(2, len/3)", () => {
  assert.equal(suggest("chunk_colum", ["chunk_column", "chunk_size"]), "chunk_column");
  assert.equal(suggest("FORMAT", ["format", "mode"]), "format");
  assert.equal(suggest("mystery_key", ["source", "exports", "notifications"]), undefined);
});

Deno.test("suggest falls back to a substring match of at least three characters", () => {
  assert.equal(suggest("destination_settings", ["destination", "name"]), "destination");
  assert.equal(suggest("xx", ["xxl_key_long"]), undefined);
});

Deno.test("expectedPhrase follows serde's wording for one, two and many variants", () => {
  assert.equal(expectedPhrase(["a"]), "`a`");
  assert.equal(expectedPhrase(["parquet", "csv"]), "`parquet` or `csv`");
  assert.equal(expectedPhrase(["a", "b", "c"]), "one of `a`, `b`, `c`");
});
