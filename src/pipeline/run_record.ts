/**
 * What a run leaves behind besides its files: the outcome of an export that failed before (or
 * outside) its pipeline, the run's result, the metrics row and the journal.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import { type ExitCode, InterruptedError, worstExitCode } from "../core/errors.ts";
import type { Outcome, RivetEvent } from "../core/events.ts";
import type { RunTrace } from "../core/run_trace.ts";
import type { ExportSpec, SourceKind, TuningPlan } from "../core/spec.ts";
import type { StateStore } from "../core/state.ts";
import { redact } from "../_util/redact.ts";
import { VERSION } from "../core/version.ts";
import { exportErrorInfo } from "./run_export.ts";
import { runId as makeRunId } from "./naming.ts";

/** What a run did. */
export interface RunResult {
  readonly exitCode: ExitCode;
  readonly outcomes: readonly Outcome[];
  readonly startedAt: string;
  readonly finishedAt: string;
}

/**
 * The result of a run from its outcomes: the exit code is the most serious class among them,
 * 130 when the run was interrupted.
 *
 * @param outcomes Every export's outcome.
 * @param facts Start of the run and its abort signal.
 * @returns The run result.
 */
export function runResult(
  outcomes: readonly Outcome[],
  facts: { startedAt: Date; signal: AbortSignal },
): RunResult {
  const codes = outcomes.map((o) => o.error?.exitCode ?? 0);
  // A cdc stream ends by being stopped: when it then finished its part and checkpoint cleanly,
  // the stop was the normal end, not an interruption.
  const stoppedStreams = outcomes.length > 0 &&
    outcomes.every((o) => o.mode === "cdc" && o.status === "success");
  if (facts.signal.aborted && !stoppedStreams) codes.push(130);
  return {
    exitCode: worstExitCode(codes),
    outcomes,
    startedAt: facts.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
  };
}

/**
 * The outcome of an export that failed before (or outside) its pipeline: an unset variable, a
 * failed probe, a child process or worker that died before reporting.
 *
 * @param spec The export.
 * @param facts Tuning, start, run id (made from the start when omitted), the error, the run's
 *   signal (an aborted run reports the interrupt whatever the error), and the peak RSS (a dead
 *   child's is unknown: 0).
 * @returns A `failed` outcome with no rows, files or bytes.
 */
export function failedOutcome(
  spec: ExportSpec,
  facts: {
    readonly tuning: TuningPlan;
    readonly startedAt: Date;
    readonly runId?: string;
    readonly error: unknown;
    readonly signal?: AbortSignal;
    readonly peakRssMb: number;
  },
): Outcome {
  const failure = facts.signal?.aborted
    ? new InterruptedError("interrupted before it finished")
    : facts.error;
  const now = new Date();
  return {
    export: spec.name,
    runId: facts.runId ?? makeRunId(spec.name, facts.startedAt),
    status: "failed",
    mode: spec.mode,
    rows: 0,
    files: 0,
    bytes: 0,
    durationMs: now.getTime() - facts.startedAt.getTime(),
    startedAt: facts.startedAt.toISOString(),
    finishedAt: now.toISOString(),
    output: "",
    compression: spec.format.compression,
    format: spec.format.kind,
    peakRssMb: facts.peakRssMb,
    tuningProfile: facts.tuning.profileLabel,
    batchSize: facts.tuning.batchSize,
    error: exportErrorInfo(spec.name, failure),
  };
}

/** A failure to record a run's metrics or journal: only a warning (the data and exit are final). */
function recordWarning(
  emit: (event: RivetEvent) => void,
  exportName: string,
  what: { code: string; record: string },
  error: unknown,
): void {
  emit({
    type: "warning",
    export: exportName,
    code: what.code,
    message: `export '${exportName}': could not record the run's ${what.record}: ${
      error instanceof Error ? error.message : String(error)
    }`,
  });
}

/**
 * Records the run's metrics row; a failure only warns.
 *
 * @param state The open state store.
 * @param o The export's outcome.
 * @param facts The export, its source type, and where the warning goes.
 */
export async function recordMetrics(
  state: StateStore,
  o: Outcome,
  facts: {
    readonly spec: ExportSpec;
    readonly sourceKind: SourceKind;
    readonly emit: (event: RivetEvent) => void;
  },
): Promise<void> {
  const { spec } = facts;
  try {
    await state.recordRun({
      runId: o.runId,
      exportName: o.export,
      runAt: o.startedAt,
      durationMs: o.durationMs,
      totalRows: o.rows,
      status: o.status,
      peakRssMb: o.peakRssMb,
      ...(o.error ? { errorMessage: redact(o.error.message) } : {}),
      tuningProfile: o.tuningProfile,
      format: o.format,
      mode: o.mode,
      filesProduced: o.files,
      bytesWritten: o.bytes,
      filesCommitted: o.files,
      batchSize: o.batchSize,
      ...(spec.mode === "chunked" ? { chunkSize: spec.chunkSize, parallel: spec.parallel } : {}),
      ...(o.status === "skipped" ? { skipReason: "empty result (skip_empty)" } : {}),
      ...(o.validated === undefined ? {} : { validated: o.validated }),
      ...(o.reconcile?.status === "match" || o.reconcile?.status === "mismatch"
        ? { reconciled: o.reconcile.status === "match", sourceCount: o.reconcile.sourceCount }
        : {}),
      ...(o.qualityPassed === undefined ? {} : { qualityPassed: o.qualityPassed }),
      sourceType: facts.sourceKind,
      destinationType: spec.destination.kind,
      rivetVersion: VERSION,
    });
  } catch (error) {
    recordWarning(
      facts.emit,
      spec.name,
      { code: "state.metrics_failed", record: "metrics" },
      error,
    );
  }
}

/** One line of a run's journal (what `rivet journal` prints), JSON-safe and redacted. */
export interface JournalEvent {
  readonly event: "file_written" | "retry_attempted" | "schema_changed" | "warning";
  readonly at: string;
  readonly key?: string;
  readonly rows?: number;
  readonly bytes?: number;
  readonly code?: string;
  readonly message?: string;
}

/**
 * The journal line of a run event, or undefined for events the journal does not keep.
 *
 * @param event A run event.
 * @returns The journal line.
 */
export function journalEventOf(event: RivetEvent): JournalEvent | undefined {
  const at = new Date().toISOString();
  if (event.type === "part_committed") {
    return { event: "file_written", at, key: event.key, rows: event.rows, bytes: event.bytes };
  }
  if (event.type !== "warning") return undefined;
  const message = redact(event.message);
  if (event.code === "run.retrying" || event.code === "destination.retrying") {
    return { event: "retry_attempted", at, message };
  }
  if (event.code === "schema.drift") return { event: "schema_changed", at, message };
  return { event: "warning", at, code: event.code, message };
}

/**
 * Stores the run's journal next to its metrics; a failure only warns.
 *
 * @param state The open state store.
 * @param o The outcome.
 * @param events The run's journal events.
 * @param emit Where the warning goes.
 */
export async function recordJournal(
  state: StateStore,
  o: Outcome,
  events: readonly JournalEvent[],
  emit: (event: RivetEvent) => void,
): Promise<void> {
  try {
    await state.appendJournal({
      runId: o.runId,
      exportName: o.export,
      finishedAt: o.finishedAt,
      journal: {
        events,
        completed: {
          status: o.status,
          mode: o.mode,
          rows: o.rows,
          files: o.files,
          bytes: o.bytes,
          durationMs: o.durationMs,
          retries: events.filter((e) => e.event === "retry_attempted").length,
          ...(o.error ? { error: redact(o.error.message) } : {}),
        },
      },
    });
  } catch (error) {
    recordWarning(emit, o.export, { code: "state.journal_failed", record: "journal" }, error);
  }
}

/**
 * Stores the run's trace (`rivet report`) under the outcome's run id, keeping the newest
 * traces of the export only; a failure only warns.
 *
 * @param state The open state store.
 * @param o The export's outcome.
 * @param trace The recorder's trace, finished.
 * @param emit Where the warning goes.
 */
export async function recordTrace(
  state: StateStore,
  o: Outcome,
  trace: RunTrace,
  emit: (event: RivetEvent) => void,
): Promise<void> {
  try {
    await state.saveRunTrace({ ...trace, runId: o.runId, status: o.status });
  } catch (error) {
    recordWarning(emit, o.export, { code: "state.trace_failed", record: "trace" }, error);
  }
}
