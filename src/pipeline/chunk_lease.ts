/**
 * The chunk ledger shared by several processes on several hosts (a PostgreSQL state store):
 * each claim carries a lease that this process renews while the chunk runs, a process that runs
 * out of claimable tasks waits for the ones other hosts still hold (an expired lease hands the
 * task to it), and exactly one process finishes the run (the others wait until it did, and
 * take the finish over if it dies).
 *
 * The lease is a recovery aid, not a lock: a renewal that fails is reported and the chunk goes
 * on (a host that lost its lease may see its chunk run twice; both runs write the same file
 * names, and the file log keeps one of them).
 *
 * Layer: pipeline. Imports core/ and _util/ only.
 *
 * @module
 */
import type { EventSink } from "../core/events.ts";
import type { ChunkLedger, ChunkRefEntry, ChunkTaskEntry } from "../core/state.ts";
import { sleep } from "../_util/abort.ts";

/** What the lease helpers need. */
export interface LeaseContext {
  readonly ledger: ChunkLedger;
  /** The lease length: the ledger's `chunkLeaseMs`. */
  readonly leaseMs: number;
  readonly exportName: string;
  readonly emit: EventSink;
  readonly signal: AbortSignal;
}

/**
 * Renews the lease of a claimed task every third of the lease until the returned function is
 * called.
 *
 * @param ctx Ledger, lease, export, events.
 * @param task The claimed task.
 * @returns Stops the renewal.
 */
export function keepLease(ctx: LeaseContext, task: ChunkRefEntry): () => void {
  let warned = false;
  const lost = (why: string) => {
    if (warned) return;
    warned = true;
    ctx.emit({
      type: "warning",
      export: ctx.exportName,
      code: "chunk.lease_lost",
      message: `export '${ctx.exportName}': could not renew the lease of chunk ` +
        `${task.chunkIndex} (${why}); the chunk goes on, and another host may run it again`,
    });
  };
  const renew = async () => {
    if (await ctx.ledger.renewChunkLease(task, { leaseMs: ctx.leaseMs })) return;
    // Not renewed: this process finished with the task (completed, failed and waiting for its
    // retry, reopened), or another process holds it now.
    const now = (await ctx.ledger.listChunkTasks(task.runId))[task.chunkIndex];
    if (now?.status === "running") lost("another process holds it now");
  };
  return renewEvery(ctx.leaseMs, () => {
    renew().catch((error) => lost(error instanceof Error ? error.message : String(error)));
  });
}

/**
 * Claims a task, waiting while other processes still hold running ones: their leases either end
 * with the task completed or expire, and an expired task is claimable. Returns undefined once
 * nothing is running or claimable (the run is done, or its remaining tasks failed), or when the
 * signal aborts.
 *
 * @param ctx Ledger, lease, export, events, signal.
 * @param runId The run.
 */
export async function claimOrWait(
  ctx: LeaseContext,
  runId: string,
): Promise<ChunkTaskEntry | undefined> {
  let told = false;
  for (;;) {
    const task = await ctx.ledger.claimChunk(runId, { leaseMs: ctx.leaseMs });
    if (task || ctx.signal.aborted) return task;
    // A task whose lease expired with no attempt left is nobody's: the run ends without it.
    const now = new Date().toISOString();
    const running = (await ctx.ledger.listChunkTasks(runId)).filter((t) =>
      t.status === "running" && (t.leaseExpiresAt === undefined || t.leaseExpiresAt >= now)
    );
    if (running.length === 0) return undefined;
    if (!told) {
      told = true;
      const holders = [...new Set(running.map(holderOf))].join(", ");
      ctx.emit({
        type: "warning",
        export: ctx.exportName,
        code: "chunk.waiting",
        message: `export '${ctx.exportName}': no chunk left to claim; waiting for ` +
          `${running.length} chunk(s) held by ${holders} (a host that died is replaced when ` +
          "its lease expires)",
      });
    }
    await sleep(pollMs(ctx.leaseMs), ctx.signal);
  }
}

/**
 * Claims the finish of a run whose chunks are all completed. While another process holds it,
 * waits until that process completed the run, or its lease expired (it died) and the claim
 * succeeds here.
 *
 * @param ctx Ledger, lease, export, events, signal.
 * @param runId The run.
 * @returns Undefined when this process finishes the run, else who finished it (`host pid N`).
 */
export async function claimFinish(ctx: LeaseContext, runId: string): Promise<string | undefined> {
  for (;;) {
    const finisher = await ctx.ledger.claimChunkRunFinish(runId, { leaseMs: ctx.leaseMs });
    if (finisher.claimed) return undefined;
    const run = await ctx.ledger.latestChunkRun(ctx.exportName);
    if (run?.runId !== runId || run.status === "completed" || ctx.signal.aborted) {
      return holderOf(finisher);
    }
    await sleep(pollMs(ctx.leaseMs), ctx.signal);
  }
}

/**
 * Keeps the finish of a run this process claimed: renews its lease every third of the lease
 * until the returned function is called, so the others do not take over a slow finish (a
 * manifest of many parts, a slow destination).
 *
 * @param ctx Ledger, lease, export, events.
 * @param runId The run.
 * @returns Stops the renewal.
 */
export function keepFinish(ctx: LeaseContext, runId: string): () => void {
  return renewEvery(ctx.leaseMs, () => {
    ctx.ledger.claimChunkRunFinish(runId, { leaseMs: ctx.leaseMs }).catch(() => {
      // The next renewal tries again; a finish taken over is refused at completion time by
      // nothing worse than a second identical manifest.
    });
  });
}

/** Calls `renew` every third of the lease until the returned function is called. */
function renewEvery(leaseMs: number, renew: () => void): () => void {
  const timer = setInterval(renew, Math.max(1, Math.floor(leaseMs / 3)));
  return () => clearInterval(timer);
}

/** How often a waiting process asks the ledger again. */
function pollMs(leaseMs: number): number {
  return Math.min(1_000, Math.max(50, Math.floor(leaseMs / 4)));
}

/** `host pid N` of a task's claimer. */
export function holderOf(
  who: {
    readonly claimedByHost?: string;
    readonly host?: string;
    readonly claimedByPid?: number;
    readonly pid?: number;
  },
): string {
  const host = who.claimedByHost ?? who.host ?? "an unknown host";
  const pid = who.claimedByPid ?? who.pid;
  return pid === undefined ? host : `${host} pid ${pid}`;
}
