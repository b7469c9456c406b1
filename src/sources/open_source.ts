/**
 * `openSource`: picks the engine of `source.type` and loads its module lazily, so a PostgreSQL
 * export never loads another engine's code.
 *
 * @module
 */
import type { Source } from "../core/source.ts";
import type { SignalOptions, SourceSpec, Warning } from "../core/spec.ts";
import type { ConnectionInfo } from "../core/source.ts";
import { withPortableTypes } from "./_portable.ts";

/** Options of {@linkcode openSource}. */
export interface OpenSourceOptions extends SignalOptions {
  /** Receives warnings raised by the server (PostgreSQL notices, MySQL zero dates). */
  readonly onWarning?: (warning: Warning) => void;
}

/**
 * Connects to the configured database.
 *
 * @param spec The `source` block.
 * @param connection Resolved host, port, credentials and database.
 * @param options Signal and warnings sink.
 * @returns A connected source; dispose it with `await using`. Its reads honour
 * `portableTypes` the same way for every engine.
 */
export async function openSource(
  spec: SourceSpec,
  connection: ConnectionInfo,
  options: OpenSourceOptions = {},
): Promise<Source> {
  switch (spec.kind) {
    case "postgres": {
      const { openPostgresSource } = await import("./postgres/source.ts");
      return withPortableTypes(await openPostgresSource(spec, connection, options));
    }
    case "mysql": {
      const { openMysqlSource } = await import("./mysql/source.ts");
      return withPortableTypes(await openMysqlSource(spec, connection, options));
    }
    case "mssql": {
      const { openMssqlSource } = await import("./mssql/source.ts");
      return withPortableTypes(await openMssqlSource(spec, connection, options));
    }
  }
}
