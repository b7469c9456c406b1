/**
 * The parallel part of `deno task bench`: a chunked Parquet export of `narrow` with `parallel: 1`
 * against `parallel: 2` (the Web Worker engine), and the start-up cost of the subprocess engine
 * (a one-row export in its own `rivet run` process, and four of them with and without
 * `--parallel-export-processes`). Whole processes, timed under `/usr/bin/time -v`, medians of
 * `runs` rounds with the order rotating.
 *
 * @module
 */
import { type BenchEngine, measureProcess, median } from "./_bench_measure.ts";

/** One measured command. */
export interface ParallelRow {
  readonly engine: string;
  /** What was run. */
  readonly label: string;
  readonly rows: number;
  readonly wallSeconds: number;
  readonly wallSecondsAll: readonly number[];
  readonly peakRssMb: number;
  /** Rows per second (chunked rows only). */
  readonly rowsPerSecond?: number;
}

/** The parallel figures of one engine. */
export interface ParallelReport {
  readonly rows: readonly ParallelRow[];
  /** parallel 1 wall / parallel 2 wall. */
  readonly speedup: number;
  /** Median wall of a one-row export in its own process, seconds. */
  readonly childStartupSeconds: number;
}

function chunkedYaml(engine: BenchEngine, parallel: number): string {
  return [
    "source:",
    `  type: ${engine.source.type}`,
    "  url_env: RIVET_BENCH_URL",
    "  tuning:",
    "    profile: fast",
    "exports:",
    "  - name: narrow_chunked",
    "    table: narrow",
    "    mode: chunked",
    "    chunk_column: id",
    "    chunk_count: 8",
    `    parallel: ${parallel}`,
    "    format: parquet",
    "    compression: zstd",
    "    destination:",
    "      type: local",
    "      path: out",
    "",
  ].join("\n");
}

function tinyYaml(engine: BenchEngine, exports: number): string {
  const lines = [
    "source:",
    `  type: ${engine.source.type}`,
    "  url_env: RIVET_BENCH_URL",
    "exports:",
  ];
  for (let i = 0; i < exports; i++) {
    lines.push(
      `  - name: tiny${i}`,
      "    query: SELECT 1 AS x",
      "    format: csv",
      "    destination:",
      "      type: local",
      `      path: out/tiny${i}`,
    );
  }
  return lines.join("\n") + "\n";
}

/**
 * Times the parallel scenarios on an engine whose `narrow` table holds `rows` rows.
 *
 * @param engine The running server.
 * @param options Rows in `narrow`, rounds, repo root and a logger.
 * @returns Medians, the speed-up of parallel 2 and the child start-up cost.
 */
export async function benchParallel(
  engine: BenchEngine,
  options: { rows: number; runs: number; root: string; log: (line: string) => void },
): Promise<ParallelReport> {
  const { rows, runs, root, log } = options;
  const run = async (yaml: string, extra: string[] = []) => {
    const dir = await Deno.makeTempDir({ prefix: "rivet_bench_par_" });
    try {
      await Deno.writeTextFile(`${dir}/bench.yaml`, yaml);
      const m = await measureProcess(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--config",
          `${root}/deno.json`,
          `${root}/cli.ts`,
          "run",
          "-c",
          "bench.yaml",
          ...extra,
        ],
        cwd: dir,
        env: { RIVET_BENCH_URL: engine.source.url },
      });
      if (m.code !== 0) throw new Error(`rivet run ${extra.join(" ")} failed:\n${m.stderr}`);
      return m;
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  };
  const scenarios: { label: string; rows: number; go: () => ReturnType<typeof run> }[] = [
    {
      label: "chunked parquet, parallel 1",
      rows,
      go: () => run(chunkedYaml(engine, 1)),
    },
    {
      label: "chunked parquet, parallel 2",
      rows,
      go: () => run(chunkedYaml(engine, 2)),
    },
    { label: "1 one-row export (process start-up)", rows: 1, go: () => run(tinyYaml(engine, 1)) },
    { label: "4 one-row exports, sequential", rows: 4, go: () => run(tinyYaml(engine, 4)) },
    {
      label: "4 one-row exports, --parallel-export-processes",
      rows: 4,
      go: () => run(tinyYaml(engine, 4), ["--parallel-export-processes"]),
    },
  ];
  const samples = scenarios.map(() => [] as { wall: number; rss: number }[]);
  for (let round = 0; round < runs; round++) {
    for (let k = 0; k < scenarios.length; k++) {
      const i = (k + round) % scenarios.length;
      const m = await scenarios[i]!.go();
      samples[i]!.push({ wall: m.wallSeconds, rss: m.peakRssMb });
      log(
        `  ${engine.name} round ${round + 1}/${runs} ${scenarios[i]!.label}: ` +
          `${m.wallSeconds.toFixed(2)} s, ${m.peakRssMb.toFixed(0)} MB RSS`,
      );
    }
  }
  const result = scenarios.map((s, i): ParallelRow => {
    const wall = median(samples[i]!.map((x) => x.wall));
    return {
      engine: engine.name,
      label: s.label,
      rows: s.rows,
      wallSeconds: Math.round(wall * 1000) / 1000,
      wallSecondsAll: samples[i]!.map((x) => Math.round(x.wall * 1000) / 1000),
      peakRssMb: Math.round(median(samples[i]!.map((x) => x.rss))),
      ...(s.rows > 4 ? { rowsPerSecond: Math.round(s.rows / wall) } : {}),
    };
  });
  return {
    rows: result,
    speedup: Math.round(result[0]!.wallSeconds / result[1]!.wallSeconds * 100) / 100,
    childStartupSeconds: result[2]!.wallSeconds,
  };
}

/**
 * The parallel figures as a text table.
 *
 * @param report One report per engine.
 * @returns The table.
 */
export function renderParallel(reports: readonly ParallelReport[]): string {
  const lines = [
    "| engine | scenario | wall | rows/s | peak RSS |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const report of reports) {
    for (const row of report.rows) {
      lines.push(
        `| ${row.engine} | ${row.label} | ${row.wallSeconds.toFixed(2)} s | ${
          row.rowsPerSecond?.toLocaleString("en-US") ?? "—"
        } | ${row.peakRssMb} MB |`,
      );
    }
    lines.push(
      `| ${report.rows[0]?.engine ?? ""} | speed-up parallel 2 vs 1 | ${report.speedup}× | | |`,
    );
  }
  return lines.join("\n");
}
