import assert from "node:assert/strict";
import { ConfigError } from "../../core/errors.ts";
import type { ConnectionInfo } from "../../core/source.ts";
import type { TlsSpec } from "../../core/spec.ts";
import { mysqlConfig } from "./connect.ts";

const info: ConnectionInfo = {
  host: "127.0.0.1",
  port: 3306,
  user: "u",
  password: "pw-S3CR3T",
  database: "d",
  params: {},
};
const tls = (extra: Partial<TlsSpec> = {}): TlsSpec => ({
  mode: "verify-full",
  acceptInvalidCerts: false,
  acceptInvalidHostnames: false,
  ...extra,
});

Deno.test("no tls block and mode disable give mysql2 no ssl options", async () => {
  for (const spec of [undefined, tls({ mode: "disable", acceptInvalidCerts: true })]) {
    const config = await mysqlConfig(info, spec);
    assert.equal(config.ssl, undefined);
    assert.equal(Object.getOwnPropertySymbols(config).length, 0);
  }
});

Deno.test("every TLS mode verifies the chain with the ca_file text and leaves mysql2's name check off", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/ca.pem`, "-----BEGIN CERTIFICATE-----\nx\n");
    for (const mode of ["require", "verify-ca", "verify-full"] as const) {
      const config = await mysqlConfig(info, tls({ mode, caFile: `${dir}/ca.pem` }));
      assert.deepEqual(config.ssl, {
        rejectUnauthorized: true,
        verifyIdentity: false,
        ca: "-----BEGIN CERTIFICATE-----\nx\n",
      }, mode);
      // rivet's own TLS settings ride under a symbol, out of the keys mysql2 validates.
      assert.equal(Object.getOwnPropertySymbols(config).length, 1, mode);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("accept_invalid_certs is refused before any file is read or socket opened", async () => {
  await assert.rejects(
    mysqlConfig(info, tls({ acceptInvalidCerts: true, caFile: "/nonexistent/ca.pem" })),
    (e: unknown) =>
      e instanceof ConfigError && e.code === "config.not_supported" &&
      e.message.includes("accept_invalid_certs") && e.message.includes("ca_file"),
  );
});

Deno.test("an unreadable ca_file is a ConfigError naming the path", async () => {
  await assert.rejects(
    mysqlConfig(info, tls({ caFile: "/nonexistent/ca.pem" })),
    (e: unknown) =>
      e instanceof ConfigError && e.code === "config.tls_ca_file" &&
      e.message.includes("/nonexistent/ca.pem") && !e.message.includes("S3CR3T"),
  );
});
