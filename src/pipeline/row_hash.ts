/**
 * The canonical bytes of Arrow cells and the row hash built on them (`_rivet_row_hash`, defined
 * for users in docs/row-hash.md). A column is rendered into one byte buffer with one offset per
 * row (columnar: a loop over the typed array, no per-row objects); the row hash then hashes each
 * row's cells, each followed by 0x1F, with xxh3-64. The same rendering keys the unique-column
 * tracking of quality gates, so "equal" means the same thing in both.
 *
 * The rendering depends on values only, not on the source or the Arrow width: an Int32 and an
 * Int64 holding 7 both render `7`, a timestamp renders as UTC whatever its time zone label, so
 * equal rows exported from PostgreSQL, MySQL or SQL Server hash alike.
 *
 * Layer: pipeline. Imports core/ and _util/ only.
 *
 * @module
 */
import {
  type Data,
  type DataType,
  DateDay,
  type Field,
  type RecordBatch,
  Type,
} from "../core/arrow.ts";
import { PermanentError } from "../core/errors.ts";
import { createSliceHasher } from "../_util/hash.ts";
import { renderCursor } from "../plan/cursor.ts";

/** A column's cells rendered: row `i` is `bytes[offsets[i]..offsets[i+1]]`. */
export interface RenderedColumn {
  readonly bytes: Uint8Array;
  /** `rows + 1` offsets. */
  readonly offsets: Int32Array;
}

/** The byte written for a NULL cell. */
const NULL_BYTE = 0x00;
/** The byte after every cell of a row. */
const CELL_END = 0x1f;

/** A growing byte buffer with offsets, one entry per row. */
class Sink {
  bytes: Uint8Array;
  length = 0;
  readonly offsets: Int32Array;
  #row = 0;

  constructor(rows: number, guess: number) {
    this.bytes = new Uint8Array(Math.max(64, guess));
    this.offsets = new Int32Array(rows + 1);
  }

  ensure(more: number): void {
    if (this.length + more <= this.bytes.length) return;
    const next = new Uint8Array(Math.max(this.bytes.length * 2, this.length + more));
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }

  ascii(text: string): void {
    this.ensure(text.length);
    for (let i = 0; i < text.length; i++) this.bytes[this.length++] = text.charCodeAt(i);
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.bytes.set(bytes, this.length);
    this.length += bytes.length;
  }

  byte(b: number): void {
    this.ensure(1);
    this.bytes[this.length++] = b;
  }

  /** Ends the current row. */
  end(): void {
    this.offsets[++this.#row] = this.length;
  }

  done(): RenderedColumn {
    return { bytes: this.bytes.subarray(0, this.length), offsets: this.offsets };
  }
}

const utf8 = new TextEncoder();

function isValid(data: Data, i: number): boolean {
  const bitmap = data.nullBitmap;
  if (!bitmap || bitmap.length === 0 || data.nullCount === 0) return true;
  const at = data.offset + i;
  return ((bitmap[at >> 3]! >> (at & 7)) & 1) === 1;
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/** `HH:MM:SS.ffffff` (or 9 fraction digits) of a time of day in `perSecond` units. */
function renderTimeOfDay(ticks: bigint, perSecond: bigint, digits: number): string {
  return `${clock(Number(ticks / perSecond))}.${String(ticks % perSecond).padStart(digits, "0")}`;
}

/** Ticks per second and rendered fraction digits of an Arrow time unit (0 s … 3 ns). */
function unitScale(unit: number): { perSecond: bigint; toTicks: bigint; digits: number } {
  // Seconds and milliseconds are shown with microseconds, nanoseconds with all nine digits.
  if (unit === 3) return { perSecond: 1_000_000_000n, toTicks: 1n, digits: 9 };
  const toMicros = [1_000_000n, 1_000n, 1n][unit]!;
  return { perSecond: 1_000_000n, toTicks: toMicros, digits: 6 };
}

const MICROS_PER_DAY = 86_400_000_000;
const DAY_TYPE = new DateDay();

/**
 * `YYYY-MM-DDTHH:MM:SS.ffffffZ` of timestamps (the cursor rendering plus `Z`). Microsecond
 * instants that fit a double take a fast path with the day's text cached (rows of a batch mostly
 * share a day); nanoseconds and far instants go through the exact BigInt rendering.
 */
function instantRenderer(type: DataType, unit: number): (raw: number | bigint) => string {
  const exact = (raw: number | bigint) => `${renderCursor(BigInt(raw), type)!}Z`;
  if (unit === 3) return exact;
  const toMicros = [1_000_000, 1_000, 1][unit]!;
  let lastDay = NaN;
  let lastDayText = "";
  return (raw) => {
    const micros = Number(raw) * toMicros;
    if (!Number.isSafeInteger(micros)) return exact(raw);
    const day = Math.floor(micros / MICROS_PER_DAY);
    if (day !== lastDay) {
      lastDay = day;
      lastDayText = renderCursor(day, DAY_TYPE)!;
    }
    const inDay = micros - day * MICROS_PER_DAY;
    const seconds = Math.floor(inDay / 1_000_000);
    return `${lastDayText}T${clock(seconds)}.${pad(inDay - seconds * 1_000_000, 6)}Z`;
  };
}

/** `HH:MM:SS` of a second of the day. */
function clock(seconds: number): string {
  const hh = Math.floor(seconds / 3600);
  const mm = Math.floor((seconds % 3600) / 60);
  return `${pad(hh, 2)}:${pad(mm, 2)}:${pad(seconds % 60, 2)}`;
}

/** Plain decimal text of an unscaled integer with `scale` fraction digits. */
export function renderDecimal(unscaled: bigint, scale: number): string {
  const negative = unscaled < 0n;
  let digits = String(negative ? -unscaled : unscaled);
  if (scale > 0) {
    digits = digits.padStart(scale + 1, "0");
    digits = `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  } else if (scale < 0) {
    digits = unscaled === 0n ? "0" : digits + "0".repeat(-scale);
  }
  return negative ? `-${digits}` : digits;
}

function decimalAt(words: Uint32Array, index: number, stride: number): bigint {
  let value = 0n;
  for (let w = stride - 1; w >= 0; w--) {
    value = (value << 32n) | BigInt(words[index * stride + w]!);
  }
  return BigInt.asIntN(stride * 32, value);
}

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/**
 * One cell's canonical text, for cells inside a list (rendered as JSON); binary as lowercase hex.
 * Slow path: lists are rare and short.
 */
function cellText(data: Data, i: number, field: Field | undefined): string | null {
  if (!isValid(data, i)) return null;
  const one = renderColumnData(data.slice(i, 1) as Data, field);
  const bytes = one.bytes.subarray(one.offsets[0]!, one.offsets[1]!);
  const id = data.typeId;
  if (id === Type.Binary || id === Type.LargeBinary) return hex(bytes);
  if (id === Type.FixedSizeBinary && !isUuid(field)) return hex(bytes);
  return new TextDecoder().decode(bytes);
}

function isUuid(field: Field | undefined): boolean {
  return field?.metadata.get("rivet.logical_type") === "uuid" ||
    field?.metadata.get("ARROW:extension:name") === "arrow.uuid";
}

/**
 * Renders one column's cells into their canonical bytes (docs/row-hash.md): integers as
 * decimal text, floats as ECMAScript's shortest round-trip text, decimals as plain text with
 * their scale, dates `YYYY-MM-DD`, times `HH:MM:SS.ffffff`, timestamps
 * `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC (nine fraction digits for nanosecond units), booleans
 * `true`/`false`, strings their UTF-8, binary its raw bytes, a UUID its lowercase 8-4-4-4-12
 * text, a list a compact JSON array of its elements' texts; NULL one 0x00 byte.
 *
 * @param data The column's Arrow data.
 * @param field Its field (a 16-byte fixed binary is a UUID when its metadata says so).
 * @returns The rendered bytes and per-row offsets.
 * @throws {PermanentError} `meta.row_hash_type` for an Arrow type with no canonical rendering.
 *
 * @example
 * ```ts
 * import { makeData, Int32 } from "../core/arrow.ts";
 * import { renderColumnData } from "./row_hash.ts";
 * const data = makeData({ type: new Int32(), length: 2, data: Int32Array.of(7, -12) });
 * const out = renderColumnData(data, undefined);
 * if (new TextDecoder().decode(out.bytes) !== "7-12") throw new Error();
 * ```
 */
export function renderColumnData(data: Data, field: Field | undefined): RenderedColumn {
  const rows = data.length;
  const type = data.type as unknown as {
    unit: number;
    scale: number;
    bitWidth: number;
    byteWidth: number;
  };
  const values = data.values as unknown as ArrayLike<number | bigint> & Uint8Array;
  // Arrow slices values and offsets with the data; only bit-packed buffers (booleans, the
  // validity bitmap) keep the whole buffer and need `data.offset`.
  const off = data.offset;
  const sink = new Sink(rows, rows * 8);
  const each = (render: (i: number) => void) => {
    for (let i = 0; i < rows; i++) {
      if (isValid(data, i)) render(i);
      else sink.byte(NULL_BYTE);
      sink.end();
    }
  };
  switch (data.typeId) {
    case Type.Int:
    case Type.Int8:
    case Type.Int16:
    case Type.Int32:
    case Type.Int64:
    case Type.Uint8:
    case Type.Uint16:
    case Type.Uint32:
    case Type.Uint64:
      each((i) => sink.ascii(String(values[i])));
      break;
    case Type.Float:
    case Type.Float32:
    case Type.Float64:
      // ECMAScript Number::toString: the shortest text that reads back as the same double.
      each((i) => sink.ascii(String(values[i])));
      break;
    case Type.Decimal: {
      const stride = type.bitWidth / 32;
      const words = data.values as unknown as Uint32Array;
      each((i) => sink.ascii(renderDecimal(decimalAt(words, i, stride), type.scale)));
      break;
    }
    case Type.Bool:
      each((i) => {
        const at = off + i;
        sink.ascii((values[at >> 3] as number >> (at & 7)) & 1 ? "true" : "false");
      });
      break;
    case Type.Utf8:
    case Type.Binary: {
      const offsets = data.valueOffsets as Int32Array;
      const bytes = data.values as Uint8Array;
      each((i) => sink.raw(bytes.subarray(offsets[i]!, offsets[i + 1]!)));
      break;
    }
    case Type.FixedSizeBinary: {
      const width = type.byteWidth;
      const bytes = data.values as Uint8Array;
      const uuid = width === 16 && isUuid(field);
      each((i) => {
        const cell = bytes.subarray(i * width, (i + 1) * width);
        // The cursor rendering of a 16-byte value is the UUID's 8-4-4-4-12 text.
        if (uuid) sink.ascii(renderCursor(cell, data.type)!);
        else sink.raw(cell);
      });
      break;
    }
    case Type.Date:
    case Type.DateDay:
    case Type.DateMillisecond:
      // Dates and timestamps render as cursors do (`YYYY-MM-DD`, ISO-8601 with 6 or 9 fraction
      // digits), timestamps with a `Z`: the instant is in UTC whatever the zone label.
      each((i) => sink.ascii(renderCursor(BigInt(values[i]!), data.type)!));
      break;
    case Type.Time:
    case Type.TimeSecond:
    case Type.TimeMillisecond:
    case Type.TimeMicrosecond:
    case Type.TimeNanosecond: {
      const { perSecond, toTicks, digits } = unitScale(type.unit);
      each((i) => sink.ascii(renderTimeOfDay(BigInt(values[i]!) * toTicks, perSecond, digits)));
      break;
    }
    case Type.Timestamp:
    case Type.TimestampSecond:
    case Type.TimestampMillisecond:
    case Type.TimestampMicrosecond:
    case Type.TimestampNanosecond: {
      const text = instantRenderer(data.type, type.unit);
      each((i) => sink.ascii(text(values[i]!)));
      break;
    }
    case Type.List: {
      const offsets = data.valueOffsets as Int32Array;
      const child = data.children[0]!;
      const childField = (data.type as unknown as { children: Field[] }).children[0];
      each((i) => {
        const items: (string | null)[] = [];
        for (let j = offsets[i]!; j < offsets[i + 1]!; j++) {
          items.push(cellText(child, j, childField));
        }
        sink.raw(utf8.encode(JSON.stringify(items)));
      });
      break;
    }
    default:
      throw new PermanentError(
        `column '${field?.name ?? "?"}' has Arrow type ${String(data.type)}, which the row ` +
          "hash and unique checks cannot render",
        {
          code: "meta.row_hash_type",
          hint: "cast the column in the query (e.g. to text), or drop meta_columns.row_hash",
        },
      );
  }
  return sink.done();
}

/** The Arrow type families {@linkcode renderColumnData} renders. */
const RENDERED: ReadonlySet<Type> = new Set([
  Type.Int,
  Type.Float,
  Type.Decimal,
  Type.Bool,
  Type.Utf8,
  Type.Binary,
  Type.FixedSizeBinary,
  Type.Date,
  Type.Time,
  Type.Timestamp,
  Type.List,
]);

/**
 * Whether a type has a canonical rendering (a list when its elements have one). Half floats
 * have none: no source produces them and JS has no exact text for them.
 *
 * @param type An Arrow type.
 * @returns True when cells of this type can be rendered.
 */
export function canRender(type: DataType): boolean {
  if (!RENDERED.has(type.typeId)) return false;
  if (type.typeId === Type.Float) return (type as unknown as { precision: number }).precision > 0;
  if (type.typeId === Type.List) return canRender((type.children[0] as Field).type);
  return true;
}

/**
 * Refuses, before anything is read or written, columns whose type the row hash or a unique
 * check cannot render. Columns the source cannot map at all (no Arrow type) are the source's to
 * refuse.
 *
 * @param exportName The export, for the message.
 * @param columns The columns to render.
 * @param purpose Who renders them (`meta_columns.row_hash`, `quality.unique_columns`).
 * @throws {PermanentError} `meta.row_hash_type` naming the column and its type.
 */
export function assertRenderable(
  exportName: string,
  columns: readonly { readonly name: string; readonly arrowType: DataType | undefined }[],
  purpose: string,
): void {
  for (const column of columns) {
    if (column.arrowType === undefined || canRender(column.arrowType)) continue;
    throw new PermanentError(
      `export '${exportName}': column '${column.name}' has Arrow type ${
        String(column.arrowType)
      }, which ${purpose} cannot render`,
      {
        code: "meta.row_hash_type",
        hint: `cast the column in the query (e.g. to text), or remove ${purpose}`,
      },
    );
  }
}

/**
 * Row hashes of a batch: per row, every cell's canonical bytes followed by 0x1F, hashed with
 * xxh3-64 (seed 0) and read as a signed 64-bit integer.
 */
export type RowHasher = (batch: RecordBatch) => BigInt64Array;

/**
 * Creates a row hasher (one WASM hasher for all batches).
 *
 * @returns The hasher.
 */
export async function createRowHasher(): Promise<RowHasher> {
  const hashSlices = await createSliceHasher();
  return (batch) => {
    const rows = batch.numRows;
    const columns = batch.schema.fields.map((field, c) =>
      renderColumnData(batch.data.children[c] as Data, field)
    );
    // Interleave the columns row by row, each cell followed by the separator.
    const rowOffsets = new Int32Array(rows + 1);
    for (let i = 0; i < rows; i++) {
      let size = 0;
      for (const col of columns) size += col.offsets[i + 1]! - col.offsets[i]! + 1;
      rowOffsets[i + 1] = rowOffsets[i]! + size;
    }
    const buffer = new Uint8Array(rowOffsets[rows]!);
    let at = 0;
    for (let i = 0; i < rows; i++) {
      for (const col of columns) {
        const start = col.offsets[i]!;
        const end = col.offsets[i + 1]!;
        if (end - start > 16) buffer.set(col.bytes.subarray(start, end), at);
        else for (let k = start; k < end; k++) buffer[at + k - start] = col.bytes[k]!;
        at += end - start;
        buffer[at++] = CELL_END;
      }
    }
    return hashEach(hashSlices, { bytes: buffer, offsets: rowOffsets }, rows);
  };
}

function hashEach(
  hashSlices: Awaited<ReturnType<typeof createSliceHasher>>,
  rendered: RenderedColumn,
  rows: number,
): BigInt64Array {
  const out = new BigInt64Array(rows);
  hashSlices(rendered.bytes, rendered.offsets, out);
  return out;
}

/**
 * The xxh3-64 of each cell's canonical bytes (no separator): the key of unique-column tracking.
 * NULL cells get a hash too (of 0x00); callers skip them with the validity bitmap.
 *
 * @returns A function from a column's data to one signed 64-bit hash per row.
 */
export async function createCellHasher(): Promise<
  (data: Data, field: Field | undefined) => BigInt64Array
> {
  const hashSlices = await createSliceHasher();
  return (data, field) => hashEach(hashSlices, renderColumnData(data, field), data.length);
}

/**
 * Whether row `i` of a column is not NULL (validity bitmap).
 *
 * @param data The column.
 * @param i Row index within the data.
 * @returns True when the cell holds a value.
 */
export function cellIsValid(data: Data, i: number): boolean {
  return isValid(data, i);
}
