import assert from "node:assert/strict";
import { ConfigError } from "../core/errors.ts";
import type { SourceSpec } from "../core/spec.ts";
import { redact } from "../_util/redact.ts";
import { configErrorOf, tempDirWith } from "./_testing.ts";
import { parseConnectionUrl, resolveConnection } from "./connection.ts";

function spec(
  connection: SourceSpec["connection"],
  kind: SourceSpec["kind"] = "postgres",
): SourceSpec {
  return { kind, connection };
}

Deno.test("parseConnectionUrl reads postgresql:// and postgres:// URLs with query params", () => {
  assert.deepEqual(
    parseConnectionUrl(
      "postgresql://app:secret1@db.internal:6432/shop?sslmode=require&application_name=rivet%20x",
    ),
    {
      host: "db.internal",
      port: 6432,
      user: "app",
      password: "secret1",
      database: "shop",
      params: { sslmode: "require", application_name: "rivet x" },
    },
  );
  assert.deepEqual(parseConnectionUrl("postgres://app@127.0.0.1/"), {
    host: "127.0.0.1",
    port: 5432,
    user: "app",
    database: "app",
    params: {},
  });
});

Deno.test("parseConnectionUrl percent-decodes user, password and database", () => {
  const info = parseConnectionUrl(
    `postgresql://r%C3%A9ader:${encodeURIComponent("p@ss:w/rd-S3CR3T_M4RK3R")}@h:5432/my%20db`,
  );
  assert.equal(info.user, "réader");
  assert.equal(info.password, "p@ss:w/rd-S3CR3T_M4RK3R");
  assert.equal(info.database, "my db");
  assert.equal(redact("pw=p@ss:w/rd-S3CR3T_M4RK3R"), "pw=***");
});

Deno.test("parseConnectionUrl splits userinfo at the last '@' and reads IPv6 hosts", () => {
  const info = parseConnectionUrl("postgresql://u:a@b@[::1]:5433/d");
  assert.equal(info.password, "a@b");
  assert.equal(info.host, "::1");
  assert.equal(info.port, 5433);
});

Deno.test("parseConnectionUrl reads mysql, sqlserver and mssql URLs with their default ports", () => {
  assert.equal(parseConnectionUrl("mysql://u:pw12@h/d", "mysql").port, 3306);
  assert.equal(parseConnectionUrl("sqlserver://u:pw12@h/d", "mssql").port, 1433);
  assert.equal(parseConnectionUrl("mssql://u@h:14330/d", "mssql").port, 14330);
});

Deno.test("parseConnectionUrl refuses bad schemes, ports and engine mismatches without echoing", () => {
  const bad = [
    ["http://u:hunter2pw@h/d", undefined],
    ["postgresql://u:hunter2pw@h:99999/d", undefined],
    ["postgresql://u:hunter2pw@h:abc/d", undefined],
    ["postgresql://u:hunter2pw@/d", undefined],
    ["mysql://u:hunter2pw@h/d", "postgres"],
    ["postgresql://u:%ZZhunter2pw@h/d", undefined],
  ] as const;
  for (const [url, kind] of bad) {
    assert.throws(() => parseConnectionUrl(url, kind), (error: unknown) => {
      assert.ok(error instanceof ConfigError, url);
      assert.equal(error.code, "config.invalid_url");
      assert.ok(!error.message.includes("hunter2pw"), error.message);
      return true;
    });
  }
});

Deno.test("resolveConnection reads url_env at connect time and names an unset variable", async () => {
  const source = spec({ form: "url_env", env: "PG_URL" });
  const info = await resolveConnection(source, {
    configDir: "/",
    env: (n) => (n === "PG_URL" ? "postgresql://app:pw1234@db:5432/x" : undefined),
  });
  assert.equal(info.host, "db");
  assert.equal(info.password, "pw1234");
  const error = await configErrorOf(() =>
    resolveConnection(source, { configDir: "/", env: () => undefined, exportName: "orders" })
  );
  assert.equal(error.code, "config.missing_env");
  assert.match(error.message, /'PG_URL'.*export 'orders'/);
});

Deno.test("resolveConnection reads url_file relative to the config dir, trimmed", async () => {
  const dir = await tempDirWith({
    "secrets/pg.url": "\n  postgresql://app:fileSecret99@db.local:5439/w  \n",
  });
  try {
    const info = await resolveConnection(spec({ form: "url_file", path: "secrets/pg.url" }), {
      configDir: dir,
    });
    assert.deepEqual(info, {
      host: "db.local",
      port: 5439,
      user: "app",
      password: "fileSecret99",
      database: "w",
      params: {},
    });
    assert.equal(redact("x fileSecret99"), "x ***");
    const missing = await configErrorOf(() =>
      resolveConnection(spec({ form: "url_file", path: "nope.url" }), { configDir: dir })
    );
    assert.equal(missing.code, "config.not_found");
    assert.match(missing.message, /source\.url_file 'nope\.url' does not exist/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveConnection resolves structured fields with password or password_env", async () => {
  const base = { form: "structured", host: "h", port: 5432, user: "u", database: "d" } as const;
  const inline = await resolveConnection(spec({ ...base, password: { secret: "inlinePw77" } }), {
    configDir: "/",
  });
  assert.equal(inline.password, "inlinePw77");
  assert.equal(redact("inlinePw77"), "***");
  const fromEnv = await resolveConnection(spec({ ...base, passwordEnv: "PGPW" }), {
    configDir: "/",
    env: (n) => (n === "PGPW" ? "envPw8888" : undefined),
  });
  assert.deepEqual(fromEnv, {
    host: "h",
    port: 5432,
    user: "u",
    password: "envPw8888",
    database: "d",
    params: {},
  });
  const none = await resolveConnection(spec(base), { configDir: "/" });
  assert.equal(none.password, undefined);
  const unset = await configErrorOf(() =>
    resolveConnection(spec({ ...base, passwordEnv: "PGPW" }), {
      configDir: "/",
      env: () => undefined,
    })
  );
  assert.match(unset.message, /'PGPW' \(source\.password_env\) is not set/);
});
