/**
 * The object-store part of `deno task bench --s3`: a CSV export of about 1 GB (the `narrow`
 * table twice, `UNION ALL`) streamed to s3rver, timed as a whole process with its peak RSS. The
 * destination uploads 8 MiB parts as the encoder produces them, so RSS must stay flat
 * (≤ 300 MB) whatever the size of the export.
 *
 * @module
 */
import { type BenchEngine, measureProcess, median } from "./_bench_measure.ts";
import { startS3rver } from "../tests/_helpers/s3rver.ts";

/** Medians of the S3 upload runs. */
export interface S3BenchReport {
  readonly engine: string;
  readonly rows: number;
  readonly runs: number;
  readonly wallSeconds: number;
  readonly outputBytes: number;
  readonly megabytesPerSecond: number;
  readonly peakRssMb: number;
  readonly targetRssMb: number;
  readonly verdict: "PASS" | "MISS";
}

/**
 * Times `runs` CSV exports of `narrow` twice over into a fresh s3rver bucket.
 *
 * @param engine The running database with `narrow` loaded.
 * @param options Rows in `narrow`, rounds, repo root and a logger.
 * @returns Medians of wall time, throughput and peak RSS.
 */
export async function benchS3(
  engine: BenchEngine,
  options: { rows: number; runs: number; root: string; log: (line: string) => void },
): Promise<S3BenchReport> {
  const { runs, root, log } = options;
  await using s3 = await startS3rver({ bucket: "rivet-bench" });
  const samples: { wall: number; rss: number; bytes: number }[] = [];
  for (let round = 0; round < runs; round++) {
    const dir = await Deno.makeTempDir({ prefix: "rivet_bench_s3_" });
    try {
      const prefix = `run${round}/`;
      await Deno.writeTextFile(
        `${dir}/bench.yaml`,
        [
          "source:",
          `  type: ${engine.source.type}`,
          "  url_env: RIVET_BENCH_URL",
          "  tuning:",
          "    profile: fast",
          "exports:",
          "  - name: narrow_s3",
          '    query: "SELECT * FROM narrow UNION ALL SELECT * FROM narrow"',
          ...Object.entries(engine.queryColumns).flatMap(([c, t], i) =>
            i === 0 ? ["    columns:", `      ${c}: "${t}"`] : [`      ${c}: "${t}"`]
          ),
          "    format: csv",
          "    destination:",
          "      type: s3",
          `      bucket: ${s3.bucket}`,
          `      prefix: "${prefix}"`,
          `      endpoint: "${s3.endpoint}"`,
          "      region: us-east-1",
          "      access_key_env: BENCH_S3_KEY",
          "      secret_key_env: BENCH_S3_SECRET",
          "",
        ].join("\n"),
      );
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
          "--summary-output",
          "summary.json",
        ],
        cwd: dir,
        env: {
          RIVET_BENCH_URL: engine.source.url,
          BENCH_S3_KEY: s3.accessKeyId,
          BENCH_S3_SECRET: s3.secretAccessKey,
        },
      });
      if (m.code !== 0) throw new Error(`rivet run to s3rver failed:\n${m.stderr}`);
      const summary = JSON.parse(await Deno.readTextFile(`${dir}/summary.json`));
      const bytes = Number(summary.total_bytes);
      if (summary.total_rows !== options.rows * 2) {
        throw new Error(
          `rivet wrote ${summary.total_rows} rows to s3rver, expected ${options.rows * 2}`,
        );
      }
      samples.push({ wall: m.wallSeconds, rss: m.peakRssMb, bytes });
      log(
        `  ${engine.name} s3 round ${round + 1}/${runs}: ${m.wallSeconds.toFixed(2)} s, ` +
          `${(bytes / 1024 ** 2 / m.wallSeconds).toFixed(1)} MiB/s, ${
            m.peakRssMb.toFixed(0)
          } MB RSS`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
  const wall = median(samples.map((s) => s.wall));
  const bytes = median(samples.map((s) => s.bytes));
  const rss = median(samples.map((s) => s.rss));
  return {
    engine: engine.name,
    rows: options.rows * 2,
    runs,
    wallSeconds: Math.round(wall * 1000) / 1000,
    outputBytes: bytes,
    megabytesPerSecond: Math.round(bytes / 1024 ** 2 / wall * 10) / 10,
    peakRssMb: Math.round(rss),
    targetRssMb: 300,
    verdict: rss <= 300 ? "PASS" : "MISS",
  };
}
