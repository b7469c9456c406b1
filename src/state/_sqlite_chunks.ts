/**
 * {@linkcode ChunkLedger} on SQLite: `chunk_run` and `chunk_task`. Every check-then-change is one
 * `BEGIN IMMEDIATE` transaction, so connections in other threads or processes serialise on the
 * write lock and never see a half-made change.
 *
 * Layer: state (private).
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import type {
  ChunkFinishClaim,
  ChunkLedger,
  ChunkRunEntry,
  ChunkTaskEntry,
} from "../core/state.ts";
import {
  chunkRunExists,
  chunkRunIncomplete,
  chunkRunInProgress,
  unknownChunk,
  unknownChunkRun,
} from "./_errors.ts";
import { type Claimer, claimer } from "./_claimer.ts";
import type { SqliteConnection } from "./_sqlite_conn.ts";
import { fromRow, nowIso, num, type Row, table, text } from "./_sqlite_rows.ts";

export const RUN = table<ChunkRunEntry>({
  text: ["runId", "exportName", "planHash", "status", "createdAt", "updatedAt"],
  int: ["maxAttempts"],
  rename: { maxAttempts: "max_chunk_attempts" },
});

/** The optional columns are set only while they mean something (a failure, a result). */
export const TASK = table<ChunkTaskEntry>({
  text: ["runId", "startKey", "endKey", "status", "updatedAt"],
  int: ["chunkIndex", "attempts"],
  optional: {
    text: ["lastError", "failure", "fileName", "claimedByHost", "leaseExpiresAt"],
    int: ["rowsWritten", "claimedByPid"],
  },
});

/**
 * The chunk ledger role of a SQLite store.
 *
 * @param conn The store's connection.
 * @returns The role's methods, bound to `conn`.
 */
export function sqliteChunkLedger(conn: SqliteConnection): ChunkLedger {
  const taskFromRow = (row: Row) => fromRow(row, TASK);
  return {
    saveChunkPlan(entry) {
      const at = entry.createdAt ?? nowIso();
      return conn.write((db) => {
        checkMaxAttempts(entry.maxAttempts);
        const running = runInProgress(db, entry.exportName);
        if (running !== undefined) throw chunkRunInProgress(entry.exportName, running);
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
    },

    async claimChunk(runId, options) {
      const who = claimer(options);
      // BEGIN IMMEDIATE takes the write lock before the SELECT inside the UPDATE, so two
      // connections serialise here and never pick the same task.
      const row = await conn.write((db) =>
        db.prepare(
          `UPDATE chunk_task SET status = 'running', attempts = attempts + 1, failure = NULL,
             updated_at = ?, claimed_by_host = ?, claimed_by_pid = ?, lease_expires_at = ?
           WHERE run_id = ? AND chunk_index = (
             SELECT t.chunk_index FROM chunk_task t JOIN chunk_run r ON r.run_id = t.run_id
             WHERE t.run_id = ? AND r.status = 'in_progress'
               AND (t.status = 'pending'
                 OR (t.status = 'failed' AND t.attempts < r.max_chunk_attempts)
                 OR (t.status = 'running' AND t.lease_expires_at < ?
                   AND t.attempts < r.max_chunk_attempts))
             ORDER BY t.chunk_index LIMIT 1)
           RETURNING *`,
        ).get(nowIso(), who.host, who.pid, who.leaseExpiresAt, runId, runId, nowIso()) as
          | Row
          | undefined
      );
      return row === undefined ? undefined : taskFromRow(row);
    },

    completeChunk(entry) {
      // A kill before COMMIT must leave the task running (the `in_state_write` crash point).
      return conn.write((db) => {
        const result = db.prepare(
          `UPDATE chunk_task SET status = 'completed', rows_written = ?, file_name = ?,
             last_error = NULL, failure = NULL, lease_expires_at = NULL, updated_at = ? WHERE run_id = ? AND chunk_index = ?`,
        ).run(entry.rowsWritten, entry.fileName ?? null, nowIso(), entry.runId, entry.chunkIndex);
        if (Number(result.changes) === 0) throw unknownChunk(entry);
      }, { crashPoint: true });
    },

    failChunk(entry) {
      // A permanent error pins attempts at the run's maximum, so the claim predicate (the one
      // place deciding eligibility) never hands the task out again.
      const pin = entry.retryable === false
        ? `, attempts = MAX(attempts,
             (SELECT max_chunk_attempts FROM chunk_run WHERE run_id = chunk_task.run_id))`
        : "";
      return conn.run((db) => {
        const result = db.prepare(
          `UPDATE chunk_task SET status = 'failed', last_error = ?, failure = ?,
             lease_expires_at = NULL, updated_at = ?${pin}
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
    },

    reopenChunk(entry) {
      const at = nowIso();
      return conn.write((db) => {
        const result = db.prepare(
          `UPDATE chunk_task SET status = 'pending', attempts = 0, rows_written = NULL,
             file_name = NULL, last_error = NULL, failure = NULL, claimed_by_host = NULL,
             claimed_by_pid = NULL, lease_expires_at = NULL, updated_at = ?
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
        const other = runInProgress(db, exportName);
        if (other !== undefined) throw chunkRunInProgress(exportName, other);
        db.prepare("UPDATE chunk_run SET status = 'in_progress', updated_at = ? WHERE run_id = ?")
          .run(at, entry.runId);
      });
    },

    renewChunkLease(entry, options) {
      const who = claimer(options);
      return conn.run((db) =>
        Number(
          db.prepare(
            `UPDATE chunk_task SET lease_expires_at = ?
             WHERE run_id = ? AND chunk_index = ? AND status = 'running'
               AND claimed_by_host IS ? AND claimed_by_pid = ?`,
          ).run(who.leaseExpiresAt, entry.runId, entry.chunkIndex, who.host, who.pid).changes,
        ) > 0
      );
    },

    resetRunningChunks(runId) {
      const at = nowIso();
      return conn.run((db) =>
        Number(
          db.prepare(
            `UPDATE chunk_task SET status = 'pending', claimed_by_host = NULL,
               claimed_by_pid = NULL, lease_expires_at = NULL, updated_at = ?
             WHERE run_id = ? AND status = 'running'
               AND (lease_expires_at IS NULL OR lease_expires_at < ?)`,
          ).run(at, runId, at).changes,
        )
      );
    },

    claimChunkRunFinish(runId, options) {
      const who = claimer(options);
      const at = nowIso();
      return conn.write((db) => {
        const run = db.prepare(
          `SELECT status, finished_by_host, finished_by_pid, finish_lease_expires_at
           FROM chunk_run WHERE run_id = ?`,
        ).get(runId) as Row | undefined;
        if (run === undefined) throw unknownChunkRun(runId);
        const decision = finishDecision(run, who, at);
        if (decision.claimed) {
          db.prepare(
            `UPDATE chunk_run SET finished_by_host = ?, finished_by_pid = ?,
               finish_lease_expires_at = ? WHERE run_id = ?`,
          ).run(who.host, who.pid, who.leaseExpiresAt, runId);
        }
        return decision;
      });
    },

    completeChunkRun(runId) {
      const at = nowIso();
      // Check and mark under one write lock, so no task can change in between.
      return conn.write((db) => {
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
    },

    latestChunkRun(exportName) {
      const sql = "SELECT * FROM chunk_run WHERE export_name = ? " +
        "ORDER BY created_at DESC, rowid DESC LIMIT 1";
      return conn.first(sql, [exportName], (row) => fromRow(row, RUN));
    },

    listChunkTasks(runId) {
      const sql = "SELECT * FROM chunk_task WHERE run_id = ? ORDER BY chunk_index";
      return conn.list(sql, [runId], taskFromRow);
    },

    resetChunks(exportName) {
      // chunk_task rows go with their run (ON DELETE CASCADE, foreign_keys is on).
      return conn.write((db) =>
        Number(db.prepare("DELETE FROM chunk_run WHERE export_name = ?").run(exportName).changes)
      );
    },
  };
}

/**
 * Whether a claimer takes the finish of a run: nobody holds it, its lease expired, or the
 * claimer holds it already; never once the run is completed.
 *
 * @param run The run row (`status` and the `finished_by_*` columns).
 * @param who The claimer.
 * @param at The claim time (ISO).
 */
export function finishDecision(run: Row, who: Claimer, at: string): ChunkFinishClaim {
  const host = run.finished_by_host === null || run.finished_by_host === undefined
    ? undefined
    : text(run, "finished_by_host");
  const pid = run.finished_by_pid === null || run.finished_by_pid === undefined
    ? undefined
    : num(run, "finished_by_pid");
  const expires = run.finish_lease_expires_at;
  const holder = { ...(host === undefined ? {} : { host }), ...(pid === undefined ? {} : { pid }) };
  if (text(run, "status") === "completed") return { claimed: false, ...holder };
  const mine = pid === who.pid && (host ?? null) === who.host;
  const free = pid === undefined || (typeof expires === "string" && expires < at);
  if (mine || free) {
    return { claimed: true, ...(who.host === null ? {} : { host: who.host }), pid: who.pid };
  }
  return { claimed: false, ...holder };
}

/** The id of the export's run in progress, if it has one (at most one: a unique index). */
function runInProgress(db: DatabaseSync, exportName: string): string | undefined {
  const row = db.prepare(
    "SELECT run_id FROM chunk_run WHERE export_name = ? AND status = 'in_progress'",
  ).get(exportName) as Row | undefined;
  return row === undefined ? undefined : text(row, "run_id");
}

/** Refuses a `maxAttempts` that is not a positive integer (a programmer error). */
export function checkMaxAttempts(maxAttempts: number): void {
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(`maxAttempts must be a positive integer, got ${maxAttempts}`);
  }
}
