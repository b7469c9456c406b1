/**
 * `${NAME}` placeholders: textual substitution from `--param` values, then the environment.
 *
 * Layer: config. Pure: the environment is passed in as a lookup function.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";

/** Options of {@linkcode substitutePlaceholders}. */
export interface SubstituteOptions {
  /** `--param KEY=VALUE` pairs; they win over the environment. */
  readonly params?: Readonly<Record<string, string>>;
  /** Environment lookup; undefined means unset. */
  readonly env?: (name: string) => string | undefined;
  /** What is being substituted, for messages (e.g. `query_file 'q.sql'`). Omitted: the config. */
  readonly what?: string;
}

// Anything up to the closing brace on the same line, so `${}` (empty) and odd names are seen too.
const placeholder = /\$\{([^}\n]*)\}/g;

/**
 * Replaces every `${NAME}` in `text` (comments included), splicing values verbatim.
 *
 * `${}` becomes the empty string. An unset name is an error that names only the variable, never
 * the text around it (it may hold a password). A value holding a NUL byte is refused.
 *
 * @param text Raw text (a YAML file or a query file).
 * @param options Params, environment and a label for messages.
 * @returns The substituted text.
 * @throws {ConfigError} `config.missing_env` or `config.invalid_value`.
 *
 * @example
 * ```ts
 * import { substitutePlaceholders } from "./substitute.ts";
 * const out = substitutePlaceholders("db: ${DB}", { params: { DB: "shop" } });
 * if (out !== "db: shop") throw new Error(out);
 * ```
 */
export function substitutePlaceholders(text: string, options: SubstituteOptions = {}): string {
  const params = options.params ?? {};
  const env = options.env ?? (() => undefined);
  return text.replace(placeholder, (_whole, rawName: string) => {
    const name = rawName.trim();
    if (name === "") return "";
    const value = Object.hasOwn(params, name) ? params[name] : env(name);
    if (value === undefined) {
      throw new ConfigError(
        `environment variable '${name}' is not set${
          options.what ? ` (used in ${options.what})` : ""
        }`,
        {
          code: "config.missing_env",
          hint: `export ${name}=... or pass --param ${name}=...`,
        },
      );
    }
    if (value.includes("\0")) {
      throw new ConfigError(`value of '${name}' contains a NUL byte, which is not allowed`, {
        code: "config.invalid_value",
        hint: `set ${name} to a value without NUL bytes`,
      });
    }
    return value;
  });
}

/**
 * The `--param` keys whose `${KEY}` placeholder never appears in the text.
 *
 * @param text The raw text, before substitution.
 * @param params The `--param` pairs.
 * @returns Unused keys in the order given.
 */
export function unusedParams(
  text: string,
  params: Readonly<Record<string, string>>,
): string[] {
  const used = new Set<string>();
  for (const match of text.matchAll(placeholder)) used.add(match[1]!.trim());
  return Object.keys(params).filter((key) => !used.has(key));
}
