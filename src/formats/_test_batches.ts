/**
 * Test-only builders of Arrow columns from plain values (null = NULL), shaped like the PostgreSQL
 * source's output: buffers filled by hand and wrapped with `makeData`.
 *
 * Layer: formats (private, used by tests and the bench only).
 *
 * @module
 */
import {
  Binary,
  Bool,
  type Data,
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
  makeData,
  RecordBatch,
  Schema,
  Struct,
  TimeMicrosecond,
  TimestampMicrosecond,
  Uint64,
  Utf8,
} from "../core/arrow.ts";

/** A column: its field and its data. */
export interface Column {
  readonly field: Field;
  readonly data: Data;
}

function validity(values: readonly unknown[]): { nullBitmap?: Uint8Array; nullCount: number } {
  const nullCount = values.filter((v) => v === null).length;
  if (nullCount === 0) return { nullCount: 0 };
  const nullBitmap = new Uint8Array(Math.ceil(values.length / 8));
  values.forEach((v, i) => {
    if (v !== null) nullBitmap[i >> 3]! |= 1 << (i & 7);
  });
  return { nullBitmap, nullCount };
}

function meta(entries: Record<string, string>): Map<string, string> {
  return new Map(Object.entries(entries));
}

/** Field metadata the PostgreSQL source attaches. */
export function rivetMeta(nativeType: string, extra: Record<string, string> = {}) {
  return meta({ "rivet.native_type": nativeType, "rivet.fidelity": "exact", ...extra });
}

/** Builds a column from a typed array of values plus a null mask taken from `values`. */
function fixed<T>(
  name: string,
  // deno-lint-ignore no-explicit-any
  type: any,
  values: readonly (T | null)[],
  fill: (i: number, v: T) => void,
  // deno-lint-ignore no-explicit-any
  data: any,
  metadata: Map<string, string>,
): Column {
  values.forEach((v, i) => {
    if (v !== null) fill(i, v);
  });
  return {
    field: new Field(name, type, true, metadata),
    data: makeData({ type, length: values.length, data, ...validity(values) }),
  };
}

/** Boolean column. */
export function boolCol(name: string, values: readonly (boolean | null)[]): Column {
  const bits = new Uint8Array(Math.ceil(values.length / 8) || 1);
  return fixed(
    name,
    new Bool(),
    values,
    (i, v) => {
      if (v) bits[i >> 3]! |= 1 << (i & 7);
    },
    bits,
    rivetMeta("bool"),
  );
}

/** int2 column. */
export function int16Col(name: string, values: readonly (number | null)[]): Column {
  const a = new Int16Array(values.length);
  return fixed(name, new Int16(), values, (i, v) => a[i] = v, a, rivetMeta("int2"));
}

/** int4 column. */
export function int32Col(name: string, values: readonly (number | null)[]): Column {
  const a = new Int32Array(values.length);
  return fixed(name, new Int32(), values, (i, v) => a[i] = v, a, rivetMeta("int4"));
}

/** int8 column. */
export function int64Col(name: string, values: readonly (bigint | null)[]): Column {
  const a = new BigInt64Array(values.length);
  return fixed(name, new Int64(), values, (i, v) => a[i] = v, a, rivetMeta("int8"));
}

/** uint64 column (MySQL `bigint unsigned`). */
export function uint64Col(name: string, values: readonly (bigint | null)[]): Column {
  const a = new BigUint64Array(values.length);
  return fixed(name, new Uint64(), values, (i, v) => a[i] = v, a, rivetMeta("bigint unsigned"));
}

/** float4 column. */
export function float32Col(name: string, values: readonly (number | null)[]): Column {
  const a = new Float32Array(values.length);
  return fixed(name, new Float32(), values, (i, v) => a[i] = v, a, rivetMeta("float4"));
}

/** float8 column. */
export function float64Col(name: string, values: readonly (number | null)[]): Column {
  const a = new Float64Array(values.length);
  return fixed(name, new Float64(), values, (i, v) => a[i] = v, a, rivetMeta("float8"));
}

/** Decimal128 column from unscaled integers. */
export function decimalCol(
  name: string,
  spec: { precision: number; scale: number },
  values: readonly (bigint | null)[],
): Column {
  const words = new Uint32Array(values.length * 4);
  return fixed(
    name,
    new Decimal(spec.scale, spec.precision, 128),
    values,
    (i, v) => {
      const u = BigInt.asUintN(128, v);
      for (let k = 0; k < 4; k++) words[i * 4 + k] = Number((u >> BigInt(32 * k)) & 0xffffffffn);
    },
    words,
    rivetMeta(`numeric(${spec.precision},${spec.scale})`),
  );
}

function variable(
  name: string,
  // deno-lint-ignore no-explicit-any
  type: any,
  values: readonly (Uint8Array | null)[],
  metadata: Map<string, string>,
): Column {
  const offsets = new Int32Array(values.length + 1);
  let total = 0;
  values.forEach((v, i) => {
    total += v?.length ?? 0;
    offsets[i + 1] = total;
  });
  const bytes = new Uint8Array(total);
  values.forEach((v, i) => {
    if (v !== null) bytes.set(v, offsets[i]!);
  });
  return {
    field: new Field(name, type, true, metadata),
    data: makeData({
      type,
      length: values.length,
      valueOffsets: offsets,
      data: bytes,
      ...validity(values),
    }),
  };
}

/** text column. */
export function utf8Col(name: string, values: readonly (string | null)[]): Column {
  const enc = new TextEncoder();
  return variable(
    name,
    new Utf8(),
    values.map((v) => v === null ? null : enc.encode(v)),
    rivetMeta("text"),
  );
}

/** jsonb column: Utf8 with the `arrow.json` extension. */
export function jsonCol(name: string, values: readonly (string | null)[]): Column {
  const enc = new TextEncoder();
  return variable(
    name,
    new Utf8(),
    values.map((v) => v === null ? null : enc.encode(v)),
    meta({
      "ARROW:extension:name": "arrow.json",
      "rivet.native_type": "jsonb",
      "rivet.fidelity": "logical_string",
      "rivet.logical_type": "json",
    }),
  );
}

/** bytea column. */
export function binaryCol(name: string, values: readonly (Uint8Array | null)[]): Column {
  return variable(name, new Binary(), values, rivetMeta("bytea"));
}

/** uuid column from hyphenated text. */
export function uuidCol(name: string, values: readonly (string | null)[]): Column {
  const bytes = new Uint8Array(values.length * 16);
  return fixed(
    name,
    new FixedSizeBinary(16),
    values,
    (i, v) => {
      const hex = v.replaceAll("-", "");
      for (let k = 0; k < 16; k++) bytes[i * 16 + k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
    },
    bytes,
    meta({
      "ARROW:extension:name": "arrow.uuid",
      "rivet.native_type": "uuid",
      "rivet.fidelity": "exact",
      "rivet.logical_type": "uuid",
    }),
  );
}

/** date column from days since 1970-01-01. */
export function dateCol(name: string, values: readonly (number | null)[]): Column {
  const a = new Int32Array(values.length);
  return fixed(name, new DateDay(), values, (i, v) => a[i] = v, a, rivetMeta("date"));
}

/** time column from microseconds since midnight. */
export function timeCol(name: string, values: readonly (bigint | null)[]): Column {
  const a = new BigInt64Array(values.length);
  return fixed(name, new TimeMicrosecond(), values, (i, v) => a[i] = v, a, rivetMeta("time"));
}

/** timestamp / timestamptz column from microseconds since the epoch. */
export function timestampCol(
  name: string,
  tz: "UTC" | null,
  values: readonly (bigint | null)[],
): Column {
  const a = new BigInt64Array(values.length);
  return fixed(
    name,
    new TimestampMicrosecond(tz),
    values,
    (i, v) => a[i] = v,
    a,
    rivetMeta(tz === null ? "timestamp" : "timestamptz"),
  );
}

/** int4[] column: List<item: Int32>, NULL elements kept. */
export function int32ListCol(
  name: string,
  values: readonly (readonly (number | null)[] | null)[],
): Column {
  return listCol(name, values, int32Col, { "rivet.native_type": "int4[]" });
}

/** uuid[] column: List<item: FixedSizeBinary(16)> marked as the PostgreSQL source marks it. */
export function uuidListCol(
  name: string,
  values: readonly (readonly (string | null)[] | null)[],
): Column {
  return listCol(name, values, uuidCol, {
    "rivet.native_type": "uuid[]",
    "rivet.logical_type": "uuid",
  });
}

function listCol<T>(
  name: string,
  values: readonly (readonly (T | null)[] | null)[],
  element: (name: string, values: readonly (T | null)[]) => Column,
  metadata: Record<string, string>,
): Column {
  const child = element("item", values.flatMap((v) => v ?? []));
  const offsets = new Int32Array(values.length + 1);
  values.forEach((v, i) => offsets[i + 1] = offsets[i]! + (v?.length ?? 0));
  const type = new List(new Field("item", child.field.type, true));
  return {
    field: new Field(name, type, true, meta({ ...metadata, "rivet.fidelity": "compatible" })),
    data: makeData({
      type,
      length: values.length,
      valueOffsets: offsets,
      child: child.data,
      ...validity(values),
    }),
  };
}

/** Assembles columns of equal length into a batch. */
export function batchOf(columns: readonly Column[]): RecordBatch {
  const schema = new Schema(columns.map((c) => c.field));
  const length = columns[0]?.data.length ?? 0;
  return new RecordBatch(
    schema,
    makeData({
      type: new Struct(schema.fields),
      length,
      nullCount: 0,
      children: columns.map((c) => c.data),
    }),
  );
}

/** Micros since the epoch of a UTC civil time, via BigInt (independent of the code under test). */
export function micros(iso: string, fraction = 0): bigint {
  return BigInt(Date.parse(iso + "Z")) * 1000n + BigInt(fraction);
}

/**
 * Days since the epoch of a UTC civil date `YYYY-MM-DD` (proleptic Gregorian, via Date); a
 * leading `-` gives an astronomical negative year (`-0001` = 2 BC).
 */
export function days(iso: string): number {
  const negative = iso.startsWith("-");
  const [y, m, dd] = (negative ? iso.slice(1) : iso).split("-").map(Number) as [
    number,
    number,
    number,
  ];
  const d = new Date(0);
  d.setUTCFullYear(negative ? -y : y, m - 1, dd);
  return Math.round(d.getTime() / 86400000);
}

/** A memory sink collecting chunks. */
export function memorySink(): {
  sink: WritableStream<Uint8Array>;
  bytes(): Uint8Array;
  chunks: Uint8Array[];
} {
  const chunks: Uint8Array[] = [];
  return {
    chunks,
    sink: new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c) }),
    bytes() {
      const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let o = 0;
      for (const c of chunks) {
        out.set(c, o);
        o += c.length;
      }
      return out;
    },
  };
}
