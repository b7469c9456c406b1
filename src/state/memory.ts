/**
 * An in-memory {@linkcode StateStore} for unit tests of pipeline code: the same contract and
 * semantics as the SQLite store (claim order, attempt limits, the one-run-in-progress rule,
 * newest-first histories), nothing persisted.
 *
 * @module
 */
import type {
  ChunkDoneEntry,
  ChunkFailedEntry,
  ChunkPlanEntry,
  ChunkRefEntry,
  ChunkRunEntry,
  ChunkTaskEntry,
  CursorEntry,
  ExportProgressionEntry,
  JournalEntry,
  JournalListOptions,
  ListOptions,
  MetricsEntry,
  PartEntry,
  ProgressionEntry,
  QuarantinedPartsEntry,
  RunAggregateEntry,
  SchemaEntry,
  StateStore,
} from "../core/state.ts";
import {
  chunkRunExists,
  chunkRunIncomplete,
  chunkRunInProgress,
  unknownChunk,
  unknownChunkRun,
} from "./_errors.ts";

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Deep copy through JSON, as a database round trip would: callers never share our objects. */
function copy<T>(value: T): T {
  return value === undefined ? value : JSON.parse(JSON.stringify(value));
}

function newestFirst<T extends { readonly exportName: string }>(
  rows: readonly T[],
  options: ListOptions,
  keep: (row: T) => boolean = () => true,
): T[] {
  const out: T[] = [];
  const last = Math.max(0, Math.trunc(options.last));
  for (let i = rows.length - 1; i >= 0 && out.length < last; i--) {
    const row = rows[i]!;
    if (options.exportName !== undefined && row.exportName !== options.exportName) continue;
    if (keep(row)) out.push(copy(row));
  }
  return out;
}

/** Runs `body`, turning a synchronous throw into a rejection. */
function attempt<T>(body: () => T): Promise<T> {
  return new Promise((resolve) => resolve(body()));
}

/**
 * {@linkcode StateStore} held in maps and arrays.
 *
 * @example
 * ```ts
 * import { MemoryStateStore } from "./memory.ts";
 * await using state = new MemoryStateStore();
 * await state.saveChunkPlan({
 *   runId: "r1", exportName: "e", planHash: "h", maxAttempts: 2,
 *   tasks: [{ startKey: "1", endKey: "10" }],
 * });
 * if ((await state.claimChunk("r1"))?.chunkIndex !== 0) throw new Error("claim");
 * ```
 */
export class MemoryStateStore implements StateStore {
  #cursors = new Map<string, CursorEntry>();
  #files: PartEntry[] = [];
  #metrics: MetricsEntry[] = [];
  #schemas = new Map<string, SchemaEntry>();
  #runs: Mutable<ChunkRunEntry>[] = [];
  #tasks = new Map<string, Mutable<ChunkTaskEntry>[]>();
  #progression = new Map<string, ExportProgressionEntry>();
  #journal: JournalEntry[] = [];
  #aggregates: RunAggregateEntry[] = [];
  #closed = false;

  #open(): void {
    if (this.#closed) throw new Error("State store 'memory' is closed");
  }

  #task(entry: ChunkRefEntry): Mutable<ChunkTaskEntry> {
    const task = this.#tasks.get(entry.runId)?.[entry.chunkIndex];
    if (task === undefined) throw unknownChunk(entry);
    return task;
  }

  /** {@inheritDoc StateStore.readCursor} */
  readCursor(exportName: string): Promise<CursorEntry | undefined> {
    return attempt(() => (this.#open(), copy(this.#cursors.get(exportName))));
  }

  /** {@inheritDoc StateStore.listCursors} */
  listCursors(): Promise<CursorEntry[]> {
    return attempt(() => {
      this.#open();
      return [...this.#cursors.values()].sort((a, b) =>
        a.exportName < b.exportName ? -1 : a.exportName > b.exportName ? 1 : 0
      ).map(copy);
    });
  }

  /** {@inheritDoc StateStore.advanceCursor} */
  advanceCursor(entry: CursorEntry): Promise<void> {
    return attempt(() => {
      this.#open();
      this.#cursors.set(entry.exportName, copy(entry));
    });
  }

  /** {@inheritDoc StateStore.resetExport} */
  resetExport(exportName: string): Promise<boolean> {
    return attempt(() => {
      this.#open();
      const a = this.#cursors.delete(exportName);
      const b = this.#progression.delete(exportName);
      return a || b;
    });
  }

  /** {@inheritDoc StateStore.recordPart} */
  recordPart(entry: PartEntry): Promise<void> {
    return attempt(() => {
      this.#open();
      this.#files.push(copy(entry));
    });
  }

  /** {@inheritDoc StateStore.listFiles} */
  listFiles(options: ListOptions): Promise<PartEntry[]> {
    return attempt(() => (this.#open(), newestFirst(this.#files, options)));
  }

  /** {@inheritDoc StateStore.listRunParts} */
  listRunParts(runId: string): Promise<PartEntry[]> {
    return attempt(() => {
      this.#open();
      return this.#files.filter((f) => f.runId === runId).map(copy);
    });
  }

  /** {@inheritDoc StateStore.markPartsQuarantined} */
  markPartsQuarantined(entry: QuarantinedPartsEntry): Promise<number> {
    return attempt(() => {
      this.#open();
      const names = new Set(entry.fileNames);
      let n = 0;
      this.#files = this.#files.map((f) => {
        if (f.runId !== entry.runId || !names.has(f.fileName) || f.status === "quarantined") {
          return f;
        }
        n++;
        return { ...f, status: "quarantined" };
      });
      return n;
    });
  }

  /** {@inheritDoc StateStore.recordRun} */
  recordRun(entry: MetricsEntry): Promise<void> {
    return attempt(() => {
      this.#open();
      this.#metrics.push(copy(entry));
    });
  }

  /** {@inheritDoc StateStore.listMetrics} */
  listMetrics(options: ListOptions): Promise<MetricsEntry[]> {
    return attempt(() => (this.#open(), newestFirst(this.#metrics, options)));
  }

  /** {@inheritDoc StateStore.readSchema} */
  readSchema(exportName: string): Promise<SchemaEntry | undefined> {
    return attempt(() => (this.#open(), copy(this.#schemas.get(exportName))));
  }

  /** {@inheritDoc StateStore.saveSchema} */
  saveSchema(entry: SchemaEntry): Promise<void> {
    return attempt(() => {
      this.#open();
      const columns = entry.columns.map(({ name, type }) => ({ name, type }));
      this.#schemas.set(entry.exportName, { ...copy(entry), columns });
    });
  }

  /** {@inheritDoc StateStore.saveChunkPlan} */
  saveChunkPlan(entry: ChunkPlanEntry): Promise<void> {
    return attempt(() => {
      this.#open();
      if (!Number.isInteger(entry.maxAttempts) || entry.maxAttempts < 1) {
        throw new RangeError(`maxAttempts must be a positive integer, got ${entry.maxAttempts}`);
      }
      const running = this.#runs.find((r) =>
        r.exportName === entry.exportName && r.status === "in_progress"
      );
      if (running !== undefined) throw chunkRunInProgress(entry.exportName, running.runId);
      if (this.#tasks.has(entry.runId)) throw chunkRunExists(entry.runId);
      const at = entry.createdAt ?? new Date().toISOString();
      this.#runs.push({
        runId: entry.runId,
        exportName: entry.exportName,
        planHash: entry.planHash,
        status: "in_progress",
        maxAttempts: entry.maxAttempts,
        createdAt: at,
        updatedAt: at,
      });
      this.#tasks.set(
        entry.runId,
        entry.tasks.map((task, chunkIndex) => ({
          runId: entry.runId,
          chunkIndex,
          startKey: task.startKey,
          endKey: task.endKey,
          status: "pending",
          attempts: 0,
          updatedAt: at,
        })),
      );
    });
  }

  /** {@inheritDoc StateStore.claimChunk} */
  claimChunk(runId: string): Promise<ChunkTaskEntry | undefined> {
    return attempt(() => {
      this.#open();
      const run = this.#runs.find((r) => r.runId === runId);
      if (run === undefined || run.status !== "in_progress") return undefined;
      // Tasks are stored by index, so the first match is the lowest index.
      const task = this.#tasks.get(runId)?.find((t) =>
        t.status === "pending" || (t.status === "failed" && t.attempts < run.maxAttempts)
      );
      if (task === undefined) return undefined;
      task.status = "running";
      task.attempts += 1;
      delete task.failure;
      task.updatedAt = new Date().toISOString();
      return copy(task);
    });
  }

  /** {@inheritDoc StateStore.completeChunk} */
  completeChunk(entry: ChunkDoneEntry): Promise<void> {
    return attempt(() => {
      this.#open();
      const task = this.#task(entry);
      task.status = "completed";
      task.rowsWritten = entry.rowsWritten;
      if (entry.fileName === undefined) delete task.fileName;
      else task.fileName = entry.fileName;
      delete task.lastError;
      delete task.failure;
      task.updatedAt = new Date().toISOString();
    });
  }

  /** {@inheritDoc StateStore.failChunk} */
  failChunk(entry: ChunkFailedEntry): Promise<void> {
    return attempt(() => {
      this.#open();
      const task = this.#task(entry);
      task.status = "failed";
      task.lastError = entry.error;
      task.failure = entry.retryable === false ? "permanent" : "transient";
      if (entry.retryable === false) {
        const max = this.#runs.find((r) => r.runId === entry.runId)!.maxAttempts;
        task.attempts = Math.max(task.attempts, max);
      }
      task.updatedAt = new Date().toISOString();
    });
  }

  /** {@inheritDoc StateStore.reopenChunk} */
  reopenChunk(entry: ChunkRefEntry): Promise<void> {
    return attempt(() => {
      this.#open();
      const task = this.#task(entry);
      const run = this.#runs.find((r) => r.runId === entry.runId)!;
      const at = new Date().toISOString();
      if (run.status !== "in_progress") {
        // Checked before any change, as the SQLite transaction would roll back.
        const other = this.#runs.find((r) =>
          r.exportName === run.exportName && r.status === "in_progress"
        );
        if (other !== undefined) throw chunkRunInProgress(run.exportName, other.runId);
        run.status = "in_progress";
        run.updatedAt = at;
      }
      task.status = "pending";
      task.attempts = 0;
      delete task.rowsWritten;
      delete task.fileName;
      delete task.lastError;
      delete task.failure;
      task.updatedAt = at;
    });
  }

  /** {@inheritDoc StateStore.resetRunningChunks} */
  resetRunningChunks(runId: string): Promise<number> {
    return attempt(() => {
      this.#open();
      let n = 0;
      for (const task of this.#tasks.get(runId) ?? []) {
        if (task.status !== "running") continue;
        task.status = "pending";
        task.updatedAt = new Date().toISOString();
        n++;
      }
      return n;
    });
  }

  /** {@inheritDoc StateStore.completeChunkRun} */
  completeChunkRun(runId: string): Promise<void> {
    return attempt(() => {
      this.#open();
      const run = this.#runs.find((r) => r.runId === runId);
      if (run === undefined) throw unknownChunkRun(runId);
      const unfinished = (this.#tasks.get(runId) ?? []).filter((t) => t.status !== "completed")
        .map((t) => t.chunkIndex);
      if (unfinished.length > 0) throw chunkRunIncomplete(runId, unfinished);
      if (run.status === "completed") return;
      run.status = "completed";
      run.updatedAt = new Date().toISOString();
    });
  }

  /** {@inheritDoc StateStore.latestChunkRun} */
  latestChunkRun(exportName: string): Promise<ChunkRunEntry | undefined> {
    return attempt(() => {
      this.#open();
      let latest: ChunkRunEntry | undefined;
      // Same order as SQLite: newest created_at, then the later insert.
      for (const run of this.#runs) {
        if (run.exportName !== exportName) continue;
        if (latest === undefined || run.createdAt >= latest.createdAt) latest = run;
      }
      return copy(latest);
    });
  }

  /** {@inheritDoc StateStore.listChunkTasks} */
  listChunkTasks(runId: string): Promise<ChunkTaskEntry[]> {
    return attempt(() => (this.#open(), (this.#tasks.get(runId) ?? []).map(copy)));
  }

  /** {@inheritDoc StateStore.resetChunks} */
  resetChunks(exportName: string): Promise<number> {
    return attempt(() => {
      this.#open();
      const gone = this.#runs.filter((r) => r.exportName === exportName);
      for (const run of gone) this.#tasks.delete(run.runId);
      this.#runs = this.#runs.filter((r) => r.exportName !== exportName);
      return gone.length;
    });
  }

  /** {@inheritDoc StateStore.saveProgression} */
  saveProgression(entry: ProgressionEntry): Promise<void> {
    return attempt(() => {
      this.#open();
      const prior = this.#progression.get(entry.exportName) ?? { exportName: entry.exportName };
      this.#progression.set(entry.exportName, { ...prior, [entry.boundary]: copy(entry) });
    });
  }

  /** {@inheritDoc StateStore.readProgression} */
  readProgression(exportName: string): Promise<ExportProgressionEntry | undefined> {
    return attempt(() => (this.#open(), copy(this.#progression.get(exportName))));
  }

  /** {@inheritDoc StateStore.appendJournal} */
  appendJournal(entry: JournalEntry): Promise<void> {
    return attempt(() => {
      this.#open();
      this.#journal.push({ ...copy(entry), journal: copy(entry.journal ?? null) });
    });
  }

  /** {@inheritDoc StateStore.listJournal} */
  listJournal(options: JournalListOptions): Promise<JournalEntry[]> {
    return attempt(() => {
      this.#open();
      return newestFirst(
        this.#journal,
        options,
        (row) => options.runId === undefined || row.runId === options.runId,
      );
    });
  }

  /** {@inheritDoc StateStore.saveRunAggregate} */
  saveRunAggregate(entry: RunAggregateEntry): Promise<void> {
    return attempt(() => {
      this.#open();
      this.#aggregates = this.#aggregates.filter((a) => a.id !== entry.id);
      this.#aggregates.push(copy(entry));
    });
  }

  /** {@inheritDoc StateStore.listRunAggregates} */
  listRunAggregates(options: Pick<ListOptions, "last">): Promise<RunAggregateEntry[]> {
    return attempt(() => {
      this.#open();
      // Newest finishedAt first; among equals the later insert first, as SQLite's rowid order.
      const indexed = this.#aggregates.map((a, i) => [a, i] as const);
      indexed.sort(([a, i], [b, j]) =>
        a.finishedAt < b.finishedAt ? 1 : a.finishedAt > b.finishedAt ? -1 : j - i
      );
      return indexed.slice(0, Math.max(0, Math.trunc(options.last))).map(([a]) => copy(a));
    });
  }

  /** {@inheritDoc StateStore.close} */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /** Closes the store (`await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
