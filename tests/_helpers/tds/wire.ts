/**
 * Test support (TDS test server): the byte level of TDS. A growable little-endian writer, a
 * reader over a received message, packet framing (8-byte headers, EOM on the last packet of a
 * message) and the packet types the server handles.
 *
 * @module
 */

/** TDS packet types. */
export const PacketType = {
  SQL_BATCH: 0x01,
  RPC: 0x03,
  TABULAR: 0x04,
  ATTENTION: 0x06,
  TRANSACTION_MANAGER: 0x0e,
  LOGIN7: 0x10,
  PRELOGIN: 0x12,
} as const;

const HEADER = 8;

/** A growable byte buffer written little-endian, as TDS wants (except where a caller says). */
export class Writer {
  #buf = new Uint8Array(8192);
  #view = new DataView(this.#buf.buffer);
  length = 0;

  #room(n: number): void {
    if (this.length + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.length));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.#room(1);
    this.#buf[this.length++] = v & 0xff;
    return this;
  }
  u16(v: number): this {
    this.#room(2);
    this.#view.setUint16(this.length, v, true);
    this.length += 2;
    return this;
  }
  i16(v: number): this {
    this.#room(2);
    this.#view.setInt16(this.length, v, true);
    this.length += 2;
    return this;
  }
  u16be(v: number): this {
    this.#room(2);
    this.#view.setUint16(this.length, v, false);
    this.length += 2;
    return this;
  }
  u24(v: number): this {
    return this.u8(v & 0xff).u8((v >>> 8) & 0xff).u8((v >>> 16) & 0xff);
  }
  u32(v: number): this {
    this.#room(4);
    this.#view.setUint32(this.length, v >>> 0, true);
    this.length += 4;
    return this;
  }
  i32(v: number): this {
    this.#room(4);
    this.#view.setInt32(this.length, v, true);
    this.length += 4;
    return this;
  }
  u32be(v: number): this {
    this.#room(4);
    this.#view.setUint32(this.length, v >>> 0, false);
    this.length += 4;
    return this;
  }
  u64(v: bigint): this {
    this.#room(8);
    this.#view.setBigUint64(this.length, v, true);
    this.length += 8;
    return this;
  }
  i64(v: bigint): this {
    this.#room(8);
    this.#view.setBigInt64(this.length, v, true);
    this.length += 8;
    return this;
  }
  f32(v: number): this {
    this.#room(4);
    this.#view.setFloat32(this.length, v, true);
    this.length += 4;
    return this;
  }
  f64(v: number): this {
    this.#room(8);
    this.#view.setFloat64(this.length, v, true);
    this.length += 8;
    return this;
  }
  /** Unsigned little-endian integer of `bytes` bytes (up to 16) from a bigint. */
  uint(v: bigint, bytes: number): this {
    this.#room(bytes);
    for (let i = 0; i < bytes; i++) {
      this.#buf[this.length++] = Number(v & 0xffn);
      v >>= 8n;
    }
    return this;
  }
  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.#buf.set(b, this.length);
    this.length += b.length;
    return this;
  }
  /** UTF-16LE text without a length. */
  ucs2(s: string): this {
    this.#room(s.length * 2);
    for (let i = 0; i < s.length; i++) {
      this.#view.setUint16(this.length, s.charCodeAt(i), true);
      this.length += 2;
    }
    return this;
  }
  /** B_VARCHAR: a one-byte character count, then UTF-16LE. */
  bvarchar(s: string): this {
    return this.u8(s.length).ucs2(s);
  }
  /** US_VARCHAR: a two-byte character count, then UTF-16LE. */
  usvarchar(s: string): this {
    return this.u16(s.length).ucs2(s);
  }
  /** Overwrites a u16 at `at` (token lengths known only after the body). */
  patchU16(at: number, v: number): void {
    this.#view.setUint16(at, v, true);
  }
  view(): Uint8Array {
    return this.#buf.subarray(0, this.length);
  }
  /** Removes the first `n` bytes. */
  consume(n: number): void {
    this.#buf.copyWithin(0, n, this.length);
    this.length -= n;
  }
}

/** Reads a received message. Throws a RangeError past its end. */
export class Reader {
  readonly view: DataView;
  pos = 0;
  constructor(readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  get left(): number {
    return this.buf.length - this.pos;
  }
  u8(): number {
    return this.view.getUint8(this.pos++);
  }
  u16(): number {
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(): number {
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(): number {
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  uint(bytes: number): bigint {
    let v = 0n;
    for (let i = bytes - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.buf[this.pos + i]!);
    this.pos += bytes;
    return v;
  }
  bytes(n: number): Uint8Array {
    if (n > this.left) throw new RangeError("read past the end of the message");
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  ucs2(chars: number): string {
    return ucs2Decode(this.bytes(chars * 2));
  }
  bvarchar(): string {
    return this.ucs2(this.u8());
  }
  usvarchar(): string {
    return this.ucs2(this.u16());
  }
}

/** UTF-16LE bytes to a string. */
export function ucs2Decode(b: Uint8Array): string {
  return new TextDecoder("utf-16le").decode(b);
}

/** One complete client message. */
export interface Message {
  readonly type: number;
  readonly status: number;
  readonly payload: Uint8Array;
}

/**
 * Reads client messages from a socket: packets are joined until one carries EOM. An ATTENTION
 * packet is its own message. Returns null at end of stream.
 */
export class MessageReader {
  #pending = new Uint8Array(0);
  #parts: Uint8Array[] = [];
  #chunk = new Uint8Array(65536);
  constructor(private readonly conn: Deno.Conn) {}

  async #fill(need: number): Promise<boolean> {
    while (this.#pending.length < need) {
      const n = await this.conn.read(this.#chunk);
      if (n === null) return false;
      const next = new Uint8Array(this.#pending.length + n);
      next.set(this.#pending);
      next.set(this.#chunk.subarray(0, n), this.#pending.length);
      this.#pending = next;
    }
    return true;
  }

  async next(): Promise<Message | null> {
    while (true) {
      if (!await this.#fill(HEADER)) return null;
      const type = this.#pending[0]!;
      const status = this.#pending[1]!;
      const length = (this.#pending[2]! << 8) | this.#pending[3]!;
      if (length < HEADER) throw new Error(`bad TDS packet length ${length}`);
      if (!await this.#fill(length)) return null;
      this.#parts.push(this.#pending.slice(HEADER, length));
      this.#pending = this.#pending.slice(length);
      if (status & 0x01) {
        const total = this.#parts.reduce((s, p) => s + p.length, 0);
        const payload = new Uint8Array(total);
        let at = 0;
        for (const p of this.#parts) {
          payload.set(p, at);
          at += p.length;
        }
        this.#parts = [];
        return { type, status, payload };
      }
    }
  }
}

/**
 * Writes one server message as TDS packets. Tokens are appended to `body`; `flush()` sends the
 * full packets accumulated so far and waits for the socket to take them, which is how a slow
 * client slows the server down (TCP backpressure) instead of the server buffering a result.
 */
export class MessageWriter {
  readonly body = new Writer();
  #packetId = 1;
  constructor(
    private readonly conn: Deno.Conn,
    private readonly packetSize: number,
    private readonly spid: number,
    private readonly type: number = PacketType.TABULAR,
  ) {}

  #packet(data: Uint8Array, eom: boolean): Uint8Array {
    const p = new Uint8Array(HEADER + data.length);
    const v = new DataView(p.buffer);
    v.setUint8(0, this.type);
    v.setUint8(1, eom ? 0x01 : 0x00);
    v.setUint16(2, p.length, false);
    v.setUint16(4, this.spid, false);
    v.setUint8(6, this.#packetId);
    this.#packetId = (this.#packetId + 1) % 256;
    p.set(data, HEADER);
    return p;
  }

  async #write(bytes: Uint8Array): Promise<void> {
    let at = 0;
    while (at < bytes.length) at += await this.conn.write(bytes.subarray(at));
  }

  /** Sends every full packet of the body. */
  async flush(): Promise<void> {
    const room = this.packetSize - HEADER;
    if (this.body.length < room) return;
    const packets: Uint8Array[] = [];
    let at = 0;
    const data = this.body.view();
    while (data.length - at >= room) {
      packets.push(this.#packet(data.subarray(at, at + room), false));
      at += room;
    }
    this.body.consume(at);
    await this.#write(concat(packets));
  }

  /** Sends the rest of the body as the last packet (EOM). */
  async end(): Promise<void> {
    const room = this.packetSize - HEADER;
    const packets: Uint8Array[] = [];
    const data = this.body.view();
    let at = 0;
    while (data.length - at > room) {
      packets.push(this.#packet(data.subarray(at, at + room), false));
      at += room;
    }
    packets.push(this.#packet(data.subarray(at), true));
    this.body.consume(data.length);
    await this.#write(concat(packets));
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
