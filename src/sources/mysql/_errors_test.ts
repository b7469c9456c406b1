import assert from "node:assert/strict";
import { ConfigError, PermanentError, TransientError } from "../../core/errors.ts";
import {
  classifyMysqlError,
  type MysqlPermanentError,
  type MysqlTransientError,
} from "./_errors.ts";

const ctx = { user: "u1", endpoint: "db:3306", password: "hunter2-S3CR3T" };
const server = (errno: number, text = "server says no") => ({
  errno,
  code: "ER_X",
  sqlMessage: text,
  message: text,
});

Deno.test("server error numbers map to their retry classes and codes", () => {
  const table: [number, string, number][] = [
    [1045, "source.auth_failed", 1],
    [1044, "source.permission_denied", 1],
    [1142, "source.permission_denied", 1],
    [1143, "source.permission_denied", 1],
    [1049, "source.undefined_object", 1],
    [1146, "source.undefined_object", 1],
    [1054, "source.undefined_object", 1],
    [1064, "source.syntax_error", 1],
    [3024, "source.statement_timeout", 1],
    [1969, "source.statement_timeout", 1],
    [1040, "source.server_unavailable", 2],
    [1053, "source.server_unavailable", 2],
    [1205, "source.transient", 2],
    [1213, "source.transient", 2],
    [2006, "source.connection_lost", 2],
    [2013, "source.connection_lost", 2],
    [1792, "source.read_only", 1],
    [9999, "source.query_failed", 1],
  ];
  for (const [errno, code, exit] of table) {
    const e = classifyMysqlError(server(errno), ctx);
    assert.equal(e.code, code, String(errno));
    assert.equal(e.exitCode, exit, String(errno));
    assert.equal((e as MysqlPermanentError | MysqlTransientError).errno, errno);
    assert.ok(e.message.includes("db:3306"), e.message);
  }
});

Deno.test("socket failures are transient, refused connections have their own code", () => {
  const refused = classifyMysqlError(
    { code: "ECONNREFUSED", message: "connect ECONNREFUSED" },
    ctx,
  );
  assert.ok(refused instanceof TransientError);
  assert.equal(refused.code, "source.connection_refused");
  for (const code of ["PROTOCOL_CONNECTION_LOST", "ECONNRESET", "EPIPE"]) {
    const e = classifyMysqlError({ code, message: "gone", fatal: true }, ctx);
    assert.equal(e.code, "source.connection_lost", code);
    assert.equal(e.exitCode, 2);
    assert.equal((e as MysqlTransientError).driverCode, code);
  }
  const dns = classifyMysqlError({ code: "ENOTFOUND", message: "getaddrinfo" }, ctx);
  assert.equal(dns.code, "source.connect_failed");
});

Deno.test("messages never carry the password, even when the server echoes it", () => {
  const auth = classifyMysqlError(server(1045, "Access denied for user 'u1' hunter2-S3CR3T"), ctx);
  assert.ok(auth instanceof PermanentError);
  assert.ok(auth.message.includes("'u1'"));
  assert.ok(!auth.message.includes("hunter2-S3CR3T"));
  const other = classifyMysqlError(server(1064, "near 'hunter2-S3CR3T'"), ctx);
  assert.ok(!other.message.includes("hunter2-S3CR3T"), other.message);
  assert.ok(other.message.endsWith("fix the query"));
});

Deno.test("a server without TLS under a TLS mode is a ConfigError naming the mode and the fix", () => {
  const e = classifyMysqlError(
    {
      code: "HANDSHAKE_NO_SSL_SUPPORT",
      message: "Server does not support secure connection",
      fatal: true,
    },
    { ...ctx, tlsMode: "verify-ca" },
  );
  assert.ok(e instanceof ConfigError);
  assert.equal(e.code, "source.tls_unavailable");
  assert.ok(e.message.includes("'verify-ca'") && e.message.includes("db:3306"), e.message);
  assert.ok(e.message.endsWith("set source.tls.mode: disable"), e.message);
});

Deno.test("a rejected certificate is a ConfigError naming ca_file; other TLS failures retry", () => {
  for (
    const text of [
      "self-signed certificate in certificate chain",
      "unable to get local issuer certificate",
      "certificate has expired",
    ]
  ) {
    const e = classifyMysqlError({ code: "HANDSHAKE_SSL_ERROR", message: text, fatal: true }, ctx);
    assert.ok(e instanceof ConfigError, text);
    assert.equal(e.code, "source.tls_verify_failed");
    assert.ok(e.message.includes(text) && e.message.includes("source.tls.ca_file"), e.message);
  }
  const name = classifyMysqlError({
    code: "HANDSHAKE_SSL_ERROR",
    message: "Hostname/IP does not match certificate's altnames: IP: 10.0.0.9 is not in the " +
      "cert's list: 127.0.0.1",
    fatal: true,
  }, ctx);
  assert.ok(name instanceof ConfigError);
  assert.equal(name.code, "source.tls_verify_failed");
  assert.ok(name.message.includes("host name") && name.message.includes("verify-ca"), name.message);
  const other = classifyMysqlError(
    { code: "HANDSHAKE_SSL_ERROR", message: "socket hang up", fatal: true },
    ctx,
  );
  assert.ok(other instanceof TransientError);
  assert.equal(other.code, "source.connect_failed");
});

Deno.test("access denied over plaintext suggests source.tls for a REQUIRE SSL account", () => {
  const plain = classifyMysqlError(server(1045, "Access denied"), ctx);
  assert.ok(plain.message.includes("REQUIRE SSL") && plain.message.includes("source.tls"));
  const tls = classifyMysqlError(server(1045, "Access denied"), { ...ctx, tlsMode: "verify-full" });
  assert.equal(tls.code, "source.auth_failed");
  assert.ok(!tls.message.includes("REQUIRE SSL"), tls.message);
});

Deno.test("a write refused by the read-only transaction says rivet only reads", () => {
  const e = classifyMysqlError(
    server(1792, "Cannot execute statement in a READ ONLY transaction"),
    ctx,
  );
  assert.equal(e.code, "source.read_only");
  assert.equal(e.hint, "rivet only reads; use a SELECT");
  assert.match(e.message, /^The query tried to change data and the server refused it on db:3306/);
});

Deno.test("a long error text is cut to 4 KB, in linear time, password masked first", () => {
  // The password sits across the cut: masked before cutting, so no half of it survives.
  const text = `${"x".repeat(4090)}hunter2-S3CR3T${" ".repeat(100_000)}y${"z".repeat(200_000)}`;
  const started = performance.now();
  const e = classifyMysqlError(server(9999, text), ctx);
  assert.ok(performance.now() - started < 1000, "classification took over a second");
  assert.ok(e.message.length < 4096 + 200, String(e.message.length));
  assert.ok(!e.message.includes("hunter2"), e.message.slice(4000));
  assert.match(e.message, /… \[truncated 299,998 characters\] \[9999\]$/);
  // A long run of trailing blanks is trimmed without backtracking.
  const blanks = classifyMysqlError(server(9999, `a${" \t".repeat(200_000)}b `), ctx);
  assert.match(blanks.message, /\[truncated/);
});
