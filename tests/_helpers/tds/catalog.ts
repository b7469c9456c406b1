/**
 * Test support (TDS test server): the SQL that prepares the backing PostgreSQL database. A `dbo`
 * schema for user tables, a `sys` schema whose views answer the catalog queries SQL Server
 * clients send (same column names and meaning: `sys.tables`, `sys.columns` with the declared SQL
 * Server types read from the `mssql:` column comments, `sys.indexes`, `sys.index_columns`,
 * `sys.partitions`, `sys.dm_db_partition_stats`, `sys.databases`, `sys.dm_exec_requests`, …),
 * and the built-in functions (`OBJECT_ID`, `SCHEMA_ID`, `SCHEMA_NAME`, `DB_NAME`,
 * `SERVERPROPERTY`, `@@VERSION`).
 *
 * @module
 */

/** `sys.types` rows: name, system_type_id, user_type_id, max_length, precision, scale. */
const TYPES: [string, number, number, number, number, number][] = [
  ["image", 34, 34, 16, 0, 0],
  ["text", 35, 35, 16, 0, 0],
  ["uniqueidentifier", 36, 36, 16, 0, 0],
  ["date", 40, 40, 3, 10, 0],
  ["time", 41, 41, 5, 16, 7],
  ["datetime2", 42, 42, 8, 27, 7],
  ["datetimeoffset", 43, 43, 10, 34, 7],
  ["tinyint", 48, 48, 1, 3, 0],
  ["smallint", 52, 52, 2, 5, 0],
  ["int", 56, 56, 4, 10, 0],
  ["smalldatetime", 58, 58, 4, 16, 0],
  ["real", 59, 59, 4, 24, 0],
  ["money", 60, 60, 8, 19, 4],
  ["datetime", 61, 61, 8, 23, 3],
  ["float", 62, 62, 8, 53, 0],
  ["sql_variant", 98, 98, 8016, 0, 0],
  ["ntext", 99, 99, 16, 0, 0],
  ["bit", 104, 104, 1, 1, 0],
  ["decimal", 106, 106, 17, 38, 38],
  ["numeric", 108, 108, 17, 38, 38],
  ["smallmoney", 122, 122, 4, 10, 4],
  ["bigint", 127, 127, 8, 19, 0],
  ["hierarchyid", 240, 128, 892, 0, 0],
  ["geometry", 240, 129, -1, 0, 0],
  ["geography", 240, 130, -1, 0, 0],
  ["varbinary", 165, 165, 8000, 0, 0],
  ["varchar", 167, 167, 8000, 0, 0],
  ["binary", 173, 173, 8000, 0, 0],
  ["char", 175, 175, 8000, 0, 0],
  ["nvarchar", 231, 231, 8000, 0, 0],
  ["nchar", 239, 239, 8000, 0, 0],
  ["xml", 241, 241, -1, 0, 0],
  ["sysname", 231, 256, 256, 0, 0],
];

/** Setup run once in the new database, as the PostgreSQL superuser. */
export function catalogSql(options: { engineEdition: number; snapshotIsolation: boolean }): string {
  const types = TYPES.map((r) => `('${r[0]}', ${r.slice(1).join(", ")})`).join(",\n  ");
  return `
CREATE SCHEMA dbo;
CREATE SCHEMA sys;
-- T-SQL writes bits as 0/1: 'INSERT … VALUES (1)' into a bit column, 'WHERE is_primary_key = 1'.
UPDATE pg_cast SET castcontext = 'i'
  WHERE castsource = 'integer'::regtype AND casttarget = 'boolean'::regtype;
CREATE TABLE sys._settings (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO sys._settings VALUES
  ('snapshot_isolation', '${options.snapshotIsolation ? 1 : 0}'),
  ('engine_edition', '${options.engineEdition}'),
  ('cdc_enabled', '0'), ('agent_running', '1');
CREATE TABLE sys.types (name text PRIMARY KEY, system_type_id int, user_type_id int,
  max_length smallint, "precision" int, scale int);
INSERT INTO sys.types VALUES
  ${types};

-- The SQL Server type of a PostgreSQL column created without a declared type (SELECT … INTO).
CREATE FUNCTION sys._from_pg(typ oid, typmod int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE typ
    WHEN 20 THEN 'bigint' WHEN 23 THEN 'int' WHEN 21 THEN 'smallint' WHEN 16 THEN 'bit'
    WHEN 701 THEN 'float' WHEN 700 THEN 'real' WHEN 1082 THEN 'date'
    WHEN 1114 THEN 'datetime2(6)' WHEN 1184 THEN 'datetimeoffset(6)' WHEN 1083 THEN 'time(6)'
    WHEN 17 THEN 'varbinary(max)' WHEN 2950 THEN 'uniqueidentifier'
    WHEN 1700 THEN CASE WHEN typmod > 0
      THEN format('decimal(%s,%s)', ((typmod - 4) >> 16) & 65535, (typmod - 4) & 65535)
      ELSE 'decimal(38,10)' END
    ELSE 'nvarchar(max)' END
$$;

-- The declared type of a column: its mssql: comment, else one derived from its PostgreSQL type.
CREATE FUNCTION sys._declared(rel oid, att int) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    (SELECT substr(d.description, 7) FROM pg_description d
      WHERE d.objoid = rel AND d.classoid = 'pg_class'::regclass AND d.objsubid = att
        AND d.description LIKE 'mssql:%'),
    (SELECT sys._from_pg(a.atttypid, a.atttypmod) FROM pg_attribute a
      WHERE a.attrelid = rel AND a.attnum = att))
$$;

CREATE FUNCTION sys._facts(decl text, OUT t_name text, OUT t_sys int, OUT t_user int,
  OUT t_len int, OUT t_prec int, OUT t_scale int)
LANGUAGE plpgsql STABLE AS $$
DECLARE m text[]; a text; b text;
BEGIN
  m := regexp_match(lower(decl), '^(\\w+)(?:\\((\\w+)(?:,(\\d+))?\\))?$');
  t_name := m[1]; a := m[2]; b := m[3];
  SELECT t.system_type_id, t.user_type_id, t.max_length, t."precision", t.scale
    INTO t_sys, t_user, t_len, t_prec, t_scale
    FROM sys.types t WHERE t.name = t_name;
  IF t_name IN ('varchar', 'char', 'varbinary', 'binary') THEN
    t_len := CASE WHEN a = 'max' THEN -1 ELSE a::int END;
  ELSIF t_name IN ('nvarchar', 'nchar') THEN
    t_len := CASE WHEN a = 'max' THEN -1 ELSE a::int * 2 END;
  ELSIF t_name IN ('decimal', 'numeric') THEN
    t_prec := a::int; t_scale := coalesce(b::int, 0);
    t_len := CASE WHEN t_prec <= 9 THEN 5 WHEN t_prec <= 19 THEN 9
      WHEN t_prec <= 28 THEN 13 ELSE 17 END;
  ELSIF t_name IN ('time', 'datetime2', 'datetimeoffset') THEN
    t_scale := a::int;
    t_prec := CASE t_name WHEN 'time' THEN 8 WHEN 'datetime2' THEN 19 ELSE 26 END
      + CASE WHEN t_scale = 0 THEN 0 ELSE t_scale + 1 END;
    t_len := CASE WHEN t_scale <= 2 THEN 3 WHEN t_scale <= 4 THEN 4 ELSE 5 END
      + CASE t_name WHEN 'time' THEN 0 WHEN 'datetime2' THEN 3 ELSE 5 END;
  END IF;
END $$;

-- Exact row count (SQL Server keeps sys.partitions.rows current; PostgreSQL's estimate is not).
CREATE FUNCTION sys._row_count(rel oid) RETURNS bigint LANGUAGE plpgsql STABLE SECURITY DEFINER AS $$
DECLARE n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM %s', rel::regclass) INTO n;
  RETURN n;
END $$;

CREATE VIEW sys.schemas AS
  SELECT n.oid::int AS schema_id, n.nspname::text AS name, 1 AS principal_id
  FROM pg_namespace n
  WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema';

CREATE VIEW sys.objects AS
  SELECT c.oid::int AS object_id, c.relname::text AS name, c.relnamespace::int AS schema_id,
    CASE c.relkind WHEN 'v' THEN 'V ' ELSE 'U ' END AS type,
    CASE c.relkind WHEN 'v' THEN 'VIEW' ELSE 'USER_TABLE' END AS type_desc,
    0 AS parent_object_id, false AS is_ms_shipped
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'sys')
    AND n.nspname NOT LIKE 'pg\\_%';

CREATE VIEW sys.tables AS
  SELECT o.object_id, o.name, o.schema_id, o.type, o.type_desc, false AS is_ms_shipped
  FROM sys.objects o WHERE o.type = 'U ';

CREATE VIEW sys.views AS
  SELECT o.object_id, o.name, o.schema_id, o.type, o.type_desc FROM sys.objects o WHERE o.type = 'V ';

CREATE VIEW sys.columns AS
  SELECT a.attrelid::int AS object_id, a.attnum::int AS column_id, a.attname::text AS name,
    f.t_sys AS system_type_id, f.t_user AS user_type_id, f.t_len::smallint AS max_length,
    f.t_prec::smallint AS "precision", f.t_scale::smallint AS scale,
    NOT a.attnotnull AS is_nullable, a.attidentity <> '' AS is_identity,
    false AS is_computed
  FROM pg_attribute a JOIN sys.objects o ON o.object_id = a.attrelid::int
  CROSS JOIN LATERAL sys._facts(sys._declared(a.attrelid, a.attnum)) f
  WHERE a.attnum > 0 AND NOT a.attisdropped;

CREATE VIEW sys.indexes AS
  SELECT i.indrelid::int AS object_id,
    CASE WHEN i.indisprimary THEN 1
      ELSE 1 + row_number() OVER (PARTITION BY i.indrelid, i.indisprimary ORDER BY i.indexrelid)
    END::int AS index_id,
    c.relname::text AS name, CASE WHEN i.indisprimary THEN 1 ELSE 2 END AS type,
    CASE WHEN i.indisprimary THEN 'CLUSTERED' ELSE 'NONCLUSTERED' END AS type_desc,
    i.indisunique AS is_unique, i.indisprimary AS is_primary_key,
    EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype = 'u')
      AS is_unique_constraint,
    i.indpred IS NOT NULL AS has_filter, false AS is_disabled, false AS is_hypothetical
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN sys.tables t ON t.object_id = i.indrelid::int
  UNION ALL
  SELECT t.object_id, 0, NULL, 0, 'HEAP', false, false, false, false, false, false
  FROM sys.tables t
  WHERE NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.object_id AND i.indisprimary);

CREATE VIEW sys.index_columns AS
  SELECT x.object_id, x.index_id, k.ord::int AS index_column_id, k.att::int AS column_id,
    CASE WHEN k.ord <= i.indnkeyatts THEN k.ord ELSE 0 END::int AS key_ordinal,
    k.ord > i.indnkeyatts AS is_included_column, false AS is_descending_key,
    0 AS partition_ordinal
  FROM sys.indexes x
  JOIN pg_class c ON c.relname = x.name AND c.relkind = 'i'
  JOIN pg_index i ON i.indexrelid = c.oid AND i.indrelid = x.object_id
  CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(att, ord);

CREATE VIEW sys.partitions AS
  SELECT x.object_id::bigint * 1000 + x.index_id AS partition_id, x.object_id, x.index_id,
    1 AS partition_number, sys._row_count(x.object_id) AS rows, 0 AS data_compression
  FROM sys.indexes x WHERE x.index_id <= 1;

CREATE VIEW sys.dm_os_performance_counters AS
  SELECT 'SQLServer:Databases' AS object_name, 'Log Flush Waits/sec' AS counter_name,
    '_Total' AS instance_name, (SELECT checkpoints_req FROM pg_stat_bgwriter)::bigint AS cntr_value,
    272696576 AS cntr_type;

CREATE VIEW sys.allocation_units AS
  SELECT p.partition_id AS allocation_unit_id, 1 AS type, 'IN_ROW_DATA' AS type_desc,
    p.partition_id AS container_id,
    (pg_total_relation_size(p.object_id) / 8192)::bigint AS total_pages,
    (pg_relation_size(p.object_id) / 8192)::bigint AS used_pages,
    (pg_relation_size(p.object_id) / 8192)::bigint AS data_pages
  FROM sys.partitions p;

CREATE VIEW sys.dm_db_partition_stats AS
  SELECT p.partition_id, p.object_id, p.index_id, p.partition_number, p.rows AS row_count,
    (pg_relation_size(p.object_id) / 8192)::bigint AS used_page_count,
    (pg_relation_size(p.object_id) / 8192)::bigint AS in_row_data_page_count,
    (pg_total_relation_size(p.object_id) / 8192)::bigint AS reserved_page_count
  FROM sys.partitions p;

CREATE VIEW sys.databases AS
  SELECT 5 AS database_id, current_database()::text AS name,
    (SELECT value::int FROM sys._settings WHERE key = 'snapshot_isolation')
      AS snapshot_isolation_state,
    CASE WHEN (SELECT value FROM sys._settings WHERE key = 'snapshot_isolation') = '1'
      THEN 'ON' ELSE 'OFF' END AS snapshot_isolation_state_desc,
    false AS is_read_committed_snapshot_on, 0 AS state, 'ONLINE' AS state_desc,
    160 AS compatibility_level,
    (SELECT value FROM sys._settings WHERE key = 'cdc_enabled') = '1' AS is_cdc_enabled;

CREATE VIEW sys.dm_exec_sessions AS
  SELECT substr(a.application_name, 5)::int AS session_id, a.usename::text AS login_name,
    CASE a.state WHEN 'active' THEN 'running' ELSE 'sleeping' END AS status,
    true AS is_user_process, 5 AS database_id, 'tedious'::text AS program_name
  FROM pg_stat_activity a WHERE a.application_name LIKE 'tds:%'
  UNION ALL -- SQL Server Agent, while it runs
  SELECT 40, 'NT SERVICE\\SQLSERVERAGENT', 'sleeping', false, 5, 'SQLAgent - Generic Refresher'
  FROM sys._settings WHERE key = 'agent_running' AND value = '1';

CREATE VIEW sys.dm_exec_requests AS
  SELECT substr(a.application_name, 5)::int AS session_id, 'running' AS status,
    upper(split_part(ltrim(a.query), ' ', 1)) AS command, a.query_start AS start_time,
    5 AS database_id, 0 AS blocking_session_id
  FROM pg_stat_activity a WHERE a.application_name LIKE 'tds:%' AND a.state = 'active';

-- SQL Server stores datetime in 1/300-second ticks: .003 is kept as 0.00333…, .007 as 0.00666….
CREATE FUNCTION sys._datetime_grid(v timestamp) RETURNS timestamp LANGUAGE sql IMMUTABLE AS $$
  SELECT date_trunc('second', v)
    + make_interval(secs => round(extract(epoch FROM v - date_trunc('second', v)) * 300) / 300.0) $$;

CREATE FUNCTION public.object_id(name text, kind text DEFAULT NULL) RETURNS int
LANGUAGE plpgsql STABLE AS $$
DECLARE parts text[]; rel regclass;
BEGIN
  parts := regexp_split_to_array(regexp_replace(name, '[\\[\\]"]', '', 'g'), '\\.');
  IF array_length(parts, 1) = 1 THEN parts := ARRAY['dbo', parts[1]]; END IF;
  rel := to_regclass(quote_ident(parts[array_length(parts, 1) - 1]) || '.'
    || quote_ident(parts[array_length(parts, 1)]));
  RETURN rel::oid::int;
END $$;
CREATE FUNCTION public.object_name(id int) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT relname::text FROM pg_class WHERE oid = id::oid $$;
CREATE FUNCTION public.object_schema_name(id int) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.oid = id::oid $$;
CREATE FUNCTION public.schema_id(name text DEFAULT 'dbo') RETURNS int LANGUAGE sql STABLE AS $$
  SELECT oid::int FROM pg_namespace WHERE nspname = name $$;
CREATE FUNCTION public.schema_name(id int DEFAULT NULL) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN id IS NULL THEN 'dbo'
    ELSE (SELECT nspname::text FROM pg_namespace WHERE oid = id::oid) END $$;
CREATE FUNCTION public.db_name(id int DEFAULT NULL) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT current_database()::text $$;
CREATE FUNCTION public.db_id(name text DEFAULT NULL) RETURNS int LANGUAGE sql STABLE AS $$
  SELECT 5 $$;
CREATE FUNCTION public.mssql_version() RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT 'Microsoft SQL Server 2022 (RTM-CU0) - 16.0.4003.1 (X64) (rivet TDS test server)' $$;
CREATE FUNCTION public.serverproperty(name text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE lower(name)
    WHEN 'engineedition' THEN (SELECT value FROM sys._settings WHERE key = 'engine_edition')
    WHEN 'productversion' THEN '16.0.4003.1'
    WHEN 'productmajorversion' THEN '16'
    WHEN 'edition' THEN CASE (SELECT value FROM sys._settings WHERE key = 'engine_edition')
      WHEN '5' THEN 'SQL Azure' WHEN '8' THEN 'SQL Azure' ELSE 'Developer Edition (64-bit)' END
    WHEN 'servername' THEN 'rivet-tds-test'
    WHEN 'machinename' THEN 'rivet-tds-test'
    ELSE NULL END $$;

GRANT USAGE ON SCHEMA dbo, sys TO limited;
GRANT SELECT ON ALL TABLES IN SCHEMA sys TO limited;
`;
}
