/**
 * Catalog statements of `rivet init`: the schema's tables and views (row estimate, size), their
 * columns (type, nullability, numeric precision and scale) and their unique keys, one statement
 * each for every table of the listed schemas at once. Estimates come from the catalog: nothing
 * is scanned. Every value is returned as an integer or text, the two shapes a probe renders.
 *
 * Row shapes (in order):
 * - tables: schema, name, `table` | `view`, row estimate (NULL when unknown), total bytes (NULL
 *   for views).
 * - columns: schema, table, column, type as the database spells it, base type name, nullable
 *   (1/0), numeric precision, numeric scale, max length (SQL Server bytes; -1 = max).
 * - keys: schema, table, index name, primary (1/0), column, position in the key.
 *
 * Layer: plan (pure). Imports only `core/` and `plan/`.
 *
 * @module
 */
import type { SourceKind } from "../core/spec.ts";
import { dialectOf, quoteIdent } from "./dialect.ts";

/** String literal with `'` doubled (schema names come from the command line or the catalog). */
function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

function inList(schemas: readonly string[]): string {
  if (schemas.length === 0) throw new RangeError("at least one schema is needed");
  return `(${schemas.map(literal).join(", ")})`;
}

/**
 * The statement that names the schema unqualified names resolve in: PostgreSQL's
 * `current_schema()`, MySQL's current database, SQL Server's default schema of the login.
 *
 * @param kind The source engine.
 * @returns A one-value probe.
 *
 * @example
 * ```ts
 * import { defaultSchemaSql } from "./inventory_sql.ts";
 * if (defaultSchemaSql("mysql") !== "SELECT DATABASE()") throw new Error();
 * ```
 */
export function defaultSchemaSql(kind: SourceKind): string {
  switch (kind) {
    case "postgres":
      return "SELECT current_schema()::text";
    case "mysql":
      return "SELECT DATABASE()";
    case "mssql":
      return "SELECT SCHEMA_NAME()";
  }
}

/**
 * Tables and views of the schemas, sorted by schema and name.
 *
 * @param kind The source engine.
 * @param schemas The schemas (at least one).
 * @returns The statement.
 */
export function tablesSql(kind: SourceKind, schemas: readonly string[]): string {
  const where = inList(schemas);
  switch (kind) {
    case "postgres":
      // reltuples is -1 before the first ANALYZE (PostgreSQL 14+): unknown, not empty. A
      // partitioned table holds nothing itself: its leaves' estimates and sizes are summed.
      return "SELECT n.nspname::text, c.relname::text, " +
        "CASE WHEN c.relkind IN ('v', 'm') THEN 'view' ELSE 'table' END, " +
        "CASE WHEN c.relkind = 'r' AND c.reltuples >= 0 THEN c.reltuples::int8 " +
        "WHEN c.relkind = 'p' THEN (SELECT CASE WHEN bool_and(l.reltuples >= 0) " +
        "THEN sum(l.reltuples)::int8 END FROM pg_partition_tree(c.oid) t " +
        "JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf) END, " +
        "CASE WHEN c.relkind IN ('r', 'm') THEN pg_total_relation_size(c.oid)::int8 " +
        "WHEN c.relkind = 'p' THEN (SELECT sum(pg_total_relation_size(t.relid))::int8 " +
        "FROM pg_partition_tree(c.oid) t) END " +
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " +
        `WHERE c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition AND n.nspname IN ${where} ` +
        "ORDER BY 1, 2";
    case "mysql":
      return "SELECT TABLE_SCHEMA, TABLE_NAME, " +
        "CASE WHEN TABLE_TYPE = 'VIEW' THEN 'view' ELSE 'table' END, " +
        "CASE WHEN TABLE_TYPE <> 'VIEW' THEN TABLE_ROWS END, " +
        "CASE WHEN TABLE_TYPE <> 'VIEW' THEN DATA_LENGTH + INDEX_LENGTH END " +
        "FROM information_schema.TABLES " +
        `WHERE TABLE_SCHEMA IN ${where} AND TABLE_TYPE IN ('BASE TABLE', 'VIEW', 'SYSTEM VERSIONED') ` +
        "ORDER BY 1, 2";
    case "mssql": {
      // Rows of the heap or clustered index; pages of every index and allocation unit.
      const rows = "(SELECT CAST(SUM(p.rows) AS bigint) FROM sys.partitions p " +
        "WHERE p.object_id = t.object_id AND p.index_id IN (0, 1))";
      const bytes = "(SELECT CAST(SUM(a.used_pages) AS bigint) * 8192 FROM sys.partitions p " +
        "JOIN sys.allocation_units a ON a.container_id = p.partition_id " +
        "WHERE p.object_id = t.object_id)";
      return `SELECT s.name, t.name, 'table', ${rows}, ${bytes} FROM sys.tables t ` +
        `JOIN sys.schemas s ON s.schema_id = t.schema_id WHERE s.name IN ${where} ` +
        "UNION ALL SELECT s.name, v.name, 'view', CAST(NULL AS bigint), CAST(NULL AS bigint) " +
        `FROM sys.views v JOIN sys.schemas s ON s.schema_id = v.schema_id WHERE s.name IN ${where} ` +
        "ORDER BY 1, 2";
    }
  }
}

/**
 * Columns of every table and view of the schemas, in table order then column order.
 *
 * @param kind The source engine.
 * @param schemas The schemas (at least one).
 * @returns The statement.
 */
export function columnsSql(kind: SourceKind, schemas: readonly string[]): string {
  const where = inList(schemas);
  switch (kind) {
    case "postgres":
      // Numeric precision and scale from the type modifier (absent for an unbounded numeric).
      return "SELECT n.nspname::text, c.relname::text, a.attname::text, " +
        "format_type(a.atttypid, a.atttypmod), t.typname::text, " +
        "CASE WHEN a.attnotnull THEN 0 ELSE 1 END, " +
        "CASE WHEN a.atttypid = 1700 AND a.atttypmod >= 4 THEN ((a.atttypmod - 4) >> 16) & 65535 END, " +
        "CASE WHEN a.atttypid = 1700 AND a.atttypmod >= 4 THEN (a.atttypmod - 4) & 65535 END, " +
        "CAST(NULL AS int8) " +
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid " +
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid " +
        "WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm') " +
        `AND NOT c.relispartition AND n.nspname IN ${where} ORDER BY 1, 2, a.attnum`;
    case "mysql":
      return "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, " +
        "CASE WHEN IS_NULLABLE = 'YES' THEN 1 ELSE 0 END, NUMERIC_PRECISION, NUMERIC_SCALE, " +
        "CAST(NULL AS SIGNED) FROM information_schema.COLUMNS " +
        `WHERE TABLE_SCHEMA IN ${where} ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`;
    case "mssql":
      return "SELECT s.name, o.name, c.name, ty.name, ty.name, CAST(c.is_nullable AS int), " +
        "CAST(c.precision AS int), CAST(c.scale AS int), CAST(c.max_length AS int) " +
        "FROM sys.columns c JOIN sys.objects o ON o.object_id = c.object_id " +
        "JOIN sys.schemas s ON s.schema_id = o.schema_id " +
        "JOIN sys.types ty ON ty.user_type_id = c.user_type_id " +
        `WHERE RTRIM(o.type) IN ('U', 'V') AND s.name IN ${where} ORDER BY 1, 2, c.column_id`;
  }
}

/**
 * Unique keys (the primary key included) of the schemas' tables: one row per key column. Partial
 * (filtered) and expression indexes are left out: neither proves a column unique.
 *
 * @param kind The source engine.
 * @param schemas The schemas (at least one).
 * @returns The statement.
 */
export function keysSql(kind: SourceKind, schemas: readonly string[]): string {
  const where = inList(schemas);
  switch (kind) {
    case "postgres":
      return "SELECT n.nspname::text, c.relname::text, ic.relname::text, " +
        "CASE WHEN i.indisprimary THEN 1 ELSE 0 END, a.attname::text, k.ord::int8 " +
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid " +
        "JOIN pg_class ic ON ic.oid = i.indexrelid " +
        "JOIN pg_namespace n ON n.oid = c.relnamespace " +
        "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(att, ord) " +
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.att " +
        "WHERE i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL " +
        `AND k.ord <= i.indnkeyatts AND n.nspname IN ${where} ORDER BY 1, 2, 3, 6`;
    case "mysql":
      // A functional key part has no COLUMN_NAME: such keys are dropped when read.
      return "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, " +
        "CASE WHEN INDEX_NAME = 'PRIMARY' THEN 1 ELSE 0 END, COLUMN_NAME, SEQ_IN_INDEX " +
        `FROM information_schema.STATISTICS WHERE NON_UNIQUE = 0 AND TABLE_SCHEMA IN ${where} ` +
        "ORDER BY 1, 2, 3, 6";
    case "mssql":
      return "SELECT s.name, o.name, i.name, CAST(i.is_primary_key AS int), c.name, " +
        "CAST(ic.key_ordinal AS int) FROM sys.indexes i " +
        "JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id " +
        "JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id " +
        "JOIN sys.objects o ON o.object_id = i.object_id " +
        "JOIN sys.schemas s ON s.schema_id = o.schema_id " +
        "WHERE i.is_unique = 1 AND i.has_filter = 0 AND ic.is_included_column = 0 " +
        `AND s.name IN ${where} ORDER BY 1, 2, 3, 6`;
  }
}

/**
 * The statement that lists a relation's columns as the export would read them, without a row:
 * `SELECT * FROM <schema>.<name>` with each part quoted for the engine.
 *
 * @param kind The source engine.
 * @param schema The schema.
 * @param name The table or view.
 * @param columns The columns to select (default all).
 * @returns The statement.
 *
 * @example
 * ```ts
 * import { selectSql } from "./inventory_sql.ts";
 * if (selectSql("mssql", "dbo", "a]b", ["x"]) !== "SELECT [x] FROM [dbo].[a]]b]") throw new Error();
 * ```
 */
export function selectSql(
  kind: SourceKind,
  schema: string,
  name: string,
  columns?: readonly string[],
): string {
  const q = (id: string) => quoteIdent(dialectOf(kind), id);
  const list = columns === undefined ? "*" : columns.map(q).join(", ");
  return `SELECT ${list} FROM ${q(schema)}.${q(name)}`;
}
