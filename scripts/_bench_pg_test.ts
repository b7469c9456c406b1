import assert from "node:assert/strict";
import { ensureNarrow, narrowSql, pgEngine, pgFloorArgs, startBenchPg } from "./_bench_pg.ts";
import { ensureFixture } from "./_bench_fixtures.ts";
import { TABLES } from "./_bench_report.ts";
import { loadDuckDb, measureOrdersSize } from "./bench_orders_size.ts";

Deno.test("narrowSql puts the row count in the generate_series bound and rejects bad counts", () => {
  assert.match(narrowSql(1234), /generate_series\(1::bigint, 1234\)/);
  assert.throws(() => narrowSql(0), RangeError);
  assert.throws(() => narrowSql(1.5), RangeError);
});

Deno.test("pgFloorArgs streams the query as binary COPY through psql", () => {
  const args = pgFloorArgs({ host: "127.0.0.1", port: 5433 }, "SELECT * FROM narrow");
  assert.deepEqual(args.slice(-2), ["-c", "COPY (SELECT * FROM narrow) TO STDOUT (FORMAT binary)"]);
  assert.ok(args.includes("ON_ERROR_STOP=1"));
});

Deno.test("the cached cluster keeps narrow across restarts and rebuilds it for a new row count", async () => {
  const cache = await Deno.makeTempDir({ prefix: "rivet_bench_cache_" });
  await Deno.chmod(cache, 0o755); // the postgres OS user must reach the data folder
  try {
    {
      await using pg = await startBenchPg({ cacheDir: `${cache}/pgdata`, sharedBuffers: "32MB" });
      assert.match(pg.version, /^\d+/);
      assert.deepEqual((await ensureNarrow(pg, 1000)).built, true);
      assert.equal((await pg.psql("SELECT count(*), sum(id) FROM narrow")).trim(), "1000|500500");
    }
    {
      await using pg = await startBenchPg({ cacheDir: `${cache}/pgdata`, sharedBuffers: "32MB" });
      assert.equal((await ensureNarrow(pg, 1000)).built, false, "reused after a restart");
      assert.equal((await ensureNarrow(pg, 2000)).built, true, "rebuilt for another count");
      // Row 7 of the fixture formulas, computed here: user 1 + 7*7919 % 1e6, amount 7*104729 % 1e7 / 100.
      assert.equal(
        (await pg.psql("SELECT user_id, amount, status, created_at FROM narrow WHERE id = 7"))
          .trim(),
        "55434|7331.03|paid|2024-01-01 00:00:21+00",
      );
      const floor = await pgEngine(pg).floor("SELECT * FROM narrow");
      assert.equal(floor.code, 0, floor.stderr);
    }
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("wide and content_items are built for a row count, with their declared columns, and reused by comment", async () => {
  await using pg = await startBenchPg({ sharedBuffers: "32MB" });
  for (const name of ["wide", "content_items"] as const) {
    assert.equal((await ensureFixture(pg.psql, name, 300)).built, true, `${name} built`);
    assert.equal((await pg.psql(`SELECT count(*), max(id) FROM ${name}`)).trim(), "300|300");
    const columns = await pg.psql(
      `SELECT count(*) FROM information_schema.columns WHERE table_name = '${name}'`,
    );
    assert.equal(Number(columns.trim()), TABLES[name].columns, `${name}: the summary's × columns`);
    assert.equal((await ensureFixture(pg.psql, name, 300)).built, false, `${name} reused`);
    assert.equal((await ensureFixture(pg.psql, name, 250)).built, true, `${name} rebuilt`);
    assert.equal((await pg.psql(`SELECT count(*) FROM ${name}`)).trim(), "250");
  }
  assert.equal((await pg.psql("SELECT to_regclass('wide_sentences') IS NULL")).trim(), "t");
});

Deno.test("the orders size check measures rivet's file against DuckDB's and reuses its table", async () => {
  const duckdb = await loadDuckDb();
  // A dev dependency pinned in deno.json: this tier expects it installed.
  if (typeof duckdb === "string") throw new Error(duckdb);
  await using pg = await startBenchPg({ sharedBuffers: "32MB" });
  const lines: string[] = [];
  const report = await measureOrdersSize(pg, { rows: 2000, duckdb, log: (l) => lines.push(l) });
  assert.equal(report.rows, 2000);
  assert.ok(report.total.rivet > 0 && report.total.duck > 0);
  assert.equal(report.ratio, report.total.rivet / report.total.duck);
  assert.equal(report.verdict, report.ratio <= report.target ? "PASS" : "MISS");
  assert.deepEqual(Object.keys(report.columns), [
    "id",
    "customer_id",
    "status",
    "currency",
    "amount",
    "created_at",
    "notes",
  ]);
  assert.ok(lines.some((l) => l.startsWith("Loaded orders")), lines.join("\n"));
  lines.length = 0;
  await measureOrdersSize(pg, { rows: 2000, duckdb, log: (l) => lines.push(l) });
  assert.ok(!lines.some((l) => l.startsWith("Loaded orders")), "reused by its comment");
});
