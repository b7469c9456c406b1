/**
 * The format factory: a validated format block in, a ready {@linkcode Format} out.
 *
 * Layer: formats. Imports core/ only.
 *
 * @module
 */
import type { Format } from "../core/format.ts";
import type { FormatSpec } from "../core/spec.ts";
import { createCsvFormat } from "./csv.ts";
import { createParquetFormat } from "./parquet.ts";

/** Options of {@linkcode createFormat}. */
export interface CreateFormatOptions {
  /** A compiled parquet-wasm module (e.g. posted by the parent to a restricted worker). */
  readonly wasmModule?: WebAssembly.Module;
}

/**
 * Creates the format of an export. Async because the Parquet writer is a wasm module loaded on
 * first use (once per thread).
 *
 * @param spec The export's format block (compression already resolved from its profile).
 * @param options Optional pre-compiled parquet-wasm module.
 * @returns The format.
 * @throws {ConfigError} `format.csv_compression` for a compressed CSV.
 *
 * @example
 * ```ts
 * import { createFormat } from "./create_format.ts";
 * const csv = await createFormat({ kind: "csv", compression: "none" });
 * if (csv.extension !== "csv") throw new Error("csv expected");
 * ```
 */
export async function createFormat(
  spec: FormatSpec,
  options: CreateFormatOptions = {},
): Promise<Format> {
  if (spec.kind === "csv") return createCsvFormat(spec);
  return await createParquetFormat(
    spec,
    options.wasmModule === undefined ? {} : { wasmModule: options.wasmModule },
  );
}
