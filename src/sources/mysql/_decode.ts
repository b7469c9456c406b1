/**
 * Pure value decoders for the MySQL/MariaDB binary protocol: decimal text to a 128-bit unscaled
 * integer (never through a JS float), calendar dates to epoch days, 64-bit microseconds as two
 * 32-bit halves, textual UUIDs to 16 bytes.
 *
 * @module
 */

/** Outcome of {@linkcode parseDecimal}. */
export const DecimalStatus = { Ok: 0, Invalid: 1, Overflow: 2, Truncated: 3 } as const;

const TWO32 = 4294967296;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/**
 * Parses decimal text (`-123.45`, `0.5`, `7`) into the unscaled integer `value × 10^scale`,
 * written as 4 little-endian u32 words (Arrow Decimal128 layout).
 *
 * Missing fractional digits are padded with zeros; extra ones must be zeros (MySQL sends exactly
 * the column's scale, so extra non-zero digits only occur with a narrower `columns:` override).
 *
 * @param bytes ASCII bytes holding the value.
 * @param start First byte of the value.
 * @param end One past its last byte.
 * @param target Precision and scale of the Arrow column; `out`/`at` where to write (word index).
 * @returns A {@linkcode DecimalStatus}.
 *
 * @example
 * ```ts
 * import { DecimalStatus, parseDecimal } from "./_decode.ts";
 * const out = new Uint32Array(4);
 * const text = new TextEncoder().encode("-1.5");
 * const s = parseDecimal(text, 0, text.length, { precision: 5, scale: 2, out, at: 0 });
 * if (s !== DecimalStatus.Ok || out[0] !== 0xffffff6a || out[3] !== 0xffffffff) throw new Error();
 * ```
 */
export function parseDecimal(
  bytes: Uint8Array,
  start: number,
  end: number,
  target: { precision: number; scale: number; out: Uint32Array; at: number },
): number {
  let p = start;
  let negative = false;
  if (p < end && (bytes[p] === 45 || bytes[p] === 43)) {
    negative = bytes[p] === 45;
    p++;
  }
  const scale = target.scale;
  // Digits of the unscaled value, leading zeros skipped; a number while exact, words beyond.
  let acc = 0;
  let digits = 0;
  let fraction = -1; // fractional digits read so far, -1 before the point
  let sawDigit = false;
  let big: Uint32Array | undefined;
  for (; p < end; p++) {
    const c = bytes[p]!;
    if (c === 46 /* . */) {
      if (fraction >= 0) return DecimalStatus.Invalid;
      fraction = 0;
      continue;
    }
    const d = c - 48;
    if (d < 0 || d > 9) return DecimalStatus.Invalid;
    sawDigit = true;
    if (fraction >= 0) {
      if (fraction >= scale) {
        if (d !== 0) return DecimalStatus.Truncated;
        continue;
      }
      fraction++;
    }
    if (digits === 0 && d === 0) continue;
    digits++;
    if (big === undefined) {
      const next = acc * 10 + d;
      if (next <= MAX_SAFE) {
        acc = next;
        continue;
      }
      big = wordsOf(acc);
    }
    mulAdd(big, 10, d);
  }
  if (!sawDigit) return DecimalStatus.Invalid;
  // Pad the missing fractional digits.
  for (let f = Math.max(fraction, 0); f < scale; f++) {
    if (digits === 0) continue;
    digits++;
    if (big === undefined) {
      const next = acc * 10;
      if (next <= MAX_SAFE) {
        acc = next;
        continue;
      }
      big = wordsOf(acc);
    }
    mulAdd(big, 10, 0);
  }
  if (digits > target.precision) return DecimalStatus.Overflow;
  const out = target.out;
  const at = target.at;
  if (big === undefined) {
    // The common case: |value| < 2^53, written without a scratch array.
    if (negative && acc > 0) {
      const hi = Math.floor(-acc / TWO32); // -2^21 ≤ hi < 0
      out[at] = -acc - hi * TWO32;
      out[at + 1] = hi;
      out[at + 2] = 0xffffffff;
      out[at + 3] = 0xffffffff;
    } else {
      out[at] = acc % TWO32;
      out[at + 1] = Math.floor(acc / TWO32);
      out[at + 2] = 0;
      out[at + 3] = 0;
    }
    return DecimalStatus.Ok;
  }
  if (negative && digits > 0) negate(big);
  out.set(big, at);
  return DecimalStatus.Ok;
}

/** Scratch words of a decimal beyond 2^53, reused (parsing is synchronous). */
const SCRATCH = new Uint32Array(4);

function wordsOf(value: number): Uint32Array {
  const w = SCRATCH;
  w[0] = value % TWO32;
  w[1] = Math.floor(value / TWO32);
  w[2] = 0;
  w[3] = 0;
  return w;
}

/** words = words × m + add, for m ≤ 10_000 (each partial product stays below 2^53). */
function mulAdd(words: Uint32Array, m: number, add: number): void {
  let carry = add;
  for (let i = 0; i < 4; i++) {
    const x = words[i]! * m + carry;
    words[i] = x % TWO32;
    carry = Math.floor(x / TWO32);
  }
}

function negate(words: Uint32Array): void {
  let carry = 1;
  for (let i = 0; i < 4; i++) {
    const x = (~words[i]! >>> 0) + carry;
    words[i] = x % TWO32;
    carry = x >= TWO32 ? 1 : 0;
  }
}

/**
 * Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's `days_from_civil`), without
 * `Date`, so the result never depends on the process time zone.
 *
 * @param y Year.
 * @param m Month 1..12.
 * @param d Day 1..31.
 * @returns Days since the Unix epoch (negative before it).
 *
 * @example
 * ```ts
 * import { daysFromCivil } from "./_decode.ts";
 * if (daysFromCivil(2000, 3, 1) !== 11017) throw new Error();
 * ```
 */
export function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const mp = (m + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Writes `seconds × 10^6 + micros` as a little-endian int64 (two Int32 halves), exactly, for any
 * MySQL date-time (years 0..9999).
 *
 * @param seconds Whole seconds since the epoch (may be negative).
 * @param micros Microseconds 0..999999.
 * @param out Int32 pairs; `at` is the element index of the low half.
 */
export function writeMicros(seconds: number, micros: number, out: Int32Array, at: number): void {
  const total = seconds * 1_000_000 + micros;
  if (total >= -MAX_SAFE && total <= MAX_SAFE) {
    const hi = Math.floor(total / TWO32);
    out[at] = total - hi * TWO32;
    out[at + 1] = hi;
    return;
  }
  // Outside ±2^53 µs (before 1685 or after 2255): split seconds so every product stays exact.
  const sHi = Math.floor(seconds / 4096);
  const sLo = seconds - sHi * 4096; // 0..4095
  // total = sHi·4096·10^6 + sLo·10^6 + micros; 4096·10^6 = 2^12·10^6 and 2^32 = 2^12·2^20.
  const a = sHi * 1_000_000; // exact: |sHi| < 2^27
  const aHi = Math.floor(a / 1048576); // a·2^12 = aHi·2^32 + aLo·2^12
  const aLo = a - aHi * 1048576;
  const low = aLo * 4096 + sLo * 1_000_000 + micros; // < 2^33, ≥ 0
  const carry = Math.floor(low / TWO32);
  out[at] = low - carry * TWO32;
  out[at + 1] = aHi + carry;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  c |= 0x20;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/**
 * Parses a textual UUID (36 chars with hyphens, or 32 hex digits) into 16 bytes.
 *
 * @param bytes Buffer holding the text from `start` to `end`.
 * @param start First byte.
 * @param end One past the last byte.
 * @param out Destination; `at` is the byte offset.
 * @returns False when the text is not a UUID.
 */
export function parseUuidText(
  bytes: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  at: number,
): boolean {
  let n = 0;
  let hi = -1;
  for (let i = start; i < end; i++) {
    const c = bytes[i]!;
    if (c === 45 /* - */) continue;
    const v = hexValue(c);
    if (v < 0 || n >= 16) return false;
    if (hi < 0) hi = v;
    else {
      out[at + n++] = (hi << 4) | v;
      hi = -1;
    }
  }
  return n === 16 && hi < 0;
}
