/**
 * `parquet_types: portable`: uuid and json columns leave the source as plain UTF-8 text, so every
 * Parquet reader opens the file (Polars and Spark refuse the `arrow.uuid` extension and the Parquet
 * UUID type). uuid (FixedSizeBinary(16)) becomes its 36-character lowercase text, `uuid[]` a list
 * of such text, and json keeps its text without the `arrow.json` extension; the columns' fidelity
 * becomes `logical_string` and they lose their logical type (the file no longer says uuid/json).
 *
 * The conversion wraps the stream every source returns (`openSource`), so every engine (inline,
 * chunk workers, child processes), the schema fingerprint, the drift baseline and
 * `check --type-report` see the columns as they are written. It is columnar: the 16-byte values
 * are formatted straight into one UTF-8 data buffer with computed offsets, no JS string per value.
 *
 * Layer: sources (shared by every engine). Imports core/ only.
 *
 * @module
 */
import type { Data, DataType } from "../core/arrow.ts";
import { Field, List, makeData, RecordBatch, Schema, Struct, Type, Utf8 } from "../core/arrow.ts";
import {
  type BatchStream,
  type ColumnInfo,
  type ReadOptions,
  type Source,
  UnsupportedColumnsError,
} from "../core/source.ts";

// The file carries no uuid/json annotation any more, so the logical type goes too (the source
// type stays in `rivet.native_type`).
const DROPPED_KEYS = ["ARROW:extension:name", "ARROW:extension:metadata", "rivet.logical_type"];

/** How one column changes: `uuid` (16 bytes → text), `uuid_list` (its elements), `json`. */
type Change = "uuid" | "uuid_list" | "json";

function isUuidBytes(type: DataType): boolean {
  // deno-lint-ignore no-explicit-any
  const t = type as any;
  return t.typeId === Type.FixedSizeBinary && t.byteWidth === 16;
}

function changeOf(field: Field): Change | undefined {
  const logical = field.metadata.get("rivet.logical_type");
  const extension = field.metadata.get("ARROW:extension:name");
  if (isUuidBytes(field.type) && (logical === "uuid" || extension === "arrow.uuid")) return "uuid";
  const child = field.type.typeId === Type.List ? field.type.children[0] : undefined;
  if (child !== undefined && isUuidBytes(child.type) && logical === "uuid") return "uuid_list";
  if (extension === "arrow.json") return "json";
  return undefined;
}

function portableField(field: Field, change: Change): Field {
  const metadata = new Map(field.metadata);
  for (const key of DROPPED_KEYS) metadata.delete(key);
  metadata.set("rivet.fidelity", "logical_string");
  const type = change === "uuid"
    ? new Utf8()
    : change === "uuid_list"
    ? new List(new Field(field.type.children[0]!.name, new Utf8(), true))
    : field.type;
  return new Field(field.name, type, field.nullable, metadata);
}

// "0".."f" of each nibble, as ASCII bytes.
const HEX = new TextEncoder().encode("0123456789abcdef");
const UUID_TEXT = 36;

/**
 * Formats FixedSizeBinary(16) data as Utf8 data of the canonical lowercase uuid text
 * (8-4-4-4-12); nulls stay null and take no bytes.
 *
 * @param data A FixedSizeBinary(16) column (a slice too).
 * @returns The Utf8 column, offset 0, same length and validity.
 */
export function uuidBytesToText(data: Data): Data<Utf8> {
  const n = data.length;
  const src = data.values as Uint8Array;
  const nulls = data.nullCount > 0 ? data.nullBitmap : undefined;
  const offsets = new Int32Array(n + 1);
  const valid = nulls === undefined ? undefined : new Uint8Array((n + 7) >> 3);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const bit = data.offset + i;
    const ok = nulls === undefined || (nulls[bit >> 3]! & (1 << (bit & 7))) !== 0;
    if (ok) {
      count++;
      if (valid !== undefined) valid[i >> 3]! |= 1 << (i & 7);
    }
    offsets[i + 1] = count * UUID_TEXT;
  }
  const out = new Uint8Array(count * UUID_TEXT);
  let at = 0;
  for (let i = 0; i < n; i++) {
    if (offsets[i + 1] === offsets[i]) continue;
    // Arrow JS slices fixed-width values with the data: `offset` only shifts the validity bits.
    let from = i * 16;
    for (let b = 0; b < 16; b++) {
      // Dashes after bytes 4, 6, 8 and 10.
      if (b === 4 || b === 6 || b === 8 || b === 10) out[at++] = 0x2d;
      const byte = src[from++]!;
      out[at++] = HEX[byte >> 4]!;
      out[at++] = HEX[byte & 15]!;
    }
  }
  return makeData({
    type: new Utf8(),
    length: n,
    nullCount: n - count,
    ...(valid === undefined ? {} : { nullBitmap: valid }),
    valueOffsets: offsets,
    data: out,
  });
}

function convert(data: Data, change: Change, type: DataType): Data {
  if (change === "json") return data;
  if (change === "uuid") return uuidBytesToText(data);
  // A list keeps its offsets and validity; only its elements change.
  return makeData({
    type: type as List<Utf8>,
    offset: data.offset,
    length: data.length,
    nullCount: data.nullCount,
    nullBitmap: data.nullBitmap,
    valueOffsets: data.valueOffsets,
    child: uuidBytesToText(data.children[0]!),
  });
}

/** A column as portable writes it: text, `logical_string`, no logical type. */
function portableColumn(info: ColumnInfo, arrowType: DataType): ColumnInfo {
  const { logicalType: _, ...rest } = info;
  return { ...rest, arrowType, fidelity: "logical_string" };
}

/**
 * The columns of a refused result as portable would write them, so `check --type-report` lists
 * the supported ones as written beside the refused ones.
 */
function portableColumns(columns: readonly ColumnInfo[]): ColumnInfo[] {
  return columns.map((c) => {
    if (c.arrowType === undefined || c.fidelity === "unsupported") return c;
    const field = new Field(
      c.name,
      c.arrowType,
      true,
      new Map(c.logicalType === undefined ? [] : [["rivet.logical_type", c.logicalType]]),
    );
    const change = changeOf(field) ??
      (c.logicalType === "json" && isText(c.arrowType) ? "json" : undefined);
    return change === undefined ? c : portableColumn(c, portableField(field, change).type);
  });
}

function isText(type: DataType): boolean {
  return type.typeId === Type.Utf8 || type.typeId === Type.LargeUtf8;
}

/**
 * The stream as `parquet_types: portable` writes it: the same stream when no column changes.
 *
 * @param stream A source's stream.
 * @returns The stream with portable schema, columns and batches.
 */
export function portableStream(stream: BatchStream): BatchStream {
  const changes = stream.schema.fields.map(changeOf);
  if (changes.every((c) => c === undefined)) return stream;
  const fields = stream.schema.fields.map((f, i) => {
    const change = changes[i];
    return change === undefined ? f : portableField(f, change);
  });
  const schema = new Schema(fields, stream.schema.metadata);
  // Columns and fields are in the same order (a result may repeat a name).
  const columns = stream.columns.map((c, i) =>
    changes[i] === undefined ? c : portableColumn(c, fields[i]!.type)
  );
  const batches = stream.batches.pipeThrough(
    new TransformStream<RecordBatch, RecordBatch>({
      transform(batch, controller) {
        const children = batch.data.children.map((child, i) => {
          const change = changes[i];
          return change === undefined ? child : convert(child, change, fields[i]!.type);
        });
        const data = makeData({
          type: new Struct(fields),
          length: batch.numRows,
          nullCount: 0,
          children,
        });
        controller.enqueue(new RecordBatch(schema, data));
      },
    }),
  );
  return { schema, columns, batches };
}

/**
 * Wraps a source so that reads asking for `portableTypes` get {@linkcode portableStream}.
 *
 * @param source An open source.
 * @returns The same source, its `read` converting when asked.
 */
export function withPortableTypes(source: Source): Source {
  const read = source.read.bind(source);
  source.read = async (request, options: ReadOptions) => {
    if (!options.portableTypes) return await read(request, options);
    try {
      return portableStream(await read(request, options));
    } catch (error) {
      if (!(error instanceof UnsupportedColumnsError)) throw error;
      throw new UnsupportedColumnsError(error.message, portableColumns(error.columns));
    }
  };
  return source;
}
