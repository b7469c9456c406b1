/**
 * SQL Server source: npm:tedious for the connection and protocol, with rivet's own decoding of
 * the values that must stay exact (decimals, money, dates and times, GUIDs) and a columnar batch
 * builder.
 *
 * Layer: sources. Imports core/ and _util/ only (and the shared `../_arrow_columns.ts`).
 *
 * @module
 */
export { MssqlSource, type MssqlSourceOptions, openMssqlSource } from "./source.ts";
export { classifyMssqlError, MssqlPermanentError, MssqlTransientError } from "./_errors.ts";
// The decoding pieces, for the client-side benchmark (`scripts/bench_mssql_decode.ts`).
export { installExactDecoders } from "./_decode.ts";
export { type MssqlColumnMeta, mssqlColumns } from "./_types.ts";
export { MssqlBatchBuilder, mssqlSchema } from "./_batch.ts";
