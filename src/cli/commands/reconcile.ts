/**
 * `rivet reconcile -c FILE -e NAME`: the per-chunk COUNT(*) audit of a checkpointed chunked
 * export's latest run (`src/pipeline/reconcile.ts`). Pretty report on stdout, or the JSON report
 * (`--format json`, on stdout or in `-o PATH`) that `rivet repair --report` reads. Exit 3 when a
 * chunk mismatches; chunks that cannot be judged only warn.
 *
 * Also the setup `rivet repair` shares: config, export, job, state file and source connection.
 *
 * Layer: cli.
 *
 * @module
 */
import { ConfigError } from "../../core/errors.ts";
import type { EventSink } from "../../core/events.ts";
import type { ExportJob } from "../../core/job.ts";
import type { Source } from "../../core/source.ts";
import type { StateStore } from "../../core/state.ts";
import { loadConfig, selectExports } from "../../config/mod.ts";
import { resolveJob } from "../../plan/resolve.ts";
import { processEnv, threadOpeners } from "../../engines/openers.ts";
import { reconcileChunks, reconcileReportJson } from "../../pipeline/reconcile.ts";
import type { CommandContext } from "../main.ts";
import { reportError } from "../main.ts";
import { renderReconcilePretty } from "../render/reconcile.ts";
import { checkOutputFlags } from "../render/summary.ts";
import { parseParams } from "./run.ts";
import { openExistingState } from "./state.ts";

/** Options parsed for `rivet reconcile`. */
export interface ReconcileFlags {
  readonly config: string;
  /** `-e NAME` (required by the command line). */
  readonly export: string;
  readonly param?: readonly string[];
  readonly format?: "pretty" | "json";
  /** `-o PATH`: the JSON report goes there (requires `--format json`). */
  readonly output?: string;
}

/** What reconcile and repair work on: one export, its state and an open source. */
export interface Audit extends AsyncDisposable {
  readonly job: ExportJob;
  readonly state: StateStore;
  readonly source: Source;
  readonly cwd: string;
  readonly openers: ReturnType<typeof threadOpeners>;
  /** Prints each warning event on stderr. */
  readonly emit: EventSink;
}

/**
 * Loads the config, resolves the export, opens the existing state file and the source.
 *
 * @param flags `-c`, `-e`, `-p`.
 * @param ctx Output and abort signal.
 * @returns The audit context; dispose it to close the source and the state.
 */
export async function openAudit(
  flags: { config: string; export: string; param?: readonly string[] },
  ctx: CommandContext,
): Promise<Audit> {
  const params = parseParams(flags.param ?? []);
  const config = await loadConfig(flags.config, { params, signal: ctx.signal });
  for (const w of config.warnings) ctx.io.err(`Warning: ${w.message}\n`);
  const [spec] = selectExports(config, [flags.export]);
  const cwd = Deno.cwd();
  const job = await resolveJob(config, spec!, { params, cwd, env: processEnv });
  const state = await openExistingState(config);
  if (state === undefined) {
    throw new ConfigError(
      `export '${spec!.name}': no state file next to the config, so no chunk run is recorded`,
      {
        code: "reconcile.no_chunk_run",
        hint: "run the export (chunked, with chunk_checkpoint: true) first",
      },
    );
  }
  const emit: EventSink = (event) => {
    if (event.type === "warning") ctx.io.err(`Warning: ${event.message}\n`);
  };
  const openers = threadOpeners({ env: processEnv, cwd });
  let source: Source;
  try {
    source = await openers.source(job, {
      signal: ctx.signal,
      onWarning: (w) => ctx.io.err(`Warning: ${w.message}\n`),
    });
  } catch (error) {
    await state.close();
    throw error;
  }
  return {
    job,
    state,
    source,
    cwd,
    openers,
    emit,
    async [Symbol.asyncDispose]() {
      try {
        await source[Symbol.asyncDispose]();
      } finally {
        await state.close();
      }
    },
  };
}

/**
 * Writes a JSON report to `-o PATH` (saying so on stderr) or stdout.
 *
 * @param text The JSON text.
 * @param output `-o`, if given.
 * @param ctx Output.
 */
export async function writeJsonReport(
  text: string,
  output: string | undefined,
  ctx: CommandContext,
): Promise<void> {
  if (output === undefined) ctx.io.out(text);
  else {
    await Deno.writeTextFile(output, text);
    ctx.io.err(`report: ${output}\n`);
  }
}

/**
 * Runs `rivet reconcile`.
 *
 * @param flags Parsed flags.
 * @param ctx Output and abort signal.
 * @returns 3 when a chunk mismatches, 1 for config errors, 2 transient, else 0.
 */
export async function reconcileCommand(
  flags: ReconcileFlags,
  ctx: CommandContext,
): Promise<number> {
  try {
    checkOutputFlags(flags);
    await using audit = await openAudit(flags, ctx);
    const report = await reconcileChunks(audit.job, {
      state: audit.state,
      source: audit.source,
      emit: audit.emit,
      signal: ctx.signal,
    });
    if (flags.format === "json") {
      await writeJsonReport(
        JSON.stringify(reconcileReportJson(report), null, 2) + "\n",
        flags.output,
        ctx,
      );
    } else {
      ctx.io.out(renderReconcilePretty(report));
    }
    if (report.unknown > 0) {
      ctx.io.err(
        `Warning: export '${report.export}': ${report.unknown} chunk(s) could not be judged ` +
          "(no recorded row count, or the count failed); reconcile again to check them\n",
      );
    }
    return report.mismatched > 0 ? 3 : 0;
  } catch (error) {
    return reportError(error, ctx);
  }
}
