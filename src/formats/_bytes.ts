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

/** "00".."99" as byte pairs, to write two digits per step. */
const PAIRS = new Uint8Array(200);
for (let i = 0; i < 100; i++) {
  PAIRS[2 * i] = ZERO + ((i / 10) | 0);
  PAIRS[2 * i + 1] = ZERO + (i % 10);
}

/** Number of decimal digits of an integer in 0..2^32. */
function digits32(v: number): number {
  return v < 100000
    ? (v < 100 ? (v < 10 ? 1 : 2) : v < 1000 ? 3 : v < 10000 ? 4 : 5)
    : v < 10000000
    ? (v < 1000000 ? 6 : 7)
    : v < 100000000
    ? 8
    : v < 1000000000
    ? 9
    : 10;
}

/**
 * Writes exactly `count` digits of `v` (0 ≤ v < 2^32) ending just before `end`, zero-padded.
 * Room must already be ensured.
 */
function fillDigits(buf: Uint8Array, end: number, v: number, count: number): void {
  let p = end;
  const stop = end - count;
  while (v >= 100) {
    const q = (v / 100) >>> 0;
    const r = 2 * (v - q * 100);
    buf[--p] = PAIRS[r + 1]!;
    buf[--p] = PAIRS[r]!;
    v = q;
  }
  if (v >= 10) {
    buf[--p] = PAIRS[2 * v + 1]!;
    buf[--p] = PAIRS[2 * v]!;
  } else buf[--p] = ZERO + v;
  while (p > stop) buf[--p] = ZERO;
}

/**
 * Writes a non-negative integer below 2^53 as decimal digits, left-padded with zeros to `width`.
 *
 * @param out Target buffer (room is ensured here).
 * @param n The integer.
 * @param width Minimum number of digits.
 */
export function putUint(out: ByteBuffer, n: number, width = 1): void {
  if (n < TWO_POW_32) {
    const d = Math.max(digits32(n), width);
    out.ensure(d);
    out.pos += d;
    fillDigits(out.buf, out.pos, n, d);
    return;
  }
  // Split into a head and 9 low digits, both below 2^32; the division is corrected to be exact.
  let head = Math.floor(n / 1e9);
  let low = n - head * 1e9;
  if (low < 0) {
    head -= 1;
    low += 1e9;
  }
  putUint(out, head, width - 9);
  out.ensure(9);
  out.pos += 9;
  fillDigits(out.buf, out.pos, low, 9);
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

const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/**
 * Writes `mag` (< 2^53) with `scale` fraction digits: (5, 2) → `0.05`.
 *
 * @param out Target buffer.
 * @param mag Unscaled magnitude.
 * @param scale Digits after the point (> 0).
 */
function putScaledSmall(out: ByteBuffer, mag: number, scale: number): void {
  if (scale > 15) {
    // 10^scale exceeds any magnitude below 2^53: the integer part is 0.
    out.ascii("0.");
    putUint(out, mag, scale);
    return;
  }
  const p10 = POW10[scale]!;
  let int = Math.floor(mag / p10);
  let frac = mag - int * p10;
  if (frac < 0) {
    int -= 1;
    frac += p10;
  } else if (frac >= p10) {
    int += 1;
    frac -= p10;
  }
  putUint(out, int);
  out.ensure(1);
  out.buf[out.pos++] = 46;
  putUint(out, frac, scale);
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
export function putDecimal128(
  out: ByteBuffer,
  words: Uint32Array,
  at: number,
  scale: number,
): void {
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
  const secs = Math.floor(micros / 1000000);
  putClock(out, secs, micros - secs * 1000000);
}

/** `HH:MM:SS.ffffff` from seconds of the day and the microsecond fraction. */
function putClock(out: ByteBuffer, secs: number, frac: number): void {
  const h = (secs / 3600) | 0;
  const rest = secs - h * 3600;
  const mi = (rest / 60) | 0;
  const s = rest - mi * 60;
  out.ensure(15);
  const buf = out.buf;
  let p = out.pos;
  buf[p++] = PAIRS[2 * h]!;
  buf[p++] = PAIRS[2 * h + 1]!;
  buf[p++] = 58;
  buf[p++] = PAIRS[2 * mi]!;
  buf[p++] = PAIRS[2 * mi + 1]!;
  buf[p++] = 58;
  buf[p++] = PAIRS[2 * s]!;
  buf[p++] = PAIRS[2 * s + 1]!;
  buf[p++] = 46;
  fillDigits(buf, p + 6, frac, 6);
  out.pos = p + 6;
}

// Results of splitMicros, kept in module slots so the hot path allocates nothing.
let splitSecs = 0;
let splitFrac = 0;

/** Splits an int64 of microseconds (as halves) into whole seconds and the µs remainder, exactly. */
function splitMicros(lo: number, hi: number): void {
  if (hi >= -2097152 && hi < 2097152) {
    // |v| < 2^53: exact in a double; the floor division is corrected by one if it rounded.
    const v = hi * TWO_POW_32 + lo;
    let secs = Math.floor(v / 1000000);
    let micros = v - secs * 1000000;
    if (micros < 0) {
      secs -= 1;
      micros += 1000000;
    } else if (micros >= 1000000) {
      secs += 1;
      micros -= 1000000;
    }
    splitSecs = secs;
    splitFrac = micros;
    return;
  }
  // v = hi·2^32 + lo and 2^32 = 4294·10^6 + 967296, so v = (hi·4294)·10^6 + (hi·967296 + lo);
  // both parts stay below 2^53, so `%` and the division are exact.
  const t = hi * 967296 + lo;
  let micros = t % 1000000;
  if (micros < 0) micros += 1000000;
  splitSecs = hi * 4294 + (t - micros) / 1000000;
  splitFrac = micros;
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
  createTimestampWriter(out)(lo, hi);
}

/**
 * A timestamp writer for one column: like {@linkcode putTimestampMicros}, but remembers the
 * rendered date of the previous value, since neighbouring rows usually share a day.
 *
 * @param out Target buffer.
 * @returns A writer taking the value's low (unsigned) and high (signed) words.
 */
export function createTimestampWriter(out: ByteBuffer): (lo: number, hi: number) => void {
  let cachedDay = NaN;
  const date = new ByteBuffer(24);
  return (lo, hi) => {
    splitMicros(lo, hi);
    const secs = splitSecs, micros = splitFrac;
    let day = Math.floor(secs / 86400);
    let sod = secs - day * 86400;
    if (sod < 0) {
      day -= 1;
      sod += 86400;
    } else if (sod >= 86400) {
      day += 1;
      sod -= 86400;
    }
    if (day !== cachedDay) {
      date.pos = 0;
      putDate(date, day);
      date.buf[date.pos++] = 84; // 'T'
      cachedDay = day;
    }
    const n = date.pos;
    out.ensure(n);
    const buf = out.buf, src = date.buf;
    let p = out.pos;
    for (let k = 0; k < n; k++) buf[p++] = src[k]!;
    out.pos = p;
    putClock(out, sod, micros);
  };
}
