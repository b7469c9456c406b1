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
import type {
  CreateOptions,
  Destination,
  DestinationCapabilities,
  ObjectMeta,
  StagingObject,
  Upload,
} from "../core/destination.ts";
import type { DestinationSpec, SignalOptions } from "../core/spec.ts";
import { checkKey, checkStagingKey, isKey, isStagingKey, stagingKeyOf } from "./_keys.ts";
import {
  consoleWarn,
  DEFAULT_RETRY,
  type DestinationWarn,
  listStagingWith,
  moveByCopy,
  OBJECT_STORE_CAPABILITIES,
} from "./_cloud.ts";
import { parseSasExpiry, type Place, resolve } from "./_azure_auth.ts";
import { azureBlobName, type Retry, Store, toBase64 } from "./_azure_store.ts";
import { AZURE_BLOCK_SIZE, AzureUpload } from "./_azure_upload.ts";

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
export class AzureDestination implements Destination {
  /** Always `azure`. */
  readonly kind = "azure" as const;
  /** Committed on close (block list), retry-safe, never overwrites a committed part. */
  readonly capabilities: DestinationCapabilities = OBJECT_STORE_CAPABILITIES;
  /** `azure://<account>/<container>/<prefix>`. */
  readonly uri: string;
  /** Storage account name. */
  readonly account: string;
  /** Container (`bucket`). */
  readonly container: string;
  /** The `prefix` every blob name starts with, verbatim. */
  readonly prefix: string;
  /** Blob service endpoint, without query string. */
  readonly endpoint: string;
  readonly #store: Store;
  readonly #open = new Set<AzureUpload>();

  private constructor(place: Place, store: Store) {
    this.uri = place.uri;
    this.account = place.account;
    this.container = place.container;
    this.prefix = place.prefix;
    this.endpoint = place.endpoint;
    this.#store = store;
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

  /**
   * Starts a block blob. Nothing is sent before the first 8 MiB are written (or `commit()`).
   *
   * @param key Object key relative to the root; the blob is `prefix + key`.
   * @param options `overwrite` for `manifest.json`/`_SUCCESS`; an abort signal.
   * @returns The upload; nothing is visible at `key` before `commit()`.
   * @throws {ConfigError} `destination.bad_key` for an absolute key, `..`, NUL or backslash.
   */
  create(key: string, options: CreateOptions = {}): Promise<Upload> {
    try {
      checkKey(key);
      options.signal?.throwIfAborted();
    } catch (error) {
      return Promise.reject(error);
    }
    const upload = new AzureUpload({
      store: this.#store,
      key: options.provisional === true ? stagingKeyOf(key) : key,
      hidden: options.provisional === true,
      createKey: key,
      overwrite: options.overwrite === true,
      signal: options.signal,
      onDone: (u) => this.#open.delete(u),
    });
    this.#open.add(upload);
    return Promise.resolve(upload);
  }

  /**
   * Lists committed blobs whose key (name without the root prefix) starts with `prefix`, in the
   * service's order (by name), one request per 5000 names. Uncommitted blocks are never listed;
   * names that are not valid keys (ending in `/`, with a `..` component, …) are skipped.
   *
   * @param prefix Key prefix, e.g. `""`, `orders_` or `_quarantine/`.
   * @param options An abort signal.
   * @returns Objects with key, size and the blob's `Content-MD5` when it has one.
   * @throws {PermanentError} `destination.bucket_not_found`, `destination.auth_failed`.
   * @throws {TransientError} `destination.unavailable` once retries are spent.
   */
  async *list(prefix: string, options: SignalOptions = {}): AsyncIterable<ObjectMeta> {
    for await (const object of this.#listAll(prefix, options)) {
      if (!isStagingKey(object.key)) yield object;
    }
  }

  /**
   * Lists the staging blobs (`.<name>.tmp`, see the class doc) in the folder of `prefix` whose
   * final key starts with `prefix`: complete blobs a killed renaming commit left. Uncommitted
   * blocks are not blobs and are not listed.
   *
   * @param prefix Final-key prefix relative to the destination root, e.g. `orders_`.
   * @param options An abort signal.
   * @returns Staging key, final key and size of each.
   */
  async *listStaging(prefix: string, options: SignalOptions = {}): AsyncIterable<StagingObject> {
    yield* listStagingWith(prefix, (raw) => this.#listAll(raw, options));
  }

  /**
   * Deletes a staging blob (see {@linkcode listStaging}); an absent blob is no error.
   *
   * @param key A staging key, `dir/.<name>.tmp`.
   * @param options An abort signal.
   * @throws {ConfigError} `destination.bad_key` for a key that is not a staging name.
   */
  async removeStaging(key: string, options: SignalOptions = {}): Promise<void> {
    checkStagingKey(key, "Azure");
    await this.#store.remove(key, { ...(options.signal ? { signal: options.signal } : {}) });
  }

  /** Every blob under `prefix`, staging names included. */
  async *#listAll(prefix: string, options: SignalOptions): AsyncIterable<ObjectMeta> {
    const store = this.#store;
    const root = store.place.prefix;
    let marker: string | undefined;
    do {
      const page = await store.request(
        { op: "list", key: prefix },
        (signal) =>
          store.client
            .listBlobsFlat({ prefix: root + prefix, abortSignal: signal })
            .byPage({
              maxPageSize: 5000,
              ...(marker === undefined ? {} : { continuationToken: marker }),
            })
            .next(),
        { signal: options.signal },
      );
      if (page.done === true) return;
      for (const item of page.value.segment.blobItems) {
        const key = item.name.slice(root.length);
        if (!item.name.startsWith(root) || !isKey(key)) continue;
        const md5 = item.properties.contentMD5;
        yield {
          key,
          size: item.properties.contentLength ?? 0,
          ...(md5 !== undefined && md5.length > 0 ? { md5: toBase64(md5) } : {}),
        };
      }
      marker = page.value.continuationToken || undefined;
    } while (marker !== undefined);
  }

  /**
   * Size and MD5 of the committed blob at `key` (`Get Blob Properties`).
   *
   * @param key Object key relative to the root.
   * @param options An abort signal.
   * @returns Key, size and MD5 (when the blob has one), or undefined when there is none.
   * @throws {ConfigError} `destination.bad_key`.
   * @throws {PermanentError} `destination.bucket_not_found`, `destination.auth_failed`.
   * @throws {TransientError} `destination.unavailable` once retries are spent.
   */
  stat(key: string, options: SignalOptions = {}): Promise<ObjectMeta | undefined> {
    try {
      checkKey(key);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#store.head(key, options.signal);
  }

  /**
   * Streams the committed blob at `key`. A connection dropped mid-body is resumed from where it
   * stopped (up to the retry count), then fails with `destination.unavailable`.
   *
   * @param key Object key relative to the root.
   * @param options An abort signal; it also ends the stream.
   * @returns The bytes; read to the end or cancel the stream to close the connection.
   * @throws {ConfigError} `destination.bad_key`.
   * @throws {PermanentError} `destination.not_found`, `destination.bucket_not_found`,
   *   `destination.auth_failed`.
   */
  async read(key: string, options: SignalOptions = {}): Promise<ReadableStream<Uint8Array>> {
    checkKey(key);
    const store = this.#store;
    const blob = store.blob(key);
    const response = await store.request(
      { op: "read", key },
      (signal) =>
        blob.download(0, undefined, { abortSignal: signal, maxRetryRequests: store.retry.retries }),
      { signal: options.signal },
    );
    const body = response.readableStreamBody;
    if (body === undefined) return new ReadableStream({ start: (c) => c.close() });
    const reader = (Readable.toWeb(body as Readable) as ReadableStream<Uint8Array>).getReader();
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { value, done } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (error) {
          const signal = options.signal;
          if (signal?.aborted) controller.error(signal.reason);
          else if (store.isAbortReason(error)) controller.error(error);
          else controller.error(store.fail(error, { op: "read", key }, 1));
        }
      },
      cancel: (reason) => reader.cancel(reason),
    }, { highWaterMark: 0 });
  }

  /**
   * Moves a committed blob: server-side copy to `to` with `If-None-Match: *`, size and MD5 of the
   * copy checked, then `from` deleted. All or nothing: if the delete fails while `from` is still
   * there, the copy is deleted again (see `moveByCopy`).
   *
   * @param from Key of the committed object.
   * @param to New key, e.g. `_quarantine/<run_id>/<name>`.
   * @param options An abort signal.
   * @throws {ConfigError} `destination.bad_key`.
   * @throws {PermanentError} `destination.not_found` when `from` is absent, `destination.exists`
   *   when `to` exists (both untouched), `destination.bucket_not_found`,
   *   `destination.auth_failed`, `destination.move_incomplete` when both names may hold it.
   * @throws {DataIntegrityError} `destination.checksum_mismatch` when the copy differs.
   */
  async move(from: string, to: string, options: SignalOptions = {}): Promise<void> {
    checkKey(from);
    checkKey(to);
    const store = this.#store;
    const source = await store.head(from, options.signal);
    if (source === undefined) throw store.notFound(from);
    if (await store.head(to, options.signal) !== undefined) throw store.exists(to);
    await moveByCopy({
      from: `${store.place.uri}${from}`,
      to: `${store.place.uri}${to}`,
      copy: () =>
        store.copy(from, to, { overwrite: false, expect: source, signal: options.signal }),
      removeSource: () => store.remove(from, { signal: options.signal }),
      sourceExists: async () => (await store.head(from)) !== undefined,
      removeCopy: () => store.remove(to, { cleanup: true }),
    });
  }

  /**
   * Deletes a committed blob (doctor's probe); a missing blob is no error.
   *
   * @param key Object key relative to the destination root.
   * @param options An abort signal.
   */
  async remove(key: string, options: SignalOptions = {}): Promise<void> {
    checkKey(key);
    await this.#store.remove(key, { ...(options.signal ? { signal: options.signal } : {}) });
  }

  /** Aborts every upload that was neither committed nor aborted. */
  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all([...this.#open].map((upload) => upload.abort()));
  }
}
