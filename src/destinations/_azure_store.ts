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
import { PermanentError, RivetError } from "../core/errors.ts";
import { redact } from "../_util/redact.ts";
import { checkKey } from "./_keys.ts";
import type { StoredObject } from "./_object_store.ts";
import {
  CLEANUP_TIMEOUT_MS,
  type DestinationWarn,
  existsError,
  type FailureKind,
  isNetworkFailure,
  isTransientStatus,
  messageOf,
  notFoundError,
  type RetryPolicy,
  retryRequest,
  type StoreFacts,
  storeFailure,
} from "./_store_errors.ts";
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
  /** Best-effort clean-up: not under the destination's signal, under a deadline of its own. */
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
export class Store implements StoreFacts {
  readonly store = "Azure";
  readonly bucketLabel: string;
  readonly bucketHint: string;
  readonly authHint: string;
  readonly endpoint: string;
  readonly policy: Retry;
  readonly client: ContainerClient;
  readonly place: Place;
  readonly retry: Retry;
  readonly warn: DestinationWarn;
  readonly #signal: AbortSignal | undefined;

  constructor(init: StoreInit) {
    this.client = init.client;
    this.place = init.place;
    this.retry = this.policy = init.retry;
    this.warn = init.warn;
    this.#signal = init.signal;
    const { place } = init;
    this.bucketLabel = `container '${place.container}' in storage account '${place.account}'`;
    this.bucketHint = `az storage container create --name ${place.container} --account-name ` +
      place.account;
    this.authHint = place.authHint;
    this.endpoint = place.endpoint;
  }

  /** Full URI of a key, for messages. */
  where(key: string): string {
    return `${this.place.uri}${key}`;
  }

  /** The destination's signal: it aborts every request. */
  get signal(): AbortSignal | undefined {
    return this.#signal;
  }

  /** Whether `error` is the reason the destination's signal aborted with. */
  isAbortReason(error: unknown): boolean {
    return this.#signal?.aborted === true && error === this.#signal.reason;
  }

  blob(key: string): BlockBlobClient {
    return this.client.getBlockBlobClient(azureBlobName(this.place.prefix, key));
  }

  /**
   * Runs one request under the kit's retry loop, each attempt with a deadline of its own. The
   * destination's and the caller's signals abort it.
   *
   * @throws {RivetError} The classified failure; the abort reason when a signal aborted.
   */
  request<T>(
    what: What,
    send: (signal: AbortSignal) => Promise<T>,
    options: RequestOptions = {},
  ): Promise<T> {
    const signals = [
      options.cleanup ? AbortSignal.timeout(CLEANUP_TIMEOUT_MS) : this.#signal,
      options.signal,
    ].filter((s): s is AbortSignal => s !== undefined);
    const outer = signals.length === 0
      ? undefined
      : signals.length === 1
      ? signals[0]
      : AbortSignal.any(signals);
    return retryRequest(this, { action: what.op, target: this.where(what.key), signal: outer }, {
      transient: (error) => error instanceof AttemptTimedOut || isTransient(error),
      failure: (error, attempts) =>
        error instanceof AttemptTimedOut
          ? this.fail(error.error, what, attempts, true)
          : this.fail(error, what, attempts),
      reason: (error) => error instanceof AttemptTimedOut ? this.#noAnswer() : describe(error),
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

  #noAnswer(): string {
    return `no answer in ${this.retry.attemptTimeoutMs} ms`;
  }

  /** Properties of the blob at `key`, or undefined when it has none committed. */
  async head(key: string, signal?: AbortSignal): Promise<StoredObject | undefined> {
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
   * Server-side copy of `from` to `to` (`If-None-Match: *` unless `overwrite`); a retry that
   * finds the copy its lost first attempt made (the expected size and MD5) accepts it. The kit
   * checks the copy.
   */
  async copy(
    from: string,
    to: string,
    options: {
      readonly overwrite: boolean;
      readonly expect: { readonly size: number; readonly md5?: string | undefined };
      readonly signal?: AbortSignal | undefined;
    },
  ): Promise<void> {
    // The source URL carries the SAS token when there is one: the copy is authorised with it.
    const source = this.blob(from).url;
    const target = this.blob(to);
    let attempts = 0;
    try {
      await this.request({ op: "copy to", key: to }, async (signal) => {
        attempts++;
        const poller = await target.beginCopyFromURL(source, {
          abortSignal: signal,
          intervalInMs: 200,
          ...(options.overwrite ? {} : { conditions: { ifNoneMatch: "*" } }),
        });
        const result = await poller.pollUntilDone();
        if (result.copyStatus !== undefined && result.copyStatus !== "success") {
          throw new PermanentError(
            `Azure copy of '${this.where(from)}' to '${this.where(to)}' ended with status ` +
              `'${result.copyStatus}'; run again, or copy the blob by hand`,
            { code: "destination.copy_failed" },
          );
        }
      }, { signal: options.signal });
    } catch (error) {
      if (!(isExists(error) && attempts > 1 && await this.matches(to, options.expect))) {
        throw error;
      }
    }
  }

  /** Whether the committed blob at `key` has exactly this size and MD5. */
  async matches(
    key: string,
    expect: { readonly size: number; readonly md5?: string | undefined },
  ): Promise<boolean> {
    const meta = await this.head(key).catch(() => undefined);
    if (meta === undefined || meta.size !== expect.size) return false;
    return expect.md5 === undefined || meta.md5 === undefined || meta.md5 === expect.md5;
  }

  notFound(key: string): PermanentError {
    return notFoundError("Azure", this.where(key));
  }

  exists(key: string): PermanentError {
    return existsError("Azure", this.where(key));
  }

  /**
   * Classifies a failure into a RivetError with a stable code and a message free of secrets.
   *
   * @param attempts How many attempts were made (for `destination.unavailable`).
   */
  fail(error: unknown, what: What, attempts: number, timedOut = false): RivetError {
    if (error instanceof RivetError) return error;
    const status = statusOf(error);
    const code = errorCodeOf(error);
    let kind: FailureKind;
    if (status === 404 && code === "ContainerNotFound") kind = "bucket_not_found";
    else if (status === 404 && (code === "BlobNotFound" || code === undefined)) kind = "not_found";
    else if (status === 401 || status === 403 || (status === 404 && this.place.anonymous)) {
      kind = "auth_failed";
    } else if (
      (status === 409 || status === 412) &&
      (code === "BlobAlreadyExists" || code === "ConditionNotMet" || code === undefined)
    ) kind = "exists";
    else if (status === 400 && (code === "Md5Mismatch" || /md5/i.test(messageOf(error)))) {
      kind = "checksum_mismatch";
    } else kind = timedOut || isTransient(error) ? "unavailable" : "request_failed";
    return storeFailure(this, kind, { action: what.op, target: this.where(what.key) }, {
      error,
      reason: timedOut ? this.#noAnswer() : describe(error),
      attempts,
    });
  }
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
 * Whether another attempt may pass: a transient HTTP status, else (status 0 or none: no answer)
 * a network failure or any `RestError` without a status.
 */
function isTransient(error: unknown): boolean {
  const status = statusOf(error);
  if (status !== undefined && status !== 0) return isTransientStatus(status);
  const code = errorCodeOf(error);
  if (isNetworkFailure(error) || isNetworkFailure({ code })) return true;
  return (error as { name?: unknown } | null)?.name === "RestError"; // never got an answer
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
