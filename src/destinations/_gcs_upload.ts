/**
 * The GCS side of an upload: a small object is one multipart/related request with its MD5 in
 * the metadata (the service refuses altered bytes), a large one a resumable session whose
 * chunks are re-sent from the offset the session reports after a failure, and whose last chunk,
 * the one that finalises the object, is sent only at `commit()` (see `GcsDestination` in
 * `gcs.ts`). The buffering, the commit under another name and the clean-up are the kit's
 * (`_object_store.ts`).
 *
 * Layer: destinations (private). Imports core/ and _util/ only.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { PermanentError, TransientError } from "../core/errors.ts";
import type { Part, PartSession, Sent, StoredObject } from "./_object_store.ts";
import { checksumMismatch, CLEANUP_TIMEOUT_MS } from "./_store_errors.ts";
import {
  drain,
  exists,
  type GcsApi,
  type GcsObject,
  gcsObjectName,
  HttpStatusError,
  type Op,
  readJson,
  statusError,
} from "./_gcs_api.ts";

/** Where the session stands after a status query. */
type SessionStatus = { done: true; object: GcsObject } | { done: false; persisted: number };

/** Options of a write: whether it must not replace an object, and the upload's signal. */
interface WriteOptions {
  readonly conditional: boolean;
  readonly signal: AbortSignal;
}

function uploadOp(api: GcsApi, key: string): Op {
  return { action: "upload", target: api.uri(key), bucketLevel: true, direction: "write" };
}

/** The object as the kit sees it, after checking it against what was sent. */
async function verified(
  api: GcsApi,
  key: string,
  object: GcsObject,
  sent: Sent,
): Promise<StoredObject> {
  const md5 = Buffer.from(sent.md5).toString("base64");
  const size = Number(object.size);
  const sameSize = object.size === undefined || size === sent.size;
  if (!(object.md5Hash === md5 && sameSize) && !(object.md5Hash === undefined && sameSize)) {
    await api.remove(object.name, uploadOp(api, key), {
      generation: object.generation,
      signal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS),
    }).catch(() => {});
    throw checksumMismatch(
      "GCS",
      api.uri(key),
      object.md5Hash === undefined
        ? `store: ${size} bytes, sent: ${sent.size} bytes`
        : `store: MD5 ${object.md5Hash}, sent: MD5 ${md5}`,
    );
  }
  return {
    key,
    size: sent.size,
    ...(object.md5Hash === undefined ? {} : { md5: object.md5Hash }),
    ...(object.generation === undefined ? {} : { version: String(object.generation) }),
  };
}

/** One multipart/related request of a whole small object at `key`, then its check. */
export async function putSingle(
  api: GcsApi,
  key: string,
  bytes: Uint8Array,
  sent: Sent,
  options: WriteOptions,
): Promise<StoredObject> {
  const name = gcsObjectName(api.prefix, key);
  const md5 = Buffer.from(sent.md5).toString("base64");
  const object = await simpleUpload(api, key, name, bytes, md5, options);
  return await verified(api, key, object, sent);
}

/** One multipart/related request: JSON metadata (with the MD5 the service checks), bytes. */
async function simpleUpload(
  api: GcsApi,
  key: string,
  name: string,
  bytes: Uint8Array,
  md5: string,
  options: WriteOptions,
): Promise<GcsObject> {
  const signal = options.signal;
  const op = uploadOp(api, key);
  const boundary = `rivet_${crypto.randomUUID()}`;
  const contentType = contentTypeOf(name);
  const encoder = new TextEncoder();
  const head = encoder.encode(
    `--${boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n` +
      JSON.stringify({ name, contentType, md5Hash: md5 }) +
      `\r\n--${boundary}\r\ncontent-type: ${contentType}\r\n\r\n`,
  );
  const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
  const body = new Uint8Array(head.length + bytes.length + tail.length);
  body.set(head, 0);
  body.set(bytes, head.length);
  body.set(tail, head.length + bytes.length);
  const query = new URLSearchParams({ uploadType: "multipart", name });
  if (options.conditional) query.set("ifGenerationMatch", "0");
  const url = `${api.uploadBase}/b/${encodeURIComponent(api.bucketName)}/o?${query}`;
  return await api.retry(op, async (attempt) => {
    const res = await api.fetch(url, {
      method: "POST",
      headers: { "content-type": `multipart/related; boundary=${boundary}` },
      body,
      ...(signal === undefined ? {} : { signal }),
    });
    if (res.ok) return await readJson<GcsObject>(res);
    if (res.status === 412) {
      await drain(res);
      // After a lost reply the first attempt may have written it: the same bytes are ours.
      if (attempt > 0) {
        const there = await api.meta(name, op, signal);
        if (there?.md5Hash === md5) return there;
      }
      throw exists(api.uri(key));
    }
    if (res.status === 400) {
      const error = await statusError(res);
      if (/md5|hash|checksum/i.test(error.message)) {
        throw checksumMismatch("GCS", api.uri(key), `the store refused MD5 ${md5}`, error);
      }
      throw error;
    }
    throw await statusError(res);
  }, signal);
}

/** Opens a resumable session at `key` (conditional: `ifGenerationMatch=0`). */
export async function startParts(
  api: GcsApi,
  key: string,
  options: WriteOptions,
): Promise<PartSession> {
  const name = gcsObjectName(api.prefix, key);
  const [uri] = await api.client(
    uploadOp(api, key),
    () =>
      api.bucket.file(name).createResumableUpload({
        metadata: { contentType: contentTypeOf(name) },
        ...(options.conditional ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}),
      }),
    options.signal,
  );
  return new GcsSession(api, key, uri);
}

/** A resumable session: chunks at their offsets, the last one finalising the object. */
class GcsSession implements PartSession {
  readonly #api: GcsApi;
  readonly #key: string;
  #session: string | undefined;
  #signal: AbortSignal = new AbortController().signal;

  constructor(api: GcsApi, key: string, session: string) {
    this.#api = api;
    this.#key = key;
    this.#session = session;
  }

  get #op(): Op {
    return uploadOp(this.#api, this.#key);
  }

  async putPart(part: Part, signal: AbortSignal): Promise<void> {
    this.#signal = signal;
    await this.#deliver(part.bytes, part.offset, part.bytes.length, undefined);
  }

  async complete(last: Part, sent: Sent, signal: AbortSignal): Promise<StoredObject> {
    this.#signal = signal;
    const object = (await this.#deliver(last.bytes, last.offset, last.bytes.length, sent.size))!;
    // The session is finalised: nothing left to cancel, whatever happens next.
    this.#session = undefined;
    return await verified(this.#api, this.#key, object, sent);
  }

  /** Cancels the session; best effort (an abandoned one expires after a week, never an object). */
  async cancel(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    if (session === undefined) return;
    const api = this.#api;
    await api.retry(this.#op, async () => {
      const res = await api.fetch(session, {
        method: "DELETE",
        signal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS),
      });
      await drain(res);
      if (res.status >= 500) throw new HttpStatusError(res.status, "cancel failed");
    }, undefined);
  }

  /** Asks the session how many bytes it holds, or for the object when it is finalised. */
  async #status(): Promise<SessionStatus> {
    const res = await this.#api.fetch(this.#session!, {
      method: "PUT",
      headers: { "content-range": "bytes */*" },
      signal: this.#signal,
    });
    if (res.status === 308) {
      await drain(res);
      return { done: false, persisted: rangeEnd(res.headers.get("range")) };
    }
    if (res.ok) return { done: true, object: await readJson<GcsObject>(res) };
    throw await this.#sessionError(res);
  }

  async #sessionError(res: Response): Promise<Error> {
    if (res.status === 404 || res.status === 410) {
      await drain(res);
      return new TransientError(
        `GCS dropped the resumable upload session of '${this.#api.uri(this.#key)}' ` +
          `(HTTP ${res.status}); re-run the export`,
        { code: "destination.unavailable" },
      );
    }
    if (res.status === 412) {
      await drain(res);
      return exists(this.#api.uri(this.#key));
    }
    return await statusError(res);
  }

  /**
   * Delivers `buffer[0, length)`, the bytes `[start, start + length)` of the object, to the
   * session; with `total` it is the last chunk and finalises the object. After any failure the
   * next attempt first asks the session what it holds and re-sends only the rest.
   */
  async #deliver(
    buffer: Uint8Array,
    start: number,
    length: number,
    total: number | undefined,
  ): Promise<GcsObject | undefined> {
    const api = this.#api;
    const signal = this.#signal;
    const end = start + length;
    let persisted = start;
    let ask = false;
    return await api.retry(this.#op, async () => {
      for (;;) {
        if (ask) {
          const status = await this.#status();
          if (status.done) {
            if (total !== undefined) return status.object;
            throw new PermanentError(
              `GCS finalised '${api.uri(this.#key)}' before its last chunk was sent; ` +
                "re-run the export",
              { code: "destination.write_failed" },
            );
          }
          if (status.persisted < start || status.persisted > end) {
            throw new PermanentError(
              `GCS resumable session of '${api.uri(this.#key)}' reports ` +
                `${status.persisted} bytes where ${start} to ${end} were expected; re-run the export`,
              { code: "destination.write_failed" },
            );
          }
          persisted = status.persisted;
          ask = false;
        }
        if (total === undefined && persisted === end) return undefined;
        ask = true;
        const range = persisted === end
          ? `bytes */${total}`
          : `bytes ${persisted}-${end - 1}/${total ?? "*"}`;
        const res = await api.fetch(this.#session!, {
          method: "PUT",
          headers: { "content-range": range },
          body: buffer.subarray(persisted - start, length) as Uint8Array<ArrayBuffer>,
          ...(signal === undefined ? {} : { signal }),
        });
        if (res.status === 308) {
          await drain(res);
          const now = rangeEnd(res.headers.get("range"));
          if (now <= persisted) throw new HttpStatusError(503, "the session stored no new bytes");
          persisted = Math.min(now, end);
          ask = false;
          continue;
        }
        if (res.ok) {
          const object = await readJson<GcsObject>(res);
          if (total !== undefined) return object;
          throw new PermanentError(
            `GCS finalised '${api.uri(this.#key)}' on an intermediate chunk; re-run the ` +
              "export",
            { code: "destination.write_failed" },
          );
        }
        throw await this.#sessionError(res);
      }
    }, signal);
  }
}

const CONTENT_TYPES: Record<string, string> = {
  parquet: "application/vnd.apache.parquet",
  csv: "text/csv",
  json: "application/json",
};

function contentTypeOf(name: string): string {
  const ext = name.slice(name.lastIndexOf(".") + 1).toLowerCase();
  return CONTENT_TYPES[ext] ?? "application/octet-stream";
}

/** Offset after the last byte of a `Range: bytes=0-N` header; 0 when absent. */
function rangeEnd(range: string | null): number {
  const m = /bytes=0-(\d+)/.exec(range ?? "");
  return m === null ? 0 : Number(m[1]) + 1;
}
