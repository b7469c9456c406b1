import assert from "node:assert/strict";
import { redact, registerSecret } from "./redact.ts";

Deno.test("redact hides URL userinfo up to the last @ before the host", () => {
  assert.equal(redact("postgresql://app:p@ss:w@db:5432/x"), "postgresql://REDACTED@db:5432/x");
  assert.equal(redact("mysql://root@127.0.0.1/db"), "mysql://REDACTED@127.0.0.1/db");
  assert.equal(redact("see a://b://c@d"), "see a://b://REDACTED@d");
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

Deno.test("a short secret is masked as a credential, never inside names and paths", () => {
  registerSecret("rivet");
  // Where it merely appears in data, it stays.
  assert.equal(redact("bucket rivet-cfg-matrix-test"), "bucket rivet-cfg-matrix-test");
  assert.equal(redact("report: /tmp/x/.rivet/runs/r1"), "report: /tmp/x/.rivet/runs/r1");
  assert.equal(redact('{"output":"/data/rivet/out"}'), '{"output":"/data/rivet/out"}');
  // Where it stands as a credential, it goes (and so does any other value there).
  assert.equal(redact("postgresql://app:rivet@db/x"), "postgresql://REDACTED@db/x");
  assert.equal(redact("host=db password=rivet user=app"), "host=db password=*** user=app");
  assert.equal(redact("?user=a&password=rivet&x=1"), "?user=a&password=***&x=1");
  assert.equal(redact('{"password":"rivet","user":"a"}'), '{"password":"***","user":"a"}');
  assert.equal(
    redact("DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=rivet;EndpointSuffix=x"),
    "DefaultEndpointsProtocol=https;AccountName=acc;AccountKey=***;EndpointSuffix=x",
  );
  assert.equal(redact("Authorization: Bearer rivet"), "Authorization: Bearer ***");
  assert.equal(redact("authorization: Basic cml2ZXQ6cml2ZXQ="), "authorization: Basic ***");
  assert.equal(redact("url?sv=2024&sig=abc%2Bdef&se=1"), "url?sv=2024&sig=***&se=1");
  assert.equal(
    redact("token=rivet secret=rivet api_key=rivet"),
    "token=*** secret=*** api_key=***",
  );
  assert.equal(
    redact("X-Amz-Security-Token=abc&X-Amz-Signature=def"),
    "X-Amz-Security-Token=***&X-Amz-Signature=***",
  );
});

Deno.test("a long secret is masked anywhere, raw and percent-encoded", () => {
  registerSecret("s3cr3t-LONG/pw");
  assert.equal(redact("bucket s3cr3t-LONG/pw-data"), "bucket ***-data");
  assert.equal(redact("path /x/s3cr3t-LONG%2Fpw/y"), "path /x/***/y");
});

Deno.test("redaction is linear in the text length, with many secrets registered", () => {
  for (let i = 0; i < 200; i++) registerSecret(`registered-secret-number-${i}`);
  const texts = [
    "x".repeat(1_000_000),
    "a".repeat(500_000) + "://",
    "postgresql://".repeat(50_000),
    "password=".repeat(100_000),
    '"password":"'.repeat(80_000),
    "\x1b[".repeat(200_000) + "1",
    "\x1b]".repeat(200_000),
    "registered-secret-number-".repeat(40_000),
  ];
  for (const text of texts) {
    const started = performance.now();
    redact(text);
    const ms = performance.now() - started;
    assert.ok(ms < 1_500, `${JSON.stringify(text.slice(0, 20))}: ${Math.round(ms)} ms`);
  }
});
