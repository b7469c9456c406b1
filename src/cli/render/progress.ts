/**
 * The progress renderer: the single owner of stderr while exports run. On a terminal it keeps one
 * live line per running export (redrawn in place, throttled) and turns each into a final `✓`/`✗`
 * line; elsewhere (CI, pipes, tests) it prints plain timestamped lines plus the summary block of
 * each export. Pure: time comes from `now`, text goes to `write`.
 *
 * Layer: cli.
 *
 * @module
 */
import type { Outcome, RivetEvent } from "../../core/events.ts";
import { redact } from "../../_util/redact.ts";
import { formatBytes, renderOutcome } from "./summary.ts";

/** Options of {@linkcode createProgressRenderer}. */
export interface ProgressRendererOptions {
  /** Whether `write` reaches a terminal: live lines with ANSI escapes, else plain lines. */
  readonly tty: boolean;
  /**
   * Receives all output. On a terminal it must pass ANSI escapes through unchanged; the renderer
   * redacts every text it interpolates itself.
   */
  readonly write: (text: string) => void;
  /** Clock in epoch milliseconds. Default `Date.now`. */
  readonly now?: () => number;
  /** Terminal width; live lines are cut to `columns - 1` so they never wrap. Default 80. */
  readonly columns?: number;
}

/** Draws run events; see {@linkcode createProgressRenderer}. */
export interface ProgressRenderer {
  /** Draws one event. Never throws. Events after `close` are ignored. */
  emit(event: RivetEvent): void;
  /**
   * Stops the timers and, on a terminal, draws the last state of any export still running and
   * leaves the cursor on the line below the block, so later output starts on a fresh line.
   */
  close(): void;
}

/** Live redraws happen at most this often. */
export const redrawIntervalMs = 200;
/** Without a terminal, a progress line per export at most this often (plus one per chunk). */
export const plainIntervalMs = 5000;
// Elapsed time and rates change without events: refresh the live block this often.
const tickMs = 1000;

const esc = "\x1b[";

interface ExportProgress {
  readonly name: string;
  readonly startedAt: number;
  rows: number;
  /** Chunks planned; 0 while unknown (not chunked, or keyset pages). */
  chunksTotal: number;
  chunksDone: number;
  /** Chunks already done by an earlier attempt, not counted for the ETA. */
  chunksDoneBefore: number;
  /** Last plain progress line (non-TTY). */
  lastLineAt: number;
}

/** A count with thousands separators: `1,234,567`. */
export const formatCount = (n: number): string => Math.round(n).toLocaleString("en-US");

/** `850 ms`, `4.2 s`, `3m 05s`, `2h 07m`. */
export function formatDurationMs(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return formatClock(ms);
}

/** Whole seconds: `0s`, `42s`, `3m 05s`, `2h 07m`. */
function formatClock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, "0");
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
}

function rowsPerSecond(rows: number, ms: number): number {
  return ms > 0 ? (rows * 1000) / ms : 0;
}

function chunksText(p: ExportProgress): string | undefined {
  if (p.chunksTotal > 0) return `${p.chunksDone}/${p.chunksTotal} chunks`;
  return p.chunksDone > 0 ? `${p.chunksDone} chunks` : undefined;
}

/** Remaining time from the pace of the chunks completed in this run; undefined when unknown. */
function etaMs(p: ExportProgress, elapsed: number): number | undefined {
  const doneNow = p.chunksDone - p.chunksDoneBefore;
  if (p.chunksTotal <= 0 || doneNow <= 0) return undefined;
  return (elapsed / doneNow) * Math.max(0, p.chunksTotal - p.chunksDone);
}

function cut(line: string, columns: number): string {
  const chars = [...line];
  const max = Math.max(1, columns - 1);
  return chars.length <= max ? line : chars.slice(0, max - 1).join("") + "…";
}

/** The final line of an export on a terminal. */
function finalLine(o: Outcome, width: number): string {
  const mark = o.status === "success" ? "✓" : o.status === "skipped" ? "•" : "✗";
  const parts = [
    `${mark} ${o.export.padEnd(width)}`,
    ...(o.status === "skipped" ? ["skipped"] : []),
    `${formatCount(o.rows)} rows`,
    `${o.files} ${o.files === 1 ? "file" : "files"}`,
    formatBytes(o.bytes),
    formatDurationMs(o.durationMs),
    `peak RSS ${o.peakRssMb} MB`,
  ];
  if (o.error) parts.push(`error: ${o.error.message.split("\n")[0]}`);
  return redact(parts.join("  "));
}

/**
 * Creates the renderer that owns stderr during a run.
 *
 * Without a terminal: `Warning: <message>` per warning, the {@linkcode renderOutcome} block at
 * each `export_finished`, and timestamped lines `<ISO> <export>: started (<mode>)`,
 * `<ISO> <export>: <rows> rows, <done>/<total> chunks, <rate> rows/s` (at most every 5 s per
 * export, and at each completed chunk when the chunk count is known) and
 * `<ISO> <export>: chunk <i> failed (attempt <n>): <message>`.
 *
 * On a terminal: one live line per running export (rows, chunks, rows/s, elapsed, ETA from the
 * chunks), redrawn in place at most every 200 ms and only when its text changed; warnings and
 * chunk failures are printed above the block; at `export_finished` the line becomes a permanent
 * `✓`/`✗` line (rows, files, bytes, duration, peak RSS, error), which replaces the summary block.
 *
 * @param options Terminal or not, the writer, the clock and the width.
 * @returns The renderer; call `close()` when the run ends.
 *
 * @example Plain lines
 * ```ts
 * import { createProgressRenderer } from "./progress.ts";
 * let out = "";
 * const r = createProgressRenderer({ tty: false, write: (t) => (out += t), now: () => 0 });
 * r.emit({ type: "export_started", export: "orders", runId: "r1", mode: "full" });
 * r.close();
 * if (out !== "1970-01-01T00:00:00.000Z orders: started (full)\n") throw new Error(out);
 * ```
 */
export function createProgressRenderer(options: ProgressRendererOptions): ProgressRenderer {
  const now = options.now ?? Date.now;
  const columns = options.columns ?? 80;
  const { write } = options;
  const live = new Map<string, ExportProgress>();
  let closed = false;

  const progressOf = (name: string): ExportProgress => {
    let p = live.get(name);
    if (!p) {
      const at = now();
      p = {
        name,
        startedAt: at,
        rows: 0,
        chunksTotal: 0,
        chunksDone: 0,
        chunksDoneBefore: 0,
        lastLineAt: at,
      };
      live.set(name, p);
    }
    return p;
  };

  /** Applies an event to the per-export counters; true when the live view changed. */
  const track = (event: RivetEvent): boolean => {
    switch (event.type) {
      case "export_started":
        progressOf(event.export);
        return true;
      case "chunks_planned": {
        const p = progressOf(event.export);
        p.chunksTotal = event.total;
        p.chunksDone = event.done;
        p.chunksDoneBefore = event.done;
        return true;
      }
      case "batch_read":
        progressOf(event.export).rows += event.rows;
        return true;
      case "chunk_completed":
        progressOf(event.export).chunksDone += 1;
        return true;
      default:
        return false;
    }
  };

  // ---- plain lines (no terminal) ----
  const plainLine = (name: string, text: string) =>
    write(redact(`${new Date(now()).toISOString()} ${name}: ${text}`) + "\n");
  const plainProgress = (p: ExportProgress) => {
    const at = now();
    p.lastLineAt = at;
    const rate = formatCount(rowsPerSecond(p.rows, at - p.startedAt));
    const chunks = chunksText(p);
    plainLine(p.name, `${formatCount(p.rows)} rows, ${chunks ? `${chunks}, ` : ""}${rate} rows/s`);
  };
  const emitPlain = (event: RivetEvent) => {
    track(event);
    switch (event.type) {
      case "export_started":
        plainLine(event.export, `started (${event.mode})`);
        break;
      case "chunks_planned":
        plainLine(
          event.export,
          `${event.total} chunks planned${event.done > 0 ? `, ${event.done} already done` : ""}`,
        );
        break;
      case "batch_read": {
        const p = progressOf(event.export);
        if (now() - p.lastLineAt >= plainIntervalMs) plainProgress(p);
        break;
      }
      case "chunk_completed": {
        const p = progressOf(event.export);
        if (p.chunksTotal > 0) plainProgress(p);
        break;
      }
      case "chunk_failed":
        plainLine(
          event.export,
          `chunk ${event.chunk} failed (attempt ${event.attempt}): ${event.message}${
            event.willRetry ? " (will retry)" : ""
          }`,
        );
        break;
      case "warning":
        write(redact(`Warning: ${event.message}`) + "\n");
        break;
      case "export_finished":
        live.delete(event.outcome.export);
        write(renderOutcome(event.outcome));
        break;
      default:
        break;
    }
  };

  // ---- live block (terminal) ----
  /** Lines of the live block currently on screen; the cursor sits on the line below them. */
  let drawnLines = 0;
  let drawnFrame: string | undefined;
  let lastDrawAt = -Infinity;
  let pending: ReturnType<typeof setTimeout> | undefined;
  let ticker: ReturnType<typeof setInterval> | undefined;

  const nameWidth = (extra = 0) => Math.max(extra, ...[...live.keys()].map((n) => n.length));

  const frame = (): string[] => {
    const at = now();
    const width = nameWidth();
    return [...live.values()].map((p) => {
      const elapsed = at - p.startedAt;
      const parts = [`▸ ${p.name.padEnd(width)}`, `${formatCount(p.rows)} rows`];
      const chunks = chunksText(p);
      if (chunks) parts.push(chunks);
      parts.push(`${formatCount(rowsPerSecond(p.rows, elapsed))} rows/s`, formatClock(elapsed));
      if (p.chunksTotal > 0) {
        const eta = etaMs(p, elapsed);
        parts.push(`ETA ${eta === undefined ? "--" : formatClock(eta)}`);
      }
      return cut(redact(parts.join("  ")), columns);
    });
  };

  /** Rewrites the block from its first line: `above` lines stay, the new frame follows. */
  const paint = (above: readonly string[], lines: readonly string[]) => {
    let text = drawnLines > 0 ? `${esc}${drawnLines}A\r` : "";
    for (const line of [...above, ...lines]) text += `${esc}2K${line}\n`;
    // Fewer lines than before: clear what is left of the old block below the cursor.
    if (above.length + lines.length < drawnLines) text += `${esc}J`;
    drawnLines = lines.length;
    drawnFrame = lines.join("\n");
    lastDrawAt = now();
    write(text);
  };

  const clearPending = () => {
    if (pending !== undefined) clearTimeout(pending);
    pending = undefined;
  };

  const draw = () => {
    clearPending();
    const lines = frame();
    // Nothing changed: write nothing, so a still terminal never flickers.
    const same = lines.length === 0 || lines.join("\n") === drawnFrame;
    if (same && lines.length === drawnLines) return;
    paint([], lines);
  };

  const scheduleDraw = () => {
    const wait = lastDrawAt + redrawIntervalMs - now();
    if (wait <= 0) return draw();
    if (pending === undefined) {
      const timer = setTimeout(draw, wait);
      Deno.unrefTimer(timer);
      pending = timer;
    }
  };

  const updateTicker = () => {
    if (live.size > 0 && ticker === undefined) {
      const timer = setInterval(scheduleDraw, tickMs);
      Deno.unrefTimer(timer);
      ticker = timer;
    } else if (live.size === 0 && ticker !== undefined) {
      clearInterval(ticker);
      ticker = undefined;
    }
  };

  const printAbove = (lines: readonly string[]) => {
    clearPending();
    paint(lines, frame());
  };

  const emitLive = (event: RivetEvent) => {
    switch (event.type) {
      case "warning":
        printAbove(redact(`Warning: ${event.message}`).split("\n"));
        return;
      case "chunk_failed":
        printAbove([
          redact(
            `! ${event.export}: chunk ${event.chunk} failed (attempt ${event.attempt})${
              event.willRetry ? ", will retry" : ""
            }: ${event.message.split("\n")[0]}`,
          ),
        ]);
        return;
      case "export_finished": {
        const width = nameWidth(event.outcome.export.length);
        live.delete(event.outcome.export);
        updateTicker();
        printAbove([finalLine(event.outcome, width)]);
        return;
      }
      default:
        if (track(event)) {
          updateTicker();
          scheduleDraw();
        }
    }
  };

  return {
    emit(event) {
      if (closed) return;
      try {
        if (options.tty) emitLive(event);
        else emitPlain(event);
      } catch {
        // A sink must not throw (core/events.ts): a broken stderr must not fail the export.
      }
    },
    close() {
      if (closed) return;
      closed = true;
      clearPending();
      if (ticker !== undefined) clearInterval(ticker);
      ticker = undefined;
      if (!options.tty) return;
      try {
        draw();
      } catch {
        // Same as emit: never throw from the renderer.
      }
      drawnLines = 0;
    },
  };
}
