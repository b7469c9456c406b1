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
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { type ErrorInfo, type ExitCode, toErrorInfo } from "../core/errors.ts";
import { redact } from "../_util/redact.ts";
import { clip, collapseRepeatedExportPrefixes } from "../_util/text.ts";
import { type CliIo, processIo } from "./io.ts";
import { versionLine } from "./build_info.ts";
import type { StateFlags } from "./commands/state.ts";
import type { MetricsFlags } from "./commands/metrics.ts";
import type { DoctorFlags } from "./commands/doctor.ts";
import type { ValidateFlags } from "./commands/validate.ts";
import type { CheckFlags } from "./commands/check.ts";
import type { PlanFlags } from "./commands/plan.ts";
import type { ApplyFlags } from "./commands/apply.ts";
import type { InitFlags } from "./commands/init.ts";
import type { CdcFlags } from "./commands/cdc.ts";
import type { ReportFlags } from "./commands/report.ts";
import type { Shell } from "./commands/completions.ts";
import type { ReconcileFlags } from "./commands/reconcile.ts";
import type { RepairFlags } from "./commands/repair.ts";
import type { PermissionsFlags } from "./commands/permissions.ts";
import type { SummarizeEventsFlags } from "./commands/summarize_events.ts";

/** Options parsed for `rivet run`. */
export interface RunFlags {
  readonly config: string;
  readonly export?: readonly string[];
  readonly param?: readonly string[];
  readonly json?: boolean;
  readonly summaryOutput?: string;
  /** `--report`: write the run's HTML page beside its summary.json. */
  readonly report?: boolean;
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
  /** `--allow-net[=…]` and friends: the operator's grants (`true`: the bare flag). */
  readonly allowNet?: string | true;
  readonly allowRead?: string | true;
  readonly allowWrite?: string | true;
  readonly allowEnv?: string | true;
  /** `--sandbox` / `--no-sandbox`; default: on in a compiled binary or with an `--allow-*` flag. */
  readonly sandbox?: boolean;
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
  1. rivet init --source-env DATABASE_URL -o rivet.yaml
                                  scaffold a config from a live database
  2. rivet doctor -c rivet.yaml   check the login, each export's query and the destinations
  3. rivet check -c rivet.yaml    preview each export: strategy, verdict, types
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
    .version(versionLine(), "-V, --version", "print the version, the commit and the target")
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
    .showHelpAfterError(
      "(run with --help for usage; to start a config: rivet init --source-env DATABASE_URL -o rivet.yaml)",
    )
    .showSuggestionAfterError(true);

  const paramFlag = [
    "-p, --param <key=value>",
    "value for ${key} in the config (repeatable)",
    collect,
  ] as const;
  program.command("run")
    .description("run the exports of a config file")
    .requiredOption("-c, --config <path>", "config file (YAML)")
    .option("-e, --export <name>", "run only this export (repeatable)", collect)
    .option(...paramFlag)
    .option("--json", "print the run summary as JSON on stdout")
    .option("--summary-output <path>", "write the run summary JSON to a file")
    .option("--report", "write the run's HTML page (rivet report) beside its summary.json")
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
    .option(
      "--sandbox",
      "run each export in a worker allowed only what it needs (default in the compiled binary)",
    )
    .option("--no-sandbox", "run the exports with this process's permissions")
    .option(
      "--allow-net [hosts]",
      "sandbox: hosts the plan may reach (host or host:port, comma-separated)",
    )
    .option("--allow-read [paths]", "sandbox: folders and files the plan may read")
    .option("--allow-write [paths]", "sandbox: folders and files the plan may write")
    .option("--allow-env [names]", "sandbox: variables the plan may read (NAME or PREFIX*)")
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
  rivet run -c rivet.yaml --json > summary.json
  rivet run -c rivet.yaml --allow-net=db.internal:5432 --allow-write=/srv/exports
                       (refused before it starts if the plan needs more: docs/sandbox.md)`,
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
  const jsonFlag = ["--json", "print one JSON document on stdout instead of the table"] as const;
  const state = program.command("state")
    .description("inspect or reset the state kept in .rivet_state.db next to the config");
  type StateModule = typeof import("./commands/state.ts");
  const stateAction =
    (pick: (m: StateModule) => typeof m.stateShowCommand) => async (flags: StateFlags) => {
      exitCode = await pick(await import("./commands/state.ts"))(flags, ctx);
    };
  state.command("show").description("show the incremental cursors (EXPORT, LAST CURSOR, LAST RUN)")
    .requiredOption(...configFlag)
    .option(...jsonFlag)
    .action(stateAction((m) => m.stateShowCommand));
  state.command("reset").description("delete the cursor and progression of one export")
    .requiredOption(...configFlag)
    .requiredOption("-e, --export <name>", "the export to reset")
    .action(stateAction((m) => m.stateResetCommand));
  state.command("adopt")
    .description(
      "keep one export's cursor after a deliberate change of its source or query (new identity)",
    )
    .requiredOption(...configFlag)
    .requiredOption("-e, --export <name>", "the export whose cursor to keep")
    .option(...paramFlag)
    .action(stateAction((m) => m.stateAdoptCommand));
  state.command("files").description("show the file log, newest first")
    .requiredOption(...configFlag)
    .option("-e, --export <name>", "only this export")
    .addOption(lastOption(50))
    .option(...jsonFlag)
    .action(stateAction((m) => m.stateFilesCommand));
  state.command("chunks").description("show the checkpointed chunk run of one export")
    .requiredOption(...configFlag)
    .requiredOption("-e, --export <name>", "the chunked export")
    .option(...jsonFlag)
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
    .option(...jsonFlag)
    .action(stateAction((m) => m.stateProgressionCommand));
  program.command("metrics").description("show the run history, newest first")
    .requiredOption(...configFlag)
    .option("-e, --export <name>", "only this export")
    .addOption(lastOption(20))
    .option(...jsonFlag)
    .action(async (flags: MetricsFlags) => {
      const { metricsCommand } = await import("./commands/metrics.ts");
      exitCode = await metricsCommand(flags, ctx);
    });
  program.command("journal").description("show the event digest of an export's recent runs")
    .requiredOption(...configFlag)
    .requiredOption("-e, --export <name>", "the export")
    .addOption(lastOption(5))
    .option("--run-id <id>", "only this run")
    .option(...jsonFlag)
    .action(async (flags: MetricsFlags) => {
      const { journalCommand } = await import("./commands/metrics.ts");
      exitCode = await journalCommand(flags, ctx);
    });

  program.command("doctor")
    .description(
      "check the config, the source login (SELECT 1), each export's query (LIMIT 0) and each " +
        "destination (probe)",
    )
    .requiredOption(...configFlag)
    .option(...paramFlag)
    .action(async (flags: DoctorFlags) => {
      const { doctorCommand } = await import("./commands/doctor.ts");
      exitCode = await doctorCommand(flags, ctx);
    });
  // The export selection and the layout flags of the commands that report per export.
  const selection = (command: Command) =>
    command.requiredOption(...configFlag)
      .option("-e, --export <name>", "only this export (repeatable)", collect)
      .option(...paramFlag);
  /** `--format pretty|json` and `-o` (which needs `--format json`) of the report commands. */
  const jsonOutput = (command: Command, format: string, output: string) =>
    command.addOption(
      new Option("--format <format>", format).choices(["pretty", "json"]).default("pretty"),
    ).option("-o, --output <path>", `${output} (needs --format json)`);
  const jsonReport = (command: Command) =>
    jsonOutput(command, "report layout", "write the JSON report to a file");
  jsonReport(
    selection(program.command("validate"))
      .description("verify each export's output against its manifest.json and _SUCCESS"),
  )
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

  selection(program.command("check"))
    .description(
      "preflight each export: strategy, size, access (the query runs for no row), verdict, " +
        "types, destinations",
    )
    .option("--type-report", "list each column: source type, Arrow type, fidelity")
    .addOption(
      new Option("--target <reader>", "judge fidelity for this reader (beats exports[].target)")
        .choices(["duckdb", "duck", "bigquery", "bq", "snowflake", "sf", "spark", "polars"]),
    )
    .option("--strict", "exit 1 when any column is lossy or unsupported")
    .option("--json", "print one JSON document (implies the type report)")
    .addHelpText(
      "after",
      `
Exit codes: 0 every export can run (verdicts and warnings are advice), 1 an export cannot run (a
missing table or column, an unsupported type, a list column in CSV), a destination refused the
probe, or --strict and a lossy or unsupported column; 2 the source is unreachable.

Examples:
  rivet check -c rivet.yaml
  rivet check -c rivet.yaml -e orders --type-report --target bigquery
  rivet check -c rivet.yaml --json --strict > check.json`,
    )
    .action(async (flags: CheckFlags) => {
      const { checkCommand } = await import("./commands/check.ts");
      exitCode = await checkCommand(flags, ctx);
    });
  jsonOutput(
    selection(program.command("plan"))
      .description("compute what a run would do (no data written) and seal it as a plan artifact"),
    "output",
    "write the artifact to a file",
  )
    .addHelpText(
      "after",
      `
One artifact covers every selected export. It expires after 24 hours.

Examples:
  rivet plan -c rivet.yaml
  rivet plan -c rivet.yaml -e orders --format json -o plan.json
  rivet apply plan.json`,
    )
    .action(async (flags: PlanFlags) => {
      const { planCommand } = await import("./commands/plan.ts");
      exitCode = await planCommand(flags, ctx);
    });
  selection(program.command("permissions"))
    .description("print the narrowest command line (--allow-* flags) that runs a config")
    .addOption(
      new Option("--format <format>", "output layout").choices(["text", "json"]).default("text"),
    )
    .addOption(
      new Option(
        "--for <runner>",
        "deno: a 'deno run' command line; binary: 'rivet run' of the compiled binary " +
          "(default: binary when compiled, else deno)",
      ).choices(["deno", "binary"]),
    )
    .addHelpText(
      "after",
      `
Text prints the command line, then one line per flag saying why. Paths are absolute, so the
command runs from any working directory. Variable values are never printed, only their names.
The binary checks its --allow-* flags against the plan before it starts (docs/sandbox.md).

Examples:
  rivet permissions -c rivet.yaml
  rivet permissions -c rivet.yaml --for binary
  rivet permissions -c rivet.yaml -e orders --format json`,
    )
    .action(async (flags: PermissionsFlags) => {
      const { permissionsCommand } = await import("./commands/permissions.ts");
      exitCode = await permissionsCommand(flags, ctx);
    });
  program.command("apply")
    .description("run a plan artifact written by rivet plan, exactly as planned")
    .argument("<plan_file>", "the artifact (rivet plan --format json -o PATH)")
    .option("--force", "apply a plan older than 24 hours, or whose cursor moved since")
    .addHelpText(
      "after",
      `
Refused (exit 1): a changed artifact (plan.tampered), a plan older than
24 hours (plan.expired), an incremental cursor that moved since the plan
(plan.cursor_moved), inline source credentials the plan could not keep
(plan.credentials_missing). Otherwise the exit codes are rivet run's.

Examples:
  rivet apply plan.json
  rivet apply plan.json --force`,
    )
    .action(async (planFile: string, flags: ApplyFlags) => {
      const { applyCommand } = await import("./commands/apply.ts");
      exitCode = await applyCommand(planFile, flags, ctx);
    });
  // The three ways `init` and `cdc` take a database URL, one at a time.
  const sourceFlags = (cmd: Command, urlHelp: string) =>
    cmd.addOption(new Option("--source <url>", urlHelp).conflicts(["sourceEnv", "sourceFile"]))
      .addOption(
        new Option("--source-env <var>", "environment variable holding the database URL")
          .conflicts(["source", "sourceFile"]),
      )
      .addOption(
        new Option("--source-file <path>", "file holding the database URL")
          .conflicts(["source", "sourceEnv"]),
      );
  program.command("report")
    .description("write one self-contained HTML page of a run: chunk timeline, throughput, RSS")
    .requiredOption(...configFlag)
    .option("-e, --export <name>", "one export (default: every export with a recorded run)")
    .option("--run-id <id>", "that run (default: each export's latest)")
    .option(
      "-o, --output <path>",
      "the page (default .rivet/runs/<run_id>/report.html; - for stdout)",
    )
    .addHelpText(
      "after",
      `
The page needs no network when opened (inline CSS, SVG and script). It reads the state store
next to the config: the run's metrics, its trace (recorded by every run, bounded in size) and
its journal's warnings and error. rivet run --report writes it at the end of a run.

Examples:
  rivet report -c rivet.yaml
  rivet report -c rivet.yaml -e orders --run-id orders_20261204T010203.456 -o orders.html`,
    )
    .action(async (flags: ReportFlags) => {
      const { reportCommand } = await import("./commands/report.ts");
      exitCode = await reportCommand(flags, ctx);
    });
  sourceFlags(program.command("cdc"), "database URL")
    .description("stream a table's changes: NDJSON on stdout, or typed files with --output")
    .option("--table <[schema.]name>", "table to capture (repeatable)", collect)
    .option("--checkpoint <path>", "file keeping the position (the next call resumes there)")
    .option("--until-current", "stop at the log position current at start")
    .option("--max-events <n>", "stop after about n changes (at a transaction end)", positiveInt)
    .option("--output <dir>", "write typed files to this folder (one --table)")
    .addOption(
      new Option("--format <format>", "file format with --output").choices(["parquet", "csv"])
        .default("parquet"),
    )
    .option("--rollover <n>", "changes per file with --output (default 10000)", positiveInt)
    .option("--slot <name>", "PostgreSQL replication slot (default rivet_slot)")
    .option("--publication <name>", "PostgreSQL publication (default: the slot's name)")
    .option("--server-id <n>", "MySQL replica server id (default 4271)", positiveInt)
    .option("--capture-instance <name>", "SQL Server capture instance")
    .addHelpText(
      "after",
      `
Without --output, each change is one JSON line: {op, schema, table, before, after, pos}
(insert/update: after holds the row; delete: before). Changes are delivered at least once:
with --checkpoint, the position after the last whole transaction written is saved (at most
once a second, and at the end), and a restart repeats what followed it. Ctrl-C stops after
the transaction in hand. docs/cdc.md has what each database needs.

Examples:
  rivet cdc --source-env DATABASE_URL --table public.orders --until-current
  rivet cdc --source-env DATABASE_URL --table orders --checkpoint orders.ckpt | jq .
  rivet cdc --source-env DATABASE_URL --table orders --output ./cdc/orders --format csv`,
    )
    .action(async (flags: CdcFlags) => {
      const { cdcCommand } = await import("./commands/cdc.ts");
      exitCode = await cdcCommand(flags, ctx);
    });
  sourceFlags(program.command("init"), "database URL (it is not written into the YAML)")
    .description(
      "scaffold a commented rivet.yaml (or, with --discover, a JSON inventory) from a live database",
    )
    .addOption(
      new Option("--table <[schema.]name>", "scaffold this table or view (repeatable)")
        .argParser(collect).conflicts(["include", "exclude"]),
    )
    .option("--schema <name>", "schema to list (default: the connection's)")
    .option("--include <glob>", "only tables matching the glob, * and ? (repeatable)", collect)
    .option("--exclude <glob>", "leave out tables matching the glob; beats --include", collect)
    .option("-o, --output <path>", "write to this file instead of stdout")
    .option("--force", "with -o: replace an existing file")
    .addOption(
      new Option("--discover", "print a JSON inventory instead of YAML")
        .conflicts([
          "s3Bucket",
          "s3Region",
          "gcsBucket",
          "gcsCredentialsFile",
          "azureContainer",
          "azureAccount",
        ]),
    )
    .addOption(
      new Option(
        "--mode <mode>",
        "full, incremental, chunked, time_window or cdc: for every table that allows it",
      ).argParser((value: string) => {
        if (!["full", "incremental", "chunked", "time_window", "cdc"].includes(value)) {
          throw new InvalidArgumentError(
            "expected full, incremental, chunked, time_window or cdc",
          );
        }
        return value;
      }),
    )
    .addOption(new Option("--s3-bucket <bucket>", "write to S3").conflicts("gcsBucket"))
    .option("--s3-region <region>", "the S3 bucket's region (needs --s3-bucket)")
    .addOption(
      new Option("--gcs-bucket <bucket>", "write to Google Cloud Storage").conflicts("s3Bucket"),
    )
    .option("--gcs-credentials-file <path>", "service account JSON (needs --gcs-bucket)")
    .addOption(
      new Option("--azure-container <name>", "write to Azure Blob Storage (needs --azure-account)")
        .conflicts(["s3Bucket", "gcsBucket"]),
    )
    .option("--azure-account <name>", "the storage account of --azure-container")
    .addOption(
      new Option("--tls-mode <mode>", "TLS to the database (needed for a non-loopback host)")
        .choices(["disable", "require", "verify-ca", "verify-full"]),
    )
    .option("--tls-ca-file <path>", "CA certificate (PEM) for --tls-mode verify-ca/verify-full")
    .addHelpText(
      "after",
      `
The URL is never written into the YAML: it names the variable (--source: DATABASE_URL) or the file.

Examples:
  rivet init --source-env DATABASE_URL -o rivet.yaml
  rivet init --source-env DATABASE_URL --schema sales --exclude 'tmp_*' --s3-bucket my-bucket
  rivet init --source-env DATABASE_URL --discover > inventory.json`,
    )
    .action(async (flags: InitFlags, cmd: Command) => {
      const given = [flags.source, flags.sourceEnv, flags.sourceFile].filter((v) =>
        v !== undefined
      );
      if (given.length !== 1) {
        cmd.error(
          "error: give exactly one of --source URL, --source-env VAR, --source-file PATH " +
            "(e.g. rivet init --source-env DATABASE_URL -o rivet.yaml)",
        );
      }
      if (flags.s3Region !== undefined && flags.s3Bucket === undefined) {
        cmd.error("error: option '--s3-region <region>' requires '--s3-bucket <bucket>'");
      }
      if (flags.gcsCredentialsFile !== undefined && flags.gcsBucket === undefined) {
        cmd.error("error: option '--gcs-credentials-file <path>' requires '--gcs-bucket <bucket>'");
      }
      if ((flags.azureContainer === undefined) !== (flags.azureAccount === undefined)) {
        cmd.error("error: options '--azure-container' and '--azure-account' go together");
      }
      if (flags.tlsCaFile !== undefined && flags.tlsMode === undefined) {
        cmd.error("error: option '--tls-ca-file <path>' requires '--tls-mode <mode>'");
      }
      if (flags.force && flags.output === undefined) {
        cmd.error("error: option '--force' requires '-o, --output <path>'");
      }
      const { initCommand } = await import("./commands/init.ts");
      exitCode = await initCommand(flags, ctx);
    });
  program.command("schema").description("print machine-readable schemas")
    .command("config")
    .description("print the JSON Schema (draft 2020-12) of the config file")
    .addHelpText(
      "after",
      `
Example (an editor with the YAML language server):
  rivet schema config > rivet.schema.json
  # first line of rivet.yaml:  # yaml-language-server: $schema=./rivet.schema.json`,
    )
    .action(async () => {
      const { schemaConfigCommand } = await import("./commands/schema.ts");
      exitCode = schemaConfigCommand(ctx);
    });

  program.command("completions")
    .description("print a shell completion script for bash, zsh or fish")
    .addArgument(new Argument("<shell>", "the shell").choices(["bash", "zsh", "fish"]))
    .addHelpText(
      "after",
      `
Examples:
  source <(rivet completions bash)        # bash, e.g. in ~/.bashrc
  source <(rivet completions zsh)         # zsh, after compinit
  rivet completions fish | source         # fish`,
    )
    .action(async (shell: Shell, _flags: unknown, cmd: Command) => {
      const { completionsCommand } = await import("./commands/completions.ts");
      exitCode = completionsCommand(shell, cmd.parent ?? program, ctx);
    });
  /** `-p`, `--format pretty|json` and `-o` of the report commands (reconcile, repair). */
  const reportOptions = (cmd: Command) =>
    jsonReport(
      cmd.option(...paramFlag),
    );
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

  program.command("summarize-events")
    .description("render a run's --events ndjson stream as a GitHub job summary and step outputs")
    .option("--events <path>", "the NDJSON file of rivet run --events ndjson (default: stdin)")
    .option(
      "--exit-code <n>",
      "the exit code of that rivet run (default: the one its run_finished event reports)",
      (value: string) => {
        if (!/^[0-9]{1,3}$/.test(value) || Number(value) > 255) {
          throw new InvalidArgumentError("expected an exit code, 0 to 255");
        }
        return Number(value);
      },
    )
    .option("--summary-out <path>", "append the Markdown here (e.g. $GITHUB_STEP_SUMMARY)")
    .option("--outputs-out <path>", "append name=value outputs here (e.g. $GITHUB_OUTPUT)")
    .addHelpText(
      "after",
      `
Example (what the GitHub Action runs):
  rivet run -c rivet.yaml --events ndjson > events.ndjson; code=$?
  rivet summarize-events --events events.ndjson --exit-code "$code" \\
    --summary-out "$GITHUB_STEP_SUMMARY" --outputs-out "$GITHUB_OUTPUT"`,
    )
    .action(async (flags: SummarizeEventsFlags) => {
      const { summarizeEventsCommand } = await import("./commands/summarize_events.ts");
      exitCode = await summarizeEventsCommand(flags, ctx);
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
