/**
 * The `rivet check` report: per export the preflight (strategy, mode, row estimate and width,
 * cursor range, access, verdict, recommendations, warnings with suggestions, failures with hints)
 * and the optional type report; then the destination probes. Pretty text for people, one JSON
 * document (snake_case) for scripts. Both are redacted.
 *
 * Layer: cli.
 *
 * @module
 */
import type { Fidelity } from "../../core/source.ts";
import type { ErrorInfo } from "../../core/errors.ts";
import type { Preflight } from "../../pipeline/preflight.ts";
import type { Target } from "../../plan/targets.ts";
import { redact } from "../../_util/redact.ts";
import type { CheckResult } from "../probe_checks.ts";
import { alignTable } from "./table.ts";

/** One column of the type report. */
export interface TypeReportColumn {
  readonly name: string;
  readonly sourceType: string;
  /** The Arrow type rivet writes; undefined when the column is unsupported. */
  readonly arrowType?: string;
  /** The source's judgement. */
  readonly fidelity: Fidelity;
  /** With a target: its type, its fidelity (never better than the source's), and why. */
  readonly targetType?: string;
  readonly targetFidelity?: Fidelity;
  readonly note?: string;
}

/** A lossy or unsupported column (what `--strict` refuses). */
export interface Violation {
  readonly column: string;
  readonly fidelity: Fidelity;
  readonly reason: string;
}

/** The report of one export. */
export interface ExportCheck {
  readonly preflight: Preflight;
  readonly target?: Target;
  readonly columns: readonly TypeReportColumn[];
  readonly violations: readonly Violation[];
}

/** The whole report. */
export interface CheckReport {
  readonly exports: readonly ExportCheck[];
  readonly destinations: readonly CheckResult[];
  /** Whether every export can run and every destination accepted the probe. */
  readonly ok: boolean;
  /** Whether `--strict` was given and some column is lossy or unsupported. */
  readonly strictFailed: boolean;
}

function errorJson(e: ErrorInfo) {
  return { code: e.code, message: e.message, hint: e.hint ?? null };
}

/**
 * The report as one JSON document (snake_case keys), followed by a newline.
 *
 * @param report The report.
 * @returns The text.
 */
export function checkJson(report: CheckReport): string {
  const doc = {
    ok: report.ok && !report.strictFailed,
    exports: report.exports.map(({ preflight: p, target, columns, violations }) => ({
      export: p.export,
      mode: p.mode,
      strategy: p.strategy,
      row_estimate: p.rowEstimate ?? null,
      row_width_bytes: p.rowWidthBytes ?? null,
      cursor_column: p.cursorColumn ?? null,
      cursor_indexed: p.cursorIndexed ?? null,
      cursor_range: p.cursorRange
        ? { min: p.cursorRange.min ?? null, max: p.cursorRange.max ?? null }
        : null,
      access: {
        ok: p.access.ok,
        columns: p.access.columns.length,
        error: p.access.error ? errorJson(p.access.error) : null,
      },
      verdict: p.verdict,
      recommended_profile: p.recommendedProfile,
      recommended_parallel: p.recommendedParallel,
      warnings: p.warnings,
      failures: p.failures.map(errorJson),
      target: target ?? null,
      columns: columns.map((c) => ({
        name: c.name,
        source_type: c.sourceType,
        arrow_type: c.arrowType ?? null,
        fidelity: c.fidelity,
        ...(target
          ? {
            target_type: c.targetType ?? null,
            target_fidelity: c.targetFidelity ?? null,
            note: c.note ?? null,
          }
          : {}),
      })),
      violations,
    })),
    destinations: report.destinations.map((d) => ({
      ok: d.ok,
      check: d.line,
      hint: d.hint ?? null,
    })),
  };
  return redact(JSON.stringify(doc, null, 2)) + "\n";
}

function rowsText(n: number | undefined): string {
  return n === undefined ? "unknown (no catalog estimate)" : `~${n.toLocaleString("en-US")} rows`;
}

/**
 * The report as text.
 *
 * @param report The report.
 * @param options `typeReport`: print each export's columns.
 * @returns The text, ending in a newline.
 */
export function checkPretty(report: CheckReport, options: { typeReport: boolean }): string {
  const out: string[] = [];
  for (const { preflight: p, target, columns, violations } of report.exports) {
    const field = (label: string, value: string) =>
      out.push(`  ${(label + ":").padEnd(22)}${value}`);
    out.push(`Export '${p.export}'`);
    field("Strategy", p.strategy);
    field("Mode", p.mode);
    field("Row estimate", rowsText(p.rowEstimate));
    field("Row width", p.rowWidthBytes === undefined ? "unknown" : `~${p.rowWidthBytes} B`);
    const range = p.cursorRange;
    field(
      "Cursor range",
      p.cursorColumn === undefined
        ? "-"
        : range
        ? `${p.cursorColumn}: ${range.min ?? "NULL"} .. ${range.max ?? "NULL"}`
        : `${p.cursorColumn}: not read (${
          p.cursorIndexed === false
            ? "no index to read it from cheaply"
            : p.cursorIndexed === undefined
            ? "cannot tell whether it is indexed"
            : "the column is not in the query"
        })`,
    );
    field(
      "Access",
      p.access.ok
        ? `OK (the query runs: ${p.access.columns.length} columns)`
        : `FAILED: ${p.access.error?.message ?? "unknown error"}`,
    );
    field("Verdict", p.verdict);
    field("Recommended profile", p.recommendedProfile);
    field("Recommended parallel", String(p.recommendedParallel));
    for (const w of p.warnings) {
      out.push(`  Warning: ${w.message} [${w.code}]`);
      out.push(`    Suggestion: ${w.suggestion}`);
    }
    for (const f of p.failures) {
      out.push(`  Error: ${f.message}`);
      if (f.hint) out.push(`    Hint: ${f.hint}`);
    }
    if (options.typeReport && columns.length > 0) {
      out.push(`  Type report${target ? ` (target ${target})` : ""}:`);
      const headers = ["COLUMN", "SOURCE TYPE", "ARROW TYPE", "FIDELITY"];
      if (target) headers.push("TARGET TYPE", "TARGET FIDELITY");
      const rows = columns.map((c) => {
        const row = [c.name, c.sourceType, c.arrowType ?? "-", c.fidelity];
        if (target) row.push(c.targetType ?? "-", c.targetFidelity ?? "-");
        return row;
      });
      for (const line of alignTable(headers, rows)) out.push(`    ${line}`);
      for (const v of violations) out.push(`    ${v.fidelity}: '${v.column}': ${v.reason}`);
    }
    out.push("");
  }
  if (report.destinations.length > 0) {
    out.push("Destinations:");
    for (const d of report.destinations) {
      out.push(`  [${d.ok ? "OK" : "FAIL"}] ${d.line}`);
      if (d.hint) out.push(`    Hint: ${d.hint}`);
    }
  }
  return out.map((l) => redact(l).replace(/[\r\n]+\s*/g, " ")).join("\n") + "\n";
}
