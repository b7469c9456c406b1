/**
 * The config of the reconcile and repair tests: a checkpointed chunked export over `items` (ids
 * 1..300 in chunks of 70), a second one over ids 1..60, and two exports that are not chunked.
 *
 * Layer: tests.
 *
 * @module
 */

import { join } from "node:path";
import { startPostgres } from "../_helpers/pg_server.ts";
import { startMariaDb } from "../_helpers/mariadb_server.ts";
import { startTdsServer } from "../_helpers/tds_server.ts";

/** The engines the reconcile and repair tests run on. */
export const AUDIT_ENGINES = ["postgres", "mariadb", "sqlserver"] as const;

/**
 * Starts a throwaway server of `engine` with `items` (ids 1..300, `label`, `made_at`), writes the
 * config into a new folder and calls `fn` with its path and a way to run SQL on the source.
 *
 * @param engine The server to start.
 * @param fn The test body.
 */
export async function withAuditSource(
  engine: (typeof AUDIT_ENGINES)[number],
  fn: (config: string, sql: (text: string) => Promise<unknown>) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: `rivet_audit_${engine}_` });
  const config = join(dir, "plan.yaml");
  if (engine === "postgres") {
    await using pg = await startPostgres();
    await pg.psql(`
      CREATE TABLE items (id int8 PRIMARY KEY, label text, made_at timestamptz DEFAULT now());
      INSERT INTO items (id, label) SELECT g, 'item ' || g FROM generate_series(1, 300) g;
    `);
    await Deno.writeTextFile(config, auditConfig(dir, `  type: postgres\n  url: ${pg.url}`));
    await fn(config, (text) => pg.psql(text));
  } else if (engine === "sqlserver") {
    // The in-repo TDS test server (T-SQL translated onto a throwaway PostgreSQL).
    await using srv = await startTdsServer();
    await srv.sql(`
CREATE TABLE items (id bigint NOT NULL PRIMARY KEY, label nvarchar(40) NULL,
  made_at datetime2(6) NULL);
WITH d AS (SELECT n FROM (VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)) AS v(n)),
  nums AS (SELECT a.n + 10 * b.n + 100 * c.n + 1 AS i FROM d a CROSS JOIN d b CROSS JOIN d c)
INSERT INTO items (id, label, made_at)
  SELECT i, CONCAT('item ', i), SYSUTCDATETIME() FROM nums WHERE i <= 300;
`);
    const url = `sqlserver://${encodeURIComponent(srv.login.user)}:${
      encodeURIComponent(srv.login.password)
    }@127.0.0.1:${srv.port}/${srv.database}`;
    await Deno.writeTextFile(config, auditConfig(dir, `  type: mssql\n  url: "${url}"`));
    await fn(config, (text) => srv.sql(text));
  } else {
    await using db = await startMariaDb();
    const sql = (text: string) => db.sql(text, { database: db.database });
    await sql(`
      CREATE TABLE items (id BIGINT PRIMARY KEY, label VARCHAR(40),
        made_at DATETIME(6) DEFAULT CURRENT_TIMESTAMP(6));
      INSERT INTO items (id, label) SELECT seq, CONCAT('item ', seq) FROM seq_1_to_300;
    `);
    await Deno.writeTextFile(config, auditConfig(dir, `  type: mysql\n  url: ${db.url}`));
    await fn(config, sql);
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/**
 * The config text.
 *
 * @param dir The test folder (outputs go to `<dir>/out/<export>`).
 * @param source The indented body of the `source:` block.
 * @returns YAML.
 */
export function auditConfig(dir: string, source: string): string {
  return `source:
${source}
exports:
  - name: chunks
    table: items
    mode: chunked
    chunk_column: id
    chunk_size: 70
    chunk_checkpoint: true
    format: parquet
    destination: { type: local, path: ${dir}/out/chunks }
  - name: other
    query: SELECT id, label FROM items WHERE id <= 60
    mode: chunked
    chunk_column: id
    chunk_size: 50
    chunk_checkpoint: true
    format: csv
    destination: { type: local, path: ${dir}/out/other }
  - name: whole
    table: items
    format: csv
    destination: { type: local, path: ${dir}/out/whole }
  - name: window
    table: items
    mode: time_window
    time_column: made_at
    days_window: 3
    format: csv
    destination: { type: local, path: ${dir}/out/window }
`;
}
