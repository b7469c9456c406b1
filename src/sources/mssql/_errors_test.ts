import assert from "node:assert/strict";
import { ConfigError } from "../../core/errors.ts";
import { classifyMssqlError } from "./_errors.ts";

const ctx = { user: "reader", endpoint: "db:1433", password: "s3cr3t-pw" };

Deno.test("login failures are permanent and name the user, never the password", () => {
  for (
    const error of [
      { code: "ELOGIN", message: "Login failed for user 'reader'. s3cr3t-pw" },
      { code: "EREQUEST", number: 18456, message: "Login failed for user 'reader'." },
    ]
  ) {
    const e = classifyMssqlError(error, ctx);
    assert.equal(e.exitCode, 1);
    assert.equal(e.code, "source.auth_failed");
    assert.match(e.message, /'reader'/);
    assert.doesNotMatch(e.message, /s3cr3t/);
  }
});

Deno.test("deadlock victims, lock timeouts and Azure throttling are transient", () => {
  for (const number of [1205, 1222, 3960, 40613, 40501, 10928, 49918]) {
    const e = classifyMssqlError({ code: "EREQUEST", number, message: `error ${number}` }, ctx);
    assert.equal(e.exitCode, 2, `${number}`);
    // The server's number travels as `errno`, which ErrorInfo carries across workers.
    assert.equal((e as unknown as { errno: number }).errno, number);
  }
});

Deno.test("connection refused, reset and closed are transient with their own codes", () => {
  const refused = classifyMssqlError({
    code: "ESOCKET",
    message: "Failed to connect to 127.0.0.1:1 - Could not connect (sequence)",
    cause: { errors: [{ code: "ECONNREFUSED", message: "connect ECONNREFUSED" }] },
  }, ctx);
  assert.equal(refused.exitCode, 2);
  assert.equal(refused.code, "source.connection_refused");
  const reset = classifyMssqlError({
    code: "ESOCKET",
    message: "Connection lost - read ECONNRESET",
    cause: { code: "ECONNRESET" },
  }, ctx);
  assert.equal(reset.code, "source.connection_lost");
  assert.equal(reset.exitCode, 2);
  const closed = classifyMssqlError({ code: "ECLOSE", message: "Connection closed" }, ctx);
  assert.equal(closed.code, "source.connection_lost");
});

Deno.test("missing objects, permissions and syntax errors are permanent with hints", () => {
  const cases: [number, string][] = [
    [208, "source.undefined_object"],
    [207, "source.undefined_object"],
    [229, "source.permission_denied"],
    [102, "source.syntax_error"],
    [8115, "source.query_failed"],
  ];
  for (const [number, code] of cases) {
    const e = classifyMssqlError({ code: "EREQUEST", number, message: "m" }, ctx);
    assert.equal(e.code, code, `${number}`);
    assert.equal(e.exitCode, 1);
  }
});

Deno.test("TLS problems are configuration errors that name the fix", () => {
  const unavailable = classifyMssqlError({
    code: "EENCRYPT",
    message: "Server did not negotiate encryption",
  }, ctx);
  assert.ok(unavailable instanceof ConfigError);
  assert.equal(unavailable.code, "source.tls_unavailable");
  const cert = classifyMssqlError({
    code: "ESOCKET",
    message: "Failed to connect: self-signed certificate",
  }, ctx);
  assert.equal(cert.code, "source.tls_verify_failed");
  assert.match(cert.message, /ca_file|mode: require/);
});

Deno.test("the request timeout is the statement timeout", () => {
  const e = classifyMssqlError({
    code: "ETIMEOUT",
    message: "Timeout: Request failed to complete in 1000ms",
  }, ctx);
  assert.equal(e.code, "source.statement_timeout");
});
