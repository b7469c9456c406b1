/**
 * The S3 side of an upload: a small object is one PutObject (its ETag compared with the MD5 of
 * the bytes), a large one a multipart upload whose parts are sent with Content-MD5 and their
 * ETags checked, completed by CompleteMultipartUpload (see `S3Destination` in `s3.ts`). The
 * buffering, the commit under another name and the clean-up are the kit's
 * (`_object_store.ts`).
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
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { PermanentError } from "../core/errors.ts";
import type { Part, PartSession, Sent, StoredObject } from "./_object_store.ts";
import { checksumMismatch, CLEANUP_TIMEOUT_MS } from "./_store_errors.ts";
import type { S3Context } from "./_s3_context.ts";
import {
  deleteObject,
  encrypted,
  exists,
  isExists,
  nameOf,
  s3ObjectKey,
  send,
  sendWrite,
  unquote,
} from "./_s3_requests.ts";

const MiB = 1024 * 1024;
/** Part size of the first 2000 parts; it doubles every 2000 parts (see `s3PartSize`). */
const BASE_PART_SIZE = 8 * MiB;
/** S3's limit of parts per multipart upload. */
const MAX_PARTS = 10_000;

/**
 * Size of part `n` (1-based): 8 MiB for parts 1–2000, then doubled every 2000 parts up to
 * 128 MiB, so the 10,000-part limit allows ~484 GiB per object while a typical export keeps two
 * 8 MiB buffers.
 */
export function s3PartSize(n: number): number {
  return BASE_PART_SIZE * 2 ** Math.min(4, Math.floor((n - 1) / 2000));
}

/** Options of a write: whether it must not replace an object, and the upload's signal. */
interface WriteOptions {
  readonly conditional: boolean;
  readonly signal: AbortSignal;
}

/** One PutObject of a whole small object at `key`, its ETag checked against the MD5 sent. */
export async function putSingle(
  ctx: S3Context,
  key: string,
  bytes: Uint8Array,
  sent: Sent,
  options: WriteOptions,
): Promise<StoredObject> {
  const objectKey = s3ObjectKey(ctx.prefix, key);
  const md5 = Buffer.from(sent.md5);
  const hex = md5.toString("hex");
  let out;
  try {
    out = await sendWrite(
      ctx,
      options.conditional,
      (condition, o) =>
        ctx.client.send(
          new PutObjectCommand({
            Bucket: ctx.bucket,
            Key: objectKey,
            Body: bytes,
            ContentLength: bytes.length,
            ContentMD5: md5.toString("base64"),
            ...condition,
          }),
          o,
        ),
      { signal: options.signal, action: "write", key: objectKey },
    );
  } catch (error) {
    // A retried PUT whose first attempt landed meets its own object: same bytes, done.
    if (!isExists(error)) throw error;
    if (await isOurs(ctx, objectKey, sent.size, [hex], options.signal)) {
      return { key, size: sent.size };
    }
    throw exists(ctx, key);
  }
  ctx.bucketSeen = true;
  const etag = unquote(out.ETag)?.toLowerCase();
  if (!encrypted(out) && etag !== undefined && etag !== hex) {
    await deleteObject(ctx, objectKey, AbortSignal.timeout(CLEANUP_TIMEOUT_MS)).catch(() => {});
    throw checksumMismatch("S3", where(ctx, objectKey), `ETag ${etag}, sent MD5 ${hex}`);
  }
  return { key, size: sent.size };
}

/** Opens a multipart upload at `key` (CreateMultipartUpload). */
export async function startParts(
  ctx: S3Context,
  key: string,
  options: WriteOptions,
): Promise<PartSession> {
  const objectKey = s3ObjectKey(ctx.prefix, key);
  const out = await send(
    ctx,
    (o) =>
      ctx.client.send(new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: objectKey }), o),
    { signal: options.signal, action: "start the multipart upload of", key: objectKey },
  );
  ctx.bucketSeen = true;
  if (out.UploadId === undefined) {
    throw new PermanentError(
      `S3 destination got no upload id for '${where(ctx, objectKey)}'; check that the ` +
        "endpoint is an S3-compatible store",
      { code: "destination.request_failed" },
    );
  }
  return new S3Parts(ctx, key, objectKey, out.UploadId, options.conditional);
}

/** A multipart upload: parts with their MD5s, completed at commit. */
class S3Parts implements PartSession {
  readonly #parts: { PartNumber: number; ETag: string }[] = [];
  readonly #partMd5s: Buffer[] = [];
  #uploadId: string | undefined;

  constructor(
    readonly ctx: S3Context,
    readonly key: string,
    readonly objectKey: string,
    uploadId: string,
    readonly conditional: boolean,
  ) {
    this.#uploadId = uploadId;
  }

  async putPart(part: Part, signal: AbortSignal): Promise<void> {
    const { ctx, objectKey } = this;
    const { n, bytes } = part;
    if (n > MAX_PARTS) {
      throw new PermanentError(
        `S3 destination cannot write '${where(ctx, objectKey)}': the object needs more than ` +
          `${MAX_PARTS} parts (about ${Math.floor(part.offset / 1024 ** 3)} GiB so far); set ` +
          "max_file_size to split the export into smaller files",
        { code: "destination.object_too_large" },
      );
    }
    const digest = createHash("md5").update(bytes).digest();
    const out = await send(
      ctx,
      (o) =>
        ctx.client.send(
          new UploadPartCommand({
            Bucket: ctx.bucket,
            Key: objectKey,
            UploadId: this.#uploadId,
            PartNumber: n,
            Body: bytes,
            ContentLength: bytes.length,
            ContentMD5: digest.toString("base64"),
          }),
          o,
        ),
      { signal, action: `upload part ${n} of`, key: objectKey },
    );
    const etag = unquote(out.ETag);
    const hex = digest.toString("hex");
    if (etag === undefined) {
      throw new PermanentError(
        `S3 destination got no ETag for part ${n} of '${where(ctx, objectKey)}'; check that ` +
          "the endpoint is an S3-compatible store",
        { code: "destination.request_failed" },
      );
    }
    if (!encrypted(out) && etag.toLowerCase() !== hex) {
      throw checksumMismatch(
        "S3",
        where(ctx, objectKey),
        `part ${n}: ETag ${etag}, sent MD5 ${hex}`,
      );
    }
    this.#parts[n - 1] = { PartNumber: n, ETag: out.ETag! };
    this.#partMd5s[n - 1] = digest;
  }

  /** The last part, then CompleteMultipartUpload, its ETag checked. */
  async complete(last: Part, sent: Sent, signal: AbortSignal): Promise<StoredObject> {
    const { ctx, objectKey } = this;
    await this.putPart(last, signal);
    const composite = createHash("md5");
    for (const digest of this.#partMd5s) composite.update(digest);
    const expected = [
      `${composite.digest("hex")}-${this.#parts.length}`,
      Buffer.from(sent.md5).toString("hex"),
    ];
    const parts = this.#parts;
    let etag: string | undefined;
    let reported = false;
    try {
      const out = await sendWrite(
        ctx,
        this.conditional,
        (condition, o) =>
          ctx.client.send(
            new CompleteMultipartUploadCommand({
              Bucket: ctx.bucket,
              Key: objectKey,
              UploadId: this.#uploadId,
              MultipartUpload: { Parts: parts },
              ...condition,
            }),
            o,
          ),
        { signal, action: "complete the multipart upload of", key: objectKey },
      );
      etag = unquote(out.ETag)?.toLowerCase();
      reported = !encrypted(out);
    } catch (error) {
      // A retried completion may find the upload gone (NoSuchUpload) or the key taken (412) by
      // its own first attempt: accept it when the object there is ours.
      const ours = (isExists(error) || nameOf(error) === "NoSuchUpload") &&
        await isOurs(ctx, objectKey, sent.size, expected, signal);
      if (!ours) throw isExists(error) ? exists(ctx, this.key) : error;
    }
    this.#uploadId = undefined;
    // Real S3 reports md5(part md5s)-N; s3rver the MD5 of the whole object. Other forms
    // (encrypted objects, other stores) were checked part by part already.
    if (
      reported && etag !== undefined && /^[0-9a-f]{32}(-\d+)?$/.test(etag) &&
      !expected.includes(etag)
    ) {
      await deleteObject(ctx, objectKey, AbortSignal.timeout(CLEANUP_TIMEOUT_MS)).catch(() => {});
      throw checksumMismatch(
        "S3",
        where(ctx, objectKey),
        `ETag ${etag}, expected ${expected[0]}`,
      );
    }
    return { key: this.key, size: sent.size };
  }

  /** AbortMultipartUpload; best effort (invisible parts; a lifecycle rule removes them). */
  async cancel(): Promise<void> {
    const uploadId = this.#uploadId;
    this.#uploadId = undefined;
    if (uploadId === undefined) return;
    const { ctx, objectKey } = this;
    await send(
      ctx,
      (o) =>
        ctx.client.send(
          new AbortMultipartUploadCommand({
            Bucket: ctx.bucket,
            Key: objectKey,
            UploadId: uploadId,
          }),
          o,
        ),
      {
        signal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS),
        action: "abort the multipart upload of",
        key: objectKey,
      },
    );
  }
}

/** Whether the object at `objectKey` has our size and one of the expected ETags. */
async function isOurs(
  ctx: S3Context,
  objectKey: string,
  size: number,
  etags: readonly string[],
  signal: AbortSignal,
): Promise<boolean> {
  try {
    const out = await send(
      ctx,
      (o) => ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: objectKey }), o),
      { signal, action: "check", key: objectKey },
    );
    const etag = unquote(out.ETag)?.toLowerCase();
    return out.ContentLength === size && etag !== undefined && etags.includes(etag);
  } catch {
    return false;
  }
}

function where(ctx: S3Context, objectKey: string): string {
  return `s3://${ctx.bucket}/${objectKey}`;
}
