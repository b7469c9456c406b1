/**
 * Config layer: YAML file + `--param` + environment → validated `ConfigSpec`, plus the helpers
 * that resolve what a config refers to (connection, query text, tuning, export selection).
 *
 * Layer: config. Imports core/ and _util/ (and plan/column_types.ts for `columns:` checks);
 * only `_fs.ts` touches the file system and the environment.
 *
 * @example
 * ```ts ignore
 * import { checkRunnable, loadConfig, selectExports } from "./mod.ts";
 * const config = await loadConfig("rivet.yaml");
 * const exports = selectExports(config, []);
 * const { warnings } = checkRunnable(config, exports, { resume: false });
 * ```
 *
 * @module
 */
export { loadConfig } from "./load.ts";
export type { LoadConfigOptions } from "./load.ts";
export { substitutePlaceholders } from "./substitute.ts";
export type { SubstituteOptions } from "./substitute.ts";
export { parseMaxFileSize } from "./size.ts";
export { mergeTuning, TUNING_PROFILES } from "./tuning.ts";
export {
  parseConnectionUrl,
  readSourceUrl,
  resolveConnection,
  sourceKindOfUrl,
} from "./connection.ts";
export type { ConnectionInfo, ResolveConnectionOptions } from "./connection.ts";
export { checkTlsPolicy } from "./tls.ts";
export { isLoopbackHost } from "../_util/loopback.ts";
export { exportSql, readQueryFile } from "./query_file.ts";
export type { QueryTextOptions } from "./query_file.ts";
export { selectExports } from "./select.ts";
export { assertExportSupported, assertSupported, checkRunnable } from "./support.ts";
export { COMPRESSION_PROFILES, DEFAULT_PORTS } from "./build.ts";
export { planChecks } from "./plan_checks.ts";
export { configFromDocument } from "./document.ts";
export type { JsonObject, JsonValue } from "./document.ts";
