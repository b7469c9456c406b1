/**
 * `rivet check` and `rivet doctor`'s export probe on MariaDB and on the SQL Server test server:
 * the catalog estimate and index lookups of each engine (verdicts EFFICIENT and DEGRADED, the
 * cursor range), the zero-row probe in each dialect (`LIMIT 0`, `TOP 0`: a missing table fails),
 * a lossy column with `--strict` (a source-lossy `datetime2(7)`, an unsigned 64-bit integer for
 * BigQuery).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers/cli.ts";
import { startMariaDb } from "../_helpers/mariadb_server.ts";
import { startTdsServer } from "../_helpers/tds_server.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

async function writeConfig(dir: string, type: string, env: string, exports: string[]) {
  const path = join(dir, `${type}.yaml`);
  await Deno.writeTextFile(
    path,
    `source:\n  type: ${type}\n  url_env: ${env}\nexports:\n` +
      exports.map((e) =>
        `  - { ${e}, format: parquet, destination: { type: local, path: "${dir}/out" } }\n`
      ).join(""),
  );
  return path;
}

async function checkJson(args: string[]): Promise<{ code: number; doc: Json; stderr: string }> {
  const res = await runCli([...args, "--json"]);
  return { code: res.code, doc: JSON.parse(res.stdout), stderr: res.stderr };
}

function byName(doc: Json): Record<string, Json> {
  return Object.fromEntries(doc.exports.map((e: Json) => [e.export, e]));
}

Deno.test({
  name: "rivet check and doctor on MariaDB",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using db = await startMariaDb();
    await db.sql(
      `
      CREATE TABLE items (id INT PRIMARY KEY, changed DATETIME NOT NULL, big BIGINT UNSIGNED,
        n INT NOT NULL, KEY items_changed (changed));
      INSERT INTO items WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 300)
        SELECT i, '2024-01-01' + INTERVAL i MINUTE, i, i % 5 FROM s;
      ANALYZE TABLE items;`,
      { database: db.database },
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_check_mariadb_" });
    Deno.env.set("CHECK_TEST_MARIADB_URL", db.url);
    try {
      const path = await writeConfig(dir, "mysql", "CHECK_TEST_MARIADB_URL", [
        "name: inc, table: items, mode: incremental, cursor_column: changed",
        "name: noidx, table: items, mode: chunked, chunk_column: n, chunk_checkpoint: true",
        "name: gone, table: no_such_table",
      ]);
      const all = await checkJson(["check", "-c", path]);
      assert.equal(all.code, 1, all.stderr);
      const e = byName(all.doc);
      assert.equal(`${e.inc.strategy} ${e.inc.verdict}`, "incremental EFFICIENT");
      assert.ok(e.inc.row_estimate > 0, "the catalog estimates rows");
      assert.deepEqual(e.inc.cursor_range, {
        min: "2024-01-01T00:01:00.000000",
        max: "2024-01-01T05:00:00.000000",
      });
      assert.equal(`${e.noidx.strategy} ${e.noidx.verdict}`, "chunked-windows DEGRADED");
      assert.deepEqual(e.noidx.warnings.map((w: Json) => w.code), ["preflight.column_not_indexed"]);
      assert.equal(e.gone.access.ok, false);
      assert.match(e.gone.access.error.message, /no_such_table/);
      assert.match(all.stderr, /export 'gone' cannot run as configured/);

      const ok = await runCli(["check", "-c", path, "-e", "inc", "--strict"]);
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      const bq = await checkJson([
        "check",
        "-c",
        path,
        "-e",
        "inc",
        "--target",
        "bigquery",
        "--strict",
      ]);
      assert.equal(bq.code, 1, "an unsigned 64-bit integer overflows BigQuery's INT64");
      assert.deepEqual(bq.doc.exports[0].violations.map((v: Json) => `${v.column} ${v.fidelity}`), [
        "big lossy",
      ]);

      const doctor = await runCli(["doctor", "-c", path]);
      assert.equal(doctor.code, 1, doctor.stdout);
      assert.match(doctor.stdout, /\[OK\] export 'inc': query runs \(4 columns\)\n/);
      assert.match(doctor.stdout, /\[FAIL\] export 'gone': .*no_such_table.*\n {2}Hint: /);
    } finally {
      Deno.env.delete("CHECK_TEST_MARIADB_URL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "rivet check and doctor on the SQL Server test server",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using tds = await startTdsServer();
    await tds.sql(`
      CREATE TABLE events (id bigint NOT NULL PRIMARY KEY, at datetime2(7) NOT NULL,
        note nvarchar(20) NULL);
      INSERT INTO events VALUES (1, '2024-01-01T00:00:00', N'a'), (2, '2024-01-02T00:00:00', N'b'),
        (3, '2024-01-03T00:00:00', NULL);`);
    const dir = await Deno.makeTempDir({ prefix: "rivet_check_mssql_" });
    Deno.env.set(
      "CHECK_TEST_MSSQL_URL",
      `sqlserver://${encodeURIComponent(tds.login.user)}:${
        encodeURIComponent(tds.login.password)
      }@${tds.host}:${tds.port}/${tds.database}`,
    );
    try {
      const path = await writeConfig(dir, "mssql", "CHECK_TEST_MSSQL_URL", [
        "name: chunks, table: events, mode: chunked, chunk_column: id, chunk_size: 2, " +
        "chunk_checkpoint: true",
        "name: gone, table: no_such_table",
      ]);
      const all = await checkJson(["check", "-c", path]);
      assert.equal(all.code, 1, all.stderr);
      const e = byName(all.doc);
      assert.equal(`${e.chunks.strategy} ${e.chunks.verdict}`, "chunked-windows EFFICIENT");
      assert.deepEqual(e.chunks.cursor_range, { min: "1", max: "3" });
      assert.equal(e.chunks.row_estimate, 3);
      assert.equal(e.gone.access.ok, false);

      const at = e.chunks.columns.find((c: Json) => c.name === "at");
      assert.equal(`${at.source_type} ${at.fidelity}`, "datetime2(7) lossy");
      const strict = await runCli(["check", "-c", path, "-e", "chunks", "--strict"]);
      assert.equal(strict.code, 1, strict.stdout);
      assert.match(strict.stderr, /--strict: 1 column is lossy or unsupported/);
      assert.match(strict.stdout, / {4}at +datetime2\(7\) +Timestamp<MICROSECOND> +lossy\n/);
      const lenient = await runCli(["check", "-c", path, "-e", "chunks"]);
      assert.equal(lenient.code, 0, lenient.stdout + lenient.stderr);

      const doctor = await runCli(["doctor", "-c", path]);
      assert.equal(doctor.code, 1, doctor.stdout);
      assert.match(doctor.stdout, /\[OK\] export 'chunks': query runs \(3 columns\)\n/);
      assert.match(doctor.stdout, /\[FAIL\] export 'gone': .*no_such_table/);
    } finally {
      Deno.env.delete("CHECK_TEST_MSSQL_URL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
