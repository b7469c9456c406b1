/**
 * What interrupted runs leave at an export's destination, found before the next run writes:
 *
 * - **staging objects** of this export (`.<name>.tmp` where `<name>` is one of its file names:
 *   a local file a killed run was writing, or a complete object an object store staged for a
 *   renaming commit) hold no committed data and are removed;
 * - **unlisted data objects**: files named like this export's output that the current
 *   `manifest.json` does not list and that no successful run recorded in the state's file log
 *   (a run that crashed after committing some parts, or between an object store's copy and its
 *   delete). They may duplicate rows, but they may also be someone's only copy, so a run only
 *   reports them by name; `rivet validate` fails on them, and a `--resume` moves its own run's
 *   into `_quarantine/<run_id>/`.
 *
 * Only names of this export are considered: `<export>_<YYYYMMDD>_<HHMMSS>` followed by rivet's
 * suffixes (`_part<i>`, `_chunk<i>_<hex>`, `_keyset<p>`, `_p<i>`, or another `_<token>`) and
 * `.parquet`/`.csv`, at the destination root. A file of another export, even one whose name
 * starts with this export's name (`orders_eu_…` next to `orders`), never matches, because the
 * stamp must follow the name. The sweep assumes one writer per export at a time (as the state
 * does): a second run of the same export started meanwhile would lose its staging files.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import type { Destination } from "../core/destination.ts";
import type { EventSink } from "../core/events.ts";
import type { StateStore } from "../core/state.ts";
import { MANIFEST_KEY } from "./manifest.ts";
import { MANIFEST_MAX_BYTES } from "./manifest_check.ts";
import { fileStamp, runStartOf } from "./naming.ts";

/** Names a warning shows before it says how many more there are. */
const NAMES_SHOWN = 10;
/** History rows read from the state: every run an export plausibly has. */
const HISTORY = 1_000_000;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The stamp (`YYYYMMDD_HHMMSS`) of a data file of `exportName` at the destination root, or
 * undefined when `key` is not such a file.
 *
 * @param exportName The export.
 * @param key A key relative to the destination root.
 * @returns The stamp in the name.
 *
 * @example
 * ```ts
 * import { dataFileStamp } from "./leftovers.ts";
 * if (dataFileStamp("orders", "orders_20260102_030405_part1.csv") !== "20260102_030405") {
 *   throw new Error();
 * }
 * if (dataFileStamp("orders", "orders_eu_20260102_030405.csv") !== undefined) throw new Error();
 * if (dataFileStamp("orders", "_quarantine/r/orders_20260102_030405.csv") !== undefined) {
 *   throw new Error();
 * }
 * ```
 */
export function dataFileStamp(exportName: string, key: string): string | undefined {
  const pattern = new RegExp(
    `^${escapeRegExp(exportName)}_(\\d{8}_\\d{6})(?:_[0-9A-Za-z]+)*\\.(?:parquet|csv)$`,
  );
  return pattern.exec(key)?.[1];
}

/**
 * Whether `key` is a data file of `exportName` at the destination root (see the module doc).
 *
 * @param exportName The export.
 * @param key A key relative to the destination root.
 * @returns True for `<export>_<YYYYMMDD>_<HHMMSS>[_…].<parquet|csv>`.
 */
export function isDataFileOf(exportName: string, key: string): boolean {
  return dataFileStamp(exportName, key) !== undefined;
}

/**
 * The files that successful runs of an export committed, from the state's file log (runs whose
 * metrics say `success` or `skipped`; files a resume quarantined are not among them).
 *
 * @param state The state store.
 * @param exportName The export.
 * @returns Their keys.
 */
export async function filesOfSuccessfulRuns(
  state: StateStore,
  exportName: string,
): Promise<Set<string>> {
  const runs = await state.listMetrics({ exportName, last: HISTORY });
  const ok = new Set(runs.filter((r) => r.status !== "failed").map((r) => r.runId));
  const files = await state.listFiles({ exportName, last: HISTORY });
  return new Set(
    files.filter((f) => ok.has(f.runId) && f.status !== "quarantined").map((f) => f.fileName),
  );
}

/** What {@linkcode readManifestListing} found. */
export interface ManifestListing {
  /** Every `parts[].path` (committed or quarantined). */
  readonly paths: ReadonlySet<string>;
  readonly exportName?: string;
  /** `YYYYMMDD_HHMMSS` of the manifest's run start (from its `run_id`). */
  readonly runStamp?: string;
}

/**
 * The paths the `manifest.json` at the destination root lists, or undefined when there is none,
 * it is over {@linkcode MANIFEST_MAX_BYTES}, or it cannot be read as a manifest (it then vouches
 * for nothing).
 *
 * @param destination The export's destination.
 * @param signal Cancels the read.
 * @returns Its paths, export and run stamp.
 */
export async function readManifestListing(
  destination: Destination,
  signal: AbortSignal,
): Promise<ManifestListing | undefined> {
  const meta = await destination.stat(MANIFEST_KEY, { signal });
  if (meta === undefined || meta.size > MANIFEST_MAX_BYTES) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(await new Response(await destination.read(MANIFEST_KEY, { signal })).text());
  } catch (error) {
    if (signal.aborted) throw error;
    return undefined;
  }
  if (typeof doc !== "object" || doc === null) return undefined;
  const m = doc as { parts?: unknown; export_name?: unknown; run_id?: unknown };
  const paths = new Set<string>();
  if (Array.isArray(m.parts)) {
    for (const part of m.parts) {
      const path = (part as { path?: unknown } | null)?.path;
      if (typeof path === "string") paths.add(path);
    }
  }
  const start = typeof m.run_id === "string" ? runStartOf(m.run_id) : undefined;
  return {
    paths,
    ...(typeof m.export_name === "string" ? { exportName: m.export_name } : {}),
    ...(start === undefined ? {} : { runStamp: fileStamp(start) }),
  };
}

/** Options of {@linkcode sweepLeftovers}. */
export interface SweepOptions {
  readonly exportName: string;
  /** The state store, whose file log vouches for the files of successful runs. */
  readonly state?: StateStore;
  readonly emit: EventSink;
  readonly signal: AbortSignal;
  /**
   * The run being resumed: its own files are left to the resume's reconciliation, which
   * quarantines those its state does not track.
   */
  readonly resumeRunId?: string;
}

/** What {@linkcode sweepLeftovers} did. */
export interface SweepResult {
  /** Staging keys removed. */
  readonly removed: readonly string[];
  /** Data files of the export that nothing vouches for, reported and left in place. */
  readonly unlisted: readonly string[];
}

/**
 * Before an export writes: removes its staging leftovers and reports its unlisted data files
 * (see the module doc), each with one warning event (`run.staging_removed`,
 * `run.unlisted_objects`). Never fails the run: a destination that cannot be listed is a
 * warning (`run.leftovers_unchecked`); an interrupt propagates.
 *
 * @param destination The export's destination.
 * @param options Export, state, event sink, signal and the resumed run, if any.
 * @returns The staging keys removed and the unlisted files found.
 */
export async function sweepLeftovers(
  destination: Destination,
  options: SweepOptions,
): Promise<SweepResult> {
  const { exportName, emit, signal } = options;
  if (!destination.capabilities.persistent) return { removed: [], unlisted: [] };
  try {
    // The staging files of a run shared by other hosts may be theirs, being written now.
    const shared = options.state?.chunkLeaseMs !== undefined && options.resumeRunId !== undefined;
    const keep = shared ? runStartOf(options.resumeRunId!) : undefined;
    const removed = await removeStaging(
      destination,
      exportName,
      signal,
      keep === undefined ? undefined : fileStamp(keep),
    );
    if (removed.length > 0) {
      emit({
        type: "warning",
        export: exportName,
        code: "run.staging_removed",
        message: `export '${exportName}': removed ${removed.length} staging object(s) left by ` +
          `an interrupted run: ${namesShown(removed)}`,
      });
    }
    const unlisted = await findUnlisted(destination, options);
    if (unlisted.length > 0) {
      emit({
        type: "warning",
        export: exportName,
        code: "run.unlisted_objects",
        message: `export '${exportName}': ${unlisted.length} object(s) named like this ` +
          "export's files are listed in no manifest and were committed by no successful run " +
          `(left by an interrupted run?): ${namesShown(unlisted)}; they stay where they are, and ` +
          "readers that glob the folder count their rows: check them, then move them aside " +
          "(e.g. into _quarantine/) or delete them (rivet validate lists them too)",
      });
    }
    return { removed, unlisted };
  } catch (error) {
    if (signal.aborted) throw error;
    emit({
      type: "warning",
      export: exportName,
      code: "run.leftovers_unchecked",
      message: `export '${exportName}': could not check the destination for what interrupted ` +
        `runs left: ${error instanceof Error ? error.message : String(error)}`,
    });
    return { removed: [], unlisted: [] };
  }
}

async function removeStaging(
  destination: Destination,
  exportName: string,
  signal: AbortSignal,
  keepStamp?: string,
): Promise<string[]> {
  if (!destination.listStaging || !destination.removeStaging) return [];
  const found: string[] = [];
  for await (const staging of destination.listStaging(`${exportName}_`, { signal })) {
    if (keepStamp !== undefined && dataFileStamp(exportName, staging.finalKey) === keepStamp) {
      continue;
    }
    if (isDataFileOf(exportName, staging.finalKey)) found.push(staging.key);
  }
  for (const key of found) await destination.removeStaging(key, { signal });
  return found;
}

async function findUnlisted(destination: Destination, options: SweepOptions): Promise<string[]> {
  const { exportName, signal } = options;
  const skipStamp = options.resumeRunId === undefined ? undefined : runStartOf(options.resumeRunId);
  const skip = skipStamp === undefined ? undefined : fileStamp(skipStamp);
  const candidates: string[] = [];
  for await (const object of destination.list(`${exportName}_`, { signal })) {
    const stamp = dataFileStamp(exportName, object.key);
    if (stamp !== undefined && stamp !== skip) candidates.push(object.key);
  }
  if (candidates.length === 0) return [];
  const listing = await readManifestListing(destination, signal);
  const unlisted = candidates.filter((key) => !listing?.paths.has(key));
  // The run history is read only when the manifest leaves something unexplained (an export that
  // writes one run per folder never pays for it).
  if (unlisted.length === 0 || !options.state) return unlisted;
  const vouched = await filesOfSuccessfulRuns(options.state, exportName);
  return unlisted.filter((key) => !vouched.has(key));
}

/**
 * Up to ten keys, then how many more: how warnings and validate's problems name files.
 *
 * @param keys The keys.
 * @returns `a, b, …` with `, … (N more)` past the tenth.
 */
export function namesShown(keys: readonly string[]): string {
  const more = keys.length > NAMES_SHOWN ? `, … (${keys.length - NAMES_SHOWN} more)` : "";
  return keys.slice(0, NAMES_SHOWN).join(", ") + more;
}
