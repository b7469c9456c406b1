/**
 * The pretty summary of a plan artifact (`rivet plan --format pretty`).
 *
 * Layer: cli.
 *
 * @module
 */
import type { ChunkRange, PlanArtifact, PlannedExport } from "../../pipeline/plan_artifact.ts";
import { redact } from "../../_util/redact.ts";

function range(r: ChunkRange | undefined): string {
  if (r === undefined) return "—";
  return `[${r.start ?? "−∞"}, ${r.end ?? "+∞"}]`;
}

function exportBlock(e: PlannedExport): string[] {
  const c = e.computed;
  const r = e.resources;
  const lines = [
    `export '${e.export_name}'`,
    `  Strategy:        ${e.strategy}`,
  ];
  if (c.chunking?.kind === "windows") {
    lines.push(
      `  Chunks:          ${c.chunk_count} (first ${range(c.chunk_ranges[0])}, last ${
        range(c.chunk_ranges.at(-1))
      })`,
    );
  } else if (c.chunking !== null) {
    lines.push(`  Chunks:          ${c.chunk_count} (${c.chunking.kind})`);
  }
  if (c.cursor_snapshot !== null) {
    const v = c.cursor_snapshot.last_cursor_value;
    lines.push(
      `  Cursor snapshot: ${c.cursor_snapshot.cursor_column} > ${
        v === null ? "(none: first run reads every row)" : v
      }`,
    );
  }
  lines.push(
    `  Row estimate:    ${c.row_estimate === null ? "unknown" : c.row_estimate}`,
    `  Fingerprint:     ${e.plan_fingerprint}`,
    `  Verdict:         ${e.diagnostics.verdict} (recommended: profile ${e.diagnostics.recommended_profile}, parallel ${e.diagnostics.recommended_parallel})`,
    "  Resources:",
    `    profile        ${r.profile}`,
    `    batch size     ${r.batch_size} rows${
      r.batch_size_memory_mb === null ? "" : ` (memory target ${r.batch_size_memory_mb} MB)`
    }`,
    `    batch memory   ${mb(r.batch_size * 200)}–${mb(r.batch_size * 10_240)} at 200 B–10 KB/row`,
    `    throttle       ${r.throttle_ms} ms`,
    `    memory guard   ${r.memory_threshold_mb === 0 ? "off" : `${r.memory_threshold_mb} MB RSS`}`,
    `    parallel       ${r.parallel}`,
  );
  for (const w of e.diagnostics.warnings) lines.push(`  Warning: ${w}`);
  return lines;
}

function mb(bytes: number): string {
  const v = bytes / (1024 * 1024);
  return v >= 10 ? `${Math.round(v)} MB` : `${v.toFixed(1)} MB`;
}

/**
 * The pretty summary of an artifact.
 *
 * @param artifact A sealed plan.
 * @returns Text for stdout, ending with a newline.
 */
export function renderPlanPretty(artifact: PlanArtifact): string {
  const lines = [
    `Plan ${artifact.plan_id} (rivet ${artifact.rivet_version})`,
    `  Config:   ${artifact.config_path}`,
    `  Created:  ${artifact.created_at}`,
    `  Expires:  ${artifact.expires_at}`,
    "",
  ];
  for (const e of artifact.exports) lines.push(...exportBlock(e), "");
  lines.push(
    "Waves:",
    ...artifact.waves.map((w) => `  ${w.wave}: ${w.exports.join(", ")}`),
    "",
    "No data was written. Save the plan with --format json -o PLAN.json, then: rivet apply PLAN.json",
  );
  return redact(lines.join("\n")) + "\n";
}
