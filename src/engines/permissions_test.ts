import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../core/errors.ts";
import type { ConfigSpec, ExportSpec } from "../core/spec.ts";
import { loadConfig } from "../config/mod.ts";
import {
  envAllowed,
  exportNeeds,
  type ExportPermissions,
  exportPermissions,
  localRoot,
  planNeeds,
  toDenoFlags,
  toWorkerPermissions,
} from "./permissions.ts";

const noEnv = () => undefined;

async function configIn(
  yaml: string,
  files: Record<string, string> = {},
): Promise<{ dir: string; config: ConfigSpec; [Symbol.asyncDispose](): Promise<void> }> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "rivet_perm_test_" }));
  await Deno.writeTextFile(join(dir, "rivet.yaml"), yaml);
  for (const [name, text] of Object.entries(files)) await Deno.writeTextFile(join(dir, name), text);
  const config = await loadConfig(join(dir, "rivet.yaml"), {
    env: (n) => ({ PG_URL: "postgres://u:pw@db.internal:6543/x", SCHEMA: "s", DAY: "1" })[n],
    params: { DAY: "2" },
  });
  return { dir, config, [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }) };
}

const wasmPath = fileURLToPath(import.meta.resolve("parquet-wasm/esm/parquet_wasm_bg.wasm"));
/** rivet's code that workers load under the process's read grant. */
const codeFolders = [
  fileURLToPath(new URL("../", import.meta.url)).replace(/\/$/, ""),
  wasmPath.slice(0, wasmPath.indexOf("/node_modules/") + "/node_modules".length),
];

Deno.test("exportPermissions grants the source host, the output folder, the state files and the env names the export reads", async () => {
  await using t = await configIn(
    "source:\n  type: postgres\n  url_env: PG_URL\nexports:\n" +
      "  - {name: orders, query_file: q.sql, format: parquet, destination: {type: local, path: 'out/{export}/{date}'}}\n" +
      "  - {name: flat, table: t, format: csv, destination: {type: local, path: /abs/flat}}\n" +
      "  - {name: piped, table: t, format: csv, destination: {type: stdout}}\n",
    { "q.sql": "SELECT * FROM ${SCHEMA}.orders WHERE day = '${DAY}'" },
  );
  const env = (n: string) => n === "PG_URL" ? "postgres://u:pw@db.internal:6543/x" : undefined;
  const [orders, flat, piped] = t.config.exports as [ExportSpec, ExportSpec, ExportSpec];
  const p = await exportPermissions(t.config, orders, { cwd: "/work", env, params: { DAY: "2" } });
  assert.deepEqual(p.net, ["db.internal:6543"]);
  assert.deepEqual(p.read, [t.dir, "/work/out/orders", wasmPath, ...codeFolders].sort());
  assert.deepEqual(
    p.write,
    [
      "/work/out/orders",
      `${t.dir}/.rivet`,
      `${t.dir}/.rivet_state.db`,
      `${t.dir}/.rivet_state.db-journal`,
      `${t.dir}/.rivet_state.db-shm`,
      `${t.dir}/.rivet_state.db-wal`,
    ].sort(),
  );
  // SCHEMA comes from the environment; DAY is a --param, so the child needs no access to it.
  // The YAML parser's LOG_TOKENS / LOG_STREAM are hidden from it (config/_yaml_env.ts).
  assert.deepEqual(p.env, [
    "PG_URL",
    "RIVET_TEST_BLOCK_AT",
    "RIVET_TEST_BLOCK_MS",
    "RIVET_TEST_CRASH_AT",
    "RIVET_TEST_HOSTNAME",
    "RIVET_TEST_LEASE_MS",
    "RIVET_TEST_SANDBOX_PROBE",
    "SCHEMA",
  ]);

  const f = await exportPermissions(t.config, flat, { cwd: "/work", env });
  assert.ok(f.write.includes("/abs/flat") && f.read.includes("/abs/flat"));
  assert.ok(!f.read.includes(wasmPath), "CSV needs no Parquet wasm");
  const s = await exportPermissions(t.config, piped, { cwd: "/work", env });
  assert.deepEqual(s.write.filter((w) => !w.startsWith(t.dir)), [], "stdout writes no folder");
});

Deno.test("exportPermissions covers password_env, url_file, ca_file, an endpoint, a Unix socket and IPv6 hosts", async () => {
  await using t = await configIn(
    "source:\n  type: postgres\n  host: 10.0.0.5\n  port: 5433\n  user: u\n  database: d\n" +
      "  password_env: DB_PASSWORD\n  tls: {mode: verify-full, ca_file: certs/ca.pem}\nexports:\n" +
      "  - {name: a, table: t, format: csv, destination: {type: local, path: out}}\n",
  );
  const spec = t.config.exports[0]!;
  const env = (n: string) => n === "DB_PASSWORD" ? "secret-pw" : undefined;
  const p = await exportPermissions(t.config, spec, { cwd: "/run/here", env });
  assert.deepEqual(p.net, ["10.0.0.5:5433"]);
  assert.ok(p.env.includes("DB_PASSWORD"));
  // A relative ca_file starts at the config folder (resolved at load), never the working dir.
  assert.ok(!p.read.includes("/run/here/certs/ca.pem"), p.read.join());
  assert.ok(p.read.includes(`${t.dir}/certs/ca.pem`), p.read.join());

  const withEndpoint = {
    ...spec,
    destination: { ...spec.destination, endpoint: "http://127.0.0.1:4569" },
  };
  const e = await exportPermissions(t.config, withEndpoint, { cwd: "/w", env });
  assert.deepEqual(e.net, ["10.0.0.5:5433", "127.0.0.1:4569"]);
  const https = {
    ...spec,
    destination: { ...spec.destination, endpoint: "https://storage.example" },
  };
  assert.ok(
    (await exportPermissions(t.config, https, { cwd: "/w", env })).net.includes(
      "storage.example:443",
    ),
  );

  const info = { user: "u", database: "d", params: {} };
  const socket = await exportPermissions(t.config, spec, {
    cwd: "/w",
    env,
    connection: { ...info, host: "/run/postgresql", port: 5432 },
  });
  assert.deepEqual(socket.net, []);
  assert.ok(socket.read.includes("/run/postgresql") && socket.write.includes("/run/postgresql"));
  const v6 = await exportPermissions(t.config, spec, {
    cwd: "/w",
    env,
    connection: { ...info, host: "::1", port: 5432 },
  });
  assert.deepEqual(v6.net, ["[::1]:5432"]);
});

Deno.test("exportPermissions grants a url_file outside the config folder and fails like the export when url_env is unset", async () => {
  const outside = await Deno.makeTempFile({ prefix: "rivet_url_" });
  await Deno.writeTextFile(outside, "postgres://u@db.example:5432/x");
  try {
    await using t = await configIn(
      `source:\n  type: postgres\n  url_file: ${outside}\nexports:\n` +
        "  - {name: a, table: t, format: csv, destination: {type: local, path: out}}\n",
    );
    const p = await exportPermissions(t.config, t.config.exports[0]!, { cwd: "/w", env: noEnv });
    assert.ok(p.read.includes(outside));
    assert.deepEqual(p.net, ["db.example:5432"]);
  } finally {
    await Deno.remove(outside);
  }
  await using u = await configIn(
    "source:\n  type: postgres\n  url_env: PG_URL\nexports:\n" +
      "  - {name: a, table: t, format: csv, destination: {type: local, path: out}}\n",
  );
  await assert.rejects(
    () => exportPermissions(u.config, u.config.exports[0]!, { cwd: "/w", env: noEnv }),
    (e: unknown) => e instanceof ConfigError && e.code === "config.missing_env",
  );
});

Deno.test("localRoot cuts the path before {date} and fills {export} and {table}", () => {
  const spec = (path: string | undefined, kind = "local") =>
    ({ name: "orders", destination: { kind, path } }) as unknown as ExportSpec;
  assert.equal(localRoot(spec("out/{export}/{date}/x"), "/w"), "/w/out/orders");
  assert.equal(localRoot(spec("out/{table}_{date}.d"), "/w"), "/w/out");
  assert.equal(localRoot(spec("{date}/x"), "/w"), "/w");
  assert.equal(localRoot(spec("/abs/{run_id}"), "/w"), "/abs/{run_id}");
  assert.equal(localRoot(spec(undefined), "/w"), "/w");
  assert.equal(localRoot(spec("out", "stdout"), "/w"), undefined);
});

Deno.test("toDenoFlags omits empty lists and refuses an entry with a comma", () => {
  const none: ExportPermissions = { net: [], read: [], write: [], env: [] };
  assert.deepEqual(toDenoFlags(none), []);
  assert.deepEqual(toDenoFlags({ ...none, read: ["/a", "/b"], env: ["X"] }), [
    "--allow-read=/a,/b",
    "--allow-env=X",
  ]);
  assert.throws(
    () => toDenoFlags({ ...none, write: ["/tmp/a,b"] }),
    (e: unknown) =>
      e instanceof ConfigError && e.code === "permissions.comma_in_entry" &&
      e.message.includes("/tmp/a,b"),
  );
});

Deno.test("toWorkerPermissions denies everything it does not list", () => {
  const w = toWorkerPermissions({ net: ["db:1"], read: [], write: ["/o"], env: [] });
  assert.deepEqual(w, {
    net: ["db:1"],
    read: false,
    write: ["/o"],
    env: false,
    run: false,
    ffi: false,
    sys: false,
    import: false,
  });
});

Deno.test("envAllowed matches exact names and trailing-star prefixes", () => {
  assert.ok(envAllowed("PG_URL", ["PG_URL"]));
  assert.ok(envAllowed("AWS_REGION", ["AWS_*"]));
  assert.ok(!envAllowed("PG_URL2", ["PG_URL"]));
  assert.ok(!envAllowed("HOME", ["AWS_*", "PG_URL"]));
});

/** A probe that reports, per attempted action, "ok" or the error's class name. */
const probeSource = `
const [okHost, okPort, otherPort, inside, outside, allowedVar] = Deno.args.length > 0
  ? Deno.args
  : await new Promise((r) => { self.onmessage = (e) => r(e.data); });
const attempt = async (fn) => { try { await fn(); return "ok"; } catch (e) { return e.name; } };
const result = {
  allowedHost: await attempt(async () => (await Deno.connect({ hostname: okHost, port: Number(okPort) })).close()),
  otherHost: await attempt(async () => (await Deno.connect({ hostname: "127.0.0.1", port: Number(otherPort) })).close()),
  writeInside: await attempt(() => Deno.writeTextFile(inside + "/probe.txt", "x")),
  writeOutside: await attempt(() => Deno.writeTextFile(outside + "/probe.txt", "x")),
  readOutside: await attempt(() => Deno.readTextFile("/etc/hostname")),
  envAllowed: await attempt(() => Deno.env.get(allowedVar)),
  envOther: await attempt(() => Deno.env.get("HOME")),
  spawn: await attempt(() => new Deno.Command("true").output()),
};
if (globalThis.postMessage && !Deno.args.length) { self.postMessage(result); } else { console.log(JSON.stringify(result)); }
`;

Deno.test("a worker with an export's permissions can reach its source and folder, and gets NotCapable for anything else", async () => {
  await using t = await configIn(
    "source:\n  type: postgres\n  url_env: PG_URL\nexports:\n" +
      "  - {name: a, table: t, format: csv, destination: {type: local, path: out}}\n",
  );
  const allowed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const other = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accept = async (l: Deno.Listener) => {
    for await (const conn of l) conn.close();
  };
  const serving = [accept(allowed), accept(other)].map((p) => p.catch(() => {}));
  const outside = await Deno.makeTempDir({ prefix: "rivet_outside_" });
  const probe = join(t.dir, "probe.js");
  await Deno.writeTextFile(probe, probeSource);
  const port = (allowed.addr as Deno.NetAddr).port;
  const perms = await exportPermissions(t.config, t.config.exports[0]!, {
    cwd: t.dir,
    env: noEnv,
    connection: { host: "127.0.0.1", port, user: "u", database: "d", params: {} },
  });
  await Deno.mkdir(join(t.dir, "out"));
  const worker = new Worker(new URL(`file://${probe}`), {
    type: "module",
    deno: { permissions: toWorkerPermissions(perms) },
  });
  try {
    const result = await new Promise<Record<string, string>>((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(new Error(e.message));
      worker.postMessage([
        "127.0.0.1",
        String(port),
        String((other.addr as Deno.NetAddr).port),
        join(t.dir, "out"),
        outside,
        "RIVET_TEST_CRASH_AT",
      ]);
    });
    assert.deepEqual(result, {
      allowedHost: "ok",
      otherHost: "NotCapable",
      writeInside: "ok",
      writeOutside: "NotCapable",
      readOutside: "NotCapable",
      envAllowed: "ok",
      envOther: "NotCapable",
      spawn: "NotCapable",
    });
  } finally {
    worker.terminate();
    allowed.close();
    other.close();
    await Promise.all(serving);
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("exportPermissions for SQL Server: every env var, the host name, and any port of a named instance's host", async () => {
  await using t = await configIn(
    "source:\n  type: mssql\n  host: sql.internal\n  user: u\n  database: d\n" +
      "  password_env: DB_PASSWORD\n  instance: SQLEXPRESS\nexports:\n" +
      "  - {name: a, table: t, format: csv, destination: {type: local, path: out}}\n",
  );
  const env = (n: string) => n === "DB_PASSWORD" ? "secret-pw" : undefined;
  const p = await exportPermissions(t.config, t.config.exports[0]!, { cwd: "/w", env });
  // SQL Server Browser (UDP 1434) hands out the instance's port at connect time.
  assert.deepEqual(p.net, ["sql.internal"]);
  assert.equal(p.allEnv, true, "tedious lists the environment when it loads");
  assert.deepEqual(p.sys, ["hostname"]);
  const flags = toDenoFlags(p);
  assert.ok(flags.includes("--allow-env"), flags.join(" "));
  assert.ok(flags.includes("--allow-sys=hostname"), flags.join(" "));
});

Deno.test("exportPermissions with RIVET_STATE_URL: the state host, the variable and the host name, no state file", async () => {
  await using t = await configIn(
    "source:\n  type: postgres\n  url_env: PG_URL\nexports:\n" +
      "  - {name: a, table: t, format: csv, destination: {type: local, path: /abs/a}}\n",
    { "state-ca.pem": "" },
  );
  const vars: Record<string, string> = {
    PG_URL: "postgres://u:pw@db.internal:6543/x",
    RIVET_STATE_URL:
      "postgresql://rivet:s3cret@state.internal:5433/ops?sslmode=verify-full&sslrootcert=state-ca.pem",
  };
  const p = await exportPermissions(t.config, t.config.exports[0]!, {
    cwd: "/w",
    env: (n) => vars[n],
  });
  assert.deepEqual(p.net, ["db.internal:6543", "state.internal:5433"]);
  assert.ok(p.env.includes("RIVET_STATE_URL"), p.env.join());
  assert.deepEqual(p.write, ["/abs/a", `${t.dir}/.rivet`].sort());
  assert.ok(p.read.includes(`${t.dir}/state-ca.pem`) || p.read.includes(t.dir), p.read.join());
  assert.deepEqual(p.sys, ["hostname"]);
  // Without the variable: the SQLite files, no state host, no host name.
  const local = await exportPermissions(t.config, t.config.exports[0]!, {
    cwd: "/w",
    env: (n) => n === "PG_URL" ? vars.PG_URL : undefined,
  });
  assert.deepEqual(local.net, ["db.internal:6543"]);
  assert.ok(local.write.includes(`${t.dir}/.rivet_state.db`));
  assert.ok(!local.env.includes("RIVET_STATE_URL"));
  assert.deepEqual(local.sys ?? [], []);
});

Deno.test("planNeeds merges the exports' needs with a reason each, drops covered paths and the test hooks", async () => {
  await using t = await configIn(
    "source:\n  type: postgres\n  url_env: PG_URL\nexports:\n" +
      "  - {name: a, table: t, format: parquet, destination: {type: local, path: /abs/a}}\n" +
      "  - {name: b, table: t, format: csv, destination: {type: local, path: /abs/a/b}}\n" +
      "  - {name: c, table: t, format: csv, destination: {type: s3, bucket: x, " +
      "endpoint: 'http://127.0.0.1:9000', access_key_env: K, secret_key_env: S}}\n",
  );
  const env = (n: string) => n === "PG_URL" ? "postgres://u:pw@db.internal:6543/x" : undefined;
  const n = await planNeeds(t.config, t.config.exports, { cwd: "/w", env });
  assert.deepEqual([...n.net], [["db.internal:6543", "source"], [
    "127.0.0.1:9000",
    "s3 destination",
  ]]);
  assert.equal(n.write.get("/abs/a"), "output folder of export 'a'");
  assert.ok(!n.write.has("/abs/a/b") && !n.read.has("/abs/a/b"), "inside /abs/a");
  assert.ok(!n.read.has(wasmPath), "inside node_modules");
  assert.ok(!n.env.has("RIVET_TEST_CRASH_AT"));
  assert.equal(n.env.get("K"), "s3 credentials (destination)");
  assert.equal(n.env.get("PG_URL"), "url_env (source URL)");
  assert.ok(n.sys.includes("osRelease"));
  // Each export alone still gets exactly what exportPermissions gives it.
  const b = await exportPermissions(t.config, t.config.exports[1]!, { cwd: "/w", env });
  assert.ok(b.write.includes("/abs/a/b"));
});

Deno.test("planNeeds adds what the notifications need: their variables, url_file and receiver hosts", async () => {
  await using t = await configIn(
    "source:\n  type: postgres\n  url_env: PG_URL\nexports:\n" +
      "  - {name: a, table: t, format: csv, destination: {type: local, path: /abs/a}}\n" +
      "notifications:\n  slack: {webhook_url_env: SLACK_URL}\n" +
      "  webhook: {url_file: hook.url, secret_env: HOOK_KEY}\n",
    { "hook.url": "http://hooks.internal:8080/secret/path\n" },
  );
  const env = (n: string) =>
    ({
      PG_URL: "postgres://u:pw@db.internal:6543/x",
      SLACK_URL: "https://hooks.slack.com/services/T/B/secret",
    })[n];
  const n = await planNeeds(t.config, t.config.exports, { cwd: "/w", env });
  assert.equal(n.net.get("hooks.slack.com:443"), "notifications: Slack webhook");
  assert.equal(n.net.get("hooks.internal:8080"), "notifications: webhook");
  assert.ok(![...n.net.keys()].some((h) => h.includes("secret")), "hosts only, never a path");
  assert.equal(n.env.get("SLACK_URL"), "notifications: Slack webhook");
  assert.equal(n.env.get("HOOK_KEY"), "notifications: webhook signing key");
  // The config folder (read anyway) covers the url_file beside the config.
  assert.ok(n.read.has(t.dir));
  // An unset variable: its name is needed, its host cannot be known yet.
  const unset = await planNeeds(t.config, t.config.exports, {
    cwd: "/w",
    env: (name) => name === "PG_URL" ? "postgres://db.internal:6543/x" : undefined,
  });
  assert.ok(unset.env.has("SLACK_URL") && !unset.net.has("hooks.slack.com:443"));
});

Deno.test("exportPermissions reads the files of a cloud destination's default credential chain", async () => {
  await using t = await configIn(
    "source:\n  type: postgres\n  url_env: PG_URL\nexports:\n" +
      "  - {name: chain, table: t, format: csv, destination: {type: s3, bucket: b}}\n" +
      "  - {name: profile, table: t, format: csv, destination: {type: s3, bucket: b, aws_profile: ops}}\n" +
      "  - {name: keys, table: t, format: csv, destination: {type: s3, bucket: b, " +
      "access_key_env: K, secret_key_env: S}}\n" +
      "  - {name: adc, table: t, format: csv, destination: {type: gcs, bucket: b}}\n",
  );
  const vars: Record<string, string> = {
    PG_URL: "postgres://db:5432/x",
    HOME: "/home/op",
    AWS_WEB_IDENTITY_TOKEN_FILE: "/var/run/token",
    GOOGLE_APPLICATION_CREDENTIALS: "/etc/gcp/sa.json",
  };
  const read = async (name: string, env = (n: string) => vars[n]) => {
    const spec = t.config.exports.find((e) => e.name === name)!;
    return (await exportNeeds(t.config, spec, { cwd: "/w", env })).read;
  };
  const chain = await read("chain");
  assert.equal(chain.get("/home/op/.aws/credentials"), "default AWS credential chain");
  assert.ok(chain.has("/home/op/.aws/config") && chain.has("/var/run/token"));
  assert.equal((await read("profile")).get("/home/op/.aws/config"), "aws_profile 'ops'");
  assert.ok(![...(await read("keys")).keys()].some((p) => p.includes(".aws")), "keys named");
  const adc = await read("adc");
  assert.ok(adc.has("/etc/gcp/sa.json") && adc.has("/home/op/.config/gcloud"));
  const moved = await read("chain", (n) => n === "AWS_SHARED_CREDENTIALS_FILE" ? "creds" : vars[n]);
  assert.ok(moved.has("/w/creds") && !moved.has("/home/op/.aws/credentials"));
});
