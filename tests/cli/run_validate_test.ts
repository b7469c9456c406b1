/**
 * `rivet run --validate` and `--reconcile` on live PostgreSQL and MariaDB: a good run is
 * re-counted and read back (validated=pass in the summary and in `rivet metrics`); a staged part
 * whose bytes hold another row count (the `RIVET_TEST_TAMPER_AT=staged_part` hook) fails the
 * export with exit 3 and nothing committed, for CSV and Parquet, single-query and chunked;
 * `--reconcile` prints MATCH and stores the source count, a source that changes between the
 * export and its count (blocked at `before_run_checks`) gives MISMATCH and exit 3, and an
 * incremental export is skipped with the reason.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { startMariaDb } from "../_helpers/mariadb_server.ts";
import { resetTestHooks } from "../../src/_util/test_hook.ts";

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) out.push(e.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out.sort();
}

const dataFiles = async (dir: string) =>
  (await names(dir)).filter((n) => /\.(csv|parquet)$/.test(n) && !n.startsWith("."));

/** Runs the CLI with test-hook variables set for this call only. */
async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
  resetTestHooks();
  try {
    return await fn();
  } finally {
    for (const k of Object.keys(env)) Deno.env.delete(k);
    resetTestHooks();
  }
}

/**
 * Runs the CLI blocked at `before_run_checks` (the export is committed, its checks not yet made),
 * calls `meanwhile` once `_SUCCESS` shows up in `folder`, and returns the result.
 */
function runBlockedBeforeChecks(
  args: string[],
  folder: string,
  meanwhile: () => Promise<unknown>,
) {
  return withEnv(
    { RIVET_TEST_BLOCK_AT: "before_run_checks", RIVET_TEST_BLOCK_MS: "4000" },
    async () => {
      const run = runCli(args);
      const deadline = Date.now() + 60_000;
      while (!(await names(folder)).includes("_SUCCESS")) {
        assert.ok(Date.now() < deadline, "the export never finished");
        await new Promise((r) => setTimeout(r, 25));
      }
      await meanwhile();
      return await run;
    },
  );
}

/** `-e a -e b …` */
const only = (...names: string[]) => names.flatMap((n) => ["-e", n]);
/** How often `re` (global) occurs in `text`. */
const countOf = (text: string, re: RegExp) => text.match(re)?.length ?? 0;
const CLI = new URL("../../cli.ts", import.meta.url).pathname;
const MATCH_300 = /reconcile: {3}MATCH \(source COUNT\(\*\) 300, committed 300\)/g;

function exportsYaml(dir: string): string {
  return `
  - name: good_csv
    table: items
    format: csv
    destination: { type: local, path: ${dir}/out/good_csv }
  - name: good_parquet
    table: items
    format: parquet
    destination: { type: local, path: ${dir}/out/good_parquet }
  - name: chunks
    table: items
    mode: chunked
    chunk_column: id
    chunk_size: 70
    format: parquet
    destination: { type: local, path: ${dir}/out/chunks }
  - name: chunks_parallel
    table: items
    mode: chunked
    chunk_column: id
    chunk_size: 70
    parallel: 2
    format: csv
    destination: { type: local, path: ${dir}/out/chunks_parallel }
  - name: delta
    query: SELECT id, label FROM items
    mode: incremental
    cursor_column: id
    format: csv
    destination: { type: local, path: ${dir}/out/delta }
`;
}

Deno.test({
  name: "run --validate and --reconcile on PostgreSQL: pass, tampered parts, MATCH, MISMATCH",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await pg.psql(`
      CREATE TABLE items (id int8 PRIMARY KEY, label text, note text);
      INSERT INTO items SELECT g, 'item ' || g, CASE WHEN g % 7 = 0 THEN E'two\\nlines, "quoted"' END
        FROM generate_series(1, 300) g;
    `);
    const dir = await Deno.makeTempDir({ prefix: "rivet_run_validate_" });
    const config = join(dir, "plan.yaml");
    await Deno.writeTextFile(
      config,
      `source:\n  type: postgres\n  url: ${pg.url}\nexports:${exportsYaml(dir)}`,
    );
    const out = (name: string) => join(dir, "out", name);

    await t.step("a good run passes the re-count and the manifest pass", async () => {
      const res = await runCli([
        "run",
        "-c",
        config,
        "--validate",
        "-e",
        "good_csv",
        "-e",
        "good_parquet",
        "-e",
        "chunks",
      ]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stderr.match(/validated: {3}pass/g)?.length, 3, res.stderr);
      const metrics = await runCli(["metrics", "-c", config, "-e", "chunks"]);
      assert.match(metrics.stdout, /validated=pass/);
    });

    await t.step("a tampered staged part fails with exit 3 and nothing is committed", async () => {
      for (const name of ["good_csv", "good_parquet", "chunks"]) {
        await Deno.remove(out(name), { recursive: true });
      }
      const res = await withEnv(
        { RIVET_TEST_TAMPER_AT: "staged_part" },
        () => runCli(["run", "-c", config, "--validate", "-e", "good_csv", "-e", "good_parquet"]),
      );
      assert.equal(res.code, 3, res.stderr);
      assert.match(
        res.stderr,
        /export 'good_csv': staged part 0 holds 301 rows by its bytes, but 300 rows were read/,
      );
      assert.match(
        res.stderr,
        /export 'good_parquet': the staged Parquet part cannot be re-read: it does not end with/,
      );
      assert.deepEqual(await dataFiles(out("good_csv")), []);
      assert.deepEqual(await dataFiles(out("good_parquet")), []);
      assert.ok(!(await names(out("good_csv"))).includes("_SUCCESS"));

      const chunked = await withEnv(
        { RIVET_TEST_TAMPER_AT: "staged_part" },
        () => runCli(["run", "-c", config, "--validate", "-e", "chunks"]),
      );
      assert.equal(chunked.code, 3, chunked.stderr);
      assert.match(chunked.stderr, /validate\.part_unreadable|cannot be re-read/);
      assert.deepEqual(await dataFiles(out("chunks")), []);

      // Without --validate the hook's stray line goes unnoticed: the re-count is what caught it.
      const unchecked = await withEnv(
        { RIVET_TEST_TAMPER_AT: "staged_part" },
        () => runCli(["run", "-c", config, "-e", "good_csv"]),
      );
      assert.equal(unchecked.code, 0, unchecked.stderr);
      await Deno.remove(out("good_csv"), { recursive: true });
    });

    await t.step("--reconcile: MATCH is shown and stored in metrics", async () => {
      const res = await runCli([
        ...["run", "-c", config, "--reconcile", "--json"],
        ...only("good_csv", "chunks"),
      ]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(countOf(res.stderr, MATCH_300), 2, res.stderr);
      const summary = JSON.parse(res.stdout);
      assert.deepEqual(summary.per_export[1].reconcile, {
        status: "match",
        source_count: 300,
        committed_rows: 300,
      });
      assert.equal(summary.per_export[1].validated, true);
      assert.equal(
        res.stderr.match(/validated: {3}pass/g)?.length,
        2,
        "--reconcile implies --validate",
      );
      const metrics = await runCli(["metrics", "-c", config, "-e", "chunks", "-l", "1"]);
      assert.match(metrics.stdout, /validated=pass schema=ok reconcile=MATCH source_count=300/);
    });

    await t.step("--reconcile: rows added after the export give MISMATCH and exit 3", async () => {
      await Deno.remove(out("good_csv"), { recursive: true });
      // The rows arrive while the run sits between its commit and its count.
      const res = await runBlockedBeforeChecks(
        ["run", "-c", config, "--reconcile", "-e", "good_csv"],
        out("good_csv"),
        () => pg.psql("INSERT INTO items SELECT g, 'late ' || g FROM generate_series(301, 305) g"),
      );
      assert.equal(res.code, 3, res.stderr);
      assert.match(
        res.stderr,
        /reconcile: {3}MISMATCH \(source COUNT\(\*\) 305, committed 300; the count is taken after the export\)/,
      );
      assert.match(res.stderr, /export 'good_csv': reconcile MISMATCH: .*runs after the export/);
      assert.equal((await dataFiles(out("good_csv"))).length > 0, true, "the files are kept");
      const metrics = await runCli(["metrics", "-c", config, "-e", "good_csv", "-l", "1"]);
      assert.match(metrics.stdout, /reconcile=MISMATCH source_count=305/);
    });

    await t.step("--validate: a part lost after the commit fails the manifest pass", async () => {
      await Deno.remove(out("good_parquet"), { recursive: true }).catch(() => {});
      const res = await runBlockedBeforeChecks(
        ["run", "-c", config, "--validate", "-e", "good_parquet"],
        out("good_parquet"),
        async () => {
          for (const f of await dataFiles(out("good_parquet"))) {
            await Deno.remove(join(out("good_parquet"), f));
          }
        },
      );
      assert.equal(res.code, 3, res.stderr);
      assert.match(res.stderr, /validated: {3}FAIL/);
      assert.match(
        res.stderr,
        /export 'good_parquet': the destination does not match its manifest/,
      );
      const metrics = await runCli(["metrics", "-c", config, "-e", "good_parquet", "-l", "1"]);
      assert.match(metrics.stdout, /validated=FAIL/);
    });

    await t.step("Ctrl-C during the checks: exit 130, files kept, no verdict", async () => {
      await Deno.remove(out("good_csv"), { recursive: true }).catch(() => {});
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", CLI, "run", "-c", config, "--reconcile", "-e", "good_csv"],
        env: { RIVET_TEST_BLOCK_AT: "before_run_checks", RIVET_TEST_BLOCK_MS: "3000" },
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      let stderr = "";
      const decoder = new TextDecoder();
      for await (const chunk of child.stderr) {
        stderr += decoder.decode(chunk, { stream: true });
        if (stderr.includes("test hook: blocking") && !stderr.includes("[sent]")) {
          child.kill("SIGINT");
          stderr += "[sent]";
        }
      }
      const { code } = await child.status;
      assert.equal(code, 130, stderr);
      assert.doesNotMatch(stderr, /validated:|reconcile:/);
      assert.ok((await dataFiles(out("good_csv"))).length > 0, "the committed files are kept");
      assert.ok((await names(out("good_csv"))).includes("_SUCCESS"));
      // The run is recorded as what it was: a success with its files, just not verified.
      const metrics = await runCli(["metrics", "-c", config, "-e", "good_csv", "-l", "1"]);
      assert.match(metrics.stdout, /good_csv +success +305 /);
      assert.match(metrics.stdout, /validated=- schema=ok\n/);
    });

    await t.step("the flags reach chunk workers and child processes", async () => {
      const workers = await runCli(["run", "-c", config, "--validate", "-e", "chunks_parallel"]);
      assert.equal(workers.code, 0, workers.stderr);
      assert.match(workers.stderr, /validated: {3}pass/);
      await Deno.remove(join(dir, "out"), { recursive: true });
      // No -e: the parallel flags apply to a whole config only.
      const children = await runCli([
        "run",
        "-c",
        config,
        "--reconcile",
        "--parallel-export-processes",
      ]);
      assert.equal(children.code, 0, children.stderr);
      assert.equal(
        countOf(children.stderr, /reconcile: {3}MATCH \(source COUNT\(\*\) 305, committed 305\)/g),
        4,
        children.stderr,
      );
      assert.match(children.stderr, /reconcile: {3}skipped: incremental/);
    });

    await t.step("--reconcile skips an incremental export and says why", async () => {
      const res = await runCli(["run", "-c", config, "--reconcile", "-e", "delta"]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, /reconcile: {3}skipped: incremental exports a slice of the query/);
    });
  },
});

Deno.test({
  name: "run --reconcile on MariaDB: full and chunked exports MATCH",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using db = await startMariaDb();
    await db.sql(
      `
      CREATE TABLE items (id BIGINT PRIMARY KEY, label VARCHAR(40), note TEXT);
      INSERT INTO items SELECT seq, CONCAT('item ', seq), IF(seq % 7 = 0, 'a,"b"', NULL)
        FROM seq_1_to_300;
    `,
      { database: db.database },
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_run_validate_my_" });
    const config = join(dir, "plan.yaml");
    await Deno.writeTextFile(
      config,
      `source:\n  type: mysql\n  url: ${db.url}\nexports:${exportsYaml(dir)}`,
    );
    const res = await runCli([
      "run",
      "-c",
      config,
      "--reconcile",
      ...only("good_parquet", "chunks"),
    ]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(countOf(res.stderr, MATCH_300), 2, res.stderr);
  },
});
