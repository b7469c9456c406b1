/**
 * SQL Server column → Arrow type mapping (the README lists it), with `columns:` overrides.
 * Decided from tedious' column metadata only (type name, length, precision, scale, UDT name);
 * the values arrive in the exact forms `_decode.ts` produces.
 *
 * Lossy by nature, and labelled so: a 100 ns digit of time(7), datetime2(7) and
 * datetimeoffset(7) is cut to microseconds (the batch builder reports the columns where that
 * happened; `columns: {c: timestamp_ns}` keeps it), and datetime's 1/300 s ticks are rounded to
 * the nearest microsecond, as SQL Server itself converts datetime to datetime2(6).
 *
 * Layer: sources (SQL Server).
 *
 * @module
 */
import * as arrow from "../../core/arrow.ts";
import type { ColumnInfo, Fidelity, LogicalType } from "../../core/source.ts";
import {
  COLUMN_TYPE_FORMS,
  type ColumnTypeOverride,
  tryParseColumnType,
} from "../../core/column_type.ts";
import type { ColumnMapping } from "../_arrow_columns.ts";

/** The parts of tedious' column metadata the mapping reads. */
export interface MssqlColumnMeta {
  readonly colName: string;
  readonly type: { readonly name: string };
  readonly precision?: number | undefined;
  readonly scale?: number | undefined;
  readonly dataLength?: number | undefined;
  readonly udtInfo?: { readonly typeName: string } | undefined;
}

/** What the batch builder writes for a value (the Arrow side). */
export const Write = {
  Bool: 1,
  Int16: 2,
  Int32: 3,
  /** A `number` (tinyint, smallint, int) or a `bigint`. */
  Int64: 4,
  Float32: 5,
  Float64: 6,
  /** Decimal128 words, rescaled when an override changes precision or scale. */
  Decimal: 7,
  Date: 8,
  TimeMicros: 9,
  TimestampMicros: 10,
  TimestampNanos: 11,
  /** A string (UTF-8 encoded) or bytes, into Utf8 or Binary. */
  Var: 12,
  /** 16 bytes of a uniqueidentifier. */
  Uuid: 13,
  /** A uuid from text (`columns: {c: uuid}` on a text column); not a uuid ⇒ NULL. */
  UuidText: 14,
  /** A uuid from 16 bytes (`columns: {c: uuid}` on a binary column); other lengths ⇒ NULL. */
  UuidBinary: 15,
} as const;

/** How one column is decoded. */
export interface DecodePlan {
  readonly name: string;
  readonly write: number;
  readonly arrowType: arrow.DataType;
  /** Decimal target. */
  readonly precision: number;
  readonly scale: number;
  /** Decimal source scale (the wire's), for rescaling. */
  readonly sourceScale: number;
  /** Decimal: the target is narrower or scaled differently than the wire, so values are checked. */
  readonly rescale: boolean;
  /** datetime: round 100 ns ticks up to the next µs instead of truncating (and not reporting). */
  readonly roundTicks: boolean;
  /** Text/binary value: subject to the `max_value_mb` guard. */
  readonly variable: boolean;
}

/** A result column: what rivet knows about it, and how to decode it (undefined: unsupported). */
export type MssqlColumn = ColumnInfo & { readonly plan: DecodePlan | undefined };

type Mapped = ColumnMapping<DecodePlan>;

/** What a column is, as far as overrides care. */
type Family =
  | "bool"
  | "int"
  | "float"
  | "decimal"
  | "date"
  | "time"
  | "timestamp"
  | "text"
  | "binary"
  | "uuid"
  | "other";

interface Native {
  /** Type as SQL Server spells it: `decimal(12,2)`, `datetime2(7)`, `nvarchar(max)`. */
  readonly name: string;
  readonly family: Family;
  /** Integer: bits a value needs, sign included (tinyint: 9). Float: 32 or 64. */
  readonly bits: number;
  /** Decimal precision and scale (money: 19,4), or the fractional digits of a time type. */
  readonly precision: number;
  readonly scale: number;
  /** datetime: 1/300 s ticks. */
  readonly roundTicks: boolean;
  /** Default mapping. */
  readonly mapped: Mapped;
}

const PLAN_DEFAULTS = {
  precision: 0,
  scale: 0,
  rescale: false,
  roundTicks: false,
  variable: false,
};

function plan(
  name: string,
  write: number,
  arrowType: arrow.DataType,
  extra: Partial<Omit<DecodePlan, "name" | "write" | "arrowType">> = {},
): DecodePlan {
  const sourceScale = extra.sourceScale ?? extra.scale ?? 0;
  return { ...PLAN_DEFAULTS, sourceScale, ...extra, name, write, arrowType };
}

const ok = (p: DecodePlan, fidelity: Fidelity = "exact", logical?: LogicalType): Mapped => ({
  plan: p,
  fidelity,
  ...(logical ? { logical } : {}),
});

const MAX = 0xffff;

/** How to cast a type the export cannot read, as the fix in an error message. */
function castHint(name: string, native: string): string {
  if (native === "geography" || native === "geometry") {
    return `${name}.STAsText() or ${name}.STAsBinary()`;
  }
  if (native === "hierarchyid") return `${name}.ToString()`;
  return `CAST(${name} AS nvarchar(max))`;
}

function unsupported(name: string, native: string): Mapped {
  return {
    fidelity: "unsupported",
    reason: `type ${native} is not supported; cast it in the query, e.g. ` +
      `\`${castHint(name, native)}\``,
  };
}

/** The narrowest of Int16/Int32/Int64 holding `bits`. */
function intPlan(name: string, bits: number): DecodePlan {
  if (bits <= 16) return plan(name, Write.Int16, new arrow.Int16());
  if (bits <= 32) return plan(name, Write.Int32, new arrow.Int32());
  return plan(name, Write.Int64, new arrow.Int64());
}

function intNative(name: string, bits: number): Native {
  const native = bits === 9 ? "tinyint" : bits === 16 ? "smallint" : bits === 32 ? "int" : "bigint";
  return base(native, "int", ok(intPlan(name, bits)), { bits });
}

function floatNative(name: string, bits: number): Native {
  return bits === 32
    ? base("real", "float", ok(plan(name, Write.Float32, new arrow.Float32())), { bits })
    : base("float", "float", ok(plan(name, Write.Float64, new arrow.Float64())), { bits });
}

function decimalNative(name: string, native: string, p: number, s: number): Native {
  return base(native, "decimal", mapDecimal(name, native, p, s, { precision: p, scale: s }), {
    precision: p,
    scale: s,
  });
}

/** Decimal128(p, s) of values declared on the wire as `source`. */
function mapDecimal(
  name: string,
  native: string,
  p: number,
  s: number,
  source: { readonly precision: number; readonly scale: number },
): Mapped {
  if (p > 38) {
    return {
      fidelity: "unsupported",
      reason: `decimal(${p},${s}) exceeds the 38 digits of Decimal128; add ` +
        `\`columns: {${name}: "decimal(38,${Math.min(s, 38)})"}\` or cast it in the query`,
    };
  }
  if (p < 1 || s > p) {
    return {
      fidelity: "unsupported",
      reason: `${native} has no usable precision and scale; cast it in the query ` +
        `(e.g. CAST(${name} AS decimal(38,4)))`,
    };
  }
  return ok(plan(name, Write.Decimal, new arrow.Decimal(s, p, 128), {
    precision: p,
    scale: s,
    sourceScale: source.scale,
    // A value of the declared type always fits it; another scale or fewer digits need a check.
    rescale: s !== source.scale || p < source.precision,
  }));
}

/**
 * Timestamp µs of a date/time type with `digits` fractional digits; seven digits are cut to µs
 * (lossy), datetime's 1/300 s are rounded to µs (lossy).
 */
function timestampNative(
  name: string,
  native: string,
  digits: number,
  options: { tz?: string; roundTicks?: boolean } = {},
): Native {
  const roundTicks = options.roundTicks ?? false;
  const p = plan(name, Write.TimestampMicros, new arrow.TimestampMicrosecond(options.tz ?? null), {
    roundTicks,
  });
  return base(native, "timestamp", ok(p, digits > 6 || roundTicks ? "lossy" : "exact"), {
    scale: digits,
    roundTicks,
  });
}

function base(
  name: string,
  family: Family,
  mapped: Mapped,
  extra: Partial<Pick<Native, "bits" | "precision" | "scale" | "roundTicks">> = {},
): Native {
  return { bits: 0, precision: 0, scale: 0, roundTicks: false, ...extra, name, family, mapped };
}

function sized(native: string, length: number | undefined, unit = 1): string {
  if (length === undefined) return native;
  return `${native}(${length === MAX ? "max" : Math.floor(length / unit)})`;
}

/**
 * Resolves tedious' metadata to SQL Server's type name and the default mapping.
 *
 * @param meta Column metadata.
 * @returns The resolution (its `mapped` is unsupported for sql_variant, CLR types and unknowns).
 */
function resolve(meta: MssqlColumnMeta): Native {
  const name = meta.colName;
  const length = meta.dataLength;
  const scale = meta.scale ?? 7;
  const text = (native: string) =>
    base(native, "text", ok(plan(name, Write.Var, new arrow.Utf8(), { variable: true })));
  const binary = (native: string) =>
    base(native, "binary", ok(plan(name, Write.Var, new arrow.Binary(), { variable: true })));
  switch (meta.type.name) {
    case "Bit":
    case "BitN":
      return base("bit", "bool", ok(plan(name, Write.Bool, new arrow.Bool())));
    case "TinyInt":
      return intNative(name, 9);
    case "SmallInt":
      return intNative(name, 16);
    case "Int":
      return intNative(name, 32);
    case "BigInt":
      return intNative(name, 64);
    case "IntN":
      return intNative(name, length === 1 ? 9 : (length ?? 8) * 8);
    case "Real":
      return floatNative(name, 32);
    case "Float":
      return floatNative(name, 64);
    case "FloatN":
      return floatNative(name, length === 4 ? 32 : 64);
    case "Money":
      return decimalNative(name, "money", 19, 4);
    case "SmallMoney":
      return decimalNative(name, "smallmoney", 10, 4);
    case "MoneyN":
      return length === 4
        ? decimalNative(name, "smallmoney", 10, 4)
        : decimalNative(name, "money", 19, 4);
    case "DecimalN":
    case "Decimal":
    case "NumericN":
    case "Numeric": {
      const p = meta.precision ?? 0;
      const s = meta.scale ?? 0;
      const word = meta.type.name.startsWith("Numeric") ? "numeric" : "decimal";
      return decimalNative(name, `${word}(${p},${s})`, p, s);
    }
    case "Date":
      return base("date", "date", ok(plan(name, Write.Date, new arrow.DateDay())));
    case "Time":
      return base(
        `time(${scale})`,
        "time",
        ok(
          plan(name, Write.TimeMicros, new arrow.TimeMicrosecond()),
          scale > 6 ? "lossy" : "exact",
        ),
        { scale },
      );
    case "DateTime2":
      return timestampNative(name, `datetime2(${scale})`, scale);
    case "DateTimeOffset":
      return timestampNative(name, `datetimeoffset(${scale})`, scale, { tz: "UTC" });
    case "DateTime":
      return timestampNative(name, "datetime", 3, { roundTicks: true });
    case "SmallDateTime":
      return timestampNative(name, "smalldatetime", 0);
    case "DateTimeN":
      return length === 4
        ? timestampNative(name, "smalldatetime", 0)
        : timestampNative(name, "datetime", 3, { roundTicks: true });
    case "Char":
      return text(sized("char", length));
    case "VarChar":
      return text(sized("varchar", length));
    case "NChar":
      return text(sized("nchar", length, 2));
    case "NVarChar":
      return text(length === MAX ? "nvarchar(max)" : sized("nvarchar", length, 2));
    case "Text":
      return text("text");
    case "NText":
      return text("ntext");
    case "Xml":
      return text("xml");
    case "Binary":
      return binary(sized("binary", length));
    case "VarBinary":
      return binary(sized("varbinary", length));
    case "Image":
      return binary("image");
    case "UniqueIdentifier":
      return base(
        "uniqueidentifier",
        "uuid",
        ok(plan(name, Write.Uuid, new arrow.FixedSizeBinary(16)), "exact", "uuid"),
      );
    case "Variant":
      return base("sql_variant", "other", unsupported(name, "sql_variant"));
    case "UDT": {
      const native = meta.udtInfo?.typeName ?? "udt";
      return base(native, "other", unsupported(name, native));
    }
    case "Null":
      return base("null", "other", unsupported(name, "null"));
    default:
      return base(meta.type.name, "other", unsupported(name, meta.type.name));
  }
}

function mapOverride(name: string, text: string, type: ColumnTypeOverride, n: Native): Mapped {
  const bad = (): Mapped => ({
    fidelity: "unsupported",
    reason: `override '${text}' cannot be applied to ${n.name}; cast the column in the query ` +
      `instead (e.g. CAST(${name} AS nvarchar(max))) and drop the override`,
  });
  const f = n.family;
  const bytes = f === "text" || f === "binary";
  switch (type.kind) {
    case "utf8":
    case "json":
      if (f !== "text") return bad();
      return type.kind === "json"
        ? ok(plan(name, Write.Var, new arrow.Utf8(), { variable: true }), "logical_string", "json")
        : ok(plan(name, Write.Var, new arrow.Utf8(), { variable: true }), "compatible");
    case "binary":
      return bytes
        ? ok(plan(name, Write.Var, new arrow.Binary(), { variable: true }), "compatible")
        : bad();
    case "uuid": {
      if (f === "uuid") return n.mapped;
      if (!bytes) return bad();
      const write = f === "text" ? Write.UuidText : Write.UuidBinary;
      return ok(plan(name, write, new arrow.FixedSizeBinary(16)), "compatible", "uuid");
    }
    case "decimal":
      return f === "decimal" ? mapDecimal(name, n.name, type.precision, type.scale, n) : bad();
    case "bool":
      return f === "bool" ? n.mapped : bad();
    case "int16":
    case "int32":
    case "int64": {
      // Widening only: the values must fit.
      const have = type.kind === "int16" ? 16 : type.kind === "int32" ? 32 : 64;
      return f === "int" && n.bits <= have ? ok(intPlan(name, have)) : bad();
    }
    case "float32":
      return f === "float" && n.bits === 32 ? n.mapped : bad();
    case "float64":
      return f === "float" ? ok(plan(name, Write.Float64, new arrow.Float64())) : bad();
    case "date":
      return f === "date" ? n.mapped : bad();
    case "timestamp":
    case "timestamp_tz":
    case "timestamp_ns":
    case "timestamp_tz_ns": {
      if (f !== "timestamp") return bad();
      const tz = type.kind === "timestamp_tz" || type.kind === "timestamp_tz_ns" ? "UTC" : null;
      const ns = type.kind === "timestamp_ns" || type.kind === "timestamp_tz_ns";
      return ns
        ? ok(plan(name, Write.TimestampNanos, new arrow.TimestampNanosecond(tz)), "compatible")
        : ok(
          plan(name, Write.TimestampMicros, new arrow.TimestampMicrosecond(tz), {
            roundTicks: n.roundTicks,
          }),
          n.mapped.fidelity === "lossy" ? "lossy" : "compatible",
        );
    }
  }
}

/**
 * Maps one result column, honouring its `columns:` override.
 *
 * @param meta tedious' metadata of the column.
 * @param override The `columns:` override string for it, if any.
 * @returns What rivet knows about the column and its decode plan (undefined when unsupported,
 *   with `unsupportedReason` naming the fix).
 *
 * @example
 * ```ts
 * import { mssqlColumn } from "./_types.ts";
 * const c = mssqlColumn({ colName: "price", type: { name: "DecimalN" }, precision: 12, scale: 2 });
 * if (c.nativeType !== "decimal(12,2)" || String(c.arrowType) !== "Decimal[12e+2]") {
 *   throw new Error(c.nativeType);
 * }
 * ```
 */
export function mssqlColumn(meta: MssqlColumnMeta, override?: string): MssqlColumn {
  const n = resolve(meta);
  let mapping = n.mapped;
  if (override !== undefined) {
    // An unknown string is reported with the other columns.
    const type = tryParseColumnType(override);
    mapping = type ? mapOverride(meta.colName, override, type, n) : {
      fidelity: "unsupported",
      reason: `override '${override}' is not a known type (accepted: ${COLUMN_TYPE_FORMS})`,
    };
  }
  return {
    name: meta.colName,
    nativeType: n.name,
    arrowType: mapping.plan?.arrowType,
    fidelity: mapping.plan ? mapping.fidelity : "unsupported",
    plan: mapping.plan,
    ...(mapping.logical ? { logicalType: mapping.logical } : {}),
    ...(mapping.reason ? { unsupportedReason: mapping.reason } : {}),
  };
}

/**
 * Maps every column of a result, each with its `columns:` override.
 *
 * @param metas tedious' column metadata, in result order.
 * @param overrides `columns:` overrides, name → type string.
 * @returns The columns, in order (unsupported ones included; see `mssqlSchema`).
 */
export function mssqlColumns(
  metas: readonly MssqlColumnMeta[],
  overrides: Readonly<Record<string, string>>,
): MssqlColumn[] {
  return metas.map((m) =>
    mssqlColumn(m, Object.hasOwn(overrides, m.colName) ? overrides[m.colName] : undefined)
  );
}
