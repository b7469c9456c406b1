/**
 * `--parallel-exports`: every selected export at once, in this process (one lane per export, all
 * started together, as the Rust tool does). Each export keeps its own retries, metrics and journal
 * (`runSpec`); a failing export does not stop the others; the exit code is the most
 * serious class among them.
 *
 * One state store serves every lane, behind a queue that runs one state call at a time: SQLite
 * calls are synchronous, but two of the store's transactions yield between `BEGIN` and `COMMIT`
 * (the `in_state_write` crash point), and a second lane's `BEGIN` on the same connection in that
 * gap would fail and roll back the first lane's transaction. Separate connections are no way out
 * in one thread: the second would wait synchronously on the first's lock, which then could
 * never be released.
 *
 * Exports with a stdout destination share one lane, one after the other, so their bytes never
 * interleave.
 *
 * Layer: engines.
 *
 * @module
 */
import type { ConfigSpec, ExportSpec } from "../core/spec.ts";
import type { Outcome } from "../core/events.ts";
import type { ParallelMode, StateStore } from "../core/state.ts";
import { ConfigError } from "../core/errors.ts";
import { openRunStateStore, stateOptions } from "./state.ts";
import {
  engineFailure,
  type InlineRunOptions,
  type RunResult,
  runResult,
  runSpec,
} from "./inline.ts";

export type { ParallelMode } from "../core/state.ts";

/** Inputs of {@linkcode selectParallelMode}. */
export interface ParallelChoice {
  /** `--parallel-exports` was given. */
  readonly parallelExportsFlag: boolean;
  /** `--parallel-export-processes` was given. */
  readonly parallelProcessesFlag: boolean;
  /** `-e/--export` was given. */
  readonly exportSelected: boolean;
  /** How many exports will run. */
  readonly exportCount: number;
}

/**
 * Picks the engine of a run, with the Rust tool's rules: the two flags are mutually exclusive;
 * a flag or the matching config key turns its mode on, and `parallel_export_processes` wins when
 * both keys are set; any parallel mode is ignored with `--export` or with fewer than 2 exports.
 *
 * @param config `parallel_exports` / `parallel_export_processes` of the config.
 * @param choice The flags and the selection.
 * @returns The mode, and whether a parallel flag given on the command line is being ignored.
 * @throws {ConfigError} `cli.parallel_flags_conflict` when both flags are given.
 *
 * @example
 * ```ts
 * import { selectParallelMode } from "./concurrent.ts";
 * const { mode } = selectParallelMode(
 *   { parallelExports: true, parallelExportProcesses: true },
 *   { parallelExportsFlag: false, parallelProcessesFlag: false, exportSelected: false, exportCount: 3 },
 * );
 * if (mode !== "parallel-processes") throw new Error(mode);
 * ```
 */
export function selectParallelMode(
  config: Pick<ConfigSpec, "parallelExports" | "parallelExportProcesses">,
  choice: ParallelChoice,
): { mode: ParallelMode; ignoredFlag: boolean } {
  if (choice.parallelExportsFlag && choice.parallelProcessesFlag) {
    throw new ConfigError(
      "--parallel-exports and --parallel-export-processes are mutually exclusive",
      {
        code: "cli.parallel_flags_conflict",
        hint: "pass one of them: threads share this process, processes isolate each export",
      },
    );
  }
  const wanted: ParallelMode =
    choice.parallelProcessesFlag || (!choice.parallelExportsFlag && config.parallelExportProcesses)
      ? "parallel-processes"
      : choice.parallelExportsFlag || config.parallelExports
      ? "parallel-threads"
      : "sequential";
  if (wanted !== "sequential" && (choice.exportSelected || choice.exportCount < 2)) {
    return {
      mode: "sequential",
      ignoredFlag: choice.parallelExportsFlag || choice.parallelProcessesFlag,
    };
  }
  return { mode: wanted, ignoredFlag: false };
}

/**
 * Runs every export concurrently in this process and waits for all of them.
 *
 * @param config The loaded config.
 * @param exports The exports; outcomes come back in this order.
 * @param options Event sink, abort signal, params, base directory, resume flags.
 * @returns Outcomes (one per export, or one per partition) and the exit code.
 */
export async function runExportsConcurrently(
  config: ConfigSpec,
  exports: readonly ExportSpec[],
  options: InlineRunOptions,
): Promise<RunResult> {
  const startedAt = new Date();
  // A corrupt or foreign state file stops the run here, before anything is read or written.
  await using store = await openRunStateStore(config.dir, stateOptions(config));
  const state = serializedState(store);
  const run = (spec: ExportSpec) => {
    const started = new Date();
    // runSpec turns failures into outcomes; anything escaping it still fails alone.
    return runSpec(config, spec, { ...options, state }).catch((error) => {
      const outcome = engineFailure(config, spec, { error, startedAt: started });
      options.emit({ type: "export_finished", outcome });
      return [outcome];
    });
  };
  const outcomes = await runInLanes(exports, run, options.signal);
  return runResult(outcomes, { startedAt, signal: options.signal });
}

/**
 * Runs `run` for every export at once, except the exports writing to stdout: they share one lane,
 * one after the other, so their bytes never interleave (and it starts no more of them once
 * `signal` aborted). Used by the in-process and the worker engines of `--parallel-exports`.
 *
 * @param exports The exports.
 * @param run Runs one export to its outcomes (failures included: it never rejects).
 * @param signal The run's abort signal.
 * @returns Every outcome, in export order.
 */
export async function runInLanes(
  exports: readonly ExportSpec[],
  run: (spec: ExportSpec) => Promise<Outcome[]>,
  signal: AbortSignal,
): Promise<Outcome[]> {
  const lanes = new Map<ExportSpec, Promise<Outcome[]>>();
  for (const spec of exports) {
    if (spec.destination.kind !== "stdout") lanes.set(spec, run(spec));
  }
  const stdoutOutcomes = new Map<ExportSpec, Outcome[]>();
  for (const spec of exports) {
    if (spec.destination.kind !== "stdout") continue;
    if (signal.aborted) break;
    stdoutOutcomes.set(spec, await run(spec));
  }
  const outcomes: Outcome[] = [];
  for (const spec of exports) {
    outcomes.push(...(await lanes.get(spec) ?? stdoutOutcomes.get(spec) ?? []));
  }
  return outcomes;
}

/**
 * A view of `store` whose calls run one at a time, in call order. Each call starts when the
 * previous one settled, so no two transactions share the connection.
 *
 * @param store The open store (disposed by its owner, not through the view).
 * @returns The serialized view.
 */
export function serializedState(store: StateStore): StateStore {
  let tail: Promise<unknown> = Promise.resolve();
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const call = tail.then(() => value.apply(target, args));
        // The queue goes on whatever this call did; the caller sees its own result or error.
        tail = call.catch(() => {});
        return call;
      };
    },
  });
}
