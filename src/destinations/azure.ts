/**
 * The Azure Blob Storage destination: block blobs written through
 * `@azure/storage-blob`, staged block by block while the encoder streams and made visible in one
 * `Put Block List` at commit, so a reader never sees a partial object.
 *
 * Layer: destinations. Imports core/ and _util/ only.
 *
 * Permissions: the SDK's `debug` dependency enumerates `process.env`, so a sandboxed run needs an
 * unrestricted `--allow-env` (plus `--allow-sys=osRelease` and `--allow-net` for the endpoint).
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import {
  AnonymousCredential,
  BlobServiceClient,
  type BlockBlobClient,
  type ContainerClient,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";
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
import { redact, registerSecret } from "../_util/redact.ts";
import { crashPoint } from "../_util/test_hook.ts";
import { checkKey, checkStagingKey, isStagingKey, stagingKeyOf } from "./_keys.ts";
import { consoleWarn, type DestinationWarn, listStagingWith, moveByCopy } from "./_cloud.ts";

/** Bytes buffered before a block is staged; at most one more block is in flight meanwhile. */
export const AZURE_BLOCK_SIZE = 8 * 1024 * 1024;

/**
 * Azurite's built-in development account and its key, published by Microsoft (no secret). Used
 * when `allow_anonymous: true` names this account: Azurite refuses anonymous writes.
 */
const AZURITE_ACCOUNT = "devstoreaccount1";
const AZURITE_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** A SAS token with less than this left triggers a warning at open. */
const SAS_WARN_MS = 60 * 60 * 1000;

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

const capabilities: DestinationCapabilities = {
  commit: "on_close",
  idempotentOverwrite: false,
  retrySafe: true,
  persistent: true,
};

/**
 * The blob name of a key: the destination's `prefix` and the key concatenated verbatim, with no
 * `/` added: `exports/` + `a.parquet` is `exports/a.parquet`, while `exports` +
 * `a.parquet` is `exportsa.parquet`.
 *
 * @param prefix The configured `prefix` (may be empty).
 * @param key The object key, validated like {@linkcode checkKey}.
 * @returns The blob name inside the container.
 * @throws {ConfigError} `destination.bad_key` for an absolute key, `..`, NUL or backslash.
 *
 * @example
 * ```ts
 * import { azureBlobName } from "./azure.ts";
 * if (azureBlobName("exports", "a.csv") !== "exportsa.csv") throw new Error("verbatim");
 * ```
 */
export function azureBlobName(prefix: string, key: string): string {
  return prefix + checkKey(key);
}

/**
 * The expiry (`se=`) of a SAS token, percent-decoded (`%3A`, `%2B`) and parsed as an ISO 8601
 * UTC time (`2030-01-01`, `2030-01-01T10:00Z`, `2030-01-01T10:00:00.000Z`, or with an offset).
 *
 * @param token The token, with or without its leading `?`.
 * @returns The expiry, or undefined when `se` is missing or unreadable.
 *
 * @example
 * ```ts
 * import { parseSasExpiry } from "./azure.ts";
 * const at = parseSasExpiry("?sv=2024-08-04&se=2030-01-02T03%3A04%3A05Z&sig=x");
 * if (at?.toISOString() !== "2030-01-02T03:04:05.000Z") throw new Error(String(at));
 * ```
 */
export function parseSasExpiry(token: string): Date | undefined {
  for (const pair of token.replace(/^\?/, "").split("&")) {
    const eq = pair.indexOf("=");
    if (eq < 0 || pair.slice(0, eq).toLowerCase() !== "se") continue;
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(eq + 1)).trim();
    } catch {
      return undefined;
    }
    if (
      !/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(value)
    ) {
      return undefined;
    }
    // A bare date is midnight UTC, as Date.parse reads it; an offset needs its colon.
    const normalized = value.replace(/([+-]\d{2})(\d{2})$/, "$1:$2");
    const ms = Date.parse(normalized);
    return Number.isNaN(ms) ? undefined : new Date(ms);
  }
  return undefined;
}

/** How the destination authenticates, and what to tell a user whose credentials are refused. */
interface Auth {
  readonly credential: StorageSharedKeyCredential | AnonymousCredential;
  /** SAS token without `?`, appended to the service URL. */
  readonly sas?: string;
  /** Names the config keys and variables to check (never their values). */
  readonly hint: string;
}

/** Where the destination writes, for URIs and messages. */
interface Place {
  readonly account: string;
  readonly container: string;
  readonly prefix: string;
  /** Endpoint without query string. */
  readonly endpoint: string;
  readonly uri: string;
  readonly authHint: string;
  /** No credentials: the service answers 404 ResourceNotFound for a private container. */
  readonly anonymous: boolean;
}

/** Resolved request policy. */
interface Retry {
  readonly retries: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly attemptTimeoutMs: number;
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
  readonly capabilities: DestinationCapabilities = capabilities;
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
        retries: options.retry?.retries ?? 5,
        baseDelayMs: options.retry?.baseDelayMs ?? 200,
        maxDelayMs: options.retry?.maxDelayMs ?? 10_000,
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

// ---------------------------------------------------------------------------------------------
// Configuration

function resolve(
  spec: DestinationSpec,
  options: AzureDestinationOptions,
): { place: Place; auth: Auth } {
  const container = spec.bucket;
  if (container === undefined || container === "") {
    throw new ConfigError(
      "Azure destination has no container: set destination.bucket to the container name",
      { code: "config.missing_key" },
    );
  }
  if (!/^(?:\$root|\$web|[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})$/.test(container)) {
    throw new ConfigError(
      `Azure container name '${container}' (destination.bucket) is not valid: use 3 to 63 ` +
        "lowercase letters, digits and single hyphens, starting and ending with a letter or digit",
      { code: "destination.bad_bucket" },
    );
  }
  const now = options.now?.() ?? new Date();
  const warn = options.warn ?? ((message: string) => console.warn(message));
  let account = spec.accountName;
  let endpoint = spec.endpoint;
  let auth: Auth;
  if (spec.accountKeyEnv !== undefined && spec.sasTokenEnv !== undefined) {
    throw new ConfigError(
      "Azure destination sets both account_key_env and sas_token_env; set only one",
      { code: "config.conflicting_keys" },
    );
  }
  if (spec.accountKeyEnv !== undefined) {
    const name = spec.accountKeyEnv;
    const value = readEnv(options, name, "account_key_env");
    registerSecret(value);
    if (looksLikeConnectionString(value)) {
      const cs = parseConnectionString(value, name);
      if (account !== undefined && cs.account !== undefined && account !== cs.account) {
        throw new ConfigError(
          `Azure destination.account_name '${account}' differs from the AccountName of the ` +
            `connection string in environment variable '${name}' (account_key_env); make them ` +
            "the same, or remove account_name",
          { code: "config.conflicting_keys" },
        );
      }
      account ??= cs.account;
      if (account === undefined) throw missingAccount();
      endpoint ??= cs.endpoint ?? `${cs.protocol}://${account}.blob.${cs.suffix}`;
      if (cs.key !== undefined) {
        auth = {
          credential: new StorageSharedKeyCredential(account, cs.key),
          hint: `the connection string in environment variable '${name}' (account_key_env): ` +
            "its AccountName and AccountKey",
        };
      } else {
        const sas = cs.sas!;
        checkSasExpiry(sas, name, "account_key_env", { now, warn });
        auth = {
          credential: new AnonymousCredential(),
          sas,
          hint: `the SharedAccessSignature of the connection string in environment variable ` +
            `'${name}' (account_key_env): ${SAS_NEEDS}`,
        };
      }
    } else {
      if (account === undefined) throw missingAccount();
      auth = {
        credential: new StorageSharedKeyCredential(account, value.trim()),
        hint: `destination.account_name and the account key in environment variable '${name}' ` +
          "(account_key_env)",
      };
    }
  } else if (spec.sasTokenEnv !== undefined) {
    const name = spec.sasTokenEnv;
    const sas = readEnv(options, name, "sas_token_env").trim().replace(/^\?/, "");
    registerSas(sas);
    checkSasExpiry(sas, name, "sas_token_env", { now, warn });
    if (account === undefined) throw missingAccount();
    auth = {
      credential: new AnonymousCredential(),
      sas,
      hint: `destination.account_name and the SAS token in environment variable '${name}' ` +
        `(sas_token_env): ${SAS_NEEDS}`,
    };
  } else if (spec.allowAnonymous) {
    if (account === undefined) throw missingAccount();
    auth = account === AZURITE_ACCOUNT
      ? {
        credential: new StorageSharedKeyCredential(account, AZURITE_KEY),
        hint: "destination.account_name and endpoint (allow_anonymous uses Azurite's published " +
          "development key for devstoreaccount1)",
      }
      : {
        credential: new AnonymousCredential(),
        hint: "destination.allow_anonymous: anonymous requests cannot write; set " +
          "account_key_env or sas_token_env instead",
      };
  } else {
    throw new ConfigError(
      "Azure destination has no credentials: set destination.account_key_env or " +
        "destination.sas_token_env, or allow_anonymous: true for an emulator",
      { code: "config.missing_key" },
    );
  }
  if (endpoint?.includes("?")) {
    // A SAS pasted into the endpoint would end up in every URI and message.
    throw new ConfigError(
      "Azure destination.endpoint has a query string; give the bare service URL and put a SAS " +
        "token in the variable named by sas_token_env",
      { code: "destination.bad_endpoint" },
    );
  }
  endpoint = (endpoint ?? `https://${account}.blob.core.windows.net`).replace(/\/+$/, "");
  const prefix = spec.prefix ?? "";
  return {
    place: {
      account,
      container,
      prefix,
      endpoint,
      uri: `azure://${account}/${container}/${prefix}`,
      authHint: auth.hint,
      anonymous: auth.credential instanceof AnonymousCredential && auth.sas === undefined,
    },
    auth,
  };
}

const SAS_NEEDS = "it must be valid for this container and allow read, add, create, write, " +
  "delete and list (sp=racwdl), with an expiry ('se') after the run ends";

function missingAccount(): ConfigError {
  return new ConfigError(
    "Azure destination has no storage account: set destination.account_name",
    { code: "config.missing_key" },
  );
}

function readEnv(options: AzureDestinationOptions, name: string, key: string): string {
  const value = options.env(name);
  if (value === undefined || value.trim() === "") {
    throw new ConfigError(
      `Environment variable '${name}' (destination.${key}) is not set or empty; export it ` +
        "before running rivet",
      { code: "config.missing_env", hint: `export ${name} before running rivet` },
    );
  }
  return value;
}

function looksLikeConnectionString(value: string): boolean {
  return /(^|;)\s*(DefaultEndpointsProtocol|BlobEndpoint)\s*=/i.test(value);
}

interface ConnectionString {
  readonly account?: string;
  readonly key?: string;
  readonly sas?: string;
  readonly endpoint?: string;
  readonly protocol: string;
  readonly suffix: string;
}

function parseConnectionString(text: string, envName: string): ConnectionString {
  const fields = new Map<string, string>();
  for (const part of text.split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const get = (name: string) => {
    const value = fields.get(name.toLowerCase());
    return value === undefined || value === "" ? undefined : value;
  };
  const key = get("AccountKey");
  const sasRaw = get("SharedAccessSignature");
  const sas = sasRaw?.replace(/^\?/, "");
  if (key !== undefined) registerSecret(key);
  if (sas !== undefined) registerSas(sas);
  if (key === undefined && sas === undefined) {
    throw new ConfigError(
      `The connection string in environment variable '${envName}' (account_key_env) has ` +
        "neither AccountKey nor SharedAccessSignature; copy the full connection string from " +
        "the storage account's access keys",
      { code: "destination.bad_connection_string" },
    );
  }
  const account = get("AccountName");
  const endpoint = get("BlobEndpoint");
  if (endpoint === undefined && account === undefined) {
    throw new ConfigError(
      `The connection string in environment variable '${envName}' (account_key_env) has ` +
        "neither BlobEndpoint nor AccountName; copy the full connection string from the " +
        "storage account's access keys",
      { code: "destination.bad_connection_string" },
    );
  }
  return {
    ...(account === undefined ? {} : { account }),
    ...(key === undefined ? {} : { key }),
    ...(sas === undefined ? {} : { sas }),
    ...(endpoint === undefined ? {} : { endpoint }),
    protocol: get("DefaultEndpointsProtocol") ?? "https",
    suffix: get("EndpointSuffix") ?? "core.windows.net",
  };
}

/** Registers a SAS token and its signature (raw and decoded) so no message can carry them. */
function registerSas(sas: string): void {
  registerSecret(sas);
  const sig = /(?:^|&)sig=([^&]*)/i.exec(sas)?.[1];
  if (sig !== undefined) {
    registerSecret(sig);
    try {
      registerSecret(decodeURIComponent(sig));
    } catch { /* not percent-encoded */ }
  }
}

function checkSasExpiry(
  sas: string,
  envName: string,
  key: string,
  options: { readonly now: Date; readonly warn: (message: string) => void },
): void {
  const expiry = parseSasExpiry(sas);
  if (expiry === undefined) {
    options.warn(
      `The SAS token in environment variable '${envName}' (destination.${key}) has no readable ` +
        "expiry ('se='); rivet cannot check it before uploading",
    );
    return;
  }
  const left = expiry.getTime() - options.now.getTime();
  if (left <= 0) {
    throw new ConfigError(
      `The SAS token in environment variable '${envName}' (destination.${key}) expired at ` +
        `${expiry.toISOString()}; issue a new token and export it in '${envName}'`,
      { code: "destination.sas_expired" },
    );
  }
  if (left < SAS_WARN_MS) {
    options.warn(
      `The SAS token in environment variable '${envName}' (destination.${key}) expires in ` +
        `${Math.floor(left / 60_000)} minutes (${expiry.toISOString()}); a longer run will fail ` +
        "part-way: issue a token that outlives the run",
    );
  }
}

function isKey(key: string): boolean {
  try {
    checkKey(key);
    return true;
  } catch {
    return false;
  }
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Requests: retries, classification, messages

/** What a request does, for messages. */
interface What {
  readonly op: string;
  readonly key: string;
}

/** Options of {@linkcode Store.request}. */
interface RequestOptions {
  readonly signal?: AbortSignal | undefined;
  /** Best-effort clean-up: ignores the destination's signal, one retry at most. */
  readonly cleanup?: boolean;
}

interface StoreInit {
  readonly client: ContainerClient;
  readonly place: Place;
  readonly retry: Retry;
  readonly warn: DestinationWarn;
  readonly signal: AbortSignal | undefined;
}

/** The container client with retries and error classification; shared by uploads. */
class Store {
  readonly client: ContainerClient;
  readonly place: Place;
  readonly retry: Retry;
  readonly warn: DestinationWarn;
  readonly #signal: AbortSignal | undefined;

  constructor(init: StoreInit) {
    this.client = init.client;
    this.place = init.place;
    this.retry = init.retry;
    this.warn = init.warn;
    this.#signal = init.signal;
  }

  /** Whether `error` is the reason the destination's signal aborted with. */
  isAbortReason(error: unknown): boolean {
    return this.#signal?.aborted === true && error === this.#signal.reason;
  }

  /** The reason the destination's signal aborted with, or undefined while it has not. */
  abortReason(): unknown {
    return this.#signal?.aborted ? this.#signal.reason ?? new Error("aborted") : undefined;
  }

  blob(key: string): BlockBlobClient {
    return this.client.getBlockBlobClient(azureBlobName(this.place.prefix, key));
  }

  /**
   * Runs one request with a per-attempt timeout, retrying transient failures with jittered
   * exponential backoff. The destination's and the caller's signals abort it.
   *
   * @throws {RivetError} The classified failure; the abort reason when a signal aborted.
   */
  async request<T>(
    what: What,
    send: (signal: AbortSignal) => Promise<T>,
    options: RequestOptions = {},
  ): Promise<T> {
    const signals = [options.cleanup ? undefined : this.#signal, options.signal].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    const outer = signals.length === 0
      ? undefined
      : signals.length === 1
      ? signals[0]
      : AbortSignal.any(signals);
    const retries = options.cleanup ? Math.min(1, this.retry.retries) : this.retry.retries;
    for (let attempt = 0;; attempt++) {
      outer?.throwIfAborted();
      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(), this.retry.attemptTimeoutMs);
      const signal = outer === undefined
        ? timeout.signal
        : AbortSignal.any([outer, timeout.signal]);
      try {
        return await send(signal);
      } catch (error) {
        if (outer?.aborted) throw outer.reason;
        const timedOut = timeout.signal.aborted;
        if (!(timedOut || isTransient(error)) || attempt >= retries) {
          throw this.fail(error, what, attempt + 1, timedOut);
        }
        const delay = backoff(attempt, this.retry);
        if (!options.cleanup) {
          this.warn(
            `Azure ${what.op} of '${what.key}' in ${this.place.uri} failed (${
              timedOut ? `no answer in ${this.retry.attemptTimeoutMs} ms` : describe(error)
            }); retry ${attempt + 1}/${retries} in ${delay} ms`,
            "destination.retrying",
          );
        }
        await sleep(delay, outer);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** Properties of the blob at `key`, or undefined when it has none committed. */
  async head(key: string, signal?: AbortSignal): Promise<ObjectMeta | undefined> {
    const blob = this.blob(key);
    try {
      const props = await this.request(
        { op: "stat", key },
        (s) => blob.getProperties({ abortSignal: s }),
        { signal },
      );
      const md5 = props.contentMD5;
      return {
        key,
        size: props.contentLength ?? 0,
        ...(md5 !== undefined && md5.length > 0 ? { md5: toBase64(md5) } : {}),
      };
    } catch (error) {
      if (error instanceof RivetError && error.code === "destination.not_found") return undefined;
      throw error;
    }
  }

  /** Deletes the blob at `key`; a missing blob is no error. */
  async remove(key: string, options: RequestOptions = {}): Promise<void> {
    const blob = this.blob(key);
    try {
      await this.request({ op: "delete", key }, (s) => blob.delete({ abortSignal: s }), options);
    } catch (error) {
      if (error instanceof RivetError && error.code === "destination.not_found") return;
      throw error;
    }
  }

  /**
   * Server-side copy of `from` to `to` (`If-None-Match: *` unless `overwrite`), then a check that
   * the copy has the expected size and MD5. A copy that fails the check is deleted.
   */
  async copy(
    from: string,
    to: string,
    options: {
      readonly overwrite: boolean;
      readonly expect: { readonly size: number; readonly md5?: string };
      readonly signal?: AbortSignal | undefined;
    },
  ): Promise<void> {
    // The source URL carries the SAS token when there is one: the copy is authorised with it.
    const source = this.blob(from).url;
    const target = this.blob(to);
    let attempts = 0;
    try {
      await this.request({ op: "copy", key: to }, async (signal) => {
        attempts++;
        const poller = await target.beginCopyFromURL(source, {
          abortSignal: signal,
          intervalInMs: 200,
          ...(options.overwrite ? {} : { conditions: { ifNoneMatch: "*" } }),
        });
        const result = await poller.pollUntilDone();
        if (result.copyStatus !== undefined && result.copyStatus !== "success") {
          throw new PermanentError(
            `Azure copy of '${from}' to '${to}' in ${this.place.uri} ended with status ` +
              `'${result.copyStatus}'; run again, or copy the blob by hand`,
            { code: "destination.copy_failed" },
          );
        }
      }, { signal: options.signal });
    } catch (error) {
      // A retried copy whose first attempt succeeded (answer lost) finds its own result there.
      if (!(isExists(error) && attempts > 1 && await this.#matches(to, options.expect))) {
        throw error;
      }
    }
    const copied = await this.head(to, options.signal);
    if (copied === undefined || !matchesMeta(copied, options.expect)) {
      await this.remove(to, { cleanup: true }).catch(() => {});
      throw new DataIntegrityError(
        `Azure copy of '${from}' to '${to}' in ${this.place.uri} has size ` +
          `${copied?.size ?? "none"} and MD5 ${copied?.md5 ?? "none"}, expected ` +
          `${options.expect.size} and ${options.expect.md5 ?? "any"}; the copy was deleted, run ` +
          "again",
        { code: "destination.checksum_mismatch" },
      );
    }
  }

  async #matches(key: string, expect: { size: number; md5?: string }): Promise<boolean> {
    const meta = await this.head(key).catch(() => undefined);
    return meta !== undefined && matchesMeta(meta, expect);
  }

  /** Whether the committed blob at `key` has exactly this size and MD5. */
  matches(key: string, expect: { size: number; md5?: string }): Promise<boolean> {
    return this.#matches(key, expect);
  }

  notFound(key: string): PermanentError {
    return new PermanentError(
      `Azure destination ${this.place.uri} has no object at key '${key}'; check the key, or ` +
        "list the destination to see what it holds",
      { code: "destination.not_found" },
    );
  }

  exists(key: string): PermanentError {
    return new PermanentError(
      `Azure destination ${this.place.uri} refuses to overwrite the committed object '${key}'; ` +
        "remove it or write to another prefix (rivet never replaces a committed part)",
      { code: "destination.exists" },
    );
  }

  /**
   * Classifies a failure into a RivetError with a stable code and a message free of secrets.
   *
   * @param attempts How many attempts were made (for `destination.unavailable`).
   */
  fail(error: unknown, what: What, attempts: number, timedOut = false): RivetError {
    if (error instanceof RivetError) return error;
    const { place } = this;
    const status = statusOf(error);
    const code = errorCodeOf(error);
    if (status === 404 && code === "ContainerNotFound") {
      return new PermanentError(
        `Azure container '${place.container}' does not exist in storage account ` +
          `'${place.account}' (${place.endpoint}); create the container or fix destination.bucket`,
        {
          code: "destination.bucket_not_found",
          cause: error,
          hint: `az storage container create --name ${place.container} --account-name ` +
            place.account,
        },
      );
    }
    if (status === 404 && (code === "BlobNotFound" || code === undefined)) {
      return Object.assign(this.notFound(what.key), { cause: error });
    }
    if (status === 401 || status === 403 || (status === 404 && place.anonymous)) {
      return new PermanentError(
        `Azure storage account '${place.account}' refused the credentials for ${what.op} of ` +
          `'${what.key}' in container '${place.container}' (HTTP ${status}${
            code === undefined ? "" : ` ${code}`
          }); check ${place.authHint}`,
        { code: "destination.auth_failed", cause: error, hint: `check ${place.authHint}` },
      );
    }
    if (status === 409 || status === 412) {
      if (code === "BlobAlreadyExists" || code === "ConditionNotMet" || code === undefined) {
        return Object.assign(this.exists(what.key), { cause: error });
      }
    }
    if (status === 400 && (code === "Md5Mismatch" || /md5/i.test(messageOf(error)))) {
      return new DataIntegrityError(
        `Azure rejected ${what.op} of '${what.key}' in ${place.uri}: the bytes it received do ` +
          "not match their MD5 (corrupted in transit); nothing was committed, run again",
        { code: "destination.checksum_mismatch", cause: error },
      );
    }
    if (timedOut || isTransient(error)) {
      return new TransientError(
        `Azure Blob storage at ${place.endpoint} is unavailable: ${what.op} of '${what.key}' ` +
          `failed after ${attempts} attempt${attempts === 1 ? "" : "s"} (${
            timedOut ? `no answer in ${this.retry.attemptTimeoutMs} ms` : describe(error)
          }); run again later, or check the endpoint and the network`,
        { code: "destination.unavailable", cause: error },
      );
    }
    return new PermanentError(
      `Azure Blob storage rejected ${what.op} of '${what.key}' in ${place.uri} (${
        describe(error)
      }); check the destination settings`,
      { code: "destination.request_failed", cause: error },
    );
  }
}

function matchesMeta(meta: ObjectMeta, expect: { size: number; md5?: string }): boolean {
  if (meta.size !== expect.size) return false;
  return expect.md5 === undefined || meta.md5 === undefined || meta.md5 === expect.md5;
}

function isExists(error: unknown): boolean {
  return error instanceof RivetError && error.code === "destination.exists";
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === "number" ? status : undefined;
}

/** The service's error code (`x-ms-error-code`, also on HEAD answers), else the client's. */
function errorCodeOf(error: unknown): string | undefined {
  const e = error as {
    code?: unknown;
    response?: { headers?: { get?: (name: string) => string | undefined } };
  } | null;
  const header = e?.response?.headers?.get?.("x-ms-error-code");
  if (typeof header === "string" && header !== "") return header;
  return typeof e?.code === "string" ? e.code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Network-level failures that a new connection may not meet again. */
const NETWORK_CODES = new Set([
  "REQUEST_SEND_ERROR",
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "UND_ERR_SOCKET",
  "ERR_STREAM_PREMATURE_CLOSE",
]);

function isTransient(error: unknown): boolean {
  const status = statusOf(error);
  if (status !== undefined && status !== 0) {
    return status >= 500 || status === 408 || status === 429;
  }
  const code = errorCodeOf(error);
  if (code !== undefined && NETWORK_CODES.has(code)) return true;
  const name = (error as { name?: unknown } | null)?.name;
  if (name === "RestError") return true; // no HTTP status: the request never got an answer
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.ConnectionRefused ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.UnexpectedEof ||
    /socket hang up|connection (reset|closed|refused)|premature close|other side closed/i.test(
      messageOf(error),
    );
}

/** `HTTP 503 ServerBusy`, or the network error's code and first line, without query strings. */
function describe(error: unknown): string {
  const status = statusOf(error);
  const code = errorCodeOf(error);
  if (status !== undefined && status !== 0) {
    return `HTTP ${status}${code === undefined ? "" : ` ${code}`}`;
  }
  const line = messageOf(error).split("\n")[0]!.replace(/\?[^\s'"]*/g, "?…").slice(0, 200);
  return redact(code === undefined ? line : `${code}: ${line}`);
}

function backoff(attempt: number, retry: Retry): number {
  const ceiling = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** attempt);
  return Math.round(ceiling / 2 + Math.random() * ceiling / 2);
}

// ---------------------------------------------------------------------------------------------
// Uploads

interface UploadInit {
  readonly store: Store;
  /** Where the blocks are staged: the create key, or its staging key (`hidden`). */
  readonly key: string;
  /** `key` is the hidden staging key of the create key (`CreateOptions.provisional`). */
  readonly hidden: boolean;
  /** The key given to `create`: where `commit()` without a key makes the blob visible. */
  readonly createKey: string;
  readonly overwrite: boolean;
  readonly signal: AbortSignal | undefined;
  readonly onDone: (upload: AzureUpload) => void;
}

/** One block blob being written: 8 MiB buffers staged as blocks, committed by block list. */
class AzureUpload implements Upload {
  readonly writable: WritableStream<Uint8Array>;
  readonly #init: UploadInit;
  readonly #md5 = createHash("md5");
  /** Unique per upload, so a stale upload's blocks on the same name are never committed. */
  readonly #nonce = randomBytes(8).toString("hex");
  readonly #blocks: string[] = [];
  #state: "open" | "committing" | "committed" | "aborted" = "open";
  #streamClosed = false;
  #size = 0;
  #buffer: Uint8Array | undefined;
  #spare: Uint8Array | undefined;
  #filled = 0;
  #inflight: Promise<void> | undefined;
  #failure: { error: unknown } | undefined;
  /** Key at which this upload made a blob visible, for clean-up on failure. */
  #committedAt: string | undefined;

  constructor(init: UploadInit) {
    this.#init = init;
    this.writable = new WritableStream<Uint8Array>({
      write: (chunk) => this.#write(chunk),
      close: () => {
        this.#streamClosed = true;
      },
      abort: (reason) => this.abort(reason),
    });
  }

  async #write(chunk: Uint8Array): Promise<void> {
    if (this.#state !== "open") throw new Error(`Upload of '${this.#init.key}' is ${this.#state}`);
    const reason = this.#init.signal?.aborted
      ? this.#init.signal.reason
      : this.#init.store.abortReason();
    if (reason !== undefined) {
      await this.abort(reason);
      throw reason;
    }
    try {
      this.#throwIfFailed();
      this.#md5.update(chunk);
      this.#size += chunk.length;
      let offset = 0;
      while (offset < chunk.length) {
        if (this.#filled === AZURE_BLOCK_SIZE) await this.#stageBuffer();
        if (this.#buffer === undefined) {
          this.#buffer = this.#spare ?? new Uint8Array(AZURE_BLOCK_SIZE);
          this.#spare = undefined;
        }
        const buffer = this.#buffer;
        const n = Math.min(AZURE_BLOCK_SIZE - this.#filled, chunk.length - offset);
        buffer.set(chunk.subarray(offset, offset + n), this.#filled);
        this.#filled += n;
        offset += n;
      }
    } catch (error) {
      await this.abort(error);
      throw this.#classify(error);
    }
  }

  /** Waits for the block in flight, then sends the current buffer as the next block. */
  async #stageBuffer(): Promise<void> {
    await this.#settle();
    const { store, key, overwrite, hidden, signal } = this.#init;
    if (
      this.#blocks.length === 0 && !overwrite && !hidden &&
      await store.head(key, signal) !== undefined
    ) {
      // Blocks staged on a committed blob could not be discarded without touching it: refuse
      // before staging any (commit checks again, and its conditional write closes the race).
      throw store.exists(key);
    }
    const body = this.#buffer!.subarray(0, this.#filled);
    this.#buffer = undefined;
    this.#filled = 0;
    const index = this.#blocks.length;
    const id = btoa(`${this.#nonce}-${String(index).padStart(6, "0")}`);
    this.#blocks.push(id);
    this.#inflight = this.#stage(id, index, body).then(
      () => {
        // The block is stored: its buffer is free for the block after next.
        if (body.length === AZURE_BLOCK_SIZE) this.#spare = new Uint8Array(body.buffer);
      },
      (error) => {
        this.#failure ??= { error };
      },
    );
  }

  async #stage(id: string, index: number, body: Uint8Array): Promise<void> {
    const { store, key, signal } = this.#init;
    const md5 = createHash("md5").update(body).digest();
    const blob = store.blob(key);
    const what = { op: `upload of block ${index + 1}`, key };
    const response = await store.request(
      what,
      (s) =>
        blob.stageBlock(id, body, body.length, { transactionalContentMD5: md5, abortSignal: s }),
      { signal },
    );
    // The service verified Content-MD5 on receipt; Azure also echoes what it computed (Azurite
    // does not), a second check of the bytes it kept.
    const echoed = response.contentMD5;
    if (echoed !== undefined && echoed.length > 0 && !sameBytes(echoed, md5)) {
      throw this.#mismatch(what, toBase64(md5), toBase64(echoed));
    }
  }

  async #settle(): Promise<void> {
    if (this.#inflight !== undefined) {
      await this.#inflight;
      this.#inflight = undefined;
    }
    this.#throwIfFailed();
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure.error;
  }

  async commit(finalKey?: string): Promise<ObjectMeta> {
    if (this.#state !== "open") {
      throw new Error(`commit() of '${this.#init.key}' called after ${this.#state}`);
    }
    if (!this.#streamClosed) {
      if (this.writable.locked) {
        throw new Error(`commit() of '${this.#init.key}' called while its writable is locked`);
      }
      await this.writable.close();
    }
    const target = finalKey === undefined ? this.#init.createKey : checkKey(finalKey);
    const { store, key, overwrite, signal } = this.#init;
    this.#state = "committing";
    let md5 = "";
    try {
      signal?.throwIfAborted();
      await this.#settle();
      md5 = this.#md5.digest("base64");
      if (!overwrite && await store.head(target, signal) !== undefined) throw store.exists(target);
      if (this.#blocks.length === 0) {
        await this.#putSingle(target, md5);
      } else {
        if (this.#filled > 0) await this.#stageBuffer();
        await this.#settle();
        await this.#commitBlocks(md5);
        if (target !== key) {
          await crashPoint("before_commit_rename");
          await store.copy(key, target, { overwrite, expect: { size: this.#size, md5 }, signal });
          this.#committedAt = target;
          await crashPoint("after_commit_copy");
          // The object is complete at its final key: a leftover staging name only warrants a
          // warning (it is a full copy), not a failed commit.
          await store.remove(key, { signal }).catch((error) => {
            store.warn(
              `Azure destination ${store.place.uri}: could not delete the staging object '${key}' ` +
                `after copying it to '${target}' (${
                  error instanceof Error ? error.message : String(error)
                }); ${
                  this.#init.hidden ? "the next run of the export removes it" : "delete it by hand"
                }`,
              "destination.staging_left",
            );
          });
        }
      }
    } catch (error) {
      await this.#discard();
      throw this.#classify(error);
    }
    this.#state = "committed";
    this.#init.onDone(this);
    this.#release();
    return { key: target, size: this.#size, md5 };
  }

  /** Objects under one block: one `Put Blob` straight to the final key. */
  async #putSingle(target: string, md5: string): Promise<void> {
    const { store, overwrite, signal } = this.#init;
    const body = this.#buffer?.subarray(0, this.#filled) ?? new Uint8Array(0);
    const digest = Uint8Array.from(atob(md5), (c) => c.charCodeAt(0));
    const blob = store.blob(target);
    const what = { op: "upload", key: target };
    let attempts = 0;
    let reported: Uint8Array | undefined;
    try {
      const response = await store.request(what, (s) => {
        attempts++;
        return blob.upload(body, body.length, {
          abortSignal: s,
          transactionalContentMD5: digest,
          ...(overwrite ? {} : { conditions: { ifNoneMatch: "*" } }),
        });
      }, { signal });
      reported = response.contentMD5;
    } catch (error) {
      // A retried upload whose first attempt was stored (answer lost) finds its own bytes there.
      if (
        isExists(error) && attempts > 1 && await store.matches(target, { size: this.#size, md5 })
      ) {
        this.#committedAt = target;
        return;
      }
      throw error;
    }
    this.#committedAt = target;
    if (reported !== undefined && reported.length > 0) {
      if (!sameBytes(reported, digest)) throw this.#mismatch(what, md5, toBase64(reported));
    } else {
      await this.#verify(target, md5);
    }
  }

  /** `Put Block List` at the staging key, then a check of the committed size and MD5. */
  async #commitBlocks(md5: string): Promise<void> {
    const { store, key, signal } = this.#init;
    // A staging blob of the same name can only be a killed run's leftover: replace it.
    const overwrite = this.#init.overwrite || this.#init.hidden;
    const digest = Uint8Array.from(atob(md5), (c) => c.charCodeAt(0));
    const blob = store.blob(key);
    let attempts = 0;
    try {
      await store.request({ op: "commit", key }, (s) => {
        attempts++;
        return blob.commitBlockList(this.#blocks, {
          abortSignal: s,
          // Stored as the blob's Content-MD5 (each block's MD5 was checked on receipt), so
          // list/stat report it for multi-block objects too.
          blobHTTPHeaders: { blobContentMD5: digest },
          ...(overwrite ? {} : { conditions: { ifNoneMatch: "*" } }),
        });
      }, { signal });
    } catch (error) {
      if (
        !(isExists(error) && attempts > 1 && await store.matches(key, { size: this.#size, md5 }))
      ) {
        throw error;
      }
    }
    this.#committedAt = key;
    await this.#verify(key, md5);
  }

  /** Compares the committed blob's size and MD5 with what was sent. */
  async #verify(key: string, md5: string): Promise<void> {
    const { store, signal } = this.#init;
    const meta = await store.head(key, signal);
    if (meta === undefined || meta.size !== this.#size) {
      throw new DataIntegrityError(
        `Azure destination ${store.place.uri}: the committed object '${key}' has ${
          meta === undefined ? "vanished" : `${meta.size} bytes`
        } but ${this.#size} were written; it was deleted, run again`,
        { code: "destination.size_mismatch" },
      );
    }
    if (meta.md5 !== undefined && meta.md5 !== md5) {
      throw this.#mismatch({ op: "commit", key }, md5, meta.md5);
    }
  }

  #mismatch(what: What, sent: string, reported: string): DataIntegrityError {
    return new DataIntegrityError(
      `Azure destination ${this.#init.store.place.uri}: ${what.op} of '${what.key}' was stored ` +
        `with MD5 ${reported} but rivet sent MD5 ${sent}; the object was discarded, run again`,
      { code: "destination.checksum_mismatch" },
    );
  }

  #classify(error: unknown): unknown {
    if (error instanceof RivetError) return error;
    // An abort reason (ours or the destination's) goes back to the caller as it was given.
    const { signal, store } = this.#init;
    if (signal?.aborted && error === signal.reason) return error;
    if (store.isAbortReason(error)) return error;
    return store.fail(error, { op: "upload", key: this.#init.key }, 1);
  }

  async abort(_reason?: unknown): Promise<void> {
    if (this.#state !== "open") return;
    await this.#discard();
  }

  /**
   * Drops everything this upload made: a blob it committed (on a failed commit), and its staged
   * blocks. Uncommitted blocks cannot be deleted one by one; deleting the blob name removes them
   * where no committed blob exists there (Azurite; Azure collects them after 7 days instead).
   */
  async #discard(): Promise<void> {
    this.#state = "aborted";
    this.#init.onDone(this);
    const inflight = this.#inflight;
    this.#inflight = undefined;
    await inflight?.catch(() => {});
    const { store, key } = this.#init;
    const clean = { cleanup: true } as const;
    if (this.#committedAt !== undefined) {
      await store.remove(this.#committedAt, clean).catch(() => {});
      if (this.#committedAt !== key) await store.remove(key, clean).catch(() => {});
    } else if (this.#blocks.length > 0) {
      try {
        const blob = store.blob(key);
        await store.request(
          { op: "stat", key },
          (s) => blob.getProperties({ abortSignal: s }),
          clean,
        );
        // A committed blob is there (not ours): its uncommitted blocks are left to the service.
      } catch (error) {
        if (error instanceof RivetError && error.code === "destination.not_found") {
          await store.remove(key, clean).catch(() => {});
        }
      }
    }
    this.#release();
  }

  #release(): void {
    this.#buffer = undefined;
    this.#spare = undefined;
  }
}
