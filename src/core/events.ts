/**
 * Run events: JSON-safe data (no classes, no bigint) that crosses workers, processes and NDJSON
 * unchanged. The pipeline and engines emit them; `cli/render/` draws them.
 *
 * Layer: core.
 *
 * @module
 */
import type { ErrorInfo, ExitCode } from "./errors.ts";
import type { ExportMode } from "./spec.ts";

/** Final status of one export, as in the manifest and metrics. */
export type ExportStatus = "success" | "failed" | "skipped";

/** What one export did. */
export interface Outcome {
  readonly export: string;
  readonly runId: string;
  readonly status: ExportStatus;
  readonly mode: ExportMode;
  readonly rows: number;
  readonly files: number;
  readonly bytes: number;
  readonly durationMs: number;
  readonly startedAt: string;
  readonly finishedAt: string;
  /** Where the files went (e.g. `file:///…/out`). */
  readonly output: string;
  readonly compression: string;
  readonly format: string;
  readonly peakRssMb: number;
  readonly tuningProfile: string;
  readonly batchSize: number;
  readonly error?: ErrorInfo;
  /**
   * `run --validate`: whether the destination, read back after the run, matched the manifest
   * (undefined when not asked for or not checkable, e.g. stdout).
   */
  readonly validated?: boolean;
  /** `run --reconcile`: the source's row count, taken after the export, against the rows committed. */
  readonly reconcile?: ReconcileResult;
  /**
   * With `quality:` rules: whether they passed (false when the run failed on them); absent
   * without rules, or when the run failed before they were judged.
   */
  readonly qualityPassed?: boolean;
}

/** What `run --reconcile` found. */
export interface ReconcileResult {
  /** `skipped`: not meaningful for the mode; `failed`: the count could not be taken. */
  readonly status: "match" | "mismatch" | "skipped" | "failed";
  /** `SELECT COUNT(*)` of the base query, run after the export. */
  readonly sourceCount?: number;
  /** Rows the run committed (the manifest's sum). */
  readonly committedRows?: number;
  /** Why it was skipped or failed. */
  readonly note?: string;
}

/**
 * Every event of a run. `ts` is when it happened (ISO-8601 UTC with milliseconds): the NDJSON
 * encoder stamps an event that has none with the time it writes it, and a decoded event keeps the
 * stamp of the process that wrote it, so the events a child process reports keep their own time.
 */
export type RivetEvent = RivetEventBody & { readonly ts?: string };

/** The events of a run, without their time stamp. */
export type RivetEventBody =
  | {
    readonly type: "run_started";
    readonly runId: string;
    readonly exports: readonly string[];
    readonly at: string;
  }
  | {
    readonly type: "export_started";
    readonly export: string;
    readonly runId: string;
    readonly mode: ExportMode;
  }
  | {
    readonly type: "batch_read";
    readonly export: string;
    readonly rows: number;
    readonly totalRows: number;
  }
  | {
    readonly type: "part_committed";
    readonly export: string;
    readonly key: string;
    readonly rows: number;
    readonly bytes: number;
  }
  | {
    readonly type: "warning";
    readonly export?: string;
    readonly code: string;
    readonly message: string;
  }
  | {
    /** A chunked export knows how many chunks it will run (keyset pages: unknown, 0). */
    readonly type: "chunks_planned";
    readonly export: string;
    readonly total: number;
    /** Chunks already completed by an earlier attempt (`--resume`). */
    readonly done: number;
  }
  | {
    readonly type: "chunk_started";
    readonly export: string;
    readonly chunk: number;
    /** 1 for the first claim. */
    readonly attempt: number;
    /** 0-based worker that runs it (0 when chunks run one at a time); absent from older writers. */
    readonly lane?: number;
    /** The chunk's key range as text, e.g. `[1, 100000]`. */
    readonly range?: string;
  }
  | {
    readonly type: "chunk_completed";
    readonly export: string;
    readonly chunk: number;
    readonly rows: number;
    readonly files: number;
    readonly durationMs: number;
    /** The worker that ran it, as in `chunk_started`. */
    readonly lane?: number;
    /** Bytes of the chunk's committed parts. */
    readonly bytes?: number;
  }
  | {
    readonly type: "chunk_failed";
    readonly export: string;
    readonly chunk: number;
    readonly attempt: number;
    /** Redacted. */
    readonly message: string;
    /** Whether the chunk may be claimed again in this run. */
    readonly willRetry: boolean;
    /** The worker that ran it, as in `chunk_started`. */
    readonly lane?: number;
    /** Committed parts of the attempt moved to `_quarantine/` (it runs again). */
    readonly quarantined?: number;
  }
  | { readonly type: "export_finished"; readonly outcome: Outcome }
  | {
    readonly type: "run_finished";
    readonly runId: string;
    readonly exitCode: ExitCode;
    readonly outcomes: readonly Outcome[];
  };

/** Receives events. Must not throw. */
export type EventSink = (event: RivetEvent) => void;

/**
 * The warning sink an export hands to its destination: each warning the destination reports
 * (messages that do not name the export) becomes a `warning` event of that export, prefixed with
 * its name, under the destination's code (`destination.retrying`, …) or `destination.warning`.
 *
 * @param emit Where the export's events go.
 * @param exportName The export.
 * @returns The sink, for `openDestination`'s `warn` option.
 *
 * @example
 * ```ts
 * import { destinationWarnings, type RivetEvent } from "./events.ts";
 * const seen: RivetEvent[] = [];
 * destinationWarnings((e) => seen.push(e), "orders")("retry 1/5", "destination.retrying");
 * const w = seen[0];
 * if (w?.type !== "warning" || w.message !== "export 'orders': retry 1/5") throw new Error();
 * ```
 */
export function destinationWarnings(
  emit: EventSink,
  exportName: string,
): (message: string, code?: string) => void {
  return (message, code) =>
    emit({
      type: "warning",
      export: exportName,
      code: code ?? "destination.warning",
      message: `export '${exportName}': ${message}`,
    });
}
