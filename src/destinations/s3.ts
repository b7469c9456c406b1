/**
 * The Amazon S3 destination (and S3-compatible stores: MinIO, s3rver, …) through
 * `@aws-sdk/client-s3`: objects are streamed with the low-level multipart API and become visible
 * only at `commit()`, so a reader never sees a partial object.
 *
 * Layer: destinations. Imports core/ and _util/ only.
 *
 * @module
 */
import { GetObjectCommand } from "@aws-sdk/client-s3";
import type {
  CreateOptions,
  Destination,
  DestinationCapabilities,
  ObjectMeta,
  StagingObject,
  Upload,
} from "../core/destination.ts";
import { PermanentError } from "../core/errors.ts";
import type { DestinationSpec, SignalOptions } from "../core/spec.ts";
import { checkKey, checkStagingKey, isStagingKey } from "./_keys.ts";
import {
  CLEANUP_TIMEOUT_MS,
  type DestinationWarn,
  listStagingWith,
  moveByCopy,
  OBJECT_STORE_CAPABILITIES,
} from "./_cloud.ts";
import { buildContext, type S3Context } from "./_s3_context.ts";
import {
  checksumMismatch,
  classify,
  copyObject,
  deleteObject,
  exists,
  head,
  listRaw,
  missingOrNoBucket,
  notFound,
  s3ObjectKey,
  send,
} from "./_s3_requests.ts";
import { S3Upload } from "./_s3_upload.ts";

export { s3ObjectKey };

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
  readonly capabilities: DestinationCapabilities = OBJECT_STORE_CAPABILITIES;
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
