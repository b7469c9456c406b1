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
import type { ObjectMeta } from "../core/destination.ts";
import { ConfigError } from "../core/errors.ts";
import type { DestinationSpec } from "../core/spec.ts";
import {
  listPages,
  ObjectStoreDestination,
  type ObjectStoreDriver,
  type StoredObject,
} from "./_object_store.ts";
import { consoleWarn, type DestinationWarn } from "./_store_errors.ts";
import { GcsApi, type GcsObject, gcsObjectName, type Op, statusError } from "./_gcs_api.ts";
import { putSingle, startParts } from "./_gcs_upload.ts";
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
export class GcsDestination extends ObjectStoreDestination {
  /** Always `gcs`. */
  readonly kind = "gcs" as const;

  private constructor(api: GcsApi) {
    super(gcsDriver(api));
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
}

/** The GCS calls the kit builds the destination from. */
function gcsDriver(api: GcsApi): ObjectStoreDriver {
  const op = (action: string, key: string, direction: Op["direction"]): Op => ({
    action,
    target: api.uri(key),
    direction,
  });
  return {
    store: "GCS",
    uri: api.uri(""),
    warn: api.warn,
    partSize: () => api.chunkSize,
    listRaw: (prefix, signal) => listAll(api, prefix, signal),
    head: async (key, signal) => {
      const name = gcsObjectName(api.prefix, key);
      const found = await api.meta(name, op("read the metadata of", key, "read"), signal);
      return found === undefined ? undefined : stored(key, found);
    },
    read: (key, signal) => read(api, key, signal),
    copy: async (from, to, options) => {
      const copied = await api.copy(
        gcsObjectName(api.prefix, from),
        gcsObjectName(api.prefix, to),
        {
          overwrite: options.overwrite,
          expectMd5: options.md5,
          op: op(`copy '${api.uri(from)}' to`, to, "write"),
          signal: options.signal,
        },
      );
      return stored(to, copied);
    },
    delete: (key, options) =>
      api.remove(gcsObjectName(api.prefix, key), op("delete", key, "write"), {
        generation: options.version,
        signal: options.signal,
      }),
    putSingle: (key, bytes, sent, options) => putSingle(api, key, bytes, sent, options),
    startParts: (key, options) => startParts(api, key, options),
  };
}

/** Every object under `prefix`, staging names included, page by page. */
async function* listAll(
  api: GcsApi,
  prefix: string,
  signal: AbortSignal | undefined,
): AsyncIterable<ObjectMeta> {
  const op: Op = {
    action: "list objects under",
    target: api.uri(prefix),
    bucketLevel: true,
    direction: "read",
  };
  yield* listPages(api.prefix, async (token) => {
    const page = await api.client(op, async () => {
      const [, , response] = await api.bucket.getFiles({
        prefix: api.prefix + prefix,
        autoPaginate: false,
        maxResults: LIST_PAGE,
        ...(token === undefined ? {} : { pageToken: token }),
      });
      return response as { items?: GcsObject[]; nextPageToken?: string } | undefined;
    }, signal);
    const items = (page?.items ?? []).map((item) => ({
      ...toMeta(item.name, item),
      name: item.name,
    }));
    return { items, next: page?.nextPageToken };
  });
}

/**
 * Streams the committed object at `key` (`alt=media`). Failures before the first byte are
 * retried; the stream itself is not resumed.
 */
async function read(
  api: GcsApi,
  key: string,
  signal: AbortSignal | undefined,
): Promise<ReadableStream<Uint8Array>> {
  const name = gcsObjectName(api.prefix, key);
  const url = `${api.jsonBase}/b/${encodeURIComponent(api.bucketName)}/o/` +
    `${encodeURIComponent(name)}?alt=media`;
  const op: Op = { action: "read", target: api.uri(key), direction: "read" };
  const response = await api.retry(op, async () => {
    const res = await api.fetch(url, {
      method: "GET",
      ...(signal === undefined ? {} : { signal }),
    });
    if (res.ok) return res;
    throw await statusError(res);
  }, signal);
  return response.body ?? ReadableStream.from<Uint8Array>([]);
}

function toMeta(key: string, object: GcsObject): ObjectMeta {
  return {
    key,
    size: Number(object.size ?? 0),
    ...(object.md5Hash === undefined ? {} : { md5: object.md5Hash }),
  };
}

function stored(key: string, object: GcsObject): StoredObject {
  return {
    ...toMeta(key, object),
    ...(object.generation === undefined ? {} : { version: String(object.generation) }),
  };
}
