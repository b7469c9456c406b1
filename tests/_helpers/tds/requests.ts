/**
 * Test support (TDS test server): reading client requests. LOGIN7 (user, password, database),
 * SQL_BATCH text, RPC calls with their typed parameters (TYPE_INFO + value, as tedious writes
 * them), and transaction-manager requests.
 *
 * @module
 */
import { Reader, ucs2Decode } from "./wire.ts";
import { clockOfTicks, dateOfDays } from "./values.ts";

/** What LOGIN7 carries that the server checks. */
export interface Login {
  readonly user: string;
  readonly password: string;
  readonly database: string;
  readonly packetSize: number;
}

/** Parses LOGIN7; the password is unscrambled (XOR 0xA5, then nibbles swapped). */
export function parseLogin(p: Uint8Array): Login {
  const r = new Reader(p);
  const field = (at: number, password = false) => {
    r.pos = at;
    const offset = r.u16();
    const chars = r.u16();
    const bytes = p.slice(offset, offset + chars * 2);
    if (password) {
      for (let i = 0; i < bytes.length; i++) {
        const b = bytes[i]! ^ 0xa5;
        bytes[i] = ((b & 0x0f) << 4) | (b >> 4);
      }
    }
    return ucs2Decode(bytes);
  };
  r.pos = 8;
  const packetSize = r.u32();
  return {
    user: field(40),
    password: field(44, true),
    database: field(68),
    packetSize,
  };
}

function skipAllHeaders(r: Reader): void {
  const total = r.u32();
  r.pos += total - 4;
}

/** The text of a SQL_BATCH. */
export function parseBatch(p: Uint8Array): string {
  const r = new Reader(p);
  skipAllHeaders(r);
  return ucs2Decode(r.bytes(r.left));
}

/** A parameter value as PostgreSQL takes it: text, bytes or NULL. */
export type ParamValue = string | Uint8Array | null;

/** One RPC parameter. */
export interface Param {
  readonly name: string;
  readonly value: ParamValue;
}

/** An RPC call: a procedure id (10 = sp_executesql) or name, and its parameters. */
export interface RpcCall {
  readonly proc: number | string;
  readonly params: Param[];
}

function readPlp(r: Reader): Uint8Array | null {
  const total = r.u64();
  if (total === 0xffffffffffffffffn) return null;
  const parts: Uint8Array[] = [];
  while (true) {
    const n = r.u32();
    if (n === 0) break;
    parts.push(r.bytes(n));
  }
  const out = new Uint8Array(parts.reduce((s, x) => s + x.length, 0));
  let at = 0;
  for (const x of parts) {
    out.set(x, at);
    at += x.length;
  }
  return out;
}

function guidText(b: Uint8Array): string {
  const order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
  const hex = order.map((i) => b[i]!.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}

function decimalText(sign: number, units: bigint, scale: number): string {
  const digits = units.toString().padStart(scale + 1, "0");
  const int = digits.slice(0, digits.length - scale);
  const frac = scale > 0 ? "." + digits.slice(digits.length - scale) : "";
  return (sign === 0 && units !== 0n ? "-" : "") + int + frac;
}

/** Reads one parameter's TYPE_INFO and value. */
function readParam(r: Reader): ParamValue {
  const type = r.u8();
  switch (type) {
    case 0x26: // INTN
    case 0x68: // BITN
    case 0x6d: // FLTN
    case 0x6e: // MONEYN
    case 0x6f: // DATETIMN
    case 0x24: { // GUID
      r.u8();
      const len = r.u8();
      if (len === 0) return null;
      const b = r.bytes(len);
      const v = new DataView(b.buffer, b.byteOffset, len);
      if (type === 0x26) {
        return len === 1
          ? String(b[0])
          : len === 2
          ? String(v.getInt16(0, true))
          : len === 4
          ? String(v.getInt32(0, true))
          : String(v.getBigInt64(0, true));
      }
      if (type === 0x68) return b[0] ? "true" : "false";
      if (type === 0x6d) return String(len === 4 ? v.getFloat32(0, true) : v.getFloat64(0, true));
      if (type === 0x24) return guidText(b);
      if (type === 0x6e) {
        const units = len === 4
          ? BigInt(v.getInt32(0, true))
          : (BigInt(v.getInt32(0, true)) << 32n) | BigInt(v.getUint32(4, true));
        return decimalText(units < 0n ? 0 : 1, units < 0n ? -units : units, 4);
      }
      // DATETIMN
      if (len === 4) {
        const days = v.getUint16(0, true);
        const mins = v.getUint16(2, true);
        return `${dateOfDays(days + 693595)} ${clockOfTicks(BigInt(mins) * 600_000_000n)}`;
      }
      const days = v.getInt32(0, true);
      const ticks300 = v.getUint32(4, true);
      const ms = Math.round(ticks300 * 10 / 3);
      return `${dateOfDays(days + 693595)} ${clockOfTicks(BigInt(ms) * 10_000n)}`;
    }
    case 0x6a:
    case 0x6c: {
      r.u8();
      r.u8();
      const scale = r.u8();
      const len = r.u8();
      if (len === 0) return null;
      const sign = r.u8();
      return decimalText(sign, r.uint(len - 1), scale);
    }
    case 0xe7:
    case 0xef:
    case 0xa7:
    case 0xaf:
    case 0xa5:
    case 0xad: {
      const max = r.u16();
      const chars = type !== 0xa5 && type !== 0xad;
      if (chars) r.bytes(5);
      let data: Uint8Array | null;
      if (max === 0xffff) data = readPlp(r);
      else {
        const len = r.u16();
        data = len === 0xffff ? null : r.bytes(len);
      }
      if (data === null) return null;
      if (!chars) return data.slice();
      return type === 0xe7 || type === 0xef
        ? ucs2Decode(data)
        : new TextDecoder("latin1").decode(data);
    }
    case 0x28:
    case 0x29:
    case 0x2a:
    case 0x2b: {
      const scale = type === 0x28 ? 0 : r.u8();
      const len = r.u8();
      if (len === 0) return null;
      const timeLen = type === 0x28 ? 0 : len - (type === 0x29 ? 0 : type === 0x2a ? 3 : 5);
      const ticks = timeLen ? r.uint(timeLen) * 10n ** BigInt(7 - scale) : 0n;
      if (type === 0x29) return clockOfTicks(ticks);
      const days = Number(r.uint(3));
      if (type === 0x28) return dateOfDays(days);
      const text = `${dateOfDays(days)} ${clockOfTicks(ticks)}`;
      if (type === 0x2a) return text;
      // The wire value is UTC (the offset that follows only says how to show it).
      r.bytes(2);
      return `${text}+00`;
    }
    case 0xf1: {
      if (r.u8() === 1) {
        r.bvarchar();
        r.bvarchar();
        r.usvarchar();
      }
      const data = readPlp(r);
      return data === null ? null : ucs2Decode(data);
    }
    default:
      throw new Error(`unsupported parameter type 0x${type.toString(16)}`);
  }
}

/** Parses an RPC_REQUEST message (a single call). */
export function parseRpc(p: Uint8Array): RpcCall {
  const r = new Reader(p);
  skipAllHeaders(r);
  const len = r.u16();
  const proc = len === 0xffff ? r.u16() : r.ucs2(len);
  r.u16(); // option flags
  const params: Param[] = [];
  while (r.left > 0) {
    const name = r.bvarchar();
    r.u8(); // status flags
    params.push({ name, value: readParam(r) });
  }
  return { proc, params };
}

/** A transaction-manager request: begin (with an isolation level), commit or rollback. */
export interface TmRequest {
  readonly kind: "begin" | "commit" | "rollback" | "other";
  readonly isolation?: number;
}

/** Parses a TRANSACTION_MANAGER message. */
export function parseTm(p: Uint8Array): TmRequest {
  const r = new Reader(p);
  skipAllHeaders(r);
  const type = r.u16();
  if (type === 5) return { kind: "begin", isolation: r.u8() };
  if (type === 7) return { kind: "commit" };
  if (type === 8) return { kind: "rollback" };
  return { kind: "other" };
}
