/**
 * The Amazon S3 destination (and S3-compatible stores: MinIO, s3rver, …) through
 * `@aws-sdk/client-s3`: objects are streamed with the low-level multipart API and become visible
 * only at `commit()`, so a reader never sees a partial object.
 *
 * Layer: destinations. Imports core/ and _util/ only.
 *
 * @module
 */
import type { DestinationSpec } from "../core/spec.ts";
import { ObjectStoreDestination, type ObjectStoreDriver } from "./_object_store.ts";
import type { DestinationWarn } from "./_store_errors.ts";
import { buildContext, type S3Context } from "./_s3_context.ts";
import {
  copyObject,
  deleteObject,
  head,
  listRaw,
  readObject,
  s3ObjectKey,
} from "./_s3_requests.ts";
import { putSingle, s3PartSize, startParts } from "./_s3_upload.ts";

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
export class S3Destination extends ObjectStoreDestination {
  /** Always `s3`. */
  readonly kind = "s3" as const;
  /** The bucket. */
  readonly bucket: string;
  /** The key prefix, verbatim (may be empty). */
  readonly prefix: string;

  private constructor(ctx: S3Context) {
    super(s3Driver(ctx));
    this.bucket = ctx.bucket;
    this.prefix = ctx.prefix;
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
}

/** The S3 calls the kit builds the destination from. */
function s3Driver(ctx: S3Context): ObjectStoreDriver {
  const full = (key: string) => s3ObjectKey(ctx.prefix, key);
  return {
    store: "S3",
    uri: `s3://${ctx.bucket}/${ctx.prefix}`,
    warn: ctx.warn,
    partSize: s3PartSize,
    listRaw: (prefix, signal) => listRaw(ctx, prefix, signal),
    head: (key, signal) => head(ctx, key, signal),
    read: (key, signal) => readObject(ctx, key, signal),
    copy: async (from, to, options) => {
      await copyObject(ctx, { from, to, ...options });
      return undefined;
    },
    delete: (key, options) => deleteObject(ctx, full(key), options.signal),
    putSingle: (key, bytes, sent, options) => putSingle(ctx, key, bytes, sent, options),
    startParts: (key, options) => startParts(ctx, key, options),
    close: () => ctx.client.destroy(),
  };
}
