/**
 * Runs one export (or, later, one chunk): source → Arrow batches → format → destination, with the
 * fixed write order of ADR-0001: encoder finished, upload committed, part recorded, then the
 * manifest and `_SUCCESS`. Dependencies are injected so that tests can pass real or in-memory
 * parts.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import type { RecordBatch } from "../core/arrow.ts";
import type { Destination, ObjectMeta, Upload } from "../core/destination.ts";
import { InterruptedError, SchemaDriftError, toErrorInfo } from "../core/errors.ts";
import type { EventSink, ExportStatus, Outcome } from "../core/events.ts";
import type { BatchEncoder, Format } from "../core/format.ts";
import type { ColumnInfo, ReadOptions, Source } from "../core/source.ts";
import type { ExportSpec, TuningPlan } from "../core/spec.ts";
import type { StateStore } from "../core/state.ts";
import { lastCursorOf } from "../plan/cursor.ts";
import { describeDrift, schemaDrift } from "./schema_drift.ts";
import { createMd5, createXxh3 } from "../_util/hash.ts";
import { crashPoint } from "../_util/test_hook.ts";
import { type ManifestPart, schemaFingerprint, writeManifestAndSuccess } from "./manifest.ts";
import { partName } from "./naming.ts";

/** Everything decided before the export runs. */
export interface ExportPlan {
  readonly spec: ExportSpec;
  readonly runId: string;
  /** The SQL to run. */
  readonly sql: string;
  /** Values bound to the SQL's parameters (MySQL cursor values). */
  readonly params?: readonly (string | number | bigint | boolean | null)[];
  /**
   * Incremental mode: the result column whose value in the last row becomes the new cursor,
   * stored (through `deps.state`) only after every part is committed.
   */
  readonly cursorColumn?: string;
  /** Synthetic result columns read by the pipeline but not written (e.g. the coalesced cursor). */
  readonly stripColumns?: readonly string[];
  readonly tuning: TuningPlan;
  /** Start of the run: file names and run id derive from it. */
  readonly startedAt: Date;
  /** For the manifest's `source` block. */
  readonly sourceInfo: {
    readonly engine: string;
    readonly schema?: string;
    readonly table?: string;
  };
}

/** Collaborators of {@linkcode runExport}. */
export interface PipelineDeps {
  readonly source: Source;
  readonly format: Format;
  readonly destination: Destination;
  readonly emit: EventSink;
  readonly signal: AbortSignal;
  /** Clock, injectable for tests. */
  readonly now?: () => Date;
  /** Current resident set size in bytes; sampled after each batch. */
  readonly rss?: () => number;
  /** Where parts and the cursor are recorded; absent for runs without state (tests, stdout). */
  readonly state?: StateStore;
}

/** A part after its encoder finished, before or after its commit. */
interface StagedPart {
  readonly index: number;
  readonly upload: Upload;
  readonly rows: number;
  readonly size: number;
  readonly xxh3: string;
  readonly md5: string;
  committed?: ObjectMeta;
}

/** A part being written. */
interface OpenPart {
  readonly index: number;
  readonly upload: Upload;
  readonly encoder: BatchEncoder;
  readonly digest: () => { size: number; xxh3: string; md5: string };
}

/** Bytes of one fetch: the tuning's memory target, or a default sized for bounded memory. */
const defaultBatchMemoryMb = 32;

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
  spec: ExportSpec,
  signal?: AbortSignal,
): ReadOptions {
  return {
    batchSize: tuning.batchSize,
    batchMemoryBytes: (tuning.batchSizeMemoryMb ?? defaultBatchMemoryMb) * 1024 * 1024,
    statementTimeoutS: tuning.statementTimeoutS,
    lockTimeoutS: tuning.lockTimeoutS,
    throttleMs: tuning.throttleMs,
    maxValueMb: tuning.maxValueMb,
    columnOverrides: spec.columns,
    ...(signal ? { signal } : {}),
  };
}

async function hashingSink(
  target: WritableStream<Uint8Array>,
): Promise<{ sink: WritableStream<Uint8Array>; digest: OpenPart["digest"] }> {
  const xxh3 = await createXxh3();
  const md5 = await createMd5();
  let size = 0;
  const writer = target.getWriter();
  const sink = new WritableStream<Uint8Array>({
    async write(chunk) {
      xxh3.update(chunk);
      md5.update(chunk);
      size += chunk.byteLength;
      await writer.ready;
      await writer.write(chunk);
    },
    async close() {
      await writer.close();
    },
    async abort(reason) {
      await writer.abort(reason);
    },
  });
  return { sink, digest: () => ({ size, xxh3: xxh3.digest(), md5: md5.digest() }) };
}

function columnTypes(columns: readonly ColumnInfo[]): { name: string; type: string }[] {
  return columns.map((c) => ({
    name: c.name,
    type: c.arrowType ? String(c.arrowType) : "unsupported",
  }));
}

/**
 * Runs one export to completion and describes what it did. Never throws for an export failure:
 * the failure is in `outcome.error`, so a multi-export run goes on with the next export.
 *
 * @param plan The resolved export.
 * @param deps Source, format, destination, event sink and abort signal.
 * @returns The outcome.
 */
export async function runExport(plan: ExportPlan, deps: PipelineDeps): Promise<Outcome> {
  const now = deps.now ?? (() => new Date());
  const { spec } = plan;
  const started = now();
  const ext = deps.format.extension;
  const staged: StagedPart[] = [];
  let open: OpenPart | undefined;
  let rows = 0;
  let peakRss = deps.rss?.() ?? 0;
  let lastCursor: string | undefined;
  deps.emit({ type: "export_started", export: spec.name, runId: plan.runId, mode: spec.mode });

  const finish = (status: ExportStatus, error?: unknown): Outcome => {
    const finished = now();
    const committed = staged.filter((p) => p.committed);
    return {
      export: spec.name,
      runId: plan.runId,
      status,
      mode: spec.mode,
      rows,
      files: committed.length,
      bytes: committed.reduce((sum, p) => sum + p.size, 0),
      durationMs: finished.getTime() - started.getTime(),
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      output: deps.destination.uri,
      compression: deps.format.compressionLabel,
      format: deps.format.kind,
      peakRssMb: Math.round(peakRss / 1024 / 1024),
      tuningProfile: plan.tuning.profileLabel,
      batchSize: plan.tuning.batchSize,
      ...(error === undefined ? {} : { error: toErrorInfo(error) }),
    };
  };

  const stagingKey = (index: number) =>
    partName(spec.name, { at: plan.startedAt, extension: ext, index, split: true });

  try {
    const stream = await deps.source.read(
      { sql: plan.sql, params: plan.params ?? [] },
      readOptionsFor(plan.tuning, spec, deps.signal),
    );
    const strip = new Set(plan.stripColumns ?? []);
    const columns = stream.columns.filter((c) => !strip.has(c.name));
    const keep = strip.size > 0
      ? stream.schema.fields.map((f) => f.name).filter((name) => !strip.has(name))
      : undefined;
    // Drift is judged from the result's metadata, before the first write.
    const current = columnTypes(columns);
    const baseline = deps.state ? await deps.state.readSchema(spec.name) : undefined;
    const drift = baseline ? schemaDrift(baseline.columns, current) : undefined;
    if (drift && spec.onSchemaDrift === "fail") {
      await stream.batches.cancel().catch(() => {});
      throw new SchemaDriftError(
        `export '${spec.name}': the result's columns changed since the last run: ${
          describeDrift(drift)
        }`,
        {
          code: "schema.drift",
          hint: "review the change, then set on_schema_drift: warn (or continue) for one run to " +
            "accept it as the new baseline",
        },
      );
    }
    if (drift && spec.onSchemaDrift === "warn") {
      deps.emit({
        type: "warning",
        export: spec.name,
        code: "schema.drift",
        message: `export '${spec.name}': schema changed since the last run: ${
          describeDrift(drift)
        }`,
      });
    }
    const reader = stream.batches.getReader();
    try {
      while (true) {
        if (deps.signal.aborted) {
          throw new InterruptedError("interrupted before it finished");
        }
        const { value: batch, done } = await reader.read();
        if (done) break;
        if (batch.numRows === 0) continue;
        if (plan.cursorColumn !== undefined) {
          lastCursor = lastCursorOf(batch, plan.cursorColumn) ?? lastCursor;
        }
        const written = keep ? batch.select(keep) : batch;
        if (!open) open = await openPart(staged.length, written);
        await open.encoder.write(written);
        rows += batch.numRows;
        if (deps.rss) peakRss = Math.max(peakRss, deps.rss());
        deps.emit({ type: "batch_read", export: spec.name, rows: batch.numRows, totalRows: rows });
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

    // Commit every part only after the whole read succeeded: a failed read leaves nothing.
    const split = staged.length > 1;
    for (const part of staged) {
      const key = partName(spec.name, {
        at: plan.startedAt,
        extension: ext,
        index: part.index,
        split,
      });
      part.committed = await part.upload.commit(key);
      deps.emit({
        type: "part_committed",
        export: spec.name,
        key,
        rows: part.rows,
        bytes: part.size,
      });
      await crashPoint("after_file_write");
      await recordPart(part, key);
      await crashPoint("after_manifest_update");
    }

    // The cursor moves only once every part is committed (ADR-0001); a failure here is fatal.
    if (plan.cursorColumn !== undefined && rows > 0) {
      if (lastCursor === undefined) {
        deps.emit({
          type: "warning",
          export: spec.name,
          code: "run.no_cursor",
          message: `export '${spec.name}': cursor column '${plan.cursorColumn}' gave no storable ` +
            "value (NULL, or a type without a cursor rendering); the next run exports the same rows again",
        });
      } else if (deps.state) {
        await deps.state.advanceCursor({
          exportName: spec.name,
          lastCursorValue: lastCursor,
          lastRunAt: now().toISOString(),
        });
        await crashPoint("after_cursor_commit");
      }
    }

    if (deps.state && (baseline === undefined || drift)) {
      try {
        await deps.state.saveSchema({
          exportName: spec.name,
          columns: current,
          updatedAt: now().toISOString(),
        });
      } catch (error) {
        deps.emit({
          type: "warning",
          export: spec.name,
          code: "state.schema_failed",
          message: `export '${spec.name}': could not store the schema baseline: ${
            error instanceof Error ? error.message : String(error)
          }`,
        });
      }
    }

    const empty = rows === 0;
    const status: ExportStatus = empty && spec.skipEmpty ? "skipped" : "success";
    if (deps.destination.capabilities.persistent) {
      await writeManifestAndSuccess(deps.destination, {
        runId: plan.runId,
        exportName: spec.name,
        startedAt: started.toISOString(),
        finishedAt: now().toISOString(),
        status: status === "skipped" ? "interrupted" : "success",
        source: plan.sourceInfo,
        destination: { kind: deps.destination.kind, uri: deps.destination.uri },
        format: deps.format.kind,
        compression: deps.format.compressionLabel,
        schemaFingerprint: await schemaFingerprint(current),
        parts: staged.map((p, i): ManifestPart => ({
          partId: i + 1,
          path: p.committed?.key ?? "",
          rows: p.rows,
          sizeBytes: p.size,
          contentFingerprint: `xxh3:${p.xxh3}`,
          contentMd5: p.md5,
          status: "committed",
        })),
      });
    }
    return finish(status);
  } catch (error) {
    if (open) await open.encoder.abort(error).catch(() => {});
    for (const part of staged) if (!part.committed) await part.upload.abort(error).catch(() => {});
    // Whatever the source reported (a cancelled statement, a closed socket), the cause was the
    // operator's interrupt.
    const failure = deps.signal.aborted
      ? new InterruptedError("interrupted before it finished")
      : error;
    return finish("failed", failure);
  }

  async function openPart(index: number, first: RecordBatch): Promise<OpenPart> {
    const upload = await deps.destination.create(stagingKey(index), { signal: deps.signal });
    try {
      const { sink, digest } = await hashingSink(upload.writable);
      const encoder = deps.format.createEncoder(first.schema, sink);
      return { index, upload, encoder, digest };
    } catch (error) {
      await upload.abort(error).catch(() => {});
      throw error;
    }
  }

  /** Logs a committed part in the state file log; a failure only warns (reliability I7). */
  async function recordPart(part: StagedPart, key: string): Promise<void> {
    if (!deps.state) return;
    try {
      await deps.state.recordPart({
        runId: plan.runId,
        exportName: spec.name,
        fileName: key,
        rowCount: part.rows,
        bytes: part.size,
        format: deps.format.kind,
        compression: deps.format.compressionLabel,
        createdAt: now().toISOString(),
      });
    } catch (error) {
      deps.emit({
        type: "warning",
        export: spec.name,
        code: "state.file_log_failed",
        message: `export '${spec.name}': could not record ${key} in the state file log: ${
          error instanceof Error ? error.message : String(error)
        }`,
      });
    }
  }

  async function closePart(part: OpenPart): Promise<void> {
    await part.encoder.close();
    const { size, xxh3, md5 } = part.digest();
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
