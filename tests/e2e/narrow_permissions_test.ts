/**
 * End to end: the narrow-permission `deno run` recipes of the README and of
 * `docs/cloud-permissions.md`, run exactly as written (no `-A`), from a working directory that is
 * neither rivet's folder nor the config's, against real PostgreSQL and MariaDB servers and s3rver:
 * Parquet, CSV and chunked `parallel: 2` exports. Then the same recipe with one grant taken away
 * must end with exit 1 and one `Error:` line naming the flag to add.
 *
 * The recipes are read from the documents themselves; only their example names are replaced
 * (`/opt/rivet` → this checkout, `/etc/rivet` → the test's config folder, `/var/exports` → its
 * output folder, `db.internal:5432` → the test server, the two AWS hosts → s3rver's `endpoint`,
 * as the cloud document says to do for an S3-compatible store).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startPostgres } from "../_helpers/pg_server.ts";
import { startMariaDb } from "../_helpers/mariadb_server.ts";
import { startS3rver } from "../_helpers/s3rver.ts";
import { S3Destination } from "../../src/destinations/s3.ts";
import { manifestIds } from "../_helpers/exported.ts";
import { type CliResult, runDenoClean } from "../_helpers/cli.ts";

const REPO = fileURLToPath(new URL("../..", import.meta.url)).replace(/\/$/, "");
const ROWS = 2_000;
const ALL = Array.from({ length: ROWS }, (_, i) => i + 1);

/**
 * The `deno …` command of the one `sh` block of a document that runs `/opt/rivet/cli.ts run`, as
 * arguments after `deno`.
 */
async function documentedRecipe(file: string): Promise<string[]> {
  const text = await Deno.readTextFile(join(REPO, file));
  const blocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)]
    .map((m) => m[1]!)
    .filter((b) => b.includes("/opt/rivet/cli.ts run"));
  assert.equal(blocks.length, 1, `${file}: one narrow-permission recipe`);
  const argv = blocks[0]!.replace(/\\\n/g, " ").trim().split(/\s+/);
  assert.equal(argv[0], "deno");
  assert.ok(!argv.includes("-A") && !argv.some((a) => a.startsWith("--allow-all")), file);
  for (const flag of argv.filter((a) => a.startsWith("--allow-"))) {
    assert.match(flag, /^--allow-\w+=\S+$/, `${file}: every grant is narrowed (${flag})`);
  }
  return argv.slice(1);
}

/** The recipe with its example names replaced; fails if one is left. */
function instantiate(argv: readonly string[], names: ReadonlyArray<[string, string]>): string[] {
  const out = argv.map((arg) => names.reduce((a, [from, to]) => a.replaceAll(from, to), arg));
  const left = out.join(" ").match(
    /\/opt\/rivet|\/etc\/rivet|\/var\/exports|db\.internal|amazonaws/,
  );
  assert.equal(left, null, `an example name is left in ${out.join(" ")}`);
  return out;
}

/** Removes `entry` from the comma list of `flag`, or the whole flag when `entry` is omitted. */
function withoutGrant(argv: readonly string[], flag: string, entry?: string): string[] {
  const out: string[] = [];
  let found = false;
  for (const arg of argv) {
    if (!arg.startsWith(`${flag}=`)) {
      out.push(arg);
      continue;
    }
    found = true;
    if (entry === undefined) continue;
    const kept = arg.slice(flag.length + 1).split(",").filter((e) => e !== entry);
    assert.ok(kept.length < arg.split(",").length, `${entry} is in ${arg}`);
    if (kept.length > 0) out.push(`${flag}=${kept.join(",")}`);
  }
  assert.ok(found, `${flag} is in the recipe`);
  return out;
}

type Result = CliResult;

/** Runs `deno <argv>` from `cwd` with a cleared environment holding only `env` and Deno's own. */
const deno = runDenoClean;

/** Ids an export committed, from its manifest's parts; the export must have completed. */
async function exportedIds(dir: string): Promise<number[]> {
  const { ids, success } = await manifestIds(dir);
  assert.ok(success, `${dir} holds no _SUCCESS`);
  return ids;
}

/** Parquet, CSV and chunked `parallel: 2` (Parquet and CSV) exports of table `t` into `out`. */
function localPlan(type: "postgres" | "mysql", out: string): string {
  const local = (name: string) => `destination: {type: local, path: '${out}/${name}'}`;
  return `source:
  type: ${type}
  url_env: DATABASE_URL
exports:
  - {name: pq, table: t, format: parquet, ${local("pq")}}
  - {name: cs, table: t, format: csv, ${local("cs")}}
  - {name: ck, table: t, mode: chunked, chunk_column: id, chunk_size: 500, parallel: 2, format: parquet, ${
    local("ck")
  }}
  - {name: ckc, table: t, mode: chunked, chunk_column: id, chunk_size: 500, parallel: 2, chunk_checkpoint: true, format: csv, ${
    local("ckc")
  }}
`;
}

/** A fresh config folder, output folder and (empty, unrelated) working directory. */
async function folders(root: string, name: string) {
  const base = join(root, name);
  const cfg = join(base, "etc");
  const out = join(base, "exports");
  const cwd = join(base, "elsewhere");
  for (const dir of [cfg, out, cwd]) await Deno.mkdir(dir, { recursive: true });
  return { cfg, out, cwd };
}

/** The `Error:` lines of a failed run; asserts no worker crash or raw runtime error shows. */
function errorLines(res: Result): string[] {
  assert.doesNotMatch(res.stderr, /crashed|Uncaught|is replaced|will retry/, res.stderr);
  return res.stderr.split("\n").filter((l) => l.startsWith("Error:"));
}

Deno.test({
  name: "documented narrow-permission recipes run as written, from any working directory",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "rivet_narrow_" }));
    const readme = await documentedRecipe("README.md");
    await using pg = await startPostgres();
    await pg.psql(
      `CREATE TABLE t AS SELECT i::int8 AS id, md5(i::text) AS s FROM generate_series(1, ${ROWS}) i;
       ALTER TABLE t ADD PRIMARY KEY (id);`,
    );
    const pgHost = `${pg.host}:${pg.port}`;

    /** The README recipe on a fresh PostgreSQL setup, minus nothing. */
    const pgSetup = async (name: string) => {
      const f = await folders(root, name);
      await Deno.writeTextFile(join(f.cfg, "plan.yaml"), localPlan("postgres", f.out));
      const argv = instantiate(readme, [
        ["/opt/rivet", REPO],
        ["/etc/rivet", f.cfg],
        ["/var/exports", f.out],
        ["db.internal:5432", pgHost],
      ]);
      return { ...f, argv, env: { DATABASE_URL: pg.url } };
    };

    await t.step("README recipe, PostgreSQL: Parquet, CSV and parallel: 2 chunks", async () => {
      const s = await pgSetup("pg");
      const res = await deno(s.argv, s.cwd, s.env);
      assert.equal(res.code, 0, res.stderr);
      assert.doesNotMatch(res.stderr, /Warning|Error/);
      for (const name of ["pq", "cs", "ck", "ckc"]) {
        assert.deepEqual(await exportedIds(join(s.out, name)), ALL, name);
      }
      assert.deepEqual(await Array.fromAsync(Deno.readDir(s.cwd)), [], "nothing in the cwd");
      await Deno.stat(join(s.cfg, ".rivet_state.db"));
    });

    await t.step("README recipe, MariaDB: Parquet, CSV and parallel: 2 chunks", async () => {
      await using my = await startMariaDb();
      await my.sql(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, s VARCHAR(40));" +
          `INSERT INTO t SELECT seq, md5(seq) FROM seq_1_to_${ROWS};`,
        { database: my.database },
      );
      const f = await folders(root, "mariadb");
      await Deno.writeTextFile(join(f.cfg, "plan.yaml"), localPlan("mysql", f.out));
      const argv = instantiate(readme, [
        ["/opt/rivet", REPO],
        ["/etc/rivet", f.cfg],
        ["/var/exports", f.out],
        ["db.internal:5432", `${my.host}:${my.port}`],
      ]);
      const res = await deno(argv, f.cwd, { DATABASE_URL: my.url });
      assert.equal(res.code, 0, res.stderr);
      assert.doesNotMatch(res.stderr, /Warning|Error/);
      for (const name of ["pq", "cs", "ck", "ckc"]) {
        assert.deepEqual(await exportedIds(join(f.out, name)), ALL, name);
      }
      assert.deepEqual(await Array.fromAsync(Deno.readDir(f.cwd)), [], "nothing in the cwd");
    });

    await t.step(
      "cloud recipe, PostgreSQL to S3 (s3rver): CSV and parallel: 2 chunks",
      async () => {
        await using s3 = await startS3rver({ bucket: "rivet-narrow" });
        const cloud = await documentedRecipe("docs/cloud-permissions.md");
        const f = await folders(root, "s3");
        const dest = (prefix: string) =>
          `destination: {type: s3, bucket: ${s3.bucket}, prefix: '${prefix}', endpoint: '${s3.endpoint}', ` +
          "region: us-east-1, access_key_env: RIVET_AWS_KEY, secret_key_env: RIVET_AWS_SECRET}";
        await Deno.writeTextFile(
          join(f.cfg, "plan.yaml"),
          `source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n` +
            `  - {name: full, table: t, format: csv, ${dest("full/")}}\n` +
            `  - {name: chunks, table: t, mode: chunked, chunk_column: id, chunk_size: 500, ` +
            `parallel: 2, format: csv, ${dest("chunks/")}}\n`,
        );
        const endpointHost = new URL(s3.endpoint).host;
        const argv = instantiate(cloud, [
          ["/opt/rivet", REPO],
          ["/etc/rivet", f.cfg],
          ["db.internal:5432", pgHost],
          ["my-bucket.s3.eu-west-1.amazonaws.com,s3.eu-west-1.amazonaws.com", endpointHost],
        ]);
        const env = {
          DATABASE_URL: pg.url,
          RIVET_AWS_KEY: s3.accessKeyId,
          RIVET_AWS_SECRET: s3.secretAccessKey,
        };
        const res = await deno(argv, f.cwd, env);
        assert.equal(res.code, 0, res.stderr);
        assert.doesNotMatch(res.stderr, /Warning|Error/);
        for (const prefix of ["full/", "chunks/"]) {
          await using d = await S3Destination.open({
            kind: "s3",
            bucket: s3.bucket,
            prefix,
            endpoint: s3.endpoint,
            region: "us-east-1",
            accessKeyEnv: "RIVET_AWS_KEY",
            secretKeyEnv: "RIVET_AWS_SECRET",
            allowAnonymous: false,
          }, { env: (name) => (env as Record<string, string>)[name] });
          const ids: number[] = [];
          for await (const o of d.list("")) {
            if (!o.key.endsWith(".csv")) continue;
            const text = await new Response(await d.read(o.key)).text();
            ids.push(...text.trimEnd().split("\n").slice(1).map((l) => Number(l.split(",")[0])));
          }
          assert.deepEqual(ids.sort((a, b) => a - b), ALL, prefix);
        }
        assert.deepEqual(await Array.fromAsync(Deno.readDir(f.cwd)), [], "nothing in the cwd");

        // The store's client without its --allow-sys: the same one line, whatever layer saw it.
        const res2 = await deno([...withoutGrant(argv, "--allow-sys"), "-e", "full"], f.cwd, env);
        assert.equal(res2.code, 1, res2.stderr);
        const errors = errorLines(res2);
        assert.equal(errors.length, 1, res2.stderr);
        assert.match(errors[0]!, /rivet needs --allow-sys=osRelease \(Deno refused/);
      },
    );

    await t.step("a missing grant ends with exit 1 and one line naming the flag", async () => {
      const cases: {
        what: string;
        export: string;
        drop: (s: Awaited<ReturnType<typeof pgSetup>>) => string[];
        flag: (s: Awaited<ReturnType<typeof pgSetup>>) => string | RegExp;
      }[] = [
        {
          what: "no --allow-net",
          export: "cs",
          drop: (s) => withoutGrant(s.argv, "--allow-net"),
          flag: () => `--allow-net=${pgHost}`,
        },
        {
          what: "no --allow-env",
          export: "cs",
          drop: (s) => withoutGrant(s.argv, "--allow-env"),
          flag: () => "--allow-env=DATABASE_URL",
        },
        {
          what: "the config folder not writable (state database)",
          export: "cs",
          drop: (s) => withoutGrant(s.argv, "--allow-write", s.cfg),
          flag: (s) => `--allow-write=${s.cfg}`,
        },
        {
          what: "the output folder not writable",
          export: "cs",
          drop: (s) => withoutGrant(s.argv, "--allow-write", s.out),
          flag: (s) => `--allow-write=${s.out}/cs`,
        },
        {
          what: "rivet's folder not readable, chunk workers",
          export: "ckc",
          drop: (s) => withoutGrant(s.argv, "--allow-read", REPO),
          flag: () => `--allow-read=${REPO}/src`,
        },
        {
          what: "rivet's folder not readable, Parquet",
          export: "pq",
          drop: (s) => withoutGrant(s.argv, "--allow-read", REPO),
          flag: () => /--allow-read=\S*parquet_wasm_bg\.wasm /,
        },
      ];
      for (const c of cases) {
        const s = await pgSetup(`missing_${c.export}_${cases.indexOf(c)}`);
        const res = await deno([...c.drop(s), "-e", c.export], s.cwd, s.env);
        assert.equal(res.code, 1, `${c.what}: ${res.stderr}`);
        const errors = errorLines(res);
        assert.equal(errors.length, 1, `${c.what}: ${res.stderr}`);
        const flag = c.flag(s);
        if (typeof flag === "string") {
          assert.ok(errors[0]!.includes(flag), `${c.what}: ${errors[0]}`);
        } else assert.match(errors[0]!, flag, c.what);
        // No remedy beyond the flag, except where chunks were already planned: then the hint says
        // how to continue the checkpointed run once the grant is added.
        assert.doesNotMatch(
          res.stderr,
          /^Hint:(?!.*--resume)/m,
          `${c.what}: the one line says it all: ${res.stderr}`,
        );
      }
    });

    await Deno.remove(root, { recursive: true });
  },
});
