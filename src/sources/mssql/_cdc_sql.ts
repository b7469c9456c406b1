/**
 * SQL Server change data capture, the pure parts: which names may be spliced into T-SQL, the
 * statements the reader sends, LSN text, and the `cdc.*` errors with their fixes.
 *
 * Names are spliced, not bound: the capture instance is part of a function's name
 * (`cdc.fn_cdc_get_all_changes_<instance>`), which no parameter can carry. So table, schema and
 * instance names are held to `[A-Za-z0-9_]` and LSNs to `0x` + 20 hex digits before any of
 * them reaches a statement.
 *
 * Layer: sources.
 *
 * @module
 */
import type { CdcPosition, CdcTableRef } from "../../core/cdc.ts";
import { ConfigError, PermanentError } from "../../core/errors.ts";

/** One part of a table name, and a capture instance name. */
const NAME = /^[A-Za-z0-9_]{1,128}$/;

/** An LSN as rivet writes it: `0x` and 20 hex digits (SQL Server's `binary(10)`). */
const LSN = /^0x[0-9A-Fa-f]{20}$/;

/** The captured table, split and checked. */
export interface MssqlCdcTable {
  readonly schema: string;
  readonly table: string;
  /** `schema.table`, for messages. */
  readonly name: string;
  /** `[schema].[table]`, for statements. */
  readonly quoted: string;
}

/**
 * Checks the one table a SQL Server CDC reader captures.
 *
 * @param tables The tables asked for (exactly one).
 * @returns Its schema (default `dbo`) and name.
 *
 * @example
 * ```ts
 * import { cdcTable } from "./_cdc_sql.ts";
 * if (cdcTable([{ table: "sales.orders" }]).quoted !== "[sales].[orders]") throw new Error();
 * ```
 */
export function cdcTable(tables: readonly CdcTableRef[]): MssqlCdcTable {
  if (tables.length !== 1) {
    throw new ConfigError(
      `SQL Server CDC reads one table per export; ${tables.length} were given`,
      {
        code: "cdc.one_table",
        hint: "give each captured table its own export (its own capture instance and checkpoint)",
      },
    );
  }
  const ref = tables[0]!;
  const parts = ref.schema === undefined ? ref.table.split(".") : [ref.schema, ref.table];
  const [schema, table] = parts.length === 1 ? ["dbo", parts[0]!] : parts;
  if (parts.length > 2 || !NAME.test(schema ?? "") || !NAME.test(table ?? "")) {
    const shown = ref.schema === undefined ? ref.table : `${ref.schema}.${ref.table}`;
    throw new ConfigError(`CDC table '${shown}' is not a plain [schema.]table name`, {
      code: "cdc.bad_table_name",
      hint: "CDC tables are named with letters, digits and underscores only (A-Z a-z 0-9 _), " +
        "optionally prefixed by the schema and a dot",
    });
  }
  return {
    schema: schema!,
    table: table!,
    name: `${schema}.${table}`,
    quoted: `[${schema}].[${table}]`,
  };
}

/**
 * Checks a capture instance name before it is spliced into a function name.
 *
 * @param name `cdc.capture_instance` (or one read from `cdc.change_tables`).
 * @returns The name.
 */
export function checkInstance(name: string): string {
  if (!NAME.test(name)) {
    throw new ConfigError(`CDC capture instance '${name}' is not a plain name`, {
      code: "cdc.bad_capture_instance",
      hint: "capture instance names are letters, digits and underscores (A-Z a-z 0-9 _); " +
        "list them with SELECT capture_instance FROM cdc.change_tables",
    });
  }
  return name;
}

/**
 * The LSN a checkpoint holds, checked.
 *
 * @param position A `commit` position this reader produced: `{lsn: "0x…"}`.
 * @returns The LSN, uppercase, e.g. `0x0000002A000001F00003`.
 */
export function checkpointLsn(position: CdcPosition): string {
  const lsn = position.lsn;
  if (typeof lsn !== "string" || !LSN.test(lsn)) {
    throw new ConfigError(
      `the CDC checkpoint ${JSON.stringify(position)} is not a SQL Server position`,
      {
        code: "cdc.bad_checkpoint",
        hint: 'a SQL Server checkpoint is {"lsn": "0x" + 20 hex digits}; the state was ' +
          "written by another engine or edited: reset the export's state and export it again",
      },
    );
  }
  return normalLsn(lsn);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0").toUpperCase());

/**
 * `0x` + uppercase hex of a `binary(10)` value; uppercase hex strings of one length sort as the
 * LSNs they encode.
 *
 * @param bytes The value (tedious gives a Buffer, Arrow a Uint8Array).
 * @returns The text.
 */
export function lsnText(bytes: Uint8Array): string {
  let s = "0x";
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]!];
  return s;
}

/** Uppercase form of an `0x…` LSN (the form comparisons use). */
export function normalLsn(lsn: string): string {
  return `0x${lsn.slice(2).toUpperCase()}`;
}

/** The LSN SQL Server returns when it knows none (no capture instance, no access, no change). */
export const ZERO_LSN = `0x${"0".repeat(20)}`;

/** Above every LSN: a window starting there is empty. */
export const AFTER_ALL = `0x${"F".repeat(20)}`;

/** T-SQL N'…' literal of a checked name (no quote can occur in it; doubled anyway). */
export function nameLiteral(name: string): string {
  return `N'${name.replaceAll("'", "''")}'`;
}

/** `[name]`, for a column name read from the catalog. */
export function bracket(name: string): string {
  return `[${name.replaceAll("]", "]]")}]`;
}

/** Whether CDC is on for the database (NULL when the row is not visible). */
export const DATABASE_ENABLED =
  "SELECT CAST(d.is_cdc_enabled AS int) FROM sys.databases d WHERE d.name = DB_NAME()";

/** The table's object id: NULL when it does not exist or is not visible. */
export function objectIdSql(table: MssqlCdcTable): string {
  return `SELECT OBJECT_ID(${nameLiteral(table.quoted)})`;
}

/** The capture instances of a table, by name. */
export function instancesSql(table: MssqlCdcTable): string {
  return "SELECT ct.capture_instance FROM cdc.change_tables ct " +
    `WHERE ct.source_object_id = OBJECT_ID(${nameLiteral(table.quoted)}) ` +
    "ORDER BY ct.capture_instance";
}

/** The captured columns of an instance, in column order. */
export function capturedColumnsSql(instance: string): string {
  return "SELECT cc.column_name FROM cdc.captured_columns cc JOIN cdc.change_tables ct " +
    `ON ct.object_id = cc.object_id WHERE ct.capture_instance = ${nameLiteral(instance)} ` +
    "ORDER BY cc.column_ordinal";
}

/**
 * Whether the login may read an instance's change data: SELECT on the table, and membership of
 * the instance's gating role when it has one (db_owner members are never gated).
 */
export function accessSql(table: MssqlCdcTable, instance: string): string {
  return `SELECT HAS_PERMS_BY_NAME(${nameLiteral(table.quoted)}, N'OBJECT', N'SELECT'), ` +
    "ct.role_name, IS_MEMBER(ct.role_name), IS_MEMBER(N'db_owner') FROM cdc.change_tables ct " +
    `WHERE ct.capture_instance = ${nameLiteral(instance)}`;
}

/**
 * Whether SQL Server Agent (which runs the capture job) is up: the number of its sessions, or
 * NULL when the login may not see other sessions (then nothing can be said).
 */
export const AGENT_SESSIONS = "SELECT CASE WHEN HAS_PERMS_BY_NAME(NULL, NULL, " +
  "'VIEW SERVER STATE') = 1 THEN (SELECT COUNT(*) FROM sys.dm_exec_sessions s " +
  "WHERE s.program_name LIKE N'SQLAgent%') END";

/**
 * The window bounds: the instance's oldest LSN, the database's newest, and (with a checkpoint)
 * the LSN right after it.
 *
 * @param instance The checked capture instance.
 * @param after The checkpoint's LSN, if any.
 * @returns One statement, one row.
 */
export function boundsSql(instance: string, after: string | undefined): string {
  return `SELECT sys.fn_cdc_get_min_lsn(${nameLiteral(instance)}), sys.fn_cdc_get_max_lsn()` +
    (after === undefined ? "" : `, sys.fn_cdc_increment_lsn(${checkedLsn(after)})`);
}

/**
 * The changes of one LSN window, in log order. `N'all'` gives one row per insert (2), delete
 * (1, the before-image) and update (4, the after-image).
 *
 * @param instance The checked capture instance.
 * @param columns The captured columns to read.
 * @param from First LSN of the window (inclusive).
 * @param to Last LSN of the window (inclusive).
 * @returns The statement.
 */
export function windowSql(
  instance: string,
  columns: readonly string[],
  from: string,
  to: string,
): string {
  const list = columns.map(bracket).join(", ");
  return `SELECT __$start_lsn, __$seqval, __$operation${list === "" ? "" : `, ${list}`} ` +
    `FROM cdc.fn_cdc_get_all_changes_${checkInstance(instance)}(${checkedLsn(from)}, ` +
    `${checkedLsn(to)}, N'all') ORDER BY __$start_lsn, __$seqval`;
}

function checkedLsn(lsn: string): string {
  if (!LSN.test(lsn)) throw new Error(`not an LSN: ${lsn}`);
  return lsn;
}

/** How to turn CDC on for a table, as a hint. */
export function enableTableHint(table: MssqlCdcTable): string {
  return `EXEC sys.sp_cdc_enable_table @source_schema = N'${table.schema}', ` +
    `@source_name = N'${table.table}', @role_name = NULL (as db_owner; SQL Server Agent must ` +
    "run for the capture job to fill the change table)";
}

/** CDC is off for the database. */
export function databaseNotEnabled(database: string, table: MssqlCdcTable): ConfigError {
  return new ConfigError(`change data capture is not enabled for database '${database}'`, {
    code: "cdc.not_enabled",
    hint: `as sysadmin, in the database: EXEC sys.sp_cdc_enable_db; then ${enableTableHint(table)}`,
  });
}

/** The table has no capture instance, or not the one asked for. */
export function tableNotEnabled(
  table: MssqlCdcTable,
  asked: string | undefined,
  instances: readonly string[],
): ConfigError {
  if (asked !== undefined && instances.length > 0) {
    return new ConfigError(
      `table '${table.name}' has no CDC capture instance '${asked}' (it has: ${
        instances.join(", ")
      })`,
      {
        code: "cdc.not_enabled",
        hint: `set cdc.capture_instance to one of: ${instances.join(", ")}`,
      },
    );
  }
  return new ConfigError(`change data capture is not enabled for table '${table.name}'`, {
    code: "cdc.not_enabled",
    hint: enableTableHint(table),
  });
}

/** The table has two capture instances (one is being replaced) and none was named. */
export function instanceRequired(table: MssqlCdcTable, instances: readonly string[]): ConfigError {
  return new ConfigError(
    `table '${table.name}' has ${instances.length} CDC capture instances (${
      instances.join(", ")
    }); rivet cannot tell which to read`,
    {
      code: "cdc.capture_instance_required",
      hint: `set cdc.capture_instance to one of: ${instances.join(", ")}`,
    },
  );
}

/** The table does not exist (or is not visible to the login). */
export function tableMissing(table: MssqlCdcTable): ConfigError {
  return new ConfigError(`table '${table.name}' does not exist or is not visible`, {
    code: "cdc.table_not_found",
    hint: "check the table name and schema, and that the login may read it (GRANT SELECT)",
  });
}

/** `fn_cdc_get_min_lsn` gave nothing: no access to the instance's change data. */
export function noAccess(table: MssqlCdcTable, instance: string): PermanentError {
  return new PermanentError(
    `the login may not read the change data of capture instance '${instance}' of '${table.name}'`,
    {
      code: "cdc.no_access",
      hint: "grant SELECT on the source table and, when the instance was enabled with a " +
        "@role_name, add the login's user to that role: ALTER ROLE [<role>] ADD MEMBER [<user>]",
    },
  );
}

/** The checkpoint is older than what the instance still holds: changes were purged. */
export function checkpointTooOld(
  table: MssqlCdcTable,
  instance: string,
  checkpoint: string,
  oldest: string,
): PermanentError {
  return new PermanentError(
    `the CDC checkpoint ${checkpoint} of '${table.name}' is older than the oldest change ` +
      `capture instance '${instance}' still holds (${oldest}): changes in between were ` +
      "removed by the CDC cleanup job and cannot be read",
    {
      code: "cdc.checkpoint_too_old",
      hint: "export the table in full again, then reset this export's state so the next CDC " +
        "run starts from the instance's oldest change; to keep changes longer, raise the " +
        "cleanup job's retention: EXEC sys.sp_cdc_change_job @job_type = N'cleanup', " +
        "@retention = <minutes>",
    },
  );
}
