/**
 * Measuring whole processes for `scripts/bench.ts`: wall time, exit code and peak RSS, through
 * `/usr/bin/time -v` when present, else by polling `/proc/<pid>/status` (VmHWM).
 *
 * @module
 */

import type { FixtureName } from "./_bench_fixtures.ts";

/** What one process run cost. */
export interface ProcessMeasure {
  readonly code: number;
  /** Wall-clock seconds from spawn to exit. */
  readonly wallSeconds: number;
  /** Peak resident set size in MiB (0 when it could not be measured). */
  readonly peakRssMb: number;
  /** The child's stderr (without `/usr/bin/time`'s report). */
  readonly stderr: string;
}

/** Options of {@linkcode measureProcess}. */
export interface MeasureProcessOptions {
  readonly args?: readonly string[];
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Force the `/proc` polling fallback (tests). */
  readonly pollProc?: boolean;
}

/**
 * One database engine of the benchmark: how to fill the fixture, time its floor, and point a
 * rivet config at it. Stop it (or `await using` it) when done.
 */
export interface BenchEngine extends AsyncDisposable {
  /** Key of the engine in flags and JSON (`--engines postgres,mysql`; `mssql`: `bench_mssql.ts`). */
  readonly name: "postgres" | "mysql" | "mssql";
  /** Server product, e.g. `PostgreSQL` or `MariaDB`. */
  readonly product: string;
  /** Server version, e.g. `15.18`. */
  readonly version: string;
  /** What the floor runs, for the report, e.g. `psql COPY binary`. */
  readonly floorLabel: string;
  /** Creates `narrow` with `rows` rows unless a table built for that count is there. */
  ensureNarrow(rows: number): Promise<{ built: boolean; seconds: number }>;
  /** Times the floor reading `sql` to /dev/null as a whole process. */
  floor(sql: string): Promise<ProcessMeasure>;
  /** The `source:` block of a rivet config: its type and the URL (passed through `url_env`). */
  readonly source: { readonly type: string; readonly url: string };
  /** `columns:` overrides a query export of `narrow` needs to keep the table's types. */
  readonly queryColumns: Readonly<Record<string, string>>;
  /**
   * The wider fixtures (`wide`, `content_items`), on engines that have them (PostgreSQL): how to
   * build one for a row count (unless already there), and the `columns:` overrides of a query.
   */
  readonly fixtures?: {
    ensure(name: FixtureName, rows: number): Promise<{ built: boolean; seconds: number }>;
    readonly queryColumns: Readonly<Record<FixtureName, Readonly<Record<string, string>>>>;
  };
  stop(): Promise<void>;
}

const TIME_BIN = "/usr/bin/time";
/** First line of GNU time's verbose report, which follows the child's stderr. */
const TIME_MARK = "\tCommand being timed:";

let timeAvailable: boolean | undefined;

function hasTimeBinary(): boolean {
  if (timeAvailable === undefined) {
    try {
      timeAvailable = Deno.statSync(TIME_BIN).isFile;
    } catch {
      timeAvailable = false;
    }
  }
  return timeAvailable;
}

/**
 * Runs a command with stdout discarded and returns its cost. Never throws on a non-zero exit.
 *
 * @param command The program.
 * @param options Arguments, working directory, extra environment.
 * @returns Exit code, wall seconds, peak RSS and stderr.
 */
export async function measureProcess(
  command: string,
  options: MeasureProcessOptions = {},
): Promise<ProcessMeasure> {
  const args = [...(options.args ?? [])];
  const base = {
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(options.env === undefined ? {} : { env: { ...options.env } }),
  } as const;
  if (hasTimeBinary() && !options.pollProc) {
    const started = performance.now();
    const out = await new Deno.Command(TIME_BIN, {
      ...base,
      args: ["-v", command, ...args],
    }).output();
    const wallSeconds = (performance.now() - started) / 1000;
    const text = new TextDecoder().decode(out.stderr);
    const parsed = parseTimeReport(text);
    return { code: out.code, wallSeconds, peakRssMb: parsed.peakRssKb / 1024, stderr: parsed.rest };
  }
  const started = performance.now();
  const child = new Deno.Command(command, { ...base, args }).spawn();
  const stderr = new Response(child.stderr).text();
  let peakKb = 0;
  let done = false;
  const status = child.status.then((s) => {
    done = true;
    return s;
  });
  while (!done) {
    peakKb = Math.max(peakKb, readVmHwmKb(child.pid));
    await Promise.race([status, new Promise((r) => setTimeout(r, 25))]);
  }
  const { code } = await status;
  return {
    code,
    wallSeconds: (performance.now() - started) / 1000,
    peakRssMb: peakKb / 1024,
    stderr: await stderr,
  };
}

/**
 * Splits stderr of a command run under `/usr/bin/time -v` into the child's own text and the peak
 * RSS ("Maximum resident set size (kbytes)" of GNU time's verbose report, which starts with a
 * "Command being timed:" line after the child's output).
 *
 * @param text Whole stderr.
 * @returns Peak RSS in KiB (0 if absent) and the remaining text.
 */
export function parseTimeReport(text: string): { peakRssKb: number; rest: string } {
  const at = text.lastIndexOf(TIME_MARK);
  if (at < 0) return { peakRssKb: 0, rest: text };
  const match = /Maximum resident set size \(kbytes\):\s*(\d+)/.exec(text.slice(at));
  // GNU time also announces a failure just before its report.
  const rest = text.slice(0, at).replace(
    /Command (exited with non-zero status|terminated by signal) \d+\n$/,
    "",
  );
  return { peakRssKb: match ? Number(match[1]) : 0, rest };
}

function readVmHwmKb(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) : 0;
  } catch {
    return 0; // exited between polls
  }
}

/**
 * Median of a non-empty list (mean of the two middle values for even lengths).
 *
 * @param values Numbers.
 * @returns The median; NaN for an empty list.
 */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Total size of the files under `dir` whose names end with one of `extensions`.
 *
 * @param dir A folder (missing: 0).
 * @param extensions e.g. `[".parquet"]`.
 * @returns Bytes and file count.
 */
export async function sizeOfFiles(
  dir: string,
  extensions: readonly string[],
): Promise<{ bytes: number; files: number }> {
  let bytes = 0;
  let files = 0;
  const walk = async (path: string) => {
    for await (const entry of Deno.readDir(path)) {
      const child = `${path}/${entry.name}`;
      if (entry.isDirectory) await walk(child);
      else if (extensions.some((e) => entry.name.endsWith(e))) {
        bytes += (await Deno.stat(child)).size;
        files++;
      }
    }
  };
  try {
    await walk(dir);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return { bytes, files };
}
