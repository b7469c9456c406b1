/**
 * Test support (TDS test server): one column value on the wire. Input is PostgreSQL's text
 * output of the stored value (or the canonical text this server stores datetime2(7), time(7) and
 * datetimeoffset in); output is SQL Server's encoding: money as (high, low) of value × 10⁴,
 * datetime as days since 1900 and 1/300-second ticks, date as 3-byte days since 0001-01-01,
 * time/datetime2/datetimeoffset as 10⁻ⁿ-second units, decimal as sign + magnitude, GUIDs with
 * their first three groups little-endian.
 *
 * @module
 */
import { Writer } from "./wire.ts";
import { decimalLength, isPlp, type SqlType } from "./types.ts";

const text = new TextDecoder();

/** Days from 0001-01-01 (proleptic Gregorian) to y-m-d. */
export function daysFromYearOne(y: number, m: number, d: number): number {
  // Days from civil (H. Hinnant), shifted from 1970-01-01 to 0001-01-01.
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468 + 719162;
}

/** A date and time of day split out of text, with an optional offset in minutes. */
interface Moment {
  days: number;
  /** 100-ns units since midnight. */
  ticks: bigint;
  offset?: number;
}

const MOMENT =
  /^(\d{4,})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(?:(Z)|([+-])(\d{2})(?::?(\d{2}))?)?$/;
const TIME = /^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/;

function fractionTicks(f: string | undefined): bigint {
  return BigInt(((f ?? "") + "0000000").slice(0, 7));
}

/** Parses `YYYY-MM-DD[ HH:MM[:SS[.f…]]][ ±HH[:MM]|Z]` (PostgreSQL output or canonical text). */
export function parseMoment(s: string): Moment {
  const m = MOMENT.exec(s.trim());
  if (!m) throw new Error(`not a date/time value: ${s}`);
  const days = daysFromYearOne(Number(m[1]), Number(m[2]), Number(m[3]));
  const secs = BigInt(Number(m[4] ?? 0) * 3600 + Number(m[5] ?? 0) * 60 + Number(m[6] ?? 0));
  const ticks = secs * 10_000_000n + fractionTicks(m[7]);
  const offset = m[8]
    ? 0
    : m[9]
    ? (m[9] === "-" ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11] ?? 0))
    : undefined;
  return offset === undefined ? { days, ticks } : { days, ticks, offset };
}

function parseTime(s: string): bigint {
  const m = TIME.exec(s.trim());
  if (!m) throw new Error(`not a time value: ${s}`);
  const secs = BigInt(Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3] ?? 0));
  return secs * 10_000_000n + fractionTicks(m[4]);
}

const TICKS_PER_DAY = 864_000_000_000n;

/** Time of day in 10⁻ⁿ s units, as `time(n)` puts it on the wire (3, 4 or 5 bytes). */
function writeTimeUnits(w: Writer, ticks: bigint, scale: number): void {
  const units = ticks / 10n ** BigInt(7 - scale);
  w.uint(units, timeLength(scale));
}

/** Bytes of a time value at a scale. */
export function timeLength(scale: number): number {
  return scale <= 2 ? 3 : scale <= 4 ? 4 : 5;
}

/** Parses a decimal text into (negative, digits scaled to `scale`). */
export function scaledDecimal(s: string, scale: number): { negative: boolean; units: bigint } {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:e([+-]?\d+))?$/i.exec(s.trim());
  if (!m) throw new Error(`not a decimal value: ${s}`);
  let digits = (m[2] ?? "") + (m[3] ?? "");
  let exp = Number(m[4] ?? 0) - (m[3] ?? "").length + scale;
  if (exp >= 0) digits += "0".repeat(exp);
  else {
    // Rounds half away from zero, as SQL Server does on conversion.
    exp = -exp;
    const keep = digits.length - exp;
    const roundUp = keep >= 0 && keep < digits.length && Number(digits[keep]) >= 5;
    digits = keep > 0 ? digits.slice(0, keep) : "0";
    if (roundUp) digits = (BigInt(digits) + 1n).toString();
  }
  return { negative: m[1] === "-", units: BigInt(digits || "0") };
}

/** Scale of a decimal text (digits after the point). */
export function decimalScale(s: string): number {
  const dot = s.indexOf(".");
  return dot < 0 ? 0 : s.length - dot - 1;
}

const CP1252_HIGH = "€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ";

/** Encodes text in code page 1252 (Latin1_General collations); unmappable characters become '?'. */
export function cp1252(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80 || (c >= 0xa0 && c <= 0xff)) out[i] = c;
    else {
      const at = CP1252_HIGH.indexOf(s[i]!);
      out[i] = at >= 0 ? 0x80 + at : 0x3f;
    }
  }
  return out;
}

function utf16(s: string): Uint8Array {
  const w = new Writer();
  w.ucs2(s);
  return w.view().slice();
}

/** GUID text to SQL Server's byte order: the first three groups little-endian. */
export function guidBytes(s: string): Uint8Array {
  const hex = s.replace(/[{}-]/g, "");
  const b = Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
  return new Uint8Array([b[3]!, b[2]!, b[1]!, b[0]!, b[5]!, b[4]!, b[7]!, b[6]!, ...b.slice(8)]);
}

function bytea(s: string): Uint8Array {
  if (!s.startsWith("\\x")) return new TextEncoder().encode(s);
  const hex = s.slice(2);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

/** The bytes a string or binary type sends. */
function payload(t: SqlType, s: string): Uint8Array {
  switch (t.name) {
    case "char":
    case "varchar":
    case "text":
      return cp1252(s);
    case "nchar":
    case "nvarchar":
    case "ntext":
    case "xml":
      return utf16(s);
    default:
      return bytea(s);
  }
}

function writePlp(w: Writer, data: Uint8Array | null): void {
  if (data === null) {
    w.u64(0xffffffffffffffffn);
    return;
  }
  w.u64(BigInt(data.length));
  if (data.length > 0) w.u32(data.length).bytes(data);
  w.u32(0);
}

const DATETIME_EPOCH = daysFromYearOne(1900, 1, 1);

/**
 * Writes one column value of a ROW/NBCROW token. `raw` is PostgreSQL's text output (null for
 * NULL; in an NBCROW a NULL is in the bitmap and never reaches here).
 */
export function writeValue(w: Writer, t: SqlType, raw: Uint8Array | null): void {
  const s = raw === null ? null : text.decode(raw);
  if (isPlp(t)) {
    writePlp(w, s === null ? null : payload(t, s));
    return;
  }
  if (s === null) {
    writeNull(w, t);
    return;
  }
  switch (t.name) {
    case "bit":
      w.u8(1).u8(s === "t" || s === "1" || s === "true" ? 1 : 0);
      return;
    case "tinyint":
      w.u8(1).u8(Number(s));
      return;
    case "smallint":
      w.u8(2).i16(Number(s));
      return;
    case "int":
      w.u8(4).i32(Number(s));
      return;
    case "bigint":
      w.u8(8).i64(BigInt(s));
      return;
    case "real":
      w.u8(4).f32(Number(s));
      return;
    case "float":
      w.u8(8).f64(Number(s));
      return;
    case "money": {
      const { negative, units } = scaledDecimal(s, 4);
      const v = BigInt.asUintN(64, negative ? -units : units);
      w.u8(8).u32(Number(v >> 32n)).u32(Number(v & 0xffffffffn));
      return;
    }
    case "smallmoney": {
      const { negative, units } = scaledDecimal(s, 4);
      w.u8(4).i32(Number(negative ? -units : units));
      return;
    }
    case "decimal":
    case "numeric": {
      const { negative, units } = scaledDecimal(s, t.scale!);
      const len = decimalLength(t.precision!);
      w.u8(len).u8(negative && units !== 0n ? 0 : 1).uint(units, len - 1);
      return;
    }
    case "date":
      w.u8(3).u24(parseMoment(s).days);
      return;
    case "datetime": {
      const m = parseMoment(s);
      // 1/300-second ticks, rounded as SQL Server stores them (.000, .003, .007).
      w.u8(8).i32(m.days - DATETIME_EPOCH).u32(Math.round(Number(m.ticks) * 3 / 100_000));
      return;
    }
    case "smalldatetime": {
      const m = parseMoment(s);
      w.u8(4).u16(m.days - DATETIME_EPOCH).u16(Number(m.ticks / 600_000_000n));
      return;
    }
    case "time":
      w.u8(timeLength(t.scale!));
      writeTimeUnits(w, parseTime(s), t.scale!);
      return;
    case "datetime2": {
      const m = parseMoment(s);
      w.u8(timeLength(t.scale!) + 3);
      writeTimeUnits(w, m.ticks, t.scale!);
      w.u24(m.days);
      return;
    }
    case "datetimeoffset": {
      const m = parseMoment(s);
      const offset = m.offset ?? 0;
      // The wire carries UTC plus the offset.
      let utc = BigInt(m.days) * TICKS_PER_DAY + m.ticks - BigInt(offset) * 600_000_000n;
      const days = utc / TICKS_PER_DAY;
      utc -= days * TICKS_PER_DAY;
      w.u8(timeLength(t.scale!) + 5);
      writeTimeUnits(w, utc, t.scale!);
      w.u24(Number(days)).i16(offset);
      return;
    }
    case "uniqueidentifier":
      w.u8(16).bytes(guidBytes(s));
      return;
    case "char":
    case "varchar":
    case "nchar":
    case "nvarchar":
    case "binary":
    case "varbinary": {
      const data = payload(t, s);
      w.u16(data.length).bytes(data);
      return;
    }
    case "text":
    case "ntext":
    case "image": {
      // A 16-byte text pointer and an 8-byte timestamp precede the data; clients ignore both.
      const data = payload(t, s);
      w.u8(16).bytes(new Uint8Array(16).fill(0xaa)).bytes(new Uint8Array(8));
      w.u32(data.length).bytes(data);
      return;
    }
    case "sql_variant": {
      // Served as an nvarchar(4000) variant: base type, property bytes, max length, collation.
      const data = utf16(s);
      w.u32(2 + 7 + data.length).u8(0xe7).u8(7).u16(8000);
      w.bytes(new Uint8Array([0x09, 0x04, 0xd0, 0x00, 0x00])).bytes(data);
      return;
    }
    default:
      throw new Error(`cannot encode a ${t.name} value`);
  }
}

function writeNull(w: Writer, t: SqlType): void {
  switch (t.name) {
    case "char":
    case "varchar":
    case "nchar":
    case "nvarchar":
    case "binary":
    case "varbinary":
      w.u16(0xffff);
      return;
    case "text":
    case "ntext":
    case "image":
      w.u8(0);
      return;
    case "sql_variant":
      w.u32(0);
      return;
    default:
      w.u8(0);
  }
}

/** `YYYY-MM-DD` of a day count from 0001-01-01 (inverse of {@linkcode daysFromYearOne}). */
export function dateOfDays(days: number): string {
  // 2000-01-01 is day 730119; a Date counted from there covers years 1 to 9999 exactly.
  return new Date(Date.UTC(2000, 0, 1) + (days - 730119) * 86_400_000).toISOString().slice(0, 10);
}

/** `HH:MM:SS.fffffff` of 100-ns ticks since midnight. */
export function clockOfTicks(ticks: bigint): string {
  const secs = Number(ticks / 10_000_000n);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${pad(Math.floor(secs / 3600))}:${pad(Math.floor(secs / 60) % 60)}:${pad(secs % 60)}.${
    String(ticks % 10_000_000n).padStart(7, "0")
  }`;
}
