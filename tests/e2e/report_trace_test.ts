// `rivet run` of a chunked export with `parallel: 3` on a real PostgreSQL, its state in a
// PostgreSQL schema (RIVET_STATE_URL): the run's trace (what `rivet report` draws) is stored with
// every chunk once per attempt, on the lanes of the three workers, with samples of the run that
// end at its row count, bounded by TRACE_LIMITS; a second run keeps both traces. A trace that
// cannot be stored (SQLite state file without its table) only warns: the run succeeds. A chunk
// failed by the database (an injected 40001) and claimed again is in the trace once per attempt.
// A run that fails and is resumed on another host keeps one trace per process, and its page
// draws one lane group per process with the run's totals summed. A chunk whose worker crashed
// (RIVET_TEST_CRASH_AT=worker:…) is drawn as a retried attempt and its rerun.
import assert from "node:assert/strict";
import type { RunTrace } from "../../src/core/run_trace.ts";
import { TRACE_LIMITS } from "../../src/core/run_trace.ts";
import { openStateStore, stateDbPath } from "../../src/state/mod.ts";
import { DatabaseSync } from "node:sqlite";
import { spawnCli } from "../_helpers/cli.ts";
import { loadPage, screenshot } from "../_helpers/chromium.ts";
import { type PgServer, startPostgres } from "../_helpers/pg_server.ts";

/** The plan: windows of 250 rows (3000 rows: chunks 0..11), three workers, state checkpointed. */
const plan = (out: string, table: string, tuning: string) =>
  "source: {type: postgres, url_env: DB_URL}\nexports:\n" +
  `  - {name: traced, mode: chunked, table: ${table}, chunk_column: id, chunk_size: 250,\n` +
  `     parallel: 3, chunk_checkpoint: true, format: csv, tuning: ${tuning},\n` +
  `     destination: {type: local, path: '${out}'}}\n`;

/**
 * A PostgreSQL with table `tr` of `rows` rows (`setup` runs after), a temp folder and the plan
 * of `table` in it; both cleaned up.
 */
async function withPlan(
  options: { rows: number; table?: string; tuning?: string; setup?: string },
  body: (pg: PgServer, dir: string, config: string) => Promise<void>,
): Promise<void> {
  const { rows, table = "tr", tuning = "{batch_size: 50}" } = options;
  await using pg = await startPostgres();
  await pg.psql(
    "CREATE TABLE tr (id int PRIMARY KEY, v text); " +
      `INSERT INTO tr SELECT g, repeat('v', 50) || g FROM generate_series(1, ${rows}) g;`,
  );
  if (options.setup) await pg.psql(options.setup);
  const dir = await Deno.makeTempDir({ prefix: "rivet_report_trace_" });
  try {
    const config = `${dir}/plan.yaml`;
    await Deno.writeTextFile(config, plan(`${dir}/out`, table, tuning));
    await body(pg, dir, config);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "a chunked parallel: 3 run stores its trace: chunks once, lanes 0..2, bounded samples",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withPlan({ rows: 3000 }, async (pg, dir, config) => {
      const env = { DB_URL: pg.url, RIVET_STATE_URL: `${pg.url}?schema=traces` };
      const run = await spawnCli(["run", "-c", config], { cwd: dir, env });
      assert.equal(run.code, 0, run.stderr);

      const stored = (await pg.psql("SELECT trace_json FROM traces.run_trace")).trim();
      assert.notEqual(stored, "", "a trace is stored");
      const trace = JSON.parse(stored) as RunTrace;
      const runId = (await pg.psql("SELECT run_id FROM traces.export_metrics")).trim();
      assert.equal(trace.runId, runId, "under the run id of the metrics row");
      assert.equal(trace.exportName, "traced");
      assert.equal(trace.omittedChunks, undefined);

      // 3000 rows in windows of 250: chunks 0..11, each once (one attempt), completed.
      assert.deepEqual(
        trace.chunks.map((c) => c.chunk).sort((a, b) => a - b),
        Array.from({ length: 12 }, (_, i) => i),
      );
      for (const c of trace.chunks) {
        assert.equal(c.attempt, 1);
        assert.equal(c.outcome, "completed", JSON.stringify(c));
        assert.equal(c.rows, 250);
        assert.ok((c.bytes ?? 0) > 250 * 50, `bytes of chunk ${c.chunk}: ${c.bytes}`);
        assert.ok(c.endMs! >= c.startMs);
        assert.match(c.range ?? "", /^\d+ \.\. \d+$/);
      }
      assert.deepEqual([...new Set(trace.chunks.map((c) => c.lane))].sort(), [0, 1, 2]);
      assert.deepEqual(trace.lanes, ["worker 1", "worker 2", "worker 3"]);
      // No two chunks overlap on one lane: a lane is one worker.
      for (const lane of [0, 1, 2]) {
        const on = trace.chunks.filter((c) => c.lane === lane);
        for (let i = 1; i < on.length; i++) assert.ok(on[i]!.startMs >= on[i - 1]!.endMs!);
      }

      assert.ok(trace.samples.length > 0 && trace.samples.length <= TRACE_LIMITS.samples);
      assert.equal(trace.samples.at(-1)!.rows, 3000, "the samples count the rows read");
      assert.ok(trace.samples.every((s) => s.rssBytes > 0));

      const again = await spawnCli(["run", "-c", config], { cwd: dir, env });
      assert.equal(again.code, 0, again.stderr);
      const count = await pg.psql("SELECT count(*) FROM traces.run_trace");
      assert.equal(count.trim(), "2", "one trace per run");
    }),
});

Deno.test({
  name: "a trace that cannot be stored only warns state.trace_failed; the run and metrics stand",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withPlan({ rows: 600 }, async (pg, dir, config) => {
      const rivet = () => spawnCli(["run", "-c", config], { cwd: dir, env: { DB_URL: pg.url } });
      const first = await rivet();
      assert.equal(first.code, 0, first.stderr);
      {
        await using state = await openStateStore(dir);
        const trace = await state.latestRunTrace("traced");
        assert.deepEqual(trace?.chunks.map((c) => c.chunk).sort(), [0, 1, 2]);
      }
      // rivet report: the page to stdout with -o -, to its default place otherwise.
      const printed = await spawnCli(["report", "-c", config, "-o", "-"], { cwd: dir });
      assert.equal(printed.code, 0, printed.stderr);
      assert.match(printed.stdout, /^<!DOCTYPE html>[^]*id="summary"[^]*<\/html>\n$/);
      assert.equal(printed.stderr, "");
      const written = await spawnCli(["report", "-c", config], { cwd: dir });
      assert.equal(written.code, 0, written.stderr);
      const path = /report: (.+)\n/.exec(written.stderr)?.[1] ?? "";
      assert.match(path, /\.rivet\/runs\/traced_\d{8}T\d{6}\.\d{3}\/report\.html$/);
      assert.match(await Deno.readTextFile(path), /id="summary"/);
      const unknown = await spawnCli(["report", "-c", config, "--run-id", "traced_x"], {
        cwd: dir,
      });
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /no run 'traced_x' is recorded/);
      // The state file loses its trace table (a damaged file): the next run cannot store one.
      const db = new DatabaseSync(stateDbPath(dir));
      db.exec("DROP TABLE run_trace");
      db.close();
      const second = await rivet();
      assert.equal(second.code, 0, second.stderr);
      assert.match(second.stderr, /could not record the run's trace/);
      await using state = await openStateStore(dir);
      assert.equal((await state.listMetrics({ last: 10 })).length, 2, "metrics of both runs");
    }),
});

// Reading row 1 fails with a serialization failure (SQLSTATE 40001, transient) while the table
// `gate_closed` holds a row: the test opens the gate once the state store shows chunk 0 failed.
// The gate is on `v`, so the plan's MIN/MAX of `id` never reads it.
const GATE = `
  CREATE TABLE gate_closed (x int); INSERT INTO gate_closed VALUES (1);
  CREATE FUNCTION gate(i int, v text) RETURNS text STABLE LANGUAGE plpgsql AS $$
  BEGIN
    IF i = 1 AND EXISTS (SELECT 1 FROM gate_closed) THEN
      RAISE EXCEPTION 'injected failure of row 1' USING ERRCODE = '40001';
    END IF;
    RETURN v;
  END $$;
  CREATE VIEW trv AS SELECT id, gate(id, v) AS v FROM tr;`;

/** A test of the plan of `trv` (3000 rows behind the gate) with `tuning`. */
function gatedTest(
  name: string,
  tuning: string,
  body: (pg: PgServer, dir: string, config: string) => Promise<void>,
) {
  Deno.test({
    name,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () => withPlan({ rows: 3000, table: "trv", tuning, setup: GATE }, body),
  });
}

gatedTest(
  "a chunk that fails once and is retried is in the trace twice: retried, then completed",
  // No retry inside a chunk: the failure fails the attempt, and the chunk is claimed again.
  "{batch_size: 50, max_retries: 0, retry_backoff_ms: 200}, chunk_max_attempts: 30",
  async (pg, dir, config) => {
    const env = { DB_URL: pg.url, RIVET_STATE_URL: `${pg.url}?schema=traces` };
    const running = spawnCli(["run", "-c", config, "--report"], { cwd: dir, env });
    const failedOnce = "SELECT count(*) FROM traces.chunk_task " +
      "WHERE chunk_index = 0 AND status = 'failed'";
    const deadline = Date.now() + 60_000;
    while ((await pg.psql(failedOnce).catch(() => "0")).trim() !== "1") {
      if (Date.now() > deadline) {
        await pg.psql("DELETE FROM gate_closed");
        const run = await running;
        assert.fail(`chunk 0 never failed: exit ${run.code}\n${run.stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await pg.psql("DELETE FROM gate_closed");
    const run = await running;
    assert.equal(run.code, 0, run.stderr);

    const trace = JSON.parse(
      (await pg.psql("SELECT trace_json FROM traces.run_trace")).trim(),
    ) as RunTrace;
    const zero = trace.chunks.filter((c) => c.chunk === 0);
    assert.ok(zero.length >= 2, JSON.stringify(zero));
    assert.deepEqual(zero.map((c) => c.attempt), zero.map((_, i) => i + 1), "each attempt once");
    assert.ok(zero.slice(0, -1).every((c) => c.outcome === "retried"), JSON.stringify(zero));
    assert.match(zero[0]!.error ?? "", /injected failure of row 1/);
    assert.equal(zero.at(-1)!.outcome, "completed");
    assert.equal(zero.at(-1)!.rows, 250);
    // Every other chunk once, completed; 3000 rows in all.
    const others = trace.chunks.filter((c) => c.chunk !== 0);
    assert.deepEqual(
      others.map((c) => c.chunk).sort((a, b) => a - b),
      [...Array(12).keys()].slice(1),
    );
    assert.ok(others.every((c) => c.outcome === "completed" && c.attempt === 1));
    const completedRows = trace.chunks.filter((c) => c.outcome === "completed")
      .reduce((sum, c) => sum + c.rows!, 0);
    assert.equal(completedRows, 3000);

    // The page of `run --report`, opened in headless Chromium.
    const page = /report page: (.+)\n/.exec(run.stderr)?.[1];
    assert.ok(page, run.stderr);
    const load = await loadPage(page);
    assert.deepEqual(load.requests, [], "nothing fetched from the network");
    assert.deepEqual(load.console, [], "no console message");
    const bars = [
      ...load.dom.matchAll(/<rect class="k ([a-z ]+)" data-c="(\d+)" data-a="(\d+)"/g),
    ]
      .map((m) => ({ classes: m[1]!.split(" "), chunk: Number(m[2]), attempt: Number(m[3]) }));
    // Every chunk attempt of the trace appears once in the timeline.
    assert.deepEqual(
      bars.map((b) => `${b.chunk}.${b.attempt}`).sort(),
      trace.chunks.map((c) => `${c.chunk}.${c.attempt}`).sort(),
    );
    // The failed attempt of chunk 0 is marked (retried), its retry too.
    const first = bars.find((b) => b.chunk === 0 && b.attempt === 1)!;
    assert.ok(first.classes.includes("r"), JSON.stringify(first));
    assert.ok(bars.find((b) => b.chunk === 0 && b.attempt === 2)!.classes.includes("x"));
    // The totals are those of rivet metrics.
    const metrics = await spawnCli(["metrics", "-c", config, "--json"], { cwd: dir, env });
    const [m] = JSON.parse(metrics.stdout).runs;
    const summary = /<[^>]+id="summary"[^>]*>/.exec(load.dom)![0];
    assert.match(summary, new RegExp(`data-rows="${m.rows}"`));
    assert.match(summary, new RegExp(`data-files="${m.files}"`));
    assert.match(summary, new RegExp(`data-bytes="${m.bytes}"`));
    await Deno.mkdir("out/test-artifacts", { recursive: true });
    await screenshot(page, `${Deno.cwd()}/out/test-artifacts/report-run.png`);
  },
);

gatedTest(
  "a run that fails and is resumed on another host: one trace and one lane group per process",
  "{batch_size: 50, max_retries: 0}, chunk_max_attempts: 1",
  async (pg, dir, config) => {
    const run = (host: string, ...flags: string[]) =>
      spawnCli(["run", "-c", config, ...flags], {
        cwd: dir,
        env: { DB_URL: pg.url, RIVET_TEST_HOSTNAME: host },
      });
    const failed = await run("host-a");
    assert.notEqual(failed.code, 0, failed.stderr);
    await pg.psql("DELETE FROM gate_closed");
    const resumed = await run("host-b", "--resume", "--report");
    assert.equal(resumed.code, 0, resumed.stderr);

    await using state = await openStateStore(dir);
    const [metrics] = await state.listMetrics({ exportName: "traced", last: 1 });
    const traces = await state.readRunTraces(metrics!.runId, "traced");
    assert.deepEqual(traces.map((t) => [t.host, t.status]), [
      ["host-a", "failed"],
      ["host-b", "success"],
    ]);
    const zero = (t: RunTrace) => t.chunks.filter((c) => c.chunk === 0).map((c) => c.outcome);
    assert.deepEqual(zero(traces[0]!), ["failed"]);
    assert.deepEqual(zero(traces[1]!), ["completed"]);
    // Between them, each chunk completed once: the resume ran only what the first left.
    const completed = traces.flatMap((t) =>
      t.chunks.filter((c) => c.outcome === "completed").map((c) => c.chunk)
    );
    assert.deepEqual(completed.sort((a, b) => a - b), [...Array(12).keys()]);

    const page = /report page: (.+)\n/.exec(resumed.stderr)?.[1];
    assert.ok(page, resumed.stderr);
    const html = await Deno.readTextFile(page);
    const groups = [...html.matchAll(/<text class="ex"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
    assert.deepEqual(groups, [
      "traced · process 1/2 on host-a, failed",
      "traced · process 2/2 on host-b, ok",
    ]);
    const bars = [...html.matchAll(/<rect class="k [^"]*" data-c="(\d+)" data-a="(\d+)"/g)];
    assert.equal(bars.length, traces[0]!.chunks.length + traces[1]!.chunks.length);
    // The summary is the run's, both processes' rows summed: the whole table.
    const all = (await state.listMetrics({ exportName: "traced", last: 5 }))
      .filter((m) => m.runId === metrics!.runId);
    assert.equal(all.length, 2, "one metrics row per process");
    const summary = /<section id="summary"[^>]*>/.exec(html)![0];
    assert.match(summary, /data-rows="3000"/);
    assert.match(
      summary,
      new RegExp(`data-files="${all[0]!.filesProduced! + all[1]!.filesProduced!}"`),
    );
    assert.match(summary, /data-exit-class="ok"/);
    assert.match(html, /<li class="error">[^]*?process 1\/2: [^<]*injected failure of row 1/);
  },
);

Deno.test({
  name: "a chunk whose worker crashed is in the trace and on the page as retried, then completed",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withPlan({ rows: 3000 }, async (pg, dir, config) => {
      // The first worker dies right after committing its first file, before reporting it.
      const run = await spawnCli(["run", "-c", config, "--report"], {
        cwd: dir,
        env: { DB_URL: pg.url, RIVET_TEST_CRASH_AT: "worker:after_file_write" },
      });
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stderr, /chunk \d+ failed \(attempt 1\): chunk worker \d crashed/);
      const page = /report page: (.+)\n/.exec(run.stderr)?.[1];
      assert.ok(page, run.stderr);
      const bars = [
        ...(await Deno.readTextFile(page)).matchAll(
          /<rect class="k ([a-z ]+)" data-c="(\d+)" data-a="(\d+)"/g,
        ),
      ].map((m) => ({ classes: m[1]!.split(" "), chunk: Number(m[2]), attempt: Number(m[3]) }));
      const crashed = bars.filter((b) => b.classes.includes("r"));
      assert.equal(crashed.length, 1, JSON.stringify(bars));
      const again = bars.filter((b) => b.chunk === crashed[0]!.chunk);
      assert.deepEqual(again.map((b) => [b.attempt, b.classes]), [
        [1, ["r"]],
        [2, ["c", "x", "q"]],
      ], "the rerun is attempt 2, after its committed file was moved aside");
      const completed = bars.filter((b) => b.classes.includes("c")).map((b) => b.chunk);
      assert.deepEqual(completed.sort((a, b) => a - b), [...Array(12).keys()]);
    }),
});

Deno.test({
  name: "a process killed mid-run leaves the trace it saved so far; the resume's page draws it",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withPlan({
      rows: 3000,
      table: "slow",
      // About 1 s per chunk of 250 rows: the crash after chunk 8 comes some 3 s into the run,
      // past the trace's first checkpoints.
      setup: `CREATE FUNCTION nap(v text) RETURNS text STABLE LANGUAGE sql
                AS 'SELECT v FROM pg_sleep(0.004)';
              CREATE VIEW slow AS SELECT id, nap(v) AS v FROM tr;`,
    }, async (pg, dir, config) => {
      const run = (host: string, env: Record<string, string>, ...flags: string[]) =>
        spawnCli(["run", "-c", config, ...flags], {
          cwd: dir,
          env: { DB_URL: pg.url, RIVET_TEST_HOSTNAME: host, ...env },
        });
      const killed = await run("host-a", { RIVET_TEST_CRASH_AT: "after_chunk_file:8" });
      assert.equal(killed.code, 86, killed.stderr);
      const resumed = await run("host-b", {}, "--resume", "--report");
      assert.equal(resumed.code, 0, resumed.stderr);

      await using state = await openStateStore(dir);
      const [metrics] = await state.listMetrics({ exportName: "traced", last: 1 });
      const traces = await state.readRunTraces(metrics!.runId, "traced");
      assert.deepEqual(traces.map((t) => [t.host, t.status, t.finishedAt === undefined]), [
        ["host-a", undefined, true],
        ["host-b", "success", false],
      ]);
      const done = traces[0]!.chunks.filter((c) => c.outcome === "completed");
      assert.ok(done.length >= 1, `the killed process's checkpoint: ${JSON.stringify(traces[0])}`);
      const html = await Deno.readTextFile(/report page: (.+)\n/.exec(resumed.stderr)![1]!);
      const groups = [...html.matchAll(/<text class="ex"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
      assert.deepEqual(groups, [
        "traced · process 1/2 on host-a, no end recorded (killed, or still running)",
        "traced · process 2/2 on host-b, ok",
      ]);
    }),
});
