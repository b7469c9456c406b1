/**
 * The request layer of the Azure destination: `Store` wraps the container client with a
 * per-attempt timeout, retries with jittered backoff, warnings, abort signals, and the mapping of
 * every failure to a RivetError with a stable code and no secret; on top of it `head`, `remove`
 * and a verified server-side `copy`. Shared by the destination and its uploads.
 *
 * Layer: destinations (private). Imports core/ and _util/ only.
 *
 * @module
 */
import type { BlockBlobClient, ContainerClient } from "@azure/storage-blob";
import type { ObjectMeta } from "../core/destination.ts";
import { DataIntegrityError, PermanentError, RivetError, TransientError } from "../core/errors.ts";
import { redact } from "../_util/redact.ts";
import { checkKey } from "./_keys.ts";
import {
  type DestinationWarn,
  existsError,
  isConnectionError,
  isTransientStatus,
  messageOf,
  networkCodes,
  notFoundError,
  type RetryPolicy,
  withRetries,
} from "./_cloud.ts";
import type { Place } from "./_azure_auth.ts";

/**
 * The blob name of a key: the destination's `prefix` and the key concatenated verbatim, with no
 * `/` added: `exports/` + `a.parquet` is `exports/a.parquet`, while `exports` + `a.parquet` is
 * `exportsa.parquet`.
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

/** Resolved request policy: retries, backoff, and the deadline of one attempt. */
export interface Retry extends RetryPolicy {
  readonly attemptTimeoutMs: number;
}

/** Base64 of raw bytes (an MD5 as the service reports it). */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** Whether two byte arrays hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What a request does, for messages. */
export interface What {
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
export class Store {
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
  request<T>(
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
    const noAnswer = `no answer in ${this.retry.attemptTimeoutMs} ms`;
    return withRetries({
      retries,
      signal: outer,
      transient: (error) => error instanceof AttemptTimedOut || isTransient(error),
      failure: (error, attempts) =>
        error instanceof AttemptTimedOut
          ? this.fail(error.error, what, attempts, true)
          : this.fail(error, what, attempts),
      delayMs: (failed) => backoff(failed, this.retry),
      warn: (error, retry, delay) => {
        if (options.cleanup) return;
        this.warn(
          `Azure ${what.op} of '${what.key}' in ${this.place.uri} failed (${
            error instanceof AttemptTimedOut ? noAnswer : describe(error)
          }); retry ${retry}/${retries} in ${delay} ms`,
          "destination.retrying",
        );
      },
    }, async () => {
      const timeout = new AbortController();
      const timer = setTimeout(() => timeout.abort(), this.retry.attemptTimeoutMs);
      const signal = outer === undefined
        ? timeout.signal
        : AbortSignal.any([outer, timeout.signal]);
      try {
        return await send(signal);
      } catch (error) {
        throw timeout.signal.aborted ? new AttemptTimedOut(error) : error;
      } finally {
        clearTimeout(timer);
      }
    });
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
    return notFoundError(`Azure destination ${this.place.uri} has no object at key '${key}'`);
  }

  exists(key: string): PermanentError {
    return existsError(`Azure destination ${this.place.uri}`, key);
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

/** Whether a classified failure says the blob is already there. */
export function isExists(error: unknown): boolean {
  return error instanceof RivetError && error.code === "destination.exists";
}

/** An attempt that got no answer before its deadline (`Retry.attemptTimeoutMs`). */
class AttemptTimedOut {
  constructor(readonly error: unknown) {}
}

/** The HTTP status of an SDK error (`RestError.statusCode`: the Azure SDK's shape). */
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

/**
 * Network `code`s retried besides the common ones: the Azure pipeline's `REQUEST_SEND_ERROR` (a
 * request that could not be sent), `ESOCKETTIMEDOUT` and undici's `UND_ERR_SOCKET`. The extras
 * of the three stores differ; each keeps the codes it always retried, so no store retries a
 * failure it did not retry before.
 */
const NETWORK_CODES = networkCodes("REQUEST_SEND_ERROR", "ESOCKETTIMEDOUT", "UND_ERR_SOCKET");

/**
 * Whether another attempt may pass: a transient HTTP status, else (status 0 or none: no answer)
 * a network code, any `RestError` without a status, a broken connection, or the message of one.
 */
function isTransient(error: unknown): boolean {
  const status = statusOf(error);
  if (status !== undefined && status !== 0) return isTransientStatus(status);
  const code = errorCodeOf(error);
  if (code !== undefined && NETWORK_CODES.has(code)) return true;
  const name = (error as { name?: unknown } | null)?.name;
  if (name === "RestError") return true; // no HTTP status: the request never got an answer
  return isConnectionError(error) ||
    /socket hang up|connection (reset|closed|refused)|premature close|other side closed/i.test(
      messageOf(error),
    );
}

/**
 * `HTTP 503 ServerBusy`, or the network error's code and first line, without query strings: the
 * Azure service's error code is the useful part of its answers (GCS quotes the service's
 * message, S3 the error name), hence a reason per store.
 */
function describe(error: unknown): string {
  const status = statusOf(error);
  const code = errorCodeOf(error);
  if (status !== undefined && status !== 0) {
    return `HTTP ${status}${code === undefined ? "" : ` ${code}`}`;
  }
  const line = messageOf(error).split("\n")[0]!.replace(/\?[^\s'"]*/g, "?…").slice(0, 200);
  return redact(code === undefined ? line : `${code}: ${line}`);
}

/**
 * Azure's backoff after attempt `attempt` (0-based) failed: the base delay doubled per failure
 * and capped, then a random point between its half and all of it, in whole milliseconds. S3 and
 * GCS wait between that delay and twice it (`growingBackoff`); the two are kept apart because
 * merging them would change one side's retry delays.
 */
function backoff(attempt: number, retry: Retry): number {
  const ceiling = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** attempt);
  return Math.round(ceiling / 2 + Math.random() * ceiling / 2);
}
