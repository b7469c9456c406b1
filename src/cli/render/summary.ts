/**
 * The run summary: a block per export on stderr, the aggregate JSON of `--json` and
 * `--summary-output`, and the `.rivet/runs/<run_id>/summary.{json,md}` reports.
 *
 * Layer: cli.
 *
 * @module
 */
import { dirname } from "node:path";
import { ConfigError } from "../../core/errors.ts";
import type { Outcome, ReconcileResult } from "../../core/events.ts";
import { redact } from "../../_util/redact.ts";
import { clip, collapsePrefix, exportPrefix } from "../../_util/text.ts";

/**
 * An outcome's error message for display: redacted, one `export 'x':` at most, long texts
 * clipped (after redaction, so a cut never leaves half a secret behind).
 */
function errorText(o: Outcome): string {
  return clip(redact(collapsePrefix(exportPrefix(o.export), o.error?.message ?? "")));
}

/**
 * Human size with binary units.
 *
 * @param bytes A byte count.
 * @returns e.g. `1.5 MiB`.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./summary.ts";
 * if (formatBytes(1536) !== "1.5 KiB") throw new Error();
 * ```
 */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/**
 * The summary block of one export, as printed on stderr after it finishes.
 *
 * @param o The outcome.
 * @returns Several lines of text, ending with a newline.
 */
export function renderOutcome(o: Outcome): string {
  const mark = o.status === "success" ? "✓" : o.status === "skipped" ? "•" : "✗";
  const rate = o.durationMs > 0 ? Math.round(o.rows / (o.durationMs / 1000)) : o.rows;
  const lines = [
    `${mark} ${o.export}: ${o.status}`,
    `  run_id:      ${o.runId}`,
    `  rows:        ${o.rows.toLocaleString("en-US")} (${rate.toLocaleString("en-US")} rows/s)`,
    `  files:       ${o.files}  bytes: ${formatBytes(o.bytes)}`,
    `  duration:    ${formatDuration(o.durationMs)}`,
    `  format:      ${o.format} (${o.compression})`,
    `  tuning:      ${o.tuningProfile}, batch_size ${o.batchSize}`,
    `  output:      ${o.output || "-"}`,
    `  peak RSS:    ${o.peakRssMb} MB`,
  ];
  if (o.validated !== undefined) lines.push(`  validated:   ${o.validated ? "pass" : "FAIL"}`);
  if (o.reconcile) lines.push(`  reconcile:   ${reconcileText(o.reconcile)}`);
  if (o.error) lines.push(`  error:       ${errorText(o).split("\n")[0]}`);
  return redact(lines.join("\n")) + "\n";
}

/**
 * The `run --reconcile` verdict in one line.
 *
 * @param r The verdict.
 * @returns e.g. `MATCH (source COUNT(*) 100, committed 100)`.
 *
 * @example
 * ```ts
 * import { reconcileText } from "./summary.ts";
 * const line = reconcileText({ status: "match", sourceCount: 3, committedRows: 3 });
 * if (line !== "MATCH (source COUNT(*) 3, committed 3)") throw new Error(line);
 * ```
 */
export function reconcileText(r: ReconcileResult): string {
  if (r.status === "skipped") return `skipped: ${r.note ?? ""}`;
  if (r.status === "failed") return `FAILED: ${r.note ?? ""}`;
  const counts = `source COUNT(*) ${r.sourceCount}, committed ${r.committedRows}`;
  return r.status === "match"
    ? `MATCH (${counts})`
    : `MISMATCH (${counts}; the count is taken after the export)`;
}

/** The aggregate of a run, in the Rust tool's JSON shape (scripts may read either). */
export interface RunAggregate {
  readonly run_aggregate_id: string;
  readonly started_at: string;
  readonly finished_at: string;
  readonly duration_ms: number;
  readonly config_path: string;
  /** How the exports ran: one after the other, concurrently in-process, or in child processes. */
  readonly parallel_mode: "sequential" | "parallel-threads" | "parallel-processes";
  readonly exit_code: number;
  readonly total_exports: number;
  readonly success_count: number;
  readonly failed_count: number;
  readonly skipped_count: number;
  readonly total_rows: number;
  readonly total_files: number;
  readonly total_bytes: number;
  readonly per_export: readonly {
    readonly export_name: string;
    readonly status: string;
    readonly run_id: string;
    readonly rows: number;
    readonly files: number;
    readonly bytes: number;
    readonly duration_ms: number;
    readonly mode: string;
    readonly error_message: string | null;
    /** `run --validate`: the read-back verdict (absent when not asked for or not checkable). */
    readonly validated?: boolean;
    /** `run --reconcile`: the count verdict (absent when not asked for). */
    readonly reconcile?: {
      readonly status: string;
      readonly source_count: number | null;
      readonly committed_rows: number | null;
      readonly note?: string;
    };
  }[];
}

/**
 * Builds the aggregate JSON of a run.
 *
 * @param result Outcomes and times of the run.
 * @param options The config path and how the exports ran (default `sequential`).
 * @returns The aggregate, ready for `JSON.stringify`.
 */
export function aggregateJson(
  result: {
    readonly outcomes: readonly Outcome[];
    readonly startedAt: string;
    readonly finishedAt: string;
    readonly exitCode: number;
  },
  options: {
    configPath: string;
    parallelMode?: "sequential" | "parallel-threads" | "parallel-processes";
  },
): RunAggregate {
  const { outcomes } = result;
  const count = (status: string) => outcomes.filter((o) => o.status === status).length;
  const started = new Date(result.startedAt);
  const stamp = result.startedAt.replace(/[-:]/g, "").replace(/\.\d+Z$/, "").replace("T", "T");
  return {
    run_aggregate_id: `agg_${stamp}`,
    started_at: result.startedAt,
    finished_at: result.finishedAt,
    duration_ms: new Date(result.finishedAt).getTime() - started.getTime(),
    config_path: options.configPath,
    parallel_mode: options.parallelMode ?? "sequential",
    exit_code: result.exitCode,
    total_exports: outcomes.length,
    success_count: count("success"),
    failed_count: count("failed"),
    skipped_count: count("skipped"),
    total_rows: outcomes.reduce((s, o) => s + o.rows, 0),
    total_files: outcomes.reduce((s, o) => s + o.files, 0),
    total_bytes: outcomes.reduce((s, o) => s + o.bytes, 0),
    per_export: outcomes.map(exportSummaryJson),
  };
}

/**
 * One export's entry of the aggregate (`per_export`), also the core of a webhook notification.
 *
 * @param o The outcome.
 * @returns The entry, in snake_case.
 */
export function exportSummaryJson(o: Outcome): RunAggregate["per_export"][number] {
  return {
    export_name: o.export,
    status: o.status,
    run_id: o.runId,
    rows: o.rows,
    files: o.files,
    bytes: o.bytes,
    duration_ms: o.durationMs,
    mode: o.mode,
    error_message: o.error ? errorText(o) : null,
    ...(o.validated === undefined ? {} : { validated: o.validated }),
    ...(o.reconcile === undefined ? {} : {
      reconcile: {
        status: o.reconcile.status,
        source_count: o.reconcile.sourceCount ?? null,
        committed_rows: o.reconcile.committedRows ?? null,
        ...(o.reconcile.note === undefined ? {} : { note: redact(o.reconcile.note) }),
      },
    }),
  };
}

function outcomeMarkdown(o: Outcome): string {
  return [
    `# rivet run ${o.runId}`,
    "",
    `| key | value |`,
    `|---|---|`,
    `| export | ${o.export} |`,
    `| status | ${o.status} |`,
    `| mode | ${o.mode} |`,
    `| rows | ${o.rows} |`,
    `| files | ${o.files} |`,
    `| bytes | ${o.bytes} |`,
    `| duration_ms | ${o.durationMs} |`,
    `| format | ${o.format} (${o.compression}) |`,
    `| output | ${o.output} |`,
    `| peak_rss_mb | ${o.peakRssMb} |`,
    ...(o.validated === undefined ? [] : [`| validated | ${o.validated ? "pass" : "FAIL"} |`]),
    ...(o.reconcile
      ? [`| reconcile | ${reconcileText(o.reconcile).replaceAll("|", "\\|")} |`]
      : []),
    ...(o.error
      ? [`| error | ${errorText(o).replaceAll("|", "\\|").replaceAll("\n", " ")} |`]
      : []),
    "",
  ].join("\n");
}

/**
 * Writes `.rivet/runs/<run_id>/summary.json` and `summary.md` next to the config for each export
 * (directories 0700, files 0600: reports can hold SQL and cursor values). Best effort: a failure
 * here never changes the exit code.
 *
 * @param configDir Directory of the config file.
 * @param outcomes The exports' outcomes.
 * @returns Paths of the JSON reports written.
 */
export async function writeRunReports(
  configDir: string,
  outcomes: readonly Outcome[],
): Promise<string[]> {
  const written: string[] = [];
  for (const o of outcomes) {
    const dir = `${configDir}/.rivet/runs/${o.runId}`;
    try {
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      const json = redact(JSON.stringify(o, null, 2)) + "\n";
      await writeFileReplacing(`${dir}/summary.json`, json);
      await writeFileReplacing(`${dir}/summary.md`, redact(outcomeMarkdown(o)));
      written.push(`${dir}/summary.json`);
    } catch {
      // Reports are best-effort: the data and the exit code are already final.
    }
  }
  return written;
}

/**
 * `-o` writes the JSON form only: `rivet validate`, `plan`, `reconcile` and `repair` refuse it
 * with `--format pretty`.
 *
 * @param flags `--format` and `-o`.
 * @param pretty What `--format pretty` prints, for the hint ("report", "summary").
 * @throws {ConfigError} `cli.output_requires_json`.
 */
export function checkOutputFlags(
  flags: { readonly format?: string; readonly output?: string },
  pretty = "report",
): void {
  if (flags.output !== undefined && flags.format !== "json") {
    throw new ConfigError("--output requires --format json", {
      code: "cli.output_requires_json",
      hint: `add --format json, or drop -o to print the pretty ${pretty}`,
    });
  }
}

/**
 * Refuses a report path that is a symbolic link (or anything but a regular file), before the run
 * starts: rivet never writes through a link the path's owner may have planted.
 *
 * @param path The `--summary-output` path.
 * @param flag The flag that named it, for the message.
 * @throws {ConfigError} `cli.output_symlink` or `cli.output_not_file`.
 */
export async function checkOutputPath(path: string, flag: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (info.isSymlink) {
    throw new ConfigError(
      `${flag} '${path}' is a symbolic link; rivet does not write through links`,
      {
        code: "cli.output_symlink",
        hint: `remove the link or give ${flag} another path`,
      },
    );
  }
  if (!info.isFile) {
    throw new ConfigError(`${flag} '${path}' exists and is not a regular file`, {
      code: "cli.output_not_file",
      hint: `give ${flag} the path of a file`,
    });
  }
}

/**
 * Writes a whole file readable by its owner only (0600) without following a symbolic link: the
 * text goes to a new temporary file beside it (created exclusively, so never through a link),
 * which then replaces the path by rename (a rename replaces a link itself, not its target).
 *
 * @param path The file to write.
 * @param text Its content.
 */
export async function writeFileReplacing(path: string, text: string): Promise<void> {
  const tmp = `${dirname(path)}/.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmp, text, { createNew: true, mode: 0o600 });
  try {
    await Deno.rename(tmp, path);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
}
