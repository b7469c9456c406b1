/**
 * Test data: TDS 7.4 token bytes (COLMETADATA, ROW, NBCROW) built by hand, and tedious' own token
 * parser to read them, for unit tests of the SQL Server source.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import streamParser from "tedious/lib/token/stream-parser.js";

/** tedious' push parser of token streams (its module exports the class itself). */
export const TdsParser = streamParser as unknown as typeof streamParser.default;

/** Parser options of a TDS 7.4 connection returning rows as arrays. */
export const PARSER_OPTIONS: ConstructorParameters<typeof TdsParser>[0] = {
  useUTC: true,
  lowerCaseGuids: false,
  tdsVersion: "7_4",
  useColumnNames: false,
  columnNameReplacer: undefined,
  camelCaseColumns: false,
};

/** One ROW or NBCROW token as tedious' parser returns it (`useColumnNames: false`). */
export type ParsedRow = { readonly value: unknown; readonly metadata: unknown }[];

/**
 * Runs tedious' token parser over the chunks, as they would arrive in packets.
 *
 * @param chunks The bytes, cut anywhere.
 * @returns The column metadata of the last COLMETADATA token and every ROW/NBCROW.
 */
export function parseTokens(
  chunks: readonly Uint8Array[],
): { metadata: unknown[]; rows: ParsedRow[] } {
  const parser = new TdsParser(PARSER_OPTIONS);
  let metadata: unknown[] = [];
  const rows: ParsedRow[] = [];
  for (const chunk of chunks) {
    parser.write(Buffer.from(chunk));
    for (let token = parser.read(); token !== undefined; token = parser.read()) {
      const t = token as unknown as { name: string; columns: unknown[] };
      if (t.name === "COLMETADATA") metadata = t.columns;
      if (t.name === "ROW" || t.name === "NBCROW") rows.push(t.columns as ParsedRow);
    }
  }
  parser.end();
  return { metadata, rows };
}

/**
 * The values of every row tedious' token parser reads from the chunks.
 *
 * @param chunks The bytes, cut anywhere.
 * @returns One array of values per ROW/NBCROW token.
 */
export function parse(chunks: readonly Uint8Array[]): unknown[][] {
  return parseTokens(chunks).rows.map((r) => r.map((c) => c.value));
}

/**
 * A whole result: COLMETADATA, the rows, DONE.
 *
 * @param columns The columns.
 * @param rows ROW/NBCROW tokens.
 * @returns The bytes.
 */
export function stream(columns: readonly TdsColumn[], ...rows: Uint8Array[]): Uint8Array {
  return Buffer.concat([colMetadata(columns), ...rows, done(rows.length)]);
}

/** One column of a COLMETADATA token: its type byte and the type info that follows it. */
export interface TdsColumn {
  readonly name: string;
  /** TDS type id, e.g. 0x26 for INTN. */
  readonly type: number;
  /** TYPE_INFO bytes after the type id (length, precision/scale, collation, …). */
  readonly info: readonly number[];
}

/** Little-endian bytes of an unsigned or two's complement integer. */
export function le(value: number | bigint, bytes: number): number[] {
  let v = BigInt.asUintN(bytes * 8, BigInt(value));
  const out: number[] = [];
  for (let i = 0; i < bytes; i++) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
}

/** A Latin1_General_CI_AS collation (LCID 0x0409, sort id 52). */
const COLLATION = [0x09, 0x04, 0xd0, 0x00, 0x34];

/** Column type constructors by SQL Server type. */
export const col = {
  fixed: (name: string, type: number): TdsColumn => ({ name, type, info: [] }),
  intN: (name: string, length: 1 | 2 | 4 | 8): TdsColumn => ({ name, type: 0x26, info: [length] }),
  bitN: (name: string): TdsColumn => ({ name, type: 0x68, info: [1] }),
  floatN: (name: string, length: 4 | 8): TdsColumn => ({ name, type: 0x6d, info: [length] }),
  moneyN: (name: string, length: 4 | 8): TdsColumn => ({ name, type: 0x6e, info: [length] }),
  dateTimeN: (name: string, length: 4 | 8): TdsColumn => ({ name, type: 0x6f, info: [length] }),
  decimalN: (name: string, precision: number, scale: number, numeric = false): TdsColumn => ({
    name,
    type: numeric ? 0x6c : 0x6a,
    info: [decimalLength(precision), precision, scale],
  }),
  date: (name: string): TdsColumn => ({ name, type: 0x28, info: [] }),
  time: (name: string, scale: number): TdsColumn => ({ name, type: 0x29, info: [scale] }),
  dateTime2: (name: string, scale: number): TdsColumn => ({ name, type: 0x2a, info: [scale] }),
  dateTimeOffset: (name: string, scale: number): TdsColumn => ({ name, type: 0x2b, info: [scale] }),
  guid: (name: string): TdsColumn => ({ name, type: 0x24, info: [16] }),
  nvarchar: (name: string, chars: number): TdsColumn => ({
    name,
    type: 0xe7,
    info: [...le(chars * 2, 2), ...COLLATION],
  }),
  varbinary: (name: string, bytes: number): TdsColumn => ({
    name,
    type: 0xa5,
    info: le(bytes, 2),
  }),
};

/** Bytes of a decimal(p, s) value including its sign byte. */
export function decimalLength(precision: number): number {
  return precision <= 9 ? 5 : precision <= 19 ? 9 : precision <= 28 ? 13 : 17;
}

function bVarChar(text: string): number[] {
  const out = [text.length];
  for (let i = 0; i < text.length; i++) out.push(...le(text.charCodeAt(i), 2));
  return out;
}

/**
 * A COLMETADATA token (TDS 7.2+: 4-byte user type).
 *
 * @param columns The columns, in order.
 * @returns The token bytes.
 */
export function colMetadata(columns: readonly TdsColumn[]): Uint8Array {
  const out = [0x81, ...le(columns.length, 2)];
  for (const c of columns) {
    out.push(...le(0, 4), ...le(0x0009, 2), c.type, ...c.info, ...bVarChar(c.name));
  }
  return Uint8Array.from(out);
}

/**
 * A ROW token.
 *
 * @param values Each column's encoded value, length prefix included (see {@linkcode val}).
 * @returns The token bytes.
 */
export function row(values: readonly (readonly number[])[]): Uint8Array {
  return Uint8Array.from([0xd1, ...values.flat()]);
}

/**
 * An NBCROW token: NULL columns flagged in the bitmap and left out of the data.
 *
 * @param values Each column's encoded value, or null.
 * @returns The token bytes.
 */
export function nbcRow(values: readonly (readonly number[] | null)[]): Uint8Array {
  const bitmap = new Array<number>(Math.ceil(values.length / 8)).fill(0);
  values.forEach((v, i) => {
    if (v === null) bitmap[i >> 3]! |= 1 << (i & 7);
  });
  return Uint8Array.from([0xd2, ...bitmap, ...values.flatMap((v) => v ?? [])]);
}

/** A DONE token (final, with a row count). */
export function done(rows: number): Uint8Array {
  return Uint8Array.from([0xfd, ...le(0x10, 2), ...le(0xc1, 2), ...le(rows, 8)]);
}

/** Days since 0001-01-01 of a proleptic Gregorian date. */
export function days0001(year: number, month: number, day: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return Math.round(d.getTime() / 86_400_000) + 719_162;
}

/** Value encoders: the bytes a server sends for one column value, length prefix included. */
export const val = {
  /** A NULL of a type with a one-byte length prefix. */
  null8: (): number[] => [0],
  /** A NULL of a type with a two-byte length prefix (n/var/char, varbinary). */
  null16: (): number[] => [0xff, 0xff],
  int: (value: number | bigint, length: 1 | 2 | 4 | 8): number[] => [length, ...le(value, length)],
  /** decimal(p, s) of its unscaled value. */
  decimal: (unscaled: bigint, precision: number): number[] => {
    const n = decimalLength(precision);
    return [n, unscaled < 0n ? 0 : 1, ...le(unscaled < 0n ? -unscaled : unscaled, n - 1)];
  },
  /** money of its value × 10⁴: high half first. */
  money: (scaled: bigint): number[] => {
    const u = BigInt.asUintN(64, scaled);
    return [8, ...le(u >> 32n, 4), ...le(u & 0xffffffffn, 4)];
  },
  smallMoney: (scaled: number): number[] => [4, ...le(scaled, 4)],
  /** datetime of days since 1900-01-01 and 1/300 s. */
  dateTime: (days1900: number, ticks300: number): number[] => [
    8,
    ...le(days1900, 4),
    ...le(ticks300, 4),
  ],
  smallDateTime: (days1900: number, minutes: number): number[] => [
    4,
    ...le(days1900, 2),
    ...le(minutes, 2),
  ],
  date: (days: number): number[] => [3, ...le(days, 3)],
  /** time(scale) of its value in 10^-scale s. */
  time: (units: number, scale: number): number[] => {
    const n = timeLength(scale);
    return [n, ...le(units, n)];
  },
  dateTime2: (units: number, days: number, scale: number): number[] => {
    const n = timeLength(scale);
    return [n + 3, ...le(units, n), ...le(days, 3)];
  },
  /** datetimeoffset of its UTC time and day, and the offset in minutes it was written with. */
  dateTimeOffset: (units: number, days: number, offsetMinutes: number, scale: number): number[] => {
    const n = timeLength(scale);
    return [n + 5, ...le(units, n), ...le(days, 3), ...le(offsetMinutes, 2)];
  },
  guid: (wire: readonly number[]): number[] => [16, ...wire],
  nvarchar: (text: string): number[] => {
    const body: number[] = [];
    for (let i = 0; i < text.length; i++) body.push(...le(text.charCodeAt(i), 2));
    return [...le(body.length, 2), ...body];
  },
  varbinary: (bytes: readonly number[]): number[] => [...le(bytes.length, 2), ...bytes],
};

function timeLength(scale: number): number {
  return scale <= 2 ? 3 : scale <= 4 ? 4 : 5;
}

/** Bytes of a hex string. */
export function hexBytes(hex: string): number[] {
  return Array.from(
    { length: hex.length / 2 },
    (_, i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16),
  );
}

/** Lower-case hex of bytes. */
export function toHex(bytes: unknown): string {
  return Array.from(bytes as Uint8Array, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The GUID of SQL Server's documentation, `6F9619FF-8B86-D011-B42D-00C04FC964FF`: its RFC 4122
 * bytes (hex) and the bytes the wire carries (first three groups little-endian).
 */
export const KNOWN_GUID = {
  text: "6F9619FF-8B86-D011-B42D-00C04FC964FF",
  hex: "6f9619ff8b86d011b42d00c04fc964ff",
  wire: hexBytes("ff19966f868b11d0b42d00c04fc964ff"),
} as const;

/**
 * The signed value of Decimal128 words (little-endian two's complement).
 *
 * @param words Four words per value.
 * @param at Index of the value.
 * @returns The unscaled value.
 */
export function decimalValue(words: unknown, at = 0): bigint {
  const w = words as Uint32Array;
  if (!(w instanceof Uint32Array) || w.length < at * 4 + 4) {
    throw new Error(`not decimal words: ${w}`);
  }
  const u = (BigInt(w[at * 4 + 3]!) << 96n) | (BigInt(w[at * 4 + 2]!) << 64n) |
    (BigInt(w[at * 4 + 1]!) << 32n) | BigInt(w[at * 4]!);
  return BigInt.asIntN(128, u);
}
