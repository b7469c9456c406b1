/**
 * `rivet check`: the preflight of each export, before any run. Per export: strategy, mode, the
 * catalog's row estimate and width, the cursor range, access (the query really runs, for no
 * row), the verdict EFFICIENT/ACCEPTABLE/DEGRADED/UNSAFE with the recommended profile and
 * `parallel`, and warnings with suggestions; then each distinct destination's credentials are
 * probed (as `rivet doctor` does). `--type-report` lists every column's source type, Arrow type
 * and fidelity; `--target` judges fidelity for the reader that loads the files.
 *
 * Exit codes: 1 when an export cannot run (a missing table or column, an unsupported column type
 * without a `columns:` override, a column the format cannot write such as a list in CSV, a
 * chunking that cannot be planned) or a destination refuses the probe; with `--strict`, also 1
 * when any column is lossy or unsupported (for the target, if one is set): a type choice is fixed
 * in the config, like any other config error. 0 otherwise: warnings and verdicts are advice.
 *
 * Layer: cli.
 *
 * @module
 */
import { ConfigError, InterruptedError } from "../../core/errors.ts";
import type { ExportJob } from "../../core/job.ts";
import type { ColumnInfo } from "../../core/source.ts";
import type { ConfigSpec } from "../../core/spec.ts";
import { checkRunnable, loadConfig, selectExports } from "../../config/mod.ts";
import { processEnv } from "../../engines/openers.ts";
import { openSource } from "../../sources/mod.ts";
import { preflight } from "../../pipeline/preflight.ts";
import { resolveJob } from "../../plan/resolve.ts";
import { judgeForTarget, parseTarget, type Target, TARGET_NAMES } from "../../plan/targets.ts";
import type { CommandContext } from "../main.ts";
import { reportError } from "../main.ts";
import { checkDestinations, type CheckResult, formatCheck } from "../probe_checks.ts";
import {
  checkJson,
  checkPretty,
  type CheckReport,
  type ExportCheck,
  type TypeReportColumn,
  type Violation,
} from "../render/check.ts";
import { parseParams } from "./run.ts";

/** Options parsed for `rivet check`. */
export interface CheckFlags {
  readonly config: string;
  readonly export?: readonly string[];
  readonly param?: readonly string[];
  readonly typeReport?: boolean;
  readonly target?: string;
  readonly strict?: boolean;
  readonly json?: boolean;
}

/** The target of an export: the flag beats `exports[].target`. */
function targetOf(
  flag: string | undefined,
  spec: ConfigSpec["exports"][number],
): Target | undefined {
  const name = flag ?? spec.target;
  if (name === undefined) return undefined;
  const target = parseTarget(name);
  if (target === undefined) {
    throw new ConfigError(
      `export '${spec.name}': unknown target '${name}'`,
      { code: "check.unknown_target", hint: `use one of: ${TARGET_NAMES.join(", ")}` },
    );
  }
  return target;
}

/**
 * An Arrow type as a reader names it: Arrow JS prints a decimal as `Decimal[12e+2]`, which
 * nobody reads as precision 12, scale 2.
 */
function arrowTypeText(type: object): string {
  const t = type as { precision?: unknown; scale?: unknown; bitWidth?: unknown };
  if (typeof t.precision === "number" && typeof t.scale === "number") {
    return `Decimal${
      typeof t.bitWidth === "number" ? t.bitWidth : 128
    }(${t.precision}, ${t.scale})`;
  }
  return String(type);
}

/** The type report of one export, and its lossy or unsupported columns. */
export function typeReport(
  columns: readonly ColumnInfo[],
  target: Target | undefined,
): { columns: TypeReportColumn[]; violations: Violation[] } {
  const rows: TypeReportColumn[] = [];
  const violations: Violation[] = [];
  for (const c of columns) {
    const judged = target ? judgeForTarget(target, c) : undefined;
    rows.push({
      name: c.name,
      sourceType: c.nativeType,
      ...(c.arrowType ? { arrowType: arrowTypeText(c.arrowType) } : {}),
      fidelity: c.fidelity,
      ...(judged
        ? {
          targetType: judged.targetType,
          targetFidelity: judged.fidelity,
          ...(judged.note ? { note: judged.note } : {}),
        }
        : {}),
    });
    const fidelity = judged?.fidelity ?? c.fidelity;
    if (fidelity === "lossy" || fidelity === "unsupported") {
      violations.push({
        column: c.name,
        fidelity,
        reason: judged?.note ?? c.unsupportedReason ??
          (fidelity === "lossy"
            ? "values lose precision on the way: set a columns: override"
            : "rivet cannot export this type: set a columns: override (e.g. text)"),
      });
    }
  }
  return { columns: rows, violations };
}

/**
 * Runs `rivet check`.
 *
 * @param flags The parsed flags.
 * @param ctx Output and abort signal.
 * @returns 0, 1 (an export cannot run, a destination refused the probe, `--strict` and a lossy
 *   or unsupported column), 2 (the source is unreachable), 130 (interrupted).
 */
export async function checkCommand(flags: CheckFlags, ctx: CommandContext): Promise<number> {
  try {
    const params = parseParams(flags.param ?? []);
    const config = await loadConfig(flags.config, { params, signal: ctx.signal });
    const exports = selectExports(config, flags.export ?? []);
    // What `rivet run` would warn about goes to stderr, as there; stdout keeps the report.
    const { warnings } = checkRunnable(config, exports, { resume: false });
    for (const w of [...config.warnings.map((w) => w.message), ...warnings]) {
      ctx.io.err(`Warning: ${w}\n`);
    }
    const targets = exports.map((e) => targetOf(flags.target, e));
    const jobs: ExportJob[] = [];
    for (const spec of exports) {
      jobs.push(await resolveJob(config, spec, { params, cwd: Deno.cwd(), env: processEnv }));
    }

    const checks: ExportCheck[] = [];
    {
      await using source = await openSource(config.source, jobs[0]!.connection, {
        signal: ctx.signal,
        onWarning: () => {},
      });
      for (const [i, job] of jobs.entries()) {
        const p = await preflight(job, source, {
          signal: ctx.signal,
          checkSchema: formatCheck(job),
        });
        const target = targets[i];
        checks.push({
          preflight: p,
          ...(target ? { target } : {}),
          ...typeReport(p.access.columns, target),
        });
      }
    }
    const destinations: CheckResult[] = [];
    const destinationsOk = await checkDestinations(exports, ctx, (r) => destinations.push(r));
    const report: CheckReport = {
      exports: checks,
      destinations,
      ok: destinationsOk && checks.every((c) => c.preflight.failures.length === 0),
      strictFailed: flags.strict === true && checks.some((c) => c.violations.length > 0),
    };
    ctx.io.out(
      flags.json
        ? checkJson(report)
        : checkPretty(report, { typeReport: flags.typeReport === true || flags.strict === true }),
    );
    if (!report.ok) {
      const failed = checks.filter((c) => c.preflight.failures.length > 0)
        .map((c) => `'${c.preflight.export}'`);
      const what = [
        ...(failed.length > 0 ? [`export ${failed.join(", ")} cannot run as configured`] : []),
        ...(destinationsOk ? [] : ["a destination refused the credentials probe"]),
      ];
      return reportError(
        new ConfigError(`rivet check: ${what.join("; ")}`, {
          code: "check.failed",
          hint: "fix what the report above names, then run rivet check again",
        }),
        ctx,
      );
    }
    if (report.strictFailed) {
      const n = checks.reduce((sum, c) => sum + c.violations.length, 0);
      return reportError(
        new ConfigError(
          `rivet check --strict: ${n} column${n === 1 ? " is" : "s are"} lossy or unsupported`,
          {
            code: "check.strict_violations",
            hint: "set a columns: override for each column listed, or drop --strict to accept them",
          },
        ),
        ctx,
      );
    }
    return 0;
  } catch (error) {
    if (ctx.signal.aborted && !(error instanceof InterruptedError)) {
      return reportError(new InterruptedError(), ctx);
    }
    return reportError(error, ctx);
  }
}
