/**
 * Synthetic run traces and metrics for the run report tests: `n` chunks spread over `lanes`
 * workers, with chosen chunks failing once and being retried (a second attempt), as a chunked
 * `parallel: 3` run with one injected failure leaves them.
 *
 * @module
 */
import type { ChunkAttempt, RunTrace, TraceSample } from "../../src/core/run_trace.ts";
import type { MetricsEntry } from "../../src/core/state.ts";

export interface SyntheticRun {
  readonly trace: RunTrace;
  readonly metrics: MetricsEntry;
}

/**
 * A trace of `chunks` chunks on `lanes` lanes; each chunk in `failOnce` fails its first attempt
 * and completes on the second, on another lane. Deterministic.
 */
export function syntheticRun(
  options: {
    chunks: number;
    lanes?: number;
    failOnce?: readonly number[];
    exportName?: string;
    startedAt?: string;
    samples?: number;
  },
): SyntheticRun {
  const lanes = options.lanes ?? 3;
  const fail = new Set(options.failOnce ?? []);
  const free = Array.from({ length: lanes }, () => 0);
  const attempts: ChunkAttempt[] = [];
  let rowsTotal = 0;
  let bytesTotal = 0;
  const claim = (chunk: number, attempt: number, failed: boolean) => {
    const lane = free.indexOf(Math.min(...free));
    const startMs = free[lane]!;
    const durationMs = 200 + (chunk * 7919) % 900;
    const rows = 1000 + (chunk % 17) * 10;
    const first = chunk * 100_000 + 1;
    attempts.push({
      chunk,
      attempt,
      lane,
      startMs,
      endMs: startMs + durationMs,
      outcome: failed ? "failed" : "completed",
      range: `[${first}, ${first + 99_999}]`,
      ...(failed ? { error: "connection reset by peer (transient)" } : { rows, bytes: rows * 48 }),
    });
    if (!failed) {
      rowsTotal += rows;
      bytesTotal += rows * 48;
    }
    free[lane] = startMs + durationMs + 5;
  };
  for (let c = 1; c <= options.chunks; c++) {
    claim(c, 1, fail.has(c));
    if (fail.has(c)) claim(c, 2, false);
  }
  attempts.sort((a, b) => a.startMs - b.startMs);
  const endMs = Math.max(...free);
  const n = options.samples ?? 120;
  const samples: TraceSample[] = Array.from({ length: n }, (_, i) => ({
    tMs: Math.round(endMs * i / (n - 1)),
    rows: Math.round(rowsTotal * i / (n - 1)),
    rssBytes: (80 + 40 * Math.sin(i / 9) + i / 4) * 1048576,
  }));
  const startedAt = options.startedAt ?? "2026-12-01T02:00:00.000Z";
  const exportName = options.exportName ?? "orders";
  const trace: RunTrace = {
    version: 1,
    runId: `run-${exportName}`,
    exportName,
    startedAt,
    finishedAt: new Date(Date.parse(startedAt) + endMs).toISOString(),
    lanes: Array.from({ length: lanes }, (_, i) => `worker ${i + 1}`),
    chunks: attempts,
    samples,
  };
  const metrics: MetricsEntry = {
    runId: trace.runId,
    exportName,
    runAt: startedAt,
    durationMs: endMs,
    totalRows: rowsTotal,
    status: "success",
    peakRssMb: 131,
    tuningProfile: "balanced",
    batchSize: 10_000,
    chunkSize: 100_000,
    parallel: lanes,
    filesProduced: options.chunks,
    bytesWritten: bytesTotal,
    retries: fail.size,
  };
  return { trace, metrics };
}
