/**
 * Reads one statement into staged parts: batches stream from the source into the format's
 * encoder, whose bytes go (hashed on the way) into destination uploads that are not yet visible.
 * A part rotates when the encoder reports `max_file_size` bytes. Every mode uses it: a
 * single-query export reads one statement, a chunked export one per chunk, a keyset export one
 * per page. Committing is the caller's move, so each mode keeps its own commit order.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import type { RecordBatch } from "../core/arrow.ts";
import type { Destination, ObjectMeta, Upload } from "../core/destination.ts";
import {
  DataIntegrityError,
  InterruptedError,
  PermanentError,
  RivetError,
} from "../core/errors.ts";
import type { EventSink } from "../core/events.ts";
import type { BatchEncoder, Format, RowRecounter } from "../core/format.ts";
import type { ColumnInfo, ReadOptions, ReadRequest, Source } from "../core/source.ts";
import type { ExportSpec, TuningPlan } from "../core/spec.ts";
import { lastCursorOf } from "../plan/cursor.ts";
import { createXxh3 } from "../_util/hash.ts";
import { createStreamMd5 } from "../_util/md5_offload.ts";
import { crashPoint, tamperAt } from "../_util/test_hook.ts";
import { metaColumnsFor } from "./meta_columns.ts";
import { type StatementStats, statsCollectorFor } from "./quality.ts";

/** A part after its encoder finished, before or after its commit. */
export interface StagedPart {
  /** 0-based position among the statement's parts. */
  readonly index: number;
  readonly upload: Upload;
  readonly rows: number;
  readonly size: number;
  /** 16 lowercase hex digits. */
  readonly xxh3: string;
  /** Base64. */
  readonly md5: string;
  committed?: ObjectMeta;
}

/** One statement to read. */
export interface StatementRequest extends ReadRequest {
  /** The result column whose last non-NULL value is reported as `lastCursor`. */
  readonly cursorColumn?: string;
  /** Synthetic result columns read but not written (coalesced cursor, dense ordinal). */
  readonly stripColumns?: readonly string[];
}

/** What one statement produced. */
export interface StatementResult {
  /** Encoded parts, not yet committed (empty when the result had no row). */
  readonly staged: StagedPart[];
  readonly rows: number;
  /** Rendering of the cursor column's last non-NULL value, when asked for. */
  readonly lastCursor?: string;
  /** The written columns (synthetic ones removed), as the source described them. */
  readonly columns: readonly ColumnInfo[];
  /** Highest RSS sampled, bytes. */
  readonly peakRss: number;
  /** What quality gates and shape drift read (when the export has either). */
  readonly stats?: StatementStats;
}

/** Collaborators and settings of {@linkcode readStatement}. */
export interface StatementContext {
  readonly spec: ExportSpec;
  readonly tuning: TuningPlan;
  readonly source: Source;
  readonly format: Format;
  readonly destination: Destination;
  readonly emit: EventSink;
  readonly signal: AbortSignal;
  /** Staging key of part `index` (renamed at commit). */
  readonly stagingKey: (index: number) => string;
  /** Resident set size in bytes, sampled after each batch. */
  readonly rss?: () => number;
  /** Rows counted before this statement (for `batch_read` totals across chunks). */
  readonly rowsBefore?: number;
  /**
   * Called once the result's columns are known, before anything is written: the schema drift
   * check throws from here to stop the export with nothing written.
   */
  readonly onColumns?: (columns: readonly ColumnInfo[]) => Promise<void> | void;
  /**
   * `adaptive: true`: reads the source's write-pressure counter (PG `checkpoints_req`, MySQL
   * `Innodb_log_waits`) on a second connection; undefined when it cannot be read.
   */
  readonly pressure?: () => Promise<number | undefined>;
  /**
   * `run --validate`: each part's rows are counted again from its encoded bytes before it can
   * be committed; a part whose count differs from the rows read into it fails the statement.
   */
  readonly recount?: boolean;
}

/** Batches between two pressure samples of `adaptive: true`. */
export const ADAPTIVE_SAMPLE_EVERY = 10;

/**
 * The next row ceiling of `adaptive: true`: ×0.75 (not below 500) when the pressure counter rose
 * since the last sample, else ×1.25 (not above the configured batch size).
 *
 * @param current The current ceiling.
 * @param options The configured batch size and whether pressure rose.
 * @returns The new ceiling.
 *
 * @example
 * ```ts
 * import { adaptRowCap } from "./part_writer.ts";
 * if (adaptRowCap(10_000, { base: 10_000, rising: true }) !== 7_500) throw new Error();
 * if (adaptRowCap(600, { base: 10_000, rising: true }) !== 500) throw new Error();
 * if (adaptRowCap(9_000, { base: 10_000, rising: false }) !== 10_000) throw new Error();
 * ```
 */
export function adaptRowCap(current: number, options: { base: number; rising: boolean }): number {
  if (options.rising) return Math.max(Math.min(500, options.base), Math.floor(current * 0.75));
  return Math.min(options.base, Math.floor(current * 1.25));
}

/** An open part. */
interface OpenPart {
  readonly index: number;
  readonly upload: Upload;
  readonly encoder: BatchEncoder;
  readonly digest: () => Promise<{ size: number; xxh3: string; md5: string }>;
  /** Stops the part's hashing thread, if any (the part was abandoned). Idempotent. */
  readonly dispose: () => void;
  /** Rows handed to this part's encoder. */
  rowsIn: number;
  readonly recounter?: RowRecounter;
}

/** Bytes of one fetch when the tuning sets no memory target (profile `safe`, tuning blocks). */
export const DEFAULT_BATCH_MEMORY_MB = 32;

/**
 * Read options for the source, from the tuning plan and the export's `columns:` overrides.
 *
 * @param tuning The merged tuning.
 * @param spec The export.
 * @param signal Cancels the read.
 * @returns The options.
 */
export function readOptionsFor(
  tuning: TuningPlan,
  spec: Pick<ExportSpec, "columns"> & { readonly format?: ExportSpec["format"] },
  signal?: AbortSignal,
): ReadOptions {
  return {
    batchSize: tuning.batchSize,
    batchMemoryBytes: (tuning.batchSizeMemoryMb ?? DEFAULT_BATCH_MEMORY_MB) * 1024 * 1024,
    statementTimeoutS: tuning.statementTimeoutS,
    lockTimeoutS: tuning.lockTimeoutS,
    throttleMs: tuning.throttleMs,
    maxValueMb: tuning.maxValueMb,
    columnOverrides: spec.columns,
    ...(spec.format?.parquetTypes === "portable" ? { portableTypes: true } : {}),
    ...(signal ? { signal } : {}),
  };
}

/**
 * Bytes held by a batch's buffers (values, offsets, validity), children included: the measure
 * `max_batch_memory_mb` compares against.
 *
 * @param batch A record batch.
 * @returns Its size in bytes.
 */
export function batchBytes(batch: RecordBatch): number {
  return batch.data.byteLength;
}

/**
 * Wraps an upload's writable so every byte is hashed (xxh3, MD5), counted and, when asked,
 * re-counted as rows on its way.
 */
async function hashingSink(
  target: WritableStream<Uint8Array>,
  options: { readonly recounter: RowRecounter | undefined; readonly offloadMd5: boolean },
): Promise<{
  sink: WritableStream<Uint8Array>;
  digest: () => Promise<{ size: number; xxh3: string; md5: string }>;
  dispose: () => void;
}> {
  const xxh3 = await createXxh3();
  const { recounter, offloadMd5 } = options;
  // MD5 is the slowest step per output byte (about 0.5 GB/s): for CSV, which writes 5-10 times
  // the bytes of Parquet, it runs on its own thread past a few MB; for Parquet the thread would
  // cost more memory (a second isolate, ~45 MB) than the hash costs time.
  const md5 = await createStreamMd5(offloadMd5 ? {} : { offloadBytes: Infinity });
  let size = 0;
  const writer = target.getWriter();
  const pass = async (chunk: Uint8Array) => {
    xxh3.update(chunk);
    await md5.update(chunk);
    recounter?.observe(chunk);
    size += chunk.byteLength;
    await writer.ready;
    await writer.write(chunk);
  };
  const sink = new WritableStream<Uint8Array>({
    write: pass,
    async close() {
      // Test-only corruption of the staged bytes (see tamperAt), for the --validate tests.
      if (tamperAt("staged_part")) await pass(new TextEncoder().encode("tampered\n"));
      await writer.close();
    },
    async abort(reason) {
      md5.dispose();
      await writer.abort(reason);
    },
  });
  return {
    sink,
    digest: async () => ({ size, xxh3: xxh3.digest(), md5: await md5.digest() }),
    dispose: () => md5.dispose(),
  };
}

/** An upload with its encoder and hashing in place: what a part writes through. */
export interface EncodedUpload {
  readonly encoder: BatchEncoder;
  readonly digest: () => Promise<{ size: number; xxh3: string; md5: string }>;
  /** Stops the part's hashing thread, if any. Idempotent. */
  readonly dispose: () => void;
  /** Counts rows back from the bytes (`--validate`), when asked for and the format can. */
  readonly recounter?: RowRecounter;
}

/**
 * Puts a format's encoder in front of an upload, hashing every byte on its way; aborts the
 * upload when that fails.
 *
 * @param upload The part's upload.
 * @param options The format, the first batch's schema, and whether to re-count rows.
 * @returns The encoder, the digests and the recounter.
 */
export async function encodeInto(
  upload: Upload,
  options: { format: Format; schema: RecordBatch["schema"]; recount: boolean },
): Promise<EncodedUpload> {
  try {
    const recounter = options.recount ? options.format.rowRecounter?.() : undefined;
    const { sink, digest, dispose } = await hashingSink(upload.writable, {
      recounter,
      offloadMd5: options.format.kind === "csv",
    });
    const encoder = options.format.createEncoder(options.schema, sink);
    return { encoder, digest, dispose, ...(recounter ? { recounter } : {}) };
  } catch (error) {
    await upload.abort(error).catch(() => {});
    throw error;
  }
}

/**
 * Aborts the uploads of parts that were never committed. Idempotent, never throws.
 *
 * @param staged Parts of a statement.
 * @param reason Why.
 */
export async function abortUncommitted(staged: readonly StagedPart[], reason: unknown) {
  for (const part of staged) if (!part.committed) await part.upload.abort(reason).catch(() => {});
}

/**
 * Reads one statement to its end into staged (uncommitted) parts. On any failure every upload
 * it opened is aborted before the error propagates, so nothing of the statement stays visible.
 *
 * @param request SQL, parameters, cursor column and synthetic columns.
 * @param ctx Source, format, destination, settings.
 * @returns The staged parts, row count, last cursor and columns.
 */
export async function readStatement(
  request: StatementRequest,
  ctx: StatementContext,
): Promise<StatementResult> {
  const { spec, tuning } = ctx;
  const staged: StagedPart[] = [];
  let open: OpenPart | undefined;
  let rows = 0;
  let peakRss = ctx.rss?.() ?? 0;
  let lastCursor: string | undefined;
  let memoryWarned = false;
  const rowCap = { value: tuning.batchSize };
  let batches = 0;
  let lastPressure = ctx.pressure ? await ctx.pressure() : undefined;
  const maxBatchBytes = tuning.maxBatchMemoryMb === undefined
    ? undefined
    : tuning.maxBatchMemoryMb * 1024 * 1024;
  // One exported_at per statement: per run of a single query, per chunk of a chunked run.
  const meta = await metaColumnsFor(spec, new Date());
  const collector = await statsCollectorFor(spec);
  try {
    const stream = await ctx.source.read(
      { sql: request.sql, params: request.params },
      { ...readOptionsFor(tuning, spec, ctx.signal), rowCap },
    );
    const strip = new Set(request.stripColumns ?? []);
    const read = stream.columns.filter((c) => !strip.has(c.name));
    let columns = read;
    const keep = strip.size > 0
      ? stream.schema.fields.map((f) => f.name).filter((name) => !strip.has(name))
      : undefined;
    const reader = stream.batches.getReader();
    try {
      if (meta) columns = meta.columns(read);
      collector?.columns(columns);
      if (ctx.onColumns) await ctx.onColumns(columns);
      while (true) {
        if (ctx.signal.aborted) throw new InterruptedError("interrupted before it finished");
        const { value: batch, done } = await reader.read();
        if (done) break;
        if (batch.numRows === 0) continue;
        if (maxBatchBytes !== undefined) {
          const bytes = batchBytes(batch);
          if (bytes > maxBatchBytes) {
            const advice = batchAdvice(batch, bytes, maxBatchBytes);
            if (tuning.onBatchMemoryExceeded === "fail") {
              throw new PermanentError(
                `export '${spec.name}': a batch of ${batch.numRows} rows took ${mb(bytes)} MB, ` +
                  `above max_batch_memory_mb (${tuning.maxBatchMemoryMb})`,
                { code: "tuning.batch_memory_exceeded", hint: advice },
              );
            }
            if (tuning.onBatchMemoryExceeded === "auto_shrink") {
              // Halve the next batches until they fit (the one in hand is already in memory).
              const fit = Math.max(1, Math.floor(batch.numRows / 2));
              if (fit < rowCap.value) {
                rowCap.value = fit;
                ctx.emit({
                  type: "warning",
                  export: spec.name,
                  code: "tuning.batch_shrunk",
                  message:
                    `export '${spec.name}': a batch of ${batch.numRows} rows took ${
                      mb(bytes)
                    } MB, above max_batch_memory_mb (${tuning.maxBatchMemoryMb}); next batches ` +
                    `hold at most ${fit} rows`,
                });
              }
            } else if (!memoryWarned) {
              memoryWarned = true;
              ctx.emit({
                type: "warning",
                export: spec.name,
                code: "tuning.batch_memory_exceeded",
                message: `export '${spec.name}': a batch of ${batch.numRows} rows took ${
                  mb(bytes)
                } MB, above max_batch_memory_mb (${tuning.maxBatchMemoryMb}); ${advice}`,
              });
            }
          }
        }
        batches += 1;
        if (ctx.pressure && batches % ADAPTIVE_SAMPLE_EVERY === 0) {
          const pressure = await ctx.pressure();
          if (pressure !== undefined && lastPressure !== undefined) {
            rowCap.value = adaptRowCap(rowCap.value, {
              base: tuning.batchSize,
              rising: pressure > lastPressure,
            });
          }
          lastPressure = pressure ?? lastPressure;
        }
        if (request.cursorColumn !== undefined) {
          lastCursor = lastCursorOf(batch, request.cursorColumn) ?? lastCursor;
        }
        const selected = keep ? batch.select(keep) : batch;
        const written = meta ? meta.apply(selected) : selected;
        collector?.observe(written);
        if (!open) open = await openPart(staged.length, written);
        await open.encoder.write(written);
        open.rowsIn += batch.numRows;
        rows += batch.numRows;
        if (ctx.rss) peakRss = Math.max(peakRss, ctx.rss());
        ctx.emit({
          type: "batch_read",
          export: spec.name,
          rows: batch.numRows,
          totalRows: (ctx.rowsBefore ?? 0) + rows,
        });
        if (spec.maxFileSize !== undefined && open.encoder.bytesWritten >= spec.maxFileSize) {
          await closePart(open);
          open = undefined;
        }
      }
    } catch (error) {
      await reader.cancel(error).catch(() => {});
      throw error;
    } finally {
      reader.releaseLock();
    }
    await crashPoint("after_source_read");
    if (open) {
      await closePart(open);
      open = undefined;
    }
    return {
      staged,
      rows,
      ...(lastCursor === undefined ? {} : { lastCursor }),
      columns,
      peakRss,
      ...(collector ? { stats: collector.result() } : {}),
    };
  } catch (error) {
    if (open) {
      open.dispose();
      await open.encoder.abort(error).catch(() => {});
      await open.upload.abort(error).catch(() => {});
    }
    await abortUncommitted(staged, error);
    throw error;
  }

  async function openPart(index: number, first: RecordBatch): Promise<OpenPart> {
    // With max_file_size, part 0 keeps the unsplit name unless a second part follows: its
    // final name is known only at commit, so stores that cannot rename stage it hidden.
    const provisional = spec.maxFileSize !== undefined && index === 0;
    const upload = await ctx.destination.create(ctx.stagingKey(index), {
      signal: ctx.signal,
      ...(provisional ? { provisional } : {}),
    });
    const encoded = await encodeInto(upload, {
      format: ctx.format,
      schema: first.schema,
      recount: ctx.recount === true,
    });
    return { index, upload, rowsIn: 0, ...encoded };
  }

  async function closePart(part: OpenPart): Promise<void> {
    await part.encoder.close();
    if (ctx.recount) recheckPart(part, spec.name);
    const { size, xxh3, md5 } = await part.digest();
    staged.push({
      index: part.index,
      upload: part.upload,
      rows: part.encoder.rowsWritten,
      size,
      xxh3,
      md5,
    });
  }
}

/**
 * `run --validate`: the rows the part's bytes hold (or, for a format without a recounter, the
 * encoder's tally) must equal the rows read into it.
 */
function recheckPart(part: OpenPart, exportName: string): void {
  let counted: number;
  try {
    counted = part.recounter ? part.recounter.rows() : part.encoder.rowsWritten;
  } catch (error) {
    if (!(error instanceof RivetError)) throw error;
    throw new DataIntegrityError(`export '${exportName}': ${error.message}`, {
      code: error.code,
      ...(error.hint === undefined ? {} : { hint: error.hint }),
    });
  }
  if (counted === part.rowsIn && part.encoder.rowsWritten === part.rowsIn) return;
  throw new DataIntegrityError(
    `export '${exportName}': staged part ${part.index} holds ${counted} rows by its ${
      part.recounter ? "bytes" : "encoder's count"
    }, but ${part.rowsIn} rows were read into it; it was not committed`,
    {
      code: "validate.part_row_mismatch",
      hint: "run the export again; if it happens again, report a rivet bug with the export's " +
        "column types",
    },
  );
}

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

function batchAdvice(batch: RecordBatch, bytes: number, limit: number): string {
  const perRow = Math.max(1, bytes / batch.numRows);
  const rows = Math.max(1, Math.floor(limit / perRow));
  return `set tuning.batch_size to about ${rows} (or batch_size_memory_mb) to stay under it`;
}
