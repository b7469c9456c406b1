/**
 * The run manifest and the `_SUCCESS` marker: pure builders for their exact bytes, and a writer
 * that commits `manifest.json` then `_SUCCESS` (whose one line is the xxh3 of the manifest's
 * bytes), after every part is committed (write order: docs/run-guarantees.md).
 *
 * Layer: pipeline. Imports core/ and _util/ only.
 *
 * @module
 */
import type { Destination, ObjectMeta } from "../core/destination.ts";
import { xxh3Hex } from "../_util/hash.ts";
import { crashPoint } from "../_util/test_hook.ts";

/** Version of the manifest JSON shape; field removals or type changes bump it. */
export const MANIFEST_VERSION = 1;
/** Key of the manifest at the destination root. */
export const MANIFEST_KEY = "manifest.json";
/** Key of the success marker at the destination root. */
export const SUCCESS_KEY = "_SUCCESS";
/** `schema_fingerprint` when the columns are unknown. */
export const UNKNOWN_SCHEMA_FINGERPRINT = "xxh3:0000000000000000";

/** Final status of an export as recorded in the manifest. */
export type ManifestStatus = "success" | "failed" | "interrupted";
/** Status of one part: committed, or moved aside by a resume. */
export type ManifestPartStatus = "committed" | "quarantined";

/** Fields of a part common to both ways of giving its fingerprint. */
export interface ManifestPartBase {
  /** 1-based; defaults to the part's position in `parts` plus one. */
  readonly partId?: number;
  /** Key relative to the destination root. */
  readonly path: string;
  readonly rows: number;
  readonly sizeBytes: number;
  /** MD5 of the part's bytes in base64. */
  readonly contentMd5: string;
  readonly status: ManifestPartStatus;
}

/**
 * One part of the export, as the pipeline recorded it. The xxh3-64 of its bytes is given either
 * bare (`contentXxh3`, 16 lowercase hex digits) or as written (`contentFingerprint`,
 * `xxh3:<16 hex>`).
 */
export type ManifestPartInput =
  & ManifestPartBase
  & ({ readonly contentXxh3: string } | { readonly contentFingerprint: string });

/** Alias of {@linkcode ManifestPartInput}. */
export type ManifestPart = ManifestPartInput;

/** Everything a manifest records. */
export interface ManifestInput {
  readonly runId: string;
  readonly exportName: string;
  /** RFC 3339 UTC timestamps, written as given. */
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly status: ManifestStatus;
  /** `schema`/`table` are written as null when absent (query exports). */
  readonly source: {
    readonly engine: string;
    readonly schema?: string | null;
    readonly table?: string | null;
  };
  /** `kind` is the destination type, `uri` its root (`file:///abs/dir`). */
  readonly destination: { readonly kind: string; readonly uri: string };
  readonly format: string;
  readonly compression: string;
  /** From {@linkcode schemaFingerprint}, or {@linkcode UNKNOWN_SCHEMA_FINGERPRINT}. */
  readonly schemaFingerprint: string;
  /** Defaults to the rows of the committed parts. */
  readonly rowCount?: number;
  readonly parts: readonly ManifestPartInput[];
}

/** A manifest ready to write. */
export interface Manifest {
  /** The exact bytes of `manifest.json` (UTF-8 pretty JSON, no trailing newline). */
  readonly bytes: Uint8Array;
  /** The same text. */
  readonly json: string;
  /** `xxh3:<16 hex>` over `bytes`: the `_SUCCESS` body without its newline. */
  readonly fingerprint: string;
}

/** A column as the schema fingerprint sees it. */
export interface FingerprintColumn {
  readonly name: string;
  /** The type label recorded for drift detection (e.g. `Int64`, `Utf8`). */
  readonly type: string;
}

const hex16 = /^[0-9a-f]{16}$/;

/**
 * Builds the manifest bytes. Keys come in the Rust tool's order, so both tools writing the same
 * run write the same bytes.
 *
 * @param input The run's facts.
 * @returns Bytes, text and fingerprint.
 *
 * @example
 * ```ts
 * import { buildManifest, UNKNOWN_SCHEMA_FINGERPRINT } from "./manifest.ts";
 * const manifest = await buildManifest({
 *   runId: "r1", exportName: "orders", startedAt: "2024-01-01T00:00:00Z",
 *   finishedAt: "2024-01-01T00:00:01Z", status: "success",
 *   source: { engine: "postgres", schema: "public", table: "orders" },
 *   destination: { kind: "local", uri: "file:///tmp/out" }, format: "csv",
 *   compression: "none", schemaFingerprint: UNKNOWN_SCHEMA_FINGERPRINT, parts: [],
 * });
 * if (!manifest.json.startsWith('{\n  "manifest_version": 1,')) throw new Error("shape");
 * ```
 */
export async function buildManifest(input: ManifestInput): Promise<Manifest> {
  const parts = input.parts.map((part, index) => {
    const digest = "contentXxh3" in part
      ? part.contentXxh3
      : part.contentFingerprint.startsWith("xxh3:")
      ? part.contentFingerprint.slice(5)
      : "";
    if (!hex16.test(digest)) {
      throw new TypeError(
        `Part '${part.path}': the content fingerprint must be xxh3 as 16 lowercase hex digits`,
      );
    }
    return {
      part_id: part.partId ?? index + 1,
      path: part.path,
      rows: part.rows,
      size_bytes: part.sizeBytes,
      content_fingerprint: `xxh3:${digest}`,
      content_md5: part.contentMd5,
      status: part.status,
    };
  });
  const committedRows = input.parts.reduce(
    (sum, part) => part.status === "committed" ? sum + part.rows : sum,
    0,
  );
  const document = {
    manifest_version: MANIFEST_VERSION,
    run_id: input.runId,
    export_name: input.exportName,
    started_at: input.startedAt,
    finished_at: input.finishedAt,
    status: input.status,
    source: {
      engine: input.source.engine,
      schema: input.source.schema ?? null,
      table: input.source.table ?? null,
    },
    destination: { kind: input.destination.kind, uri: input.destination.uri },
    format: input.format,
    compression: input.compression,
    schema_fingerprint: input.schemaFingerprint,
    row_count: input.rowCount ?? committedRows,
    part_count: parts.length,
    parts,
  };
  // JSON.stringify with 2 spaces prints what serde_json's pretty printer prints.
  const json = JSON.stringify(document, null, 2);
  const bytes = new TextEncoder().encode(json);
  return { bytes, json, fingerprint: `xxh3:${await xxh3Hex(bytes)}` };
}

/**
 * The schema fingerprint: xxh3 over `name\ttype\n` lines sorted by name (code-point order, as
 * Rust sorts strings).
 *
 * @param columns The columns, in any order; undefined when unknown.
 * @returns `xxh3:<16 hex>`, or {@linkcode UNKNOWN_SCHEMA_FINGERPRINT} when unknown.
 *
 * @example
 * ```ts
 * import { schemaFingerprint } from "./manifest.ts";
 * const a = await schemaFingerprint([{ name: "id", type: "Int64" }, { name: "x", type: "Utf8" }]);
 * const b = await schemaFingerprint([{ name: "x", type: "Utf8" }, { name: "id", type: "Int64" }]);
 * if (a !== b) throw new Error("column order does not matter");
 * ```
 */
export async function schemaFingerprint(
  columns: readonly FingerprintColumn[] | undefined,
): Promise<string> {
  if (columns === undefined) return UNKNOWN_SCHEMA_FINGERPRINT;
  const lines = [...columns]
    .sort((a, b) => compareCodePoints(a.name, b.name))
    .map((column) => `${column.name}\t${column.type}\n`)
    .join("");
  return `xxh3:${await xxh3Hex(new TextEncoder().encode(lines))}`;
}

function compareCodePoints(a: string, b: string): number {
  // UTF-16 order differs from code-point (= UTF-8 byte) order only around surrogates.
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const ca = ia.next();
    const cb = ib.next();
    if (ca.done || cb.done) return ca.done ? (cb.done ? 0 : -1) : 1;
    const d = ca.value.codePointAt(0)! - cb.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

/**
 * The `_SUCCESS` body: one line `xxh3:<16 hex>\n` over the exact manifest bytes.
 *
 * @param manifestBytes The bytes written to `manifest.json`.
 * @returns The marker bytes.
 */
export async function successBody(manifestBytes: Uint8Array): Promise<Uint8Array> {
  return new TextEncoder().encode(`xxh3:${await xxh3Hex(manifestBytes)}\n`);
}

/** Callbacks of {@linkcode writeManifestAndSuccess}. */
export interface ManifestHooks {
  /** Runs once `manifest.json` is committed, before `_SUCCESS` is written. */
  readonly onManifest?: () => void;
}

/** What {@linkcode writeManifestAndSuccess} committed. */
export interface ManifestWriteResult {
  readonly manifest: ObjectMeta;
  /** Absent unless the status is `success`. */
  readonly success?: ObjectMeta;
}

/**
 * Commits `manifest.json` (replacing a previous run's) and then, only for a successful export,
 * `_SUCCESS`. Each object is staged and committed by the destination, so a crash between the two
 * leaves a manifest without marker, which a resume re-verifies.
 *
 * Two forms: a manifest already built with {@linkcode buildManifest} plus the status, or the
 * manifest input alone (built here; its `status` decides `_SUCCESS`).
 *
 * @param dest A persistent destination (not stdout).
 * @param manifest The bytes from {@linkcode buildManifest}.
 * @param status The export's final status.
 * @param hooks `onManifest` runs once `manifest.json` is committed, before `_SUCCESS`.
 * @returns The committed objects.
 */
export function writeManifestAndSuccess(
  dest: Destination,
  manifest: Manifest,
  status: ManifestStatus,
  hooks?: ManifestHooks,
): Promise<ManifestWriteResult>;
/**
 * Builds the manifest from `input`, then writes it as the three-argument form does.
 *
 * @param dest A persistent destination (not stdout).
 * @param input The run's facts; `input.status` decides whether `_SUCCESS` is written.
 * @returns The committed objects.
 */
export function writeManifestAndSuccess(
  dest: Destination,
  input: ManifestInput,
): Promise<ManifestWriteResult>;
export async function writeManifestAndSuccess(
  dest: Destination,
  manifestOrInput: Manifest | ManifestInput,
  status?: ManifestStatus,
  hooks: ManifestHooks = {},
): Promise<ManifestWriteResult> {
  let manifest: Manifest;
  let finalStatus: ManifestStatus;
  if ("bytes" in manifestOrInput) {
    if (status === undefined) throw new TypeError("writeManifestAndSuccess needs the status");
    manifest = manifestOrInput;
    finalStatus = status;
  } else {
    manifest = await buildManifest(manifestOrInput);
    finalStatus = manifestOrInput.status;
  }
  const written = await put(dest, MANIFEST_KEY, manifest.bytes);
  hooks.onManifest?.();
  if (finalStatus !== "success") return { manifest: written };
  await crashPoint("before_success_marker");
  const success = await put(dest, SUCCESS_KEY, await successBody(manifest.bytes));
  return { manifest: written, success };
}

/**
 * Writes a small object in one go (staged, then committed over any object at `key`).
 *
 * @param dest A persistent destination.
 * @param key The object's key, e.g. {@linkcode MANIFEST_KEY}.
 * @param bytes Its whole content.
 * @returns The committed object.
 */
export async function putObject(
  dest: Destination,
  key: string,
  bytes: Uint8Array,
): Promise<ObjectMeta> {
  return await put(dest, key, bytes);
}

async function put(dest: Destination, key: string, bytes: Uint8Array): Promise<ObjectMeta> {
  const upload = await dest.create(key, { overwrite: true });
  try {
    const writer = upload.writable.getWriter();
    await writer.write(bytes);
    await writer.close();
    return await upload.commit();
  } catch (error) {
    await upload.abort(error);
    throw error;
  }
}
