/**
 * The Amazon S3 destination (and S3-compatible stores: MinIO, s3rver, …) through
 * `@aws-sdk/client-s3`: objects are streamed with the low-level multipart API and become visible
 * only at `commit()`, so a reader never sees a partial object.
 *
 * Layer: destinations. Imports core/ and _util/ only.
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
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { Buffer } from "node:buffer";
import { createHash, type Hash } from "node:crypto";
import type {
  CreateOptions,
  Destination,
  DestinationCapabilities,
  ObjectMeta,
  StagingObject,
  Upload,
} from "../core/destination.ts";
import {
  ConfigError,
  DataIntegrityError,
  PermanentError,
  RivetError,
  TransientError,
} from "../core/errors.ts";
import type { DestinationSpec, SignalOptions } from "../core/spec.ts";
import { redact, registerSecret } from "../_util/redact.ts";
import { crashPoint } from "../_util/test_hook.ts";
import { checkKey, checkStagingKey, isStagingKey, stagingKeyOf } from "./_keys.ts";
import {
  consoleWarn,
  type DestinationWarn,
  listStagingWith,
  moveByCopy,
  retryMessage,
} from "./_cloud.ts";

/** Options of {@linkcode S3Destination.open}. */
export interface S3DestinationOptions {
  /**
   * Reads an environment variable: the values named by `access_key_env`, `secret_key_env` and
   * `session_token_env` come from here (the SDK's default chain still reads the process
   * environment itself).
   */
  readonly env: (name: string) => string | undefined;
  /** Cancels opening. */
  readonly signal?: AbortSignal;
  /** Receives warnings (a request about to be retried); default `console.warn`. */
  readonly warn?: DestinationWarn;
}

const capabilities: DestinationCapabilities = {
  commit: "on_close",
  idempotentOverwrite: false,
  retrySafe: true,
  persistent: true,
};

const MiB = 1024 * 1024;
/** Part size of the first 2000 parts; it doubles every 2000 parts (see `partSize`). */
const BASE_PART_SIZE = 8 * MiB;
/** S3's limit of parts per multipart upload. */
const MAX_PARTS = 10_000;
/** Largest object one CopyObject may copy; larger ones are copied part by part. */
const MAX_SINGLE_COPY = 5 * 1024 * MiB;
/** Range of each UploadPartCopy when copying a larger object. */
const COPY_PART_SIZE = 1024 * MiB;
/** Retries of a request that failed transiently (so six attempts in all). */
const MAX_RETRIES = 5;
const BACKOFF_BASE_MS = 200;
const BACKOFF_CAP_MS = 10_000;
/** Deadline of the clean-up requests of an aborted upload, which must run even after Ctrl-C. */
const CLEANUP_TIMEOUT_MS = 30_000;

/**
 * Size of part `n` (1-based): 8 MiB for parts 1–2000, then doubled every 2000 parts up to
 * 128 MiB, so the 10,000-part limit allows ~484 GiB per object while a typical export keeps two
 * 8 MiB buffers.
 */
function partSize(n: number): number {
  return BASE_PART_SIZE * 2 ** Math.min(4, Math.floor((n - 1) / 2000));
}

/**
 * The object key of `key` under `prefix`: the two concatenated verbatim, no `/` added or
 * removed. `prefix: exports/` and `a.parquet` give `exports/a.parquet`;
 * `prefix: exports` gives `exportsa.parquet`.
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

/** What every request needs: the client, where, and how to explain failures. */
interface S3Context {
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  /** Printable endpoint (no query, no userinfo) or undefined for AWS. */
  readonly endpoint: string | undefined;
  /** What to check when the store refuses the credentials. */
  readonly authHint: string;
  /** Set once a request showed the bucket exists (tells a missing key from a missing bucket). */
  bucketSeen: boolean;
  /** Cleared when the store refuses `If-None-Match` on writes (501). */
  conditionalWrites: boolean;
  /** Where retries and left-over staging objects are reported. */
  readonly warn: DestinationWarn;
}

/**
 * Writes objects to one S3 bucket under a key prefix.
 *
 * **Key layout.** The object key is the configured `prefix` and the rivet key concatenated
 * verbatim: `prefix: exports/` puts `a.parquet` at `exports/a.parquet`, while
 * `prefix: exports` puts it at `exportsa.parquet`. Write the trailing `/` when you mean a folder.
 * `uri` is `s3://<bucket>/<prefix>` (the prefix as written).
 *
 * **Writes.** `create` buffers the stream in 8 MiB parts (bounded memory: the part being filled
 * plus at most one part in flight; parts grow past part 2000, see the source). The first full
 * part starts a multipart upload (CreateMultipartUpload) at the create key, each part is sent
 * with UploadPart (Content-MD5 set, the returned ETag compared with the part's MD5), and
 * `commit` completes it, so nothing is visible before `commit`. An object smaller than one part
 * is sent with a single PutObject at `commit` (its ETag must equal the MD5 of the bytes). Every
 * request is retried up to 5 times on 5xx, throttling, timeouts and dropped connections
 * (200 ms–10 s, jittered); a failed part is re-sent alone. Checksums are not compared when the
 * store reports SSE-KMS or SSE-C encryption, whose ETags are not MD5s (Content-MD5 still makes
 * the store check what it received).
 *
 * **No overwrite.** Unless `create` was given `overwrite`, `commit` refuses an existing object:
 * a HeadObject first, then a conditional write (`If-None-Match: *`) where the store supports it.
 *
 * **Renaming commit.** `commit(finalKey)` with a key other than the create key writes small
 * objects straight to `finalKey`; a multipart object is completed where it was streamed, copied
 * server-side to `finalKey` (without overwriting) and deleted there. An upload created with
 * `provisional` streams to the hidden staging key `.<name>.tmp` instead of the create key, so
 * no object ever has a data name before its commit: a crash before the copy leaves only the
 * staging object (never listed; the next run of the export removes it), a crash after the copy
 * leaves the complete object at its final name and the staging one (the next run reports the
 * first, listed in no manifest, and removes the second). A failed copy deletes the staged
 * object and fails the commit; once the copy is there, a staging object that cannot be deleted
 * is a warning (`destination.staging_left`). Without `provisional`, a failed delete of the
 * create key deletes both copies and fails the commit.
 *
 * **Abort.** `abort` cancels requests in flight and sends AbortMultipartUpload. Stores that
 * ignore it (s3rver) or a crash leave invisible parts behind: give real buckets an
 * `AbortIncompleteMultipartUpload` lifecycle rule.
 *
 * **Credentials.** `access_key_env` + `secret_key_env` (+ `session_token_env`, used only with
 * them), whose values are registered as secrets; else `aws_profile`, given to the client as its
 * `profile`, which the SDK's chain resolves from the shared files (`~/.aws/credentials` and
 * `~/.aws/config`, or `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`: keys, SSO,
 * `credential_process`, role chaining) without changing the environment; else the SDK's default
 * chain (environment, shared files, SSO, web identity, container and instance roles). `endpoint` switches to
 * path-style addressing (MinIO, s3rver); `region` defaults to `us-east-1` and redirects to the
 * bucket's region are followed.
 *
 * **Listing.** `list` never lists staging keys (`.<name>.tmp`); `listStaging` does. `list` and
 * `stat` report the MD5 only for plain 32-hex ETags (single-part uploads; s3rver also for
 * multipart ones). `stat` leaves it out for SSE-KMS/SSE-C objects;
 * `list` cannot tell them apart, so in a KMS-encrypted bucket its MD5s are not content MD5s.
 * Objects whose relative key is not a valid rivet key (a folder marker ending in `/`, a `/`
 * right after a prefix without one) are skipped.
 *
 * @example Stream one object and commit it
 * ```ts ignore
 * import { S3Destination } from "./s3.ts";
 * await using dest = await S3Destination.open(
 *   { kind: "s3", bucket: "b", prefix: "exports/", allowAnonymous: false },
 *   { env: (name) => Deno.env.get(name) },
 * );
 * const upload = await dest.create("a.csv");
 * await ReadableStream.from([new TextEncoder().encode("id\n1\n")]).pipeTo(upload.writable);
 * await upload.commit(); // now at s3://b/exports/a.csv
 * ```
 */
export class S3Destination implements Destination {
  /** Always `s3`. */
  readonly kind = "s3" as const;
  /** Visible on completion, retry-safe, never overwrites a committed part. */
  readonly capabilities: DestinationCapabilities = capabilities;
  /** `s3://<bucket>/<prefix>`. */
  readonly uri: string;
  /** The bucket. */
  readonly bucket: string;
  /** The key prefix, verbatim (may be empty). */
  readonly prefix: string;
  readonly #ctx: S3Context;
  readonly #open = new Set<S3Upload>();

  private constructor(ctx: S3Context) {
    this.#ctx = ctx;
    this.bucket = ctx.bucket;
    this.prefix = ctx.prefix;
    this.uri = `s3://${ctx.bucket}/${ctx.prefix}`;
  }

  /**
   * Builds the client; makes no request (a missing bucket or bad credentials show at the first
   * request, as `destination.bucket_not_found` / `destination.auth_failed`).
   *
   * @param spec The destination keys: `bucket`, `prefix`, `region`, `endpoint`,
   *   `access_key_env`/`secret_key_env`/`session_token_env`, `aws_profile`.
   * @param options Where environment variables are read; an abort signal.
   * @returns The destination; dispose it to abort open uploads and close connections.
   * @throws {ConfigError} `config.missing_key` without `bucket`; `config.conflicting_keys` when
   *   only one of `access_key_env`/`secret_key_env` is set; `config.missing_env` when a named
   *   variable is unset; `config.invalid_url` for an endpoint that is not an http(s) URL.
   */
  static open(spec: DestinationSpec, options: S3DestinationOptions): Promise<S3Destination> {
    try {
      options.signal?.throwIfAborted();
      return Promise.resolve(new S3Destination(buildContext(spec, options)));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Starts an object at `key`. No request is made until 8 MiB were written or `commit` runs.
   *
   * @param key Object key relative to the destination root.
   * @param options `overwrite` for `manifest.json`/`_SUCCESS`; a signal that cancels requests.
   * @returns The upload; nothing is visible at any key before `commit()`.
   * @throws {ConfigError} `destination.bad_key` for an absolute key, `..`, NUL or backslash.
   */
  create(key: string, options: CreateOptions = {}): Promise<Upload> {
    try {
      checkKey(key);
      options.signal?.throwIfAborted();
    } catch (error) {
      return Promise.reject(error);
    }
    const upload = new S3Upload(this.#ctx, key, {
      overwrite: options.overwrite === true,
      provisional: options.provisional === true,
      signal: options.signal,
      onDone: (u) => this.#open.delete(u),
    });
    this.#open.add(upload);
    return Promise.resolve(upload);
  }

  /**
   * Lists committed objects whose key starts with `prefix` (ListObjectsV2, paginated), in the
   * store's key order (UTF-8 bytes). Multipart uploads in progress are never listed.
   *
   * @param prefix Key prefix relative to the destination root, e.g. `""` or `_quarantine/`.
   * @param options An abort signal.
   * @returns Objects with key, size and, for plain-MD5 ETags, the base64 MD5.
   * @throws {PermanentError} `destination.bucket_not_found`, `destination.auth_failed`.
   * @throws {TransientError} `destination.unavailable` after the retries.
   */
  async *list(prefix: string, options: SignalOptions = {}): AsyncIterable<ObjectMeta> {
    for await (const object of listRaw(this.#ctx, prefix, options.signal)) {
      if (!isStagingKey(object.key)) yield object;
    }
  }

  /**
   * Lists the staging objects (`.<name>.tmp`, see the class doc) in the folder of `prefix`
   * whose final key starts with `prefix`: complete objects a killed renaming commit left.
   * Multipart uploads in progress are not objects and are not listed.
   *
   * @param prefix Final-key prefix relative to the destination root, e.g. `orders_`.
   * @param options An abort signal.
   * @returns Staging key, final key and size of each.
   */
  async *listStaging(prefix: string, options: SignalOptions = {}): AsyncIterable<StagingObject> {
    yield* listStagingWith(prefix, (raw) => listRaw(this.#ctx, raw, options.signal));
  }

  /**
   * Deletes a staging object (see {@linkcode listStaging}); an absent key is no error.
   *
   * @param key A staging key, `dir/.<name>.tmp`.
   * @param options An abort signal.
   * @throws {ConfigError} `destination.bad_key` for a key that is not a staging name.
   */
  async removeStaging(key: string, options: SignalOptions = {}): Promise<void> {
    checkStagingKey(key, "S3");
    await deleteObject(this.#ctx, s3ObjectKey(this.#ctx.prefix, key), options.signal);
  }

  /**
   * Size and MD5 (plain-MD5 ETags only) of the committed object at `key` (HeadObject).
   *
   * @param key Object key relative to the root.
   * @param options An abort signal.
   * @returns The metadata, or undefined when there is no such object.
   * @throws {PermanentError} `destination.bucket_not_found` (a 404 is told apart from a missing
   *   key with one HeadBucket), `destination.auth_failed`.
   */
  async stat(key: string, options: SignalOptions = {}): Promise<ObjectMeta | undefined> {
    return await head(this.#ctx, checkKey(key), options.signal);
  }

  /**
   * Streams the committed object at `key` (GetObject). Stream errors (a dropped connection)
   * surface as `destination.unavailable`.
   *
   * @param key Object key relative to the root.
   * @param options A signal that cancels the download.
   * @returns The bytes; read to the end or cancel the stream to release the connection.
   * @throws {PermanentError} `destination.not_found`, `destination.bucket_not_found`,
   *   `destination.auth_failed`.
   */
  async read(key: string, options: SignalOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const ctx = this.#ctx;
    const objectKey = s3ObjectKey(ctx.prefix, key);
    const signal = options.signal;
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
    if (body === undefined) return new ReadableStream({ start: (c) => c.close() });
    const reader = body.transformToWebStream().getReader();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { value, done } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          controller.error(
            signal?.aborted
              ? signal.reason
              : classify(ctx, error, { action: "read", key: objectKey }),
          );
        }
      },
      cancel: (reason) => reader.cancel(reason),
    }, { highWaterMark: 0 });
  }

  /**
   * Moves a committed object: server-side copy to `to` (conditional on `to` being absent), a
   * check of the copy's size, then delete of `from`. All or nothing: if the delete fails while
   * `from` is still there, the copy is deleted again (see `moveByCopy`).
   *
   * @param from Key of the committed object.
   * @param to New key, e.g. `_quarantine/<run_id>/<name>`.
   * @param options An abort signal.
   * @throws {PermanentError} `destination.not_found` when `from` is absent;
   *   `destination.exists` when `to` exists (both objects untouched);
   *   `destination.move_incomplete` when both names may hold the object.
   * @throws {DataIntegrityError} `destination.checksum_mismatch` when the copy has another size
   *   (the copy is deleted).
   */
  async move(from: string, to: string, options: SignalOptions = {}): Promise<void> {
    checkKey(from);
    checkKey(to);
    const ctx = this.#ctx;
    const signal = options.signal;
    const source = await head(ctx, from, signal);
    if (source === undefined) throw notFound(ctx, from);
    if (await head(ctx, to, signal) !== undefined) throw exists(ctx, to);
    const fromKey = s3ObjectKey(ctx.prefix, from);
    const toKey = s3ObjectKey(ctx.prefix, to);
    const cleanup = () => AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
    await moveByCopy({
      from: `s3://${ctx.bucket}/${fromKey}`,
      to: `s3://${ctx.bucket}/${toKey}`,
      copy: async () => {
        await copyObject(ctx, { from, to, size: source.size, overwrite: false, signal });
        const copied = await head(ctx, to, signal);
        if (copied?.size !== source.size) {
          await deleteObject(ctx, toKey, cleanup()).catch(() => {});
          throw checksumMismatch(
            ctx,
            toKey,
            `copy of ${copied?.size ?? "no"} bytes, source ${source.size}`,
          );
        }
      },
      removeSource: () => deleteObject(ctx, fromKey, signal),
      sourceExists: async () => (await head(ctx, from, cleanup())) !== undefined,
      removeCopy: () => deleteObject(ctx, toKey, cleanup()),
    });
  }

  /**
   * Deletes a committed object (doctor's probe). An absent key is not an error (S3 semantics).
   *
   * @param key Object key relative to the destination root.
   * @param options An abort signal.
   */
  async remove(key: string, options: SignalOptions = {}): Promise<void> {
    checkKey(key);
    await deleteObject(this.#ctx, s3ObjectKey(this.#ctx.prefix, key), options.signal);
  }

  /** Aborts every upload that was neither committed nor aborted, then closes the client. */
  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all([...this.#open].map((upload) => upload.abort()));
    this.#ctx.client.destroy();
  }
}

function buildContext(spec: DestinationSpec, options: S3DestinationOptions): S3Context {
  if (spec.bucket === undefined || spec.bucket === "") {
    throw new ConfigError("S3 destination has no bucket; set destination.bucket", {
      code: "config.missing_key",
    });
  }
  const bucket = spec.bucket;
  const config: S3ClientConfig = {
    region: spec.region ?? "us-east-1",
    // Retries are ours (per request, part uploads included), so the SDK makes one attempt.
    maxAttempts: 1,
    // Content-MD5 is sent on every upload instead of the SDK's default CRC32 (computed in JS).
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    followRegionRedirects: true,
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 120_000 },
  };
  let endpoint: string | undefined;
  if (spec.endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(spec.endpoint);
    } catch {
      url = new URL("invalid:");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ConfigError(
        "S3 destination endpoint is not an http(s) URL; write it as http://host:port",
        { code: "config.invalid_url" },
      );
    }
    endpoint = `${url.protocol}//${url.host}${url.pathname === "/" ? "" : url.pathname}`;
    Object.assign(config, { endpoint: spec.endpoint, forcePathStyle: true });
  }
  let authHint: string;
  if (spec.accessKeyEnv !== undefined || spec.secretKeyEnv !== undefined) {
    if (spec.accessKeyEnv === undefined || spec.secretKeyEnv === undefined) {
      throw new ConfigError(
        "S3 destination sets only one of access_key_env and secret_key_env; set both, or " +
          "neither to use the default AWS credential chain",
        { code: "config.conflicting_keys" },
      );
    }
    const accessKeyId = readEnv(options, spec.accessKeyEnv, "access_key_env");
    const secretAccessKey = readEnv(options, spec.secretKeyEnv, "secret_key_env");
    const sessionToken = spec.sessionTokenEnv === undefined
      ? undefined
      : readEnv(options, spec.sessionTokenEnv, "session_token_env");
    config.credentials = {
      accessKeyId,
      secretAccessKey,
      ...(sessionToken === undefined ? {} : { sessionToken }),
    };
    authHint = `check the values of ${spec.accessKeyEnv} (access_key_env) and ` +
      `${spec.secretKeyEnv} (secret_key_env)` +
      (spec.sessionTokenEnv === undefined
        ? ""
        : ` and that ${spec.sessionTokenEnv} (session_token_env) has not expired`);
  } else if (spec.awsProfile !== undefined) {
    config.profile = spec.awsProfile;
    authHint = `check the keys of profile '${spec.awsProfile}' (aws_profile) in ` +
      "~/.aws/credentials or ~/.aws/config";
  } else {
    authHint = "check the default AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, " +
      "AWS_PROFILE, ~/.aws/credentials, or the instance role), or set access_key_env and " +
      "secret_key_env";
  }
  authHint += `, and that they may read, write and list bucket '${bucket}'`;
  return {
    client: new S3Client(config),
    bucket,
    prefix: spec.prefix ?? "",
    endpoint,
    authHint,
    bucketSeen: false,
    conditionalWrites: true,
    warn: options.warn ?? consoleWarn,
  };
}

function readEnv(options: S3DestinationOptions, name: string, key: string): string {
  const value = options.env(name);
  if (value === undefined || value === "") {
    throw new ConfigError(`environment variable '${name}' (destination.${key}) is not set`, {
      code: "config.missing_env",
      hint: `export ${name} before running rivet`,
    });
  }
  registerSecret(value);
  return value;
}

interface S3UploadInit {
  readonly overwrite: boolean;
  /** Stream to the staging key of `key` (see `CreateOptions.provisional`). */
  readonly provisional: boolean;
  readonly signal: AbortSignal | undefined;
  readonly onDone: (upload: S3Upload) => void;
}

/** One object being written: see the class comment of {@linkcode S3Destination}. */
class S3Upload implements Upload, AsyncDisposable {
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
    if (this.#state !== "open") {
      throw new Error(`commit() of '${this.#key}' called after ${this.#state}`);
    }
    if (!this.#streamClosed) {
      // Closing waits for queued writes; a writer still holding the lock is a caller bug.
      if (this.writable.locked) {
        throw new Error(`commit() of '${this.#key}' called while its writable is locked`);
      }
      await this.writable.close();
    }
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

/**
 * Every object whose key (relative to the destination root) starts with `prefix`, staging keys
 * included; keys that are no valid rivet key are skipped (see the class doc).
 */
async function* listRaw(
  ctx: S3Context,
  prefix: string,
  signal: AbortSignal | undefined,
): AsyncIterable<ObjectMeta> {
  const root = ctx.prefix;
  let token: string | undefined;
  do {
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
    for (const object of out.Contents ?? []) {
      const full = object.Key;
      if (full === undefined || !full.startsWith(root)) continue;
      const key = full.slice(root.length);
      try {
        checkKey(key);
      } catch {
        continue; // not an object rivet could have written (see the class comment)
      }
      const md5 = md5FromEtag(object.ETag);
      yield { key, size: object.Size ?? 0, ...(md5 === undefined ? {} : { md5 }) };
    }
    token = out.IsTruncated === true ? out.NextContinuationToken : undefined;
  } while (token !== undefined);
}

/** HeadObject of a rivet key: metadata, or undefined for a missing object in an existing bucket. */
async function head(
  ctx: S3Context,
  key: string,
  signal: AbortSignal | undefined,
): Promise<ObjectMeta | undefined> {
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
async function missingOrNoBucket(
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
async function copyObject(ctx: S3Context, request: CopyRequest): Promise<void> {
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

async function deleteObject(
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
 * Sends one request, retrying transient failures up to {@linkcode MAX_RETRIES} times with
 * jittered exponential backoff (200 ms doubling, capped at 10 s). `call` builds a fresh command
 * for each attempt; a body (a part buffer) is simply sent again.
 */
async function send<T>(
  ctx: S3Context,
  call: (attempt: AttemptOptions) => Promise<T>,
  options: SendOptions,
): Promise<T> {
  const { signal } = options;
  for (let attempt = 0;; attempt++) {
    signal?.throwIfAborted();
    try {
      return await call(signal === undefined ? {} : { abortSignal: signal });
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      const mapped = classify(ctx, error, options);
      if (!(mapped instanceof TransientError) || attempt >= MAX_RETRIES) throw mapped;
      const delay = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
      const wait = Math.min(BACKOFF_CAP_MS, delay * (1 + Math.random()));
      ctx.warn(
        retryMessage({
          store: "S3",
          action: options.action,
          target: `s3://${ctx.bucket}/${options.key}`,
          reason: reasonOf(error),
          retry: attempt + 1,
          of: MAX_RETRIES,
          delayMs: wait,
        }),
        "destination.retrying",
      );
      await sleep(wait, signal);
    }
  }
}

/** The `If-None-Match: *` header of a conditional write, or nothing. */
type Condition = { IfNoneMatch?: string };

/**
 * {@linkcode send} for a write that must not replace an object: with `If-None-Match: *` when
 * `conditional`, unless the store answered 501 NotImplemented to it once, after which the
 * HeadObject check made before the write is the only guard (older S3-compatible stores).
 */
async function sendWrite<T>(
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

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
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

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "ERR_STREAM_PREMATURE_CLOSE",
]);

function nameOf(error: unknown): string | undefined {
  const e = error as { name?: unknown; Code?: unknown } | null;
  if (typeof e?.Code === "string") return e.Code;
  return typeof e?.name === "string" ? e.name : undefined;
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata
    ?.httpStatusCode;
  return typeof status === "number" ? status : undefined;
}

/** A short account of a failed request for a retry warning: status and code, or the network error. */
function reasonOf(error: unknown): string {
  const status = statusOf(error);
  const name = nameOf(error);
  if (status !== undefined) {
    return `HTTP ${status}${name === undefined || name === "UnknownError" ? "" : ` ${name}`}`;
  }
  const code = (error as { code?: unknown } | null)?.code;
  const line = (error instanceof Error ? error.message : String(error)).split("\n")[0]!
    .slice(0, 200);
  return redact(typeof code === "string" && !line.includes(code) ? `${code}: ${line}` : line);
}

function isExists(error: unknown): boolean {
  if (error instanceof PermanentError) return error.code === "destination.exists";
  return statusOf(error) === 412 || nameOf(error) === "PreconditionFailed";
}

/**
 * Turns an SDK or network error into a RivetError with a stable code. Store messages pass
 * through `redact`; credentials never enter them.
 */
function classify(
  ctx: S3Context,
  error: unknown,
  options: Pick<SendOptions, "action" | "key" | "notFound">,
): RivetError {
  if (error instanceof RivetError) return error;
  const where = `s3://${ctx.bucket}/${options.key}`;
  const status = statusOf(error);
  const name = nameOf(error);
  const code = (error as { code?: unknown } | null)?.code;
  const raw = error instanceof Error ? error.message : String(error);
  const detail = redact(
    raw === "" || raw === "UnknownError" ? `${name ?? "error"} (HTTP ${status ?? "?"})` : raw,
  );
  if (
    name === "NoSuchBucket" ||
    (status === 404 && options.notFound === "bucket")
  ) {
    return new PermanentError(
      `S3 bucket '${ctx.bucket}' does not exist (${where}); create it or fix destination.bucket`,
      {
        code: "destination.bucket_not_found",
        cause: error,
        hint: `check destination.bucket, region and endpoint${
          ctx.endpoint === undefined ? "" : ` (${ctx.endpoint})`
        }`,
      },
    );
  }
  if (
    name === "NoSuchKey" ||
    (status === 404 && options.notFound === "throw" && name !== "NoSuchUpload")
  ) {
    return new PermanentError(`S3 destination has no object at '${where}'; check the key`, {
      code: "destination.not_found",
      cause: error,
    });
  }
  if (status === 401 || status === 403 || (name !== undefined && AUTH_NAMES.has(name))) {
    return new PermanentError(
      `S3 destination was refused access to ${options.action} '${where}': ${detail}; ` +
        ctx.authHint,
      { code: "destination.auth_failed", cause: error, hint: ctx.authHint },
    );
  }
  if (status === 412 || name === "PreconditionFailed") {
    return new PermanentError(
      `S3 destination refuses to overwrite the existing object '${where}'; remove it or write ` +
        "to another prefix (rivet never replaces a committed part)",
      { code: "destination.exists", cause: error },
    );
  }
  const transient = (status !== undefined && status !== 501 &&
    (status >= 500 || status === 429 || status === 408)) ||
    (name !== undefined && TRANSIENT_NAMES.has(name)) ||
    (typeof code === "string" && NETWORK_CODES.has(code)) ||
    (status === undefined && /socket hang up|aborted|network|timed? ?out|closed/i.test(raw));
  if (transient) {
    const at = ctx.endpoint === undefined ? "" : ` at ${ctx.endpoint}`;
    return new TransientError(
      `S3 store${at} is unavailable: could not ${options.action} '${where}': ${detail}; ` +
        "retry later, or check the endpoint and the network",
      { code: "destination.unavailable", cause: error },
    );
  }
  return new PermanentError(
    `S3 destination could not ${options.action} '${where}': ${detail}; check the destination ` +
      "settings (bucket, region, endpoint)",
    { code: "destination.request_failed", cause: error },
  );
}

function notFound(ctx: S3Context, key: string): PermanentError {
  return new PermanentError(
    `S3 destination has no object at key '${key}' (s3://${ctx.bucket}/${
      s3ObjectKey(ctx.prefix, key)
    }); check the key, or list the destination to see what it holds`,
    { code: "destination.not_found" },
  );
}

function exists(ctx: S3Context, key: string): PermanentError {
  return new PermanentError(
    `S3 destination refuses to overwrite the committed object 's3://${ctx.bucket}/${
      s3ObjectKey(ctx.prefix, key)
    }'; remove it or write to another prefix (rivet never replaces a committed part)`,
    { code: "destination.exists" },
  );
}

function checksumMismatch(ctx: S3Context, objectKey: string, detail: string): DataIntegrityError {
  return new DataIntegrityError(
    `S3 destination checksum mismatch for 's3://${ctx.bucket}/${objectKey}' (${detail}): the ` +
      "store did not receive the bytes rivet sent, so the object was discarded; re-run the " +
      "export and check the network path to the store",
    { code: "destination.checksum_mismatch" },
  );
}

function unquote(etag: string | undefined): string | undefined {
  return etag?.replaceAll('"', "");
}

/** Base64 MD5 from a plain 32-hex ETag; undefined for multipart (`-N`) or other ETags. */
function md5FromEtag(etag: string | undefined): string | undefined {
  const hex = unquote(etag)?.toLowerCase();
  if (hex === undefined || !/^[0-9a-f]{32}$/.test(hex)) return undefined;
  return Buffer.from(hex, "hex").toString("base64");
}

/** SSE-KMS and SSE-C objects have ETags that are not the MD5 of their bytes. */
function encrypted(
  out: { ServerSideEncryption?: string | undefined; SSECustomerAlgorithm?: string | undefined },
): boolean {
  return out.SSECustomerAlgorithm !== undefined ||
    (out.ServerSideEncryption?.startsWith("aws:kms") ?? false);
}
