/**
 * `rivet repair` on live PostgreSQL and MariaDB and on the SQL Server test server, after rows
 * of one chunk's range changed: the dry run lists the flagged chunk and writes nothing; `--report` of another export is refused;
 * `--execute` from a reconcile report writes new files holding exactly the current rows of that
 * range (read back with an independent Parquet reader), leaves every old file byte for byte, logs
 * the new files in the state, and `rivet validate` still passes; a clean export has nothing
 * to repair; a chunk that cannot be re-exported fails the repair (exit 3).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers/cli.ts";
import { readParquet } from "../_helpers/parquet_oracle.ts";
import { AUDIT_ENGINES, withAuditSource } from "./_audit_config.ts";

/** File name → bytes of every file in a folder. */
async function snapshot(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile) out.set(e.name, await Deno.readFile(join(dir, e.name)));
  }
  return out;
}

async function repairFlow(
  t: Deno.TestContext,
  config: string,
  sql: (text: string) => Promise<unknown>,
): Promise<void> {
  const dir = join(config, "..");
  const out = join(dir, "out", "chunks");
  const run = await runCli(["run", "-c", config, "-e", "chunks", "-e", "other"]);
  assert.equal(run.code, 0, run.stderr);
  // Chunk 1 covers ids 71..140: rows go, one changes, and none of the other chunks moves.
  await sql("DELETE FROM items WHERE id BETWEEN 100 AND 104");
  await sql("UPDATE items SET label = 'changed' WHERE id = 120");
  const before = await snapshot(out);

  await t.step("the dry run lists the flagged chunk and writes nothing", async () => {
    const res = await runCli(["repair", "-c", config, "-e", "chunks"]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(
      res.stdout,
      /chunk 1 \[71, 140\]: recorded 70, source now 65 → would re-export this range as new files/,
    );
    assert.match(res.stdout, /\(dry run\)/);
    assert.deepEqual([...(await snapshot(out)).keys()].sort(), [...before.keys()].sort());
  });

  const report = join(dir, "chunks_report.json");
  const otherReport = join(dir, "other_report.json");
  const reconcile = (name: string, path: string) =>
    runCli(["reconcile", "-c", config, "-e", name, "--format", "json", "-o", path]);
  assert.equal((await reconcile("chunks", report)).code, 3);
  assert.equal((await reconcile("other", otherReport)).code, 0);

  await t.step("a report of another export is refused", async () => {
    const res = await runCli([
      ...["repair", "-c", config, "-e", "chunks", "--report", otherReport, "--execute"],
    ]);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /export 'chunks': the report is of export 'other', not this one/);
    assert.deepEqual([...(await snapshot(out)).keys()].sort(), [...before.keys()].sort());
  });

  await t.step("--execute re-exports the range as new files and keeps the old ones", async () => {
    const res = await runCli([
      ...["repair", "-c", config, "-e", "chunks", "--report", report, "--execute"],
    ]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /chunk 1 \[71, 140\]: .*→ repaired: 65 rows in chunks_\S+_chunk1_/);
    assert.match(res.stdout, /outside the manifest/);
    const after = await snapshot(out);
    for (const [name, bytes] of before) {
      assert.deepEqual(after.get(name), bytes, `${name} is unchanged`);
    }
    const added = [...after.keys()].filter((n) => !before.has(n));
    assert.equal(added.length, 1, `one new file, got ${added}`);
    assert.match(added[0]!, /^chunks_\d{8}_\d{6}_chunk1_[0-9a-f]{16}\.parquet$/);
    const { rows } = await readParquet(join(out, added[0]!));
    const ids = rows.map((r) => Number(r.id)).sort((a, b) => a - b);
    const expected = [];
    for (let id = 71; id <= 140; id++) if (id < 100 || id > 104) expected.push(id);
    assert.deepEqual(ids, expected);
    assert.equal(rows.find((r) => Number(r.id) === 120)?.label, "changed");

    const files = await runCli(["state", "files", "-c", config, "-e", "chunks", "-l", "1"]);
    assert.ok(files.stdout.includes(added[0]!), files.stdout);
    const validate = await runCli(["validate", "-c", config, "-e", "chunks"]);
    assert.equal(validate.code, 0, validate.stdout + validate.stderr);
  });

  await t.step("a clean export has nothing to repair", async () => {
    const res = await runCli(["repair", "-c", config, "-e", "other", "--execute"]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /repair other: nothing to repair/);
    const missing = await runCli(["repair", "-c", config]);
    assert.equal(missing.code, 2, missing.stderr);
  });

  await t.step("a chunk that cannot be re-exported fails the repair with exit 3", async () => {
    await sql("DROP TABLE items");
    const res = await runCli([
      ...["repair", "-c", config, "-e", "chunks", "--report", report, "--execute"],
    ]);
    assert.equal(res.code, 3, res.stderr);
    assert.match(res.stdout, /chunk 1 \[71, 140\]: .*→ FAILED: /);
    assert.match(res.stderr, /^Error: /m);
    const metrics = await runCli(["metrics", "-c", config, "-e", "chunks", "-l", "1"]);
    assert.match(metrics.stdout, /chunks +failed/);
  });
}

for (const engine of AUDIT_ENGINES) {
  Deno.test({
    name: `rivet repair on ${engine}: dry run, foreign report, --execute, nothing to do`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: (t) => withAuditSource(engine, (config, sql) => repairFlow(t, config, sql)),
  });
}
