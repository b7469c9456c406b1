/**
 * The inline engine: runs the selected exports one after the other in this thread. Each export
 * is resolved into a job (`plan/resolve.ts`) and run by the pipeline (`pipeline/run_job.ts`)
 * with this thread's openers; a chunked export with `parallel > 1` gets the Web Worker pool.
 * The other engines reuse {@linkcode runSpec} for each export they place.
 *
 * Layer: engines (composition root).
 *
 * @module
 */
import type { EventSink, Outcome } from "../core/events.ts";
import type { ConfigSpec, ExportSpec } from "../core/spec.ts";
import type { StateStore } from "../core/state.ts";
import { mergeTuning } from "../config/mod.ts";
import { openRunStateStore, stateOptions } from "./state.ts";
import { resolveJob } from "../plan/resolve.ts";
import { type JobOpeners, runJob } from "../pipeline/run_job.ts";
import type { ChunkPreset } from "../pipeline/run_chunked.ts";
import { failedOutcome, type RunResult, runResult } from "../pipeline/run_record.ts";
import { startChunkWorkers } from "./workers.ts";
import { processEnv, threadOpeners } from "./openers.ts";

export type { RunResult } from "../pipeline/run_record.ts";
export { runResult } from "../pipeline/run_record.ts";

/** Options of {@linkcode runExports}. */
export interface InlineRunOptions {
  readonly emit: EventSink;
  readonly signal: AbortSignal;
  /** `--param` values, for `query_file` substitution. */
  readonly params: Readonly<Record<string, string>>;
  /** Working directory of the run: base of a relative local destination. */
  readonly cwd: string;
  /** Environment lookup. */
  readonly env?: (name: string) => string | undefined;
  /** `--resume`: continue checkpointed chunked runs (and pass the `_SUCCESS` gate). */
  readonly resume?: boolean;
  /** `--force`: with `--resume`, go on although the destination holds `_SUCCESS`. */
  readonly force?: boolean;
  /** `--validate`: re-count parts before commit, read the output back after the run. */
  readonly validate?: boolean;
  /** `--reconcile`: compare the source's COUNT(*) with the committed rows. */
  readonly reconcile?: boolean;
}

/** Per-export options of {@linkcode runSpec} beyond the run's. */
export interface SpecRunOptions extends InlineRunOptions {
  readonly state: StateStore;
  /** `rivet apply`: the chunking and windows its plan recorded for this export. */
  readonly chunkPreset?: ChunkPreset;
}

/**
 * Runs exports sequentially. A failing export does not stop the next one; the exit code is the
 * most serious class among them.
 *
 * @param config The loaded config.
 * @param exports The exports to run, in order.
 * @param options Event sink, abort signal, params and working directory.
 * @returns Outcomes and the exit code.
 */
export async function runExports(
  config: ConfigSpec,
  exports: readonly ExportSpec[],
  options: InlineRunOptions,
): Promise<RunResult> {
  const startedAt = new Date();
  const outcomes: Outcome[] = [];
  // A corrupt or foreign state file stops the run here, before anything is read or written.
  await using state = await openRunStateStore(config.dir, stateOptions(config));
  for (const spec of exports) {
    if (options.signal.aborted) break;
    outcomes.push(...await runSpec(config, spec, { ...options, state }));
  }
  return runResult(outcomes, { startedAt, signal: options.signal });
}

/**
 * Resolves one export and runs it in this thread (its chunks on workers when `parallel > 1`):
 * one outcome, or one per partition. An export that cannot be resolved (an unset variable, an
 * unreadable file) fails alone, with the same outcome shape.
 *
 * @param config The loaded config.
 * @param spec The export.
 * @param options The run's options and the open state store.
 * @returns The export's outcomes.
 */
export async function runSpec(
  config: ConfigSpec,
  spec: ExportSpec,
  options: SpecRunOptions,
): Promise<Outcome[]> {
  const env = options.env ?? processEnv;
  const startedAt = new Date();
  let job;
  try {
    job = await resolveJob(config, spec, { params: options.params, cwd: options.cwd, env });
  } catch (error) {
    const outcome = engineFailure(config, spec, { error, startedAt, signal: options.signal });
    options.emit({ type: "export_finished", outcome });
    return [outcome];
  }
  return await runJob(job, {
    state: options.state,
    emit: options.emit,
    signal: options.signal,
    open: inlineOpeners({ env, cwd: options.cwd }),
    rss: () => Deno.memoryUsage().rss,
    ...(options.resume === undefined ? {} : { resume: options.resume }),
    ...(options.force === undefined ? {} : { force: options.force }),
    ...(options.chunkPreset === undefined ? {} : { chunkPreset: options.chunkPreset }),
    ...(options.validate ? { validate: true } : {}),
    ...(options.reconcile ? { reconcile: true } : {}),
  });
}

/**
 * This thread's openers plus the chunk worker pool.
 *
 * @param ctx Environment and working directory.
 * @returns The openers of the inline engine.
 */
export function inlineOpeners(
  ctx: { env: (name: string) => string | undefined; cwd: string },
): JobOpeners {
  return {
    ...threadOpeners(ctx),
    chunkWorkers: (job, facts) =>
      startChunkWorkers(facts.size, {
        job,
        startedAt: facts.startedAt,
        destination: facts.destination,
        emit: facts.emit,
        signal: facts.signal,
        env: ctx.env,
      }),
  };
}

/**
 * The outcome of an export that failed outside its pipeline (it could not be resolved, or the
 * worker or child process running it died before reporting), in the shape of every outcome.
 *
 * @param config The config (for the merged tuning).
 * @param spec The export.
 * @param facts The error, when the export started, its run id when known, the run's signal, and
 *   its peak RSS when it is not this process's (a dead child's is unknown: 0).
 * @returns A `failed` outcome with no rows, files or bytes.
 */
export function engineFailure(
  config: ConfigSpec,
  spec: ExportSpec,
  facts: {
    error: unknown;
    startedAt: Date;
    runId?: string;
    peakRssMb?: number;
    signal?: AbortSignal;
  },
): Outcome {
  return failedOutcome(spec, {
    tuning: mergeTuning(config.source, spec),
    startedAt: facts.startedAt,
    error: facts.error,
    peakRssMb: facts.peakRssMb ?? Math.round(Deno.memoryUsage().rss / 1024 / 1024),
    ...(facts.runId === undefined ? {} : { runId: facts.runId }),
    ...(facts.signal === undefined ? {} : { signal: facts.signal }),
  });
}
