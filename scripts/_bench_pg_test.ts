import assert from "node:assert/strict";
import { ensureNarrow, narrowSql, pgEngine, pgFloorArgs, startBenchPg } from "./_bench_pg.ts";

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
