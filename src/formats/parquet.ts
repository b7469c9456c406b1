/**
 * Parquet format: parquet-wasm 0.8.0 (parquet-rs inside) fed batch by batch through
 * `transformParquetStream`, so memory follows the row-group size, not the file size.
 *
 * Each Arrow JS batch crosses into wasm as an IPC stream. The input stream is pull-based: a
 * `write()` resolves once the writer has taken its batch, so at most one batch waits while another
 * is encoded, and the database cursor upstream is back-pressured. The output (one chunk per row
 * group, then the footer) is piped into the sink, awaiting its backpressure; `bytesWritten` counts
 * bytes handed to the sink, so it trails the rows by up to one row group (the Rust tool's writer
 * also reports flushed bytes only).
 *
 * Writer settings: `created_by` pinned to `rivet`; dictionary encoding per column, decided from the
 * first batch (`_dictionary.ts`: on where values repeat, off for keys, floats, timestamps and long
 * unique text, with a dictionary page limit past which parquet-rs falls back to plain; see
 * ADR-0005); statistics on (parquet-rs default, page level) except for string and binary columns
 * whose first-batch values average over 128 bytes (`_statistics.ts`); codecs zstd / snappy / gzip /
 * lz4 / none, where `lz4` writes LZ4_RAW, the codec parquet-rs recommends (the older LZ4 codec is
 * deprecated in the Parquet spec and framed differently by Hadoop and parquet-rs).
 *
 * Known limits of parquet-wasm 0.8.0, not faked here:
 * - compression levels cannot be set: zstd always uses parquet-rs's default level (1), gzip its
 *   default (6); `compressionLevel` is accepted and ignored.
 * - `arrow.uuid` / `arrow.json` extension metadata is not mapped to the Parquet UUID / JSON
 *   logical types. rivet adds them itself by rewriting the footer (`_parquet_footer.ts`): when the
 *   schema has such a column, the chunks the writer emits after it was told the input ended (the
 *   only ones that can hold footer bytes: the last row group and the footer) are held back, the
 *   footer is rewritten, and the tail is written. Other schemas pass through untouched.
 * - any timezone becomes `isAdjustedToUTC=true`; the zone name survives only in `ARROW:schema`.
 *
 * Layer: formats. Imports core/ only (and the Parquet package, named only in this folder).
 *
 * @module
 */
import {
  Compression as WasmCompression,
  EnabledStatistics,
  Encoding as WasmEncoding,
  type RecordBatch as WasmRecordBatch,
  Table as WasmTable,
  transformParquetStream,
  WriterPropertiesBuilder,
  WriterVersion as WasmWriterVersion,
} from "parquet-wasm/esm";
import {
  type Data,
  type DataType,
  type Field,
  makeData,
  RecordBatch,
  type Schema,
  Struct,
  Table,
  tableToIPC,
  Type,
} from "../core/arrow.ts";
import { ConfigError, PermanentError } from "../core/errors.ts";
import type { BatchEncoder, Format, RowRecounter } from "../core/format.ts";
import type { Compression, FormatSpec, ParquetSpec } from "../core/spec.ts";
import { DICTIONARY_PAGE_BYTES, type DictionaryPlan, planDictionary } from "./_dictionary.ts";
import { longValueColumns } from "./_statistics.ts";
import { type FooterLogicalType, rewriteParquetTail } from "./_parquet_footer.ts";
import { assertBatchMatches } from "./_schema.ts";
import { parquetRecounter } from "./_recount.ts";
import { loadParquetWasm } from "./_wasm.ts";

export { compileParquetWasm, loadParquetWasm, parquetWasmMemoryBytes } from "./_wasm.ts";

/**
 * parquet-rs's default maximum rows per row group, used (as by the Rust tool) when the export has
 * no `parquet:` block.
 */
export const LIBRARY_DEFAULT_ROW_GROUP_ROWS = 1_048_576;

/**
 * Byte ceiling of a row group when no `parquet:` block is written. parquet-rs measures it on the
 * encoded (compressed) pages buffered for the open row group, checked between the batches it is
 * given. The writer's memory is a multiple of it (the buffered pages, the output buffer they are
 * flushed into, its growth), so it is the lever on peak memory for wide rows. Measured on a 2M-row
 * table of ~800-byte rows (21 columns, zstd): a 64 MB ceiling made 5 row groups of ~417k rows and
 * peak wasm memory 300 MB (process 630 MB); 8 MB makes ~55k-row groups, peak wasm 62 MB (process
 * ~305 MB), the same file size within 1%. Narrow rows (~9 MB per million compressed) still get
 * row groups of about a million rows.
 */
export const DEFAULT_ROW_GROUP_BYTES = 8 * 1024 * 1024;

const MB = 1024 * 1024;
const MIN_ROWS = 1_000;
const MAX_ROWS = 10_000_000;

/** Rows (and optionally bytes) per row group, as handed to the writer. */
export interface RowGroupPlan {
  /** Maximum rows per row group. */
  readonly maxRows: number;
  /** Maximum encoded bytes per row group, measured by the writer; no byte limit when absent. */
  readonly maxBytes?: number;
}

/**
 * Estimated in-memory bytes of one row, with the Rust tool's per-type sizes: bool 1, int16 2,
 * int32/float32/date32 4, other 64-bit types and timestamps 8, decimals 16, strings/binary 256,
 * anything else 64, plus 1 per column.
 *
 * @param schema The file schema.
 * @returns Estimated bytes per row.
 */
export function estimateRowBytes(schema: Schema): number {
  let total = 0;
  for (const field of schema.fields) total += estimateValueBytes(field.type) + 1;
  return total;
}

function estimateValueBytes(type: DataType): number {
  // deno-lint-ignore no-explicit-any
  const t = type as any;
  switch (t.typeId as Type) {
    case Type.Bool:
      return 1;
    case Type.Int:
      return t.bitWidth / 8;
    case Type.Float:
      return t.precision === 0 ? 2 : t.precision === 1 ? 4 : 8;
    case Type.Date:
      return t.unit === 0 ? 4 : 8;
    case Type.Time:
      return t.bitWidth / 8;
    case Type.Timestamp:
    case Type.Duration:
      return 8;
    case Type.Decimal:
      return 16;
    case Type.Utf8:
    case Type.Binary:
    case Type.LargeUtf8:
    case Type.LargeBinary:
      return 256;
    default:
      return 64;
  }
}

/**
 * Row-group sizing, with the Rust tool's rules. No `parquet:` block: parquet-rs's row ceiling plus
 * {@linkcode DEFAULT_ROW_GROUP_BYTES}. `auto`/`fixed_memory`: target MB ÷ estimated row bytes,
 * clamped to 1,000..10,000,000, then capped by `max_row_group_mb` (never below 1,000 rows; also
 * given to the writer as a byte ceiling). `fixed_rows`: `row_group_rows`, else the library default.
 *
 * @param schema The file schema.
 * @param spec The `parquet:` block, if written.
 * @returns The plan.
 */
export function planRowGroups(schema: Schema, spec?: ParquetSpec): RowGroupPlan {
  if (spec === undefined) {
    return { maxRows: LIBRARY_DEFAULT_ROW_GROUP_ROWS, maxBytes: DEFAULT_ROW_GROUP_BYTES };
  }
  if (spec.rowGroupStrategy === "fixed_rows") {
    return { maxRows: spec.rowGroupRows ?? LIBRARY_DEFAULT_ROW_GROUP_ROWS };
  }
  const rowBytes = estimateRowBytes(schema);
  let rows = Math.floor((spec.targetRowGroupMb * MB) / rowBytes);
  rows = Math.min(MAX_ROWS, Math.max(MIN_ROWS, rows));
  if (spec.maxRowGroupMb === undefined) return { maxRows: rows };
  const cap = Math.max(MIN_ROWS, Math.floor((spec.maxRowGroupMb * MB) / rowBytes));
  return { maxRows: Math.min(rows, cap), maxBytes: spec.maxRowGroupMb * MB };
}

const CODECS: Record<Compression, WasmCompression> = {
  zstd: WasmCompression.ZSTD,
  snappy: WasmCompression.SNAPPY,
  gzip: WasmCompression.GZIP,
  lz4: WasmCompression.LZ4_RAW,
  none: WasmCompression.UNCOMPRESSED,
};

/** Refuses, naming the column, the types parquet-rs cannot write. */
function assertWritable(schema: Schema): void {
  for (const field of schema.fields) {
    // deno-lint-ignore no-explicit-any
    const t = field.type as any;
    let reason: string | undefined;
    if (t.typeId === Type.Decimal && t.scale < 0) {
      reason = `a negative decimal scale (${t.scale})`;
    } else if (t.typeId === Type.Interval && t.unit === 2) {
      reason = "an interval of months, days and nanoseconds";
    }
    if (reason !== undefined) {
      throw new ConfigError(
        `Parquet cannot write column '${field.name}' with ${reason}; ` +
          `cast it in the query or set a columns: override (e.g. decimal(p,s) or text)`,
        { code: "format.parquet_unsupported_type" },
      );
    }
  }
}

/**
 * Top-level columns whose Arrow extension has a Parquet logical type parquet-wasm does not write:
 * `arrow.uuid` on FixedSizeBinary(16) → UUID, `arrow.json` on Utf8 / LargeUtf8 → JSON, and a
 * uuid list (`rivet.logical_type` uuid on a List of FixedSizeBinary(16)) → UUID elements, so a
 * `uuid[]` column is annotated like a uuid column.
 */
function footerLogicalTypes(schema: Schema): Map<string, FooterLogicalType> {
  const out = new Map<string, FooterLogicalType>();
  for (const field of schema.fields) {
    const extension = field.metadata.get("ARROW:extension:name");
    // deno-lint-ignore no-explicit-any
    const t = field.type as any;
    if (extension === "arrow.uuid" && t.typeId === Type.FixedSizeBinary && t.byteWidth === 16) {
      out.set(field.name, "uuid");
    } else if (
      extension === "arrow.json" && (t.typeId === Type.Utf8 || t.typeId === Type.LargeUtf8)
    ) {
      out.set(field.name, "json");
    } else if (
      field.metadata.get("rivet.logical_type") === "uuid" && t.typeId === Type.List &&
      t.children[0].type.typeId === Type.FixedSizeBinary && t.children[0].type.byteWidth === 16
    ) {
      out.set(field.name, "uuid_list");
    }
  }
  return out;
}

/** Zero-length data of any type; nested types need their (empty) children spelled out. */
function emptyData(type: DataType): Data {
  // deno-lint-ignore no-explicit-any
  const t = type as any;
  switch (t.typeId as Type) {
    case Type.List:
      return makeData({
        type: t,
        length: 0,
        valueOffsets: new Int32Array(1),
        child: emptyData(t.children[0].type),
      });
    case Type.Struct:
      return makeData({
        type: t,
        length: 0,
        children: t.children.map((f: Field) => emptyData(f.type)),
      });
    default:
      return makeData({ type: t, length: 0 });
  }
}

/** A zero-row batch of `schema`, so a schema-only file can be written. */
function emptyBatch(schema: Schema): RecordBatch {
  return new RecordBatch(schema, emptyData(new Struct(schema.fields)) as Data<Struct>);
}

/** Moves one Arrow JS batch into wasm memory (IPC stream), typed with the file schema. */
function toWasmBatches(schema: Schema, batch: RecordBatch): WasmRecordBatch[] {
  const ipc = tableToIPC(new Table(new RecordBatch(schema, batch.data)), "stream");
  const table = WasmTable.fromIPCStream(ipc);
  try {
    return table.recordBatches();
  } finally {
    table.free();
  }
}

class ParquetBatchEncoder implements BatchEncoder {
  readonly #schema: Schema;
  readonly #plan: RowGroupPlan;
  readonly #codec: WasmCompression;
  readonly #footerTypes: Map<string, FooterLogicalType>;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #input: ReadableStream<WasmRecordBatch>;
  #inputController: ReadableStreamDefaultController<WasmRecordBatch> | undefined;
  #output: ReadableStreamDefaultReader<Uint8Array> | undefined;
  #slot: { batches: WasmRecordBatch[]; taken: () => void } | undefined;
  #wakePull: (() => void) | undefined;
  #ending = false;
  /** Set once the writer has been told the input ended; only later output can hold the footer. */
  #inputEnded = false;
  #closed = false;
  #pump: Promise<void> | undefined;
  #failure: { error: unknown } | undefined;
  readonly #failed: Promise<never>;
  #fail!: (error: unknown) => void;
  #rows = 0;
  #bytes = 0;
  /** Columns to dictionary-encode, decided from the first batch with rows (none before it). */
  #dictionary: DictionaryPlan = { columns: [], writerV2: false };
  /** Long-value columns written without min/max statistics (from the same first batch). */
  #noStatistics: readonly string[] = [];

  constructor(
    schema: Schema,
    sink: WritableStream<Uint8Array>,
    options: { plan: RowGroupPlan; codec: WasmCompression },
  ) {
    this.#schema = schema;
    this.#plan = options.plan;
    this.#codec = options.codec;
    this.#footerTypes = footerLogicalTypes(schema);
    this.#writer = sink.getWriter();
    this.#failed = new Promise<never>((_, reject) => {
      this.#fail = (error) => {
        this.#failure ??= { error };
        reject(this.#failure.error);
      };
    });
    this.#failed.catch(() => {});
    this.#input = new ReadableStream<WasmRecordBatch>({
      start: (controller) => {
        this.#inputController = controller;
      },
      pull: async (controller) => {
        while (this.#slot === undefined && !this.#ending) {
          await new Promise<void>((resolve) => this.#wakePull = resolve);
        }
        this.#wakePull = undefined;
        const slot = this.#slot;
        if (slot === undefined) {
          this.#inputEnded = true;
          controller.close();
          return;
        }
        this.#slot = undefined;
        for (const b of slot.batches) controller.enqueue(b);
        slot.taken();
      },
    }, { highWaterMark: 0 });
  }

  get rowsWritten(): number {
    return this.#rows;
  }

  get bytesWritten(): number {
    return this.#bytes;
  }

  async write(batch: RecordBatch): Promise<void> {
    this.#assertUsable();
    assertBatchMatches(this.#schema, batch);
    // Empty batches carry nothing; the schema-only case is handled by close().
    if (batch.numRows === 0) return;
    // The writer is created at the first offer, so the first batch can still shape its settings.
    if (this.#pump === undefined) {
      this.#dictionary = planDictionary(batch);
      this.#noStatistics = longValueColumns(batch);
    }
    await this.#offer(toWasmBatches(this.#schema, batch));
    this.#rows += batch.numRows;
  }

  async close(): Promise<void> {
    this.#assertUsable();
    // The writer takes its schema from the first batch, so a file without rows still needs one.
    if (this.#pump === undefined) {
      await this.#offer(toWasmBatches(this.#schema, emptyBatch(this.#schema)));
    }
    this.#ending = true;
    this.#wakePull?.();
    await Promise.race([this.#pump, this.#failed]);
    this.#closed = true;
    try {
      await this.#writer.close();
    } catch (error) {
      throw this.#failure?.error ?? error;
    }
  }

  async abort(reason?: unknown): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#ending = true;
    this.#fail(reason ?? new Error("aborted"));
    this.#slot = undefined;
    try {
      this.#inputController?.error(reason);
    } catch { /* already closed */ }
    this.#wakePull?.();
    await this.#output?.cancel(reason).catch(() => {});
    await this.#writer.abort(reason).catch(() => {});
  }

  #assertUsable(): void {
    if (this.#failure !== undefined) throw this.#failure.error;
    if (this.#closed) {
      throw new PermanentError(
        "The Parquet encoder is already closed; create a new encoder per file",
        { code: "format.encoder_closed" },
      );
    }
  }

  /** Hands batches to the writer; resolves when it has taken them. */
  async #offer(batches: WasmRecordBatch[]): Promise<void> {
    const taken = new Promise<void>((resolve) => this.#slot = { batches, taken: resolve });
    this.#wakePull?.();
    this.#pump ??= this.#run().catch((error) => this.#fail(error));
    await Promise.race([taken, this.#failed]);
  }

  /** Starts the writer (it reads the first batch for the schema) and pipes its output. */
  async #run(): Promise<void> {
    let builder = new WriterPropertiesBuilder()
      .setCompression(this.#codec)
      .setCreatedBy("rivet")
      .setDictionaryEnabled(false)
      .setDictionaryPageSizeLimit(DICTIONARY_PAGE_BYTES)
      .setMaxRowGroupSize(this.#plan.maxRows);
    for (const column of this.#dictionary.columns) {
      builder = builder.setColumnDictionaryEnabled(column, true);
    }
    for (const column of this.#noStatistics) {
      builder = builder.setColumnStatisticsEnabled(column, EnabledStatistics.None);
    }
    if (this.#dictionary.writerV2) {
      // Version 2 would also switch the fallback encodings to DELTA_*; PLAIN keeps what every
      // reader decodes and what the other columns get under version 1.
      builder = builder.setWriterVersion(WasmWriterVersion.V2).setEncoding(WasmEncoding.PLAIN);
    }
    const props =
      (this.#plan.maxBytes === undefined
        ? builder
        : builder.setMaxRowGroupBytes(this.#plan.maxBytes)).build();
    let output: ReadableStream<Uint8Array>;
    try {
      output = await transformParquetStream(this.#input, props);
    } catch (cause) {
      throw new PermanentError(
        `The Parquet writer rejected the schema: ${String((cause as Error)?.message ?? cause)}; ` +
          `cast the offending column in the query or use a columns: override`,
        { code: "format.parquet_write_failed", cause },
      );
    }
    const reader = output.getReader();
    this.#output = reader;
    const rewrite = this.#footerTypes.size > 0;
    // The footer is written only after the writer learns the input ended, so any chunk read
    // before that holds no footer byte and goes straight on; later ones (the last row group, the
    // page indexes, the footer) are held until the stream ends: memory stays within one row group
    // plus the footer.
    const held: Uint8Array[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (rewrite && this.#inputEnded) held.push(value);
      else await this.#emit(value);
    }
    if (!rewrite) return;
    for (const chunk of rewriteParquetTail(held, this.#footerTypes)) await this.#emit(chunk);
  }

  /** Hands one chunk to the sink, counting its bytes. */
  async #emit(chunk: Uint8Array): Promise<void> {
    await this.#writer.ready;
    // Not awaited, so encoding overlaps the sink's I/O; a failure fails the encoder with the
    // sink's own error (the writer's `ready`/`close` only report "errored").
    this.#writer.write(chunk).catch((error) => this.#fail(error));
    this.#bytes += chunk.byteLength;
  }
}

/** The Parquet {@linkcode Format}. */
export class ParquetFormat implements Format {
  readonly kind = "parquet" as const;
  readonly extension = "parquet";
  readonly compressionLabel: string;
  readonly #spec: FormatSpec;

  /** @param spec The export's format block (compression already resolved from the profile). */
  constructor(spec: FormatSpec) {
    this.#spec = spec;
    this.compressionLabel = spec.compression;
  }

  /**
   * Creates an encoder for one file. parquet-wasm must be loaded (see {@linkcode loadParquetWasm};
   * {@linkcode createParquetFormat} does it).
   *
   * @param schema The file schema; its field metadata lands in the footer's `ARROW:schema`.
   * @param sink Where the bytes go; closed by `close()`, aborted by `abort()`.
   * @returns The encoder.
   * @throws {ConfigError} `format.parquet_unsupported_type` naming a column parquet-rs cannot write.
   */
  /** Reads the row count of a written file from its footer. */
  rowRecounter(): RowRecounter {
    return parquetRecounter();
  }

  createEncoder(schema: Schema, sink: WritableStream<Uint8Array>): BatchEncoder {
    assertWritable(schema);
    return new ParquetBatchEncoder(schema, sink, {
      plan: planRowGroups(schema, this.#spec.parquet),
      codec: CODECS[this.#spec.compression],
    });
  }
}

/**
 * Loads parquet-wasm (once per thread) and creates the Parquet format.
 *
 * @param spec The export's format block.
 * @param options `wasmModule`: a compiled parquet-wasm module to use instead of reading the file.
 * @returns The format.
 *
 * @example Write a schema-only file into memory
 * ```ts
 * import { createParquetFormat } from "./parquet.ts";
 * import { Field, Int64, Schema } from "../core/arrow.ts";
 * const format = await createParquetFormat({ kind: "parquet", compression: "zstd" });
 * const chunks: Uint8Array[] = [];
 * const sink = new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c) });
 * const encoder = format.createEncoder(new Schema([new Field("id", new Int64(), true)]), sink);
 * await encoder.close();
 * const tail = new TextDecoder().decode(chunks.at(-1)!.slice(-4));
 * if (tail !== "PAR1") throw new Error("not a Parquet file");
 * ```
 */
export async function createParquetFormat(
  spec: FormatSpec,
  options: { readonly wasmModule?: WebAssembly.Module } = {},
): Promise<ParquetFormat> {
  await loadParquetWasm(options.wasmModule);
  return new ParquetFormat(spec);
}

/** Levels parquet-wasm 0.8.0 applies; it has no setting for another level. */
const appliedLevels: Partial<Record<Compression, number>> = { zstd: 1, gzip: 6 };

/**
 * Why a requested compression level will not be applied, so the setting is never silently
 * ignored: parquet-wasm 0.8.0 always writes zstd level 1 and gzip level 6.
 *
 * @param spec The export's format block.
 * @returns The warning text, or undefined when the level is applied or none was asked for.
 *
 * @example
 * ```ts
 * import { parquetLevelNotApplied } from "./parquet.ts";
 * const text = parquetLevelNotApplied({ kind: "parquet", compression: "zstd", compressionLevel: 9 });
 * if (!text?.includes("level 1")) throw new Error(text);
 * ```
 */
export function parquetLevelNotApplied(spec: FormatSpec): string | undefined {
  const { kind, compression, compressionLevel } = spec;
  if (kind !== "parquet" || compressionLevel === undefined) return undefined;
  const applied = appliedLevels[compression];
  if (applied === undefined || applied === compressionLevel) return undefined;
  return `${compression} level ${compressionLevel} is not applied: the Parquet encoder ` +
    `(parquet-wasm 0.8.0) always writes ${compression} level ${applied}`;
}
