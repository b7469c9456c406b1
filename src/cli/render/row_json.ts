/**
 * One Arrow row as a JSON object, for `rivet cdc`'s NDJSON: values keep their meaning without
 * losing precision. Integers beyond ±2^53 and decimals are strings (exact digits); dates,
 * times and timestamps are ISO-8601 text with the column's precision (`Z` when the column is
 * zoned); binary is lowercase hex, a uuid its 36-character form; NaN and infinities are strings.
 *
 * Layer: cli (render).
 *
 * @module
 */
import { type Data, type DataType, type RecordBatch, Type } from "../../core/arrow.ts";

/** A JSON value. */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const SAFE = 2n ** 53n;

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

function integer(value: bigint): number | string {
  return value > -SAFE && value < SAFE ? Number(value) : value.toString();
}

function float(value: number): number | string {
  return Number.isFinite(value) ? value : String(value);
}

/** `digits` with the decimal point `scale` places from the right. */
function withScale(value: bigint, scale: number): string {
  const negative = value < 0n;
  let digits = (negative ? -value : value).toString();
  if (scale > 0) {
    digits = digits.padStart(scale + 1, "0");
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  } else if (scale < 0) digits += "0".repeat(-scale);
  return negative ? `-${digits}` : digits;
}

/** A 128-bit two's complement integer from four little-endian 32-bit words. */
function int128(words: Uint32Array, at: number): bigint {
  let value = 0n;
  for (let w = 3; w >= 0; w--) value = (value << 32n) | BigInt(words[at + w]!);
  return BigInt.asIntN(128, value);
}

/** `HH:MM:SS` plus a fraction of `digits` digits from a count of `unitsPerSecond`. */
function clock(total: bigint, unitsPerSecond: bigint, digits: number): string {
  const seconds = total / unitsPerSecond;
  const fraction = total % unitsPerSecond;
  const h = seconds / 3600n, m = (seconds / 60n) % 60n, s = seconds % 60n;
  const two = (v: bigint) => v.toString().padStart(2, "0");
  const frac = digits > 0 ? `.${fraction.toString().padStart(digits, "0")}` : "";
  return `${two(h)}:${two(m)}:${two(s)}${frac}`;
}

function dateOfDays(days: number): string {
  return new Date(days * 86_400_000).toISOString().slice(0, 10);
}

/** Units per second of an Arrow time unit (0 s, 1 ms, 2 µs, 3 ns) and its fraction digits. */
function unitScale(unit: number): [bigint, number] {
  return [[1n, 0], [1_000n, 3], [1_000_000n, 6], [1_000_000_000n, 9]][unit] as [bigint, number];
}

function timestamp(value: bigint, unit: number, zoned: boolean): string {
  const [perSecond, digits] = unitScale(unit);
  let days = value / (perSecond * 86_400n);
  let rest = value % (perSecond * 86_400n);
  if (rest < 0n) {
    rest += perSecond * 86_400n;
    days -= 1n;
  }
  return `${dateOfDays(Number(days))}T${clock(rest, perSecond, digits)}${zoned ? "Z" : ""}`;
}

/** The JSON of row `i` of one column's data. */
function cell(data: Data, i: number, logical: string | undefined): Json {
  if (!data.getValid(i)) return null;
  const type: DataType = data.type;
  const at = data.offset + i;
  const values = data.values as ArrayLike<number | bigint> & { subarray?: unknown };
  switch (type.typeId) {
    case Type.Bool:
      return ((data.values as Uint8Array)[at >> 3]! & (1 << (at & 7))) !== 0;
    case Type.Int: {
      const v = values[at]!;
      return typeof v === "bigint" ? integer(v) : v;
    }
    case Type.Float:
      return float(Number(values[at]!));
    case Type.Decimal: {
      const scale = (type as DataType & { scale: number }).scale;
      return withScale(int128(data.values as Uint32Array, at * 4), scale);
    }
    case Type.Utf8: {
      const offsets = data.valueOffsets as Int32Array;
      const bytes = (data.values as Uint8Array).subarray(offsets[at]!, offsets[at + 1]!);
      const text = new TextDecoder().decode(bytes);
      if (logical === "json") {
        try {
          return JSON.parse(text) as Json;
        } catch {
          return text;
        }
      }
      return text;
    }
    case Type.Binary: {
      const offsets = data.valueOffsets as Int32Array;
      return hex((data.values as Uint8Array).subarray(offsets[at]!, offsets[at + 1]!));
    }
    case Type.FixedSizeBinary: {
      const width = (type as DataType & { byteWidth: number }).byteWidth;
      const h = hex((data.values as Uint8Array).subarray(at * width, (at + 1) * width));
      return logical === "uuid" && width === 16
        ? `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
        : h;
    }
    case Type.Date: {
      const unit = (type as DataType & { unit: number }).unit;
      return unit === 0
        ? dateOfDays(Number(values[at]!))
        : new Date(Number(values[at]!)).toISOString().slice(0, 10);
    }
    case Type.Time: {
      const [perSecond, digits] = unitScale((type as DataType & { unit: number }).unit);
      return clock(BigInt(values[at]!), perSecond, digits);
    }
    case Type.Timestamp: {
      const t = type as DataType & { unit: number; timezone?: string | null };
      return timestamp(BigInt(values[at]!), t.unit, Boolean(t.timezone));
    }
    case Type.List: {
      const offsets = data.valueOffsets as Int32Array;
      const child = data.children[0]!;
      const out: Json[] = [];
      for (let k = offsets[at]!; k < offsets[at + 1]!; k++) {
        out.push(cell(child, k - child.offset, undefined));
      }
      return out;
    }
    case Type.Struct: {
      const out: Record<string, Json> = {};
      const fields = (type as DataType & { children: { name: string }[] }).children;
      fields.forEach((f, k) =>
        out[f.name] = cell(data.children[k]!, at - data.children[k]!.offset, undefined)
      );
      return out;
    }
    default:
      return String(values?.[at] ?? "");
  }
}

/**
 * Row `i` of `batch` as a JSON object keyed by column name.
 *
 * @param batch The batch.
 * @param i The row.
 * @returns The object, every value JSON-safe.
 */
export function rowJson(batch: RecordBatch, i: number): Record<string, Json> {
  const out: Record<string, Json> = {};
  batch.schema.fields.forEach((field, c) => {
    const data = batch.data.children[c]!;
    out[field.name] = cell(data, i, field.metadata.get("rivet.logical_type"));
  });
  return out;
}
