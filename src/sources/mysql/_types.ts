/**
 * MySQL/MariaDB column definition → Arrow type mapping (the Rust tool's mapping; the README lists
 * it), with `columns:` overrides. Decided from the wire column definition only (type, flags,
 * length, decimals, charset, MariaDB extended format); every unsupported column is reported
 * together, before any row is delivered.
 *
 * JSON: MySQL sends type 245. MariaDB stores JSON as LONGTEXT, but announces `format=json` in its
 * extended column metadata (which mysql2 negotiates), so a MariaDB `JSON` column of a table maps
 * to json too; a JSON expression without that metadata (e.g. `JSON_OBJECT(...)`) stays Utf8 unless
 * `columns: {c: json}` forces it.
 *
 * @module
 */
import {
  Binary,
  Bool,
  type DataType,
  DateDay,
  Decimal,
  FixedSizeBinary,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  type Schema,
  TimeMicrosecond,
  TimestampMicrosecond,
  TimestampNanosecond,
  Uint64,
  Utf8,
} from "../../core/arrow.ts";
import type { ColumnInfo, Fidelity, LogicalType } from "../../core/source.ts";
import {
  COLUMN_TYPE_FORMS,
  type ColumnTypeOverride,
  tryParseColumnType,
} from "../../core/column_type.ts";
import { type ColumnMapping, planSchema } from "../_arrow_columns.ts";

/** Wire column types (`enum_field_types`). */
export const MysqlType = {
  Decimal: 0,
  Tiny: 1,
  Short: 2,
  Long: 3,
  Float: 4,
  Double: 5,
  Null: 6,
  Timestamp: 7,
  LongLong: 8,
  Int24: 9,
  Date: 10,
  Time: 11,
  DateTime: 12,
  Year: 13,
  NewDate: 14,
  VarChar: 15,
  Bit: 16,
  Json: 245,
  NewDecimal: 246,
  Enum: 247,
  Set: 248,
  TinyBlob: 249,
  MediumBlob: 250,
  LongBlob: 251,
  Blob: 252,
  VarString: 253,
  String: 254,
  Geometry: 255,
} as const;

/** Column definition flags used by the mapping. */
export const MysqlFlag = { Unsigned: 32, Enum: 256, Set: 2048 } as const;

/** The `binary` character set: bytes, not text. */
export const BINARY_CHARSET = 63;

/** The parts of a mysql2 `ColumnDefinition` the mapping reads. */
export interface MysqlField {
  readonly name: string;
  readonly columnType: number;
  readonly flags: number;
  readonly columnLength: number;
  readonly decimals: number;
  readonly characterSet: number;
  /** MariaDB extended metadata, e.g. `json`. */
  readonly extendedFormat?: string | undefined;
  /** MariaDB extended metadata, e.g. `uuid`, `inet6`. */
  readonly extendedTypeName?: string | undefined;
}

/** How the row decoder reads a binary-protocol value (the wire side). */
export const Read = {
  Int8: 1,
  UInt8: 2,
  Int16: 3,
  UInt16: 4,
  Int32: 5,
  UInt32: 6,
  Int64: 7,
  Float32: 8,
  Float64: 9,
  /** Length-coded bytes (strings, blobs, json, enum, set, decimal text, bit). */
  Bytes: 10,
  Date: 11,
  DateTime: 12,
  Time: 13,
} as const;

/** What the row decoder writes (the Arrow side). */
export const Write = {
  Bool: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  /** Raw 64 bits (int64 and uint64 both). */
  Bits64: 5,
  Float32: 6,
  Float64: 7,
  Decimal: 8,
  Date: 9,
  TimeMicros: 10,
  TimestampMicros: 11,
  TimestampNanos: 12,
  Var: 13,
  /** Big-endian BIT bytes → Bool (bit(1)). */
  BitBool: 14,
  /** Big-endian BIT bytes → Int64 (bit(n>1)). */
  BitInt64: 15,
  UuidText: 16,
  UuidBinary: 17,
} as const;

/** How one column is decoded. */
export interface DecodePlan {
  readonly name: string;
  readonly read: number;
  readonly write: number;
  readonly arrowType: DataType;
  /** Decimal target. */
  readonly precision: number;
  readonly scale: number;
  /** Text/binary value: subject to the `max_value_mb` guard. */
  readonly variable: boolean;
  /** Date/datetime column: zero dates (`0000-00-00`) become NULL and are counted. */
  readonly zeroDates: boolean;
}

/** The wire type of a column, resolved. */
interface Native {
  /** Name as MySQL spells it, e.g. `decimal(12,2)`, `int unsigned`, `bit(8)`. */
  readonly name: string;
  readonly read: number;
  /** Default mapping, or undefined when unsupported. */
  readonly mapped?: Mapped;
  /** Text-like (strings, json, enum, set): usable by utf8/json/uuid overrides. */
  readonly textual: boolean;
  /** Raw bytes (charset binary). */
  readonly binary: boolean;
  /** Integer width class for widening overrides: 8, 16, 24, 32, 64 or 0. */
  readonly intBits: number;
  readonly unsigned: boolean;
  /** Decimal precision/scale from the wire. */
  readonly precision: number;
  readonly scale: number;
}

/** How one column maps (see `planSchema`). */
type Mapped = ColumnMapping<DecodePlan>;

function plan(
  name: string,
  read: number,
  write: number,
  arrowType: DataType,
  extra: Partial<Pick<DecodePlan, "precision" | "scale" | "variable" | "zeroDates">> = {},
): DecodePlan {
  return {
    name,
    read,
    write,
    arrowType,
    precision: extra.precision ?? 0,
    scale: extra.scale ?? 0,
    variable: extra.variable ?? false,
    zeroDates: extra.zeroDates ?? false,
  };
}

const exact = (p: DecodePlan, logical?: LogicalType, fidelity: Fidelity = "exact"): Mapped => ({
  plan: p,
  fidelity,
  ...(logical ? { logical } : {}),
});

/**
 * Decimal precision from the wire: the display length counts a sign (unless unsigned) and a
 * decimal point (when scale > 0).
 *
 * @param field Column definition of a DECIMAL column.
 * @returns The declared precision.
 *
 * @example
 * ```ts
 * import { decimalPrecision } from "./_types.ts";
 * const p = decimalPrecision({ columnLength: 14, decimals: 2, flags: 0 });
 * if (p !== 12) throw new Error(String(p));
 * ```
 */
export function decimalPrecision(
  field: Pick<MysqlField, "columnLength" | "decimals" | "flags">,
): number {
  const unsigned = (field.flags & MysqlFlag.Unsigned) !== 0;
  return field.columnLength - (field.decimals > 0 ? 1 : 0) - (unsigned ? 0 : 1);
}

function mapDecimal(name: string, native: string, p: number, s: number): Mapped {
  if (p > 38) {
    return {
      fidelity: "unsupported",
      reason: `${native} exceeds the 38 digits of Decimal128; add ` +
        `\`columns: {${name}: "decimal(38,${Math.min(s, 38)})"}\` or cast it to CHAR in the query`,
    };
  }
  if (p < 1 || s > p) {
    return {
      fidelity: "unsupported",
      reason: `${native} has no usable precision and scale; cast it in the query ` +
        `(e.g. CAST(${name} AS DECIMAL(20,4)))`,
    };
  }
  return exact(
    plan(name, Read.Bytes, Write.Decimal, new Decimal(s, p, 128), { precision: p, scale: s }),
  );
}

const unsupportedCast = (name: string, native: string): Mapped => ({
  fidelity: "unsupported",
  reason: `type ${native} is not supported; cast it in the query (e.g. CAST(${name} AS CHAR)) ` +
    `or select a supported expression`,
});

/**
 * Resolves a column definition to its native name, wire reading and default Arrow mapping.
 *
 * @param f The column definition.
 * @returns The resolution (its `mapped` is unsupported for geometry and unknown types).
 */
function resolve(f: MysqlField): Native {
  const name = f.name;
  const unsigned = (f.flags & MysqlFlag.Unsigned) !== 0;
  const u = unsigned ? " unsigned" : "";
  const base = { textual: false, binary: false, intBits: 0, unsigned, precision: 0, scale: 0 };
  switch (f.columnType) {
    case MysqlType.Tiny: {
      const read = unsigned ? Read.UInt8 : Read.Int8;
      if (f.columnLength === 1) {
        return {
          ...base,
          name: `tinyint(1)${u}`,
          read,
          intBits: 8,
          mapped: exact(plan(name, read, Write.Bool, new Bool())),
        };
      }
      return {
        ...base,
        name: `tinyint${u}`,
        read,
        intBits: 8,
        mapped: exact(plan(name, read, Write.Int16, new Int16())),
      };
    }
    case MysqlType.Short: {
      const read = unsigned ? Read.UInt16 : Read.Int16;
      return {
        ...base,
        name: `smallint${u}`,
        read,
        intBits: 16,
        mapped: unsigned
          ? exact(plan(name, read, Write.Int32, new Int32()))
          : exact(plan(name, read, Write.Int16, new Int16())),
      };
    }
    case MysqlType.Year:
      return {
        ...base,
        name: "year",
        read: Read.Int16,
        intBits: 16,
        mapped: exact(plan(name, Read.Int16, Write.Int16, new Int16())),
      };
    case MysqlType.Int24: {
      // MEDIUMINT travels as 4 bytes in the binary protocol.
      const read = unsigned ? Read.UInt32 : Read.Int32;
      return {
        ...base,
        name: `mediumint${u}`,
        read,
        intBits: 24,
        mapped: exact(plan(name, read, Write.Int32, new Int32())),
      };
    }
    case MysqlType.Long: {
      const read = unsigned ? Read.UInt32 : Read.Int32;
      return {
        ...base,
        name: `int${u}`,
        read,
        intBits: 32,
        mapped: unsigned
          ? exact(plan(name, read, Write.Int64, new Int64()))
          : exact(plan(name, read, Write.Int32, new Int32())),
      };
    }
    case MysqlType.LongLong:
      return {
        ...base,
        name: `bigint${u}`,
        read: Read.Int64,
        intBits: 64,
        mapped: exact(
          plan(name, Read.Int64, Write.Bits64, unsigned ? new Uint64() : new Int64()),
        ),
      };
    case MysqlType.Bit: {
      const n = f.columnLength;
      return {
        ...base,
        name: `bit(${n})`,
        read: Read.Bytes,
        mapped: n <= 1
          ? exact(plan(name, Read.Bytes, Write.BitBool, new Bool()))
          : exact(plan(name, Read.Bytes, Write.BitInt64, new Int64())),
      };
    }
    case MysqlType.Float:
      return {
        ...base,
        name: "float",
        read: Read.Float32,
        mapped: exact(plan(name, Read.Float32, Write.Float32, new Float32())),
      };
    case MysqlType.Double:
      return {
        ...base,
        name: "double",
        read: Read.Float64,
        mapped: exact(plan(name, Read.Float64, Write.Float64, new Float64())),
      };
    case MysqlType.Decimal:
    case MysqlType.NewDecimal: {
      const p = decimalPrecision(f);
      const s = f.decimals;
      const native = `decimal(${p},${s})${u}`;
      return {
        ...base,
        name: native,
        read: Read.Bytes,
        precision: p,
        scale: s,
        mapped: mapDecimal(name, native, p, s),
      };
    }
    case MysqlType.Date:
    case MysqlType.NewDate:
      return {
        ...base,
        name: "date",
        read: Read.Date,
        mapped: exact(plan(name, Read.Date, Write.Date, new DateDay(), { zeroDates: true })),
      };
    case MysqlType.Time:
      return {
        ...base,
        name: f.decimals > 0 && f.decimals <= 6 ? `time(${f.decimals})` : "time",
        read: Read.Time,
        mapped: exact(plan(name, Read.Time, Write.TimeMicros, new TimeMicrosecond())),
      };
    case MysqlType.DateTime:
      return {
        ...base,
        name: f.decimals > 0 && f.decimals <= 6 ? `datetime(${f.decimals})` : "datetime",
        read: Read.DateTime,
        mapped: exact(
          plan(name, Read.DateTime, Write.TimestampMicros, new TimestampMicrosecond(), {
            zeroDates: true,
          }),
        ),
      };
    case MysqlType.Timestamp:
      return {
        ...base,
        name: f.decimals > 0 && f.decimals <= 6 ? `timestamp(${f.decimals})` : "timestamp",
        read: Read.DateTime,
        mapped: exact(
          plan(name, Read.DateTime, Write.TimestampMicros, new TimestampMicrosecond("UTC"), {
            zeroDates: true,
          }),
        ),
      };
    case MysqlType.Json:
      return {
        ...base,
        name: "json",
        read: Read.Bytes,
        textual: true,
        mapped: exact(
          plan(name, Read.Bytes, Write.Var, new Utf8(), { variable: true }),
          "json",
          "logical_string",
        ),
      };
    case MysqlType.Enum:
    case MysqlType.Set:
    case MysqlType.VarChar:
    case MysqlType.VarString:
    case MysqlType.String:
    case MysqlType.TinyBlob:
    case MysqlType.MediumBlob:
    case MysqlType.LongBlob:
    case MysqlType.Blob: {
      const isEnum = (f.flags & MysqlFlag.Enum) !== 0 || f.columnType === MysqlType.Enum;
      const isSet = (f.flags & MysqlFlag.Set) !== 0 || f.columnType === MysqlType.Set;
      if (isEnum || isSet) {
        return {
          ...base,
          name: isEnum ? "enum" : "set",
          read: Read.Bytes,
          textual: true,
          mapped: exact(
            plan(name, Read.Bytes, Write.Var, new Utf8(), { variable: true }),
            "enum",
            "compatible",
          ),
        };
      }
      const binary = f.characterSet === BINARY_CHARSET;
      const native = stringTypeName(f, binary);
      if (f.extendedFormat === "json" && !binary) {
        return {
          ...base,
          name: "json",
          read: Read.Bytes,
          textual: true,
          mapped: exact(
            plan(name, Read.Bytes, Write.Var, new Utf8(), { variable: true }),
            "json",
            "logical_string",
          ),
        };
      }
      return {
        ...base,
        name: native,
        read: Read.Bytes,
        textual: !binary,
        binary,
        mapped: binary
          ? exact(plan(name, Read.Bytes, Write.Var, new Binary(), { variable: true }))
          : exact(plan(name, Read.Bytes, Write.Var, new Utf8(), { variable: true })),
      };
    }
    case MysqlType.Geometry:
      return {
        ...base,
        name: "geometry",
        read: Read.Bytes,
        mapped: unsupportedCast(name, "geometry"),
      };
    case MysqlType.Null:
      return { ...base, name: "null", read: Read.Bytes, mapped: unsupportedCast(name, "null") };
    default: {
      const native = f.extendedTypeName ?? `type ${f.columnType}`;
      return { ...base, name: native, read: Read.Bytes, mapped: unsupportedCast(name, native) };
    }
  }
}

function stringTypeName(f: MysqlField, binary: boolean): string {
  switch (f.columnType) {
    case MysqlType.String:
      return binary ? "binary" : "char";
    case MysqlType.VarChar:
    case MysqlType.VarString:
      return binary ? "varbinary" : "varchar";
    default:
      return binary ? "blob" : "text";
  }
}

function overrideReason(name: string, text: string, native: string): string {
  return `override '${text}' cannot be applied to ${native}; cast the column in the query ` +
    `instead (e.g. CAST(${name} AS CHAR)) and drop the override`;
}

function mapOverride(name: string, text: string, type: ColumnTypeOverride, n: Native): Mapped {
  const bad = (): Mapped => ({
    fidelity: "unsupported",
    reason: overrideReason(name, text, n.name),
  });
  const def = n.mapped?.plan;
  switch (type.kind) {
    case "utf8":
      return n.textual || n.binary
        ? {
          plan: plan(name, Read.Bytes, Write.Var, new Utf8(), { variable: true }),
          fidelity: "compatible",
        }
        : bad();
    case "json":
      return n.textual || n.binary
        ? {
          plan: plan(name, Read.Bytes, Write.Var, new Utf8(), { variable: true }),
          fidelity: "logical_string",
          logical: "json",
        }
        : bad();
    case "binary":
      return n.textual || n.binary
        ? {
          plan: plan(name, Read.Bytes, Write.Var, new Binary(), { variable: true }),
          fidelity: "compatible",
        }
        : bad();
    case "uuid":
      if (n.binary) {
        return {
          plan: plan(name, Read.Bytes, Write.UuidBinary, new FixedSizeBinary(16)),
          fidelity: "compatible",
          logical: "uuid",
        };
      }
      return n.textual
        ? {
          plan: plan(name, Read.Bytes, Write.UuidText, new FixedSizeBinary(16)),
          fidelity: "compatible",
          logical: "uuid",
        }
        : bad();
    case "decimal":
      return n.precision > 0 || n.scale > 0 || n.name.startsWith("decimal")
        ? mapDecimal(name, n.name, type.precision, type.scale)
        : bad();
    case "bool":
      return def?.write === Write.Bool || def?.write === Write.BitBool ? n.mapped! : bad();
    case "int16":
    case "int32":
    case "int64": {
      if (n.intBits === 0 || n.intBits === 64) {
        return type.kind === "int64" && n.intBits === 64 && !n.unsigned ? n.mapped! : bad();
      }
      // Bits the value needs: unsigned types need one more for the sign.
      const need = n.intBits + (n.unsigned ? 1 : 0);
      const have = type.kind === "int16" ? 16 : type.kind === "int32" ? 32 : 64;
      if (need > have) return bad();
      const arrow = have === 16 ? new Int16() : have === 32 ? new Int32() : new Int64();
      const write = have === 16 ? Write.Int16 : have === 32 ? Write.Int32 : Write.Int64;
      return { plan: plan(name, n.read, write, arrow), fidelity: "exact" };
    }
    case "float32":
      return n.read === Read.Float32 ? n.mapped! : bad();
    case "float64":
      return n.read === Read.Float32 || n.read === Read.Float64
        ? { plan: plan(name, n.read, Write.Float64, new Float64()), fidelity: "exact" }
        : bad();
    case "date":
      return n.read === Read.Date ? n.mapped! : bad();
    case "timestamp":
    case "timestamp_tz":
    case "timestamp_ns":
    case "timestamp_tz_ns": {
      if (n.read !== Read.DateTime) return bad();
      const tz = type.kind === "timestamp_tz" || type.kind === "timestamp_tz_ns" ? "UTC" : null;
      const ns = type.kind === "timestamp_ns" || type.kind === "timestamp_tz_ns";
      return {
        plan: ns
          ? plan(name, Read.DateTime, Write.TimestampNanos, new TimestampNanosecond(tz), {
            zeroDates: true,
          })
          : plan(name, Read.DateTime, Write.TimestampMicros, new TimestampMicrosecond(tz), {
            zeroDates: true,
          }),
        fidelity: "compatible",
      };
    }
  }
}

/** The columns of a result, ready to decode. */
export interface ColumnPlans {
  readonly schema: Schema;
  readonly columns: readonly ColumnInfo[];
  readonly plans: readonly DecodePlan[];
}

/**
 * Maps column definitions to decode plans, an Arrow schema and column infos.
 *
 * @param fields Column definitions of the result (from mysql2's `fields` event).
 * @param overrides `columns:` overrides, name → type string.
 * @returns Plans for every column.
 * @throws ConfigError `source.unsupported_types` naming every unsupported column at once.
 *
 * @example
 * ```ts
 * import { planColumns } from "./_types.ts";
 * const p = planColumns([
 *   { name: "id", columnType: 8, flags: 32, columnLength: 20, decimals: 0, characterSet: 63 },
 * ], {});
 * if (p.columns[0]!.nativeType !== "bigint unsigned") throw new Error();
 * ```
 */
export function planColumns(
  fields: readonly MysqlField[],
  overrides: Readonly<Record<string, string>>,
): ColumnPlans {
  const mapped = fields.map((f) => {
    const n = resolve(f);
    const overrideText = Object.hasOwn(overrides, f.name) ? overrides[f.name] : undefined;
    let mapping: Mapped;
    if (overrideText !== undefined) {
      // An unknown string is reported with the other columns.
      const type = tryParseColumnType(overrideText);
      mapping = type ? mapOverride(f.name, overrideText, type, n) : {
        fidelity: "unsupported",
        reason: `override '${overrideText}' is not a known type (accepted: ${COLUMN_TYPE_FORMS})`,
      };
    } else {
      mapping = n.mapped!;
    }
    return { name: f.name, nativeType: n.name, mapping };
  });
  const { schema, columns, plans } = planSchema(mapped);
  return { schema, columns, plans };
}
