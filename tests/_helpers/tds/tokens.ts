/**
 * Test support (TDS test server): the non-row tokens of a server response (LOGINACK, ENVCHANGE,
 * DONE/DONEINPROC/DONEPROC, ERROR/INFO, RETURNSTATUS) and the PRELOGIN answer, written in the
 * layout tedious' token parsers read.
 *
 * @module
 */
import { Writer } from "./wire.ts";

/** Token bytes. */
export const Token = {
  RETURNSTATUS: 0x79,
  COLMETADATA: 0x81,
  ERROR: 0xaa,
  INFO: 0xab,
  LOGINACK: 0xad,
  ROW: 0xd1,
  NBCROW: 0xd2,
  ENVCHANGE: 0xe3,
  DONE: 0xfd,
  DONEPROC: 0xfe,
  DONEINPROC: 0xff,
} as const;

/** DONE status bits. */
export const Done = {
  FINAL: 0x00,
  MORE: 0x01,
  ERROR: 0x02,
  COUNT: 0x10,
  ATTN: 0x20,
} as const;

/** TDS 7.4, the version tedious asks for by default, big-endian in LOGINACK. */
export const TDS_74 = 0x74000004;

/** Server name the tokens carry. */
export const SERVER_NAME = "rivet-tds-test";

/**
 * The PRELOGIN answer: VERSION and ENCRYPTION = NOT_SUP (this server speaks no TLS), MARS off.
 */
export function preloginResponse(): Uint8Array {
  const options: [number, Uint8Array][] = [
    [0x00, new Uint8Array([16, 0, 0x10, 0x00, 0, 0])], // VERSION 16.0.4096.0
    [0x01, new Uint8Array([0x02])], // ENCRYPTION: NOT_SUP
    [0x02, new Uint8Array([0x00])], // INSTOPT
    [0x03, new Uint8Array(0)], // THREADID
    [0x04, new Uint8Array([0x00])], // MARS off
  ];
  const w = new Writer();
  let offset = options.length * 5 + 1;
  for (const [token, data] of options) {
    w.u8(token).u16be(offset).u16be(data.length);
    offset += data.length;
  }
  w.u8(0xff);
  for (const [, data] of options) w.bytes(data);
  return w.view().slice();
}

/** LOGINACK for TDS 7.4, SQL Server 16 ("Microsoft SQL Server"). */
export function loginAck(w: Writer): void {
  const prog = "Microsoft SQL Server";
  w.u8(Token.LOGINACK).u16(1 + 4 + 1 + prog.length * 2 + 4);
  w.u8(1).u32be(TDS_74).bvarchar(prog).u8(16).u8(0).u8(0x10).u8(0x00);
}

/** ENVCHANGE with B_VARCHAR values: database (1), language (2), packet size (4). */
export function envChange(w: Writer, type: 1 | 2 | 4, value: string, old = ""): void {
  w.u8(Token.ENVCHANGE).u16(1 + 1 + value.length * 2 + 1 + old.length * 2);
  w.u8(type).bvarchar(value).bvarchar(old);
}

/** ENVCHANGE with B_VARBYTE values: collation (7), transaction begin (8), commit (9), rollback (10). */
export function envChangeBytes(
  w: Writer,
  type: 7 | 8 | 9 | 10,
  value: Uint8Array,
  old: Uint8Array,
): void {
  w.u8(Token.ENVCHANGE).u16(1 + 1 + value.length + 1 + old.length);
  w.u8(type).u8(value.length).bytes(value).u8(old.length).bytes(old);
}

/** DONE, DONEINPROC or DONEPROC. */
export function done(
  w: Writer,
  status: number,
  rows = 0n,
  token: number = Token.DONE,
  curCmd = 0xc1,
): void {
  w.u8(token).u16(status).u16(curCmd).u64(rows);
}

/** A server message: ERROR (class ≥ 11) or INFO. */
export interface ServerMessage {
  readonly number: number;
  readonly state?: number;
  readonly class?: number;
  readonly message: string;
}

/** ERROR or INFO token. */
export function serverMessage(w: Writer, m: ServerMessage, info = false): void {
  const proc = "";
  const body = 4 + 1 + 1 + 2 + m.message.length * 2 + 1 + SERVER_NAME.length * 2 + 1 +
    proc.length * 2 + 4;
  w.u8(info ? Token.INFO : Token.ERROR).u16(body);
  w.i32(m.number).u8(m.state ?? 1).u8(m.class ?? (info ? 0 : 16));
  w.usvarchar(m.message).bvarchar(SERVER_NAME).bvarchar(proc).i32(1);
}

/** RETURNSTATUS of a procedure call. */
export function returnStatus(w: Writer, value: number): void {
  w.u8(Token.RETURNSTATUS).i32(value);
}
