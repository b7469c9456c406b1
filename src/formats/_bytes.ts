/**
 * A growable byte buffer and the ASCII renderers the CSV writer needs: integers, exact decimals,
 * Rust-style floats, civil dates and times. Everything writes bytes in place; no per-value strings
 * on the common paths.
 *
 * Layer: formats (private). Imports nothing.
 *
 * @module
 */

/** A byte buffer written from the front; `ensure` grows it. Fields are public for hot loops. */
export class ByteBuffer {
  /** Backing store; replaced when it grows, so never cache it across `ensure` calls. */
  buf: Uint8Array;
  /** Bytes written so far. */
  pos = 0;

  /** @param capacity Initial capacity in bytes. */
  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
  }

  /**
   * Makes room for `n` more bytes.
   *
   * @param n Bytes about to be written.
   */
  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  /**
   * Appends an ASCII string (callers guarantee every char code is < 128).
   *
   * @param s ASCII text.
   */
  ascii(s: string): void {
    this.ensure(s.length);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  /** Returns a copy of the written bytes and resets the buffer (capacity is kept). */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.pos = 0;
    return out;
  }
}

const ZERO = 48;
const TWO_POW_32 = 4294967296;

/** Number of decimal digits of a non-negative integer below 2^53. */
function digitCount(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/**
 * Writes a non-negative integer below 2^53 as decimal digits, left-padded with zeros to `width`.
 *
 * @param out Target buffer (room is ensured here).
 * @param n The integer.
 * @param width Minimum number of digits.
 */
export function putUint(out: ByteBuffer, n: number, width = 1): void {
  const d = Math.max(digitCount(n), width);
  out.ensure(d);
  const buf = out.buf;
  let p = out.pos + d;
  out.pos = p;
  if (n < TWO_POW_32) {
    let v = n >>> 0;
    while (v >= 10) {
      const q = (v / 10) >>> 0;
      buf[--p] = ZERO + v - q * 10;
      v = q;
    }
    buf[--p] = ZERO + v;
  } else {
    while (n >= 10) {
      const q = Math.floor(n / 10);
      buf[--p] = ZERO + n - q * 10;
      n = q;
    }
    buf[--p] = ZERO + n;
  }
  while (p > out.pos - d) buf[--p] = ZERO;
}

/**
 * Writes a signed integer whose magnitude is below 2^53.
 *
 * @param out Target buffer.
 * @param n The integer.
 */
export function putInt(out: ByteBuffer, n: number): void {
  if (n < 0) {
    out.ensure(1);
    out.buf[out.pos++] = 45;
    putUint(out, -n);
  } else putUint(out, n);
}

/**
 * Writes an int64 given as its two 32-bit halves (exact for the whole range).
 *
 * @param out Target buffer.
 * @param lo Low word, unsigned.
 * @param hi High word, signed (or unsigned when `unsigned`).
 * @param unsigned Reads the 64 bits as uint64.
 */
export function putInt64(out: ByteBuffer, lo: number, hi: number, unsigned: boolean): void {
  // Fast path: the value fits in a double exactly (|v| < 2^53), i.e. hi in [-2^21, 2^21).
  if (hi < 2097152 && (unsigned || hi >= -2097152)) {
    putInt(out, hi * TWO_POW_32 + lo);
    return;
  }
  const big = (BigInt(hi) << 32n) | BigInt(lo);
  out.ascii(String(unsigned ? BigInt.asUintN(64, big) : BigInt.asIntN(64, big)));
}

/**
 * Writes digits `mag` (< 2^53) with `scale` fraction digits: `putScaled(5, 2)` → `0.05`.
 *
 * @param out Target buffer.
 * @param mag Unscaled magnitude.
 * @param scale Digits after the point (> 0).
 */
function putScaledSmall(out: ByteBuffer, mag: number, scale: number): void {
  const d = Math.max(digitCount(mag), scale + 1);
  out.ensure(d + 1);
  const buf = out.buf;
  const end = out.pos + d + 1;
  let p = end;
  for (let k = 0; k < scale; k++) {
    const q = Math.floor(mag / 10);
    buf[--p] = ZERO + mag - q * 10;
    mag = q;
  }
  buf[--p] = 46;
  do {
    const q = Math.floor(mag / 10);
    buf[--p] = ZERO + mag - q * 10;
    mag = q;
  } while (p > out.pos);
  out.pos = end;
}

/**
 * Exact decimal text of an Arrow Decimal128 value (4 little-endian u32 words, two's complement),
 * with the scale applied: `-0.05`, `12345.00`, or 38-digit integers. Never goes through floats.
 *
 * @param out Target buffer.
 * @param words The column's word array.
 * @param at Index of the value's first word (4 × row).
 * @param scale Arrow scale; negative scales append zeros.
 */
export function putDecimal128(out: ByteBuffer, words: Uint32Array, at: number, scale: number): void {
  let w0 = words[at]!, w1 = words[at + 1]!, w2 = words[at + 2]!, w3 = words[at + 3]!;
  const negative = w3 >= 0x80000000;
  if (negative) {
    // Two's complement negation word by word, carrying the +1.
    w0 = ~w0 >>> 0;
    w1 = ~w1 >>> 0;
    w2 = ~w2 >>> 0;
    w3 = ~w3 >>> 0;
    w0 = (w0 + 1) >>> 0;
    if (w0 === 0) {
      w1 = (w1 + 1) >>> 0;
      if (w1 === 0) {
        w2 = (w2 + 1) >>> 0;
        if (w2 === 0) w3 = (w3 + 1) >>> 0;
      }
    }
  }
  if (negative) {
    out.ensure(1);
    out.buf[out.pos++] = 45;
  }
  if (w3 === 0 && w2 === 0 && w1 < 2097152 && scale >= 0) {
    const mag = w1 * TWO_POW_32 + w0;
    if (scale === 0) putUint(out, mag);
    else putScaledSmall(out, mag, scale);
    return;
  }
  const mag = (BigInt(w3) << 96n) | (BigInt(w2) << 64n) | (BigInt(w1) << 32n) | BigInt(w0);
  let digits = mag.toString();
  if (scale <= 0) {
    out.ascii(scale === 0 || mag === 0n ? digits : digits + "0".repeat(-scale));
    return;
  }
  if (digits.length <= scale) digits = "0".repeat(scale - digits.length + 1) + digits;
  out.ascii(digits.slice(0, digits.length - scale) + "." + digits.slice(digits.length - scale));
}

/**
 * Decimal text of a Decimal128 value, for tests and messages (the writer uses the byte form).
 *
 * @param words Word array of the column.
 * @param row Row index.
 * @param scale Arrow scale.
 * @returns The exact decimal text.
 */
export function decimal128ToString(words: Uint32Array, row: number, scale: number): string {
  const out = new ByteBuffer(64);
  putDecimal128(out, words, row * 4, scale);
  return new TextDecoder().decode(out.take());
}

/**
 * Rust's `Display` text of a double: shortest round-trip digits, never exponent notation
 * (`1e21` → `1000000000000000000000`, `1e-7` → `0.0000001`), `NaN`, `inf`, `-inf`, `-0`.
 *
 * @param x The value.
 * @returns Its text.
 */
export function formatFloat64(x: number): string {
  if (x !== x) return "NaN";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const s = String(x);
  return s.includes("e") ? expandExponent(s) : s;
}

/**
 * Rust's `Display` text of a float32: the shortest digits that read back to the same float32.
 *
 * @param x A value read from a Float32Array.
 * @returns Its text.
 */
export function formatFloat32(x: number): string {
  if (x !== x || x === Infinity || x === -Infinity || x === 0) return formatFloat64(x);
  for (let p = 1; p < 9; p++) {
    const candidate = Number(x.toPrecision(p));
    if (Math.fround(candidate) === x) return formatFloat64(candidate);
  }
  return formatFloat64(Number(x.toPrecision(9)));
}

/** `1.5e-7` → `0.00000015`, `1e+21` → `1000000000000000000000`. */
function expandExponent(s: string): string {
  const negative = s.startsWith("-");
  const body = negative ? s.slice(1) : s;
  const e = body.indexOf("e");
  const mantissa = body.slice(0, e);
  const exponent = Number(body.slice(e + 1));
  const dot = mantissa.indexOf(".");
  const digits = dot < 0 ? mantissa : mantissa.slice(0, dot) + mantissa.slice(dot + 1);
  // Position of the decimal point counted from the start of `digits`.
  const point = (dot < 0 ? mantissa.length : dot) + exponent;
  let text: string;
  if (point <= 0) text = "0." + "0".repeat(-point) + digits;
  else if (point >= digits.length) text = digits + "0".repeat(point - digits.length);
  else text = digits.slice(0, point) + "." + digits.slice(point);
  return negative ? "-" + text : text;
}

/**
 * Writes a proleptic Gregorian date `YYYY-MM-DD` for days since 1970-01-01. Years 0..9999 are
 * zero-padded to 4 digits; other years carry a sign (`+10000-01-01`, `-0001-12-31`), as Rust's
 * chrono prints them. Year 0 is 1 BC (astronomical numbering, as PostgreSQL stores it).
 *
 * @param out Target buffer.
 * @param days Days since the Unix epoch (any safe integer).
 */
export function putDate(out: ByteBuffer, days: number): void {
  // Howard Hinnant's civil_from_days, integer math only.
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  out.ensure(16);
  if (y < 0) {
    out.buf[out.pos++] = 45;
    putUint(out, -y, 4);
  } else {
    if (y > 9999) out.buf[out.pos++] = 43;
    putUint(out, y, 4);
  }
  const buf = out.buf;
  let p = out.pos;
  buf[p++] = 45;
  buf[p++] = ZERO + ((m / 10) | 0);
  buf[p++] = ZERO + (m % 10);
  buf[p++] = 45;
  buf[p++] = ZERO + ((d / 10) | 0);
  buf[p++] = ZERO + (d % 10);
  out.pos = p;
}

/**
 * Writes `HH:MM:SS.ffffff` for microseconds since midnight (24:00:00 renders as such).
 *
 * @param out Target buffer.
 * @param micros Microseconds of the day, 0..86,400,000,000.
 */
export function putTimeOfDay(out: ByteBuffer, micros: number): void {
  const frac = micros % 1000000;
  const secs = (micros - frac) / 1000000;
  const h = Math.floor(secs / 3600);
  const rest = secs - h * 3600;
  const mi = Math.floor(rest / 60);
  const s = rest - mi * 60;
  out.ensure(16);
  const buf = out.buf;
  let p = out.pos;
  buf[p++] = ZERO + ((h / 10) | 0);
  buf[p++] = ZERO + (h % 10);
  buf[p++] = 58;
  buf[p++] = ZERO + ((mi / 10) | 0);
  buf[p++] = ZERO + (mi % 10);
  buf[p++] = 58;
  buf[p++] = ZERO + ((s / 10) | 0);
  buf[p++] = ZERO + (s % 10);
  buf[p++] = 46;
  out.pos = p;
  putUint(out, frac, 6);
}

/**
 * Writes `YYYY-MM-DDTHH:MM:SS.ffffff` for an int64 of microseconds since the epoch given as its
 * halves; exact over the whole int64 range (no Date, no float rounding).
 *
 * @param out Target buffer.
 * @param lo Low word, unsigned.
 * @param hi High word, signed.
 */
export function putTimestampMicros(out: ByteBuffer, lo: number, hi: number): void {
  // v = hi·2^32 + lo and 2^32 = 4294·10^6 + 967296, so v = (hi·4294)·10^6 + (hi·967296 + lo);
  // both parts stay below 2^53, so `%` and the divisions below are exact.
  const t = hi * 967296 + lo;
  let micros = t % 1000000;
  if (micros < 0) micros += 1000000;
  const secs = hi * 4294 + (t - micros) / 1000000;
  let sod = secs % 86400;
  if (sod < 0) sod += 86400;
  const days = (secs - sod) / 86400;
  putDate(out, days);
  out.ensure(1);
  out.buf[out.pos++] = 84;
  putTimeOfDay(out, sod * 1000000 + micros);
}
