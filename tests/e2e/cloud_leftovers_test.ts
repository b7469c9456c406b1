/**
 * A kill inside an object store's renaming commit, on s3rver, the in-repo GCS server and Azurite:
 * a part over one upload chunk (8 MiB) whose final name is only known at commit
 * (`max_file_size` set, one part) is staged, then copied to its final name. A real `rivet run`
 * crashes (`RIVET_TEST_CRASH_AT`) before the copy, or between the copy and the delete of the
 * staged object; then a plain run and `rivet validate` run.
 *
 * - Before the copy: no object with a data name may exist (only a hidden staging object), and
 *   the next run removes the staging object and says so; every row is there once.
 * - After the copy: the complete object at its final name is listed in no manifest: the next run
 *   reports it by name and `rivet validate` fails (exit 3) naming it.
 */
import assert from "node:assert/strict";
import { spawnCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { s3ConfigDestination, s3ConfigEnv, startS3rver } from "../_helpers/s3rver.ts";
import { startGcsServer } from "../_helpers/gcs_server.ts";
import { startAzurite } from "../_helpers/azurite.ts";
import type { Destination } from "../../src/core/destination.ts";
import { S3Destination } from "../../src/destinations/s3.ts";
import { GcsDestination } from "../../src/destinations/gcs.ts";
import { AzureDestination } from "../../src/destinations/azure.ts";

/** Rows of about 3.2 KB: 3000 of them make a CSV over 9 MiB, more than one upload chunk. */
const ROWS = 3_000;
const ALL = Array.from({ length: ROWS }, (_, i) => i + 1);
const DATA_NAME = /^big\d_\d{8}_\d{6}.*\.csv$/;

interface Store {
  readonly name: string;
  /** The `destination:` block of a prefix. */
  readonly dest: (prefix: string) => string;
  readonly env: Record<string, string>;
  readonly open: (prefix: string) => Promise<Destination>;
}

/** Data keys and first-column ids at a prefix (quarantine excluded). */
async function contents(store: Store, prefix: string) {
  await using d = await store.open(prefix);
  const keys: string[] = [];
  const ids: number[] = [];
  for await (const o of d.list("")) {
    keys.push(o.key);
    if (!DATA_NAME.test(o.key)) continue;
    const text = await new Response(await d.read(o.key)).text();
    ids.push(...text.trimEnd().split("\n").slice(1).map((l) => Number(l.split(",")[0])));
  }
  const staging: string[] = [];
  if (d.listStaging) { for await (const s of d.listStaging("")) staging.push(s.key); }
  return {
    keys,
    data: keys.filter((k) => DATA_NAME.test(k)),
    ids: ids.sort((a, b) => a - b),
    staging,
  };
}

async function crashInsideCommit(store: Store, pgUrl: string) {
  const dir = await Deno.makeTempDir({ prefix: `rivet_cloudleft_${store.name}_` });
  try {
    const cfg = `${dir}/plan.yaml`;
    await Deno.writeTextFile(
      cfg,
      `source:
  type: postgres
  url_env: DB_URL
exports:
  - name: big1
    table: big
    format: csv
    max_file_size: 1GB
    destination: ${store.dest("w1/")}
  - name: big2
    table: big
    format: csv
    max_file_size: 1GB
    destination: ${store.dest("w2/")}
`,
    );
    const env = { DB_URL: pgUrl, ...store.env };
    const rivet = (args: string[], extra: Record<string, string> = {}) =>
      spawnCli(args, { env: { ...env, ...extra } });

    const before = await rivet(["run", "-c", cfg, "-e", "big1"], {
      RIVET_TEST_CRASH_AT: "before_commit_rename",
    });
    assert.equal(before.code, 86, before.stderr);
    const afterCrash1 = await contents(store, "w1/");
    assert.deepEqual(afterCrash1.data, [], "no object with a data name before the copy");
    assert.equal(afterCrash1.staging.length, 1, "one hidden staging object");

    const copied = await rivet(["run", "-c", cfg, "-e", "big2"], {
      RIVET_TEST_CRASH_AT: "after_commit_copy",
    });
    assert.equal(copied.code, 86, copied.stderr);
    const afterCrash2 = await contents(store, "w2/");
    assert.equal(afterCrash2.data.length, 1, "the copy landed at its final name");
    const orphan = afterCrash2.data[0]!;
    assert.doesNotMatch(orphan, /_part0/, "one part keeps the unsplit name");
    assert.equal(afterCrash2.staging.length, 1);

    // Plain re-runs of both exports: the staging objects go, the copied one is reported.
    await new Promise((r) => setTimeout(r, 1100)); // a new file stamp
    const rerun = await rivet(["run", "-c", cfg]);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(
      rerun.stderr,
      /export 'big1': removed 1 staging object\(s\) left by an interrupted run/,
    );
    assert.match(
      rerun.stderr,
      /export 'big2': removed 1 staging object\(s\) left by an interrupted run/,
    );
    assert.match(
      rerun.stderr,
      new RegExp(
        `export 'big2': 1 object\\(s\\) named like this export's files are listed in no manifest[^\\n]*${orphan}`,
      ),
    );
    assert.doesNotMatch(rerun.stderr, /export 'big1': [^\n]*listed in no manifest/);

    const w1 = await contents(store, "w1/");
    assert.deepEqual(w1.ids, ALL, "every row once");
    assert.deepEqual(w1.staging, []);
    assert.ok(w1.keys.includes("_SUCCESS"));
    const w2 = await contents(store, "w2/");
    assert.deepEqual(w2.staging, []);
    assert.ok(w2.data.includes(orphan), "the reported object is left where it is");

    const validated = await rivet(["validate", "-c", cfg, "--format", "json"]);
    assert.equal(validated.code, 3, validated.stdout + validated.stderr);
    const reports = JSON.parse(validated.stdout) as {
      export: string;
      status: string;
      problems: { code: string; message: string }[];
    }[];
    const big1 = reports.find((r) => r.export === "big1")!;
    const big2 = reports.find((r) => r.export === "big2")!;
    assert.equal(big1.status, "passed", JSON.stringify(big1));
    assert.equal(big2.status, "failed", JSON.stringify(big2));
    assert.ok(
      big2.problems.some((p) => p.code === "object.unlisted" && p.message.includes(orphan)),
      JSON.stringify(big2.problems),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name:
    "a kill inside a renaming commit leaves no data-named duplicate unreported (s3, gcs, azure)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await pg.psql(
      `CREATE TABLE big AS SELECT i::int8 AS id, repeat(md5(i::text), 100) AS s
         FROM generate_series(1, ${ROWS}) i;`,
    );

    await t.step("s3 (s3rver)", async () => {
      await using s3 = await startS3rver({ bucket: "rivet-left" });
      const env = s3ConfigEnv(s3);
      await crashInsideCommit({
        name: "s3",
        dest: (prefix) => s3ConfigDestination(s3, prefix).yaml,
        env,
        open: (prefix) =>
          S3Destination.open(s3ConfigDestination(s3, prefix).spec, {
            env: (name) => (env as Record<string, string>)[name],
          }),
      }, pg.url);
    });

    await t.step("gcs (in-repo server)", async () => {
      await using gcs = await startGcsServer({ buckets: ["rivet-left"] });
      await crashInsideCommit({
        name: "gcs",
        dest: (prefix) =>
          `{ type: gcs, bucket: rivet-left, prefix: "${prefix}", endpoint: "${gcs.url}", ` +
          "allow_anonymous: true }",
        env: {},
        open: (prefix) =>
          GcsDestination.open(
            { kind: "gcs", bucket: "rivet-left", prefix, endpoint: gcs.url, allowAnonymous: true },
            { env: () => undefined },
          ),
      }, pg.url);
    });

    await t.step("azure (Azurite)", async () => {
      await using azurite = await startAzurite();
      const { BlobServiceClient } = await import("@azure/storage-blob");
      await BlobServiceClient.fromConnectionString(azurite.connectionString)
        .createContainer("rivet");
      const env = { AZ_KEY: azurite.accountKey };
      await crashInsideCommit({
        name: "azure",
        dest: (prefix) =>
          `{ type: azure, bucket: rivet, prefix: "${prefix}", account_name: ` +
          `${azurite.accountName}, account_key_env: AZ_KEY, endpoint: "${azurite.endpoint()}" }`,
        env,
        open: (prefix) =>
          AzureDestination.open(
            {
              kind: "azure",
              bucket: "rivet",
              prefix,
              accountName: azurite.accountName,
              accountKeyEnv: "AZ_KEY",
              endpoint: azurite.endpoint(),
              allowAnonymous: false,
            },
            { env: (name) => (env as Record<string, string>)[name] },
          ),
      }, pg.url);
    });
  },
});
