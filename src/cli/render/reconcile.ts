/**
 * Reports of `rivet reconcile` and `rivet repair`: the pretty tables and the repair JSON (the
 * reconcile JSON is `reconcileReportJson`, which `repair --report` reads back).
 *
 * Layer: cli.
 *
 * @module
 */
import type { ChunkAudit, ReconcileReport } from "../../pipeline/reconcile.ts";
import type { RepairResult } from "../../pipeline/repair.ts";
import { redact } from "../../_util/redact.ts";
import { alignTable } from "./table.ts";

/** `[start, end]`, or `(all)` for a chunk without bounds. */
function range(c: { startKey: string | null; endKey: string | null }): string {
  if (c.startKey === null && c.endKey === null) return "(all)";
  return `[${c.startKey ?? "…"}, ${c.endKey ?? "…"}]`;
}

const num = (n: number | undefined) => (n === undefined ? "-" : String(n));

function verdict(c: ChunkAudit): string {
  return c.status === "match" ? "match" : c.status === "mismatch" ? "MISMATCH" : "unknown";
}

/**
 * The pretty report of `rivet reconcile`.
 *
 * @param r The report.
 * @returns Lines of text, ending with a newline.
 */
export function renderReconcilePretty(r: ReconcileReport): string {
  const lines = [
    `reconcile ${r.export}: run ${r.runId} (${r.runStatus}), chunks on ${r.chunkColumn} ` +
    `(${r.chunkShape})`,
    ...alignTable(
      ["CHUNK", "RANGE", "RECORDED", "SOURCE NOW", "RESULT"],
      r.chunks.map((c) => [
        String(c.chunkIndex),
        range(c),
        num(c.recordedRows),
        num(c.sourceRows),
        verdict(c) + (c.note ? ` (${c.note})` : ""),
      ]),
      { right: [0, 2, 3] },
    ).map((l) => `  ${l}`),
    `summary: ${r.matched} match, ${r.mismatched} mismatch, ${r.unknown} unknown` +
    (r.notCompleted > 0 ? `, ${r.notCompleted} chunk(s) not completed (not audited)` : "") +
    " (counted now, after the export)",
  ];
  if (r.verifiedChunkIndex !== undefined) {
    lines.push(`verified boundary: chunk ${r.verifiedChunkIndex} of run ${r.runId}`);
  }
  if (r.mismatched > 0) {
    lines.push(
      `the source now holds other rows than were exported for ${r.mismatched} chunk(s); ` +
        `'rivet repair -e ${r.export}' shows the re-export plan`,
    );
  }
  return redact(lines.join("\n")) + "\n";
}

/**
 * The pretty report of `rivet repair` (a dry run's plan, or what was repaired).
 *
 * @param r The plan or result.
 * @returns Lines of text, ending with a newline.
 */
export function renderRepairPretty(r: RepairResult): string {
  const lines: string[] = [];
  if (r.items.length === 0) {
    lines.push(`repair ${r.export}: nothing to repair (no mismatched chunk in run ${r.runId})`);
  } else {
    lines.push(
      `repair ${r.export}: ${r.items.length} chunk(s) of run ${r.runId}` +
        (r.executed ? ` re-exported as run ${r.repairRunId}` : " (dry run)"),
    );
    for (const item of r.items) {
      const what = `chunk ${item.chunkIndex} ${range(item)}: recorded ${num(item.recordedRows)}, ` +
        `source now ${num(item.sourceRows)}`;
      if (item.status === "planned") {
        lines.push(`  ${what} → would re-export this range as new files (old files kept)`);
      } else if (item.status === "repaired") {
        lines.push(
          `  ${what} → repaired: ${item.rows} rows in ${
            (item.files ?? []).join(", ") || "no file"
          }`,
        );
      } else {
        lines.push(`  ${what} → FAILED: ${item.error?.message ?? "unknown error"}`);
      }
    }
    lines.push(
      r.executed
        ? "the old files are kept and manifest.json is not rewritten: the repaired files are " +
          "outside the manifest, recorded in the state's file log (rivet state files)"
        : "nothing was written; run again with --execute to re-export these chunks",
    );
  }
  for (const c of r.unknown) {
    lines.push(
      `  chunk ${c.chunkIndex} ${range(c)}: not repaired, its verdict is unknown (${
        c.note ?? "no count"
      }); reconcile again`,
    );
  }
  return redact(lines.join("\n")) + "\n";
}

/**
 * The JSON of `rivet repair --format json`.
 *
 * @param r The plan or result.
 * @returns Pretty-printed JSON with a trailing newline.
 */
export function renderRepairJson(r: RepairResult): string {
  const doc = {
    export: r.export,
    run_id: r.runId,
    repair_run_id: r.repairRunId ?? null,
    executed: r.executed,
    manifest_rewritten: false,
    chunks: r.items.map((i) => ({
      chunk_index: i.chunkIndex,
      start_key: i.startKey,
      end_key: i.endKey,
      recorded_rows: i.recordedRows ?? null,
      source_rows: i.sourceRows ?? null,
      status: i.status,
      rows: i.rows ?? null,
      files: i.files ?? [],
      ...(i.error ? { error: { code: i.error.code, message: i.error.message } } : {}),
    })),
    unknown_chunks: r.unknown.map((c) => c.chunkIndex),
  };
  return redact(JSON.stringify(doc, null, 2)) + "\n";
}
