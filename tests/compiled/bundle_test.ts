/**
 * The release bundle (what `scripts/compile.ts` compiles into each binary) run as the binary runs
 * it, but under `deno run` (the `denort` runtime cannot be fetched here): the same flags baked
 * into the binary (`--no-config`, the worker option, the V8 flag) and `--sandbox` (the binary's
 * default). Every source engine (PostgreSQL, MariaDB, SQL Server through the TDS test server)
 * and every destination (local Parquet and CSV, S3, GCS, Azure on their emulators) is exported
 * from the bundle, with chunk workers, export workers, process-mode children and the MD5
 * worker; the Parquet is read back independently and the object stores with `rivet validate`.
 * A package the bundle failed to inline, a worker entry or the wasm it cannot find, fails here.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { bundle } from "../../scripts/compile.ts";
import { V8_FLAGS_ARG } from "../../src/engines/v8_flags.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { startMariaDb } from "../_helpers/mariadb_server.ts";
import { startTdsServer } from "../_helpers/tds_server.ts";
import { s3ConfigDestination, s3ConfigEnv, startS3rver } from "../_helpers/s3rver.ts";
import { startGcsServer } from "../_helpers/gcs_server.ts";
import { startAzurite } from "../_helpers/azurite.ts";
import { committedIds } from "../_helpers/exported.ts";
import { runDenoClean } from "../_helpers/cli.ts";

const ROWS = 3_000;
const ALL = Array.from({ length: ROWS }, (_, i) => i + 1);

Deno.test({
  name: "the release bundle exports from every source to every destination, sandboxed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "rivet_bundle_" }));
    const built = await bundle(Deno.build.target, {
      buildDir: join(base, "build"),
      commit: "0123456789ab",
    });
    const cwd = join(base, "cwd");
    await Deno.mkdir(cwd);
    const rivet = (args: string[], env: Record<string, string> = {}) =>
      runDenoClean(
        [
          "run",
          "-A",
          "--quiet",
          "--no-config",
          "--unstable-worker-options",
          V8_FLAGS_ARG,
          built.entry,
          ...args,
        ],
        cwd,
        env,
      );
    const plan = async (name: string, source: string, exports: string[]) => {
      const path = join(base, `${name}.yaml`);
      await Deno.writeTextFile(
        path,
        `${source}exports:\n${exports.map((e) => `  - ${e}\n`).join("")}`,
      );
      return path;
    };
    const out = (name: string) => `destination: {type: local, path: '${base}/out/${name}'}`;

    await t.step("--version names the commit and target recorded in the bundle", async () => {
      const res = await rivet(["--version"]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout.trim(), `rivet 0.1.0 (commit 0123456789ab, ${Deno.build.target})`);
    });

    await using pg = await startPostgres();
    await pg.psql(
      `CREATE TABLE t AS SELECT i::int8 AS id, md5(i::text) AS s, repeat('x', 4000) AS big,
         now() AS at FROM generate_series(1, ${ROWS}) i;
       ALTER TABLE t ADD PRIMARY KEY (id);`,
    );
    const pgSource = "source:\n  type: postgres\n  url_env: DB_URL\n";
    const pgEnv = { DB_URL: pg.url };

    await t.step(
      "PostgreSQL: Parquet, chunk workers and the MD5 worker, in export workers",
      async () => {
        const cfg = await plan("pg", pgSource, [
          `{name: pq, table: t, format: parquet, ${out("pq")}}`,
          `{name: ck, table: t, mode: chunked, chunk_column: id, chunk_size: 700, parallel: 2, ` +
          `format: parquet, ${out("ck")}}`,
          // 12 MB of CSV: past the size where the MD5 moves to its worker.
          `{name: big, table: t, format: csv, ${out("big")}}`,
        ]);
        const res = await rivet(["run", "-c", cfg, "--sandbox", "--json"], pgEnv);
        assert.equal(res.code, 0, res.stderr);
        assert.doesNotMatch(res.stderr, /Warning|Error/);
        for (const name of ["pq", "ck", "big"]) {
          assert.deepEqual(await committedIds(`${base}/out/${name}`), ALL, name);
        }
      },
    );

    await t.step("the flags the bundle's rivet permissions prints narrow a run of it", async () => {
      const cfg = await plan("narrow", pgSource, [
        `{name: n1, table: t, mode: chunked, chunk_column: id, chunk_size: 1000, parallel: 2, ` +
        `format: parquet, ${out("n1")}}`,
      ]);
      const printed = await rivet(["permissions", "-c", cfg, "--format", "json"], pgEnv);
      assert.equal(printed.code, 0, printed.stderr);
      const command: string[] = JSON.parse(printed.stdout).command;
      assert.equal(command[0], "rivet", "the bundle prints the binary's form");
      assert.ok(!command.some((a) => a.includes(built.dir)), "rivet's own code is not asked for");
      const res = await rivet(command.slice(1), pgEnv);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(await committedIds(`${base}/out/n1`), ALL);
    });

    await t.step("--parallel-export-processes: children started from the bundle", async () => {
      const cfg = await plan("proc", `parallel_export_processes: true\n${pgSource}`, [
        `{name: p1, table: t, format: parquet, ${out("p1")}}`,
        `{name: p2, table: t, format: csv, ${out("p2")}}`,
      ]);
      const res = await rivet(["run", "-c", cfg, "--sandbox", "--json"], pgEnv);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout).parallel_mode, "parallel-processes");
      assert.deepEqual(await committedIds(`${base}/out/p1`), ALL);
      assert.deepEqual(await committedIds(`${base}/out/p2`), ALL);
    });

    await t.step("RIVET_STATE_URL: the bundle keeps its checkpoints in PostgreSQL", async () => {
      const folder = join(base, "pgstate");
      await Deno.mkdir(folder);
      const cfg = join(folder, "plan.yaml");
      await Deno.writeTextFile(
        cfg,
        `${pgSource}exports:\n  - {name: st, table: t, mode: chunked, chunk_column: id, ` +
          `chunk_size: 1000, parallel: 2, chunk_checkpoint: true, format: parquet, ${out("st")}}\n`,
      );
      const env = { ...pgEnv, RIVET_STATE_URL: `${pg.url}?schema=bundle_state` };
      const res = await rivet(["run", "-c", cfg, "--sandbox"], env);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(await committedIds(`${base}/out/st`), ALL);
      const beside = (await Array.fromAsync(Deno.readDir(folder))).map((e) => e.name);
      // The run reports (.rivet/) are files; the state is not.
      assert.ok(!beside.some((n) => n.startsWith(".rivet_state.db")), beside.join());
      const chunks = Number(
        (await pg.psql("SELECT count(*) FROM bundle_state.chunk_task WHERE status = 'completed'"))
          .trim(),
      );
      assert.equal(chunks, 3);
    });

    await t.step("MariaDB (mysql2 inlined)", async () => {
      await using maria = await startMariaDb();
      await maria.sql(
        `CREATE TABLE m (id BIGINT PRIMARY KEY, s VARCHAR(40));
         INSERT INTO m SELECT seq, md5(seq) FROM seq_1_to_${ROWS};`,
        { database: maria.database },
      );
      const cfg = await plan("maria", "source:\n  type: mysql\n  url_env: MY_URL\n", [
        `{name: my, table: m, format: parquet, ${out("my")}}`,
        `{name: myck, table: m, mode: chunked, chunk_column: id, chunk_size: 1000, parallel: 2, ` +
        `format: csv, ${out("myck")}}`,
      ]);
      const res = await rivet(["run", "-c", cfg, "--sandbox"], { MY_URL: maria.url });
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(await committedIds(`${base}/out/my`), ALL);
      assert.deepEqual(await committedIds(`${base}/out/myck`), ALL);
    });

    await t.step("SQL Server through the TDS test server (tedious inlined)", async () => {
      await using tds = await startTdsServer();
      await tds.sql(`CREATE TABLE q (id BIGINT PRIMARY KEY, s NVARCHAR(40));
INSERT INTO q VALUES (1, N'a'), (2, N'b'), (3, N'c');`);
      const cfg = await plan("mssql", "source:\n  type: mssql\n  url_env: MSSQL_URL\n", [
        `{name: ms, table: q, format: parquet, ${out("ms")}}`,
      ]);
      const res = await rivet(["run", "-c", cfg, "--sandbox"], { MSSQL_URL: tds.url });
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(await committedIds(`${base}/out/ms`), [1, 2, 3]);
    });

    await t.step("S3, GCS and Azure (their SDKs inlined), checked by rivet validate", async () => {
      await using s3 = await startS3rver({ bucket: "rivet-bundle" });
      await using gcs = await startGcsServer({ buckets: ["rivet-bundle"] });
      await using azurite = await startAzurite();
      const { BlobServiceClient } = await import("@azure/storage-blob");
      await BlobServiceClient.fromConnectionString(azurite.connectionString)
        .createContainer("rivet");
      const cfg = await plan("cloud", pgSource, [
        `{name: s3, table: t, format: parquet, destination: ${
          s3ConfigDestination(s3, "s3/").yaml
        }}`,
        `{name: gcs, table: t, format: csv, destination: {type: gcs, bucket: rivet-bundle, ` +
        `prefix: gcs/, endpoint: "${gcs.url}", allow_anonymous: true}}`,
        `{name: az, table: t, mode: chunked, chunk_column: id, chunk_size: 1000, parallel: 2, ` +
        `format: parquet, destination: {type: azure, bucket: rivet, prefix: az/, ` +
        `account_name: ${azurite.accountName}, account_key_env: AZ_KEY, ` +
        `endpoint: "${azurite.endpoint()}"}}`,
      ]);
      const env = { ...pgEnv, ...s3ConfigEnv(s3), AZ_KEY: azurite.accountKey };
      const res = await rivet(["run", "-c", cfg, "--sandbox", "--json"], env);
      assert.equal(res.code, 0, res.stderr);
      const summary = JSON.parse(res.stdout);
      assert.deepEqual(
        summary.per_export.map((e: { export_name: string; rows: number }) => [
          e.export_name,
          e.rows,
        ]),
        [["s3", ROWS], ["gcs", ROWS], ["az", ROWS]],
      );
      const validated = await rivet(["validate", "-c", cfg], env);
      assert.equal(validated.code, 0, validated.stdout + validated.stderr);
    });

    await Deno.remove(base, { recursive: true });
  },
});
