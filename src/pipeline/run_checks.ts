/**
 * The checks `rivet run --validate` and `--reconcile` make after an export succeeded: the
 * destination read back against the manifest the run just wrote (the same verification as
 * `rivet validate`), and the source's `COUNT(*)` of the base query against the rows committed.
 * A failed check keeps what was committed (it is durable and listed) and marks the outcome with
 * a data-integrity error, so the run exits 3.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import type { Destination } from "../core/destination.ts";
import { DataIntegrityError, toErrorInfo } from "../core/errors.ts";
import type { EventSink, Outcome, ReconcileResult } from "../core/events.ts";
import type { ExportJob } from "../core/job.ts";
import type { Source } from "../core/source.ts";
import type { StateStore } from "../core/state.ts";
import { countSql } from "../plan/chunks.ts";
import { dialectOf } from "../plan/dialect.ts";
import { redact } from "../_util/redact.ts";
import { crashPoint } from "../_util/test_hook.ts";
import { filesOfSuccessfulRuns } from "./leftovers.ts";
import { probeScalar } from "./probe.ts";
import { exportErrorInfo } from "./run_export.ts";
import { type ExportValidation, verifyDestination } from "./verify.ts";
import { unchecked } from "./validate_export.ts";

/** What the checks need from the run. */
export interface RunCheckContext {
  readonly job: ExportJob;
  /** `--validate` (also on with `--reconcile`). */
  readonly validate: boolean;
  readonly reconcile: boolean;
  /** The destination the run wrote to, still open. */
  readonly destination: Destination;
  /** Opens a new connection to the source (the count runs on its own short read). */
  readonly connect: () => Promise<Source>;
  readonly state: StateStore;
  readonly emit: EventSink;
  readonly signal: AbortSignal;
}

/**
 * Runs the post-run checks asked for on a successful outcome; any other outcome is returned as
 * it is.
 *
 * @param outcome The export's outcome.
 * @param ctx The job, flags, destination, connection factory, state, events.
 * @returns The outcome with `validated` / `reconcile` set, and a data-integrity error when a
 * check found the output wrong.
 */
export async function checkAfterRun(outcome: Outcome, ctx: RunCheckContext): Promise<Outcome> {
  if (!ctx.validate && !ctx.reconcile) return outcome;
  if (outcome.status !== "success" || outcome.error) return outcome;
  // Tests block here to change the output or the source between the export and its checks.
  await crashPoint("before_run_checks");
  const checked = await runChecks(outcome, ctx).catch((error) => {
    if (ctx.signal.aborted) return undefined;
    throw error;
  });
  // An interrupt during the checks leaves the export as it finished, unverified (the run
  // exits 130); a verdict is only given by checks that ran to their end.
  return ctx.signal.aborted || checked === undefined ? outcome : checked;
}

async function runChecks(outcome: Outcome, ctx: RunCheckContext): Promise<Outcome> {
  const name = ctx.job.spec.name;
  const failures: string[] = [];
  let result: Outcome = outcome;
  let committedRows = outcome.rows;
  if (ctx.destination.capabilities.persistent) {
    const report = await manifestPass(ctx);
    const validated = report.status === "passed";
    if (report.rowCount !== undefined) committedRows = report.rowCount;
    result = { ...result, validated };
    if (!validated) failures.push(`the destination does not match its manifest: ${why(report)}`);
  } else {
    ctx.emit({
      type: "warning",
      export: name,
      code: "validate.not_checkable",
      message: `export '${name}': --validate: a ${ctx.job.spec.destination.kind} destination ` +
        "keeps nothing to read back; only the parts were re-counted",
    });
  }
  if (ctx.reconcile) {
    const reconcile = await reconcileCount(ctx, committedRows);
    result = { ...result, reconcile };
    if (reconcile.status === "mismatch") {
      failures.push(
        `reconcile MISMATCH: the source query counts ${reconcile.sourceCount} rows but ` +
          `${committedRows} were committed (the COUNT(*) runs after the export, so rows written ` +
          "to the source meanwhile also make a mismatch)",
      );
    } else if (reconcile.status === "failed" || reconcile.status === "skipped") {
      ctx.emit({
        type: "warning",
        export: name,
        code: reconcile.status === "failed" ? "reconcile.count_failed" : "reconcile.skipped",
        message: `export '${name}': --reconcile ${reconcile.status}: ${reconcile.note}`,
      });
    }
  }
  if (failures.length === 0) return result;
  const error = new DataIntegrityError(`export '${name}': ${failures.join("; ")}`, {
    code: result.validated === false ? "validate.run_failed" : "reconcile.mismatch",
    hint: "the files are committed and listed in the manifest; check them with 'rivet validate' " +
      "and compare the source, then run the export again if they are short",
  });
  return { ...result, error: exportErrorInfo(name, error) };
}

/** The destination read back against its manifest, as `rivet validate` does it. */
async function manifestPass(ctx: RunCheckContext): Promise<ExportValidation> {
  const { spec } = ctx.job;
  try {
    const committedByRuns = await filesOfSuccessfulRuns(ctx.state, spec.name);
    return await verifyDestination(ctx.destination, {
      exportName: spec.name,
      readContent: true,
      signal: ctx.signal,
      committedByRuns,
    });
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    const info = toErrorInfo(error);
    return {
      ...unchecked(spec, "", "error", []),
      error: { code: info.code, message: redact(info.message), exitCode: info.exitCode },
    };
  }
}

/** A short account of what the manifest pass found wrong. */
function why(report: ExportValidation): string {
  if (report.error) return report.error.message;
  if (report.status === "no_manifest") return "no manifest.json was found";
  const problems = report.problems.slice(0, 3).map((p) => p.message);
  return problems.length > 0
    ? problems.join("; ") + (report.problems.length > 3 ? "; …" : "")
    : `status ${report.status}`;
}

/**
 * `SELECT COUNT(*)` of the export's base query on a new connection, compared with the rows
 * committed. Incremental and time_window exports are skipped: they export a slice of the base
 * query, which a count of the whole cannot match.
 */
async function reconcileCount(
  ctx: RunCheckContext,
  committedRows: number,
): Promise<ReconcileResult> {
  const { spec, baseSql, tuning, source } = ctx.job;
  if (spec.mode === "cdc") {
    return {
      status: "skipped",
      committedRows,
      note: "a cdc export writes the table's changes, not its rows, which a COUNT(*) cannot match",
    };
  }
  if (spec.mode === "incremental" || spec.mode === "time_window") {
    return {
      status: "skipped",
      committedRows,
      note: `${spec.mode} exports a slice of the query (${
        spec.mode === "incremental" ? "rows past the cursor" : "a moving time window"
      }), which a COUNT(*) of the whole query cannot match`,
    };
  }
  try {
    await using conn = await ctx.connect();
    const value = await probeScalar(conn, countSql(baseSql, { dialect: dialectOf(source.kind) }), {
      signal: ctx.signal,
      statementTimeoutS: tuning.statementTimeoutS,
    });
    const sourceCount = Number(value);
    if (value === undefined || !Number.isFinite(sourceCount)) {
      return { status: "failed", committedRows, note: "the COUNT(*) returned no number" };
    }
    return {
      status: sourceCount === committedRows ? "match" : "mismatch",
      sourceCount,
      committedRows,
    };
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    return {
      status: "failed",
      committedRows,
      note: `the COUNT(*) failed: ${redact(toErrorInfo(error).message)}`,
    };
  }
}
