/**
 * Runs a `mode: cdc` export: the table's change log, read by the engine's {@linkcode CdcReader},
 * becomes parts `cdc-<seq>.<ext>` with `__op` and `__pos` before the table's columns.
 *
 * The order per part is the whole guarantee: the part is committed at the destination, then
 * the checkpoint (the position after its last transaction, and the next part's number) is
 * saved, then the server is told it may discard what the part holds. A part rolls only where a
 * transaction ends, once it holds `cdc.rollover` changes or `cdc.rollover_memory_mb` of Arrow
 * data, so one transaction's changes are never split between two runs' files. A crash before
 * the checkpoint leaves a committed part no checkpoint covers: the next run starts from the
 * older checkpoint, reads the same changes again and writes them under the same part name,
 * replacing it. A crash after the checkpoint but before the acknowledgement makes the server
 * send transactions again that the reader skips (it starts after the checkpoint).
 *
 * With `until_current: true` the run drains what was committed before it started and ends;
 * otherwise it streams until it is interrupted (SIGINT/SIGTERM), finishes the transaction in
 * hand, commits the open part and ends cleanly. A clean end writes the manifest of this run's
 * parts and `_SUCCESS` (also for 0 changes).
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import { type Data, Field, makeData, RecordBatch, Schema, Struct, Utf8 } from "../core/arrow.ts";
import {
  CDC_DEFAULTS,
  CDC_OPS,
  type CdcChunk,
  type CdcOpenOptions,
  type CdcPosition,
  type CdcReader,
  cdcReaderNames,
  type CdcTable,
  cdcTableRef,
} from "../core/cdc.ts";
import type { Destination, Upload } from "../core/destination.ts";
import { DataIntegrityError, InterruptedError } from "../core/errors.ts";
import type { EventSink, Outcome } from "../core/events.ts";
import type { BatchEncoder, Format, RowRecounter } from "../core/format.ts";
import type { Source } from "../core/source.ts";
import { checkAfterRun } from "./run_checks.ts";
import type { ExportJob } from "../core/job.ts";
import type { StateStore } from "../core/state.ts";
import { crashPoint } from "../_util/test_hook.ts";
import { resolveDestination } from "../plan/placeholders.ts";
import { destinationWarnings } from "../core/events.ts";
import { type CdcCheckpoint, checkpointStore } from "./cdc_checkpoint.ts";
import { encodeInto } from "./part_writer.ts";
import { runId as makeRunId } from "./naming.ts";
import { exportErrorInfo, recordPart, type RunPart, writeRunManifest } from "./run_export.ts";
import { failedOutcome } from "./run_record.ts";
import { sweepLeftovers } from "./leftovers.ts";

/** How a cdc job opens its collaborators (the engine's openers). */
export interface CdcJobOpeners {
  cdc(job: ExportJob, options: CdcOpenOptions): Promise<CdcReader>;
  format(spec: ExportJob["spec"]["format"]): Promise<Format>;
  destination(
    spec: ExportJob["spec"]["destination"],
    options: { signal: AbortSignal; warn: (message: string, code?: string) => void },
  ): Promise<Destination>;
}

/** What a cdc job runs with. */
export interface CdcJobOptions {
  readonly state: StateStore;
  readonly emit: EventSink;
  /** The run's signal: aborting it asks the stream to stop at the next transaction end. */
  readonly signal: AbortSignal;
  readonly open: CdcJobOpeners;
  readonly rss: () => number;
  /** `--validate`: re-count each part before its commit, read the output back after the run. */
  readonly validate?: boolean;
  /** `--reconcile`: reported as skipped (changes are not the table's rows). */
  readonly reconcile?: boolean;
  /** A source connection for the post-run checks. */
  readonly connect?: () => Promise<Source>;
}

/**
 * How long a stopping run may take to finish its transaction and commit its part before it
 * gives up (the part is then discarded, and its changes are read again by the next run).
 */
const STOP_GRACE_MS = 60_000;

/** How often a run whose table is quiet saves the progress of other tables' transactions. */
const PROGRESS_EVERY_MS = 10_000;

const MB = 1024 * 1024;

/** A part being written. */
interface OpenPart {
  readonly seq: number;
  readonly key: string;
  readonly upload: Upload;
  readonly encoder: BatchEncoder;
  readonly digest: () => Promise<{ size: number; xxh3: string; md5: string }>;
  readonly dispose: () => void;
  rows: number;
  arrowBytes: number;
  /** When its first row arrived (`Date.now()`). */
  readonly openedAt: number;
  /** `--validate`: counts the rows the part's bytes hold. */
  readonly recounter?: RowRecounter;
}

/** The file name of part `seq`: `cdc-000042.parquet`. */
export function cdcPartName(seq: number, extension: string): string {
  return `cdc-${String(seq).padStart(6, "0")}.${extension}`;
}

/** Arrow UTF-8 data of `values` (the `__op` and `__pos` columns). */
function utf8Data(values: readonly string[]): Data {
  const encoder = new TextEncoder();
  const encoded = values.map((v) => encoder.encode(v));
  const offsets = new Int32Array(values.length + 1);
  let total = 0;
  for (let i = 0; i < encoded.length; i++) {
    total += encoded[i]!.byteLength;
    offsets[i + 1] = total;
  }
  const bytes = new Uint8Array(total);
  for (let i = 0; i < encoded.length; i++) bytes.set(encoded[i]!, offsets[i]!);
  return makeData({
    type: new Utf8(),
    length: values.length,
    nullCount: 0,
    valueOffsets: offsets,
    data: bytes,
  });
}

const OP_NAMES = CDC_OPS.map((op) => op);

/** The written schema of a table: `__op`, `__pos`, then its columns. */
export function cdcSchema(table: CdcTable): Schema {
  const meta = (native: string) => new Map([["rivet.native_type", native]]);
  return new Schema(
    [
      new Field("__op", new Utf8(), false, meta("cdc operation")),
      new Field("__pos", new Utf8(), false, meta("cdc position (JSON)")),
      ...table.schema.fields,
    ],
    table.schema.metadata,
  );
}

/** A chunk as written: its rows with `__op` and `__pos` in front. */
export function cdcBatch(schema: Schema, chunk: CdcChunk): RecordBatch {
  const n = chunk.batch.numRows;
  const ops = new Array<string>(n);
  for (let i = 0; i < n; i++) ops[i] = OP_NAMES[chunk.ops[i]!] ?? "insert";
  const children = [utf8Data(ops), utf8Data(chunk.positions), ...chunk.batch.data.children];
  const data = makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children });
  return new RecordBatch(schema, data);
}

/**
 * Runs one cdc export to its outcome. Never throws for an export failure.
 *
 * @param job The resolved export (`mode: cdc`).
 * @param options State, events, the run's signal, openers.
 * @returns The outcome.
 */
export async function runCdcJob(job: ExportJob, options: CdcJobOptions): Promise<Outcome> {
  const { spec, tuning } = job;
  const startedAt = new Date();
  const runId = makeRunId(spec.name, startedAt);
  // The run's signal means "stop"; I/O keeps its own signal so the last part can still be
  // committed, and is cut only when stopping takes longer than the grace period.
  const io = new AbortController();
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const onStop = () => {
    graceTimer = setTimeout(
      () => io.abort(new InterruptedError("stopping took too long")),
      STOP_GRACE_MS,
    );
  };
  options.signal.addEventListener("abort", onStop, { once: true });
  let peakRss = options.rss();
  const committed: RunPart[] = [];
  let rows = 0;
  let bytes = 0;
  let format: Format | undefined;
  let destination: Destination | undefined;
  let columns: { name: string; type: string }[] = [];
  try {
    options.emit({ type: "export_started", export: spec.name, runId, mode: "cdc" });
    const store = checkpointStore(job, options.state);
    const checkpoint = await store.load(io.signal);
    format = await options.open.format(spec.format);
    destination = await options.open.destination(
      resolveDestination(spec.destination, { exportName: spec.name, at: startedAt }),
      { signal: io.signal, warn: destinationWarnings(options.emit, spec.name) },
    );
    await sweepLeftovers(destination, {
      exportName: spec.name,
      state: options.state,
      emit: options.emit,
      signal: io.signal,
    });
    // A killed run's half-written part: the folder is this export's alone (a plan check).
    if (destination.listStaging && destination.removeStaging) {
      const stale: string[] = [];
      for await (const s of destination.listStaging("cdc-", { signal: io.signal })) {
        stale.push(s.key);
      }
      for (const key of stale) await destination.removeStaging(key, { signal: io.signal });
    }
    const cdc = spec.cdc ?? {};
    const ref = cdcTableRef(spec);
    await using reader = await options.open.cdc(job, {
      tables: [ref],
      ...(checkpoint ? { start: checkpoint.position } : {}),
      untilCurrent: cdc.untilCurrent === true,
      batchRows: Math.max(1, Math.min(tuning.batchSize, cdc.rollover ?? CDC_DEFAULTS.rollover)),
      ...cdcReaderNames(cdc),
      columnOverrides: spec.columns,
      signal: io.signal,
      onWarning: (w) =>
        options.emit({ type: "warning", export: spec.name, code: w.code, message: w.message }),
    });
    const table = reader.tables[0]!;
    const schema = cdcSchema(table);
    columns = schema.fields.map((f) => ({ name: f.name, type: String(f.type) }));
    const stream = new CdcStream(reader, {
      job,
      checkpoint,
      store,
      schema,
      format,
      destination,
      emit: options.emit,
      recount: options.validate === true || options.reconcile === true,
      stop: options.signal,
      io: io.signal,
      rss: () => {
        peakRss = Math.max(peakRss, options.rss());
        return peakRss;
      },
      onCommitted: (part) => {
        committed.push(part);
        rows += part.rows;
        bytes += part.sizeBytes;
      },
      runId,
      state: options.state,
    });
    await stream.run();
    const finishedAt = new Date();
    await writeRunManifest(
      { spec, runId, sourceInfo: { engine: job.source.kind, ...ref } },
      { destination, format },
      { status: "success", startedAt, finishedAt, columns, parts: committed },
    );
    const outcome: Outcome = {
      export: spec.name,
      runId,
      status: "success",
      mode: "cdc",
      rows,
      files: committed.length,
      bytes,
      durationMs: finishedAt.getTime() - startedAt.getTime(),
      startedAt: startedAt.toISOString(),
      finishedAt: finishedAt.toISOString(),
      output: destination.uri,
      compression: format.compressionLabel,
      format: format.kind,
      peakRssMb: Math.round(peakRss / MB),
      tuningProfile: tuning.profileLabel,
      batchSize: tuning.batchSize,
    };
    const reconcile = options.reconcile === true;
    return await checkAfterRun(outcome, {
      job,
      validate: options.validate === true || reconcile,
      reconcile,
      destination,
      connect: options.connect ?? (() => Promise.reject(new Error("no source connection"))),
      state: options.state,
      emit: options.emit,
      signal: io.signal,
    });
  } catch (error) {
    if (destination && format && committed.length > 0) {
      // The committed parts are checkpointed and stay: list them in a failed manifest.
      await writeRunManifest(
        { spec, runId, sourceInfo: { engine: job.source.kind } },
        { destination, format },
        { status: "failed", startedAt, finishedAt: new Date(), columns, parts: committed },
      ).catch(() => {});
    }
    const failed = failedOutcome(spec, {
      tuning,
      startedAt,
      runId,
      error: io.signal.aborted ? io.signal.reason : error,
      peakRssMb: Math.round(peakRss / MB),
    });
    return {
      ...failed,
      rows,
      files: committed.length,
      bytes,
      ...(destination ? { output: destination.uri } : {}),
      error: exportErrorInfo(spec.name, io.signal.aborted ? io.signal.reason : error),
    };
  } finally {
    options.signal.removeEventListener("abort", onStop);
    if (graceTimer !== undefined) clearTimeout(graceTimer);
    if (destination) await Promise.resolve(destination[Symbol.asyncDispose]()).catch(() => {});
  }
}

/** Collaborators of one stream. */
interface StreamContext {
  readonly job: ExportJob;
  readonly checkpoint: CdcCheckpoint | undefined;
  readonly store: ReturnType<typeof checkpointStore>;
  readonly schema: Schema;
  readonly format: Format;
  readonly destination: Destination;
  readonly emit: EventSink;
  /** `--validate`: each part's rows are counted back from its bytes before its commit. */
  readonly recount: boolean;
  readonly stop: AbortSignal;
  readonly io: AbortSignal;
  readonly rss: () => number;
  readonly onCommitted: (part: RunPart) => void;
  readonly runId: string;
  readonly state: StateStore;
}

const STOPPED = Symbol("stopped");
const AGED = Symbol("aged");

/** The loop of one run: chunks into parts, parts into checkpoints. */
class CdcStream {
  readonly #reader: CdcReader;
  readonly #ctx: StreamContext;
  #seq: number;
  #part: OpenPart | undefined;
  /** The last transaction end read (not yet checkpointed unless equal to #saved). */
  #lastCommit: CdcPosition | undefined;
  #saved: CdcPosition | undefined;
  #savedAt = Date.now();
  #changes = 0;
  /** A pull a wait left unsettled (the stream was idle when it stopped or a part aged). */
  #pending: Promise<IteratorResult<CdcChunk>> | undefined;
  readonly #rollover: number;
  readonly #rolloverBytes: number;
  readonly #maxEvents: number;
  /**
   * Longest a part stays open (`cdc.rollover_seconds`): a slow stream still commits (and
   * checkpoints, and lets PostgreSQL free its WAL) at the first transaction end after it, or
   * while waiting after one.
   */
  readonly #maxAgeMs: number;

  constructor(reader: CdcReader, ctx: StreamContext) {
    this.#reader = reader;
    this.#ctx = ctx;
    this.#seq = ctx.checkpoint?.nextPart ?? 0;
    this.#saved = ctx.checkpoint?.position;
    const cdc = ctx.job.spec.cdc ?? {};
    this.#rollover = cdc.rollover ?? CDC_DEFAULTS.rollover;
    this.#rolloverBytes = cdc.rolloverMemoryMb === undefined ? Infinity : cdc.rolloverMemoryMb * MB;
    this.#maxEvents = cdc.maxEvents ?? Infinity;
    this.#maxAgeMs = (cdc.rolloverSeconds ?? CDC_DEFAULTS.rolloverSeconds) * 1000;
  }

  async run(): Promise<void> {
    const iterator = this.#reader.changes();
    let atBoundary = true;
    try {
      while (true) {
        // Between transactions a stop ends the stream at once, and a part open for
        // `cdc.rollover_seconds` is committed while the stream waits; inside a transaction, the rest of
        // it is read first (the server only sends committed transactions).
        const next = atBoundary ? await this.#nextOrStop(iterator) : await this.#take(iterator);
        if (next === STOPPED) break;
        if (next === AGED) {
          await this.#finishPart();
          continue;
        }
        if (next.done) break;
        const chunk = next.value;
        if (chunk.batch.numRows > 0) await this.#write(chunk);
        if (chunk.commit === undefined) {
          atBoundary = false;
          continue;
        }
        atBoundary = true;
        this.#lastCommit = chunk.commit;
        const part = this.#part;
        if (
          part &&
          (part.rows >= this.#rollover || part.arrowBytes >= this.#rolloverBytes ||
            Date.now() - part.openedAt >= this.#maxAgeMs)
        ) {
          await this.#finishPart();
        } else if (!part && Date.now() - this.#savedAt >= PROGRESS_EVERY_MS) {
          await this.#checkpoint();
        }
        if (this.#changes >= this.#maxEvents || this.#ctx.stop.aborted) break;
      }
      if (!atBoundary) {
        // The stream ended inside a transaction (a reader never does this on a clean end):
        // the open part holds half of it, so it is dropped and read again next time.
        await this.#abortPart(new InterruptedError("the change stream ended inside a transaction"));
      } else if (this.#part) {
        await this.#finishPart();
      } else if (this.#lastCommit !== undefined && this.#lastCommit !== this.#saved) {
        await this.#checkpoint();
      } else if (this.#saved === undefined && this.#reader.startedAt !== undefined) {
        // A first run that saw no change still fixes where capture starts: the next run reads
        // from here, not from wherever the log's end is by then.
        await this.#checkpoint(this.#reader.startedAt);
      }
    } catch (error) {
      await this.#abortPart(error);
      throw error;
    } finally {
      // A next() left pending by a stop settles only when the reader is disposed (after this
      // loop): return() would queue behind it, so it is skipped then.
      if (this.#pending === undefined) await iterator.return?.().catch(() => {});
    }
  }

  /** The next chunk: the one a wait left pending, else a new pull. */
  #take(iterator: AsyncIterator<CdcChunk>): Promise<IteratorResult<CdcChunk>> {
    const next = this.#pending ?? iterator.next();
    this.#pending = undefined;
    return next;
  }

  /**
   * At a transaction end: the next chunk, or STOPPED once the run is stopped, or AGED once the
   * open part reaches `cdc.rollover_seconds` while the stream waits (the pull stays pending for the
   * next call).
   */
  async #nextOrStop(
    iterator: AsyncIterator<CdcChunk>,
  ): Promise<IteratorResult<CdcChunk> | typeof STOPPED | typeof AGED> {
    const stop = this.#ctx.stop;
    if (stop.aborted) return STOPPED;
    const next = this.#pending ?? iterator.next();
    this.#pending = next;
    // Once the stop wins, nobody may await `next` again: keep its rejection from going unhandled.
    next.catch(() => {});
    let onAbort: (() => void) | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waits: Promise<IteratorResult<CdcChunk> | typeof STOPPED | typeof AGED>[] = [
      next,
      new Promise<typeof STOPPED>((resolve) => {
        onAbort = () => resolve(STOPPED);
        stop.addEventListener("abort", onAbort, { once: true });
      }),
    ];
    const part = this.#part;
    if (part) {
      const left = Math.max(0, part.openedAt + this.#maxAgeMs - Date.now());
      waits.push(
        new Promise<typeof AGED>((resolve) => timer = setTimeout(() => resolve(AGED), left)),
      );
    }
    try {
      const result = await Promise.race(waits);
      if (result !== STOPPED && result !== AGED) this.#pending = undefined;
      return result;
    } finally {
      stop.removeEventListener("abort", onAbort!);
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  async #write(chunk: CdcChunk): Promise<void> {
    const { ctx } = { ctx: this.#ctx };
    const batch = cdcBatch(ctx.schema, chunk);
    if (!this.#part) this.#part = await this.#openPart(batch);
    await this.#part.encoder.write(batch);
    this.#part.rows += batch.numRows;
    this.#part.arrowBytes += batch.data.byteLength;
    this.#changes += batch.numRows;
    ctx.rss();
    ctx.emit({
      type: "batch_read",
      export: ctx.job.spec.name,
      rows: batch.numRows,
      totalRows: this.#changes,
    });
  }

  async #openPart(first: RecordBatch): Promise<OpenPart> {
    const ctx = this.#ctx;
    const key = cdcPartName(this.#seq, ctx.format.extension);
    // overwrite: a part committed by a run that crashed before its checkpoint carries this
    // number and holds (a prefix of) the same changes; this one replaces it.
    const upload = await ctx.destination.create(key, { signal: ctx.io, overwrite: true });
    const encoded = await encodeInto(upload, {
      format: ctx.format,
      schema: first.schema,
      recount: ctx.recount,
    });
    return {
      seq: this.#seq,
      key,
      upload,
      rows: 0,
      arrowBytes: 0,
      openedAt: Date.now(),
      ...encoded,
    };
  }

  async #finishPart(): Promise<void> {
    const part = this.#part!;
    const ctx = this.#ctx;
    const position = this.#lastCommit!;
    await part.encoder.close();
    const { size, xxh3, md5 } = await part.digest();
    this.#part = undefined;
    if (part.recounter && part.recounter.rows() !== part.rows) {
      await part.upload.abort().catch(() => {});
      throw new DataIntegrityError(
        `export '${ctx.job.spec.name}': part ${part.key} holds ${part.recounter.rows()} rows ` +
          `by its bytes, but ${part.rows} changes were written into it; it was not committed`,
        {
          code: "validate.part_row_mismatch",
          hint: "run the export again (it starts from the last checkpoint); if it happens " +
            "again, report a rivet bug with the table's column types",
        },
      );
    }
    await part.upload.commit(part.key);
    ctx.emit({
      type: "part_committed",
      export: ctx.job.spec.name,
      key: part.key,
      rows: part.rows,
      bytes: size,
    });
    await crashPoint("cdc_after_part_commit");
    await recordPart(
      { spec: ctx.job.spec, runId: ctx.runId },
      { state: ctx.state, format: ctx.format, emit: ctx.emit },
      { part: { rows: part.rows, size, xxh3, md5, index: part.seq }, key: part.key },
    );
    this.#seq = part.seq + 1;
    ctx.onCommitted({
      path: part.key,
      rows: part.rows,
      sizeBytes: size,
      contentFingerprint: `xxh3:${xxh3}`,
      contentMd5: md5,
    });
    await this.#checkpoint(position);
  }

  /** Saves the last transaction end as the checkpoint, then acknowledges it. */
  async #checkpoint(position: CdcPosition = this.#lastCommit!): Promise<void> {
    const ctx = this.#ctx;
    await ctx.store.save({
      engine: ctx.job.source.kind,
      position,
      nextPart: this.#seq,
      savedAt: new Date().toISOString(),
    });
    this.#saved = position;
    this.#savedAt = Date.now();
    await crashPoint("cdc_after_flush_before_ack");
    await this.#reader.acknowledge(position);
    await crashPoint("cdc_after_ack");
  }

  async #abortPart(reason: unknown): Promise<void> {
    const part = this.#part;
    if (!part) return;
    this.#part = undefined;
    part.dispose();
    await part.encoder.abort(reason).catch(() => {});
    await part.upload.abort(reason).catch(() => {});
  }
}
