/**
 * The export job: one export of a config with everything it refers to resolved once, so that
 * every engine (this thread, a chunk worker, an export worker, a child process) runs the same
 * thing. `plan/resolve.ts` builds it from the config and the command line; engines decide only
 * where a job runs; `pipeline/run_job.ts` runs it.
 *
 * A job is plain data: it survives `structuredClone` (the worker messages) unchanged.
 * It holds the resolved connection, password included, so it is never logged or written.
 *
 * Layer: core.
 *
 * @module
 */
import type { ConnectionInfo } from "./source.ts";
import type { ExportSpec, SourceSpec, TuningPlan } from "./spec.ts";

/** A warning found while resolving a job, reported once per export (not once per attempt). */
export interface JobWarning {
  /** Stable code, e.g. `source.tls_not_enforced`. */
  readonly code: string;
  /** The message, naming the export. */
  readonly message: string;
}

/** One export, resolved. */
export interface ExportJob {
  /**
   * The export. A local destination's `path` is absolute (the working directory of the run is
   * its base, see `plan/resolve.ts`); `{date}`-style placeholders are still unfilled, since they
   * take each run's start time.
   */
  readonly spec: ExportSpec;
  /** The config's `source:` block (kind, TLS, tuning, environment). */
  readonly source: SourceSpec;
  /** Where and as whom to connect, from `url`, `url_env`, `url_file` or the structured form. */
  readonly connection: ConnectionInfo;
  /** The export's base query: `table` as `SELECT *`, `query`, or `query_file`'s text. */
  readonly baseSql: string;
  /**
   * The identity of the data it reads (`plan/identity.ts`): its cursor is stored under the
   * export's name and this.
   */
  readonly configIdentity: string;
  /** Source, export and profile tuning merged. */
  readonly tuning: TuningPlan;
  /** The config file (absolute), for hints that print runnable commands. */
  readonly configPath: string;
  /** The config's folder (absolute): base of the paths a config names, and of the state file. */
  readonly configDir: string;
  /** What resolving noticed (TLS not enforced, a compression level not applied). */
  readonly warnings: readonly JobWarning[];
}
