/**
 * Tuning merge: per field, the export's `tuning:` wins over the source's, then the profile's
 * default.
 *
 * Layer: config. Pure, no I/O.
 *
 * @module
 */
import type { ExportSpec, SourceSpec, TuningPlan, TuningProfile } from "../core/spec.ts";

type ProfileDefaults = Omit<TuningPlan, "profile" | "profileLabel">;

/** The three profiles' defaults, as data. */
export const TUNING_PROFILES: Readonly<Record<TuningProfile, ProfileDefaults>> = {
  fast: {
    batchSize: 50_000,
    batchSizeMemoryMb: 64,
    throttleMs: 0,
    statementTimeoutS: 0,
    maxRetries: 1,
    retryBackoffMs: 1_000,
    lockTimeoutS: 0,
    memoryThresholdMb: 0,
    maxBatchMemoryMb: undefined,
    onBatchMemoryExceeded: "warn",
    adaptive: false,
    minParallel: 1,
    maxValueMb: 256,
  },
  balanced: {
    batchSize: 10_000,
    batchSizeMemoryMb: 32,
    throttleMs: 50,
    statementTimeoutS: 300,
    maxRetries: 3,
    retryBackoffMs: 2_000,
    lockTimeoutS: 30,
    memoryThresholdMb: 4_096,
    maxBatchMemoryMb: undefined,
    onBatchMemoryExceeded: "warn",
    adaptive: false,
    minParallel: 1,
    maxValueMb: 256,
  },
  safe: {
    batchSize: 2_000,
    batchSizeMemoryMb: undefined,
    throttleMs: 500,
    statementTimeoutS: 120,
    maxRetries: 5,
    retryBackoffMs: 5_000,
    lockTimeoutS: 10,
    memoryThresholdMb: 2_048,
    maxBatchMemoryMb: undefined,
    onBatchMemoryExceeded: "warn",
    adaptive: false,
    minParallel: 1,
    maxValueMb: 256,
  },
};

/**
 * Merges `source.tuning`, `exports[].tuning` and the profile defaults into the plan an export obeys.
 *
 * The profile is the export's, else the source's, else derived from `source.environment` (`local` →
 * fast, anything else or unset → balanced). A quirk of the Rust tool kept on purpose (the same
 * config gives the same batches in both): when any tuning block exists, `batch_size_memory_mb` and
 * `max_batch_memory_mb` come from the blocks only (unset ⇒ none), so the profile's 32/64 MB memory
 * target applies only without any tuning block.
 *
 * @param source The source spec (its tuning and environment).
 * @param exp The export spec (its tuning).
 * @returns The merged tuning with a human label such as `balanced (default)`.
 *
 * @example
 * ```ts
 * import { mergeTuning } from "./tuning.ts";
 * import type { ExportSpec, SourceSpec } from "../core/spec.ts";
 * const source = { kind: "postgres", environment: "local" } as SourceSpec;
 * const plan = mergeTuning(source, {} as ExportSpec);
 * if (plan.batchSize !== 50_000 || plan.profileLabel !== "fast (default for environment: local)") {
 *   throw new Error(plan.profileLabel);
 * }
 * ```
 */
export function mergeTuning(source: SourceSpec, exp: ExportSpec): TuningPlan {
  const s = source.tuning;
  const e = exp.tuning;
  const explicit = e?.profile ?? s?.profile;
  const environment = source.environment;
  const profile: TuningProfile = explicit ?? (environment === "local" ? "fast" : "balanced");
  const profileLabel = explicit !== undefined
    ? explicit
    : environment === undefined
    ? `${profile} (default)`
    : `${profile} (default for environment: ${environment})`;
  const d = TUNING_PROFILES[profile];
  const anyBlock = s !== undefined || e !== undefined;
  return {
    profile,
    profileLabel,
    batchSize: e?.batchSize ?? s?.batchSize ?? d.batchSize,
    batchSizeMemoryMb: anyBlock
      ? e?.batchSizeMemoryMb ?? s?.batchSizeMemoryMb
      : d.batchSizeMemoryMb,
    throttleMs: e?.throttleMs ?? s?.throttleMs ?? d.throttleMs,
    statementTimeoutS: e?.statementTimeoutS ?? s?.statementTimeoutS ?? d.statementTimeoutS,
    maxRetries: e?.maxRetries ?? s?.maxRetries ?? d.maxRetries,
    retryBackoffMs: e?.retryBackoffMs ?? s?.retryBackoffMs ?? d.retryBackoffMs,
    lockTimeoutS: e?.lockTimeoutS ?? s?.lockTimeoutS ?? d.lockTimeoutS,
    memoryThresholdMb: e?.memoryThresholdMb ?? s?.memoryThresholdMb ?? d.memoryThresholdMb,
    maxBatchMemoryMb: anyBlock ? e?.maxBatchMemoryMb ?? s?.maxBatchMemoryMb : d.maxBatchMemoryMb,
    onBatchMemoryExceeded: e?.onBatchMemoryExceeded ?? s?.onBatchMemoryExceeded ??
      d.onBatchMemoryExceeded,
    adaptive: e?.adaptive ?? s?.adaptive ?? d.adaptive,
    minParallel: e?.minParallel ?? s?.minParallel ?? d.minParallel,
    maxValueMb: e?.maxValueMb ?? s?.maxValueMb ?? d.maxValueMb,
  };
}
