/**
 * `rivet reconcile`: the per-chunk audit of a checkpointed chunked export. For the latest chunk
 * run in the state store, every completed task's exact chunk statement is rebuilt from its
 * stored bounds (the same `chunkStatement` the run used) and counted on the source with
 * `SELECT COUNT(*) FROM (<chunk sql>) AS _rc`; the count is compared with the rows the task
 * recorded. Each chunk is a match, a mismatch, or unknown (no recorded count, or the count
 * failed). A report without mismatch or unknown, of a completed run, advances the export's
 * verified boundary (`rivet state progression`).
 *
 * The counts run now, after the export: rows written to the source since then show up as
 * mismatches of the chunks they fall in, which is what `rivet repair` re-exports.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import { ConfigError, toErrorInfo } from "../core/errors.ts";
import type { EventSink } from "../core/events.ts";
import type { ExportJob } from "../core/job.ts";
import type { Source } from "../core/source.ts";
import type { ChunkRunEntry, ChunkTaskEntry, StateStore } from "../core/state.ts";
import { dialectOf } from "../plan/dialect.ts";
import type { ChunkShape } from "../plan/plan_hash.ts";
import { redact } from "../_util/redact.ts";
import { chunkStatement, resolveChunking, type WindowedChunking } from "./chunk_plan.ts";
import { rivetCommand } from "./hints.ts";
import { probeScalar } from "./probe.ts";

/** The verdict of one chunk. */
export type ChunkVerdict = "match" | "mismatch" | "unknown";

/** One audited chunk. */
export interface ChunkAudit {
  readonly chunkIndex: number;
  /** The chunk's stored bounds (as the run recorded them). */
  readonly startKey: string | null;
  readonly endKey: string | null;
  readonly status: ChunkVerdict;
  /** Rows the task recorded when it completed. */
  readonly recordedRows?: number;
  /** Rows the chunk statement counts now. */
  readonly sourceRows?: number;
  /** Why the verdict is unknown. */
  readonly note?: string;
}

/** The report of `rivet reconcile` (and the input of `rivet repair --report`). */
export interface ReconcileReport {
  readonly export: string;
  readonly runId: string;
  /** `completed` or `in_progress`: only completed tasks are audited. */
  readonly runStatus: string;
  readonly planHash: string;
  readonly chunkColumn: string;
  /** e.g. `range, 70 per chunk`, `8 chunks`, `1 day per chunk`, `dense row numbers`. */
  readonly chunkShape: string;
  readonly checkedAt: string;
  /** Tasks of the run that were not completed (not audited). */
  readonly notCompleted: number;
  readonly matched: number;
  readonly mismatched: number;
  readonly unknown: number;
  readonly chunks: readonly ChunkAudit[];
  /** The verified boundary moved to this chunk index (a clean report of a completed run). */
  readonly verifiedChunkIndex?: number;
}

/** What {@linkcode reconcileChunks} works with. */
export interface ReconcileContext {
  readonly state: StateStore;
  /** An open connection to the export's source. */
  readonly source: Source;
  readonly emit: EventSink;
  readonly signal: AbortSignal;
  /** Clock, injectable for tests. */
  readonly now?: () => Date;
}

/**
 * The latest chunk run of a chunked export and the windows its tasks were cut with, or a
 * ConfigError that says why there is nothing to audit.
 *
 * @param job The resolved export.
 * @param ctx State, source and events.
 * @returns The run, its tasks and its chunking.
 */
export async function latestAuditableRun(
  job: ExportJob,
  ctx: Pick<ReconcileContext, "state" | "source" | "emit" | "signal">,
): Promise<{ run: ChunkRunEntry; tasks: ChunkTaskEntry[]; chunking: WindowedChunking }> {
  const { spec } = job;
  if (spec.mode !== "chunked") {
    throw new ConfigError(
      `export '${spec.name}': reconcile audits chunked exports chunk by chunk; this export is ` +
        `mode ${spec.mode}`,
      {
        code: "reconcile.not_chunked",
        hint: spec.mode === "time_window"
          ? "time_window re-reads a moving window, which no stored chunk describes: use mode: " +
            "chunked with chunk_by_days and chunk_checkpoint: true to audit per day"
          : "'rivet run --reconcile' compares the whole query's COUNT(*) with the rows committed",
      },
    );
  }
  const run = await ctx.state.latestChunkRun(spec.name);
  if (run === undefined) {
    throw new ConfigError(
      `export '${spec.name}': no checkpointed chunk run is recorded in the state file`,
      {
        code: "reconcile.no_chunk_run",
        hint: `reconcile audits the chunks a run recorded: set chunk_checkpoint: true and run ` +
          `'${rivetCommand("run", spec.name, job.configPath)}' first`,
      },
    );
  }
  const chunking = await resolveChunking(spec, {
    source: ctx.source,
    kind: job.source.kind,
    baseSql: job.baseSql,
    emit: ctx.emit,
    signal: ctx.signal,
  });
  if (chunking.kind !== "windows" || chunking.planHash !== run.planHash) {
    throw new ConfigError(
      `export '${spec.name}': the export's query or chunk settings changed since run ` +
        `${run.runId}, so its chunk statements cannot be rebuilt`,
      {
        code: "reconcile.plan_changed",
        hint: "put the config back as it was for that run, or run the export again and " +
          "reconcile the new run",
      },
    );
  }
  return { run, tasks: await ctx.state.listChunkTasks(run.runId), chunking };
}

/**
 * Counts every completed chunk of the export's latest chunk run on the source and compares it
 * with the recorded rows.
 *
 * @param job The resolved export.
 * @param ctx State, an open source, events, signal.
 * @returns The report.
 * @throws {ConfigError} `reconcile.not_chunked`, `reconcile.no_chunk_run`,
 *   `reconcile.plan_changed`.
 */
export async function reconcileChunks(
  job: ExportJob,
  ctx: ReconcileContext,
): Promise<ReconcileReport> {
  const now = ctx.now ?? (() => new Date());
  const { spec, tuning } = job;
  const { run, tasks, chunking } = await latestAuditableRun(job, ctx);
  const dialect = dialectOf(job.source.kind);
  const chunks: ChunkAudit[] = [];
  for (const task of tasks.filter((t) => t.status === "completed")) {
    if (ctx.signal.aborted) break;
    const bounds = { startKey: task.startKey, endKey: task.endKey };
    const base = { chunkIndex: task.chunkIndex, ...bounds };
    const recorded = task.rowsWritten;
    const statement = chunkStatement(job.baseSql, chunking, bounds, job.source.kind);
    let counted: number | undefined;
    let note: string | undefined;
    try {
      const value = await probeScalar(
        ctx.source,
        `SELECT ${dialect.count}(*) FROM (${statement.sql}) AS _rc`,
        {
          params: statement.params,
          signal: ctx.signal,
          statementTimeoutS: tuning.statementTimeoutS,
        },
      );
      counted = value === undefined ? undefined : Number(value);
      if (counted !== undefined && !Number.isFinite(counted)) counted = undefined;
      if (counted === undefined) note = "the COUNT(*) returned no number";
    } catch (error) {
      if (ctx.signal.aborted) throw error;
      note = `the count failed: ${redact(toErrorInfo(error).message)}`;
    }
    if (recorded === undefined) note ??= "the task recorded no row count";
    chunks.push(
      counted === undefined || recorded === undefined
        ? {
          ...base,
          status: "unknown",
          ...(recorded === undefined ? {} : { recordedRows: recorded }),
          ...(counted === undefined ? {} : { sourceRows: counted }),
          note: note ?? "unknown",
        }
        : {
          ...base,
          status: counted === recorded ? "match" : "mismatch",
          recordedRows: recorded,
          sourceRows: counted,
        },
    );
  }
  const tally = (s: ChunkVerdict) => chunks.filter((c) => c.status === s).length;
  const notCompleted = tasks.length - chunks.length;
  const clean = !ctx.signal.aborted && run.status === "completed" && notCompleted === 0 &&
    tally("match") === chunks.length;
  const last = chunks.at(-1);
  if (clean && last) {
    await ctx.state.saveProgression({
      exportName: spec.name,
      boundary: "verified",
      strategy: "chunked",
      chunkIndex: last.chunkIndex,
      runId: run.runId,
      at: now().toISOString(),
    });
  }
  return {
    export: spec.name,
    runId: run.runId,
    runStatus: run.status,
    planHash: run.planHash,
    chunkColumn: chunking.column,
    chunkShape: shapeText(chunking.shape),
    checkedAt: now().toISOString(),
    notCompleted,
    matched: tally("match"),
    mismatched: tally("mismatch"),
    unknown: tally("unknown"),
    chunks,
    ...(clean && last ? { verifiedChunkIndex: last.chunkIndex } : {}),
  };
}

/** How the windows were cut, in words. */
function shapeText(shape: ChunkShape): string {
  switch (shape.kind) {
    case "range":
      return `range, ${shape.size} per chunk`;
    case "count":
      return `${shape.count} chunks`;
    case "date":
      return `${shape.days} day${shape.days === 1 ? "" : "s"} per chunk`;
    case "dense":
      return "dense row numbers";
  }
}

/**
 * The JSON form of a report (snake_case keys), as `--format json` prints it and
 * `rivet repair --report` reads it.
 *
 * @param report The report.
 * @returns A JSON-ready object.
 */
export function reconcileReportJson(report: ReconcileReport): Record<string, unknown> {
  return {
    export: report.export,
    run_id: report.runId,
    run_status: report.runStatus,
    plan_hash: report.planHash,
    chunk_column: report.chunkColumn,
    chunk_shape: report.chunkShape,
    checked_at: report.checkedAt,
    not_completed: report.notCompleted,
    matched: report.matched,
    mismatched: report.mismatched,
    unknown: report.unknown,
    verified_chunk_index: report.verifiedChunkIndex ?? null,
    chunks: report.chunks.map((c) => ({
      chunk_index: c.chunkIndex,
      start_key: c.startKey,
      end_key: c.endKey,
      status: c.status,
      recorded_rows: c.recordedRows ?? null,
      source_rows: c.sourceRows ?? null,
      ...(c.note === undefined ? {} : { note: c.note }),
    })),
  };
}

/**
 * Reads a report written by `rivet reconcile --format json`.
 *
 * @param text The file's text.
 * @returns The report.
 * @throws {ConfigError} `repair.bad_report` when it is not such a report.
 */
export function parseReconcileReport(text: string): ReconcileReport {
  const bad = (detail: string) =>
    new ConfigError(`the --report file is not a reconcile report: ${detail}`, {
      code: "repair.bad_report",
      hint: "write it with: rivet reconcile -c <config> -e <export> --format json -o report.json",
    });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad("it is not JSON");
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw bad("not an object");
  const o = doc as Record<string, unknown>;
  const str = (key: string) => {
    if (typeof o[key] !== "string") throw bad(`'${key}' is missing or not text`);
    return o[key] as string;
  };
  const int = (v: unknown, key: string) => {
    if (v === null || v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
      throw bad(`'${key}' is not a count`);
    }
    return v;
  };
  if (!Array.isArray(o.chunks)) throw bad("'chunks' is not a list");
  const chunks = o.chunks.map((c: unknown, i: number): ChunkAudit => {
    if (typeof c !== "object" || c === null) throw bad(`chunks[${i}] is not an object`);
    const e = c as Record<string, unknown>;
    const status = e.status;
    if (status !== "match" && status !== "mismatch" && status !== "unknown") {
      throw bad(`chunks[${i}].status is not match, mismatch or unknown`);
    }
    const index = int(e.chunk_index, `chunks[${i}].chunk_index`);
    if (index === undefined) throw bad(`chunks[${i}].chunk_index is missing`);
    const key = (v: unknown) => (typeof v === "string" ? v : null);
    const recorded = int(e.recorded_rows, `chunks[${i}].recorded_rows`);
    const counted = int(e.source_rows, `chunks[${i}].source_rows`);
    return {
      chunkIndex: index,
      startKey: key(e.start_key),
      endKey: key(e.end_key),
      status,
      ...(recorded === undefined ? {} : { recordedRows: recorded }),
      ...(counted === undefined ? {} : { sourceRows: counted }),
      ...(typeof e.note === "string" ? { note: e.note } : {}),
    };
  });
  const count = (s: ChunkVerdict) => chunks.filter((c) => c.status === s).length;
  return {
    export: str("export"),
    runId: str("run_id"),
    runStatus: typeof o.run_status === "string" ? o.run_status : "unknown",
    planHash: str("plan_hash"),
    chunkColumn: typeof o.chunk_column === "string" ? o.chunk_column : "",
    chunkShape: typeof o.chunk_shape === "string" ? o.chunk_shape : "",
    checkedAt: typeof o.checked_at === "string" ? o.checked_at : "",
    notCompleted: int(o.not_completed, "not_completed") ?? 0,
    matched: count("match"),
    mismatched: count("mismatch"),
    unknown: count("unknown"),
    chunks,
  };
}
