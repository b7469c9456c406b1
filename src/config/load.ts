/**
 * `loadConfig`: YAML file + `--param` + environment → validated `ConfigSpec`. Steps: read the file
 * (bounded), parse the YAML tree, fill `${VAR}` placeholders inside parsed values, run the raw
 * checks, the typed parse and the semantic rules.
 *
 * Layer: config. File and environment access goes through `_fs.ts`.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { ConfigError, InterruptedError } from "../core/errors.ts";
import type { ConfigSpec, Warning } from "../core/spec.ts";
import { redact } from "../_util/redact.ts";
import { crashPoint } from "../_util/test_hook.ts";
import { exists, INPUT_LIMITS, InputFileError, isNotFound, processEnv, readInput } from "./_fs.ts";
import { buildConfigSpec } from "./build.ts";
import { type JsonValue, treeToDocument } from "./document.ts";
import { runRawChecks } from "./raw_checks.ts";
import { parseConfigTree } from "./schema.ts";
import { sweepSecrets, sweepTreeSecrets } from "./secrets.ts";
import { substituteTree } from "./substitute.ts";
import { validateConfig } from "./validate.ts";
import { parseYamlTree } from "./yaml_tree.ts";

/** Options of {@linkcode loadConfig}. */
export interface LoadConfigOptions {
  /** `--param KEY=VALUE` pairs; they win over the environment in `${KEY}`. */
  readonly params?: Readonly<Record<string, string>>;
  /** Environment lookup; defaults to the process environment. */
  readonly env?: (name: string) => string | undefined;
  /** Ctrl-C: the load stops with `InterruptedError` (exit 130) at its next step. */
  readonly signal?: AbortSignal;
  /**
   * Receives the config as a plain document once its placeholders are filled (`rivet plan`
   * stores it; `config/document.ts` turns it back into a spec).
   */
  readonly onDocument?: (document: JsonValue) => void;
}

/** Waits for `work` unless `signal` aborts first. */
async function unlessAborted(
  work: Promise<void> | undefined,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (work !== undefined) {
    if (signal === undefined) await work;
    else {
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<void>((resolve) => {
        onAbort = resolve;
        signal.addEventListener("abort", onAbort, { once: true });
      });
      await Promise.race([work, aborted]);
      signal.removeEventListener("abort", onAbort!);
    }
  }
  if (signal?.aborted) throw new InterruptedError();
}

/**
 * Loads, substitutes, parses and validates a config file.
 *
 * Order: read (a regular file of at most 2 MiB); YAML parse with syntax hints, `${NAME}`
 * placeholders protected so they cannot change the structure; `${NAME}` substitution inside
 * each scalar value; unused-param warnings; raw pre-checks (misplaced tuning keys, CSV + codec,
 * TLS downgrade); typed parse refusing unknown keys; semantic validation; relative paths resolved
 * against the config's folder.
 *
 * @param path Config file path, absolute or relative to the working directory.
 * @param options Params, environment and abort signal.
 * @returns The validated spec; `warnings` holds unused params and plaintext-password notes.
 * @throws {ConfigError} Exit 1, message prefixed with `config file '<path>': `, secrets redacted.
 * @throws {InterruptedError} When `signal` aborts during the load.
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
  const { signal } = options;
  try {
    if (signal?.aborted) throw new InterruptedError();
    let raw: string;
    try {
      raw = await readInput(absolute, { maxBytes: INPUT_LIMITS.config, ...signalOf(options) });
    } catch (error) {
      if (error instanceof InputFileError || error instanceof InterruptedError) throw error;
      if (isNotFound(error)) {
        throw new ConfigError("file not found", {
          code: "config.not_found",
          cause: error,
          hint:
            "create one with `rivet init --source-env DATABASE_URL -o rivet.yaml`, or check the -c path",
        });
      }
      throw new ConfigError(`cannot be read (${(error as Error).name})`, {
        code: "config.read_failed",
        cause: error,
        hint: "check that the path is a readable file",
      });
    }
    await unlessAborted(crashPoint("config_load"), signal);
    sweepSecrets(raw);
    const parsed = await parseYamlTree(raw, signalOf(options));
    const params = options.params ?? {};
    const { tree, used } = substituteTree(parsed, { params, env: options.env ?? processEnv });
    sweepTreeSecrets(tree);
    options.onDocument?.(treeToDocument(tree));
    const warnings: Warning[] = Object.keys(params).filter((key) => !used.has(key)).map((
      key,
    ) => ({
      code: "config.unused_param",
      message: `--param ${key} is not used: the config has no \${${key}} placeholder`,
    }));
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

function signalOf(options: LoadConfigOptions): { signal?: AbortSignal } {
  return options.signal === undefined ? {} : { signal: options.signal };
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
