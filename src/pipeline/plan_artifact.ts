/**
 * The plan artifact of `rivet plan` / `rivet apply`: what a run would do, computed without
 * writing data or state, sealed so that `apply` runs exactly that.
 *
 * - {@linkcode computeExportPlan} decides a job's strategy with the run's own code
 *   (`resolveChunking` and `planWindows` of `chunk_plan.ts`: never a second planner), reads the
 *   row estimate from the catalog and takes the incremental cursor from state;
 * - {@linkcode stripSecrets} removes inline secrets from the config document it stores;
 * - {@linkcode sealPlan} stamps times and the integrity hash (xxh3 of the canonical JSON of
 *   everything else); {@linkcode verifyPlan} checks format, version, integrity and age;
 * - {@linkcode checkCursorSnapshots} and {@linkcode checkCredentials} are `apply`'s refusals;
 * - {@linkcode presetOf} turns recorded ranges back into the chunked runner's preset.
 *
 * The artifact is snake_case JSON; each export's `resolved_plan` is the config document (the
 * YAML keys as written, placeholders filled, `query_file` replaced by its text) without secrets.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import { ConfigError, errorFromInfo } from "../core/errors.ts";
import type { RivetEvent } from "../core/events.ts";
import type { ExportJob } from "../core/job.ts";
import type { Source } from "../core/source.ts";
import type { ChunkBoundsEntry, CursorEntry } from "../core/state.ts";
import { xxh3Hex } from "../_util/hash.ts";
import { findUrlUserinfo, redact } from "../_util/redact.ts";
import { tableEstimateSql } from "../plan/catalog.ts";
import type { ChunkShape } from "../plan/plan_hash.ts";
import { type Chunking, planWindows, resolveChunking } from "./chunk_plan.ts";
import { preflight, type PreflightOptions, type Verdict } from "./preflight.ts";
import { probeRows } from "./probe.ts";
import type { ChunkPreset } from "./run_chunked.ts";

/** The `format` field of every plan artifact. */
export const PLAN_FORMAT = "rivet-plan";
/** The artifact version this release writes and reads. */
export const PLAN_VERSION = 1;
const HOUR_MS = 3_600_000;
/** An artifact expires this long after it was created. */
export const PLAN_TTL_MS = 24 * HOUR_MS;

/** A JSON object as stored in the artifact. */
export type JsonRecord = Record<string, unknown>;

/** One recorded chunk window (bounds rendered as the state store keeps them). */
export interface ChunkRange {
  readonly start: string | null;
  readonly end: string | null;
}

/** The chunking of a chunked export, as stored. */
export type ChunkingJson =
  | { kind: "windows"; column: string; shape: ChunkShape; plan_hash: string }
  | { kind: "keyset"; key_column: string; page_size: number }
  | { kind: "snapshot"; reason: string };

/** The cursor an incremental plan was computed from. */
export interface CursorSnapshot {
  readonly cursor_column: string;
  /** The stored cursor, or null when the export has not run yet (every row is read). */
  readonly last_cursor_value: string | null;
}

/** What plan computed for one export. */
export interface PlanComputed {
  readonly chunking: ChunkingJson | null;
  readonly chunk_ranges: ChunkRange[];
  readonly chunk_count: number;
  readonly cursor_snapshot: CursorSnapshot | null;
  readonly row_estimate: number | null;
}

/** Diagnostics of one export (the verdict joins when preflight is wired in). */
export interface PlanDiagnostics {
  /** The preflight's verdict (the rules of `rivet check`). */
  readonly verdict: Verdict;
  readonly warnings: string[];
  readonly recommended_profile: string;
  readonly recommended_parallel: number;
}

/** The knobs that bound a run's resource use, for the pretty summary. */
export interface PlanResources {
  readonly profile: string;
  readonly batch_size: number;
  readonly batch_size_memory_mb: number | null;
  readonly throttle_ms: number;
  readonly memory_threshold_mb: number;
  readonly parallel: number;
}

/** One export of a plan. */
export interface PlannedExport {
  readonly export_name: string;
  readonly strategy: string;
  readonly plan_fingerprint: string;
  /** `{source, export, stripped_secrets}`: the config document of this export. */
  readonly resolved_plan: {
    readonly source: JsonRecord;
    readonly export: JsonRecord;
    readonly stripped_secrets: string[];
  };
  readonly computed: PlanComputed;
  readonly resources: PlanResources;
  readonly diagnostics: PlanDiagnostics;
}

/** Exports that run together. */
export interface PlanWave {
  readonly wave: number;
  readonly exports: string[];
}

/** The artifact without its seal. */
export interface PlanBody {
  readonly rivet_version: string;
  readonly plan_id: string;
  readonly config_path: string;
  /** Config-wide keys of the document (`parallel_exports`, `notifications`, …), no secret. */
  readonly settings: JsonRecord;
  /** What {@linkcode stripSecrets} removed from `settings`. */
  readonly settings_stripped: string[];
  readonly exports: PlannedExport[];
  readonly waves: PlanWave[];
}

/** A sealed plan artifact. */
export interface PlanArtifact extends PlanBody {
  readonly format: typeof PLAN_FORMAT;
  readonly version: typeof PLAN_VERSION;
  readonly created_at: string;
  readonly expires_at: string;
  readonly integrity: string;
}

/**
 * JSON with object keys sorted at every level: the text the integrity hash covers, so that the
 * hash does not depend on key order.
 *
 * @param value Any JSON value.
 * @returns Compact canonical JSON.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as JsonRecord)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

function hashText(text: string): Promise<string> {
  return xxh3Hex(new TextEncoder().encode(text));
}

/** The integrity hash of an artifact: everything but `integrity` itself. */
function integrityOf(artifact: JsonRecord): Promise<string> {
  const { integrity: _ignored, ...rest } = artifact;
  return hashText(canonicalJson(rest)).then((hex) => `xxh3:${hex}`);
}

/**
 * Seals a plan: `created_at` (the clock), `expires_at` (+24 h), `format`, `version` and the
 * integrity hash.
 *
 * @param body The plan.
 * @param now The clock (tests pass an old date to build an old artifact).
 * @returns The artifact.
 */
export async function sealPlan(body: PlanBody, now: Date = new Date()): Promise<PlanArtifact> {
  const unsealed = {
    format: PLAN_FORMAT,
    version: PLAN_VERSION,
    ...body,
    created_at: now.toISOString(),
    expires_at: new Date(now.getTime() + PLAN_TTL_MS).toISOString(),
  };
  return { ...unsealed, integrity: await integrityOf(unsealed) } as PlanArtifact;
}

/** A refusal of a plan file with a stable code. */
function planError(message: string, code: string, hint: string): ConfigError {
  return new ConfigError(message, { code, hint });
}

const REPLAN = "re-run `rivet plan` and apply the new artifact";

/**
 * Verifies an artifact's text: a `rivet-plan` of this version, its integrity hash, its age.
 * Younger than an hour passes silently, up to 24 hours with a warning; older (or past
 * `expires_at`) is refused unless `force`.
 *
 * @param text The file's content.
 * @param options The file (for messages), the clock and `--force`.
 * @returns The artifact and the warnings to print.
 * @throws {ConfigError} `plan.invalid`, `plan.tampered`, `plan.expired`.
 */
export async function verifyPlan(
  text: string,
  options: { path: string; now?: Date; force?: boolean },
): Promise<{ artifact: PlanArtifact; warnings: string[] }> {
  const where = `plan file '${options.path}'`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw planError(
      `${where} is not JSON`,
      "plan.invalid",
      `pass a file written by \`rivet plan -o\``,
    );
  }
  const doc = parsed as JsonRecord;
  if (parsed === null || typeof parsed !== "object" || doc.format !== PLAN_FORMAT) {
    throw planError(
      `${where} is not a rivet plan (no "format": "${PLAN_FORMAT}")`,
      "plan.invalid",
      "pass a file written by `rivet plan --format json -o PATH`",
    );
  }
  if (doc.version !== PLAN_VERSION) {
    throw planError(
      `${where} has plan version ${JSON.stringify(doc.version)}; this rivet reads version ` +
        `${PLAN_VERSION}`,
      "plan.invalid",
      REPLAN + " with this rivet",
    );
  }
  if (typeof doc.integrity !== "string" || doc.integrity !== await integrityOf(doc)) {
    throw planError(
      `${where} does not match its integrity hash: it was changed after \`rivet plan\` wrote it`,
      "plan.tampered",
      REPLAN + "; never edit an artifact by hand",
    );
  }
  const artifact = doc as unknown as PlanArtifact;
  if (!Array.isArray(artifact.exports) || artifact.exports.length === 0) {
    throw planError(`${where} holds no export`, "plan.invalid", REPLAN);
  }
  const now = (options.now ?? new Date()).getTime();
  const created = Date.parse(artifact.created_at);
  const expires = Date.parse(artifact.expires_at);
  if (!Number.isFinite(created) || !Number.isFinite(expires)) {
    throw planError(`${where} has no valid created_at/expires_at`, "plan.invalid", REPLAN);
  }
  const warnings: string[] = [];
  const age = describeAge(now - created);
  if (now > expires || now - created > PLAN_TTL_MS) {
    if (!options.force) {
      throw planError(
        `${where} was created ${age} ago (${artifact.created_at}) and expired at ` +
          `${artifact.expires_at}`,
        "plan.expired",
        `${REPLAN}, or pass --force to apply it anyway`,
      );
    }
    warnings.push(`plan ${artifact.plan_id} expired at ${artifact.expires_at}; applied (--force)`);
  } else if (now - created >= HOUR_MS) {
    warnings.push(
      `plan ${artifact.plan_id} was created ${age} ago (${artifact.created_at}); the data ` +
        "may have changed since (plans expire after 24 hours)",
    );
  }
  return { artifact, warnings };
}

function describeAge(ms: number): string {
  const minutes = Math.max(0, Math.floor(ms / 60_000));
  if (minutes < 120) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return hours < 48 ? `${hours} h` : `${Math.floor(hours / 24)} days`;
}

/**
 * Refuses an artifact whose source credentials were stripped (an inline URL with userinfo, an
 * inline password): `apply` cannot recover them, and never reads the config again.
 *
 * @param artifact A verified artifact.
 * @returns Warnings for stripped secrets that only switch a side feature off.
 * @throws {ConfigError} `plan.credentials_missing`.
 */
export function checkCredentials(artifact: PlanArtifact): string[] {
  const stripped = new Set([
    ...artifact.exports.flatMap((e) => e.resolved_plan.stripped_secrets),
    ...(artifact.settings_stripped ?? []),
  ]);
  const source = [...stripped].filter((s) => s.startsWith("source."));
  if (source.length > 0) {
    throw planError(
      `plan ${artifact.plan_id}: the source credentials (${source.join(", ")}) were written ` +
        "inline in the config, and a plan never stores them",
      "plan.credentials_missing",
      "give the connection as source.url_env, source.url_file or password_env in the config, " +
        "then re-run `rivet plan`",
    );
  }
  return [...stripped].map((s) =>
    `plan ${artifact.plan_id}: ${s} was inline in the config and is not in the plan; ` +
    "apply runs without it (use its *_env form to keep it)"
  );
}

/**
 * Refuses an artifact whose incremental cursor moved since `plan` (another run exported rows
 * in between), unless `force`.
 *
 * @param artifact A verified artifact.
 * @param current The cursor in state now, per export.
 * @param force `--force`.
 * @returns Warnings for snapshots overridden by `force`.
 * @throws {ConfigError} `plan.cursor_moved`.
 */
export function checkCursorSnapshots(
  artifact: PlanArtifact,
  current: (exportName: string) => string | null,
  force: boolean,
): string[] {
  const warnings: string[] = [];
  for (const exp of artifact.exports) {
    const snapshot = exp.computed.cursor_snapshot;
    if (snapshot === null) continue;
    const now = current(exp.export_name);
    if (now === snapshot.last_cursor_value) continue;
    const message = `export '${exp.export_name}': the cursor moved since the plan was made ` +
      `(plan: ${show(snapshot.last_cursor_value)}, state now: ${show(now)})`;
    if (!force) {
      throw planError(
        message,
        "plan.cursor_moved",
        `another run advanced it from ${show(snapshot.last_cursor_value)} to ${show(now)}: ` +
          `${REPLAN}, or pass --force to run from the current cursor`,
      );
    }
    warnings.push(`${message}; running from the current cursor (--force)`);
  }
  return warnings;
}

function show(value: string | null): string {
  return value === null ? "none (first run)" : `'${value}'`;
}

/** Keys whose value is a credential wherever they stand in a config document. */
const SECRET_KEYS = new Set(["password", "webhook_url"]);

/**
 * Whether a config value holds a credential: a URL password (`user:pw@`), a `password=`-style
 * parameter, a registered secret. A user name alone (`postgresql://app@db/x`) is not one: such a
 * URL stays usable in the plan.
 */
function holdsCredential(value: string): boolean {
  if (redact(value) === value) return false;
  const userinfo = findUrlUserinfo(value);
  if (userinfo.some((m) => value.slice(m.userinfo, m.at).includes(":"))) return true;
  let rest = "";
  let copied = 0;
  for (const m of userinfo) {
    rest += value.slice(copied, m.userinfo);
    copied = m.at + 1;
  }
  rest += value.slice(copied);
  return redact(rest) !== rest;
}

/**
 * Removes inline secrets from a config document: `password` and `webhook_url` values are
 * dropped; a value holding a credential (a URL with a password or a `password=` parameter) is
 * redacted, its URL userinfo becoming `REDACTED` (query text is left alone); `*_env` and
 * `url_file` names stay.
 *
 * @param document A config document part (`source`, an export, settings).
 * @param at The path of `document` in the config, for the list.
 * @returns The cleaned copy and the paths of what was stripped.
 */
export function stripSecrets(
  document: JsonRecord,
  at: string,
): { document: JsonRecord; stripped: string[] } {
  const stripped: string[] = [];
  const walk = (value: unknown, path: string, key: string): unknown => {
    if (Array.isArray(value)) return value.map((v, i) => walk(v, `${path}[${i}]`, key));
    if (value !== null && typeof value === "object") {
      const out: JsonRecord = {};
      for (const [k, v] of Object.entries(value as JsonRecord)) {
        const child = `${path}.${k}`;
        if (SECRET_KEYS.has(k) && v !== null && v !== undefined) {
          stripped.push(child);
          continue;
        }
        out[k] = walk(v, child, k);
      }
      return out;
    }
    if (typeof value === "string" && key !== "query" && holdsCredential(value)) {
      stripped.push(path);
      return redact(value);
    }
    return value;
  };
  return { document: walk(document, at, "") as JsonRecord, stripped };
}

/**
 * The waves of a plan: with `parallel_exports` every export in one wave; else one wave per
 * export, in config order.
 *
 * @param names The exports, in config order.
 * @param parallelExports The config's `parallel_exports`.
 * @returns The waves, numbered from 1.
 */
export function planWaves(names: readonly string[], parallelExports: boolean): PlanWave[] {
  if (parallelExports) return [{ wave: 1, exports: [...names] }];
  return names.map((name, i) => ({ wave: i + 1, exports: [name] }));
}

/**
 * The diagnostics of one export: the preflight's verdict and recommendations (the rules of
 * `rivet check`), and the warnings of both the plan and the preflight, each once.
 *
 * @param facts The row estimate, the plan's warnings and the preflight's judgement.
 * @returns Verdict, warnings and the recommended profile and parallel.
 */
export function planDiagnostics(facts: {
  rowEstimate: number | null;
  warnings: readonly string[];
  preflight: {
    readonly verdict: Verdict;
    readonly recommendedProfile: string;
    readonly recommendedParallel: number;
    readonly warnings: readonly { readonly message: string; readonly suggestion: string }[];
  };
}): PlanDiagnostics {
  const warnings = [...facts.warnings];
  for (const w of facts.preflight.warnings) {
    const text = w.suggestion ? `${w.message} (${w.suggestion})` : w.message;
    if (!warnings.includes(w.message) && !warnings.includes(text)) warnings.push(text);
  }
  if (facts.rowEstimate === null) {
    warnings.push("no row estimate (a query export, or the catalog has no statistics yet)");
  }
  return {
    verdict: facts.preflight.verdict,
    warnings,
    recommended_profile: facts.preflight.recommendedProfile,
    recommended_parallel: facts.preflight.recommendedParallel,
  };
}

function chunkingToJson(chunking: Chunking): ChunkingJson {
  switch (chunking.kind) {
    case "windows":
      return {
        kind: "windows",
        column: chunking.column,
        shape: chunking.shape,
        plan_hash: chunking.planHash,
      };
    case "keyset":
      return { kind: "keyset", key_column: chunking.keyColumn, page_size: chunking.pageSize };
    case "snapshot":
      return { kind: "snapshot", reason: chunking.reason };
  }
}

/**
 * The chunked runner's preset from a planned export: the recorded chunking and windows.
 *
 * @param exp A planned export.
 * @returns The preset, or undefined when nothing was recorded (not chunked, `partition_by`).
 */
export function presetOf(exp: PlannedExport): ChunkPreset | undefined {
  const c = exp.computed.chunking;
  if (c === null) return undefined;
  const chunking: Chunking = c.kind === "windows"
    ? { kind: "windows", column: c.column, shape: c.shape, planHash: c.plan_hash }
    : c.kind === "keyset"
    ? { kind: "keyset", keyColumn: c.key_column, pageSize: c.page_size }
    : { kind: "snapshot", reason: c.reason };
  if (chunking.kind !== "windows") return { chunking };
  const windows: ChunkBoundsEntry[] = exp.computed.chunk_ranges.map((r) => ({
    startKey: r.start,
    endKey: r.end,
  }));
  return { chunking, windows };
}

function strategyOf(job: ExportJob, chunking: Chunking | undefined): string {
  const { spec } = job;
  if (spec.mode !== "chunked") return spec.mode;
  if (spec.partitionBy !== undefined) return "chunked (partition_by: ranges at run time)";
  if (!chunking) return "chunked";
  switch (chunking.kind) {
    case "snapshot":
      return "chunked (one snapshot query)";
    case "keyset":
      return `chunked (keyset on ${chunking.keyColumn}, pages of ${chunking.pageSize})`;
    case "windows": {
      const s = chunking.shape;
      const shape = s.kind === "date"
        ? `${s.days}-day windows`
        : s.kind === "dense"
        ? "dense row-number windows"
        : s.kind === "count"
        ? `${s.count} windows`
        : `windows of ${s.size}`;
      return `chunked (${shape} on ${chunking.column})`;
    }
  }
}

/** What {@linkcode computeExportPlan} needs. */
export interface ComputeContext {
  /** An open connection to the job's source. */
  readonly source: Source;
  /** The export's cursor in state, if any. */
  readonly cursor: CursorEntry | undefined;
  /**
   * The config document of the export (`query_file` already replaced by its text) and of the
   * source.
   */
  readonly document: { readonly source: JsonRecord; readonly export: JsonRecord };
  readonly signal?: AbortSignal;
  /** Judges the probed schema against the export's format (as `rivet check` does). */
  readonly checkSchema?: PreflightOptions["checkSchema"];
}

/**
 * Computes what a run of one job would do, without writing anything: for a chunked export the
 * same chunking and windows a run would take (catalog and boundary probes), the row estimate
 * from the catalog for `table:` exports, the incremental cursor from state.
 *
 * @param job The resolved export.
 * @param ctx Source, cursor, documents.
 * @returns The planned export.
 */
export async function computeExportPlan(
  job: ExportJob,
  ctx: ComputeContext,
): Promise<PlannedExport> {
  const { spec } = job;
  const warnings: string[] = job.warnings.map((w) => w.message);
  const emit = (event: RivetEvent) => {
    if (event.type === "warning") warnings.push(event.message);
  };
  const probe = { ...(ctx.signal ? { signal: ctx.signal } : {}), statementTimeoutS: 60 };
  // The judgement of `rivet check`: an export that cannot run is not planned.
  const checked = await preflight(job, ctx.source, {
    ...probe,
    ...(ctx.checkSchema ? { checkSchema: ctx.checkSchema } : {}),
  });
  const failure = checked.failures[0];
  if (failure) throw errorFromInfo(failure);
  let rowEstimate: number | null = null;
  if (spec.query.kind === "table") {
    const table = {
      ...(spec.query.schema ? { schema: spec.query.schema } : {}),
      table: spec.query.table,
    };
    const row = (await probeRows(ctx.source, tableEstimateSql(job.source.kind, table), probe))[0];
    const rows = row?.[0] === undefined ? NaN : Number(row[0]);
    if (Number.isFinite(rows)) rowEstimate = rows;
  }
  let chunking: Chunking | undefined;
  let ranges: ChunkRange[] = [];
  if (spec.mode === "chunked" && spec.partitionBy === undefined) {
    const planCtx = {
      source: ctx.source,
      kind: job.source.kind,
      baseSql: job.baseSql,
      emit,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      statementTimeoutS: job.tuning.statementTimeoutS,
    };
    chunking = await resolveChunking(spec, planCtx);
    if (chunking.kind === "windows") {
      ranges = (await planWindows(spec, chunking, planCtx)).map((w) => ({
        start: w.startKey,
        end: w.endKey,
      }));
    }
  }
  const cursorSnapshot: CursorSnapshot | null = spec.mode === "incremental"
    ? {
      cursor_column: spec.cursorColumn!,
      last_cursor_value: ctx.cursor?.lastCursorValue ?? null,
    }
    : null;
  const chunkCount = chunking === undefined ? 0 : chunking.kind === "windows" ? ranges.length : 1;
  const source = stripSecrets(ctx.document.source, "source");
  const exportDoc = stripSecrets(ctx.document.export, `exports.${spec.name}`);
  const resolved = {
    source: source.document,
    export: exportDoc.document,
    stripped_secrets: [...source.stripped, ...exportDoc.stripped],
  };
  const computed: PlanComputed = {
    chunking: chunking === undefined ? null : chunkingToJson(chunking),
    chunk_ranges: ranges,
    chunk_count: chunkCount,
    cursor_snapshot: cursorSnapshot,
    row_estimate: rowEstimate,
  };
  const { tuning } = job;
  return {
    export_name: spec.name,
    strategy: strategyOf(job, chunking),
    plan_fingerprint: `xxh3:${await hashText(
      canonicalJson({ resolved, base_sql: job.baseSql, chunking: computed.chunking }),
    )}`,
    resolved_plan: resolved,
    computed,
    resources: {
      profile: tuning.profileLabel,
      batch_size: tuning.batchSize,
      batch_size_memory_mb: tuning.batchSizeMemoryMb ?? null,
      throttle_ms: tuning.throttleMs,
      memory_threshold_mb: tuning.memoryThresholdMb,
      parallel: spec.parallel,
    },
    diagnostics: planDiagnostics({ rowEstimate, warnings, preflight: checked }),
  };
}
