/**
 * Verification of one export's output at its destination against its `manifest.json` and
 * `_SUCCESS`, through the {@linkcode Destination} contract only (stat, read, list), so it works
 * for every store. `rivet validate` runs {@linkcode verifyDestination} per export (through
 * `validate_export.ts`); {@linkcode checkPart}, the read-back of one part, is also how `--resume`
 * re-checks the parts of the run it continues against its file log. Nothing here writes to the
 * destination.
 *
 * At the destination root:
 *
 * - `manifest.json` (at most {@linkcode MANIFEST_MAX_BYTES}) parses and is self-consistent
 *   (`manifest_check.ts`);
 * - every committed part exists with the recorded size (and the store's MD5, when it reports
 *   one); with `readContent` its bytes are read back and their xxh3-64 compared with
 *   `content_fingerprint` (without it: size and store MD5 only, no download);
 * - `_SUCCESS` holds `successBody(manifest bytes)` when the run succeeded, and is absent
 *   otherwise;
 * - a data file of this export (`<export>_<YYYYMMDD>_<HHMMSS>[_…].<parquet|csv>` at the root)
 *   that the manifest does not list fails (`object.unlisted`) unless a successful run committed
 *   it: the state's file log vouches for the files of every run whose metrics say success, so
 *   an incremental export's earlier files pass. Without the file log (no state file next to
 *   the config) the stamps decide: a file newer than the manifest's run was left by a run that
 *   never wrote its manifest and fails, an older one is advisory;
 * - every other object the manifest does not list is an advisory note, never a failure.
 *
 * No `manifest.json`: when data files of this export are there, a run crashed before writing
 * it (or it was removed): failed (`run.no_manifest`), the files listed. With none (an empty
 * folder, or only other files) there is nothing to verify: status `no_manifest`, not a failure,
 * since output written before manifests existed, or by another tool, has none; unless `_SUCCESS`
 * exists (a marker without its manifest fails). A manifest of a failed run fails (its output is
 * incomplete); one of a skipped run (`skip_empty`, status `interrupted`) passes.
 *
 * Layer: pipeline. Imports core/, _util/ and other pipeline modules only.
 *
 * @module
 */
import type { Destination, ObjectMeta } from "../core/destination.ts";
import { type ExitCode, RivetError } from "../core/errors.ts";
import type { SignalOptions } from "../core/spec.ts";
import { createXxh3 } from "../_util/hash.ts";
import { MANIFEST_KEY, SUCCESS_KEY, successBody } from "./manifest.ts";
import {
  checkManifest,
  MANIFEST_MAX_BYTES,
  type ParsedManifest,
  type ParsedPart,
  type ValidateProblem,
} from "./manifest_check.ts";
import { dataFileStamp, namesShown } from "./leftovers.ts";
import { fileStamp, runStartOf } from "./naming.ts";

export type { ValidateProblem } from "./manifest_check.ts";

/** Largest `_SUCCESS` read; the real one is 22 bytes. */
const SUCCESS_MAX_BYTES = 4096;
/** Parts checked at once (latency of object stores; a local disk is not slowed by it). */
const PART_CONCURRENCY = 4;
/** Extra object names kept in a report (the count is always exact). */
const EXTRA_OBJECTS_KEPT = 1000;

/** Verdict of one export. */
export type ValidateStatus = "passed" | "failed" | "no_manifest" | "skipped" | "error";
/** State of `manifest.json`. */
export type ManifestState = "self-consistent" | "inconsistent" | "unreadable" | "missing";
/** State of `_SUCCESS` against the manifest. */
export type SuccessMarkerState = "consistent" | "missing" | "mismatch" | "absent" | "unchecked";

/** The report of one export. */
export interface ExportValidation {
  readonly export: string;
  /** Destination root validated (`file:///abs/dir`, `s3://bucket/prefix`, `stdout`). */
  readonly uri: string;
  readonly status: ValidateStatus;
  readonly manifest: ManifestState;
  readonly successMarker: SuccessMarkerState;
  /** `run_id` and `status` recorded in the manifest. */
  readonly runId?: string;
  readonly runStatus?: string;
  /** `row_count` of the manifest. */
  readonly rowCount?: number;
  /** Committed parts listed, and how many passed every check. */
  readonly partsTotal: number;
  readonly partsVerified: number;
  /** Parts recorded as quarantined (moved aside by a resume): not checked. */
  readonly partsQuarantined: number;
  /** Whether part bytes were read back and hashed (false: size and store MD5 only). */
  readonly contentVerified: boolean;
  readonly problems: readonly ValidateProblem[];
  readonly notes: readonly string[];
  /** Objects the manifest does not list (advisory), at most {@linkcode EXTRA_OBJECTS_KEPT}. */
  readonly extraObjects: readonly string[];
  readonly extraObjectCount: number;
  /** Set when status is `error`: what stopped the check. */
  readonly error?: { readonly code: string; readonly message: string; readonly exitCode: ExitCode };
}

/** Options of {@linkcode verifyDestination}. */
export interface VerifyDestinationOptions {
  /** The export, named in notes. */
  readonly exportName: string;
  /** Read every part back and compare its xxh3 fingerprint. */
  readonly readContent: boolean;
  /**
   * The files successful runs of the export committed (the state's file log): they pass when
   * the manifest does not list them. Undefined without a state file: the stamps decide then.
   */
  readonly committedByRuns?: ReadonlySet<string>;
  /** Cancels the reads. */
  readonly signal?: AbortSignal;
}

/** Reads a whole object, or undefined when it is larger than `cap` (the read is cancelled). */
async function readCapped(
  dest: Destination,
  key: string,
  cap: number,
  io: SignalOptions,
): Promise<Uint8Array | undefined> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = (await dest.read(key, io)).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > cap) return undefined;
      chunks.push(value);
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * The xxh3-64 of an object at the destination and its byte count, streamed (never held whole).
 *
 * @param dest The destination.
 * @param key The object's key.
 * @param io Cancels the read.
 * @returns 16 lowercase hex digits and the size in bytes.
 */
export async function hashObject(
  dest: Destination,
  key: string,
  io: SignalOptions,
): Promise<{ xxh3: string; size: number }> {
  const hasher = await createXxh3();
  let size = 0;
  for await (const chunk of await dest.read(key, io)) {
    hasher.update(chunk);
    size += chunk.length;
  }
  return { xxh3: hasher.digest(), size };
}

/** What a committed part should be at the destination: its manifest entry, or its file log row. */
export interface ExpectedPart {
  /** Key relative to the destination root. */
  readonly key: string;
  readonly sizeBytes: number;
  /** xxh3-64 of its bytes, 16 lowercase hex digits; compared only when the content is read. */
  readonly xxh3?: string;
  /** Base64 MD5 of its bytes, compared with the store's MD5 when the store reports one. */
  readonly md5?: string;
}

/** How a part differs from what was recorded (see {@linkcode checkPart}). */
export type PartDrift =
  /** Not there: at the stat, or gone before its bytes were read (`during: "read"`). */
  | { readonly kind: "missing"; readonly during: "stat" | "read" }
  /** Another size (from the stat, or from the bytes read back). */
  | { readonly kind: "size"; readonly size: number }
  /** The store reports another MD5. */
  | { readonly kind: "md5"; readonly md5: string }
  /** Same size, other bytes: the xxh3-64 read back. */
  | { readonly kind: "content"; readonly xxh3: string };

/**
 * Reads one part back and compares it with what was recorded: present, same size, same store
 * MD5 (when both are known), and with `readContent` (and an expected xxh3) the same xxh3-64 of
 * its bytes. The one read-back that `rivet validate` (against the manifest) and `--resume`
 * (against the file log) share; each words the drift its own way.
 *
 * @param dest The destination.
 * @param expected The part as recorded.
 * @param options `readContent`: stream the bytes back and hash them; `signal` cancels.
 * @returns Undefined when the part matches, else how it differs.
 * @throws Errors about what sits at the key (a link, a folder, a key leaving the root) and I/O
 *   errors: the caller decides whether they are a verdict or stop the check.
 */
export async function checkPart(
  dest: Destination,
  expected: ExpectedPart,
  options: { readonly readContent: boolean; readonly signal?: AbortSignal },
): Promise<PartDrift | undefined> {
  const io: SignalOptions = options.signal ? { signal: options.signal } : {};
  const meta = await dest.stat(expected.key, io);
  if (meta === undefined) return { kind: "missing", during: "stat" };
  if (meta.size !== expected.sizeBytes) return { kind: "size", size: meta.size };
  if (meta.md5 !== undefined && expected.md5 !== undefined && meta.md5 !== expected.md5) {
    return { kind: "md5", md5: meta.md5 };
  }
  if (!options.readContent || expected.xxh3 === undefined) return undefined;
  let read: { xxh3: string; size: number };
  try {
    read = await hashObject(dest, expected.key, io);
  } catch (error) {
    if (error instanceof RivetError && error.code === "destination.not_found") {
      return { kind: "missing", during: "read" };
    }
    throw error;
  }
  if (read.size !== expected.sizeBytes) return { kind: "size", size: read.size };
  return read.xxh3 === expected.xxh3 ? undefined : { kind: "content", xxh3: read.xxh3 };
}

/** Errors about what sits at a key (a link, a folder, a key leaving the root): verified wrong. */
function isObjectShapeError(error: unknown): error is RivetError {
  return error instanceof RivetError &&
    ["destination.symlink", "destination.not_a_file", "destination.bad_key"].includes(error.code);
}

/** Metadata of `key`, or a problem when what is there cannot be an object. */
async function statChecked(
  dest: Destination,
  key: string,
  io: SignalOptions,
): Promise<{ meta: ObjectMeta | undefined; problem?: ValidateProblem }> {
  try {
    return { meta: await dest.stat(key, io) };
  } catch (error) {
    if (!isObjectShapeError(error)) throw error;
    return { meta: undefined, problem: { code: "object.unusable", message: error.message } };
  }
}

/** Checks one committed part against its manifest entry; returns its problems (none: verified). */
async function verifyPart(
  dest: Destination,
  part: ParsedPart,
  options: VerifyDestinationOptions,
): Promise<ValidateProblem[]> {
  const name = `part ${part.id} '${part.path}'`;
  let drift: PartDrift | undefined;
  try {
    drift = await checkPart(dest, {
      key: part.path,
      sizeBytes: part.sizeBytes,
      xxh3: part.xxh3,
      ...(part.md5 === undefined ? {} : { md5: part.md5 }),
    }, options);
  } catch (error) {
    if (!isObjectShapeError(error)) throw error;
    return [{ code: "part.unusable", message: `${name}: ${error.message}` }];
  }
  switch (drift?.kind) {
    case undefined:
      return [];
    case "missing":
      return [{
        code: "part.missing",
        message: `${name}: missing${drift.during === "read" ? " (removed while validating)" : ""}`,
      }];
    case "size":
      return [{
        code: "part.size_mismatch",
        message: `${name}: ${drift.size} bytes, the manifest records ${part.sizeBytes}`,
      }];
    case "md5":
      return [{
        code: "part.md5_mismatch",
        message: `${name}: the store reports MD5 ${drift.md5}, the manifest records ${part.md5}`,
      }];
    case "content":
      return [{
        code: "part.fingerprint_mismatch",
        message: `${name}: content fingerprint xxh3:${drift.xxh3}, the manifest records ` +
          `xxh3:${part.xxh3} (same size, different bytes)`,
      }];
  }
}

/** Runs `work` over `items` with at most `limit` at once, keeping results in order. */
async function mapPool<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function printable(bytes: Uint8Array): string {
  const text = new TextDecoder().decode(bytes.subarray(0, 64)).trimEnd();
  return JSON.stringify(text) + (bytes.length > 64 ? "…" : "");
}

/**
 * Verifies one destination root against its `manifest.json` and `_SUCCESS`, through the
 * {@linkcode Destination} contract only (stat, read, list), so it works for every store.
 *
 * @param dest The open destination (persistent).
 * @param options The export's name, whether to read part bytes back, an abort signal.
 * @returns The export's report (`export` is `options.exportName`, `uri` the destination's).
 * @throws Errors that stop the check (I/O, credentials, abort); a wrong object is a problem in
 *   the report instead.
 *
 * @example
 * ```ts ignore
 * import { verifyDestination } from "./verify.ts";
 * const report = await verifyDestination(dest, { exportName: "orders", readContent: true });
 * if (report.status === "failed") console.log(report.problems);
 * ```
 */
export async function verifyDestination(
  dest: Destination,
  options: VerifyDestinationOptions,
): Promise<ExportValidation> {
  const io: SignalOptions = options.signal ? { signal: options.signal } : {};
  const problems: ValidateProblem[] = [];
  const notes: string[] = [];
  const base = {
    export: options.exportName,
    uri: dest.uri,
    partsTotal: 0,
    partsVerified: 0,
    partsQuarantined: 0,
    contentVerified: false,
  };
  const manifestStat = await statChecked(dest, MANIFEST_KEY, io);
  const successStat = await statChecked(dest, SUCCESS_KEY, io);
  for (const s of [manifestStat, successStat]) if (s.problem) problems.push(s.problem);

  const listed = await listAll(dest, io);
  if (manifestStat.meta === undefined && manifestStat.problem === undefined) {
    const others = listed.filter((m) => m.key !== SUCCESS_KEY);
    const ours = others.map((m) => m.key).filter((k) =>
      dataFileStamp(options.exportName, k) !== undefined
    );
    if (successStat.meta !== undefined) {
      problems.push({
        code: "success.without_manifest",
        message: "_SUCCESS exists but manifest.json does not: the marker vouches for nothing; " +
          "re-run the export",
      });
    } else if (ours.length > 0) {
      problems.push({
        code: "run.no_manifest",
        message: `no manifest.json, but ${ours.length} data file(s) of export ` +
          `'${options.exportName}' are here (a run that did not finish?): ${namesShown(ours)}; ` +
          "re-run the export, then move these aside (e.g. into _quarantine/) or delete them",
      });
    } else if (problems.length === 0) {
      notes.push(
        others.length === 0
          ? "the destination holds no objects: has this export run (with this {date})?"
          : `no manifest.json: legacy output, ${others.length} object(s) not verified`,
      );
    }
    return {
      ...base,
      status: problems.length > 0 ? "failed" : "no_manifest",
      manifest: "missing",
      successMarker: successStat.meta === undefined ? "absent" : "mismatch",
      problems,
      notes,
      ...extras(others.map((m) => m.key)),
    };
  }

  let manifestBytes: Uint8Array | undefined;
  let parsed: ParsedManifest | undefined;
  let manifestState: ManifestState = "unreadable";
  if (manifestStat.meta !== undefined) {
    if (manifestStat.meta.size > MANIFEST_MAX_BYTES) {
      problems.push({
        code: "manifest.too_large",
        message: `manifest.json is ${manifestStat.meta.size} bytes, over the ` +
          `${MANIFEST_MAX_BYTES}-byte cap of validate`,
      });
    } else {
      manifestBytes = await readCapped(dest, MANIFEST_KEY, MANIFEST_MAX_BYTES, io);
      if (manifestBytes === undefined) {
        problems.push({
          code: "manifest.too_large",
          message: `manifest.json grew over the ${MANIFEST_MAX_BYTES}-byte cap while being read`,
        });
      }
    }
  }
  if (manifestBytes !== undefined) {
    let doc: unknown;
    let parseError: string | undefined;
    try {
      doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(manifestBytes));
    } catch (error) {
      parseError = error instanceof Error ? error.message : String(error);
    }
    if (parseError !== undefined) {
      problems.push({
        code: "manifest.invalid_json",
        message: `manifest.json is not valid JSON: ${parseError}`,
      });
    } else {
      parsed = checkManifest(doc);
      problems.push(...parsed.problems);
      manifestState = parsed.problems.length === 0 ? "self-consistent" : "inconsistent";
    }
  }

  // _SUCCESS: the marker of a successful run, over the exact manifest bytes.
  let successMarker: SuccessMarkerState = "unchecked";
  const runStatus = parsed?.runStatus;
  if (successStat.meta !== undefined && manifestBytes !== undefined) {
    const body = await readCapped(dest, SUCCESS_KEY, SUCCESS_MAX_BYTES, io);
    const expected = await successBody(manifestBytes);
    if (body === undefined || !equalBytes(body, expected)) {
      successMarker = "mismatch";
      problems.push({
        code: "success.mismatch",
        message: `_SUCCESS does not match manifest.json: it holds ${
          body === undefined ? `${successStat.meta.size} bytes` : printable(body)
        }, expected ${printable(expected)}`,
      });
    } else if (runStatus !== undefined && runStatus !== "success") {
      successMarker = "mismatch";
      problems.push({
        code: "success.unexpected",
        message: `_SUCCESS exists but manifest.json records status '${runStatus}'`,
      });
    } else {
      successMarker = "consistent";
    }
  } else if (successStat.meta === undefined && successStat.problem === undefined) {
    if (runStatus === undefined || runStatus === "success") {
      successMarker = "missing";
      if (runStatus === "success") {
        problems.push({
          code: "success.missing",
          message: "_SUCCESS is missing although manifest.json records a successful run " +
            "(stopped between the two writes?); re-run the export, or resume it",
        });
      }
    } else {
      successMarker = "absent";
    }
  }
  if (runStatus === "failed") {
    problems.push({
      code: "run.failed",
      message: "manifest.json records a failed run: its output is incomplete; re-run the " +
        "export (or resume a checkpointed one)",
    });
  } else if (runStatus === "interrupted") {
    notes.push("the last run was skipped (skip_empty and no rows): no _SUCCESS is expected");
  }
  if (parsed?.exportName !== undefined && parsed.exportName !== options.exportName) {
    notes.push(
      `manifest.json was written by export '${parsed.exportName}' (both exports write here)`,
    );
  }
  if (parsed?.uri !== undefined && parsed.uri !== dest.uri) {
    notes.push(`manifest.json records destination ${parsed.uri} (moved or copied here?)`);
  }

  // Parts: presence, size, store MD5, content fingerprint.
  const parts = parsed?.parts ?? [];
  const partProblems = await mapPool(parts, PART_CONCURRENCY, (p) => verifyPart(dest, p, options));
  const verified = partProblems.filter((list) => list.length === 0).length;
  problems.push(...partProblems.flat());
  if (parsed !== undefined && !parsed.usable) manifestState = "inconsistent";

  const known = new Set([MANIFEST_KEY, SUCCESS_KEY, ...(parsed?.paths ?? [])]);
  const unknown = listed.map((m) => m.key).filter((k) => !known.has(k));
  const quarantine = unknown.filter((k) => k.startsWith("_quarantine/"));
  if (quarantine.length > 0) {
    notes.push(`${quarantine.length} object(s) under _quarantine/ (moved aside by a resume)`);
  }
  // Data files of this export that nothing vouches for: an interrupted run's output.
  const runStart = parsed?.runId === undefined ? undefined : runStartOf(parsed.runId);
  const manifestStamp = parsed?.exportName === options.exportName && runStart !== undefined
    ? fileStamp(runStart)
    : undefined;
  const unlisted = unknown.filter((k) => {
    const stamp = dataFileStamp(options.exportName, k);
    if (stamp === undefined) return false;
    if (options.committedByRuns !== undefined) return !options.committedByRuns.has(k);
    return manifestStamp !== undefined && stamp > manifestStamp;
  });
  if (unlisted.length > 0) {
    problems.push({
      code: "object.unlisted",
      message: `${unlisted.length} data file(s) of export '${options.exportName}' are listed in ` +
        (options.committedByRuns !== undefined
          ? "no manifest and were committed by no successful run"
          : "no manifest and are newer than its run") +
        ` (left by an interrupted run?): ${namesShown(unlisted)}; readers that glob the folder ` +
        "count their rows: move them aside (e.g. into _quarantine/) or delete them",
    });
  }
  const unlistedSet = new Set(unlisted);
  return {
    ...base,
    status: problems.length > 0 ? "failed" : "passed",
    manifest: manifestState,
    successMarker,
    ...(parsed?.runId === undefined ? {} : { runId: parsed.runId }),
    ...(runStatus === undefined ? {} : { runStatus }),
    ...(parsed?.rowCount === undefined ? {} : { rowCount: parsed.rowCount }),
    partsTotal: parsed?.committed ?? 0,
    partsVerified: verified,
    partsQuarantined: parsed?.quarantined ?? 0,
    contentVerified: options.readContent && parts.length > 0,
    problems,
    notes,
    ...extras(unknown.filter((k) => !k.startsWith("_quarantine/") && !unlistedSet.has(k))),
  };
}

async function listAll(dest: Destination, io: SignalOptions): Promise<ObjectMeta[]> {
  const out: ObjectMeta[] = [];
  for await (const meta of dest.list("", io)) out.push(meta);
  return out;
}

function extras(keys: readonly string[]): { extraObjects: string[]; extraObjectCount: number } {
  return { extraObjects: keys.slice(0, EXTRA_OBJECTS_KEPT), extraObjectCount: keys.length };
}
