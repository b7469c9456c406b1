/**
 * `rivet validate`: destination-only verification of each export's last run against its
 * `manifest.json` and `_SUCCESS` (rivet-reference.md §1 and §9.4). No source query.
 *
 * Per export, at the destination root with `{date}` resolved for today (UTC; `--date` overrides,
 * so a `{date}` prefix written on another day needs `--date`) and `{run_id}` for `--run-id`:
 *
 * - `manifest.json` (at most {@linkcode MANIFEST_MAX_BYTES}) parses and is self-consistent:
 *   version 1, `part_count` = parts, `row_count` = rows of the committed parts, unique 1-based
 *   part ids and paths, well-formed fields;
 * - every committed part exists with the recorded size (and the store's MD5, when it reports
 *   one); its bytes are read back and their xxh3-64 compared with `content_fingerprint`.
 *   `verify: content` exports are always read; `verify: size` exports too, unless `--size-only`
 *   (size and store MD5 only: no download);
 * - `_SUCCESS` holds `successBody(manifest bytes)` when the run succeeded, and is absent
 *   otherwise;
 * - a data file of this export (`<export>_<YYYYMMDD>_<HHMMSS>[_…].<parquet|csv>` at the root)
 *   that the manifest does not list fails (`object.unlisted`) unless a successful run committed
 *   it: the state's file log next to the config vouches for the files of every run whose
 *   metrics say success, so an incremental export's earlier files pass. Without a state file
 *   (validate run from elsewhere) the stamps decide: a file newer than the manifest's run was
 *   left by a run that never wrote its manifest and fails, an older one is advisory;
 * - every other object the manifest does not list is an advisory note, never a failure.
 *
 * No `manifest.json`: when data files of this export are there, a run crashed before writing
 * it (or it was removed): FAILED (`run.no_manifest`), the files listed, exit 3. With none (an
 * empty folder, or only other files) there is nothing to validate: `NO MANIFEST`, exit 0, as
 * the reference treats output without a manifest, unless `_SUCCESS` exists (a marker without
 * its manifest fails). A manifest of a failed run fails (its output is incomplete); one of a
 * skipped run (`skip_empty`, status `interrupted`) passes. stdout and `partition_by` exports
 * are skipped with a note (validate one partition with `--prefix`).
 *
 * Exit: 3 when anything was verified wrong, else the class of an error that stopped a check
 * (1 config, 2 transient), else 0. Validate never writes to the destination; for a local
 * destination whose folder is missing it does not create it either.
 *
 * Layer: cli.
 *
 * @module
 */
import { resolve } from "node:path";
import type { Destination, ObjectMeta } from "../../core/destination.ts";
import { ConfigError, type ExitCode, RivetError, toErrorInfo } from "../../core/errors.ts";
import type { DestinationSpec, ExportSpec, SignalOptions } from "../../core/spec.ts";
import { loadConfig, selectExports } from "../../config/mod.ts";
import { openDestination } from "../../destinations/mod.ts";
import { hasPartitionToken, resolveDestination } from "../../plan/placeholders.ts";
import { MANIFEST_KEY, SUCCESS_KEY, successBody } from "../../pipeline/manifest.ts";
import { dataFileStamp, filesOfSuccessfulRuns } from "../../pipeline/leftovers.ts";
import { fileStamp, runStartOf } from "../../pipeline/naming.ts";
import { openStateStore, stateDbPath } from "../../state/mod.ts";
import type { StateStore } from "../../core/state.ts";
import { createXxh3 } from "../../_util/hash.ts";
import { redact } from "../../_util/redact.ts";
import type { CommandContext } from "../main.ts";
import { reportError } from "../main.ts";
import { parseParams } from "./run.ts";

/** Options parsed for `rivet validate`. */
export interface ValidateFlags {
  readonly config: string;
  /** `-e NAME` (repeatable): only these exports. */
  readonly export?: readonly string[];
  /** `-p KEY=VALUE` (repeatable). */
  readonly param?: readonly string[];
  /** `--format pretty|json` (pretty). */
  readonly format?: "pretty" | "json";
  /** `-o PATH`: write the JSON report there (requires `--format json`). */
  readonly output?: string;
  /** `--date YYYY-MM-DD`: the day `{date}` stands for (default today, UTC). */
  readonly date?: string;
  /** `--run-id ID`: the value of `{run_id}` in the destination path. */
  readonly runId?: string;
  /** `--prefix P`: validate this path/prefix instead of the configured one (one export). */
  readonly prefix?: string;
  /** `--size-only`: `verify: size` exports are checked by size (and store MD5) without a read. */
  readonly sizeOnly?: boolean;
}

/** Largest `manifest.json` validate reads (reference: "size-capped"). */
export const MANIFEST_MAX_BYTES = 64 * 1024 * 1024;
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

/** One thing verified wrong, with a stable code. */
export interface ValidateProblem {
  /** E.g. `part.missing`, `part.size_mismatch`, `part.fingerprint_mismatch`, `success.mismatch`. */
  readonly code: string;
  readonly message: string;
}

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

/** A part as parsed from the manifest. */
interface ParsedPart {
  readonly id: number;
  readonly path: string;
  readonly rows: number;
  readonly sizeBytes: number;
  /** 16 lowercase hex digits. */
  readonly xxh3: string;
  readonly md5: string | undefined;
}

/** What the manifest says, after the self-consistency checks. */
interface ParsedManifest {
  readonly problems: ValidateProblem[];
  /** Well-formed committed parts, to verify at the destination. */
  readonly parts: ParsedPart[];
  /** Every path the manifest names (committed or quarantined, well-formed or not). */
  readonly paths: Set<string>;
  readonly committed: number;
  readonly quarantined: number;
  readonly runId?: string;
  readonly runStatus?: string;
  readonly rowCount?: number;
  readonly exportName?: string;
  readonly uri?: string;
  /** False when the document is too broken to check anything else (no parts checked). */
  readonly usable: boolean;
}

const hex16 = /^[0-9a-f]{16}$/;
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const quote = (s: string) => `'${s}'`;

/**
 * Checks a manifest document for self-consistency.
 *
 * @param doc The parsed JSON.
 * @returns Problems (empty when consistent), the parts to verify and the run facts.
 */
function checkManifest(doc: unknown): ParsedManifest {
  const problems: ValidateProblem[] = [];
  const paths = new Set<string>();
  const broken = (code: string, message: string): ParsedManifest => ({
    problems: [{ code, message }],
    parts: [],
    paths,
    committed: 0,
    quarantined: 0,
    usable: false,
  });
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return broken("manifest.invalid", "manifest.json is not a JSON object");
  }
  const m = doc as Record<string, unknown>;
  if (m.manifest_version !== 1) {
    return broken(
      "manifest.version",
      `manifest.json has manifest_version ${JSON.stringify(m.manifest_version)}; this rivet ` +
        "reads version 1 only",
    );
  }
  const text = (key: string): string | undefined => {
    const v = m[key];
    if (typeof v === "string" && v !== "") return v;
    problems.push({ code: "manifest.field", message: `manifest.json ${key} is not a string` });
    return undefined;
  };
  const runId = text("run_id");
  const exportName = text("export_name");
  const runStatus = text("status");
  if (runStatus !== undefined && !["success", "failed", "interrupted"].includes(runStatus)) {
    problems.push({
      code: "manifest.field",
      message: `manifest.json status '${runStatus}' is not success, failed or interrupted`,
    });
  }
  const destination = m.destination as { uri?: unknown } | null | undefined;
  const uri = typeof destination?.uri === "string" ? destination.uri : undefined;
  if (!Array.isArray(m.parts)) {
    return {
      ...broken("manifest.field", "manifest.json parts is not an array"),
      ...(runId === undefined ? {} : { runId }),
      ...(runStatus === undefined ? {} : { runStatus }),
    };
  }
  const parts: ParsedPart[] = [];
  const ids = new Set<number>();
  let committed = 0;
  let quarantined = 0;
  let committedRows = 0;
  let rowsKnown = true;
  m.parts.forEach((raw: unknown, index) => {
    const where = `manifest.json parts[${index}]`;
    if (typeof raw !== "object" || raw === null) {
      committed += 1;
      rowsKnown = false;
      problems.push({ code: "manifest.part", message: `${where} is not an object` });
      return;
    }
    const p = raw as Record<string, unknown>;
    const bad: string[] = [];
    const id = p.part_id;
    if (!Number.isSafeInteger(id) || (id as number) < 1) bad.push("part_id is not an integer ≥ 1");
    else if (ids.has(id as number)) {
      problems.push({ code: "manifest.part_id", message: `${where}: part_id ${id} is not unique` });
    } else ids.add(id as number);
    const path = typeof p.path === "string" && p.path !== "" ? p.path : undefined;
    if (path === undefined) bad.push("path is not a string");
    else if (paths.has(path)) {
      problems.push({
        code: "manifest.duplicate_path",
        message: `${where}: path '${path}' is listed twice`,
      });
    } else paths.add(path);
    if (!isCount(p.rows)) bad.push("rows is not a count");
    if (!isCount(p.size_bytes)) bad.push("size_bytes is not a count");
    const fp = typeof p.content_fingerprint === "string" ? p.content_fingerprint : "";
    if (!fp.startsWith("xxh3:") || !hex16.test(fp.slice(5))) {
      bad.push("content_fingerprint is not xxh3:<16 hex>");
    }
    const status = p.status;
    if (status !== "committed" && status !== "quarantined") {
      bad.push("status is not committed or quarantined");
    }
    if (status === "quarantined") {
      quarantined += 1;
    } else {
      committed += 1;
      if (isCount(p.rows)) committedRows += p.rows;
      else rowsKnown = false;
    }
    if (bad.length > 0) {
      problems.push({
        code: "manifest.part",
        message: `${where}${path === undefined ? "" : ` (${quote(path)})`}: ${bad.join(", ")}`,
      });
      return;
    }
    if (status !== "committed") return;
    parts.push({
      id: id as number,
      path: path!,
      rows: p.rows as number,
      sizeBytes: p.size_bytes as number,
      xxh3: fp.slice(5),
      md5: typeof p.content_md5 === "string" && p.content_md5 !== "" ? p.content_md5 : undefined,
    });
  });
  if (m.part_count !== m.parts.length) {
    problems.push({
      code: "manifest.part_count",
      message: `manifest.json part_count is ${JSON.stringify(m.part_count)} but it lists ` +
        `${m.parts.length} part(s)`,
    });
  }
  const rowCount = isCount(m.row_count) ? m.row_count : undefined;
  if (rowCount === undefined) {
    problems.push({ code: "manifest.field", message: "manifest.json row_count is not a count" });
  } else if (rowsKnown && rowCount !== committedRows) {
    problems.push({
      code: "manifest.row_count",
      message: `manifest.json row_count is ${rowCount} but its committed parts hold ` +
        `${committedRows} row(s)`,
    });
  }
  return {
    problems,
    parts,
    paths,
    committed,
    quarantined,
    usable: true,
    ...(runId === undefined ? {} : { runId }),
    ...(runStatus === undefined ? {} : { runStatus }),
    ...(rowCount === undefined ? {} : { rowCount }),
    ...(exportName === undefined ? {} : { exportName }),
    ...(uri === undefined ? {} : { uri }),
  };
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

/** Streams an object through xxh3, counting its bytes. */
async function hashObject(
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

/** Checks one committed part; returns its problems (none: verified). */
async function verifyPart(
  dest: Destination,
  part: ParsedPart,
  options: VerifyDestinationOptions,
): Promise<ValidateProblem[]> {
  const io: SignalOptions = options.signal ? { signal: options.signal } : {};
  const name = `part ${part.id} ${quote(part.path)}`;
  const { meta, problem } = await statChecked(dest, part.path, io);
  if (problem) return [{ code: "part.unusable", message: `${name}: ${problem.message}` }];
  if (meta === undefined) return [{ code: "part.missing", message: `${name}: missing` }];
  const sizeWrong = (size: number): ValidateProblem => ({
    code: "part.size_mismatch",
    message: `${name}: ${size} bytes, the manifest records ${part.sizeBytes}`,
  });
  if (meta.size !== part.sizeBytes) return [sizeWrong(meta.size)];
  if (meta.md5 !== undefined && part.md5 !== undefined && meta.md5 !== part.md5) {
    return [{
      code: "part.md5_mismatch",
      message: `${name}: the store reports MD5 ${meta.md5}, the manifest records ${part.md5}`,
    }];
  }
  if (!options.readContent) return [];
  let read: { xxh3: string; size: number };
  try {
    read = await hashObject(dest, part.path, io);
  } catch (error) {
    if (isObjectShapeError(error)) {
      return [{ code: "part.unusable", message: `${name}: ${error.message}` }];
    }
    if (error instanceof RivetError && error.code === "destination.not_found") {
      return [{ code: "part.missing", message: `${name}: missing (removed while validating)` }];
    }
    throw error;
  }
  if (read.size !== part.sizeBytes) return [sizeWrong(read.size)];
  if (read.xxh3 !== part.xxh3) {
    return [{
      code: "part.fingerprint_mismatch",
      message: `${name}: content fingerprint xxh3:${read.xxh3}, the manifest records ` +
        `xxh3:${part.xxh3} (same size, different bytes)`,
    }];
  }
  return [];
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
 * import { verifyDestination } from "./validate.ts";
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
          `'${options.exportName}' are here (a run that did not finish?): ${names(ours)}; ` +
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
        ` (left by an interrupted run?): ${names(unlisted)}; readers that glob the folder ` +
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

/** Up to ten keys, then how many more. */
function names(keys: readonly string[]): string {
  const more = keys.length > 10 ? `, … (${keys.length - 10} more)` : "";
  return keys.slice(0, 10).join(", ") + more;
}

async function listAll(dest: Destination, io: SignalOptions): Promise<ObjectMeta[]> {
  const out: ObjectMeta[] = [];
  for await (const meta of dest.list("", io)) out.push(meta);
  return out;
}

function extras(keys: readonly string[]): { extraObjects: string[]; extraObjectCount: number } {
  return { extraObjects: keys.slice(0, EXTRA_OBJECTS_KEPT), extraObjectCount: keys.length };
}

/** A report for an export that was not checked. */
function unchecked(
  exp: ExportSpec,
  uri: string,
  status: "skipped" | "no_manifest",
  note: string,
): ExportValidation {
  return {
    export: exp.name,
    uri,
    status,
    manifest: "missing",
    successMarker: "unchecked",
    partsTotal: 0,
    partsVerified: 0,
    partsQuarantined: 0,
    contentVerified: false,
    problems: [],
    notes: [note],
    extraObjects: [],
    extraObjectCount: 0,
  };
}

/** How the destination of one export is found: the CLI's placeholder flags. */
interface Placement {
  readonly at: Date;
  readonly runId: string | undefined;
  readonly prefix: string | undefined;
  readonly cwd: string;
}

/** The export's destination with placeholders resolved as `rivet run` resolves them. */
function placeDestination(exp: ExportSpec, placement: Placement): DestinationSpec {
  if (placement.prefix !== undefined) {
    return exp.destination.kind === "local"
      ? { ...exp.destination, path: placement.prefix }
      : { ...exp.destination, prefix: placement.prefix };
  }
  const spec = resolveDestination(exp.destination, { exportName: exp.name, at: placement.at });
  const runId = placement.runId;
  if (runId === undefined) return spec;
  return {
    ...spec,
    ...(spec.path === undefined ? {} : { path: spec.path.replaceAll("{run_id}", runId) }),
    ...(spec.prefix === undefined ? {} : { prefix: spec.prefix.replaceAll("{run_id}", runId) }),
  };
}

/**
 * Validates one export: skips stdout and partition parents, opens the destination (a missing
 * local folder is reported without being created) and verifies it.
 *
 * @param exp The export.
 * @param options Placement flags, `--size-only`, abort signal.
 * @returns Its report; an error that stopped the check is reported with status `error`.
 */
async function validateExport(
  exp: ExportSpec,
  options: Placement & {
    readonly sizeOnly: boolean;
    readonly signal: AbortSignal;
    readonly state: StateStore | undefined;
  },
): Promise<ExportValidation> {
  if (exp.destination.kind === "stdout") {
    return unchecked(exp, "stdout", "skipped", "stdout destination: nothing is kept to validate");
  }
  if (
    options.prefix === undefined && exp.partitionBy !== undefined &&
    hasPartitionToken(exp.destination)
  ) {
    return unchecked(
      exp,
      exp.destination.path ?? exp.destination.prefix ?? "",
      "skipped",
      "partition_by writes one folder per partition: validate one with " +
        `-e ${exp.name} --prefix <its folder>`,
    );
  }
  const spec = placeDestination(exp, options);
  try {
    if (spec.kind === "local") {
      // LocalDestination.open creates its folder; validate must not leave one behind.
      const root = resolve(options.cwd, spec.path ?? spec.prefix ?? ".");
      try {
        await Deno.lstat(root);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
        return unchecked(
          exp,
          `file://${root}`,
          "no_manifest",
          "the destination folder does not exist: has this export run (with this {date})?",
        );
      }
    }
    await using dest = await openDestination(spec, { baseDir: options.cwd });
    const committedByRuns = options.state === undefined
      ? undefined
      : await filesOfSuccessfulRuns(options.state, exp.name);
    return await verifyDestination(dest, {
      exportName: exp.name,
      readContent: exp.verify === "content" || !options.sizeOnly,
      signal: options.signal,
      ...(committedByRuns === undefined ? {} : { committedByRuns }),
    });
  } catch (error) {
    if (options.signal.aborted) throw error;
    const info = toErrorInfo(error);
    const message = redact(info.hint ? `${info.message}; ${info.hint}` : info.message);
    return {
      ...unchecked(exp, describeSpec(spec, options.cwd), "skipped", ""),
      status: "error",
      notes: [],
      error: { code: info.code, message, exitCode: info.exitCode },
    };
  }
}

/** A destination's root for messages when it could not be opened. */
function describeSpec(spec: DestinationSpec, cwd: string): string {
  const rest = spec.prefix ?? "";
  switch (spec.kind) {
    case "local":
      return `file://${resolve(cwd, spec.path ?? spec.prefix ?? ".")}`;
    case "s3":
      return `s3://${spec.bucket ?? "?"}/${rest}`;
    case "gcs":
      return `gs://${spec.bucket ?? "?"}/${rest}`;
    case "azure":
      return `azure://${spec.accountName ?? "?"}/${spec.bucket ?? "?"}/${rest}`;
    case "stdout":
      return "stdout";
  }
}

/**
 * The exit code of a validate run: 3 when anything was verified wrong, else the scariest class
 * of an error that stopped a check (2 before 1), else 0.
 *
 * @param reports The per-export reports.
 * @returns 0, 1, 2 or 3.
 */
export function validateExitCode(reports: readonly ExportValidation[]): ExitCode {
  if (reports.some((r) => r.status === "failed")) return 3;
  const codes = new Set(reports.flatMap((r) => r.error ? [r.error.exitCode] : []));
  for (const code of [4, 2] as const) if (codes.has(code)) return code;
  return codes.size > 0 ? 1 : 0;
}

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

/**
 * The state store next to the config when its file exists and may be opened without a
 * permission prompt (a narrowed `deno run` without write access to the config folder validates
 * by the stamps instead); undefined otherwise, or when it is unusable.
 */
async function openExistingState(configDir: string): Promise<StateStore | undefined> {
  try {
    for (const name of ["read", "write"] as const) {
      if ((await Deno.permissions.query({ name, path: configDir })).state !== "granted") {
        return undefined;
      }
    }
    if (!(await Deno.stat(stateDbPath(configDir))).isFile) return undefined;
    return await openStateStore(configDir);
  } catch {
    return undefined;
  }
}

/** Parses `--date YYYY-MM-DD` as that UTC day. */
function parseDate(text: string): Date {
  const at = new Date(`${text}T00:00:00Z`);
  if (
    !/^\d{4}-\d{2}-\d{2}$/.test(text) || Number.isNaN(at.getTime()) ||
    !at.toISOString().startsWith(text)
  ) {
    throw new ConfigError(`--date '${text}' is not a calendar date YYYY-MM-DD`, {
      code: "cli.bad_date",
      hint: "write it as --date 2026-01-31",
    });
  }
  return at;
}

/** The cross-flag rules of the reference (`src/cli/validate.rs`). */
function checkFlags(flags: ValidateFlags): void {
  if (flags.output !== undefined && flags.format !== "json") {
    throw new ConfigError("--output requires --format json", {
      code: "cli.output_requires_json",
      hint: "add --format json, or drop -o to print the pretty report",
    });
  }
  if (flags.prefix !== undefined && (flags.date !== undefined || flags.runId !== undefined)) {
    throw new ConfigError("--prefix cannot be combined with --date or --run-id", {
      code: "cli.prefix_conflict",
      hint: "--prefix names the folder itself; --date and --run-id fill the configured path",
    });
  }
}

/**
 * Runs `rivet validate`: per selected export, verifies the destination against its manifest,
 * then prints the pretty report (stdout) or the JSON array (stdout, or `-o PATH`).
 *
 * @param flags Parsed flags.
 * @param ctx Output and abort signal.
 * @returns 3 when anything was verified wrong, 1 for config/usage errors, else 0 (see
 *   {@linkcode validateExitCode}).
 */
export async function validateCommand(flags: ValidateFlags, ctx: CommandContext): Promise<number> {
  try {
    checkFlags(flags);
    const at = flags.date === undefined ? new Date() : parseDate(flags.date);
    const params = parseParams(flags.param ?? []);
    const config = await loadConfig(flags.config, { params });
    for (const w of config.warnings) ctx.io.err(`Warning: ${w.message}\n`);
    const exports = selectExports(config, flags.export ?? []);
    if (flags.prefix !== undefined && exports.length > 1) {
      throw new ConfigError(
        `--prefix names one folder but ${exports.length} exports are selected`,
        { code: "cli.prefix_needs_one_export", hint: "select the export with -e NAME" },
      );
    }
    const reports: ExportValidation[] = [];
    // The state's file log tells earlier successful runs' files from an interrupted run's;
    // validate reads an existing state file and never creates one.
    const state = await openExistingState(config.dir);
    try {
      for (const exp of exports) {
        reports.push(
          await validateExport(exp, {
            at,
            runId: flags.runId,
            prefix: flags.prefix,
            cwd: Deno.cwd(),
            sizeOnly: flags.sizeOnly === true,
            signal: ctx.signal,
            state,
          }),
        );
      }
    } finally {
      await state?.close();
    }
    if (flags.format === "json") {
      const text = renderValidateJson(reports);
      if (flags.output === undefined) ctx.io.out(text);
      else {
        await Deno.writeTextFile(flags.output, text);
        ctx.io.err(`report: ${flags.output}\n`);
      }
    } else {
      ctx.io.out(renderValidatePretty(reports));
    }
    return validateExitCode(reports);
  } catch (error) {
    return reportError(error, ctx);
  }
}
