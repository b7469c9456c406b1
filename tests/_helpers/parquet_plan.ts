/**
 * The plan the permission tests run: a PostgreSQL table `t` of `rows` ids and md5 texts, and a
 * config in `<root>/etc/plan.yaml` (source through `DATABASE_URL`) with two Parquet exports to
 * `<root>/exports/<name>`: `pq` (one query) and `ck` (chunked, `parallel: 2`).
 *
 * @module
 */
import { join } from "node:path";
import type { PgServer } from "./pg_server.ts";

/** Where {@linkcode writeParquetPlan} put things. */
export interface ParquetPlan {
  /** The config folder (`<root>/etc`). */
  readonly cfg: string;
  /** The outputs' parent (`<root>/exports`). */
  readonly out: string;
  /** The config file. */
  readonly config: string;
}

/**
 * Creates the table and writes the config.
 *
 * @param root An empty folder (real path).
 * @param pg The server.
 * @param rows Rows of `t` (ids 1..rows).
 * @returns The folders and the config path.
 */
export async function writeParquetPlan(
  root: string,
  pg: PgServer,
  rows: number,
): Promise<ParquetPlan> {
  await pg.psql(
    `CREATE TABLE t AS SELECT i::int8 AS id, md5(i::text) AS s FROM generate_series(1, ${rows}) i;
     ALTER TABLE t ADD PRIMARY KEY (id);`,
  );
  const cfg = join(root, "etc");
  const out = join(root, "exports");
  await Deno.mkdir(cfg);
  const config = join(cfg, "plan.yaml");
  const local = (name: string) => `destination: {type: local, path: '${out}/${name}'}`;
  await Deno.writeTextFile(
    config,
    `source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n` +
      `  - {name: pq, table: t, format: parquet, ${local("pq")}}\n` +
      `  - {name: ck, table: t, mode: chunked, chunk_column: id, chunk_size: 300, ` +
      `parallel: 2, format: parquet, ${local("ck")}}\n`,
  );
  return { cfg, out, config };
}
