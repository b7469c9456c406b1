/**
 * Binlog event framing for the MySQL/MariaDB change reader: the common header, the events that
 * carry positions and transaction boundaries (FORMAT_DESCRIPTION, ROTATE, QUERY, XID, GTID),
 * TABLE_MAP and the fixed part of the row events. Pure functions over one event's bytes; the
 * row images themselves are decoded by `_binlog_rows.ts`.
 *
 * Layer: sources (MySQL).
 *
 * @module
 */
import { inflateSync } from "node:zlib";

/** Event type codes this reader acts on (MySQL and MariaDB share the low numbers). */
export const EventType = {
  Query: 2,
  Rotate: 4,
  FormatDescription: 15,
  Xid: 16,
  TableMap: 19,
  WriteRowsV1: 23,
  UpdateRowsV1: 24,
  DeleteRowsV1: 25,
  Heartbeat: 27,
  WriteRowsV2: 30,
  UpdateRowsV2: 31,
  DeleteRowsV2: 32,
  /** MySQL 8.0.26+: heartbeat with a 64-bit position. */
  HeartbeatV2: 41,
  /** MySQL 8: JSON partial updates (`binlog_row_value_options = PARTIAL_JSON`). */
  PartialUpdateRows: 39,
  /** MySQL 8: a zstd-compressed transaction (`binlog_transaction_compression = ON`). */
  TransactionPayload: 40,
  /** MariaDB: starts a transaction (or a standalone statement). */
  MariaGtid: 162,
  /** MariaDB: a QUERY event with its statement compressed (`log_bin_compress`). */
  MariaQueryCompressed: 165,
  /** MariaDB compressed row events, v1 (166..168) and v2 (169..171). */
  MariaWriteRowsCompressedV1: 166,
  MariaDeleteRowsCompressed: 171,
} as const;

/** Size of the common event header. */
export const HEADER_LENGTH = 19;

/** The common header of an event. */
export interface EventHeader {
  readonly type: number;
  readonly serverId: number;
  readonly size: number;
  /** Position just after this event (0 for artificial events). */
  readonly logPos: number;
  readonly flags: number;
}

/**
 * Reads the common header at `at`.
 *
 * @param buf Bytes holding the event.
 * @param at Offset of its first byte.
 * @returns The header.
 */
export function readHeader(buf: Uint8Array, at: number): EventHeader {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return {
    type: buf[at + 4]!,
    serverId: view.getUint32(at + 5, true),
    size: view.getUint32(at + 9, true),
    logPos: view.getUint32(at + 13, true),
    flags: view.getUint16(at + 17, true),
  };
}

/** Binlog checksum algorithm announced by a FORMAT_DESCRIPTION event: 0 none, 1 CRC32. */
export function checksumOfFormat(buf: Uint8Array, at: number, end: number): number {
  // The algorithm byte precedes the (always present) 4 checksum bytes of the event itself on
  // every server since MySQL 5.6.1 / MariaDB 5.3; older servers have no checksums at all.
  const alg = buf[end - 5]!;
  void at;
  return alg === 1 ? 1 : 0;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * CRC-32 (the zlib polynomial) of `buf[start, end)`, as the binlog trailers use.
 *
 * @example
 * ```ts
 * import { crc32 } from "./_binlog_events.ts";
 * if (crc32(new TextEncoder().encode("123456789"), 0, 9) !== 0xcbf43926) throw new Error();
 * ```
 */
export function crc32(buf: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** The file name of a ROTATE event body (the next log's first position is in its first 8 bytes). */
export function rotateTarget(buf: Uint8Array, body: number, end: number): string {
  return new TextDecoder().decode(buf.subarray(body + 8, end));
}

/**
 * The default database and the start of the statement of a QUERY event (`BEGIN`, `COMMIT`,
 * DDL, …): enough to tell those apart and to name a truncated table.
 *
 * @param buf Event bytes.
 * @param body Offset of the post-header.
 * @param end One past the last byte before the checksum.
 */
export function queryText(
  buf: Uint8Array,
  body: number,
  end: number,
): { readonly database: string; readonly text: string } {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dbLen = buf[body + 8]!;
  const statusLen = view.getUint16(body + 11, true);
  const dbAt = body + 13 + statusLen;
  const start = dbAt + dbLen + 1;
  const decoder = new TextDecoder();
  return {
    database: decoder.decode(buf.subarray(dbAt, dbAt + dbLen)),
    text: decoder.decode(buf.subarray(start, Math.min(end, start + 400))),
  };
}

/**
 * The table a `TRUNCATE [TABLE] [db.]name` statement empties, or undefined for any other one.
 *
 * @example
 * ```ts
 * import { truncatedTable } from "./_binlog_events.ts";
 * const t = truncatedTable("truncate table `shop`.orders", "rivet");
 * if (t !== "shop.orders") throw new Error(t);
 * ```
 */
export function truncatedTable(text: string, database: string): string | undefined {
  const m = /^\s*TRUNCATE\s+(?:TABLE\s+)?`?(\w+)`?(?:\s*\.\s*`?(\w+)`?)?/i.exec(text);
  if (m === null) return undefined;
  return m[2] === undefined ? `${database}.${m[1]}` : `${m[1]}.${m[2]}`;
}

/** Whether a MariaDB GTID event opens a transaction (not a standalone DDL statement). */
export function mariaGtidOpensTransaction(buf: Uint8Array, body: number): boolean {
  const FL_STANDALONE = 1;
  return (buf[body + 12]! & FL_STANDALONE) === 0;
}

/** A length-encoded integer and the offset after it. */
export function lenenc(buf: Uint8Array, p: number): [number, number] {
  const b = buf[p]!;
  if (b < 0xfb) return [b, p + 1];
  if (b === 0xfc) return [buf[p + 1]! | (buf[p + 2]! << 8), p + 3];
  if (b === 0xfd) return [buf[p + 1]! | (buf[p + 2]! << 8) | (buf[p + 3]! << 16), p + 4];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return [view.getUint32(p + 1, true) + view.getUint32(p + 5, true) * 4294967296, p + 9];
}

/** 6-byte little-endian table id. */
export function tableId(buf: Uint8Array, p: number): number {
  let v = 0;
  for (let i = 5; i >= 0; i--) v = v * 256 + buf[p + i]!;
  return v;
}

/** A TABLE_MAP event: which table an id means and how its columns are packed. */
export interface TableMap {
  readonly id: number;
  readonly database: string;
  readonly table: string;
  /** Binlog column type per column. */
  readonly types: Uint8Array;
  /** Per-column metadata (meaning depends on the type, see {@linkcode readTableMap}). */
  readonly meta: Uint16Array;
}

/** Types whose TABLE_MAP metadata is one byte. */
const META1 = new Set([4, 5, 17, 18, 19, 245, 249, 250, 251, 252, 255]);
/** Types whose TABLE_MAP metadata is two bytes. */
const META2 = new Set([15, 16, 246, 247, 248, 253, 254]);

/**
 * Reads the table id and names of a TABLE_MAP body; the column part only when `full` (a captured
 * table), so maps of other tables cost almost nothing.
 *
 * Metadata per column, as one number: FLOAT/DOUBLE the pack length; VARCHAR the maximum length
 * in bytes; BIT `bits % 8 | bytes << 8`; NEWDECIMAL `precision << 8 | scale`; BLOB/JSON/GEOMETRY
 * the size of the length prefix; temporal types v2 the fractional digits; STRING (CHAR, ENUM,
 * SET) `real type << 8 | length byte` as stored (see {@linkcode stringMeta}).
 */
export function readTableMap(
  buf: Uint8Array,
  body: number,
  full: boolean,
): TableMap | { readonly id: number; readonly database: string; readonly table: string } {
  const id = tableId(buf, body);
  let p = body + 8;
  const dbLen = buf[p]!;
  const database = new TextDecoder().decode(buf.subarray(p + 1, p + 1 + dbLen));
  p += 1 + dbLen + 1;
  const tLen = buf[p]!;
  const table = new TextDecoder().decode(buf.subarray(p + 1, p + 1 + tLen));
  p += 1 + tLen + 1;
  if (!full) return { id, database, table };
  const [n, afterCount] = lenenc(buf, p);
  p = afterCount;
  const types = buf.slice(p, p + n);
  p += n;
  const [, afterMetaLen] = lenenc(buf, p);
  p = afterMetaLen;
  const meta = new Uint16Array(n);
  for (let c = 0; c < n; c++) {
    const t = types[c]!;
    if (META1.has(t)) {
      meta[c] = buf[p]!;
      p += 1;
    } else if (META2.has(t)) {
      // VARCHAR and BIT little-endian; NEWDECIMAL and STRING byte by byte (big-endian order).
      meta[c] = t === 15 || t === 253 ? buf[p]! | (buf[p + 1]! << 8) : (buf[p]! << 8) | buf[p + 1]!;
      if (t === 16) meta[c] = buf[p]! | (buf[p + 1]! << 8);
      p += 2;
    }
  }
  return { id, database, table, types, meta };
}

/**
 * The real type and maximum byte length of a STRING column (CHAR, BINARY, ENUM, SET) from its
 * two metadata bytes: lengths above 255 borrow two bits of the type byte.
 *
 * @param meta `byte0 << 8 | byte1` from {@linkcode readTableMap}.
 * @returns Real type (254, 247 or 248) and length (bytes for CHAR, pack length for ENUM/SET).
 */
export function stringMeta(meta: number): { type: number; length: number } {
  const b0 = meta >> 8;
  const b1 = meta & 0xff;
  if ((b0 & 0x30) !== 0x30) return { type: b0 | 0x30, length: b1 | (((b0 & 0x30) ^ 0x30) << 4) };
  return { type: b0, length: b1 };
}

/** Which operation a rows event type is, or undefined for any other event. */
export function rowsEventOp(type: number): 0 | 1 | 2 | undefined {
  if (type === 23 || type === 30) return 0;
  if (type === 24 || type === 31) return 1;
  if (type === 25 || type === 32) return 2;
  if (type >= 166 && type <= 171) return ((type - 166) % 3) as 0 | 1 | 2;
  return undefined;
}

/** The fixed part of a rows event and where its rows start. */
export interface RowsEvent {
  readonly tableId: number;
  /** STMT_END_F: the last rows event of a statement. */
  readonly statementEnd: boolean;
  readonly columns: number;
  /** Columns present in the (before) image. */
  readonly present: Uint8Array;
  /** Columns present in the after image (updates). */
  readonly presentAfter: Uint8Array | undefined;
  /** Bytes holding the rows (may be an inflated copy) and their bounds. */
  readonly buf: Uint8Array;
  readonly start: number;
  readonly end: number;
}

/**
 * Reads a rows event (v1, v2 or MariaDB compressed) up to its first row.
 *
 * @param buf Event bytes.
 * @param type Event type.
 * @param body Offset of the post-header.
 * @param end One past the last byte before the checksum.
 */
export function readRowsEvent(buf: Uint8Array, type: number, body: number, end: number): RowsEvent {
  const id = tableId(buf, body);
  const flags = buf[body + 6]! | (buf[body + 7]! << 8);
  let p = body + 8;
  if (type >= 30 && type <= 32) p += buf[p]! | (buf[p + 1]! << 8); // v2 extra data, length incl.
  const [columns, afterCount] = lenenc(buf, p);
  p = afterCount;
  const bitmap = (columns + 7) >> 3;
  const present = buf.slice(p, p + bitmap);
  p += bitmap;
  let presentAfter: Uint8Array | undefined;
  if (type === 24 || type === 31 || type === 167 || type === 170) {
    presentAfter = buf.slice(p, p + bitmap);
    p += bitmap;
  }
  let rows = buf;
  let rowsEnd = end;
  if (type >= 166 && type <= 171) {
    rows = inflateRows(buf, p, end);
    p = 0;
    rowsEnd = rows.length;
  }
  return {
    tableId: id,
    statementEnd: (flags & 1) !== 0,
    columns,
    present,
    presentAfter,
    buf: rows,
    start: p,
    end: rowsEnd,
  };
}

/**
 * Inflates the rows of a MariaDB compressed rows event: one header byte whose low 3 bits give
 * the size of the (big-endian) uncompressed length that follows, then zlib data.
 */
function inflateRows(buf: Uint8Array, p: number, end: number): Uint8Array {
  const lenBytes = buf[p]! & 0x07;
  const out = inflateSync(buf.subarray(p + 1 + lenBytes, end));
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Number of set bits among the first `n` bits of a bitmap. */
export function popcount(bits: Uint8Array, n: number): number {
  let count = 0;
  for (let i = 0; i < n; i++) if ((bits[i >> 3]! & (1 << (i & 7))) !== 0) count++;
  return count;
}
