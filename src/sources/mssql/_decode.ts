/**
 * Exact value decoding for the SQL Server source, hooked into tedious' own row parser.
 *
 * tedious turns decimal/numeric and money into JS floats (lossy past 2^53), bigint into decimal
 * text, the date/time family into `Date` (milliseconds) plus a float `nanosecondsDelta`, and
 * uniqueidentifier into upper-case text. Its ROW, NBCROW and RETURNVALUE readers look `readValue`
 * up on the CommonJS exports of `lib/value-parser.js` at every call, so replacing that property
 * changes how every later value is read. The replacement reads the wire bytes of the types that
 * must be exact and hands everything else to tedious' original:
 *
 * - decimal/numeric, money, smallmoney: `Uint32Array(4)`, the unscaled value as Arrow's
 *   Decimal128 words (little-endian two's complement); money is the wire's value × 10⁴;
 * - bigint: a JS `bigint` read from the 8 bytes;
 * - date, time, datetime2, datetimeoffset, datetime, smalldatetime: {@linkcode DayTicks};
 * - uniqueidentifier: `Uint8Array(16)` in RFC 4122 byte order.
 *
 * Length prefixes and NULL markers are read exactly as tedious reads them, with its own helpers,
 * so a value cut by a packet boundary throws tedious' `NotEnoughDataError` and the parser retries
 * once more bytes arrived, as it does for its own values. Bytes are always copied out: no value
 * keeps a view into tedious' receive buffer.
 *
 * The hook is process-wide: once installed, every tedious connection of the process gets these
 * forms for these types (sql_variant values still go through tedious, whatever they hold).
 *
 * Layer: sources (SQL Server).
 *
 * @module
 */
import valueParser from "tedious/lib/value-parser.js";
import helpers from "tedious/lib/token/helpers.js";

/** A date/time value: whole days since 1970-01-01 and 100 ns units since that midnight. */
export interface DayTicks {
  /** Days since 1970-01-01 (negative before it). */
  readonly days: number;
  /** 100 ns units since midnight, 0 ≤ ticks < 864e9 (exact in a double). */
  readonly ticks: number;
}

/** 100 ns units in one day. */
export const TICKS_PER_DAY = 864_000_000_000;

/** Day number of 1970-01-01 counted from 0001-01-01 (the epoch of date, datetime2, …). */
const DAYS_0001_TO_1970 = 719_162;
/** Day number of 1900-01-01 relative to 1970-01-01 (the epoch of datetime, smalldatetime). */
const DAYS_1970_FROM_1900 = -25_567;
const TICKS_PER_MINUTE = 600_000_000;
/** 10^(7 - scale): a time value of `scale` fractional digits in 100 ns units. */
const TICK_FACTOR = [10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];

type ReadValue = typeof valueParser.readValue;
type Buf = Parameters<ReadValue>[0];
type Meta = Parameters<ReadValue>[2];
type Result = ReturnType<ReadValue>;

const { Result: TdsResult, NotEnoughDataError } = helpers;
const MARK: unique symbol = Symbol.for("rivet.mssql.exactReadValue");

function result(value: unknown, offset: number): Result {
  return new TdsResult(value, offset);
}

function need(buf: Buf, end: number): void {
  if (buf.length < end) throw new NotEnoughDataError(end);
}

/**
 * decimal/numeric body: a sign byte (1 positive, 0 negative) and 4, 8, 12 or 16 bytes of
 * little-endian magnitude; `length` counts the sign byte.
 */
function readDecimal(buf: Buf, offset: number, length: number): Result {
  if (length !== 5 && length !== 9 && length !== 13 && length !== 17) {
    throw new Error(`Unsupported numeric dataLength ${length}`);
  }
  const end = offset + length;
  need(buf, end);
  const out = new Uint32Array(4);
  for (let w = 0, p = offset + 1; p < end; w++, p += 4) out[w] = buf.readUInt32LE(p);
  if (buf[offset] !== 1) negate128(out);
  return result(out, end);
}

/** Two's complement negation of four little-endian 32-bit words, in place. */
export function negate128(words: Uint32Array): void {
  let carry = 1;
  for (let i = 0; i < 4; i++) {
    const v = (~words[i]! >>> 0) + carry;
    words[i] = v >>> 0;
    carry = v > 0xffffffff ? 1 : 0;
  }
}

/** money: the value × 10⁴ as a signed high half, then the unsigned low half. */
function readMoney(buf: Buf, offset: number): Result {
  need(buf, offset + 8);
  const high = buf.readInt32LE(offset);
  const sign = high < 0 ? 0xffffffff : 0;
  return result(Uint32Array.of(buf.readUInt32LE(offset + 4), high >>> 0, sign, sign), offset + 8);
}

/** smallmoney: the value × 10⁴ as a signed 32-bit integer. */
function readSmallMoney(buf: Buf, offset: number): Result {
  need(buf, offset + 4);
  const v = buf.readInt32LE(offset);
  const sign = v < 0 ? 0xffffffff : 0;
  return result(Uint32Array.of(v >>> 0, sign, sign, sign), offset + 4);
}

function readBigInt(buf: Buf, offset: number): Result {
  return helpers.readBigInt64LE(buf, offset);
}

/** datetime: signed days since 1900-01-01, then 1/300 s since midnight. */
function readDateTime(buf: Buf, offset: number): Result {
  need(buf, offset + 8);
  const days = buf.readInt32LE(offset) + DAYS_1970_FROM_1900;
  const t = buf.readUInt32LE(offset + 4);
  // 1/300 s = 100000/3 ticks, rounded to the nearest tick as SQL Server converts datetime to
  // datetime2 (tick 1 → .0033333 s, 299 → .9966667 s); a third never lands on a half.
  const ticks = Math.floor((t * 200_000 + 3) / 6);
  return result({ days, ticks } satisfies DayTicks, offset + 8);
}

/** smalldatetime: unsigned days since 1900-01-01, then minutes since midnight. */
function readSmallDateTime(buf: Buf, offset: number): Result {
  need(buf, offset + 4);
  const days = buf.readUInt16LE(offset) + DAYS_1970_FROM_1900;
  const ticks = buf.readUInt16LE(offset + 2) * TICKS_PER_MINUTE;
  return result({ days, ticks } satisfies DayTicks, offset + 4);
}

/** The time part of time, datetime2 and datetimeoffset: 3 to 5 bytes in units of 10^-scale s. */
function readTicks(buf: Buf, offset: number, length: number, scale: number): number {
  if (length < 3 || length > 5 || !(scale >= 0 && scale <= 7)) {
    throw new Error(`Unsupported time length ${length} for scale ${scale}`);
  }
  need(buf, offset + length);
  return buf.readUIntLE(offset, length) * TICK_FACTOR[scale]!;
}

/** Days since 0001-01-01 as 3 bytes, relative to 1970-01-01. */
function readDays(buf: Buf, offset: number): number {
  need(buf, offset + 3);
  return buf.readUIntLE(offset, 3) - DAYS_0001_TO_1970;
}

/**
 * time, date, datetime2 and datetimeoffset after their length byte (`length` > 0). The time of
 * datetimeoffset is already UTC on the wire; its trailing offset in minutes only says how it was
 * written, so it is skipped.
 */
function readTemporal(buf: Buf, offset: number, length: number, meta: Meta): Result {
  const scale = meta.scale ?? 7;
  switch (meta.type.name) {
    case "Date":
      return result({ days: readDays(buf, offset), ticks: 0 } satisfies DayTicks, offset + 3);
    case "Time":
      return result(
        { days: 0, ticks: readTicks(buf, offset, length, scale) } satisfies DayTicks,
        offset + length,
      );
    default: {
      // datetime2 (time + 3 day bytes) and datetimeoffset (+ 2 offset bytes).
      const timeLength = length - (meta.type.name === "DateTime2" ? 3 : 5);
      need(buf, offset + length);
      const ticks = readTicks(buf, offset, timeLength, scale);
      const days = readDays(buf, offset + timeLength);
      return result({ days, ticks } satisfies DayTicks, offset + length);
    }
  }
}

/** SQL Server sends the first three groups little-endian; RFC 4122 order is big-endian. */
const GUID_ORDER = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];

function readGuid(buf: Buf, offset: number): Result {
  need(buf, offset + 16);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = buf[offset + GUID_ORDER[i]!]!;
  return result(out, offset + 16);
}

/**
 * Reads the length byte of a nullable type and picks the reader for its body (tedious' own for
 * tinyint/smallint/int).
 *
 * @returns The value, or NULL for length 0.
 */
function readByLength(
  buf: Buf,
  offset: number,
  meta: Meta,
  original: ReadValue,
  options: Parameters<ReadValue>[3],
): Result {
  const { value: length, offset: at } = helpers.readUInt8(buf, offset);
  if (length === 0) return result(null, at);
  switch (meta.type.name) {
    case "IntN":
      // Only bigint needs help; tinyint/smallint/int are exact as tedious reads them.
      return length === 8 ? readBigInt(buf, at) : original(buf, offset, meta, options);
    case "MoneyN":
      if (length === 8) return readMoney(buf, at);
      if (length === 4) return readSmallMoney(buf, at);
      throw new Error(`Unsupported dataLength ${length} for MoneyN`);
    case "DateTimeN":
      if (length === 8) return readDateTime(buf, at);
      if (length === 4) return readSmallDateTime(buf, at);
      throw new Error(`Unsupported dataLength ${length} for DateTimeN`);
    case "UniqueIdentifier":
      if (length === 16) return readGuid(buf, at);
      throw new Error(`Unsupported guid size ${length}`);
    case "Date":
    case "Time":
    case "DateTime2":
    case "DateTimeOffset":
      return readTemporal(buf, at, length, meta);
    default:
      // DecimalN / NumericN and the legacy Decimal / Numeric ids (tedious' metadata parser
      // refuses the latter today; were they to arrive, they have the same length-prefixed form).
      return readDecimal(buf, at, length);
  }
}

function exactReader(original: ReadValue): ReadValue {
  const read: ReadValue = (buf, offset, meta, options) => {
    switch (meta.type.name) {
      case "BigInt":
        return readBigInt(buf, offset);
      case "Money":
        return readMoney(buf, offset);
      case "SmallMoney":
        return readSmallMoney(buf, offset);
      case "DateTime":
        return readDateTime(buf, offset);
      case "SmallDateTime":
        return readSmallDateTime(buf, offset);
      case "IntN":
      case "MoneyN":
      case "DateTimeN":
      case "UniqueIdentifier":
      case "Date":
      case "Time":
      case "DateTime2":
      case "DateTimeOffset":
      case "DecimalN":
      case "NumericN":
      case "Decimal":
      case "Numeric":
        return readByLength(buf, offset, meta, original, options);
      default:
        return original(buf, offset, meta, options);
    }
  };
  Object.defineProperty(read, MARK, { value: original });
  return read;
}

/**
 * Makes tedious' row parser return exact values (see the module description) for every
 * connection of the process. Safe to call any number of times.
 *
 * @example
 * ```ts
 * import { installExactDecoders } from "./_decode.ts";
 * installExactDecoders();
 * installExactDecoders(); // no effect the second time
 * ```
 */
export function installExactDecoders(): void {
  const current = valueParser.readValue;
  if (MARK in current) return;
  valueParser.readValue = exactReader(current);
}

/**
 * tedious' own `readValue`, as it was before {@linkcode installExactDecoders}.
 *
 * @returns The original reader (the current one when nothing was installed).
 */
export function originalReadValue(): ReadValue {
  const current = valueParser.readValue as ReadValue & { [MARK]?: ReadValue };
  return current[MARK] ?? current;
}
