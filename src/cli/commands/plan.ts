/**
 * `rivet plan`: what a run of the selected exports would do, computed without writing data or
 * state, as a sealed artifact (`src/pipeline/plan_artifact.ts`) that `rivet apply` runs. Pretty
 * summary on stdout by default; `--format json` prints the artifact, `-o PATH` writes it (one
 * artifact for the whole selection).
 *
 * Layer: cli.
 *
 * @module
 */
import type { ExportJob } from "../../core/job.ts";
import { VERSION } from "../../core/version.ts";
import { checkRunnable, type JsonValue, loadConfig, selectExports } from "../../config/mod.ts";
import { resolveJob } from "../../plan/resolve.ts";
import { readJobCursor } from "../../pipeline/cursor_identity.ts";
import { openSource } from "../../sources/mod.ts";
import { processEnv } from "../../engines/openers.ts";
import {
  computeExportPlan,
  type JsonRecord,
  type PlannedExport,
  planWaves,
  sealPlan,
  stripSecrets,
} from "../../pipeline/plan_artifact.ts";
import type { CommandContext } from "../main.ts";
import { reportError } from "../main.ts";
import { formatCheck } from "../probe_checks.ts";
import { renderPlanPretty } from "../render/plan.ts";
import { checkOutputFlags, checkOutputPath, writeFileReplacing } from "../render/summary.ts";
import { parseParams } from "./run.ts";
import { openExistingState } from "./state.ts";
import type { ValidateFlags } from "./validate.ts";

/** Options parsed for `rivet plan`: `rivet validate`'s selection and output flags. */
export type PlanFlags = Pick<ValidateFlags, "config" | "export" | "param" | "format" | "output">;

function asRecord(value: JsonValue | undefined): JsonRecord {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? { ...(value as JsonRecord) }
    : {};
}

/**
 * The document of one export as the job resolved it: `query_file` replaced by the text plan
 * read (apply runs the query plan saw, not whatever the file holds by then), a local
 * destination's folder absolute (apply writes where plan would have, from any directory).
 */
function exportDocument(root: JsonRecord, job: ExportJob): JsonRecord {
  const { spec } = job;
  const list = Array.isArray(root.exports) ? root.exports : [];
  const doc = asRecord(list[spec.index] as JsonValue | undefined);
  if (spec.query.kind === "query_file") {
    delete doc.query_file;
    doc.query = job.baseSql;
  }
  if (spec.destination.kind === "local" && spec.destination.path !== undefined) {
    const { prefix: _p, ...destination } = asRecord(doc.destination as JsonValue);
    doc.destination = { ...destination, path: spec.destination.path };
  }
  return doc;
}

/**
 * Runs `rivet plan`.
 *
 * @param flags Parsed flags.
 * @param ctx Output and abort signal.
 * @returns 0, or the class of the error that stopped the plan.
 */
export async function planCommand(flags: PlanFlags, ctx: CommandContext): Promise<number> {
  try {
    checkOutputFlags(flags, "summary");
    if (flags.output !== undefined) await checkOutputPath(flags.output, "--output");
    const params = parseParams(flags.param ?? []);
    let root: JsonRecord = {};
    const config = await loadConfig(flags.config, {
      params,
      signal: ctx.signal,
      onDocument: (doc) => {
        root = asRecord(doc);
      },
    });
    for (const w of config.warnings) ctx.io.err(`Warning: ${w.message}\n`);
    const exports = selectExports(config, flags.export ?? []);
    // The same gate as `rivet run`: what run would refuse, plan refuses.
    for (const w of checkRunnable(config, exports, { resume: false }).warnings) {
      ctx.io.err(`Warning: ${w}\n`);
    }
    const cwd = Deno.cwd();
    const planned: PlannedExport[] = [];
    // Plan reads state and never creates it.
    const state = await openExistingState(config);
    try {
      for (const spec of exports) {
        const job = await resolveJob(config, spec, { params, cwd, env: processEnv });
        await using source = await openSource(job.source, job.connection, { signal: ctx.signal });
        planned.push(
          await computeExportPlan(job, {
            source,
            // The run's own reading: a cursor of other data stops the plan as it would the run.
            cursor: spec.mode === "incremental" && state !== undefined
              ? await readJobCursor(state, job)
              : undefined,
            document: {
              source: asRecord(root.source as JsonValue),
              export: exportDocument(root, job),
            },
            signal: ctx.signal,
            checkSchema: formatCheck(job),
          }),
        );
      }
    } finally {
      await state?.close();
    }
    const { source: _s, exports: _e, ...rest } = root;
    const settings = stripSecrets(rest, "");
    const artifact = await sealPlan({
      rivet_version: VERSION,
      plan_id: crypto.randomUUID(),
      config_path: config.path,
      settings: settings.document,
      settings_stripped: settings.stripped.map((p) => p.replace(/^\./, "")),
      exports: planned,
      waves: planWaves(exports.map((e) => e.name), config.parallelExports),
    });
    if (flags.format !== "json") {
      ctx.io.out(renderPlanPretty(artifact));
      return 0;
    }
    const text = JSON.stringify(artifact, null, 2) + "\n";
    if (flags.output === undefined) ctx.io.out(text);
    else {
      await writeFileReplacing(flags.output, text);
      ctx.io.err(`plan: ${flags.output} (apply with: rivet apply ${flags.output})\n`);
    }
    return 0;
  } catch (error) {
    return reportError(error, ctx);
  }
}
