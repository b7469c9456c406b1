/**
 * Plan-build checks: key combinations that parse and load but cannot run (stdout with chunked
 * mode or `max_file_size`, for example), judged when an export is about to run.
 *
 * Layer: config. Pure, no I/O.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";
import type { ExportSpec } from "../core/spec.ts";
import { hasPartitionToken } from "../plan/placeholders.ts";

function refuse(spec: ExportSpec, message: string, code: string, hint?: string): never {
  throw new ConfigError(`export '${spec.name}': ${message}`, {
    code,
    ...(hint === undefined ? {} : { hint }),
  });
}

/**
 * Refuses exports whose keys cannot run together, and returns the warnings of the run.
 *
 * @param exports The selected exports.
 * @param options Whether the run resumes.
 * @returns Warnings to print before the run.
 *
 * @example
 * ```ts
 * import { planChecks } from "./plan_checks.ts";
 * import type { ExportSpec } from "../core/spec.ts";
 * const spec = { name: "o", mode: "chunked", destination: { kind: "stdout" } } as ExportSpec;
 * try { planChecks([spec], { resume: false }); throw new Error("accepted"); }
 * catch (e) { if (!(e as Error).message.includes("stdout")) throw e; }
 * ```
 */
export function planChecks(
  exports: readonly ExportSpec[],
  options: { resume: boolean },
): { warnings: string[] } {
  const warnings: string[] = [];
  for (const spec of exports) {
    const stdout = spec.destination.kind === "stdout";
    if (stdout && spec.mode === "chunked") {
      refuse(
        spec,
        "a stdout destination cannot take a chunked export (chunks are separate files)",
        "plan.stdout_chunked",
        "write to a local or cloud destination, or use mode: full",
      );
    }
    if (stdout && spec.maxFileSize !== undefined) {
      refuse(
        spec,
        "max_file_size cannot split a stdout destination",
        "plan.stdout_split",
        "remove max_file_size, or write to a local or cloud destination",
      );
    }
    if (spec.chunkByKey !== undefined) {
      const conflicts = [
        ["chunk_column", spec.chunkColumn !== undefined],
        ["chunk_dense", spec.chunkDense],
        ["chunk_by_days", spec.chunkByDays !== undefined],
        ["chunk_count", spec.chunkCount !== undefined],
      ].filter(([, on]) => on).map(([key]) => key);
      if (conflicts.length > 0) {
        refuse(
          spec,
          `chunk_by_key cannot be combined with ${conflicts.join(", ")}`,
          "plan.conflicting_keys",
          "keep chunk_by_key (keyset paging) or the window keys, not both",
        );
      }
      if (spec.query.kind !== "table") {
        refuse(
          spec,
          "chunk_by_key needs table: (the key must be a unique index of that table)",
          "plan.keyset_needs_table",
          "replace query: with table: schema.name",
        );
      }
    }
    if (spec.chunkSizeMemoryMb !== undefined && spec.query.kind !== "table") {
      refuse(
        spec,
        "chunk_size_memory_mb needs table: (the row width comes from the catalog)",
        "plan.memory_size_needs_table",
        "use table:, or set chunk_size",
      );
    }
    if (spec.partitionBy !== undefined) {
      if (spec.partitionBy.trim() === "") {
        refuse(spec, "partition_by is empty", "plan.partition_invalid", "name a date column");
      }
      if (spec.mode === "time_window") {
        refuse(
          spec,
          "partition_by cannot be combined with mode: time_window",
          "plan.partition_invalid",
          "use mode: full or incremental with partition_by",
        );
      }
      if (spec.chunkByKey !== undefined) {
        refuse(
          spec,
          "partition_by cannot be combined with chunk_by_key",
          "plan.partition_invalid",
          "chunk the partitions with chunk_column instead",
        );
      }
      if (spec.mode === "chunked" && spec.chunkColumn === undefined) {
        refuse(
          spec,
          "chunked partitions need an explicit chunk_column (each partition is a query, not a table)",
          "plan.partition_invalid",
          "set chunk_column",
        );
      }
      if (!hasPartitionToken(spec.destination)) {
        refuse(
          spec,
          "partition_by needs {partition} in destination.path or destination.prefix",
          "plan.partition_invalid",
          'e.g. path: "./out/{partition}" (quoted in YAML)',
        );
      }
    }
  }
  for (const spec of exports) {
    if ((spec.quality?.uniqueColumns ?? []).length > 0 && !spec.quality?.uniqueMaxEntries) {
      warnings.push(
        `export '${spec.name}': quality.unique_columns without unique_max_entries keeps every ` +
          "distinct value's hash (16 to 32 bytes each) in memory until the export ends; set " +
          "unique_max_entries to bound it",
      );
    }
    if (spec.quality && spec.destination.kind === "stdout") {
      warnings.push(
        `export '${spec.name}': a stdout destination streams rows as they are read, so the ` +
          "quality gates judge them after they were written; only the exit code (3) reports a " +
          "failure: check it in the pipeline (set -o pipefail)",
      );
    }
  }
  if (options.resume && !exports.some((e) => e.mode === "chunked" && e.chunkCheckpoint)) {
    warnings.push(
      "--resume: no selected export uses checkpointed chunked mode (chunk_checkpoint: true), " +
        "so there is nothing to continue: each export runs from the start, and one whose " +
        "destination already holds _SUCCESS is refused unless --force",
    );
  }
  return { warnings };
}
