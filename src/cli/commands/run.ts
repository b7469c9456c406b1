/**
 * `rivet run`: load the config, run the selected exports, print the summary, write the reports.
 *
 * Layer: cli.
 *
 * @module
 */
import { ConfigError } from "../../core/errors.ts";
import type { RivetEvent } from "../../core/events.ts";
import { assertSupported, loadConfig, planChecks, selectExports } from "../../config/mod.ts";
import { runExports } from "../../engines/inline.ts";
import type { CommandContext, RunFlags } from "../main.ts";
import { formatErrors, reportError } from "../main.ts";
import { aggregateJson, renderOutcome, writeRunReports } from "../render/summary.ts";

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
 * @param ctx Output and abort signal.
 * @returns The exit code.
 */
export async function runCommand(flags: RunFlags, ctx: CommandContext): Promise<number> {
  const { io } = ctx;
  try {
    const params = parseParams(flags.param ?? []);
    const config = await loadConfig(flags.config, { params });
    for (const w of config.warnings) io.err(`Warning: ${w.message}\n`);
    const exports = selectExports(config, flags.export ?? []);
    const unsupportedFlags = (
      [
        ["--validate", flags.validate],
        ["--reconcile", flags.reconcile],
        ["--parallel-exports", flags.parallelExports],
        ["--parallel-export-processes", flags.parallelExportProcesses],
      ] as const
    ).filter(([, on]) => on).map(([name]) => name);
    if (unsupportedFlags.length > 0) {
      throw new ConfigError(
        `${unsupportedFlags.join(", ")} ${
          unsupportedFlags.length > 1 ? "are" : "is"
        } not supported yet by this version of rivet`,
        { code: "config.not_supported", hint: "drop the flag; see the README's supported list" },
      );
    }
    assertSupported(config, exports);
    for (const w of planChecks(exports, { resume: flags.resume === true }).warnings) {
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

    const emit = (event: RivetEvent) => {
      if (event.type === "warning") io.err(`Warning: ${event.message}\n`);
      else if (event.type === "export_finished") io.err(renderOutcome(event.outcome));
    };
    const result = await runExports(config, exports, {
      emit,
      signal: ctx.signal,
      params,
      cwd: Deno.cwd(),
      resume: flags.resume === true,
      force: flags.force === true,
    });

    const aggregate = aggregateJson(result, { configPath: config.path });
    const text = JSON.stringify(aggregate, null, 2) + "\n";
    if (flags.json) io.out(text);
    if (flags.summaryOutput) await Deno.writeTextFile(flags.summaryOutput, text, { mode: 0o600 });
    for (const path of await writeRunReports(config.dir, result.outcomes)) {
      io.err(`report: ${path}\n`);
    }
    const failures = result.outcomes.flatMap((o) =>
      o.error ? [{ ...o.error, message: `export '${o.export}': ${o.error.message}` }] : []
    );
    if (failures.length > 0) {
      io.err(formatErrors(failures, { jsonErrors: ctx.jsonErrors, exitCode: result.exitCode }));
    }
    return result.exitCode;
  } catch (error) {
    return reportError(error, ctx);
  }
}
