/**
 * Runs one single-query export: source → Arrow batches → format → destination, with the fixed write
 * order of ADR-0003 (and docs/run-guarantees.md): encoder finished, upload committed, part
 * recorded, then the manifest, `_SUCCESS` and, last, the incremental cursor. Dependencies are
 * injected so that tests can pass real or in-memory parts.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import type { Destination } from "../core/destination.ts";
import { type ErrorInfo, InterruptedError, SchemaDriftError, toErrorInfo } from "../core/errors.ts";
import { collapsePrefix, exportPrefix } from "../_util/text.ts";
import type { EventSink, ExportStatus, Outcome } from "../core/events.ts";
import type { Format } from "../core/format.ts";
import type { ColumnInfo, Source } from "../core/source.ts";
import type { ExportSpec, TuningPlan } from "../core/spec.ts";
import type { StateStore } from "../core/state.ts";
import { describeDrift, schemaDrift } from "./schema_drift.ts";
import { enforceQuality, qualityOutcome } from "./quality.ts";
import { nextShape, shapeDriftWarnings } from "./shape_drift.ts";
import { crashPoint } from "../_util/test_hook.ts";
import {
  buildManifest,
  MANIFEST_KEY,
  type ManifestHooks,
  type ManifestPart,
  putObject,
  schemaFingerprint,
  UNKNOWN_SCHEMA_FINGERPRINT,
  writeManifestAndSuccess,
} from "./manifest.ts";
import { fileNameTag, partName } from "./naming.ts";
import { abortUncommitted, readStatement, type StagedPart } from "./part_writer.ts";

export { readOptionsFor } from "./part_writer.ts";

/** Everything decided before the export runs. */
export interface ExportPlan {
  readonly spec: ExportSpec;
  readonly runId: string;
  /** The SQL to run. */
  readonly sql: string;
  /** Values bound to the SQL's parameters (MySQL cursor values). */
  readonly params?: readonly (string | number | bigint | boolean | null)[];
  /**
   * Incremental mode: the result column whose value in the last row becomes the new cursor,
   * stored (through `deps.state`) only after every part is committed.
   */
  readonly cursorColumn?: string;
  /** The identity the cursor is stored under (`ExportJob.configIdentity`). */
  readonly cursorIdentity?: string;
  /** Synthetic result columns read by the pipeline but not written (e.g. the coalesced cursor). */
  readonly stripColumns?: readonly string[];
  readonly tuning: TuningPlan;
  /** Start of the run: file names and run id derive from it. */
  readonly startedAt: Date;
  /** For the manifest's `source` block. */
  readonly sourceInfo: {
    readonly engine: string;
    readonly schema?: string;
    readonly table?: string;
  };
  /** `run --validate`: every part is re-counted from its bytes before its commit. */
  readonly validate?: boolean;
}

/** Collaborators of {@linkcode runExport}. */
export interface PipelineDeps {
  readonly source: Source;
  readonly format: Format;
  readonly destination: Destination;
  readonly emit: EventSink;
  readonly signal: AbortSignal;
  /** Clock, injectable for tests. */
  readonly now?: () => Date;
  /** Current resident set size in bytes; sampled after each batch. */
  readonly rss?: () => number;
  /** Where parts and the cursor are recorded; absent for runs without state (tests, stdout). */
  readonly state?: StateStore;
  /** The write-pressure sampler of `adaptive: true` (see `StatementContext.pressure`). */
  readonly pressure?: () => Promise<number | undefined>;
}

/**
 * Runs one export to completion and describes what it did. Never throws for an export failure:
 * the failure is in `outcome.error`, so a multi-export run goes on with the next export.
 *
 * Write order: parts committed (and logged) → `manifest.json` → `_SUCCESS` → cursor
 * (`after_cursor_commit`). The cursor moves only once the run is durable and listed, so a failure
 * or a crash before it exports the same rows again (never skips any). A failure before the
 * manifest and `_SUCCESS` are in place withdraws the parts this run committed (they are listed
 * nowhere and their rows are exported again) and puts a replaced manifest back, so the
 * destination shows the previous run as it was and a retry duplicates nothing.
 *
 * @param plan The resolved export.
 * @param deps Source, format, destination, event sink and abort signal.
 * @returns The outcome.
 */
export async function runExport(plan: ExportPlan, deps: PipelineDeps): Promise<Outcome> {
  const now = deps.now ?? (() => new Date());
  const { spec } = plan;
  const started = now();
  const ext = deps.format.extension;
  let staged: StagedPart[] = [];
  let rows = 0;
  let peakRss = deps.rss?.() ?? 0;
  /** Past this point the run is durable: nothing is withdrawn any more. */
  let durable = false;
  /** The manifest this run replaced, if it wrote one (put back when `_SUCCESS` fails). */
  let replaced: { previous: Uint8Array | undefined } | undefined;
  deps.emit({ type: "export_started", export: spec.name, runId: plan.runId, mode: spec.mode });
  const finish = (status: ExportStatus, error?: unknown): Outcome =>
    outcomeOf(plan, deps, {
      status,
      started,
      finished: now(),
      rows,
      committed: staged.filter((p) => p.committed).map((p) => ({ size: p.size })),
      peakRss,
      error,
    });

  try {
    const drift = await driftGuard(spec, deps);
    // Another run of this export in the same second already holds the plain names: a tag keeps
    // this run's names apart (file names are never reused).
    const tag = await fileNameTag(deps.destination, spec.name, plan.startedAt, deps.signal);
    const nameOf = (index: number, split: boolean) =>
      partName(spec.name, {
        at: plan.startedAt,
        extension: ext,
        index,
        split,
        ...(tag === undefined ? {} : { tag }),
      });
    const result = await readStatement(
      {
        sql: plan.sql,
        params: plan.params ?? [],
        ...(plan.cursorColumn === undefined ? {} : { cursorColumn: plan.cursorColumn }),
        ...(plan.stripColumns === undefined ? {} : { stripColumns: plan.stripColumns }),
      },
      {
        spec,
        tuning: plan.tuning,
        source: deps.source,
        format: deps.format,
        destination: deps.destination,
        emit: deps.emit,
        signal: deps.signal,
        // Without max_file_size there is one part whose final name is known now: object stores
        // then write it in place instead of copying it at commit.
        stagingKey: (index) => nameOf(index, spec.maxFileSize !== undefined),
        ...(deps.rss ? { rss: deps.rss } : {}),
        ...(deps.pressure ? { pressure: deps.pressure } : {}),
        onColumns: drift.check,
        ...(plan.validate ? { recount: true } : {}),
      },
    );
    staged = result.staged;
    rows = result.rows;
    peakRss = Math.max(peakRss, result.peakRss);
    // Quality gates judge the whole read before any part is committed: a failure leaves nothing.
    enforceQuality(spec, result.stats, drift.warn("quality.warning"));
    drift.shape(result.stats?.maxBytes);

    // Commit every part only after the whole read succeeded: a failed read leaves nothing.
    const split = staged.length > 1;
    for (const part of staged) {
      await commitPart(plan, deps, { part, key: nameOf(part.index, split) });
    }

    await drift.saveBaseline(now());
    const status: ExportStatus = rows === 0 && spec.skipEmpty ? "skipped" : "success";
    const persistent = deps.destination.capabilities.persistent;
    // An incremental run without new rows changes nothing at the destination: the previous
    // run's manifest and _SUCCESS keep describing the data there.
    const keepPrevious = persistent && rows === 0 && plan.cursorColumn !== undefined &&
      await deps.destination.stat(MANIFEST_KEY, { signal: deps.signal }) !== undefined;
    if (persistent && !keepPrevious) {
      const previous = staged.length > 0 ? await readManifest(deps.destination) : undefined;
      await writeRunManifest(plan, deps, {
        status,
        startedAt: started,
        finishedAt: now(),
        columns: drift.columns(),
        parts: staged.map((p) => ({
          path: p.committed?.key ?? "",
          rows: p.rows,
          sizeBytes: p.size,
          contentFingerprint: `xxh3:${p.xxh3}`,
          contentMd5: p.md5,
        })),
      }, { onManifest: () => (replaced = { previous }) });
    }
    durable = true;

    // The cursor moves only once the parts are listed in a manifest and marked by _SUCCESS.
    if (plan.cursorColumn !== undefined && rows > 0) {
      if (result.lastCursor === undefined) {
        deps.emit({
          type: "warning",
          export: spec.name,
          code: "run.no_cursor",
          message: `export '${spec.name}': cursor column '${plan.cursorColumn}' gave no storable ` +
            "value (NULL, or a type without a cursor rendering); the next run exports the same rows again",
        });
      } else if (deps.state) {
        await deps.state.advanceCursor({
          exportName: spec.name,
          ...(plan.cursorIdentity === undefined ? {} : { configIdentity: plan.cursorIdentity }),
          lastCursorValue: result.lastCursor,
          lastRunAt: now().toISOString(),
        });
        await crashPoint("after_cursor_commit");
      }
    }
    return finish(status);
  } catch (error) {
    await abortUncommitted(staged, error);
    // Whatever the source reported (a cancelled statement, a closed socket), the cause was the
    // operator's interrupt.
    const failure = deps.signal.aborted
      ? new InterruptedError("interrupted before it finished")
      : error;
    if (!durable) await withdraw(failure);
    return finish("failed", failure);
  }

  /**
   * Takes back what a run that failed before it was durable left at the destination: its
   * committed parts (removed, their file-log rows marked quarantined) and the manifest it wrote
   * (the previous one is put back, or it is removed). Best effort: what cannot be withdrawn stays
   * committed and counts as such, so the duplicate guard sees it.
   */
  async function withdraw(cause: unknown): Promise<void> {
    // The operator's interrupt must not stop the cleanup halfway; a hung store must not block it.
    const signal = AbortSignal.timeout(30_000);
    const parts = staged.filter((p) => p.committed);
    const withdrawn: string[] = [];
    for (const part of parts) {
      const key = part.committed!.key;
      try {
        if (deps.destination.remove) await deps.destination.remove(key, { signal });
        else await deps.destination.move(key, `_quarantine/${plan.runId}/${key}`, { signal });
        delete part.committed;
        withdrawn.push(key);
      } catch {
        // Stays committed: reported through the outcome's file count.
      }
    }
    if (withdrawn.length > 0 && deps.state) {
      await deps.state.markPartsQuarantined({ runId: plan.runId, fileNames: withdrawn })
        .catch(() => {});
    }
    if (replaced !== undefined) {
      try {
        if (replaced.previous) await putObject(deps.destination, MANIFEST_KEY, replaced.previous);
        else await deps.destination.remove?.(MANIFEST_KEY, { signal });
      } catch {
        // The manifest lists parts that are gone: validate reports it.
      }
    }
    if (withdrawn.length > 0) {
      deps.emit({
        type: "warning",
        export: spec.name,
        code: "run.parts_withdrawn",
        message: `export '${spec.name}': the run failed after committing ${withdrawn.length} ` +
          `part(s) (${withdrawn.join(", ")}); they were removed again, so the destination ` +
          `shows the previous run and the cursor did not move${
            cause instanceof Error ? ` (${cause.message})` : ""
          }`,
      });
    }
  }
}

/** The bytes of the destination's current manifest, or undefined when there is none. */
async function readManifest(destination: Destination): Promise<Uint8Array | undefined> {
  try {
    if (await destination.stat(MANIFEST_KEY) === undefined) return undefined;
    return new Uint8Array(await new Response(await destination.read(MANIFEST_KEY)).arrayBuffer());
  } catch {
    // Unreadable: a failed run removes its own manifest instead of restoring this one.
    return undefined;
  }
}

/** What an outcome needs beyond the plan. */
export interface OutcomeFacts {
  readonly status: ExportStatus;
  readonly started: Date;
  readonly finished: Date;
  readonly rows: number;
  /** Committed parts (their sizes). */
  readonly committed: readonly { readonly size: number }[];
  readonly peakRss: number;
  readonly error?: unknown;
}

/**
 * The outcome of an export run, from its plan and what it did.
 *
 * @param plan The export's plan.
 * @param deps Its collaborators (format and destination labels).
 * @param facts Status, times, rows, committed parts, RSS and error.
 * @returns The outcome.
 */
export function outcomeOf(
  plan: Pick<ExportPlan, "spec" | "runId" | "tuning">,
  deps: Pick<PipelineDeps, "format" | "destination">,
  facts: OutcomeFacts,
): Outcome {
  const { spec } = plan;
  return {
    export: spec.name,
    runId: plan.runId,
    status: facts.status,
    mode: spec.mode,
    rows: facts.rows,
    files: facts.committed.length,
    bytes: facts.committed.reduce((sum, p) => sum + p.size, 0),
    durationMs: facts.finished.getTime() - facts.started.getTime(),
    startedAt: facts.started.toISOString(),
    finishedAt: facts.finished.toISOString(),
    output: deps.destination.uri,
    compression: deps.format.compressionLabel,
    format: deps.format.kind,
    peakRssMb: Math.round(facts.peakRss / 1024 / 1024),
    tuningProfile: plan.tuning.profileLabel,
    batchSize: plan.tuning.batchSize,
    ...(facts.error === undefined ? {} : { error: exportErrorInfo(spec.name, facts.error) }),
    ...qualityOutcome(spec, facts),
  };
}

/** The schema drift check of one export run and its baseline update. */
export interface DriftGuard {
  /** Judges the result's columns before the first write; throws `SchemaDriftError` on `fail`. */
  readonly check: (columns: readonly ColumnInfo[]) => void;
  /** The columns seen by the first `check`, as the baseline stores them. */
  readonly columns: () => { name: string; type: string }[];
  /** Warns of shape drift in this run's longest values (kept for `saveBaseline`). */
  readonly shape: (observed: Readonly<Record<string, number>> | undefined) => void;
  /** An emitter of warnings with this code, naming the export in the message given. */
  readonly warn: (code: string) => (message: string) => void;
  /**
   * Stores the new baseline when there was none, it drifted or a longest value grew; a failure
   * only warns.
   */
  readonly saveBaseline: (at: Date) => Promise<void>;
}

/**
 * The drift guard of an export: reads the stored baseline once, then checks the first result's
 * columns against it.
 *
 * @param spec The export.
 * @param deps State store and event sink.
 * @returns The guard.
 */
export async function driftGuard(
  spec: ExportSpec,
  deps: Pick<PipelineDeps, "state" | "emit">,
): Promise<DriftGuard> {
  const baseline = deps.state ? await deps.state.readSchema(spec.name) : undefined;
  let current: { name: string; type: string }[] | undefined;
  let drifted = false;
  let shape: Record<string, number> | undefined;
  const warn = (code: string) => (message: string) =>
    deps.emit({ type: "warning", export: spec.name, code, message });
  return {
    warn,
    shape(observed) {
      if (!observed) return;
      const warnDrift = warn("schema.shape_drift");
      shapeDriftWarnings(spec.name, spec.shapeDriftWarnFactor, baseline?.shape, observed)
        .forEach(warnDrift);
      shape = nextShape(baseline?.shape, observed);
    },
    check(columns) {
      if (current !== undefined) return;
      current = columnTypes(columns);
      const drift = baseline ? schemaDrift(baseline.columns, current) : undefined;
      if (!drift) return;
      drifted = true;
      if (spec.onSchemaDrift === "fail") {
        throw new SchemaDriftError(
          `export '${spec.name}': the result's columns changed since the last run: ${
            describeDrift(drift)
          }`,
          {
            code: "schema.drift",
            hint: "review the change, then set on_schema_drift: warn (or continue) for one run " +
              "to accept it as the new baseline",
          },
        );
      }
      if (spec.onSchemaDrift === "warn") {
        deps.emit({
          type: "warning",
          export: spec.name,
          code: "schema.drift",
          message: `export '${spec.name}': schema changed since the last run: ${
            describeDrift(drift)
          }`,
        });
      }
    },
    columns: () => current ?? [],
    async saveBaseline(at) {
      if (!deps.state || current === undefined) return;
      if (baseline !== undefined && !drifted && shape === undefined) return;
      const kept = shape ?? baseline?.shape;
      try {
        await deps.state.saveSchema({
          exportName: spec.name,
          columns: current,
          updatedAt: at.toISOString(),
          ...(kept ? { shape: kept } : {}),
        });
      } catch (error) {
        deps.emit({
          type: "warning",
          export: spec.name,
          code: "state.schema_failed",
          message: `export '${spec.name}': could not store the schema baseline: ${
            error instanceof Error ? error.message : String(error)
          }`,
        });
      }
    },
  };
}

/**
 * Commits one staged part under its final key, then logs it (visible object first, file log
 * second: the log never names a file that is not there), with the crash points between the
 * steps (docs/run-guarantees.md, "Crash points").
 *
 * @param plan The export's plan.
 * @param deps Destination-side collaborators.
 * @param entry The part, its final key and, for chunks, the chunk index.
 */
export async function commitPart(
  plan: Pick<ExportPlan, "spec" | "runId">,
  deps: Pick<PipelineDeps, "state" | "format" | "emit" | "now">,
  entry: { part: StagedPart; key: string; chunkIndex?: number },
): Promise<void> {
  const { part, key } = entry;
  part.committed = await part.upload.commit(key);
  deps.emit({
    type: "part_committed",
    export: plan.spec.name,
    key,
    rows: part.rows,
    bytes: part.size,
  });
  await crashPoint("after_file_write");
  await recordPart(plan, deps, entry);
  await crashPoint("after_manifest_update");
}

/**
 * Logs a committed part in the state file log; a failure only warns: the part is already
 * committed at the destination, and failing the run now would strand it there.
 *
 * @param plan The export's plan.
 * @param deps State, format and event sink.
 * @param entry The part, its committed key and, for chunks, the chunk and part indexes.
 */
export async function recordPart(
  plan: Pick<ExportPlan, "spec" | "runId">,
  deps: Pick<PipelineDeps, "state" | "format" | "emit" | "now">,
  entry: {
    part: Pick<StagedPart, "rows" | "size" | "xxh3" | "md5" | "index">;
    key: string;
    chunkIndex?: number;
  },
): Promise<void> {
  if (!deps.state) return;
  const now = deps.now ?? (() => new Date());
  const { part, key } = entry;
  try {
    await deps.state.recordPart({
      runId: plan.runId,
      exportName: plan.spec.name,
      fileName: key,
      rowCount: part.rows,
      bytes: part.size,
      format: deps.format.kind,
      compression: deps.format.compressionLabel,
      createdAt: now().toISOString(),
      contentFingerprint: `xxh3:${part.xxh3}`,
      contentMd5: part.md5,
      partIndex: part.index,
      ...(entry.chunkIndex === undefined ? {} : { chunkIndex: entry.chunkIndex }),
    });
  } catch (error) {
    deps.emit({
      type: "warning",
      export: plan.spec.name,
      code: "state.file_log_failed",
      message: `export '${plan.spec.name}': could not record ${key} in the state file log: ${
        error instanceof Error ? error.message : String(error)
      }`,
    });
  }
}

/** A committed part as the manifest lists it. */
export interface RunPart {
  readonly path: string;
  readonly rows: number;
  readonly sizeBytes: number;
  /** `xxh3:<16 hex>`. */
  readonly contentFingerprint: string;
  readonly contentMd5: string;
}

/**
 * Writes `manifest.json` then, on success, `_SUCCESS` (persistent destinations only).
 *
 * @param plan The export's plan.
 * @param deps Destination and format.
 * @param facts Status, times, columns and parts.
 * @param hooks `onManifest` runs once `manifest.json` is committed, before `_SUCCESS`.
 */
export async function writeRunManifest(
  plan: Pick<ExportPlan, "spec" | "runId" | "sourceInfo">,
  deps: Pick<PipelineDeps, "destination" | "format">,
  facts: {
    status: ExportStatus | "failed";
    startedAt: Date;
    finishedAt: Date;
    columns: readonly { name: string; type: string }[];
    parts: readonly RunPart[];
  },
  hooks: ManifestHooks = {},
): Promise<void> {
  if (!deps.destination.capabilities.persistent) return;
  const status = facts.status === "skipped"
    ? "interrupted"
    : facts.status === "failed"
    ? "failed"
    : "success";
  const manifest = await buildManifest({
    runId: plan.runId,
    exportName: plan.spec.name,
    startedAt: facts.startedAt.toISOString(),
    finishedAt: facts.finishedAt.toISOString(),
    status,
    source: plan.sourceInfo,
    destination: { kind: deps.destination.kind, uri: deps.destination.uri },
    format: deps.format.kind,
    compression: deps.format.compressionLabel,
    schemaFingerprint: facts.columns.length > 0
      ? await schemaFingerprint(facts.columns)
      : UNKNOWN_SCHEMA_FINGERPRINT,
    parts: facts.parts.map((p, i): ManifestPart => ({
      partId: i + 1,
      path: p.path,
      rows: p.rows,
      sizeBytes: p.sizeBytes,
      contentFingerprint: p.contentFingerprint,
      contentMd5: p.contentMd5,
      status: "committed",
    })),
  });
  await writeManifestAndSuccess(deps.destination, manifest, status, hooks);
}

function columnTypes(columns: readonly ColumnInfo[]): { name: string; type: string }[] {
  return columns.map((c) => ({
    name: c.name,
    type: c.arrowType ? String(c.arrowType) : "unsupported",
  }));
}

/**
 * An export's error as its outcome carries it: errors wrapped by several layers each naming the
 * export keep the `export 'x': ` prefix once, so every output (stderr, summary, events, metrics)
 * reads cleanly.
 *
 * @param name The export's name.
 * @param error The failure.
 * @returns Its JSON-safe description.
 */
export function exportErrorInfo(name: string, error: unknown): ErrorInfo {
  const info = toErrorInfo(error);
  const message = collapsePrefix(exportPrefix(name), info.message);
  return message === info.message ? info : { ...info, message };
}
