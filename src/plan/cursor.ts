/**
 * Incremental cursor text: the stored form of the cursor column's value in the last row read.
 * Integers, float64 and strings as they are; timestamps `YYYY-MM-DDTHH:MM:SS.ffffff` (nine digits
 * for nanoseconds), no offset; dates `YYYY-MM-DD`; UUIDs hyphenated. Anything else (decimal,
 * float32, binary, …) has no cursor.
 *
 * Values are read raw from the Arrow buffers (bigint µs/ns, day numbers) and rendered with
 * integer arithmetic, so no precision goes through a JS `Date` or a float.
 *
 * Layer: plan (pure). Imports only `core/` and `plan/`.
 *
 * @module
 */
import {
  type DataType,
  DateUnit,
  Precision,
  type RecordBatch,
  TimeUnit,
  Type,
} from "../core/arrow.ts";
import { PermanentError } from "../core/errors.ts";
import { formatDay, MS_PER_DAY } from "./_calendar.ts";

const US_PER_DAY = 86_400_000_000n;
const NS_PER_DAY = 86_400_000_000_000n;

function pad(n: bigint | number, width: number): string {
  return String(n).padStart(width, "0");
}

/** Floor division and non-negative remainder, as `div_euclid`/`rem_euclid` for a positive divisor. */
function floorDivMod(a: bigint, b: bigint): [bigint, bigint] {
  const r = ((a % b) + b) % b;
  return [(a - r) / b, r];
}

function renderInstant(ticks: bigint, ticksPerDay: bigint, fractionDigits: 6 | 9): string {
  const [day, inDay] = floorDivMod(ticks, ticksPerDay);
  const ticksPerSecond = ticksPerDay / 86_400n;
  const seconds = inDay / ticksPerSecond;
  const fraction = inDay % ticksPerSecond;
  const hh = seconds / 3600n;
  const mm = (seconds % 3600n) / 60n;
  const ss = seconds % 60n;
  return `${formatDay(Number(day))}T${pad(hh, 2)}:${pad(mm, 2)}:${pad(ss, 2)}.${
    pad(fraction, fractionDigits)
  }`;
}

function asBigInt(value: unknown): bigint | undefined {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  return undefined;
}

/**
 * A float64 as Rust's `Display` prints it (shortest round-trip digits, never an exponent), so
 * cursors stored by the Rust tool and by rivet compare equal: `1e21` is `1000000000000000000000`,
 * `1e-7` is `0.0000001`.
 */
export function formatFloat64(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const text = String(x);
  const e = text.indexOf("e");
  if (e < 0) return text;
  const negative = text.startsWith("-");
  const mantissa = text.slice(negative ? 1 : 0, e);
  const exponent = Number(text.slice(e + 1));
  const dot = mantissa.indexOf(".");
  const digits = mantissa.replace(".", "");
  const point = (dot < 0 ? mantissa.length : dot) + exponent;
  let out: string;
  if (point <= 0) out = `0.${"0".repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + "0".repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return negative ? `-${out}` : out;
}

/**
 * Renders one raw Arrow value of the cursor column as the stored cursor text.
 *
 * @param value The raw value: a number or bigint for integers and floats, the raw tick count
 *   (bigint or safe-integer number) for timestamps in the type's unit, the day number for
 *   `DateDay`, milliseconds for `DateMillisecond`, a string for Utf8, 16 bytes for a UUID.
 * @param type The column's Arrow type.
 * @returns The cursor text, or undefined when the value is null or the type has no cursor.
 *
 * @example
 * ```ts
 * import { TimestampMicrosecond } from "../core/arrow.ts";
 * import { renderCursor } from "./cursor.ts";
 * const text = renderCursor(-1n, new TimestampMicrosecond());
 * if (text !== "1969-12-31T23:59:59.999999") throw new Error(text);
 * ```
 */
export function renderCursor(value: unknown, type: DataType): string | undefined {
  if (value === null || value === undefined) return undefined;
  switch (type.typeId) {
    case Type.Int: {
      const v = asBigInt(value);
      return v === undefined ? undefined : String(v);
    }
    case Type.Float:
      // float16/float32 cursors would round-trip through a decimal text badly: no cursor.
      return (type as DataType<Type.Float> & { precision: Precision }).precision ===
            Precision.DOUBLE && typeof value === "number"
        ? formatFloat64(value)
        : undefined;
    case Type.Utf8:
    case Type.LargeUtf8:
      return typeof value === "string" ? value : undefined;
    case Type.Timestamp: {
      const ticks = asBigInt(value);
      if (ticks === undefined) return undefined;
      switch ((type as DataType<Type.Timestamp> & { unit: TimeUnit }).unit) {
        case TimeUnit.NANOSECOND:
          return renderInstant(ticks, NS_PER_DAY, 9);
        case TimeUnit.MICROSECOND:
          return renderInstant(ticks, US_PER_DAY, 6);
        case TimeUnit.MILLISECOND:
          return renderInstant(ticks * 1_000n, US_PER_DAY, 6);
        case TimeUnit.SECOND:
          return renderInstant(ticks * 1_000_000n, US_PER_DAY, 6);
      }
      return undefined;
    }
    case Type.Date: {
      const raw = asBigInt(value);
      if (raw === undefined) return undefined;
      const unit = (type as DataType<Type.Date> & { unit: DateUnit }).unit;
      const day = unit === DateUnit.DAY ? raw : floorDivMod(raw, BigInt(MS_PER_DAY))[0];
      return formatDay(Number(day));
    }
    case Type.FixedSizeBinary: {
      // The sources map exactly one type to FixedSizeBinary(16): UUID (PG uuid, SQL Server
      // uniqueidentifier, MySQL `columns: uuid`).
      if ((type as DataType<Type.FixedSizeBinary> & { byteWidth: number }).byteWidth !== 16) {
        return undefined;
      }
      if (!(value instanceof Uint8Array) || value.length !== 16) return undefined;
      let hex = "";
      for (const byte of value) hex += byte.toString(16).padStart(2, "0");
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
        hex.slice(20)
      }`;
    }
    default:
      return undefined;
  }
}

/** Types whose raw value is read from the values buffer rather than through `Vector.get`. */
function readsRawBuffer(type: DataType): boolean {
  return type.typeId === Type.Timestamp || type.typeId === Type.Date;
}

/**
 * The cursor of a batch: the rendered value of `column` in its last row that is not NULL.
 * Rows arrive ordered by the cursor, so that is the batch's high-water mark. Skipping trailing
 * NULLs matters on PostgreSQL, which sorts NULLs last: the last row alone would leave the
 * cursor unset and make every run re-read the table (later Rust releases fixed it the same way).
 *
 * @param batch A batch of the incremental statement's result.
 * @param column The cursor column (`_rivet_coalesced_cursor` in coalesce mode).
 * @returns The cursor text, or undefined (empty batch, all NULL, or a type with no cursor).
 * @throws {PermanentError} `plan.cursor_column_missing` when the result has no such column.
 */
export function lastCursorOf(batch: RecordBatch, column: string): string | undefined {
  const index = batch.schema.fields.findIndex((f) => f.name === column);
  if (index < 0 || batch.getChildAt(index) === null) {
    throw new PermanentError(
      `Cursor column '${column}' is not in the query result; select it in the query or fix cursor_column`,
      { code: "plan.cursor_column_missing" },
    );
  }
  for (let row = batch.numRows - 1; row >= 0; row--) {
    const text = renderCellAt(batch, index, row);
    if (text !== undefined) return text;
  }
  return undefined;
}

/**
 * The cursor rendering (see the module doc) of one cell, or undefined for NULL and types without
 * a rendering.
 * Used by the boundary probes of chunked and partitioned exports as well as by cursors.
 *
 * @param batch A record batch.
 * @param columnIndex The column's position.
 * @param row The row.
 * @returns The rendered value.
 */
export function renderCellAt(
  batch: RecordBatch,
  columnIndex: number,
  row: number,
): string | undefined {
  const vector = batch.getChildAt(columnIndex);
  if (vector === null || row < 0 || row >= vector.length || !vector.isValid(row)) return undefined;
  const type = vector.type as DataType;
  if (!readsRawBuffer(type)) return renderCursor(vector.get(row), type);
  // Vector.get() converts timestamps to float milliseconds; the buffer keeps the exact ticks.
  let offset = row;
  for (const data of vector.data) {
    if (offset < data.length) return renderCursor(data.values[offset], type);
    offset -= data.length;
  }
  return undefined;
}
