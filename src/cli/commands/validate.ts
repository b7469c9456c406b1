/**
 * `rivet validate`: destination-only verification of each export's last run against its
 * `manifest.json` and `_SUCCESS`. No source query. What is checked at a destination, and when
 * it fails, is `verifyDestination` (`src/pipeline/verify.ts`); this command places each
 * export's destination, picks what to read, and reports.
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
import { resolve } from "node:path";
import { ConfigError, type ExitCode, toErrorInfo } from "../../core/errors.ts";
import type { DestinationSpec, ExportSpec } from "../../core/spec.ts";
import { loadConfig, selectExports } from "../../config/mod.ts";
import { openDestination } from "../../destinations/mod.ts";
import { hasPartitionToken, resolveDestination } from "../../plan/placeholders.ts";
import { filesOfSuccessfulRuns } from "../../pipeline/leftovers.ts";
import {
  type ExportValidation,
  type ManifestState,
  type SuccessMarkerState,
  type ValidateStatus,
  verifyDestination,
} from "../../pipeline/verify.ts";
import { openStateStore, stateDbPath } from "../../state/mod.ts";
import type { StateStore } from "../../core/state.ts";
import { redact } from "../../_util/redact.ts";
import type { CommandContext } from "../main.ts";
import { reportError } from "../main.ts";
import { parseParams } from "./run.ts";

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

/** A report for an export that was not checked. */
function unchecked(
  exp: ExportSpec,
  uri: string,
  status: "skipped" | "no_manifest",
  note: string,
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
    notes: [note],
    extraObjects: [],
    extraObjectCount: 0,
  };
}

/** How the destination of one export is found: the CLI's placeholder flags. */
interface Placement {
  readonly at: Date;
  readonly runId: string | undefined;
  readonly prefix: string | undefined;
  readonly cwd: string;
}

/** The export's destination with placeholders resolved as `rivet run` resolves them. */
function placeDestination(exp: ExportSpec, placement: Placement): DestinationSpec {
  if (placement.prefix !== undefined) {
    return exp.destination.kind === "local"
      ? { ...exp.destination, path: placement.prefix }
      : { ...exp.destination, prefix: placement.prefix };
  }
  const spec = resolveDestination(exp.destination, { exportName: exp.name, at: placement.at });
  const runId = placement.runId;
  if (runId === undefined) return spec;
  return {
    ...spec,
    ...(spec.path === undefined ? {} : { path: spec.path.replaceAll("{run_id}", runId) }),
    ...(spec.prefix === undefined ? {} : { prefix: spec.prefix.replaceAll("{run_id}", runId) }),
  };
}

/**
 * Validates one export: skips stdout and partition parents, opens the destination (a missing
 * local folder is reported without being created) and verifies it.
 *
 * @param exp The export.
 * @param options Placement flags, `--size-only`, abort signal.
 * @returns Its report; an error that stopped the check is reported with status `error`.
 */
async function validateExport(
  exp: ExportSpec,
  options: Placement & {
    readonly sizeOnly: boolean;
    readonly signal: AbortSignal;
    readonly state: StateStore | undefined;
  },
): Promise<ExportValidation> {
  if (exp.destination.kind === "stdout") {
    return unchecked(exp, "stdout", "skipped", "stdout destination: nothing is kept to validate");
  }
  if (
    options.prefix === undefined && exp.partitionBy !== undefined &&
    hasPartitionToken(exp.destination)
  ) {
    return unchecked(
      exp,
      exp.destination.path ?? exp.destination.prefix ?? "",
      "skipped",
      "partition_by writes one folder per partition: validate one with " +
        `-e ${exp.name} --prefix <its folder>`,
    );
  }
  const spec = placeDestination(exp, options);
  try {
    if (spec.kind === "local") {
      // LocalDestination.open creates its folder; validate must not leave one behind.
      const root = resolve(options.cwd, spec.path ?? spec.prefix ?? ".");
      try {
        await Deno.lstat(root);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        return unchecked(
          exp,
          `file://${root}`,
          "no_manifest",
          "the destination folder does not exist: has this export run (with this {date})?",
        );
      }
    }
    await using dest = await openDestination(spec, { baseDir: options.cwd });
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
      ...unchecked(exp, describeSpec(spec, options.cwd), "skipped", ""),
      status: "error",
      notes: [],
      error: { code: info.code, message, exitCode: info.exitCode },
    };
  }
}

/** A destination's root for messages when it could not be opened. */
function describeSpec(spec: DestinationSpec, cwd: string): string {
  const rest = spec.prefix ?? "";
  switch (spec.kind) {
    case "local":
      return `file://${resolve(cwd, spec.path ?? spec.prefix ?? ".")}`;
    case "s3":
      return `s3://${spec.bucket ?? "?"}/${rest}`;
    case "gcs":
      return `gs://${spec.bucket ?? "?"}/${rest}`;
    case "azure":
      return `azure://${spec.accountName ?? "?"}/${spec.bucket ?? "?"}/${rest}`;
    case "stdout":
      return "stdout";
  }
}

/**
 * The exit code of a validate run: 3 when anything was verified wrong, else the scariest class
 * of an error that stopped a check (2 before 1), else 0.
 *
 * @param reports The per-export reports.
 * @returns 0, 1, 2 or 3.
 */
export function validateExitCode(reports: readonly ExportValidation[]): ExitCode {
  if (reports.some((r) => r.status === "failed")) return 3;
  const codes = new Set(reports.flatMap((r) => r.error ? [r.error.exitCode] : []));
  for (const code of [4, 2] as const) if (codes.has(code)) return code;
  return codes.size > 0 ? 1 : 0;
}

const STATUS_LABEL: Record<ValidateStatus, string> = {
  passed: "PASSED",
  failed: "FAILED",
  no_manifest: "NO MANIFEST",
  skipped: "SKIPPED",
  error: "ERROR",
};

const MANIFEST_LABEL: Record<ManifestState, string> = {
  "self-consistent": "self-consistent",
  inconsistent: "INCONSISTENT",
  unreadable: "UNREADABLE",
  missing: "missing",
};

const SUCCESS_LABEL: Record<SuccessMarkerState, string> = {
  consistent: "consistent",
  missing: "missing",
  mismatch: "MISMATCH",
  absent: "absent (as expected for this run status)",
  unchecked: "not checked",
};

/**
 * Renders the reports for humans: per export its root, status, parts verified, `_SUCCESS` and
 * manifest state, one line per problem and note; then a totals line.
 *
 * @param reports The per-export reports.
 * @returns Redacted text ending with a newline.
 */
export function renderValidatePretty(reports: readonly ExportValidation[]): string {
  const lines: string[] = [];
  for (const r of reports) {
    lines.push(`${r.export}: ${r.uri}`);
    lines.push(`  status:    ${STATUS_LABEL[r.status]}`);
    if (r.error) {
      lines.push(`  error:     ${r.error.message}`);
    } else if (r.status !== "skipped" && r.manifest !== "missing") {
      const how = r.contentVerified ? "size and xxh3 content" : "size only";
      const q = r.partsQuarantined > 0 ? `; ${r.partsQuarantined} quarantined, not checked` : "";
      lines.push(`  parts:     ${r.partsVerified}/${r.partsTotal} verified (${how}${q})`);
      lines.push(`  _SUCCESS:  ${SUCCESS_LABEL[r.successMarker]}`);
      const facts = [
        r.runId === undefined ? undefined : `run ${r.runId}`,
        r.runStatus,
        r.rowCount === undefined ? undefined : `${r.rowCount} rows`,
      ].filter((f) => f !== undefined);
      lines.push(
        `  manifest:  ${MANIFEST_LABEL[r.manifest]}${
          facts.length > 0 ? ` (${facts.join(", ")})` : ""
        }`,
      );
    } else if (r.successMarker === "mismatch") {
      lines.push("  _SUCCESS:  present without manifest.json");
      lines.push("  manifest:  missing");
    }
    for (const p of r.problems) lines.push(`  problem: ${p.message}`);
    for (const n of r.notes) lines.push(`  note: ${n}`);
    // Without a manifest every object is unlisted: the legacy note already counts them.
    if (r.extraObjectCount > 0 && r.manifest !== "missing") {
      const shown = r.extraObjects.slice(0, 5).join(", ");
      const more = r.extraObjectCount > 5 ? `, … (${r.extraObjectCount - 5} more)` : "";
      lines.push(
        `  note: ${r.extraObjectCount} object(s) not in the manifest (advisory): ${shown}${more}`,
      );
    }
  }
  const count = (s: ValidateStatus) => reports.filter((r) => r.status === s).length;
  const totals = (["passed", "failed", "no_manifest", "skipped", "error"] as const)
    .filter((s) => count(s) > 0)
    .map((s) => `${count(s)} ${STATUS_LABEL[s].toLowerCase()}`);
  lines.push(`validate: ${totals.length > 0 ? totals.join(", ") : "no export selected"}`);
  return lines.map((l) => redact(l)).join("\n") + "\n";
}

/**
 * The reports as the JSON array `--format json` prints (snake_case keys).
 *
 * @param reports The per-export reports.
 * @returns Pretty JSON text ending with a newline.
 */
export function renderValidateJson(reports: readonly ExportValidation[]): string {
  const doc = reports.map((r) => ({
    export: r.export,
    uri: r.uri,
    status: r.status,
    run_id: r.runId ?? null,
    run_status: r.runStatus ?? null,
    row_count: r.rowCount ?? null,
    manifest: r.manifest,
    success_marker: r.successMarker,
    parts_total: r.partsTotal,
    parts_verified: r.partsVerified,
    parts_quarantined: r.partsQuarantined,
    content_verified: r.contentVerified,
    problems: r.problems,
    notes: r.notes,
    extra_objects: r.extraObjects,
    extra_object_count: r.extraObjectCount,
    ...(r.error
      ? { error: { code: r.error.code, message: r.error.message, exit_class: r.error.exitCode } }
      : {}),
  }));
  return redact(JSON.stringify(doc, null, 2)) + "\n";
}

/**
 * The state store next to the config when its file exists and may be opened without a
 * permission prompt (a narrowed `deno run` without write access to the config folder validates
 * by the stamps instead); undefined otherwise, or when it is unusable.
 */
async function openExistingState(configDir: string): Promise<StateStore | undefined> {
  try {
    for (const name of ["read", "write"] as const) {
      if ((await Deno.permissions.query({ name, path: configDir })).state !== "granted") {
        return undefined;
      }
    }
    if (!(await Deno.stat(stateDbPath(configDir))).isFile) return undefined;
    return await openStateStore(configDir);
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
  if (flags.output !== undefined && flags.format !== "json") {
    throw new ConfigError("--output requires --format json", {
      code: "cli.output_requires_json",
      hint: "add --format json, or drop -o to print the pretty report",
    });
  }
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
    const state = await openExistingState(config.dir);
    try {
      for (const exp of exports) {
        reports.push(
          await validateExport(exp, {
            at,
            runId: flags.runId,
            prefix: flags.prefix,
            cwd: Deno.cwd(),
            sizeOnly: flags.sizeOnly === true,
            signal: ctx.signal,
            state,
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
