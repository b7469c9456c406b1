/**
 * `deno task bench:orders [--rows N (1000000)] [--cli PATH (this checkout's cli.ts)] [--json]`:
 * the Parquet size of a realistic `orders` table against DuckDB's own zstd re-encode of the same
 * rows, in total and per column. A size check, not a test; the target is rivet ≤ 1.10× DuckDB.
 *
 * It starts a throwaway PostgreSQL, fills `orders` with generate_series (deterministic: values
 * come from hashes of the row number, so a foreign key looks drawn at random, as in real data):
 * `id` bigint, `customer_id` uuid (50,000 distinct), `status` text (5 values), `currency` text
 * (4 values), `amount` numeric(12,2), `created_at` timestamptz (one per second), `notes` text
 * (200 repeated notes, 30% NULL). rivet exports it (`format: parquet`, zstd, profile `fast`);
 * DuckDB (npm:@duckdb/node-api, a dev-only dependency) reads that file and writes it again with
 * `COMPRESSION zstd`. Per column, the compressed bytes of its column chunks (dictionary pages
 * included) are read from each footer, with each chunk's encodings.
 *
 * `--cli` runs another checkout's `cli.ts` (e.g. an older commit unpacked elsewhere), to compare
 * before and after a change on the same rows.
 *
 * The measurement is {@linkcode measureOrdersSize}, on any running server: `deno task bench` runs
 * it on its own PostgreSQL after the timed tables (the table comment records the row count, so a
 * cached cluster loads `orders` once), when {@linkcode loadDuckDb} finds DuckDB.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { parquetMetadata } from "hyparquet";
import { stringify } from "yaml";
import { ensureTable, type Psql } from "./_bench_fixtures.ts";
import { measureProcess } from "./_bench_measure.ts";
import { startBenchPg } from "./_bench_pg.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
/** The target: rivet's file at most this many times DuckDB's. */
export const ORDERS_TARGET = 1.10;

/** The DuckDB module (npm:@duckdb/node-api), loaded on demand. */
export type DuckDb = typeof import("@duckdb/node-api");

/**
 * Loads DuckDB, or says why it cannot be loaded (e.g. its native binding is missing on this
 * platform), so `deno task bench` can skip the size check instead of failing.
 *
 * @param load The import (tests pass a failing one).
 * @returns The module, or the reason as a string.
 */
export async function loadDuckDb(
  load: () => Promise<DuckDb> = () => import("@duckdb/node-api"),
): Promise<DuckDb | string> {
  try {
    return await load();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return `@duckdb/node-api cannot be imported (${message.split("\n")[0]})`;
  }
}

/**
 * The `orders` fixture.
 *
 * @param rows Row count.
 * @returns SQL for psql.
 */
export function ordersSql(rows: number): string {
  if (!Number.isSafeInteger(rows) || rows < 1) throw new RangeError(`bad row count ${rows}`);
  // hashint4 spreads the row number; abs(...::bigint) keeps the modulo non-negative.
  const pick = (salt: number, n: number) => `(abs(hashint4(g + ${salt})::bigint) % ${n})`;
  return `
DROP TABLE IF EXISTS orders;
CREATE TABLE orders (
    id          bigint        NOT NULL,
    customer_id uuid          NOT NULL,
    status      text          NOT NULL,
    currency    text          NOT NULL,
    amount      numeric(12,2) NOT NULL,
    created_at  timestamptz   NOT NULL,
    notes       text
);
INSERT INTO orders
SELECT g,
       md5('customer ' || ${pick(0, 50_000)})::uuid,
       (ARRAY['new','paid','shipped','delivered','cancelled'])[1 + ${pick(1, 5)}],
       (ARRAY['USD','EUR','GBP','JPY'])[1 + ${pick(2, 4)}],
       ${pick(3, 10_000_000)} / 100.0,
       timestamptz '2025-01-01 00:00:00+00' + g * interval '1 second',
       CASE WHEN ${pick(4, 10)} < 3 THEN NULL
            ELSE 'Note ' || ${
    pick(5, 200)
  } || ': leave the parcel with the neighbour if nobody answers'
       END
FROM generate_series(1, ${rows}) AS g;
COMMENT ON TABLE orders IS '${ordersComment(rows)}';
`;
}

function ordersComment(rows: number): string {
  return `rivet bench orders v1 rows=${rows}`;
}

/** Compressed bytes and encodings of one column, summed over a file's row groups. */
export interface ColumnSize {
  readonly bytes: number;
  readonly encodings: readonly string[];
}

/**
 * Per-column compressed sizes from a Parquet footer.
 *
 * @param bytes The file.
 * @returns Column name → size and encodings.
 */
export function columnSizes(bytes: Uint8Array): Map<string, ColumnSize> {
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const metadata = parquetMetadata(file as ArrayBuffer);
  const out = new Map<string, { bytes: number; encodings: Set<string> }>();
  for (const group of metadata.row_groups) {
    for (const chunk of group.columns) {
      const meta = chunk.meta_data!;
      const name = meta.path_in_schema.join(".");
      const entry = out.get(name) ?? { bytes: 0, encodings: new Set<string>() };
      entry.bytes += Number(meta.total_compressed_size);
      for (const e of meta.encodings) entry.encodings.add(e);
      out.set(name, entry);
    }
  }
  return new Map([...out].map(([k, v]) => [k, { bytes: v.bytes, encodings: [...v.encodings] }]));
}

/** The export's config: the whole table, Parquet zstd, profile `fast`. */
const ORDERS_CONFIG = {
  source: { type: "postgres", url_env: "RIVET_BENCH_URL", tuning: { profile: "fast" } },
  exports: [{
    name: "orders",
    table: "orders",
    mode: "full",
    format: "parquet",
    compression: "zstd",
    destination: { type: "local", path: "out" },
  }],
};

async function exportOrders(
  cli: string,
  url: string,
  dir: string,
  log: (line: string) => void,
): Promise<string> {
  await Deno.writeTextFile(`${dir}/orders.yaml`, stringify(ORDERS_CONFIG));
  const m = await measureProcess(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}/deno.json`, cli, "run", "-c", "orders.yaml"],
    cwd: dir,
    env: { RIVET_BENCH_URL: url },
  });
  if (m.code !== 0) throw new Error(`rivet run exited with ${m.code}:\n${m.stderr}`);
  log(`rivet export: ${m.wallSeconds.toFixed(1)} s, peak RSS ${m.peakRssMb.toFixed(0)} MB`);
  const files = [...Deno.readDirSync(`${dir}/out`)].filter((e) => e.name.endsWith(".parquet"));
  if (files.length !== 1) throw new Error(`expected one Parquet file, found ${files.length}`);
  return `${dir}/out/${files[0]!.name}`;
}

async function duckdbReencode(duckdb: DuckDb, input: string, output: string): Promise<void> {
  const instance = await duckdb.DuckDBInstance.create(":memory:");
  const connection = await instance.connect();
  try {
    const quote = (s: string) => `'${s.replaceAll("'", "''")}'`;
    await connection.run(
      `COPY (SELECT * FROM read_parquet(${quote(input)})) TO ${quote(output)} ` +
        "(FORMAT parquet, COMPRESSION zstd)",
    );
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** What the orders size check measured. */
export interface OrdersReport {
  readonly rows: number;
  /** File sizes in bytes. */
  readonly total: { readonly rivet: number; readonly duck: number };
  /** rivet / DuckDB. */
  readonly ratio: number;
  readonly target: number;
  readonly verdict: "PASS" | "MISS";
  /** Per column: rivet's and DuckDB's compressed bytes and encodings. */
  readonly columns: Readonly<Record<string, { rivet: ColumnSize; duckdb: ColumnSize | undefined }>>;
}

/**
 * Fills `orders` with `rows` rows on a running server (unless a table built for that count is
 * there), exports it with rivet, re-encodes rivet's file with DuckDB, and compares the two.
 *
 * @param pg The server: psql and its URL.
 * @param options Rows, the DuckDB module, the `cli.ts` to run, a logger for progress.
 * @returns Sizes, ratio and verdict, in total and per column.
 */
export async function measureOrdersSize(
  pg: { readonly psql: Psql; readonly url: string },
  options: {
    rows: number;
    duckdb: DuckDb;
    cli?: string;
    log?: (line: string) => void;
  },
): Promise<OrdersReport> {
  const { rows, duckdb } = options;
  const log = options.log ?? ((line: string) => console.error(line));
  const load = await ensureTable(pg.psql, "orders", ordersComment(rows), () => ordersSql(rows));
  if (load.built) log(`Loaded orders with ${rows} rows in ${load.seconds.toFixed(1)} s`);
  const dir = await Deno.makeTempDir({ prefix: "rivet_orders_" });
  try {
    const rivetFile = await exportOrders(options.cli ?? `${ROOT}/cli.ts`, pg.url, dir, log);
    const duckFile = `${dir}/duckdb.parquet`;
    await duckdbReencode(duckdb, rivetFile, duckFile);
    const rivetBytes = await Deno.readFile(rivetFile);
    const duckBytes = await Deno.readFile(duckFile);
    const rivet = columnSizes(rivetBytes);
    const duck = columnSizes(duckBytes);
    const total = { rivet: rivetBytes.byteLength, duck: duckBytes.byteLength };
    const ratio = total.rivet / total.duck;
    return {
      rows,
      total,
      ratio,
      target: ORDERS_TARGET,
      verdict: ratio <= ORDERS_TARGET ? "PASS" : "MISS",
      columns: Object.fromEntries(
        [...rivet].map(([k, v]) => [k, { rivet: v, duckdb: duck.get(k) }]),
      ),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The one-line result: both sizes, the ratio, the target and the verdict.
 *
 * @param report The measurement.
 * @returns e.g. `rivet 12.34 MB, DuckDB 11.90 MB: 1.04× (target ≤ 1.10×: PASS)`.
 */
export function ordersLine(report: OrdersReport): string {
  const mb = (n: number) => (n / 1e6).toFixed(2);
  return `rivet ${mb(report.total.rivet)} MB, DuckDB ${mb(report.total.duck)} MB: ` +
    `${report.ratio.toFixed(2)}× (target ≤ ${report.target.toFixed(2)}×: ${report.verdict})`;
}

/**
 * One line per column (rivet, DuckDB, ratio, rivet's encodings), then the file's total.
 *
 * @param report The measurement.
 * @returns The table.
 */
export function renderOrders(report: OrdersReport): string {
  const mb = (n: number) => (n / 1e6).toFixed(2).padStart(8);
  const lines = [
    `${"column".padEnd(12)} ${"rivet MB".padStart(8)} ${"duckdb MB".padStart(9)}  ratio  encodings`,
  ];
  for (const [name, c] of Object.entries(report.columns)) {
    const d = c.duckdb?.bytes ?? NaN;
    lines.push(
      `${name.padEnd(12)} ${mb(c.rivet.bytes)} ${mb(d).padStart(9)}  ${
        (c.rivet.bytes / d).toFixed(2)
      }×  ${c.rivet.encodings.join(",")}`,
    );
  }
  const { total } = report;
  lines.push(
    `${"file".padEnd(12)} ${mb(total.rivet)} ${mb(total.duck).padStart(9)}  ${
      report.ratio.toFixed(2)
    }×  target ≤ ${report.target.toFixed(2)}×: ${report.verdict}`,
  );
  return lines.join("\n");
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rows: { type: "string", default: "1000000" },
      cli: { type: "string", default: `${ROOT}/cli.ts` },
      json: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "deno task bench:orders [--rows N (1000000)] [--cli PATH (this checkout's cli.ts)] [--json]",
    );
    return 0;
  }
  const rows = Number(values.rows.replaceAll("_", ""));
  if (!Number.isSafeInteger(rows) || rows < 1) {
    console.error(
      `bench:orders: --rows must be a whole number of at least 1, got '${values.rows}'`,
    );
    return 1;
  }
  const duckdb = await loadDuckDb();
  if (typeof duckdb === "string") {
    console.error(`bench:orders: ${duckdb}`);
    return 1;
  }
  await using pg = await startBenchPg();
  const report = await measureOrdersSize(pg, { rows, duckdb, cli: values.cli });
  console.log(
    values.json
      ? JSON.stringify(report)
      : `orders, ${rows} rows, Parquet zstd\n${renderOrders(report)}`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main());
