/**
 * How a job's collaborators are opened in this thread: its source connection, its format's
 * encoder and its destination. The inline engine, the chunk workers and the export workers all
 * open them here, so a source or destination is built the same way wherever a job runs.
 *
 * Layer: engines.
 *
 * @module
 */
import type { JobOpeners } from "../pipeline/run_job.ts";
import { openSource } from "../sources/mod.ts";
import { openCdcReader } from "../sources/cdc.ts";
import { createFormat } from "../formats/mod.ts";
import { openDestination } from "../destinations/mod.ts";

/** What the openers need from the run. */
export interface OpenerContext {
  /** Environment lookup for the cloud stores' `*_env` keys. */
  readonly env: (name: string) => string | undefined;
  /** Working directory of the run (a job's local destination is already absolute). */
  readonly cwd: string;
  /** parquet-wasm compiled by the thread that started this one (workers may not read it). */
  readonly wasmModule?: WebAssembly.Module;
}

/**
 * The openers of this thread, without chunk workers (chunks run here one by one).
 *
 * @param ctx Environment, working directory and, in a worker, the compiled parquet-wasm.
 * @returns Source, format and destination openers.
 */
export function threadOpeners(ctx: OpenerContext): Omit<JobOpeners, "chunkWorkers"> {
  return {
    source: (job, options) =>
      openSource(job.source, job.connection, {
        signal: options.signal,
        ...(options.onWarning ? { onWarning: options.onWarning } : {}),
      }),
    cdc: (job, options) => openCdcReader(job.source, job.connection, options),
    format: (spec) => createFormat(spec, ctx.wasmModule ? { wasmModule: ctx.wasmModule } : {}),
    destination: (spec, options) =>
      openDestination(spec, {
        baseDir: ctx.cwd,
        env: ctx.env,
        signal: options.signal,
        warn: options.warn,
      }),
  };
}

/**
 * The process environment, one name at a time (a narrowed `--allow-env` refuses unrelated
 * names). The engines' twin of `config/`'s private reader: importing `config/` here would load
 * the YAML stack into every chunk worker.
 */
export function processEnv(name: string): string | undefined {
  return Deno.env.get(name);
}
