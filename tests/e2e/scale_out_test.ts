// Several hosts share one checkpointed export through a PostgreSQL state database (issue 16):
// three `rivet run` processes in separate working folders (standing in for three hosts, named by
// RIVET_TEST_HOSTNAME) work on one 40-chunk run; one is SIGKILLed in the middle of a chunk and a
// survivor takes its chunk over once its lease expires; exactly one process writes the manifest
// and _SUCCESS. Also prints the wall time of the same run with 1, 2 and 3 processes.
import assert from "node:assert/strict";
import { join } from "node:path";
import { manifestIds } from "../_helpers/exported.ts";
import { startPostgres } from "../_helpers/pg_server.ts";

const cliPath = new URL("../../cli.ts", import.meta.url).pathname;
const CHUNKS = 40;
const ROWS = 4_000;
/** Rows of the timing run: enough that each of its 40 chunks does some work. */
const TIMING_ROWS = 200_000;

/** One "host": a working folder holding its own copy of the plan. */
async function host(root: string, name: string, plan: string): Promise<string> {
  const dir = join(root, name);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(join(dir, "plan.yaml"), plan);
  return dir;
}

/** Starts `rivet run -c plan.yaml [extra]` in `dir` as host `name`. */
function launch(
  dir: string,
  name: string,
  env: Record<string, string>,
  extra: string[] = [],
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", cliPath, "run", "-c", "plan.yaml", ...extra],
    cwd: dir,
    env: { ...env, RIVET_TEST_HOSTNAME: name },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Waits for a process and returns its exit code and stderr. */
async function done(child: Deno.ChildProcess): Promise<{ code: number; stderr: string }> {
  const out = await child.output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

/** Polls `probe` every 100 ms until it is true (at most `ms`). */
async function until(probe: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A throwaway PostgreSQL server holding table `big` with ids 1..rows. */
async function serverWith(rows: number) {
  const pg = await startPostgres();
  try {
    await pg.psql(
      "CREATE TABLE big (id int PRIMARY KEY, v text); " +
        `INSERT INTO big SELECT g, repeat('x', 50) || g FROM generate_series(1, ${rows}) g;`,
    );
  } catch (error) {
    await pg[Symbol.asyncDispose]();
    throw error;
  }
  return pg;
}

/** A test on a fresh server holding `rows` rows in `big`, with a temporary root folder. */
function scaleTest(
  name: string,
  rows: number,
  body: (pg: Awaited<ReturnType<typeof serverWith>>, root: string) => Promise<void>,
): void {
  Deno.test({
    name,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      await using pg = await serverWith(rows);
      const root = await Deno.makeTempDir({ prefix: "rivet_scale_out_" });
      try {
        await body(pg, root);
      } finally {
        await Deno.remove(root, { recursive: true });
      }
    },
  });
}

/** Hosts A and B on a 4-chunk plan of 400 rows, with state in `schema` and a lease of `leaseMs`. */
async function twoHosts(url: string, root: string, schema: string, leaseMs: number) {
  const out = join(root, "out");
  const plan = planYaml(out, 1).replace(`chunk_size: ${ROWS / CHUNKS}`, "chunk_size: 100");
  const env = {
    DB_URL: url,
    RIVET_STATE_URL: `${url}?schema=${schema}`,
    RIVET_TEST_LEASE_MS: String(leaseMs),
  };
  const [a, b] = await Promise.all(["hostA", "hostB"].map((n) => host(root, n, plan)));
  return { out, env, a: a!, b: b! };
}

/** Whether `dir` exists and holds an entry whose name passes `test`. */
async function holds(dir: string, test: (name: string) => boolean): Promise<boolean> {
  try {
    for await (const e of Deno.readDir(dir)) if (test(e.name)) return true;
  } catch {
    // Not created yet.
  }
  return false;
}

/** Every file under `dir` (recursively) whose name starts with `.rivet_state`. */
async function stateFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".rivet_state")) found.push(join(dir, e.name));
    else if (e.isDirectory) found.push(...await stateFiles(join(dir, e.name)));
  }
  return found;
}

/** The plan every host runs: one checkpointed chunked export to a shared local folder. */
function planYaml(out: string, parallel: number): string {
  return `source:
  type: postgres
  url_env: DB_URL
exports:
  - name: wide
    mode: chunked
    table: big
    chunk_column: id
    chunk_size: ${ROWS / CHUNKS}
    parallel: ${parallel}
    chunk_checkpoint: true
    format: parquet
    destination: { type: local, path: ${out} }
`;
}

scaleTest(
  "three hosts share one 40-chunk run through PostgreSQL state; a killed host is replaced",
  ROWS,
  async (pg, root) => {
    const out = join(root, "out");
    const plan = planYaml(out, 1);
    const schema = "shared_ledger";
    const env = {
      DB_URL: pg.url,
      RIVET_STATE_URL: `${pg.url}?schema=${schema}`,
      RIVET_TEST_LEASE_MS: "3000",
    };
    const [one, two, three] = await Promise.all(
      ["host1", "host2", "host3"].map((n) => host(root, n, plan)),
    );
    // host3 starts the run and parks after committing chunk 0's file, before recording it
    // completed: the state of a host that dies in the middle of a chunk.
    const victim = launch(three!, "host3", {
      ...env,
      RIVET_TEST_BLOCK_AT: "after_chunk_file:0",
      RIVET_TEST_BLOCK_MS: "120000",
    });
    await until(
      () => holds(out, (n) => n.includes("_chunk0_")),
      60_000,
      "host3 to commit chunk 0",
    );
    // The two others join the run in progress.
    const survivors = [
      launch(one!, "host1", env, ["--resume"]),
      launch(two!, "host2", env, [
        "--resume",
      ]),
    ];
    await until(
      async () =>
        /^\s*[1-9]/.test(
          await pg.psql(
            `SELECT count(*) FROM ${schema}.chunk_task WHERE status = 'completed'`,
          ),
        ),
      60_000,
      "a survivor to complete a chunk",
    );
    victim.kill("SIGKILL");
    const killed = await done(victim);
    assert.notEqual(killed.code, 0);
    const results = await Promise.all(survivors.map(done));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const finishers = results.filter((r) => !r.stderr.includes("finished it (manifest"));
    assert.equal(finishers.length, 1, "exactly one survivor finishes the run");
    assert.match(
      results.map((r) => r.stderr).join("\n"),
      /host[12] pid \d+ finished it \(manifest and _SUCCESS\)/,
    );

    // Every row exactly once, read back through the manifest by the independent reader.
    const { ids, success } = await manifestIds(out);
    assert.ok(success, "_SUCCESS is written");
    assert.deepEqual(ids, Array.from({ length: ROWS }, (_, i) => i + 1));
    const names = [...Deno.readDirSync(out)].map((e) => e.name);
    assert.equal(names.filter((n) => n === "manifest.json").length, 1);
    const tasks = await pg.psql(
      `SELECT status, count(*) FROM ${schema}.chunk_task GROUP BY status ORDER BY 1`,
    );
    assert.match(tasks, /^\s*completed\s*\|\s*40\s*$/m, tasks);
    assert.doesNotMatch(tasks, /running|pending|failed/, tasks);
    const chunk0 = await pg.psql(
      `SELECT claimed_by_host || ' ' || attempts FROM ${schema}.chunk_task ` +
        "WHERE chunk_index = 0",
    );
    assert.match(chunk0, /^\s*host[12] 2\s*$/m, "a survivor re-ran the killed host's chunk");
    const hosts = await pg.psql(
      `SELECT string_agg(DISTINCT claimed_by_host, ',' ORDER BY claimed_by_host) ` +
        `FROM ${schema}.chunk_task`,
    );
    assert.match(hosts, /host1,host2/, "both survivors worked on the run");
    const run = await pg.psql(
      `SELECT status || ' ' || finished_by_host FROM ${schema}.chunk_run`,
    );
    assert.match(run, /^\s*completed host[12]\s*$/m, run);
    assert.deepEqual(await stateFiles(root), [], "no SQLite state file anywhere");
  },
);

scaleTest(
  "a host joining with --resume leaves another host's chunk in flight alone; its lease holds",
  400,
  async (pg, root) => {
    const schema = "joined";
    // A lease far shorter than the pause below: only renewal keeps chunk 0 with host A.
    const { out, env, a, b } = await twoHosts(pg.url, root, schema, 1500);
    // Host A parks with chunk 0 staged (written, not yet renamed into place).
    const first = launch(a, "hostA", {
      ...env,
      RIVET_TEST_BLOCK_AT: "before_commit_rename",
      RIVET_TEST_BLOCK_MS: "6000",
    });
    await until(() => holds(out, (n) => n.endsWith(".tmp")), 60_000, "host A to stage chunk 0");
    const second = await done(launch(b, "hostB", env, ["--resume"]));
    const firstDone = await done(first);
    assert.equal(firstDone.code, 0, firstDone.stderr);
    assert.equal(second.code, 0, second.stderr);
    assert.doesNotMatch(firstDone.stderr + second.stderr, /quarantine|staging object/);
    const chunk0 = await pg.psql(
      `SELECT claimed_by_host || ' ' || attempts || ' ' || status FROM ${schema}.chunk_task ` +
        "WHERE chunk_index = 0",
    );
    assert.match(chunk0, /^\s*hostA 1 completed\s*$/m, "chunk 0 stayed host A's");
    const { ids, success } = await manifestIds(out);
    assert.ok(success);
    assert.deepEqual(ids, Array.from({ length: 400 }, (_, i) => i + 1));
  },
);

scaleTest(
  "a finisher that dies before _SUCCESS is replaced once its finish lease expires",
  400,
  async (pg, root) => {
    const schema = "finisher";
    const { out, env, a, b } = await twoHosts(pg.url, root, schema, 2000);
    // Host A runs every chunk, claims the finish, writes manifest.json and dies before _SUCCESS.
    const crashed = await done(
      launch(a, "hostA", { ...env, RIVET_TEST_CRASH_AT: "before_success_marker" }),
    );
    assert.equal(crashed.code, 86, crashed.stderr);
    const held = await pg.psql(
      `SELECT status || ' ' || finished_by_host FROM ${schema}.chunk_run`,
    );
    assert.match(held, /^\s*in_progress hostA\s*$/m, held);
    // Host B joins: nothing is left to claim, and the finish is host A's until its lease ends.
    const joined = await done(launch(b, "hostB", env, ["--resume"]));
    assert.equal(joined.code, 0, joined.stderr);
    assert.doesNotMatch(joined.stderr, /finished it/);
    const run = await pg.psql(
      `SELECT status || ' ' || finished_by_host FROM ${schema}.chunk_run`,
    );
    assert.match(run, /^\s*completed hostB\s*$/m, run);
    const { ids, success } = await manifestIds(out);
    assert.ok(success, "_SUCCESS is written by the replacement finisher");
    assert.deepEqual(ids, Array.from({ length: 400 }, (_, i) => i + 1));
  },
);

scaleTest(
  "scale-out wall time with 1, 2 and 3 processes (printed, not asserted)",
  TIMING_ROWS,
  async (pg, root) => {
    const rows = TIMING_ROWS;
    const lines: string[] = [];
    for (const n of [1, 2, 3]) {
      const out = join(root, `out${n}`);
      const plan = planYaml(out, 1).replace(`chunk_size: ${ROWS / CHUNKS}`, "chunk_size: 5000");
      const schema = `timing_${n}`;
      const env = { DB_URL: pg.url, RIVET_STATE_URL: `${pg.url}?schema=${schema}` };
      const dirs = await Promise.all(
        Array.from({ length: n }, (_, i) => host(root, `t${n}_host${i + 1}`, plan)),
      );
      const started = performance.now();
      const first = launch(dirs[0]!, "host1", env);
      const runs = [first];
      if (n > 1) {
        // The others join as soon as the run exists (the documented start of a shared run).
        await until(
          async () =>
            /^\s*1\s*$/m.test(
              await pg.psql(
                `SELECT count(*) FROM pg_tables WHERE schemaname = '${schema}' ` +
                  "AND tablename = 'chunk_run'",
              ),
            ) &&
            /^\s*1\s*$/m.test(await pg.psql(`SELECT count(*) FROM ${schema}.chunk_run`)),
          60_000,
          "the run to start",
        );
        for (let i = 1; i < n; i++) {
          runs.push(launch(dirs[i]!, `host${i + 1}`, env, ["--resume"]));
        }
      }
      const results = await Promise.all(runs.map(done));
      const ms = performance.now() - started;
      for (const r of results) assert.equal(r.code, 0, r.stderr);
      const { ids, success } = await manifestIds(out);
      assert.ok(success);
      assert.equal(ids.length, rows);
      lines.push(`${n} process(es): ${(ms / 1000).toFixed(1)} s`);
    }
    console.log(`scale-out wall time, ${rows} rows in 40 chunks: ${lines.join("; ")}`);
  },
);
