/**
 * `rivet repair`: re-exports the chunks a reconcile report flagged (mismatch) as new files. The
 * plan comes from a report (`rivet reconcile --format json`) or from a reconcile made now; a dry
 * run only describes it. With `execute`, each flagged chunk runs again through the same unit
 * runner as a chunked run (`runChunkUnit`: same statement, same `_chunk<i>_<hex>` naming with
 * the original chunk index, each part staged then committed) and every committed part is
 * recorded in the file log under the repair's own run id, with a metrics row for that run.
 *
 * Nothing is deleted or rewritten: the old files of a chunk stay, the committed boundary and the
 * checkpointed run are left alone, and `manifest.json` is not rewritten (it describes the original
 * run; listing the new files too would count the chunk's rows twice). The repaired files are
 * outside the manifest; the file log vouches for them, so `rivet validate` does not report them.
 *
 * The chunk bounds always come from the state store (the report only names which chunks are
 * flagged), so an edited report cannot make repair run a statement of its own.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import type { Destination } from "../core/destination.ts";
import { ConfigError, type ErrorInfo } from "../core/errors.ts";
import type { EventSink } from "../core/events.ts";
import type { Format } from "../core/format.ts";
import type { ExportJob } from "../core/job.ts";
import type { Source } from "../core/source.ts";
import type { ChunkTaskEntry, StateStore } from "../core/state.ts";
import { VERSION } from "../core/version.ts";
import { type CommittedPart, runChunkUnit } from "./chunk_unit.ts";
import { chunkStatement, type WindowedChunking } from "./chunk_plan.ts";
import { runId as makeRunId } from "./naming.ts";
import { recordPart } from "./run_export.ts";
import type { ChunkAudit, ReconcileReport } from "./reconcile.ts";

/** One flagged chunk and what repair did (or would do) with it. */
export interface RepairItem {
  readonly chunkIndex: number;
  readonly startKey: string | null;
  readonly endKey: string | null;
  readonly recordedRows?: number;
  readonly sourceRows?: number;
  /** `planned` (dry run), `repaired`, or `failed`. */
  readonly status: "planned" | "repaired" | "failed";
  /** Rows the repair exported. */
  readonly rows?: number;
  /** Files the repair committed. */
  readonly files?: readonly string[];
  readonly error?: ErrorInfo;
}

/** The plan and, after `execute`, the result of a repair. */
export interface RepairResult {
  readonly export: string;
  /** The chunk run the report audited. */
  readonly runId: string;
  /** The run id the repaired files are recorded under (execute only). */
  readonly repairRunId?: string;
  readonly executed: boolean;
  readonly items: readonly RepairItem[];
  /** Chunks the report could not judge: not repaired. */
  readonly unknown: readonly ChunkAudit[];
}

/** What {@linkcode executeRepair} writes with. */
export interface RepairContext {
  readonly state: StateStore;
  readonly format: Format;
  /** The destination, placed as the audited run's was (its start time fills `{date}`). */
  readonly destination: Destination;
  /** Opens a connection to the source. */
  readonly connect: () => Promise<Source>;
  readonly emit: EventSink;
  readonly signal: AbortSignal;
  readonly now?: () => Date;
}

/**
 * Checks that a report belongs to this export and its latest run's plan.
 *
 * @param report The parsed report.
 * @param job The export `-e` named.
 * @param planHash The plan hash of the export's chunking now.
 * @throws {ConfigError} `repair.report_mismatch` for another export or another chunk plan.
 */
export function checkReport(report: ReconcileReport, job: ExportJob, planHash: string): void {
  if (report.export !== job.spec.name) {
    throw new ConfigError(
      `export '${job.spec.name}': the report is of export '${report.export}', not this one`,
      {
        code: "repair.report_mismatch",
        hint: `reconcile this export first: rivet reconcile -e ${job.spec.name} --format json -o ` +
          "report.json",
      },
    );
  }
  if (report.planHash !== planHash) {
    throw new ConfigError(
      `export '${job.spec.name}': the report's chunk plan (${report.planHash}) is not the ` +
        `export's current one (${planHash})`,
      {
        code: "repair.report_mismatch",
        hint: "the query or chunk settings changed since the report: reconcile again",
      },
    );
  }
}

/**
 * The repair plan of a report: its mismatched chunks, with the bounds the state recorded.
 *
 * @param report The reconcile report.
 * @param tasks The tasks of the report's run, from the state store.
 * @returns The planned items and the chunks left unknown.
 * @throws {ConfigError} `repair.report_mismatch` when a flagged chunk is not a task of the run.
 */
export function planRepair(
  report: ReconcileReport,
  tasks: readonly ChunkTaskEntry[],
): RepairResult {
  const byIndex = new Map(tasks.map((t) => [t.chunkIndex, t]));
  const items = report.chunks.filter((c) => c.status === "mismatch").map((c): RepairItem => {
    const task = byIndex.get(c.chunkIndex);
    if (task === undefined) {
      throw new ConfigError(
        `export '${report.export}': chunk ${c.chunkIndex} of the report is not a chunk of run ` +
          `${report.runId} in the state file`,
        { code: "repair.report_mismatch", hint: "reconcile again and repair from that report" },
      );
    }
    return {
      chunkIndex: c.chunkIndex,
      startKey: task.startKey,
      endKey: task.endKey,
      ...(c.recordedRows === undefined ? {} : { recordedRows: c.recordedRows }),
      ...(c.sourceRows === undefined ? {} : { sourceRows: c.sourceRows }),
      status: "planned",
    };
  });
  return {
    export: report.export,
    runId: report.runId,
    executed: false,
    items,
    unknown: report.chunks.filter((c) => c.status === "unknown"),
  };
}

/**
 * Re-exports every planned chunk as new files, records them, and records the repair run.
 *
 * @param job The export.
 * @param plan The plan from {@linkcode planRepair}.
 * @param chunking The export's windows (same plan hash as the audited run).
 * @param ctx State, format, destination, connection factory, events.
 * @returns The plan with each item `repaired` or `failed`.
 */
export async function executeRepair(
  job: ExportJob,
  plan: RepairResult,
  chunking: WindowedChunking,
  ctx: RepairContext,
): Promise<RepairResult> {
  const now = ctx.now ?? (() => new Date());
  const { spec, tuning } = job;
  const startedAt = now();
  const repairRunId = makeRunId(spec.name, startedAt);
  let source: Source | undefined;
  const items: RepairItem[] = [];
  let bytes = 0;
  try {
    const unitContext = {
      spec,
      tuning,
      startedAt,
      format: ctx.format,
      destination: ctx.destination,
      emit: ctx.emit,
      signal: ctx.signal,
      connection: async () => (source ??= await ctx.connect()),
      dropConnection: async () => {
        const s = source;
        source = undefined;
        await closeQuietly(s);
      },
    };
    for (const item of plan.items) {
      if (ctx.signal.aborted) break;
      const statement = chunkStatement(job.baseSql, chunking, item, job.source.kind);
      const result = await runChunkUnit({
        chunkIndex: item.chunkIndex,
        naming: "chunk",
        sql: statement.sql,
        params: statement.params,
        stripColumns: statement.strippedColumns,
      }, unitContext);
      for (const part of result.parts) await logPart(part, item.chunkIndex);
      const files = result.parts.map((p) => p.key);
      bytes += result.parts.reduce((n, p) => n + p.size, 0);
      items.push({
        ...item,
        status: result.failure ? "failed" : "repaired",
        rows: result.parts.reduce((n, p) => n + p.rows, 0),
        files,
        ...(result.failure ? { error: result.failure } : {}),
      });
    }
  } finally {
    await closeQuietly(source);
  }
  const failed = items.filter((i) => i.status === "failed");
  const rows = items.reduce((n, i) => n + (i.rows ?? 0), 0);
  const files = items.flatMap((i) => i.files ?? []);
  // The repair's own metrics row: its files then count as committed by a successful run.
  await ctx.state.recordRun({
    runId: repairRunId,
    exportName: spec.name,
    runAt: startedAt.toISOString(),
    durationMs: now().getTime() - startedAt.getTime(),
    totalRows: rows,
    status: failed.length > 0 || items.length < plan.items.length ? "failed" : "success",
    ...(failed[0]?.error ? { errorMessage: failed[0].error.message } : {}),
    format: ctx.format.kind,
    // `rivet metrics` and the history tell a repair from a run by its mode.
    mode: "repair",
    filesProduced: files.length,
    filesCommitted: files.length,
    bytesWritten: bytes,
    sourceType: job.source.kind,
    destinationType: spec.destination.kind,
    rivetVersion: VERSION,
  });
  return { ...plan, repairRunId, executed: true, items };

  function logPart(part: CommittedPart, chunkIndex: number): Promise<void> {
    return recordPart({ spec, runId: repairRunId }, {
      state: ctx.state,
      format: ctx.format,
      emit: ctx.emit,
    }, {
      part: { ...part, index: part.partIndex },
      key: part.key,
      chunkIndex,
    });
  }
}

/** Closes a connection; one that fails to close is closed as far as repair is concerned. */
async function closeQuietly(source: Source | undefined): Promise<void> {
  try {
    await source?.[Symbol.asyncDispose]();
  } catch {
    // Nothing to do: the connection is dropped.
  }
}
