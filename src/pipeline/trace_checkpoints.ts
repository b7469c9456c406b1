/**
 * Saves a run's trace while the run goes, so that a process killed mid-run (SIGKILL, out of
 * memory, a lost machine) leaves what it did for `rivet report` of the run's resume. The first
 * save is at the export's start; then at most every
 * {@linkcode CHECKPOINT_EVERY_MS} on chunk events (less often as the trace grows, so that a long
 * run writes a few KB a second at most). The final save at the end of the run replaces them (one
 * row per process in the store). Saves run one after another; a failed one is dropped silently:
 * the final save reports its own failure.
 *
 * Layer: pipeline.
 *
 * @module
 */
import type { RivetEvent } from "../core/events.ts";
import type { RunTraces } from "../core/state.ts";
import type { TraceRecorder } from "./run_trace_recorder.ts";

/** The shortest interval between two saves of a run's trace, ms. */
export const CHECKPOINT_EVERY_MS = 2_000;

/** Feeds the run's events; `done` waits for the last save to finish and stops saving. */
export interface TraceCheckpoints {
  event(event: RivetEvent): void;
  done(): Promise<void>;
}

/**
 * Checkpoints of one export run's trace.
 *
 * @param store Where traces are saved.
 * @param recorder The run's recorder.
 * @param exportName The export (events of other exports are ignored).
 * @param now The clock, epoch ms (default `Date.now`).
 * @returns The checkpoints.
 *
 * @example
 * ```ts
 * import { createTraceRecorder } from "./run_trace_recorder.ts";
 * import { traceCheckpoints } from "./trace_checkpoints.ts";
 * const saved: string[] = [];
 * const store = { saveRunTrace: (t: { runId: string }) => { saved.push(t.runId); return Promise.resolve(); } };
 * const recorder = createTraceRecorder({ runId: "", exportName: "orders", startedAt: new Date() });
 * const checkpoints = traceCheckpoints(store, recorder, "orders");
 * checkpoints.event({ type: "export_started", export: "orders", runId: "r1", mode: "full" });
 * await checkpoints.done();
 * if (saved[0] !== "r1") throw new Error();
 * ```
 */
export function traceCheckpoints(
  store: Pick<RunTraces, "saveRunTrace">,
  recorder: TraceRecorder,
  exportName: string,
  now: () => number = Date.now,
): TraceCheckpoints {
  let runId: string | undefined;
  let due = -Infinity;
  let saving: Promise<void> = Promise.resolve();
  let stopped = false;
  return {
    event(event) {
      if (stopped || !("export" in event) || event.export !== exportName) return;
      if (event.type === "export_started") runId = event.runId;
      else if (!event.type.startsWith("chunk_")) return;
      const t = now();
      if (runId === undefined || t < due) return;
      const trace = { ...recorder.trace(), runId };
      // About 2 ms per attempt kept: a 10,000-attempt trace (~1 MB) is saved every 20 s.
      due = t + Math.max(CHECKPOINT_EVERY_MS, trace.chunks.length * 2);
      saving = saving.then(() => store.saveRunTrace(trace)).catch(() => {});
    },
    async done() {
      stopped = true;
      await saving;
    },
  };
}
