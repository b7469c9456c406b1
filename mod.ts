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
 * @module
 */
export { loadConfig, type LoadConfigOptions } from "./src/config/mod.ts";
export { type InlineRunOptions, runExports, type RunResult } from "./src/engines/inline.ts";
export { type ExportPlan, type PipelineDeps, runExport } from "./src/pipeline/run_export.ts";
export * from "./src/core/errors.ts";
export type * from "./src/core/events.ts";
export type * from "./src/core/spec.ts";
export type * from "./src/core/source.ts";
export type * from "./src/core/format.ts";
export type * from "./src/core/destination.ts";
export { VERSION } from "./src/version.ts";
