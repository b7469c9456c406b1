/**
 * The trace of one export run that `rivet report` draws: when each chunk ran on which lane, how
 * it ended, and samples of throughput and memory over time. Recorded by the run (bounded in
 * size whatever the run's length) and stored in the state store next to the run's metrics.
 *
 * Layer: core.
 *
 * @module
 */

/** How one attempt of a chunk ended. */
export type ChunkAttemptOutcome = "completed" | "failed" | "retried" | "interrupted" | "running";

/** One attempt of one chunk on one lane. Times are milliseconds since the run's start. */
export interface ChunkAttempt {
  readonly chunk: number;
  /** 1 for the first claim. */
  readonly attempt: number;
  /** Worker (or process, or host) that ran it: 0-based lane of the timeline. */
  readonly lane: number;
  readonly startMs: number;
  /** Absent while running (a run that died). */
  readonly endMs?: number;
  readonly outcome: ChunkAttemptOutcome;
  readonly rows?: number;
  readonly bytes?: number;
  /** The chunk's key range as text, e.g. `[1, 100000]` (absent for keyset pages). */
  readonly range?: string;
  /** Redacted first line of the error, for failed attempts. */
  readonly error?: string;
  /** Files of the chunk moved to `_quarantine/` before this attempt. */
  readonly quarantined?: number;
}

/** One sample of the run's progress. */
export interface TraceSample {
  /** Milliseconds since the run's start. */
  readonly tMs: number;
  /** Rows read so far (cumulative). */
  readonly rows: number;
  /** Resident set size, bytes. */
  readonly rssBytes: number;
}

/** The trace of one export run. */
export interface RunTrace {
  readonly version: 1;
  readonly runId: string;
  readonly exportName: string;
  /** ISO-8601 UTC. */
  readonly startedAt: string;
  readonly finishedAt?: string;
  /**
   * The host and process that recorded the trace (stamped by the state store when saved). A run
   * resumed, or shared by several hosts, has one trace per process under the same run id.
   */
  readonly host?: string;
  readonly pid?: number;
  /** How this process's part of the run ended (absent in traces stored before it was kept). */
  readonly status?: "success" | "failed" | "skipped";
  /** Lanes of the timeline: `worker 1`, `process 2`, `host-a`, … */
  readonly lanes: readonly string[];
  /**
   * Chunk attempts in start order. At most {@linkcode TRACE_LIMITS.chunks}; a longer run keeps
   * the slowest, failed and retried attempts and counts the rest in `omittedChunks`.
   */
  readonly chunks: readonly ChunkAttempt[];
  readonly omittedChunks?: number;
  /** At most {@linkcode TRACE_LIMITS.samples}, evenly thinned over the run. */
  readonly samples: readonly TraceSample[];
}

/** Bounds of a stored trace, whatever the run's length. */
export const TRACE_LIMITS = {
  chunks: 10_000,
  samples: 600,
} as const;
