/**
 * `rivet reconcile` on live PostgreSQL and MariaDB and on the SQL Server test server (after a
 * `run --reconcile` of a chunked and a full export): after a checkpointed chunked run every
 * chunk matches and the verified boundary moves; rows deleted from one chunk's range afterwards make
 * that chunk a MISMATCH (exit 3, pretty and JSON reports, the boundary stays); counts that fail
 * leave chunks unknown (a warning, exit 0); a full or
 * time_window export, an export that never ran, a missing `-e` and `-o` without `--format json`
 * are refused.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers/cli.ts";
import { AUDIT_ENGINES, withAuditSource } from "./_audit_config.ts";

interface JsonReport {
  export: string;
  run_id: string;
  plan_hash: string;
  matched: number;
  mismatched: number;
  unknown: number;
  verified_chunk_index: number | null;
  chunks: {
    chunk_index: number;
    start_key: string;
    end_key: string;
    status: string;
    recorded_rows: number;
    source_rows: number;
  }[];
}

/** The reconcile flow both engines go through; `sql` runs a statement on the source. */
async function auditFlow(
  t: Deno.TestContext,
  config: string,
  sql: (text: string) => Promise<unknown>,
): Promise<void> {
  const dir = join(config, "..");
  await t.step("a fresh run reconciles clean and moves the verified boundary", async () => {
    // run --reconcile counts the whole query with the engine's COUNT (COUNT_BIG on SQL Server).
    const run = await runCli(["run", "-c", config, "--reconcile", "-e", "chunks", "-e", "whole"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stderr.match(/reconcile: {3}MATCH \(source COUNT\(\*\) 300, committed 300\)/g)?.length,
      2,
      run.stderr,
    );
    const res = await runCli(["reconcile", "-c", config, "-e", "chunks"]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /reconcile chunks: run chunks_\S+ \(completed\), chunks on id/);
    assert.match(res.stdout, /summary: 5 match, 0 mismatch, 0 unknown/);
    assert.match(res.stdout, /verified boundary: chunk 4 of run/);
    const progression = await runCli(["state", "progression", "-c", config, "-e", "chunks"]);
    assert.equal(progression.code, 0, progression.stderr);
    assert.match(progression.stdout, /VERIFIED\n.*chunked +chunk 4\n/);
  });

  await t.step("rows deleted from one chunk's range: MISMATCH, exit 3", async () => {
    await sql("DELETE FROM items WHERE id BETWEEN 100 AND 104");
    const res = await runCli(["reconcile", "-c", config, "-e", "chunks"]);
    assert.equal(res.code, 3, res.stderr);
    assert.match(res.stdout, /1\s+\[71, 140\]\s+70\s+65\s+MISMATCH/);
    assert.match(res.stdout, /summary: 4 match, 1 mismatch, 0 unknown/);
    assert.doesNotMatch(res.stdout, /verified boundary/);
    const path = join(dir, "report.json");
    const json = await runCli([
      ...["reconcile", "-c", config, "-e", "chunks", "--format", "json", "-o", path],
    ]);
    assert.equal(json.code, 3, json.stderr);
    const report: JsonReport = JSON.parse(await Deno.readTextFile(path));
    assert.equal(report.export, "chunks");
    assert.equal(report.mismatched, 1);
    const flagged = report.chunks.filter((c) => c.status === "mismatch");
    assert.deepEqual(
      flagged.map((c) => [c.chunk_index, c.start_key, c.end_key, c.recorded_rows, c.source_rows]),
      [[1, "71", "140", 70, 65]],
    );
  });

  await t.step("exports reconcile cannot audit are refused with the reason", async () => {
    const whole = await runCli(["reconcile", "-c", config, "-e", "whole"]);
    assert.equal(whole.code, 1, whole.stderr);
    assert.match(whole.stderr, /export 'whole': reconcile audits chunked exports .*mode full/);
    assert.match(whole.stderr, /run --reconcile/);
    const window = await runCli(["reconcile", "-c", config, "-e", "window"]);
    assert.equal(window.code, 1, window.stderr);
    assert.match(window.stderr, /mode time_window/);
    assert.match(window.stderr, /chunk_by_days/);
    const never = await runCli(["reconcile", "-c", config, "-e", "other"]);
    assert.equal(never.code, 1, never.stderr);
    assert.match(never.stderr, /export 'other': no checkpointed chunk run is recorded/);
  });

  await t.step("chunks whose count fails are unknown: a warning, not a failure", async () => {
    await sql("DROP TABLE items");
    const res = await runCli(["reconcile", "-c", config, "-e", "chunks"]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /summary: 0 match, 0 mismatch, 5 unknown/);
    assert.match(res.stdout, /unknown \(the count failed: /);
    assert.match(res.stderr, /Warning: export 'chunks': 5 chunk\(s\) could not be judged/);
  });

  await t.step("command-line misuse", async () => {
    const noExport = await runCli(["reconcile", "-c", config]);
    assert.equal(noExport.code, 2, noExport.stderr);
    assert.match(noExport.stderr, /--export/);
    const output = await runCli(["reconcile", "-c", config, "-e", "chunks", "-o", "x.json"]);
    assert.equal(output.code, 1, output.stderr);
    assert.match(output.stderr, /--output requires --format json/);
    const unknown = await runCli(["reconcile", "-c", config, "-e", "nope"]);
    assert.equal(unknown.code, 1, unknown.stderr);
  });
}

for (const engine of AUDIT_ENGINES) {
  Deno.test({
    name: `rivet reconcile on ${engine}: clean, then a mismatched chunk, then refusals`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: (t) => withAuditSource(engine, (config, sql) => auditFlow(t, config, sql)),
  });
}
