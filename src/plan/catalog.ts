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
 * checkpoints, MariaDB/MySQL's InnoDB log waits. A cumulative counter: rising means pressure.
 *
 * @param kind The source engine.
 * @returns A one-value probe.
 */
export function pressureSql(kind: SourceKind): string {
  if (kind === "mysql") {
    return "SELECT CAST(VARIABLE_VALUE AS SIGNED) FROM information_schema.GLOBAL_STATUS " +
      "WHERE VARIABLE_NAME = 'INNODB_LOG_WAITS'";
  }
  return "SELECT checkpoints_req FROM pg_stat_bgwriter";
}
