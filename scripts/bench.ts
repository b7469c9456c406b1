/**
 * `deno task bench [--engines postgres,mysql] [--tables narrow,wide,content_items] [--rows N]
 * [--wide-rows N] [--content-rows N] [--mysql-rows N] [--runs 3] [--small-rows N]
 * [--orders-rows N] [--no-orders] [--no-parallel] [--s3] [--json] [--no-cache]`: rivet against the
 * database floor, for each engine in turn; results in the README's "Performance" section.
 *
 * The tables (`_bench_pg.ts`, `_bench_fixtures.ts`, `_bench_mysql.ts`): `narrow` (5 columns,
 * `--rows`, default 10M), `wide` (21 columns with long text, jsonb, uuid and numerics,
 * `--wide-rows`, default 2M) and `content_items` (20 columns, about 4.8 KB of text a row,
 * `--content-rows`, default 2M). PostgreSQL times all three (or those `--tables` names); MariaDB
 * times `narrow` only (`--mysql-rows`, default `--rows`): it has no wide fixtures.
 *
 * For each table and round (at least 3, the order rotating so that no command always runs first)
 * it times, as whole processes under `/usr/bin/time -v` (peak RSS):
 * - the floor: PostgreSQL `psql -c "COPY (SELECT * FROM <table>) TO STDOUT (FORMAT binary)"`,
 *   MySQL `mariadb --quick -e "SELECT * FROM narrow"`, both to /dev/null;
 * - `deno run -A --v8-flags=… cli.ts run -c <tmp config>` to Parquet (zstd), with the V8 flags
 *   the binary is built with (`src/engines/v8_flags.ts`);
 * - the same to CSV;
 * then prints medians of wall seconds, rows/s, peak RSS, output size and the ratio to the floor,
 * with the targets and a PASS/MISS per row (PostgreSQL: Parquet ≤ 1.3× on narrow, ≤ 1.8× on wide,
 * ≤ 2.5× on content_items, CSV ≤ 1.5×, RSS ≤ 256 MB on every table; MariaDB: Parquet ≤ 2.5×, CSV
 * ≤ 2×, RSS ≤ 300 MB), and a summary with one line per table. A second, smaller size of `narrow`
 * (`--small-rows`, default 1M, read through a `WHERE id <= N` query) shows that peak RSS does not
 * grow with the table. `--json` prints the same figures as JSON on stdout. Then (unless
 * `--no-parallel`) the parallel engines on `narrow`: a chunked Parquet export with `parallel: 1`
 * against `parallel: 2`, and the subprocess engine's per-child start-up cost
 * (`_bench_parallel.ts`). With `--s3`, a ~1 GB CSV export streamed to s3rver: throughput and peak
 * RSS (`_bench_s3.ts`). Last, on PostgreSQL, the `orders` size check (`bench_orders_size.ts`,
 * `--orders-rows`, default 1M; `--no-orders` skips it): rivet's Parquet file against DuckDB's zstd
 * re-encode of the same rows, target ≤ 1.10×; it runs only when `@duckdb/node-api` can be
 * imported, and otherwise says why it was skipped.
 *
 * PostgreSQL keeps its data in `.bench/pgdata` between runs (`--no-cache`: a throwaway cluster),
 * so each table is loaded once per row count (a table comment records the count); MariaDB is
 * always a throwaway server, loaded each run. Configs and outputs live in a temp folder removed
 * after each run. A benchmark, not a test: it asserts only that every rivet run exits 0 with the
 * expected row count, and a missed target does not change the exit code. When rivet cannot read
 * a table yet (one tiny run fails first), that table reports its floor only, says why, and the
 * command exits 1. A bad flag exits 1 with one line naming it.
 *
 * @module
 */
import { V8_FLAGS_ARG } from "../src/engines/v8_flags.ts";
import { parseArgs } from "node:util";
import { type BenchEngine, measureProcess, median, sizeOfFiles } from "./_bench_measure.ts";
import { pgEngine, startBenchPg } from "./_bench_pg.ts";
import { startBenchMysql } from "./_bench_mysql.ts";
import { benchParallel, type ParallelReport, renderParallel } from "./_bench_parallel.ts";
import { benchS3, type S3BenchReport } from "./_bench_s3.ts";
import {
  type BenchRow,
  fmtRows,
  renderSummary,
  renderTable,
  TABLE_NAMES,
  type TableName,
  TABLES,
  type Tool,
} from "./_bench_report.ts";
import {
  loadDuckDb,
  measureOrdersSize,
  ordersLine,
  type OrdersReport,
} from "./bench_orders_size.ts";

export {
  type BenchRow,
  fmtBytes,
  fmtRows,
  renderSummary,
  renderTable,
  type TableName,
} from "./_bench_report.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const CACHE_DIR = `${ROOT}/.bench/pgdata`;

/** Engines of a bench report: those this script starts, and SQL Server (`bench_mssql.ts`). */
type EngineName = BenchEngine["name"];
/** Engines this script starts itself, in the order they run. */
const ENGINES = ["postgres", "mysql"] as const;
type LocalEngine = typeof ENGINES[number];

/** A target: ratio to the floor and peak RSS. */
interface Target {
  readonly ratio?: number;
  readonly rssMb?: number;
}

/**
 * The targets of one row of the report.
 *
 * @param engine The engine.
 * @param table The table.
 * @param tool The command.
 * @returns Ratio and RSS limits (none for the floor).
 */
export function targetFor(engine: EngineName, table: TableName, tool: Tool): Target {
  if (tool === "floor") return {};
  if (engine !== "postgres") return { ratio: tool === "parquet" ? 2.5 : 2, rssMb: 300 };
  const parquet: Record<TableName, number> = { narrow: 1.3, wide: 1.8, content_items: 2.5 };
  return { ratio: tool === "parquet" ? parquet[table] : 1.5, rssMb: 256 };
}

interface Sample {
  wallSeconds: number;
  peakRssMb: number;
  outputBytes: number;
  files: number;
}

function log(line: string): void {
  console.error(line);
}

/** One table of a run: its name, its row count and the `columns:` overrides of a query. */
export interface TableSpec {
  readonly table: TableName;
  /** Rows in the table (and of the full size). */
  readonly rows: number;
  /** `columns:` overrides a `WHERE id <= N` size needs to keep the table's types. */
  readonly columns: Readonly<Record<string, string>>;
}

/**
 * The SQL a size reads: the whole table, or its first `rows` ids (the same in every dialect).
 *
 * @param table The table.
 * @param rows Rows to read.
 * @param tableRows Rows in the table.
 * @returns The query.
 */
export function selectFor(table: TableName, rows: number, tableRows: number): string {
  return rows >= tableRows
    ? `SELECT * FROM ${table}`
    : `SELECT * FROM ${table} WHERE id <= ${rows}`;
}

/**
 * The rivet config of one timed run: the whole table, or a `WHERE id <= rows` query with the
 * table's `columns:` overrides. The export is named `<table>_<tool>`.
 *
 * @param source The engine's source type (its URL is read from `RIVET_BENCH_URL`).
 * @param options Table and its overrides, output format, rows to read, rows in the table.
 * @returns YAML.
 */
export function configYaml(
  source: Pick<BenchEngine["source"], "type">,
  options: { spec: TableSpec; tool: "parquet" | "csv"; rows: number },
): string {
  const { spec, tool, rows } = options;
  const overrides = Object.entries(spec.columns);
  const what = rows >= spec.rows ? [`    table: ${spec.table}`] : [
    `    query: "${selectFor(spec.table, rows, spec.rows)}"`,
    ...(overrides.length === 0 ? [] : [
      "    columns:",
      ...overrides.map(([column, type]) => `      ${column}: "${type}"`),
    ]),
  ];
  return [
    "source:",
    `  type: ${source.type}`,
    "  url_env: RIVET_BENCH_URL",
    "  tuning:",
    "    profile: fast",
    "exports:",
    `  - name: ${spec.table}_${tool}`,
    ...what,
    "    mode: full",
    `    format: ${tool}`,
    ...(tool === "parquet" ? ["    compression: zstd"] : []),
    "    destination:",
    "      type: local",
    "      path: out",
    "",
  ].join("\n");
}

async function runFloor(engine: BenchEngine, spec: TableSpec, rows: number): Promise<Sample> {
  const m = await engine.floor(selectFor(spec.table, rows, spec.rows));
  if (m.code !== 0) {
    throw new Error(`the ${engine.name} floor (${engine.floorLabel}) failed: ${m.stderr}`);
  }
  return { wallSeconds: m.wallSeconds, peakRssMb: m.peakRssMb, outputBytes: 0, files: 0 };
}

async function runRivet(
  engine: BenchEngine,
  spec: TableSpec,
  tool: "parquet" | "csv",
  rows: number,
): Promise<Sample> {
  const dir = await Deno.makeTempDir({ prefix: "rivet_bench_" });
  try {
    await Deno.writeTextFile(`${dir}/bench.yaml`, configYaml(engine.source, { spec, tool, rows }));
    const m = await measureProcess(Deno.execPath(), {
      args: [
        "run",
        "-A",
        // The V8 settings the compiled binary is built with (src/engines/v8_flags.ts).
        V8_FLAGS_ARG,
        "--config",
        `${ROOT}/deno.json`,
        `${ROOT}/cli.ts`,
        "run",
        "-c",
        "bench.yaml",
      ],
      cwd: dir,
      env: { RIVET_BENCH_URL: engine.source.url },
    });
    if (m.code !== 0) {
      throw new RivetRunError(
        `rivet run (${engine.name} ${spec.table} → ${tool}, ${rows} rows) exited with ${m.code}:\n` +
          m.stderr,
      );
    }
    const manifest = JSON.parse(await Deno.readTextFile(`${dir}/out/manifest.json`));
    if (manifest.row_count !== rows) {
      throw new Error(
        `rivet run (${spec.table} → ${tool}) wrote ${manifest.row_count} rows, expected ${rows}`,
      );
    }
    const out = await sizeOfFiles(`${dir}/out`, [`.${tool}`]);
    return {
      wallSeconds: m.wallSeconds,
      peakRssMb: m.peakRssMb,
      outputBytes: out.bytes,
      files: out.files,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A rivet run that exited non-zero (as opposed to a failing floor or server). */
class RivetRunError extends Error {
  override name = "RivetRunError";
}

/**
 * Times floor, Parquet and CSV `runs` times each on one table at one size, rotating their order
 * per round, and reduces the samples to medians.
 *
 * @param engine The server.
 * @param spec The table.
 * @param options Rows to read, rounds, whether rivet is timed at all.
 * @returns One row per tool.
 */
async function benchSize(
  engine: BenchEngine,
  spec: TableSpec,
  options: { rows: number; runs: number; floorOnly: boolean },
): Promise<BenchRow[]> {
  const { rows, runs } = options;
  const tools: Tool[] = options.floorOnly ? ["floor"] : ["floor", "parquet", "csv"];
  const samples: Record<Tool, Sample[]> = { floor: [], parquet: [], csv: [] };
  for (let round = 0; round < runs; round++) {
    const order = tools.map((_, i) => tools[(i + round) % tools.length]!);
    for (const tool of order) {
      const sample = tool === "floor"
        ? await runFloor(engine, spec, rows)
        : await runRivet(engine, spec, tool, rows);
      samples[tool].push(sample);
      log(
        `  ${engine.name} ${spec.table} ${fmtRows(rows)} round ${round + 1}/${runs} ` +
          `${tool.padEnd(7)} ${sample.wallSeconds.toFixed(2)} s, ` +
          `${sample.peakRssMb.toFixed(0)} MB RSS`,
      );
    }
  }
  const floorWall = median(samples.floor.map((s) => s.wallSeconds));
  return tools.map((tool) => {
    const list = samples[tool];
    const wall = median(list.map((s) => s.wallSeconds));
    const rss = median(list.map((s) => s.peakRssMb));
    const ratio = wall / floorWall;
    const target = targetFor(engine.name, spec.table, tool);
    const checks = [
      ...(target.ratio === undefined ? [] : [ratio <= target.ratio]),
      ...(target.rssMb === undefined ? [] : [rss <= target.rssMb]),
    ];
    return {
      engine: engine.name,
      table: spec.table,
      floorLabel: engine.floorLabel,
      tool,
      rows,
      runs: list.length,
      wallSeconds: round(wall, 3),
      wallSecondsAll: list.map((s) => round(s.wallSeconds, 3)),
      rowsPerSecond: Math.round(rows / wall),
      peakRssMb: round(rss, 1),
      peakRssMbMax: round(Math.max(...list.map((s) => s.peakRssMb)), 1),
      outputBytes: median(list.map((s) => s.outputBytes)),
      files: median(list.map((s) => s.files)),
      ratio: round(ratio, 3),
      ...(target.ratio === undefined ? {} : { targetRatio: target.ratio }),
      ...(target.rssMb === undefined ? {} : { targetRssMb: target.rssMb }),
      verdict: checks.length === 0 ? "-" : checks.every(Boolean) ? "PASS" : "MISS",
    };
  });
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/**
 * Parses a row count or other whole-number flag.
 *
 * @param name The flag, without dashes.
 * @param text Its value (undefined: `fallback`).
 * @param fallback The default.
 * @returns The number (`_` separators allowed).
 */
export function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text.replaceAll("_", ""));
  if (text.trim() === "" || !Number.isSafeInteger(value) || value < 0) {
    throw new UsageError(`--${name} must be a whole number, got '${text}'`);
  }
  return value;
}

/** A bad flag: `main` prints its message on one line and exits 1. */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * Parses a comma-separated subset of `known`, returned in the order of `known`.
 *
 * @param flag The flag, without dashes.
 * @param text The flag's value (undefined: all of `known`).
 * @param known The accepted names.
 * @returns The names asked for.
 */
function parseSubset<T extends string>(
  flag: string,
  text: string | undefined,
  known: readonly T[],
): T[] {
  if (text === undefined) return [...known];
  const asked = text.split(",").map((e) => e.trim()).filter((e) => e.length > 0);
  const unknown = asked.filter((e) => !(known as readonly string[]).includes(e));
  if (unknown.length > 0 || asked.length === 0) {
    throw new UsageError(
      `--${flag} takes a comma-separated list of ${known.join(", ")}, got '${text}'`,
    );
  }
  return known.filter((e) => asked.includes(e));
}

/**
 * Parses `--engines`: a comma-separated subset of the known engines, in their fixed order.
 *
 * @param text The flag's value (undefined: every engine).
 * @returns The engines to run.
 */
export function parseEngines(text: string | undefined): LocalEngine[] {
  return parseSubset("engines", text, ENGINES);
}

/**
 * Parses `--tables`: a comma-separated subset of narrow, wide, content_items, in that order.
 *
 * @param text The flag's value (undefined: every table).
 * @returns The tables to time.
 */
export function parseTables(text: string | undefined): TableName[] {
  return parseSubset("tables", text, TABLE_NAMES);
}

/** What the command line asked for. */
export interface BenchOptions {
  readonly help: boolean;
  readonly engines: readonly LocalEngine[];
  readonly tables: readonly TableName[];
  /** Rows of each table on PostgreSQL. */
  readonly rows: Readonly<Record<TableName, number>>;
  readonly mysqlRows: number;
  readonly runs: number;
  /** The smaller size of `narrow` (0: none). */
  readonly smallRows: number;
  /** Rows of the orders size check (0: skipped, `--no-orders`). */
  readonly ordersRows: number;
  readonly parallel: boolean;
  readonly s3: boolean;
  readonly json: boolean;
  readonly noCache: boolean;
}

/** The usage line printed by `--help`. */
export const USAGE = "deno task bench [--engines postgres,mysql (both)] " +
  "[--tables narrow,wide,content_items (all; MariaDB: narrow only)] [--rows N (narrow, 10000000)] " +
  "[--wide-rows N (2000000)] [--content-rows N (2000000)] [--mysql-rows N (= --rows)] " +
  "[--runs N (3)] [--small-rows N (narrow, 1000000, 0 = skip)] " +
  "[--orders-rows N (1000000; needs @duckdb/node-api)] [--no-orders] [--no-parallel] " +
  "[--s3 (1 GB CSV to s3rver)] [--json] [--no-cache (PostgreSQL; MariaDB is always throwaway)]";

/**
 * Parses and checks the command line.
 *
 * @param args The arguments after `bench.ts`.
 * @returns The options.
 * @throws {UsageError} An unknown flag, an unknown engine or table, or a bad count.
 */
export function parseOptions(args: readonly string[]): BenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        engines: { type: "string" },
        tables: { type: "string" },
        rows: { type: "string" },
        "wide-rows": { type: "string" },
        "content-rows": { type: "string" },
        "mysql-rows": { type: "string" },
        runs: { type: "string" },
        "small-rows": { type: "string" },
        "orders-rows": { type: "string" },
        "no-orders": { type: "boolean", default: false },
        "no-parallel": { type: "boolean", default: false },
        s3: { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        "no-cache": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    // node:util names the flag ("Unknown option '--x'", "Option '--rows <value>' argument missing").
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const atLeastOne = (flag: string, text: string | undefined, fallback: number) => {
    const value = positiveInt(flag, text, fallback);
    if (value < 1) throw new UsageError(`--${flag} must be at least 1, got '${text}'`);
    return value;
  };
  const narrow = atLeastOne("rows", values.rows, 10_000_000);
  const ordersRows = atLeastOne("orders-rows", values["orders-rows"], 1_000_000);
  return {
    help: values.help,
    engines: parseEngines(values.engines),
    tables: parseTables(values.tables),
    rows: {
      narrow,
      wide: atLeastOne("wide-rows", values["wide-rows"], 2_000_000),
      content_items: atLeastOne("content-rows", values["content-rows"], 2_000_000),
    },
    mysqlRows: atLeastOne("mysql-rows", values["mysql-rows"], narrow),
    runs: atLeastOne("runs", values.runs, 3),
    smallRows: positiveInt("small-rows", values["small-rows"], 1_000_000),
    ordersRows: values["no-orders"] ? 0 : ordersRows,
    parallel: !values["no-parallel"],
    s3: values.s3,
    json: values.json,
    noCache: values["no-cache"],
  };
}

/** What one engine's part of the run produced. */
export interface EngineResult {
  readonly rows: BenchRow[];
  readonly version: string;
  /** Why rivet was not timed on some table (it could not read it), if so. */
  readonly rivetError?: string;
  /** The parallel engines' figures, unless `--no-parallel`. */
  readonly parallel?: ParallelReport;
  /** The 1 GB upload to s3rver, with `--s3`. */
  readonly s3?: S3BenchReport;
}

/** A table and its row count, as asked on the command line. */
export interface TableSize {
  readonly table: TableName;
  readonly rows: number;
}

/**
 * The tables an engine times: those asked for that it can build (`narrow` everywhere, the wider
 * fixtures where the engine has them), with their `columns:` overrides.
 *
 * @param engine The engine (its `queryColumns` and `fixtures`).
 * @param tables The tables asked for.
 * @returns The specs, and the names of the tables the engine skips.
 */
export function tablesFor(
  engine: Pick<BenchEngine, "queryColumns" | "fixtures">,
  tables: readonly TableSize[],
): { specs: TableSpec[]; skipped: TableName[] } {
  const specs: TableSpec[] = [];
  const skipped: TableName[] = [];
  for (const { table, rows } of tables) {
    if (table === "narrow") specs.push({ table, rows, columns: engine.queryColumns });
    else if (engine.fixtures) {
      specs.push({ table, rows, columns: engine.fixtures.queryColumns[table] });
    } else skipped.push(table);
  }
  return { specs, skipped };
}

async function loadTable(engine: BenchEngine, spec: TableSpec): Promise<void> {
  const load = spec.table === "narrow"
    ? await engine.ensureNarrow(spec.rows)
    : await engine.fixtures!.ensure(spec.table, spec.rows);
  const what = `${engine.name} ${spec.table} with ${fmtRows(spec.rows)} rows`;
  log(load.built ? `Loaded ${what} in ${load.seconds.toFixed(1)} s` : `Reusing ${what}`);
}

/**
 * Loads each table, checks that rivet can read it with one tiny run, then times every size. A
 * table rivet cannot read yet leaves its floor rows and the reason.
 *
 * @param engine The server, already started (or reached).
 * @param options Rows of `narrow` (the tables: `tables`, default `narrow` alone), the smaller
 *   size of `narrow` (0: none), rounds, and the optional parts (on `narrow`).
 * @returns Rows per table, tool and size, the server version, and why rivet was not timed, if so.
 */
export async function benchEngine(
  engine: BenchEngine,
  options: {
    rows: number;
    smallRows: number;
    runs: number;
    parallel: boolean;
    s3: boolean;
    tables?: readonly TableSize[];
  },
): Promise<EngineResult> {
  const { rows, smallRows, runs } = options;
  const { specs, skipped } = tablesFor(engine, options.tables ?? [{ table: "narrow", rows }]);
  if (skipped.length > 0) {
    log(`${engine.product} has no ${skipped.join(", ")} fixture; it times narrow only`);
  }
  const results: BenchRow[] = [];
  const errors: string[] = [];
  let narrowReadable = false;
  for (const spec of specs) {
    await loadTable(engine, spec);
    // Warm the cache once so the first timed command does not pay for reading the table from disk.
    await runFloor(engine, spec, spec.rows);
    let floorOnly = false;
    try {
      await runRivet(engine, spec, "csv", Math.min(spec.rows, 1000));
    } catch (error) {
      if (!(error instanceof RivetRunError)) throw error;
      errors.push(error.message);
      floorOnly = true;
      log(
        `rivet cannot read ${engine.product} ${spec.table} yet; timing its floor only. ` +
          `The probe run said:\n${error.message}`,
      );
    }
    if (spec.table === "narrow") narrowReadable = !floorOnly;
    log(`Timing ${runs} rounds of ${engine.name} ${spec.table} at ${fmtRows(spec.rows)} rows…`);
    results.push(...await benchSize(engine, spec, { rows: spec.rows, runs, floorOnly }));
    if (spec.table === "narrow" && smallRows > 0 && smallRows < spec.rows) {
      log(
        `Timing ${runs} rounds of ${engine.name} narrow at ${fmtRows(smallRows)} rows ` +
          "(RSS must not grow with the table)…",
      );
      results.push(...await benchSize(engine, spec, { rows: smallRows, runs, floorOnly }));
    }
  }
  const narrowRows = specs.find((s) => s.table === "narrow")?.rows ?? rows;
  let parallel: ParallelReport | undefined;
  if (options.parallel && narrowReadable) {
    log(
      `Timing ${runs} rounds of ${engine.name} parallel engines (chunked 1 vs 2, child start-up)…`,
    );
    parallel = await benchParallel(engine, { rows: narrowRows, runs, root: ROOT, log });
  }
  let s3: S3BenchReport | undefined;
  if (options.s3 && narrowReadable) {
    log(`Timing ${runs} rounds of ${engine.name} → s3rver (CSV, narrow twice)…`);
    s3 = await benchS3(engine, { rows: narrowRows, runs, root: ROOT, log });
  }
  return {
    rows: results,
    version: engine.version,
    ...(errors.length === 0 ? {} : { rivetError: errors.join("\n\n") }),
    ...(parallel ? { parallel } : {}),
    ...(s3 ? { s3 } : {}),
  };
}

/** The orders size check's outcome: the measurement, or why it was skipped. */
export type OrdersOutcome = OrdersReport | { readonly skipped: string };

async function main(args: string[]): Promise<number> {
  const options = parseOptions(args);
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  const { engines, runs, smallRows } = options;
  const results: BenchRow[] = [];
  const versions: Partial<Record<EngineName, string>> = {};
  const rivetErrors: Partial<Record<EngineName, string>> = {};
  const parallel: ParallelReport[] = [];
  const s3Reports: S3BenchReport[] = [];
  let orders: OrdersOutcome | undefined;
  for (const name of engines) {
    const tables = options.tables.map((table) => ({
      table,
      rows: name === "mysql" && table === "narrow" ? options.mysqlRows : options.rows[table],
    }));
    if (name === "mysql" && !options.tables.includes("narrow")) {
      log("MariaDB skipped: it times narrow only, and --tables leaves narrow out");
      continue;
    }
    const common = {
      rows: tables.find((t) => t.table === "narrow")?.rows ?? options.rows.narrow,
      smallRows,
      runs,
      parallel: options.parallel,
      s3: options.s3,
      tables,
    };
    const result: EngineResult & { orders?: OrdersOutcome } = name === "postgres"
      ? await benchPostgres({ ...common, noCache: options.noCache, ordersRows: options.ordersRows })
      : await benchMysql(common);
    results.push(...result.rows);
    if (result.parallel) parallel.push(result.parallel);
    if (result.s3) s3Reports.push(result.s3);
    if (result.orders !== undefined) orders = result.orders;
    versions[name] = result.version;
    if (result.rivetError !== undefined) rivetErrors[name] = result.rivetError;
  }

  const timed = [...new Set(results.map((r) => r.table))];
  const report = {
    tables: Object.fromEntries(timed.map((t) => [t, TABLES[t]])),
    engines,
    rows: Object.fromEntries(timed.map((t) => [t, options.rows[t]])),
    ...(engines.includes("mysql") ? { mysqlRows: options.mysqlRows } : {}),
    smallRows: smallRows > 0 && smallRows < options.rows.narrow && timed.includes("narrow")
      ? smallRows
      : undefined,
    runs,
    postgres: versions.postgres,
    mysql: versions.mysql === undefined ? undefined : `MariaDB ${versions.mysql}`,
    deno: Deno.version.deno,
    cpus: navigator.hardwareConcurrency,
    at: new Date().toISOString(),
    ...(Object.keys(rivetErrors).length === 0 ? {} : { rivetErrors }),
    results,
    ...(parallel.length === 0 ? {} : { parallel }),
    ...(s3Reports.length === 0 ? {} : { s3: s3Reports }),
    ...(orders === undefined ? {} : { orders }),
  };
  if (options.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    const servers = [
      ...(versions.postgres === undefined ? [] : [`PostgreSQL ${versions.postgres}`]),
      ...(versions.mysql === undefined ? [] : [`MariaDB ${versions.mysql}`]),
    ];
    console.log(
      `\n${timed.join(", ")}; ${runs === 1 ? "one run" : `medians of ${runs} runs`}; ` +
        `${servers.join(", ")}, Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs\n`,
    );
    console.log(renderTable(results));
    if (parallel.length > 0) console.log(`\n${renderParallel(parallel)}`);
    for (const r of s3Reports) {
      console.log(
        `\n${r.engine} → s3rver, CSV ${(r.outputBytes / 1024 ** 3).toFixed(2)} GiB ` +
          `(${fmtRows(r.rows)} rows): ${
            r.wallSeconds.toFixed(2)
          } s, ${r.megabytesPerSecond} MiB/s, ` +
          `peak RSS ${r.peakRssMb} MB (target ≤ ${r.targetRssMb} MB: ${r.verdict})`,
      );
    }
    console.log(`\nSummary (ratio to the floor, peak RSS, verdict)\n\n${renderSummary(results)}`);
    if (orders !== undefined) {
      console.log(
        "skipped" in orders
          ? `\norders size check skipped: ${orders.skipped}`
          : `\norders ${fmtRows(orders.rows)}, Parquet zstd against DuckDB's re-encode: ` +
            ordersLine(orders),
      );
    }
    for (const [name, error] of Object.entries(rivetErrors)) {
      console.log(`\n${name}: rivet was not timed, its probe run failed: ${firstLine(error)}`);
    }
  }
  return Object.keys(rivetErrors).length === 0 ? 0 : 1;
}

/** The meaningful line of a failed run's message: rivet's own `error…` line if there is one. */
function firstLine(message: string): string {
  const lines = message.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
  return lines.find((l) => /error/i.test(l) && !l.startsWith("rivet run (")) ?? lines[0] ?? "";
}

type EngineOptions = Parameters<typeof benchEngine>[1];

async function benchPostgres(
  options: EngineOptions & { noCache: boolean; ordersRows: number },
): Promise<EngineResult & { orders?: OrdersOutcome }> {
  log(`Starting PostgreSQL (${options.noCache ? "throwaway" : `cached in ${CACHE_DIR}`})…`);
  const pg = await startBenchPg({
    sharedBuffers: "512MB",
    ...(options.noCache ? {} : { cacheDir: CACHE_DIR }),
  });
  await using engine = pgEngine(pg);
  log(`PostgreSQL ${engine.version}`);
  const result = await benchEngine(engine, options);
  if (options.ordersRows === 0) return result;
  const duckdb = await loadDuckDb();
  if (typeof duckdb === "string") {
    log(`orders size check skipped: ${duckdb}`);
    return { ...result, orders: { skipped: duckdb } };
  }
  log(`Measuring the orders size check at ${fmtRows(options.ordersRows)} rows…`);
  const orders = await measureOrdersSize(pg, { rows: options.ordersRows, duckdb, log });
  log(`orders: ${ordersLine(orders)}`);
  return { ...result, orders };
}

async function benchMysql(options: EngineOptions): Promise<EngineResult> {
  log("Starting MariaDB (throwaway)…");
  await using engine = await startBenchMysql();
  log(`MariaDB ${engine.version}`);
  return await benchEngine(engine, options);
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`bench: ${error.message}\n${USAGE}`);
    Deno.exit(1);
  }
}
