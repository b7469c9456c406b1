/**
 * Resolve once: a loaded config and the command line become one {@linkcode ExportJob} per export.
 * Everything an export refers to is looked up here and nowhere else: the connection (`url`,
 * `url_env`, `url_file`, the structured form), the TLS policy, the query text (`query_file`),
 * the merged tuning, and the local destination folder made absolute.
 *
 * The path rule: what a config names for rivet to *read* (`query_file`, `url_file`,
 * `tls.ca_file`, `credentials_file`) starts at the config file's folder, and `config/` resolves
 * it when the config is loaded; the local destination rivet *writes* to starts at the working
 * directory of the run, as with rivet-cli, and is made absolute here by {@linkcode localRoot}.
 * Every engine, the permission grants of child processes and workers, `rivet validate` and
 * `rivet doctor` take the folder from this module, so they all name the same one.
 *
 * This is the one module of `plan/` that reads files and the environment (through `config/`);
 * the rest of `plan/` stays pure.
 *
 * Layer: plan.
 *
 * @module
 */
import { exportIdentity } from "./identity.ts";
import { resolve } from "node:path";
import type { ExportJob, JobWarning } from "../core/job.ts";
import type { ConfigSpec, DestinationSpec, ExportSpec } from "../core/spec.ts";
import { checkTlsPolicy, exportSql, mergeTuning, resolveConnection } from "../config/mod.ts";
import { parquetLevelNotApplied } from "../formats/mod.ts";

/** What a job is resolved against besides the config. */
export interface ResolveContext {
  /** `--param` values, for `${NAME}` in `query_file`. */
  readonly params: Readonly<Record<string, string>>;
  /** Working directory of the run: base of a relative local destination. */
  readonly cwd: string;
  /** Environment lookup (`url_env`, `password_env`, `${NAME}`). */
  readonly env: (name: string) => string | undefined;
}

/**
 * Resolves one export of a loaded config.
 *
 * @param config The loaded config.
 * @param spec One of its exports (or a partition child of one).
 * @param ctx Params, working directory, environment.
 * @returns The job.
 * @throws {ConfigError} An unset variable, an unreadable `url_file` or `query_file`, a remote
 *   host without TLS: whatever stops the export before it connects.
 */
export async function resolveJob(
  config: ConfigSpec,
  spec: ExportSpec,
  ctx: ResolveContext,
): Promise<ExportJob> {
  const connection = await resolveConnection(config.source, {
    configDir: config.dir,
    env: ctx.env,
    exportName: spec.name,
  });
  const warnings: JobWarning[] = checkTlsPolicy(connection, config.source.tls, config.source.kind)
    .warnings.map(
      (message) => ({ code: "source.tls_not_enforced", message }),
    );
  const ignoredLevel = parquetLevelNotApplied(spec.format);
  if (ignoredLevel) {
    warnings.push({
      code: "format.level_not_applied",
      message: `export '${spec.name}': ${ignoredLevel}`,
    });
  }
  const baseSql = await exportSql(spec, config.dir, { params: ctx.params, env: ctx.env });
  return {
    spec: withAbsoluteDestination(spec, ctx.cwd),
    source: config.source,
    connection,
    baseSql,
    configIdentity: exportIdentity({
      kind: config.source.kind,
      connection,
      baseSql,
      ...(spec.cursorColumn === undefined ? {} : { cursorColumn: spec.cursorColumn }),
    }),
    tuning: mergeTuning(config.source, spec),
    configPath: config.path,
    configDir: config.dir,
    warnings,
  };
}

/**
 * The export with its local destination folder absolute (other destinations unchanged).
 *
 * @param spec An export.
 * @param cwd The run's working directory.
 * @returns The same export, `destination.path` absolute when it is local.
 */
export function withAbsoluteDestination(spec: ExportSpec, cwd: string): ExportSpec {
  if (spec.destination.kind !== "local") return spec;
  return { ...spec, destination: absoluteDestination(spec.destination, cwd) };
}

/**
 * A local destination with `path` absolute: `path`, else `prefix`, else `.`, against `cwd`.
 * Placeholders (`{date}`, `{export}`, `{partition}`) stay in place.
 *
 * @param destination A destination.
 * @param cwd The run's working directory.
 * @returns The destination, unchanged unless it is local.
 *
 * @example
 * ```ts
 * import { absoluteDestination } from "./resolve.ts";
 * const d = absoluteDestination({ kind: "local", prefix: "out/{date}", allowAnonymous: false }, "/data");
 * if (d.path !== "/data/out/{date}") throw new Error(d.path);
 * ```
 */
export function absoluteDestination(destination: DestinationSpec, cwd: string): DestinationSpec {
  if (destination.kind !== "local") return destination;
  return { ...destination, path: localRoot(destination, cwd) };
}

/**
 * The folder a local destination writes below, absolute, placeholders unfilled.
 *
 * @param destination A local destination.
 * @param cwd The run's working directory.
 * @returns `path`, else `prefix`, else `.`, resolved against `cwd`.
 */
export function localRoot(destination: DestinationSpec, cwd: string): string {
  return resolve(cwd, destination.path ?? destination.prefix ?? ".");
}
