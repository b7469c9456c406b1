/**
 * Byte work of the streaming replication protocol and of `pgoutput` (protocol version 1): LSN
 * text, the Standby Status Update the client sends, and the TupleData of Insert/Update/Delete
 * messages rewritten into the DataRow layout the binary row decoder already reads. Pure: no I/O,
 * so every function here is unit-testable without a server.
 *
 * Layer: sources.
 *
 * @module
 */
import { MessageWriter } from "./_messages.ts";

/** Backend messages of a replication connection (besides those of `wire.ts`). */
export const ReplMsg = {
  CopyBothResponse: 0x57, // W
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  /** Inside CopyData: XLogData. */
  XLogData: 0x77, // w
  /** Inside CopyData: primary keepalive. */
  Keepalive: 0x6b, // k
} as const;

/** pgoutput message types (the first byte of an XLogData payload). */
export const Pgo = {
  Begin: 0x42, // B
  Commit: 0x43, // C
  Origin: 0x4f, // O
  Relation: 0x52, // R
  Type: 0x59, // Y
  Insert: 0x49, // I
  Update: 0x55, // U
  Delete: 0x44, // D
  Truncate: 0x54, // T
  Message: 0x4d, // M
} as const;

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/**
 * Parses an LSN in PostgreSQL's text form.
 *
 * @param text `X/Y`, both halves hexadecimal.
 * @returns The LSN, or undefined when `text` is not one.
 *
 * @example
 * ```ts
 * import { parseLsn } from "./_replication.ts";
 * if (parseLsn("1/2A") !== 0x10000002an) throw new Error();
 * ```
 */
export function parseLsn(text: string): bigint | undefined {
  const m = LSN_TEXT.exec(text);
  if (!m) return undefined;
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/**
 * Formats an LSN as PostgreSQL prints it (`pg_current_wal_lsn()`): upper-case hex halves.
 *
 * @param lsn The LSN.
 * @returns `X/Y`.
 *
 * @example
 * ```ts
 * import { formatLsn } from "./_replication.ts";
 * if (formatLsn(0x10000002an) !== "1/2A") throw new Error();
 * ```
 */
export function formatLsn(lsn: bigint): string {
  const hi = Number(lsn >> 32n);
  const lo = Number(lsn & 0xffffffffn);
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).toUpperCase().padStart(2, "0"));

function hex32(n: number): string {
  const s = HEX[n >>> 24]! + HEX[(n >>> 16) & 255]! + HEX[(n >>> 8) & 255]! + HEX[n & 255]!;
  let i = 0;
  while (i < 7 && s.charCodeAt(i) === 48) i++;
  return i === 0 ? s : s.slice(i);
}

/**
 * {@linkcode formatLsn} from the two 32-bit halves as they sit in a message, without a BigInt:
 * the per-row path (`__pos`).
 *
 * @param hi High half.
 * @param lo Low half.
 * @returns `X/Y`.
 *
 * @example
 * ```ts
 * import { lsnText } from "./_replication.ts";
 * if (lsnText(0, 0x16b3748) !== "0/16B3748" || lsnText(0xff, 0) !== "FF/0") throw new Error();
 * ```
 */
export function lsnText(hi: number, lo: number): string {
  return `${hex32(hi)}/${hex32(lo)}`;
}

/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_MS = 946_684_800_000;

/**
 * A Standby Status Update ('r') inside CopyData: write, flush and apply positions all set to
 * `lsn` (the client writes nothing of its own, so "durable" is the only position it has).
 *
 * @param lsn The position everything before which is durable.
 * @param replyRequested Ask the server to answer with a keepalive (which carries its WAL end).
 * @param nowMs Clock for the message (Unix ms).
 * @returns The frontend message bytes.
 */
export function standbyStatusUpdate(
  lsn: bigint,
  replyRequested: boolean,
  nowMs: number,
): Uint8Array {
  const body = new Uint8Array(34);
  const view = new DataView(body.buffer);
  body[0] = 0x72; // r
  view.setBigUint64(1, lsn);
  view.setBigUint64(9, lsn);
  view.setBigUint64(17, lsn);
  view.setBigInt64(25, BigInt(Math.trunc(nowMs - PG_EPOCH_MS)) * 1000n);
  body[33] = replyRequested ? 1 : 0;
  return new MessageWriter().begin(ReplMsg.CopyData).bytes(body).end().take();
}

/** One column of a pgoutput Relation message. */
export interface RelationColumn {
  readonly name: string;
  readonly typeOid: number;
  readonly typeModifier: number;
  /** Part of the replica identity (the key a delete carries). */
  readonly key: boolean;
}

/** A pgoutput Relation message. */
export interface RelationMessage {
  readonly relid: number;
  readonly namespace: string;
  readonly name: string;
  /** `d` default, `n` nothing, `f` full, `i` index. */
  readonly replicaIdentity: string;
  readonly columns: readonly RelationColumn[];
}

const textDecoder = new TextDecoder();

function cstring(buf: Uint8Array, p: number): [string, number] {
  const zero = buf.indexOf(0, p);
  return [textDecoder.decode(buf.subarray(p, zero)), zero + 1];
}

/**
 * Parses a Relation message.
 *
 * @param buf Buffer holding it.
 * @param view DataView over `buf`.
 * @param start Offset of the message type byte (`R`).
 * @returns The relation.
 */
export function parseRelation(buf: Uint8Array, view: DataView, start: number): RelationMessage {
  const relid = view.getUint32(start + 1);
  const [namespace, p1] = cstring(buf, start + 5);
  const [name, p2] = cstring(buf, p1);
  const replicaIdentity = String.fromCharCode(buf[p2]!);
  const count = view.getInt16(p2 + 1);
  let p = p2 + 3;
  const columns: RelationColumn[] = [];
  for (let i = 0; i < count; i++) {
    const key = (buf[p]! & 1) === 1;
    const [colName, q] = cstring(buf, p + 1);
    columns.push({
      name: colName,
      key,
      typeOid: view.getUint32(q),
      typeModifier: view.getInt32(q + 4),
    });
    p = q + 8;
  }
  return { relid, namespace, name, replicaIdentity, columns };
}

/** How {@linkcode TupleRewriter} turns each column's bytes into what the row decoder expects. */
export const ColumnBytes = {
  /** Send format as is (the decoder reads binary). */
  Binary: 0,
  /** A textual type read as text: its binary send format is its text. */
  TextSame: 1,
  /** jsonb read as text: drop the version byte in front of the text. */
  JsonbText: 2,
} as const;

/** What a TupleData held besides its values. */
export interface TupleFacts {
  /** Offset just past the TupleData. */
  end: number;
  /** Columns sent as 'u' (an unchanged TOASTed value the server did not send): NULL here. */
  unchanged: number;
  /** A column arrived in text ('t') where binary was expected (a type without a send function). */
  textColumn: number;
}

/**
 * Rewrites pgoutput TupleData (`int16 n`, then per column a kind byte `n`/`u`/`t`/`b` and, for
 * `t`/`b`, `int32 length` + bytes) into the DataRow layout (`int16 n`, then `int32 length` + bytes,
 * -1 for NULL) in a reusable scratch buffer, so the export's binary row decoder types the values.
 */
export class TupleRewriter {
  /** Scratch buffer holding the last rewritten row from offset 0. */
  buf: Uint8Array = new Uint8Array(64 * 1024);
  /** DataView over {@linkcode buf}. */
  view: DataView = new DataView(this.buf.buffer);
  readonly #modes: readonly number[];
  /** Facts of the last rewrite. */
  readonly facts: TupleFacts = { end: 0, unchanged: 0, textColumn: -1 };

  /** @param modes One {@linkcode ColumnBytes} per column. */
  constructor(modes: readonly number[]) {
    this.#modes = modes;
  }

  #ensure(size: number): void {
    if (size <= this.buf.length) return;
    let n = this.buf.length * 2;
    while (n < size) n *= 2;
    const next = new Uint8Array(n);
    next.set(this.buf);
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /**
   * Rewrites one TupleData.
   *
   * @param src Buffer holding the TupleData.
   * @param srcView DataView over `src`.
   * @param start Offset of its `int16` column count.
   * @returns {@linkcode facts}, updated.
   */
  rewrite(src: Uint8Array, srcView: DataView, start: number): TupleFacts {
    const n = srcView.getInt16(start);
    const facts = this.facts;
    facts.unchanged = 0;
    facts.textColumn = -1;
    this.#ensure(2 + n * 4);
    this.view.setInt16(0, n);
    let out = 2;
    let p = start + 2;
    for (let c = 0; c < n; c++) {
      const kind = src[p]!;
      p++;
      if (kind === 0x6e /* n */ || kind === 0x75 /* u */) {
        if (kind === 0x75) facts.unchanged++;
        this.#ensure(out + 4);
        this.view.setInt32(out, -1);
        out += 4;
        continue;
      }
      let len = srcView.getInt32(p);
      p += 4;
      let from = p;
      p += len;
      const mode = this.#modes[c] ?? ColumnBytes.Binary;
      if (kind === 0x74 /* t */ && mode === ColumnBytes.Binary && facts.textColumn < 0) {
        facts.textColumn = c;
      }
      if (mode === ColumnBytes.JsonbText && kind === 0x62 /* b */ && len > 0) {
        from++;
        len--;
      }
      this.#ensure(out + 4 + len);
      this.view.setInt32(out, len);
      out += 4;
      if (len <= 32) {
        // Most values are a few bytes: a loop beats making a subarray view for each.
        const dst = this.buf;
        for (let k = 0; k < len; k++) dst[out + k] = src[from + k]!;
      } else {
        this.buf.set(src.subarray(from, from + len), out);
      }
      out += len;
    }
    facts.end = p;
    return facts;
  }
}
