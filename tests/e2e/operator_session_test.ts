/**
 * The operator's path as one scripted session, each step a real `rivet` process in the user's
 * working folder, against a live PostgreSQL: `init` scaffolds a config from the database, `doctor`
 * and `check` accept it unchanged, `run --validate --reconcile` exports and verifies it, rows
 * vanish at the source, `reconcile` names the chunk that no longer matches (exit 3), and `repair`
 * shows (dry run) and then re-exports exactly that chunk as new files, leaving every old file as
 * it was. The rows are read back with an independent Parquet reader.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliResult, spawnCli } from "../_helpers/cli.ts";
import { readParquet } from "../_helpers/parquet_oracle.ts";
import { startPostgres } from "../_helpers/pg_server.ts";

const ROWS = 2_000;
const CHUNK = 500;

function ok(res: CliResult, what: string): void {
  assert.equal(res.code, 0, `${what}: exit ${res.code}\n${res.stdout}\n${res.stderr}`);
}

/** Every data file under a folder (names relative to it), with its bytes' SHA-256. */
async function dataFiles(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".parquet")) continue;
    const bytes = await Deno.readFile(join(dir, entry.name));
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    out.set(entry.name, Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""));
  }
  return out;
}

/** The `id` column of some Parquet files, sorted. */
async function idsOf(dir: string, names: Iterable<string>): Promise<number[]> {
  const ids: number[] = [];
  for (const name of names) {
    for (const row of (await readParquet(join(dir, name))).rows) ids.push(Number(row.id));
  }
  return ids.sort((a, b) => a - b);
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

Deno.test({
  name: "operator session: init → doctor → check → run --validate --reconcile → reconcile → repair",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await pg.psql(`
      CREATE TABLE orders (
        id bigint PRIMARY KEY,
        customer text NOT NULL,
        amount numeric(12,2),
        updated_at timestamptz NOT NULL
      );
      INSERT INTO orders
        SELECT g, 'customer ' || (g % 97), (g * 1.25)::numeric(12,2),
               timestamptz '2026-01-01 00:00:00+00' + g * interval '1 minute'
        FROM generate_series(1, ${ROWS}) g;
      ANALYZE orders;`);
    const dir = await Deno.makeTempDir({ prefix: "rivet_operator_" });
    const env = { OPS_DATABASE_URL: pg.url, TZ: "UTC" };
    const rivet = (...args: string[]) => spawnCli(args, { cwd: dir, env });
    const out = join(dir, "out", "orders");
    try {
      await t.step(
        "init scaffolds a chunked export of the table from the live database",
        async () => {
          ok(
            await rivet(
              "init",
              "--source-env",
              "OPS_DATABASE_URL",
              "--table",
              "orders",
              "--mode",
              "chunked",
              "-o",
              "rivet.yaml",
            ),
            "init",
          );
          const yaml = await Deno.readTextFile(join(dir, "rivet.yaml"));
          assert.match(yaml, /url_env: OPS_DATABASE_URL/);
          assert.ok(!yaml.includes(pg.url), "the URL itself is never written");
          assert.match(yaml, /mode: chunked/);
          assert.match(yaml, /chunk_checkpoint: true/);
        },
      );

      await t.step("doctor and check accept the scaffold unchanged", async () => {
        const doctor = await rivet("doctor", "-c", "rivet.yaml");
        ok(doctor, "doctor");
        assert.match(doctor.stdout, /\[OK\] export 'orders': query runs \(4 columns\)/);
        const check = await rivet("check", "-c", "rivet.yaml", "--json");
        ok(check, "check");
        const report = JSON.parse(check.stdout);
        assert.equal(report.ok, true);
        const orders = report.exports.find((e: { export: string }) => e.export === "orders");
        assert.deepEqual(orders.failures, []);
        assert.equal(orders.access.ok, true);
        assert.notEqual(orders.verdict, "UNSAFE");
      });

      await t.step("the operator sizes the chunks (an edit check also accepts)", async () => {
        const path = join(dir, "rivet.yaml");
        const yaml = await Deno.readTextFile(path);
        assert.match(yaml, /chunk_size: \d+/);
        await Deno.writeTextFile(path, yaml.replace(/chunk_size: \d+/, `chunk_size: ${CHUNK}`));
        const check = await rivet("check", "-c", "rivet.yaml", "--json");
        ok(check, "check after the edit");
        const orders = JSON.parse(check.stdout).exports[0];
        assert.equal(orders.strategy, "chunked-windows");
        assert.equal(orders.verdict, "EFFICIENT");
      });

      let firstRun = new Map<string, string>();
      await t.step("run --validate --reconcile exports every row and says so", async () => {
        const run = await rivet("run", "-c", "rivet.yaml", "--validate", "--reconcile", "--json");
        ok(run, "run");
        const summary = JSON.parse(run.stdout);
        const orders = summary.per_export[0];
        assert.equal(orders.status, "success");
        assert.equal(orders.rows, ROWS);
        assert.equal(orders.validated, true);
        assert.equal(orders.reconcile.status, "match");
        assert.equal(orders.reconcile.source_count, ROWS);
        firstRun = await dataFiles(out);
        assert.equal(firstRun.size, ROWS / CHUNK, "one file per chunk");
        assert.deepEqual(await idsOf(out, firstRun.keys()), range(1, ROWS));
        ok(await rivet("reconcile", "-c", "rivet.yaml", "-e", "orders"), "reconcile, all match");
        ok(await rivet("validate", "-c", "rivet.yaml"), "validate");
      });

      await t.step("rows vanish at the source: reconcile names the chunk (exit 3)", async () => {
        await pg.psql("DELETE FROM orders WHERE id BETWEEN 600 AND 649");
        const res = await rivet(
          "reconcile",
          "-c",
          "rivet.yaml",
          "-e",
          "orders",
          "--format",
          "json",
          "-o",
          "report.json",
        );
        assert.equal(res.code, 3, res.stdout + res.stderr);
        const report = JSON.parse(await Deno.readTextFile(join(dir, "report.json")));
        const mismatched = report.chunks.filter((c: { status: string }) => c.status === "mismatch");
        assert.equal(mismatched.length, 1, JSON.stringify(report.chunks));
        assert.equal(mismatched[0].chunk_index, 1);
        assert.deepEqual([mismatched[0].start_key, mismatched[0].end_key], ["501", "1000"]);
        assert.equal(mismatched[0].recorded_rows, CHUNK);
        assert.equal(mismatched[0].source_rows, CHUNK - 50);
      });

      await t.step(
        "repair: a dry run changes nothing, --execute re-exports that chunk",
        async () => {
          const dry = await rivet(
            "repair",
            "-c",
            "rivet.yaml",
            "-e",
            "orders",
            "--report",
            "report.json",
          );
          ok(dry, "repair dry run");
          assert.deepEqual(await dataFiles(out), firstRun, "the dry run wrote nothing");
          const exec = await rivet(
            "repair",
            "-c",
            "rivet.yaml",
            "-e",
            "orders",
            "--report",
            "report.json",
            "--execute",
          );
          ok(exec, "repair --execute");
          const after = await dataFiles(out);
          for (const [name, digest] of firstRun) {
            assert.equal(after.get(name), digest, `${name} is untouched`);
          }
          const added = [...after.keys()].filter((name) => !firstRun.has(name));
          assert.ok(added.length >= 1, "repair wrote new files");
          const expected = range(CHUNK + 1, 2 * CHUNK).filter((id) => id < 600 || id > 649);
          assert.deepEqual(await idsOf(out, added), expected, "exactly the chunk's current rows");
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
