/**
 * One object being written to S3: bytes buffered in parts, the first full part starting a
 * multipart upload that `commit()` completes (an object under one part is a single PutObject at
 * `commit()`), every part's MD5 checked; a commit under another name copies and deletes (see
 * `S3Destination` in `s3.ts`).
 *
 * Layer: destinations (private). Imports core/ and _util/ only.
 *
 * @module
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  PutObjectCommand,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import type { Buffer } from "node:buffer";
import { createHash, type Hash } from "node:crypto";
import type { ObjectMeta, Upload } from "../core/destination.ts";
import { PermanentError } from "../core/errors.ts";
import { crashPoint } from "../_util/test_hook.ts";
import { checkKey, stagingKeyOf } from "./_keys.ts";
import { CLEANUP_TIMEOUT_MS } from "./_cloud.ts";
import type { S3Context } from "./_s3_context.ts";
import {
  checksumMismatch,
  copyObject,
  deleteObject,
  encrypted,
  exists,
  head,
  isExists,
  nameOf,
  reasonOf,
  s3ObjectKey,
  send,
  sendWrite,
  unquote,
} from "./_s3_requests.ts";
import { closeForCommit } from "./_upload.ts";

const MiB = 1024 * 1024;
/** Part size of the first 2000 parts; it doubles every 2000 parts (see `partSize`). */
const BASE_PART_SIZE = 8 * MiB;
/** S3's limit of parts per multipart upload. */
const MAX_PARTS = 10_000;

/**
 * Size of part `n` (1-based): 8 MiB for parts 1–2000, then doubled every 2000 parts up to
 * 128 MiB, so the 10,000-part limit allows ~484 GiB per object while a typical export keeps two
 * 8 MiB buffers.
 */
function partSize(n: number): number {
  return BASE_PART_SIZE * 2 ** Math.min(4, Math.floor((n - 1) / 2000));
}

interface S3UploadInit {
  readonly overwrite: boolean;
  /** Stream to the staging key of `key` (see `CreateOptions.provisional`). */
  readonly provisional: boolean;
  readonly signal: AbortSignal | undefined;
  readonly onDone: (upload: S3Upload) => void;
}

/** One object being written: see the class comment of {@linkcode S3Destination}. */
export class S3Upload implements Upload, AsyncDisposable {
  readonly writable: WritableStream<Uint8Array>;
  readonly #ctx: S3Context;
  readonly #key: string;
  /** Where the bytes are streamed: the create key, or its staging key when provisional. */
  readonly #stageKey: string;
  readonly #objectKey: string;
  readonly #init: S3UploadInit;
  /** Aborted by `abort()`: cancels requests in flight. */
  readonly #controller = new AbortController();
  readonly #signal: AbortSignal;
  #state: "open" | "committing" | "committed" | "aborted" = "open";
  #streamClosed = false;
  #buf: Uint8Array;
  #fill = 0;
  #spare: Uint8Array | undefined;
  #size = 0;
  readonly #md5: Hash = createHash("md5");
  #uploadId: string | undefined;
  #partCount = 0;
  readonly #parts: { PartNumber: number; ETag: string }[] = [];
  readonly #partMd5s: Buffer[] = [];
  #inflight: Promise<void> | undefined;
  #inflightBuf: Uint8Array | undefined;
  /** Object key completed at the create key but not yet committed (renaming commit). */
  #completedAt: string | undefined;
  /** Object key a renaming commit copied to before it failed to delete the create key. */
  #copiedTo: string | undefined;

  constructor(ctx: S3Context, key: string, init: S3UploadInit) {
    this.#ctx = ctx;
    this.#key = key;
    this.#stageKey = init.provisional ? stagingKeyOf(key) : key;
    this.#objectKey = s3ObjectKey(ctx.prefix, this.#stageKey);
    this.#init = init;
    this.#signal = init.signal === undefined
      ? this.#controller.signal
      : AbortSignal.any([this.#controller.signal, init.signal]);
    this.#buf = new Uint8Array(partSize(1));
    this.writable = new WritableStream<Uint8Array>({
      write: (chunk) => this.#write(chunk),
      close: () => {
        this.#streamClosed = true;
      },
      abort: (reason) => this.abort(reason),
    });
  }

  async #write(chunk: Uint8Array): Promise<void> {
    if (this.#state !== "open") throw new Error(`Upload of '${this.#key}' is ${this.#state}`);
    try {
      this.#signal.throwIfAborted();
      this.#md5.update(chunk);
      this.#size += chunk.length;
      let offset = 0;
      while (offset < chunk.length) {
        const n = Math.min(this.#buf.length - this.#fill, chunk.length - offset);
        this.#buf.set(chunk.subarray(offset, offset + n), this.#fill);
        this.#fill += n;
        offset += n;
        if (this.#fill === this.#buf.length) await this.#flushPart();
      }
    } catch (error) {
      await this.abort(error);
      throw error;
    }
  }

  /** Sends the filled buffer as the next part, after the previous part finished. */
  async #flushPart(): Promise<void> {
    const sending = this.#buf;
    const body = sending.subarray(0, this.#fill);
    await this.#drain();
    this.#uploadId ??= await this.#createMultipart();
    const n = ++this.#partCount;
    if (n > MAX_PARTS) {
      throw new PermanentError(
        `S3 destination cannot write '${this.#where()}': the object needs more than ` +
          `${MAX_PARTS} parts (about ${Math.floor(this.#size / 1024 ** 3)} GiB so far); set ` +
          "max_file_size to split the export into smaller files",
        { code: "destination.object_too_large" },
      );
    }
    const inflight = this.#uploadPart(n, body);
    inflight.catch(() => {}); // observed by #drain; avoids an unhandled rejection meanwhile
    this.#inflight = inflight;
    this.#inflightBuf = sending;
    const next = partSize(n + 1);
    this.#buf = this.#spare?.length === next ? this.#spare : new Uint8Array(next);
    this.#spare = undefined;
    this.#fill = 0;
  }

  /** Waits for the part in flight; its buffer becomes the spare. */
  async #drain(): Promise<void> {
    const inflight = this.#inflight;
    if (inflight === undefined) return;
    this.#inflight = undefined;
    await inflight;
    this.#spare = this.#inflightBuf;
    this.#inflightBuf = undefined;
  }

  async #createMultipart(): Promise<string> {
    const ctx = this.#ctx;
    const out = await send(
      ctx,
      (o) =>
        ctx.client.send(
          new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: this.#objectKey }),
          o,
        ),
      { signal: this.#signal, action: "start the multipart upload of", key: this.#objectKey },
    );
    ctx.bucketSeen = true;
    if (out.UploadId === undefined) {
      throw new PermanentError(
        `S3 destination got no upload id for '${this.#where()}'; check that the endpoint is ` +
          "an S3-compatible store",
        { code: "destination.request_failed" },
      );
    }
    return out.UploadId;
  }

  async #uploadPart(n: number, body: Uint8Array): Promise<void> {
    const ctx = this.#ctx;
    const digest = createHash("md5").update(body).digest();
    const uploadId = this.#uploadId!;
    const out = await send(
      ctx,
      (o) =>
        ctx.client.send(
          new UploadPartCommand({
            Bucket: ctx.bucket,
            Key: this.#objectKey,
            UploadId: uploadId,
            PartNumber: n,
            Body: body,
            ContentLength: body.length,
            ContentMD5: digest.toString("base64"),
          }),
          o,
        ),
      { signal: this.#signal, action: `upload part ${n} of`, key: this.#objectKey },
    );
    const etag = unquote(out.ETag);
    const hex = digest.toString("hex");
    if (etag === undefined) {
      throw new PermanentError(
        `S3 destination got no ETag for part ${n} of '${this.#where()}'; check that the ` +
          "endpoint is an S3-compatible store",
        { code: "destination.request_failed" },
      );
    }
    if (!encrypted(out) && etag.toLowerCase() !== hex) {
      throw checksumMismatch(ctx, this.#objectKey, `part ${n}: ETag ${etag}, sent MD5 ${hex}`);
    }
    this.#parts[n - 1] = { PartNumber: n, ETag: out.ETag! };
    this.#partMd5s[n - 1] = digest;
  }

  async commit(finalKey?: string): Promise<ObjectMeta> {
    await closeForCommit({
      key: this.#key,
      state: this.#state,
      streamClosed: this.#streamClosed,
      writable: this.writable,
    });
    if (this.#state !== "open") throw new Error(`Upload of '${this.#key}' is ${this.#state}`);
    this.#state = "committing";
    const key = finalKey === undefined ? this.#key : checkKey(finalKey);
    const md5 = this.#md5.digest();
    try {
      if (this.#uploadId === undefined) await this.#putSingle(key, md5);
      else await this.#completeMultipart(key, md5);
    } catch (error) {
      this.#state = "open";
      await this.abort(error);
      throw error;
    }
    this.#state = "committed";
    this.#init.onDone(this);
    this.#buf = this.#spare = new Uint8Array(0);
    return { key, size: this.#size, md5: md5.toString("base64") };
  }

  /** Small object: one PutObject straight at the final key. */
  async #putSingle(key: string, md5: Buffer): Promise<void> {
    const ctx = this.#ctx;
    const objectKey = s3ObjectKey(ctx.prefix, key);
    const overwrite = this.#init.overwrite;
    if (!overwrite && await head(ctx, key, this.#signal) !== undefined) throw exists(ctx, key);
    const body = this.#buf.subarray(0, this.#fill);
    const hex = md5.toString("hex");
    let out;
    try {
      out = await sendWrite(
        ctx,
        !overwrite,
        (condition, o) =>
          ctx.client.send(
            new PutObjectCommand({
              Bucket: ctx.bucket,
              Key: objectKey,
              Body: body,
              ContentLength: body.length,
              ContentMD5: md5.toString("base64"),
              ...condition,
            }),
            o,
          ),
        { signal: this.#signal, action: "write", key: objectKey },
      );
    } catch (error) {
      // A retried PUT whose first attempt landed meets its own object: same bytes, done.
      if (isExists(error) && await this.#isOurs(objectKey, [hex])) return;
      if (isExists(error)) throw exists(ctx, key);
      throw error;
    }
    ctx.bucketSeen = true;
    const etag = unquote(out.ETag)?.toLowerCase();
    if (!encrypted(out) && etag !== undefined && etag !== hex) {
      await deleteObject(ctx, objectKey, AbortSignal.timeout(CLEANUP_TIMEOUT_MS)).catch(() => {});
      throw checksumMismatch(ctx, objectKey, `ETag ${etag}, sent MD5 ${hex}`);
    }
  }

  /** Large object: last part, CompleteMultipartUpload, then the rename copy if any. */
  async #completeMultipart(key: string, md5: Buffer): Promise<void> {
    const ctx = this.#ctx;
    if (this.#fill > 0) await this.#flushPart();
    await this.#drain();
    const overwrite = this.#init.overwrite;
    const staged = this.#stageKey;
    const hidden = staged !== this.#key;
    const renamed = key !== staged;
    if (!overwrite && await head(ctx, key, this.#signal) !== undefined) throw exists(ctx, key);
    if (renamed && !hidden && await head(ctx, staged, this.#signal) !== undefined) {
      throw exists(ctx, staged);
    }
    // A staging object of the same name can only be a killed run's leftover: replace it.
    const conditional = !hidden && (!overwrite || renamed);
    const composite = createHash("md5");
    for (const digest of this.#partMd5s) composite.update(digest);
    const expected = [`${composite.digest("hex")}-${this.#partCount}`, md5.toString("hex")];
    const parts = this.#parts;
    let etag: string | undefined;
    let reported = false;
    try {
      const out = await sendWrite(
        ctx,
        conditional,
        (condition, o) =>
          ctx.client.send(
            new CompleteMultipartUploadCommand({
              Bucket: ctx.bucket,
              Key: this.#objectKey,
              UploadId: this.#uploadId,
              MultipartUpload: { Parts: parts },
              ...condition,
            }),
            o,
          ),
        { signal: this.#signal, action: "complete the multipart upload of", key: this.#objectKey },
      );
      etag = unquote(out.ETag)?.toLowerCase();
      reported = !encrypted(out);
    } catch (error) {
      // A retried completion may find the upload gone (NoSuchUpload) or the key taken (412) by
      // its own first attempt: accept it when the object there is ours.
      const ours = (isExists(error) || nameOf(error) === "NoSuchUpload") &&
        await this.#isOurs(this.#objectKey, expected);
      if (!ours) throw isExists(error) ? exists(ctx, staged) : error;
    }
    this.#uploadId = undefined;
    this.#completedAt = this.#objectKey;
    // Real S3 reports md5(part md5s)-N; s3rver the MD5 of the whole object. Other forms
    // (encrypted objects, other stores) were checked part by part already.
    if (
      reported && etag !== undefined && /^[0-9a-f]{32}(-\d+)?$/.test(etag) &&
      !expected.includes(etag)
    ) {
      throw checksumMismatch(ctx, this.#objectKey, `ETag ${etag}, expected ${expected[0]}`);
    }
    if (renamed) {
      await crashPoint("before_commit_rename");
      await copyObject(ctx, {
        from: staged,
        to: key,
        size: this.#size,
        overwrite,
        signal: this.#signal,
      });
      this.#copiedTo = s3ObjectKey(ctx.prefix, key);
      await crashPoint("after_commit_copy");
      try {
        await deleteObject(ctx, this.#objectKey, this.#signal);
      } catch (error) {
        // Without a staging name, abort() removes both copies: a commit is all or nothing. A
        // staging object is no data: the commit stands, and the next run removes it.
        if (!hidden) throw error;
        ctx.warn(
          `S3 destination could not delete the staging object '${this.#where()}' after copying ` +
            `it to 's3://${ctx.bucket}/${this.#copiedTo}' (${reasonOf(error)}); the next run of ` +
            "the export removes it",
          "destination.staging_left",
        );
      }
    }
    this.#completedAt = this.#copiedTo = undefined;
  }

  /** Whether the object at `objectKey` has our size and one of the expected ETags. */
  async #isOurs(objectKey: string, etags: readonly string[]): Promise<boolean> {
    const ctx = this.#ctx;
    try {
      const out = await send(
        ctx,
        (o) => ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: objectKey }), o),
        { signal: this.#signal, action: "check", key: objectKey },
      );
      const etag = unquote(out.ETag)?.toLowerCase();
      return out.ContentLength === this.#size && etag !== undefined && etags.includes(etag);
    } catch {
      return false;
    }
  }

  async abort(_reason?: unknown): Promise<void> {
    if (this.#state === "committed" || this.#state === "aborted") return;
    if (this.#state === "committing") return; // commit() cleans up through its own abort()
    this.#state = "aborted";
    this.#init.onDone(this);
    this.#controller.abort(new Error(`upload of '${this.#key}' aborted`));
    await this.#inflight?.catch(() => {});
    this.#inflight = undefined;
    this.#buf = this.#spare = this.#inflightBuf = new Uint8Array(0);
    const ctx = this.#ctx;
    const cleanup = AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
    if (this.#uploadId !== undefined) {
      const uploadId = this.#uploadId;
      this.#uploadId = undefined;
      try {
        await send(
          ctx,
          (o) =>
            ctx.client.send(
              new AbortMultipartUploadCommand({
                Bucket: ctx.bucket,
                Key: this.#objectKey,
                UploadId: uploadId,
              }),
              o,
            ),
          { signal: cleanup, action: "abort the multipart upload of", key: this.#objectKey },
        );
      } catch { /* best effort: invisible parts; a lifecycle rule removes them */ }
    }
    for (const objectKey of [this.#completedAt, this.#copiedTo]) {
      if (objectKey !== undefined) await deleteObject(ctx, objectKey, cleanup).catch(() => {});
    }
    this.#completedAt = this.#copiedTo = undefined;
  }

  #where(): string {
    return `s3://${this.#ctx.bucket}/${this.#objectKey}`;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.abort();
  }
}
