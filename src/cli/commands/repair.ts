/**
 * `rivet repair -c FILE -e NAME [--report PATH] [--execute]`: re-exports the chunks a reconcile
 * flagged (`src/pipeline/repair.ts`). The plan comes from `--report` (the JSON of
 * `rivet reconcile --format json`; a report of another export is refused) or from a reconcile
 * made now. Without `--execute` it only prints the plan. Exit 0 when there is nothing to repair
 * or everything was repaired, 3 when a repair failed.
 *
 * Layer: cli.
 *
 * @module
 */
import { resolveDestination } from "../../plan/placeholders.ts";
import { destinationWarnings } from "../../core/events.ts";
import {
  latestAuditableRun,
  parseReconcileReport,
  reconcileChunks,
} from "../../pipeline/reconcile.ts";
import { checkReport, executeRepair, planRepair } from "../../pipeline/repair.ts";
import { runStartOf } from "../../pipeline/naming.ts";
import { INPUT_LIMITS, InputFileError, readInputText } from "../../_util/input_file.ts";
import { ConfigError } from "../../core/errors.ts";
import type { CommandContext } from "../main.ts";
import { reportError } from "../main.ts";
import { renderRepairJson, renderRepairPretty } from "../render/reconcile.ts";
import { checkOutputFlags } from "../render/summary.ts";
import { openAudit, writeJsonReport } from "./reconcile.ts";

/** Options parsed for `rivet repair`. */
export interface RepairFlags {
  readonly config: string;
  readonly export: string;
  readonly param?: readonly string[];
  /** `--report PATH`: the plan from this reconcile report instead of a reconcile now. */
  readonly report?: string;
  /** `--execute`: re-export the flagged chunks (default: dry run). */
  readonly execute?: boolean;
  readonly format?: "pretty" | "json";
  readonly output?: string;
}

/**
 * Runs `rivet repair`.
 *
 * @param flags Parsed flags.
 * @param ctx Output and abort signal.
 * @returns 0 nothing to repair or repaired, 3 a repair failed, 1 config errors.
 */
export async function repairCommand(flags: RepairFlags, ctx: CommandContext): Promise<number> {
  try {
    checkOutputFlags(flags);
    // A report that cannot be read fails before any connection is made.
    const fromFile = flags.report === undefined
      ? undefined
      : parseReconcileReport(await readReport(flags.report));
    await using audit = await openAudit(flags, ctx);
    const { job } = audit;
    const { run, chunking } = await latestAuditableRun(job, { ...audit, signal: ctx.signal });
    const report = fromFile ?? await reconcileChunks(job, {
      state: audit.state,
      source: audit.source,
      emit: audit.emit,
      signal: ctx.signal,
    });
    checkReport(report, job, run.planHash);
    let result = planRepair(report, await audit.state.listChunkTasks(report.runId));
    if (flags.execute && result.items.length > 0) {
      // The repaired files go where the audited run wrote: its start time fills {date}.
      const at = runStartOf(report.runId) ?? new Date();
      await using destination = await audit.openers.destination(
        resolveDestination(job.spec.destination, { exportName: job.spec.name, at }),
        { signal: ctx.signal, warn: destinationWarnings(audit.emit, job.spec.name) },
      );
      result = await executeRepair(job, result, chunking, {
        state: audit.state,
        format: await audit.openers.format(job.spec.format),
        destination,
        connect: () => audit.openers.source(job, { signal: ctx.signal }),
        emit: audit.emit,
        signal: ctx.signal,
      });
    }
    if (flags.format === "json") await writeJsonReport(renderRepairJson(result), flags.output, ctx);
    else ctx.io.out(renderRepairPretty(result));
    const failed = result.items.filter((i) => i.status === "failed");
    for (const item of failed) {
      ctx.io.err(`Error: ${item.error?.message ?? `chunk ${item.chunkIndex} failed`}\n`);
    }
    if (ctx.signal.aborted) return 130;
    return failed.length > 0 ? 3 : 0;
  } catch (error) {
    return reportError(error, ctx);
  }
}

/** The text of `--report PATH`: a regular file within its size cap. */
async function readReport(path: string): Promise<string> {
  try {
    return await readInputText(path, { maxBytes: INPUT_LIMITS.reconcileReport });
  } catch (error) {
    if (error instanceof InputFileError) throw error.about(`--report '${path}'`);
    if (error instanceof Deno.errors.NotFound) {
      throw new ConfigError(`--report '${path}' does not exist`, {
        code: "config.not_found",
        hint: "write it with: rivet reconcile -c <config> -e <export> --format json -o PATH",
      });
    }
    throw error;
  }
}
