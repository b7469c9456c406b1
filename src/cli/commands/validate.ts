/**
 * `rivet validate`: destination-only verification of each export's last run against its
 * `manifest.json` and `_SUCCESS`. No source query. What is checked at a destination, and when
 * it fails, is `verifyDestination` (`src/pipeline/verify.ts`); which exports are skipped, where
 * each destination is and the exit code are `src/pipeline/validate_export.ts`. This command
 * parses the flags, opens the state file and the destinations, and renders the reports
 * (`src/cli/render/validate.ts`).
 *
 * Per export, the destination root has `{date}` resolved for today (UTC; `--date` overrides, so
 * a `{date}` prefix written on another day needs `--date`) and `{run_id}` for `--run-id`;
 * `--prefix` names the folder itself instead (one export). `verify: content` exports always
 * have their part bytes read back and hashed; `verify: size` exports too, unless `--size-only`
 * (size and store MD5 only: no download). The state file next to the config, when it exists,
 * supplies the files earlier successful runs committed (validate never creates one).
 *
 * Without a `manifest.json` and without data files of the export there is nothing to validate:
 * `NO MANIFEST`, exit 0 (output without a manifest, written before manifests existed or by
 * another tool, is not an error). stdout and `partition_by` exports are skipped with a note
 * (validate one partition with `--prefix`).
 *
 * Exit: 3 when anything was verified wrong, else the class of an error that stopped a check
 * (1 config, 2 transient), else 0. Validate never writes to the destination; for a local
 * destination whose folder is missing it does not create it either.
 *
 * Layer: cli.
 *
 * @module
 */
import { localRoot } from "../../plan/resolve.ts";
import type { Destination } from "../../core/destination.ts";
import { ConfigError } from "../../core/errors.ts";
import type { ConfigSpec, DestinationSpec } from "../../core/spec.ts";
import type { StateStore } from "../../core/state.ts";
import { loadConfig, selectExports } from "../../config/mod.ts";
import { openDestination } from "../../destinations/mod.ts";
import type { ExportValidation } from "../../pipeline/verify.ts";
import { validateExitCode, validateExport } from "../../pipeline/validate_export.ts";
import type { CommandContext } from "../main.ts";
import { reportError } from "../main.ts";
import { checkOutputFlags } from "../render/summary.ts";
import { renderValidateJson, renderValidatePretty } from "../render/validate.ts";
import { parseParams } from "./run.ts";
import { openExistingState } from "./state.ts";

/** Options parsed for `rivet validate`. */
export interface ValidateFlags {
  readonly config: string;
  /** `-e NAME` (repeatable): only these exports. */
  readonly export?: readonly string[];
  /** `-p KEY=VALUE` (repeatable). */
  readonly param?: readonly string[];
  /** `--format pretty|json` (pretty). */
  readonly format?: "pretty" | "json";
  /** `-o PATH`: write the JSON report there (requires `--format json`). */
  readonly output?: string;
  /** `--date YYYY-MM-DD`: the day `{date}` stands for (default today, UTC). */
  readonly date?: string;
  /** `--run-id ID`: the value of `{run_id}` in the destination path. */
  readonly runId?: string;
  /** `--prefix P`: validate this path/prefix instead of the configured one (one export). */
  readonly prefix?: string;
  /** `--size-only`: `verify: size` exports are checked by size (and store MD5) without a read. */
  readonly sizeOnly?: boolean;
}

/**
 * Opens a destination for reading, or undefined for a local folder that does not exist:
 * `LocalDestination.open` creates its folder, and validate must not leave one behind.
 */
async function openForReading(
  spec: DestinationSpec,
  cwd: string,
): Promise<Destination | undefined> {
  if (spec.kind === "local") {
    try {
      await Deno.lstat(localRoot(spec, cwd));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      return undefined;
    }
  }
  return await openDestination(spec, { baseDir: cwd });
}

/**
 * The state store next to the config when its file exists and may be opened without a
 * permission prompt (a narrowed `deno run` without write access to the config folder validates
 * by the stamps instead); undefined otherwise, or when it is unusable.
 */
async function openPermittedState(config: ConfigSpec): Promise<StateStore | undefined> {
  try {
    for (const name of ["read", "write"] as const) {
      if ((await Deno.permissions.query({ name, path: config.dir })).state !== "granted") {
        return undefined;
      }
    }
    return await openExistingState(config);
  } catch {
    return undefined;
  }
}

/** Parses `--date YYYY-MM-DD` as that UTC day. */
function parseDate(text: string): Date {
  const at = new Date(`${text}T00:00:00Z`);
  if (
    !/^\d{4}-\d{2}-\d{2}$/.test(text) || Number.isNaN(at.getTime()) ||
    !at.toISOString().startsWith(text)
  ) {
    throw new ConfigError(`--date '${text}' is not a calendar date YYYY-MM-DD`, {
      code: "cli.bad_date",
      hint: "write it as --date 2026-01-31",
    });
  }
  return at;
}

/**
 * Flags that contradict each other: `-o` writes the JSON report only, and `--prefix` names the
 * folder itself, leaving `--date` and `--run-id` nothing to fill.
 */
function checkFlags(flags: ValidateFlags): void {
  checkOutputFlags(flags);
  if (flags.prefix !== undefined && (flags.date !== undefined || flags.runId !== undefined)) {
    throw new ConfigError("--prefix cannot be combined with --date or --run-id", {
      code: "cli.prefix_conflict",
      hint: "--prefix names the folder itself; --date and --run-id fill the configured path",
    });
  }
}

/**
 * Runs `rivet validate`: per selected export, verifies the destination against its manifest,
 * then prints the pretty report (stdout) or the JSON array (stdout, or `-o PATH`).
 *
 * @param flags Parsed flags.
 * @param ctx Output and abort signal.
 * @returns 3 when anything was verified wrong, 1 for config/usage errors, else 0 (see
 *   {@linkcode validateExitCode}).
 */
export async function validateCommand(flags: ValidateFlags, ctx: CommandContext): Promise<number> {
  try {
    checkFlags(flags);
    const at = flags.date === undefined ? new Date() : parseDate(flags.date);
    const params = parseParams(flags.param ?? []);
    const config = await loadConfig(flags.config, { params });
    for (const w of config.warnings) ctx.io.err(`Warning: ${w.message}\n`);
    const exports = selectExports(config, flags.export ?? []);
    if (flags.prefix !== undefined && exports.length > 1) {
      throw new ConfigError(
        `--prefix names one folder but ${exports.length} exports are selected`,
        { code: "cli.prefix_needs_one_export", hint: "select the export with -e NAME" },
      );
    }
    const reports: ExportValidation[] = [];
    // The state's file log tells earlier successful runs' files from an interrupted run's;
    // validate reads an existing state file and never creates one.
    const state = await openPermittedState(config);
    const cwd = Deno.cwd();
    try {
      for (const exp of exports) {
        reports.push(
          await validateExport(exp, {
            at,
            runId: flags.runId,
            prefix: flags.prefix,
            cwd,
            sizeOnly: flags.sizeOnly === true,
            signal: ctx.signal,
            state,
            open: (spec) => openForReading(spec, cwd),
          }),
        );
      }
    } finally {
      await state?.close();
    }
    if (flags.format === "json") {
      const text = renderValidateJson(reports);
      if (flags.output === undefined) ctx.io.out(text);
      else {
        await Deno.writeTextFile(flags.output, text);
        ctx.io.err(`report: ${flags.output}\n`);
      }
    } else {
      ctx.io.out(renderValidatePretty(reports));
    }
    return validateExitCode(reports);
  } catch (error) {
    return reportError(error, ctx);
  }
}
