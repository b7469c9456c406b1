/**
 * `deno task bench [--rows N] [--runs 3] [--small-rows N] [--json] [--no-cache]`: rivet against
 * the database floor on the `narrow` fixture (PERFORMANCE.md).
 *
 * For each round (at least 3, the order rotating so that no command always runs first) it times,
 * as whole processes under `/usr/bin/time -v` (peak RSS):
 * - the floor: `psql -c "COPY (SELECT * FROM narrow) TO STDOUT (FORMAT binary)" > /dev/null`;
 * - `deno run -A cli.ts run -c <tmp config>` to Parquet (zstd);
 * - the same to CSV;
 * then prints medians of wall seconds, rows/s, peak RSS, output size and the ratio to the floor,
 * with the targets (Parquet ≤ 2.5×, CSV ≤ 2×, RSS ≤ 256 MB). A second, smaller table size
 * (`--small-rows`, default 1M, read through a `WHERE id <= N` query) shows that peak RSS does
 * not grow with the table. `--json` prints the same figures as JSON on stdout.
 *
 * The server keeps its data in `.bench/pgdata` between runs (`--no-cache`: a throwaway cluster),
 * so the 10M-row table is loaded once. Configs and outputs live in a temp folder removed after
 * each run. A benchmark, not a test: it asserts only that every rivet run exits 0 with the
 * expected row count.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { measureProcess, median, sizeOfFiles } from "./_bench_measure.ts";
import { type BenchPg, ensureNarrow, startBenchPg } from "./_bench_pg.ts";

const ROOT = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const CACHE_DIR = `${ROOT}/.bench/pgdata`;

/** What a row of the report measures. */
type Tool = "floor" | "parquet" | "csv";

/** Targets per tool: ratio to the floor and peak RSS. */
const TARGETS: Readonly<Record<Tool, { ratio?: number; rssMb?: number }>> = {
  floor: {},
  parquet: { ratio: 2.5, rssMb: 256 },
  csv: { ratio: 2, rssMb: 256 },
};

/** Medians of one command at one table size. */
export interface BenchRow {
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

/** The SQL a size reads: the whole table, or its first `rows` ids. */
function selectFor(rows: number, tableRows: number): string {
  return rows >= tableRows ? "SELECT * FROM narrow" : `SELECT * FROM narrow WHERE id <= ${rows}`;
}

function configYaml(tool: "parquet" | "csv", rows: number, tableRows: number): string {
  const what = rows >= tableRows ? "    table: narrow" : [
    `    query: "${selectFor(rows, tableRows)}"`,
    "    columns:",
    '      amount: "decimal(12,2)"',
  ].join("\n");
  return [
    "source:",
    "  type: postgres",
    "  url_env: RIVET_BENCH_URL",
    "  tuning:",
    "    profile: fast",
    "exports:",
    `  - name: narrow_${tool}`,
    what,
    "    mode: full",
    `    format: ${tool}`,
    ...(tool === "parquet" ? ["    compression: zstd"] : []),
    "    destination:",
    "      type: local",
    "      path: out",
    "",
  ].join("\n");
}

async function runFloor(pg: BenchPg, rows: number, tableRows: number): Promise<Sample> {
  const m = await measureProcess("psql", {
    args: [
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
      `COPY (${selectFor(rows, tableRows)}) TO STDOUT (FORMAT binary)`,
    ],
  });
  if (m.code !== 0) throw new Error(`the floor (psql COPY) failed: ${m.stderr}`);
  return { wallSeconds: m.wallSeconds, peakRssMb: m.peakRssMb, outputBytes: 0, files: 0 };
}

async function runRivet(
  pg: BenchPg,
  tool: "parquet" | "csv",
  rows: number,
  tableRows: number,
): Promise<Sample> {
  const dir = await Deno.makeTempDir({ prefix: "rivet_bench_" });
  try {
    await Deno.writeTextFile(`${dir}/bench.yaml`, configYaml(tool, rows, tableRows));
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
      env: { RIVET_BENCH_URL: pg.url },
    });
    if (m.code !== 0) {
      throw new Error(`rivet run (${tool}, ${rows} rows) exited with ${m.code}:\n${m.stderr}`);
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

/**
 * Times floor, Parquet and CSV `runs` times each at one table size, rotating their order per
 * round, and reduces the samples to medians.
 *
 * @param pg The server.
 * @param options Rows to read, rows in the table, rounds.
 * @returns One row per tool.
 */
async function benchSize(
  pg: BenchPg,
  options: { rows: number; tableRows: number; runs: number },
): Promise<BenchRow[]> {
  const { rows, tableRows, runs } = options;
  const tools: Tool[] = ["floor", "parquet", "csv"];
  const samples: Record<Tool, Sample[]> = { floor: [], parquet: [], csv: [] };
  for (let round = 0; round < runs; round++) {
    const order = tools.map((_, i) => tools[(i + round) % tools.length]!);
    for (const tool of order) {
      const sample = tool === "floor"
        ? await runFloor(pg, rows, tableRows)
        : await runRivet(pg, tool, rows, tableRows);
      samples[tool].push(sample);
      log(
        `  ${fmtRows(rows)} round ${round + 1}/${runs} ${tool.padEnd(7)} ` +
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
    const target = TARGETS[tool];
    const checks = [
      ...(target.ratio === undefined ? [] : [ratio <= target.ratio]),
      ...(target.rssMb === undefined ? [] : [rss <= target.rssMb]),
    ];
    return {
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

function fmtRows(n: number): string {
  if (n >= 1e6 && n % 1e5 === 0) return `${n / 1e6}M`;
  if (n >= 1e3 && n % 100 === 0) return `${n / 1e3}k`;
  return String(n);
}

function fmtBytes(n: number): string {
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
    fmtRows(r.rows),
    r.tool === "floor"
      ? "floor (psql COPY binary)"
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
    cells.map((c, i) => (i >= 2 && i <= 6 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text.replaceAll("_", ""));
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`--${name} must be a whole number, got '${text}'`);
  }
  return value;
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      rows: { type: "string" },
      runs: { type: "string" },
      "small-rows": { type: "string" },
      json: { type: "boolean", default: false },
      "no-cache": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "deno task bench [--rows N (10000000)] [--runs N (3)] [--small-rows N (1000000, 0 = skip)] " +
        "[--json] [--no-cache]",
    );
    return 0;
  }
  const rows = positiveInt("rows", values.rows, 10_000_000);
  const runs = Math.max(1, positiveInt("runs", values.runs, 3));
  const smallRows = positiveInt("small-rows", values["small-rows"], 1_000_000);
  if (rows < 1) throw new Error("--rows must be at least 1");

  log(`Starting PostgreSQL (${values["no-cache"] ? "throwaway" : `cached in ${CACHE_DIR}`})…`);
  await using pg = await startBenchPg({
    sharedBuffers: "512MB",
    ...(values["no-cache"] ? {} : { cacheDir: CACHE_DIR }),
  });
  log(`PostgreSQL ${pg.version} on ${pg.host}:${pg.port}`);
  const load = await ensureNarrow(pg, rows);
  log(
    load.built
      ? `Loaded narrow with ${fmtRows(rows)} rows in ${load.seconds.toFixed(1)} s`
      : `Reusing narrow with ${fmtRows(rows)} rows`,
  );
  // Warm the cache once so the first timed command does not pay for reading the heap from disk.
  await runFloor(pg, rows, rows);

  const results: BenchRow[] = [];
  log(`Timing ${runs} rounds at ${fmtRows(rows)} rows…`);
  results.push(...await benchSize(pg, { rows, tableRows: rows, runs }));
  if (smallRows > 0 && smallRows < rows) {
    log(`Timing ${runs} rounds at ${fmtRows(smallRows)} rows (RSS must not grow with the table)…`);
    results.push(...await benchSize(pg, { rows: smallRows, tableRows: rows, runs }));
  }

  const report = {
    fixture: "narrow (bigint, int, numeric(12,2), text, timestamptz)",
    rows,
    smallRows: smallRows > 0 && smallRows < rows ? smallRows : undefined,
    runs,
    postgres: pg.version,
    deno: Deno.version.deno,
    cpus: navigator.hardwareConcurrency,
    at: new Date().toISOString(),
    results,
  };
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
  } else {
    console.log(
      `\nnarrow, ${
        runs === 1 ? "one run" : `medians of ${runs} runs`
      }; PostgreSQL ${pg.version}, Deno ${Deno.version.deno}, ` +
        `${navigator.hardwareConcurrency} CPUs\n`,
    );
    console.log(renderTable(results));
  }
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
