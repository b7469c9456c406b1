/**
 * The benchmark's PostgreSQL: a cluster kept in `.bench/pgdata` between runs (loading 10M rows
 * takes about a minute), or a throwaway one from `tests/_helpers/pg_server.ts`; plus the `narrow`
 * fixture (below) with a row-count parameter. The wider fixtures (`wide`, `content_items`) are in
 * `_bench_fixtures.ts`; the engine builds them on request.
 *
 * The cached cluster uses the harness's recipe (initdb as the `postgres` user when root, trust
 * auth on loopback, fsync off) with `shared_buffers=512MB`, on a fresh free port each start.
 *
 * @module
 */
import { startPostgres } from "../tests/_helpers/pg_server.ts";
import { type BenchEngine, measureProcess } from "./_bench_measure.ts";
import {
  ensureFixture,
  ensureTable,
  FIXTURE_QUERY_COLUMNS,
  narrowComment,
  narrowSql,
  numericOverrides,
} from "./_bench_fixtures.ts";

export { narrowSql };

/** A running benchmark server. */
export interface BenchPg extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** `postgresql://postgres@127.0.0.1:<port>/postgres` (trust). */
  readonly url: string;
  /** Server version, e.g. `15.18`. */
  readonly version: string;
  /** Runs SQL through psql as the superuser; returns stdout. */
  psql(sql: string): Promise<string>;
  stop(): Promise<void>;
}

/** Options of {@linkcode startBenchPg}. */
export interface StartBenchPgOptions {
  /** Data directory to keep between runs; undefined = throwaway cluster. */
  readonly cacheDir?: string;
  readonly sharedBuffers?: string;
}

/**
 * Starts the benchmark server: the cached cluster when `cacheDir` is given (created on first
 * use), else a throwaway one.
 *
 * @param options Cache folder and shared_buffers.
 * @returns The running server.
 */
export async function startBenchPg(options: StartBenchPgOptions = {}): Promise<BenchPg> {
  const pg = await startPostgres({
    sharedBuffers: options.sharedBuffers ?? "512MB",
    ...(options.cacheDir === undefined ? {} : { dataDir: options.cacheDir }),
    // The fixture is created and filled in one transaction: with wal_level=minimal its rows skip
    // the WAL, so loading is faster and the cache folder stays near the table's size.
    conf: ["wal_level=minimal", "max_wal_senders=0", "max_wal_size=1GB"],
  });
  const psql = (sql: string) => pg.psql(sql);
  return {
    host: pg.host,
    port: pg.port,
    url: pg.url,
    version: (await psql("SHOW server_version")).trim().split(" ")[0]!,
    psql,
    stop: () => pg.stop(),
    [Symbol.asyncDispose]: () => pg.stop(),
  };
}

/**
 * Creates `narrow` with `rows` rows unless a table built for that count is already there.
 *
 * @param pg The server.
 * @param rows Row count.
 * @returns Whether the table was (re)built, and the seconds it took.
 */
export function ensureNarrow(
  pg: BenchPg,
  rows: number,
): Promise<{ built: boolean; seconds: number }> {
  return ensureTable(pg.psql, "narrow", narrowComment(rows), () => narrowSql(rows));
}

/**
 * Arguments of the PostgreSQL floor: psql streaming `COPY (sql) TO STDOUT (FORMAT binary)` as the
 * superuser over TCP.
 *
 * @param pg Host and port.
 * @param sql The query.
 * @returns Arguments for `psql`.
 */
export function pgFloorArgs(pg: { host: string; port: number }, sql: string): string[] {
  return [
    "-h",
    pg.host,
    "-p",
    String(pg.port),
    "-U",
    "postgres",
    "-d",
    "postgres",
    "-X",
    "-q",
    "-v",
    "ON_ERROR_STOP=1",
    "-c",
    `COPY (${sql}) TO STDOUT (FORMAT binary)`,
  ];
}

/**
 * Wraps a benchmark server as a {@linkcode BenchEngine} (stopping the engine stops the server).
 *
 * @param pg The server.
 * @returns The engine.
 */
export function pgEngine(pg: BenchPg): BenchEngine {
  return {
    name: "postgres",
    product: "PostgreSQL",
    version: pg.version,
    floorLabel: "psql COPY binary",
    ensureNarrow: (rows) => ensureNarrow(pg, rows),
    floor: (sql) => measureProcess("psql", { args: pgFloorArgs(pg, sql) }),
    source: { type: "postgres", url: pg.url },
    // A size read through a query pins its numeric columns to the table's types, so both sizes
    // write the same schema.
    queryColumns: numericOverrides(narrowSql(1)),
    fixtures: {
      ensure: (name, rows) => ensureFixture(pg.psql, name, rows),
      queryColumns: FIXTURE_QUERY_COLUMNS,
    },
    stop: () => pg.stop(),
    [Symbol.asyncDispose]: () => pg.stop(),
  };
}
