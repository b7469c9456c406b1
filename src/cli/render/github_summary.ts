/**
 * The GitHub Actions job summary of a run, rendered from its `--events ndjson` stream: a Markdown
 * table (export, status, rows, files, bytes, duration, a total line, the exit class) for
 * `$GITHUB_STEP_SUMMARY`, and the step outputs (`exit-code`, `exit-class`, `rows`, `files`,
 * `bytes`, …) for `$GITHUB_OUTPUT`. The Action (`action.yml`) calls it through
 * `rivet summarize-events`, because runners have the binary but no Deno.
 *
 * Every string taken from an event (export names, error messages) is untrusted text: it is
 * escaped for a Markdown table cell (pipes, backticks, emphasis, HTML, line breaks) and clipped,
 * and the table is capped so a plan with thousands of exports cannot blow the summary's size
 * limit. Outputs hold only numbers and fixed words, so nothing from an event can inject a line
 * into `$GITHUB_OUTPUT`.
 *
 * Layer: cli.
 *
 * @module
 */
import type { ExportStatus, Outcome, RivetEvent } from "../../core/events.ts";
import { parseNdjsonEvents } from "../../core/event_protocol.ts";
import { formatBytes } from "./summary.ts";
import { formatCount, formatDurationMs } from "./progress.ts";

/** The name of an exit code in the summary and the `exit-class` output. */
export type ExitClass =
  | "ok"
  | "config"
  | "transient"
  | "integrity"
  | "drift"
  | "interrupted"
  | "unknown";

const exitClasses: Record<number, ExitClass> = {
  0: "ok",
  1: "config",
  2: "transient",
  3: "integrity",
  4: "drift",
  130: "interrupted",
};

/**
 * The class of an exit code: `ok` (0), `config` (1: config or permanent error), `transient` (2),
 * `integrity` (3), `drift` (4), `interrupted` (130), `unknown` for anything else (a crash).
 *
 * @param code A process exit code.
 * @returns Its class.
 *
 * @example
 * ```ts
 * import { exitClassOf } from "./github_summary.ts";
 * if (exitClassOf(3) !== "integrity" || exitClassOf(139) !== "unknown") throw new Error();
 * ```
 */
export function exitClassOf(code: number): ExitClass {
  return exitClasses[code] ?? "unknown";
}

/** One row of the table. `unfinished`: started but no outcome (the run was killed). */
export interface SummaryRow {
  readonly export: string;
  readonly status: ExportStatus | "unfinished" | "not started";
  readonly rows: number;
  readonly files: number;
  readonly bytes: number;
  /** Undefined when the export has no outcome. */
  readonly durationMs?: number;
  /** The error message of a failed export. */
  readonly error?: string;
}

/** What the event stream says about a run. */
export interface RunSummary {
  readonly rows: readonly SummaryRow[];
  /** The run's wall time (run_started to the last event), when the stream has both. */
  readonly durationMs?: number;
  /** The exit code the run_finished event reports, if the stream has one. */
  readonly reportedExitCode?: number;
  /** Non-blank lines that were not events (skipped). */
  readonly invalidLines: number;
}

interface Progress {
  rows: number;
  files: number;
  bytes: number;
}

/**
 * Folds events into a {@linkcode RunSummary}. Outcomes come from `run_finished` when the stream
 * has it, else from each `export_finished`; an export that started without finishing (a killed
 * run) keeps the rows and parts it had committed, and one announced by `run_started` that never
 * started is listed as `not started`.
 */
export class RunSummaryBuilder {
  #announced: string[] = [];
  #progress = new Map<string, Progress>();
  #finished = new Map<string, Outcome>();
  #final?: readonly Outcome[];
  #exitCode?: number;
  #startedAt?: number;
  #lastAt?: number;
  #invalid = 0;

  /** Counts a line that was not an event. */
  skipLine(): void {
    this.#invalid += 1;
  }

  /**
   * Takes one event.
   *
   * @param event An event of the stream, in order.
   */
  add(event: RivetEvent): void {
    const at = event.ts === undefined ? NaN : Date.parse(event.ts);
    if (Number.isFinite(at)) this.#lastAt = at;
    switch (event.type) {
      case "run_started":
        this.#announced = [...event.exports];
        if (Number.isFinite(at)) this.#startedAt = at;
        break;
      case "export_started":
        this.#progressOf(event.export);
        break;
      case "batch_read":
        this.#progressOf(event.export).rows = event.totalRows;
        break;
      case "part_committed": {
        const p = this.#progressOf(event.export);
        p.files += 1;
        p.bytes += event.bytes;
        break;
      }
      case "export_finished":
        this.#finished.set(event.outcome.export, event.outcome);
        break;
      case "run_finished":
        this.#final = event.outcomes;
        this.#exitCode = event.exitCode;
        break;
    }
  }

  #progressOf(name: string): Progress {
    let p = this.#progress.get(name);
    if (!p) this.#progress.set(name, p = { rows: 0, files: 0, bytes: 0 });
    return p;
  }

  /** @returns The summary of the events added so far. */
  build(): RunSummary {
    const outcomes = new Map<string, Outcome>();
    for (const o of this.#final ?? this.#finished.values()) outcomes.set(o.export, o);
    const names = [...new Set([...this.#announced, ...this.#progress.keys(), ...outcomes.keys()])];
    const rows = names.map((name): SummaryRow => {
      const o = outcomes.get(name);
      if (o) {
        return {
          export: name,
          status: o.status,
          rows: o.rows,
          files: o.files,
          bytes: o.bytes,
          durationMs: o.durationMs,
          ...(o.error?.message !== undefined ? { error: o.error.message } : {}),
        };
      }
      const p = this.#progress.get(name);
      return p
        ? { export: name, status: "unfinished", ...p }
        : { export: name, status: "not started", rows: 0, files: 0, bytes: 0 };
    });
    const timed = this.#startedAt !== undefined && this.#lastAt !== undefined;
    return {
      rows,
      ...(timed ? { durationMs: Math.max(0, this.#lastAt! - this.#startedAt!) } : {}),
      ...(this.#exitCode !== undefined ? { reportedExitCode: this.#exitCode } : {}),
      invalidLines: this.#invalid,
    };
  }
}

/**
 * The summary of NDJSON text (`rivet run --events ndjson` output).
 *
 * @param text The stream, as read from the events file.
 * @returns The folded summary; lines that are not events are counted, not fatal.
 */
export function summarizeNdjson(text: string): RunSummary {
  const builder = new RunSummaryBuilder();
  for (const event of parseNdjsonEvents(text, { onInvalidLine: () => builder.skipLine() })) {
    builder.add(event);
  }
  return builder.build();
}

/** Longest cell text kept from an event, before escaping. */
const maxCellChars = 200;
/** Rows shown before the table is cut. */
export const DEFAULT_MAX_TABLE_ROWS = 200;

/**
 * Escapes untrusted text for one GitHub-flavoured Markdown table cell: control characters and
 * line breaks become spaces (a newline would end the row), `&`, `<`, `>` become entities (no
 * HTML, no autolinks), and `|`, backticks and the emphasis/link characters get a backslash. Text
 * longer than 200 characters is clipped with `…`.
 *
 * @param text Untrusted text.
 * @returns Text that renders as itself inside one cell.
 *
 * @example
 * ```ts
 * import { escapeMarkdownCell } from "./github_summary.ts";
 * if (escapeMarkdownCell("a|b<i>\n`c`") !== "a\\|b&lt;i&gt; \\`c\\`") throw new Error();
 * ```
 */
export function escapeMarkdownCell(text: string): string {
  // deno-lint-ignore no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, " ");
  const clipped = flat.length > maxCellChars ? `${flat.slice(0, maxCellChars)}…` : flat;
  return clipped
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replace(/[\\`*_[\]|~#!]/g, (c) => `\\${c}`);
}

/** The step outputs: names as in `action.yml`, values numbers or fixed words. */
export type SummaryOutputs = Readonly<Record<string, string>>;

/** The rendered summary. */
export interface GithubSummary {
  /** Markdown for `$GITHUB_STEP_SUMMARY`, ending with a newline. */
  readonly markdown: string;
  /** Step outputs for `$GITHUB_OUTPUT`. */
  readonly outputs: SummaryOutputs;
}

/**
 * Renders a run summary as GitHub Markdown and step outputs.
 *
 * @param summary From {@linkcode summarizeNdjson} or {@linkcode RunSummaryBuilder}.
 * @param options `exitCode`: the process's exit code (beats the one the stream reports; without
 *   either, `unknown`); `maxRows`: rows shown before "… and N more" (default 200).
 * @returns The Markdown and the outputs.
 */
export function renderGithubSummary(
  summary: RunSummary,
  options: { exitCode?: number; maxRows?: number } = {},
): GithubSummary {
  const exitCode = options.exitCode ?? summary.reportedExitCode;
  const exitClass = exitCode === undefined ? "unknown" : exitClassOf(exitCode);
  const maxRows = options.maxRows ?? DEFAULT_MAX_TABLE_ROWS;
  const total = summary.rows.reduce(
    (t, r) => ({ rows: t.rows + r.rows, files: t.files + r.files, bytes: t.bytes + r.bytes }),
    { rows: 0, files: 0, bytes: 0 },
  );
  const failed = summary.rows.filter((r) => r.status !== "success" && r.status !== "skipped");
  const mark = exitClass === "ok" ? "✅" : "❌";
  const code = exitCode === undefined ? "" : ` (exit code ${exitCode})`;
  const lines = [
    "## rivet run",
    "",
    `${mark} **${exitClass}**${code}: ${formatCount(summary.rows.length)} export(s), ` +
    `${formatCount(failed.length)} not successful`,
    "",
  ];
  if (summary.rows.length > 0) {
    lines.push(
      "| Export | Status | Rows | Files | Bytes | Duration |",
      "| --- | --- | ---: | ---: | ---: | ---: |",
    );
    for (const r of summary.rows.slice(0, maxRows)) {
      const duration = r.durationMs === undefined ? "" : formatDurationMs(r.durationMs);
      lines.push(
        `| ${escapeMarkdownCell(r.export)} | ${escapeMarkdownCell(r.status)} | ${
          formatCount(r.rows)
        } | ${formatCount(r.files)} ` +
          `| ${formatBytes(r.bytes)} | ${duration} |`,
      );
    }
    const hidden = summary.rows.length - maxRows;
    if (hidden > 0) lines.push(`| … and ${formatCount(hidden)} more | | | | | |`);
    const wall = summary.durationMs === undefined ? "" : formatDurationMs(summary.durationMs);
    lines.push(
      `| **Total** | **${exitClass}** | **${formatCount(total.rows)}** | **${
        formatCount(total.files)
      }** ` +
        `| **${formatBytes(total.bytes)}** | ${wall ? `**${wall}**` : ""} |`,
      "",
    );
  } else {
    lines.push("No export reported any event (see the step log for the error).", "");
  }
  const errors = failed.filter((r) => r.error !== undefined);
  if (errors.length > 0) {
    lines.push("### Errors", "");
    for (const r of errors.slice(0, maxRows)) {
      lines.push(`- ${escapeMarkdownCell(r.export)}: ${escapeMarkdownCell(r.error!)}`);
    }
    if (errors.length > maxRows) lines.push(`- … and ${formatCount(errors.length - maxRows)} more`);
    lines.push("");
  }
  if (summary.invalidLines > 0) {
    lines.push(
      `${formatCount(summary.invalidLines)} line(s) of the event stream were not events.`,
      "",
    );
  }
  return {
    markdown: lines.join("\n"),
    outputs: {
      "exit-code": exitCode === undefined ? "" : String(exitCode),
      "exit-class": exitClass,
      exports: String(summary.rows.length),
      failed: String(failed.length),
      rows: String(total.rows),
      files: String(total.files),
      bytes: String(total.bytes),
    },
  };
}

/**
 * The outputs in `$GITHUB_OUTPUT` syntax, one `name=value` line each. Values never hold a line
 * break (they are numbers and fixed words).
 *
 * @param outputs From {@linkcode renderGithubSummary}.
 * @returns The lines, ending with a newline.
 *
 * @example
 * ```ts
 * import { formatGithubOutputs } from "./github_summary.ts";
 * if (formatGithubOutputs({ rows: "3" }) !== "rows=3\n") throw new Error();
 * ```
 */
export function formatGithubOutputs(outputs: SummaryOutputs): string {
  return Object.entries(outputs).map(([k, v]) => `${k}=${v.replace(/[\r\n]/g, " ")}\n`).join("");
}
