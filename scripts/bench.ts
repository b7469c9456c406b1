/**
 * `deno task bench [--engines postgres,mysql] [--rows N] [--mysql-rows N] [--runs 3]
 * [--small-rows N] [--no-parallel] [--json] [--no-cache]`: rivet against the database floor on the `narrow`
 * fixture (`_bench_pg.ts`, `_bench_mysql.ts`), for each engine in turn; results in the README's
 * "Performance" section.
 *
 * For each round (at least 3, the order rotating so that no command always runs first) it times,
 * as whole processes under `/usr/bin/time -v` (peak RSS):
 * - the floor: PostgreSQL `psql -c "COPY (SELECT * FROM narrow) TO STDOUT (FORMAT binary)"`,
 *   MySQL `mariadb --quick -e "SELECT * FROM narrow"`, both to /dev/null;
 * - `deno run -A cli.ts run -c <tmp config>` to Parquet (zstd);
 * - the same to CSV;
 * then prints medians of wall seconds, rows/s, peak RSS, output size and the ratio to the floor,
 * with the targets (PostgreSQL: Parquet ≤ 2.5×, CSV ≤ 2×, RSS ≤ 256 MB; MySQL: the same ratios,
 * RSS ≤ 300 MB). A second, smaller table size (`--small-rows`, default 1M, read through a
 * `WHERE id <= N` query) shows that peak RSS does not grow with the table. `--json` prints the
 * same figures as JSON on stdout. Then (unless `--no-parallel`) the parallel engines: a chunked
 * Parquet export with `parallel: 1` against `parallel: 2`, and the subprocess engine's
 * per-child start-up cost (`_bench_parallel.ts`). With `--s3`, a ~1 GB CSV export streamed to
 * s3rver: throughput and peak RSS (`_bench_s3.ts`).
 *
 * PostgreSQL keeps its data in `.bench/pgdata` between runs (`--no-cache`: a throwaway cluster),
 * so the 10M-row table is loaded once; MariaDB is always a throwaway server, loaded each run
 * (`--mysql-rows`, default `--rows`). Configs and outputs live in a temp folder removed after
 * each run. A benchmark, not a test: it asserts only that every rivet run exits 0 with the
 * expected row count. When rivet cannot read an engine yet (one tiny run fails first), that
 * engine reports its floor only, says why, and the command exits 1.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type BenchEngine, measureProcess, median, sizeOfFiles } from "./_bench_measure.ts";
import { pgEngine, startBenchPg } from "./_bench_pg.ts";
import { startBenchMysql } from "./_bench_mysql.ts";
import { benchParallel, type ParallelReport, renderParallel } from "./_bench_parallel.ts";
import { benchS3, type S3BenchReport } from "./_bench_s3.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const CACHE_DIR = `${ROOT}/.bench/pgdata`;

/** What a row of the report measures. */
type Tool = "floor" | "parquet" | "csv";

/** Engines of a bench report: those this script starts, and SQL Server (`bench_mssql.ts`). */
type EngineName = BenchEngine["name"];
/** Engines this script starts itself, in the order they run. */
const ENGINES = ["postgres", "mysql"] as const;
type LocalEngine = typeof ENGINES[number];

/** Targets per engine and tool: ratio to the floor and peak RSS. */
const TARGETS: Readonly<
  Record<EngineName, Readonly<Record<Tool, { ratio?: number; rssMb?: number }>>>
> = {
  postgres: { floor: {}, parquet: { ratio: 2.5, rssMb: 256 }, csv: { ratio: 2, rssMb: 256 } },
  mysql: { floor: {}, parquet: { ratio: 2.5, rssMb: 300 }, csv: { ratio: 2, rssMb: 300 } },
  mssql: { floor: {}, parquet: { ratio: 2.5, rssMb: 300 }, csv: { ratio: 2, rssMb: 300 } },
};

/** Medians of one command at one table size. */
export interface BenchRow {
  readonly engine: EngineName;
  /** What the floor ran, e.g. `psql COPY binary`. */
  readonly floorLabel: string;
  readonly tool: Tool;
  readonly rows: number;
  readonly runs: number;
  readonly wallSeconds: number;
  readonly wallSecondsAll: readonly number[];
  readonly rowsPerSecond: number;
  readonly peakRssMb: number;
  readonly peakRssMbMax: number;
  readonly outputBytes: number;
  readonly files: number;
  /** Median wall / median floor wall (1 for the floor). */
  readonly ratio: number;
  readonly targetRatio?: number;
  readonly targetRssMb?: number;
  /** PASS when every target of the row is met. */
  readonly verdict: "PASS" | "MISS" | "-";
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

/** The SQL a size reads: the whole table, or its first `rows` ids (the same in both dialects). */
function selectFor(rows: number, tableRows: number): string {
  return rows >= tableRows ? "SELECT * FROM narrow" : `SELECT * FROM narrow WHERE id <= ${rows}`;
}

/**
 * The rivet config of one timed run: the whole table, or a `WHERE id <= rows` query.
 *
 * @param engine Source type and `columns:` overrides for a query.
 * @param options Output format, rows to read, rows in the table.
 * @returns YAML; the URL is read from `RIVET_BENCH_URL`.
 */
export function configYaml(
  engine: Pick<BenchEngine, "source" | "queryColumns">,
  options: { tool: "parquet" | "csv"; rows: number; tableRows: number },
): string {
  const { tool, rows, tableRows } = options;
  const overrides = Object.entries(engine.queryColumns);
  const what = rows >= tableRows ? ["    table: narrow"] : [
    `    query: "${selectFor(rows, tableRows)}"`,
    ...(overrides.length === 0 ? [] : [
      "    columns:",
      ...overrides.map(([column, type]) => `      ${column}: "${type}"`),
    ]),
  ];
  return [
    "source:",
    `  type: ${engine.source.type}`,
    "  url_env: RIVET_BENCH_URL",
    "  tuning:",
    "    profile: fast",
    "exports:",
    `  - name: narrow_${tool}`,
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

async function runFloor(engine: BenchEngine, rows: number, tableRows: number): Promise<Sample> {
  const m = await engine.floor(selectFor(rows, tableRows));
  if (m.code !== 0) {
    throw new Error(`the ${engine.name} floor (${engine.floorLabel}) failed: ${m.stderr}`);
  }
  return { wallSeconds: m.wallSeconds, peakRssMb: m.peakRssMb, outputBytes: 0, files: 0 };
}

async function runRivet(
  engine: BenchEngine,
  tool: "parquet" | "csv",
  sizes: { rows: number; tableRows: number },
): Promise<Sample> {
  const { rows, tableRows } = sizes;
  const dir = await Deno.makeTempDir({ prefix: "rivet_bench_" });
  try {
    await Deno.writeTextFile(`${dir}/bench.yaml`, configYaml(engine, { tool, rows, tableRows }));
    const m = await measureProcess(Deno.execPath(), {
      args: [
        "run",
        "-A",
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
        `rivet run (${engine.name} → ${tool}, ${rows} rows) exited with ${m.code}:\n${m.stderr}`,
      );
    }
    const manifest = JSON.parse(await Deno.readTextFile(`${dir}/out/manifest.json`));
    if (manifest.row_count !== rows) {
      throw new Error(`rivet run (${tool}) wrote ${manifest.row_count} rows, expected ${rows}`);
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
 * Times floor, Parquet and CSV `runs` times each at one table size, rotating their order per
 * round, and reduces the samples to medians.
 *
 * @param engine The server.
 * @param options Rows to read, rows in the table, rounds, whether rivet is timed at all.
 * @returns One row per tool.
 */
async function benchSize(
  engine: BenchEngine,
  options: { rows: number; tableRows: number; runs: number; floorOnly: boolean },
): Promise<BenchRow[]> {
  const { rows, tableRows, runs } = options;
  const tools: Tool[] = options.floorOnly ? ["floor"] : ["floor", "parquet", "csv"];
  const samples: Record<Tool, Sample[]> = { floor: [], parquet: [], csv: [] };
  for (let round = 0; round < runs; round++) {
    const order = tools.map((_, i) => tools[(i + round) % tools.length]!);
    for (const tool of order) {
      const sample = tool === "floor"
        ? await runFloor(engine, rows, tableRows)
        : await runRivet(engine, tool, { rows, tableRows });
      samples[tool].push(sample);
      log(
        `  ${engine.name} ${fmtRows(rows)} round ${round + 1}/${runs} ${tool.padEnd(7)} ` +
          `${sample.wallSeconds.toFixed(2)} s, ${sample.peakRssMb.toFixed(0)} MB RSS`,
      );
    }
  }
  const floorWall = median(samples.floor.map((s) => s.wallSeconds));
  return tools.map((tool) => {
    const list = samples[tool];
    const wall = median(list.map((s) => s.wallSeconds));
    const rss = median(list.map((s) => s.peakRssMb));
    const ratio = wall / floorWall;
    const target = TARGETS[engine.name][tool];
    const checks = [
      ...(target.ratio === undefined ? [] : [ratio <= target.ratio]),
      ...(target.rssMb === undefined ? [] : [rss <= target.rssMb]),
    ];
    return {
      engine: engine.name,
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

export function fmtRows(n: number): string {
  if (n >= 1e6 && n % 1e5 === 0) return `${n / 1e6}M`;
  if (n >= 1e3 && n % 100 === 0) return `${n / 1e3}k`;
  return String(n);
}

export function fmtBytes(n: number): string {
  if (n === 0) return "-";
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : `${(n / 1024).toFixed(0)} KB`;
}

/**
 * Renders the report as a fixed-width text table.
 *
 * @param rows Results of every size.
 * @returns The table, one line per tool and size.
 */
export function renderTable(rows: readonly BenchRow[]): string {
  const head = [
    "engine",
    "rows",
    "command",
    "wall s",
    "rows/s",
    "RSS MB",
    "output",
    "× floor",
    "target",
    "verdict",
  ];
  const body = rows.map((r) => [
    r.engine,
    fmtRows(r.rows),
    r.tool === "floor"
      ? `floor (${r.floorLabel})`
      : `rivet → ${r.tool}${r.tool === "parquet" ? " zstd" : ""}`,
    r.wallSeconds.toFixed(2),
    Math.round(r.rowsPerSecond).toLocaleString("en-US"),
    r.peakRssMb.toFixed(0),
    fmtBytes(r.outputBytes),
    r.ratio.toFixed(2),
    [
      r.targetRatio === undefined ? "" : `≤ ${r.targetRatio}×`,
      r.targetRssMb === undefined ? "" : `≤ ${r.targetRssMb} MB`,
    ].filter(Boolean).join(", "),
    r.verdict === "-" ? "" : r.verdict,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i >= 3 && i <= 7 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}

export function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text.replaceAll("_", ""));
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`--${name} must be a whole number, got '${text}'`);
  }
  return value;
}

/**
 * Parses `--engines`: a comma-separated subset of the known engines, in their fixed order.
 *
 * @param text The flag's value (undefined: every engine).
 * @returns The engines to run.
 */
export function parseEngines(text: string | undefined): LocalEngine[] {
  if (text === undefined) return [...ENGINES];
  const asked = text.split(",").map((e) => e.trim()).filter((e) => e.length > 0);
  const unknown = asked.filter((e) => !(ENGINES as readonly string[]).includes(e));
  if (unknown.length > 0 || asked.length === 0) {
    throw new Error(
      `--engines takes a comma-separated list of ${ENGINES.join(", ")}, got '${text}'`,
    );
  }
  return ENGINES.filter((e) => asked.includes(e));
}

/** What one engine's part of the run produced. */
export interface EngineResult {
  readonly rows: BenchRow[];
  readonly version: string;
  /** Why rivet was not timed (it could not read this engine), if so. */
  readonly rivetError?: string;
  /** The parallel engines' figures, unless `--no-parallel`. */
  readonly parallel?: ParallelReport;
  /** The 1 GB upload to s3rver, with `--s3`. */
  readonly s3?: S3BenchReport;
}

/**
 * Loads the fixture, checks that rivet can read the engine with one tiny run, then times every
 * size. A rivet that cannot read the engine yet leaves the floor rows and the reason.
 *
 * @param engine The server, already started (or reached).
 * @param options Table size, smaller size (0: none), rounds, and the optional parts.
 * @returns Rows per tool and size, the server version, and why rivet was not timed, if so.
 */
export async function benchEngine(
  engine: BenchEngine,
  options: { rows: number; smallRows: number; runs: number; parallel: boolean; s3: boolean },
): Promise<EngineResult> {
  const { rows, smallRows, runs } = options;
  const load = await engine.ensureNarrow(rows);
  log(
    load.built
      ? `Loaded ${engine.name} narrow with ${fmtRows(rows)} rows in ${load.seconds.toFixed(1)} s`
      : `Reusing ${engine.name} narrow with ${fmtRows(rows)} rows`,
  );
  // Warm the cache once so the first timed command does not pay for reading the table from disk.
  await runFloor(engine, rows, rows);
  let rivetError: string | undefined;
  try {
    await runRivet(engine, "csv", { rows: Math.min(rows, 1000), tableRows: rows });
  } catch (error) {
    if (!(error instanceof RivetRunError)) throw error;
    rivetError = error.message;
    log(
      `rivet cannot read ${engine.product} yet; timing its floor only. The probe run said:\n` +
        error.message,
    );
  }
  const floorOnly = rivetError !== undefined;
  const results: BenchRow[] = [];
  log(`Timing ${runs} rounds of ${engine.name} at ${fmtRows(rows)} rows…`);
  results.push(...await benchSize(engine, { rows, tableRows: rows, runs, floorOnly }));
  if (smallRows > 0 && smallRows < rows) {
    log(
      `Timing ${runs} rounds of ${engine.name} at ${fmtRows(smallRows)} rows ` +
        "(RSS must not grow with the table)…",
    );
    results.push(...await benchSize(engine, { rows: smallRows, tableRows: rows, runs, floorOnly }));
  }
  let parallel: ParallelReport | undefined;
  if (options.parallel && !floorOnly) {
    log(
      `Timing ${runs} rounds of ${engine.name} parallel engines (chunked 1 vs 2, child start-up)…`,
    );
    parallel = await benchParallel(engine, { rows, runs, root: ROOT, log });
  }
  let s3: S3BenchReport | undefined;
  if (options.s3 && !floorOnly) {
    log(`Timing ${runs} rounds of ${engine.name} → s3rver (CSV, narrow twice)…`);
    s3 = await benchS3(engine, { rows, runs, root: ROOT, log });
  }
  return {
    rows: results,
    version: engine.version,
    ...(rivetError === undefined ? {} : { rivetError }),
    ...(parallel ? { parallel } : {}),
    ...(s3 ? { s3 } : {}),
  };
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      engines: { type: "string" },
      rows: { type: "string" },
      "mysql-rows": { type: "string" },
      runs: { type: "string" },
      "small-rows": { type: "string" },
      "no-parallel": { type: "boolean", default: false },
      s3: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      "no-cache": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "deno task bench [--engines postgres,mysql (both)] [--rows N (10000000)] " +
        "[--mysql-rows N (= --rows)] [--runs N (3)] [--small-rows N (1000000, 0 = skip)] " +
        "[--no-parallel] [--s3 (1 GB CSV to s3rver)] [--json] [--no-cache (PostgreSQL; MariaDB is always throwaway)]",
    );
    return 0;
  }
  const engines = parseEngines(values.engines);
  const rows = positiveInt("rows", values.rows, 10_000_000);
  const mysqlRows = positiveInt("mysql-rows", values["mysql-rows"], rows);
  const runs = Math.max(1, positiveInt("runs", values.runs, 3));
  const smallRows = positiveInt("small-rows", values["small-rows"], 1_000_000);
  if (rows < 1) throw new Error("--rows must be at least 1");
  if (mysqlRows < 1) throw new Error("--mysql-rows must be at least 1");

  const results: BenchRow[] = [];
  const versions: Partial<Record<EngineName, string>> = {};
  const rivetErrors: Partial<Record<EngineName, string>> = {};
  const parallel: ParallelReport[] = [];
  const s3Reports: S3BenchReport[] = [];
  for (const name of engines) {
    const options = { rows, smallRows, runs, parallel: !values["no-parallel"], s3: values.s3 };
    const result = name === "postgres"
      ? await benchPostgres({ ...options, noCache: values["no-cache"] })
      : await benchMysql({ ...options, rows: mysqlRows });
    results.push(...result.rows);
    if (result.parallel) parallel.push(result.parallel);
    if (result.s3) s3Reports.push(result.s3);
    versions[name] = result.version;
    if (result.rivetError !== undefined) rivetErrors[name] = result.rivetError;
  }

  const report = {
    fixture: "narrow (bigint, int, numeric(12,2), text, timestamptz)",
    engines,
    rows,
    ...(engines.includes("mysql") ? { mysqlRows } : {}),
    smallRows: smallRows > 0 && smallRows < rows ? smallRows : undefined,
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
  };
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    const servers = [
      ...(versions.postgres === undefined ? [] : [`PostgreSQL ${versions.postgres}`]),
      ...(versions.mysql === undefined ? [] : [`MariaDB ${versions.mysql}`]),
    ];
    console.log(
      `\nnarrow, ${runs === 1 ? "one run" : `medians of ${runs} runs`}; ${servers.join(", ")}, ` +
        `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs\n`,
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

async function benchPostgres(
  options: {
    rows: number;
    smallRows: number;
    runs: number;
    parallel: boolean;
    s3: boolean;
    noCache: boolean;
  },
): Promise<EngineResult> {
  log(`Starting PostgreSQL (${options.noCache ? "throwaway" : `cached in ${CACHE_DIR}`})…`);
  await using engine = pgEngine(
    await startBenchPg({
      sharedBuffers: "512MB",
      ...(options.noCache ? {} : { cacheDir: CACHE_DIR }),
    }),
  );
  log(`PostgreSQL ${engine.version}`);
  return await benchEngine(engine, options);
}

async function benchMysql(
  options: { rows: number; smallRows: number; runs: number; parallel: boolean; s3: boolean },
): Promise<EngineResult> {
  log("Starting MariaDB (throwaway)…");
  await using engine = await startBenchMysql();
  log(`MariaDB ${engine.version}`);
  return await benchEngine(engine, options);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
