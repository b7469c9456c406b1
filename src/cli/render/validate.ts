/**
 * The reports of `rivet validate`: pretty text for humans and the `--format json` array. What
 * was verified and the verdict come from the pipeline (`src/pipeline/validate_export.ts`).
 *
 * Layer: cli.
 *
 * @module
 */
import type {
  ExportValidation,
  ManifestState,
  SuccessMarkerState,
  ValidateStatus,
} from "../../pipeline/verify.ts";
import { redact } from "../../_util/redact.ts";

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
