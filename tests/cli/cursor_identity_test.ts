/**
 * Cursor identity against a real PostgreSQL: two configs in one folder that reuse an export name
 * no longer share a cursor (the second used to inherit the first's position and export 0 rows
 * with a ✓); a changed query stops at `state.cursor_identity_mismatch` before anything is
 * written, and `state adopt` keeps the position while `state reset` starts over; a cursor stored
 * before identities existed is taken over by the next run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { committedIds } from "../_helpers/exported.ts";
import { SqliteStateStore, stateDbPath } from "../../src/state/mod.ts";

Deno.test({
  name: "cursor identity: a reused export name, a changed query, adopt, reset, an older state file",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await pg.psql(
      `CREATE TABLE a AS SELECT i::int8 AS id FROM generate_series(1, 50) i;
       CREATE TABLE b AS SELECT i::int8 AS id FROM generate_series(1, 30) i;`,
    );
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "rivet_identity_" }));
    const env = { DB_URL: pg.url };
    const config = async (file: string, name: string, query: string, out: string) => {
      const path = join(dir, file);
      await Deno.writeTextFile(
        path,
        `source:\n  type: postgres\n  url_env: DB_URL\nexports:\n` +
          `  - {name: ${name}, query: "${query}", mode: incremental, cursor_column: id, ` +
          `format: csv, destination: {type: local, path: '${dir}/${out}'}}\n`,
      );
      return path;
    };
    const dataFiles = async (out: string) =>
      (await Array.fromAsync(Deno.readDir(join(dir, out)))).map((e) => e.name)
        .filter((n) => n.endsWith(".csv"));
    const a = await config("a.yaml", "orders", "SELECT id FROM a", "out_a");

    await t.step("the first config exports its table and stores its cursor", async () => {
      const res = await spawnCli(["run", "-c", a], { env });
      assert.equal(res.code, 0, res.stderr);
      assert.equal((await committedIds(`${dir}/out_a`)).length, 50);
    });

    await t.step("a second config reusing the name stops before writing anything", async () => {
      const b = await config("b.yaml", "orders", "SELECT id FROM b", "out_b");
      const res = await spawnCli(["run", "-c", b], { env });
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /holds a cursor of 'orders' for other data/);
      assert.match(res.stderr, /rivet state adopt -c \S+b\.yaml -e orders/);
      assert.match(res.stderr, /rename one of the two exports/);
      assert.deepEqual(
        await Array.fromAsync(Deno.readDir(`${dir}/out_b`)).catch(() => []),
        [],
        "no file",
      );
      // Renamed, it gets a cursor of its own and every row.
      const renamed = await config("b.yaml", "orders_b", "SELECT id FROM b", "out_b");
      const ok = await spawnCli(["run", "-c", renamed], { env });
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((await committedIds(`${dir}/out_b`)).length, 30);
    });

    await t.step("a changed query stops; adopt keeps the position, reset starts over", async () => {
      await pg.psql("INSERT INTO a SELECT i FROM generate_series(51, 60) i;");
      await config("a.yaml", "orders", "SELECT id FROM a WHERE id > 0", "out_a");
      const before = await dataFiles("out_a");
      const stopped = await spawnCli(["run", "-c", a], { env });
      assert.equal(stopped.code, 1, stopped.stderr);
      assert.match(stopped.stderr, /state\.cursor_identity_mismatch|for other data/);
      assert.deepEqual(await dataFiles("out_a"), before, "nothing written");

      const adopt = await spawnCli(["state", "adopt", "-c", a, "-e", "orders"], { env });
      assert.equal(adopt.code, 0, adopt.stderr);
      assert.match(adopt.stdout, /Adopted the cursor of export 'orders' for identity [0-9a-f]{16}/);
      const resumed = await spawnCli(["run", "-c", a, "--json"], { env });
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.equal(JSON.parse(resumed.stdout).total_rows, 10, "only the 10 new rows");

      const again = await spawnCli(["state", "adopt", "-c", a, "-e", "orders"], { env });
      assert.match(again.stdout, /Nothing to adopt/);
      const reset = await spawnCli(["state", "reset", "-c", a, "-e", "orders"], { env });
      assert.equal(reset.code, 0, reset.stderr);
      const full = await spawnCli(["run", "-c", a, "--json"], { env });
      assert.equal(full.code, 0, full.stderr);
      assert.equal(JSON.parse(full.stdout).total_rows, 60, "from the start");
    });

    await t.step("a cursor stored before identities existed is taken over", async () => {
      const old = await config("old.yaml", "legacy", "SELECT id FROM a", "out_old");
      {
        // What an older rivet left: a cursor without identity.
        await using state = await SqliteStateStore.open(stateDbPath(dir));
        await state.resetExport("legacy");
        await state.advanceCursor({
          exportName: "legacy",
          lastCursorValue: "55",
          lastRunAt: "2026-01-01T00:00:00.000Z",
        });
      }
      const res = await spawnCli(["run", "-c", old, "--json"], { env });
      assert.equal(res.code, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout).total_rows, 5, "ids 56..60");
      const show = await spawnCli(["state", "show", "-c", old, "--json"], { env });
      const legacy = JSON.parse(show.stdout).cursors.filter((c: { export_name: string }) =>
        c.export_name === "legacy"
      );
      assert.equal(legacy.length, 1);
      assert.match(String(legacy[0].config_identity), /^[0-9a-f]{16}$/);
      assert.equal(legacy[0].last_cursor_value, "60");
    });

    await Deno.remove(dir, { recursive: true });
  },
});
