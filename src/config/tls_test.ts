import assert from "node:assert/strict";
import { ConfigError } from "../core/errors.ts";
import type { TlsSpec } from "../core/spec.ts";
import type { ConnectionInfo } from "./connection.ts";
import { endpointHost, isLoopbackHost } from "../_util/loopback.ts";
import { checkTlsPolicy } from "./tls.ts";

const at = (host: string): ConnectionInfo => ({
  host,
  port: 5432,
  user: "u",
  database: "d",
  params: {},
});
const tls = (mode: TlsSpec["mode"], extra: Partial<TlsSpec> = {}): TlsSpec => ({
  mode,
  acceptInvalidCerts: false,
  acceptInvalidHostnames: false,
  ...extra,
});

Deno.test("isLoopbackHost accepts localhost, 127/8 and ::1 only", () => {
  for (
    const host of [
      "localhost",
      "LOCALHOST",
      "127.0.0.1",
      "127.255.0.9",
      "::1",
      "[::1]",
      "0:0:0:0:0:0:0:1",
      "::0:1",
    ]
  ) {
    assert.ok(isLoopbackHost(host), host);
  }
  for (
    const host of [
      "10.0.0.1",
      "128.0.0.1",
      "127.0.0.256",
      "localhost.evil.com",
      "db",
      "",
      "::",
      "::2",
      "1::1",
      "127.0.0",
      "not a host",
      "/var/run/postgresql",
    ]
  ) {
    assert.ok(!isLoopbackHost(host), host);
  }
});

Deno.test("endpointHost reads hosts from endpoints, with or without scheme", () => {
  assert.equal(endpointHost("http://127.0.0.1:4569"), "127.0.0.1");
  assert.equal(endpointHost("localhost:10000"), "localhost");
  assert.equal(endpointHost("https://[::1]:9000/path"), "[::1]");
  assert.equal(endpointHost("http://"), undefined);
});

Deno.test("checkTlsPolicy allows plaintext to loopback hosts without a tls block", () => {
  for (const host of ["localhost", "127.0.0.1", "::1"]) {
    assert.deepEqual(checkTlsPolicy(at(host), undefined), { warnings: [] });
    assert.deepEqual(checkTlsPolicy(at(host), tls("disable")), { warnings: [] });
  }
});

Deno.test("checkTlsPolicy refuses a remote host without a tls block, failing closed", () => {
  for (const host of ["db.example.com", "10.1.2.3", "", "bad host name"]) {
    assert.throws(() => checkTlsPolicy(at(host), undefined), (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, "source.tls_required");
      assert.match(error.message, /^TLS required/);
      assert.match(error.hint ?? "", /tls: \{mode: require\}/);
      assert.match(error.hint ?? "", /tls: \{mode: disable\}/);
      return true;
    }, host);
  }
});

Deno.test("checkTlsPolicy warns that TLS is not enforced for remote mode disable", () => {
  const { warnings } = checkTlsPolicy(at("db.example.com"), tls("disable"));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /TLS is not enforced for host 'db\.example\.com'/);
  assert.deepEqual(checkTlsPolicy(at("db.example.com"), tls("verify-full")), { warnings: [] });
  assert.deepEqual(checkTlsPolicy(at("db.example.com"), tls("require")), { warnings: [] });
  const weak = checkTlsPolicy(
    at("db.example.com"),
    tls("verify-full", { acceptInvalidCerts: true }),
  );
  assert.match(weak.warnings[0]!, /verification is disabled/);
});

Deno.test("SQL Server: a remote host without a tls block is encrypted, not refused", () => {
  assert.deepEqual(checkTlsPolicy(at("sql.example.com"), undefined, "mssql"), { warnings: [] });
  const trusting = { ...at("sql.example.com"), params: { trust_server_certificate: "true" } };
  assert.match(
    checkTlsPolicy(trusting, undefined, "mssql").warnings[0]!,
    /trust_server_certificate=true disables certificate verification/,
  );
});

Deno.test("SQL Server: encrypt=false to a remote host needs the explicit mode: disable", () => {
  const plain = { ...at("sql.example.com"), params: { encrypt: "false" } };
  const started = performance.now();
  assert.throws(() => checkTlsPolicy(plain, undefined, "mssql"), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.code, "source.tls_required");
    assert.match(error.hint ?? "", /tls: \{mode: disable\}/);
    return true;
  });
  assert.ok(performance.now() - started < 2000);
  assert.equal(checkTlsPolicy(plain, tls("disable"), "mssql").warnings.length, 1);
  const local = { ...at("127.0.0.1"), params: { encrypt: "false" } };
  assert.deepEqual(checkTlsPolicy(local, undefined, "mssql"), { warnings: [] });
});

Deno.test("SQL Server: the policy reads the URL's booleans as the connection does (aliases too)", () => {
  const alias = { ...at("sql.example.com"), params: { trustservercertificate: "yes" } };
  assert.equal(checkTlsPolicy(alias, undefined, "mssql").warnings.length, 1);
  const off = { ...at("sql.example.com"), params: { encrypt: "no" } };
  assert.throws(() => checkTlsPolicy(off, undefined, "mssql"), /encrypt=no/);
});
