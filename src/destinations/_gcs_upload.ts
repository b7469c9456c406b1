/**
 * One object being written to GCS: small objects go out as one multipart upload at `commit()`,
 * larger ones through a resumable session whose last chunk (the one that finalises the object)
 * is sent only at `commit()`; a commit under another name copies and deletes (see
 * `GcsDestination` in `gcs.ts`).
 *
 * Layer: destinations (private). Imports core/ and _util/ only.
 *
 * @module
 */
import type { ObjectMeta, Upload } from "../core/destination.ts";
import { PermanentError, TransientError } from "../core/errors.ts";
import type { Hasher } from "../_util/hash.ts";
import { crashPoint } from "../_util/test_hook.ts";
import { CLEANUP_TIMEOUT_MS } from "./_cloud.ts";
import {
  checksumMismatch,
  drain,
  exists,
  type GcsApi,
  type GcsObject,
  gcsObjectName,
  HttpStatusError,
  type Op,
  readJson,
  reasonOf,
  relative,
  statusError,
} from "./_gcs_api.ts";
import { closeForCommit } from "./_upload.ts";

const KiB = 1024;

interface GcsUploadInit {
  readonly api: GcsApi;
  readonly key: string;
  /** Object name the bytes are streamed to: the key's, or its staging name's. */
  readonly name: string;
  /** `name` is the hidden staging name of `key` (`CreateOptions.provisional`). */
  readonly hidden: boolean;
  readonly md5: Hasher;
  readonly overwrite: boolean;
  readonly signal: AbortSignal | undefined;
  readonly onDone: (upload: GcsUpload) => void;
}

/** Where the session stands after a status query. */
type SessionStatus = { done: true; object: GcsObject } | { done: false; persisted: number };

/** One object being streamed to GCS (see the module doc). */
export class GcsUpload implements Upload {
  readonly writable: WritableStream<Uint8Array>;
  readonly #init: GcsUploadInit;
  #state: "open" | "committing" | "committed" | "aborted" = "open";
  #streamClosed = false;
  /** The buffer being filled: the bytes after `#sent`. */
  #fill: Uint8Array;
  #fillLength = 0;
  /** The buffer of the last chunk sent, reused once that chunk is acknowledged. */
  #spare: Uint8Array | undefined;
  /** Bytes handed to the session so far (acknowledged or in flight). */
  #sent = 0;
  #session: string | undefined;
  /** The chunk in flight; rejects with a RivetError. */
  #inflight: Promise<void> = Promise.resolve();
  #md5: string | undefined;
  /** Fires on `abort()` to cut a chunk in flight; combined with the caller's signal. */
  readonly #stop = new AbortController();
  readonly #signal: AbortSignal;

  constructor(init: GcsUploadInit) {
    this.#init = init;
    this.#signal = init.signal === undefined
      ? this.#stop.signal
      : AbortSignal.any([init.signal, this.#stop.signal]);
    // Small objects (manifests, `_SUCCESS`) should not pin a full chunk: start small, grow.
    this.#fill = new Uint8Array(Math.min(init.api.chunkSize, 64 * KiB));
    this.writable = new WritableStream<Uint8Array>({
      write: (chunk) => this.#write(chunk),
      close: () => this.#close(),
      abort: (reason) => this.abort(reason),
    });
  }

  /** End of the stream: waits for the chunk in flight, so its failure surfaces here. */
  async #close(): Promise<void> {
    this.#streamClosed = true;
    try {
      await this.#inflight;
    } catch (error) {
      await this.abort(error);
      throw error;
    }
  }

  get #op(): Op {
    return {
      action: "upload",
      target: this.#init.api.uri(this.#init.key),
      bucketLevel: true,
      direction: "write",
    };
  }

  async #write(chunk: Uint8Array): Promise<void> {
    if (this.#state !== "open") {
      throw new Error(`Upload of '${this.#init.key}' is ${this.#state}`);
    }
    const signal = this.#signal;
    if (signal?.aborted) {
      await this.abort(signal.reason);
      throw signal.reason;
    }
    try {
      this.#init.md5.update(chunk);
      const size = this.#init.api.chunkSize;
      let offset = 0;
      while (offset < chunk.length) {
        // A full buffer leaves only when more bytes follow: the last chunk stays for commit.
        if (this.#fillLength === size) await this.#flush();
        const n = Math.min(size - this.#fillLength, chunk.length - offset);
        this.#reserve(this.#fillLength + n);
        this.#fill.set(chunk.subarray(offset, offset + n), this.#fillLength);
        this.#fillLength += n;
        offset += n;
      }
    } catch (error) {
      await this.abort(error);
      throw error;
    }
  }

  #reserve(length: number): void {
    if (length <= this.#fill.length) return;
    const size = this.#init.api.chunkSize;
    let grown = this.#fill.length;
    while (grown < length) grown = Math.min(size, grown * 2);
    const next = new Uint8Array(grown);
    next.set(this.#fill.subarray(0, this.#fillLength));
    this.#fill = next;
  }

  /** Sends the full buffer as an intermediate chunk, after the previous one is acknowledged. */
  async #flush(): Promise<void> {
    await this.#inflight;
    this.#session ??= await this.#startSession(this.#init.name);
    const chunk = this.#fill;
    const start = this.#sent;
    const length = this.#fillLength;
    this.#fill = this.#spare ?? new Uint8Array(this.#init.api.chunkSize);
    this.#spare = undefined;
    this.#fillLength = 0;
    this.#sent += length;
    const sending = this.#deliver(chunk, start, length, undefined).then(() => {
      this.#spare = chunk;
    });
    // Observed by the next flush or by commit; never left unhandled meanwhile.
    sending.catch(() => {});
    this.#inflight = sending;
  }

  async #startSession(name: string): Promise<string> {
    const api = this.#init.api;
    const [uri] = await api.client(this.#op, () =>
      api.bucket.file(name).createResumableUpload({
        metadata: { contentType: contentTypeOf(name) },
        // A staging object of the same name can only be a killed run's leftover: replace it.
        ...(this.#init.overwrite || this.#init.hidden
          ? {}
          : { preconditionOpts: { ifGenerationMatch: 0 } }),
      }), this.#signal);
    return uri;
  }

  /** Asks the session how many bytes it holds, or for the object when it is finalised. */
  async #status(): Promise<SessionStatus> {
    const res = await this.#init.api.fetch(this.#session!, {
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
        `GCS dropped the resumable upload session of '${this.#init.api.uri(this.#init.key)}' ` +
          `(HTTP ${res.status}); re-run the export`,
        { code: "destination.unavailable" },
      );
    }
    if (res.status === 412) {
      await drain(res);
      return exists(this.#init.api.uri(this.#init.key));
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
    const api = this.#init.api;
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
              `GCS finalised '${api.uri(this.#init.key)}' before its last chunk was sent; ` +
                "re-run the export",
              { code: "destination.write_failed" },
            );
          }
          if (status.persisted < start || status.persisted > end) {
            throw new PermanentError(
              `GCS resumable session of '${api.uri(this.#init.key)}' reports ` +
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
            `GCS finalised '${api.uri(this.#init.key)}' on an intermediate chunk; re-run the ` +
              "export",
            { code: "destination.write_failed" },
          );
        }
        throw await this.#sessionError(res);
      }
    }, signal);
  }

  /** One multipart/related request: JSON metadata (with the MD5 the service checks), bytes. */
  async #simpleUpload(name: string, md5: string): Promise<GcsObject> {
    const api = this.#init.api;
    const signal = this.#signal;
    const boundary = `rivet_${crypto.randomUUID()}`;
    const contentType = contentTypeOf(name);
    const encoder = new TextEncoder();
    const head = encoder.encode(
      `--${boundary}\r\ncontent-type: application/json; charset=UTF-8\r\n\r\n` +
        JSON.stringify({ name, contentType, md5Hash: md5 }) +
        `\r\n--${boundary}\r\ncontent-type: ${contentType}\r\n\r\n`,
    );
    const tail = encoder.encode(`\r\n--${boundary}--\r\n`);
    const body = new Uint8Array(head.length + this.#fillLength + tail.length);
    body.set(head, 0);
    body.set(this.#fill.subarray(0, this.#fillLength), head.length);
    body.set(tail, head.length + this.#fillLength);
    const query = new URLSearchParams({ uploadType: "multipart", name });
    if (!this.#init.overwrite) query.set("ifGenerationMatch", "0");
    const url = `${api.uploadBase}/b/${encodeURIComponent(api.bucketName)}/o?${query}`;
    return await api.retry(this.#op, async (attempt) => {
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
          const there = await api.meta(name, this.#op, signal);
          if (there?.md5Hash === md5) return there;
        }
        throw exists(api.uri(relative(api.prefix, name)));
      }
      if (res.status === 400) {
        const error = await statusError(res);
        if (/md5|hash|checksum/i.test(error.message)) {
          throw checksumMismatch(api.uri(relative(api.prefix, name)), "(refused)", md5, error);
        }
        throw error;
      }
      throw await statusError(res);
    }, signal);
  }

  /**
   * Finalises the object (the last chunk, or the one simple upload) and checks its MD5.
   *
   * @param finalKey Key to make the object visible at; defaults to the create key.
   * @returns Key, size and base64 MD5.
   * @throws {PermanentError} `destination.exists` when an object is at the key (without
   *   `overwrite`); `destination.bucket_not_found`, `destination.auth_failed`.
   * @throws {DataIntegrityError} `destination.checksum_mismatch` (the object is deleted).
   * @throws {TransientError} `destination.unavailable` after the retries.
   */
  async commit(finalKey?: string): Promise<ObjectMeta> {
    await closeForCommit({
      key: this.#init.key,
      state: this.#state,
      streamClosed: this.#streamClosed,
      writable: this.writable,
    });
    const api = this.#init.api;
    const key = finalKey ?? this.#init.key;
    const finalName = gcsObjectName(api.prefix, key);
    this.#state = "committing";
    try {
      await this.#inflight;
      const md5 = this.#md5 ??= this.#init.md5.digest();
      const total = this.#sent + this.#fillLength;
      const signal = this.#signal;
      if (!this.#init.overwrite && await api.meta(finalName, this.#op, signal) !== undefined) {
        throw exists(api.uri(key));
      }
      let object: GcsObject;
      if (this.#session === undefined) {
        object = await this.#simpleUpload(finalName, md5);
      } else {
        object = (await this.#deliver(this.#fill, this.#sent, this.#fillLength, total))!;
        // The session is finalised: nothing left to cancel, whatever happens next.
        this.#session = undefined;
      }
      await this.#verify(object, total, md5);
      if (object.name !== finalName) await this.#rename(object, finalName, key, md5);
      this.#state = "committed";
      this.#release();
      this.#init.onDone(this);
      return { key, size: total, md5 };
    } catch (error) {
      this.#state = "open";
      await this.abort(error);
      throw error;
    }
  }

  /**
   * Copies the finalised `object` to `finalName`, then deletes it. A failed copy deletes the
   * object (nothing is visible); a failed delete after the copy deletes the copy again unless
   * the object was staged under a hidden name, which only warrants a warning.
   */
  async #rename(object: GcsObject, finalName: string, key: string, md5: string): Promise<void> {
    const api = this.#init.api;
    const signal = this.#signal;
    const renameOp: Op = { ...this.#op, action: `rename '${api.uri(this.#init.key)}' to` };
    const cleanup = () => AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
    const dropStaged = () =>
      api.remove(object.name, renameOp, { generation: object.generation, signal: cleanup() });
    await crashPoint("before_commit_rename");
    let copy: GcsObject;
    try {
      copy = await api.copy(object.name, finalName, {
        overwrite: this.#init.overwrite,
        expectMd5: md5,
        op: { ...renameOp, target: api.uri(key) },
        signal,
      });
    } catch (error) {
      await dropStaged().catch(() => {});
      throw error;
    }
    await crashPoint("after_commit_copy");
    try {
      await api.remove(object.name, renameOp, { generation: object.generation, signal });
    } catch (error) {
      if (this.#init.hidden) {
        api.warn(
          `GCS destination could not delete the staging object ` +
            `'${api.uri(relative(api.prefix, object.name))}' after copying it to ` +
            `'${api.uri(key)}' (${reasonOf(error)}); the next run of the export removes it`,
          "destination.staging_left",
        );
        return;
      }
      await api.remove(finalName, renameOp, { generation: copy.generation, signal: cleanup() })
        .catch(() => {});
      await dropStaged().catch(() => {});
      throw error;
    }
  }

  async #verify(object: GcsObject, total: number, md5: string): Promise<void> {
    const api = this.#init.api;
    const size = Number(object.size);
    if (object.md5Hash === md5 && (object.size === undefined || size === total)) return;
    if (object.md5Hash === undefined && size === total) return;
    const target = api.uri(relative(api.prefix, object.name));
    await api.remove(object.name, this.#op, {
      generation: object.generation,
      signal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS),
    }).catch(() => {});
    throw checksumMismatch(
      target,
      object.md5Hash ?? `${size} bytes`,
      object.md5Hash === undefined ? `${total} bytes` : md5,
    );
  }

  #release(): void {
    this.#fill = new Uint8Array(0);
    this.#spare = undefined;
    this.#fillLength = 0;
  }

  /** Cancels the resumable session (if any) and drops the buffers. Idempotent. */
  async abort(_reason?: unknown): Promise<void> {
    if (this.#state !== "open") return;
    this.#state = "aborted";
    this.#init.onDone(this);
    this.#release();
    this.#stop.abort(new Error(`upload of '${this.#init.key}' aborted`));
    await this.#inflight.catch(() => {});
    const session = this.#session;
    this.#session = undefined;
    if (session === undefined) return;
    // Clean-up runs even after Ctrl-C, so not under the upload's signal; best effort (an
    // abandoned session expires on its own after a week and is never an object).
    const api = this.#init.api;
    await api.retry(this.#op, async () => {
      const res = await api.fetch(session, {
        method: "DELETE",
        signal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS),
      });
      await drain(res);
      if (res.status >= 500) throw new HttpStatusError(res.status, "cancel failed");
    }, undefined).catch(() => {});
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
