/**
 * The request layer of the S3 destination: every SDK call goes through `send` (retries with
 * jittered backoff, warnings, abort signals) and `classify` (a RivetError with a stable code and
 * no secret); on top of them the listing, HeadObject (telling a missing key from a missing
 * bucket), conditional writes, server-side copies of any size and deletes.
 *
 * Layer: destinations (private). Imports core/ and _util/ only.
 *
 * @module
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { Buffer } from "node:buffer";
import type { ObjectMeta } from "../core/destination.ts";
import { PermanentError, RivetError, TransientError } from "../core/errors.ts";
import { redact } from "../_util/redact.ts";
import { checkKey } from "./_keys.ts";
import { bodyStream, listPages, type StoredObject } from "./_object_store.ts";
import {
  CLEANUP_TIMEOUT_MS,
  existsError,
  type FailureKind,
  isNetworkFailure,
  isTransientStatus,
  messageOf,
  notFoundError,
  retryRequest,
  storeFailure,
} from "./_store_errors.ts";
import type { S3Context } from "./_s3_context.ts";

const MiB = 1024 * 1024;
/** Largest object one CopyObject may copy; larger ones are copied part by part. */
const MAX_SINGLE_COPY = 5 * 1024 * MiB;
/** Range of each UploadPartCopy when copying a larger object. */
const COPY_PART_SIZE = 1024 * MiB;

/**
 * The object key of `key` under `prefix`: the two concatenated verbatim, no `/` added or
 * removed. `prefix: exports/` and `a.parquet` give `exports/a.parquet`; `prefix: exports` gives
 * `exportsa.parquet`.
 *
 * @param prefix The destination's `prefix` (undefined or empty for the bucket root).
 * @param key A key relative to the destination root, checked like every destination key.
 * @returns The S3 object key.
 * @throws {ConfigError} `destination.bad_key` for an absolute key, `..`, NUL or backslash.
 *
 * @example
 * ```ts
 * import { s3ObjectKey } from "./s3.ts";
 * if (s3ObjectKey("exports/", "a.parquet") !== "exports/a.parquet") throw new Error();
 * if (s3ObjectKey("exports", "a.parquet") !== "exportsa.parquet") throw new Error();
 * ```
 */
export function s3ObjectKey(prefix: string | undefined, key: string): string {
  return (prefix ?? "") + checkKey(key);
}

/**
 * Every object whose key (relative to the destination root) starts with `prefix`, staging keys
 * included; keys that are no valid rivet key are skipped (see the class doc).
 */
export async function* listRaw(
  ctx: S3Context,
  prefix: string,
  signal: AbortSignal | undefined,
): AsyncIterable<ObjectMeta> {
  const root = ctx.prefix;
  yield* listPages(root, async (token) => {
    const out = await send(
      ctx,
      (o) =>
        ctx.client.send(
          new ListObjectsV2Command({
            Bucket: ctx.bucket,
            Prefix: root + prefix,
            ...(token === undefined ? {} : { ContinuationToken: token }),
          }),
          o,
        ),
      { signal, action: "list", key: root + prefix },
    );
    ctx.bucketSeen = true;
    const items = (out.Contents ?? []).flatMap((object) => {
      if (object.Key === undefined) return [];
      const md5 = md5FromEtag(object.ETag);
      return [{ name: object.Key, size: object.Size ?? 0, ...(md5 === undefined ? {} : { md5 }) }];
    });
    return { items, next: out.IsTruncated === true ? out.NextContinuationToken : undefined };
  });
}

/**
 * Streams the committed object at `key` (GetObject). Stream errors (a dropped connection)
 * surface as `destination.unavailable`.
 */
export async function readObject(
  ctx: S3Context,
  key: string,
  signal: AbortSignal | undefined,
): Promise<ReadableStream<Uint8Array>> {
  const objectKey = s3ObjectKey(ctx.prefix, key);
  let out;
  try {
    out = await send(
      ctx,
      (o) => ctx.client.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: objectKey }), o),
      { signal, action: "read", key: objectKey, notFound: "throw" },
    );
  } catch (error) {
    if (error instanceof PermanentError && error.code === "destination.not_found") {
      throw await missingOrNoBucket(ctx, key, signal);
    }
    throw error;
  }
  ctx.bucketSeen = true;
  const body = out.Body as { transformToWebStream(): ReadableStream<Uint8Array> } | undefined;
  return bodyStream(
    body?.transformToWebStream(),
    signal,
    (error) => classify(ctx, error, { action: "read", key: objectKey }, 1),
  );
}

/** HeadObject of a rivet key: metadata, or undefined for a missing object in an existing bucket. */
export async function head(
  ctx: S3Context,
  key: string,
  signal: AbortSignal | undefined,
): Promise<StoredObject | undefined> {
  const objectKey = s3ObjectKey(ctx.prefix, key);
  let out;
  try {
    out = await send(
      ctx,
      (o) => ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: objectKey }), o),
      { signal, action: "inspect", key: objectKey, notFound: "throw" },
    );
  } catch (error) {
    if (error instanceof PermanentError && error.code === "destination.not_found") {
      const missing = await missingOrNoBucket(ctx, key, signal);
      if (missing.code === "destination.not_found") return undefined;
      throw missing;
    }
    throw error;
  }
  ctx.bucketSeen = true;
  const md5 = encrypted(out) ? undefined : md5FromEtag(out.ETag);
  return { key, size: out.ContentLength ?? 0, ...(md5 === undefined ? {} : { md5 }) };
}

/**
 * A HEAD gets a bare 404 both for a missing key and a missing bucket: one HeadBucket (then
 * remembered) tells them apart.
 */
export async function missingOrNoBucket(
  ctx: S3Context,
  key: string,
  signal: AbortSignal | undefined,
): Promise<PermanentError> {
  if (!ctx.bucketSeen) {
    try {
      await send(ctx, (o) => ctx.client.send(new HeadBucketCommand({ Bucket: ctx.bucket }), o), {
        signal,
        action: "find",
        key: "",
        notFound: "bucket",
      });
      ctx.bucketSeen = true;
    } catch (error) {
      if (error instanceof PermanentError && error.code === "destination.bucket_not_found") {
        return error;
      }
      // HeadBucket needs s3:ListBucket; without it, trust the object-level 404.
      if (!(error instanceof PermanentError && error.code === "destination.auth_failed")) {
        throw error;
      }
    }
  }
  return notFound(ctx, key);
}

interface CopyRequest {
  readonly from: string;
  readonly to: string;
  readonly size: number;
  readonly overwrite: boolean;
  readonly signal: AbortSignal | undefined;
}

/** Server-side copy of `from` to `to`; conditional on `to` being absent unless `overwrite`. */
export async function copyObject(ctx: S3Context, request: CopyRequest): Promise<void> {
  const fromKey = s3ObjectKey(ctx.prefix, request.from);
  const toKey = s3ObjectKey(ctx.prefix, request.to);
  const source = `${encodeURIComponent(ctx.bucket)}/${
    fromKey.split("/").map(encodeURIComponent).join("/")
  }`;
  const conditional = !request.overwrite;
  const { signal } = request;
  try {
    if (request.size <= MAX_SINGLE_COPY) {
      await sendWrite(
        ctx,
        conditional,
        (condition, o) =>
          ctx.client.send(
            new CopyObjectCommand({
              Bucket: ctx.bucket,
              Key: toKey,
              CopySource: source,
              ...condition,
            }),
            o,
          ),
        { signal, action: "copy to", key: toKey },
      );
      return;
    }
    // CopyObject stops at 5 GiB: copy ranges with UploadPartCopy into a multipart upload.
    const created = await send(
      ctx,
      (o) =>
        ctx.client.send(new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: toKey }), o),
      { signal, action: "start the multipart copy to", key: toKey },
    );
    const uploadId = created.UploadId!;
    try {
      const parts: { PartNumber: number; ETag: string }[] = [];
      for (let start = 0, n = 1; start < request.size; start += COPY_PART_SIZE, n++) {
        const end = Math.min(request.size, start + COPY_PART_SIZE) - 1;
        const out = await send(
          ctx,
          (o) =>
            ctx.client.send(
              new UploadPartCopyCommand({
                Bucket: ctx.bucket,
                Key: toKey,
                UploadId: uploadId,
                PartNumber: n,
                CopySource: source,
                CopySourceRange: `bytes=${start}-${end}`,
              }),
              o,
            ),
          { signal, action: `copy part ${n} to`, key: toKey },
        );
        parts.push({ PartNumber: n, ETag: out.CopyPartResult?.ETag ?? "" });
      }
      await sendWrite(
        ctx,
        conditional,
        (condition, o) =>
          ctx.client.send(
            new CompleteMultipartUploadCommand({
              Bucket: ctx.bucket,
              Key: toKey,
              UploadId: uploadId,
              MultipartUpload: { Parts: parts },
              ...condition,
            }),
            o,
          ),
        { signal, action: "complete the multipart copy to", key: toKey },
      );
    } catch (error) {
      await send(
        ctx,
        (o) =>
          ctx.client.send(
            new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: toKey, UploadId: uploadId }),
            o,
          ),
        {
          signal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS),
          action: "abort the multipart copy to",
          key: toKey,
        },
      ).catch(() => {});
      throw error;
    }
  } catch (error) {
    if (isExists(error)) throw exists(ctx, request.to);
    throw error;
  }
}

/** DeleteObject of a full object key; S3 answers a missing key with success. */
export async function deleteObject(
  ctx: S3Context,
  objectKey: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  await send(
    ctx,
    (o) => ctx.client.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: objectKey }), o),
    {
      signal,
      action: "delete",
      key: objectKey,
    },
  );
}

interface SendOptions {
  readonly signal: AbortSignal | undefined;
  /** What rivet was doing, for messages: `write`, `upload part 3 of`, … */
  readonly action: string;
  /** Full object key involved (for messages), or `""` for the bucket. */
  readonly key: string;
  /**
   * How a 404 without a `NoSuchBucket` code reads: `throw` gives `destination.not_found` for
   * the caller to refine, `bucket` gives `destination.bucket_not_found`.
   */
  readonly notFound?: "throw" | "bucket";
}

/** Options of one attempt: the abort signal the SDK honours. */
type AttemptOptions = { abortSignal?: AbortSignal };

/**
 * Sends one request under the kit's retry loop (see `retryRequest`), retrying what
 * {@linkcode classify} calls transient. `call` builds a fresh command for each attempt; a body
 * (a part buffer) is simply sent again.
 */
export function send<T>(
  ctx: S3Context,
  call: (attempt: AttemptOptions) => Promise<T>,
  options: SendOptions,
): Promise<T> {
  const { signal } = options;
  return retryRequest(ctx, {
    action: options.action,
    target: `s3://${ctx.bucket}/${options.key}`,
    signal,
  }, {
    transient: (error) => classify(ctx, error, options, 1) instanceof TransientError,
    failure: (error, attempts) => classify(ctx, error, options, attempts),
    reason: reasonOf,
  }, () => call(signal === undefined ? {} : { abortSignal: signal }));
}

/** The `If-None-Match: *` header of a conditional write, or nothing. */
type Condition = { IfNoneMatch?: string };

/**
 * {@linkcode send} for a write that must not replace an object: with `If-None-Match: *` when
 * `conditional`, unless the store answered 501 NotImplemented to it once, after which the
 * HeadObject check made before the write is the only guard (older S3-compatible stores).
 */
export async function sendWrite<T>(
  ctx: S3Context,
  conditional: boolean,
  call: (condition: Condition, attempt: AttemptOptions) => Promise<T>,
  options: SendOptions,
): Promise<T> {
  if (!conditional || !ctx.conditionalWrites) return await send(ctx, (o) => call({}, o), options);
  try {
    return await send(ctx, (o) => call({ IfNoneMatch: "*" }, o), options);
  } catch (error) {
    const cause = error instanceof RivetError ? error.cause : error;
    if (statusOf(cause) !== 501 && nameOf(cause) !== "NotImplemented") throw error;
    ctx.conditionalWrites = false;
    return await send(ctx, (o) => call({}, o), options);
  }
}

const AUTH_NAMES = new Set([
  "AccessDenied",
  "AllAccessDisabled",
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "ExpiredToken",
  "InvalidToken",
  "TokenRefreshRequired",
  "InvalidClientTokenId",
  "CredentialsProviderError",
  "Forbidden",
  "Unauthorized",
]);

const TRANSIENT_NAMES = new Set([
  "SlowDown",
  "RequestTimeout",
  "RequestTimeoutException",
  "InternalError",
  "ServiceUnavailable",
  "TimeoutError",
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "OperationAborted",
]);

/** The S3 error code (`Code` of the XML answer) or the SDK's error name. */
export function nameOf(error: unknown): string | undefined {
  const e = error as { name?: unknown; Code?: unknown } | null;
  if (typeof e?.Code === "string") return e.Code;
  return typeof e?.name === "string" ? e.name : undefined;
}

/** The HTTP status of an SDK error (`$metadata.httpStatusCode`: the AWS SDK's shape). */
function statusOf(error: unknown): number | undefined {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata
    ?.httpStatusCode;
  return typeof status === "number" ? status : undefined;
}

/** A short account of a failed request for a retry warning: status and code, or the network error. */
export function reasonOf(error: unknown): string {
  const status = statusOf(error);
  const name = nameOf(error);
  if (status !== undefined) {
    return `HTTP ${status}${name === undefined || name === "UnknownError" ? "" : ` ${name}`}`;
  }
  const code = (error as { code?: unknown } | null)?.code;
  const line = messageOf(error).split("\n")[0]!.slice(0, 200);
  return redact(typeof code === "string" && !line.includes(code) ? `${code}: ${line}` : line);
}

/** Whether a failure says the object is already there (412, or our `destination.exists`). */
export function isExists(error: unknown): boolean {
  if (error instanceof PermanentError) return error.code === "destination.exists";
  return statusOf(error) === 412 || nameOf(error) === "PreconditionFailed";
}

/**
 * Turns an SDK or network error into a RivetError with a stable code, worded by the kit. Store
 * messages pass through `redact`; credentials never enter them.
 */
export function classify(
  ctx: S3Context,
  error: unknown,
  options: Pick<SendOptions, "action" | "key" | "notFound">,
  attempts: number,
): RivetError {
  if (error instanceof RivetError) return error;
  const request = { action: options.action, target: `s3://${ctx.bucket}/${options.key}` };
  return storeFailure(ctx, kindOf(error, options), request, {
    error,
    reason: reasonOf(error),
    attempts,
  });
}

function kindOf(error: unknown, options: Pick<SendOptions, "notFound">): FailureKind {
  const status = statusOf(error);
  const name = nameOf(error);
  if (name === "NoSuchBucket" || (status === 404 && options.notFound === "bucket")) {
    return "bucket_not_found";
  }
  if (
    name === "NoSuchKey" ||
    (status === 404 && options.notFound === "throw" && name !== "NoSuchUpload")
  ) return "not_found";
  if (status === 401 || status === 403 || (name !== undefined && AUTH_NAMES.has(name))) {
    return "auth_failed";
  }
  if (status === 412 || name === "PreconditionFailed") return "exists";
  // 501 is no outage: the store does not support a conditional write (see sendWrite).
  const transient = (status !== 501 && isTransientStatus(status)) ||
    (name !== undefined && TRANSIENT_NAMES.has(name)) || isNetworkFailure(error) ||
    // The SDK's own network errors carry no code: a socket closed or timed out under it.
    (status === undefined &&
      /socket hang up|aborted|network|timed? ?out|closed/i.test(messageOf(error)));
  return transient ? "unavailable" : "request_failed";
}

/** `destination.not_found` for a key that names no object. */
export function notFound(ctx: S3Context, key: string): PermanentError {
  return notFoundError("S3", `s3://${ctx.bucket}/${s3ObjectKey(ctx.prefix, key)}`);
}

/** `destination.exists`: rivet never replaces a committed object. */
export function exists(ctx: S3Context, key: string): PermanentError {
  return existsError("S3", `s3://${ctx.bucket}/${s3ObjectKey(ctx.prefix, key)}`);
}

/** An ETag without its quotes. */
export function unquote(etag: string | undefined): string | undefined {
  return etag?.replaceAll('"', "");
}

/** Base64 MD5 from a plain 32-hex ETag; undefined for multipart (`-N`) or other ETags. */
function md5FromEtag(etag: string | undefined): string | undefined {
  const hex = unquote(etag)?.toLowerCase();
  if (hex === undefined || !/^[0-9a-f]{32}$/.test(hex)) return undefined;
  return Buffer.from(hex, "hex").toString("base64");
}

/** SSE-KMS and SSE-C objects have ETags that are not the MD5 of their bytes. */
export function encrypted(
  out: { ServerSideEncryption?: string | undefined; SSECustomerAlgorithm?: string | undefined },
): boolean {
  return out.SSECustomerAlgorithm !== undefined ||
    (out.ServerSideEncryption?.startsWith("aws:kms") ?? false);
}
