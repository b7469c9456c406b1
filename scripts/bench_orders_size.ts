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
 * @module
 */
import { parseArgs } from "node:util";
import { DuckDBInstance } from "@duckdb/node-api";
import { parquetMetadata } from "hyparquet";
import { stringify } from "yaml";
import { measureProcess } from "./_bench_measure.ts";
import { startBenchPg } from "./_bench_pg.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const TARGET = 1.10;

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
`;
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

async function exportOrders(cli: string, url: string, dir: string): Promise<string> {
  await Deno.writeTextFile(`${dir}/orders.yaml`, stringify(ORDERS_CONFIG));
  const m = await measureProcess(Deno.execPath(), {
    args: ["run", "-A", "--config", `${ROOT}/deno.json`, cli, "run", "-c", "orders.yaml"],
    cwd: dir,
    env: { RIVET_BENCH_URL: url },
  });
  if (m.code !== 0) throw new Error(`rivet run exited with ${m.code}:\n${m.stderr}`);
  console.error(
    `rivet export: ${m.wallSeconds.toFixed(1)} s, peak RSS ${m.peakRssMb.toFixed(0)} MB`,
  );
  const files = [...Deno.readDirSync(`${dir}/out`)].filter((e) => e.name.endsWith(".parquet"));
  if (files.length !== 1) throw new Error(`expected one Parquet file, found ${files.length}`);
  return `${dir}/out/${files[0]!.name}`;
}

async function duckdbReencode(input: string, output: string): Promise<void> {
  const instance = await DuckDBInstance.create(":memory:");
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

/** One line per column, then the total: rivet, DuckDB, ratio, rivet's encodings. */
function render(rivet: Map<string, ColumnSize>, duck: Map<string, ColumnSize>, total: {
  rivet: number;
  duck: number;
}): string {
  const mb = (n: number) => (n / 1e6).toFixed(2).padStart(8);
  const lines = [
    `${"column".padEnd(12)} ${"rivet MB".padStart(8)} ${"duckdb MB".padStart(9)}  ratio  encodings`,
  ];
  for (const [name, r] of rivet) {
    const d = duck.get(name)?.bytes ?? NaN;
    lines.push(
      `${name.padEnd(12)} ${mb(r.bytes)} ${mb(d).padStart(9)}  ${(r.bytes / d).toFixed(2)}×  ${
        r.encodings.join(",")
      }`,
    );
  }
  const ratio = total.rivet / total.duck;
  lines.push(
    `${"file".padEnd(12)} ${mb(total.rivet)} ${mb(total.duck).padStart(9)}  ${
      ratio.toFixed(2)
    }×  ` +
      `target ≤ ${TARGET.toFixed(2)}×: ${ratio <= TARGET ? "PASS" : "MISS"}`,
  );
  return lines.join("\n");
}

async function main(): Promise<void> {
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
    return;
  }
  const rows = Number(values.rows);
  const dir = await Deno.makeTempDir({ prefix: "rivet_orders_" });
  await using pg = await startBenchPg();
  try {
    await pg.psql(ordersSql(rows));
    const rivetFile = await exportOrders(values.cli, pg.url, dir);
    const duckFile = `${dir}/duckdb.parquet`;
    await duckdbReencode(rivetFile, duckFile);
    const rivetBytes = await Deno.readFile(rivetFile);
    const duckBytes = await Deno.readFile(duckFile);
    const rivet = columnSizes(rivetBytes);
    const duck = columnSizes(duckBytes);
    const total = { rivet: rivetBytes.byteLength, duck: duckBytes.byteLength };
    if (values.json) {
      console.log(JSON.stringify({
        rows,
        total,
        ratio: total.rivet / total.duck,
        columns: Object.fromEntries(
          [...rivet].map(([k, v]) => [k, { rivet: v, duckdb: duck.get(k) }]),
        ),
      }));
    } else {
      console.log(`orders, ${rows} rows, Parquet zstd\n${render(rivet, duck, total)}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
