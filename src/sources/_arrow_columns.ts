/**
 * Columnar builders shared by the source engines: fixed-width typed arrays sized to the fetch (grown geometrically when a list
 * child needs more), offsets + one byte buffer for variable-width values, NULLs recorded as row
 * indexes and turned into a validity bitmap only when a batch has any. `finish` hands the buffers
 * to Arrow without copying and starts fresh ones for the next batch.
 *
 * @module
 */
import {
  type Data,
  type DataType,
  Field,
  List,
  makeData,
  RecordBatch,
  Schema,
  Struct,
} from "../core/arrow.ts";
import { PermanentError } from "../core/errors.ts";
import {
  type ColumnInfo,
  type Fidelity,
  type LogicalType,
  UnsupportedColumnsError,
} from "../core/source.ts";

/** Common state of every builder. */
export abstract class Builder {
  /** Values appended in the current batch (NULLs included). */
  length = 0;
  /** Row indexes of NULLs in the current batch. */
  nulls: number[] = [];
  /** Capacity in values. */
  capacity = 0;

  /** Appends a NULL. */
  abstract appendNull(): void;
  /** Starts a new batch expecting about `rows` values. */
  abstract reset(rows: number): void;
  /** Bytes held by the current batch's buffers (used parts only). */
  abstract byteSize(): number;
  /** Wraps the current batch as Arrow Data; call `reset` before the next batch. */
  abstract finish(type: DataType): Data;

  /** Validity bitmap of the current batch, or undefined when it has no NULL. */
  protected validity(): Uint8Array | undefined {
    if (this.nulls.length === 0) return undefined;
    const bits = new Uint8Array((this.length + 7) >> 3).fill(0xff);
    for (const i of this.nulls) bits[i >> 3]! &= ~(1 << (i & 7));
    return bits;
  }

  /** Arrow props shared by all types. */
  protected common(type: DataType): {
    type: DataType;
    length: number;
    nullCount: number;
    nullBitmap: Uint8Array | undefined;
  } {
    return {
      type,
      length: this.length,
      nullCount: this.nulls.length,
      nullBitmap: this.validity(),
    };
  }
}

/** Bool, bit-packed. */
export class BoolBuilder extends Builder {
  bits: Uint8Array = new Uint8Array(0);
  override reset(rows: number): void {
    this.length = 0;
    this.nulls = [];
    this.capacity = Math.max(rows, 8);
    this.bits = new Uint8Array((this.capacity + 7) >> 3);
  }
  /** Appends a value. */
  push(value: boolean): void {
    if (this.length >= this.capacity) this.#grow();
    if (value) this.bits[this.length >> 3]! |= 1 << (this.length & 7);
    this.length++;
  }
  #grow(): void {
    const next = new Uint8Array(((this.capacity * 2) + 7) >> 3);
    next.set(this.bits);
    this.bits = next;
    this.capacity *= 2;
  }
  override appendNull(): void {
    this.nulls.push(this.length);
    this.push(false);
  }
  override byteSize(): number {
    return (this.length + 7) >> 3;
  }
  override finish(type: DataType): Data {
    const data = makeData({
      ...this.common(type),
      data: this.bits.subarray(0, (this.length + 7) >> 3),
    } as never) as Data;
    return data;
  }
}

type TypedCtor =
  | Int16ArrayConstructor
  | Int32ArrayConstructor
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Uint32ArrayConstructor
  | Uint8ArrayConstructor;

/**
 * Fixed-width values stored as `width` elements of a typed array per value (int64 and timestamps
 * use two Int32 halves, decimals four Uint32 words, uuids sixteen bytes).
 */
export class FixedBuilder<
  A extends Int16Array | Int32Array | Float32Array | Float64Array | Uint32Array | Uint8Array,
> extends Builder {
  data: A;
  readonly #ctor: TypedCtor;
  readonly #width: number;
  readonly #bigint: boolean;

  /**
   * @param ctor Typed array of one element.
   * @param options `width` elements per value; `bigint` to expose the result as BigInt64Array.
   */
  constructor(ctor: TypedCtor, options: { width?: number; bigint?: boolean } = {}) {
    super();
    this.#ctor = ctor;
    this.#width = options.width ?? 1;
    this.#bigint = options.bigint ?? false;
    this.data = new ctor(0) as A;
  }
  /** Elements per value. */
  get width(): number {
    return this.#width;
  }
  override reset(rows: number): void {
    this.length = 0;
    this.nulls = [];
    this.capacity = Math.max(rows, 8);
    this.data = new this.#ctor(this.capacity * this.#width) as A;
  }
  /** Makes room for one more value; returns its index. */
  slot(): number {
    if (this.length >= this.capacity) this.grow();
    return this.length++;
  }
  /** Doubles the capacity. */
  grow(): void {
    const next = new this.#ctor(this.capacity * 2 * this.#width) as A;
    (next as Int32Array).set(this.data as Int32Array);
    this.data = next;
    this.capacity *= 2;
  }
  override appendNull(): void {
    this.nulls.push(this.length);
    this.slot(); // zero-filled already
  }
  override byteSize(): number {
    return this.length * this.#width * this.data.BYTES_PER_ELEMENT;
  }
  override finish(type: DataType): Data {
    const used = this.data.subarray(0, this.length * this.#width);
    const data = this.#bigint ? new BigInt64Array(used.buffer, used.byteOffset, this.length) : used;
    const out = makeData({ ...this.common(type), data } as never) as Data;
    return out;
  }
}

/** Variable-width bytes (Utf8, Binary): Int32 offsets and one growing byte buffer. */
export class VarBuilder extends Builder {
  offsets: Int32Array = new Int32Array(1);
  bytes: Uint8Array = new Uint8Array(0);
  /** Bytes used in {@linkcode bytes}. */
  used = 0;
  #avgBytes = 16;

  override reset(rows: number): void {
    this.length = 0;
    this.nulls = [];
    this.capacity = Math.max(rows, 8);
    this.offsets = new Int32Array(this.capacity + 1);
    this.bytes = new Uint8Array(Math.max(1024, Math.ceil(this.capacity * this.#avgBytes * 1.1)));
    this.used = 0;
  }
  /** Ensures `n` more bytes fit. */
  reserve(n: number): void {
    if (this.used + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.used + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.bytes.subarray(0, this.used));
    this.bytes = next;
  }
  /** Appends `len` bytes of `src` starting at `p`. */
  push(src: Uint8Array, p: number, len: number): void {
    if (this.length >= this.capacity) this.#growOffsets();
    if (this.used + len > this.bytes.length) this.reserve(len);
    const bytes = this.bytes;
    let at = this.used;
    if (len <= 48) {
      // Short values: a byte loop beats creating a subarray view (a Buffer subclass for Node
      // buffers) per value.
      for (let i = p, end = p + len; i < end; i++) bytes[at++] = src[i]!;
    } else {
      bytes.set(src.subarray(p, p + len), at);
    }
    this.used += len;
    this.offsets[++this.length] = this.used;
  }
  /** Appends already-encoded bytes. */
  pushBytes(value: Uint8Array): void {
    this.push(value, 0, value.length);
  }
  #growOffsets(): void {
    const next = new Int32Array(this.capacity * 2 + 1);
    next.set(this.offsets);
    this.offsets = next;
    this.capacity *= 2;
  }
  override appendNull(): void {
    if (this.length >= this.capacity) this.#growOffsets();
    this.nulls.push(this.length);
    this.offsets[++this.length] = this.used;
  }
  override byteSize(): number {
    return this.used + (this.length + 1) * 4;
  }
  override finish(type: DataType): Data {
    if (this.length > 0) this.#avgBytes = Math.max(1, this.used / this.length);
    // A buffer much larger than its content would pin memory while the batch lives downstream.
    const bytes = this.used < this.bytes.length / 2
      ? this.bytes.slice(0, this.used)
      : this.bytes.subarray(0, this.used);
    const out = makeData({
      ...this.common(type),
      valueOffsets: this.offsets.subarray(0, this.length + 1),
      data: bytes,
    } as never) as Data;
    return out;
  }
}

/** List<child>: Int32 offsets into a child builder. */
export class ListBuilder extends Builder {
  offsets: Int32Array = new Int32Array(1);
  readonly child: Builder;
  readonly childType: DataType;

  /**
   * @param child Builder of the elements.
   * @param childType Arrow type of the elements.
   */
  constructor(child: Builder, childType: DataType) {
    super();
    this.child = child;
    this.childType = childType;
  }
  override reset(rows: number): void {
    this.length = 0;
    this.nulls = [];
    this.capacity = Math.max(rows, 8);
    this.offsets = new Int32Array(this.capacity + 1);
    this.child.reset(this.capacity * 4);
  }
  /** Closes the current list after its elements were appended to the child. */
  endList(): void {
    if (this.length >= this.capacity) this.#growOffsets();
    this.offsets[++this.length] = this.child.length;
  }
  #growOffsets(): void {
    const next = new Int32Array(this.capacity * 2 + 1);
    next.set(this.offsets);
    this.offsets = next;
    this.capacity *= 2;
  }
  override appendNull(): void {
    this.nulls.push(this.length);
    this.endList();
  }
  override byteSize(): number {
    return (this.length + 1) * 4 + this.child.byteSize();
  }
  override finish(type: DataType): Data {
    const common = this.common(type);
    const valueOffsets = this.offsets.subarray(0, this.length + 1);
    const child = this.child.finish(this.childType);
    const out = makeData({ ...common, valueOffsets, child } as never) as Data;
    return out;
  }
}

/**
 * Arrow field metadata of a column: `rivet.native_type`, `rivet.fidelity`, `rivet.logical_type`
 * and, for scalar uuid/json columns, the canonical `ARROW:extension:name`.
 *
 * @param info The column.
 * @param options `scalar`: false for list columns (no extension name on a list).
 * @returns The metadata map.
 */
export function columnFieldMetadata(
  info: ColumnInfo,
  options: { scalar?: boolean } = {},
): Map<string, string> {
  const m = new Map<string, string>([
    ["rivet.native_type", info.nativeType],
    ["rivet.fidelity", info.fidelity],
  ]);
  if (info.logicalType) m.set("rivet.logical_type", info.logicalType);
  const scalar = (options.scalar ?? true) && info.arrowType !== undefined;
  if (scalar && (info.logicalType === "uuid" || info.logicalType === "json")) {
    m.set("ARROW:extension:name", info.logicalType === "uuid" ? "arrow.uuid" : "arrow.json");
    m.set("ARROW:extension:metadata", "");
  }
  return m;
}

/**
 * The error of a text or binary value above `tuning.max_value_mb`, the same for every source.
 *
 * @param column The column's name.
 * @param bytes The value's size.
 * @param limitBytes The ceiling it exceeds.
 * @returns A PermanentError `source.value_too_large` naming the fix.
 */
export function valueTooLarge(column: string, bytes: number, limitBytes: number): PermanentError {
  const mb = (bytes / 1048576).toFixed(1);
  const limit = (limitBytes / 1048576).toFixed(1);
  return new PermanentError(
    `Column '${column}' holds a value of ${mb} MB, above max_value_mb (${limit} MB); raise ` +
      "tuning.max_value_mb (0 disables the guard) or exclude the column",
    { code: "source.value_too_large" },
  );
}

/**
 * Wraps filled builders as one RecordBatch of `schema` (the builders must be reset before reuse).
 *
 * @param schema The batch schema, one field per builder.
 * @param columns Each builder with the Arrow type it finishes as.
 * @param rows Rows in the batch.
 * @returns The batch.
 */
export function assembleBatch(
  schema: Schema,
  columns: readonly { readonly builder: Builder; readonly type: DataType }[],
  rows: number,
): RecordBatch {
  const children = columns.map(({ builder, type }) => builder.finish(type));
  const data = makeData({ type: new Struct(schema.fields), length: rows, nullCount: 0, children });
  return new RecordBatch(schema, data);
}

/** How one result column maps: its decode plan when supported, else why not. */
export interface ColumnMapping<P extends { readonly arrowType: DataType }> {
  readonly plan?: P;
  readonly fidelity: Fidelity;
  readonly logical?: LogicalType;
  readonly reason?: string;
}

/**
 * Turns the mapping of every result column into the Arrow schema, the column descriptions and
 * the decode plans, or throws one ConfigError (`source.unsupported_types`) listing every column
 * that cannot be exported, before any row is read.
 *
 * @param columns Name, database type name and mapping of each column, in result order.
 * @returns Schema, descriptions and plans, in result order.
 */
export function planSchema<P extends { readonly arrowType: DataType }>(
  columns: readonly {
    readonly name: string;
    readonly nativeType: string;
    readonly mapping: ColumnMapping<P>;
  }[],
): { schema: Schema; columns: ColumnInfo[]; plans: P[] } {
  const infos: ColumnInfo[] = [];
  const plans: P[] = [];
  const problems: string[] = [];
  for (const { name, nativeType, mapping } of columns) {
    infos.push({
      name,
      nativeType,
      arrowType: mapping.plan?.arrowType,
      fidelity: mapping.plan ? mapping.fidelity : "unsupported",
      ...(mapping.logical ? { logicalType: mapping.logical } : {}),
      ...(mapping.reason ? { unsupportedReason: mapping.reason } : {}),
    });
    if (mapping.plan) plans.push(mapping.plan);
    else problems.push(`'${name}' (${nativeType}): ${mapping.reason}`);
  }
  if (problems.length > 0) {
    throw new UnsupportedColumnsError(`Unsupported column types: ${problems.join("; ")}`, infos);
  }
  const schema = new Schema(
    infos.map((c) =>
      new Field(
        c.name,
        c.arrowType!,
        true,
        columnFieldMetadata(c, { scalar: !(c.arrowType instanceof List) }),
      )
    ),
  );
  return { schema, columns: infos, plans };
}
