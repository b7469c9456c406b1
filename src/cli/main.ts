/**
 * The command tree (npm:commander). `main` returns the exit code instead of exiting, so tests call
 * it in-process; `cli.ts` holds the only `Deno.exit`.
 *
 * Exit codes: 0 success, 1 config/usage of a value/permanent, 2 transient and command-line usage
 * errors (unknown flag, missing `-c`; usage text only, no `Error:` line, as rivet-cli 0.14.1), 3
 * data integrity, 4 schema drift, 130 interrupted.
 *
 * Layer: cli.
 *
 * @module
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { type ErrorInfo, type ExitCode, toErrorInfo } from "../core/errors.ts";
import { redact } from "../_util/redact.ts";
import { clip, collapseRepeatedExportPrefixes } from "../_util/text.ts";
import { type CliIo, processIo } from "./io.ts";
import { VERSION } from "../core/version.ts";
import type { StateFlags } from "./commands/state.ts";
import type { MetricsFlags } from "./commands/metrics.ts";
import type { DoctorFlags } from "./commands/doctor.ts";
import type { ValidateFlags } from "./commands/validate.ts";
import type { ReconcileFlags } from "./commands/reconcile.ts";
import type { RepairFlags } from "./commands/repair.ts";

/** Options parsed for `rivet run`. */
export interface RunFlags {
  readonly config: string;
  readonly export?: readonly string[];
  readonly param?: readonly string[];
  readonly json?: boolean;
  readonly summaryOutput?: string;
  readonly validate?: boolean;
  readonly reconcile?: boolean;
  readonly resume?: boolean;
  readonly force?: boolean;
  readonly parallelExports?: boolean;
  readonly parallelExportProcesses?: boolean;
  /**
   * Hidden: this process is a `--parallel-export-processes` child (human output off); `worker`
   * also runs its export in a permission-narrowed worker (the compiled binary's isolation).
   */
  readonly processChild?: "flags" | "worker";
  /** `--events ndjson`: every run event as one JSON line on stdout. */
  readonly events?: "ndjson";
}

/** Context every command gets. */
export interface CommandContext {
  readonly io: CliIo;
  readonly jsonErrors: boolean;
  /** Cancelled on SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
}

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

const epilogue = `
Getting started:
  1. rivet init -o rivet.yaml     scaffold a config from a live database (coming later)
  2. rivet doctor -c rivet.yaml   check credentials and destinations
  3. rivet check -c rivet.yaml    preview the plan (coming later)
  4. rivet run -c rivet.yaml      export

Exit codes: 0 success, 1 config or permanent error, 2 transient error (retry) or command-line
usage error, 3 data integrity, 4 schema drift, 130 interrupted.
Docs: README.md`;

/**
 * Formats errors for stderr: `Error: <message>` plus an optional `Hint:` line each, or with
 * `--json-errors` one JSON object `{error, exit_class}` for all of them. Always redacted and free
 * of terminal control bytes.
 *
 * @param errors The failures, as {@linkcode ErrorInfo} (use `toErrorInfo` for a thrown value).
 * @param options `jsonErrors` and the exit class to report.
 * @returns The text to print.
 */
export function formatErrors(
  errors: readonly ErrorInfo[],
  options: { jsonErrors: boolean; exitCode: ExitCode },
): string {
  // Clipped after redaction (a cut must never leave half a secret behind): a message may quote a
  // long query or value, and nobody reads 200 KB of an error on a terminal.
  const lines = errors.map((e) => ({
    message: clip(redact(collapseRepeatedExportPrefixes(e.message))),
    hint: e.hint === undefined ? undefined : clip(redact(e.hint)),
  }));
  if (options.jsonErrors) {
    const error = lines.map((l) => l.hint ? `${l.message}\nHint: ${l.hint}` : l.message).join("\n");
    return JSON.stringify({ error, exit_class: options.exitCode }) + "\n";
  }
  return lines.map((l) => `Error: ${l.message}\n${l.hint ? `Hint: ${l.hint}\n` : ""}`).join("");
}

/**
 * Prints one thrown error and returns its exit code.
 *
 * @param error The thrown value.
 * @param ctx Output and `--json-errors`.
 * @returns The exit code of the error's class.
 */
export function reportError(
  error: unknown,
  ctx: Pick<CommandContext, "io" | "jsonErrors">,
): ExitCode {
  const info = toErrorInfo(error);
  ctx.io.err(formatErrors([info], { jsonErrors: ctx.jsonErrors, exitCode: info.exitCode }));
  return info.exitCode;
}

/**
 * Runs the CLI.
 *
 * @param args Command-line arguments (without the program name).
 * @param options Output sinks and abort signal; defaults to the process's. SIGINT/SIGTERM are
 *   handled unless a signal is given, or also then with `handleSignals: true` (a process-mode
 *   child passes the signal that fires when its parent is gone).
 * @returns The exit code.
 *
 * @example Print the version
 * ```ts ignore
 * import { main } from "./main.ts";
 * const code = await main(["--version"]);
 * ```
 */
export async function main(
  args: readonly string[],
  options: { io?: CliIo; signal?: AbortSignal; handleSignals?: boolean } = {},
): Promise<number> {
  const io = options.io ?? processIo();
  // --json-errors is global and valid before or after the subcommand.
  const jsonErrors = args.includes("--json-errors");
  const argv = args.filter((a) => a !== "--json-errors");
  const controller = new AbortController();
  const signal = options.signal
    ? AbortSignal.any([options.signal, controller.signal])
    : controller.signal;
  const ctx: CommandContext = { io, jsonErrors, signal };
  let exitCode: number = 0;

  const program = new Command("rivet")
    .description(
      "Export PostgreSQL, MySQL/MariaDB and SQL Server tables and queries to Parquet or CSV: fast, " +
        "gentle on the source, verifiable.",
    )
    .version(`rivet ${VERSION}`, "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .addOption(
      new Option(
        "--json-errors",
        "on failure, print one JSON object {error, exit_class} on stderr",
      ),
    )
    .addHelpText("after", epilogue)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.out(text),
      writeErr: (text) => io.err(text),
    })
    .showHelpAfterError("(run with --help for usage; to start a config: rivet init -o rivet.yaml)")
    .showSuggestionAfterError(true);

  program.command("run")
    .description("run the exports of a config file")
    .requiredOption("-c, --config <path>", "config file (YAML)")
    .option("-e, --export <name>", "run only this export (repeatable)", collect)
    .option("-p, --param <key=value>", "value for ${key} in the config (repeatable)", collect)
    .option("--json", "print the run summary as JSON on stdout")
    .option("--summary-output <path>", "write the run summary JSON to a file")
    .addOption(
      new Option("--events <format>", "print every run event on stdout, one JSON line each")
        .choices(["ndjson"]),
    )
    .option(
      "--validate",
      "re-count each part before its commit and verify the destination after the run",
    )
    .option(
      "--reconcile",
      "compare the source's COUNT(*) with the committed rows (implies --validate)",
    )
    .option("--resume", "resume an interrupted checkpointed chunked run")
    .option("--force", "with --resume: resume even if _SUCCESS exists")
    .option("--parallel-exports", "run the exports concurrently in this process")
    .option(
      "--parallel-export-processes",
      "run each export in its own child process, with only the permissions it needs",
    )
    .addOption(
      new Option("--process-child <isolation>", "internal: run as a process-mode child")
        .choices(["flags", "worker"]).hideHelp(),
    )
    .addOption(
      new Option("--json-errors", "on failure, print one JSON object on stderr").hideHelp(),
    )
    .addHelpText(
      "after",
      `
Examples:
  rivet run -c rivet.yaml
  rivet run -c rivet.yaml -e orders -p day=2026-01-31
  rivet run -c rivet.yaml --json > summary.json`,
    )
    .action(async (flags: RunFlags) => {
      const { runCommand } = await import("./commands/run.ts");
      exitCode = await runCommand(flags, ctx);
    });

  // Inspection commands (state *, metrics, journal): command modules load lazily.
  const positiveInt = (value: string) => {
    if (!/^[1-9][0-9]*$/.test(value)) throw new InvalidArgumentError("expected a positive integer");
    return Number(value);
  };
  const lastOption = (fallback: number) =>
    new Option("-l, --last <n>", "show only the newest N rows").default(fallback)
      .argParser(positiveInt);
  const configFlag = ["-c, --config <path>", "config file (YAML)"] as const;
  const state = program.command("state")
    .description("inspect or reset the state kept in .rivet_state.db next to the config");
  type StateModule = typeof import("./commands/state.ts");
  const stateAction =
    (pick: (m: StateModule) => typeof m.stateShowCommand) => async (flags: StateFlags) => {
      exitCode = await pick(await import("./commands/state.ts"))(flags, ctx);
    };
  state.command("show").description("show the incremental cursors (EXPORT, LAST CURSOR, LAST RUN)")
    .requiredOption(...configFlag)
    .action(stateAction((m) => m.stateShowCommand));
  state.command("reset").description("delete the cursor and progression of one export")
    .requiredOption(...configFlag)
    .requiredOption("-e, --export <name>", "the export to reset")
    .action(stateAction((m) => m.stateResetCommand));
  state.command("files").description("show the file log, newest first")
    .requiredOption(...configFlag)
    .option("-e, --export <name>", "only this export")
    .addOption(lastOption(50))
    .action(stateAction((m) => m.stateFilesCommand));
  state.command("chunks").description("show the checkpointed chunk run of one export")
    .requiredOption(...configFlag)
    .requiredOption("-e, --export <name>", "the chunked export")
    .action(stateAction((m) => m.stateChunksCommand));
  state.command("reset-chunks")
    .description("delete checkpointed chunk runs of one export, or every stuck one")
    .requiredOption(...configFlag)
    .addOption(
      new Option("-e, --export <name>", "the chunked export").conflicts("stuckCheckpoints"),
    )
    .addOption(
      new Option("--stuck-checkpoints", "every export whose latest chunk run is in progress")
        .conflicts("export"),
    )
    .addOption(
      new Option("--failed", "alias of --stuck-checkpoints").hideHelp().conflicts("export"),
    )
    .action(async (flags: StateFlags, cmd: Command) => {
      if ((flags.export === undefined) === !(flags.stuckCheckpoints || flags.failed)) {
        cmd.error("error: give exactly one of -e NAME and --stuck-checkpoints");
      }
      await stateAction((m) => m.stateResetChunksCommand)(flags);
    });
  state.command("progression").description("show committed and verified boundaries (advisory)")
    .requiredOption(...configFlag)
    .option("-e, --export <name>", "only this export")
    .action(stateAction((m) => m.stateProgressionCommand));
  program.command("metrics").description("show the run history, newest first")
    .requiredOption(...configFlag)
    .option("-e, --export <name>", "only this export")
    .addOption(lastOption(20))
    .action(async (flags: MetricsFlags) => {
      const { metricsCommand } = await import("./commands/metrics.ts");
      exitCode = await metricsCommand(flags, ctx);
    });
  program.command("journal").description("show the event digest of an export's recent runs")
    .requiredOption(...configFlag)
    .requiredOption("-e, --export <name>", "the export")
    .addOption(lastOption(5))
    .option("--run-id <id>", "only this run")
    .action(async (flags: MetricsFlags) => {
      const { journalCommand } = await import("./commands/metrics.ts");
      exitCode = await journalCommand(flags, ctx);
    });

  program.command("doctor")
    .description("check the config, the source login (SELECT 1) and each destination (probe)")
    .requiredOption(...configFlag)
    .option("-p, --param <key=value>", "value for ${key} in the config (repeatable)", collect)
    .action(async (flags: DoctorFlags) => {
      const { doctorCommand } = await import("./commands/doctor.ts");
      exitCode = await doctorCommand(flags, ctx);
    });
  program.command("validate")
    .description("verify each export's output against its manifest.json and _SUCCESS")
    .requiredOption(...configFlag)
    .option("-e, --export <name>", "only this export (repeatable)", collect)
    .option("-p, --param <key=value>", "value for ${key} in the config (repeatable)", collect)
    .addOption(
      new Option("--format <format>", "report layout").choices(["pretty", "json"])
        .default("pretty"),
    )
    .option("-o, --output <path>", "write the JSON report to a file (needs --format json)")
    .option("--date <yyyy-mm-dd>", "the day {date} stands for in the path (default today, UTC)")
    .option("--run-id <id>", "the value of {run_id} in the path")
    .option("--prefix <path>", "validate this folder/prefix instead (one export)")
    .option("--size-only", "verify: size exports: check sizes without reading the parts back")
    .addHelpText(
      "after",
      `
Exit codes: 0 every export passed (or has no manifest: legacy output), 3 something was verified
wrong (missing part, size, content fingerprint, _SUCCESS, inconsistent manifest), 1 config error.

Examples:
  rivet validate -c rivet.yaml
  rivet validate -c rivet.yaml -e orders --date 2026-01-31
  rivet validate -c rivet.yaml --format json -o validate.json`,
    )
    .action(async (flags: ValidateFlags) => {
      const { validateCommand } = await import("./commands/validate.ts");
      exitCode = await validateCommand(flags, ctx);
    });

  /** `-p`, `--format pretty|json` and `-o` of the report commands (reconcile, repair). */
  const reportOptions = (cmd: Command) =>
    cmd.option("-p, --param <key=value>", "value for ${key} in the config (repeatable)", collect)
      .addOption(
        new Option("--format <format>", "report layout").choices(["pretty", "json"])
          .default("pretty"),
      )
      .option("-o, --output <path>", "write the JSON report to a file (needs --format json)");
  reportOptions(
    program.command("reconcile")
      .description("count each chunk of a chunked export's latest run on the source again")
      .requiredOption(...configFlag)
      .requiredOption("-e, --export <name>", "the chunked export (chunk_checkpoint: true)"),
  )
    .addHelpText(
      "after",
      `
Exit codes: 0 every audited chunk matches (chunks that cannot be judged only warn), 3 a chunk's
count differs from the rows its run recorded, 1 config error (not a chunked export, no run).

Examples:
  rivet reconcile -c rivet.yaml -e orders
  rivet reconcile -c rivet.yaml -e orders --format json -o report.json`,
    )
    .action(async (flags: ReconcileFlags) => {
      const { reconcileCommand } = await import("./commands/reconcile.ts");
      exitCode = await reconcileCommand(flags, ctx);
    });
  reportOptions(
    program.command("repair")
      .description("re-export the chunks a reconcile flagged, as new files (dry run by default)")
      .requiredOption(...configFlag)
      .requiredOption("-e, --export <name>", "the chunked export"),
  )
    .option("--report <path>", "repair from this 'rivet reconcile --format json' report")
    .option("--execute", "re-export the flagged chunks (without it: print the plan only)")
    .addHelpText(
      "after",
      `
Old files are never deleted or rewritten, and manifest.json is left as the run wrote it.
Exit codes: 0 nothing to repair or every flagged chunk repaired, 3 a repair failed, 1 config
error (a report of another export, not a chunked export).

Examples:
  rivet repair -c rivet.yaml -e orders
  rivet repair -c rivet.yaml -e orders --report report.json --execute`,
    )
    .action(async (flags: RepairFlags) => {
      const { repairCommand } = await import("./commands/repair.ts");
      exitCode = await repairCommand(flags, ctx);
    });

  const onSignal = () => {
    if (controller.signal.aborted) {
      // Second Ctrl-C: stop now.
      Deno.exit(130);
    }
    io.err("Interrupted: stopping (press Ctrl-C again to exit at once)\n");
    controller.abort();
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  const installSignals = options.handleSignals ?? options.signal === undefined;
  if (installSignals) { for (const s of signals) Deno.addSignalListener(s, onSignal); }
  try {
    await program.parseAsync([...argv], { from: "user" });
    if (argv.length === 0) {
      program.outputHelp();
      return 2;
    }
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // `commander.help` is help shown because no command was given: a usage error.
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version") return 0;
      return 2;
    }
    return reportError(error, ctx);
  } finally {
    if (installSignals) { for (const s of signals) Deno.removeSignalListener(s, onSignal); }
  }
}
