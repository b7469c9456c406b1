/**
 * The failure side of the object-store kit: the retry of one request (policy, backoff, the
 * warning every store prints the same way), what counts as transient (HTTP statuses, the one
 * list of network error codes), and the messages of every error a store reports, each with
 * its stable code and the fix.
 *
 * What each driver keeps: reading its SDK's error shape (a status and a service code out of
 * `$metadata.httpStatusCode`/`Code` for S3, `statusCode`/`x-ms-error-code` for Azure,
 * `code`/`status`/`response.status` for the Google client and `fetch`) and deciding which of
 * the kinds below an answer is; the kit words the error.
 *
 * Layer: destinations (private). Imports core/ and _util/ only.
 *
 * @module
 */
import { DataIntegrityError, PermanentError, RivetError, TransientError } from "../core/errors.ts";
import { redact } from "../_util/redact.ts";
import { backoffMs, withRetries } from "../_util/retry.ts";

/**
 * Deadline of the clean-up requests of an aborted or failed upload, which run even after
 * Ctrl-C and so cannot use the upload's own signal.
 */
export const CLEANUP_TIMEOUT_MS = 30_000;

/** A retry policy: how many retries follow the first attempt, and the bounds of the backoff. */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly retries: number;
  /** Backoff before the first retry; it doubles per retry. */
  readonly baseDelayMs: number;
  /** Largest backoff. */
  readonly maxDelayMs: number;
}

/** The policy of every store unless its options say otherwise: 5 retries, 200 ms up to 10 s. */
export const DEFAULT_RETRY: RetryPolicy = { retries: 5, baseDelayMs: 200, maxDelayMs: 10_000 };

/**
 * The backoff of every store after attempt `failed` (0-based) failed: the base delay doubled
 * per failure and capped, then stretched by a random factor between 1 and 2, capped again.
 *
 * @param failed Number of the attempt that failed, 0 for the first.
 * @param policy The delays.
 * @returns Milliseconds to wait before the next attempt.
 *
 * @example
 * ```ts
 * import { DEFAULT_RETRY, storeBackoffMs } from "./_store_errors.ts";
 * const wait = storeBackoffMs(1, DEFAULT_RETRY); // 200 ms doubled once: 400 to 800 ms
 * if (wait < 400 || wait > 800) throw new Error(String(wait));
 * ```
 */
export function storeBackoffMs(failed: number, policy: RetryPolicy): number {
  return backoffMs(failed, {
    baseMs: policy.baseDelayMs,
    maxMs: policy.maxDelayMs,
    jitter: [1, 2],
  });
}

/**
 * Receives a destination's warnings: a message without secrets that does not name the export
 * (the engine adds it), and a stable code: `destination.retrying` for a request about to be
 * retried, `destination.staging_left` for a staging object that could not be deleted, else
 * `destination.warning`.
 */
export type DestinationWarn = (message: string, code?: string) => void;

/** The default sink: stderr, as a line. */
export const consoleWarn: DestinationWarn = (message) => console.warn(message);

/** What the kit needs of a store to retry its requests and word its errors. */
export interface StoreFacts {
  /** `S3`, `GCS` or `Azure`. */
  readonly store: string;
  readonly policy: RetryPolicy;
  readonly warn: DestinationWarn;
  /** `bucket 'b'`, `container 'c' in storage account 'a'`. */
  readonly bucketLabel: string;
  /** How to create or name the bucket right. */
  readonly bucketHint: string;
  /** What to check when the store refuses the credentials. */
  readonly authHint: string;
  /** Printable endpoint (no query, no userinfo), or undefined for the store's default. */
  readonly endpoint: string | undefined;
}

/** One request, for retries and messages. */
export interface StoreRequest {
  /** Verb phrase: `upload part 2 of`, `read`, `list objects under`, … */
  readonly action: string;
  /** The object or prefix concerned, as a full URI (`s3://b/k`, `gs://…`, `azure://…`). */
  readonly target: string;
  readonly signal: AbortSignal | undefined;
}

/** How a driver reads a failure of one of its requests. */
export interface FailureReader {
  /** Whether another attempt may pass. */
  transient(error: unknown): boolean;
  /** The RivetError of a failure that is not retried, or of the last attempt. */
  failure(error: unknown, attempts: number): RivetError;
  /** A short account for a retry warning: status and code, or the network error. */
  reason(error: unknown): string;
}

/**
 * Runs one request of a store under its retry policy: transient failures are retried with
 * {@linkcode storeBackoffMs}, each retry announced as a `destination.retrying` warning worded
 * by {@linkcode retryMessage}; the request's signal ends the loop with its reason.
 *
 * @param facts The store.
 * @param request What is being done, to what, and the signal.
 * @param reader The driver's reading of its failures.
 * @param attempt One attempt; gets its number, 0 for the first.
 * @returns What the first successful attempt returned.
 */
export function retryRequest<T>(
  facts: StoreFacts,
  request: StoreRequest,
  reader: FailureReader,
  attempt: (n: number) => Promise<T>,
): Promise<T> {
  const { policy } = facts;
  return withRetries({
    retries: policy.retries,
    signal: request.signal,
    transient: (error) => !(error instanceof RivetError) && reader.transient(error),
    failure: (error, attempts) => reader.failure(error, attempts),
    delayMs: (failed) => storeBackoffMs(failed, policy),
    warn: (error, retry, delayMs) =>
      facts.warn(
        retryMessage({
          store: facts.store,
          action: request.action,
          target: request.target,
          reason: reader.reason(error),
          retry,
          of: policy.retries,
          delayMs,
        }),
        "destination.retrying",
      ),
  }, attempt);
}

/**
 * The message of a retry warning: what failed, why, which retry follows and after how long.
 *
 * @param facts Store, operation, target, short reason, the retry about to run (1-based) out of
 *   how many, and the delay before it.
 * @returns E.g. `S3 upload part 2 of 's3://b/k' failed (HTTP 503 SlowDown); retry 1/5 in 230 ms`.
 *
 * @example
 * ```ts
 * import { retryMessage } from "./_store_errors.ts";
 * const text = retryMessage({ store: "GCS", action: "upload", target: "gs://b/a.csv",
 *   reason: "HTTP 503", retry: 1, of: 5, delayMs: 212.7 });
 * if (text !== "GCS upload 'gs://b/a.csv' failed (HTTP 503); retry 1/5 in 213 ms") throw new Error(text);
 * ```
 */
export function retryMessage(facts: {
  store: string;
  action: string;
  target: string;
  reason: string;
  retry: number;
  of: number;
  delayMs: number;
}): string {
  return `${facts.store} ${facts.action} '${facts.target}' failed (${facts.reason}); retry ` +
    `${facts.retry}/${facts.of} in ${Math.round(facts.delayMs)} ms`;
}

/**
 * Whether an HTTP status says "try again": any 5xx, 408 Request Timeout, 429 Too Many Requests.
 *
 * @param status The status, or undefined when there was no answer.
 * @returns False for undefined.
 */
export function isTransientStatus(status: number | undefined): boolean {
  return status !== undefined && (status >= 500 || status === 408 || status === 429);
}

/**
 * Error codes of a connection that failed, as the HTTP stacks of the three SDKs and Deno's
 * `fetch` report them: one list, so every store retries the same network failures.
 */
export const NETWORK_CODES: ReadonlySet<string> = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "ESOCKETTIMEDOUT",
  "EAI_AGAIN",
  "ENOTFOUND",
  "ENETDOWN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "ERR_STREAM_PREMATURE_CLOSE",
  "UND_ERR_SOCKET",
  "REQUEST_SEND_ERROR",
]);

/**
 * Whether `error` (or an error in its `cause` chain) is a connection that broke: a code of
 * {@linkcode NETWORK_CODES}, one of Deno's connection errors (reset, refused, aborted, broken
 * pipe, cut short, timed out), node-fetch's `system`/`request-timeout` types, or the message of
 * a socket closed under the request.
 *
 * @param error Any thrown value.
 * @returns True for a network failure.
 */
export function isNetworkFailure(error: unknown, depth = 0): boolean {
  if (
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionRefused ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.TimedOut
  ) return true;
  const e = error as { code?: unknown; type?: unknown; message?: unknown; cause?: unknown } | null;
  if (typeof e?.code === "string" && NETWORK_CODES.has(e.code)) return true;
  if (e?.type === "system" || e?.type === "request-timeout") return true;
  if (
    typeof e?.message === "string" &&
    /socket hang up|premature close|connection (reset|closed|refused)|other side closed/i.test(
      e.message,
    )
  ) return true;
  return depth < 5 && e?.cause !== undefined && e.cause !== error &&
    isNetworkFailure(e.cause, depth + 1);
}

/**
 * The message of any thrown value.
 *
 * @param error An Error or anything else.
 * @returns Its `message`, or its string form.
 */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A message fit for an error or a warning: secrets redacted, the query strings of URLs
 * (signed or session URLs are capabilities) dropped, at most 300 characters.
 *
 * @param text A store's or a network stack's message.
 * @returns The cleaned text.
 */
export function cleanDetail(text: string): string {
  const stripped = redact(text).replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s?'"]*)\?[^\s'"]*/gi, "$1");
  return stripped.length > 300 ? `${stripped.slice(0, 300)}…` : stripped;
}

/**
 * `destination.exists`: a write or move refused because an object is at the target.
 *
 * @param store `S3`, `GCS` or `Azure`.
 * @param target The object's full URI.
 * @returns `<store> destination refuses to overwrite the committed object '<target>'; …`.
 */
export function existsError(store: string, target: string, cause?: unknown): PermanentError {
  return new PermanentError(
    `${store} destination refuses to overwrite the committed object '${target}'; remove it or ` +
      "write to another prefix (rivet never replaces a committed part)",
    { code: "destination.exists", ...(cause === undefined ? {} : { cause }) },
  );
}

/**
 * `destination.not_found`: a key that names no object.
 *
 * @param store `S3`, `GCS` or `Azure`.
 * @param target The full URI of the missing object.
 * @param cause The store's answer, when there was one.
 * @returns `<store> destination has no object '<target>'; check the key, …`.
 */
export function notFoundError(store: string, target: string, cause?: unknown): PermanentError {
  return new PermanentError(
    `${store} destination has no object '${target}'; check the key, or list the destination ` +
      "to see what it holds",
    { code: "destination.not_found", ...(cause === undefined ? {} : { cause }) },
  );
}

/**
 * `destination.checksum_mismatch`: the store kept (or received) other bytes than rivet sent.
 *
 * @param store `S3`, `GCS` or `Azure`.
 * @param target The object's full URI.
 * @param detail What each side says: an ETag, an MD5, a size.
 * @returns A DataIntegrityError (exit 3).
 */
export function checksumMismatch(
  store: string,
  target: string,
  detail: string,
  cause?: unknown,
): DataIntegrityError {
  return new DataIntegrityError(
    `${store} destination checksum mismatch for '${target}' (${detail}): the store did not ` +
      "keep the bytes rivet sent, so the object was discarded; re-run the export and check " +
      "the network path to the store",
    { code: "destination.checksum_mismatch", ...(cause === undefined ? {} : { cause }) },
  );
}

/** The kinds of failure a driver tells apart; the kit words each. */
export type FailureKind =
  | "bucket_not_found"
  | "not_found"
  | "auth_failed"
  | "exists"
  | "checksum_mismatch"
  | "unavailable"
  | "request_failed";

/**
 * The RivetError of a failed request, worded the same way for every store.
 *
 * @param facts The store.
 * @param kind What the driver made of the answer.
 * @param request The request.
 * @param failure The error, its short account (status and code, or the network error: no
 *   secret, no query string) and the number of attempts made.
 * @returns The error with its stable code (`destination.<kind>`) and, where there is one, the
 *   hint of the fix.
 */
export function storeFailure(
  facts: StoreFacts,
  kind: FailureKind,
  request: Pick<StoreRequest, "action" | "target">,
  failure: { readonly error: unknown; readonly reason: string; readonly attempts: number },
): RivetError {
  const { store } = facts;
  const { action, target } = request;
  const { error: cause, reason } = failure;
  switch (kind) {
    case "bucket_not_found":
      return new PermanentError(
        `${store} ${facts.bucketLabel} does not exist or is not visible to these credentials ` +
          `(${action} '${target}'); create the ${facts.bucketLabel.split(" ")[0]} or fix the ` +
          "destination's bucket: key",
        { code: "destination.bucket_not_found", cause, hint: facts.bucketHint },
      );
    case "not_found":
      return notFoundError(store, target, cause);
    case "auth_failed":
      return new PermanentError(
        `${store} destination was refused access to ${action} '${target}' (${reason}); ` +
          `check ${facts.authHint}`,
        { code: "destination.auth_failed", cause, hint: `check ${facts.authHint}` },
      );
    case "exists":
      return existsError(store, target, cause);
    case "checksum_mismatch":
      return checksumMismatch(store, target, `the store refused the bytes: ${reason}`, cause);
    case "unavailable": {
      const at = facts.endpoint === undefined ? "" : ` at ${facts.endpoint}`;
      const attempts = failure.attempts;
      return new TransientError(
        `${store} store${at} is unavailable: ${action} '${target}' failed after ${attempts} ` +
          `attempt${attempts === 1 ? "" : "s"} (${reason}); run again later (the export is ` +
          "retry-safe), or check the endpoint and the network",
        { code: "destination.unavailable", cause },
      );
    }
    case "request_failed":
      return new PermanentError(
        `${store} destination could not ${action} '${target}' (${reason}); check the ` +
          "destination settings (bucket, prefix, endpoint) and the object name",
        { code: "destination.request_failed", cause },
      );
  }
}
