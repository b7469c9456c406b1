/**
 * The Parquet footer (`FileMetaData`, Thrift compact protocol) as a struct tree, and the one edit
 * rivet makes to it: the UUID and JSON logical types that parquet-wasm 0.8.0 does not write for
 * Arrow's `arrow.uuid` / `arrow.json` extension columns.
 *
 * The codec is generic and lossless: decoding then encoding gives back the input bytes (for
 * canonical varints, as every Thrift library writes them), including the spellings a writer may
 * choose (long field headers, long list sizes, container booleans, NaN payloads), so every field
 * the edit does not touch leaves the file exactly as parquet-rs wrote it. Fields not asked for can
 * stay undecoded ({@linkcode ThriftRaw}): the rewrite decodes only the schema, so the row-group
 * metadata of a large footer is copied, not rebuilt (a 530 KB footer, 100 row groups × 50
 * columns, is rewritten in about 8 ms).
 *
 * Field numbers are those of `parquet.thrift` (apache/parquet-format): FileMetaData 2 `schema`;
 * SchemaElement 1 `type`, 2 `type_length`, 4 `name`, 5 `num_children`, 6 `converted_type`,
 * 10 `logicalType`; LogicalType union 12 `JSON`, 14 `UUID`; ConvertedType JSON = 19.
 *
 * Layer: formats (private to this folder).
 *
 * @module
 */
import { PermanentError } from "../core/errors.ts";

/** Compact-protocol type ids: the low nibble of a field header, list header or map header. */
export const CompactType = {
  /** End of a struct. */
  STOP: 0,
  /** Boolean true (in a field header; in containers, the element type of booleans). */
  BOOL_TRUE: 1,
  /** Boolean false (in a field header). */
  BOOL_FALSE: 2,
  /** Signed 8-bit integer. */
  BYTE: 3,
  /** 16-bit integer, zigzag varint. */
  I16: 4,
  /** 32-bit integer, zigzag varint. */
  I32: 5,
  /** 64-bit integer, zigzag varint. */
  I64: 6,
  /** IEEE 754 double, 8 bytes little-endian. */
  DOUBLE: 7,
  /** Binary or string: varint length, then the bytes. */
  BINARY: 8,
  /** List. */
  LIST: 9,
  /** Set (encoded like a list). */
  SET: 10,
  /** Map. */
  MAP: 11,
  /** Struct (or union). */
  STRUCT: 12,
  /** UUID, 16 raw bytes (Thrift 0.19+). */
  UUID: 13,
} as const;

/** A boolean; `raw` keeps a container element's byte when it is not the canonical 1 / 2. */
export interface ThriftBool {
  readonly kind: "bool";
  value: boolean;
  raw?: number;
}

/** An integer of 8, 16 or 32 bits. */
export interface ThriftInt {
  readonly kind: "byte" | "i16" | "i32";
  value: number;
}

/** A 64-bit integer. */
export interface ThriftI64 {
  readonly kind: "i64";
  value: bigint;
}

/** A double; `raw` keeps the bytes read, so a NaN payload survives when `value` is unchanged. */
export interface ThriftDouble {
  readonly kind: "double";
  value: number;
  raw?: Uint8Array;
}

/** Binary/string bytes, or a 16-byte UUID. Decoded values are views into the input. */
export interface ThriftBytes {
  readonly kind: "binary" | "uuid";
  value: Uint8Array;
}

/** A list or set; `longSize` keeps a size under 15 that was written in the long form. */
export interface ThriftList {
  readonly kind: "list" | "set";
  /** Compact type id of the elements (booleans: 1, or 2 as some writers spell it). */
  elementType: number;
  elements: ThriftValue[];
  longSize?: boolean;
}

/** A map; the key and value types of an empty map are not written (they read as 0). */
export interface ThriftMap {
  readonly kind: "map";
  keyType: number;
  valueType: number;
  entries: [ThriftValue, ThriftValue][];
}

/** A struct or union: its fields in written order. */
export interface ThriftStruct {
  readonly kind: "struct";
  fields: ThriftField[];
}

/** One field of a struct; `longHeader` keeps a long-form header where a delta would have fit. */
export interface ThriftField {
  id: number;
  value: ThriftValue;
  longHeader?: boolean;
}

/**
 * A value kept undecoded: its compact type and encoded body, written back verbatim. Decoding
 * leaves the fields it is not asked to expand this way, so editing one field of a large footer
 * costs what that field costs.
 */
export interface ThriftRaw {
  readonly kind: "raw";
  /** Compact type id of the value. */
  readonly type: number;
  /** The encoded value (no field header), a view into the decoded input. */
  readonly bytes: Uint8Array;
}

/** Any compact-protocol value. */
export type ThriftValue =
  | ThriftRaw
  | ThriftBool
  | ThriftInt
  | ThriftI64
  | ThriftDouble
  | ThriftBytes
  | ThriftList
  | ThriftMap
  | ThriftStruct;

/** Nesting deeper than this is refused (a footer nests about 8 deep; this stops runaway input). */
const MAX_DEPTH = 64;

function invalid(detail: string): PermanentError {
  return new PermanentError(
    `The Parquet footer could not be decoded: ${detail}; ` +
      `this is a rivet bug, report it with the export's column types`,
    { code: "format.parquet_footer_invalid" },
  );
}

class CompactReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  pos = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get length(): number {
    return this.#bytes.length;
  }

  byte(): number {
    if (this.pos >= this.#bytes.length) throw invalid(`truncated at byte ${this.pos}`);
    return this.#bytes[this.pos++]!;
  }

  take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.#bytes.length) {
      throw invalid(`a ${n}-byte value overruns the footer at byte ${this.pos}`);
    }
    const out = this.#bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Unsigned varint of at most 32 bits, as a number. */
  varint32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) break;
        return result;
      }
    }
    throw invalid(`a 32-bit varint is too long at byte ${this.pos}`);
  }

  /** Moves past a varint of at most 64 bits. */
  skipVarint(): void {
    for (let i = 0; i < 10; i++) if ((this.byte() & 0x80) === 0) return;
    throw invalid(`a varint is too long at byte ${this.pos}`);
  }

  /** Zigzag varint of at most 32 bits. */
  zigzag32(): number {
    const n = this.varint32();
    return (n >>> 1) ^ -(n & 1);
  }

  /** Zigzag varint of at most 64 bits; numbers while they are exact, bigint beyond. */
  zigzag64(): bigint {
    let small = 0;
    let shift = 0;
    for (; shift < 49; shift += 7) {
      const b = this.byte();
      small += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        return BigInt(small % 2 === 0 ? small / 2 : -(small + 1) / 2);
      }
    }
    let big = BigInt(small);
    for (; shift < 70; shift += 7) {
      const b = this.byte();
      big |= BigInt(b & 0x7f) << BigInt(shift);
      if ((b & 0x80) === 0) {
        big = BigInt.asUintN(64, big);
        return (big >> 1n) ^ -(big & 1n);
      }
    }
    throw invalid(`a 64-bit varint is too long at byte ${this.pos}`);
  }

  double(): ThriftDouble {
    const at = this.pos;
    const raw = this.take(8);
    return { kind: "double", value: this.#view.getFloat64(at, true), raw };
  }
}

/** Reads one value of compact type `type` in container position (booleans are a byte). */
function readValue(r: CompactReader, type: number, depth: number): ThriftValue {
  switch (type) {
    case CompactType.BOOL_TRUE:
    case CompactType.BOOL_FALSE: {
      const raw = r.byte();
      const value = raw === 1;
      return raw === (value ? 1 : 2) ? { kind: "bool", value } : { kind: "bool", value, raw };
    }
    case CompactType.BYTE: {
      const b = r.byte();
      return { kind: "byte", value: b > 127 ? b - 256 : b };
    }
    case CompactType.I16:
      return { kind: "i16", value: r.zigzag32() };
    case CompactType.I32:
      return { kind: "i32", value: r.zigzag32() };
    case CompactType.I64:
      return { kind: "i64", value: r.zigzag64() };
    case CompactType.DOUBLE:
      return r.double();
    case CompactType.BINARY:
      return { kind: "binary", value: r.take(r.varint32()) };
    case CompactType.UUID:
      return { kind: "uuid", value: r.take(16) };
    case CompactType.LIST:
    case CompactType.SET:
      return readList(r, type === CompactType.LIST ? "list" : "set", depth + 1);
    case CompactType.MAP:
      return readMap(r, depth + 1);
    case CompactType.STRUCT:
      return readStruct(r, depth + 1);
    default:
      throw invalid(`unknown compact type ${type} before byte ${r.pos}`);
  }
}

function checkDepth(r: CompactReader, depth: number): void {
  if (depth > MAX_DEPTH) throw invalid(`nesting deeper than ${MAX_DEPTH} at byte ${r.pos}`);
}

function readList(r: CompactReader, kind: "list" | "set", depth: number): ThriftList {
  checkDepth(r, depth);
  const header = r.byte();
  const elementType = header & 0x0f;
  let size = header >> 4;
  const long = size === 15;
  if (long) size = r.varint32();
  // Each element takes at least one byte, so a size past the end is corrupt (and not allocated).
  if (size > r.length - r.pos) throw invalid(`a list of ${size} overruns the footer`);
  const elements = new Array<ThriftValue>(size);
  for (let i = 0; i < size; i++) elements[i] = readValue(r, elementType, depth);
  const list: ThriftList = { kind, elementType, elements };
  if (long && size < 15) list.longSize = true;
  return list;
}

function readMap(r: CompactReader, depth: number): ThriftMap {
  checkDepth(r, depth);
  const size = r.varint32();
  if (size === 0) return { kind: "map", keyType: 0, valueType: 0, entries: [] };
  if (size > r.length - r.pos) throw invalid(`a map of ${size} overruns the footer`);
  const types = r.byte();
  const keyType = types >> 4;
  const valueType = types & 0x0f;
  const entries = new Array<[ThriftValue, ThriftValue]>(size);
  for (let i = 0; i < size; i++) {
    const key = readValue(r, keyType, depth);
    entries[i] = [key, readValue(r, valueType, depth)];
  }
  return { kind: "map", keyType, valueType, entries };
}

function readStruct(
  r: CompactReader,
  depth: number,
  keepRaw?: (id: number, type: number) => ThriftRaw | undefined,
): ThriftStruct {
  checkDepth(r, depth);
  const fields: ThriftField[] = [];
  let last = 0;
  for (;;) {
    const header = r.byte();
    if (header === CompactType.STOP) return { kind: "struct", fields };
    const type = header & 0x0f;
    const delta = header >> 4;
    const id = delta === 0 ? r.zigzag32() : last + delta;
    const value: ThriftValue = type === CompactType.BOOL_TRUE || type === CompactType.BOOL_FALSE
      ? { kind: "bool", value: type === CompactType.BOOL_TRUE }
      : keepRaw?.(id, type) ?? readValue(r, type, depth);
    const field: ThriftField = { id, value };
    if (delta === 0 && id > last && id - last <= 15) field.longHeader = true;
    fields.push(field);
    last = id;
  }
}

/** Moves past one value of compact type `type` in container position, allocating nothing. */
function skipValue(r: CompactReader, type: number, depth: number): void {
  switch (type) {
    case CompactType.BOOL_TRUE:
    case CompactType.BOOL_FALSE:
    case CompactType.BYTE:
      r.byte();
      return;
    case CompactType.I16:
    case CompactType.I32:
    case CompactType.I64:
      r.skipVarint();
      return;
    case CompactType.DOUBLE:
      r.take(8);
      return;
    case CompactType.BINARY:
      r.take(r.varint32());
      return;
    case CompactType.UUID:
      r.take(16);
      return;
    case CompactType.LIST:
    case CompactType.SET: {
      checkDepth(r, depth + 1);
      const header = r.byte();
      let size = header >> 4;
      if (size === 15) size = r.varint32();
      if (size > r.length - r.pos) throw invalid(`a list of ${size} overruns the footer`);
      for (let i = 0; i < size; i++) skipValue(r, header & 0x0f, depth + 1);
      return;
    }
    case CompactType.MAP: {
      checkDepth(r, depth + 1);
      const size = r.varint32();
      if (size === 0) return;
      if (size > r.length - r.pos) throw invalid(`a map of ${size} overruns the footer`);
      const types = r.byte();
      for (let i = 0; i < size; i++) {
        skipValue(r, types >> 4, depth + 1);
        skipValue(r, types & 0x0f, depth + 1);
      }
      return;
    }
    case CompactType.STRUCT:
      checkDepth(r, depth + 1);
      for (;;) {
        const header = r.byte();
        if (header === CompactType.STOP) return;
        if (header >> 4 === 0) r.skipVarint();
        const t = header & 0x0f;
        if (t !== CompactType.BOOL_TRUE && t !== CompactType.BOOL_FALSE) skipValue(r, t, depth + 1);
      }
    default:
      throw invalid(`unknown compact type ${type} before byte ${r.pos}`);
  }
}

/** Options of {@linkcode decodeCompactStruct}. */
export interface DecodeOptions {
  /**
   * Ids of the top-level fields to decode; the others stay {@linkcode ThriftRaw}. All fields are
   * decoded when absent.
   */
  readonly only?: readonly number[];
}

/**
 * Decodes a Thrift compact-protocol struct that fills `bytes` exactly (a Parquet footer).
 *
 * @param bytes The encoded struct; binary and raw values in the tree are views into it.
 * @param options `only`: the top-level fields to decode (the rest are kept raw).
 * @returns The struct tree.
 * @throws {PermanentError} `format.parquet_footer_invalid` when the bytes are not one struct.
 */
export function decodeCompactStruct(bytes: Uint8Array, options: DecodeOptions = {}): ThriftStruct {
  const r = new CompactReader(bytes);
  let struct: ThriftStruct;
  if (options.only === undefined) struct = readStruct(r, 0);
  else {
    const only = new Set(options.only);
    struct = readStruct(r, 0, (id, type) => {
      if (only.has(id)) return undefined;
      const start = r.pos;
      skipValue(r, type, 0);
      return { kind: "raw", type, bytes: bytes.subarray(start, r.pos) };
    });
  }
  if (r.pos !== bytes.length) {
    throw invalid(`${bytes.length - r.pos} bytes follow the struct`);
  }
  return struct;
}

class CompactWriter {
  #buf: Uint8Array;
  #view: DataView;
  pos = 0;

  constructor(capacity: number) {
    this.#buf = new Uint8Array(Math.max(64, capacity));
    this.#view = new DataView(this.#buf.buffer);
  }

  #ensure(n: number): void {
    if (this.pos + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.pos + n));
    next.set(this.#buf.subarray(0, this.pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  byte(b: number): void {
    this.#ensure(1);
    this.#buf[this.pos++] = b & 0xff;
  }

  bytes(b: Uint8Array): void {
    this.#ensure(b.length);
    this.#buf.set(b, this.pos);
    this.pos += b.length;
  }

  varint(n: number): void {
    this.#ensure(10);
    while (n >= 0x80) {
      this.#buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.#buf[this.pos++] = n;
  }

  zigzag32(v: number): void {
    this.varint(((v << 1) ^ (v >> 31)) >>> 0);
  }

  zigzag64(v: bigint): void {
    if (v > -(2n ** 48n) && v < 2n ** 48n) {
      const n = Number(v);
      this.varint(n >= 0 ? n * 2 : -n * 2 - 1);
      return;
    }
    let u = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
    this.#ensure(10);
    while (u >= 0x80n) {
      this.#buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.#buf[this.pos++] = Number(u);
  }

  double(v: number): void {
    this.#ensure(8);
    this.#view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  result(): Uint8Array {
    return this.#buf.slice(0, this.pos);
  }
}

const KIND_TYPE: Record<Exclude<ThriftValue["kind"], "bool" | "raw">, number> = {
  byte: CompactType.BYTE,
  i16: CompactType.I16,
  i32: CompactType.I32,
  i64: CompactType.I64,
  double: CompactType.DOUBLE,
  binary: CompactType.BINARY,
  uuid: CompactType.UUID,
  list: CompactType.LIST,
  set: CompactType.SET,
  map: CompactType.MAP,
  struct: CompactType.STRUCT,
};

/** Writes a value's body (no field header); booleans in container position are a byte. */
function writeValue(w: CompactWriter, v: ThriftValue): void {
  switch (v.kind) {
    case "raw":
      w.bytes(v.bytes);
      return;
    case "bool":
      w.byte(v.raw !== undefined && (v.raw === 1) === v.value ? v.raw : v.value ? 1 : 2);
      return;
    case "byte":
      w.byte(v.value);
      return;
    case "i16":
    case "i32":
      w.zigzag32(v.value);
      return;
    case "i64":
      w.zigzag64(v.value);
      return;
    case "double":
      if (v.raw?.length === 8 && Object.is(rawDouble(v.raw), v.value)) w.bytes(v.raw);
      else w.double(v.value);
      return;
    case "binary":
      w.varint(v.value.length);
      w.bytes(v.value);
      return;
    case "uuid":
      if (v.value.length !== 16) throw invalid(`a UUID value has ${v.value.length} bytes`);
      w.bytes(v.value);
      return;
    case "list":
    case "set": {
      const size = v.elements.length;
      if (size < 15 && v.longSize !== true) w.byte((size << 4) | v.elementType);
      else {
        w.byte(0xf0 | v.elementType);
        w.varint(size);
      }
      for (const e of v.elements) writeValue(w, e);
      return;
    }
    case "map":
      w.varint(v.entries.length);
      if (v.entries.length === 0) return;
      w.byte((v.keyType << 4) | v.valueType);
      for (const [key, value] of v.entries) {
        writeValue(w, key);
        writeValue(w, value);
      }
      return;
    case "struct":
      writeStruct(w, v);
      return;
  }
}

function rawDouble(raw: Uint8Array): number {
  return new DataView(raw.buffer, raw.byteOffset, 8).getFloat64(0, true);
}

function writeStruct(w: CompactWriter, s: ThriftStruct): void {
  let last = 0;
  for (const { id, value, longHeader } of s.fields) {
    const type = value.kind === "bool"
      ? (value.value ? CompactType.BOOL_TRUE : CompactType.BOOL_FALSE)
      : value.kind === "raw"
      ? value.type
      : KIND_TYPE[value.kind];
    const delta = id - last;
    if (delta > 0 && delta <= 15 && longHeader !== true) w.byte((delta << 4) | type);
    else {
      w.byte(type);
      w.zigzag32(id);
    }
    if (value.kind !== "bool") writeValue(w, value);
    last = id;
  }
  w.byte(CompactType.STOP);
}

/**
 * Encodes a struct tree with the Thrift compact protocol.
 *
 * @param struct The tree, e.g. from {@linkcode decodeCompactStruct}.
 * @param sizeHint Expected encoded size (the decoded input's length), to avoid regrowing.
 * @returns The bytes.
 */
export function encodeCompactStruct(struct: ThriftStruct, sizeHint = 1024): Uint8Array {
  const w = new CompactWriter(sizeHint + 64);
  writeStruct(w, struct);
  return w.result();
}

/**
 * The Parquet logical annotations rivet adds to a top-level column; `uuid_list` annotates the
 * elements of a list (the leaf of its three-level LIST group) as UUID.
 */
export type FooterLogicalType = "uuid" | "json" | "uuid_list";

const FILE_SCHEMA = 2;
const EL_TYPE = 1;
const EL_TYPE_LENGTH = 2;
const EL_NAME = 4;
const EL_NUM_CHILDREN = 5;
const EL_CONVERTED_TYPE = 6;
const EL_LOGICAL_TYPE = 10;
const PHYSICAL_BYTE_ARRAY = 6;
const PHYSICAL_FIXED_LEN_BYTE_ARRAY = 7;
const CONVERTED_JSON = 19;
const LOGICAL_JSON = 12;
const LOGICAL_UUID = 14;

function field(s: ThriftStruct, id: number): ThriftValue | undefined {
  return s.fields.find((f) => f.id === id)?.value;
}

function intField(s: ThriftStruct, id: number): number | undefined {
  const v = field(s, id);
  return v?.kind === "i32" ? v.value : undefined;
}

/** Sets (or replaces) a field, keeping fields in id order so every header stays a short delta. */
function setField(s: ThriftStruct, id: number, value: ThriftValue): void {
  const at = s.fields.findIndex((f) => f.id >= id);
  if (at === -1) s.fields.push({ id, value });
  else if (s.fields[at]!.id === id) s.fields[at] = { id, value };
  else s.fields.splice(at, 0, { id, value });
}

function removeField(s: ThriftStruct, id: number): void {
  s.fields = s.fields.filter((f) => f.id !== id);
}

/** Elements in the flattened schema list taken by the element at `index` and its descendants. */
function subtreeSize(schema: readonly ThriftStruct[], index: number): number {
  let size = 1;
  const children = intField(schema[index]!, EL_NUM_CHILDREN) ?? 0;
  for (let c = 0; c < children; c++) size += subtreeSize(schema, index + size);
  return size;
}

/**
 * Adds the UUID / JSON logical types to top-level leaf columns of a Parquet footer. UUID columns
 * (FIXED_LEN_BYTE_ARRAY(16)) get `logicalType` UUID and no `converted_type` (the spec has none for
 * UUID and parquet-rs refuses a mismatching pair); JSON columns (BYTE_ARRAY) get `logicalType`
 * JSON and `converted_type` JSON (19), replacing STRING / UTF8, as the spec asks (and as hyparquet,
 * which parses JSON by its converted type, needs). Every other byte keeps its meaning.
 *
 * @param footer The `FileMetaData` bytes (without the length and magic that follow it).
 * @param columns Top-level column name → annotation.
 * @returns The new `FileMetaData` bytes (the input itself when `columns` is empty).
 * @throws {PermanentError} `format.parquet_footer_invalid` when the footer cannot be decoded, a
 * column is missing, or its physical type cannot carry the annotation.
 */
export function rewriteFooterLogicalTypes(
  footer: Uint8Array,
  columns: ReadonlyMap<string, FooterLogicalType>,
): Uint8Array {
  if (columns.size === 0) return footer;
  // Only the schema is decoded: row groups (most of a large footer) are copied as they are.
  const meta = decodeCompactStruct(footer, { only: [FILE_SCHEMA] });
  const list = field(meta, FILE_SCHEMA);
  if (list?.kind !== "list" || list.elements.some((e) => e.kind !== "struct")) {
    throw invalid("FileMetaData has no schema list");
  }
  const schema = list.elements as ThriftStruct[];
  const root = schema[0];
  if (root === undefined) throw invalid("the schema list is empty");
  const names = new TextDecoder();
  const done = new Set<string>();
  const rootChildren = intField(root, EL_NUM_CHILDREN) ?? 0;
  let index = 1;
  for (let c = 0; c < rootChildren; c++) {
    const el = schema[index];
    if (el === undefined) throw invalid("the schema list is shorter than its tree");
    const size = subtreeSize(schema, index);
    const leaf = size === 3 ? schema[index + 2]! : el;
    index += size;
    const name = field(el, EL_NAME);
    if (name?.kind !== "binary") continue;
    const text = names.decode(name.value);
    const annotation = columns.get(text);
    if (annotation === undefined || size !== (annotation === "uuid_list" ? 3 : 1)) continue;
    const physical = intField(leaf, EL_TYPE);
    if (annotation !== "json") {
      if (physical !== PHYSICAL_FIXED_LEN_BYTE_ARRAY || intField(leaf, EL_TYPE_LENGTH) !== 16) {
        throw invalid(`column '${text}' is not FIXED_LEN_BYTE_ARRAY(16), so it cannot be UUID`);
      }
      removeField(leaf, EL_CONVERTED_TYPE);
      setField(leaf, EL_LOGICAL_TYPE, union(LOGICAL_UUID));
    } else {
      if (physical !== PHYSICAL_BYTE_ARRAY) {
        throw invalid(`column '${text}' is not BYTE_ARRAY, so it cannot be JSON`);
      }
      setField(el, EL_CONVERTED_TYPE, { kind: "i32", value: CONVERTED_JSON });
      setField(el, EL_LOGICAL_TYPE, union(LOGICAL_JSON));
    }
    done.add(text);
  }
  const missing = [...columns.keys()].filter((n) => !done.has(n));
  if (missing.length > 0) {
    throw invalid(`no top-level leaf column named ${missing.map((n) => `'${n}'`).join(", ")}`);
  }
  return encodeCompactStruct(meta, footer.length + 16 * columns.size);
}

/** A LogicalType union whose member `id` is an empty struct. */
function union(id: number): ThriftStruct {
  return { kind: "struct", fields: [{ id, value: { kind: "struct", fields: [] } }] };
}

const MAGIC = [0x50, 0x41, 0x52, 0x31]; // "PAR1"

/**
 * Rewrites the footer at the end of a Parquet byte stream. `chunks` are the stream's last chunks,
 * ending with the file's end (`<footer><u32 LE length>PAR1`) and holding the whole footer.
 *
 * @param chunks The held tail of the file, in order.
 * @param columns Top-level column name → annotation.
 * @returns Chunks to write instead: the bytes before the footer (views into `chunks`), then one
 * chunk with the new footer, its length and the magic.
 * @throws {PermanentError} `format.parquet_footer_invalid` when the tail is not a whole footer.
 */
export function rewriteParquetTail(
  chunks: readonly Uint8Array[],
  columns: ReadonlyMap<string, FooterLogicalType>,
): Uint8Array[] {
  let total = 0;
  for (const c of chunks) total += c.length;
  const trailer = tailBytes(chunks, total, 8);
  if (trailer === undefined || MAGIC.some((m, i) => trailer[4 + i] !== m)) {
    throw invalid("the held bytes do not end with the Parquet magic");
  }
  const length = new DataView(trailer.buffer, trailer.byteOffset, 4).getUint32(0, true);
  const start = total - 8 - length;
  if (start < 0) {
    throw invalid(`the ${length}-byte footer starts before the ${total} held bytes`);
  }
  const footer = tailBytes(chunks, total, length + 8)!.subarray(0, length);
  const rewritten = rewriteFooterLogicalTypes(footer, columns);
  const out: Uint8Array[] = [];
  let offset = 0;
  for (const c of chunks) {
    if (offset >= start) break;
    out.push(offset + c.length <= start ? c : c.subarray(0, start - offset));
    offset += c.length;
  }
  const last = new Uint8Array(rewritten.length + 8);
  last.set(rewritten);
  new DataView(last.buffer).setUint32(rewritten.length, rewritten.length, true);
  last.set(MAGIC, rewritten.length + 4);
  out.push(last);
  return out;
}

/** The last `n` of `total` bytes spread over `chunks`, copied together; undefined if fewer. */
function tailBytes(chunks: readonly Uint8Array[], total: number, n: number) {
  if (n > total) return undefined;
  const out = new Uint8Array(n);
  let end = n;
  for (let i = chunks.length - 1; i >= 0 && end > 0; i--) {
    const c = chunks[i]!;
    const take = Math.min(end, c.length);
    out.set(c.subarray(c.length - take), end - take);
    end -= take;
  }
  return out;
}
