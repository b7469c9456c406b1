/**
 * Test support (TDS test server): SQL Server change data capture over the backing PostgreSQL.
 *
 * - `EXEC sys.sp_cdc_enable_db` turns `sys.databases.is_cdc_enabled` on and creates the `cdc`
 *   schema with `cdc.change_tables`, `cdc.captured_columns` and `cdc.lsn_time_mapping`.
 * - `EXEC sys.sp_cdc_enable_table @source_schema, @source_name, @role_name[, @capture_instance]`
 *   creates the change table `cdc.<instance>_ct` (`__$start_lsn`, `__$seqval`, `__$operation`,
 *   `__$update_mask`, then every column of the table with its declared type) and a trigger that
 *   plays the capture job: each changed row is written there at once (1 delete, 2 insert, 3 and
 *   4 update before and after), and the transaction's LSN into the LSN map.
 * - `sys.fn_cdc_get_min_lsn`, `sys.fn_cdc_get_max_lsn`, `sys.fn_cdc_increment_lsn`, and
 *   `cdc.fn_cdc_get_all_changes_<instance>(from, to, N'all')` (translated to a subquery on the
 *   change table, so the columns keep their declared types; a window outside
 *   [min LSN, max LSN] fails as on SQL Server).
 * - `EXEC sys.sp_cdc_cleanup_change_table @capture_instance, @low_water_mark` plays the cleanup
 *   job: changes before the mark are removed and the instance's min LSN moves up to it.
 *
 * An LSN is the writing transaction's id (`txid_current()`) as 10 bytes: ids are handed out in
 * start order, which is commit order as long as transactions do not overlap, as in the tests.
 * The rows of a transaction are visible only once it commits, as SQL Server's capture job only
 * copies committed transactions.
 *
 * @module
 */

/** Setup run once in the new database, after `catalogSql`. */
export function cdcCatalogSql(): string {
  return `
CREATE TABLE sys._cdc_instances (capture_instance text PRIMARY KEY, source_object_id int NOT NULL,
  object_id int NOT NULL, start_lsn bytea NOT NULL, role_name text);
CREATE TABLE sys._cdc_columns (capture_instance text NOT NULL, column_name text NOT NULL,
  column_ordinal int NOT NULL);
CREATE TABLE sys._cdc_lsn_time_mapping (start_lsn bytea PRIMARY KEY, tran_begin_time timestamp,
  tran_end_time timestamp);
CREATE SEQUENCE sys._cdc_seqval;

CREATE FUNCTION sys._cdc_lsn(n bigint) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT decode(lpad(to_hex(n), 20, '0'), 'hex') $$;
CREATE FUNCTION sys.fn_cdc_get_min_lsn(instance text) RETURNS bytea LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT i.start_lsn FROM sys._cdc_instances i
    WHERE lower(i.capture_instance) = lower(instance)), sys._cdc_lsn(0)) $$;
CREATE FUNCTION sys.fn_cdc_get_max_lsn() RETURNS bytea LANGUAGE sql STABLE AS $$
  SELECT coalesce((SELECT m.start_lsn FROM sys._cdc_lsn_time_mapping m
    ORDER BY m.start_lsn DESC LIMIT 1), sys._cdc_lsn(0)) $$;
CREATE FUNCTION sys.fn_cdc_increment_lsn(lsn bytea) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
  SELECT sys._cdc_lsn(('x' || right(encode(lsn, 'hex'), 16))::bit(64)::bigint + 1) $$;

-- The argument check of cdc.fn_cdc_get_all_changes_*: SQL Server fails a window that starts
-- before the instance's oldest change or ends after the newest one.
CREATE FUNCTION sys._cdc_window(instance text, from_lsn bytea, to_lsn bytea) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF from_lsn < sys.fn_cdc_get_min_lsn(instance) OR to_lsn > sys.fn_cdc_get_max_lsn()
    OR from_lsn > to_lsn THEN
    RAISE EXCEPTION 'An insufficient number of arguments were supplied for the procedure or '
      'function cdc.fn_cdc_get_all_changes_ ... .';
  END IF;
  RETURN true;
END $$;

CREATE FUNCTION sys._cdc_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE lsn bytea := sys._cdc_lsn(txid_current()); ct text := TG_ARGV[0];
  ins text := 'INSERT INTO ' || ct ||
    ' SELECT $1, sys._cdc_lsn(nextval(''sys._cdc_seqval'')), $2, NULL, ($3).*';
BEGIN
  INSERT INTO sys._cdc_lsn_time_mapping VALUES (lsn, now(), clock_timestamp())
    ON CONFLICT (start_lsn) DO UPDATE SET tran_end_time = EXCLUDED.tran_end_time;
  IF TG_OP <> 'INSERT' THEN
    EXECUTE ins USING lsn, CASE TG_OP WHEN 'DELETE' THEN 1 ELSE 3 END, OLD;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    EXECUTE ins USING lsn, CASE TG_OP WHEN 'INSERT' THEN 2 ELSE 4 END, NEW;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION sys.sp_cdc_enable_db() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  UPDATE sys._settings SET value = '1' WHERE key = 'cdc_enabled';
  CREATE SCHEMA IF NOT EXISTS cdc;
  CREATE OR REPLACE VIEW cdc.change_tables AS
    SELECT i.object_id, i.source_object_id, i.capture_instance, i.start_lsn, i.role_name
    FROM sys._cdc_instances i;
  CREATE OR REPLACE VIEW cdc.captured_columns AS
    SELECT i.object_id, c.column_name, c.column_ordinal
    FROM sys._cdc_columns c JOIN sys._cdc_instances i USING (capture_instance);
  CREATE OR REPLACE VIEW cdc.lsn_time_mapping AS SELECT * FROM sys._cdc_lsn_time_mapping;
  GRANT USAGE ON SCHEMA cdc TO limited;
  RETURN 0;
END $$;

CREATE FUNCTION sys.sp_cdc_enable_table(source_schema text, source_name text, role_name text,
  capture_instance text DEFAULT NULL, supports_net_changes int DEFAULT NULL)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE src regclass; inst text; ct text; a record;
BEGIN
  IF (SELECT value FROM sys._settings WHERE key = 'cdc_enabled') <> '1' THEN
    RAISE EXCEPTION 'Database ''%'' is not enabled for Change Data Capture.', current_database();
  END IF;
  src := format('%I.%I', source_schema, source_name)::regclass;
  inst := coalesce(capture_instance, source_schema || '_' || source_name);
  ct := format('cdc.%I', lower(inst) || '_ct');
  EXECUTE format('CREATE TABLE %s AS SELECT NULL::bytea AS "__$start_lsn", '
    'NULL::bytea AS "__$seqval", NULL::int AS "__$operation", NULL::bytea AS "__$update_mask", '
    't.* FROM %s t WHERE false', ct, src);
  EXECUTE format('COMMENT ON COLUMN %s."__$start_lsn" IS ''mssql:binary(10)''', ct);
  EXECUTE format('COMMENT ON COLUMN %s."__$seqval" IS ''mssql:binary(10)''', ct);
  EXECUTE format('COMMENT ON COLUMN %s."__$operation" IS ''mssql:int''', ct);
  EXECUTE format('COMMENT ON COLUMN %s."__$update_mask" IS ''mssql:varbinary(128)''', ct);
  FOR a IN SELECT attname, attnum FROM pg_attribute
    WHERE attrelid = src AND attnum > 0 AND NOT attisdropped ORDER BY attnum LOOP
    EXECUTE format('COMMENT ON COLUMN %s.%I IS %L', ct, a.attname,
      'mssql:' || sys._declared(src, a.attnum));
    INSERT INTO sys._cdc_columns VALUES (inst, a.attname, a.attnum);
  END LOOP;
  INSERT INTO sys._cdc_instances VALUES (inst, src::oid::int, ct::regclass::oid::int,
    sys._cdc_lsn(txid_current()), role_name);
  EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW '
    'EXECUTE FUNCTION sys._cdc_capture(%L)', 'cdc_' || lower(inst), src, ct);
  EXECUTE format('GRANT SELECT ON %s TO limited', ct);
  RETURN 0;
END $$;

CREATE FUNCTION sys.sp_cdc_cleanup_change_table(capture_instance text, low_water_mark bytea,
  threshold bigint DEFAULT 5000) RETURNS int LANGUAGE plpgsql AS $$
DECLARE inst text := capture_instance;
BEGIN
  EXECUTE format('DELETE FROM cdc.%I WHERE "__$start_lsn" < $1', lower(inst) || '_ct')
    USING low_water_mark;
  UPDATE sys._cdc_instances i SET start_lsn = low_water_mark
    WHERE lower(i.capture_instance) = lower(inst);
  RETURN 0;
END $$;

-- Membership of a database role (a PostgreSQL role of that name; NULL for a NULL name).
CREATE FUNCTION public.is_member(role text) RETURNS int LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN role IS NULL THEN NULL
    WHEN NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = role) THEN 0
    ELSE pg_has_role(current_user, role, 'member')::int END $$;

-- SQL Server Agent shows as sessions of program 'SQLAgent - …' to a login with VIEW SERVER STATE.
CREATE FUNCTION public.has_perms_by_name(securable text, class text, permission text)
RETURNS int LANGUAGE sql STABLE AS $$ SELECT 1 $$;
`;
}

/**
 * `cdc.fn_cdc_get_all_changes_<instance>(from, to, filter)` as PostgreSQL: a subquery on the
 * change table (so the columns keep their declared types) behind the window check. `N'all'`
 * leaves out the update before-images (operation 3); `N'all update old'` keeps them.
 *
 * @param instance The instance named in the function name.
 * @param args The three arguments, already translated.
 * @returns A FROM item.
 */
export function allChangesFrom(instance: string, args: readonly string[]): string {
  const [from, to, filter] = args;
  const name = instance.toLowerCase().replaceAll('"', '""');
  return `(SELECT * FROM cdc."${name}_ct" WHERE sys._cdc_window('${name}', ${from}, ${to}) ` +
    `AND "__$start_lsn" BETWEEN ${from} AND ${to} AND ("__$operation" <> 3 OR ` +
    `lower(${filter}) = 'all update old')) AS "fn_cdc_get_all_changes_${name}"`;
}
