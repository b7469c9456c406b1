/**
 * What the MySQL/MariaDB change reader checks and learns before it streams: no proxy in front,
 * the binary log on and in ROW format, the log's current end, the start file still on the
 * server, and each captured table's columns (typed by the export's own mapping, plus the
 * ENUM/SET members, character sets and BINARY lengths the binlog does not carry).
 *
 * Layer: sources (MySQL).
 *
 * @module
 */
import type { CdcOpenOptions, CdcPosition, CdcTableRef } from "../../core/cdc.ts";
import { ConfigError, PermanentError } from "../../core/errors.ts";
import type { ConnectionInfo } from "../../core/source.ts";
import { classifyMysql } from "../_pooler.ts";
import type { ColumnExtra } from "./_binlog_rows.ts";
import { classifyMysqlError, type MysqlErrorContext } from "./_errors.ts";
import { type ColumnPlans, type MysqlField, planColumns } from "./_types.ts";
import type { MysqlConnection } from "./connect.ts";
import type { MysqlFlavour } from "./read.ts";

/** A binlog position. */
export interface BinlogPosition {
  readonly file: string;
  readonly pos: number;
}

/**
 * Orders two positions: by the file's numeric suffix (`mysql-bin.000012`), then the offset.
 *
 * @example
 * ```ts
 * import { comparePositions } from "./_binlog_setup.ts";
 * const a = { file: "b.000009", pos: 900 };
 * if (comparePositions(a, { file: "b.000010", pos: 4 }) >= 0) throw new Error();
 * ```
 */
export function comparePositions(a: BinlogPosition, b: BinlogPosition): number {
  const na = Number(/(\d+)$/.exec(a.file)?.[1] ?? 0);
  const nb = Number(/(\d+)$/.exec(b.file)?.[1] ?? 0);
  return na !== nb ? na - nb : a.pos - b.pos;
}

/** Names for error messages (the password only to scrub it). */
export function cdcErrors(connection: ConnectionInfo): MysqlErrorContext {
  return {
    user: connection.user,
    endpoint: `${connection.host}:${connection.port}`,
    ...(connection.password === undefined ? {} : { password: connection.password }),
  };
}

/** The refusal of a user without the replication privileges, with the GRANT that fixes it. */
export function missingGrant(user: string, text: string, cause?: unknown): PermanentError {
  return new PermanentError(
    `user '${user}' may not read the binary log: ${text}`,
    {
      code: "cdc.missing_grant",
      hint: `run GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '${user}'@'<host>' ` +
        "(MariaDB 10.5+ also accepts BINLOG MONITOR for REPLICATION CLIENT)",
      cause,
    },
  );
}

function rowsOf(conn: MysqlConnection, sql: string, values: unknown[] = []) {
  return new Promise<{ rows: unknown[][]; fields: MysqlField[] }>((resolve, reject) => {
    conn.query(
      { sql, values, rowsAsArray: true },
      ((err: unknown, rows: unknown, fields: unknown) =>
        err ? reject(err) : resolve({
          rows: (Array.isArray(rows) ? rows : []) as unknown[][],
          fields: (fields ?? []) as MysqlField[],
        })) as (err: unknown, rows: unknown) => void,
    );
  });
}

/** What the server said at open. */
export interface ServerState {
  /** The log's end when the reader opened. */
  readonly end: BinlogPosition;
  /** 1 when events carry CRC32 trailers (before the FORMAT_DESCRIPTION event says so), else 0. */
  readonly checksum: number;
  /** Validates a checkpoint against the files still on the server. */
  checkStart(start: CdcPosition): BinlogPosition;
}

const STATUS_STATEMENTS: Readonly<Record<MysqlFlavour, readonly string[]>> = {
  mysql: ["SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"],
  mariadb: ["SHOW BINLOG STATUS", "SHOW MASTER STATUS"],
};

/**
 * Refuses a proxy, a server without a ROW binary log or a user without the grants; warns about a
 * non-FULL row image; returns the log's end.
 */
export async function refuseProxyOrSettings(
  conn: MysqlConnection,
  flavour: MysqlFlavour,
  connection: ConnectionInfo,
  options: CdcOpenOptions,
): Promise<ServerState> {
  const errors = cdcErrors(connection);
  const run = (sql: string) =>
    rowsOf(conn, sql).catch((error) => {
      const errno = (error as { errno?: number }).errno;
      if (errno === 1227) throw missingGrant(connection.user, String(error.message), error);
      throw classifyMysqlError(error, errors);
    });
  const front = (await run("SELECT CONNECTION_ID(), @@version_comment")).rows[0] ?? [];
  const kind = classifyMysql({
    handshakeId: conn.threadId ?? undefined,
    serverVersion: conn._handshakePacket?.serverVersion,
    versionComment: front[1] == null ? undefined : String(front[1]),
    connectionIds: [Number(front[0])],
  });
  if (kind !== "direct") {
    throw new ConfigError(
      `${connection.host}:${connection.port} is not the database server but a proxy (${kind}); ` +
        "a binlog stream cannot go through it",
      {
        code: "cdc.proxy_refused",
        hint: "point the source at the primary MySQL/MariaDB server directly (its own host and " +
          "port), not at ProxySQL, MaxScale or another proxy",
      },
    );
  }
  const settings = (await run(
    "SELECT @@global.log_bin, @@global.binlog_format, @@global.binlog_row_image, " +
      "@@global.binlog_checksum, @@global.server_id",
  )).rows[0] ?? [];
  const id = options.serverId;
  if (!Number.isInteger(id) || id < 1 || id > 0xffffffff || id === Number(settings[4])) {
    throw new ConfigError(
      `cdc.server_id ${id} cannot identify this reader as a replica` +
        (id === Number(settings[4]) ? ": it is the server's own server_id" : ""),
      {
        code: "cdc.server_id",
        hint: "set cdc.server_id to a whole number from 1 to 4294967295 that no other " +
          "replica of this server and not the server itself uses",
      },
    );
  }
  if (String(settings[0]) !== "1") {
    throw new ConfigError("the server's binary log is off, so it has no changes to stream", {
      code: "cdc.binlog_off",
      hint: "start the server with --log-bin --binlog-format=ROW --server-id=1 (or log_bin, " +
        "binlog_format=ROW and server_id in my.cnf), then restart it",
    });
  }
  const format = String(settings[1]).toUpperCase();
  if (format !== "ROW") {
    throw new ConfigError(
      `the server's binlog_format is ${format}; change data capture needs ROW`,
      {
        code: "cdc.binlog_format",
        hint: "run SET GLOBAL binlog_format = 'ROW' (and set binlog_format=ROW in my.cnf so a " +
          "restart keeps it); sessions opened before keep their format until they reconnect",
      },
    );
  }
  const image = String(settings[2]).toUpperCase();
  if (image !== "FULL") {
    options.onWarning?.({
      code: "cdc.row_image_minimal",
      message: `the server's binlog_row_image is ${image}: updates and deletes carry only some ` +
        "columns, the others arrive as NULL; run SET GLOBAL binlog_row_image = 'FULL'",
    });
  }
  let end: BinlogPosition | undefined;
  for (const sql of STATUS_STATEMENTS[flavour]) {
    try {
      const row = (await rowsOf(conn, sql)).rows[0];
      if (row !== undefined) end = { file: String(row[0]), pos: Number(row[1]) };
      break;
    } catch (error) {
      const errno = (error as { errno?: number }).errno;
      if (errno === 1064) continue; // the statement is not known to this version: the next one
      if (errno === 1227) {
        throw missingGrant(connection.user, String((error as Error).message), error);
      }
      throw classifyMysqlError(error, errors);
    }
  }
  if (end === undefined) {
    throw missingGrant(connection.user, "SHOW MASTER STATUS returned no row");
  }
  const files = new Set((await run("SHOW BINARY LOGS")).rows.map((r) => String(r[0])));
  return {
    end,
    checksum: String(settings[3]).toUpperCase() === "CRC32" ? 1 : 0,
    checkStart(start: CdcPosition): BinlogPosition {
      const file = start["file"];
      const pos = start["pos"];
      if (
        typeof file !== "string" || typeof pos !== "number" || !Number.isInteger(pos) || pos < 4
      ) {
        throw new ConfigError(
          `the CDC checkpoint ${JSON.stringify(start)} is not a MySQL binlog position`,
          {
            code: "cdc.bad_checkpoint",
            hint: "the checkpoint was written by another source; reset the CDC checkpoint",
          },
        );
      }
      if (!files.has(file)) {
        throw new PermanentError(
          `the binlog file ${file} of the CDC checkpoint is no longer on the server`,
          {
            code: "cdc.checkpoint_too_old",
            hint: "it was purged (binlog_expire_logs_seconds / expire_logs_days): reset the CDC " +
              "checkpoint and re-export the table in full, then capture again; keep binlogs " +
              "longer than the time between runs",
          },
        );
      }
      return { file, pos };
    },
  };
}

/** A captured table as probed. */
export interface ProbedTable {
  readonly ref: CdcTableRef;
  readonly name: string;
  readonly database: string;
  readonly table: string;
  readonly plans: ColumnPlans;
  readonly extras: readonly ColumnExtra[];
}

const NAME = /^[A-Za-z0-9_]+$/;
const UTF8_CHARSETS = new Set(["utf8mb4", "utf8mb3", "utf8", "ascii", "binary"]);
const DECODER_LABELS: Readonly<Record<string, string>> = { latin1: "windows-1252" };

/** ENUM/SET members from a COLUMN_TYPE such as `enum('a','it''s')`. */
export function membersOf(columnType: string): string[] {
  const out: string[] = [];
  const re = /'((?:[^']|'')*)'/g;
  for (const m of columnType.matchAll(re)) out.push(m[1]!.replaceAll("''", "'"));
  return out;
}

/** Probes every captured table (see the module notes). */
export async function probeCdcTables(
  conn: MysqlConnection,
  connection: ConnectionInfo,
  options: CdcOpenOptions,
): Promise<ProbedTable[]> {
  const errors = cdcErrors(connection);
  const out: ProbedTable[] = [];
  if (options.tables.length === 0) {
    throw new ConfigError("no table to capture", {
      code: "cdc.no_tables",
      hint: "name at least one table under cdc.tables",
    });
  }
  for (const ref of options.tables) {
    // `db.table` in the table name stands for both parts when no schema is given.
    const dot = ref.schema === undefined ? ref.table.indexOf(".") : -1;
    const database = dot >= 0 ? ref.table.slice(0, dot) : ref.schema ?? connection.database;
    const tableName = dot >= 0 ? ref.table.slice(dot + 1) : ref.table;
    for (const part of [database, tableName]) {
      if (!NAME.test(part)) {
        throw new ConfigError(
          `CDC table '${database}.${tableName}' has a name outside [A-Za-z0-9_.]`,
          {
            code: "cdc.table_name",
            hint: "change data capture takes plain names only: letters, digits and underscore, " +
              "with a dot between database and table",
          },
        );
      }
    }
    const name = `${database}.${tableName}`;
    let fields: MysqlField[];
    let columns: unknown[][];
    try {
      fields = (await rowsOf(conn, `SELECT * FROM \`${database}\`.\`${tableName}\` WHERE 1=0`))
        .fields;
      columns = (await rowsOf(
        conn,
        "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, " +
          "CHARACTER_OCTET_LENGTH FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND " +
          "TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        [database, tableName],
      )).rows;
    } catch (error) {
      throw classifyMysqlError(error, errors);
    }
    const plans = planColumns(fields, options.columnOverrides);
    const old = columns.find((row) => /mariadb-5\.3/.test(String(row[2])));
    if (old !== undefined) {
      // MariaDB 5.3's temporal storage (tables created with mysql56_temporal_format=OFF) is
      // binlogged in a packing this reader does not decode: refuse rather than misread it.
      throw new PermanentError(
        `column '${old[0]}' of ${name} is a ${old[2]}: MariaDB 5.3's temporal format, which ` +
          "the change reader does not decode",
        {
          code: "cdc.unsupported_type",
          hint: `convert the table to the current format: SET GLOBAL mysql56_temporal_format = ` +
            `ON; ALTER TABLE ${name} FORCE`,
        },
      );
    }
    const extras = fields.map((_, i): ColumnExtra => {
      const row = columns[i] ?? [];
      const dataType = String(row[1] ?? "").toLowerCase();
      if (dataType === "enum" || dataType === "set") {
        const enc = new TextEncoder();
        return { members: membersOf(String(row[2])).map((m) => enc.encode(m)) };
      }
      if (dataType === "binary") return { binaryLength: Number(row[4]) };
      if (dataType === "uuid" || dataType === "inet4" || dataType === "inet6") {
        return { binaryText: dataType };
      }
      const charset = row[3] == null ? undefined : String(row[3]).toLowerCase();
      if (charset === undefined || UTF8_CHARSETS.has(charset)) return {};
      try {
        return { charset: new TextDecoder(DECODER_LABELS[charset] ?? charset) };
      } catch {
        throw new PermanentError(
          `column '${row[0]}' of ${name} uses the character set ${charset}, which the change ` +
            "reader cannot convert to UTF-8",
          {
            code: "cdc.unsupported_type",
            hint: `convert the column to utf8mb4 (ALTER TABLE ${name} MODIFY …), or leave ` +
              "the table out of cdc.tables",
          },
        );
      }
    });
    out.push({ ref, name, database, table: tableName, plans, extras });
  }
  return out;
}
