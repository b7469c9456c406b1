/**
 * End to end: what answers the database. A real PgBouncer (the Debian package) in front of a real
 * PostgreSQL, in session and in transaction pooling, and a direct MariaDB. ProxySQL and MaxScale
 * are not packaged for Debian: their classification is tested as a pure function over the probe
 * answers (`src/sources/_pooler_test.ts`).
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { type PgServer, startPostgres } from "../_helpers/pg_server.ts";
import { startPgBouncer } from "../_helpers/pgbouncer.ts";
import { startMariaDb } from "../_helpers/mariadb_server.ts";
import { runCli } from "../_helpers/cli.ts";

/** A config with two exports of table `t` from the database at `url`. */
async function twoExports(type: "postgres" | "mysql", url: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "rivet.yaml");
  await Deno.writeTextFile(
    path,
    `source:\n  type: ${type}\n  url: ${url}\nexports:\n` +
      ["a", "b"].map((name) =>
        `  - name: ${name}\n    query: SELECT id FROM t\n    format: csv\n` +
        `    destination: { type: local, path: ${dir}/out/${name} }\n`
      ).join(""),
  );
  return path;
}

function count(text: string, phrase: string): number {
  return text.split(phrase).length - 1;
}

const TRANSACTION_POOLER = "PostgreSQL answers through a transaction pooler";
const POOLER = "PostgreSQL answers through a connection pooler or proxy";

/** Opens three sessions at once through the pooler, so it keeps three server connections. */
async function warmPool(pg: PgServer, port: number): Promise<void> {
  const sleeper = () =>
    new Deno.Command("psql", {
      args: ["-h", "127.0.0.1", "-p", String(port), "-U", pg.user, "-d", pg.database, "-Atc"]
        .concat("SELECT pg_sleep(0.3)"),
      stdout: "null",
      stderr: "piped",
    }).output();
  for (const out of await Promise.all([sleeper(), sleeper(), sleeper()])) {
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
  }
}

Deno.test("pooler detection on PostgreSQL", async (t) => {
  await using pg = await startPostgres();
  await pg.psql("CREATE TABLE t AS SELECT i::int8 AS id FROM generate_series(1, 100) i;");

  await t.step("direct: no pooler warning", async () => {
    const res = await runCli(["run", "-c", await twoExports("postgres", pg.url)]);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(count(res.stderr, "answers through"), 0, res.stderr);
  });

  await t.step(
    "PgBouncer with its default settings: rivet logs in, exports, and warns once per run",
    async () => {
      await using bouncer = await startPgBouncer({ serverPort: pg.port, poolMode: "session" });
      const res = await runCli(["run", "-c", await twoExports("postgres", bouncer.url), "--json"]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout).total_rows, 200);
      assert.equal(count(res.stderr, POOLER), 1, res.stderr);
      assert.match(res.stderr, /the backend pid \(\d+\) is not the one announced at login/);
      assert.equal(count(res.stderr, TRANSACTION_POOLER), 0, res.stderr);

      // `rivet apply` runs the exports of a plan through the same run events: once, too.
      const config = await twoExports("postgres", bouncer.url);
      const planFile = join(dirname(config), "plan.json");
      const plan = await runCli(["plan", "-c", config, "--format", "json", "-o", planFile]);
      assert.equal(plan.code, 0, plan.stderr);
      const applied = await runCli(["apply", planFile]);
      assert.equal(applied.code, 0, applied.stderr);
      assert.equal(count(applied.stderr, POOLER), 1, applied.stderr);
    },
  );

  await t.step(
    "PgBouncer pool_mode=transaction: the backend pid drifts, one source.pooler_transaction",
    async () => {
      // Round robin hands consecutive transactions of one client to different servers once the
      // pool holds several: what a busy transaction pooler does anyway.
      await using bouncer = await startPgBouncer({
        serverPort: pg.port,
        poolMode: "transaction",
        extra: ["server_round_robin = 1"],
      });
      await warmPool(pg, bouncer.port);
      const res = await runCli(["run", "-c", await twoExports("postgres", bouncer.url), "--json"]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout).total_rows, 200, "reads work through the pooler");
      assert.equal(count(res.stderr, TRANSACTION_POOLER), 1, res.stderr);
      assert.match(res.stderr, /two statements of one connection ran on backends \d+ and \d+/);
      assert.equal(count(res.stderr, POOLER), 0, res.stderr);

      // Chunk workers open their own connections: still one warning for the run.
      const dir = await Deno.makeTempDir();
      const chunked = join(dir, "rivet.yaml");
      await Deno.writeTextFile(
        chunked,
        `source:\n  type: postgres\n  url: ${bouncer.url}\nexports:\n` +
          "  - name: c\n    table: t\n    mode: chunked\n    chunk_column: id\n" +
          `    chunk_size: 10\n    parallel: 2\n    format: csv\n` +
          `    destination: { type: local, path: ${dir}/out }\n`,
      );
      await warmPool(pg, bouncer.port);
      const workers = await runCli(["run", "-c", chunked, "--json"]);
      assert.equal(workers.code, 0, workers.stderr);
      assert.equal(JSON.parse(workers.stdout).total_rows, 100);
      assert.equal(count(workers.stderr, TRANSACTION_POOLER), 1, workers.stderr);
    },
  );
});

Deno.test("pooler detection on MariaDB: a direct connection warns nothing", async () => {
  await using db = await startMariaDb();
  await db.sql("CREATE TABLE t (id bigint PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);", {
    database: "rivet",
  });
  const res = await runCli(["run", "-c", await twoExports("mysql", db.url), "--json"]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(JSON.parse(res.stdout).total_rows, 6);
  assert.equal(count(res.stderr, "answers through"), 0, res.stderr);
});
