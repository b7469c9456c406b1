import assert from "node:assert/strict";
import { ConfigError } from "../core/errors.ts";
import { parseMaxFileSize } from "./size.ts";

Deno.test("parseMaxFileSize reads binary units case-insensitively", () => {
  assert.equal(parseMaxFileSize("512MB"), 512 * 1024 * 1024);
  assert.equal(parseMaxFileSize("512mb"), 512 * 1024 * 1024);
  assert.equal(parseMaxFileSize("2 GB"), 2 * 1024 ** 3);
  assert.equal(parseMaxFileSize("64Kb"), 65536);
  assert.equal(parseMaxFileSize("100b"), 100);
});

Deno.test("parseMaxFileSize accepts fractions and bare bytes", () => {
  assert.equal(parseMaxFileSize("1.5KB"), 1536);
  assert.equal(parseMaxFileSize("0.5 gb"), 512 * 1024 ** 2);
  assert.equal(parseMaxFileSize("1048576"), 1048576);
});

Deno.test("parseMaxFileSize refuses unknown units, zero, negatives and junk", () => {
  for (const text of ["10XB", "1TB", "0", "0KB", "-1MB", "", "MB", "1.2.3MB", "ten MB"]) {
    assert.throws(() => parseMaxFileSize(text), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, "config.invalid_value");
      assert.match(error.message, /max_file_size/);
      return true;
    }, text);
  }
});
