/**
 * Per-engine SQL facts as typed data: how identifiers are quoted, how a cursor value reaches the
 * server, how a row limit is spelled, how date and timestamp literals are written. The functions
 * below only interpret these records, so adding an engine is adding a record, and every planner in
 * `plan/` shares one source of truth.
 *
 * Layer: plan (pure). Imports only `core/`.
 *
 * @module
 */
import type { SourceKind } from "../core/spec.ts";

/** How a cursor or key value is put into a predicate. */
export type LiteralStyle =
  /** PostgreSQL `E'…'`, escaping `\` and `'` with a backslash (safe whatever `standard_conforming_strings` says). */
  | "pg_escape_string"
  /** A `?` placeholder; the value travels out of band as a bind parameter (MySQL). */
  | "bind_question_mark"
  /** SQL Server `N'…'`, doubling `'` (backslash is an ordinary character in T-SQL). */
  | "nstring";

/** How "the first n rows (after skipping m)" is spelled. */
export type LimitStyle = "limit_offset" | "offset_fetch";

/** How a calendar date (and a midnight timestamp) is written as a literal. */
export type DateLiteralStyle =
  /** `'YYYY-MM-DD'` and `'YYYY-MM-DD HH:MM:SS'`. */
  | "iso"
  /**
   * `'YYYYMMDD'` and `'YYYY-MM-DDTHH:MM:SS'`: the only forms SQL Server reads the same way under
   * every `SET LANGUAGE` / `DATEFORMAT` for `datetime` as well as `date` and `datetime2`.
   */
  | "tsql_unambiguous";

/** The SQL facts of one engine. */
export interface Dialect {
  readonly kind: SourceKind;
  /** Opening and closing identifier quote; the closing one is doubled inside a name. */
  readonly identifierQuote: { readonly open: string; readonly close: string };
  readonly literal: LiteralStyle;
  readonly limit: LimitStyle;
  readonly dateLiteral: DateLiteralStyle;
  /** The row-counting aggregate: SQL Server's `COUNT` is an `int` and overflows past 2^31 rows. */
  readonly count: "COUNT" | "COUNT_BIG";
}

/** The three engines: PostgreSQL, MySQL/MariaDB and SQL Server. */
export const DIALECTS: Readonly<Record<SourceKind, Dialect>> = {
  postgres: {
    kind: "postgres",
    identifierQuote: { open: '"', close: '"' },
    literal: "pg_escape_string",
    limit: "limit_offset",
    dateLiteral: "iso",
    count: "COUNT",
  },
  mysql: {
    kind: "mysql",
    identifierQuote: { open: "`", close: "`" },
    literal: "bind_question_mark",
    limit: "limit_offset",
    dateLiteral: "iso",
    count: "COUNT",
  },
  mssql: {
    kind: "mssql",
    identifierQuote: { open: "[", close: "]" },
    literal: "nstring",
    limit: "offset_fetch",
    dateLiteral: "tsql_unambiguous",
    count: "COUNT_BIG",
  },
};

/**
 * The dialect of an engine.
 *
 * @param kind `source.type`.
 * @returns Its SQL facts.
 */
export function dialectOf(kind: SourceKind): Dialect {
  return DIALECTS[kind];
}

/**
 * Quotes an identifier (column name from the config, never trusted): the closing quote character
 * is doubled, so no name can end the identifier early and inject SQL through the config.
 *
 * @param dialect The engine.
 * @param name The raw identifier.
 * @returns The quoted identifier.
 *
 * @example
 * ```ts
 * import { DIALECTS, quoteIdent } from "./dialect.ts";
 * if (quoteIdent(DIALECTS.mssql, "a]b") !== "[a]]b]") throw new Error();
 * ```
 */
export function quoteIdent(dialect: Dialect, name: string): string {
  const { open, close } = dialect.identifierQuote;
  return open + name.replaceAll(close, close + close) + close;
}

/** A value placed in SQL: the text to splice in, and the bind parameters it needs (in order). */
export interface SqlValueRef {
  readonly sql: string;
  readonly params: readonly string[];
}

/**
 * Puts a cursor or keyset value (text that came from the data, so hostile) into SQL. The
 * server casts the text to the column's type, so one form serves ints, timestamps and UUIDs.
 *
 * @param dialect The engine.
 * @param value The stored cursor text.
 * @returns The SQL fragment and its bind parameters.
 *
 * @example
 * ```ts
 * import { cursorValueSql, DIALECTS } from "./dialect.ts";
 * if (cursorValueSql(DIALECTS.postgres, "O'B\\x").sql !== "E'O\\'B\\\\x'") throw new Error();
 * if (cursorValueSql(DIALECTS.mysql, "42").params[0] !== "42") throw new Error();
 * const ts = cursorValueSql(DIALECTS.mssql, "2024-01-03T00:00:00.123456").sql;
 * if (ts !== "CAST(N'2024-01-03T00:00:00.123456' AS datetime2(7))") throw new Error();
 * ```
 */
export function cursorValueSql(dialect: Dialect, value: string): SqlValueRef {
  switch (dialect.literal) {
    case "pg_escape_string":
      return { sql: `E'${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`, params: [] };
    case "bind_question_mark":
      return { sql: "?", params: [value] };
    case "nstring": {
      const text = `N'${value.replaceAll("'", "''")}'`;
      // A timestamp cursor (`YYYY-MM-DDTHH:MM:SS.ffffff`, from datetime, datetime2,
      // smalldatetime or datetimeoffset) as datetime2: a bare string with more than three
      // fraction digits does not convert to `datetime` (error 241), while every date-time type
      // compares exactly with datetime2. Nine digits (a timestamp_ns cursor) keep the seven
      // SQL Server has.
      const ts = TIMESTAMP_CURSOR.exec(value);
      return ts
        ? { sql: `CAST(N'${ts[1]}' AS datetime2(7))`, params: [] }
        : { sql: text, params: [] };
    }
  }
}

/** The timestamp form of a cursor, its first seven fraction digits captured with the rest. */
const TIMESTAMP_CURSOR = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{1,7})\d*$/;

function checkCount(name: string, n: number, min: number): void {
  if (!Number.isSafeInteger(n) || n < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${n}`);
  }
}

/**
 * The row-limit clause that follows an `ORDER BY`.
 *
 * @param dialect The engine.
 * @param options `limit` rows after skipping `offset` (default 0).
 * @returns `LIMIT n [OFFSET m]`, or SQL Server's `OFFSET m ROWS FETCH NEXT n ROWS ONLY`.
 *
 * @example
 * ```ts
 * import { DIALECTS, limitClause } from "./dialect.ts";
 * if (limitClause(DIALECTS.mssql, { limit: 5 }) !== "OFFSET 0 ROWS FETCH NEXT 5 ROWS ONLY") {
 *   throw new Error();
 * }
 * ```
 */
export function limitClause(dialect: Dialect, options: { limit: number; offset?: number }): string {
  const offset = options.offset ?? 0;
  checkCount("limit", options.limit, 1);
  checkCount("offset", offset, 0);
  switch (dialect.limit) {
    case "limit_offset":
      return offset === 0 ? `LIMIT ${options.limit}` : `LIMIT ${options.limit} OFFSET ${offset}`;
    case "offset_fetch":
      return `OFFSET ${offset} ROWS FETCH NEXT ${options.limit} ROWS ONLY`;
  }
}

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

function checkIsoDate(date: string): void {
  // Our own calendar produces these; the check keeps anything else out of the SQL text.
  if (!ISO_DATE.test(date)) throw new RangeError(`not a YYYY-MM-DD date: ${date}`);
}

/**
 * A calendar-date literal.
 *
 * @param dialect The engine.
 * @param isoDate `YYYY-MM-DD` (years 0000..9999).
 * @returns `'YYYY-MM-DD'`, or `'YYYYMMDD'` on SQL Server.
 *
 * @example
 * ```ts
 * import { dateLiteral, DIALECTS } from "./dialect.ts";
 * if (dateLiteral(DIALECTS.mssql, "2024-02-29") !== "'20240229'") throw new Error();
 * ```
 */
export function dateLiteral(dialect: Dialect, isoDate: string): string {
  checkIsoDate(isoDate);
  return dialect.dateLiteral === "iso" ? `'${isoDate}'` : `'${isoDate.replaceAll("-", "")}'`;
}

/**
 * A literal for midnight (UTC wall clock) of a date, compared against timestamp columns.
 *
 * @param dialect The engine.
 * @param isoDate `YYYY-MM-DD`.
 * @returns `'YYYY-MM-DD 00:00:00'`, or `'YYYY-MM-DDT00:00:00'` on SQL Server.
 */
export function midnightLiteral(dialect: Dialect, isoDate: string): string {
  checkIsoDate(isoDate);
  return dialect.dateLiteral === "iso" ? `'${isoDate} 00:00:00'` : `'${isoDate}T00:00:00'`;
}
