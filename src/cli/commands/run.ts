/**
 * `rivet run`: load the config, run the selected exports, print the summary, write the reports.
 *
 * Layer: cli.
 *
 * @module
 */
import { ConfigError, type ExitCode, toErrorInfo } from "../../core/errors.ts";
import type { EventSink, Outcome, RivetEvent } from "../../core/events.ts";
import type { ConfigSpec, ExportSpec } from "../../core/spec.ts";
import { checkGrants, type OperatorGrants, parseGrants } from "../../engines/grants.ts";
import { planNeeds } from "../../engines/permissions.ts";
import { processEnv } from "../../engines/openers.ts";
import { checkRunnable, loadConfig, selectExports } from "../../config/mod.ts";
import { exportPrefix, prefixOnce } from "../../_util/text.ts";
import { runExports, type RunResult } from "../../engines/inline.ts";
import { runExportsConcurrently, selectParallelMode } from "../../engines/concurrent.ts";
import { runExportsInProcesses } from "../../engines/subprocess.ts";
import { runExportsInWorkers } from "../../engines/export_worker.ts";
import type { CommandContext, RunFlags } from "../main.ts";
import { formatErrors, reportError } from "../main.ts";
import { NotificationWatch, sendNotifications } from "../../pipeline/notify.ts";
import { oncePerRun } from "../../pipeline/run_warnings.ts";
import {
  aggregateJson,
  checkOutputPath,
  exportSummaryJson,
  writeFileReplacing,
  writeRunReports,
} from "../render/summary.ts";
import { eventToNdjson } from "../render/ndjson.ts";
import { createProgressRenderer } from "../render/progress.ts";

/**
 * Parses `-p KEY=VALUE` flags.
 *
 * @param values The raw flag values.
 * @returns A map of parameters.
 */
export function parseParams(values: readonly string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const value of values) {
    const eq = value.indexOf("=");
    if (eq <= 0) {
      throw new ConfigError(`--param '${value}' is not KEY=VALUE`, {
        code: "cli.bad_param",
        hint: "write it as -p day=2026-01-31",
      });
    }
    params[value.slice(0, eq)] = value.slice(eq + 1);
  }
  return params;
}

/**
 * Runs `rivet run`.
 *
 * @param flags Parsed flags.
 * @param outerCtx Output and abort signal.
 * @returns The exit code.
 */
export async function runCommand(flags: RunFlags, outerCtx: CommandContext): Promise<number> {
  // A process-mode child reports through its events, which its parent draws: its own human
  // output is off, and its stderr keeps only what escapes them (errors before the run, panics).
  const ctx = flags.processChild
    ? { ...outerCtx, io: { ...outerCtx.io, err: () => {}, errIsTerminal: false } }
    : outerCtx;
  const { io } = ctx;
  let run: RunEvents | undefined;
  try {
    const params = parseParams(flags.param ?? []);
    const config = await loadConfig(flags.config, { params, signal: ctx.signal });
    for (const w of config.warnings) io.err(`Warning: ${w.message}\n`);
    const exports = selectExports(config, flags.export ?? []);
    const parallel = selectParallelMode(config, {
      parallelExportsFlag: flags.parallelExports === true,
      parallelProcessesFlag: flags.parallelExportProcesses === true,
      exportSelected: (flags.export ?? []).length > 0,
      exportCount: exports.length,
    });
    if (parallel.ignoredFlag) {
      io.err("Warning: parallel flags are ignored with --export or fewer than 2 exports\n");
    }
    // The same judgement as `rivet doctor` and the library's runExports.
    for (const w of checkRunnable(config, exports, { resume: flags.resume === true }).warnings) {
      io.err(`Warning: ${w}\n`);
    }
    if (flags.force && !flags.resume) {
      io.err("Warning: --force without --resume is a no-op\n");
    }
    if (flags.json && exports.some((e) => e.destination.kind === "stdout")) {
      throw new ConfigError(
        "--json cannot be combined with a stdout destination: both write to stdout",
        {
          code: "cli.json_with_stdout",
          hint: "use --summary-output PATH instead",
        },
      );
    }
    if (flags.events !== undefined) {
      if (flags.json) {
        throw new ConfigError("--events ndjson cannot be combined with --json: both use stdout", {
          code: "cli.events_with_json",
          hint: "drop --json and use --summary-output PATH for the summary",
        });
      }
      const onStdout = exports.find((e) => e.destination.kind === "stdout");
      if (onStdout) {
        throw new ConfigError(
          `--events ndjson cannot be combined with export '${onStdout.name}', whose destination ` +
            "is stdout: both use stdout",
          {
            code: "cli.events_with_stdout",
            hint: "write that export to a local or cloud destination, or drop --events",
          },
        );
      }
    }

    if (flags.summaryOutput) await checkOutputPath(flags.summaryOutput, "--summary-output");
    const sandbox = await sandboxOf(flags, config, exports, params);

    run = startRunEvents(flags, ctx, exports.map((e) => e.name));
    // Notifications go from this process only: a process-mode child's events reach its parent.
    const { emit, notify } = watchForNotifications(
      flags.processChild ? undefined : config,
      run.emit,
    );
    const engine = {
      emit,
      signal: ctx.signal,
      params,
      cwd: Deno.cwd(),
      resume: flags.resume === true,
      force: flags.force === true,
      // --reconcile implies --validate.
      validate: flags.validate === true || flags.reconcile === true,
      reconcile: flags.reconcile === true,
    };
    const grants = sandbox.grants ? { grants: sandbox.grants } : {};
    const result = flags.processChild === "worker"
      ? await runExportsInWorkers(config, exports, { ...engine, ...grants })
      : flags.processChild === "flags"
      // Narrowed by Deno's own flags already.
      ? await runExports(config, exports, engine)
      : parallel.mode === "parallel-processes"
      ? await runExportsInProcesses(config, exports, {
        ...engine,
        configPath: config.path,
        sandbox: sandbox.on,
        ...grants,
      })
      : sandbox.on
      ? await runExportsInWorkers(config, exports, {
        ...engine,
        ...grants,
        concurrent: parallel.mode === "parallel-threads",
      })
      : parallel.mode === "parallel-threads"
      ? await runExportsConcurrently(config, exports, engine)
      : await runExports(config, exports, engine);
    run.finish(result.exitCode, result.outcomes);

    const aggregate = aggregateJson(result, {
      configPath: config.path,
      parallelMode: parallel.mode,
    });
    const text = JSON.stringify(aggregate, null, 2) + "\n";
    if (flags.json) io.out(text);
    if (flags.summaryOutput) await writeFileReplacing(flags.summaryOutput, text);
    const code = await reportRunEnd(result, config.dir, ctx, notify);
    if (flags.report && !flags.processChild) await writeRunPage(config, result.outcomes, code, ctx);
    return code;
  } catch (error) {
    // The live block ends before the error prints; an event reader still gets run_finished.
    const info = toErrorInfo(error);
    run?.finish(info.exitCode, []);
    // A process-mode child stopped by its parent before its run began has nothing to say: the
    // parent reports the export as interrupted. Any other early error still reaches its stderr.
    if (flags.processChild && info.exitCode === 130) return 130;
    return reportError(error, outerCtx);
  }
}

/**
 * Whether the run is sandboxed (each export in a worker allowed only what it needs) and the
 * operator's `--allow-*` grants, checked against everything the run needs before anything starts.
 * On by default in a compiled binary, whose own permissions are fixed broad when it is built.
 */
async function sandboxOf(
  flags: RunFlags,
  config: ConfigSpec,
  exports: readonly ExportSpec[],
  params: Readonly<Record<string, string>>,
): Promise<{ on: boolean; grants?: OperatorGrants }> {
  const cwd = Deno.cwd();
  const grants = parseGrants({
    net: flags.allowNet,
    read: flags.allowRead,
    write: flags.allowWrite,
    env: flags.allowEnv,
  }, cwd);
  if (grants === undefined) return { on: flags.sandbox ?? Deno.build.standalone };
  if (flags.sandbox === false) {
    throw new ConfigError("--no-sandbox cannot be combined with --allow-* flags", {
      code: "cli.sandbox_conflict",
      hint: "the --allow-* flags narrow the sandbox's workers: drop --no-sandbox, or drop them",
    });
  }
  await checkGrants(await planNeeds(config, exports, { cwd, env: processEnv, params }), grants);
  return { on: true, grants };
}

/** What {@linkcode reportRunEnd} needs to send the config's notifications. */
export interface RunNotify {
  readonly notifications: ConfigSpec["notifications"];
  readonly watch: NotificationWatch;
}

/**
 * The run's event sink, watched for what the config's notifications report (failures, schema
 * changes, degradations) when it has any.
 *
 * @param config The config, or undefined when this process sends no notification.
 * @param emit The run's sink.
 * @returns The sink to give the engines, and what {@linkcode reportRunEnd} needs.
 */
export function watchForNotifications(
  config: Pick<ConfigSpec, "notifications"> | undefined,
  emit: EventSink,
): { emit: EventSink; notify?: RunNotify } {
  if (!config?.notifications) return { emit };
  const watch = new NotificationWatch();
  return {
    emit: (event) => (watch.observe(event), emit(event)),
    notify: { watch, notifications: config.notifications },
  };
}

/**
 * The end of a run on stderr: the report paths (`.rivet/runs/<run_id>/`), the notifications
 * (sent after the reports, so a receiver can fetch them), then every failed export's error with
 * its hint.
 *
 * @param result The run's outcomes and exit code.
 * @param configDir The folder the reports go to.
 * @param ctx Output and `--json-errors`.
 * @param notify The config's notifications and what the run's events showed, when this process
 *   sends them (not a process-mode child).
 * @returns The run's exit code.
 */
export async function reportRunEnd(
  result: RunResult,
  configDir: string,
  ctx: CommandContext,
  notify?: RunNotify,
): Promise<ExitCode> {
  for (const path of await writeRunReports(configDir, result.outcomes)) {
    ctx.io.err(`report: ${path}\n`);
  }
  if (notify?.notifications) {
    await sendNotifications(notify.notifications, result.outcomes, notify.watch, {
      summarize: exportSummaryJson,
      env: readEnv,
      warn: (w) => ctx.io.err(`Warning: ${w.message}\n`),
      // After Ctrl-C, a receiver gets a few seconds, not the whole deadline.
      ...(ctx.signal.aborted ? { maxDeadlineMs: 5_000 } : {}),
    });
  }
  const failures = result.outcomes.flatMap((o) =>
    o.error ? [{ ...o.error, message: prefixOnce(exportPrefix(o.export), o.error.message) }] : []
  );
  if (failures.length > 0) {
    ctx.io.err(formatErrors(failures, { jsonErrors: ctx.jsonErrors, exitCode: result.exitCode }));
  }
  return result.exitCode;
}

/** An environment variable, or undefined when unset or not readable. */
function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** The run's event sink and its end. */
export interface RunEvents {
  readonly emit: EventSink;
  /** Closes the progress renderer and, with `--events`, writes `run_finished`. Idempotent. */
  readonly finish: (exitCode: ExitCode, outcomes: readonly Outcome[]) => void;
}

/**
 * Starts the run's event sink: the progress renderer owns stderr (live on a terminal), and with
 * `--events ndjson` every event also goes to stdout as one line, opened by `run_started`.
 */
export function startRunEvents(
  flags: RunFlags,
  ctx: CommandContext,
  exports: readonly string[],
): RunEvents {
  const { io } = ctx;
  const tty = io.errIsTerminal && io.errRaw !== undefined;
  let columns: number | undefined;
  try {
    if (tty) columns = Deno.consoleSize().columns;
  } catch {
    // Not a console after all (e.g. redirected meanwhile): keep the default width.
  }
  const renderer = createProgressRenderer({
    tty,
    write: tty && io.errRaw ? io.errRaw : io.err,
    ...(columns ? { columns } : {}),
  });
  let ndjson = flags.events === "ndjson";
  const out = (event: RivetEvent) => {
    if (!ndjson) return;
    try {
      io.out(eventToNdjson(event));
    } catch {
      // The reader went away (broken pipe): stop the stream, never the export.
      ndjson = false;
    }
  };
  const at = new Date().toISOString();
  const runId = `run_${at.replace(/[-:]/g, "").replace("Z", "")}`;
  out({ type: "run_started", runId, exports, at });
  let finished = false;
  return {
    // A pooler or proxy in front of the database is reported once per run, not per connection.
    emit: oncePerRun((event) => {
      out(event);
      renderer.emit(event);
    }),
    finish: (exitCode, outcomes) => {
      if (finished) return;
      finished = true;
      renderer.close();
      out({ type: "run_finished", runId, exitCode, outcomes });
    },
  };
}

/**
 * `run --report`: the HTML page of the run just finished (failed ones too), from what the run
 * recorded in the state store. A failure to write it only warns: the run's exit code is final.
 */
async function writeRunPage(
  config: ConfigSpec,
  outcomes: readonly Outcome[],
  exitCode: number,
  ctx: CommandContext,
): Promise<void> {
  if (outcomes.length === 0) return;
  try {
    const { collectReport, defaultReportPath, writeReport } = await import("./report.ts");
    const { openExistingState } = await import("./state.ts");
    await using state = await openExistingState(config);
    if (state === undefined) return;
    const exports = await collectReport(
      state,
      outcomes.map((o) => ({ exportName: o.export, runId: o.runId })),
    );
    if (exports.length === 0) return;
    const path = defaultReportPath(config, outcomes[0]!.runId);
    await writeReport(exports, path, exitCode);
    ctx.io.err(`report page: ${path}\n`);
  } catch (error) {
    ctx.io.err(
      `Warning: could not write the run's report page: ${
        error instanceof Error ? error.message : String(error)
      }\n`,
    );
  }
}
