/**
 * `max_file_size` parsing: `B`/`KB`/`MB`/`GB` (binary units) or bare bytes.
 *
 * Layer: config. Pure, no I/O.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";

const units: Readonly<Record<string, number>> = {
  "": 1,
  b: 1,
  kb: 1024,
  mb: 1024 ** 2,
  gb: 1024 ** 3,
};

const sizePattern = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$/i;

/**
 * Parses a file size such as `512MB`, `1.5 gb`, `64kb` or `1048576` into bytes.
 *
 * Units are case-insensitive and binary (1 KB = 1024 B); fractions are allowed and the result is
 * rounded down to whole bytes. Zero, negative and unknown units are refused.
 *
 * @param text The size as written in the config.
 * @returns A positive whole number of bytes.
 * @throws {ConfigError} `config.invalid_value` naming the text and the accepted forms.
 *
 * @example
 * ```ts
 * import { parseMaxFileSize } from "./size.ts";
 * if (parseMaxFileSize("1.5KB") !== 1536) throw new Error("binary units");
 * ```
 */
export function parseMaxFileSize(text: string): number {
  const match = sizePattern.exec(text);
  const factor = match ? units[match[2]!.toLowerCase()] : undefined;
  if (!match || factor === undefined) throw invalid(text);
  const bytes = Math.floor(Number(match[1]) * factor);
  if (!Number.isFinite(bytes) || bytes < 1 || !Number.isSafeInteger(bytes)) throw invalid(text);
  return bytes;
}

function invalid(text: string): ConfigError {
  return new ConfigError(
    `invalid max_file_size '${text}': use a positive number with an optional unit B, KB, MB or GB, e.g. '512MB' or '1.5GB'`,
    { code: "config.invalid_value" },
  );
}
