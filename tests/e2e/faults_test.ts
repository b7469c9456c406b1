/**
 * End to end, the faults an operator sees every week, on real servers and a real tmpfs: a short
 * database outage in the middle of a checkpointed chunked run (PostgreSQL stopped with
 * `pg_ctl stop -m fast`, MariaDB's `mariadbd` stopped, both started again on the same port and
 * data folder), a retry budget that runs out and `--resume`, a chunk that fails permanently, a
 * full disk (chunked and single-query), a manifest that cannot be written (the cursor must stay),
 * an incremental run without new rows, a checkpoint left by a failed run, and two runs of one
 * export in the same second. Every output is read back and its ids compared with the source:
 * each row exactly once.
 */
import assert from "node:assert/strict";
import { runCli } from "../_helpers/cli.ts";
import { type MariaDbServer, startMariaDb } from "../_helpers/mariadb_server.ts";
import { type PgServer, startPostgres } from "../_helpers/pg_server.ts";
import { SqliteStateStore, stateDbPath } from "../../src/state/mod.ts";
import { parseNdjsonEvents } from "../../src/core/event_protocol.ts";

const cliPath = new URL("../../cli.ts", import.meta.url).pathname;

/** Rows of the fixture table `ft`: ids 1..2000, so `chunk_size: 100` plans 20 chunks. */
const FT_ROWS = 2_000;
const FT_IDS = Array.from({ length: FT_ROWS }, (_, i) => i + 1);

/** A database the cases run against, with an outage switch. */
interface Db {
  readonly engine: "postgres" | "mariadb";
  readonly type: "postgres" | "mysql";
  readonly url: string;
  readonly port: number;
  sql(text: string): Promise<string>;
  /** Stops the server process, keeping its port and data. */
  down(): Promise<void>;
  /** Starts it again on the same port. */
  up(): Promise<void>;
}

function pgDb(pg: PgServer): Db {
  return {
    engine: "postgres",
    type: "postgres",
    url: pg.url,
    port: pg.port,
    sql: (text) => pg.psql(text),
    down: () => pg.stopServer({ mode: "fast" }),
    up: () => pg.startServer(),
  };
}

function mariaDb(db: MariaDbServer): Db {
  return {
    engine: "mariadb",
    type: "mysql",
    url: db.url,
    port: db.port,
    sql: (text) => db.sql(text, { database: db.database }),
    down: () => db.stopServer(),
    up: () => db.startServer(),
  };
}

/** A rivet child process whose output can be watched while it runs. */
class Rivet {
  stdout = "";
  stderr = "";
  readonly #child: Deno.ChildProcess;
  readonly #pumps: Promise<void>[];
  #code: number | undefined;

  constructor(args: string[], env: Record<string, string>) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", cliPath, ...args],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#pumps = [
      this.#pump(this.#child.stdout, (t) => (this.stdout += t)),
      this.#pump(this.#child.stderr, (t) => (this.stderr += t)),
    ];
    this.#child.status.then((s) => (this.#code = s.code));
  }

  async #pump(stream: ReadableStream<Uint8Array>, add: (text: string) => void): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of stream) add(decoder.decode(chunk, { stream: true }));
  }

  /** Waits until `pattern` shows up in stdout or stderr; fails if the process ends first. */
  async waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.stdout) && !pattern.test(this.stderr)) {
      if (this.#code !== undefined) {
        await Promise.all(this.#pumps);
        if (pattern.test(this.stdout) || pattern.test(this.stderr)) return;
        throw new Error(`rivet exited ${this.#code} before ${pattern}:\n${this.stderr}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`timed out waiting for ${pattern}:\n${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async done(): Promise<{ code: number; stdout: string; stderr: string }> {
    const status = await this.#child.status;
    await Promise.all(this.#pumps);
    // FAULTS_VERBOSE=1 shows what rivet printed (while working on a case).
    if (Deno.env.get("FAULTS_VERBOSE")) console.error(`--- exit ${status.code}\n${this.stderr}`);
    return { code: status.code, stdout: this.stdout, stderr: this.stderr };
  }
}

interface Ctx {
  readonly db: Db;
  readonly dir: string;
  /** Writes `<dir>/plan.yaml` with these exports; the source reads `DB_URL`. */
  config(exports: string, source?: string): Promise<string>;
  /** Starts rivet in a child process with `DB_URL` set. */
  start(args: string[], env?: Record<string, string>): Rivet;
  /** Runs rivet in a child process to its end. */
  rivet(
    args: string[],
    env?: Record<string, string>,
  ): Promise<{ code: number; stdout: string; stderr: string }>;
}

interface Case {
  readonly name: string;
  readonly only?: "postgres" | "mariadb";
  run(ctx: Ctx): Promise<void>;
}

async function listAll(dir: string, base = ""): Promise<string[]> {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(dir));
  } catch {
    return [];
  }
  for (const e of entries) {
    const rel = base ? `${base}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await listAll(`${dir}/${e.name}`, rel));
    else out.push(rel);
  }
  return out.sort();
}

/** Ids (first column) of every CSV data file directly in `dir` (quarantine and staging excluded). */
async function csvIds(dir: string): Promise<number[]> {
  const ids: number[] = [];
  for (const f of await listAll(dir)) {
    if (!f.endsWith(".csv") || f.includes("/") || f.startsWith(".")) continue;
    const lines = (await Deno.readTextFile(`${dir}/${f}`)).trimEnd().split("\n").slice(1);
    ids.push(...lines.filter(Boolean).map((l) => Number(l.split(",")[0])));
  }
  return ids.sort((a, b) => a - b);
}

/** Staging files (`.<name>.tmp`) anywhere under `dir`. */
async function stagingFiles(dir: string): Promise<string[]> {
  return (await listAll(dir)).filter((f) => /(^|\/)\.[^/]*\.tmp$/.test(f));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Mounts a tmpfs of `size` on `dir`; a failure is an error, never a silent skip. */
async function mountTmpfs(dir: string, size: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const out = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `the disk-full cases need a real tmpfs, and 'mount -t tmpfs' failed (run the tests as ` +
        `root, as CI does): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

async function resizeTmpfs(dir: string, size: string): Promise<void> {
  const out = await new Deno.Command("mount", {
    args: ["-o", `remount,size=${size}`, dir],
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

async function unmount(dir: string): Promise<void> {
  await new Deno.Command("umount", { args: [dir], stderr: "null" }).output();
}

/** Fills the file system of `dir` to the last byte with `<dir>/filler`. */
async function fillDisk(dir: string): Promise<void> {
  const file = await Deno.open(`${dir}/filler`, { write: true, create: true });
  const block = new Uint8Array(4096);
  try {
    while (true) await file.write(block);
  } catch {
    // ENOSPC: full.
  } finally {
    file.close();
  }
}

/** The NDJSON events of a run's stdout. */
/** The events of an `--events ndjson` stdout, read with the protocol's own reader. */
function events(stdout: string): { type: string; [k: string]: unknown }[] {
  return parseNdjsonEvents(stdout);
}

function chunkedExport(name: string, out: string, extra = ""): string {
  return `  - name: ${name}
    query: SELECT id, v FROM ft
    mode: chunked
    chunk_column: id
    chunk_size: 100
    chunk_checkpoint: true
    format: csv
${extra}    destination: { type: local, path: ${out} }
`;
}

async function stateOf(cfgDir: string) {
  return await SqliteStateStore.open(stateDbPath(cfgDir));
}

const cases: Case[] = [
  {
    name: "a few seconds of outage in the 4th of 20 chunks is ridden through, exit 0",
    async run({ db, dir, config, start }) {
      const out = `${dir}/out`;
      const cfg = await config(chunkedExport(
        "outage",
        out,
        "    tuning: { max_retries: 5, retry_backoff_ms: 400, batch_size: 20, throttle_ms: 40 }\n",
      ));
      const run = start(["run", "-c", cfg, "--events", "ndjson"]);
      await run.waitFor(/"type":"chunk_started","ts":"[^"]+","export_name":"outage","chunk":3,/);
      const stopped = Date.now();
      await db.down();
      await new Promise((r) => setTimeout(r, 3_000));
      await db.up();
      const res = await run.done();
      const elapsedS = (Date.now() - stopped) / 1000;
      assert.equal(res.code, 0, `exit ${res.code} ${elapsedS}s:\n${res.stderr}`);
      assert.deepEqual(await csvIds(out), FT_IDS, "every row exactly once");
      assert.deepEqual(await stagingFiles(out), []);
      assert.match(res.stderr, /retry \d\/5 in \d+ ms/, "the outage was retried with backoff");
      const finished = events(res.stdout).find((e) => e.type === "export_finished") as unknown as {
        outcome: { status: string };
      };
      assert.equal(finished.outcome.status, "success");
    },
  },
  {
    name: "a single-query export retried whole rides through the outage too",
    only: "postgres",
    async run({ db, dir, config, start }) {
      const out = `${dir}/out`;
      const cfg = await config(`  - name: whole
    query: SELECT id, v FROM ft
    format: csv
    tuning: { max_retries: 5, retry_backoff_ms: 400, batch_size: 20, throttle_ms: 40 }
    destination: { type: local, path: ${out} }
`);
      const run = start(["run", "-c", cfg, "--events", "ndjson"]);
      await run.waitFor(
        /"type":"batch_read","ts":"[^"]+","export_name":"whole","rows":20,"total_rows":200\b/,
      );
      await db.down();
      await new Promise((r) => setTimeout(r, 3_000));
      await db.up();
      const res = await run.done();
      assert.equal(res.code, 0, res.stderr);
      // Lost mid-read, then refused while the server is down: both retried with backoff.
      assert.match(res.stderr, /connection refused; retry \d\/5 in \d+ ms/);
      assert.deepEqual(await csvIds(out), FT_IDS, "every row exactly once");
      assert.deepEqual(await stagingFiles(out), []);
    },
  },
  {
    name: "the same outage with parallel: 2 (chunk workers) is ridden through too",
    only: "postgres",
    async run({ db, dir, config, start }) {
      const out = `${dir}/out`;
      const cfg = await config(chunkedExport(
        "outage_par",
        out,
        "    parallel: 2\n" +
          "    tuning: { max_retries: 5, retry_backoff_ms: 400, batch_size: 20, throttle_ms: 40 }\n",
      ));
      const run = start(["run", "-c", cfg, "--events", "ndjson"]);
      await run.waitFor(
        /"type":"chunk_started","ts":"[^"]+","export_name":"outage_par","chunk":5,/,
      );
      await db.down();
      await new Promise((r) => setTimeout(r, 3_000));
      await db.up();
      const res = await run.done();
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(await csvIds(out), FT_IDS, "every row exactly once");
      assert.deepEqual(await stagingFiles(out), []);
    },
  },
  {
    name: "an outage longer than the budget exits 2 with a --resume hint; --resume finishes",
    async run({ db, dir, config, start, rivet }) {
      const out = `${dir}/out`;
      const cfg = await config(chunkedExport(
        "budget",
        out,
        "    tuning: { max_retries: 1, retry_backoff_ms: 200, batch_size: 20, throttle_ms: 40 }\n",
      ));
      const run = start(["run", "-c", cfg, "--events", "ndjson"]);
      await run.waitFor(/"type":"chunk_started","ts":"[^"]+","export_name":"budget","chunk":3,/);
      await db.down();
      let res;
      try {
        res = await run.done();
      } finally {
        await db.up();
      }
      assert.equal(res.code, 2, res.stderr);
      assert.match(res.stderr, /--resume/);
      assert.match(res.stderr, new RegExp(`-c ${cfg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
      assert.doesNotMatch(res.stderr, /set chunk_checkpoint|use chunk_checkpoint/);
      // "(will retry)" only where the chunk is claimed again: never on its last attempt.
      const failed = events(res.stdout).filter((e) => e.type === "chunk_failed") as unknown as {
        chunk: number;
        attempt: number;
        willRetry: boolean;
      }[];
      assert.ok(failed.length > 0);
      const last = failed.at(-1)!;
      assert.equal(last.willRetry, false, JSON.stringify(failed));
      assert.ok(failed.some((f) => f.willRetry), JSON.stringify(failed));
      const resumed = await rivet(["run", "-c", cfg, "--resume"]);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.deepEqual(await csvIds(out), FT_IDS, "every row exactly once");
      assert.deepEqual(await stagingFiles(out), []);
    },
  },
  {
    name: "a chunk that fails permanently needs --resume --force; the hint says so",
    only: "postgres",
    async run({ db, dir, config, rivet }) {
      await db.sql(`CREATE TABLE gate (z int); INSERT INTO gate VALUES (0);`);
      const out = `${dir}/out`;
      const cfg = await config(`  - name: perm
    query: SELECT id, 100 / (CASE WHEN id = 1550 THEN (SELECT z FROM gate) ELSE 1 END) AS q FROM ft
    mode: chunked
    chunk_column: id
    chunk_size: 100
    chunk_checkpoint: true
    format: csv
    destination: { type: local, path: ${out} }
`);
      const first = await rivet(["run", "-c", cfg]);
      assert.equal(first.code, 1, first.stderr);
      assert.match(first.stderr, /division by zero/);
      const chunks = await rivet(["state", "chunks", "-c", cfg, "-e", "perm"]);
      assert.match(chunks.stdout, /^\s*15\s+failed \(permanent\)\s/m, chunks.stdout);
      // The next plain run names the commands with the real config path.
      const plain = await rivet(["run", "-c", cfg]);
      assert.equal(plain.code, 1, plain.stderr);
      assert.ok(plain.stderr.includes(`rivet run -c ${cfg} -e perm --resume`), plain.stderr);
      assert.ok(plain.stderr.includes(`rivet state reset-chunks -c ${cfg} -e perm`), plain.stderr);
      await db.sql("UPDATE gate SET z = 1");
      // A permanent failure is not retried by a plain --resume, and the message says what is.
      const resumed = await rivet(["run", "-c", cfg, "--resume"]);
      assert.equal(resumed.code, 1, resumed.stderr);
      assert.match(resumed.stderr, /--resume --force/);
      assert.match(resumed.stderr, /reset-chunks/);
      const forced = await rivet(["run", "-c", cfg, "--resume", "--force"]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.deepEqual(await csvIds(out), FT_IDS, "every row exactly once");
    },
  },
  {
    name: "a run that fails after planning its chunks says how to go on, with the real -c",
    only: "postgres",
    async run({ db, dir, config, rivet }) {
      await db.sql("CREATE TABLE drift_t AS SELECT id, v FROM ft");
      const out = `${dir}/out`;
      const cfg = await config(`  - name: drift
    query: SELECT * FROM drift_t
    mode: chunked
    chunk_column: id
    chunk_size: 500
    chunk_checkpoint: true
    parallel: 2
    on_schema_drift: fail
    format: csv
    destination: { type: local, path: ${out} }
`);
      assert.equal((await rivet(["run", "-c", cfg])).code, 0);
      await db.sql("ALTER TABLE drift_t ADD COLUMN w int");
      // The drift check of a parallel run comes after the chunks were planned and checkpointed.
      const drifted = await rivet(["run", "-c", cfg]);
      assert.equal(drifted.code, 4, drifted.stderr);
      const resume = `rivet run -c ${cfg} -e drift --resume`;
      const reset = `rivet state reset-chunks -c ${cfg} -e drift`;
      assert.ok(drifted.stderr.includes(resume), drifted.stderr);
      assert.ok(drifted.stderr.includes(reset), drifted.stderr);
      const blocked = await rivet(["run", "-c", cfg]);
      assert.equal(blocked.code, 1, blocked.stderr);
      assert.ok(blocked.stderr.includes(resume) && blocked.stderr.includes(reset), blocked.stderr);
      assert.doesNotMatch(blocked.stderr, /<config>/);
    },
  },
  {
    name: "a full disk stops a chunked run with exit 2; after space is freed --resume " +
      "finishes exactly once",
    only: "postgres",
    async run({ dir, config, rivet }) {
      const out = `${dir}/tmpfs`;
      await mountTmpfs(out, "40k");
      try {
        const cfg = await config(chunkedExport("full_disk", out));
        const res = await rivet(["run", "-c", cfg]);
        assert.equal(res.code, 2, res.stderr);
        assert.match(res.stderr, /disk full at '.*'.*free space and run --resume/);
        assert.deepEqual(await stagingFiles(out), []);
        await resizeTmpfs(out, "2m");
        const resumed = await rivet(["run", "-c", cfg, "--resume"]);
        assert.equal(resumed.code, 0, resumed.stderr);
        assert.deepEqual(await csvIds(out), FT_IDS, "every row exactly once");
        assert.deepEqual(await stagingFiles(out), []);
        assert.ok((await listAll(out)).includes("_SUCCESS"));
      } finally {
        await unmount(out);
      }
    },
  },
  {
    name: "a chunked run whose manifest cannot be written stays resumable, not completed",
    only: "postgres",
    async run({ dir, config, start, rivet }) {
      const out = `${dir}/tmpfs`;
      await mountTmpfs(out, "1m");
      try {
        const cfg = await config(chunkedExport("last_step", out));
        // Every chunk is committed; while rivet waits there, the disk fills up.
        const run = start(["run", "-c", cfg], {
          RIVET_TEST_BLOCK_AT: "after_chunk_complete:19",
          RIVET_TEST_BLOCK_MS: "2000",
        });
        await run.waitFor(/test hook: blocking/);
        await fillDisk(out);
        const res = await run.done();
        assert.equal(res.code, 2, res.stderr);
        assert.match(
          res.stderr,
          /every chunk completed.*disk full at .*free space and run --resume/,
        );
        assert.ok(!(await listAll(out)).includes("_SUCCESS"));
        {
          await using state = await stateOf(dir);
          assert.equal((await state.latestChunkRun("last_step"))?.status, "in_progress");
        }
        // A plain run would write every chunk a second time: it is refused.
        const plain = await rivet(["run", "-c", cfg]);
        assert.equal(plain.code, 1, plain.stderr);
        assert.match(plain.stderr, /still in progress/);
        await Deno.remove(`${out}/filler`);
        const resumed = await rivet(["run", "-c", cfg, "--resume"]);
        assert.equal(resumed.code, 0, resumed.stderr);
        assert.deepEqual(await csvIds(out), FT_IDS, "every row exactly once");
        assert.ok((await listAll(out)).includes("_SUCCESS"));
        assert.deepEqual(await stagingFiles(out), []);
        await using state = await stateOf(dir);
        assert.equal((await state.latestChunkRun("last_step"))?.status, "completed");
      } finally {
        await unmount(out);
      }
    },
  },
  {
    name: "a full disk in a single-query run leaves nothing visible and the state as it was",
    only: "postgres",
    async run({ dir, config, rivet }) {
      const out = `${dir}/tmpfs`;
      await mountTmpfs(out, "12k");
      try {
        const cfg = await config(`  - name: single_full
    query: SELECT id, v FROM ft
    mode: incremental
    cursor_column: id
    format: csv
    destination: { type: local, path: ${out} }
`);
        const res = await rivet(["run", "-c", cfg]);
        assert.equal(res.code, 2, res.stderr);
        assert.match(res.stderr, /disk full at /);
        assert.deepEqual(await listAll(out), [], "no data file, no manifest, no staging file");
        await using state = await stateOf(dir);
        assert.equal(await state.readCursor("single_full"), undefined);
        assert.deepEqual(await state.listFiles({ exportName: "single_full", last: 10 }), []);
      } finally {
        await unmount(out);
      }
    },
  },
  {
    name: "a manifest that cannot be written leaves the cursor where it was",
    only: "postgres",
    async run({ db, dir, config, start, rivet }) {
      await db.sql(
        "CREATE TABLE inc (id int8, v int); INSERT INTO inc SELECT i, i FROM " +
          "generate_series(1, 300) i;",
      );
      const out = `${dir}/tmpfs`;
      await mountTmpfs(out, "1m");
      try {
        const cfg = await config(`  - name: inc
    query: SELECT id, v FROM inc
    mode: incremental
    cursor_column: id
    format: csv
    destination: { type: local, path: ${out} }
`);
        const first = await rivet(["run", "-c", cfg]);
        assert.equal(first.code, 0, first.stderr);
        const manifest = await Deno.readFile(`${out}/manifest.json`);
        const success = await Deno.readFile(`${out}/_SUCCESS`);
        await db.sql("INSERT INTO inc SELECT i, i FROM generate_series(301, 500) i");
        await new Promise((r) => setTimeout(r, 1100)); // another file stamp than run 1's
        // Parts are committed; while rivet waits there, the disk fills up.
        const run = start(["run", "-c", cfg], {
          RIVET_TEST_BLOCK_AT: "after_file_write",
          RIVET_TEST_BLOCK_MS: "2000",
        });
        await run.waitFor(/test hook: blocking/);
        await fillDisk(out);
        const res = await run.done();
        {
          await using state = await stateOf(dir);
          assert.equal((await state.readCursor("inc"))?.lastCursorValue, "300", "cursor kept");
        }
        assert.equal(res.code, 2, res.stderr);
        assert.match(res.stderr, /disk full at /);
        assert.deepEqual(await Deno.readFile(`${out}/manifest.json`), manifest);
        assert.deepEqual(await Deno.readFile(`${out}/_SUCCESS`), success);
        await Deno.remove(`${out}/filler`);
        const again = await rivet(["run", "-c", cfg]);
        assert.equal(again.code, 0, again.stderr);
        assert.deepEqual(await csvIds(out), range(1, 500), "every row exactly once");
        await using state = await stateOf(dir);
        assert.equal((await state.readCursor("inc"))?.lastCursorValue, "500");
      } finally {
        await unmount(out);
      }
    },
  },
  {
    name: "an incremental run without new rows keeps the previous manifest and _SUCCESS",
    only: "postgres",
    async run({ db, dir, config }) {
      await db.sql("CREATE TABLE inc6 (id int8); INSERT INTO inc6 SELECT generate_series(1, 50);");
      const out = `${dir}/out`;
      const cfg = await config(`  - name: inc6
    query: SELECT id FROM inc6
    mode: incremental
    cursor_column: id
    format: csv
    destination: { type: local, path: ${out} }
  - name: inc6_skip
    query: SELECT id FROM inc6
    mode: incremental
    cursor_column: id
    skip_empty: true
    format: csv
    destination: { type: local, path: ${out}_skip }
`);
      const first = await runCli(["run", "-c", cfg]);
      assert.equal(first.code, 0, first.stderr);
      const before = {
        manifest: await Deno.readTextFile(`${out}/manifest.json`),
        success: await Deno.readTextFile(`${out}/_SUCCESS`),
        skipManifest: await Deno.readTextFile(`${out}_skip/manifest.json`),
        skipSuccess: await Deno.readTextFile(`${out}_skip/_SUCCESS`),
      };
      const second = await runCli(["run", "-c", cfg, "--json"]);
      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(
        JSON.parse(second.stdout).per_export.map((e: { status: string }) => e.status),
        ["success", "skipped"],
      );
      assert.equal(await Deno.readTextFile(`${out}/manifest.json`), before.manifest);
      assert.equal(await Deno.readTextFile(`${out}/_SUCCESS`), before.success);
      assert.equal(await Deno.readTextFile(`${out}_skip/manifest.json`), before.skipManifest);
      assert.equal(await Deno.readTextFile(`${out}_skip/_SUCCESS`), before.skipSuccess);
      assert.deepEqual(await csvIds(out), range(1, 50));
    },
  },
  {
    name: "two plain runs of an export in the same second both succeed",
    only: "postgres",
    async run({ dir, config }) {
      const cfg = await config(`  - name: twice
    query: SELECT id, v FROM ft WHERE id <= 10
    format: csv
    destination: { type: local, path: ${dir}/out }
  - name: twice_keyset
    table: ft
    mode: chunked
    chunk_by_key: id
    chunk_size: 1500
    format: csv
    destination: { type: local, path: ${dir}/keyset }
`);
      // Start right after a second boundary so both runs share the stamp.
      for (let tries = 0;; tries++) {
        await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 5));
        const second = Math.floor(Date.now() / 1000);
        const a = await runCli(["run", "-c", cfg]);
        const b = await runCli(["run", "-c", cfg]);
        const sameSecond = Math.floor(Date.now() / 1000) === second;
        assert.equal(a.code, 0, a.stderr);
        assert.equal(b.code, 0, `second run in the same second: ${b.stderr}`);
        if (sameSecond || tries >= 9) {
          assert.ok(sameSecond, "two runs fitted in one second");
          break;
        }
      }
      const data = (await listAll(`${dir}/out`)).filter((f) => f.endsWith(".csv"));
      const stamps = new Set(data.map((f) => /^twice_(\d{8}_\d{6})/.exec(f)?.[1]));
      assert.ok(data.length >= 2 && stamps.size < data.length, data.join(" "));
      for (const f of data) assert.match(f, /^twice_\d{8}_\d{6}(_[0-9a-f]{8})?\.csv$/);
    },
  },
  {
    name: "small ones: --resume on a completed plain export says one thing and does it",
    only: "postgres",
    async run({ dir, config, rivet }) {
      const cfg = await config(`  - name: plain
    query: SELECT id FROM ft WHERE id <= 5
    format: csv
    destination: { type: local, path: ${dir}/out }
`);
      assert.equal((await rivet(["run", "-c", cfg])).code, 0);
      const res = await rivet(["run", "-c", cfg, "--resume"]);
      assert.equal(res.code, 1, res.stderr);
      assert.doesNotMatch(res.stderr, /run as usual/);
      assert.match(res.stderr, /nothing to continue.*holds _SUCCESS is refused unless --force/);
      assert.match(res.stderr, /already holds _SUCCESS.*no checkpoint to continue/);
      assert.match(res.stderr, /run without --resume to export it again/);
      assert.deepEqual(await csvIds(`${dir}/out`), range(1, 5), "nothing written by the refusal");
    },
  },
  {
    name: "small ones: the PK auto-resolution warning says what it chose and how to override it",
    only: "postgres",
    async run({ dir, config, rivet }) {
      const cfg = await config(`  - name: auto
    table: ft
    mode: chunked
    chunk_size: 1000
    format: csv
    destination: { type: local, path: ${dir}/out }
`);
      const res = await rivet(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, /auto-resolved to 'id'.*set `chunk_column:` explicitly/);
    },
  },
  {
    name: "small ones: the TLS-not-enforced warning is printed once per export, retries included",
    only: "postgres",
    async run({ db, dir, config, rivet }) {
      await db.sql(`CREATE TABLE gate_until (until timestamptz);
        INSERT INTO gate_until VALUES (clock_timestamp() + interval '1 hour');
        CREATE FUNCTION flaky_gate() RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN
          IF clock_timestamp() < (SELECT until FROM gate_until) THEN
            RAISE EXCEPTION 'not yet' USING ERRCODE = '40001';
          END IF;
          RETURN true;
        END $$;`);
      const host = await nonLoopbackName(db.port);
      const cfg = await config(
        `  - name: tls_once
    query: SELECT id FROM ft WHERE flaky_gate()
    format: csv
    tuning: { max_retries: 8, retry_backoff_ms: 200 }
    destination: { type: local, path: ${dir}/out }
`,
        `  type: postgres\n  url: postgresql://postgres@${host}:${db.port}/postgres\n` +
          `  tls: { mode: disable }\n`,
      );
      await db.sql("UPDATE gate_until SET until = clock_timestamp() + interval '6 seconds'");
      const res = await rivet(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, /retry 1\//, "the export was retried at least once");
      assert.equal(res.stderr.match(/TLS is not enforced/g)?.length, 1, res.stderr);
    },
  },
];

/**
 * A name of this machine that is not a loopback literal but reaches the loopback server (the
 * host name, or glibc's short form `127.1`), so that the TLS policy warns about plaintext.
 */
async function nonLoopbackName(port: number): Promise<string> {
  for (const name of [Deno.hostname(), "127.1"]) {
    try {
      const conn = await Deno.connect({ hostname: name, port });
      conn.close();
      return name;
    } catch { /* next */ }
  }
  throw new Error("no non-literal name of this machine reaches 127.0.0.1");
}

async function fixture(db: Db): Promise<void> {
  if (db.type === "postgres") {
    await db.sql(`CREATE TABLE ft (id int8 PRIMARY KEY, v int);
      INSERT INTO ft SELECT i, i % 97 FROM generate_series(1, ${FT_ROWS}) i;`);
  } else {
    await db.sql(`CREATE TABLE ft (id bigint PRIMARY KEY, v int);
      INSERT INTO ft SELECT seq, seq % 97 FROM seq_1_to_${FT_ROWS};`);
  }
}

function suite(name: "postgres" | "mariadb", open: () => Promise<Db & AsyncDisposable>) {
  Deno.test({
    name: `${name}: faults an operator sees every week`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn(t) {
      await using db = await open();
      await fixture(db);
      const root = await Deno.makeTempDir({ prefix: `rivet_faults_${name}_` });
      let n = 0;
      // FAULTS_ONLY=<text> runs the cases whose name contains it (while working on one).
      const only = Deno.env.get("FAULTS_ONLY");
      for (const c of cases) {
        if (c.only && c.only !== name) continue;
        if (only && !c.name.includes(only)) continue;
        const dir = `${root}/case${n++}`;
        await Deno.mkdir(dir);
        const env = { DB_URL: db.url };
        const config = async (exports: string, source?: string) => {
          const path = `${dir}/plan.yaml`;
          await Deno.writeTextFile(
            path,
            `source:\n${source ?? `  type: ${db.type}\n  url_env: DB_URL\n`}exports:\n${exports}`,
          );
          return path;
        };
        const start = (args: string[], extra: Record<string, string> = {}) =>
          new Rivet(args, { ...env, ...extra });
        const rivet = (args: string[], extra: Record<string, string> = {}) =>
          start(args, extra).done();
        const prev = Deno.env.get("DB_URL");
        Deno.env.set("DB_URL", db.url);
        try {
          await t.step(c.name, () => c.run({ db, dir, config, start, rivet }));
        } finally {
          if (prev === undefined) Deno.env.delete("DB_URL");
          else Deno.env.set("DB_URL", prev);
        }
      }
      await Deno.remove(root, { recursive: true });
    },
  });
}

suite("postgres", async () => {
  const pg = await startPostgres();
  return { ...pgDb(pg), [Symbol.asyncDispose]: () => pg.stop() };
});
suite("mariadb", async () => {
  const db = await startMariaDb();
  return { ...mariaDb(db), [Symbol.asyncDispose]: () => db.stop() };
});
