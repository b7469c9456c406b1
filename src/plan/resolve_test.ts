import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "../core/errors.ts";
import { loadConfig } from "../config/load.ts";
import { absoluteDestination, localRoot, resolveJob } from "./resolve.ts";

const CONFIG = `source:
  type: postgres
  url_env: RESOLVE_TEST_URL
exports:
  - name: orders
    query_file: sql/orders.sql
    format: parquet
    destination: {type: local, path: "out/{export}"}
  - name: remote
    table: public.orders
    format: csv
    destination: {type: s3, bucket: b, prefix: "x/{date}"}
`;

/** Writes `files` (name → text) into a new temp dir and returns the dir. */
async function tempDirWith(files: Readonly<Record<string, string>>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "rivet_resolve_test_" });
  for (const [name, text] of Object.entries(files)) {
    await Deno.mkdir(join(dir, name, ".."), { recursive: true });
    await Deno.writeTextFile(join(dir, name), text);
  }
  return dir;
}

Deno.test("resolveJob: one job holds the connection, the query text, tuning and an absolute folder", async () => {
  const dir = await tempDirWith({
    "conf/plan.yaml": CONFIG,
    "conf/sql/orders.sql": "SELECT id FROM orders WHERE region = '${REGION}'",
  });
  try {
    const config = await loadConfig(join(dir, "conf/plan.yaml"), { params: { REGION: "eu" } });
    const env = (name: string) =>
      name === "RESOLVE_TEST_URL" ? "postgresql://u:s3cret@127.0.0.1:5433/db" : undefined;
    const cwd = join(dir, "elsewhere");
    const job = await resolveJob(config, config.exports[0]!, {
      params: { REGION: "eu" },
      cwd,
      env,
    });
    assert.equal(job.connection.host, "127.0.0.1");
    assert.equal(job.connection.port, 5433);
    assert.equal(job.connection.password, "s3cret");
    assert.equal(job.baseSql, "SELECT id FROM orders WHERE region = 'eu'");
    // The local destination starts at the working directory; placeholders stay for each run.
    assert.equal(job.spec.destination.path, join(cwd, "out/{export}"));
    assert.equal(job.configDir, join(dir, "conf"));
    assert.equal(job.configPath, join(dir, "conf/plan.yaml"));
    assert.equal(job.tuning.profile, "balanced");
    assert.deepEqual(job.warnings, []);
    // Plain data: it crosses the worker messages as it is.
    assert.deepEqual(structuredClone(job), job);
    // A cloud destination is left as written.
    const remote = await resolveJob(config, config.exports[1]!, { params: {}, cwd, env });
    assert.deepEqual(remote.spec.destination, config.exports[1]!.destination);
    assert.equal(remote.baseSql, "SELECT * FROM public.orders");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveJob: what stops an export before it connects is a ConfigError", async () => {
  const dir = await tempDirWith({ "plan.yaml": CONFIG, "sql/orders.sql": "SELECT 1" });
  try {
    const config = await loadConfig(join(dir, "plan.yaml"));
    const error = await resolveJob(config, config.exports[0]!, {
      params: {},
      cwd: dir,
      env: () => undefined,
    }).catch((e: unknown) => e);
    assert.ok(error instanceof ConfigError, String(error));
    assert.match(error.message, /RESOLVE_TEST_URL/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveJob: plaintext to a remote host, opted in, is a job warning", async () => {
  const dir = await tempDirWith({
    "plan.yaml": CONFIG.replace(
      "url_env: RESOLVE_TEST_URL",
      "url_env: RESOLVE_TEST_URL\n  tls: {mode: disable}",
    ),
    "sql/orders.sql": "SELECT 1",
  });
  try {
    const config = await loadConfig(join(dir, "plan.yaml"));
    const job = await resolveJob(config, config.exports[1]!, {
      params: {},
      cwd: dir,
      env: () => "postgresql://u@db.example.internal:5432/db",
    });
    assert.deepEqual(job.warnings.map((w) => w.code), ["source.tls_not_enforced"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("localRoot and absoluteDestination: path, else prefix, else the working directory", () => {
  const local = { kind: "local" as const, allowAnonymous: false };
  assert.equal(localRoot({ ...local, path: "out" }, "/w"), "/w/out");
  assert.equal(localRoot({ ...local, prefix: "p/{date}" }, "/w"), "/w/p/{date}");
  assert.equal(localRoot(local, "/w"), "/w");
  assert.equal(localRoot({ ...local, path: "/abs/out" }, "/w"), "/abs/out");
  assert.equal(absoluteDestination({ ...local, path: "a/../b" }, "/w").path, "/w/b");
  const s3 = { kind: "s3" as const, bucket: "b", prefix: "x", allowAnonymous: false };
  assert.equal(absoluteDestination(s3, "/w"), s3);
});
