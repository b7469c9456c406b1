/**
 * PostgreSQL type → Arrow type mapping by wire OID (the Rust tool's mapping; the README lists it),
 * with `columns:` overrides. Unknown OIDs (enums, domains, arrays of those, extension types) are
 * looked up once in `pg_type`. Every unsupported column is reported together, before any row is
 * read.
 *
 * @module
 */
import {
  Binary,
  Bool,
  type DataType,
  DateDay,
  Decimal,
  Field,
  FixedSizeBinary,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  List,
  type Schema,
  TimeMicrosecond,
  TimestampMicrosecond,
  TimestampNanosecond,
  Utf8,
} from "../../core/arrow.ts";
import { type ColumnMapping, planSchema } from "../_arrow_columns.ts";
import type { ColumnInfo, Fidelity, LogicalType } from "../../core/source.ts";
import {
  COLUMN_TYPE_FORMS,
  type ColumnTypeOverride as ColumnType,
  tryParseColumnType,
} from "../../core/column_type.ts";
import type { PgFieldDescription } from "./_messages.ts";

/** Decoder kinds: what the row loop does with a value's bytes. */
export const Kind = {
  Bool: 1,
  Int16: 2,
  Int32: 3,
  Int64: 4,
  Oid: 5,
  Float32: 6,
  Float64: 7,
  Numeric: 8,
  Date: 9,
  Time: 10,
  Timestamp: 11,
  TimestampNs: 12,
  Bytes: 13,
  Jsonb: 14,
  Uuid: 15,
  UuidText: 16,
  Interval: 17,
  List: 18,
  Int16As32: 19,
  Int16As64: 20,
  Int32As64: 21,
  Float32As64: 22,
} as const;

/** How one column (or list element) is decoded. */
export interface DecodePlan {
  readonly name: string;
  readonly kind: number;
  readonly arrowType: DataType;
  /** Wire format requested in Bind: 1 binary, 0 text. */
  readonly format: 0 | 1;
  /** Decimal target. */
  readonly precision: number;
  readonly scale: number;
  /** List element plan. */
  readonly element?: DecodePlan;
  /** Text/binary value: subject to the `max_value_mb` guard. */
  readonly variable: boolean;
}

/** A row of `pg_type`, for OIDs the built-in table does not know. */
export interface PgTypeInfo {
  readonly oid: number;
  readonly name: string;
  /** `typtype`: b base, e enum, d domain, c composite, r range, m multirange, p pseudo. */
  readonly type: string;
  readonly baseOid: number;
  readonly baseTypmod: number;
  readonly elemOid: number;
  readonly category: string;
}

/** Looks up `pg_type` rows for OIDs. */
export type TypeLookup = (oids: readonly number[]) => Promise<Map<number, PgTypeInfo>>;

/** The SQL used by the default lookup; `$OIDS` is replaced by a comma-separated list of numbers. */
export const PG_TYPE_LOOKUP_SQL =
  "SELECT oid::int8, typname, typtype, typbasetype::int8, typtypmod, typelem::int8, typcategory " +
  "FROM pg_catalog.pg_type WHERE oid IN ($OIDS)";

interface Scalar {
  readonly name: string;
  readonly kind: number;
  readonly arrow: () => DataType;
  readonly fidelity: Fidelity;
  readonly logical?: LogicalType;
  /** Bytes on the wire are text or raw bytes (Utf8/Binary/json family). */
  readonly textual?: boolean;
}

const S = (
  name: string,
  kind: number,
  arrow: () => DataType,
  fidelity: Fidelity = "exact",
  extra: { logical?: LogicalType; textual?: boolean } = {},
): Scalar => ({ name, kind, arrow, fidelity, ...extra });

const utf8 = () => new Utf8();
const SCALARS = new Map<number, Scalar>([
  [16, S("bool", Kind.Bool, () => new Bool())],
  [17, S("bytea", Kind.Bytes, () => new Binary(), "exact", { textual: true })],
  [18, S("char", Kind.Bytes, utf8, "exact", { textual: true })],
  [19, S("name", Kind.Bytes, utf8, "exact", { textual: true })],
  [20, S("int8", Kind.Int64, () => new Int64())],
  [21, S("int2", Kind.Int16, () => new Int16())],
  [23, S("int4", Kind.Int32, () => new Int32())],
  [25, S("text", Kind.Bytes, utf8, "exact", { textual: true })],
  [26, S("oid", Kind.Oid, () => new Int64())],
  [114, S("json", Kind.Bytes, utf8, "logical_string", { logical: "json", textual: true })],
  [700, S("float4", Kind.Float32, () => new Float32())],
  [701, S("float8", Kind.Float64, () => new Float64())],
  [705, S("unknown", Kind.Bytes, utf8, "exact", { textual: true })],
  [1042, S("bpchar", Kind.Bytes, utf8, "exact", { textual: true })],
  [1043, S("varchar", Kind.Bytes, utf8, "exact", { textual: true })],
  [1082, S("date", Kind.Date, () => new DateDay())],
  [1083, S("time", Kind.Time, () => new TimeMicrosecond())],
  [1114, S("timestamp", Kind.Timestamp, () => new TimestampMicrosecond())],
  [1184, S("timestamptz", Kind.Timestamp, () => new TimestampMicrosecond("UTC"))],
  [1186, S("interval", Kind.Interval, utf8, "compatible", { logical: "interval" })],
  [1700, S("numeric", Kind.Numeric, utf8)], // arrow type depends on the typmod
  [2950, S("uuid", Kind.Uuid, () => new FixedSizeBinary(16), "exact", { logical: "uuid" })],
  [3802, S("jsonb", Kind.Jsonb, utf8, "logical_string", { logical: "json", textual: true })],
]);

/** Array OID → element OID for built-in scalar types. */
const ARRAYS = new Map<number, number>([
  [1000, 16],
  [1001, 17],
  [1002, 18],
  [1003, 19],
  [1016, 20],
  [1005, 21],
  [1007, 23],
  [1009, 25],
  [1028, 26],
  [199, 114],
  [1021, 700],
  [1022, 701],
  [1014, 1042],
  [1015, 1043],
  [1182, 1082],
  [1183, 1083],
  [1115, 1114],
  [1185, 1184],
  [1187, 1186],
  [1231, 1700],
  [2951, 2950],
  [3807, 3802],
]);

/** A resolved wire type: a scalar, an array of one, or something we cannot read. */
type Resolved =
  | {
    readonly shape: "scalar";
    readonly native: string;
    readonly scalar: Scalar;
    readonly typmod: number;
  }
  | {
    readonly shape: "array";
    readonly native: string;
    readonly scalar: Scalar;
    readonly typmod: number;
  }
  | { readonly shape: "unsupported"; readonly native: string };

function numericName(typmod: number): string {
  if (typmod < 4) return "numeric";
  const p = ((typmod - 4) >> 16) & 0xffff;
  const s = (typmod - 4) & 0xffff;
  return `numeric(${p},${s})`;
}

function nativeScalarName(scalar: Scalar, typmod: number): string {
  return scalar.kind === Kind.Numeric ? numericName(typmod) : scalar.name;
}

function resolve(
  oid: number,
  typmod: number,
  catalog: Map<number, PgTypeInfo>,
  depth = 0,
): Resolved {
  const scalar = SCALARS.get(oid);
  if (scalar) return { shape: "scalar", native: nativeScalarName(scalar, typmod), scalar, typmod };
  const elem = ARRAYS.get(oid);
  if (elem !== undefined) {
    const s = SCALARS.get(elem)!;
    return { shape: "array", native: `${nativeScalarName(s, typmod)}[]`, scalar: s, typmod };
  }
  const info = catalog.get(oid);
  if (!info || depth > 8) return { shape: "unsupported", native: info?.name ?? `oid ${oid}` };
  if (info.type === "e") {
    return {
      shape: "scalar",
      native: info.name,
      scalar: S(info.name, Kind.Bytes, utf8, "compatible", { logical: "enum", textual: true }),
      typmod,
    };
  }
  if (info.type === "d") {
    const base = resolve(info.baseOid, info.baseTypmod, catalog, depth + 1);
    return base.shape === "unsupported"
      ? { shape: "unsupported", native: `${info.name} (domain over ${base.native})` }
      : { ...base, native: info.name };
  }
  if (info.category === "A" && info.elemOid !== 0) {
    const inner = resolve(info.elemOid, typmod, catalog, depth + 1);
    if (inner.shape === "scalar") {
      return {
        shape: "array",
        native: `${inner.native}[]`,
        scalar: inner.scalar,
        typmod: inner.typmod,
      };
    }
    return { shape: "unsupported", native: `${inner.native}[]` };
  }
  if (info.type === "b" && info.name === "citext") {
    return {
      shape: "scalar",
      native: "citext",
      scalar: S("citext", Kind.Bytes, utf8, "exact", { textual: true }),
      typmod,
    };
  }
  return { shape: "unsupported", native: info.name };
}

/** OIDs whose meaning needs `pg_type` (not built in), including domain bases and array elements. */
function unknownOids(oids: Iterable<number>, catalog: Map<number, PgTypeInfo>): number[] {
  const out = new Set<number>();
  for (const oid of oids) {
    if (SCALARS.has(oid) || ARRAYS.has(oid)) continue;
    const info = catalog.get(oid);
    if (!info) out.add(oid);
    else {
      if (info.type === "d" && info.baseOid) {
        for (const o of unknownOids([info.baseOid], catalog)) out.add(o);
      }
      if (info.category === "A" && info.elemOid) {
        for (const o of unknownOids([info.elemOid], catalog)) out.add(o);
      }
    }
  }
  return [...out];
}

/** How one column maps (see `planSchema`). */
type Mapped = ColumnMapping<DecodePlan>;

function plan(
  name: string,
  kind: number,
  arrowType: DataType,
  extra: Partial<Pick<DecodePlan, "format" | "precision" | "scale" | "element" | "variable">> = {},
): DecodePlan {
  return {
    name,
    kind,
    arrowType,
    format: extra.format ?? 1,
    precision: extra.precision ?? 0,
    scale: extra.scale ?? 0,
    variable: extra.variable ?? false,
    ...(extra.element ? { element: extra.element } : {}),
  };
}

function decimalType(precision: number, scale: number): DataType {
  return new Decimal(scale, precision, 128);
}

function mapScalar(name: string, s: Scalar, typmod: number): Mapped {
  if (s.kind === Kind.Numeric) {
    if (typmod < 4) {
      return {
        fidelity: "unsupported",
        reason: "numeric without precision and scale cannot be mapped exactly; add " +
          `\`columns: {${name}: "decimal(38,9)"}\` (your precision and scale) or cast it in the query`,
      };
    }
    const p = ((typmod - 4) >> 16) & 0xffff;
    const sc = (typmod - 4) & 0xffff;
    return mapDecimal(name, p, sc);
  }
  const variable = s.textual === true;
  return {
    plan: plan(name, s.kind, s.arrow(), { variable }),
    fidelity: s.fidelity,
    ...(s.logical ? { logical: s.logical } : {}),
  };
}

function mapDecimal(name: string, p: number, sc: number): Mapped {
  if (p > 38) {
    return {
      fidelity: "unsupported",
      reason: `numeric(${p},${sc}) exceeds the 38 digits of Decimal128; add ` +
        `\`columns: {${name}: "decimal(38,${Math.min(sc, 38)})"}\` or cast it to text in the query`,
    };
  }
  if (sc > p) {
    return {
      fidelity: "unsupported",
      reason: `numeric(${p},${sc}) has a scale above its precision; cast it in the query`,
    };
  }
  return {
    plan: plan(name, Kind.Numeric, decimalType(p, sc), { precision: p, scale: sc }),
    fidelity: "exact",
  };
}

function overrideReason(name: string, text: string, native: string): string {
  return `override '${text}' cannot be applied to ${native}; cast the column in the query ` +
    `instead (e.g. ${name}::text) and drop the override`;
}

function mapOverride(name: string, text: string, type: ColumnType, r: Resolved): Mapped {
  const native = r.native;
  const bad = (): Mapped => ({
    fidelity: "unsupported",
    reason: overrideReason(name, text, native),
  });
  // Text and JSON overrides read the server's text form of anything, arrays and exotic types too.
  if (type.kind === "utf8" || type.kind === "json") {
    const logical = type.kind === "json" ? { logical: "json" as const } : {};
    return {
      plan: plan(name, Kind.Bytes, new Utf8(), { format: 0, variable: true }),
      fidelity: type.kind === "json" ? "logical_string" : "compatible",
      ...logical,
    };
  }
  if (r.shape !== "scalar") return bad();
  const k = r.scalar.kind;
  switch (type.kind) {
    case "decimal":
      if (k !== Kind.Numeric) return bad();
      return mapDecimal(name, type.precision, type.scale);
    case "binary":
      return r.scalar.textual && k === Kind.Bytes
        ? { plan: plan(name, Kind.Bytes, new Binary(), { variable: true }), fidelity: "compatible" }
        : bad();
    case "uuid":
      if (k === Kind.Uuid) return mapScalar(name, r.scalar, r.typmod);
      return r.scalar.textual && k === Kind.Bytes
        ? {
          plan: plan(name, Kind.UuidText, new FixedSizeBinary(16), { format: 0 }),
          fidelity: "compatible",
          logical: "uuid",
        }
        : bad();
    case "bool":
      return k === Kind.Bool ? mapScalar(name, r.scalar, r.typmod) : bad();
    case "int16":
      return k === Kind.Int16 ? mapScalar(name, r.scalar, r.typmod) : bad();
    case "int32":
      if (k === Kind.Int32) return mapScalar(name, r.scalar, r.typmod);
      return k === Kind.Int16
        ? { plan: plan(name, Kind.Int16As32, new Int32()), fidelity: "exact" }
        : bad();
    case "int64":
      if (k === Kind.Int64 || k === Kind.Oid) return mapScalar(name, r.scalar, r.typmod);
      if (k === Kind.Int16) {
        return { plan: plan(name, Kind.Int16As64, new Int64()), fidelity: "exact" };
      }
      if (k === Kind.Int32) {
        return { plan: plan(name, Kind.Int32As64, new Int64()), fidelity: "exact" };
      }
      return bad();
    case "float32":
      return k === Kind.Float32 ? mapScalar(name, r.scalar, r.typmod) : bad();
    case "float64":
      if (k === Kind.Float64) return mapScalar(name, r.scalar, r.typmod);
      return k === Kind.Float32
        ? { plan: plan(name, Kind.Float32As64, new Float64()), fidelity: "exact" }
        : bad();
    case "date":
      return k === Kind.Date ? mapScalar(name, r.scalar, r.typmod) : bad();
    case "timestamp":
    case "timestamp_tz":
    case "timestamp_ns":
    case "timestamp_tz_ns": {
      if (k !== Kind.Timestamp) return bad();
      const tz = type.kind === "timestamp_tz" || type.kind === "timestamp_tz_ns" ? "UTC" : null;
      const ns = type.kind === "timestamp_ns" || type.kind === "timestamp_tz_ns";
      return ns
        ? {
          plan: plan(name, Kind.TimestampNs, new TimestampNanosecond(tz)),
          fidelity: "compatible",
        }
        : {
          plan: plan(name, Kind.Timestamp, new TimestampMicrosecond(tz)),
          fidelity: "compatible",
        };
    }
  }
}

function mapResolved(name: string, r: Resolved): Mapped {
  if (r.shape === "unsupported") {
    return {
      fidelity: "unsupported",
      reason: `type ${r.native} is not supported; cast it in the query (e.g. ${name}::text) or ` +
        `add \`columns: {${name}: "text"}\``,
    };
  }
  if (r.shape === "scalar") return mapScalar(name, r.scalar, r.typmod);
  const inner = mapScalar(name, r.scalar, r.typmod);
  if (!inner.plan) return inner;
  const item = new Field("item", inner.plan.arrowType, true);
  return {
    plan: plan(name, Kind.List, new List(item), { element: inner.plan }),
    fidelity: "compatible",
    ...(inner.logical ? { logical: inner.logical } : {}),
  };
}

/** The columns of a result, ready to decode. */
export interface ColumnPlans {
  readonly schema: Schema;
  readonly columns: readonly ColumnInfo[];
  readonly plans: readonly DecodePlan[];
  /** Per-column wire format codes for Bind. */
  readonly formats: readonly number[];
}

/**
 * Maps a RowDescription to decode plans, an Arrow schema and column infos.
 *
 * @param fields RowDescription of the result.
 * @param options `columns:` overrides and a `pg_type` lookup for OIDs not built in.
 * @returns Plans for every column.
 * @throws ConfigError `source.unsupported_types` naming every unsupported column at once.
 */
export async function planColumns(
  fields: readonly PgFieldDescription[],
  options: { overrides: Readonly<Record<string, string>>; lookup: TypeLookup },
): Promise<ColumnPlans> {
  const catalog = new Map<number, PgTypeInfo>();
  for (let round = 0; round < 4; round++) {
    const missing = unknownOids(fields.map((f) => f.typeOid), catalog);
    if (missing.length === 0) break;
    const found = await options.lookup(missing);
    for (const oid of missing) {
      const info = found.get(oid);
      if (info) catalog.set(oid, info);
      else {
        catalog.set(oid, {
          oid,
          name: `oid ${oid}`,
          type: "?",
          baseOid: 0,
          baseTypmod: -1,
          elemOid: 0,
          category: "?",
        });
      }
    }
  }
  const overrides = new Map<string, string>();
  for (const [k, v] of Object.entries(options.overrides)) overrides.set(k, v);
  const mapped = fields.map((f) => {
    const r = resolve(f.typeOid, f.typeModifier, catalog);
    const overrideText = overrides.get(f.name);
    let mapping: Mapped;
    if (overrideText !== undefined) {
      // An unknown string is reported with the other columns.
      const type = tryParseColumnType(overrideText);
      mapping = type ? mapOverride(f.name, overrideText, type, r) : {
        fidelity: "unsupported",
        reason: `override '${overrideText}' is not a known type (accepted: ${COLUMN_TYPE_FORMS})`,
      };
    } else {
      mapping = mapResolved(f.name, r);
    }
    return { name: f.name, nativeType: r.native, mapping };
  });
  const { schema, columns, plans } = planSchema(mapped);
  return { schema, columns, plans, formats: plans.map((p) => p.format) };
}
