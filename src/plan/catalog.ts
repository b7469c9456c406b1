/**
 * Catalog probes of chunked mode: the primary key of a `table:` export (for `chunk_column`
 * auto-resolution), its single-column NOT NULL unique keys (keyset paging), and the catalog's row
 * estimate and average row width (small-table downgrade, `chunk_size_memory_mb`). Each probe is a
 * statement whose result the pipeline reads like any other; none scans the table.
 *
 * Layer: plan (pure). Imports only `core/` and `plan/`.
 *
 * @module
 */
import type { SourceKind } from "../core/spec.ts";

/** The table of a `table:` export. */
export interface CatalogTable {
  readonly schema?: string;
  readonly table: string;
}

/** String literal with `'` doubled; names reaching here are validated identifiers anyway. */
function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

function pgRegclass(t: CatalogTable): string {
  return `to_regclass(${literal(t.schema ? `${t.schema}.${t.table}` : t.table)})`;
}

/** `OBJECT_ID(N'[schema].[table]')`: the bracket quoting keeps any name intact. */
function mssqlObjectId(t: CatalogTable): string {
  const part = (name: string) => `[${name.replaceAll("]", "]]")}]`;
  const name = t.schema ? `${part(t.schema)}.${part(t.table)}` : part(t.table);
  return `OBJECT_ID(N${literal(name)})`;
}

/** Key columns of a table's indexes, joined to their names and type names. */
const MSSQL_INDEX_COLUMNS = "FROM sys.indexes i " +
  "JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id " +
  "JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id " +
  "JOIN sys.types ty ON ty.user_type_id = c.user_type_id ";

function mysqlWhere(t: CatalogTable, alias: string): string {
  const schema = t.schema ? literal(t.schema) : "DATABASE()";
  return `${alias}.TABLE_SCHEMA = ${schema} AND ${alias}.TABLE_NAME = ${literal(t.table)}`;
}

/**
 * Columns of the primary key, in key order: rows of (column name, type name).
 *
 * @param kind The source engine.
 * @param t The table.
 * @returns The probe statement.
 */
export function primaryKeySql(kind: SourceKind, t: CatalogTable): string {
  if (kind === "mssql") {
    return `SELECT c.name, ty.name ${MSSQL_INDEX_COLUMNS}WHERE i.object_id = ${mssqlObjectId(t)} ` +
      "AND i.is_primary_key = 1 AND ic.is_included_column = 0 ORDER BY ic.key_ordinal";
  }
  if (kind === "mysql") {
    return "SELECT k.COLUMN_NAME, c.DATA_TYPE FROM information_schema.KEY_COLUMN_USAGE k " +
      "JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = k.TABLE_SCHEMA AND " +
      "c.TABLE_NAME = k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME " +
      `WHERE ${mysqlWhere(t, "k")} AND k.CONSTRAINT_NAME = 'PRIMARY' ORDER BY k.ORDINAL_POSITION`;
  }
  return "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_index i " +
    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) " +
    `WHERE i.indrelid = ${
      pgRegclass(t)
    } AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)`;
}

/**
 * Single-column, NOT NULL, unique keys (the primary key included): rows of (column name, type
 * name). Keyset paging needs one of them.
 *
 * @param kind The source engine.
 * @param t The table.
 * @returns The probe statement.
 */
export function uniqueKeySql(kind: SourceKind, t: CatalogTable): string {
  if (kind === "mssql") {
    return `SELECT MIN(c.name), MIN(ty.name) ${MSSQL_INDEX_COLUMNS}WHERE i.object_id = ${
      mssqlObjectId(t)
    } AND i.is_unique = 1 AND i.has_filter = 0 AND ic.is_included_column = 0 ` +
      "GROUP BY i.index_id, i.is_primary_key " +
      "HAVING COUNT(*) = 1 AND MAX(CAST(c.is_nullable AS int)) = 0 " +
      "ORDER BY MAX(CAST(i.is_primary_key AS int)) DESC, i.index_id";
  }
  if (kind === "mysql") {
    return "SELECT MIN(s.COLUMN_NAME), MIN(c.DATA_TYPE) FROM information_schema.STATISTICS s " +
      "JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND " +
      "c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME " +
      `WHERE ${mysqlWhere(t, "s")} AND s.NON_UNIQUE = 0 GROUP BY s.INDEX_NAME ` +
      "HAVING COUNT(*) = 1 AND SUM(c.IS_NULLABLE = 'YES') = 0 " +
      "ORDER BY MIN(s.INDEX_NAME = 'PRIMARY') DESC, s.INDEX_NAME";
  }
  return "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_index i " +
    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] " +
    `WHERE i.indrelid = ${pgRegclass(t)} AND i.indisunique AND i.indnkeyatts = 1 ` +
    "AND i.indpred IS NULL AND a.attnotnull ORDER BY i.indisprimary DESC";
}

/**
 * The catalog's row estimate and average row bytes, one row of two numbers (either may be
 * NULL): PostgreSQL `reltuples` and relation size / reltuples, MySQL `TABLE_ROWS` and
 * `AVG_ROW_LENGTH`. Estimates only: nothing is scanned.
 *
 * @param kind The source engine.
 * @param t The table.
 * @returns The probe statement.
 */
export function tableEstimateSql(kind: SourceKind, t: CatalogTable): string {
  if (kind === "mssql") {
    // Catalog views (no VIEW DATABASE STATE needed): rows of the heap or clustered index, and the
    // pages in use by all of its allocation units (in-row, LOB, overflow).
    const where = `WHERE p.object_id = ${mssqlObjectId(t)} AND p.index_id IN (0, 1)`;
    const rows = `(SELECT CAST(SUM(p.rows) AS bigint) FROM sys.partitions p ${where})`;
    const pages = "(SELECT CAST(SUM(a.used_pages) AS bigint) FROM sys.partitions p " +
      `JOIN sys.allocation_units a ON a.container_id = p.partition_id ${where})`;
    return `SELECT CASE WHEN ${rows} > 0 THEN ${rows} END, ` +
      `CASE WHEN ${rows} > 0 THEN ${pages} * 8192 / ${rows} END`;
  }
  if (kind === "mysql") {
    return "SELECT t.TABLE_ROWS, t.AVG_ROW_LENGTH FROM information_schema.TABLES t " +
      `WHERE ${mysqlWhere(t, "t")}`;
  }
  return "SELECT CASE WHEN c.reltuples > 0 THEN c.reltuples::int8 END, " +
    "CASE WHEN c.reltuples > 0 THEN (pg_relation_size(c.oid) / c.reltuples)::int8 END " +
    `FROM pg_class c WHERE c.oid = ${pgRegclass(t)}`;
}

const INTEGER_TYPES = new Set([
  "smallint",
  "integer",
  "bigint",
  "int",
  "int2",
  "int4",
  "int8",
  "tinyint",
  "mediumint",
]);

/**
 * Whether a catalog type name (as the probes above return it) is an integer type, so that range
 * windows can be cut over it.
 *
 * @param typeName `bigint`, `integer`, `int(11) unsigned`, …
 * @returns True for integer types.
 */
export function isIntegerTypeName(typeName: string): boolean {
  const base = typeName.toLowerCase().replace(/\(.*$/, "").replace(/ unsigned$/, "").trim();
  return INTEGER_TYPES.has(base);
}

/**
 * `chunk_size` from `chunk_size_memory_mb`: MB / average row bytes, clamped to 10,000..5,000,000,
 * with 512 bytes per row when the catalog gives no width.
 *
 * @param memoryMb `chunk_size_memory_mb`.
 * @param avgRowBytes The catalog's average row width, if known.
 * @returns The chunk size.
 *
 * @example
 * ```ts
 * import { chunkSizeFromMemory } from "./catalog.ts";
 * if (chunkSizeFromMemory(64, 100) !== 671_088) throw new Error();
 * if (chunkSizeFromMemory(1, undefined) !== 10_000) throw new Error();
 * ```
 */
export function chunkSizeFromMemory(memoryMb: number, avgRowBytes: number | undefined): number {
  const perRow = avgRowBytes !== undefined && avgRowBytes > 0 ? avgRowBytes : 512;
  const size = Math.floor(memoryMb * 1024 * 1024 / perRow);
  return Math.min(5_000_000, Math.max(10_000, size));
}

/**
 * The write-pressure counter `adaptive: true` samples every few batches: PostgreSQL's requested
 * checkpoints, MariaDB/MySQL's InnoDB log waits, SQL Server's log flush waits. A cumulative counter: rising means pressure.
 *
 * @param kind The source engine.
 * @returns A one-value probe.
 */
export function pressureSql(kind: SourceKind): string {
  if (kind === "mssql") {
    // Cumulative log-flush waits (needs VIEW SERVER STATE; without it adaptive mode runs blind).
    return "SELECT cntr_value FROM sys.dm_os_performance_counters " +
      "WHERE counter_name = 'Log Flush Waits/sec' AND instance_name = '_Total'";
  }
  if (kind === "mysql") {
    return "SELECT CAST(VARIABLE_VALUE AS SIGNED) FROM information_schema.GLOBAL_STATUS " +
      "WHERE VARIABLE_NAME = 'INNODB_LOG_WAITS'";
  }
  return "SELECT checkpoints_req FROM pg_stat_bgwriter";
}

/**
 * The columns that lead an index of a table (the first key column of every index, the primary
 * key's included), one per row: a range or `>` predicate on one of them is an index seek, on any
 * other column a scan. Partial (filtered) indexes do not count.
 *
 * @param kind The source engine.
 * @param t The table.
 * @returns The probe statement.
 */
export function indexedColumnsSql(kind: SourceKind, t: CatalogTable): string {
  if (kind === "mssql") {
    return `SELECT c.name ${MSSQL_INDEX_COLUMNS}WHERE i.object_id = ${mssqlObjectId(t)} ` +
      "AND i.has_filter = 0 AND ic.key_ordinal = 1";
  }
  if (kind === "mysql") {
    return "SELECT s.COLUMN_NAME FROM information_schema.STATISTICS s " +
      `WHERE ${mysqlWhere(t, "s")} AND s.SEQ_IN_INDEX = 1`;
  }
  return "SELECT a.attname::text FROM pg_index i " +
    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] " +
    `WHERE i.indrelid = ${pgRegclass(t)} AND i.indpred IS NULL`;
}

/**
 * The statement that runs an export's query for no row: the server parses, plans and checks the
 * permissions of the whole query (a missing table or column fails here), and the result's columns
 * come back with their types.
 *
 * @param kind The source engine.
 * @param baseSql The export's base query.
 * @returns `SELECT * FROM (<q>) AS _rivet_probe LIMIT 0`, or `SELECT TOP 0 …` on SQL Server.
 *
 * @example
 * ```ts
 * import { zeroRowSql } from "./catalog.ts";
 * if (zeroRowSql("mssql", "SELECT 1 AS a") !== "SELECT TOP 0 * FROM (SELECT 1 AS a) AS _rivet_probe") {
 *   throw new Error();
 * }
 * ```
 */
export function zeroRowSql(kind: SourceKind, baseSql: string): string {
  return kind === "mssql"
    ? `SELECT TOP 0 * FROM (${baseSql}) AS _rivet_probe`
    : `SELECT * FROM (${baseSql}) AS _rivet_probe LIMIT 0`;
}
