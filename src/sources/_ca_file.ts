/**
 * Reads the PEM bundle of `source.tls.ca_file` for either database source, through the one
 * bounded reader of config inputs (a regular file of at most 1 MiB), with one error wording.
 *
 * Layer: sources. Imports core/ and _util/ only.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";
import { INPUT_LIMITS, readInputText } from "../_util/input_file.ts";

/**
 * The text of a CA bundle.
 *
 * @param path The absolute path (made absolute against the config's folder at load).
 * @returns The PEM text.
 * @throws {ConfigError} `config.tls_ca_file`, naming the file and the reason.
 */
export async function readCaFile(path: string): Promise<string> {
  try {
    return await readInputText(path, { maxBytes: INPUT_LIMITS.caBundle });
  } catch (error) {
    throw new ConfigError(
      `Cannot read source.tls.ca_file '${path}': ${
        error instanceof Error ? error.message : String(error)
      }; point it at a readable PEM file`,
      { code: "config.tls_ca_file", cause: error },
    );
  }
}
