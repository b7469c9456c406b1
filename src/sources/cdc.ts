/**
 * `openCdcReader`: picks the engine of `source.type` and loads its change-log reader lazily, so
 * a PostgreSQL run never loads another engine's code.
 *
 * @module
 */
import type { CdcCheckOptions, CdcOpenOptions, CdcReader } from "../core/cdc.ts";
import type { ConnectionInfo } from "../core/source.ts";
import type { SourceSpec } from "../core/spec.ts";

/**
 * Checks, without creating anything, that the database can stream the tables' changes as an
 * export would read them: server settings, privileges, the tables, the engine's reader names.
 *
 * @param spec The `source` block (kind, TLS).
 * @param connection Resolved host, port, credentials and database.
 * @param options Tables and the engine's names.
 * @returns One line saying what was checked.
 * @throws {RivetError} The error opening the stream would raise, with its fix.
 */
export async function checkCdcReady(
  spec: SourceSpec,
  connection: ConnectionInfo,
  options: CdcCheckOptions,
): Promise<string> {
  switch (spec.kind) {
    case "postgres": {
      const { checkPostgresCdc } = await import("./postgres/cdc.ts");
      return await checkPostgresCdc(spec, connection, options);
    }
    case "mysql": {
      const { checkMysqlCdc } = await import("./mysql/cdc.ts");
      return await checkMysqlCdc(spec, connection, options);
    }
    case "mssql": {
      const { checkMssqlCdc } = await import("./mssql/cdc.ts");
      return await checkMssqlCdc(spec, connection, options);
    }
  }
}

/**
 * Opens the change stream of the configured database.
 *
 * @param spec The `source` block (kind, TLS).
 * @param connection Resolved host, port, credentials and database.
 * @param options Tables, start position, engine settings, signal.
 * @returns An open reader; dispose it with `await using`.
 */
export async function openCdcReader(
  spec: SourceSpec,
  connection: ConnectionInfo,
  options: CdcOpenOptions,
): Promise<CdcReader> {
  switch (spec.kind) {
    case "postgres": {
      const { openPostgresCdc } = await import("./postgres/cdc.ts");
      return await openPostgresCdc(spec, connection, options);
    }
    case "mysql": {
      const { openMysqlCdc } = await import("./mysql/cdc.ts");
      return await openMysqlCdc(spec, connection, options);
    }
    case "mssql": {
      const { openMssqlCdc } = await import("./mssql/cdc.ts");
      return await openMssqlCdc(spec, connection, options);
    }
  }
}
