// `rivet run` with RIVET_STATE_URL: a checkpointed chunked export (parallel 2) and an incremental
// one keep their state in a PostgreSQL schema, not in `.rivet_state.db`; `state show`,
// `state chunks` and `metrics` read it through the same URL.
import assert from "node:assert/strict";
import { spawnCli } from "../_helpers/cli.ts";
import { freePort, startPostgres } from "../_helpers/pg_server.ts";

/** Ids (first column) of every CSV data file in `dir`, sorted. */
async function csvIds(dir: string): Promise<number[]> {
  const ids: number[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (!e.isFile || !e.name.endsWith(".csv")) continue;
    const lines = (await Deno.readTextFile(`${dir}/${e.name}`)).trimEnd().split("\n").slice(1);
    ids.push(...lines.filter(Boolean).map((l) => Number(l.split(",")[0])));
  }
  return ids.sort((a, b) => a - b);
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Every file under `dir` whose name starts with `.rivet_state`. */
async function stateFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".rivet_state")) found.push(e.name);
  }
  return found;
}

Deno.test({
  name: "rivet run with RIVET_STATE_URL keeps state in PostgreSQL: rows once, no state file",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using pg = await startPostgres();
    await pg.psql(
      "CREATE TABLE ck (id int PRIMARY KEY, v text); " +
        "INSERT INTO ck SELECT g, 'v' || g FROM generate_series(1, 2000) g;",
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_pgstate_run_" });
    try {
      const config = `${dir}/plan.yaml`;
      await Deno.writeTextFile(
        config,
        `source:
  type: postgres
  url_env: DB_URL
exports:
  - name: chunky
    mode: chunked
    table: ck
    chunk_column: id
    chunk_size: 250
    parallel: 2
    chunk_checkpoint: true
    format: csv
    destination: { type: local, path: ${dir}/out/chunky }
  - name: inc
    mode: incremental
    table: ck
    cursor_column: id
    format: csv
    destination: { type: local, path: ${dir}/out/inc }
`,
      );
      const env = { DB_URL: pg.url, RIVET_STATE_URL: `${pg.url}?schema=shared_state` };
      const rivet = (args: string[]) => spawnCli(args, { cwd: dir, env });

      const first = await rivet(["run", "-c", config]);
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual(await csvIds(`${dir}/out/chunky`), range(1, 2000));
      assert.deepEqual(await csvIds(`${dir}/out/inc`), range(1, 2000));

      await pg.psql("INSERT INTO ck SELECT g, 'v' || g FROM generate_series(2001, 2010) g;");
      const second = await rivet(["run", "-c", config, "-e", "inc"]);
      assert.equal(second.code, 0, second.stderr);
      assert.deepEqual(await csvIds(`${dir}/out/inc`), range(1, 2010), "only the new rows");

      const show = await rivet(["state", "show", "-c", config]);
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, /^inc\s+[0-9a-f]{16}\s+2010\b/m);
      const chunks = await rivet(["state", "chunks", "-c", config, "-e", "chunky"]);
      assert.equal(chunks.code, 0, chunks.stderr);
      assert.match(chunks.stdout, /Tasks: {5}8 \(8 completed/);
      assert.match(chunks.stdout, /HOST +PID/);
      const metrics = await rivet(["metrics", "-c", config]);
      assert.equal(metrics.code, 0, metrics.stderr);
      assert.match(metrics.stdout, /^chunky +success/m);
      assert.match(metrics.stdout, /^inc +success/m);

      const rows = await pg.psql(
        "SELECT count(*) FILTER (WHERE status = 'completed'), count(DISTINCT claimed_by_pid) " +
          "FROM shared_state.chunk_task",
      );
      assert.match(rows, /^\s*8\s*\|\s*1\s*$/m, rows);
      assert.deepEqual(await stateFiles(dir), [], "no state file next to the config");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "sandboxed export workers and export processes open the PostgreSQL state store themselves",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using pg = await startPostgres();
    await pg.psql(
      "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100);",
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_pgstate_workers_" });
    try {
      const config = `${dir}/plan.yaml`;
      const inc = (name: string) =>
        `  - { name: ${name}, mode: incremental, table: t, cursor_column: id, format: csv, ` +
        `destination: { type: local, path: ${dir}/out/${name} } }\n`;
      await Deno.writeTextFile(
        config,
        `source:\n  type: postgres\n  url_env: DB_URL\nexports:\n${inc("a")}${inc("b")}`,
      );
      const env = { DB_URL: pg.url, RIVET_STATE_URL: `${pg.url}?schema=sandboxed` };
      const rivet = (args: string[]) => spawnCli(args, { cwd: dir, env });
      const threads = await rivet(["run", "-c", config, "--parallel-exports"]);
      assert.equal(threads.code, 0, threads.stderr);
      await pg.psql("INSERT INTO t SELECT generate_series(101, 110);");
      const processes = await rivet(["run", "-c", config, "--parallel-export-processes"]);
      assert.equal(processes.code, 0, processes.stderr);
      for (const name of ["a", "b"]) {
        assert.deepEqual(await csvIds(`${dir}/out/${name}`), range(1, 110), name);
      }
      const cursors = await pg.psql(
        "SELECT export_name || '=' || last_cursor_value FROM sandboxed.export_state ORDER BY 1",
      );
      assert.deepEqual(cursors.trim().split("\n"), ["a=110", "b=110"]);
      assert.deepEqual(await stateFiles(dir), [], "no state file next to the config");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("an unreachable state database fails the run with exit 2, its password never printed", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_pgstate_down_" });
  try {
    const config = `${dir}/plan.yaml`;
    await Deno.writeTextFile(
      config,
      "source:\n  type: postgres\n  url_env: DB_URL\nexports:\n" +
        `  - { name: a, table: t, format: csv, destination: { type: local, path: ${dir}/out } }\n`,
    );
    const password = "Sup3r-s3cret-state-pw";
    const res = await spawnCli(["run", "-c", config], {
      cwd: dir,
      env: {
        DB_URL: `postgres://u@127.0.0.1:${freePort()}/x`,
        RIVET_STATE_URL: `postgresql://rivet:${password}@127.0.0.1:${freePort()}/ops`,
      },
    });
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /state database at 127\.0\.0\.1:\d+\/ops cannot be reached/);
    assert.doesNotMatch(res.stdout + res.stderr, new RegExp(password));
    assert.deepEqual(await stateFiles(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "state.url_env in the config names the variable of the state URL; unset, it is an error",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using pg = await startPostgres();
    await pg.psql(
      "CREATE TABLE ck (id int PRIMARY KEY); INSERT INTO ck SELECT g FROM generate_series(1, 900) g;",
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_pgstate_urlenv_" });
    try {
      const config = `${dir}/plan.yaml`;
      await Deno.writeTextFile(
        config,
        `source: {type: postgres, url_env: DB_URL}
state: {url_env: SHARED_STATE}
exports:
  - {name: chunky, mode: chunked, table: ck, chunk_column: id, chunk_size: 300, parallel: 2,
     chunk_checkpoint: true, format: csv, destination: {type: local, path: '${dir}/out'}}
`,
      );
      // Unset: refused before anything is read, no state file, no output.
      const unset = await spawnCli(["run", "-c", config], { cwd: dir, env: { DB_URL: pg.url } });
      assert.equal(unset.code, 1, unset.stderr);
      assert.match(unset.stderr, /state\.url_env names SHARED_STATE, which is not set/);
      assert.deepEqual(await stateFiles(dir), []);
      await assert.rejects(Deno.stat(`${dir}/out`), Deno.errors.NotFound);

      // Set (and RIVET_STATE_URL not): the run keeps its checkpoints in that database, sandboxed
      // workers included.
      const env = { DB_URL: pg.url, SHARED_STATE: `${pg.url}?schema=named_state` };
      const run = await spawnCli(["run", "-c", config, "--sandbox"], { cwd: dir, env });
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(await csvIds(`${dir}/out`), range(1, 900));
      assert.deepEqual(await stateFiles(dir), []);
      const tasks = await pg.psql(
        "SELECT count(*) FROM named_state.chunk_task WHERE status = 'completed'",
      );
      assert.equal(Number(tasks.trim()), 3);
      const chunks = await spawnCli(["state", "chunks", "-c", config, "-e", "chunky"], {
        cwd: dir,
        env,
      });
      assert.equal(chunks.code, 0, chunks.stderr);
      assert.match(chunks.stdout, /completed/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
