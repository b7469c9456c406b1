/**
 * End to end: `--parallel-export-processes` and `--parallel-exports` against a real PostgreSQL.
 * Children are real `deno run` processes of `cli.ts` with narrowed `--allow-*` flags (or, as the
 * compiled binary does, broad flags and a narrowed worker); they are killed with real signals
 * (SIGTERM to the parent, SIGKILL in a commit window) and their NDJSON stream is read with the
 * CLI's own parser.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startPostgres } from "../_helpers/pg_server.ts";
import { runCli, spawnCli } from "../_helpers/cli.ts";
import { parseNdjsonEvents } from "../../src/core/event_protocol.ts";
import type { Outcome, RivetEvent } from "../../src/core/events.ts";
import { loadConfig } from "../../src/config/mod.ts";
import { exportPermissions, toDenoFlags } from "../../src/engines/permissions.ts";
import { childFailure, runExportsInProcesses } from "../../src/engines/subprocess.ts";
import { selectParallelMode } from "../../src/engines/concurrent.ts";
import { manifestIds } from "../_helpers/exported.ts";

const cliPath = new URL("../../cli.ts", import.meta.url).pathname;

const seed = `
CREATE TABLE t_a AS SELECT i::int8 AS id, md5(i::text) AS s FROM generate_series(1, 3000) AS i;
CREATE TABLE t_b AS SELECT i::int8 AS id, (i % 7)::int4 AS n FROM generate_series(1, 2000) AS i;
CREATE TABLE t_c AS SELECT i::int8 AS id, i::text AS t FROM generate_series(1, 1000) AS i;
CREATE TABLE dated AS
  SELECT i::int8 AS id, date '2023-06-01' + i AS d FROM generate_series(1, 300) AS i;
`;

/** A query that sleeps a minute before its first row. */
const SLOW = "SELECT t_c.* FROM t_c CROSS JOIN LATERAL (SELECT pg_sleep(60)) AS s";

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** Pids of running process-mode children of the config at `configPath` (optionally one export). */
async function childPids(configPath: string, exportName?: string): Promise<number[]> {
  const out = await new Deno.Command("ps", { args: ["-eo", "pid=,args="], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).split("\n")
    .filter((l) =>
      l.includes("--process-child") && l.includes(configPath) &&
      (exportName === undefined || l.includes(` -e ${exportName} `))
    )
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/** Starts `rivet <args>` as a real process (for signals); resolve `done` for its output. */
function startRivet(args: string[], env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", "--unstable-worker-options", cliPath, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const dec = new TextDecoder();
  const done = child.output().then((o) => ({
    code: o.code,
    stdout: dec.decode(o.stdout),
    stderr: dec.decode(o.stderr),
  }));
  return { pid: child.pid, child, done };
}

function finishedByExport(events: RivetEvent[]): Map<string, Outcome> {
  const map = new Map<string, Outcome>();
  for (const e of events) {
    if (e.type !== "export_finished") continue;
    assert.ok(!map.has(e.outcome.export), `two export_finished events for ${e.outcome.export}`);
    map.set(e.outcome.export, e.outcome);
  }
  return map;
}

function parseStream(stdout: string): RivetEvent[] {
  const invalid: string[] = [];
  const events = parseNdjsonEvents(stdout, { onInvalidLine: (bad) => invalid.push(bad.line) });
  assert.deepEqual(invalid, [], "stdout holds only events");
  return events;
}

Deno.test({
  name: "process and in-process parallel modes against PostgreSQL",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await pg.psql(seed);
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "rivet_subprocess_" }));
    const env = { DB_URL: pg.url, MIN_ID: "100" };
    let n = 0;
    const caseDir = async () => {
      const dir = join(root, `case${n++}`);
      await Deno.mkdir(dir);
      return dir;
    };
    const writeConfig = async (dir: string, exports: string[]) => {
      const path = join(dir, "plan.yaml");
      await Deno.writeTextFile(
        path,
        `source:\n  type: postgres\n  url_env: DB_URL\nexports:\n${
          exports.map((e) => `  - ${e}\n`).join("")
        }`,
      );
      return path;
    };
    const out = (dir: string, name: string) =>
      `destination: {type: local, path: '${dir}/out/${name}'}`;

    await t.step(
      "three exports run in child processes, stream NDJSON, and land complete; partitions stay in the parent",
      async () => {
        const dir = await caseDir();
        const config = await writeConfig(dir, [
          `{name: a, table: t_a, format: parquet, ${out(dir, "a")}}`,
          `{name: b, table: t_b, format: csv, ${out(dir, "b")}}`,
          `{name: c, query: 'SELECT * FROM t_c WHERE id > \${MIN_ID}', format: parquet, ${
            out(dir, "c")
          }}`,
          `{name: p, table: dated, partition_by: d, partition_granularity: year, format: csv, ` +
          `destination: {type: local, path: '${dir}/out/p/{partition}'}}`,
          // Chunk workers inside a narrowed child: their grants must fit within the child's.
          `{name: ck, table: t_a, mode: chunked, chunk_column: id, chunk_size: 500, parallel: 2, ` +
          `format: parquet, ${out(dir, "ck")}}`,
        ]);
        const started = performance.now();
        const res = await spawnCli(
          [
            "run",
            "-c",
            config,
            "--parallel-export-processes",
            "--events",
            "ndjson",
            "--summary-output",
            join(dir, "agg.json"),
          ],
          { env },
        );
        const wallMs = performance.now() - started;
        assert.equal(res.code, 0, res.stderr);
        const events = parseStream(res.stdout);
        assert.equal(events[0]?.type, "run_started");
        const last = events.at(-1)!;
        assert.ok(last.type === "run_finished" && last.exitCode === 0, JSON.stringify(last));
        assert.equal(events.filter((e) => e.type === "run_started").length, 1);
        assert.equal(events.filter((e) => e.type === "run_finished").length, 1);
        const finished = finishedByExport(events);
        assert.deepEqual([...finished.keys()].sort(), ["a", "b", "c", "ck", "p__2023", "p__2024"]);
        for (const o of finished.values()) assert.equal(o.status, "success", JSON.stringify(o));
        assert.deepEqual(last.outcomes.map((o) => o.export), [
          "a",
          "b",
          "c",
          "p__2023",
          "p__2024",
          "ck",
        ]);
        // Progress of the children reached the parent's stream as it happened.
        for (const name of ["a", "b", "c", "ck"]) {
          assert.ok(events.some((e) => e.type === "export_started" && e.export === name), name);
          assert.ok(events.some((e) => e.type === "part_committed" && e.export === name), name);
        }

        assert.deepEqual((await manifestIds(`${dir}/out/a`)).ids, range(1, 3000));
        assert.deepEqual((await manifestIds(`${dir}/out/b`)).ids, range(1, 2000));
        const c = await manifestIds(`${dir}/out/c`);
        assert.deepEqual(c.ids, range(101, 1000), "MIN_ID reached the child's cleared environment");
        assert.ok(c.success);
        const p23 = await manifestIds(`${dir}/out/p/d=2023`);
        const p24 = await manifestIds(`${dir}/out/p/d=2024`);
        assert.equal(p23.ids.length + p24.ids.length, 300);

        const agg = JSON.parse(await Deno.readTextFile(join(dir, "agg.json")));
        assert.equal(agg.parallel_mode, "parallel-processes");
        assert.equal(agg.total_rows, 3000 + 2000 + 900 + 300 + 3000);
        assert.deepEqual((await manifestIds(`${dir}/out/ck`)).ids, range(1, 3000));
        assert.match(res.stderr, /export 'p': partition_by disables process mode/);
        assert.doesNotMatch(res.stderr, /child process wrote|Error:/);
        for (const name of ["a", "b", "c"]) {
          assert.match(res.stderr, new RegExp(`✓ ${name}: success`));
        }
        console.log(
          `  5 exports (4 children, 2 partitions in the parent): ${wallMs.toFixed(0)} ms`,
        );
      },
    );

    await t.step(
      "a crash in one child's process ends only that export (the parent survives it)",
      async () => {
        const dir = await caseDir();
        const config = await writeConfig(dir, [
          `{name: a, table: t_a, format: parquet, ${out(dir, "a")}}`,
          `{name: b, table: t_b, format: csv, ${out(dir, "b")}}`,
        ]);
        // In one process this hook would end the whole run with 86; here each child ends alone.
        const res = await spawnCli(["run", "-c", config, "--parallel-export-processes"], {
          env: { ...env, RIVET_TEST_CRASH_AT: "after_file_write" },
        });
        assert.equal(res.code, 1, res.stderr);
        assert.match(res.stderr, /export 'a': its child process crashed \(exit code 86\)/);
        assert.match(res.stderr, /export 'b': its child process crashed \(exit code 86\)/);
        assert.match(
          res.stderr,
          /its child process wrote on stderr:\n {2}rivet: test hook: crashing/,
        );
        const metrics = await spawnCli(["metrics", "-c", config, "-e", "a"], { env });
        assert.match(metrics.stdout, /failed/, "the parent recorded the run its child never did");
      },
    );

    await t.step(
      "a SIGKILLed child fails alone: its siblings complete and the run exits 2",
      async () => {
        const dir = await caseDir();
        const config = await writeConfig(dir, [
          `{name: a, table: t_a, format: parquet, ${out(dir, "a")}}`,
          `{name: b, table: t_b, format: csv, ${out(dir, "b")}}`,
          `{name: slow, query: '${SLOW}', format: parquet, ${out(dir, "slow")}}`,
        ]);
        const rivet = startRivet(
          ["run", "-c", config, "--parallel-export-processes", "--events", "ndjson"],
          env,
        );
        let victim: number[] = [];
        await waitFor("the slow child", async () => {
          victim = await childPids(config, "slow");
          return victim.length === 1;
        });
        await waitFor(
          "a and b",
          async () =>
            await exists(`${dir}/out/a/_SUCCESS`) && await exists(`${dir}/out/b/_SUCCESS`),
        );
        Deno.kill(victim[0]!, "SIGKILL");
        const res = await rivet.done;
        assert.equal(res.code, 2, res.stderr);
        const finished = finishedByExport(parseStream(res.stdout));
        assert.equal(finished.get("a")?.status, "success");
        assert.equal(finished.get("b")?.status, "success");
        const slow = finished.get("slow")!;
        assert.equal(slow.status, "failed");
        assert.equal(slow.error?.code, "run.child_killed");
        assert.equal(slow.error?.exitCode, 2);
        assert.match(slow.runId, /^slow_/);
        assert.match(res.stderr, /killed by SIGKILL/);
        assert.deepEqual((await manifestIds(`${dir}/out/a`)).ids, range(1, 3000));
        assert.deepEqual((await manifestIds(`${dir}/out/b`)).ids, range(1, 2000));
        assert.equal(await exists(`${dir}/out/slow/_SUCCESS`), false);
        assert.deepEqual(await childPids(config), []);
      },
    );

    await t.step(
      "SIGTERM to the parent ends every child within 2 s; finished exports stay complete",
      async () => {
        const dir = await caseDir();
        const config = await writeConfig(dir, [
          `{name: a, table: t_a, format: parquet, ${out(dir, "a")}}`,
          `{name: b, table: t_b, format: csv, ${out(dir, "b")}}`,
          `{name: slow, query: '${SLOW}', format: parquet, ${out(dir, "slow")}}`,
        ]);
        const rivet = startRivet(["run", "-c", config, "--parallel-export-processes"], env);
        await waitFor("the slow child", async () => (await childPids(config, "slow")).length === 1);
        await waitFor(
          "a and b",
          async () =>
            await exists(`${dir}/out/a/_SUCCESS`) && await exists(`${dir}/out/b/_SUCCESS`),
        );
        const signalled = performance.now();
        const exited = rivet.done.then(() => performance.now());
        Deno.kill(rivet.pid, "SIGTERM");
        await new Promise((r) => setTimeout(r, 2000));
        assert.deepEqual(await childPids(config), [], "no child alive 2 s after SIGTERM");
        const res = await rivet.done;
        const exitMs = (await exited) - signalled;
        assert.equal(res.code, 130, res.stderr);
        assert.match(res.stderr, /✗ slow: failed/);
        assert.match(res.stderr, /interrupted/);
        assert.doesNotMatch(
          res.stderr,
          /child process wrote on stderr/,
          `nothing beyond events: ${res.stderr}`,
        );
        assert.deepEqual((await manifestIds(`${dir}/out/a`)).ids, range(1, 3000));
        assert.ok((await manifestIds(`${dir}/out/a`)).success);
        assert.deepEqual((await manifestIds(`${dir}/out/b`)).ids, range(1, 2000));
        assert.equal(await exists(`${dir}/out/slow/_SUCCESS`), false);
        console.log(`  parent exited ${exitMs.toFixed(0)} ms after SIGTERM`);
      },
    );

    await t.step(
      "children that do not stop on SIGTERM are SIGKILLed after the grace period",
      async () => {
        const dir = await caseDir();
        const config = await writeConfig(dir, [
          `{name: a, table: t_a, format: parquet, ${out(dir, "a")}}`,
          `{name: b, table: t_b, format: csv, ${out(dir, "b")}}`,
        ]);
        // Both children sleep in the commit window, where an abort cannot reach them.
        const rivet = startRivet(["run", "-c", config, "--parallel-export-processes"], {
          ...env,
          RIVET_TEST_BLOCK_AT: "before_commit_rename",
          RIVET_TEST_BLOCK_MS: "60000",
        });
        await waitFor("both children in the commit window", async () => {
          const staged = async (name: string) => {
            for await (const e of Deno.readDir(`${dir}/out/${name}`)) {
              if (e.name.endsWith(".tmp")) return true;
            }
            return false;
          };
          return await exists(`${dir}/out/a`) && await exists(`${dir}/out/b`) &&
            await staged("a") && await staged("b");
        });
        const signalled = performance.now();
        Deno.kill(rivet.pid, "SIGTERM");
        const res = await rivet.done;
        const exitMs = performance.now() - signalled;
        assert.equal(res.code, 130, res.stderr);
        assert.ok(exitMs < 2000, `exited ${exitMs} ms after SIGTERM`);
        assert.deepEqual(await childPids(config), []);
        // A child already asleep in its commit window is SIGKILLed; one that was still reading
        // (the .tmp file appears when staging starts, on a loaded machine that can be well
        // before the hook) honours the abort itself. Either way both end as interrupted.
        assert.match(
          res.stderr,
          /export 'b': interrupted before (its child process finished|it finished)/,
        );
        // Killed in the commit window: only the staging file, no final name.
        for (const name of ["a", "b"]) {
          const names = [];
          for await (const e of Deno.readDir(`${dir}/out/${name}`)) names.push(e.name);
          assert.ok(names.every((n) => n.startsWith(".") && n.endsWith(".tmp")), names.join());
        }
        console.log(`  SIGKILL escalation: parent exited ${exitMs.toFixed(0)} ms after SIGTERM`);
      },
    );

    await t.step(
      "a child's --allow-* flags refuse another host, another folder and other variables (NotCapable)",
      async () => {
        const dir = await caseDir();
        const config = await writeConfig(dir, [
          `{name: a, table: t_a, format: parquet, ${out(dir, "a")}}`,
        ]);
        const loaded = await loadConfig(config, { env: (n) => (env as Record<string, string>)[n] });
        const perms = await exportPermissions(loaded, loaded.exports[0]!, {
          cwd: dir,
          env: (n) => (env as Record<string, string>)[n],
        });
        assert.deepEqual(perms.net, [`${pg.host}:${pg.port}`]);
        const other = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const serving = (async () => {
          for await (const conn of other) conn.close();
        })().catch(() => {});
        const outside = await Deno.makeTempDir({ prefix: "rivet_outside_" });
        const probe = join(await Deno.makeTempDir({ prefix: "rivet_probe_" }), "probe.ts");
        await Deno.writeTextFile(
          probe,
          `const [host, port, otherPort, inside, outside] = Deno.args;
const attempt = async (fn: () => unknown) => { try { await fn(); return "ok"; } catch (e) { return (e as Error).name; } };
console.log(JSON.stringify({
  source: await attempt(async () => (await Deno.connect({ hostname: host, port: Number(port) })).close()),
  otherHost: await attempt(async () => (await Deno.connect({ hostname: "127.0.0.1", port: Number(otherPort) })).close()),
  writeInside: await attempt(() => Deno.writeTextFile(inside + "/probe.txt", "x")),
  writeOutside: await attempt(() => Deno.writeTextFile(outside + "/probe.txt", "x")),
  writeNextToConfig: await attempt(() => Deno.writeTextFile(inside + "/../../evil.txt", "x")),
  envUrl: await attempt(() => Deno.env.get("DB_URL")),
  envHome: await attempt(() => Deno.env.get("HOME")),
  spawn: await attempt(() => new Deno.Command("true").output()),
}));`,
        );
        await Deno.mkdir(`${dir}/out/a`, { recursive: true });
        try {
          const run = await new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "--quiet",
              "--no-prompt",
              ...toDenoFlags(perms),
              probe,
              pg.host,
              String(pg.port),
              String((other.addr as Deno.NetAddr).port),
              `${dir}/out/a`,
              outside,
            ],
            env: { DB_URL: pg.url },
            stdout: "piped",
            stderr: "piped",
          }).output();
          const dec = new TextDecoder();
          assert.ok(run.success, dec.decode(run.stderr));
          assert.deepEqual(JSON.parse(dec.decode(run.stdout)), {
            source: "ok",
            otherHost: "NotCapable",
            writeInside: "ok",
            writeOutside: "NotCapable",
            writeNextToConfig: "NotCapable",
            envUrl: "ok",
            envHome: "NotCapable",
            spawn: "NotCapable",
          });
        } finally {
          other.close();
          await serving;
          await Deno.remove(outside, { recursive: true });
        }
      },
    );

    await t.step(
      "the compiled binary's isolation (a narrowed worker in each child) gives the same results",
      async () => {
        const dir = await caseDir();
        const config = await writeConfig(dir, [
          `{name: a, table: t_a, format: parquet, ${out(dir, "a")}}`,
          `{name: b, table: t_b, format: csv, ${out(dir, "b")}}`,
          // Chunk workers nested in the export's worker: their grants must fit within its own.
          `{name: ck, table: t_a, mode: chunked, chunk_column: id, chunk_size: 500, parallel: 2, ` +
          `format: parquet, ${out(dir, "ck")}}`,
        ]);
        const loaded = await loadConfig(config, { env: (n) => (env as Record<string, string>)[n] });
        const events: RivetEvent[] = [];
        const previous = Deno.env.get("DB_URL");
        Deno.env.set("DB_URL", pg.url);
        try {
          const result = await runExportsInProcesses(loaded, loaded.exports, {
            emit: (e) => events.push(e),
            signal: new AbortController().signal,
            params: {},
            cwd: dir,
            configPath: config,
            isolation: "worker",
          });
          assert.equal(result.exitCode, 0, JSON.stringify(result.outcomes));
        } finally {
          if (previous === undefined) Deno.env.delete("DB_URL");
          else Deno.env.set("DB_URL", previous);
        }
        assert.deepEqual([...finishedByExport(events).keys()].sort(), ["a", "b", "ck"]);
        assert.deepEqual((await manifestIds(`${dir}/out/ck`)).ids, range(1, 3000));
        assert.ok(!events.some((e) => e.type === "warning" && e.code === "run.child_stderr"));
        assert.deepEqual((await manifestIds(`${dir}/out/a`)).ids, range(1, 3000));
        assert.deepEqual((await manifestIds(`${dir}/out/b`)).ids, range(1, 2000));
      },
    );

    await t.step(
      "--parallel-exports runs the exports concurrently with the same results as a sequential run",
      async () => {
        const exports = (dir: string) => [
          `{name: a, table: t_a, format: csv, ${out(dir, "a")}}`,
          `{name: b, table: t_b, format: csv, ${out(dir, "b")}}`,
          `{name: c, query: 'SELECT * FROM t_c WHERE id > \${MIN_ID}', format: csv, ${
            out(dir, "c")
          }}`,
          `{name: ck, table: t_a, mode: chunked, chunk_column: id, chunk_size: 400, ` +
          `chunk_checkpoint: true, format: csv, ${out(dir, "ck")}}`,
        ];
        const seqDir = await caseDir();
        const parDir = await caseDir();
        const seqConfig = await writeConfig(seqDir, exports(seqDir));
        const parConfig = await writeConfig(parDir, exports(parDir));
        const seq = await spawnCli(
          ["run", "-c", seqConfig, "--summary-output", join(seqDir, "agg.json")],
          { env },
        );
        const par = await spawnCli(
          [
            "run",
            "-c",
            parConfig,
            "--parallel-exports",
            "--summary-output",
            join(parDir, "agg.json"),
          ],
          { env },
        );
        assert.equal(seq.code, 0, seq.stderr);
        assert.equal(par.code, 0, par.stderr);
        const seqAgg = JSON.parse(await Deno.readTextFile(join(seqDir, "agg.json")));
        const parAgg = JSON.parse(await Deno.readTextFile(join(parDir, "agg.json")));
        assert.equal(seqAgg.parallel_mode, "sequential");
        assert.equal(parAgg.parallel_mode, "parallel-threads");
        const view = (
          agg: { per_export: { export_name: string; rows: number; status: string }[] },
        ) => agg.per_export.map((e) => [e.export_name, e.status, e.rows]);
        assert.deepEqual(view(parAgg), view(seqAgg));
        for (const name of ["a", "b", "c", "ck"]) {
          const s = await manifestIds(`${seqDir}/out/${name}`);
          const p = await manifestIds(`${parDir}/out/${name}`);
          assert.deepEqual(p.ids, s.ids, name);
          assert.ok(p.success && s.success, name);
        }
        assert.deepEqual((await manifestIds(`${parDir}/out/ck`)).ids, range(1, 3000));
        // The concurrent lanes overlapped: each started before the first one finished.
        const starts = [...par.stderr.matchAll(/^\S+ (\w+): started/gm)].map((m) => m[1]);
        assert.deepEqual(starts.slice(0, 4).sort(), ["a", "b", "c", "ck"], par.stderr);
      },
    );

    await Deno.remove(root, { recursive: true });
  },
});

Deno.test("the parallel flags are mutually exclusive, and ignored with --export", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_parallel_flags_" });
  try {
    const path = join(dir, "plan.yaml");
    await Deno.writeTextFile(
      path,
      "source:\n  type: postgres\n  url: postgresql://u@127.0.0.1:1/x\nexports:\n" +
        `  - {name: a, table: t, format: csv, destination: {type: local, path: '${dir}/a'}}\n` +
        `  - {name: b, table: t, format: csv, destination: {type: local, path: '${dir}/b'}}\n`,
    );
    const both = await runCli([
      "run",
      "-c",
      path,
      "--parallel-exports",
      "--parallel-export-processes",
    ]);
    assert.equal(both.code, 1);
    assert.match(both.stderr, /mutually exclusive/);
    assert.equal(await exists(join(dir, ".rivet_state.db")), false, "nothing ran");
    const one = await runCli(["run", "-c", path, "-e", "a", "--parallel-export-processes"]);
    assert.match(one.stderr, /parallel flags are ignored with --export/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("selectParallelMode: processes win over threads in the config, flags pick, few exports fall back", () => {
  const none = {
    parallelExportsFlag: false,
    parallelProcessesFlag: false,
    exportSelected: false,
    exportCount: 3,
  };
  const off = { parallelExports: false, parallelExportProcesses: false };
  assert.equal(selectParallelMode(off, none).mode, "sequential");
  assert.equal(
    selectParallelMode({ parallelExports: true, parallelExportProcesses: true }, none).mode,
    "parallel-processes",
  );
  assert.equal(
    selectParallelMode(
      { parallelExports: false, parallelExportProcesses: true },
      { ...none, parallelExportsFlag: true },
    ).mode,
    "parallel-threads",
    "a flag beats the other mode's config key",
  );
  assert.deepEqual(
    selectParallelMode(off, { ...none, parallelProcessesFlag: true, exportCount: 1 }),
    { mode: "sequential", ignoredFlag: true },
  );
  assert.deepEqual(
    selectParallelMode({ parallelExports: true, parallelExportProcesses: false }, {
      ...none,
      exportSelected: true,
    }),
    { mode: "sequential", ignoredFlag: false },
  );
});

Deno.test("childFailure classifies a child that ended without reporting", () => {
  const status = (code: number, signal: Deno.Signal | null = null): Deno.CommandStatus => ({
    success: false,
    code,
    signal,
  });
  const spec = { name: "orders" };
  const killed = childFailure(spec, {
    status: status(137, "SIGKILL"),
    committed: 0,
    aborted: false,
  });
  assert.equal(killed.exitCode, 2);
  assert.equal(killed.code, "run.child_killed");
  const killedAfterCommit = childFailure(spec, {
    status: status(137, "SIGKILL"),
    committed: 2,
    aborted: false,
  });
  assert.equal(killedAfterCommit.exitCode, 3, "a re-run would duplicate committed rows");
  assert.equal(killedAfterCommit.code, "run.duplicate_guard");
  const drift = childFailure(spec, {
    status: status(4),
    committed: 0,
    aborted: false,
    firstError: "schema drifted",
  });
  assert.equal(drift.exitCode, 4);
  assert.match(drift.message, /exited with code 4 .*: schema drifted/);
  const crashed = childFailure(spec, { status: status(86), committed: 0, aborted: false });
  assert.equal(crashed.exitCode, 1);
  assert.equal(crashed.code, "run.child_crashed");
  const interrupted = childFailure(spec, {
    status: status(143, "SIGTERM"),
    committed: 0,
    aborted: true,
  });
  assert.equal(interrupted.exitCode, 130);
});
