/**
 * The Google Cloud Storage destination: `@google-cloud/storage` for credentials, metadata,
 * listing, copies and deletes; the bytes go through the JSON API's resumable upload with `fetch`
 * so that the last chunk (the one that finalises the object) is sent only at `commit()` and a
 * reader never sees a partial object.
 *
 * Layer: destinations. Imports core/ and _util/ only.
 *
 * @module
 */
import type { Bucket, Storage } from "@google-cloud/storage";
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
import { sleep } from "../_util/abort.ts";
import { createMd5, type Hasher } from "../_util/hash.ts";
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
import { INPUT_LIMITS, readInputText } from "../_util/input_file.ts";

/** Retry policy of each request (a chunk is re-sent, never the whole object). */
export interface GcsRetryOptions {
  /** Retries after the first attempt; default 5. */
  readonly retries?: number;
  /** First backoff; it doubles per retry, with jitter up to twice the value; default 200 ms. */
  readonly baseDelayMs?: number;
  /** Largest backoff; default 10 s. */
  readonly maxDelayMs?: number;
}

/** Options of {@linkcode GcsDestination.open}. */
export interface GcsDestinationOptions {
  /**
   * Reads an environment variable: `GOOGLE_APPLICATION_CREDENTIALS`, `CLOUDSDK_CONFIG`, `HOME`
   * and `APPDATA` (the gcloud config folder) come from here. The Google client still reads a
   * few variables of the process itself (see the class doc).
   */
  readonly env: (name: string) => string | undefined;
  /** Cancels opening. */
  readonly signal?: AbortSignal;
  /** Per-request retries; default 5 retries, backoff from 200 ms up to 10 s. */
  readonly retry?: GcsRetryOptions;
  /**
   * Size of the intermediate chunks of a resumable upload, a multiple of 256 KiB; default
   * 8 MiB. An upload holds at most two such buffers.
   */
  readonly chunkSize?: number;
  /**
   * How long one request may take until the response headers arrive (for an upload: sending
   * the chunk and the answer) before it is abandoned and retried; default 5 minutes.
   */
  readonly requestTimeoutMs?: number;
  /** Receives warnings (a request about to be retried); default `console.warn`. */
  readonly warn?: DestinationWarn;
}

const capabilities: DestinationCapabilities = {
  commit: "on_close",
  idempotentOverwrite: false,
  retrySafe: true,
  persistent: true,
};

const KiB = 1024;
/** Intermediate resumable chunks must be multiples of this (GCS rule). */
const CHUNK_GRANULE = 256 * KiB;
/** Default chunk of a resumable upload; an object up to this size is one simple upload. */
export const GCS_DEFAULT_CHUNK_SIZE = 8 * KiB * KiB;
/** Deadline of the clean-up requests of an aborted upload, which run even after Ctrl-C. */
const CLEANUP_TIMEOUT_MS = 30_000;
/** Objects per list page (the service's maximum). */
const LIST_PAGE = 1000;
const DEFAULT_ENDPOINT = "https://storage.googleapis.com";
const DEFAULT_REQUEST_TIMEOUT_MS = 5 * 60_000;

/**
 * The object name of `key` under `prefix`: the two concatenated verbatim, no `/` added or
 * removed. `prefix: exports/` and `a.parquet` give `exports/a.parquet`;
 * `prefix: exports` gives `exportsa.parquet`.
 *
 * @param prefix The destination's `prefix` (undefined or empty for the bucket root).
 * @param key A key relative to the destination root, checked like every destination key.
 * @returns The GCS object name.
 * @throws {ConfigError} `destination.bad_key` for an absolute key, `..`, NUL or backslash.
 *
 * @example
 * ```ts
 * import { gcsObjectName } from "./gcs.ts";
 * if (gcsObjectName("exports/", "a.parquet") !== "exports/a.parquet") throw new Error();
 * if (gcsObjectName("exports", "a.parquet") !== "exportsa.parquet") throw new Error();
 * ```
 */
export function gcsObjectName(prefix: string | undefined, key: string): string {
  return (prefix ?? "") + checkKey(key);
}

/** The fields of an object resource rivet reads. */
interface GcsObject {
  readonly name: string;
  readonly size?: string | number;
  readonly md5Hash?: string;
  readonly generation?: string | number;
}

/** A non-success HTTP answer (from `fetch` or from the client's `ApiError`). */
class HttpStatusError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "HttpStatusError";
  }
}

/** A request that died on the wire (refused, reset, cut mid-body, timed out). */
class NetworkError extends Error {
  constructor(cause: unknown) {
    super(messageOf(cause), { cause });
    this.name = "NetworkError";
  }
}

/** Credentials could not be turned into an `Authorization` header. */
class CredentialsError extends Error {
  constructor(readonly transient: boolean, cause: unknown) {
    super(messageOf(cause), { cause });
    this.name = "CredentialsError";
  }
}

/** What a request was doing, for messages. */
interface Op {
  /** Verb phrase: `upload`, `read`, `list objects under`, … */
  readonly action: string;
  /** The object or prefix concerned, as a full `gs://` URI. */
  readonly target: string;
  /** A 404 can only mean the bucket is missing (uploads, listings). */
  readonly bucketLevel?: boolean;
  readonly direction: "read" | "write";
}

/** Shared by the destination and its uploads: the client, the URLs, retries and errors. */
class GcsApi {
  readonly storage: Storage;
  readonly bucket: Bucket;
  readonly bucketName: string;
  readonly prefix: string;
  readonly anonymous: boolean;
  readonly jsonBase: string;
  readonly uploadBase: string;
  readonly retries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly chunkSize: number;
  readonly requestTimeoutMs: number;
  readonly warn: DestinationWarn;
  #lastToken: string | undefined;

  constructor(init: {
    storage: Storage;
    bucket: string;
    prefix: string;
    anonymous: boolean;
    retry: GcsRetryOptions;
    chunkSize: number;
    requestTimeoutMs: number;
    warn: DestinationWarn;
  }) {
    this.storage = init.storage;
    this.bucketName = init.bucket;
    this.bucket = init.storage.bucket(init.bucket);
    this.prefix = init.prefix;
    this.anonymous = init.anonymous;
    const api = init.storage.apiEndpoint;
    this.jsonBase = `${api}/storage/v1`;
    this.uploadBase = `${api}/upload/storage/v1`;
    this.retries = init.retry.retries ?? 5;
    this.baseDelayMs = init.retry.baseDelayMs ?? 200;
    this.maxDelayMs = init.retry.maxDelayMs ?? 10_000;
    this.chunkSize = init.chunkSize;
    this.requestTimeoutMs = init.requestTimeoutMs;
    this.warn = init.warn;
  }

  /** `gs://bucket/<prefix><key>`. */
  uri(key: string): string {
    return `gs://${this.bucketName}/${this.prefix}${key}`;
  }

  /** The request headers of the configured credentials (none when anonymous). */
  async authHeaders(url: string): Promise<Headers> {
    const headers = new Headers();
    if (this.anonymous) return headers;
    let got: Headers | Record<string, string>;
    try {
      got = await this.storage.authClient.getRequestHeaders(url);
    } catch (error) {
      throw new CredentialsError(
        isNetworkFailure(error) || isTransientStatus(statusOf(error)),
        error,
      );
    }
    const entries = got instanceof Headers ? [...got.entries()] : Object.entries(got);
    for (const [name, value] of entries) headers.set(name, String(value));
    const auth = headers.get("authorization");
    if (auth !== null && auth !== this.#lastToken) {
      this.#lastToken = auth;
      registerSecret(auth.replace(/^Bearer\s+/i, ""));
    }
    return headers;
  }

  /**
   * `fetch` with the credentials' headers; a request that dies on the wire becomes a
   * {@linkcode NetworkError} so the retry loop can tell it from a bug.
   */
  async fetch(url: string, init: RequestInit & { signal?: AbortSignal }): Promise<Response> {
    const headers = await this.authHeaders(url);
    for (const [name, value] of new Headers(init.headers).entries()) headers.set(name, value);
    // The deadline runs until the response headers: a body streamed by `read` may take longer.
    const deadline = new AbortController();
    const timer = setTimeout(
      () => deadline.abort(new DOMException("request timed out", "TimeoutError")),
      this.requestTimeoutMs,
    );
    const signal = init.signal === undefined
      ? deadline.signal
      : AbortSignal.any([init.signal, deadline.signal]);
    try {
      return await fetch(url, { ...init, headers, signal });
    } catch (error) {
      if (init.signal?.aborted) throw init.signal.reason;
      throw new NetworkError(deadline.signal.aborted ? deadline.signal.reason : error);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs `attempt` with up to `retries` retries for transient failures (5xx, 408, 429, a
   * network error), with jittered exponential backoff. RivetErrors pass through unretried.
   */
  async retry<T>(
    op: Op,
    attempt: (n: number) => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    for (let n = 0;; n++) {
      signal?.throwIfAborted();
      try {
        return await attempt(n);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (error instanceof RivetError) throw error;
        if (!isTransient(error) || n >= this.retries) throw this.failure(error, op, n + 1);
        const base = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** n);
        const wait = Math.min(this.maxDelayMs, base * (1 + Math.random()));
        this.warn(
          retryMessage({
            store: "GCS",
            action: op.action,
            target: op.target,
            reason: reasonOf(error),
            retry: n + 1,
            of: this.retries,
            delayMs: wait,
          }),
          "destination.retrying",
        );
        await sleep(wait, signal);
      }
    }
  }

  /** Runs a client call (which takes no signal): the caller stops waiting when `signal` fires. */
  async client<T>(
    op: Op,
    call: () => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    return await this.retry(op, async () => {
      // Surfaces credential problems as such (the client would otherwise send the request
      // unauthenticated and report the API's 401).
      await this.authHeaders(this.jsonBase);
      try {
        return await raceSignal(call(), signal, this.requestTimeoutMs);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (error instanceof RivetError) throw error;
        const status = statusOf(error);
        if (status !== undefined) throw new HttpStatusError(status, messageOf(error));
        if (isNetworkFailure(error)) throw new NetworkError(error);
        throw error;
      }
    }, signal);
  }

  /** The object resource at `name`, or undefined when there is none. */
  async meta(
    name: string,
    op: Op,
    signal: AbortSignal | undefined,
  ): Promise<GcsObject | undefined> {
    try {
      return await this.client(objectLevel(op), async () => {
        const [metadata] = await this.bucket.file(name).getMetadata();
        return metadata as GcsObject;
      }, signal);
    } catch (error) {
      if (error instanceof RivetError && error.code === "destination.not_found") return undefined;
      throw error;
    }
  }

  /**
   * Deletes `name`; an absent object is not an error. `generation` limits the delete to that
   * version, so an object someone wrote since is never removed.
   */
  async remove(
    name: string,
    op: Op,
    options: { generation?: string | number | undefined; signal?: AbortSignal | undefined },
  ): Promise<void> {
    try {
      await this.client(objectLevel(op), async () => {
        await this.bucket.file(name).delete(
          options.generation === undefined ? {} : { ifGenerationMatch: options.generation },
        );
      }, options.signal);
    } catch (error) {
      // Absent, or replaced since (a 412 on the generation): either way not ours to delete.
      if (
        error instanceof RivetError &&
        (error.code === "destination.not_found" || error.code === "destination.exists")
      ) return;
      throw error;
    }
  }

  /**
   * Server-side copy of `from` to `to` (the rewrite API), refusing to replace an object unless
   * `overwrite`, then checks the copy's MD5 against `expectMd5`.
   */
  async copy(
    from: string,
    to: string,
    options: {
      overwrite: boolean;
      expectMd5: string | undefined;
      op: Op;
      signal?: AbortSignal | undefined;
    },
  ): Promise<GcsObject> {
    const { op, signal } = options;
    const copied = await this.client(objectLevel(op), async () => {
      try {
        const [, response] = await this.bucket.file(from).copy(
          this.bucket.file(to),
          options.overwrite ? {} : { preconditionOpts: { ifGenerationMatch: 0 } },
        );
        const resource = (response as { resource?: GcsObject } | undefined)?.resource;
        return resource ?? await this.bucket.file(to).getMetadata().then(([m]) => m as GcsObject);
      } catch (error) {
        if (statusOf(error) === 412) {
          // A retry after a lost reply finds the copy it made: the same bytes are there.
          const there = await this.bucket.file(to).getMetadata().then(([m]) => m as GcsObject);
          if (options.expectMd5 !== undefined && there.md5Hash === options.expectMd5) return there;
          throw exists(this.uri(relative(this.prefix, to)));
        }
        throw error;
      }
    }, signal);
    if (
      options.expectMd5 !== undefined && copied.md5Hash !== undefined &&
      copied.md5Hash !== options.expectMd5
    ) {
      await this.remove(to, op, { generation: copied.generation, signal }).catch(() => {});
      throw checksumMismatch(
        this.uri(relative(this.prefix, to)),
        copied.md5Hash,
        options.expectMd5,
      );
    }
    return copied;
  }

  /** Maps any failure of `op` to a RivetError with a stable code and no secret. */
  failure(error: unknown, op: Op, attempts: number): RivetError {
    if (error instanceof RivetError) return error;
    const detail = clean(messageOf(error));
    if (error instanceof CredentialsError) {
      if (error.transient) {
        return new TransientError(
          `GCS credentials could not be loaded to ${op.action} '${op.target}' after ${attempts} ` +
            `attempt(s): ${detail}; check the network path to the token service, then re-run`,
          { code: "destination.unavailable", cause: error },
        );
      }
      return this.#authFailed(op, `the credentials could not be used: ${detail}`, error);
    }
    const status = error instanceof HttpStatusError ? error.status : statusOf(error);
    // Every precondition rivet sends is "must not exist" (or "still this generation").
    if (status === 412) return exists(op.target);
    if (status === 401 || status === 403) {
      return this.#authFailed(op, `HTTP ${status}: ${detail}`, error);
    }
    if (status === 404) {
      // The service says "The specified bucket does not exist." for a bucket and "No such
      // object: b/o" for an object; an upload or a listing can only miss the bucket.
      const object = /^no such object/i.test(detail);
      if (!object && (op.bucketLevel === true || /bucket does not exist/i.test(detail))) {
        return new PermanentError(
          `GCS bucket '${this.bucketName}' does not exist or is not visible to these credentials ` +
            `(${op.action} '${op.target}'); create the bucket or fix destination.bucket`,
          {
            code: "destination.bucket_not_found",
            cause: error,
            hint:
              `check that bucket '${this.bucketName}' exists (gcloud storage buckets describe ` +
              `gs://${this.bucketName}) and that destination.bucket is spelled right`,
          },
        );
      }
      return new PermanentError(
        `GCS has no object '${op.target}'; check the key, or list the destination to see what ` +
          "it holds",
        { code: "destination.not_found", cause: error },
      );
    }
    if (isTransient(error)) {
      return new TransientError(
        `GCS could not ${op.action} '${op.target}' after ${attempts} attempt(s): ` +
          `${status === undefined ? detail : `HTTP ${status}: ${detail}`}; the store is ` +
          "unavailable, re-run later (the export is retry-safe)",
        { code: "destination.unavailable", cause: error },
      );
    }
    return new PermanentError(
      `GCS could not ${op.action} '${op.target}': ` +
        `${status === undefined ? detail : `HTTP ${status}: ${detail}`}; check the destination ` +
        "settings and the object name",
      { code: `destination.${op.direction}_failed`, cause: error },
    );
  }

  #authFailed(op: Op, why: string, cause: unknown): PermanentError {
    const keys = this.anonymous
      ? "destination.allow_anonymous (the store wants credentials: remove it and set " +
        "destination.credentials_file or GOOGLE_APPLICATION_CREDENTIALS)"
      : "destination.credentials_file, GOOGLE_APPLICATION_CREDENTIALS or the gcloud " +
        "application-default login";
    return new PermanentError(
      `GCS refused to ${op.action} '${op.target}': ${why}; check ${keys}, and that the account ` +
        `holds roles/storage.objectAdmin (or objectCreator plus objectViewer) on bucket ` +
        `'${this.bucketName}'`,
      {
        code: "destination.auth_failed",
        cause,
        hint: `check ${keys}; docs/cloud-permissions.md lists the roles each command needs`,
      },
    );
  }
}

/**
 * Writes objects to a Google Cloud Storage bucket.
 *
 * **Key layout.** An object key is `prefix` + key, concatenated verbatim: no `/` is added.
 * `prefix: exports/` puts `a.parquet` at `exports/a.parquet`, while `prefix: exports` puts it
 * at `exportsa.parquet`. `uri` is `gs://<bucket>/<prefix>`.
 *
 * **Credentials**, first that applies: `allow_anonymous: true` (no `Authorization` header and
 * no metadata-server lookup: an emulator or a public bucket); `credentials_file` (any Google
 * credentials JSON: service account, `authorized_user`, `external_account`);
 * `GOOGLE_APPLICATION_CREDENTIALS`; the gcloud application-default file
 * (`$CLOUDSDK_CONFIG` or `~/.config/gcloud/application_default_credentials.json`); else the
 * client's default chain (the GCE/GKE metadata server). Secret fields of a credentials file and
 * every bearer token are registered with `registerSecret`, so no message can print them.
 *
 * **Writes.** An object up to one chunk (8 MiB) is buffered and sent at `commit()` as one
 * simple (multipart) upload with its MD5 in the metadata, so the service refuses altered bytes.
 * A larger one opens a resumable session at its first full chunk and sends 8 MiB chunks
 * (`Content-Range: bytes a-b/*`) as the bytes come, at most one in flight while the next
 * fills; the last chunk, the one carrying the total size that finalises the object, is kept
 * until `commit()`, so nothing is visible before. A chunk that fails is re-sent from the offset
 * the session reports; the whole object never is. Unless `overwrite`, commit checks the target
 * first (a metadata GET) and the write carries `ifGenerationMatch=0`, so an existing object is
 * never replaced (`destination.exists`). The MD5 of what was sent is compared with the
 * object's `md5Hash`; a mismatch deletes that object generation and fails with
 * `destination.checksum_mismatch`. `abort()` cancels the session.
 *
 * **Commit under another name.** When `commit(finalKey)` names another key and a session is
 * open (objects over 8 MiB), the object is finalised where it was streamed, copied to
 * `finalKey` server-side (without overwriting, MD5 checked), then deleted there. Smaller objects
 * go straight to `finalKey`. An upload created with `provisional` streams to the hidden staging
 * name `.<name>.tmp` instead of the create key, so no object has a data name before its
 * commit: a crash before the copy leaves only the staging object (never listed; the next run of
 * the export removes it), a crash after it leaves the complete object at its final name (which
 * the next run reports, listed in no manifest). A failed copy deletes the finalised object and
 * fails the commit; once the copy is there, a staging object that cannot be deleted is a
 * warning (`destination.staging_left`), while without `provisional` the copy is deleted again
 * and the commit fails, so the object is under exactly one name.
 *
 * **Failures** become RivetErrors: a missing bucket `destination.bucket_not_found`, 401/403 and
 * credential errors `destination.auth_failed`, 5xx/408/429, network errors and requests
 * unanswered after 5 minutes (after 5 retries, 200 ms to 10 s jittered)
 * `destination.unavailable`. URLs in messages lose their query string (a resumable session URL
 * is a capability). A signal given to `create` or to a read-side call aborts the requests in
 * flight (the client's own calls, which take no signal, are abandoned rather than cut).
 *
 * **Permissions** for a sandboxed run: `--allow-net` to the endpoint (default
 * `storage.googleapis.com`, plus `oauth2.googleapis.com` for service-account and user
 * credentials, `sts.googleapis.com` for workload identity, `metadata.google.internal` and
 * `169.254.169.254` on GCE); `--allow-read` of the credentials file; `--allow-env` for
 * `GOOGLE_APPLICATION_CREDENTIALS,CLOUDSDK_CONFIG,HOME,APPDATA` and the variables the Google
 * client reads itself: `GOOGLE_SDK_NODE_LOGGING,
 * TEENY_REQUEST_WARN_CONCURRENT_REQUESTS,DEBUG,READABLE_STREAM,STORAGE_EMULATOR_HOST,
 * FUNCTION_NAME,HTTP_PROXY,http_proxy,HTTPS_PROXY,https_proxy,NO_PROXY,no_proxy` (the default
 * credential chain also reads `GOOGLE_CLOUD_PROJECT`, `GCLOUD_PROJECT`, `GCE_METADATA_HOST` and
 * similar).
 *
 * @example Against the in-repo emulator
 * ```ts ignore
 * import { GcsDestination } from "./gcs.ts";
 * await using dest = await GcsDestination.open(
 *   { kind: "gcs", bucket: "rivet-test", prefix: "exports/", endpoint: "http://127.0.0.1:4443", allowAnonymous: true },
 *   { env: (name) => Deno.env.get(name) },
 * );
 * const upload = await dest.create("a.csv");
 * await ReadableStream.from([new TextEncoder().encode("id\n1\n")]).pipeTo(upload.writable);
 * await upload.commit(); // gs://rivet-test/exports/a.csv
 * ```
 */
export class GcsDestination implements Destination {
  /** Always `gcs`. */
  readonly kind = "gcs" as const;
  /** Finalised on commit, retry-safe, never overwrites a committed part. */
  readonly capabilities: DestinationCapabilities = capabilities;
  /** `gs://<bucket>/<prefix>`. */
  readonly uri: string;
  readonly #api: GcsApi;
  readonly #open = new Set<GcsUpload>();

  private constructor(api: GcsApi) {
    this.#api = api;
    this.uri = `gs://${api.bucketName}/${api.prefix}`;
  }

  /**
   * Builds the client from the destination keys. No request is sent: a missing bucket or bad
   * credentials show at the first operation.
   *
   * @param spec `bucket` (required), `prefix`, `endpoint`, `credentials_file`,
   *   `allow_anonymous`.
   * @param options The environment, a signal, and retry/chunk tuning.
   * @returns The destination; dispose it to abort uploads left open.
   * @throws {ConfigError} `config.missing_key` without a bucket; `config.invalid_value` for a
   *   chunk size that is not a positive multiple of 256 KiB.
   * @throws {PermanentError} `destination.auth_failed` when a credentials file cannot be read
   *   or is not JSON.
   */
  static async open(
    spec: DestinationSpec,
    options: GcsDestinationOptions,
  ): Promise<GcsDestination> {
    options.signal?.throwIfAborted();
    const bucket = spec.bucket;
    if (bucket === undefined || bucket === "") {
      throw new ConfigError(
        "GCS destination has no bucket; set destination.bucket to the bucket name",
        { code: "config.missing_key" },
      );
    }
    const chunkSize = options.chunkSize ?? GCS_DEFAULT_CHUNK_SIZE;
    if (!Number.isInteger(chunkSize) || chunkSize <= 0 || chunkSize % CHUNK_GRANULE !== 0) {
      throw new ConfigError(
        `GCS chunk size ${chunkSize} is not a positive multiple of 256 KiB; use e.g. 8 MiB`,
        { code: "config.invalid_value" },
      );
    }
    const anonymous = spec.allowAnonymous;
    const credentials = anonymous ? undefined : await loadCredentials(spec, options.env);
    options.signal?.throwIfAborted();
    // Loaded on first use: the client pulls a large module graph (and reads the environment)
    // that local and stdout runs never need.
    const { Storage } = await import("@google-cloud/storage");
    const endpoint = spec.endpoint?.replace(/\/+$/, "");
    const storageOptions = {
      // An explicit endpoint always wins over STORAGE_EMULATOR_HOST. For an anonymous client
      // without one, the trailing slash marks the default endpoint as "custom": the client
      // then sends no credentials (its only switch for that), and the slash is stripped.
      apiEndpoint: endpoint ?? (anonymous ? `${DEFAULT_ENDPOINT}/` : DEFAULT_ENDPOINT),
      useAuthWithCustomEndpoint: !anonymous,
      retryOptions: { autoRetry: false },
    };
    let storage = new Storage(storageOptions);
    if (credentials !== undefined) {
      // The client's `credentials` option and `fromJSON` print deprecation notices on the
      // console, which would tear rivet's progress display; the call is synchronous, so
      // muting the console for its duration hides nothing else. The client built from the
      // JSON (with the storage scopes) is then handed to a second Storage.
      let built;
      try {
        built = quietly(() => storage.authClient.fromJSON(credentials.json as never));
      } catch (error) {
        throw new PermanentError(
          `GCS credentials file '${credentials.path}' (from ${credentials.from}) is not usable: ` +
            `${clean(messageOf(error))}; point ${credentials.from} at a service-account key or ` +
            "an application-default credentials file",
          { code: "destination.auth_failed", cause: error },
        );
      }
      storage = new Storage({ ...storageOptions, authClient: built });
    }
    // The client takes its JSON base from STORAGE_EMULATOR_HOST when that is set, even with an
    // apiEndpoint; keep every request on the one endpoint the uploads use.
    storage.baseUrl = `${storage.apiEndpoint}/storage/v1`;
    return new GcsDestination(
      new GcsApi({
        storage,
        bucket,
        prefix: spec.prefix ?? "",
        anonymous,
        retry: options.retry ?? {},
        chunkSize,
        requestTimeoutMs: options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
        warn: options.warn ?? consoleWarn,
      }),
    );
  }

  /**
   * Starts an object. Nothing is sent before the first full chunk, nothing is visible before
   * `commit()`.
   *
   * @param key Object key relative to the destination root.
   * @param options `overwrite` for `manifest.json`/`_SUCCESS`; a signal that aborts requests.
   * @returns The upload.
   * @throws {ConfigError} `destination.bad_key` for an absolute key, `..`, NUL or backslash.
   */
  async create(key: string, options: CreateOptions = {}): Promise<Upload> {
    checkKey(key);
    const hidden = options.provisional === true;
    const name = gcsObjectName(this.#api.prefix, hidden ? stagingKeyOf(key) : key);
    options.signal?.throwIfAborted();
    const upload = new GcsUpload({
      api: this.#api,
      key,
      name,
      hidden,
      md5: await createMd5(),
      overwrite: options.overwrite === true,
      signal: options.signal,
      onDone: (u) => this.#open.delete(u),
    });
    this.#open.add(upload);
    return upload;
  }

  /**
   * Lists committed objects whose key starts with `prefix`, in key order (the service lists
   * by UTF-8 bytes), page by page. Uploads in progress are not objects. Names that are no
   * valid key relative to the root are skipped: folder placeholders (ending in `/`, made by
   * the console) and, with a prefix without a trailing `/` such as `exports`, names such as
   * `exports/a.csv` (key `/a.csv`).
   *
   * @param prefix Key prefix relative to the destination root.
   * @param options A signal.
   * @returns Key, size and MD5 (base64) of each object.
   * @throws {PermanentError} `destination.bucket_not_found`, `destination.auth_failed`.
   * @throws {TransientError} `destination.unavailable` after the retries.
   */
  async *list(prefix: string, options: SignalOptions = {}): AsyncIterable<ObjectMeta> {
    for await (const object of this.#listAll(prefix, options)) {
      if (!isStagingKey(object.key)) yield object;
    }
  }

  /** Every object under `prefix`, staging names included. */
  async *#listAll(prefix: string, options: SignalOptions): AsyncIterable<ObjectMeta> {
    const api = this.#api;
    const full = api.prefix + prefix;
    const op: Op = {
      action: "list objects under",
      target: api.uri(prefix),
      bucketLevel: true,
      direction: "read",
    };
    let pageToken: string | undefined;
    do {
      const token = pageToken;
      const page = await api.client(op, async () => {
        const [, , response] = await api.bucket.getFiles({
          prefix: full,
          autoPaginate: false,
          maxResults: LIST_PAGE,
          ...(token === undefined ? {} : { pageToken: token }),
        });
        return response as { items?: GcsObject[]; nextPageToken?: string } | undefined;
      }, options.signal);
      for (const item of page?.items ?? []) {
        if (!item.name.startsWith(api.prefix)) continue;
        const key = relative(api.prefix, item.name);
        if (isKey(key)) yield toMeta(key, item);
      }
      pageToken = page?.nextPageToken || undefined;
    } while (pageToken !== undefined);
  }

  /**
   * Lists the staging objects (`.<name>.tmp`, see the class doc) in the folder of `prefix`
   * whose final key starts with `prefix`: complete objects a killed renaming commit left.
   * Resumable sessions are not objects and are not listed.
   *
   * @param prefix Final-key prefix relative to the destination root, e.g. `orders_`.
   * @param options A signal.
   * @returns Staging key, final key and size of each.
   */
  async *listStaging(prefix: string, options: SignalOptions = {}): AsyncIterable<StagingObject> {
    yield* listStagingWith(prefix, (raw) => this.#listAll(raw, options));
  }

  /**
   * Deletes a staging object (see {@linkcode listStaging}); an absent key is no error.
   *
   * @param key A staging key, `dir/.<name>.tmp`.
   * @param options A signal.
   * @throws {ConfigError} `destination.bad_key` for a key that is not a staging name.
   */
  async removeStaging(key: string, options: SignalOptions = {}): Promise<void> {
    checkStagingKey(key, "GCS");
    const api = this.#api;
    await api.remove(gcsObjectName(api.prefix, key), {
      action: "delete the staging object",
      target: api.uri(key),
      direction: "write",
    }, { signal: options.signal });
  }

  /**
   * Size and MD5 of the committed object at `key`.
   *
   * @param key Object key relative to the root.
   * @param options A signal.
   * @returns The metadata, or undefined when there is no object.
   * @throws {ConfigError} `destination.bad_key`.
   * @throws {PermanentError} `destination.bucket_not_found`, `destination.auth_failed`.
   */
  async stat(key: string, options: SignalOptions = {}): Promise<ObjectMeta | undefined> {
    const name = gcsObjectName(this.#api.prefix, key);
    const found = await this.#api.meta(name, {
      action: "read the metadata of",
      target: this.#api.uri(key),
      direction: "read",
    }, options.signal);
    return found === undefined ? undefined : toMeta(key, found);
  }

  /**
   * Streams the committed object at `key` (`alt=media`). Failures before the first byte are
   * retried; the stream itself is not resumed.
   *
   * @param key Object key relative to the root.
   * @param options A signal; it also cancels the body.
   * @returns The bytes.
   * @throws {PermanentError} `destination.not_found`, `destination.bucket_not_found`,
   *   `destination.auth_failed`.
   */
  async read(key: string, options: SignalOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const api = this.#api;
    const name = gcsObjectName(api.prefix, key);
    const url = `${api.jsonBase}/b/${encodeURIComponent(api.bucketName)}/o/` +
      `${encodeURIComponent(name)}?alt=media`;
    const op: Op = { action: "read", target: api.uri(key), direction: "read" };
    const response = await api.retry(op, async () => {
      const res = await api.fetch(url, {
        method: "GET",
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      });
      if (res.ok) return res;
      throw await statusError(res);
    }, options.signal);
    return response.body ?? ReadableStream.from<Uint8Array>([]);
  }

  /**
   * Moves a committed object: server-side copy (refused when `to` exists), MD5 check, then
   * delete of `from` (that generation only). All or nothing: if the delete fails while `from` is
   * still there, the copy is deleted again (see `moveByCopy`).
   *
   * @param from Key of the committed object.
   * @param to New key, e.g. `_quarantine/<run_id>/<name>`.
   * @param options A signal.
   * @throws {PermanentError} `destination.not_found` when `from` is absent;
   *   `destination.exists` when `to` exists; `destination.move_incomplete` when both names may
   *   hold the object.
   * @throws {DataIntegrityError} `destination.checksum_mismatch` when the copy differs (it is
   *   deleted).
   */
  async move(from: string, to: string, options: SignalOptions = {}): Promise<void> {
    const api = this.#api;
    const fromName = gcsObjectName(api.prefix, from);
    const toName = gcsObjectName(api.prefix, to);
    const op: Op = {
      action: `move '${api.uri(from)}' to`,
      target: api.uri(to),
      direction: "write",
    };
    const source = await api.meta(fromName, op, options.signal);
    if (source === undefined) throw notFound(api.uri(from));
    if (await api.meta(toName, op, options.signal) !== undefined) throw exists(api.uri(to));
    let copied: GcsObject | undefined;
    const cleanup = () => AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
    await moveByCopy({
      from: api.uri(from),
      to: api.uri(to),
      copy: async () => {
        copied = await api.copy(fromName, toName, {
          overwrite: false,
          expectMd5: source.md5Hash,
          op,
          signal: options.signal,
        });
      },
      removeSource: () =>
        api.remove(fromName, { ...op, action: "delete the moved object", target: api.uri(from) }, {
          generation: source.generation,
          signal: options.signal,
        }),
      sourceExists: async () => {
        const now = await api.meta(fromName, op, cleanup());
        return now !== undefined && String(now.generation) === String(source.generation);
      },
      removeCopy: () =>
        api.remove(toName, { ...op, action: "delete the copy of" }, {
          generation: copied?.generation,
          signal: cleanup(),
        }),
    });
  }

  /**
   * Deletes the committed object at `key`; an absent key is not an error.
   *
   * @param key Object key relative to the root.
   * @param options A signal.
   */
  async remove(key: string, options: SignalOptions = {}): Promise<void> {
    const api = this.#api;
    await api.remove(gcsObjectName(api.prefix, key), {
      action: "delete",
      target: api.uri(key),
      direction: "write",
    }, { signal: options.signal });
  }

  /** Aborts every upload that was neither committed nor aborted. */
  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all([...this.#open].map((upload) => upload.abort()));
  }
}

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

class GcsUpload implements Upload {
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
    if (this.#state !== "open") {
      throw new Error(`commit() of '${this.#init.key}' called after ${this.#state}`);
    }
    if (!this.#streamClosed) {
      // Closing waits for queued writes; a writer still holding the lock is a caller bug.
      if (this.writable.locked) {
        throw new Error(`commit() of '${this.#init.key}' called while its writable is locked`);
      }
      await this.writable.close();
    }
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

/** Runs a synchronous call with `console.warn` muted (see {@linkcode GcsDestination.open}). */
function quietly<T>(call: () => T): T {
  const warn = console.warn;
  console.warn = () => {};
  try {
    return call();
  } finally {
    console.warn = warn;
  }
}

/** Reads the credentials the keys and the environment name, registering their secrets. */
async function loadCredentials(
  spec: DestinationSpec,
  env: (name: string) => string | undefined,
): Promise<Credentials | undefined> {
  if (spec.credentialsFile !== undefined) {
    return await readCredentials(spec.credentialsFile, "destination.credentials_file");
  }
  const adc = env("GOOGLE_APPLICATION_CREDENTIALS");
  if (adc !== undefined && adc !== "") {
    return await readCredentials(adc, "GOOGLE_APPLICATION_CREDENTIALS");
  }
  const config = env("CLOUDSDK_CONFIG") ||
    (env("APPDATA") ? `${env("APPDATA")}/gcloud` : undefined) ||
    (env("HOME") ? `${env("HOME")}/.config/gcloud` : undefined);
  if (config !== undefined) {
    const path = `${config}/application_default_credentials.json`;
    let present = false;
    try {
      present = (await Deno.stat(path)).isFile;
    } catch { /* no gcloud login: fall through to the client's default chain */ }
    if (present) return await readCredentials(path, "the gcloud application-default login");
  }
  return undefined;
}

const SECRET_FIELDS = ["private_key", "client_secret", "refresh_token", "private_key_id"];

/** A parsed credentials file and where it came from, for messages. */
interface Credentials {
  readonly json: Record<string, unknown>;
  readonly path: string;
  /** The key or variable that named it. */
  readonly from: string;
}

async function readCredentials(path: string, from: string): Promise<Credentials> {
  let text: string;
  try {
    text = await readInputText(path, { maxBytes: INPUT_LIMITS.secret });
  } catch (error) {
    throw new PermanentError(
      `GCS credentials file '${path}' (from ${from}) could not be read: ${messageOf(error)}; ` +
        `check ${from} and the file's permissions`,
      { code: "destination.auth_failed", cause: error },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // The parser's message quotes the text, which may hold a private key: say nothing more.
    json = undefined;
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new PermanentError(
      `GCS credentials file '${path}' (from ${from}) is not a JSON object; point ${from} at ` +
        "a service-account key or an application-default credentials file",
      { code: "destination.auth_failed" },
    );
  }
  const record = json as Record<string, unknown>;
  for (const field of SECRET_FIELDS) {
    const value = record[field];
    if (typeof value === "string") registerSecret(value);
  }
  return { json: record, path, from };
}

/**
 * Whether a listed name is a key of this destination. With a verbatim prefix such as
 * `exports`, `exports/a.csv` lists as `/a.csv`, and console folder markers end in `/`: neither
 * could be read, moved or written through this destination, so listings skip them.
 */
function isKey(key: string): boolean {
  try {
    checkKey(key);
    return true;
  } catch {
    return false;
  }
}

/** `op` for a call on one object, where a 404 may mean that object is absent. */
function objectLevel(op: Op): Op {
  return op.bucketLevel === true ? { ...op, bucketLevel: false } : op;
}

function toMeta(key: string, object: GcsObject): ObjectMeta {
  return {
    key,
    size: Number(object.size ?? 0),
    ...(object.md5Hash === undefined ? {} : { md5: object.md5Hash }),
  };
}

function relative(prefix: string, name: string): string {
  return name.startsWith(prefix) ? name.slice(prefix.length) : name;
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

async function drain(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => {});
}

async function readJson<T>(res: Response): Promise<T> {
  let text: string;
  try {
    text = await res.text();
  } catch (error) {
    // The reply died after its headers: the request may or may not have taken effect.
    throw new NetworkError(error);
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new HttpStatusError(502, "the store answered something that is not JSON");
  }
}

/** An error for a non-success response, with the service's own message. */
async function statusError(res: Response): Promise<HttpStatusError> {
  let text = "";
  try {
    text = await res.text();
  } catch (error) {
    throw new NetworkError(error);
  }
  let message = res.statusText || "request failed";
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string };
    if (typeof body.error === "object" && typeof body.error?.message === "string") {
      message = body.error.message;
    } else if (typeof body.error === "string") message = body.error;
  } catch {
    if (text !== "") message = text.slice(0, 200);
  }
  return new HttpStatusError(res.status, message);
}

/**
 * Waits for `promise` until `signal` fires (rejecting with its reason) or `timeoutMs` passes
 * (rejecting with a {@linkcode NetworkError}, which is retried). The call itself goes on.
 */
function raceSignal<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  timeoutMs: number,
): Promise<T> {
  signal?.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal!.reason);
    const timer = setTimeout(
      () => reject(new NetworkError(new DOMException("request timed out", "TimeoutError"))),
      timeoutMs,
    );
    signal?.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    });
  });
}

/** HTTP status of an error from fetch, the client (`ApiError.code`) or gaxios. */
function statusOf(error: unknown): number | undefined {
  if (error instanceof HttpStatusError) return error.status;
  const e = error as { code?: unknown; status?: unknown; response?: { status?: unknown } } | null;
  for (const value of [e?.code, e?.status, e?.response?.status]) {
    if (typeof value === "number" && value >= 100 && value < 600) return value;
  }
  return undefined;
}

function isTransientStatus(status: number | undefined): boolean {
  return status !== undefined && (status >= 500 || status === 408 || status === 429);
}

const NETWORK_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENOTFOUND",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
]);

/** A failure of the connection itself, as the client's HTTP stack or Deno report it. */
function isNetworkFailure(error: unknown): boolean {
  if (error instanceof NetworkError) return true;
  if (
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionRefused ||
    error instanceof Deno.errors.ConnectionAborted || error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.TimedOut || error instanceof Deno.errors.UnexpectedEof
  ) {
    return true;
  }
  const e = error as { code?: unknown; type?: unknown; message?: unknown; cause?: unknown } | null;
  if (typeof e?.code === "string" && NETWORK_CODES.has(e.code)) return true;
  if (e?.type === "system" || e?.type === "request-timeout") return true;
  if (typeof e?.message === "string" && /socket hang up|premature close/i.test(e.message)) {
    return true;
  }
  return e?.cause !== undefined && e.cause !== error && isNetworkFailure(e.cause);
}

/** A short account of a failed request for a retry warning, without secrets or query strings. */
function reasonOf(error: unknown): string {
  const status = error instanceof HttpStatusError ? error.status : statusOf(error);
  const detail = clean(messageOf(error)).slice(0, 200);
  return status === undefined ? detail : `HTTP ${status}: ${detail}`;
}

function isTransient(error: unknown): boolean {
  if (error instanceof CredentialsError) return error.transient;
  return isTransientStatus(statusOf(error)) || isNetworkFailure(error);
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Redacts secrets and drops URL query strings (signed or session URLs) from a message. */
function clean(text: string): string {
  const stripped = redact(text).replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s?'"]*)\?[^\s'"]*/gi, "$1");
  return stripped.length > 300 ? `${stripped.slice(0, 300)}…` : stripped;
}

function exists(target: string): PermanentError {
  return new PermanentError(
    `GCS destination refuses to overwrite the committed object '${target}'; remove it or write ` +
      "to another prefix (rivet never replaces a committed part)",
    { code: "destination.exists" },
  );
}

function notFound(target: string): PermanentError {
  return new PermanentError(
    `GCS has no object '${target}'; check the key, or list the destination to see what it holds`,
    { code: "destination.not_found" },
  );
}

function checksumMismatch(
  target: string,
  stored: string,
  sent: string,
  cause?: unknown,
): DataIntegrityError {
  return new DataIntegrityError(
    `GCS object '${target}' does not match what rivet sent (store: ${stored}, sent: ${sent}); ` +
      "the object was removed; re-run the export, and check any proxy between rivet and GCS if " +
      "it happens again",
    { code: "destination.checksum_mismatch", ...(cause === undefined ? {} : { cause }) },
  );
}
