/**
 * `loadConfig`: YAML file + `--param` + environment → validated `ConfigSpec` (reference §2.1).
 *
 * Layer: config. File and environment access goes through `_fs.ts`.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { ConfigError } from "../core/errors.ts";
import type { ConfigSpec, Warning } from "../core/spec.ts";
import { redact } from "../_util/redact.ts";
import { exists, isNotFound, processEnv, readText } from "./_fs.ts";
import { buildConfigSpec } from "./build.ts";
import { runRawChecks } from "./raw_checks.ts";
import { parseConfigTree } from "./schema.ts";
import { sweepSecrets } from "./secrets.ts";
import { substitutePlaceholders, unusedParams } from "./substitute.ts";
import { validateConfig } from "./validate.ts";
import { parseYamlTree } from "./yaml_tree.ts";

/** Options of {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /** `--param KEY=VALUE` pairs; they win over the environment in `${KEY}`. */
  readonly params?: Readonly<Record<string, string>>;
  /** Environment lookup; defaults to the process environment. */
  readonly env?: (name: string) => string | undefined;
}

/**
 * Loads, substitutes, parses and validates a config file.
 *
 * Order (reference §2.1): read; warn about unused params; `${NAME}` substitution over the raw
 * text; YAML parse with syntax hints; raw pre-checks (misplaced tuning keys, CSV + codec, TLS
 * downgrade); typed parse refusing unknown keys; semantic validation.
 *
 * @param path Config file path, absolute or relative to the working directory.
 * @param options Params and environment.
 * @returns The validated spec; `warnings` holds unused params and plaintext-password notes.
 * @throws {ConfigError} Exit 1, message prefixed with `config file '<path>': `, secrets redacted.
 *
 * @example
 * ```ts ignore
 * import { loadConfig } from "./load.ts";
 * const config = await loadConfig("rivet.yaml", { params: { SCHEMA: "public" } });
 * console.log(config.exports.map((e) => e.name));
 * ```
 */
export async function loadConfig(
  path: string,
  options: LoadConfigOptions = {},
): Promise<ConfigSpec> {
  const absolute = resolve(path);
  const dir = dirname(absolute);
  try {
    let raw: string;
    try {
      raw = await readText(absolute);
    } catch (error) {
      if (isNotFound(error)) {
        throw new ConfigError("file not found", {
          code: "config.not_found",
          cause: error,
          hint: "create one with `rivet init -o rivet.yaml`, or check the -c path",
        });
      }
      throw new ConfigError(`cannot be read (${(error as Error).name})`, {
        code: "config.read_failed",
        cause: error,
        hint: "check that the path is a readable file",
      });
    }
    const params = options.params ?? {};
    const warnings: Warning[] = unusedParams(raw, params).map((key) => ({
      code: "config.unused_param",
      message: `--param ${key} is not used: the config has no \${${key}} placeholder`,
    }));
    const text = substitutePlaceholders(raw, { params, env: options.env ?? processEnv });
    sweepSecrets(text);
    const tree = parseYamlTree(text);
    runRawChecks(tree);
    const typed = parseConfigTree(tree);
    validateConfig(typed, { fileExists: (p) => exists(resolve(dir, p)) });
    const spec = buildConfigSpec(typed, { path: absolute, dir });
    return { ...spec, warnings: [...warnings, ...spec.warnings] };
  } catch (error) {
    if (error instanceof ConfigError) throw prefixed(path, error);
    throw error;
  }
}

function prefixed(path: string, error: ConfigError): ConfigError {
  const hint = error.hint === undefined ? {} : { hint: redact(error.hint) };
  return new ConfigError(redact(`config file '${path}': ${error.message}`), {
    code: error.code,
    // The inner error keeps the unprefixed message only; its own cause (e.g. NotFound) is enough.
    ...(error.cause === undefined ? {} : { cause: error.cause }),
    ...hint,
  });
}
