/**
 * Pure decoders for PostgreSQL binary values that need more than a DataView read: numeric to a
 * 128-bit unscaled integer (never through a JS float), interval to ISO-8601 text, uuid text.
 *
 * @module
 */

/** Microseconds between 1970-01-01 and 2000-01-01 (the PostgreSQL epoch). */
export const PG_EPOCH_US = 946_684_800_000_000;
/** Days between 1970-01-01 and 2000-01-01. */
export const PG_EPOCH_DAYS = 10_957;
/** High and low 32-bit halves of {@linkcode PG_EPOCH_US}, for carry-based int64 addition. */
export const PG_EPOCH_US_HI = Math.floor(PG_EPOCH_US / 4294967296);
/** Low half of {@linkcode PG_EPOCH_US}. */
export const PG_EPOCH_US_LO = PG_EPOCH_US - PG_EPOCH_US_HI * 4294967296;

/** Outcome of {@linkcode decodeNumeric}. */
export const NumericStatus = { Ok: 0, NotFinite: 1, Overflow: 2 } as const;

const TWO32 = 4294967296;
// Above this, acc * 10000 + 9999 could exceed 2^53 and lose exactness.
const SAFE_ACC = Math.floor((Number.MAX_SAFE_INTEGER - 9999) / 10000);
const POW10 = [1, 10, 100, 1000];
const POW10_BIG: bigint[] = [];
for (let i = 0n; i <= 80n; i++) POW10_BIG.push(10n ** i);

function writeNumber(out: Uint32Array, at: number, magnitude: number, negative: boolean): void {
  let w0 = magnitude % TWO32;
  let w1 = (magnitude - w0) / TWO32;
  let w2 = 0;
  let w3 = 0;
  if (negative && magnitude !== 0) {
    // Two's complement of the 128-bit value: invert, add one.
    w0 = ~w0 >>> 0;
    w1 = ~w1 >>> 0;
    w2 = 0xffffffff;
    w3 = 0xffffffff;
    w0 += 1;
    if (w0 === TWO32) {
      w0 = 0;
      w1 += 1;
      if (w1 === TWO32) {
        w1 = 0;
        w2 = 0;
        w3 = 0;
      }
    }
  }
  out[at] = w0;
  out[at + 1] = w1;
  out[at + 2] = w2;
  out[at + 3] = w3;
}

function writeBig(out: Uint32Array, at: number, value: bigint): void {
  const v = BigInt.asUintN(128, value);
  out[at] = Number(v & 0xffffffffn);
  out[at + 1] = Number((v >> 32n) & 0xffffffffn);
  out[at + 2] = Number((v >> 64n) & 0xffffffffn);
  out[at + 3] = Number((v >> 96n) & 0xffffffffn);
}

/**
 * Decodes a binary `numeric` into the unscaled integer `value × 10^scale`, rounded half away from
 * zero when the value has more fractional digits than `scale`, written as 4 little-endian u32 words
 * (Arrow Decimal128 layout).
 *
 * @param view DataView over the receive buffer.
 * @param p Offset of the value.
 * @param target Scale and precision of the Arrow column; `out`/`at` where to write.
 * @returns A {@linkcode NumericStatus}.
 *
 * @example
 * ```ts
 * import { decodeNumeric } from "./_decode.ts";
 * // 12.5 = ndigits 2, weight 0, sign +, dscale 1, digits [12, 5000]
 * const v = new DataView(new Uint8Array([0,2, 0,0, 0,0, 0,1, 0,12, 0x13,0x88]).buffer);
 * const out = new Uint32Array(4);
 * decodeNumeric(v, 0, { scale: 2, precision: 5, out, at: 0 });
 * if (out[0] !== 1250) throw new Error(String(out[0]));
 * ```
 */
export function decodeNumeric(
  view: DataView,
  p: number,
  target: { scale: number; precision: number; out: Uint32Array; at: number },
): number {
  const ndigits = view.getInt16(p);
  const weight = view.getInt16(p + 2);
  const sign = view.getUint16(p + 4);
  if (sign !== 0 && sign !== 0x4000) return NumericStatus.NotFinite;
  const negative = sign === 0x4000;
  const scale = target.scale;
  const groups = (scale + 3) >> 2; // fractional base-10000 groups we keep
  const drop = groups * 4 - scale; // decimal digits of the last kept group that are dropped
  const d0 = p + 8;
  let acc = 0;
  let k = weight;
  let i = 0;
  if (weight >= -groups) {
    for (; k >= -groups; k--, i++) {
      if (acc > SAFE_ACC) return decodeNumericBig(view, p, target);
      acc = acc * 10000 + (i < ndigits ? view.getInt16(d0 + 2 * i) : 0);
    }
  } else {
    i = weight + groups + 1; // every digit lies beyond the kept scale; <0 means leading zeros
  }
  // Round half away from zero on what is dropped.
  let up = false;
  if (drop > 0) {
    const div = POW10[drop]!;
    const rem = acc % div;
    acc = (acc - rem) / div;
    up = rem * 2 >= div;
  } else if (i >= 0 && i < ndigits) {
    up = view.getInt16(d0 + 2 * i) >= 5000;
  }
  if (up) acc += 1;
  if (target.precision <= 15) {
    if (acc >= POW10_BIG_NUM[target.precision]!) return NumericStatus.Overflow;
  } else if (acc > Number.MAX_SAFE_INTEGER) {
    return decodeNumericBig(view, p, target);
  }
  writeNumber(target.out, target.at * 4, acc, negative);
  return NumericStatus.Ok;
}

const POW10_BIG_NUM: number[] = [];
for (let i = 0; i <= 15; i++) POW10_BIG_NUM.push(10 ** i);

function decodeNumericBig(
  view: DataView,
  p: number,
  target: { scale: number; precision: number; out: Uint32Array; at: number },
): number {
  const ndigits = view.getInt16(p);
  const weight = view.getInt16(p + 2);
  const negative = view.getUint16(p + 4) === 0x4000;
  const scale = target.scale;
  const groups = (scale + 3) >> 2;
  const drop = groups * 4 - scale;
  let acc = 0n;
  let i = 0;
  if (weight >= -groups) {
    for (let k = weight; k >= -groups; k--, i++) {
      acc = acc * 10000n + BigInt(i < ndigits ? view.getInt16(p + 8 + 2 * i) : 0);
    }
  } else {
    i = weight + groups + 1;
  }
  let up = false;
  if (drop > 0) {
    const div = POW10_BIG[drop]!;
    const rem = acc % div;
    acc /= div;
    up = rem * 2n >= div;
  } else if (i >= 0 && i < ndigits) {
    up = view.getInt16(p + 8 + 2 * i) >= 5000;
  }
  if (up) acc += 1n;
  if (acc >= POW10_BIG[target.precision]!) return NumericStatus.Overflow;
  writeBig(target.out, target.at * 4, negative ? -acc : acc);
  return NumericStatus.Ok;
}

function isoPart(value: bigint | number, unit: string): string {
  return value === 0 || value === 0n ? "" : `${value}${unit}`;
}

/**
 * Formats a binary interval as PostgreSQL's `IntervalStyle = iso_8601` does, e.g.
 * `P1Y2M3DT4H5M6.5S`, `PT0S`, `P-1Y-2M3DT-4H`.
 *
 * @param micros Time part in microseconds.
 * @param days Day part.
 * @param months Month part.
 * @returns ISO-8601 duration text.
 *
 * @example
 * ```ts
 * import { intervalToIso } from "./_decode.ts";
 * if (intervalToIso(14_706_500_000n, 3, 14) !== "P1Y2M3DT4H5M6.5S") throw new Error();
 * ```
 */
export function intervalToIso(micros: bigint, days: number, months: number): string {
  const years = Math.trunc(months / 12);
  const mons = months % 12;
  const hours = micros / 3_600_000_000n;
  let rest = micros - hours * 3_600_000_000n;
  const mins = rest / 60_000_000n;
  rest -= mins * 60_000_000n;
  if (years === 0 && mons === 0 && days === 0 && micros === 0n) return "PT0S";
  let s = "P" + isoPart(years, "Y") + isoPart(mons, "M") + isoPart(days, "D");
  if (hours !== 0n || mins !== 0n || rest !== 0n) s += "T";
  s += isoPart(hours, "H") + isoPart(mins, "M");
  if (rest !== 0n) {
    const abs = rest < 0n ? -rest : rest;
    const sec = abs / 1_000_000n;
    const frac = abs % 1_000_000n;
    s += rest < 0n ? "-" : "";
    s += String(sec);
    if (frac !== 0n) s += "." + String(frac).padStart(6, "0").replace(/0+$/, "");
    s += "S";
  }
  return s;
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
 * @param bytes UTF-8 bytes of the text.
 * @param out Destination; `at` is the byte offset.
 * @returns False when the text is not a UUID.
 */
export function parseUuidText(bytes: Uint8Array, out: Uint8Array, at: number): boolean {
  let n = 0;
  let hi = -1;
  for (let i = 0; i < bytes.length; i++) {
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
