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
import type {
  CreateOptions,
  Destination,
  DestinationCapabilities,
  ObjectMeta,
  StagingObject,
  Upload,
} from "../core/destination.ts";
import { ConfigError } from "../core/errors.ts";
import type { DestinationSpec, SignalOptions } from "../core/spec.ts";
import { createMd5 } from "../_util/hash.ts";
import { checkKey, checkStagingKey, isKey, isStagingKey, stagingKeyOf } from "./_keys.ts";
import {
  CLEANUP_TIMEOUT_MS,
  consoleWarn,
  type DestinationWarn,
  listStagingWith,
  moveByCopy,
  OBJECT_STORE_CAPABILITIES,
} from "./_cloud.ts";
import {
  exists,
  GcsApi,
  type GcsObject,
  gcsObjectName,
  notFound,
  type Op,
  relative,
  statusError,
} from "./_gcs_api.ts";
import { GcsUpload } from "./_gcs_upload.ts";
import { openStorage } from "./_gcs_auth.ts";

export { gcsObjectName };

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

const KiB = 1024;
/** Intermediate resumable chunks must be multiples of this (GCS rule). */
const CHUNK_GRANULE = 256 * KiB;
/** Default chunk of a resumable upload; an object up to this size is one simple upload. */
export const GCS_DEFAULT_CHUNK_SIZE = 8 * KiB * KiB;
/** Objects per list page (the service's maximum). */
const LIST_PAGE = 1000;
const DEFAULT_REQUEST_TIMEOUT_MS = 5 * 60_000;

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
  readonly capabilities: DestinationCapabilities = OBJECT_STORE_CAPABILITIES;
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
    const storage = await openStorage(spec, anonymous, options.env, options.signal);
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

function toMeta(key: string, object: GcsObject): ObjectMeta {
  return {
    key,
    size: Number(object.size ?? 0),
    ...(object.md5Hash === undefined ? {} : { md5: object.md5Hash }),
  };
}
