/**
 * The run report of `rivet report` and `rivet run --report`: one self-contained HTML page per run
 * (a header summary, the chunk timeline per lane, throughput and RSS plots, the slowest chunks,
 * warnings and errors, the manifest check).
 *
 * The page opens with no network at all: CSS, SVG and the small tooltip script are inline, and a
 * Content-Security-Policy forbids every fetch, so even a URL slipped into the page cannot load.
 * Every string from the run (export and lane names, ranges, error text) is escaped; the hover data
 * sits in a JSON block whose `<` are escaped, and the script writes it with `textContent` only.
 * A 10,000-attempt trace stays well under 1 MB (see `_report_svg.ts`).
 *
 * Layer: cli.
 *
 * @module
 */
import { type RunTrace, TRACE_LIMITS } from "../../core/run_trace.ts";
import type { MetricsEntry } from "../../core/state.ts";
import { exitClassOf } from "./github_summary.ts";
import {
  boundAttempts,
  clip,
  clock,
  endOf,
  escapeHtml,
  fmtNum,
  linePlot,
  placeTraces,
  rssSeries,
  throughputSeries,
  timelineSvg,
  traceEndMs,
} from "./_report_svg.ts";
import { REPORT_CSS, REPORT_SCRIPT } from "./_report_assets.ts";

/** The manifest check of an export's files. */
export interface ManifestCheck {
  readonly status: "passed" | "failed" | "not_checked";
  /** One line saying what was checked or what differed (already redacted). */
  readonly detail?: string;
}

/** One export of the report. */
export interface ReportExport {
  /** The run's metrics row (`rivet metrics`). */
  readonly metrics: MetricsEntry;
  /** Absent for runs recorded before traces existed: the page then shows the summary only. */
  readonly trace?: RunTrace;
  /**
   * The traces of the other processes that worked on the same run after `trace` (a resume after
   * a failure, other hosts sharing it), oldest first: each gets its own lane group.
   */
  readonly moreTraces?: readonly RunTrace[];
  /** Already redacted and sanitised text. */
  readonly warnings?: readonly string[];
  /** Already redacted and sanitised text. */
  readonly errors?: readonly string[];
  readonly manifest?: ManifestCheck;
}

/** What the report draws: one export, or several (one lane group each). */
export interface ReportInput {
  readonly exports: readonly ReportExport[];
  /** The process exit code of the run, when known (the header shows its class). */
  readonly exitCode?: number;
  /** When the page was made (ISO-8601); omitted from the page when absent. */
  readonly generatedAt?: string;
}

/**
 * Above this many attempts on one page, only failed, retried, interrupted, quarantined and the
 * slowest attempts keep rows, bytes and range in their hover text (the rest show chunk, attempt,
 * start and duration), so 10,000 attempts stay well under 1 MB.
 */
export const DETAIL_LIMIT = 2_000;

/** Warnings (and errors) listed per page, and the longest text of each: the page stays small. */
const MESSAGE_LIMIT = 50;
const MESSAGE_CHARS = 500;

/** Totals of the header, also written as `data-*` attributes of `#summary` for tests. */
export interface ReportTotals {
  readonly rows: number;
  readonly files: number;
  readonly bytes: number;
  readonly durationMs: number;
  readonly peakRssMb?: number | undefined;
  readonly exitClass: string;
}

/** The header totals of a report: sums over the exports, their wall-clock span, the peak RSS. */
export function reportTotals(input: ReportInput): ReportTotals {
  const m = input.exports.map((e) => e.metrics);
  const rss = m.flatMap((x) => x.peakRssMb === undefined ? [] : [x.peakRssMb]);
  const failed = m.some((x) => x.status === "failed");
  return {
    rows: m.reduce((n, x) => n + x.totalRows, 0),
    files: m.reduce((n, x) => n + (x.filesProduced ?? 0), 0),
    bytes: m.reduce((n, x) => n + (x.bytesWritten ?? 0), 0),
    durationMs: wallSpanMs(m),
    peakRssMb: rss.length > 0 ? Math.max(...rss) : undefined,
    exitClass: input.exitCode !== undefined
      ? exitClassOf(input.exitCode)
      : failed
      ? "failed"
      : "ok",
  };
}

/**
 * The group label of one process's trace of an export run: the export's name, and when several
 * processes worked on the run (a resume, other hosts), which one and where.
 */
function segmentLabel(trace: RunTrace, i: number, n: number): string {
  if (n === 1) return trace.exportName;
  const where = trace.host === undefined ? "" : ` on ${trace.host}`;
  const how = trace.status !== undefined
    ? `, ${trace.status === "success" ? "ok" : trace.status}`
    : trace.finishedAt === undefined
    ? ", no end recorded (killed, or still running)"
    : "";
  return `${trace.exportName} · process ${i + 1}/${n}${where}${how}`;
}

/**
 * The wall-clock time of export runs (several exports, or the processes of one run): from the
 * earliest start to the latest end (runs one after another add up; parallel ones overlap), or
 * the longest duration when a start time cannot be read.
 */
export function wallSpanMs(m: readonly MetricsEntry[]): number {
  const longest = Math.max(0, ...m.map((x) => x.durationMs));
  const starts = m.map((x) => Date.parse(x.runAt));
  if (m.length < 2 || !starts.every(Number.isFinite)) return longest;
  const ends = m.map((x, i) => starts[i]! + x.durationMs);
  return Math.max(longest, Math.max(...ends) - Math.min(...starts));
}

/**
 * Renders the report page.
 *
 * @param input The run's exports: metrics, trace, warnings, errors, manifest check.
 * @returns One self-contained HTML document.
 *
 * @example
 * ```ts
 * import { renderReportHtml } from "./report_html.ts";
 * const html = renderReportHtml({
 *   exports: [{
 *     metrics: { runId: "r1", exportName: "orders", runAt: "2026-01-01T00:00:00Z",
 *       durationMs: 1200, totalRows: 10, status: "success" },
 *   }],
 * });
 * if (!html.includes('data-rows="10"')) throw new Error();
 * ```
 */
export function renderReportHtml(input: ReportInput): string {
  const totals = reportTotals(input);
  const segments = input.exports.flatMap((e) => {
    const all = e.trace ? [e.trace, ...(e.moreTraces ?? [])] : [];
    return all.map((trace, i) => ({ e, trace, label: segmentLabel(trace, i, all.length) }));
  });
  const traces = segments.map((s) => s.trace);
  const placed = boundAttempts(placeTraces(traces), TRACE_LIMITS.chunks).map((p, i) => {
    const { e, trace, label } = segments[i]!;
    const m = e.metrics;
    // A process that saved no end (killed, or still running) has no outcome of its own.
    const status = trace.status ?? (trace.finishedAt === undefined ? undefined : m.status);
    const outcome = status === undefined
      ? "u" as const
      : status === "failed"
      ? "f" as const
      : "c" as const;
    return {
      ...p,
      label,
      whole: { outcome, rows: m.totalRows, bytes: m.bytesWritten },
    };
  });
  const title = input.exports.length === 1
    ? `rivet report: ${input.exports[0]!.metrics.exportName}`
    : `rivet report: ${input.exports.length} exports`;
  const body: string[] = [
    `<h1>${escapeHtml(title)}</h1>`,
    summarySection(input, totals),
  ];
  const data: { n: string[]; d: Record<string, unknown[]> } = {
    n: placed.map((p) => p.label ?? p.trace.exportName),
    d: {},
  };
  const missing = input.exports.filter((e) => !e.trace).map((e) => e.metrics.exportName);
  if (missing.length > 0) {
    body.push(
      `<p id="no-trace" class="note">No trace was recorded for ${
        missing.map((n) => `<b>${escapeHtml(n)}</b>`).join(", ")
      } (runs made before rivet recorded traces): only the summary is shown${
        placed.length > 0 ? " for it" : ""
      }.</p>`,
    );
  }
  if (placed.length > 0) {
    const slow = slowest(placed, 10);
    const t = timelineSvg(placed, DETAIL_LIMIT, new Set(slow.map((s) => s.attempt)));
    data.d = t.details;
    const omitted = placed.reduce((n, x) => n + (x.trace.omittedChunks ?? 0), 0);
    body.push(
      `<h2>Timeline</h2><p class="legend"><span class="sw c"></span>completed ` +
        `<span class="sw f"></span>failed <span class="sw r"></span>retried ` +
        `<span class="sw i"></span>interrupted <span class="sw u"></span>running ` +
        `<span class="sw x"></span>retry (attempt &gt; 1) <span class="sw q"></span>after quarantine` +
        ` · ${fmtNum(placed.reduce((n, x) => n + x.trace.chunks.length, 0))} chunk attempts` +
        (omitted > 0
          ? ` · <span id="omitted">${
            fmtNum(omitted)
          } more attempts were not kept in the trace</span>`
          : "") +
        `</p><div class="scroll">${t.svg}</div>`,
      `<h2>Throughput (rows/s)</h2>` +
        linePlot("throughput", placed.map(throughputSeries), t.spanMs, "rows/s"),
      `<h2>Memory (RSS, MiB)</h2>` + linePlot("rss", placed.map(rssSeries), t.spanMs, "MiB"),
      slowestSection(slow),
    );
  }
  body.push(messagesSection(input), manifestSection(input));
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">` +
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; ` +
    `style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${escapeHtml(title)}</title><style>${REPORT_CSS}</style></head><body>` +
    body.join("\n") +
    (input.generatedAt ? `<footer>made ${escapeHtml(input.generatedAt)}</footer>` : "") +
    `<div id="tip" hidden></div>` +
    `<script type="application/json" id="report-data">${jsonForScript(data)}</script>` +
    `<script>${REPORT_SCRIPT}</script></body></html>\n`;
}

/** JSON safe inside `<script>`: no `<` (so no `</script>`), no line separators. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

function summarySection(input: ReportInput, t: ReportTotals): string {
  const attrs = [
    `data-rows="${t.rows}"`,
    `data-files="${t.files}"`,
    `data-bytes="${t.bytes}"`,
    `data-duration-ms="${t.durationMs}"`,
    `data-exit-class="${escapeHtml(t.exitClass)}"`,
    `data-exports="${input.exports.length}"`,
    t.peakRssMb === undefined ? "" : `data-peak-rss-mb="${t.peakRssMb}"`,
  ].filter((a) => a !== "").join(" ");
  const tiles: [string, string][] = [
    ["rows", fmtNum(t.rows)],
    ["files", fmtNum(t.files)],
    ["bytes", bytes(t.bytes)],
    ["duration", clockOrMs(t.durationMs)],
    ["exit", t.exitClass + (input.exitCode !== undefined ? ` (${input.exitCode})` : "")],
    ["peak RSS", t.peakRssMb === undefined ? "—" : `${fmtNum(t.peakRssMb)} MiB`],
  ];
  const rows = input.exports.map((e) => {
    const m = e.metrics;
    const tuning = [
      m.tuningProfile ? `profile ${m.tuningProfile}` : "",
      m.batchSize ? `batch ${fmtNum(m.batchSize)}` : "",
      m.batchSizeMemoryMb ? `batch memory ${m.batchSizeMemoryMb} MB` : "",
      m.chunkSize ? `chunk ${fmtNum(m.chunkSize)}` : "",
      m.parallel ? `parallel ${m.parallel}` : "",
    ].filter((s) => s !== "").join(", ");
    return `<tr data-export="${escapeHtml(m.exportName)}"><td>${escapeHtml(m.exportName)}</td>` +
      `<td>${escapeHtml(m.status)}</td><td class="n">${fmtNum(m.totalRows)}</td>` +
      `<td class="n">${fmtNum(m.filesProduced ?? 0)}</td><td class="n">${
        bytes(m.bytesWritten ?? 0)
      }</td><td class="n">${clockOrMs(m.durationMs)}</td><td class="n">${
        m.peakRssMb === undefined ? "—" : fmtNum(m.peakRssMb)
      }</td><td class="n">${m.retries ?? 0}</td><td>${escapeHtml(tuning || "—")}</td>` +
      `<td class="mono">${escapeHtml(m.runId)}</td></tr>`;
  }).join("");
  return `<section id="summary" ${attrs}><div class="tiles">${
    tiles.map(([k, v]) => `<div class="tile"><span>${k}</span><b>${escapeHtml(v)}</b></div>`)
      .join("")
  }</div><table><thead><tr><th>export</th><th>status</th><th>rows</th><th>files</th>` +
    `<th>bytes</th><th>duration</th><th>peak RSS MiB</th><th>retries</th><th>tuning</th>` +
    `<th>run id</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

interface Slow {
  readonly exportName: string;
  readonly lane: string;
  readonly attempt: RunTrace["chunks"][number];
  readonly durationMs: number;
}

function slowest(placed: ReturnType<typeof placeTraces>, n: number): Slow[] {
  const all: Slow[] = [];
  for (const p of placed) {
    const end = traceEndMs(p.trace);
    for (const a of p.trace.chunks) {
      all.push({
        exportName: p.label ?? p.trace.exportName,
        lane: p.trace.lanes[a.lane] ?? `lane ${a.lane + 1}`,
        attempt: a,
        durationMs: endOf(a, end) - a.startMs,
      });
    }
  }
  return all.sort((x, y) => y.durationMs - x.durationMs).slice(0, n);
}

function slowestSection(slow: readonly Slow[]): string {
  if (slow.length === 0) return "";
  const rows = slow.map((s) => {
    const a = s.attempt;
    const rate = a.rows !== undefined && s.durationMs > 0
      ? fmtNum(a.rows / s.durationMs * 1000)
      : "—";
    return `<tr data-c="${a.chunk}" data-a="${a.attempt}"><td>${escapeHtml(s.exportName)}</td>` +
      `<td class="n">${a.chunk}</td><td class="n">${a.attempt}</td><td>${
        escapeHtml(s.lane)
      }</td><td class="mono">${escapeHtml(clip(a.range ?? "—"))}</td><td class="n">${
        a.rows === undefined ? "—" : fmtNum(a.rows)
      }</td><td class="n">${a.bytes === undefined ? "—" : bytes(a.bytes)}</td>` +
      `<td class="n">${clockOrMs(s.durationMs)}</td><td class="n">${rate}</td>` +
      `<td class="o ${a.outcome}">${a.outcome}</td></tr>`;
  }).join("");
  return `<h2>Slowest chunks</h2><table id="slowest"><thead><tr><th>export</th><th>chunk</th>` +
    `<th>attempt</th><th>lane</th><th>range</th><th>rows</th><th>bytes</th><th>duration</th>` +
    `<th>rows/s</th><th>outcome</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function messagesSection(input: ReportInput): string {
  const items = (kind: "warning" | "error") => {
    const all = input.exports.flatMap((e) =>
      ((kind === "warning" ? e.warnings : e.errors) ?? []).map((text) => ({ e, text }))
    );
    const shown = all.slice(0, MESSAGE_LIMIT).map(({ e, text }) =>
      `<li class="${kind}"><b>${escapeHtml(e.metrics.exportName)}</b>: ${
        escapeHtml(clip(text, MESSAGE_CHARS))
      }</li>`
    );
    const more = all.length - shown.length;
    return more > 0
      ? [...shown, `<li class="none">${fmtNum(more)} more ${kind}s (see the run's log)</li>`]
      : shown;
  };
  const errors = [
    ...items("error"),
    ...input.exports.filter((e) => e.metrics.errorMessage && !(e.errors?.length)).map((e) =>
      `<li class="error"><b>${escapeHtml(e.metrics.exportName)}</b>: ${
        escapeHtml(clip(e.metrics.errorMessage!, MESSAGE_CHARS))
      }</li>`
    ),
  ];
  const warnings = items("warning");
  const list = (id: string, li: string[], none: string) =>
    `<ul id="${id}">${li.length > 0 ? li.join("") : `<li class="none">${none}</li>`}</ul>`;
  return `<h2>Warnings and errors</h2>${list("errors", errors, "no errors")}${
    list("warnings", warnings, "no warnings")
  }`;
}

function manifestSection(input: ReportInput): string {
  const rows = input.exports.map((e) => {
    const m = e.manifest ?? { status: "not_checked" as const };
    const word = m.status === "not_checked" ? "not checked" : m.status;
    return `<li class="manifest ${m.status}" data-export="${
      escapeHtml(e.metrics.exportName)
    }" data-status="${m.status}"><b>${escapeHtml(e.metrics.exportName)}</b>: ${word}${
      m.detail ? ` — ${escapeHtml(m.detail)}` : ""
    }</li>`;
  }).join("");
  return `<h2>Manifest check</h2><ul id="manifest">${rows}</ul>`;
}

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

function clockOrMs(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : clock(ms);
}
