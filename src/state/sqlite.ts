/**
 * The default state store: `.rivet_state.db`, a SQLite file next to the config, opened with
 * Deno's built-in `node:sqlite`, in WAL mode.
 *
 * A file is migrated only once it is recognised as rivet's (a 0-byte file, an empty SQLite
 * database, or one carrying rivet's `application_id`); anything else is refused with the file
 * left byte-for-byte untouched, and the run stops before anything is read.
 *
 * @module
 */
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { join } from "node:path";
import { ConfigError } from "../core/errors.ts";
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
  ProgressionBoundary,
  ProgressionEntry,
  QuarantinedPartsEntry,
  RunAggregateEntry,
  SchemaEntry,
  StateStore,
} from "../core/state.ts";
import { crashPoint } from "../_util/test_hook.ts";
import {
  chunkRunExists,
  chunkRunIncomplete,
  chunkRunInProgress,
  unknownChunk,
  unknownChunkRun,
} from "./_errors.ts";
import { MIGRATIONS, STATE_APPLICATION_ID, STATE_SCHEMA_VERSION } from "./_migrations.ts";

export { STATE_APPLICATION_ID, STATE_SCHEMA_VERSION };

/** File name of the state database, in the config file's directory. */
export const STATE_DB_FILE = ".rivet_state.db";

/**
 * Path of the state database for a config directory.
 *
 * @param configDir Directory of the config file (not the CWD).
 * @returns `<configDir>/.rivet_state.db`.
 *
 * @example
 * ```ts
 * import { stateDbPath } from "./sqlite.ts";
 * if (stateDbPath("/etc/rivet") !== "/etc/rivet/.rivet_state.db") throw new Error("path");
 * ```
 */
export function stateDbPath(configDir: string): string {
  return join(configDir, STATE_DB_FILE);
}

/** Options of {@linkcode SqliteStateStore.open}. */
export interface SqliteStateStoreOptions {
  /** How long a writer waits for a lock held by another connection. Default 10000. */
  readonly busyTimeoutMs?: number;
}

const defaults = { busyTimeoutMs: 10_000 } satisfies Required<SqliteStateStoreOptions>;

type ColumnKind = "text" | "int" | "bool";

/** `export_metrics` columns after the required ones, as [field, column, kind]. */
const METRIC_OPTIONAL: ReadonlyArray<readonly [keyof MetricsEntry, string, ColumnKind]> = [
  ["peakRssMb", "peak_rss_mb", "int"],
  ["errorMessage", "error_message", "text"],
  ["tuningProfile", "tuning_profile", "text"],
  ["format", "format", "text"],
  ["mode", "mode", "text"],
  ["filesProduced", "files_produced", "int"],
  ["bytesWritten", "bytes_written", "int"],
  ["retries", "retries", "int"],
  ["validated", "validated", "bool"],
  ["schemaChanged", "schema_changed", "bool"],
  ["filesCommitted", "files_committed", "int"],
  ["reconciled", "reconciled", "bool"],
  ["sourceCount", "source_count", "int"],
  ["qualityPassed", "quality_passed", "bool"],
  ["pgTempBytesDelta", "pg_temp_bytes_delta", "int"],
  ["batchSize", "batch_size", "int"],
  ["batchSizeMemoryMb", "batch_size_memory_mb", "int"],
  ["skipReason", "skip_reason", "text"],
  ["schemaFingerprint", "schema_fingerprint", "text"],
  ["chunkSize", "chunk_size", "int"],
  ["parallel", "parallel", "int"],
  ["sourceType", "source_type", "text"],
  ["destinationType", "destination_type", "text"],
  ["rivetVersion", "rivet_version", "text"],
  ["longestChunkMs", "longest_chunk_ms", "int"],
];
const METRIC_REQUIRED = [
  ["runId", "run_id"],
  ["exportName", "export_name"],
  ["runAt", "run_at"],
  ["durationMs", "duration_ms"],
  ["totalRows", "total_rows"],
  ["status", "status"],
] as const;
const METRIC_COLUMNS = [...METRIC_REQUIRED.map(([, c]) => c), ...METRIC_OPTIONAL.map(([, c]) => c)];
const INSERT_METRIC = `INSERT INTO export_metrics (${METRIC_COLUMNS.join(", ")}) VALUES (${
  METRIC_COLUMNS.map(() => "?").join(", ")
})`;

type Row = Record<string, SQLInputValue | null>;

const SQLITE_MAGIC = "SQLite format 3\0";

function nowIso(): string {
  return new Date().toISOString();
}

function text(row: Row, column: string): string {
  return String(row[column]);
}

function num(row: Row, column: string): number {
  return Number(row[column]);
}

/** Copies the non-null columns into `out[field]`, so optional fields stay absent, not undefined. */
function setIfPresent(
  out: Record<string, unknown>,
  field: string,
  value: unknown,
  kind: ColumnKind = "text",
): void {
  if (value === null || value === undefined) return;
  out[field] = kind === "bool"
    ? value === 1 || value === 1n
    : kind === "int"
    ? Number(value)
    : value;
}

function toSql(value: unknown, kind: ColumnKind): SQLInputValue {
  if (value === undefined || value === null) return null;
  if (kind === "bool") return value ? 1 : 0;
  return value as SQLInputValue;
}

function corruptError(path: string, why: string, cause?: unknown): ConfigError {
  return new ConfigError(
    `State file '${path}' is corrupt (${why}): move it aside to start with empty state`,
    {
      code: "state.corrupt",
      ...(cause === undefined ? {} : { cause }),
      hint: `rename or delete '${path}' (cursors and checkpoints in it are lost); ` +
        "'rivet state reset' cannot help because it needs a readable state file",
    },
  );
}

function foreignError(path: string): ConfigError {
  return new ConfigError(
    `State file '${path}' is a SQLite database of another application, not rivet state: ` +
      "move it aside",
    {
      code: "state.foreign",
      hint: `rename '${path}' or keep that database elsewhere; rivet never migrates a file it ` +
        "did not create, and 'rivet state reset' cannot help",
    },
  );
}

/** What the pre-open inspection found. */
type Recognised = { readonly kind: "fresh" } | { readonly kind: "rivet"; readonly version: number };

function isNotFound(error: unknown): boolean {
  return error instanceof Deno.errors.NotFound;
}

/** Creates the file with mode 0600 (the state file can hold cursors, i.e. data). */
function createPrivateFile(path: string): void {
  try {
    Deno.openSync(path, { write: true, createNew: true, mode: 0o600 }).close();
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
}

function restrictMode(path: string): void {
  if (Deno.build.os !== "windows") Deno.chmodSync(path, 0o600);
}

/** Reads the first `n` bytes of a file (fewer when the file is shorter). */
function readHead(path: string, n: number): Uint8Array {
  using file = Deno.openSync(path, { read: true });
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const read = file.readSync(buf.subarray(got));
    if (read === null || read === 0) break;
    got += read;
  }
  return buf.subarray(0, got);
}

/**
 * Decides, without writing anything, whether `path` may be opened read-write and migrated.
 * Checks the 100-byte SQLite header first, then opens the file read-only.
 */
function recognise(path: string): Recognised {
  let size: number;
  try {
    const info = Deno.statSync(path);
    if (!info.isFile) throw corruptError(path, "not a regular file");
    size = info.size;
  } catch (error) {
    if (!isNotFound(error)) throw error;
    createPrivateFile(path);
    restrictMode(path);
    return { kind: "fresh" };
  }
  if (size === 0) {
    restrictMode(path);
    return { kind: "fresh" };
  }
  const head = readHead(path, 100);
  if (head.length < 100) throw corruptError(path, "truncated SQLite header");
  if (new TextDecoder().decode(head.subarray(0, 16)) !== SQLITE_MAGIC) {
    throw corruptError(path, "not a SQLite database");
  }
  const rawPageSize = (head[16]! << 8) | head[17]!;
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0 || size % pageSize !== 0) {
    throw corruptError(path, "truncated or damaged SQLite file");
  }
  // A read-only open of a WAL-mode file creates `-wal`/`-shm`; remove the ones we caused if the
  // file is refused, so a refused file is left exactly as found.
  const sideFiles = [`${path}-wal`, `${path}-shm`].filter((side) => !exists(side));
  let db: DatabaseSync | undefined;
  let accepted = false;
  try {
    db = new DatabaseSync(path, { readOnly: true });
    const appId = num(db.prepare("PRAGMA application_id").get() as Row, "application_id");
    const objects = db.prepare("SELECT name FROM sqlite_master").all() as Row[];
    if (appId === STATE_APPLICATION_ID) {
      const names = new Set(objects.map((o) => String(o.name)));
      if (!names.has("schema_version")) throw corruptError(path, "schema_version table missing");
      const row = db.prepare("SELECT MAX(version) AS v FROM schema_version").get() as Row;
      const version = row.v === null ? 0 : num(row, "v");
      accepted = version <= STATE_SCHEMA_VERSION;
      return { kind: "rivet", version };
    }
    if (appId === 0 && objects.length === 0) {
      accepted = true;
      return { kind: "fresh" };
    }
    throw foreignError(path);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw corruptError(path, "SQLite cannot read it", error);
  } finally {
    db?.close();
    if (!accepted) {
      for (const side of sideFiles) {
        try {
          Deno.removeSync(side);
        } catch {
          // Not created after all.
        }
      }
    }
  }
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

function tooNewError(path: string, version: number): ConfigError {
  return new ConfigError(
    `State file '${path}' has schema version ${version}, newer than this rivet knows ` +
      `(${STATE_SCHEMA_VERSION}): upgrade rivet`,
    {
      code: "state.schema_too_new",
      hint: "a newer rivet wrote this file; run that version, or move the file aside to start " +
        "with empty state",
    },
  );
}

/**
 * Runs `body` and returns its result as a promise, so that a synchronous throw (a SQLite error,
 * a closed store) rejects instead of escaping the async contract.
 */
function attempt<T>(body: () => T): Promise<T> {
  return new Promise((resolve) => resolve(body()));
}

/**
 * {@linkcode StateStore} on a SQLite file. Synchronous `node:sqlite` calls behind an async
 * contract; every multi-statement write is one transaction.
 *
 * @example Open, advance a cursor, read it back
 * ```ts
 * import { SqliteStateStore } from "./sqlite.ts";
 * const dir = await Deno.makeTempDir();
 * await using state = await SqliteStateStore.open(`${dir}/.rivet_state.db`);
 * await state.advanceCursor({
 *   exportName: "orders",
 *   lastCursorValue: "42",
 *   lastRunAt: "2024-01-01T00:00:00Z",
 * });
 * if ((await state.readCursor("orders"))?.lastCursorValue !== "42") throw new Error("cursor");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class SqliteStateStore implements StateStore {
  /** Path of the database file. */
  readonly path: string;
  #db: DatabaseSync | undefined;

  private constructor(path: string, db: DatabaseSync) {
    this.path = path;
    this.#db = db;
  }

  /**
   * Opens (creating with mode 0600 if missing) and migrates a state file. Refuses, leaving the
   * file untouched, a corrupt file (`state.corrupt`), another application's SQLite database
   * (`state.foreign`) and a schema newer than this build (`state.schema_too_new`).
   *
   * @param path File path, usually {@linkcode stateDbPath}.
   * @param options Busy timeout.
   * @returns The open store.
   */
  static open(path: string, options: SqliteStateStoreOptions = {}): Promise<SqliteStateStore> {
    return attempt(() =>
      new SqliteStateStore(path, openDatabase(path, { ...defaults, ...options }))
    );
  }

  get #conn(): DatabaseSync {
    if (this.#db === undefined) throw new Error(`State store '${this.path}' is closed`);
    return this.#db;
  }

  /** Runs `body` in a `BEGIN IMMEDIATE` transaction (the write lock is taken up front). */
  #write<T>(body: (db: DatabaseSync) => T): Promise<T> {
    return attempt(() => {
      const db = this.#conn;
      db.exec("BEGIN IMMEDIATE");
      try {
        const out = body(db);
        db.exec("COMMIT");
        return out;
      } catch (error) {
        if (db.isTransaction) db.exec("ROLLBACK");
        throw error;
      }
    });
  }

  /** {@inheritDoc StateStore.readCursor} */
  readCursor(exportName: string): Promise<CursorEntry | undefined> {
    return attempt(() => {
      const row = this.#conn.prepare("SELECT * FROM export_state WHERE export_name = ?").get(
        exportName,
      ) as Row | undefined;
      return row === undefined ? undefined : cursorFromRow(row);
    });
  }

  /** {@inheritDoc StateStore.listCursors} */
  listCursors(): Promise<CursorEntry[]> {
    return attempt(() =>
      (this.#conn.prepare("SELECT * FROM export_state ORDER BY export_name").all() as Row[])
        .map(cursorFromRow)
    );
  }

  /** {@inheritDoc StateStore.advanceCursor} */
  async advanceCursor(entry: CursorEntry): Promise<void> {
    const db = this.#conn;
    db.exec("BEGIN IMMEDIATE");
    try {
      db.prepare(
        `INSERT INTO export_state (export_name, last_cursor_value, last_run_at) VALUES (?, ?, ?)
         ON CONFLICT (export_name) DO UPDATE SET last_cursor_value = excluded.last_cursor_value,
           last_run_at = excluded.last_run_at`,
      ).run(entry.exportName, entry.lastCursorValue, entry.lastRunAt);
      // A kill here must leave the previous cursor (the `in_state_write` crash point of
      // docs/run-guarantees.md).
      // No await unless a test hook is armed: concurrent callers (the worker engine's chunk
      // loop) must never see this transaction open across a yield.
      const hook = crashPoint("in_state_write");
      if (hook) await hook;
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }

  /** {@inheritDoc StateStore.resetExport} */
  resetExport(exportName: string): Promise<boolean> {
    return this.#write((db) => {
      const a = db.prepare("DELETE FROM export_state WHERE export_name = ?").run(exportName);
      const b = db.prepare("DELETE FROM export_progression WHERE export_name = ?").run(exportName);
      return Number(a.changes) + Number(b.changes) > 0;
    });
  }

  /** {@inheritDoc StateStore.recordPart} */
  recordPart(entry: PartEntry): Promise<void> {
    return attempt(() => {
      this.#conn.prepare(
        `INSERT INTO file_log (run_id, export_name, file_name, row_count, bytes, format,
           compression, created_at, content_fingerprint, content_md5, chunk_index, part_index,
           status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        entry.runId,
        entry.exportName,
        entry.fileName,
        entry.rowCount,
        entry.bytes,
        entry.format,
        entry.compression ?? null,
        entry.createdAt,
        entry.contentFingerprint ?? null,
        entry.contentMd5 ?? null,
        entry.chunkIndex ?? null,
        entry.partIndex ?? null,
        entry.status ?? null,
      );
    });
  }

  /** {@inheritDoc StateStore.listFiles} */
  listFiles(options: ListOptions): Promise<PartEntry[]> {
    return attempt(() => this.#history("file_log", options).map(partFromRow));
  }

  /** {@inheritDoc StateStore.listRunParts} */
  listRunParts(runId: string): Promise<PartEntry[]> {
    // idx_file_log_run holds rowids in order, so this reads the index without a sort.
    return attempt(() =>
      (this.#conn.prepare("SELECT * FROM file_log WHERE run_id = ? ORDER BY id").all(
        runId,
      ) as Row[]).map(partFromRow)
    );
  }

  /** {@inheritDoc StateStore.markPartsQuarantined} */
  markPartsQuarantined(entry: QuarantinedPartsEntry): Promise<number> {
    // One statement, so the marking is atomic; the names travel as one JSON parameter, which
    // has no bound-variable limit.
    return attempt(() => {
      const db = this.#conn;
      if (entry.fileNames.length === 0) return 0;
      return Number(
        db.prepare(
          `UPDATE file_log SET status = 'quarantined'
           WHERE run_id = ? AND (status IS NULL OR status <> 'quarantined')
             AND file_name IN (SELECT value FROM json_each(?))`,
        ).run(entry.runId, JSON.stringify(entry.fileNames)).changes,
      );
    });
  }

  /** Newest-first rows of an id-ordered history table. */
  #history(table: string, options: ListOptions, runId?: string): Row[] {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (options.exportName !== undefined) {
      where.push("export_name = ?");
      params.push(options.exportName);
    }
    if (runId !== undefined) {
      where.push("run_id = ?");
      params.push(runId);
    }
    const filter = where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "";
    params.push(Math.max(0, Math.trunc(options.last)));
    return this.#conn.prepare(`SELECT * FROM ${table}${filter} ORDER BY id DESC LIMIT ?`)
      .all(...params) as Row[];
  }

  /** {@inheritDoc StateStore.recordRun} */
  recordRun(entry: MetricsEntry): Promise<void> {
    return attempt(() => {
      const values: SQLInputValue[] = [
        ...METRIC_REQUIRED.map(([field]) => entry[field] as SQLInputValue),
        ...METRIC_OPTIONAL.map(([field, , kind]) => toSql(entry[field], kind)),
      ];
      this.#conn.prepare(INSERT_METRIC).run(...values);
    });
  }

  /** {@inheritDoc StateStore.listMetrics} */
  listMetrics(options: ListOptions): Promise<MetricsEntry[]> {
    return attempt(() =>
      this.#history("export_metrics", options).map((row) => {
        const out: Record<string, unknown> = {
          runId: text(row, "run_id"),
          exportName: text(row, "export_name"),
          runAt: text(row, "run_at"),
          durationMs: num(row, "duration_ms"),
          totalRows: num(row, "total_rows"),
          status: text(row, "status"),
        };
        for (const [field, column, kind] of METRIC_OPTIONAL) {
          setIfPresent(out, field, row[column], kind);
        }
        return out as unknown as MetricsEntry;
      })
    );
  }

  /** {@inheritDoc StateStore.readSchema} */
  readSchema(exportName: string): Promise<SchemaEntry | undefined> {
    return attempt(() => {
      const row = this.#conn.prepare("SELECT * FROM export_schema WHERE export_name = ?").get(
        exportName,
      ) as Row | undefined;
      if (row === undefined) return undefined;
      return {
        exportName,
        columns: JSON.parse(text(row, "columns_json")),
        updatedAt: text(row, "updated_at"),
      };
    });
  }

  /** {@inheritDoc StateStore.saveSchema} */
  saveSchema(entry: SchemaEntry): Promise<void> {
    return attempt(() => {
      const columns = entry.columns.map(({ name, type }) => ({ name, type }));
      this.#conn.prepare(
        `INSERT INTO export_schema (export_name, columns_json, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (export_name) DO UPDATE SET columns_json = excluded.columns_json,
           updated_at = excluded.updated_at`,
      ).run(entry.exportName, JSON.stringify(columns), entry.updatedAt);
    });
  }

  /** {@inheritDoc StateStore.saveChunkPlan} */
  saveChunkPlan(entry: ChunkPlanEntry): Promise<void> {
    const at = entry.createdAt ?? nowIso();
    return this.#write((db) => {
      checkMaxAttempts(entry.maxAttempts);
      const running = db.prepare(
        "SELECT run_id FROM chunk_run WHERE export_name = ? AND status = 'in_progress'",
      ).get(entry.exportName) as Row | undefined;
      if (running !== undefined) {
        throw chunkRunInProgress(entry.exportName, text(running, "run_id"));
      }
      if (db.prepare("SELECT 1 FROM chunk_run WHERE run_id = ?").get(entry.runId) !== undefined) {
        throw chunkRunExists(entry.runId);
      }
      db.prepare(
        `INSERT INTO chunk_run (run_id, export_name, plan_hash, status, max_chunk_attempts,
           created_at, updated_at) VALUES (?, ?, ?, 'in_progress', ?, ?, ?)`,
      ).run(entry.runId, entry.exportName, entry.planHash, entry.maxAttempts, at, at);
      const insert = db.prepare(
        `INSERT INTO chunk_task (run_id, chunk_index, start_key, end_key, status, attempts,
           updated_at) VALUES (?, ?, ?, ?, 'pending', 0, ?)`,
      );
      entry.tasks.forEach((task, index) => {
        insert.run(entry.runId, index, task.startKey, task.endKey, at);
      });
    });
  }

  /** {@inheritDoc StateStore.claimChunk} */
  async claimChunk(runId: string): Promise<ChunkTaskEntry | undefined> {
    // BEGIN IMMEDIATE takes the write lock before the SELECT inside the UPDATE, so two
    // connections serialise here and never pick the same task.
    const row = await this.#write((db) =>
      db.prepare(
        `UPDATE chunk_task SET status = 'running', attempts = attempts + 1, failure = NULL,
           updated_at = ?
         WHERE run_id = ? AND chunk_index = (
           SELECT t.chunk_index FROM chunk_task t JOIN chunk_run r ON r.run_id = t.run_id
           WHERE t.run_id = ? AND r.status = 'in_progress'
             AND (t.status = 'pending'
               OR (t.status = 'failed' AND t.attempts < r.max_chunk_attempts))
           ORDER BY t.chunk_index LIMIT 1)
         RETURNING *`,
      ).get(nowIso(), runId, runId) as Row | undefined
    );
    return row === undefined ? undefined : taskFromRow(row);
  }

  /** {@inheritDoc StateStore.completeChunk} */
  async completeChunk(entry: ChunkDoneEntry): Promise<void> {
    const db = this.#conn;
    db.exec("BEGIN IMMEDIATE");
    try {
      const result = db.prepare(
        `UPDATE chunk_task SET status = 'completed', rows_written = ?, file_name = ?,
           last_error = NULL, failure = NULL, updated_at = ? WHERE run_id = ? AND chunk_index = ?`,
      ).run(entry.rowsWritten, entry.fileName ?? null, nowIso(), entry.runId, entry.chunkIndex);
      if (Number(result.changes) === 0) throw unknownChunk(entry);
      // A kill here must leave the task running (the `in_state_write` crash point of
      // docs/run-guarantees.md).
      // No await unless a test hook is armed: concurrent callers (the worker engine's chunk
      // loop) must never see this transaction open across a yield.
      const hook = crashPoint("in_state_write");
      if (hook) await hook;
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }

  /** {@inheritDoc StateStore.failChunk} */
  failChunk(entry: ChunkFailedEntry): Promise<void> {
    // A permanent error pins attempts at the run's maximum, so the claim predicate (the one
    // place deciding eligibility) never hands the task out again.
    const pin = entry.retryable === false
      ? `, attempts = MAX(attempts,
           (SELECT max_chunk_attempts FROM chunk_run WHERE run_id = chunk_task.run_id))`
      : "";
    return attempt(() => {
      const result = this.#conn.prepare(
        `UPDATE chunk_task SET status = 'failed', last_error = ?, failure = ?, updated_at = ?${pin}
         WHERE run_id = ? AND chunk_index = ?`,
      ).run(
        entry.error,
        entry.retryable === false ? "permanent" : "transient",
        nowIso(),
        entry.runId,
        entry.chunkIndex,
      );
      if (Number(result.changes) === 0) throw unknownChunk(entry);
    });
  }

  /** {@inheritDoc StateStore.reopenChunk} */
  reopenChunk(entry: ChunkRefEntry): Promise<void> {
    const at = nowIso();
    return this.#write((db) => {
      const result = db.prepare(
        `UPDATE chunk_task SET status = 'pending', attempts = 0, rows_written = NULL,
           file_name = NULL, last_error = NULL, failure = NULL, updated_at = ?
         WHERE run_id = ? AND chunk_index = ?`,
      ).run(at, entry.runId, entry.chunkIndex);
      if (Number(result.changes) === 0) throw unknownChunk(entry);
      const run = db.prepare("SELECT export_name, status FROM chunk_run WHERE run_id = ?").get(
        entry.runId,
      ) as Row;
      if (text(run, "status") === "in_progress") return;
      // A completed run hands out nothing: reopen it too, unless the export has moved on to
      // another run in progress (the one-in-progress index would refuse it anyway).
      const exportName = text(run, "export_name");
      const other = db.prepare(
        "SELECT run_id FROM chunk_run WHERE export_name = ? AND status = 'in_progress'",
      ).get(exportName) as Row | undefined;
      if (other !== undefined) throw chunkRunInProgress(exportName, text(other, "run_id"));
      db.prepare("UPDATE chunk_run SET status = 'in_progress', updated_at = ? WHERE run_id = ?")
        .run(at, entry.runId);
    });
  }

  /** {@inheritDoc StateStore.resetRunningChunks} */
  resetRunningChunks(runId: string): Promise<number> {
    return attempt(() =>
      Number(
        this.#conn.prepare(
          `UPDATE chunk_task SET status = 'pending', updated_at = ?
           WHERE run_id = ? AND status = 'running'`,
        ).run(nowIso(), runId).changes,
      )
    );
  }

  /** {@inheritDoc StateStore.completeChunkRun} */
  completeChunkRun(runId: string): Promise<void> {
    const at = nowIso();
    // Check and mark under one write lock, so no task can change in between.
    return this.#write((db) => {
      const run = db.prepare("SELECT 1 FROM chunk_run WHERE run_id = ?").get(runId);
      if (run === undefined) throw unknownChunkRun(runId);
      const unfinished = (db.prepare(
        `SELECT chunk_index FROM chunk_task WHERE run_id = ? AND status <> 'completed'
         ORDER BY chunk_index`,
      ).all(runId) as Row[]).map((row) => num(row, "chunk_index"));
      if (unfinished.length > 0) throw chunkRunIncomplete(runId, unfinished);
      db.prepare(
        `UPDATE chunk_run SET status = 'completed', updated_at = ?
         WHERE run_id = ? AND status <> 'completed'`,
      ).run(at, runId);
    });
  }

  /** {@inheritDoc StateStore.latestChunkRun} */
  latestChunkRun(exportName: string): Promise<ChunkRunEntry | undefined> {
    return attempt(() => {
      const row = this.#conn.prepare(
        `SELECT * FROM chunk_run WHERE export_name = ?
         ORDER BY created_at DESC, rowid DESC LIMIT 1`,
      ).get(exportName) as Row | undefined;
      if (row === undefined) return undefined;
      return {
        runId: text(row, "run_id"),
        exportName: text(row, "export_name"),
        planHash: text(row, "plan_hash"),
        status: text(row, "status") as ChunkRunEntry["status"],
        maxAttempts: num(row, "max_chunk_attempts"),
        createdAt: text(row, "created_at"),
        updatedAt: text(row, "updated_at"),
      };
    });
  }

  /** {@inheritDoc StateStore.listChunkTasks} */
  listChunkTasks(runId: string): Promise<ChunkTaskEntry[]> {
    return attempt(() =>
      (this.#conn.prepare("SELECT * FROM chunk_task WHERE run_id = ? ORDER BY chunk_index")
        .all(runId) as Row[]).map(taskFromRow)
    );
  }

  /** {@inheritDoc StateStore.resetChunks} */
  resetChunks(exportName: string): Promise<number> {
    // chunk_task rows go with their run (ON DELETE CASCADE, foreign_keys is on).
    return this.#write((db) =>
      Number(db.prepare("DELETE FROM chunk_run WHERE export_name = ?").run(exportName).changes)
    );
  }

  /** {@inheritDoc StateStore.saveProgression} */
  saveProgression(entry: ProgressionEntry): Promise<void> {
    const p = `last_${entry.boundary}`;
    const cols = [`${p}_strategy`, `${p}_cursor`, `${p}_chunk_index`, `${p}_run_id`, `${p}_at`];
    return attempt(() => {
      this.#conn.prepare(
        `INSERT INTO export_progression (export_name, ${cols.join(", ")})
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (export_name) DO UPDATE SET ${
          cols.map((c) => `${c} = excluded.${c}`).join(", ")
        }`,
      ).run(
        entry.exportName,
        entry.strategy,
        entry.cursor ?? null,
        entry.chunkIndex ?? null,
        entry.runId,
        entry.at,
      );
    });
  }

  /** {@inheritDoc StateStore.readProgression} */
  readProgression(exportName: string): Promise<ExportProgressionEntry | undefined> {
    return attempt(() => {
      const row = this.#conn.prepare("SELECT * FROM export_progression WHERE export_name = ?")
        .get(exportName) as Row | undefined;
      if (row === undefined) return undefined;
      const out: Record<string, unknown> = { exportName };
      for (const boundary of ["committed", "verified"] as const) {
        const mark = progressionFromRow(row, exportName, boundary);
        if (mark !== undefined) out[boundary] = mark;
      }
      return out as unknown as ExportProgressionEntry;
    });
  }

  /** {@inheritDoc StateStore.appendJournal} */
  appendJournal(entry: JournalEntry): Promise<void> {
    return attempt(() => {
      this.#conn.prepare(
        `INSERT INTO run_journal (run_id, export_name, finished_at, journal_json)
         VALUES (?, ?, ?, ?)`,
      ).run(
        entry.runId,
        entry.exportName,
        entry.finishedAt,
        JSON.stringify(entry.journal ?? null),
      );
    });
  }

  /** {@inheritDoc StateStore.listJournal} */
  listJournal(options: JournalListOptions): Promise<JournalEntry[]> {
    return attempt(() =>
      this.#history("run_journal", options, options.runId).map((row) => ({
        runId: text(row, "run_id"),
        exportName: text(row, "export_name"),
        finishedAt: text(row, "finished_at"),
        journal: JSON.parse(text(row, "journal_json")),
      }))
    );
  }

  /** {@inheritDoc StateStore.saveRunAggregate} */
  saveRunAggregate(entry: RunAggregateEntry): Promise<void> {
    return attempt(() => {
      this.#conn.prepare(
        `INSERT OR REPLACE INTO run_aggregate (run_aggregate_id, started_at, finished_at,
           duration_ms, config_path, parallel_mode, total_exports, success_count, failed_count,
           skipped_count, total_rows, total_files, total_bytes, details_json)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(
        entry.id,
        entry.startedAt,
        entry.finishedAt,
        entry.durationMs,
        entry.configPath ?? null,
        entry.parallelMode,
        entry.totalExports,
        entry.successCount,
        entry.failedCount,
        entry.skippedCount,
        entry.totalRows,
        entry.totalFiles,
        entry.totalBytes,
        JSON.stringify(entry.perExport),
      );
    });
  }

  /** {@inheritDoc StateStore.listRunAggregates} */
  listRunAggregates(options: Pick<ListOptions, "last">): Promise<RunAggregateEntry[]> {
    return attempt(() =>
      (this.#conn.prepare(
        "SELECT * FROM run_aggregate ORDER BY finished_at DESC, rowid DESC LIMIT ?",
      ).all(Math.max(0, Math.trunc(options.last))) as Row[]).map((row) => {
        const out: Record<string, unknown> = {
          id: text(row, "run_aggregate_id"),
          startedAt: text(row, "started_at"),
          finishedAt: text(row, "finished_at"),
          durationMs: num(row, "duration_ms"),
          parallelMode: text(row, "parallel_mode"),
          totalExports: num(row, "total_exports"),
          successCount: num(row, "success_count"),
          failedCount: num(row, "failed_count"),
          skippedCount: num(row, "skipped_count"),
          totalRows: num(row, "total_rows"),
          totalFiles: num(row, "total_files"),
          totalBytes: num(row, "total_bytes"),
          perExport: JSON.parse(text(row, "details_json")),
        };
        setIfPresent(out, "configPath", row.config_path);
        return out as unknown as RunAggregateEntry;
      })
    );
  }

  /** {@inheritDoc StateStore.close} */
  close(): Promise<void> {
    return attempt(() => {
      this.#db?.close();
      this.#db = undefined;
    });
  }

  /** Closes the store (`await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Recognises, opens read-write and migrates the file. The read-write open happens only after
 * {@linkcode recognise} accepted the file, so a foreign or corrupt file is never written.
 */
function openDatabase(path: string, options: Required<SqliteStateStoreOptions>): DatabaseSync {
  const found = recognise(path);
  if (found.kind === "rivet" && found.version > STATE_SCHEMA_VERSION) {
    throw tooNewError(path, found.version);
  }
  const db = new DatabaseSync(path);
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs))}`);
    db.exec("PRAGMA foreign_keys = ON");
    db.exec("PRAGMA journal_mode = WAL");
    // NORMAL is safe against application crashes in WAL mode; a power loss can drop only the
    // last commits, never corrupt the file.
    db.exec("PRAGMA synchronous = NORMAL");
    migrate(db, path);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

function checkMaxAttempts(maxAttempts: number): void {
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(`maxAttempts must be a positive integer, got ${maxAttempts}`);
  }
}

/** Applies the missing migrations, each in one transaction; re-checks the version under lock. */
function migrate(db: DatabaseSync, path: string): void {
  for (const migration of MIGRATIONS) {
    db.exec("BEGIN IMMEDIATE");
    try {
      const current = currentVersion(db);
      if (current > STATE_SCHEMA_VERSION) throw tooNewError(path, current);
      if (current >= migration.version) {
        db.exec("COMMIT");
        continue;
      }
      try {
        db.exec(migration.sql);
      } catch (error) {
        throw migrationError(path, { from: current, to: migration.version }, error);
      }
      db.prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)").run(
        migration.version,
        nowIso(),
      );
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }
}

function migrationError(
  path: string,
  versions: { readonly from: number; readonly to: number },
  cause: unknown,
): ConfigError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new ConfigError(
    `State file '${path}' could not be migrated from schema version ${versions.from} to ` +
      `${versions.to} (${why}); it was left at version ${versions.from}: move it aside to ` +
      "start with empty state",
    {
      code: "state.migration_failed",
      cause,
      hint: `keep a copy of '${path}' for a bug report, then rename it; every migration is ` +
        "atomic, so the file is exactly as the older rivet left it",
    },
  );
}

function currentVersion(db: DatabaseSync): number {
  const table = db.prepare(
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
  ).get();
  if (table === undefined) return 0;
  const row = db.prepare("SELECT MAX(version) AS v FROM schema_version").get() as Row;
  return row.v === null ? 0 : num(row, "v");
}

function partFromRow(row: Row): PartEntry {
  const out: Record<string, unknown> = {
    runId: text(row, "run_id"),
    exportName: text(row, "export_name"),
    fileName: text(row, "file_name"),
    rowCount: num(row, "row_count"),
    bytes: num(row, "bytes"),
    format: text(row, "format"),
    createdAt: text(row, "created_at"),
  };
  setIfPresent(out, "compression", row.compression);
  setIfPresent(out, "contentFingerprint", row.content_fingerprint);
  setIfPresent(out, "contentMd5", row.content_md5);
  setIfPresent(out, "chunkIndex", row.chunk_index, "int");
  setIfPresent(out, "partIndex", row.part_index, "int");
  setIfPresent(out, "status", row.status);
  return out as unknown as PartEntry;
}

function cursorFromRow(row: Row): CursorEntry {
  return {
    exportName: text(row, "export_name"),
    lastCursorValue: row.last_cursor_value === null ? null : text(row, "last_cursor_value"),
    lastRunAt: text(row, "last_run_at"),
  };
}

function taskFromRow(row: Row): ChunkTaskEntry {
  const out: Record<string, unknown> = {
    runId: text(row, "run_id"),
    chunkIndex: num(row, "chunk_index"),
    startKey: row.start_key === null ? null : text(row, "start_key"),
    endKey: row.end_key === null ? null : text(row, "end_key"),
    status: text(row, "status"),
    attempts: num(row, "attempts"),
    updatedAt: text(row, "updated_at"),
  };
  setIfPresent(out, "lastError", row.last_error);
  setIfPresent(out, "failure", row.failure);
  setIfPresent(out, "rowsWritten", row.rows_written, "int");
  setIfPresent(out, "fileName", row.file_name);
  return out as unknown as ChunkTaskEntry;
}

function progressionFromRow(
  row: Row,
  exportName: string,
  boundary: ProgressionBoundary,
): ProgressionEntry | undefined {
  const p = `last_${boundary}`;
  if (row[`${p}_run_id`] === null) return undefined;
  const out: Record<string, unknown> = {
    exportName,
    boundary,
    strategy: text(row, `${p}_strategy`),
    runId: text(row, `${p}_run_id`),
    at: text(row, `${p}_at`),
  };
  setIfPresent(out, "cursor", row[`${p}_cursor`]);
  setIfPresent(out, "chunkIndex", row[`${p}_chunk_index`], "int");
  return out as unknown as ProgressionEntry;
}
