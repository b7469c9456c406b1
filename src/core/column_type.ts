/**
 * `columns:` override strings (`int64`, `decimal(12,2)`, `uuid`, `json`, … and their aliases,
 * case-insensitive) parsed into a typed override.
 *
 * Layer: core (a value type and its parser). Pure, no I/O.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";

/** The Rivet type a `columns:` override asks for. */
export type ColumnTypeOverride =
  | { readonly kind: "bool" }
  | { readonly kind: "int16" }
  | { readonly kind: "int32" }
  | { readonly kind: "int64" }
  | { readonly kind: "float32" }
  | { readonly kind: "float64" }
  | { readonly kind: "decimal"; readonly precision: number; readonly scale: number }
  | { readonly kind: "utf8" }
  | { readonly kind: "binary" }
  | { readonly kind: "date" }
  | { readonly kind: "json" }
  | { readonly kind: "uuid" }
  | { readonly kind: "timestamp" }
  | { readonly kind: "timestamp_ns" }
  | { readonly kind: "timestamp_tz" }
  | { readonly kind: "timestamp_tz_ns" };

type SimpleKind = Exclude<ColumnTypeOverride["kind"], "decimal">;

// Aliases as data: one row per accepted spelling (lower case, single spaces).
const aliases: Readonly<Record<string, SimpleKind>> = {
  bool: "bool",
  boolean: "bool",
  int2: "int16",
  smallint: "int16",
  int16: "int16",
  int4: "int32",
  int: "int32",
  integer: "int32",
  int32: "int32",
  int8: "int64",
  bigint: "int64",
  int64: "int64",
  float4: "float32",
  real: "float32",
  float32: "float32",
  float8: "float64",
  double: "float64",
  "double precision": "float64",
  float64: "float64",
  text: "utf8",
  varchar: "utf8",
  string: "utf8",
  char: "utf8",
  bpchar: "utf8",
  name: "utf8",
  binary: "binary",
  bytea: "binary",
  blob: "binary",
  varbinary: "binary",
  date: "date",
  json: "json",
  jsonb: "json",
  uuid: "uuid",
  timestamp: "timestamp",
  timestamp_ns: "timestamp_ns",
  timestamp_tz: "timestamp_tz",
  timestamptz: "timestamp_tz",
  timestamp_utc: "timestamp_tz",
  timestamp_tz_ns: "timestamp_tz_ns",
  timestamptz_ns: "timestamp_tz_ns",
};

/** Largest decimal precision (Decimal256). */
export const MAX_DECIMAL_PRECISION = 76;

const decimalPattern = /^(?:decimal|numeric)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$/;

/** The override strings `columns:` accepts, as error messages list them. */
export const COLUMN_TYPE_FORMS =
  "bool, int16, int32, int64, float32, float64, decimal(p,s) or numeric(p,s) with p 1..76 and 0 <= s <= p, " +
  "text, binary, date, json, uuid, timestamp, timestamp_ns, timestamp_tz, timestamp_tz_ns " +
  "(and the SQL aliases smallint, integer, bigint, real, double precision, varchar, bytea, jsonb, timestamptz)";

/**
 * Parses one `columns:` override string, case-insensitively.
 *
 * @param text The override as written, e.g. `numeric(12,2)` or `TIMESTAMPTZ`.
 * @returns The override.
 * @throws {ConfigError} `config.bad_column_type` naming the string and listing the accepted forms.
 *
 * @example
 * ```ts
 * import { parseColumnType } from "./column_type.ts";
 * const t = parseColumnType("Numeric(12, 2)");
 * if (t.kind !== "decimal" || t.precision !== 12 || t.scale !== 2) throw new Error();
 * ```
 */
export function parseColumnType(text: string): ColumnTypeOverride {
  const normalized = text.trim().toLowerCase().replace(/\s+/g, " ");
  const simple = Object.hasOwn(aliases, normalized) ? aliases[normalized] : undefined;
  if (simple !== undefined) return { kind: simple };
  const match = decimalPattern.exec(normalized);
  if (match) {
    const precision = Number(match[1]);
    const scale = Number(match[2]);
    if (precision < 1 || precision > MAX_DECIMAL_PRECISION) {
      throw bad(text, `precision ${precision} is outside 1..${MAX_DECIMAL_PRECISION}`);
    }
    if (scale > precision) throw bad(text, `scale ${scale} is larger than precision ${precision}`);
    return { kind: "decimal", precision, scale };
  }
  throw bad(text, "it is not a known type");
}

function bad(text: string, why: string): ConfigError {
  return new ConfigError(
    `unsupported column type '${text}': ${why}; accepted: ${COLUMN_TYPE_FORMS}`,
    {
      code: "config.bad_column_type",
    },
  );
}

/**
 * Like {@linkcode parseColumnType}, but returns undefined for a string it does not know, so a
 * caller can report every bad column together.
 *
 * @param text The override string.
 * @returns The parsed override, or undefined.
 *
 * @example
 * ```ts
 * import { tryParseColumnType } from "./column_type.ts";
 * if (tryParseColumnType("decimal(12,2)")?.kind !== "decimal") throw new Error();
 * if (tryParseColumnType("nonsense") !== undefined) throw new Error();
 * ```
 */
export function tryParseColumnType(text: string): ColumnTypeOverride | undefined {
  try {
    return parseColumnType(text);
  } catch {
    return undefined;
  }
}
