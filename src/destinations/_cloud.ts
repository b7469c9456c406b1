/**
 * What the three object-store destinations (S3, GCS, Azure) share beyond key rules: their
 * capabilities, the retry loop (attempts, backoff, warning, abort signal) and what counts as a
 * transient failure, the warning sink and the text of a retry warning, the errors for a missing
 * or an existing object, the listing of staging objects, and the all-or-nothing move by copy and
 * delete (none of these stores can rename).
 *
 * What stays in each store, and why: reading an error's HTTP status and code (each SDK shapes
 * its errors differently: `$metadata.httpStatusCode` and `Code` for S3, `statusCode` and
 * `x-ms-error-code` for Azure, `code`/`status`/`response.status` for the Google client and our
 * own `fetch`), the short reason in a retry warning and the checksum-mismatch message (each says
 * what that store reports: an ETag, a service message, a block's MD5).
 *
 * Layer: destinations (private). Imports core/ and _util/ only.
 *
 * @module
 */
import type { DestinationCapabilities, StagingObject } from "../core/destination.ts";
import { PermanentError } from "../core/errors.ts";
import { sleep } from "../_util/abort.ts";
import { finalKeyOfStaging } from "./_keys.ts";

/**
 * What every object store offers: objects become visible on commit, a failed export can run
 * again, a committed object is never replaced, and objects outlive the run.
 */
export const OBJECT_STORE_CAPABILITIES: DestinationCapabilities = {
  persistent: true,
};

/**
 * Deadline of the clean-up requests of an aborted or failed upload (S3, GCS), which run even
 * after Ctrl-C and so cannot use the upload's own signal.
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
 * The backoff of S3 and GCS after attempt `failed` (0-based) failed: the base delay doubled per
 * failure and capped, then stretched by a random factor between 1 and 2, capped again.
 * (Azure's jitter differs: see its store.)
 *
 * @param failed Number of the attempt that failed, 0 for the first.
 * @param policy The delays.
 * @returns Milliseconds to wait before the next attempt.
 *
 * @example
 * ```ts
 * import { DEFAULT_RETRY, growingBackoff } from "./_cloud.ts";
 * const wait = growingBackoff(1, DEFAULT_RETRY); // 200 ms doubled once: 400 to 800 ms
 * if (wait < 400 || wait > 800) throw new Error(String(wait));
 * ```
 */
export function growingBackoff(failed: number, policy: RetryPolicy): number {
  const base = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** failed);
  return Math.min(policy.maxDelayMs, base * (1 + Math.random()));
}

/** How one store runs a request under {@linkcode withRetries}. */
export interface RetryLoop {
  /** Retries after the first attempt. */
  readonly retries: number;
  /**
   * Ends the loop: checked before each attempt and after each failure (its reason is thrown
   * as it is), and it cuts the wait between attempts short.
   */
  readonly signal: AbortSignal | undefined;
  /** Whether a failure may pass on another attempt. */
  transient(error: unknown): boolean;
  /** The error to throw for a failure that is not retried, or after the last attempt. */
  failure(error: unknown, attempts: number): unknown;
  /** Milliseconds to wait after attempt `failed` (0-based) failed. */
  delayMs(failed: number): number;
  /** Reports the retry about to run (1-based) after `delayMs`; the text is the store's. */
  warn(error: unknown, retry: number, delayMs: number): void;
}

/**
 * Runs `attempt` until it succeeds, a failure is not transient, the retries are spent, or the
 * loop's signal aborts. Each retry is announced through `warn` before the wait.
 *
 * @param loop The store's policy, classification and warning.
 * @param attempt One attempt; gets its number, 0 for the first.
 * @returns What the first successful attempt returned.
 * @throws The signal's reason when it aborted; else `loop.failure(error, attempts)`.
 *
 * @example
 * ```ts
 * import { withRetries } from "./_cloud.ts";
 * let calls = 0;
 * const value = await withRetries({
 *   retries: 2,
 *   signal: undefined,
 *   transient: () => true,
 *   failure: (error) => error,
 *   delayMs: () => 1,
 *   warn: () => {},
 * }, () => ++calls < 3 ? Promise.reject(new Error("busy")) : Promise.resolve(calls));
 * if (value !== 3) throw new Error(String(value));
 * ```
 */
export async function withRetries<T>(
  loop: RetryLoop,
  attempt: (n: number) => Promise<T>,
): Promise<T> {
  const { signal } = loop;
  for (let n = 0;; n++) {
    signal?.throwIfAborted();
    try {
      return await attempt(n);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (n >= loop.retries || !loop.transient(error)) throw loop.failure(error, n + 1);
      const wait = loop.delayMs(n);
      loop.warn(error, n + 1, wait);
      await sleep(wait, signal);
    }
  }
}

/**
 * Whether an HTTP status says "try again": any 5xx, 408 Request Timeout, 429 Too Many Requests.
 * (S3 leaves out 501, its answer to a conditional write a store does not support.)
 *
 * @param status The status, or undefined when there was no answer.
 * @returns False for undefined.
 */
export function isTransientStatus(status: number | undefined): boolean {
  return status !== undefined && (status >= 500 || status === 408 || status === 429);
}

/** Error codes of a connection that failed, as every store retries them. */
const COMMON_NETWORK_CODES = [
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "ERR_STREAM_PREMATURE_CLOSE",
];

/**
 * The `code`s of network failures a store retries: the common ones plus the store's own (the
 * codes its SDK's HTTP stack reports, e.g. Azure's `REQUEST_SEND_ERROR`).
 *
 * @param extra The store's additional codes.
 * @returns The set to look `error.code` up in.
 */
export function networkCodes(...extra: string[]): ReadonlySet<string> {
  return new Set([...COMMON_NETWORK_CODES, ...extra]);
}

/**
 * Whether `error` is one of Deno's errors for a connection that broke (reset, refused, aborted,
 * broken pipe, cut short): the failures `fetch` and the Node compatibility layer raise.
 *
 * @param error Any thrown value.
 * @returns True for those Deno error classes.
 */
export function isConnectionError(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionRefused ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.UnexpectedEof;
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
 * `destination.exists`: a write or move refused because an object is at the target.
 *
 * @param subject Who refuses, e.g. `S3 destination` or `Azure destination azure://a/c/`.
 * @param object The object, as the store names it in messages.
 * @returns `<subject> refuses to overwrite the committed object '<object>'; …`.
 */
export function existsError(subject: string, object: string): PermanentError {
  return new PermanentError(
    `${subject} refuses to overwrite the committed object '${object}'; remove it or write to ` +
      "another prefix (rivet never replaces a committed part)",
    { code: "destination.exists" },
  );
}

/**
 * `destination.not_found`: a key that names no object.
 *
 * @param what What is missing, e.g. `GCS has no object 'gs://b/k'`.
 * @param cause The store's answer, when there was one.
 * @returns `<what>; check the key, or list the destination to see what it holds`.
 */
export function notFoundError(what: string, cause?: unknown): PermanentError {
  return new PermanentError(
    `${what}; check the key, or list the destination to see what it holds`,
    { code: "destination.not_found", cause },
  );
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

/**
 * The message of a retry warning: what failed, why, which retry follows and after how long.
 *
 * @param facts Store, operation, target, short reason, the retry about to run (1-based) out of
 *   how many, and the delay before it.
 * @returns E.g. `S3 upload part 2 of 's3://b/k' failed (HTTP 503 SlowDown); retry 1/5 in 230 ms`.
 *
 * @example
 * ```ts
 * import { retryMessage } from "./_cloud.ts";
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

/** The steps of {@linkcode moveByCopy}, each bound to one store. */
export interface MoveSteps {
  /** Server-side copy to the target, refusing to replace an object; verified when it resolves. */
  copy(): Promise<void>;
  /** Deletes the source object (that version only, where the store can say so). */
  removeSource(): Promise<void>;
  /** Whether the source object is still there, asked after its delete failed. */
  sourceExists(): Promise<boolean>;
  /** Deletes the copy again (best-effort clean-up deadline of its own). */
  removeCopy(): Promise<void>;
  /** `s3://…`, `gs://…` or `azure://…` of both keys, for messages. */
  readonly from: string;
  readonly to: string;
}

/**
 * Moves an object by copy and delete so that exactly one of the two names holds it afterwards:
 * when the delete of the source fails and the source is still there, the copy is deleted again
 * and the delete's error is thrown; when the source is gone (the delete took effect but its
 * answer was lost), the move is complete. When neither the check nor the roll-back succeed,
 * the copy is kept (deleting it could lose the only copy) and the error says the object may be
 * under both names. A kill between the copy and the delete leaves both, which is why resumes
 * quarantine into `_quarantine/` (never deleting) and `validate` reports unlisted objects.
 *
 * @param steps The store's operations.
 * @throws The copy's error (nothing changed), or the delete's error after a roll-back.
 * @throws {PermanentError} `destination.move_incomplete` when both names may hold the object.
 */
export async function moveByCopy(steps: MoveSteps): Promise<void> {
  await steps.copy();
  try {
    await steps.removeSource();
    return;
  } catch (error) {
    let present: boolean | undefined;
    try {
      present = await steps.sourceExists();
    } catch {
      present = undefined;
    }
    if (present === false) return;
    if (present === true) {
      try {
        await steps.removeCopy();
      } catch (cleanup) {
        throw incomplete(steps, error, cleanup);
      }
      throw error;
    }
    throw incomplete(steps, error, undefined);
  }
}

function incomplete(steps: MoveSteps, error: unknown, cleanup: unknown): PermanentError {
  const why = messageOf(error);
  const also = cleanup === undefined
    ? ""
    : `, and deleting the copy failed too (${messageOf(cleanup)})`;
  return new PermanentError(
    `moving '${steps.from}' to '${steps.to}' copied it but could not delete the source (${why})` +
      `${also}; the object may now be under both names: delete one of them by hand`,
    { code: "destination.move_incomplete", cause: error },
  );
}

/**
 * The staging objects (`dir/.<name>.tmp`) whose final name starts with `prefix`, found through a
 * store's raw listing (which, unlike `list`, shows staging keys). Only the folder of `prefix`
 * itself is looked at, not its sub-folders.
 *
 * @param prefix Final-key prefix relative to the destination root, e.g. `orders_`.
 * @param listRaw Lists every object whose relative key starts with the given text.
 * @returns Staging key, final key and size of each.
 */
export async function* listStagingWith(
  prefix: string,
  listRaw: (rawPrefix: string) => AsyncIterable<{ key: string; size: number }>,
): AsyncIterable<StagingObject> {
  const slash = prefix.lastIndexOf("/");
  const folder = prefix.slice(0, slash + 1);
  for await (const object of listRaw(`${folder}.${prefix.slice(slash + 1)}`)) {
    if (object.key.indexOf("/", folder.length) >= 0) continue;
    const finalKey = finalKeyOfStaging(object.key);
    if (finalKey?.startsWith(prefix)) yield { key: object.key, finalKey, size: object.size };
  }
}
