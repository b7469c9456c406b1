/**
 * Output formats: Arrow record batches in, encoded bytes out (Parquet via parquet-wasm, CSV via
 * an in-house RFC 4180 writer). No I/O of their own beyond loading the Parquet wasm module.
 *
 * Layer: formats. Imports core/ and _util/ only; never sources/, destinations/ or state/.
 *
 * @example
 * ```ts
 * import { createFormat } from "./mod.ts";
 * const format = await createFormat({ kind: "parquet", compression: "zstd" });
 * if (format.extension !== "parquet") throw new Error("parquet expected");
 * ```
 *
 * @module
 */
export { createFormat, type CreateFormatOptions } from "./create_format.ts";
export { createCsvFormat, CSV_CHUNK_BYTES, CsvFormat } from "./csv.ts";
export {
  compileParquetWasm,
  createParquetFormat,
  DEFAULT_ROW_GROUP_BYTES,
  estimateRowBytes,
  LIBRARY_DEFAULT_ROW_GROUP_ROWS,
  loadParquetWasm,
  ParquetFormat,
  parquetLevelNotApplied,
  parquetWasmMemoryBytes,
  planRowGroups,
  type RowGroupPlan,
} from "./parquet.ts";
