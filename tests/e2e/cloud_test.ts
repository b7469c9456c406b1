/**
 * End to end, `rivet run` into object stores started by the harness (s3rver), from a real
 * PostgreSQL: every mode, split files, chunk workers, a crash and `--resume`, then `rivet
 * validate` and a read-back of every object through the destination itself.
 */
import assert from "node:assert/strict";
import { spawnCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { s3ConfigDestination, s3ConfigEnv, startS3rver } from "../_helpers/s3rver.ts";
import type { Destination } from "../../src/core/destination.ts";
import { S3Destination } from "../../src/destinations/s3.ts";
import { GcsDestination } from "../../src/destinations/gcs.ts";
import { startGcsServer } from "../_helpers/gcs_server.ts";
import { AzureDestination } from "../../src/destinations/azure.ts";
import { startAzurite } from "../_helpers/azurite.ts";

const ROWS = 2_000;
const ALL = Array.from({ length: ROWS }, (_, i) => i + 1);

/**
 * The first-column ids of every CSV object at a destination (quarantine excluded), sorted, and
 * every key listed, read back through the destination itself.
 */
async function csvIdsAt(d: Destination): Promise<{ ids: number[]; keys: string[] }> {
  const ids: number[] = [];
  const keys: string[] = [];
  for await (const o of d.list("")) {
    keys.push(o.key);
    if (!o.key.endsWith(".csv") || o.key.startsWith("_quarantine/")) continue;
    const text = await new Response(await d.read(o.key)).text();
    ids.push(...text.trimEnd().split("\n").slice(1).map((l) => Number(l.split(",")[0])));
  }
  return { ids: ids.sort((a, b) => a - b), keys };
}

Deno.test({
  name:
    "s3 (s3rver): full (split), incremental, chunked with workers, time_window, child processes, crash + resume, validate",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await using s3 = await startS3rver({ bucket: "rivet-e2e" });
    await pg.psql(
      `CREATE TABLE ev AS SELECT i::int8 AS id, md5(i::text) AS s,
         timestamp '2024-01-01' + i * interval '1 minute' AS at FROM generate_series(1, ${ROWS}) i;
       ALTER TABLE ev ADD PRIMARY KEY (id);`,
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_cloud_" });
    const env = { DB_URL: pg.url, ...s3ConfigEnv(s3) };
    const dest = (prefix: string) => s3ConfigDestination(s3, prefix).yaml;
    const cfg = `${dir}/plan.yaml`;
    await Deno.writeTextFile(
      cfg,
      `source:
  type: postgres
  url_env: DB_URL
exports:
  - name: full
    table: ev
    format: csv
    max_file_size: 30KB
    destination: ${dest("full/")}
  - name: inc
    query: SELECT id, s, at FROM ev
    mode: incremental
    cursor_column: id
    format: parquet
    destination: ${dest("inc/{date}/")}
  - name: chunks
    table: ev
    mode: chunked
    chunk_column: id
    chunk_size: 300
    parallel: 2
    chunk_checkpoint: true
    format: csv
    destination: ${dest("chunks/")}
  - name: tw
    query: SELECT id, s, now() AS at FROM ev
    mode: time_window
    time_column: at
    days_window: 1
    format: csv
    destination: ${dest("tw/")}
`,
    );
    const rivet = (args: string[], extra: Record<string, string> = {}) =>
      spawnCli(args, { env: { ...env, ...extra } });
    const open = (prefix: string) =>
      S3Destination.open(s3ConfigDestination(s3, prefix).spec, {
        env: (name) => (env as Record<string, string>)[name],
      });
    const csvIds = async (prefix: string) => {
      await using d = await open(prefix);
      return (await csvIdsAt(d)).ids;
    };

    await t.step("full (split), incremental and chunked with workers land complete", async () => {
      const res = await rivet(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      assert.ok(!res.stderr.includes(s3.secretAccessKey) || s3.secretAccessKey.length < 6);
      assert.deepEqual(await csvIds("full/"), ALL);
      assert.deepEqual(await csvIds("chunks/"), ALL);
      assert.deepEqual(await csvIds("tw/"), ALL);
      await using full = await open("full/");
      const keys = (await Array.fromAsync(full.list(""))).map((o) => o.key);
      assert.ok(keys.filter((k) => /_part\d+\.csv$/.test(k)).length > 1, "split into parts");
      assert.ok(keys.includes("manifest.json") && keys.includes("_SUCCESS"));
      const validated = await rivet(["validate", "-c", cfg]);
      assert.equal(validated.code, 0, validated.stdout + validated.stderr);
      // doctor writes and removes its probe at each distinct store prefix.
      const doctor = await rivet(["doctor", "-c", cfg]);
      assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
      assert.match(doctor.stdout, /\[OK\] destination: s3:\/\/rivet-e2e\/full\//);
      await using probe = await open("full/");
      assert.equal(await probe.stat(".rivet_doctor_probe"), undefined, "the probe is gone");
      // The second incremental run exports nothing new.
      const again = await rivet(["run", "-c", cfg, "-e", "inc"]);
      assert.equal(again.code, 0, again.stderr);
    });

    await t.step(
      "a crash after a chunk completes, then --resume, gives every row once",
      async () => {
        const crashCfg = `${dir}/crash.yaml`;
        await Deno.writeTextFile(
          crashCfg,
          (await Deno.readTextFile(cfg)).replaceAll("chunks/", "crash/").replace(
            "parallel: 2",
            "parallel: 1",
          ),
        );
        const crashed = await rivet(["run", "-c", crashCfg, "-e", "chunks"], {
          RIVET_TEST_CRASH_AT: "after_chunk_file:2",
        });
        assert.equal(crashed.code, 86, crashed.stderr);
        const resumed = await rivet(["run", "-c", crashCfg, "-e", "chunks", "--resume"]);
        assert.equal(resumed.code, 0, resumed.stderr);
        assert.deepEqual(await csvIds("crash/"), ALL);
        await using d = await open("crash/");
        const keys = (await Array.fromAsync(d.list(""))).map((o) => o.key);
        assert.ok(
          keys.some((k) => k.startsWith("_quarantine/")),
          "the unfinished chunk's file moved",
        );
        assert.ok(keys.includes("_SUCCESS"));
      },
    );

    await t.step("--parallel-export-processes: each child writes to the store", async () => {
      const procCfg = `${dir}/proc.yaml`;
      await Deno.writeTextFile(
        procCfg,
        (await Deno.readTextFile(cfg)).replaceAll('prefix: "', 'prefix: "proc/'),
      );
      const res = await rivet(["run", "-c", procCfg, "--parallel-export-processes"]);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(await csvIds("proc/full/"), ALL);
      assert.deepEqual(await csvIds("proc/chunks/"), ALL);
    });
    await t.step(
      "a bucket that does not exist fails cleanly, naming it, secret unseen",
      async () => {
        const bad = `${dir}/bad.yaml`;
        await Deno.writeTextFile(
          bad,
          (await Deno.readTextFile(cfg)).replaceAll(
            `bucket: ${s3.bucket}`,
            "bucket: no-such-bucket",
          ),
        );
        const res = await rivet(["run", "-c", bad, "-e", "full"]);
        assert.equal(res.code, 1, res.stderr);
        assert.match(res.stderr, /no-such-bucket/);
      },
    );

    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "gcs (in-repo emulator): full (split), chunk workers, incremental, time_window, validated",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using pg = await startPostgres();
    await using gcs = await startGcsServer({ buckets: ["rivet-gcs"] });
    await pg.psql(
      `CREATE TABLE ev AS SELECT i::int8 AS id, md5(i::text) AS s FROM generate_series(1, ${ROWS}) i;
       ALTER TABLE ev ADD PRIMARY KEY (id);`,
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_gcs_" });
    const dest = (prefix: string) =>
      `{ type: gcs, bucket: rivet-gcs, prefix: "${prefix}", endpoint: "${gcs.url}", allow_anonymous: true }`;
    const cfg = `${dir}/plan.yaml`;
    await Deno.writeTextFile(
      cfg,
      `source:
  type: postgres
  url_env: DB_URL
exports:
  - name: full
    table: ev
    format: csv
    max_file_size: 10KB
    destination: ${dest("full/")}
  - name: chunks
    table: ev
    mode: chunked
    chunk_column: id
    chunk_size: 500
    parallel: 2
    format: csv
    destination: ${dest("chunks/")}
  - name: inc
    query: SELECT id, s FROM ev
    mode: incremental
    cursor_column: id
    format: csv
    destination: ${dest("inc/")}
  - name: tw
    query: SELECT id, s, now() AS at FROM ev
    mode: time_window
    time_column: at
    days_window: 1
    format: csv
    destination: ${dest("tw/")}
`,
    );
    const res = await spawnCli(["run", "-c", cfg], { env: { DB_URL: pg.url } });
    assert.equal(res.code, 0, res.stderr);
    const validated = await spawnCli(["validate", "-c", cfg], { env: { DB_URL: pg.url } });
    assert.equal(validated.code, 0, validated.stdout + validated.stderr);
    for (const prefix of ["full/", "chunks/", "inc/", "tw/"]) {
      await using d = await GcsDestination.open(
        { kind: "gcs", bucket: "rivet-gcs", prefix, endpoint: gcs.url, allowAnonymous: true },
        { env: () => undefined },
      );
      const { ids, keys } = await csvIdsAt(d);
      assert.deepEqual(ids, ALL, prefix);
      assert.ok(keys.includes("_SUCCESS"), prefix);
      if (prefix === "full/") assert.ok(keys.filter((k) => k.endsWith(".csv")).length > 1);
    }
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "azure (Azurite): incremental twice, full Parquet, chunk workers; key never shown",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using pg = await startPostgres();
    await using azurite = await startAzurite();
    const { BlobServiceClient } = await import("@azure/storage-blob");
    await BlobServiceClient.fromConnectionString(azurite.connectionString).createContainer("rivet");
    await pg.psql(
      `CREATE TABLE ev AS SELECT i::int8 AS id, md5(i::text) AS s FROM generate_series(1, ${ROWS}) i;`,
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_azure_" });
    const cfg = `${dir}/plan.yaml`;
    await Deno.writeTextFile(
      cfg,
      `source:
  type: postgres
  url_env: DB_URL
exports:
  - name: inc
    query: SELECT id, s FROM ev
    mode: incremental
    cursor_column: id
    format: csv
    destination: { type: azure, bucket: rivet, prefix: "inc/", account_name: ${azurite.accountName}, account_key_env: AZ_KEY, endpoint: "${azurite.endpoint()}" }
  - name: full
    table: ev
    format: parquet
    destination: { type: azure, bucket: rivet, prefix: "full/", account_name: ${azurite.accountName}, account_key_env: AZ_KEY, endpoint: "${azurite.endpoint()}" }
  - name: chunks
    table: ev
    mode: chunked
    chunk_column: id
    chunk_size: 700
    parallel: 2
    format: csv
    destination: { type: azure, bucket: rivet, prefix: "chunks/", account_name: ${azurite.accountName}, account_key_env: AZ_KEY, endpoint: "${azurite.endpoint()}" }
`,
    );
    const env = { DB_URL: pg.url, AZ_KEY: azurite.accountKey };
    const first = await spawnCli(["run", "-c", cfg], { env });
    assert.equal(first.code, 0, first.stderr);
    const second = await spawnCli(["run", "-c", cfg, "-e", "inc"], { env });
    assert.equal(second.code, 0, second.stderr);
    for (const out of [first, second]) {
      assert.ok(!(out.stdout + out.stderr).includes(azurite.accountKey), "the key never shows");
    }
    const validated = await spawnCli(["validate", "-c", cfg], { env });
    assert.equal(validated.code, 0, validated.stdout + validated.stderr);
    await using d = await AzureDestination.open(
      {
        kind: "azure",
        bucket: "rivet",
        prefix: "inc/",
        accountName: azurite.accountName,
        accountKeyEnv: "AZ_KEY",
        endpoint: azurite.endpoint(),
        allowAnonymous: false,
      },
      { env: (name) => (env as Record<string, string>)[name] },
    );
    const incremental = await csvIdsAt(d);
    assert.equal(
      incremental.keys.filter((k) => k.endsWith(".csv")).length,
      1,
      "the second run found no new rows and wrote no file",
    );
    assert.deepEqual(incremental.ids, ALL);
    await using chunks = await AzureDestination.open(
      {
        kind: "azure",
        bucket: "rivet",
        prefix: "chunks/",
        accountName: azurite.accountName,
        accountKeyEnv: "AZ_KEY",
        endpoint: azurite.endpoint(),
        allowAnonymous: false,
      },
      { env: (name) => (env as Record<string, string>)[name] },
    );
    assert.deepEqual((await csvIdsAt(chunks)).ids, ALL);
    await Deno.remove(dir, { recursive: true });
  },
});
