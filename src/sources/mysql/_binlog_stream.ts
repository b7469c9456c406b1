/**
 * The replication side of a mysql2 connection: `COM_REGISTER_SLAVE` then `COM_BINLOG_DUMP`, with
 * every binlog event handed over raw. mysql2's own `BinlogDump` parses a few event types and
 * drops the rest, so this module queues its own command object on the connection instead (the
 * same duck-typed interface mysql2's commands implement: `execute(packet, connection)` returns
 * true when the command is over, `onResult` receives a connection failure). No deep import of
 * mysql2 is needed, which keeps the bundled build working.
 *
 * Layer: sources (MySQL).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { MysqlConnection } from "./connect.ts";

/** `COM_BINLOG_DUMP` flag: answer EOF at the end of the log instead of waiting for more. */
export const BINLOG_DUMP_NON_BLOCK = 1;

/** A packet as mysql2 hands it to a command. */
interface InPacket {
  readonly buffer: Uint8Array;
  readonly offset: number;
  readonly end: number;
}

/** The private parts of a mysql2 connection a command uses. */
interface CommandHost {
  addCommand(cmd: unknown): unknown;
  writePacket(packet: unknown): void;
  _resetSequenceId(): void;
}

/** An outgoing packet in the shape `Connection.writePacket` expects. */
class OutPacket {
  readonly buffer: Buffer;
  constructor(payload: Uint8Array) {
    this.buffer = Buffer.alloc(payload.length + 4);
    this.buffer.set(payload, 4);
  }
  length(): number {
    return this.buffer.length;
  }
  writeHeader(sequenceId: number): void {
    const n = this.buffer.length - 4;
    this.buffer[0] = n & 0xff;
    this.buffer[1] = (n >> 8) & 0xff;
    this.buffer[2] = (n >> 16) & 0xff;
    this.buffer[3] = sequenceId;
  }
}

/** Where and how to dump. */
export interface DumpRequest {
  readonly serverId: number;
  readonly file: string;
  readonly pos: number;
  readonly flags: number;
}

/** Receivers of the dump. */
export interface DumpHandlers {
  /** One event: `buf[start, end)` (header included, checksum trailer included when enabled). */
  event(buf: Uint8Array, start: number, end: number): void;
  /** The dump is over: EOF of a non-blocking dump (no error), or a server/connection error. */
  end(error?: unknown): void;
}

function registerPayload(serverId: number): Uint8Array {
  const out = new Uint8Array(18);
  const view = new DataView(out.buffer);
  out[0] = 0x15; // COM_REGISTER_SLAVE
  view.setUint32(1, serverId, true);
  // host, user, password: empty; port 0, rank 0, master id 0
  return out;
}

function dumpPayload(request: DumpRequest): Uint8Array {
  const name = new TextEncoder().encode(request.file);
  const out = new Uint8Array(11 + name.length);
  const view = new DataView(out.buffer);
  out[0] = 0x12; // COM_BINLOG_DUMP
  view.setUint32(1, request.pos, true);
  view.setUint16(5, request.flags, true);
  view.setUint32(7, request.serverId, true);
  out.set(name, 11);
  return out;
}

/** A server error packet as an Error with mysql2's fields (`errno`, `sqlMessage`). */
function errorOf(packet: InPacket): Error {
  const b = packet.buffer;
  const p = packet.offset;
  const errno = b[p + 1]! | (b[p + 2]! << 8);
  const hasState = b[p + 3] === 0x23; // '#'
  const text = new TextDecoder().decode(b.subarray(p + (hasState ? 9 : 3), packet.end));
  return Object.assign(new Error(text), { errno, sqlMessage: text, code: `ER_${errno}` });
}

/**
 * Registers as a replica and starts the binlog dump on an idle connection. The connection is
 * the dump's from then on: destroy it to stop.
 *
 * @param conn Connected, idle connection (session variables already set).
 * @param request Server id, file, position and flags.
 * @param handlers Event and end receivers (called synchronously from the socket's data).
 */
export function startDump(
  conn: MysqlConnection,
  request: DumpRequest,
  handlers: DumpHandlers,
): void {
  const host = conn as unknown as CommandHost;
  let state: "register" | "dump" | "over" = "register";
  const over = (error?: unknown) => {
    if (state === "over") return;
    state = "over";
    handlers.end(error);
  };
  const command = {
    onResult: (error: unknown) => over(error),
    execute(packet: InPacket | undefined, connection: CommandHost): boolean {
      if (packet === undefined) {
        connection._resetSequenceId();
        connection.writePacket(new OutPacket(registerPayload(request.serverId)));
        return false;
      }
      const first = packet.buffer[packet.offset];
      if (first === 0xff) {
        over(errorOf(packet));
        return true;
      }
      if (state === "register") {
        state = "dump";
        connection._resetSequenceId();
        connection.writePacket(new OutPacket(dumpPayload(request)));
        return false;
      }
      if (first === 0xfe && packet.end - packet.offset < 13) {
        over();
        return true;
      }
      if (state === "dump") handlers.event(packet.buffer, packet.offset + 1, packet.end);
      return state !== "dump";
    },
  };
  host.addCommand(command);
}
