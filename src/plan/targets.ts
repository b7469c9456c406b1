/**
 * Type fidelity for the reader that loads the files (`rivet check --target`, `exports[].target`):
 * a table of rules over the Arrow type rivet writes, pure and tested. The source's own judgement
 * (`ColumnInfo.fidelity`) is the floor: a target can only make a column's fidelity worse.
 *
 * Rules (the reader's limits as of their current releases):
 * - decimals of precision above 38 (Decimal256): BigQuery loads them as BIGNUMERIC (compatible);
 *   DuckDB reads them as DOUBLE (lossy); Snowflake (NUMBER(38)), Spark (DecimalType(38)) and
 *   Polars cannot hold them (unsupported);
 * - UUID (16 bytes with the Arrow UUID extension): Spark and Polars cannot read the extension
 *   today (unsupported); BigQuery and Snowflake load the 16 raw bytes (compatible); Spark also
 *   refuses UUID list elements; `parquet_types: portable` writes them as text instead;
 * - JSON (text with the Arrow JSON extension): Polars cannot read the extension (unsupported);
 * - nanosecond timestamps: Spark refuses them (unsupported), BigQuery keeps microseconds (lossy);
 * - times of day: Spark has no TIME type (unsupported);
 * - unsigned 64-bit integers: BigQuery's INT64 and Spark's LongType overflow past 2^63 (lossy);
 * - lists: BigQuery and Snowflake load them as ARRAY/VARIANT (compatible).
 *
 * Layer: plan (pure). Imports only `core/` and `plan/`.
 *
 * @module
 */
import { type DataType, Type } from "../core/arrow.ts";
import type { Fidelity, LogicalType } from "../core/source.ts";

/** A reader rivet judges fidelity for. */
export type Target = "duckdb" | "bigquery" | "snowflake" | "spark" | "polars";

const ALIASES: Readonly<Record<string, Target>> = {
  duckdb: "duckdb",
  duck: "duckdb",
  bigquery: "bigquery",
  bq: "bigquery",
  snowflake: "snowflake",
  sf: "snowflake",
  spark: "spark",
  polars: "polars",
};

/** How each reader is named in messages. */
const READER: Readonly<Record<Target, string>> = {
  duckdb: "DuckDB",
  bigquery: "BigQuery",
  snowflake: "Snowflake",
  spark: "Spark",
  polars: "Polars",
};

/** Every accepted `--target` spelling, aliases included. */
export const TARGET_NAMES: readonly string[] = Object.keys(ALIASES);

/**
 * The target a name (or alias) stands for.
 *
 * @param name `duckdb`, `duck`, `bq`, … (case-insensitive).
 * @returns The target, or undefined for an unknown name.
 */
export function parseTarget(name: string): Target | undefined {
  return ALIASES[name.trim().toLowerCase()];
}

/** Fidelity labels from best to worst. */
const ORDER: readonly Fidelity[] = [
  "exact",
  "compatible",
  "logical_string",
  "lossy",
  "unsupported",
];

/**
 * The worse of two fidelities.
 *
 * @param a A fidelity.
 * @param b Another.
 * @returns The worse one.
 */
export function worseFidelity(a: Fidelity, b: Fidelity): Fidelity {
  return ORDER.indexOf(a) >= ORDER.indexOf(b) ? a : b;
}

/** A column as the report sees it. */
export interface TargetColumn {
  readonly arrowType: DataType | undefined;
  readonly fidelity: Fidelity;
  readonly logicalType?: LogicalType;
}

/** How a target reads one column. */
export interface TargetJudgement {
  /** The column's fidelity for this reader (never better than the source's). */
  readonly fidelity: Fidelity;
  /** The reader's type, e.g. `BIGNUMERIC`, `TIMESTAMP`. */
  readonly targetType: string;
  /** Why the fidelity is worse than the source's, with the fix. */
  readonly note?: string;
}

const TEXT_OVERRIDE = "set a columns: override to text for this column";
const PORTABLE = "set parquet_types: portable (uuid and json written as text)";

/** The reader's type for an Arrow type, and the reader's own fidelity. */
function rule(
  target: Target,
  type: DataType,
  logical: LogicalType | undefined,
): { type: string; fidelity: Fidelity; note?: string } {
  // deno-lint-ignore no-explicit-any
  const t = type as any;
  switch (t.typeId as Type) {
    case Type.Decimal: {
      const p = t.precision as number;
      const s = t.scale as number;
      if (p <= 38) {
        if (target === "bigquery" && s > 9) {
          return { type: `BIGNUMERIC(${p},${s})`, fidelity: "compatible" };
        }
        return {
          type: target === "bigquery" ? `NUMERIC(${p},${s})` : `DECIMAL(${p},${s})`,
          fidelity: "exact",
        };
      }
      const note = `precision ${p} is above the reader's 38 digits: ${TEXT_OVERRIDE}`;
      switch (target) {
        case "bigquery":
          return { type: `BIGNUMERIC(${p},${s})`, fidelity: "compatible" };
        case "duckdb":
          return { type: "DOUBLE", fidelity: "lossy", note };
        default:
          return { type: "(none)", fidelity: "unsupported", note };
      }
    }
    case Type.FixedSizeBinary:
      if (logical === "uuid") {
        if (target === "spark" || target === "polars") {
          return {
            type: "(none)",
            fidelity: "unsupported",
            note: `${READER[target]} cannot read the Arrow UUID extension type yet: ${PORTABLE}`,
          };
        }
        return {
          type: target === "duckdb" ? "UUID" : target === "bigquery" ? "BYTES" : "BINARY",
          fidelity: target === "duckdb" ? "exact" : "compatible",
        };
      }
      return { type: target === "bigquery" ? "BYTES" : "BINARY", fidelity: "exact" };
    case Type.Timestamp: {
      const ns = t.unit === 3;
      const zoned = t.timezone !== null && t.timezone !== undefined;
      const name = target === "bigquery"
        ? (zoned ? "TIMESTAMP" : "DATETIME")
        : target === "snowflake"
        ? (zoned ? "TIMESTAMP_TZ" : "TIMESTAMP_NTZ")
        : (zoned ? "TIMESTAMP WITH TIME ZONE" : "TIMESTAMP");
      if (ns && target === "spark") {
        return {
          type: "(none)",
          fidelity: "unsupported",
          note: "Spark cannot read nanosecond timestamps: drop the timestamp_ns override",
        };
      }
      if (ns && target === "bigquery") {
        return { type: name, fidelity: "lossy", note: "BigQuery keeps microseconds only" };
      }
      return { type: name, fidelity: "exact" };
    }
    case Type.Time:
      if (target === "spark") {
        return {
          type: "(none)",
          fidelity: "unsupported",
          note: `Spark has no TIME type: ${TEXT_OVERRIDE}`,
        };
      }
      return { type: "TIME", fidelity: "exact" };
    case Type.Int:
      if (t.bitWidth === 64 && !t.isSigned && (target === "bigquery" || target === "spark")) {
        return {
          type: target === "bigquery" ? "INT64" : "BIGINT",
          fidelity: "lossy",
          note: "values above 2^63-1 do not fit a signed 64-bit integer: " +
            "set a columns: override to decimal(20,0)",
        };
      }
      return { type: target === "bigquery" ? "INT64" : `INT${t.bitWidth}`, fidelity: "exact" };
    case Type.List:
      if (logical === "uuid" && target === "spark") {
        return {
          type: "(none)",
          fidelity: "unsupported",
          note: `Spark cannot read the Parquet UUID type of the list elements: ${PORTABLE}`,
        };
      }
      return {
        type: target === "snowflake" ? "ARRAY" : target === "bigquery" ? "ARRAY" : "LIST",
        fidelity: target === "bigquery" || target === "snowflake" ? "compatible" : "exact",
      };
    case Type.Utf8:
      if (logical === "json" && target === "polars") {
        return {
          type: "(none)",
          fidelity: "unsupported",
          note: `Polars cannot read the Arrow JSON extension type yet: ${PORTABLE}`,
        };
      }
      return { type: target === "bigquery" ? "STRING" : "VARCHAR", fidelity: "exact" };
    case Type.Binary:
      return { type: target === "bigquery" ? "BYTES" : "BINARY", fidelity: "exact" };
    case Type.Bool:
      return { type: "BOOLEAN", fidelity: "exact" };
    case Type.Float:
      return {
        type: target === "bigquery" ? "FLOAT64" : t.precision === 1 ? "FLOAT" : "DOUBLE",
        fidelity: "exact",
      };
    case Type.Date:
      return { type: "DATE", fidelity: "exact" };
    default:
      return { type: String(type), fidelity: "exact" };
  }
}

/**
 * Judges one column for a reader.
 *
 * @param target The reader.
 * @param column The column's Arrow type, source fidelity and logical type.
 * @returns The fidelity for that reader, its type there, and a note when it got worse.
 *
 * @example
 * ```ts
 * import { FixedSizeBinary } from "../core/arrow.ts";
 * import { judgeForTarget } from "./targets.ts";
 * const j = judgeForTarget("spark", {
 *   arrowType: new FixedSizeBinary(16), fidelity: "exact", logicalType: "uuid",
 * });
 * if (j.fidelity !== "unsupported") throw new Error(j.fidelity);
 * ```
 */
export function judgeForTarget(target: Target, column: TargetColumn): TargetJudgement {
  if (column.arrowType === undefined) {
    return { fidelity: "unsupported", targetType: "(none)" };
  }
  const r = rule(target, column.arrowType, column.logicalType);
  const fidelity = worseFidelity(column.fidelity, r.fidelity);
  return {
    fidelity,
    targetType: r.type,
    ...(r.note !== undefined && fidelity !== column.fidelity ? { note: r.note } : {}),
  };
}
