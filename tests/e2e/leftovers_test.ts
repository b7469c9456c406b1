/**
 * What killed runs leave in a local destination, and what the next run of the export does with
 * it, against a real PostgreSQL and real `rivet run` processes:
 *
 * - a run SIGKILLed while it blocks before its commit rename leaves a complete `.<name>.tmp`;
 *   with a zero-byte one (a kill right after the staging file was opened) the next run of that
 *   export removes both and says how many, and leaves every other file alone (another export's
 *   staging file, dot files that are not rivet's, data files);
 * - the same kill inside a checkpointed chunked run: `--resume` removes the staging file and
 *   finishes with every row once;
 * - a run that crashed after committing one part of two leaves a data file no manifest lists:
 *   the next plain run reports it by name and leaves it, while the files of an earlier
 *   successful run (listed in its manifest, then in the state's file log) are neither reported
 *   nor touched, nor are another export's files in the same folder.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";

const cliPath = new URL("../../cli.ts", import.meta.url).pathname;

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

/** Starts `rivet run`, waits until it blocks at `point`, then SIGKILLs it. */
async function killWhileBlocked(args: string[], env: Record<string, string>, point: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", cliPath, ...args],
    env: { ...env, RIVET_TEST_BLOCK_AT: point, RIVET_TEST_BLOCK_MS: "120000" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const deadline = Date.now() + 60_000;
  while (!text.includes(`blocking 120000 ms at ${point}`)) {
    if (Date.now() > deadline) throw new Error(`never blocked at ${point}:\n${text}`);
    const { value, done } = await reader.read();
    if (done) throw new Error(`exited before blocking at ${point}:\n${text}`);
    text += value;
  }
  child.kill("SIGKILL");
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL");
  await reader.cancel().catch(() => {});
}

const pause = () => new Promise((r) => setTimeout(r, 1100)); // the next run gets a new stamp

Deno.test({
  name: "the next run removes a killed run's staging files of that export, and only those",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using pg = await startPostgres();
    await pg.psql(
      "CREATE TABLE t AS SELECT i::int8 AS id, md5(i::text) AS s FROM generate_series(1, 500) i;",
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_leftovers_" });
    try {
      const out = join(dir, "out");
      const cfg = join(dir, "plan.yaml");
      await Deno.writeTextFile(
        cfg,
        `source:
  type: postgres
  url_env: DB_URL
exports:
  - name: orders
    table: t
    format: csv
    destination: { type: local, path: ${out} }
`,
      );
      const env = { DB_URL: pg.url };
      await killWhileBlocked(["run", "-c", cfg, "-e", "orders"], env, "before_commit_rename");
      const killed = (await names(out)).filter((n) => /^\.orders_\d{8}_\d{6}\.csv\.tmp$/.test(n));
      assert.equal(killed.length, 1, `a complete staging file: ${await names(out)}`);
      assert.ok((await Deno.stat(join(out, killed[0]!))).size > 10_000);
      // A run killed right after opening its staging file leaves it empty.
      await Deno.writeFile(join(out, ".orders_20200101_000000_part1.csv.tmp"), new Uint8Array());
      // Not this export's, or not rivet's: left alone.
      const foreign = [
        ".orders_eu_20200101_000000.csv.tmp",
        ".notes.tmp",
        ".orders_notes.csv.tmp",
        "orders_notes.csv",
      ];
      for (const name of foreign) await Deno.writeTextFile(join(out, name), "keep me\n");

      await pause();
      const res = await spawnCli(["run", "-c", cfg, "-e", "orders"], { env });
      assert.equal(res.code, 0, res.stderr);
      assert.match(
        res.stderr,
        /export 'orders': removed 2 staging object\(s\) left by an interrupted run/,
      );
      const after = await names(out);
      assert.deepEqual(
        after.filter((n) => n.endsWith(".tmp")),
        foreign.filter((n) => n.endsWith(".tmp")).sort(),
      );
      for (const name of foreign) {
        assert.equal(await Deno.readTextFile(join(out, name)), "keep me\n", name);
      }
      assert.ok(after.includes("_SUCCESS"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "the next run reports a crashed run's committed file by name, never an earlier run's or another export's",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using pg = await startPostgres();
    await pg.psql(
      "CREATE TABLE t AS SELECT i::int8 AS id, md5(i::text) AS s FROM generate_series(1, 3000) i;",
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_unlisted_" });
    try {
      const out = join(dir, "out");
      const cfg = join(dir, "plan.yaml");
      await Deno.writeTextFile(
        cfg,
        `source:
  type: postgres
  url_env: DB_URL
exports:
  - name: orders
    table: t
    format: csv
    max_file_size: 40KB
    tuning: { batch_size: 500 }
    destination: { type: local, path: ${out} }
  - name: orders_eu
    table: t
    format: csv
    destination: { type: local, path: ${out} }
`,
      );
      const env = { DB_URL: pg.url };
      const first = await spawnCli(["run", "-c", cfg, "-e", "orders"], { env });
      assert.equal(first.code, 0, first.stderr);
      const firstFiles = (await names(out)).filter((n) => n.startsWith("orders_"));
      assert.ok(firstFiles.length >= 2, `split into parts: ${firstFiles}`);
      await pause();
      const eu = await spawnCli(["run", "-c", cfg, "-e", "orders_eu"], { env });
      assert.equal(eu.code, 0, eu.stderr);
      const euFile = (await names(out)).find((n) => n.startsWith("orders_eu_"))!;

      await pause();
      const crashed = await spawnCli(["run", "-c", cfg, "-e", "orders"], {
        env: { ...env, RIVET_TEST_CRASH_AT: "after_file_write" },
      });
      assert.equal(crashed.code, 86, crashed.stderr);
      const crashedFiles = (await names(out)).filter((n) =>
        /^orders_\d{8}_\d{6}_part\d+\.csv$/.test(n) && !firstFiles.includes(n)
      );
      assert.equal(crashedFiles.length, 1, "the crashed run committed one part");
      const orphan = crashedFiles[0]!;

      // A plain re-run into a prefix that holds a successful run's files: only the crashed
      // run's file is reported.
      await pause();
      const second = await spawnCli(["run", "-c", cfg, "-e", "orders"], { env });
      assert.equal(second.code, 0, second.stderr);
      assert.match(
        second.stderr,
        new RegExp(
          `export 'orders': 1 object\\(s\\) named like this export's files are listed in no ` +
            `manifest[^\\n]*${orphan}`,
        ),
      );
      for (const f of [...firstFiles, euFile]) assert.ok(!second.stderr.includes(f), f);
      // Nothing was moved or deleted.
      const now = await names(out);
      for (const f of [...firstFiles, euFile, orphan]) assert.ok(now.includes(f), f);

      // The next run again: the first run's files now sit next to a newer manifest; only the
      // orphan is reported again.
      await pause();
      const third = await spawnCli(["run", "-c", cfg, "-e", "orders"], { env });
      assert.equal(third.code, 0, third.stderr);
      assert.match(third.stderr, new RegExp(`listed in no manifest[^\\n]*${orphan}`));
      assert.match(third.stderr, /export 'orders': 1 object\(s\) named like/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "--resume removes the staging file of the chunk a kill interrupted and ends with every row once",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using pg = await startPostgres();
    await pg.psql(
      `CREATE TABLE t AS SELECT i::int8 AS id, md5(i::text) AS s FROM generate_series(1, 2000) i;
       ALTER TABLE t ADD PRIMARY KEY (id);`,
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_leftovers_resume_" });
    try {
      const out = join(dir, "out");
      const cfg = join(dir, "plan.yaml");
      await Deno.writeTextFile(
        cfg,
        `source:
  type: postgres
  url_env: DB_URL
exports:
  - name: ev
    table: t
    mode: chunked
    chunk_column: id
    chunk_size: 500
    chunk_checkpoint: true
    format: csv
    destination: { type: local, path: ${out} }
`,
      );
      const env = { DB_URL: pg.url };
      await killWhileBlocked(["run", "-c", cfg, "-e", "ev"], env, "before_commit_rename");
      const staged = (await names(out)).filter((n) => n.endsWith(".tmp"));
      assert.equal(staged.length, 1, `the killed chunk's staging file: ${await names(out)}`);

      const res = await spawnCli(["run", "-c", cfg, "-e", "ev", "--resume"], { env });
      assert.equal(res.code, 0, res.stderr);
      assert.match(
        res.stderr,
        /export 'ev': removed 1 staging object\(s\) left by an interrupted run/,
      );
      const after = await names(out);
      assert.deepEqual(after.filter((n) => n.endsWith(".tmp")), [], "no staging file left");
      const ids: number[] = [];
      for (const name of after.filter((n) => n.endsWith(".csv"))) {
        const text = await Deno.readTextFile(join(out, name));
        ids.push(...text.trimEnd().split("\n").slice(1).map((l) => Number(l.split(",")[0])));
      }
      assert.deepEqual(ids.sort((a, b) => a - b), Array.from({ length: 2000 }, (_, i) => i + 1));
      assert.ok(after.includes("_SUCCESS"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
