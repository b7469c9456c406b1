/**
 * Boolean parameters of a connection URL (SQL Server's `encrypt`, `trust_server_certificate`),
 * read one way by the config's TLS policy and by the source that connects.
 *
 * Layer: _util. Pure.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";

const TRUE_WORDS = new Set(["true", "yes", "1", "on", "strict", "mandatory"]);
const FALSE_WORDS = new Set(["false", "no", "0", "off", "disable", "optional"]);

/**
 * The value of the first of `keys` present in the URL parameters, as a boolean.
 *
 * @param params Decoded URL parameters.
 * @param keys The parameter and its aliases, in order of preference.
 * @returns True, false, or undefined when none is present.
 * @throws {ConfigError} `config.invalid_url` for a value that is not a boolean word.
 *
 * @example
 * ```ts
 * import { urlBoolean } from "./url_params.ts";
 * if (urlBoolean({ encrypt: "strict" }, "encrypt") !== true) throw new Error();
 * if (urlBoolean({ trustservercertificate: "no" }, "trust_server_certificate", "trustservercertificate") !== false) throw new Error();
 * ```
 */
export function urlBoolean(
  params: Readonly<Record<string, string>>,
  ...keys: readonly string[]
): boolean | undefined {
  const key = keys.find((k) => params[k] !== undefined);
  if (key === undefined) return undefined;
  const value = params[key]!.trim().toLowerCase();
  if (TRUE_WORDS.has(value)) return true;
  if (FALSE_WORDS.has(value)) return false;
  throw new ConfigError(`source URL parameter ${key}=${value} is not a boolean`, {
    code: "config.invalid_url",
    hint: `write ${key}=true or ${key}=false`,
  });
}

/** The URL parameter names (and alias) of SQL Server's certificate trust switch. */
export const TRUST_SERVER_CERTIFICATE = ["trust_server_certificate", "trustservercertificate"];
