/**
 * `rivet report`: one self-contained HTML page of a run, from the state store: the run's metrics,
 * its trace (chunk timeline per lane, throughput and RSS samples), its journal's warnings and
 * error. `rivet run --report` writes the same page for the run it just finished.
 *
 * @module
 */
import { dirname, join } from "node:path";
import { ConfigError } from "../../core/errors.ts";
import type { ConfigSpec } from "../../core/spec.ts";
import type { MetricsEntry, StateStore } from "../../core/state.ts";
import { redact } from "../../_util/redact.ts";
import type { CommandContext } from "../main.ts";
import { renderReportHtml, type ReportExport, wallSpanMs } from "../render/report_html.ts";
import type { StoredJournal } from "../render/state_json.ts";
import { writeFileReplacing } from "../render/summary.ts";
import { inspectState } from "./state.ts";

/** Flags of `rivet report`. */
export interface ReportFlags {
  readonly config: string;
  /** `-e NAME`: one export (default: every export of the config with a recorded run). */
  readonly export?: string;
  /** `--run-id ID`: that run (default: each export's latest). */
  readonly runId?: string;
  /** `-o PATH`: where the page goes (default `.rivet/runs/<run_id>/report.html`; `-` is stdout). */
  readonly output?: string;
}

/** One export run to report. */
export interface ReportSelection {
  readonly exportName: string;
  /** The run; the export's latest when absent. */
  readonly runId?: string;
}

/** How many of an export's newest runs are searched for `--run-id`. */
const RUNS_SEARCHED = 200;

/**
 * The report of the selected runs, read from the state store.
 *
 * @param state The state store.
 * @param selection The export runs.
 * @returns One entry per selected run that has a metrics row.
 */
export async function collectReport(
  state: StateStore,
  selection: readonly ReportSelection[],
): Promise<ReportExport[]> {
  const out: ReportExport[] = [];
  for (const { exportName, runId } of selection) {
    const runs = await state.listMetrics({ exportName, last: RUNS_SEARCHED });
    const newest = runs.find((m) => runId === undefined || m.runId === runId);
    if (newest === undefined) continue;
    // Every process that worked on the run (a resume after a failure, other hosts) recorded its
    // own metrics, journal and trace under the run id: the page shows them all.
    const rows = runs.filter((m) => m.runId === newest.runId);
    const metrics = combineRunMetrics(rows);
    const [trace, ...moreTraces] = await state.readRunTraces(newest.runId, exportName);
    const journals =
      (await state.listJournal({ exportName, last: rows.length, runId: newest.runId }))
        .reverse().map((entry) => (entry.journal ?? {}) as StoredJournal);
    const warnings = journals.flatMap((journal) => journal.events ?? [])
      .filter((e) => e.event === "warning" || e.event === "retry_attempted")
      .map((e) => redact(`${e.code ? `${e.code}: ` : ""}${e.message ?? ""}`));
    const errors = journals.length > 0
      ? journals.flatMap((journal, i) => {
        const error = journal.completed?.error;
        const who = journals.length > 1 ? `process ${i + 1}/${journals.length}: ` : "";
        return error ? [redact(who + error)] : [];
      })
      : metrics.errorMessage
      ? [redact(metrics.errorMessage)]
      : [];
    out.push({
      metrics,
      ...(trace ? { trace } : {}),
      ...(moreTraces.length > 0 ? { moreTraces } : {}),
      warnings,
      errors,
      manifest: metrics.validated === undefined
        ? {
          status: "not_checked",
          detail: "the run was not validated: rivet run --validate, or rivet validate -c <config>",
        }
        : metrics.validated
        ? { status: "passed", detail: "the output matched its manifest after the run (--validate)" }
        : { status: "failed", detail: "the output did not match its manifest after the run" },
    });
  }
  return out;
}

/**
 * The metrics of a run that several processes worked on (newest first, as listed), as one:
 * rows, files, bytes and retries summed, the wall-clock span from the first start to the last
 * end, the highest peak RSS, and the newest process's status, error and checks. One row is
 * returned as it is.
 */
export function combineRunMetrics(rows: readonly MetricsEntry[]): MetricsEntry {
  const newest = rows[0]!;
  if (rows.length === 1) return newest;
  const sum = (pick: (m: MetricsEntry) => number | undefined) =>
    rows.some((m) => pick(m) !== undefined)
      ? rows.reduce((n, m) => n + (pick(m) ?? 0), 0)
      : undefined;
  const starts = rows.map((m) => Date.parse(m.runAt));
  const first = Math.min(...starts);
  const rss = rows.flatMap((m) => m.peakRssMb === undefined ? [] : [m.peakRssMb]);
  const optional = (key: string, value: number | undefined) =>
    value === undefined ? {} : { [key]: value };
  return {
    ...newest,
    runAt: Number.isFinite(first) ? rows[starts.indexOf(first)]!.runAt : newest.runAt,
    durationMs: wallSpanMs(rows),
    totalRows: rows.reduce((n, m) => n + m.totalRows, 0),
    ...optional("filesProduced", sum((m) => m.filesProduced)),
    ...optional("filesCommitted", sum((m) => m.filesCommitted)),
    ...optional("bytesWritten", sum((m) => m.bytesWritten)),
    ...optional("retries", sum((m) => m.retries)),
    ...optional("peakRssMb", rss.length > 0 ? Math.max(...rss) : undefined),
  };
}

/**
 * Writes the page of `exports` to `path` (replacing it).
 *
 * @param exports What to draw.
 * @param path The file.
 * @param exitCode The run's exit code, when known.
 */
export async function writeReport(
  exports: readonly ReportExport[],
  path: string,
  exitCode?: number,
): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  await writeFileReplacing(path, reportPage(exports, exitCode));
}

/** The page of `exports`, made now. */
function reportPage(exports: readonly ReportExport[], exitCode?: number): string {
  return renderReportHtml({
    exports,
    generatedAt: new Date().toISOString(),
    ...(exitCode === undefined ? {} : { exitCode }),
  });
}

/** The default place of a run's page: beside its `summary.json`. */
export function defaultReportPath(config: ConfigSpec, runId: string): string {
  return join(config.dir, ".rivet", "runs", runId, "report.html");
}

/**
 * Runs `rivet report`.
 *
 * @param flags `-c`, `-e`, `--run-id`, `-o`.
 * @param ctx Output.
 * @returns The exit code.
 */
export function reportCommand(flags: ReportFlags, ctx: CommandContext): Promise<number> {
  return inspectState(flags, ctx, async (state, config) => {
    const names = flags.export !== undefined ? [flags.export] : config.exports.map((e) => e.name);
    const exports = await collectReport(
      state,
      names.map((exportName) => ({
        exportName,
        ...(flags.runId === undefined ? {} : { runId: flags.runId }),
      })),
    );
    if (exports.length === 0) {
      if (flags.runId !== undefined) {
        throw new ConfigError(`no run '${flags.runId}' is recorded`, {
          code: "report.no_run",
          hint: "rivet metrics -c <config> lists the recorded runs and their ids",
        });
      }
      ctx.io.out("No runs recorded yet\n");
      return 0;
    }
    if (flags.output === "-") {
      ctx.io.out(reportPage(exports));
      return 0;
    }
    const path = flags.output ?? defaultReportPath(config, exports[0]!.metrics.runId);
    await writeReport(exports, path);
    ctx.io.err(`report: ${path}\n`);
    return 0;
  });
}
