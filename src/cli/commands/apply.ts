/**
 * `rivet apply PLAN_FILE`: runs a plan artifact written by `rivet plan`. The artifact is read
 * (bounded) and verified (`src/pipeline/plan_artifact.ts`: format, version, integrity, age), its
 * source credentials must be recoverable (names of variables and files only), and every
 * incremental cursor must still be where the plan saw it; `--force` overrides the age and the
 * cursor, never the integrity. The exports are rebuilt from the artifact's config document (the
 * YAML is not read again), run one after another in wave order, and chunked exports replay the
 * recorded windows without boundary queries. State opens next to the recorded config path, or
 * next to the plan file when that folder is gone. Output and exit codes are `rivet run`'s.
 *
 * Layer: cli.
 *
 * @module
 */
import { dirname, resolve } from "node:path";
import { ConfigError, toErrorInfo } from "../../core/errors.ts";
import type { Outcome } from "../../core/events.ts";
import { checkRunnable, configFromDocument } from "../../config/mod.ts";
import { INPUT_LIMITS, readInputText } from "../../_util/input_file.ts";
import { openRunStateStore, stateOptions } from "../../engines/state.ts";
import { runResult, runSpec } from "../../engines/inline.ts";
import {
  canonicalJson,
  checkCredentials,
  checkCursorSnapshots,
  type PlanArtifact,
  presetOf,
  verifyPlan,
} from "../../pipeline/plan_artifact.ts";
import type { CommandContext } from "../main.ts";
import { reportError } from "../main.ts";
import { reportRunEnd, type RunEvents, startRunEvents, watchForNotifications } from "./run.ts";

/** Options parsed for `rivet apply`. */
export interface ApplyFlags {
  /** `--force`: apply an expired plan, or one whose cursor moved. */
  readonly force?: boolean;
}

/** A plan artifact is JSON of a few KB per export; this bounds a wrong path's read. */
const PLAN_MAX_BYTES = 16 * INPUT_LIMITS.config;

async function readPlan(path: string, signal: AbortSignal): Promise<string> {
  try {
    return await readInputText(path, { maxBytes: PLAN_MAX_BYTES, signal });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ConfigError(`plan file '${path}' not found`, {
        code: "plan.not_found",
        hint: "write one with `rivet plan -c rivet.yaml --format json -o plan.json`",
      });
    }
    if (error instanceof ConfigError && "about" in error) {
      throw (error as ConfigError & { about(s: string): ConfigError }).about(`plan file '${path}'`);
    }
    throw error;
  }
}

async function folderExists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** The config the artifact recorded, rebuilt from its document (never from the YAML). */
async function configOf(artifact: PlanArtifact, planPath: string) {
  const sources = new Set(artifact.exports.map((e) => canonicalJson(e.resolved_plan.source)));
  if (sources.size !== 1) {
    throw new ConfigError(`plan ${artifact.plan_id}: its exports name different sources`, {
      code: "plan.invalid",
      hint: "re-run `rivet plan`",
    });
  }
  const configPath = artifact.config_path;
  const dir = await folderExists(dirname(configPath))
    ? dirname(configPath)
    : dirname(resolve(planPath));
  const document = {
    ...artifact.settings,
    source: artifact.exports[0]!.resolved_plan.source,
    exports: artifact.exports.map((e) => e.resolved_plan.export),
  };
  try {
    return configFromDocument(document, { path: configPath, dir });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(`plan ${artifact.plan_id}: ${error.message}`, {
      code: error.code,
      hint: `${error.hint ? `${error.hint}; ` : ""}fix the config and re-run \`rivet plan\``,
    });
  }
}

/**
 * Runs `rivet apply`.
 *
 * @param planPath The artifact.
 * @param flags Parsed flags.
 * @param ctx Output and abort signal.
 * @returns `rivet run`'s exit code, or 1 for a refused plan.
 */
export async function applyCommand(
  planPath: string,
  flags: ApplyFlags,
  ctx: CommandContext,
): Promise<number> {
  const { io } = ctx;
  const force = flags.force === true;
  let finishEvents: RunEvents["finish"] | undefined;
  try {
    const text = await readPlan(planPath, ctx.signal);
    const { artifact, warnings } = await verifyPlan(text, { path: planPath, force });
    warnings.push(...checkCredentials(artifact));
    const config = await configOf(artifact, planPath);
    const exports = artifact.waves.flatMap((w) => w.exports).map((name) => {
      const spec = config.exports.find((e) => e.name === name);
      const planned = artifact.exports.find((e) => e.export_name === name);
      if (!spec || !planned) {
        throw new ConfigError(`plan ${artifact.plan_id}: wave export '${name}' is not planned`, {
          code: "plan.invalid",
          hint: "re-run `rivet plan`",
        });
      }
      return { spec, planned };
    });
    for (const w of checkRunnable(config, exports.map((e) => e.spec), { resume: false }).warnings) {
      warnings.push(w);
    }
    await using state = await openRunStateStore(config.dir, stateOptions(config));
    const cursors = new Map<string, string | null>();
    for (const { spec } of exports) {
      if (spec.mode === "incremental") {
        cursors.set(spec.name, (await state.readCursor(spec.name))?.lastCursorValue ?? null);
      }
    }
    warnings.push(...checkCursorSnapshots(artifact, (n) => cursors.get(n) ?? null, force));
    for (const w of warnings) io.err(`Warning: ${w}\n`);
    io.err(`Applying plan ${artifact.plan_id} (${exports.length} export(s))\n`);

    const run = startRunEvents({ config: config.path }, ctx, exports.map((e) => e.spec.name));
    finishEvents = run.finish;
    // The config's notifications fire as they do after `rivet run`.
    const { emit, notify } = watchForNotifications(config, run.emit);
    const startedAt = new Date();
    const outcomes: Outcome[] = [];
    for (const { spec, planned } of exports) {
      if (ctx.signal.aborted) break;
      const preset = presetOf(planned);
      outcomes.push(
        ...await runSpec(config, spec, {
          emit,
          signal: ctx.signal,
          params: {},
          cwd: Deno.cwd(),
          state,
          ...(preset ? { chunkPreset: preset } : {}),
        }),
      );
    }
    const result = runResult(outcomes, { startedAt, signal: ctx.signal });
    run.finish(result.exitCode, result.outcomes);
    return await reportRunEnd(result, config.dir, ctx, notify);
  } catch (error) {
    finishEvents?.(toErrorInfo(error).exitCode, []);
    return reportError(error, ctx);
  }
}
