/**
 * rivet as a library: load a config and run its exports from your own Deno program.
 *
 * ```ts ignore
 * import { loadConfig, runExports } from "./mod.ts";
 * const config = await loadConfig("plan.yaml");
 * const result = await runExports(config, config.exports, {
 *   emit: (event) => console.error(event.type),
 *   signal: new AbortController().signal,
 *   params: {},
 *   cwd: Deno.cwd(),
 * });
 * console.log(result.exitCode);
 * ```
 *
 * `runExports` and `runExport` judge the exports exactly as `rivet run` does before anything
 * runs: a feature this release does not implement yet (e.g. `mode: cdc`, `quality:`, meta
 * columns) or a key combination that cannot run is refused with a `ConfigError`, never run as
 * something else. `notifications:` are sent by `rivet run` only: these functions return the
 * outcomes and send nothing.
 *
 * @module
 */
import { assertExportSupported, checkRunnable, planChecks } from "./src/config/mod.ts";
import {
  type InlineRunOptions,
  runExports as runExportsInline,
  type RunResult,
} from "./src/engines/inline.ts";
import {
  type ExportPlan,
  type PipelineDeps,
  runExport as runExportPipeline,
} from "./src/pipeline/run_export.ts";
import type { ConfigSpec, ExportSpec } from "./src/core/spec.ts";
import type { Outcome } from "./src/core/events.ts";

export { loadConfig, type LoadConfigOptions } from "./src/config/mod.ts";
export type { ExportPlan, InlineRunOptions, PipelineDeps, RunResult };
export * from "./src/core/errors.ts";
export type * from "./src/core/events.ts";
export type * from "./src/core/spec.ts";
export type * from "./src/core/source.ts";
export type * from "./src/core/format.ts";
export type * from "./src/core/destination.ts";
export { VERSION } from "./src/core/version.ts";

/**
 * Runs exports one after the other, as `rivet run` does without parallel flags.
 *
 * The support gate and the plan checks run first; their warnings are emitted as `warning`
 * events.
 *
 * @param config A config from {@linkcode loadConfig}.
 * @param exports The exports to run (e.g. `config.exports`).
 * @param options Event sink, abort signal, `--param` values, base directory, resume flags.
 * @returns Outcomes and the exit code.
 * @throws {ConfigError} `config.not_supported` or a `plan.*` code, before anything runs.
 */
export async function runExports(
  config: ConfigSpec,
  exports: readonly ExportSpec[],
  options: InlineRunOptions,
): Promise<RunResult> {
  const { warnings } = checkRunnable(config, exports, { resume: options.resume === true });
  for (const message of warnings) options.emit({ type: "warning", code: "plan.warning", message });
  return await runExportsInline(config, exports, options);
}

/**
 * Runs one export's query through a format into a destination you provide (the pipeline
 * without state, retries or chunking).
 *
 * @param plan The export, its SQL and tuning.
 * @param deps Source, format, destination and event sink.
 * @returns The export's outcome.
 * @throws {ConfigError} `config.not_supported` or a `plan.*` code, before anything runs.
 */
export async function runExport(plan: ExportPlan, deps: PipelineDeps): Promise<Outcome> {
  assertExportSupported(plan.spec);
  planChecks([plan.spec], { resume: false });
  return await runExportPipeline(plan, deps);
}
