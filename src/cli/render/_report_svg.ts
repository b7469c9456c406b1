/**
 * The drawings of the run report (private to `report_html.ts`): the chunk timeline and the
 * throughput and RSS plots, as inline SVG.
 *
 * The timeline must stay small for 10,000 attempts, so each bar carries only what the page needs:
 * its time axis is in milliseconds inside a scaled group (`x` is the start, `width` the duration,
 * both exact), lanes are groups translated down (no `y` per bar), the bar height and colours come
 * from CSS classes, and the rest of the hover text (rows, bytes, range, error) lives in one JSON
 * block the tooltip script reads.
 *
 * Layer: cli.
 *
 * @module
 */
import type { ChunkAttempt, RunTrace, TraceSample } from "../../core/run_trace.ts";

/** Width of the drawing area of every plot, in CSS pixels (the lane labels sit left of it). */
export const PLOT_WIDTH = 1100;
/** Room for lane labels left of the plots. */
export const LABEL_WIDTH = 150;
const LANE_HEIGHT = 18;
const GROUP_GAP = 24;

/** Short CSS class of each outcome (one letter keeps 10,000 bars small). */
export const OUTCOME_CLASS: Readonly<Record<ChunkAttempt["outcome"], string>> = {
  completed: "c",
  failed: "f",
  retried: "r",
  interrupted: "i",
  running: "u",
};

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** One export's trace placed on the shared time axis of the page. */
export interface PlacedTrace {
  readonly trace: RunTrace;
  /** Milliseconds from the earliest start of the page's traces to this trace's start. */
  readonly offsetMs: number;
  /**
   * The export run as a whole, drawn as one bar when its trace has no chunk attempts (a full or
   * incremental export, or a chunked one that failed before its first chunk).
   */
  readonly whole?: WholeRun;
  /** The group's label (default: the export's name). */
  readonly label?: string;
}

/** What the bar of an export run without chunk attempts shows. */
export interface WholeRun {
  /** `c` succeeded, `f` failed, `u` no end recorded (still running, or the process was killed). */
  readonly outcome: "c" | "f" | "u";
  readonly rows: number;
  readonly bytes?: number | undefined;
}

/** End of an attempt; a running one (the run died) is drawn to the end of its trace. */
export function endOf(attempt: ChunkAttempt, traceEndMs: number): number {
  return attempt.endMs ?? Math.max(traceEndMs, attempt.startMs);
}

/** The last moment a trace knows of (the end of its last attempt or sample). */
export function traceEndMs(trace: RunTrace): number {
  let end = 0;
  for (const a of trace.chunks) end = Math.max(end, a.endMs ?? a.startMs);
  for (const s of trace.samples) end = Math.max(end, s.tMs);
  const finished = trace.finishedAt === undefined
    ? NaN
    : Date.parse(trace.finishedAt) - Date.parse(trace.startedAt);
  return Number.isFinite(finished) ? Math.max(end, finished) : end;
}

/** Places traces on one axis by their start time (an unparsable start counts as the earliest). */
export function placeTraces(traces: readonly RunTrace[]): PlacedTrace[] {
  const starts = traces.map((t) => Date.parse(t.startedAt));
  const known = starts.filter(Number.isFinite);
  const first = known.length > 0 ? Math.min(...known) : 0;
  return traces.map((trace, i) => ({
    trace,
    offsetMs: Number.isFinite(starts[i]!) ? starts[i]! - first : 0,
  }));
}

/**
 * The traces with at most `limit` chunk attempts between them, so that a page of many exports
 * (or of a run that several processes shared) stays as small as one trace's: past the limit it
 * keeps every notable attempt (failed, retried, interrupted, running, a retry, after a
 * quarantine), then the longest ones, and counts the rest in each trace's `omittedChunks`.
 */
export function boundAttempts(placed: readonly PlacedTrace[], limit: number): PlacedTrace[] {
  const total = placed.reduce((n, p) => n + p.trace.chunks.length, 0);
  if (total <= limit) return [...placed];
  const ranked: { a: ChunkAttempt; notable: boolean; ms: number }[] = [];
  for (const p of placed) {
    const end = traceEndMs(p.trace);
    for (const a of p.trace.chunks) {
      ranked.push({ a, notable: notable(a), ms: endOf(a, end) - a.startMs });
    }
  }
  // Notable attempts first, then the longest.
  ranked.sort((x, y) => Number(y.notable) - Number(x.notable) || y.ms - x.ms);
  const kept = new Set(ranked.slice(0, limit).map((r) => r.a));
  return placed.map((p) => {
    const chunks = p.trace.chunks.filter((a) => kept.has(a));
    const dropped = p.trace.chunks.length - chunks.length;
    return dropped === 0 ? p : {
      ...p,
      trace: { ...p.trace, chunks, omittedChunks: (p.trace.omittedChunks ?? 0) + dropped },
    };
  });
}

/**
 * Hover data of notable attempts on a page over the detail limit, in bytes: with 10,000 bars of
 * at most ~80 bytes each, the page stays under 1 MB even if every attempt failed.
 */
const DETAIL_BUDGET = 80_000;
/** Longest range or error text in the hover data (the full first line is in the run's logs). */
const CLIP = 200;

/** `text` cut to `max` characters, with an ellipsis when cut. */
export function clip(text: string, max = CLIP): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** Whether an attempt is worth its full hover details when the page must be cut down. */
function notable(a: ChunkAttempt): boolean {
  return a.outcome !== "completed" || a.attempt > 1 || (a.quarantined ?? 0) > 0;
}

/**
 * The timeline: per export a labelled group of lanes, one `<rect class="k …">` per attempt with
 * `data-c` (chunk), `data-a` (attempt), inside `<g class="lane" data-l="…" data-e="…">`.
 * `detailLimit`: above this many attempts on the page, only `keep` and notable ones (not completed,
 * retries, quarantines; within {@linkcode DETAIL_BUDGET} bytes) get rows/bytes/range/error in the
 * hover data. Range and error texts are clipped to {@linkcode CLIP} characters.
 */
export function timelineSvg(
  placed: readonly PlacedTrace[],
  detailLimit: number,
  keep: ReadonlySet<ChunkAttempt>,
): { svg: string; details: Record<string, unknown[]>; spanMs: number } {
  const spanMs = Math.max(
    1,
    ...placed.map((p) => p.offsetMs + traceEndMs(p.trace)),
  );
  const scale = PLOT_WIDTH / spanMs;
  const total = placed.reduce((n, p) => n + p.trace.chunks.length, 0);
  const details: Record<string, unknown[]> = {};
  // Bytes of hover data left for notable attempts on a big page (the slowest always keep theirs).
  let budget = DETAIL_BUDGET;
  const parts: string[] = [];
  const labels: string[] = [];
  let y = 0;
  placed.forEach((p, e) => {
    const end = traceEndMs(p.trace);
    labels.push(
      `<text class="ex" x="0" y="${y + 12}">${
        escapeHtml(clip(p.label ?? p.trace.exportName, 90))
      }</text>`,
    );
    y += LANE_HEIGHT;
    if (p.trace.chunks.length === 0 && p.whole) {
      // One lane, one bar: the export run from its start to its end.
      labels.push(`<text class="ln" x="8" y="${y + 12}">run</text>`);
      parts.push(
        `<g class="lane" data-e="${e}" data-l="0" transform="translate(${p.offsetMs} ${y})">` +
          `<rect class="w ${p.whole.outcome}" x="0" width="${end}"/></g>`,
      );
      details[`${e}.w`] = [p.whole.rows, p.whole.bytes ?? null];
      y += LANE_HEIGHT + GROUP_GAP;
      return;
    }
    const laneCount = Math.max(
      p.trace.lanes.length,
      ...p.trace.chunks.map((a) => a.lane + 1),
    );
    const byLane: string[][] = Array.from({ length: laneCount }, () => []);
    for (const a of p.trace.chunks) {
      const cls = `k ${OUTCOME_CLASS[a.outcome]}${a.attempt > 1 ? " x" : ""}${
        (a.quarantined ?? 0) > 0 ? " q" : ""
      }`;
      const width = Math.max(0, endOf(a, end) - a.startMs);
      byLane[a.lane]!.push(
        `<rect class="${cls}" data-c="${a.chunk}" data-a="${a.attempt}" x="${a.startMs}" width="${width}"/>`,
      );
      const wanted = keep.has(a) || total <= detailLimit || (notable(a) && budget > 0);
      if (wanted) {
        const entry = [
          a.rows ?? null,
          a.bytes ?? null,
          a.range === undefined ? null : clip(a.range),
          a.error === undefined ? null : clip(a.error),
          a.quarantined ?? null,
        ];
        details[`${e}.${a.chunk}.${a.attempt}`] = entry;
        if (total > detailLimit) budget -= JSON.stringify(entry).length + 16;
      }
    }
    byLane.forEach((bars, l) => {
      const name = p.trace.lanes[l] ?? `lane ${l + 1}`;
      labels.push(
        `<text class="ln" x="8" y="${y + 12}">${escapeHtml(clip(name, 22))}</text>`,
      );
      parts.push(
        `<g class="lane" data-e="${e}" data-l="${l}" transform="translate(${p.offsetMs} ${y})">${
          bars.join("")
        }</g>`,
      );
      y += LANE_HEIGHT;
    });
    y += GROUP_GAP;
  });
  const height = y + 20;
  const axis = timeAxis(spanMs, height - 20);
  const svg =
    `<svg id="timeline" class="tl" width="${LABEL_WIDTH + PLOT_WIDTH + 20}" height="${height}" ` +
    `data-scale="${scale}">${labels.join("")}<g transform="translate(${LABEL_WIDTH} 0)">${axis}` +
    `<g id="bars" transform="scale(${scale} 1)">${parts.join("")}</g></g></svg>`;
  return { svg, details, spanMs };
}

/** Vertical grid lines with seconds/minutes labels along the bottom of a plot. */
function timeAxis(spanMs: number, bottom: number): string {
  const steps = [1e3, 5e3, 1e4, 3e4, 6e4, 3e5, 6e5, 18e5, 36e5, 108e5, 432e5, 864e5];
  const step = steps.find((s) => spanMs / s <= 10) ?? spanMs / 10;
  const out: string[] = [];
  for (let t = 0; t <= spanMs; t += step) {
    const x = (t / spanMs * PLOT_WIDTH).toFixed(1);
    out.push(
      `<line class="grid" x1="${x}" x2="${x}" y1="0" y2="${bottom}"/>` +
        `<text class="tick" x="${x}" y="${bottom + 14}">${clock(t)}</text>`,
    );
  }
  return out.join("");
}

/** `m:ss` or `h:mm:ss` from milliseconds. */
export function clock(ms: number): string {
  const s = Math.round(ms / 1000);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh > 0 ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** One series of a line plot: points in (ms on the page's axis, value). */
export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

/** Rows per second between consecutive samples, at the later sample's time. */
export function throughputSeries(p: PlacedTrace): Series {
  const s: readonly TraceSample[] = p.trace.samples;
  const points: [number, number][] = [];
  for (let i = 1; i < s.length; i++) {
    const dt = s[i]!.tMs - s[i - 1]!.tMs;
    if (dt <= 0) continue;
    points.push([p.offsetMs + s[i]!.tMs, Math.max(0, (s[i]!.rows - s[i - 1]!.rows) / dt * 1000)]);
  }
  return { name: p.label ?? p.trace.exportName, points };
}

/** RSS in MiB at each sample. */
export function rssSeries(p: PlacedTrace): Series {
  return {
    name: p.label ?? p.trace.exportName,
    points: p.trace.samples.map((s) => [p.offsetMs + s.tMs, s.rssBytes / 1048576] as const),
  };
}

/** A line plot of several series on the page's time axis, with a labelled maximum. */
export function linePlot(id: string, series: readonly Series[], spanMs: number, unit: string) {
  const height = 160;
  const max = Math.max(0, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const top = max > 0 ? max * 1.1 : 1;
  const lines = series.map((s, i) => {
    const pts = s.points.map(([t, v]) =>
      `${(t / spanMs * PLOT_WIDTH).toFixed(1)},${(height - v / top * height).toFixed(1)}`
    ).join(" ");
    return `<polyline class="s s${i % 6}" data-n="${s.points.length}" points="${pts}">` +
      `<title>${escapeHtml(s.name)}</title></polyline>`;
  }).join("");
  const legend = series.map((s, i) =>
    `<text class="lg s${i % 6}" x="0" y="${30 + i * 14}">${escapeHtml(s.name)}</text>`
  ).join("");
  const empty = series.every((s) => s.points.length === 0)
    ? `<text class="tick" x="${LABEL_WIDTH + 10}" y="80">no samples recorded</text>`
    : "";
  return `<svg id="${id}" class="plot" width="${LABEL_WIDTH + PLOT_WIDTH + 20}" height="${
    height + 30
  }">` +
    `<text class="tick" x="0" y="12">max ${fmtNum(max)} ${unit}</text>${legend}${empty}` +
    `<g transform="translate(${LABEL_WIDTH} 0)">${timeAxis(spanMs, height)}` +
    `<line class="axis" x1="0" x2="${PLOT_WIDTH}" y1="${height}" y2="${height}"/>${lines}</g></svg>`;
}

/** A number with thousands separators and at most one decimal. */
export function fmtNum(n: number): string {
  return n.toLocaleString("en-US", { maximumFractionDigits: n < 100 ? 1 : 0 });
}
