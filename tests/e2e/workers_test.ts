/**
 * End to end, the Web Worker engine of chunked exports (`parallel: N`) against a real
 * PostgreSQL: parallel 1/2/4 give the same rows, a crashed worker is replaced and its chunk
 * retried, a real `kill -9` of the process mid-run resumes with another parallelism, Ctrl-C
 * leaves the run resumable, and a worker's permissions refuse another host and another folder.
 */
import assert from "node:assert/strict";
import { spawnCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { readParquet } from "../_helpers/parquet_oracle.ts";
import { SqliteStateStore, stateDbPath } from "../../src/state/mod.ts";
import { chunkWorkerPermissions } from "../../src/engines/workers.ts";

const cliPath = new URL("../../cli.ts", import.meta.url).pathname;
const ROWS = 3_000;
const ALL = Array.from({ length: ROWS }, (_, i) => i + 1);

async function dataFiles(dir: string, ext = ".csv"): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(dir))).filter((e) =>
      e.isFile && e.name.endsWith(ext) && !e.name.startsWith(".")
    ).map((e) => e.name).sort();
  } catch {
    return [];
  }
}

async function csvIds(dir: string): Promise<number[]> {
  const ids: number[] = [];
  for (const f of await dataFiles(dir)) {
    const lines = (await Deno.readTextFile(`${dir}/${f}`)).trimEnd().split("\n").slice(1);
    ids.push(...lines.filter(Boolean).map((l) => Number(l.split(",")[0])));
  }
  return ids.sort((a, b) => a - b);
}

function plan(dir: string, name: string, extra: string, query = "table: wk"): string {
  return `source:
  type: postgres
  url_env: DB_URL
exports:
  - name: ${name}
    ${query}
    mode: chunked
    chunk_column: id
${extra}    format: csv
    destination: { type: local, path: ${dir}/out/${name} }
`;
}

Deno.test({
  name: "worker engine: parallel chunks, crashes, kills, interrupts and permissions",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await pg.psql(
      `CREATE TABLE wk AS SELECT i::int8 AS id, md5(i::text) AS s, (i % 7)::int4 AS n
         FROM generate_series(1, ${ROWS}) AS i;
       ALTER TABLE wk ADD PRIMARY KEY (id);`,
    );
    const root = await Deno.makeTempDir({ prefix: "rivet_workers_" });
    const rivet = (cfg: string, args: string[] = [], env: Record<string, string> = {}) =>
      spawnCli(["run", "-c", cfg, ...args], { env: { DB_URL: pg.url, ...env } });
    let n = 0;
    const caseDir = async () => {
      const dir = `${root}/case${n++}`;
      await Deno.mkdir(dir);
      return dir;
    };

    await t.step("parallel 1, 2 and 4 export the same rows, Parquet included", async () => {
      const dir = await caseDir();
      const results: number[][] = [];
      for (const p of [1, 2, 4]) {
        const cfg = `${dir}/p${p}.yaml`;
        await Deno.writeTextFile(
          cfg,
          plan(dir, `p${p}`, `    chunk_size: 400\n    parallel: ${p}\n`),
        );
        const res = await rivet(cfg);
        assert.equal(res.code, 0, res.stderr);
        results.push(await csvIds(`${dir}/out/p${p}`));
        assert.equal((await dataFiles(`${dir}/out/p${p}`)).length, 8);
      }
      assert.deepEqual(results[0], ALL);
      assert.deepEqual(results[1], ALL);
      assert.deepEqual(results[2], ALL);
      const cfg = `${dir}/pq.yaml`;
      await Deno.writeTextFile(
        cfg,
        plan(dir, "pq", "    chunk_size: 1000\n    parallel: 3\n").replace(
          "format: csv",
          "format: parquet",
        ),
      );
      const res = await rivet(cfg);
      assert.equal(res.code, 0, res.stderr);
      const ids: number[] = [];
      for (const f of await dataFiles(`${dir}/out/pq`, ".parquet")) {
        ids.push(...(await readParquet(`${dir}/out/pq/${f}`)).rows.map((r) => Number(r.id)));
      }
      assert.deepEqual(ids.sort((a, b) => a - b), ALL);
    });

    await t.step(
      "a crashed worker is replaced and its chunk runs again, rows exactly once",
      async () => {
        const dir = await caseDir();
        for (const checkpoint of [false, true]) {
          const name = checkpoint ? "crash_ckp" : "crash";
          const cfg = `${dir}/${name}.yaml`;
          await Deno.writeTextFile(
            cfg,
            plan(
              dir,
              name,
              `    chunk_size: 500\n    parallel: 2\n    chunk_checkpoint: ${checkpoint}\n`,
            ),
          );
          // The first worker dies right after committing its first file, before reporting it.
          const res = await rivet(cfg, [], { RIVET_TEST_CRASH_AT: "worker:after_file_write" });
          assert.equal(res.code, 0, res.stderr);
          assert.match(res.stderr, /chunk worker \d crashed/);
          assert.match(res.stderr, /_quarantine\//);
          assert.deepEqual(await csvIds(`${dir}/out/${name}`), ALL);
        }
      },
    );

    await t.step("kill -9 while 4 workers run, then --resume with parallel 2", async () => {
      const dir = await caseDir();
      const cfg = `${dir}/b6.yaml`;
      // Each row sleeps a little so that the kill lands mid-run.
      const slow = `query: "SELECT wk.*, (SELECT 1 FROM pg_sleep(0.002)) AS z FROM wk"`;
      await Deno.writeTextFile(
        cfg,
        plan(dir, "b6", "    chunk_size: 250\n    parallel: 4\n    chunk_checkpoint: true\n", slow),
      );
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", cliPath, "run", "-c", cfg],
        env: { DB_URL: pg.url },
        stdout: "null",
        stderr: "null",
      }).spawn();
      const out = `${dir}/out/b6`;
      const deadline = Date.now() + 60_000;
      while ((await dataFiles(out)).length < 3 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill("SIGKILL");
      const status = await child.status;
      assert.equal(status.signal, "SIGKILL");
      const before = (await dataFiles(out)).length;
      assert.ok(before >= 3 && before < 12, `killed mid-run (${before} files)`);
      await Deno.writeTextFile(
        cfg,
        (await Deno.readTextFile(cfg)).replace("parallel: 4", "parallel: 2"),
      );
      const resumed = await rivet(cfg, ["--resume"]);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.deepEqual(await csvIds(out), ALL);
      assert.ok((await Array.fromAsync(Deno.readDir(out))).some((e) => e.name === "_SUCCESS"));
      await using state = await SqliteStateStore.open(stateDbPath(dir));
      const run = await state.latestChunkRun("b6");
      assert.equal(run?.status, "completed");
      const tasks = await state.listChunkTasks(run!.runId);
      assert.ok(tasks.every((task) => task.status === "completed"), "no task left running");
    });

    await t.step("Ctrl-C stops every worker, exits 130 and leaves the run resumable", async () => {
      const dir = await caseDir();
      const cfg = `${dir}/int.yaml`;
      const slow = `query: "SELECT wk.*, (SELECT 1 FROM pg_sleep(0.002)) AS z FROM wk"`;
      await Deno.writeTextFile(
        cfg,
        plan(
          dir,
          "int",
          "    chunk_size: 250\n    parallel: 2\n    chunk_checkpoint: true\n",
          slow,
        ),
      );
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", cliPath, "run", "-c", cfg],
        env: { DB_URL: pg.url },
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const out = `${dir}/out/int`;
      const deadline = Date.now() + 60_000;
      while ((await dataFiles(out)).length < 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const sent = Date.now();
      child.kill("SIGINT");
      const res = await child.output();
      assert.equal(res.code, 130, new TextDecoder().decode(res.stderr));
      assert.ok(Date.now() - sent < 10_000, "the interrupt is prompt");
      const active = await pg.psql(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(0.002)%' " +
          "AND state = 'active' AND pid <> pg_backend_pid()",
      );
      assert.equal(active.trim(), "0", "no chunk query left running on the server");
      {
        await using state = await SqliteStateStore.open(stateDbPath(dir));
        const run = await state.latestChunkRun("int");
        const tasks = await state.listChunkTasks(run!.runId);
        assert.ok(tasks.every((task) => task.status !== "running"), "nothing left running");
      }
      const resumed = await rivet(cfg, ["--resume"]);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.deepEqual(await csvIds(out), ALL);
    });

    await t.step("a worker's permissions refuse another host and another folder", async () => {
      const dir = await caseDir();
      const outDir = `${dir}/out`;
      await Deno.mkdir(outDir);
      const permissions = chunkWorkerPermissions({
        job: {
          source: { kind: "postgres" },
          connection: { host: "127.0.0.1", port: pg.port, user: "u", database: "d", params: {} },
          configDir: dir,
        } as never,
        destination: { kind: "local", path: outDir, allowAnonymous: false },
      });
      const script = `${dir}/probe_worker.js`;
      await Deno.writeTextFile(
        script,
        `const outcome = async (f) => { try { await f(); return "ok"; } catch (e) { return e.name; } };
self.postMessage({
  source: await outcome(async () => (await Deno.connect({ hostname: "127.0.0.1", port: ${pg.port} })).close()),
  otherHost: await outcome(async () => (await Deno.connect({ hostname: "127.0.0.1", port: ${
          pg.port + 1
        } })).close()),
  inside: await outcome(() => Deno.writeTextFile(${JSON.stringify(`${outDir}/x.txt`)}, "x")),
  outside: await outcome(() => Deno.writeTextFile(${JSON.stringify(`${dir}/escape.txt`)}, "x")),
  readConfig: await outcome(() => Deno.readTextFile(${JSON.stringify(script)})),
  env: await outcome(() => Deno.env.get("HOME")),
  run: await outcome(() => new Deno.Command("true").output()),
});`,
      );
      const worker = new Worker(new URL(`file://${script}`), {
        type: "module",
        deno: { permissions },
      });
      const result = await new Promise<Record<string, string>>((resolve) => {
        worker.onmessage = (e) => resolve(e.data);
      });
      worker.terminate();
      assert.deepEqual(result, {
        source: "ok",
        otherHost: "NotCapable",
        inside: "ok",
        outside: "NotCapable",
        readConfig: "NotCapable",
        env: "NotCapable",
        run: "NotCapable",
      });
    });

    await Deno.remove(root, { recursive: true });
  },
});
