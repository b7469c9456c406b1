/**
 * The Azure Blob Storage destination: block blobs written through `@azure/storage-blob`, staged
 * block by block while the encoder streams and made visible in one `Put Block List` at commit, so
 * a reader never sees a partial object.
 *
 * Layer: destinations. Imports core/ and _util/ only.
 *
 * Permissions: the SDK's `debug` dependency enumerates `process.env`, so a sandboxed run needs an
 * unrestricted `--allow-env` (plus `--allow-sys=osRelease` and `--allow-net` for the endpoint).
 *
 * @module
 */
import { Readable } from "node:stream";
import { BlobServiceClient } from "@azure/storage-blob";
import type { ObjectMeta } from "../core/destination.ts";
import type { DestinationSpec } from "../core/spec.ts";
import {
  bodyStream,
  listPages,
  ObjectStoreDestination,
  type ObjectStoreDriver,
} from "./_object_store.ts";
import { consoleWarn, DEFAULT_RETRY, type DestinationWarn } from "./_store_errors.ts";
import { parseSasExpiry, type Place, resolve } from "./_azure_auth.ts";
import { azureBlobName, type Retry, Store, toBase64 } from "./_azure_store.ts";
import { AZURE_BLOCK_SIZE, putSingle, startParts } from "./_azure_upload.ts";

export { AZURE_BLOCK_SIZE, azureBlobName, parseSasExpiry };

/** Retry policy of every request the destination sends. */
export interface AzureRetryOptions {
  /** Retries after the first attempt of a request; default 5. */
  readonly retries?: number;
  /** First backoff in ms, doubled per retry and jittered; default 200. */
  readonly baseDelayMs?: number;
  /** Largest backoff in ms; default 10 000. */
  readonly maxDelayMs?: number;
  /** One attempt is aborted (and retried) after this many ms; default 120 000. */
  readonly attemptTimeoutMs?: number;
}

/** Options of {@linkcode AzureDestination.open}. */
export interface AzureDestinationOptions {
  /** Reads an environment variable (`account_key_env`, `sas_token_env`). */
  readonly env: (name: string) => string | undefined;
  /** Aborts every request of the destination. */
  readonly signal?: AbortSignal;
  /** The clock of the SAS expiry check; default `new Date()`. */
  readonly now?: () => Date;
  /**
   * Receives warnings (SAS close to expiry, retried requests with code
   * `destination.retrying`); default `console.warn`.
   */
  readonly warn?: DestinationWarn;
  /** Retry policy; by default 5 retries, backoff from 200 ms up to 10 s, jittered. */
  readonly retry?: AzureRetryOptions;
}

/**
 * Writes objects as block blobs in one container of an Azure Storage account (or Azurite).
 *
 * - Blob name = `prefix` + key, concatenated verbatim (no `/` added), see
 *   {@linkcode azureBlobName}.
 * - `uri` is `azure://<account>/<container>/<prefix>`.
 * - Auth: `account_key_env` (Shared Key) XOR `sas_token_env` (leading `?` trimmed; expiry checked
 *   before any request: expired is a ConfigError, under 60 minutes a warning), or
 *   `allow_anonymous: true` (no credentials; for Azurite's `devstoreaccount1`, whose key is
 *   public, the published key is used because Azurite refuses anonymous writes).
 * - Also accepted: a connection string. The config has no key for it, so the value of
 *   `account_key_env` is read as one when it looks like one (it contains
 *   `DefaultEndpointsProtocol=` or `BlobEndpoint=`): its `AccountKey` or `SharedAccessSignature`
 *   authenticates, its `BlobEndpoint` (else protocol + account + `EndpointSuffix`) is the endpoint
 *   unless `endpoint` is set, and its `AccountName` must match `account_name` when both are set.
 * - Upload: bytes are buffered 8 MiB at a time; each full buffer is staged (`Put Block`, with its
 *   `Content-MD5` checked by the service and compared with the MD5 the service reports) while the
 *   next fills, and `commit()` sends `Put Block List` with `If-None-Match: *` (unless
 *   `overwrite`) and the whole object's MD5 as its `Content-MD5` property, then checks the
 *   committed size. An object smaller than one block is one `Put Blob` at commit, its MD5
 *   compared with the service's. Uncommitted blocks are invisible to list/stat/read.
 * - `commit(finalKey)` with another key: a single-request object goes straight to `finalKey`; a
 *   staged one is committed where its blocks were staged, copied server-side to `finalKey` and
 *   deleted there. An upload created with `provisional` stages its blocks on the hidden staging
 *   name `.<name>.tmp` instead of the create key, so no blob has a data name before its commit:
 *   a crash before the copy leaves only the staging blob (never listed; the next run of the
 *   export removes it), a crash after it the complete blob at its final name (which the next
 *   run reports, listed in no manifest). A staging blob that cannot be deleted after the copy
 *   is a warning (`destination.staging_left`).
 * - `abort()` discards what it staged: Azurite deletes uncommitted blocks with the (never
 *   committed) blob; Azure keeps them invisible until its garbage collection (7 days).
 * - Every request is retried on 5xx, 408, 429, timeouts and dropped connections (5 retries,
 *   200 ms to 10 s jittered); a block is re-sent, not the whole object.
 *
 * @example Write and commit one object (Azurite)
 * ```ts ignore
 * import { AzureDestination } from "./azure.ts";
 * await using dest = await AzureDestination.open(
 *   { kind: "azure", bucket: "rivet", prefix: "exports/", accountName: "devstoreaccount1",
 *     endpoint: "http://127.0.0.1:10000/devstoreaccount1", allowAnonymous: true },
 *   { env: (name) => Deno.env.get(name) },
 * );
 * const upload = await dest.create("a.csv");
 * await ReadableStream.from([new TextEncoder().encode("id\n1\n")]).pipeTo(upload.writable);
 * await upload.commit();
 * ```
 */
export class AzureDestination extends ObjectStoreDestination {
  /** Always `azure`. */
  readonly kind = "azure" as const;
  /** Storage account name. */
  readonly account: string;
  /** Container (`bucket`). */
  readonly container: string;
  /** The `prefix` every blob name starts with, verbatim. */
  readonly prefix: string;
  /** Blob service endpoint, without query string. */
  readonly endpoint: string;

  private constructor(place: Place, store: Store) {
    super(azureDriver(store));
    this.account = place.account;
    this.container = place.container;
    this.prefix = place.prefix;
    this.endpoint = place.endpoint;
  }

  /**
   * Resolves credentials and endpoint and checks a SAS token's expiry. Sends no request.
   *
   * @param spec The destination keys: `bucket`, `prefix`, `account_name`, `endpoint`,
   *   `account_key_env`, `sas_token_env`, `allow_anonymous`.
   * @param options Environment, abort signal, clock, warning sink and retry policy.
   * @returns The destination.
   * @throws {ConfigError} `config.missing_key` (no `bucket`, `account_name` or credentials),
   *   `destination.bad_bucket` (not a valid container name), `config.missing_env` (variable
   *   unset or empty), `destination.bad_connection_string`, `config.conflicting_keys` (both
   *   `account_key_env` and `sas_token_env`, or an account name that differs from the
   *   connection string's), `destination.bad_endpoint` (a query string in `endpoint`),
   *   `destination.sas_expired`.
   */
  static open(
    spec: DestinationSpec,
    options: AzureDestinationOptions,
  ): Promise<AzureDestination> {
    try {
      const { place, auth } = resolve(spec, options);
      const url = auth.sas === undefined ? place.endpoint : `${place.endpoint}?${auth.sas}`;
      // The SDK's own retries are off: ours (per request, logged, classified) replace them.
      const service = new BlobServiceClient(url, auth.credential, {
        retryOptions: { maxTries: 1 },
      });
      const retry: Retry = {
        retries: options.retry?.retries ?? DEFAULT_RETRY.retries,
        baseDelayMs: options.retry?.baseDelayMs ?? DEFAULT_RETRY.baseDelayMs,
        maxDelayMs: options.retry?.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs,
        attemptTimeoutMs: options.retry?.attemptTimeoutMs ?? 120_000,
      };
      const store = new Store({
        client: service.getContainerClient(place.container),
        place,
        retry,
        warn: options.warn ?? consoleWarn,
        signal: options.signal,
      });
      return Promise.resolve(new AzureDestination(place, store));
    } catch (error) {
      return Promise.reject(error);
    }
  }
}

/** The Azure calls the kit builds the destination from. */
function azureDriver(store: Store): ObjectStoreDriver {
  return {
    store: "Azure",
    uri: store.place.uri,
    warn: store.warn,
    partSize: () => AZURE_BLOCK_SIZE,
    listRaw: (prefix, signal) => listAll(store, prefix, signal),
    head: (key, signal) => store.head(key, signal),
    read: (key, signal) => read(store, key, signal),
    copy: async (from, to, options) => {
      await store.copy(from, to, {
        overwrite: options.overwrite,
        expect: { size: options.size, md5: options.md5 },
        signal: options.signal,
      });
      return undefined;
    },
    delete: (key, options) => store.remove(key, { signal: options.signal }),
    putSingle: (key, bytes, sent, options) => putSingle(store, key, bytes, sent, options),
    startParts: (key, options) => startParts(store, key, options),
    signal: store.signal,
  };
}

/** Every blob under `prefix`, staging names included, one request per 5000 names. */
async function* listAll(
  store: Store,
  prefix: string,
  signal: AbortSignal | undefined,
): AsyncIterable<ObjectMeta> {
  const root = store.place.prefix;
  yield* listPages(root, async (marker) => {
    const page = await store.request(
      { op: "list", key: prefix },
      (s) =>
        store.client
          .listBlobsFlat({ prefix: root + prefix, abortSignal: s })
          .byPage({
            maxPageSize: 5000,
            ...(marker === undefined ? {} : { continuationToken: marker }),
          })
          .next(),
      { signal },
    );
    if (page.done === true) return { items: [], next: undefined };
    const items = page.value.segment.blobItems.map((item) => {
      const md5 = item.properties.contentMD5;
      return {
        name: item.name,
        size: item.properties.contentLength ?? 0,
        ...(md5 !== undefined && md5.length > 0 ? { md5: toBase64(md5) } : {}),
      };
    });
    return { items, next: page.value.continuationToken };
  });
}

/**
 * Streams the committed blob at `key`. A connection dropped mid-body is resumed from where it
 * stopped (up to the retry count), then fails with `destination.unavailable`.
 */
async function read(
  store: Store,
  key: string,
  signal: AbortSignal | undefined,
): Promise<ReadableStream<Uint8Array>> {
  const blob = store.blob(key);
  const response = await store.request(
    { op: "read", key },
    (s) => blob.download(0, undefined, { abortSignal: s, maxRetryRequests: store.retry.retries }),
    { signal },
  );
  const body = response.readableStreamBody;
  return bodyStream(
    body === undefined ? undefined : Readable.toWeb(body as Readable) as ReadableStream<Uint8Array>,
    signal,
    (error) => store.isAbortReason(error) ? error : store.fail(error, { op: "read", key }, 1),
  );
}
