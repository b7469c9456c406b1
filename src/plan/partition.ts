/**
 * `partition_by` fan-out: the calendar buckets between the min and max of a DATE/TIMESTAMP column,
 * empty buckets included, plus a NULL bucket when the column has NULLs. Each bucket becomes a child
 * export `<parent>__<label>` whose query is the base query filtered to `[lo, hi)`, and whose
 * `{partition}` destination token becomes the Hive segment `col=label`
 * (`col=__HIVE_DEFAULT_PARTITION__` for NULLs, the token Hive, Spark and DuckDB all read).
 *
 * Layer: plan (pure). Imports only `core/` and `plan/`.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";
import {
  civilFromDays,
  daysFromCivil,
  formatDay,
  formatMonth,
  formatYear,
  parseDay,
} from "./_calendar.ts";
import { dateLiteral, type Dialect, quoteIdent } from "./dialect.ts";

/** Hive's label for rows whose partition key is NULL. */
export const HIVE_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__";
/** Name suffix of the NULL child (`<parent>__null`). */
export const NULL_BUCKET_LABEL = "null";

/** `partition_granularity`. */
export type PartitionGranularity = "day" | "month" | "year";

/** One child export of a partitioned export. */
export interface PartitionChild {
  /** `<parent>__<label>`, e.g. `events__2024-02` or `events__null`. */
  readonly name: string;
  /** `2024-02-29` / `2024-02` / `2024`, or `null` for the NULL bucket. */
  readonly label: string;
  /** Inclusive lower bound `YYYY-MM-DD`; absent for the NULL bucket. */
  readonly lo?: string;
  /** Exclusive upper bound `YYYY-MM-DD`; absent for the NULL bucket and past 9999-12-31. */
  readonly hi?: string;
  /** The filter, e.g. `"d" >= '2024-02-01' AND "d" < '2024-03-01'` or `"d" IS NULL`. */
  readonly where: string;
  /** `SELECT * FROM (<q>) AS _rivet_part WHERE <where>`. */
  readonly sql: string;
  /** Value of the `{partition}` token: `<col>=<label>` or `<col>=__HIVE_DEFAULT_PARTITION__`. */
  readonly partition: string;
}

/** Options of {@linkcode planPartitions}. */
export interface PartitionOptions {
  readonly dialect: Dialect;
  /** Name of the partitioned (parent) export. */
  readonly parentName: string;
  /** `partition_by`. */
  readonly column: string;
  /**
   * Min and max of the column as the probes return them (`2024-01-05`, `2024-01-05 10:00:00`, …)
   * or as day numbers; null/undefined when the column holds no value.
   */
  readonly min: string | number | null | undefined;
  readonly max: string | number | null | undefined;
  readonly granularity: PartitionGranularity;
  /** Whether the NULL-count probe found any NULL. */
  readonly hasNulls: boolean;
}

const LAST_DAY = daysFromCivil({ year: 9999, month: 12, day: 31 });

/**
 * Plans the child exports of a `partition_by` export.
 *
 * @param base The parent's base query.
 * @param options Dialect, names, probed bounds, granularity and NULL flag.
 * @returns The children in calendar order, the NULL bucket last; empty when the column has no
 *   value and no NULL.
 *
 * @example
 * ```ts
 * import { DIALECTS } from "./dialect.ts";
 * import { planPartitions } from "./partition.ts";
 * const kids = planPartitions("SELECT * FROM e", {
 *   dialect: DIALECTS.postgres, parentName: "e", column: "d",
 *   min: "2024-01-31", max: "2024-03-01", granularity: "month", hasNulls: true,
 * });
 * if (kids.map((k) => k.name).join() !== "e__2024-01,e__2024-02,e__2024-03,e__null") {
 *   throw new Error();
 * }
 * ```
 */
export function planPartitions(base: string, options: PartitionOptions): PartitionChild[] {
  const { dialect, parentName, column } = options;
  const quoted = quoteIdent(dialect, column);
  const children: PartitionChild[] = [];
  const wrap = (where: string) => `SELECT * FROM (${base}) AS _rivet_part WHERE ${where}`;
  if (options.min != null && options.max != null) {
    const minDay = toDay(options, "min", options.min);
    const maxDay = toDay(options, "max", options.max);
    for (const b of buckets(minDay, maxDay, options.granularity)) {
      const lo = formatDay(b.lo);
      const hi = b.hi > LAST_DAY ? undefined : formatDay(b.hi);
      const where = `${quoted} >= ${dateLiteral(dialect, lo)}` +
        (hi === undefined ? "" : ` AND ${quoted} < ${dateLiteral(dialect, hi)}`);
      children.push({
        name: `${parentName}__${b.label}`,
        label: b.label,
        lo,
        ...(hi === undefined ? {} : { hi }),
        where,
        sql: wrap(where),
        partition: `${column}=${b.label}`,
      });
    }
  }
  if (options.hasNulls) {
    const where = `${quoted} IS NULL`;
    children.push({
      name: `${parentName}__${NULL_BUCKET_LABEL}`,
      label: NULL_BUCKET_LABEL,
      where,
      sql: wrap(where),
      partition: `${column}=${HIVE_NULL_PARTITION}`,
    });
  }
  return children;
}

/**
 * The NULL probe of a partition column:
 * `SELECT count(*) FROM (<q>) AS _rivet_nc WHERE <c> IS NULL`. (Its min/max probes are
 * `minMaxSql` of `chunks.ts`.)
 *
 * @param base The parent's base query.
 * @param options Dialect and column.
 * @returns The probe.
 */
export function partitionNullCountSql(
  base: string,
  options: { dialect: Dialect; column: string },
): string {
  return `SELECT ${options.dialect.count}(*) FROM (${base}) AS _rivet_nc WHERE ${
    quoteIdent(options.dialect, options.column)
  } IS NULL`;
}

interface Bucket {
  readonly label: string;
  readonly lo: number;
  readonly hi: number;
}

function buckets(minDay: number, maxDay: number, granularity: PartitionGranularity): Bucket[] {
  const out: Bucket[] = [];
  if (maxDay < minDay) return out;
  if (granularity === "day") {
    for (let d = minDay; d <= maxDay; d++) out.push({ label: formatDay(d), lo: d, hi: d + 1 });
    return out;
  }
  const first = civilFromDays(minDay);
  const last = civilFromDays(maxDay);
  if (granularity === "month") {
    let { year, month } = first;
    while (year < last.year || (year === last.year && month <= last.month)) {
      const next = month === 12 ? { year: year + 1, month: 1 } : { year, month: month + 1 };
      out.push({
        label: formatMonth({ year, month, day: 1 }),
        lo: daysFromCivil({ year, month, day: 1 }),
        hi: daysFromCivil({ ...next, day: 1 }),
      });
      ({ year, month } = next);
    }
    return out;
  }
  for (let year = first.year; year <= last.year; year++) {
    out.push({
      label: formatYear(year),
      lo: daysFromCivil({ year, month: 1, day: 1 }),
      hi: daysFromCivil({ year: year + 1, month: 1, day: 1 }),
    });
  }
  return out;
}

function toDay(options: PartitionOptions, which: string, v: string | number): number {
  if (typeof v === "number" && Number.isSafeInteger(v)) return v;
  const day = typeof v === "string" ? parseDay(v) : undefined;
  if (day === undefined) {
    throw new ConfigError(
      `Export '${options.parentName}': partition ${which} ${
        JSON.stringify(v)
      } of column '${options.column}' is not a date; partition_by needs a DATE or TIMESTAMP column`,
      { code: "plan.partition_not_a_date" },
    );
  }
  return day;
}
