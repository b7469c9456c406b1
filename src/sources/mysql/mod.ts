/**
 * MySQL/MariaDB source: npm:mysql2 for the connection and protocol, our own decoder turning
 * binary-protocol rows into Arrow batches.
 *
 * Layer: sources. Imports core/ and _util/ only (and the shared `../_arrow_columns.ts`).
 *
 * @module
 */
export { MysqlSource, type MysqlSourceOptions, openMysqlSource } from "./source.ts";
export { classifyMysqlError, MysqlPermanentError, MysqlTransientError } from "./_errors.ts";
