/**
 * PostgreSQL v3 frontend message encoders and backend message field parsers. Pure byte work, no
 * I/O, so every function here is unit-testable without a server.
 *
 * @module
 */
import { clipServerText } from "../_server_text.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Protocol 3.0 as the startup packet spells it. */
export const PROTOCOL_3_0 = 196608;
/** Magic "protocol version" of an SSLRequest. */
export const SSL_REQUEST_CODE = 80877103;
/** Magic "protocol version" of a CancelRequest. */
export const CANCEL_REQUEST_CODE = 80877102;

/**
 * A growable frontend message buffer. Several messages are appended and flushed in one write, so
 * a FETCH round trip is one packet.
 */
export class MessageWriter {
  #buf = new Uint8Array(1024);
  #view = new DataView(this.#buf.buffer);
  #len = 0;
  #msgStart = -1;

  #ensure(extra: number): void {
    if (this.#len + extra <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** Starts a typed message (`type` is its ASCII code, or 0 for the untyped startup packets). */
  begin(type: number): this {
    this.#ensure(5);
    if (type !== 0) this.#buf[this.#len++] = type;
    this.#msgStart = this.#len;
    this.#len += 4;
    return this;
  }

  /** Ends the message started by {@linkcode begin} by writing its length. */
  end(): this {
    this.#view.setInt32(this.#msgStart, this.#len - this.#msgStart);
    this.#msgStart = -1;
    return this;
  }

  /** Appends a big-endian int32. */
  int32(value: number): this {
    this.#ensure(4);
    this.#view.setInt32(this.#len, value);
    this.#len += 4;
    return this;
  }

  /** Appends a big-endian int16. */
  int16(value: number): this {
    this.#ensure(2);
    this.#view.setInt16(this.#len, value);
    this.#len += 2;
    return this;
  }

  /** Appends raw bytes. */
  bytes(value: Uint8Array): this {
    this.#ensure(value.length);
    this.#buf.set(value, this.#len);
    this.#len += value.length;
    return this;
  }

  /** Appends a NUL-terminated UTF-8 string. */
  cstring(value: string): this {
    const bytes = encoder.encode(value);
    this.#ensure(bytes.length + 1);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
    this.#buf[this.#len++] = 0;
    return this;
  }

  /** Returns the accumulated bytes and resets the writer. */
  take(): Uint8Array {
    const out = this.#buf.slice(0, this.#len);
    this.#len = 0;
    return out;
  }

  /** Bytes appended so far. */
  get length(): number {
    return this.#len;
  }
}

/** StartupMessage with the given parameters. */
export function startupMessage(params: Readonly<Record<string, string>>): Uint8Array {
  const w = new MessageWriter().begin(0).int32(PROTOCOL_3_0);
  for (const [k, v] of Object.entries(params)) w.cstring(k).cstring(v);
  return w.cstring("").end().take();
}

/** SSLRequest packet. */
export function sslRequest(): Uint8Array {
  return new MessageWriter().begin(0).int32(SSL_REQUEST_CODE).end().take();
}

/** CancelRequest packet for a backend. */
export function cancelRequest(pid: number, secret: number): Uint8Array {
  return new MessageWriter().begin(0).int32(CANCEL_REQUEST_CODE).int32(pid).int32(secret).end()
    .take();
}

/** PasswordMessage ('p') carrying a cleartext or MD5 password string. */
export function passwordMessage(password: string): Uint8Array {
  return new MessageWriter().begin(0x70).cstring(password).end().take();
}

/** SASLInitialResponse ('p'). */
export function saslInitialResponse(mechanism: string, data: Uint8Array): Uint8Array {
  return new MessageWriter().begin(0x70).cstring(mechanism).int32(data.length).bytes(data).end()
    .take();
}

/** SASLResponse ('p'). */
export function saslResponse(data: Uint8Array): Uint8Array {
  return new MessageWriter().begin(0x70).bytes(data).end().take();
}

/** Terminate ('X'). */
export function terminateMessage(): Uint8Array {
  return new MessageWriter().begin(0x58).end().take();
}

/** A bind parameter sent in text format; `null` is SQL NULL. */
export type TextParam = string | null;

/** Appends Query ('Q'). */
export function writeQuery(w: MessageWriter, sql: string): void {
  w.begin(0x51).cstring(sql).end();
}

/** Appends Parse ('P') of an unnamed or named statement with server-inferred parameter types. */
export function writeParse(w: MessageWriter, sql: string, name = ""): void {
  w.begin(0x50).cstring(name).cstring(sql).int16(0).end();
}

/**
 * Appends Bind ('B'): text parameters, and result format codes (one per column, or a single code
 * for all columns; 0 text, 1 binary).
 */
export function writeBind(
  w: MessageWriter,
  params: readonly TextParam[],
  resultFormats: readonly number[],
): void {
  w.begin(0x42).cstring("").cstring("").int16(0).int16(params.length);
  for (const p of params) {
    if (p === null) w.int32(-1);
    else {
      const bytes = encoder.encode(p);
      w.int32(bytes.length).bytes(bytes);
    }
  }
  w.int16(resultFormats.length);
  for (const f of resultFormats) w.int16(f);
  w.end();
}

/** Appends Describe ('D') of a portal ('P') or statement ('S'). */
export function writeDescribe(w: MessageWriter, what: "P" | "S", name: string): void {
  w.begin(0x44).bytes(new Uint8Array([what.charCodeAt(0)])).cstring(name).end();
}

/** Appends Execute ('E') of the unnamed portal; 0 rows = no limit. */
export function writeExecute(w: MessageWriter, maxRows = 0): void {
  w.begin(0x45).cstring("").int32(maxRows).end();
}

/** Appends Sync ('S'). */
export function writeSync(w: MessageWriter): void {
  w.begin(0x53).end();
}

/** Fields of an ErrorResponse or NoticeResponse, keyed by the protocol's one-letter codes. */
export interface PgErrorFields {
  readonly severity: string;
  /** SQLSTATE, e.g. `42P01`. */
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
  readonly position?: string;
  /** Context: the call stack of the error inside functions (the `W` field). */
  readonly where?: string;
  readonly schema?: string;
  readonly table?: string;
  readonly column?: string;
  readonly constraint?: string;
}

/**
 * Parses the body of an ErrorResponse/NoticeResponse (after the 5-byte header). Every text field
 * is cut to a few KB (`clipServerText`): a server error may quote a whole literal of
 * the query, and nothing downstream should carry hundreds of kilobytes per error.
 */
export function parseErrorFields(buf: Uint8Array, start: number, end: number): PgErrorFields {
  const raw: Record<string, string> = {};
  let p = start;
  while (p < end && buf[p] !== 0) {
    const code = String.fromCharCode(buf[p]!);
    let zero = buf.indexOf(0, p + 1);
    if (zero < 0 || zero > end) zero = end;
    raw[code] = clipServerText(decoder.decode(buf.subarray(p + 1, zero)));
    p = zero + 1;
  }
  const opt = (k: string, name: string) => raw[k] === undefined ? {} : { [name]: raw[k] };
  return {
    severity: raw["V"] ?? raw["S"] ?? "ERROR",
    code: raw["C"] ?? "XX000",
    message: raw["M"] ?? "unknown server error",
    ...opt("D", "detail"),
    ...opt("H", "hint"),
    ...opt("P", "position"),
    ...opt("W", "where"),
    ...opt("s", "schema"),
    ...opt("t", "table"),
    ...opt("c", "column"),
    ...opt("n", "constraint"),
  } as PgErrorFields;
}

/** One column of a RowDescription. */
export interface PgFieldDescription {
  readonly name: string;
  readonly tableOid: number;
  readonly columnNumber: number;
  readonly typeOid: number;
  readonly typeSize: number;
  readonly typeModifier: number;
  readonly format: number;
}

/** Parses the body of a RowDescription ('T'). */
export function parseRowDescription(
  buf: Uint8Array,
  view: DataView,
  start: number,
): PgFieldDescription[] {
  const n = view.getInt16(start);
  let p = start + 2;
  const out: PgFieldDescription[] = [];
  for (let i = 0; i < n; i++) {
    const zero = buf.indexOf(0, p);
    const name = decoder.decode(buf.subarray(p, zero));
    p = zero + 1;
    out.push({
      name,
      tableOid: view.getUint32(p),
      columnNumber: view.getInt16(p + 4),
      typeOid: view.getUint32(p + 6),
      typeSize: view.getInt16(p + 10),
      typeModifier: view.getInt32(p + 12),
      format: view.getInt16(p + 16),
    });
    p += 18;
  }
  return out;
}

/** Reads a NUL-terminated string starting at `p`; returns it and the position after the NUL. */
export function readCString(buf: Uint8Array, p: number): [string, number] {
  const zero = buf.indexOf(0, p);
  return [decoder.decode(buf.subarray(p, zero)), zero + 1];
}
