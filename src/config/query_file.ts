/**
 * The SQL text of an export: `table:` → `SELECT * FROM …`, `query:` as written, `query_file:`
 * read from under the config directory (symlink escapes refused; a regular file of at most
 * 4 MiB) with `${}` substitution. A query file is SQL text, not YAML: `${NAME}` values are
 * spliced into it verbatim, so a value is SQL written by whoever sets the parameter.
 *
 * Layer: config. Files are read through `_fs.ts`.
 *
 * @module
 */
import { resolve, sep } from "node:path";
import { ConfigError } from "../core/errors.ts";
import type { ExportSpec } from "../core/spec.ts";
import { exportPrefix, prefixOnce } from "../_util/text.ts";
import {
  INPUT_LIMITS,
  InputFileError,
  isNotFound,
  processEnv,
  readInput,
  realPath,
} from "./_fs.ts";
import { substitutePlaceholders } from "./substitute.ts";

/** Options of {@linkcode readQueryFile} and {@linkcode exportSql}. */
export interface QueryTextOptions {
  /** `--param KEY=VALUE` pairs for `${KEY}` in the query file. */
  readonly params?: Readonly<Record<string, string>>;
  /** Environment lookup; defaults to the process environment. */
  readonly env?: (name: string) => string | undefined;
}

/**
 * Reads an export's `query_file`, refusing any file whose real path leaves the config directory.
 *
 * @param exp An export whose query is `query_file`.
 * @param configDir Directory of the config file.
 * @param options Params and environment for `${}` substitution in the file.
 * @returns The substituted SQL text.
 * @throws {ConfigError} `config.unsafe_path`, `config.not_found` or `config.missing_env`.
 */
export async function readQueryFile(
  exp: ExportSpec,
  configDir: string,
  options: QueryTextOptions = {},
): Promise<string> {
  if (exp.query.kind !== "query_file") {
    throw new TypeError(`export '${exp.name}' has no query_file`);
  }
  const written = exp.query.path;
  let real: string;
  let root: string;
  try {
    root = await realPath(configDir);
    real = await realPath(resolve(configDir, written));
  } catch (error) {
    throw new ConfigError(
      `export '${exp.name}': query_file '${written}' ${
        isNotFound(error) ? "does not exist" : "cannot be resolved"
      }`,
      {
        code: isNotFound(error) ? "config.not_found" : "config.read_failed",
        cause: error,
        hint: "query_file is relative to the config directory",
      },
    );
  }
  if (!real.startsWith(root.endsWith(sep) ? root : root + sep)) {
    throw new ConfigError(
      `export '${exp.name}': query_file '${written}' resolves outside the config directory`,
      {
        code: "config.unsafe_path",
        hint: "keep query files (and their symlink targets) inside the config directory",
      },
    );
  }
  let text: string;
  try {
    text = await readInput(real, { maxBytes: INPUT_LIMITS.queryFile });
  } catch (error) {
    if (error instanceof InputFileError) {
      throw error.about(`export '${exp.name}': query_file '${written}'`);
    }
    throw new ConfigError(`export '${exp.name}': query_file '${written}' cannot be read`, {
      code: "config.read_failed",
      cause: error,
      hint: "check that it is a readable file",
    });
  }
  try {
    return substitutePlaceholders(text, {
      params: options.params ?? {},
      env: options.env ?? processEnv,
      what: `query_file '${written}'`,
    });
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new ConfigError(prefixOnce(exportPrefix(exp.name), error.message), {
        code: error.code,
        ...(error.hint === undefined ? {} : { hint: error.hint }),
      });
    }
    throw error;
  }
}

/**
 * The SQL an export runs. `table:` gives `SELECT * FROM <schema.table>` unquoted, as the Rust
 * tool does (the name was validated as ASCII identifiers at load).
 *
 * @param exp The export.
 * @param configDir Directory of the config file (for `query_file`).
 * @param options Params and environment for `query_file` substitution.
 * @returns SQL text.
 *
 * @example
 * ```ts
 * import { exportSql } from "./query_file.ts";
 * import type { ExportSpec } from "../core/spec.ts";
 * const exp = { name: "o", query: { kind: "table", schema: "shop", table: "orders" } } as ExportSpec;
 * if (await exportSql(exp, ".") !== "SELECT * FROM shop.orders") throw new Error();
 * ```
 */
export async function exportSql(
  exp: ExportSpec,
  configDir: string,
  options: QueryTextOptions = {},
): Promise<string> {
  const q = exp.query;
  switch (q.kind) {
    case "table":
      return `SELECT * FROM ${q.schema === undefined ? q.table : `${q.schema}.${q.table}`}`;
    case "query":
      return q.sql;
    case "query_file":
      return await readQueryFile(exp, configDir, options);
  }
}
