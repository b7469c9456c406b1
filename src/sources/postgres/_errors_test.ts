import assert from "node:assert/strict";
import {
  classifyPgError,
  connectFailed,
  type PgPermanentError,
  type PgTransientError,
} from "./_errors.ts";
import { parseErrorFields } from "./_messages.ts";

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

Deno.test("a write refused by the read-only transaction says rivet only reads", () => {
  for (
    const fields of [
      { ...f("25006", "cannot execute DELETE in a read-only transaction"), where: "PL/pgSQL f()" },
      f("0A000", "DECLARE CURSOR must not contain data-modifying statements in WITH"),
    ]
  ) {
    const e = classifyPgError(fields);
    assert.equal(e.code, "source.read_only", fields.code);
    assert.equal(e.exitCode, 1);
    assert.equal(e.hint, "rivet only reads; use a SELECT");
    assert.match(e.message, /^The query tried to change data and PostgreSQL refused it: /);
  }
  assert.match(
    classifyPgError({ ...f("25006", "cannot execute DELETE"), where: "PL/pgSQL\nf()" }).message,
    /\(in PL\/pgSQL f\(\)\)$/,
  );
  assert.equal(classifyPgError(f("0A000", "not supported")).code, "source.query_failed");
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

Deno.test("ErrorResponse fields are cut to 4 KB each, saying how much", () => {
  const long = "q".repeat(200_000);
  const body = new TextEncoder().encode(
    `SERROR\0C22P02\0Minvalid input: "${long}"\0D${long}\0H${long}\0W${long}\0P8\0\0`,
  );
  const fields = parseErrorFields(body, 0, body.length);
  for (const text of [fields.message, fields.detail, fields.hint, fields.where]) {
    assert.ok(text !== undefined && text.length < 4096 + 40, String(text?.length));
  }
  assert.match(fields.message, /… \[truncated 195,921 characters\]$/);
  assert.match(fields.detail!, /… \[truncated 195,904 characters\]$/);
  assert.equal(fields.position, "8");
  assert.equal(fields.code, "22P02");
  const e = classifyPgError(fields);
  assert.ok(e.message.length < 3 * 4200, String(e.message.length));
});
