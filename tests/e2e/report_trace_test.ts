// `rivet run` of a chunked export with `parallel: 3` on a real PostgreSQL, its state in a
// PostgreSQL schema (RIVET_STATE_URL): the run's trace (what `rivet report` draws) is stored with
// every chunk once per attempt, on the lanes of the three workers, with samples of the run that
// end at its row count, bounded by TRACE_LIMITS; a second run keeps both traces. A trace that
// cannot be stored (SQLite state file without its table) only warns: the run succeeds.
import assert from "node:assert/strict";
import type { RunTrace } from "../../src/core/run_trace.ts";
import { TRACE_LIMITS } from "../../src/core/run_trace.ts";
import { openStateStore, stateDbPath } from "../../src/state/mod.ts";
import { DatabaseSync } from "node:sqlite";
import { spawnCli } from "../_helpers/cli.ts";
import { type PgServer, startPostgres } from "../_helpers/pg_server.ts";

/** The plan: windows of 250 rows (3000 rows: chunks 0..11), three workers, state checkpointed. */
const plan = (out: string) =>
  "source: {type: postgres, url_env: DB_URL}\nexports:\n" +
  "  - {name: traced, mode: chunked, table: tr, chunk_column: id, chunk_size: 250, parallel: 3,\n" +
  `     chunk_checkpoint: true, format: csv, tuning: {batch_size: 50}, destination: {type: local, path: '${out}'}}\n`;

/** A PostgreSQL with table `tr` of `rows` rows, a temp folder and the plan in it; both cleaned up. */
async function withPlan(
  rows: number,
  body: (pg: PgServer, dir: string, config: string) => Promise<void>,
): Promise<void> {
  await using pg = await startPostgres();
  await pg.psql(
    "CREATE TABLE tr (id int PRIMARY KEY, v text); " +
      `INSERT INTO tr SELECT g, repeat('v', 50) || g FROM generate_series(1, ${rows}) g;`,
  );
  const dir = await Deno.makeTempDir({ prefix: "rivet_report_trace_" });
  try {
    const config = `${dir}/plan.yaml`;
    await Deno.writeTextFile(config, plan(`${dir}/out`));
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
    withPlan(3000, async (pg, dir, config) => {
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
    withPlan(600, async (pg, dir, config) => {
      const rivet = () => spawnCli(["run", "-c", config], { cwd: dir, env: { DB_URL: pg.url } });
      const first = await rivet();
      assert.equal(first.code, 0, first.stderr);
      {
        await using state = await openStateStore(dir);
        const trace = await state.latestRunTrace("traced");
        assert.deepEqual(trace?.chunks.map((c) => c.chunk).sort(), [0, 1, 2]);
      }
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
