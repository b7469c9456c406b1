/**
 * {@linkcode ChunkLedger} on PostgreSQL: `chunk_run` and `chunk_task`, shared by every process
 * on every host that runs the same plan. A claim is one `UPDATE` whose task is picked with
 * `SELECT … FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on each other and never
 * get the same task; the plan of an export is changed under a per-export advisory lock, so two
 * hosts starting a fresh run at once get the same `state.chunk_run_in_progress` as SQLite gives.
 *
 * Layer: state (private).
 *
 * @module
 */
import type { ChunkLedger } from "../core/state.ts";
import { claimer } from "./_claimer.ts";
import * as refuse from "./_errors.ts";
import type { PgQuery, PgStateConnection } from "./_pg_conn.ts";
import { checkMaxAttempts, finishDecision, RUN, TASK } from "./_sqlite_chunks.ts";
import { fromRow, nowIso, num, type Row, text } from "./_sqlite_rows.ts";

/**
 * Tasks a claim may take: pending, failed with attempts left, or running under a lease that
 * expired before `$2` (its claimer died) with attempts left, of a run in progress.
 */
const CLAIMABLE = `
  FROM chunk_task t JOIN chunk_run r ON r.run_id = t.run_id
  WHERE t.run_id = $1 AND r.status = 'in_progress'
    AND (t.status = 'pending' OR (t.status = 'failed' AND t.attempts < r.max_chunk_attempts)
      OR (t.status = 'running' AND t.lease_expires_at < $2
        AND t.attempts < r.max_chunk_attempts))`;

/** The lease of claims on a shared ledger when the opener names none. */
export const DEFAULT_CHUNK_LEASE_MS = 60_000;

/** Options of {@linkcode pgChunkLedger}. */
export interface PgChunkLedgerOptions {
  /** Lease of claims ({@linkcode DEFAULT_CHUNK_LEASE_MS} when omitted). */
  readonly leaseMs?: number;
}

/**
 * The chunk ledger role of a PostgreSQL store.
 *
 * @param conn The store's session.
 * @returns The role's methods, bound to `conn`.
 */
export function pgChunkLedger(
  conn: PgStateConnection,
  options: PgChunkLedgerOptions = {},
): ChunkLedger {
  const taskFromRow = (row: Row) => fromRow(row, TASK);
  return {
    chunkLeaseMs: options.leaseMs ?? DEFAULT_CHUNK_LEASE_MS,

    async saveChunkPlan(entry) {
      const at = entry.createdAt ?? nowIso();
      checkMaxAttempts(entry.maxAttempts);
      await conn.write(async (q) => {
        await lockExport(q, entry.exportName);
        const running = await runInProgress(q, entry.exportName);
        if (running !== undefined) throw refuse.chunkRunInProgress(entry.exportName, running);
        const same = await q.rows("SELECT 1 FROM chunk_run WHERE run_id = $1", [entry.runId]);
        if (same.length > 0) throw refuse.chunkRunExists(entry.runId);
        await q.exec(
          `INSERT INTO chunk_run (run_id, export_name, plan_hash, status, max_chunk_attempts,
             created_at, updated_at) VALUES ($1, $2, $3, 'in_progress', $4, $5, $5)`,
          [entry.runId, entry.exportName, entry.planHash, entry.maxAttempts, at],
        );
        // Every task in one statement: the windows travel as one JSON parameter.
        await q.exec(
          `INSERT INTO chunk_task (run_id, chunk_index, start_key, end_key, status, attempts,
             updated_at)
           SELECT $1, w.ord - 1, w.v ->> 0, w.v ->> 1, 'pending', 0, $2
           FROM json_array_elements($3::json) WITH ORDINALITY AS w(v, ord)`,
          [entry.runId, at, JSON.stringify(entry.tasks.map((t) => [t.startKey, t.endKey]))],
        );
      });
    },

    async claimChunk(runId, options) {
      const who = claimer(options);
      for (;;) {
        const [row] = await conn.run((q) =>
          q.rows(
            `UPDATE chunk_task c SET status = 'running', attempts = c.attempts + 1,
               failure = NULL, updated_at = $2, claimed_by_host = $3, claimed_by_pid = $4,
               lease_expires_at = $5
             FROM (SELECT t.run_id, t.chunk_index ${CLAIMABLE}
                   ORDER BY t.chunk_index LIMIT 1 FOR UPDATE OF t SKIP LOCKED) pick
             WHERE c.run_id = pick.run_id AND c.chunk_index = pick.chunk_index
             RETURNING c.*`,
            [runId, nowIso(), who.host, who.pid, who.leaseExpiresAt],
          )
        );
        if (row !== undefined) return taskFromRow(row);
        // None picked. Under READ COMMITTED a task a concurrent claim held while this one
        // looked is skipped: give up only when nothing claimable is left, locked or not.
        const left = await conn.run((q) =>
          q.rows(`SELECT 1 ${CLAIMABLE} LIMIT 1`, [runId, nowIso()])
        );
        if (left.length === 0) return undefined;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },

    completeChunk(entry) {
      // A kill before COMMIT must leave the task running (the `in_state_write` crash point).
      return conn.write(async (q) => {
        const changed = await q.exec(
          `UPDATE chunk_task SET status = 'completed', rows_written = $1, file_name = $2,
             last_error = NULL, failure = NULL, lease_expires_at = NULL, updated_at = $3
           WHERE run_id = $4 AND chunk_index = $5`,
          [entry.rowsWritten, entry.fileName ?? null, nowIso(), entry.runId, entry.chunkIndex],
        );
        if (changed === 0) throw refuse.unknownChunk(entry);
      }, { crashPoint: true });
    },

    async failChunk(entry) {
      // A permanent error pins attempts at the run's maximum, so the claim predicate (the one
      // place deciding eligibility) never hands the task out again.
      const pin = entry.retryable === false
        ? `, attempts = GREATEST(attempts,
             (SELECT max_chunk_attempts FROM chunk_run WHERE run_id = chunk_task.run_id))`
        : "";
      const failure = entry.retryable === false ? "permanent" : "transient";
      const changed = await conn.run((q) =>
        q.exec(
          `UPDATE chunk_task SET status = 'failed', last_error = $1, failure = $2,
             lease_expires_at = NULL, updated_at = $3${pin}
           WHERE run_id = $4 AND chunk_index = $5`,
          [entry.error, failure, nowIso(), entry.runId, entry.chunkIndex],
        )
      );
      if (changed === 0) throw refuse.unknownChunk(entry);
    },

    reopenChunk(entry) {
      const at = nowIso();
      return conn.write(async (q) => {
        const [run] = await q.rows(
          "SELECT export_name, status FROM chunk_run WHERE run_id = $1",
          [entry.runId],
        );
        if (run !== undefined) await lockExport(q, text(run, "export_name"));
        const changed = await q.exec(
          `UPDATE chunk_task SET status = 'pending', attempts = 0, rows_written = NULL,
             file_name = NULL, last_error = NULL, failure = NULL, claimed_by_host = NULL,
             claimed_by_pid = NULL, lease_expires_at = NULL, updated_at = $1
           WHERE run_id = $2 AND chunk_index = $3`,
          [at, entry.runId, entry.chunkIndex],
        );
        if (changed === 0 || run === undefined) throw refuse.unknownChunk(entry);
        if (text(run, "status") === "in_progress") return;
        // A completed run hands out nothing: reopen it too, unless the export has moved on to
        // another run in progress (the one-in-progress index would refuse it anyway).
        const exportName = text(run, "export_name");
        const other = await runInProgress(q, exportName);
        if (other !== undefined) throw refuse.chunkRunInProgress(exportName, other);
        await q.exec(
          "UPDATE chunk_run SET status = 'in_progress', updated_at = $1 WHERE run_id = $2",
          [at, entry.runId],
        );
      });
    },

    async renewChunkLease(entry, options) {
      const who = claimer(options);
      const changed = await conn.run((q) =>
        q.exec(
          `UPDATE chunk_task SET lease_expires_at = $1
           WHERE run_id = $2 AND chunk_index = $3 AND status = 'running'
             AND claimed_by_host IS NOT DISTINCT FROM $4 AND claimed_by_pid = $5`,
          [who.leaseExpiresAt, entry.runId, entry.chunkIndex, who.host, who.pid],
        )
      );
      return changed > 0;
    },

    resetRunningChunks(runId) {
      const at = nowIso();
      return conn.run((q) =>
        q.exec(
          `UPDATE chunk_task SET status = 'pending', claimed_by_host = NULL,
             claimed_by_pid = NULL, lease_expires_at = NULL, updated_at = $1
           WHERE run_id = $2 AND status = 'running'
             AND (lease_expires_at IS NULL OR lease_expires_at < $1)`,
          [at, runId],
        )
      );
    },

    claimChunkRunFinish(runId, options) {
      const who = claimer(options);
      const at = nowIso();
      // The run row is locked, so two finishers decide one after the other.
      return conn.write(async (q) => {
        const [run] = await q.rows(
          `SELECT status, finished_by_host, finished_by_pid, finish_lease_expires_at
           FROM chunk_run WHERE run_id = $1 FOR UPDATE`,
          [runId],
        );
        if (run === undefined) throw refuse.unknownChunkRun(runId);
        const decision = finishDecision(run, who, at);
        if (decision.claimed) {
          await q.exec(
            `UPDATE chunk_run SET finished_by_host = $1, finished_by_pid = $2,
               finish_lease_expires_at = $3 WHERE run_id = $4`,
            [who.host, who.pid, who.leaseExpiresAt, runId],
          );
        }
        return decision;
      });
    },

    completeChunkRun(runId) {
      const at = nowIso();
      // The run row is locked first, so no claim or reopen of its tasks can slip in between
      // the check and the mark.
      return conn.write(async (q) => {
        const run = await q.rows("SELECT 1 FROM chunk_run WHERE run_id = $1 FOR UPDATE", [runId]);
        if (run.length === 0) throw refuse.unknownChunkRun(runId);
        const unfinished = (await q.rows(
          `SELECT chunk_index FROM chunk_task WHERE run_id = $1 AND status <> 'completed'
           ORDER BY chunk_index`,
          [runId],
        )).map((row) => num(row, "chunk_index"));
        if (unfinished.length > 0) throw refuse.chunkRunIncomplete(runId, unfinished);
        await q.exec(
          `UPDATE chunk_run SET status = 'completed', updated_at = $1
           WHERE run_id = $2 AND status <> 'completed'`,
          [at, runId],
        );
      });
    },

    latestChunkRun: (exportName) =>
      conn.first(
        `SELECT * FROM chunk_run WHERE export_name = $1 ORDER BY created_at DESC, seq DESC LIMIT 1`,
        [exportName],
        (row) => fromRow(row, RUN),
      ),

    listChunkTasks: (runId) =>
      conn.list(
        "SELECT * FROM chunk_task WHERE run_id = $1 ORDER BY chunk_index",
        [runId],
        taskFromRow,
      ),

    resetChunks(exportName) {
      // chunk_task rows go with their run (ON DELETE CASCADE).
      return conn.write(async (q) => {
        await lockExport(q, exportName);
        return await q.exec("DELETE FROM chunk_run WHERE export_name = $1", [exportName]);
      });
    },
  };
}

/**
 * Serialises changes to the runs of one export across sessions until the transaction ends, so a
 * check for a run in progress and the insert after it cannot race another host.
 */
async function lockExport(q: PgQuery, exportName: string): Promise<void> {
  await q.rows("SELECT pg_advisory_xact_lock(hashtext('rivet.chunk_run'), hashtext($1))", [
    exportName,
  ]);
}

/** The id of the export's run in progress, if it has one (at most one: a unique index). */
async function runInProgress(q: PgQuery, exportName: string): Promise<string | undefined> {
  const [row] = await q.rows(
    "SELECT run_id FROM chunk_run WHERE export_name = $1 AND status = 'in_progress'",
    [exportName],
  );
  return row === undefined ? undefined : text(row, "run_id");
}
