/**
 * Binlog row images → the rows a normal export decodes. Each row image (columns-present bitmap,
 * NULL bitmap, values packed as the storage engine keeps them) is rewritten as a binary-protocol
 * result row and handed to the export's own {@linkcode RowDecoder}: the change rows go through
 * the very code, plans, `columns:` overrides and Arrow builders of a full export, so both type
 * and render every value alike.
 *
 * What the rewrite does per binlog type: integers are re-sized (MEDIUMINT's 3 bytes to 4, YEAR's
 * offset from 1900), packed DECIMAL becomes its decimal text, DATE/DATETIME(2)/TIMESTAMP(2)/
 * TIME(2) become the protocol's broken-down date and time (TIMESTAMP in UTC, as the export's
 * session reads it), ENUM/SET indexes become their member names (from the column definition),
 * BINARY(n) gets back the trailing zero bytes the binlog strips, and text in a non-UTF-8
 * character set is converted to UTF-8 (the export's connection charset).
 *
 * Layer: sources (MySQL).
 *
 * @module
 */
import { PermanentError } from "../../core/errors.ts";
import { stringMeta, type TableMap } from "./_binlog_events.ts";
import type { RowDecoder } from "./_row_decoder.ts";
import { type DecodePlan, Read } from "./_types.ts";

/** What the column definition adds to the binlog's own description of a column. */
export interface ColumnExtra {
  /** ENUM/SET members, UTF-8, in definition order. */
  readonly members?: readonly Uint8Array[];
  /** Character set of a text column that is not UTF-8 (e.g. `latin1`), as a decoder. */
  readonly charset?: TextDecoder;
  /** BINARY(n): the byte length values are padded to. */
  readonly binaryLength?: number;
  /** MariaDB UUID/INET4/INET6: binlogged as bytes, read by the export as their text. */
  readonly binaryText?: "uuid" | "inet4" | "inet6";
}

const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
const TWO24 = 16777216;

/** Bytes of a packed DECIMAL(precision, scale). */
export function decimalBytes(precision: number, scale: number): number {
  const intg = precision - scale;
  return ((intg / 9) | 0) * 4 + DIG2BYTES[intg % 9]! + ((scale / 9) | 0) * 4 +
    DIG2BYTES[scale % 9]!;
}

/**
 * The text of a packed binlog DECIMAL (groups of 9 digits in 4 big-endian bytes, the sign in the
 * top bit, negative values stored inverted).
 *
 * @example
 * ```ts
 * import { decimalText } from "./_binlog_rows.ts";
 * // DECIMAL(5,2) 123.45: 2 big-endian bytes for "123" (sign bit set), 1 byte for "45".
 * if (decimalText(new Uint8Array([0x80, 123, 45]), 0, 5, 2) !== "123.45") throw new Error();
 * ```
 */
export function decimalText(buf: Uint8Array, p: number, precision: number, scale: number): string {
  const size = decimalBytes(precision, scale);
  const bytes = buf.slice(p, p + size);
  const negative = (bytes[0]! & 0x80) === 0;
  bytes[0]! ^= 0x80;
  if (negative) { for (let i = 0; i < size; i++) bytes[i] = ~bytes[i]! & 0xff; }
  let q = 0;
  const group = (n: number) => {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + bytes[q++]!;
    return v;
  };
  const intg = precision - scale;
  let intText = "";
  const lead = DIG2BYTES[intg % 9]!;
  if (lead > 0) intText += String(group(lead));
  for (let i = 0; i < ((intg / 9) | 0); i++) intText += String(group(4)).padStart(9, "0");
  intText = intText.replace(/^0+/, "") || "0";
  let frac = "";
  for (let i = 0; i < ((scale / 9) | 0); i++) frac += String(group(4)).padStart(9, "0");
  const tail = scale % 9;
  if (tail > 0) frac += String(group(DIG2BYTES[tail]!)).padStart(tail, "0");
  return (negative ? "-" : "") + intText + (scale > 0 ? "." + frac : "");
}

/** The binary-protocol reading each binlog type is rewritten for (the probe's plan must match). */
function readFor(type: number, meta: number): number {
  switch (type) {
    case 1:
      return Read.Int8;
    case 2:
    case 13:
      return Read.Int16;
    case 9:
    case 3:
      return Read.Int32;
    case 8:
      return Read.Int64;
    case 4:
      return Read.Float32;
    case 5:
      return Read.Float64;
    case 10:
    case 14:
      return Read.Date;
    case 7:
    case 12:
    case 17:
    case 18:
      return Read.DateTime;
    case 11:
    case 19:
      return Read.Time;
    default:
      void meta;
      return Read.Bytes;
  }
}

/** The signed/unsigned pair of a wire reading, as one class. */
function readClass(read: number): number {
  switch (read) {
    case Read.UInt8:
      return Read.Int8;
    case Read.UInt16:
      return Read.Int16;
    case Read.UInt32:
      return Read.Int32;
    default:
      return read;
  }
}

/**
 * Why a TABLE_MAP does not fit the probed columns (an ALTER TABLE since the reader opened), or
 * undefined when it fits.
 */
export function mapMismatch(map: TableMap, plans: readonly DecodePlan[]): string | undefined {
  if (map.types.length !== plans.length) {
    return `the binlog has ${map.types.length} columns, the table had ${plans.length}`;
  }
  for (let c = 0; c < plans.length; c++) {
    const want = readClass(plans[c]!.read);
    // YEAR is read as Int16 by the export but is 1 byte in the binlog: same class.
    if (readFor(map.types[c]!, map.meta[c]!) !== want) {
      return `column '${plans[c]!.name}' is binlog type ${map.types[c]} now`;
    }
  }
  return undefined;
}

/** Rewrites row images of one table map into binary-protocol rows for a {@linkcode RowDecoder}. */
export class RowImageWriter {
  readonly #plans: readonly DecodePlan[];
  readonly #extras: readonly ColumnExtra[];
  #map: TableMap | undefined;
  #out = new Uint8Array(4096);
  #view = new DataView(this.#out.buffer);
  #p = 0;
  readonly #encoder = new TextEncoder();
  readonly #utc = new Date(0);

  /**
   * @param plans The export's decode plans of the table.
   * @param extras Column-definition facts per column.
   */
  constructor(plans: readonly DecodePlan[], extras: readonly ColumnExtra[]) {
    this.#plans = plans;
    this.#extras = extras;
  }

  /** Uses `map` for the following rows (checked with {@linkcode mapMismatch} before). */
  bind(map: TableMap): void {
    this.#map = map;
  }

  /**
   * Reads one row image at `p`; when `decoder` is given, appends the row to it.
   *
   * @param buf Rows bytes.
   * @param p Offset of the image's NULL bitmap.
   * @param present Columns-present bitmap of this image.
   * @param decoder The table's decoder, or undefined to skip the image (an update's before-image).
   * @returns Offset after the image.
   */
  row(buf: Uint8Array, p: number, present: Uint8Array, decoder: RowDecoder | undefined): number {
    const map = this.#map!;
    const n = map.types.length;
    let presentCount = 0;
    for (let c = 0; c < n; c++) if ((present[c >> 3]! & (1 << (c & 7))) !== 0) presentCount++;
    const nulls = p;
    p += (presentCount + 7) >> 3;
    const bitmapBytes = (n + 7 + 2) >> 3;
    if (decoder !== undefined) {
      this.#p = 0;
      this.#ensure(1 + bitmapBytes);
      this.#out.fill(0, 0, 1 + bitmapBytes);
      this.#p = 1 + bitmapBytes;
    }
    let k = 0; // index among present columns
    for (let c = 0; c < n; c++) {
      const isNull = (present[c >> 3]! & (1 << (c & 7))) === 0 ||
        (buf[nulls + (k >> 3)]! & (1 << (k++ & 7))) !== 0;
      if (isNull) {
        if (decoder !== undefined) this.#out[1 + ((c + 2) >> 3)]! |= 1 << ((c + 2) & 7);
        continue;
      }
      p = this.#value(buf, p, c, decoder !== undefined);
    }
    if (decoder !== undefined) decoder.row(this.#out, 0);
    return p;
  }

  #ensure(extra: number): void {
    if (this.#p + extra <= this.#out.length) return;
    const next = new Uint8Array(Math.max(this.#out.length * 2, this.#p + extra + 1024));
    next.set(this.#out.subarray(0, this.#p));
    this.#out = next;
    this.#view = new DataView(next.buffer);
  }

  /** Copies `len` bytes as a length-coded protocol string. */
  #bytes(src: Uint8Array, at: number, len: number, padTo = 0): void {
    const total = Math.max(len, padTo);
    this.#ensure(total + 9);
    const o = this.#out;
    let q = this.#p;
    if (total < 0xfb) o[q++] = total;
    else if (total < 0x10000) {
      o[q++] = 0xfc;
      o[q++] = total & 0xff;
      o[q++] = total >> 8;
    } else if (total < 0x1000000) {
      o[q++] = 0xfd;
      o[q++] = total & 0xff;
      o[q++] = (total >> 8) & 0xff;
      o[q++] = total >> 16;
    } else {
      o[q++] = 0xfe;
      this.#view.setUint32(q, total, true);
      this.#view.setUint32(q + 4, 0, true);
      q += 8;
    }
    o.set(src.subarray(at, at + len), q);
    if (total > len) o.fill(0, q + len, q + total);
    this.#p = q + total;
  }

  #text(text: string): void {
    const bytes = this.#encoder.encode(text);
    this.#bytes(bytes, 0, bytes.length);
  }

  #int(bytes: number, value: number): void {
    this.#ensure(8);
    const v = this.#view;
    if (bytes === 2) v.setInt16(this.#p, value, true);
    else v.setInt32(this.#p, value | 0, true);
    this.#p += bytes;
  }

  #dateTime(y: number, m: number, d: number, hh: number, mi: number, ss: number, us: number) {
    this.#ensure(12);
    const o = this.#out;
    const q = this.#p;
    o[q] = 11;
    this.#view.setUint16(q + 1, y, true);
    o[q + 3] = m;
    o[q + 4] = d;
    o[q + 5] = hh;
    o[q + 6] = mi;
    o[q + 7] = ss;
    this.#view.setUint32(q + 8, us, true);
    this.#p = q + 12;
  }

  #time(negative: boolean, hours: number, mi: number, ss: number, us: number): void {
    this.#ensure(13);
    const o = this.#out;
    const q = this.#p;
    o[q] = 12;
    o[q + 1] = negative ? 1 : 0;
    this.#view.setUint32(q + 2, Math.floor(hours / 24), true);
    o[q + 6] = hours % 24;
    o[q + 7] = mi;
    o[q + 8] = ss;
    this.#view.setUint32(q + 9, us, true);
    this.#p = q + 13;
  }

  /** Reads the value of column `c` at `p`, writes it when `write`; returns the offset after it. */
  #value(buf: Uint8Array, p: number, c: number, write: boolean): number {
    const map = this.#map!;
    const type = map.types[c]!;
    const meta = map.meta[c]!;
    const plan = this.#plans[c]!;
    const le = (at: number, n: number) => {
      let v = 0;
      for (let i = n - 1; i >= 0; i--) v = v * 256 + buf[at + i]!;
      return v;
    };
    const be = (at: number, n: number) => {
      let v = 0;
      for (let i = 0; i < n; i++) v = v * 256 + buf[at + i]!;
      return v;
    };
    switch (type) {
      case 1: // TINY
        if (write) {
          this.#ensure(1);
          this.#out[this.#p++] = buf[p]!;
        }
        return p + 1;
      case 2: // SHORT
        if (write) this.#int(2, le(p, 2));
        return p + 2;
      case 13: // YEAR
        if (write) this.#int(2, buf[p] === 0 ? 0 : buf[p]! + 1900);
        return p + 1;
      case 9: { // INT24, sign-extended unless the column is unsigned
        if (write) {
          let v = le(p, 3);
          if (plan.read === Read.Int32 && v >= 0x800000) v -= TWO24;
          this.#int(4, v);
        }
        return p + 3;
      }
      case 3: // LONG
      case 4: // FLOAT
        if (write) this.#raw(buf, p, 4);
        return p + 4;
      case 8: // LONGLONG
      case 5: // DOUBLE
        if (write) this.#raw(buf, p, 8);
        return p + 8;
      case 246: { // NEWDECIMAL
        const precision = meta >> 8;
        const scale = meta & 0xff;
        if (write) this.#text(decimalText(buf, p, precision, scale));
        return p + decimalBytes(precision, scale);
      }
      case 10:
      case 14: { // DATE: day | month << 5 | year << 9
        if (write) {
          const v = le(p, 3);
          this.#ensure(5);
          const q = this.#p;
          this.#out[q] = 4;
          this.#view.setUint16(q + 1, v >> 9, true);
          this.#out[q + 3] = (v >> 5) & 15;
          this.#out[q + 4] = v & 31;
          this.#p = q + 5;
        }
        return p + 3;
      }
      case 18: { // DATETIME2: 1 sign bit, 17 bits year*13+month, 5 day, 17 hms; then fraction
        const fracBytes = (meta + 1) >> 1;
        if (write) {
          const packed = be(p, 5) - 0x8000000000;
          const ymd = Math.floor(packed / 131072);
          const hms = packed % 131072;
          const ym = ymd >> 5;
          this.#dateTime(
            Math.floor(ym / 13),
            ym % 13,
            ymd & 31,
            hms >> 12,
            (hms >> 6) & 63,
            hms & 63,
            this.#fraction(buf, p + 5, fracBytes),
          );
        }
        return p + 5 + fracBytes;
      }
      case 17: { // TIMESTAMP2: big-endian seconds since the epoch; then fraction
        const fracBytes = (meta + 1) >> 1;
        if (write) this.#epoch(be(p, 4), this.#fraction(buf, p + 4, fracBytes));
        return p + 4 + fracBytes;
      }
      case 7: // TIMESTAMP (old format)
        if (write) this.#epoch(le(p, 4), 0);
        return p + 4;
      case 12: { // DATETIME (old format): YYYYMMDDhhmmss as an integer
        if (write) {
          const v = le(p, 8);
          const date = Math.floor(v / 1_000_000);
          const time = v % 1_000_000;
          this.#dateTime(
            Math.floor(date / 10000),
            Math.floor(date / 100) % 100,
            date % 100,
            Math.floor(time / 10000),
            Math.floor(time / 100) % 100,
            time % 100,
            0,
          );
        }
        return p + 8;
      }
      case 19: { // TIME2
        const fracBytes = (meta + 1) >> 1;
        if (write) this.#time2(buf, p, meta);
        return p + 3 + fracBytes;
      }
      case 11: { // TIME (old format): signed HHMMSS
        if (write) {
          let v = le(p, 3);
          if (v >= 0x800000) v -= TWO24;
          const a = Math.abs(v);
          this.#time(v < 0, Math.floor(a / 10000), Math.floor(a / 100) % 100, a % 100, 0);
        }
        return p + 3;
      }
      case 16: { // BIT: big-endian bytes
        const len = (meta >> 8) + ((meta & 0xff) > 0 ? 1 : 0);
        if (write) this.#bytes(buf, p, len);
        return p + len;
      }
      case 15:
      case 253: { // VARCHAR: 1 or 2 length bytes by the maximum length
        const lenBytes = meta > 255 ? 2 : 1;
        const len = le(p, lenBytes);
        if (write) this.#string(buf, p + lenBytes, len, c);
        return p + lenBytes + len;
      }
      case 254: { // STRING: CHAR/BINARY, or ENUM/SET by the real type
        const s = stringMeta(meta);
        if (s.type === 247 || s.type === 248) {
          const v = le(p, s.length);
          if (write) this.#member(v, s.type === 248, c);
          return p + s.length;
        }
        const lenBytes = s.length > 255 ? 2 : 1;
        const len = le(p, lenBytes);
        if (write) this.#string(buf, p + lenBytes, len, c);
        return p + lenBytes + len;
      }
      case 247:
      case 248: { // ENUM/SET announced directly (metadata: pack length in the low byte)
        const size = meta & 0xff;
        if (write) this.#member(le(p, size), type === 248, c);
        return p + size;
      }
      case 249:
      case 250:
      case 251:
      case 252: { // BLOB/TEXT: `meta` length bytes
        const len = le(p, meta);
        if (write) this.#string(buf, p + meta, len, c);
        return p + meta + len;
      }
      case 245: { // MySQL JSON: binary document
        const len = le(p, meta);
        if (write) {
          throw new PermanentError(
            `Column '${plan.name}' is a MySQL JSON column, whose binary binlog form this ` +
              "reader does not decode yet",
            {
              code: "cdc.unsupported_type",
              hint: "capture a table without JSON columns, or store the document as LONGTEXT",
            },
          );
        }
        return p + meta + len;
      }
      default:
        throw new PermanentError(
          `Column '${plan.name}' has binlog type ${type}, which the change reader cannot decode`,
          { code: "cdc.unsupported_type", hint: "leave the table out of cdc.tables" },
        );
    }
  }

  #raw(buf: Uint8Array, p: number, n: number): void {
    this.#ensure(n);
    this.#out.set(buf.subarray(p, p + n), this.#p);
    this.#p += n;
  }

  #string(buf: Uint8Array, p: number, len: number, c: number): void {
    const extra = this.#extras[c]!;
    if (extra.binaryText !== undefined) {
      // Stored like BINARY(n): the binlog drops trailing zero bytes, put them back first.
      const value = new Uint8Array(extra.binaryText === "inet4" ? 4 : 16);
      value.set(buf.subarray(p, p + Math.min(len, value.length)));
      this.#text(binaryTypeText(extra.binaryText, value));
      return;
    }
    if (extra.charset !== undefined) {
      this.#text(extra.charset.decode(buf.subarray(p, p + len)));
      return;
    }
    this.#bytes(buf, p, len, extra.binaryLength ?? 0);
  }

  #member(v: number, isSet: boolean, c: number): void {
    const members = this.#extras[c]!.members ?? [];
    if (!isSet) {
      const m = v === 0 ? undefined : members[v - 1];
      this.#bytes(m ?? new Uint8Array(0), 0, m?.length ?? 0);
      return;
    }
    const parts: Uint8Array[] = [];
    for (let i = 0; i < members.length; i++) {
      if (Math.floor(v / 2 ** i) % 2 === 1) parts.push(members[i]!);
    }
    const total = parts.reduce((s, x) => s + x.length, 0) + Math.max(0, parts.length - 1);
    const joined = new Uint8Array(total);
    let q = 0;
    parts.forEach((x, i) => {
      if (i > 0) joined[q++] = 44; // ,
      joined.set(x, q);
      q += x.length;
    });
    this.#bytes(joined, 0, total);
  }

  /** Microseconds of a big-endian fraction of `n` bytes (1: centiseconds, 2: 1/10000 s). */
  #fraction(buf: Uint8Array, p: number, n: number): number {
    if (n === 0) return 0;
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + buf[p + i]!;
    return n === 1 ? v * 10000 : n === 2 ? v * 100 : v;
  }

  #epoch(seconds: number, us: number): void {
    if (seconds === 0 && us === 0) {
      // The zero timestamp: the export reads it as a zero date (NULL, counted).
      this.#ensure(1);
      this.#out[this.#p++] = 0;
      return;
    }
    // TIMESTAMP holds 1970..2038 UTC seconds: exact in a Date, read back in UTC fields.
    const t = this.#utc;
    t.setTime(seconds * 1000);
    this.#dateTime(
      t.getUTCFullYear(),
      t.getUTCMonth() + 1,
      t.getUTCDate(),
      t.getUTCHours(),
      t.getUTCMinutes(),
      t.getUTCSeconds(),
      us,
    );
  }

  /** TIME2: 24-bit signed integer part (offset 0x800000) and a signed fraction. */
  #time2(buf: Uint8Array, p: number, fsp: number): void {
    const b3 = (buf[p]! << 16) | (buf[p + 1]! << 8) | buf[p + 2]!;
    let intPart = b3 - 0x800000;
    let frac = 0;
    if (fsp === 1 || fsp === 2) {
      frac = buf[p + 3]!;
      if (intPart < 0 && frac !== 0) {
        intPart++;
        frac -= 0x100;
      }
      frac *= 10000;
    } else if (fsp === 3 || fsp === 4) {
      frac = (buf[p + 3]! << 8) | buf[p + 4]!;
      if (intPart < 0 && frac !== 0) {
        intPart++;
        frac -= 0x10000;
      }
      frac *= 100;
    } else if (fsp >= 5) {
      frac = (buf[p + 3]! << 16) | (buf[p + 4]! << 8) | buf[p + 5]!;
      if (intPart < 0 && frac !== 0) {
        intPart++;
        frac -= 0x1000000;
      }
    }
    let packed = intPart * TWO24 + frac;
    const negative = packed < 0;
    if (negative) packed = -packed;
    const hms = Math.floor(packed / TWO24);
    const us = packed % TWO24;
    this.#time(negative, (hms >> 12) % 1024, (hms >> 6) % 64, hms % 64, us);
  }
}

const hex2 = (b: number) => b.toString(16).padStart(2, "0");

/**
 * The text MariaDB shows for a UUID, INET4 or INET6 value from its binlog bytes: the UUID's
 * 8-4-4-4-12 hex form, the dotted quad, and the IPv6 form with the (first) longest run of zero
 * groups written `::`, even a single one; `::ffff:` and `::` with a non-zero seventh group end
 * in a dotted quad. (The rules are MariaDB's, checked against its own output in the tests.)
 *
 * @example
 * ```ts
 * import { binaryTypeText } from "./_binlog_rows.ts";
 * const ip = new Uint8Array(16);
 * ip[15] = 1;
 * if (binaryTypeText("inet6", ip) !== "::1") throw new Error();
 * ```
 */
export function binaryTypeText(kind: "uuid" | "inet4" | "inet6", b: Uint8Array): string {
  if (kind === "inet4") return [...b.subarray(0, 4)].join(".");
  if (kind === "uuid") {
    const h = [...b.subarray(0, 16)].map(hex2).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${
      h.slice(20)
    }`;
  }
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  const quad = () => [...b.subarray(12, 16)].join(".");
  if (groups.slice(0, 5).every((g) => g === 0)) {
    if (groups[5] === 0xffff) return `::ffff:${quad()}`;
    if (groups[5] === 0 && groups[6] !== 0) return `::${quad()}`;
  }
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const text = (gs: number[]) => gs.map((g) => g.toString(16)).join(":");
  if (best < 0) return text(groups);
  return `${text(groups.slice(0, best))}::${text(groups.slice(best + bestLen))}`;
}
