/**
 * Quality gates (`quality:`) and the per-statement statistics they and shape drift read. A
 * statement's batches stream through a {@linkcode StatsCollector}: the row count, each rule
 * column's NULL count from the Arrow validity bitmap, for `unique_columns` a set of xxh3-64
 * hashes of the cells' canonical bytes (`row_hash.ts`; NULLs ignored), and each string/binary
 * column's longest value from the value offsets. Everything is columnar: no row objects.
 *
 * The result, {@linkcode StatementStats}, is plain structured-clone data, so a chunk run on a Web
 * Worker reports it in its unit result; chunked runs merge the chunks' stats with
 * {@linkcode mergeStats} and judge the aggregate once, before `manifest.json` and `_SUCCESS`.
 * Single-query runs judge after the read and before any part is committed.
 *
 * Layer: pipeline. Imports core/ and _util/ only.
 *
 * @module
 */
import { type Data, type RecordBatch, Type } from "../core/arrow.ts";
import { DataIntegrityError, toErrorInfo } from "../core/errors.ts";
import type { ExportSpec, QualitySpec } from "../core/spec.ts";
import { assertRenderable, cellIsValid, createCellHasher } from "./row_hash.ts";
import type { ColumnInfo } from "../core/source.ts";

/** One unique column's tracking: a set of 64-bit hashes (open addressing, 0 = empty). */
export interface UniqueState {
  /** Non-NULL values seen. */
  nonNull: number;
  /** Distinct hashes held (the set's size). */
  size: number;
  /** The set reached `unique_max_entries`: tracking stopped, the table is dropped. */
  capped: boolean;
  table: BigInt64Array;
}

/** What a statement (or, merged, a run) read, as the gates and shape drift need it. */
export interface StatementStats {
  rows: number;
  /** NULL count per column named in `null_ratio_max`. */
  nulls: Record<string, number>;
  unique: Record<string, UniqueState>;
  /** Rule columns the output does not have. */
  absent: string[];
  /** Longest value in bytes per string/binary column (shape drift), when tracked. */
  maxBytes: Record<string, number>;
}

/** Accumulates a statement's stats batch by batch. */
export interface StatsCollector {
  /**
   * The written columns, known before the first batch: absent rule columns are noted, unique
   * columns of a type with no canonical rendering refused.
   */
  columns(columns: readonly ColumnInfo[]): void;
  observe(batch: RecordBatch): void;
  result(): StatementStats;
}

const INITIAL_SLOTS = 1024;

function insert(state: UniqueState, hash: bigint, cap: number | undefined): void {
  if (state.capped) return;
  // 0 marks an empty slot: the one hash equal to 0 shares a slot with hash 1.
  const h = hash === 0n ? 1n : hash;
  if ((state.size + 1) * 2 > state.table.length) grow(state);
  const table = state.table;
  const mask = table.length - 1;
  let slot = Number(BigInt.asUintN(32, h)) & mask;
  while (true) {
    const held = table[slot]!;
    if (held === 0n) break;
    if (held === h) return;
    slot = (slot + 1) & mask;
  }
  table[slot] = h;
  state.size += 1;
  if (cap !== undefined && state.size >= cap) {
    state.capped = true;
    state.table = new BigInt64Array(0);
  }
}

function grow(state: UniqueState): void {
  const old = state.table;
  state.table = new BigInt64Array(Math.max(INITIAL_SLOTS, old.length * 2));
  state.size = 0;
  const mask = state.table.length - 1;
  for (const h of old) {
    if (h === 0n) continue;
    let slot = Number(BigInt.asUintN(32, h)) & mask;
    while (state.table[slot] !== 0n) slot = (slot + 1) & mask;
    state.table[slot] = h;
    state.size += 1;
  }
}

function emptyUnique(): UniqueState {
  return { nonNull: 0, size: 0, capped: false, table: new BigInt64Array(INITIAL_SLOTS) };
}

/** The longest value of a Utf8/Binary column, from its offsets. */
function longestValue(data: Data): number {
  const offsets = data.valueOffsets as Int32Array;
  let max = 0;
  // Offsets are sliced with the data: index from 0.
  for (let i = 0; i < data.length; i++) {
    const size = offsets[i + 1]! - offsets[i]!;
    if (size > max) max = size;
  }
  return max;
}

/**
 * The collector of an export's statements, or undefined when neither a quality gate nor shape
 * drift tracking needs one.
 *
 * @param spec The export (`quality`, `shape_drift_warn_factor`).
 * @returns The collector.
 */
export async function statsCollectorFor(
  spec: Pick<ExportSpec, "name" | "quality" | "shapeDriftWarnFactor">,
): Promise<StatsCollector | undefined> {
  const quality = spec.quality;
  const shape = spec.shapeDriftWarnFactor > 0;
  if (!quality && !shape) return undefined;
  const nullColumns = Object.keys(quality?.nullRatioMax ?? {});
  const uniqueColumns = [...new Set(quality?.uniqueColumns ?? [])];
  const hashCells = uniqueColumns.length > 0 ? await createCellHasher() : undefined;
  const stats: StatementStats = { rows: 0, nulls: {}, unique: {}, absent: [], maxBytes: {} };
  for (const name of nullColumns) stats.nulls[name] = 0;
  for (const name of uniqueColumns) stats.unique[name] = emptyUnique();
  return {
    columns(columns) {
      assertRenderable(
        spec.name,
        columns.filter((c) => uniqueColumns.includes(c.name)),
        "quality.unique_columns",
      );
      const present = new Set(columns.map((c) => c.name));
      stats.absent = [...new Set([...nullColumns, ...uniqueColumns])].filter((n) =>
        !present.has(n)
      );
    },
    observe(batch) {
      stats.rows += batch.numRows;
      const fields = batch.schema.fields;
      const indexOf = (name: string) => fields.findIndex((f) => f.name === name);
      for (const name of nullColumns) {
        const i = indexOf(name);
        if (i >= 0) stats.nulls[name]! += (batch.data.children[i] as Data).nullCount;
      }
      for (const name of uniqueColumns) {
        const i = indexOf(name);
        const state = stats.unique[name]!;
        if (i < 0 || state.capped) continue;
        const data = batch.data.children[i] as Data;
        const hashes = hashCells!(data, fields[i]);
        for (let row = 0; row < hashes.length; row++) {
          if (!cellIsValid(data, row)) continue;
          state.nonNull += 1;
          insert(state, hashes[row]!, quality?.uniqueMaxEntries);
        }
      }
      if (shape) {
        fields.forEach((field, i) => {
          const id = field.type.typeId;
          if (id !== Type.Utf8 && id !== Type.Binary) return;
          const max = longestValue(batch.data.children[i] as Data);
          stats.maxBytes[field.name] = Math.max(stats.maxBytes[field.name] ?? 0, max);
        });
      }
    },
    result: () => stats,
  };
}

/**
 * Merges two statements' stats (chunks of one run). The unique sets are merged, so a value in
 * two chunks counts as a duplicate.
 *
 * @param into The run's stats so far (changed in place and returned); undefined for the first.
 * @param more A chunk's stats.
 * @param cap `unique_max_entries`.
 * @returns The merged stats.
 */
export function mergeStats(
  into: StatementStats | undefined,
  more: StatementStats,
  cap: number | undefined,
): StatementStats {
  if (!into) return more;
  into.rows += more.rows;
  for (const [name, n] of Object.entries(more.nulls)) {
    into.nulls[name] = (into.nulls[name] ?? 0) + n;
  }
  for (const [name, state] of Object.entries(more.unique)) {
    const target = into.unique[name] ??= emptyUnique();
    target.nonNull += state.nonNull;
    if (state.capped) {
      target.capped = true;
      target.table = new BigInt64Array(0);
      continue;
    }
    for (const h of state.table) if (h !== 0n) insert(target, h, cap);
  }
  into.absent = [...new Set([...into.absent, ...more.absent])];
  for (const [name, max] of Object.entries(more.maxBytes)) {
    into.maxBytes[name] = Math.max(into.maxBytes[name] ?? 0, max);
  }
  return into;
}

/** The gates' verdict: failed checks and warnings, one line each. */
export interface QualityVerdict {
  readonly failures: readonly string[];
  readonly warnings: readonly string[];
}

/**
 * Judges a run's stats against its quality rules.
 *
 * @param quality The rules.
 * @param stats What the run read.
 * @returns Failed checks and warnings.
 *
 * @example
 * ```ts
 * import { judgeQuality } from "./quality.ts";
 * const stats = { rows: 3, nulls: {}, unique: {}, absent: [], maxBytes: {} };
 * const v = judgeQuality({ rowCountMin: 5 }, stats);
 * if (v.failures.length !== 1) throw new Error();
 * ```
 */
export function judgeQuality(quality: QualitySpec, stats: StatementStats): QualityVerdict {
  const failures: string[] = [];
  const warnings: string[] = [];
  if (quality.rowCountMin !== undefined && stats.rows < quality.rowCountMin) {
    failures.push(`row count ${stats.rows} is below row_count_min ${quality.rowCountMin}`);
  }
  if (quality.rowCountMax !== undefined && stats.rows > quality.rowCountMax) {
    failures.push(`row count ${stats.rows} is above row_count_max ${quality.rowCountMax}`);
  }
  const absent = new Set(stats.absent);
  for (const [name, max] of Object.entries(quality.nullRatioMax ?? {})) {
    if (absent.has(name)) {
      failures.push(`null_ratio_max: column '${name}' is not in the output`);
      continue;
    }
    const nulls = stats.nulls[name] ?? 0;
    const ratio = stats.rows === 0 ? 0 : nulls / stats.rows;
    if (ratio > max) {
      failures.push(
        `column '${name}': ${nulls} of ${stats.rows} rows are NULL (ratio ${
          ratio.toFixed(4)
        }), above null_ratio_max ${max}`,
      );
    }
  }
  for (const name of new Set(quality.uniqueColumns ?? [])) {
    if (absent.has(name)) {
      failures.push(`unique_columns: column '${name}' is not in the output`);
      continue;
    }
    const state = stats.unique[name];
    if (!state) continue;
    if (state.capped) {
      warnings.push(
        `unique_columns: column '${name}' reached unique_max_entries ` +
          `(${quality.uniqueMaxEntries}) distinct values; its uniqueness was not checked further`,
      );
      continue;
    }
    const duplicates = state.nonNull - state.size;
    if (duplicates > 0) {
      failures.push(
        `column '${name}': ${duplicates} duplicate value(s) among ${state.nonNull} non-NULL ` +
          "values (unique_columns)",
      );
    }
  }
  return { failures, warnings };
}

/**
 * Applies the export's quality gates to what it read: warnings go to `warn`, failures throw.
 *
 * @param spec The export.
 * @param stats What the run read (undefined when no gate is configured).
 * @param warn Receives each warning line (code `quality.warning`).
 * @param extra Failed checks found by the caller.
 * @throws {DataIntegrityError} `quality.failed`: "N quality check(s) failed" and one line per
 * failed check.
 */
export function enforceQuality(
  spec: Pick<ExportSpec, "name" | "quality" | "mode">,
  stats: StatementStats | undefined,
  warn: (message: string) => void,
  extra: readonly string[] = [],
): void {
  if (!spec.quality || !stats) return;
  const judged = judgeQuality(spec.quality, stats);
  const verdict = { ...judged, failures: [...judged.failures, ...extra] };
  for (const line of verdict.warnings) warn(`export '${spec.name}': ${line}`);
  if (verdict.failures.length === 0) return;
  const chunked = spec.mode === "chunked";
  throw new DataIntegrityError(
    `export '${spec.name}': ${verdict.failures.length} quality check(s) failed:\n` +
      verdict.failures.map((line) => `  - ${line}`).join("\n"),
    {
      code: "quality.failed",
      hint: chunked
        ? "the chunks' files stay committed and listed in the file log, without _SUCCESS: fix " +
          "the data at the source (or the rule) and run the export again"
        : "nothing was written and the cursor did not move: fix the data at the source (or the " +
          "rule) and run the export again",
    },
  );
}

/**
 * The `qualityPassed` of an outcome: true when the rules held, false when the run failed on them,
 * absent without rules or when the run failed before they were judged.
 *
 * @param spec The export.
 * @param facts The run's status and error.
 * @returns The outcome field, or nothing.
 */
export function qualityOutcome(
  spec: Pick<ExportSpec, "quality">,
  facts: { readonly status: string; readonly error?: unknown },
): { qualityPassed?: boolean } {
  if (!spec.quality) return {};
  if (facts.error !== undefined && toErrorInfo(facts.error).code === "quality.failed") {
    return { qualityPassed: false };
  }
  return facts.status === "failed" ? {} : { qualityPassed: true };
}

function emptyStats(): StatementStats {
  return { rows: 0, nulls: {}, unique: {}, absent: [], maxBytes: {} };
}

/**
 * The quality gates of a chunked run, on the aggregate of its chunks. A run continued with
 * `--resume` counts the rows of the files earlier invocations committed (from the file log);
 * their NULLs and values were not seen by this process, so `null_ratio_max` and
 * `unique_columns` fail closed rather than pass on part of the data.
 *
 * @param spec The export.
 * @param stats The merged stats of this invocation's chunks (undefined when none ran).
 * @param warn Receives each warning line.
 * @param run This invocation's files and every part of the run in the file log.
 * @throws {DataIntegrityError} `quality.failed`.
 */
export function enforceRunQuality(
  spec: Pick<ExportSpec, "name" | "quality" | "mode">,
  stats: StatementStats | undefined,
  warn: (message: string) => void,
  run: {
    readonly files: readonly { readonly path: string }[];
    readonly priorParts: readonly {
      readonly fileName: string;
      readonly rowCount: number;
      readonly status?: string;
    }[];
  },
): void {
  if (!spec.quality) return;
  const mine = new Set(run.files.map((f) => f.path));
  const earlier = run.priorParts.filter((p) => p.status !== "quarantined" && !mine.has(p.fileName));
  const total = stats ?? emptyStats();
  if (earlier.length === 0) return enforceQuality(spec, total, warn);
  const rows = total.rows + earlier.reduce((sum, p) => sum + p.rowCount, 0);
  const partial = Object.keys(spec.quality.nullRatioMax ?? {}).length > 0 ||
    (spec.quality.uniqueColumns ?? []).length > 0;
  enforceQuality(
    spec,
    { ...total, rows },
    warn,
    partial
      ? [
        `null_ratio_max and unique_columns cannot be judged: ${earlier.length} file(s) of ` +
        "this run were exported by an earlier invocation (--resume); discard the run with " +
        "'rivet state reset-chunks' and export again",
      ]
      : [],
  );
}
