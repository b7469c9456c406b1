/**
 * Which Parquet columns get dictionary encoding, decided once per file from its first batch.
 *
 * A dictionary pays when a column repeats a modest set of values (a status, a currency, a foreign
 * key): each row then costs a few bits of index instead of the value. It costs time and bytes when
 * values hardly repeat (keys, long free text), so the writer is not told to try everywhere.
 *
 * The decision: for each top-level column of an eligible type (strings, binaries, fixed-size
 * binaries such as uuid, integers, decimals, dates), hash the value bytes of up to
 * {@linkcode SAMPLE_ROWS} rows (fewer for long values, at most {@linkcode SAMPLE_BYTES} bytes) and
 * count the distinct ones. From how many values repeat in the sample, estimate how many distinct
 * values the whole column holds (as if the sample were random draws; a column with no repeat at
 * all is treated as unique). The column is dictionary-encoded when that estimate, times the value
 * width, fits in the dictionary page limit: a foreign key with 50,000 distinct uuids among a
 * million rows repeats within a 16k-row sample often enough to qualify, a primary key never does.
 * Floats, timestamps, times, booleans and nested columns stay plain: their values rarely repeat,
 * or parquet-rs encodes them compactly without one.
 *
 * A guess from one batch can be wrong (a column sorted by value looks low-cardinality at first);
 * the writer's dictionary page limit ({@linkcode DICTIONARY_PAGE_BYTES}) bounds the damage: once
 * a column chunk's dictionary grows past it, parquet-rs writes the rest of that chunk plain.
 *
 * Deterministic: only the first batch's bytes are read, in row order.
 *
 * Layer: formats. Imports core/ only.
 *
 * @module
 */
import { type Data, type RecordBatch, Type } from "../core/arrow.ts";

/** Rows sampled per column at most. */
export const SAMPLE_ROWS = 16_384;

/** Value bytes hashed per column at most (long text samples fewer rows). */
export const SAMPLE_BYTES = 4 * 1024 * 1024;

/**
 * The writer's dictionary page limit per column chunk: a column whose dictionary grows past it
 * falls back to plain encoding for the rest of the chunk. 4 MB holds 50,000 uuids written as text
 * (40 bytes each with the length prefix, 2 MB) with room for the estimate's error; it is also the
 * most a dictionary holds in memory per column while its row group is open (parquet-rs's default
 * of 1 MB would leave such a foreign key plain).
 */
export const DICTIONARY_PAGE_BYTES = 4 * 1024 * 1024;

/** The decision for one column, with the figures behind it (tests and benchmarks print them). */
export interface DictionaryChoice {
  /** Column name (top-level). */
  readonly column: string;
  /** Dictionary encoding on. */
  readonly enabled: boolean;
  /** Non-null values sampled. */
  readonly sampled: number;
  /** Distinct values among them. */
  readonly distinct: number;
  /** Estimated distinct values in the whole column (Infinity when the sample never repeats). */
  readonly estimatedDistinct: number;
  /** Mean bytes a dictionary entry takes (variable-length values: plus a 4-byte length). */
  readonly entryBytes: number;
}

/**
 * Decides per top-level column whether the writer should build a dictionary.
 *
 * @param batch The file's first batch (its schema is the file schema).
 * @param limit Dictionary page limit in bytes.
 * @returns One choice per column, in schema order.
 *
 * @example
 * ```ts
 * import { chooseDictionaryColumns } from "./_dictionary.ts";
 * import { Int32, makeData, RecordBatch, Schema, Field, Struct } from "../core/arrow.ts";
 * const field = new Field("status", new Int32(), false);
 * const values = Int32Array.from({ length: 1000 }, (_, i) => i % 5);
 * const child = makeData({ type: new Int32(), length: 1000, data: values });
 * const batch = new RecordBatch(
 *   new Schema([field]),
 *   makeData({ type: new Struct([field]), length: 1000, children: [child] }),
 * );
 * const [choice] = chooseDictionaryColumns(batch);
 * if (!choice?.enabled || choice.distinct !== 5) throw new Error(JSON.stringify(choice));
 * ```
 */
export function chooseDictionaryColumns(
  batch: RecordBatch,
  limit = DICTIONARY_PAGE_BYTES,
): DictionaryChoice[] {
  return batch.schema.fields.map((field, i) => {
    const data = batch.data.children[i];
    const sample = data === undefined ? undefined : sampleColumn(data);
    if (sample === undefined) {
      return {
        column: field.name,
        enabled: false,
        sampled: 0,
        distinct: 0,
        estimatedDistinct: Infinity,
        entryBytes: 0,
      };
    }
    const estimatedDistinct = estimateDistinct(sample.sampled, sample.distinct);
    const enabled = sample.sampled > 0 && estimatedDistinct * sample.entryBytes <= limit;
    return { column: field.name, enabled, ...sample, estimatedDistinct };
  });
}

/** What the writer is told: the columns to dictionary-encode, and whether it needs format v2. */
export interface DictionaryPlan {
  /** Top-level column names with dictionary encoding on. */
  readonly columns: readonly string[];
  /**
   * parquet-rs builds dictionaries for fixed-size binary columns (uuid, and decimals wider than
   * 18 digits) only with writer version 2 (data page v2). It is asked for only when such a column
   * is chosen, so other files stay byte-for-byte what they were.
   */
  readonly writerV2: boolean;
}

/**
 * The writer settings from the first batch's choices.
 *
 * @param batch The file's first batch.
 * @returns Columns to encode with a dictionary, and whether writer version 2 is needed.
 */
export function planDictionary(batch: RecordBatch): DictionaryPlan {
  const choices = chooseDictionaryColumns(batch);
  const on = new Set(choices.filter((c) => c.enabled).map((c) => c.column));
  const writerV2 = batch.schema.fields.some((f) =>
    on.has(f.name) && (f.type.typeId === Type.FixedSizeBinary ||
      // deno-lint-ignore no-explicit-any
      (f.type.typeId === Type.Decimal && (f.type as any).precision > 18))
  );
  return { columns: [...on], writerV2 };
}

/**
 * Distinct values in the population from a sample of `n` values with `d` distinct, as if drawn at
 * random from K equally likely values: solves `d = K·(1 − e^(−n/K))` for K. No repeat at all
 * (d = n) gives Infinity: nothing tells the column is not unique.
 *
 * @param n Values sampled.
 * @param d Distinct values among them.
 * @returns The estimate, at least `d`.
 */
export function estimateDistinct(n: number, d: number): number {
  if (d >= n) return n === 0 ? 0 : Infinity;
  if (d <= 1) return d;
  const expected = (k: number) => k * -Math.expm1(-n / k);
  // expected(k) rises with k from ~d.. towards n; bisect on a log scale.
  let lo = d;
  let hi = d;
  while (expected(hi) < d) hi *= 2;
  for (let i = 0; i < 60 && hi - lo > 0.5; i++) {
    const mid = Math.sqrt(lo * hi);
    if (expected(mid) < d) lo = mid;
    else hi = mid;
  }
  return Math.ceil(hi);
}

interface Sample {
  readonly sampled: number;
  readonly distinct: number;
  readonly entryBytes: number;
}

/** Hashes up to the sample bounds of one column; undefined for types kept plain. */
function sampleColumn(data: Data): Sample | undefined {
  // deno-lint-ignore no-explicit-any
  const t = data.type as any;
  switch (t.typeId as Type) {
    case Type.Utf8:
    case Type.Binary:
      return sampleVariable(data, data.valueOffsets as Int32Array);
    case Type.LargeUtf8:
    case Type.LargeBinary:
      return sampleVariable(data, data.valueOffsets as unknown as BigInt64Array);
    case Type.FixedSizeBinary:
      return sampleFixed(data, t.byteWidth);
    case Type.Decimal:
      return sampleFixed(data, t.bitWidth / 8);
    case Type.Int:
      return sampleFixed(data, t.bitWidth / 8);
    case Type.Date:
      return sampleFixed(data, t.unit === 0 ? 4 : 8);
    default:
      return undefined;
  }
}

/** True when row `i` (relative to the data's offset) is not NULL. */
function isValid(data: Data, i: number): boolean {
  const bitmap = data.nullBitmap;
  if (data.nullCount === 0 || bitmap === undefined || bitmap.length === 0) return true;
  const j = data.offset + i;
  return (bitmap[j >> 3]! & (1 << (j & 7))) !== 0;
}

/** Two 32-bit FNV-1a style hashes folded into one safe integer (53 bits): collisions are rare. */
function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ (end - start);
  for (let k = start; k < end; k++) {
    const x = bytes[k]!;
    a = Math.imul(a ^ x, 0x01000193);
    b = Math.imul(b ^ x, 0x5bd1e995);
  }
  b ^= b >>> 15;
  return (a >>> 0) * 0x200000 + ((b >>> 0) & 0x1fffff);
}

function sampleVariable(data: Data, offsets: Int32Array | BigInt64Array): Sample {
  const bytes = data.values as Uint8Array;
  const seen = new Set<number>();
  let sampled = 0;
  let total = 0;
  for (let i = 0; i < data.length && sampled < SAMPLE_ROWS && total < SAMPLE_BYTES; i++) {
    if (!isValid(data, i)) continue;
    const start = Number(offsets[data.offset + i]!);
    const end = Number(offsets[data.offset + i + 1]!);
    seen.add(hashBytes(bytes, start, end));
    sampled++;
    total += end - start;
  }
  return { sampled, distinct: seen.size, entryBytes: sampled === 0 ? 0 : total / sampled + 4 };
}

function sampleFixed(data: Data, width: number): Sample {
  const values = data.values as ArrayBufferView;
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const seen = new Set<number>();
  let sampled = 0;
  for (let i = 0; i < data.length && sampled < SAMPLE_ROWS; i++) {
    if (!isValid(data, i)) continue;
    const start = (data.offset + i) * width;
    seen.add(hashBytes(bytes, start, start + width));
    sampled++;
  }
  return { sampled, distinct: seen.size, entryBytes: width };
}
