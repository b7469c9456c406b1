/**
 * Sources: database connections that stream query results as Arrow record batches.
 *
 * Layer: sources. Imports core/ and _util/ only; engines are loaded lazily per `source.type`.
 *
 * @module
 */
export { openSource, type OpenSourceOptions } from "./open_source.ts";
