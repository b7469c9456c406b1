import assert from "node:assert/strict";
import { redact, registerSecret } from "./redact.ts";

Deno.test("redact hides URL userinfo up to the last @ before the host", () => {
  assert.equal(redact("postgresql://app:p@ss:w@db:5432/x"), "postgresql://REDACTED@db:5432/x");
  assert.equal(redact("mysql://root@127.0.0.1/db"), "mysql://REDACTED@127.0.0.1/db");
});

Deno.test("redact leaves bare user@host and e-mail addresses alone", () => {
  assert.equal(redact("mail ops@example.com now"), "mail ops@example.com now");
});

Deno.test("redact is idempotent and keeps multi-byte text", () => {
  const once = redact("é postgresql://u:pw@h/db ✓");
  assert.equal(once, "é postgresql://REDACTED@h/db ✓");
  assert.equal(redact(once), once);
});

Deno.test("redact removes registered secrets and their percent-encoded form", () => {
  registerSecret("p@ss:w/rd-S3CR3T_M4RK3R");
  const text = "auth failed for p@ss:w/rd-S3CR3T_M4RK3R and p%40ss%3Aw%2Frd-S3CR3T_M4RK3R";
  assert.ok(!redact(text).includes("S3CR3T_M4RK3R"));
});

Deno.test("redact strips terminal control sequences", () => {
  assert.equal(redact("a\x1b[31mred\x1b[0m\x07b\tc\nd"), "aredb\tc\nd");
  assert.equal(redact("x\x1b]0;title\x07y"), "xy");
});
