/**
 * Records the {@linkcode RunTrace} of one export run from its events and RSS readings, in memory
 * bounded whatever the run's length: chunk attempts past {@linkcode TRACE_LIMITS.chunks} keep the
 * failed and retried ones and the slowest completed ones (a min-heap of the slowest, so a run of
 * 100,000 chunks never holds 100,000 entries), and samples past {@linkcode TRACE_LIMITS.samples}
 * are thinned evenly (every other one dropped, the sampling interval doubled).
 *
 * Layer: pipeline.
 *
 * @module
 */
import type { ErrorInfo } from "../core/errors.ts";
import type { RivetEvent } from "../core/events.ts";
import { redact } from "../_util/redact.ts";
import type { ChunkBoundsEntry } from "../core/state.ts";
import {
  type ChunkAttempt,
  type RunTrace,
  TRACE_LIMITS,
  type TraceSample,
} from "../core/run_trace.ts";

/** Options of {@linkcode createTraceRecorder}. */
export interface TraceRecorderOptions {
  readonly runId: string;
  readonly exportName: string;
  /** When the run started: times in the trace count from here. */
  readonly startedAt: Date;
  /** The clock, epoch milliseconds (default `Date.now`). */
  readonly now?: () => number;
  /** The first sampling interval, ms (default 250); it doubles each time the samples are thinned. */
  readonly sampleEveryMs?: number;
  /** Reads the resident set size, bytes: called once per sample taken (not per event). */
  readonly rss?: () => number;
  /** Bounds (default {@linkcode TRACE_LIMITS}); smaller in tests. */
  readonly limits?: { readonly chunks: number; readonly samples: number };
}

/** Receives a run's events and memory readings; gives the trace. */
export interface TraceRecorder {
  /** Feeds one event (events of other exports are ignored). Never throws. */
  event(event: RivetEvent): void;
  /** Feeds one resident-set-size reading, bytes. */
  rss(bytes: number): void;
  /**
   * The trace so far. With `finished`, attempts still open are `interrupted` (the run ended
   * without their outcome) and a last sample is taken; without it they are `running`.
   */
  trace(finished?: Date): RunTrace;
}

/**
 * A chunk's window as text for the trace: `start .. end`, an open end left empty.
 *
 * @param bounds The chunk's rendered bounds.
 * @returns E.g. `1 .. 250`.
 */
export function rangeText(bounds: ChunkBoundsEntry): string {
  return `${bounds.startKey ?? ""} .. ${bounds.endKey ?? ""}`;
}

/** The `chunk_started` event of an attempt. */
export type ChunkStartedEvent = Extract<RivetEvent, { type: "chunk_started" }>;

/**
 * The `chunk_started` event of a chunk attempt on a lane.
 *
 * @param exportName The export.
 * @param task The chunk's index, attempt and bounds.
 * @param lane The worker slot that runs it.
 * @returns The event.
 */
export function chunkStarted(
  exportName: string,
  task: {
    readonly chunkIndex: number;
    readonly attempt: number;
    readonly bounds: ChunkBoundsEntry;
  },
  lane: number,
): ChunkStartedEvent {
  return {
    type: "chunk_started",
    export: exportName,
    chunk: task.chunkIndex,
    attempt: task.attempt,
    lane,
    range: rangeText(task.bounds),
  };
}

/**
 * The events of a chunk whose runner crashed and that runs again on a new runner within the
 * same claim: the attempt failed (will retry), and the chunk started again. The trace, the
 * progress lines and the NDJSON events all show the crash.
 *
 * @param started The attempt's `chunk_started` event.
 * @param failure Why the runner ended.
 * @param quarantined Files it committed unreported, moved aside.
 * @returns The two events, in order.
 */
export function crashRetried(
  started: ChunkStartedEvent,
  failure: ErrorInfo,
  quarantined: number,
): RivetEvent[] {
  const { type: _, ...chunk } = started;
  return [
    {
      ...chunk,
      type: "chunk_failed",
      message: redact(failure.message),
      willRetry: true,
      quarantined,
    },
    started,
  ];
}

/**
 * The lowest lane not in `busy`: a worker's row of the timeline is reused once its chunk is done.
 *
 * @param busy Lanes of the chunks in flight.
 * @returns The lane of the next chunk.
 */
export function freeLane(busy: ReadonlySet<number>): number {
  let lane = 0;
  while (busy.has(lane)) lane++;
  return lane;
}

/** Longest error text kept per attempt (its first line). */
const MAX_ERROR_CHARS = 300;

interface OpenAttempt {
  readonly chunk: number;
  readonly attempt: number;
  readonly lane: number;
  readonly startMs: number;
  readonly range?: string;
  readonly quarantined?: number;
}

/**
 * A new recorder for one export run.
 *
 * @param options The run, its start and the clock.
 * @returns The recorder.
 *
 * @example
 * ```ts
 * import { createTraceRecorder } from "./run_trace_recorder.ts";
 * let t = 0;
 * const r = createTraceRecorder({
 *   runId: "r1",
 *   exportName: "orders",
 *   startedAt: new Date(0),
 *   now: () => t,
 * });
 * r.event({ type: "chunk_started", export: "orders", chunk: 0, attempt: 1, lane: 0 });
 * t = 40;
 * r.event({ type: "chunk_completed", export: "orders", chunk: 0, rows: 5, files: 1, durationMs: 40 });
 * const trace = r.trace(new Date(50));
 * if (trace.chunks[0]?.outcome !== "completed" || trace.chunks[0].endMs !== 40) throw new Error();
 * ```
 */
export function createTraceRecorder(options: TraceRecorderOptions): TraceRecorder {
  const now = options.now ?? Date.now;
  const origin = options.startedAt.getTime();
  const limits = options.limits ?? TRACE_LIMITS;
  const elapsed = () => Math.max(0, now() - origin);
  const open = new Map<number, OpenAttempt>();
  // Files a failed attempt left that were moved aside: told to the chunk's next attempt.
  const quarantinedNext = new Map<number, number>();
  // The last attempt of each chunk that failed or was interrupted and may start again: a chunk
  // run again within one claim (its runner crashed) keeps the claim's attempt number, so the
  // trace numbers it after the last one instead. Only chunks that failed are held.
  const lastAttempt = new Map<number, number>();
  const failed: ChunkAttempt[] = [];
  const slowest = new MinHeap<ChunkAttempt>((a) => a.endMs! - a.startMs);
  let finishedCount = 0;
  let lanes = 0;
  let rows = 0;
  let rssBytes = 0;
  let samples: TraceSample[] = [];
  let every = options.sampleEveryMs ?? 250;
  let lastSampleMs = -Infinity;

  const sample = (force: boolean, tMs = elapsed()) => {
    if (!force && tMs - lastSampleMs < every) return;
    if (options.rss) rssBytes = options.rss();
    if (samples.length >= limits.samples) {
      // Keep the first and every other one after it: still even over the run, half as dense.
      samples = samples.filter((_, i) => i % 2 === 0);
      every *= 2;
    }
    samples.push({ tMs, rows, rssBytes });
    lastSampleMs = tMs;
  };

  // Completed attempts get what room the failed ones leave; the fastest go first.
  const fitSlowest = () => {
    const room = Math.max(0, limits.chunks - failed.length - open.size);
    while (slowest.size > room) slowest.pop();
  };

  const finish = (attempt: ChunkAttempt) => {
    finishedCount++;
    if (attempt.outcome === "completed") {
      slowest.push(attempt);
    } else if (failed.length < limits.chunks) {
      failed.push(attempt);
    }
    fitSlowest();
  };

  const onEvent = (event: RivetEvent) => {
    switch (event.type) {
      case "batch_read":
        rows += event.rows;
        sample(samples.length === 0);
        return;
      case "chunk_started": {
        // A start without an end (a whole-export retry began again) ended when this one began.
        const earlier = open.get(event.chunk);
        if (earlier) {
          open.delete(event.chunk);
          lastAttempt.set(event.chunk, earlier.attempt);
          finish({ ...earlier, endMs: elapsed(), outcome: "interrupted" });
        }
        const before = lastAttempt.get(event.chunk);
        const attempt = before === undefined ? event.attempt : Math.max(event.attempt, before + 1);
        const lane = event.lane ?? 0;
        lanes = Math.max(lanes, lane + 1);
        const quarantined = quarantinedNext.get(event.chunk);
        quarantinedNext.delete(event.chunk);
        open.set(event.chunk, {
          chunk: event.chunk,
          attempt,
          lane,
          startMs: elapsed(),
          ...(event.range === undefined ? {} : { range: event.range }),
          ...(quarantined === undefined ? {} : { quarantined }),
        });
        fitSlowest();
        return;
      }
      case "chunk_completed": {
        const started = open.get(event.chunk);
        if (!started) return;
        open.delete(event.chunk);
        lastAttempt.delete(event.chunk);
        finish({
          ...started,
          endMs: elapsed(),
          outcome: "completed",
          rows: event.rows,
          ...(event.bytes === undefined ? {} : { bytes: event.bytes }),
        });
        return;
      }
      case "chunk_failed": {
        const started = open.get(event.chunk);
        if (event.quarantined) quarantinedNext.set(event.chunk, event.quarantined);
        if (!started) return;
        open.delete(event.chunk);
        if (event.willRetry) lastAttempt.set(event.chunk, started.attempt);
        else lastAttempt.delete(event.chunk);
        const firstLine = event.message.split("\n", 1)[0]!;
        finish({
          ...started,
          endMs: elapsed(),
          outcome: event.willRetry ? "retried" : "failed",
          error: firstLine.length > MAX_ERROR_CHARS
            ? `${firstLine.slice(0, MAX_ERROR_CHARS - 1)}…`
            : firstLine,
        });
        return;
      }
    }
  };

  return {
    event(event) {
      if (!("export" in event) || event.export !== options.exportName) return;
      onEvent(event);
    },
    rss(bytes) {
      rssBytes = bytes;
    },
    trace(finished) {
      const endMs = finished ? Math.max(0, finished.getTime() - origin) : undefined;
      const still: ChunkAttempt[] = [...open.values()].map((a) =>
        endMs === undefined
          ? { ...a, outcome: "running" }
          : { ...a, endMs: Math.max(a.startMs, endMs), outcome: "interrupted" }
      );
      if (endMs !== undefined) sample(true, endMs);
      const kept = [...failed, ...slowest.items(), ...still]
        .sort((a, b) => a.startMs - b.startMs || a.chunk - b.chunk || a.attempt - b.attempt)
        .slice(0, limits.chunks);
      const omitted = finishedCount + open.size - kept.length;
      return {
        version: 1,
        runId: options.runId,
        exportName: options.exportName,
        startedAt: options.startedAt.toISOString(),
        ...(finished ? { finishedAt: finished.toISOString() } : {}),
        lanes: Array.from({ length: lanes }, (_, i) => `worker ${i + 1}`),
        chunks: kept,
        ...(omitted > 0 ? { omittedChunks: omitted } : {}),
        samples: [...samples],
      };
    },
  };
}

/** A binary min-heap by `key`: the smallest is dropped first. */
class MinHeap<T> {
  #items: T[] = [];
  constructor(private readonly key: (item: T) => number) {}

  get size(): number {
    return this.#items.length;
  }

  items(): readonly T[] {
    return this.#items;
  }

  push(item: T): void {
    const a = this.#items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.key(a[parent]!) <= this.key(a[i]!)) break;
      [a[parent], a[i]] = [a[i]!, a[parent]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const a = this.#items;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    a[0] = last;
    let i = 0;
    while (true) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.key(a[l]!) < this.key(a[m]!)) m = l;
      if (r < a.length && this.key(a[r]!) < this.key(a[m]!)) m = r;
      if (m === i) return top;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
  }
}
