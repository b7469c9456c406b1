/**
 * `rivet validate` per export, below the CLI: which exports are skipped (stdout, a partitioned
 * export without `--prefix`), where the destination is, what is read back
 * ({@linkcode verifyDestination}, `verify.ts`), the report of an export that could not be
 * checked, and the exit code of the whole command. The CLI parses the flags, opens the state
 * file and the destination (which needs the Deno runtime) and renders the reports.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ and other pipeline modules only.
 *
 * @module
 */
import type { Destination } from "../core/destination.ts";
import { type ExitCode, toErrorInfo } from "../core/errors.ts";
import type { DestinationSpec, ExportSpec } from "../core/spec.ts";
import type { StateStore } from "../core/state.ts";
import { hasPartitionToken } from "../plan/placeholders.ts";
import { redact } from "../_util/redact.ts";
import { describeDestination, placeDestination, type Placement } from "./destination_root.ts";
import { filesOfSuccessfulRuns } from "./leftovers.ts";
import { type ExportValidation, verifyDestination } from "./verify.ts";

/** What {@linkcode validateExport} needs besides the export and its placement. */
export interface ValidateExportOptions extends Placement {
  /** The folder a relative local path is relative to (absolute). */
  readonly cwd: string;
  /** `--size-only`: `verify: size` exports are checked without reading their bytes back. */
  readonly sizeOnly: boolean;
  readonly signal: AbortSignal;
  /**
   * The state next to the config, when it exists: its file log vouches for the files earlier
   * successful runs committed. Undefined: the file name stamps decide.
   */
  readonly state: StateStore | undefined;
  /**
   * Opens the destination for reading; resolves undefined for a local folder that does not
   * exist (opening a local destination creates its folder, and validate must leave none).
   */
  readonly open: (spec: DestinationSpec) => Promise<Destination | undefined>;
}

/**
 * A report for an export that was not checked.
 *
 * @param exp The export.
 * @param uri Where its output would be.
 * @param status Why it was not checked.
 * @param notes What to tell the user.
 * @returns The report, with nothing verified.
 */
export function unchecked(
  exp: ExportSpec,
  uri: string,
  status: "skipped" | "no_manifest" | "error",
  notes: readonly string[],
): ExportValidation {
  return {
    export: exp.name,
    uri,
    status,
    manifest: "missing",
    successMarker: "unchecked",
    partsTotal: 0,
    partsVerified: 0,
    partsQuarantined: 0,
    contentVerified: false,
    problems: [],
    notes,
    extraObjects: [],
    extraObjectCount: 0,
  };
}

/**
 * Validates one export: skips stdout and partition parents, opens the destination (a missing
 * local folder is reported without being created) and verifies it.
 *
 * @param exp The export.
 * @param options Placement flags, `--size-only`, the state, how to open, abort signal.
 * @returns Its report; an error that stopped the check is reported with status `error`.
 * @throws Only when aborted.
 */
export async function validateExport(
  exp: ExportSpec,
  options: ValidateExportOptions,
): Promise<ExportValidation> {
  if (exp.destination.kind === "stdout") {
    return unchecked(exp, "stdout", "skipped", [
      "stdout destination: nothing is kept to validate",
    ]);
  }
  if (
    options.prefix === undefined && exp.partitionBy !== undefined &&
    hasPartitionToken(exp.destination)
  ) {
    return unchecked(exp, exp.destination.path ?? exp.destination.prefix ?? "", "skipped", [
      "partition_by writes one folder per partition: validate one with " +
      `-e ${exp.name} --prefix <its folder>`,
    ]);
  }
  const spec = placeDestination(exp, options);
  try {
    const opened = await options.open(spec);
    if (opened === undefined) {
      return unchecked(exp, describeDestination(spec, options.cwd), "no_manifest", [
        "the destination folder does not exist: has this export run (with this {date})?",
      ]);
    }
    await using dest = opened;
    const committedByRuns = options.state === undefined
      ? undefined
      : await filesOfSuccessfulRuns(options.state, exp.name);
    return await verifyDestination(dest, {
      exportName: exp.name,
      readContent: exp.verify === "content" || !options.sizeOnly,
      signal: options.signal,
      ...(committedByRuns === undefined ? {} : { committedByRuns }),
    });
  } catch (error) {
    if (options.signal.aborted) throw error;
    const info = toErrorInfo(error);
    const message = redact(info.hint ? `${info.message}; ${info.hint}` : info.message);
    return {
      ...unchecked(exp, describeDestination(spec, options.cwd), "error", []),
      error: { code: info.code, message, exitCode: info.exitCode },
    };
  }
}

/**
 * The exit code of a validate run: 3 when anything was verified wrong, else the scariest class
 * of an error that stopped a check (4, then 2, before 1), else 0.
 *
 * @param reports The per-export reports.
 * @returns 0, 1, 2, 3 or 4.
 *
 * @example
 * ```ts
 * import { validateExitCode } from "./validate_export.ts";
 * if (validateExitCode([]) !== 0) throw new Error("nothing checked is not a failure");
 * ```
 */
export function validateExitCode(reports: readonly ExportValidation[]): ExitCode {
  if (reports.some((r) => r.status === "failed")) return 3;
  const codes = new Set(reports.flatMap((r) => r.error ? [r.error.exitCode] : []));
  for (const code of [4, 2] as const) if (codes.has(code)) return code;
  return codes.size > 0 ? 1 : 0;
}
