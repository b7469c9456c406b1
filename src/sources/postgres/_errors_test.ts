import assert from "node:assert/strict";
import {
  classifyPgError,
  connectFailed,
  type PgPermanentError,
  type PgTransientError,
} from "./_errors.ts";

const f = (code: string, message = "boom") => ({ severity: "ERROR", code, message });

Deno.test("classifyPgError sorts SQLSTATEs into transient and permanent classes", () => {
  const table: [string, string, number][] = [
    ["08006", "source.transient", 2],
    ["57P01", "source.transient", 2],
    ["57P03", "source.transient", 2],
    ["53300", "source.transient", 2],
    ["53100", "source.transient", 2],
    ["40001", "source.transient", 2],
    ["40P01", "source.transient", 2],
    ["55P03", "source.transient", 2],
    ["28P01", "source.auth_failed", 1],
    ["28000", "source.auth_failed", 1],
    ["42501", "source.permission_denied", 1],
    ["42P01", "source.undefined_object", 1],
    ["42703", "source.undefined_object", 1],
    ["42601", "source.syntax_error", 1],
    ["57014", "source.statement_timeout", 1],
    ["22012", "source.query_failed", 1],
  ];
  for (const [state, code, exit] of table) {
    const e = classifyPgError(f(state));
    assert.equal(e.code, code, state);
    assert.equal(e.exitCode, exit, state);
    assert.equal((e as PgTransientError | PgPermanentError).sqlstate, state);
  }
});

Deno.test("classifyPgError names the user on auth failures and keeps server text out", () => {
  const e = classifyPgError(f("28P01", 'password authentication failed for user "bob"'), {
    user: "bob",
    endpoint: "db:5432",
  });
  assert.match(e.message, /^Authentication failed for user 'bob' on db:5432/);
});

Deno.test("classifyPgError keeps the server text of syntax errors with the position", () => {
  const e = classifyPgError({ ...f("42601", 'syntax error at or near "SELEC"'), position: "1" });
  assert.match(e.message, /SQL syntax error at character 1: syntax error at or near "SELEC"/);
});

Deno.test("connectFailed is transient with a connectivity hint", () => {
  const e = connectFailed(new Deno.errors.ConnectionRefused("refused"), "127.0.0.1:1");
  assert.equal(e.code, "source.connection_refused");
  assert.equal(e.exitCode, 2);
  assert.match(e.message, /127\.0\.0\.1:1: connection refused/);
  assert.match(e.hint ?? "", /server is running/);
  const timeout = connectFailed(new Deno.errors.TimedOut("slow"), "10.0.0.1:5432");
  assert.equal(timeout.code, "source.connect_failed");
  assert.equal(timeout.exitCode, 2);
});
