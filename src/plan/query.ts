/**
 * The SELECT statements of the cursor-driven modes: incremental (single column and coalesce),
 * keyset pages and time windows, plus the `table:` fast-path recogniser shared with the chunk
 * planners. Column names are always quoted identifiers; cursor values always go through
 * {@linkcode cursorValueSql}.
 *
 * Layer: plan (pure). Imports only `core/` and `plan/`.
 *
 * @module
 */
import { civilFromDays, formatDay, MS_PER_DAY, SECONDS_PER_DAY } from "./_calendar.ts";
import {
  cursorValueSql,
  type Dialect,
  limitClause,
  midnightLiteral,
  quoteIdent,
} from "./dialect.ts";

/** A planned statement: SQL text, its bind parameters, and synthetic columns to drop. */
export interface PlannedSql {
  readonly sql: string;
  /** Bind parameters in placeholder order (MySQL cursor values); empty otherwise. */
  readonly params: readonly string[];
  /** Columns the statement adds that must be stripped before writing (`_rivet_*`). */
  readonly strippedColumns: readonly string[];
}

/** Synthetic cursor column of `incremental_cursor_mode: coalesce`. */
export const COALESCED_CURSOR_COLUMN = "_rivet_coalesced_cursor";

const TABLE_IDENT = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$/;
const TABLE_FORM =
  /^\s*select\s*\*\s*from\s+([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*$/i;

/**
 * Recognises the `table:` form: a base query that is exactly `SELECT * FROM <ident>` (or
 * `<schema>.<ident>`, ASCII identifiers, nothing after). Only then may aggregate and chunk SQL
 * go to the table directly; anything else (alias, WHERE, `;`, join) is wrapped.
 *
 * @param base The export's base query.
 * @returns The table as written, or undefined.
 *
 * @example
 * ```ts
 * import { tableFormOf } from "./query.ts";
 * if (tableFormOf("SELECT * FROM shop.orders") !== "shop.orders") throw new Error();
 * if (tableFormOf("SELECT * FROM orders o") !== undefined) throw new Error();
 * ```
 */
export function tableFormOf(base: string): string | undefined {
  return TABLE_FORM.exec(base)?.[1];
}

/**
 * The table a fast-path statement reads: the caller's `fastPathTable` when given (validated as
 * the `table:` key is), else what {@linkcode tableFormOf} recognises in the base query.
 */
export function fastPathTableOf(
  base: string,
  fastPathTable: string | undefined,
): string | undefined {
  if (fastPathTable === undefined) return tableFormOf(base);
  if (!TABLE_IDENT.test(fastPathTable)) {
    throw new RangeError(
      `fastPathTable must be name or schema.name of ASCII identifiers, got ${
        JSON.stringify(fastPathTable)
      }`,
    );
  }
  return fastPathTable;
}

/** Options of {@linkcode planIncrementalSql}. */
export interface IncrementalSqlOptions {
  readonly dialect: Dialect;
  /** `cursor_column`. */
  readonly cursorColumn: string;
  /** `cursor_fallback_column` (required with `coalesce`). */
  readonly fallbackColumn?: string;
  /** `incremental_cursor_mode`. */
  readonly mode: "single_column" | "coalesce";
  /** Stored cursor; absent on the first run. */
  readonly lastCursor?: string;
}

/**
 * The statement of an incremental run. First run:
 * `SELECT * FROM (<q>) AS _rivet ORDER BY <c>`; later runs add `WHERE <c> > <v>` (strict, so a
 * row tying the watermark after it was stored is skipped: a documented non-guarantee). Coalesce
 * selects `COALESCE(_rivet.<p>, _rivet.<f>)` as `_rivet_coalesced_cursor`, filters and orders by
 * it (then by both columns, for a stable order), and lists it in `strippedColumns`.
 *
 * @param base The export's base query.
 * @param options Dialect, columns, mode and stored cursor.
 * @returns SQL, bind parameters (MySQL) and the synthetic columns to drop.
 *
 * @example
 * ```ts
 * import { DIALECTS } from "./dialect.ts";
 * import { planIncrementalSql } from "./query.ts";
 * const p = planIncrementalSql("SELECT * FROM t", {
 *   dialect: DIALECTS.postgres, cursorColumn: "id", mode: "single_column", lastCursor: "41",
 * });
 * if (p.sql !== `SELECT * FROM (SELECT * FROM t) AS _rivet WHERE "id" > E'41' ORDER BY "id"`) {
 *   throw new Error(p.sql);
 * }
 * ```
 */
export function planIncrementalSql(base: string, options: IncrementalSqlOptions): PlannedSql {
  const { dialect, lastCursor } = options;
  const primary = quoteIdent(dialect, options.cursorColumn);
  const value = lastCursor === undefined ? undefined : cursorValueSql(dialect, lastCursor);
  if (options.mode === "single_column") {
    const where = value === undefined ? "" : ` WHERE ${primary} > ${value.sql}`;
    return {
      sql: `SELECT * FROM (${base}) AS _rivet${where} ORDER BY ${primary}`,
      params: value?.params ?? [],
      strippedColumns: [],
    };
  }
  if (options.fallbackColumn === undefined) {
    throw new RangeError("incremental_cursor_mode coalesce needs fallbackColumn");
  }
  const fallback = quoteIdent(dialect, options.fallbackColumn);
  const coalesced = `COALESCE(_rivet.${primary}, _rivet.${fallback})`;
  const synthetic = quoteIdent(dialect, COALESCED_CURSOR_COLUMN);
  const where = value === undefined ? "" : ` WHERE ${coalesced} > ${value.sql}`;
  return {
    sql: `SELECT _rivet.*, ${coalesced} AS ${synthetic} FROM (${base}) AS _rivet${where}` +
      ` ORDER BY ${coalesced}, _rivet.${primary}, _rivet.${fallback}`,
    params: value?.params ?? [],
    strippedColumns: [COALESCED_CURSOR_COLUMN],
  };
}

/** Options of {@linkcode planKeysetPageSql}. */
export interface KeysetPageOptions {
  readonly dialect: Dialect;
  /** `chunk_by_key` (NOT NULL, unique, index-backed: checked by the caller). */
  readonly keyColumn: string;
  /** Last key of the previous page; absent for the first page. */
  readonly lastKey?: string;
  /** Page size (`chunk_size`). */
  readonly limit: number;
  /**
   * The key column is an integer type: `lastKey` is inlined as a number literal (MySQL compares
   * a string parameter with a BIGINT as a double, which loses keys above 2^53).
   */
  readonly integerKey?: boolean;
}

/** An integer's decimal text: safe to inline as a number literal. */
const INTEGER_TEXT = /^-?\d{1,20}$/;

/**
 * One keyset (seek) page:
 * `SELECT * FROM (<q>) AS _rivet [WHERE <k> > <last>] ORDER BY <k> LIMIT n`, with SQL Server's
 * `OFFSET 0 ROWS FETCH NEXT n ROWS ONLY`. The last key is placed like an incremental cursor.
 *
 * @param base The export's base query.
 * @param options Dialect, key, last key and page size.
 * @returns SQL and bind parameters.
 */
export function planKeysetPageSql(base: string, options: KeysetPageOptions): PlannedSql {
  const { dialect } = options;
  const key = quoteIdent(dialect, options.keyColumn);
  // An integer key is inlined as a number literal (digits only: nothing to escape).
  const value = options.lastKey === undefined
    ? undefined
    : options.integerKey && INTEGER_TEXT.test(options.lastKey)
    ? { sql: options.lastKey, params: [] }
    : cursorValueSql(dialect, options.lastKey);
  const where = value === undefined ? "" : ` WHERE ${key} > ${value.sql}`;
  return {
    sql: `SELECT * FROM (${base}) AS _rivet${where} ORDER BY ${key} ${
      limitClause(dialect, { limit: options.limit })
    }`,
    params: value?.params ?? [],
    strippedColumns: [],
  };
}

/** Options of {@linkcode planTimeWindowSql}. */
export interface TimeWindowOptions {
  readonly dialect: Dialect;
  /** `time_column`. */
  readonly timeColumn: string;
  /** `time_column_type`. */
  readonly type: "timestamp" | "unix";
  /** `days_window` (≥ 0). */
  readonly daysWindow: number;
  /** The run's clock reading; only its UTC day matters. */
  readonly now: Date;
}

/** A time-window statement and the instant it starts at. */
export interface TimeWindowPlan extends PlannedSql {
  /** Start of the window, `YYYY-MM-DD` (UTC midnight). */
  readonly since: string;
  /** The same instant in Unix seconds. */
  readonly sinceEpochSeconds: number;
}

/**
 * The time-window statement: rows whose column is at or after UTC midnight of (`now` −
 * `days_window` days). `timestamp` compares with a midnight literal, `unix` with that instant's
 * epoch seconds. Stateless and overlapping by design.
 *
 * @param base The export's base query.
 * @param options Dialect, column, type, window and clock.
 * @returns SQL (no parameters) and the window start.
 *
 * @example
 * ```ts
 * import { DIALECTS } from "./dialect.ts";
 * import { planTimeWindowSql } from "./query.ts";
 * const p = planTimeWindowSql("SELECT * FROM e", {
 *   dialect: DIALECTS.mysql, timeColumn: "ts", type: "timestamp", daysWindow: 1,
 *   now: new Date("2024-03-01T05:00:00Z"),
 * });
 * if (p.since !== "2024-02-29") throw new Error(p.since);
 * ```
 */
export function planTimeWindowSql(base: string, options: TimeWindowOptions): TimeWindowPlan {
  const { dialect, daysWindow } = options;
  if (!Number.isSafeInteger(daysWindow) || daysWindow < 0) {
    throw new RangeError(`daysWindow must be an integer >= 0, got ${daysWindow}`);
  }
  const nowMs = options.now.getTime();
  if (!Number.isFinite(nowMs)) throw new RangeError("now is an invalid Date");
  const day = Math.floor(nowMs / MS_PER_DAY) - daysWindow;
  const year = civilFromDays(day).year;
  if (year < 0 || year > 9999) throw new RangeError(`window start year ${year} is out of range`);
  const since = formatDay(day);
  const sinceEpochSeconds = day * SECONDS_PER_DAY;
  const column = quoteIdent(dialect, options.timeColumn);
  const bound = options.type === "unix"
    ? String(sinceEpochSeconds)
    : midnightLiteral(dialect, since);
  return {
    sql: `SELECT * FROM (${base}) AS _rivet WHERE ${column} >= ${bound}`,
    params: [],
    strippedColumns: [],
    since,
    sinceEpochSeconds,
  };
}
