import assert from "node:assert/strict";
import type { ConnectionInfo } from "../../core/source.ts";
import { mssqlConfig, mssqlTls } from "./connect.ts";

const remote: ConnectionInfo = {
  host: "sql.example.database.windows.net",
  port: 1433,
  user: "reader@sql",
  password: "pw",
  database: "shop",
  params: {},
};
const local: ConnectionInfo = { ...remote, host: "127.0.0.1" };

Deno.test("encryption is on by default for remote hosts, off for loopback without a tls block", () => {
  assert.deepEqual(mssqlTls(remote, undefined), {
    encrypt: true,
    trustServerCertificate: false,
    mode: "verify-full",
  });
  assert.equal(mssqlTls(local, undefined).encrypt, false);
  assert.equal(mssqlTls({ ...local, params: { encrypt: "true" } }, undefined).encrypt, true);
  assert.equal(
    mssqlTls({ ...remote, params: { trust_server_certificate: "true" } }, undefined)
      .trustServerCertificate,
    true,
  );
});

Deno.test("tls modes map to tedious' encrypt and trustServerCertificate", () => {
  const tls = (mode: "disable" | "require" | "verify-ca" | "verify-full") => ({
    mode,
    acceptInvalidCerts: false,
    acceptInvalidHostnames: false,
  });
  assert.equal(mssqlTls(remote, tls("disable")).encrypt, false);
  assert.deepEqual(mssqlTls(remote, tls("require")), {
    encrypt: true,
    trustServerCertificate: true,
    mode: "require",
  });
  assert.equal(mssqlTls(remote, tls("verify-ca")).trustServerCertificate, false);
  assert.equal(mssqlTls(remote, tls("verify-full")).trustServerCertificate, false);
  assert.equal(
    mssqlTls(remote, { ...tls("verify-full"), acceptInvalidCerts: true }).trustServerCertificate,
    true,
  );
});

Deno.test("URL parameters reach the driver; a named instance replaces the port", async () => {
  const config = await mssqlConfig({
    ...remote,
    params: {
      instance: "SQLEXPRESS",
      application_name: "nightly",
      application_intent: "readonly",
      connect_timeout: "7",
    },
  }, undefined);
  const options = config.driver.options!;
  assert.equal(options.instanceName, "SQLEXPRESS");
  assert.equal(options.port, undefined);
  assert.equal(options.appName, "nightly");
  assert.equal(options.readOnlyIntent, true);
  assert.equal(options.connectTimeout, 7000);
  assert.equal(options.requestTimeout, 0, "no 15 s default cutting long exports");
  assert.equal(config.errors.endpoint, "sql.example.database.windows.net\\SQLEXPRESS");
  await assert.rejects(
    mssqlConfig({ ...remote, params: { encrypt: "maybe" } }, undefined),
    /encrypt=maybe is not a boolean/,
  );
  await assert.rejects(
    mssqlConfig({ ...remote, params: { application_intent: "write" } }, undefined),
    /application_intent=write/,
  );
});
