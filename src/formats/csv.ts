/**
 * CSV format: an in-house RFC 4180 writer with the Rust tool's value renderings, so both tools
 * write the same text for the same rows.
 *
 * Rows are rendered straight into a reused UTF-8 byte buffer, column writers picked once per
 * batch, so no per-row objects or per-value strings are made on the common paths. Each `write`
 * hands whole rows to the sink (at least every {@linkcode CSV_CHUNK_BYTES}) and awaits its
 * backpressure, so `bytesWritten` is exact after every batch.
 *
 * Renderings: header line always (names not quoted, except a name containing `,` `"` CR or LF,
 * which is quoted so the file stays parseable); `\n` line ends; no BOM; NULL is an empty cell;
 * strings quoted only when they contain `,` `"` LF or CR, inner `"` doubled; bool `true`/`false`;
 * ints plain (exact int64/uint64); floats as Rust's `Display` (shortest round-trip digits, never
 * an exponent, `NaN`, `inf`, `-inf`, `-0`); decimals exact with the scale applied; binary
 * lowercase hex; FixedSizeBinary(16) as a hyphenated lowercase UUID; dates `YYYY-MM-DD` (years
 * outside 0..9999 signed, as chrono prints them: `+10000-01-01`, `-0001-01-01`); times
 * `HH:MM:SS.ffffff`; timestamps `YYYY-MM-DDTHH:MM:SS.ffffff` without a zone suffix.
 *
 * Layer: formats. Imports core/ only.
 *
 * @module
 */
import { type Data, type Field, type RecordBatch, type Schema, Type } from "../core/arrow.ts";
import { ConfigError, PermanentError } from "../core/errors.ts";
import type { BatchEncoder, Format, RowRecounter } from "../core/format.ts";
import type { FormatSpec } from "../core/spec.ts";
import {
  ByteBuffer,
  createTimestampWriter,
  formatFloat32,
  formatFloat64,
  putDate,
  putDecimal128,
  putInt,
  putInt64,
  putTimeOfDay,
} from "./_bytes.ts";
import { assertBatchMatches } from "./_schema.ts";
import { ByteScanner } from "./_csv_scan.ts";
import { csvRecounter } from "./_recount.ts";

/** Rendered bytes are handed to the sink once this many are buffered (and after each batch). */
export const CSV_CHUNK_BYTES = 1 << 20;

// Arrow enum values used below (apache-arrow's DateUnit / TimeUnit / Precision).
const DATE_DAY = 0;
const MICROSECOND = 2;
const PRECISION_SINGLE = 1;
const PRECISION_DOUBLE = 2;

const COMMA = 44, QUOTE = 34, LF = 10;

/** Writes the value of `row` (known to be non-null) into the shared buffer. */
type CellWriter = (row: number) => void;
/** Binds a column's buffers for one batch. */
type ColumnBinder = (data: Data, out: ByteBuffer) => CellWriter;

const HEX = new Uint8Array(512);
for (let b = 0; b < 256; b++) {
  HEX[2 * b] = "0123456789abcdef".charCodeAt(b >> 4);
  HEX[2 * b + 1] = "0123456789abcdef".charCodeAt(b & 15);
}

/** Low/high 32-bit views of a 64-bit column (little-endian, as Arrow buffers are). */
function words64(values: BigInt64Array | BigUint64Array): { lo: Uint32Array; hi: Int32Array } {
  return {
    lo: new Uint32Array(values.buffer, values.byteOffset, values.length * 2),
    hi: new Int32Array(values.buffer, values.byteOffset, values.length * 2),
  };
}

function bindBool(data: Data, out: ByteBuffer): CellWriter {
  const bits = data.values as Uint8Array;
  const offset = data.offset;
  return (row) => {
    const j = offset + row;
    out.ascii(((bits[j >> 3]! >> (j & 7)) & 1) === 1 ? "true" : "false");
  };
}

function bindSmallInt(data: Data, out: ByteBuffer): CellWriter {
  const values = data.values as Int16Array | Int32Array;
  return (row) => putInt(out, values[row]!);
}

function bindInt64(unsigned: boolean): ColumnBinder {
  return (data, out) => {
    const { lo, hi } = words64(data.values as BigInt64Array);
    return (row) =>
      putInt64(out, lo[2 * row]!, unsigned ? lo[2 * row + 1]! : hi[2 * row + 1]!, unsigned);
  };
}

function bindFloat(single: boolean): ColumnBinder {
  return (data, out) => {
    const values = data.values as Float32Array | Float64Array;
    return single
      ? (row) => out.ascii(formatFloat32(values[row]!))
      : (row) => out.ascii(formatFloat64(values[row]!));
  };
}

function bindDecimal(scale: number): ColumnBinder {
  return (data, out) => {
    const words = data.values as Uint32Array;
    return (row) => putDecimal128(out, words, row * 4, scale);
  };
}

/** Cells shorter than this are copied byte by byte; longer ones with one native copy. */
const SHORT_CELL = 32;

/**
 * Text cells: the bytes go straight to the output, scanned a word at a time for the bytes that
 * force quoting (see `ByteScanner`) and copied with one native `set` when long, so long text
 * costs about a scan and a memcpy; inner quotes are doubled.
 */
function bindText(data: Data, out: ByteBuffer): CellWriter {
  const offsets = data.valueOffsets as Int32Array;
  const bytes = data.values as Uint8Array;
  const scan = new ByteScanner(bytes);
  const copy = (buf: Uint8Array, p: number, from: number, to: number): number => {
    if (to - from < SHORT_CELL) {
      for (let k = from; k < to; k++) buf[p++] = bytes[k]!;
      return p;
    }
    buf.set(bytes.subarray(from, to), p);
    return p + (to - from);
  };
  return (row) => {
    const start = offsets[row]!, end = offsets[row + 1]!;
    const special = scan.firstSpecial(start, end);
    if (special === end) {
      out.ensure(end - start);
      out.pos = copy(out.buf, out.pos, start, end);
      return;
    }
    out.ensure(2 * (end - start) + 2);
    const buf = out.buf;
    let p = out.pos;
    buf[p++] = QUOTE;
    let from = start;
    for (let q = scan.firstQuote(special, end); q < end; q = scan.firstQuote(from, end)) {
      p = copy(buf, p, from, q + 1);
      buf[p++] = QUOTE;
      from = q + 1;
    }
    p = copy(buf, p, from, end);
    buf[p++] = QUOTE;
    out.pos = p;
  };
}

function bindHex(data: Data, out: ByteBuffer): CellWriter {
  const offsets = data.valueOffsets as Int32Array;
  const bytes = data.values as Uint8Array;
  return (row) => {
    const start = offsets[row]!, end = offsets[row + 1]!;
    out.ensure(2 * (end - start));
    const buf = out.buf;
    let p = out.pos;
    for (let k = start; k < end; k++) {
      const b = bytes[k]!;
      buf[p++] = HEX[2 * b]!;
      buf[p++] = HEX[2 * b + 1]!;
    }
    out.pos = p;
  };
}

function bindUuid(data: Data, out: ByteBuffer): CellWriter {
  const bytes = data.values as Uint8Array;
  return (row) => {
    out.ensure(36);
    const buf = out.buf;
    let p = out.pos;
    const base = row * 16;
    for (let k = 0; k < 16; k++) {
      if (k === 4 || k === 6 || k === 8 || k === 10) buf[p++] = 45;
      const b = bytes[base + k]!;
      buf[p++] = HEX[2 * b]!;
      buf[p++] = HEX[2 * b + 1]!;
    }
    out.pos = p;
  };
}

function bindDate(data: Data, out: ByteBuffer): CellWriter {
  const values = data.values as Int32Array;
  return (row) => putDate(out, values[row]!);
}

function bindTime(data: Data, out: ByteBuffer): CellWriter {
  const { lo, hi } = words64(data.values as BigInt64Array);
  return (row) => putTimeOfDay(out, hi[2 * row + 1]! * 4294967296 + lo[2 * row]!);
}

function bindTimestamp(data: Data, out: ByteBuffer): CellWriter {
  const { lo, hi } = words64(data.values as BigInt64Array);
  const put = createTimestampWriter(out);
  return (row) => put(lo[2 * row]!, hi[2 * row + 1]!);
}

/**
 * Picks the renderer of a column, or throws a ConfigError naming it when CSV cannot hold its type.
 *
 * @param field The column.
 * @returns Its binder.
 */
function planColumn(field: Field): ColumnBinder {
  // deno-lint-ignore no-explicit-any
  const type = field.type as any;
  switch (type.typeId as Type) {
    case Type.Bool:
      return bindBool;
    case Type.Int:
      if (type.bitWidth === 64) return bindInt64(!type.isSigned);
      if (type.isSigned && (type.bitWidth === 16 || type.bitWidth === 32)) return bindSmallInt;
      break;
    case Type.Float:
      if (type.precision === PRECISION_SINGLE) return bindFloat(true);
      if (type.precision === PRECISION_DOUBLE) return bindFloat(false);
      break;
    case Type.Decimal:
      if (type.bitWidth === 128) return bindDecimal(type.scale);
      break;
    case Type.Utf8:
      return bindText;
    case Type.Binary:
      return bindHex;
    case Type.FixedSizeBinary:
      if (type.byteWidth === 16) return bindUuid;
      break;
    case Type.Date:
      if (type.unit === DATE_DAY) return bindDate;
      break;
    case Type.Time:
      if (type.unit === MICROSECOND && type.bitWidth === 64) return bindTime;
      break;
    case Type.Timestamp:
      if (type.unit === MICROSECOND) return bindTimestamp;
      break;
  }
  throw new ConfigError(
    `CSV cannot write column '${field.name}' of type ${String(field.type)}; ` +
      `use format: parquet, or cast the column to text in the query or with a columns: override`,
    { code: "format.csv_unsupported_type" },
  );
}

/** Header line: names joined by `,`, quoted only when a name would otherwise break the file. */
function headerBytes(schema: Schema): Uint8Array {
  const names = schema.fields.map((f) =>
    /[,"\r\n]/.test(f.name) ? `"${f.name.replaceAll('"', '""')}"` : f.name
  );
  return new TextEncoder().encode(names.join(",") + "\n");
}

class CsvBatchEncoder implements BatchEncoder {
  readonly #schema: Schema;
  readonly #binders: ColumnBinder[];
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #out = new ByteBuffer(CSV_CHUNK_BYTES + (64 << 10));
  #headerDone = false;
  #closed = false;
  #rows = 0;
  #bytes = 0;
  #sinkError: { error: unknown } | undefined;

  constructor(schema: Schema, binders: ColumnBinder[], sink: WritableStream<Uint8Array>) {
    this.#schema = schema;
    this.#binders = binders;
    this.#writer = sink.getWriter();
  }

  get rowsWritten(): number {
    return this.#rows;
  }

  get bytesWritten(): number {
    return this.#bytes;
  }

  async write(batch: RecordBatch): Promise<void> {
    this.#assertOpen();
    assertBatchMatches(this.#schema, batch);
    this.#header();
    const out = this.#out;
    const columns = batch.data.children;
    const ncol = columns.length;
    const writers: CellWriter[] = [];
    const bitmaps: (Uint8Array | undefined)[] = [];
    const offsets: number[] = [];
    for (let c = 0; c < ncol; c++) {
      const data = columns[c]!;
      writers.push(this.#binders[c]!(data, out));
      bitmaps.push(data.nullCount > 0 ? data.nullBitmap as Uint8Array : undefined);
      offsets.push(data.offset);
    }
    const n = batch.numRows;
    for (let row = 0; row < n; row++) {
      out.ensure(ncol + 1);
      for (let c = 0; c < ncol; c++) {
        if (c > 0) out.buf[out.pos++] = COMMA;
        const bitmap = bitmaps[c];
        if (bitmap !== undefined) {
          const j = offsets[c]! + row;
          if ((bitmap[j >> 3]! & (1 << (j & 7))) === 0) continue;
        }
        writers[c]!(row);
        out.ensure(ncol - c);
      }
      out.buf[out.pos++] = LF;
      if (out.pos >= CSV_CHUNK_BYTES) await this.#flush();
    }
    await this.#flush();
    this.#rows += n;
  }

  async close(): Promise<void> {
    this.#assertOpen();
    this.#header();
    await this.#flush();
    this.#closed = true;
    try {
      await this.#writer.close();
    } catch (error) {
      throw this.#sinkError?.error ?? error;
    }
  }

  async abort(reason?: unknown): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#out.pos = 0;
    await this.#writer.abort(reason);
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new PermanentError("The CSV encoder is already closed; create a new encoder per file", {
        code: "format.encoder_closed",
      });
    }
  }

  #header(): void {
    if (this.#headerDone) return;
    this.#headerDone = true;
    const bytes = headerBytes(this.#schema);
    this.#out.ensure(bytes.length);
    this.#out.buf.set(bytes, this.#out.pos);
    this.#out.pos += bytes.length;
  }

  async #flush(): Promise<void> {
    if (this.#out.pos === 0) return;
    const chunk = this.#out.take();
    // Awaiting `ready` (not the write itself) keeps rendering overlapped with the sink's I/O while
    // still honouring backpressure; a failed write is kept and rethrown by the next call.
    try {
      await this.#writer.ready;
    } catch (error) {
      throw this.#sinkError?.error ?? error;
    }
    this.#writer.write(chunk).catch((error) => this.#sinkError ??= { error });
    this.#bytes += chunk.length;
  }
}

/** The CSV {@linkcode Format}. */
export class CsvFormat implements Format {
  readonly kind = "csv" as const;
  readonly extension = "csv";
  readonly compressionLabel = "none";

  /**
   * Creates an encoder for one file.
   *
   * @param schema The columns of the file; every type is checked here.
   * @param sink Where the bytes go; closed by `close()`, aborted by `abort()`.
   * @returns The encoder.
   * @throws {ConfigError} `format.csv_unsupported_type` naming the first column CSV cannot hold.
   */
  createEncoder(schema: Schema, sink: WritableStream<Uint8Array>): BatchEncoder {
    const binders = schema.fields.map(planColumn);
    return new CsvBatchEncoder(schema, binders, sink);
  }

  /** Counts the records of a written file (header excluded) from its bytes. */
  rowRecounter(): RowRecounter {
    return csvRecounter();
  }
}

/**
 * Creates the CSV format.
 *
 * @param spec The export's format block; CSV output is never compressed.
 * @returns The format.
 * @throws {ConfigError} `format.csv_compression` when a codec other than `none` is asked for.
 *
 * @example Encode one batch into memory
 * ```ts
 * import { createCsvFormat } from "./csv.ts";
 * import { Field, Int32, makeData, RecordBatch, Schema, Struct } from "../core/arrow.ts";
 * const schema = new Schema([new Field("n", new Int32(), true)]);
 * const col = makeData({ type: new Int32(), length: 2, data: new Int32Array([1, -2]) });
 * const batch = new RecordBatch(
 *   schema,
 *   makeData({ type: new Struct(schema.fields), length: 2, children: [col] }),
 * );
 * const chunks: Uint8Array[] = [];
 * const sink = new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c) });
 * const encoder = createCsvFormat({ kind: "csv", compression: "none" }).createEncoder(schema, sink);
 * await encoder.write(batch);
 * await encoder.close();
 * const text = chunks.map((c) => new TextDecoder().decode(c)).join("");
 * if (text !== "n\n1\n-2\n") throw new Error(text);
 * ```
 */
export function createCsvFormat(spec: FormatSpec): CsvFormat {
  if (spec.compression !== "none") {
    throw new ConfigError(
      `CSV output cannot be compressed (compression: ${spec.compression}); ` +
        `remove compression/compression_profile or use format: parquet`,
      { code: "format.csv_compression" },
    );
  }
  return new CsvFormat();
}
