/**
 * `rivet metrics`: the run history of `export_metrics`, newest first; and `rivet journal`, the
 * recorded events of an export's last runs.
 *
 * Layer: cli.
 *
 * @module
 */
import type { MetricsEntry, StateStore } from "../../core/state.ts";
import { redact } from "../../_util/redact.ts";
import type { CommandContext } from "../main.ts";
import { formatBytes } from "../render/summary.ts";
import { alignTable } from "../render/table.ts";
import { journalJson, metricsJson, type StoredJournal } from "../render/state_json.ts";
import { inspectJson, inspectState, neverRanMessage, noneRecorded } from "./state.ts";

/** Options parsed for `rivet metrics` and `rivet journal`. */
export interface MetricsFlags {
  readonly config: string;
  /** `-e NAME`: one export. */
  readonly export?: string;
  /** `-l/--last N`: newest runs to show. */
  readonly last?: number;
  /** `journal --run-id ID`. */
  readonly runId?: string;
  /** `--json`: one JSON document on stdout instead of the table. */
  readonly json?: boolean;
}

/** Default of `metrics --last`. */
export const METRICS_DEFAULT_LAST = 20;

/**
 * A run duration for humans.
 *
 * @param ms Milliseconds.
 * @returns `850 ms`, `12.34 s` or `3m 05s`.
 *
 * @example
 * ```ts
 * import { formatRunDuration } from "./metrics.ts";
 * if (formatRunDuration(185_000) !== "3m 05s") throw new Error();
 * ```
 */
export function formatRunDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, "0")}s`;
}

function row(m: MetricsEntry): string[] {
  return [
    m.exportName,
    m.status,
    String(m.totalRows),
    formatRunDuration(m.durationMs),
    m.peakRssMb === undefined ? "-" : `${m.peakRssMb} MB`,
    m.filesProduced === undefined ? "-" : String(m.filesProduced),
    m.bytesWritten === undefined ? "-" : formatBytes(m.bytesWritten),
    m.runId,
  ];
}

/**
 * The flags line under each run: retries, validation verdict, schema drift, and the
 * `--reconcile` verdict with the source count when the run had one.
 */
function flagsLine(m: MetricsEntry): string {
  const validated = m.validated === undefined ? "-" : m.validated ? "pass" : "FAIL";
  const schema = m.schemaChanged ? "CHANGED" : "ok";
  const reconcile = m.reconciled === undefined
    ? ""
    : ` reconcile=${m.reconciled ? "MATCH" : "MISMATCH"} source_count=${m.sourceCount ?? "-"}`;
  const quality = m.qualityPassed === undefined
    ? ""
    : ` quality=${m.qualityPassed ? "pass" : "FAIL"}`;
  return `  retries=${
    m.retries ?? 0
  } validated=${validated} schema=${schema}${reconcile}${quality}`;
}

/**
 * Runs `rivet metrics [-e NAME] [-l N]`: one table row per run, each followed by an `Error:` line
 * for a failed run and a flags line.
 *
 * @param flags `-c`, `-e`, `--last`.
 * @param ctx Output.
 * @returns The exit code.
 */
export function metricsCommand(flags: MetricsFlags, ctx: CommandContext): Promise<number> {
  const list = (state: StateStore) =>
    state.listMetrics({
      last: flags.last ?? METRICS_DEFAULT_LAST,
      ...(flags.export === undefined ? {} : { exportName: flags.export }),
    });
  if (flags.json) {
    return inspectJson(flags, ctx, "runs", async (state) => (await list(state)).map(metricsJson));
  }
  return inspectState(flags, ctx, async (state) => {
    const runs = await list(state);
    if (runs.length === 0) {
      ctx.io.out(noneRecorded("runs", flags.export));
      return 0;
    }
    const [header, ...lines] = alignTable(
      ["EXPORT", "STATUS", "ROWS", "DURATION", "RSS", "FILES", "BYTES", "RUN ID"],
      runs.map(row),
      { right: [2, 3, 4, 5, 6] },
    );
    const out = [header!];
    runs.forEach((m, i) => {
      out.push(lines[i]!);
      if (m.errorMessage !== undefined) {
        out.push(`  Error: ${redact(m.errorMessage).replace(/\s*\n\s*/g, " ").trim()}`);
      }
      out.push(flagsLine(m));
    });
    ctx.io.out(out.join("\n") + "\n");
    return 0;
  });
}

/**
 * Runs `rivet journal`: validates the config, then prints the journals of the export's last runs
 * (`--last`, default 5) or of one run (`--run-id`).
 *
 * @param flags `-c`, `-e`, `--last`, `--run-id`.
 * @param ctx Output.
 * @returns The exit code (0, or the error's class).
 */
export function journalCommand(flags: MetricsFlags, ctx: CommandContext): Promise<number> {
  const list = (state: StateStore) =>
    state.listJournal({
      exportName: flags.export!,
      last: flags.last ?? 5,
      ...(flags.runId === undefined ? {} : { runId: flags.runId }),
    });
  if (flags.json) {
    return inspectJson(
      flags,
      ctx,
      "journals",
      async (state) => (await list(state)).map(journalJson),
    );
  }
  return inspectState(flags, ctx, async (state) => {
    const entries = await list(state);
    if (entries.length === 0) {
      ctx.io.out(noneRecorded("journal", flags.export!));
      return 0;
    }
    ctx.io.out(entries.map((e) => renderJournal(e.runId, e.journal)).join(""));
    return 0;
  }, (config) => `${neverRanMessage(config)}\n`);
}

/**
 * One run's digest: a status mark with the run id and totals, then its schema changes,
 * retries, warnings and the first line of its error.
 *
 * @param runId The run.
 * @param journal The stored journal.
 * @returns Lines ending with a newline.
 */
export function renderJournal(runId: string, journal: unknown): string {
  const j = (journal ?? {}) as StoredJournal;
  const c = j.completed ?? {};
  const mark = c.status === "success" ? "✓" : c.status === "failed" ? "✗" : "•";
  const lines = [
    `${mark} ${runId}  ${c.status ?? "?"}  ${formatRunDuration(c.durationMs ?? 0)}  ` +
    `files=${c.files ?? 0} rows=${c.rows ?? 0} bytes=${formatBytes(c.bytes ?? 0)} ` +
    `retries=${c.retries ?? 0}`,
  ];
  for (const e of j.events ?? []) {
    if (e.event === "schema_changed") lines.push(`  schema: ${e.message ?? ""}`);
    else if (e.event === "retry_attempted") lines.push(`  retry: ${e.message ?? ""}`);
    else if (e.event === "warning" && e.code?.startsWith("quality.")) {
      lines.push(`  quality: ${e.message ?? ""}`);
    } else if (e.event === "warning") lines.push(`  warning: ${e.message ?? ""}`);
  }
  if (c.error) {
    const [first, ...rest] = c.error.split("\n");
    lines.push(`  error: ${first}`);
    // A failed quality gate lists its checks one per line: each is a quality issue of the run.
    if (/quality check\(s\) failed/.test(first!)) {
      for (const line of rest) lines.push(`  quality: ${line.trim().replace(/^- /, "")}`);
    }
  }
  return redact(lines.join("\n")) + "\n";
}
