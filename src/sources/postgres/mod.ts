/**
 * PostgreSQL source: our own v3 wire-protocol reader decoding binary rows into Arrow batches.
 *
 * Layer: sources. Imports core/ and _util/ only.
 *
 * @module
 */
export { openPostgresSource, PostgresSource, type PostgresSourceOptions } from "./source.ts";
export { PgSqlSession, tagRowCount } from "./session.ts";
export { classifyPgError, PgPermanentError, PgTransientError } from "./_errors.ts";
