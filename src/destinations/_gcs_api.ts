/**
 * The request layer of the GCS destination: the client and the JSON API URLs, the credentials'
 * request headers, `fetch` with a deadline, the retry loop, and the mapping of every failure to
 * a RivetError with a stable code and no secret. Shared by the destination and its uploads.
 *
 * Layer: destinations (private). Imports core/ and _util/ only.
 *
 * @module
 */
import type { Bucket, Storage } from "@google-cloud/storage";
import { type PermanentError, RivetError } from "../core/errors.ts";
import { registerSecret } from "../_util/redact.ts";
import { checkKey } from "./_keys.ts";
import {
  cleanDetail,
  DEFAULT_RETRY,
  type DestinationWarn,
  existsError,
  type FailureKind,
  isNetworkFailure as isNetworkError,
  isTransientStatus,
  messageOf,
  notFoundError,
  type RetryPolicy,
  retryRequest,
  type StoreFacts,
  storeFailure,
} from "./_store_errors.ts";

/**
 * The object name of `key` under `prefix`: the two concatenated verbatim, no `/` added or
 * removed. `prefix: exports/` and `a.parquet` give `exports/a.parquet`; `prefix: exports` gives
 * `exportsa.parquet`.
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
export interface GcsObject {
  readonly name: string;
  readonly size?: string | number;
  readonly md5Hash?: string;
  readonly generation?: string | number;
}

/** A non-success HTTP answer (from `fetch` or from the client's `ApiError`). */
export class HttpStatusError extends Error {
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
export interface Op {
  /** Verb phrase: `upload`, `read`, `list objects under`, … */
  readonly action: string;
  /** The object or prefix concerned, as a full `gs://` URI. */
  readonly target: string;
  /** A 404 can only mean the bucket is missing (uploads, listings). */
  readonly bucketLevel?: boolean;
  readonly direction: "read" | "write";
}

/** Shared by the destination and its uploads: the client, the URLs, retries and errors. */
export class GcsApi implements StoreFacts {
  readonly store = "GCS";
  readonly endpoint = undefined;
  readonly bucketLabel: string;
  readonly bucketHint: string;
  readonly authHint: string;
  readonly storage: Storage;
  readonly bucket: Bucket;
  readonly bucketName: string;
  readonly prefix: string;
  readonly anonymous: boolean;
  readonly jsonBase: string;
  readonly uploadBase: string;
  readonly policy: RetryPolicy;
  readonly chunkSize: number;
  readonly requestTimeoutMs: number;
  readonly warn: DestinationWarn;
  #lastToken: string | undefined;

  constructor(init: {
    storage: Storage;
    bucket: string;
    prefix: string;
    anonymous: boolean;
    retry: Partial<RetryPolicy>;
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
    this.policy = {
      retries: init.retry.retries ?? DEFAULT_RETRY.retries,
      baseDelayMs: init.retry.baseDelayMs ?? DEFAULT_RETRY.baseDelayMs,
      maxDelayMs: init.retry.maxDelayMs ?? DEFAULT_RETRY.maxDelayMs,
    };
    this.chunkSize = init.chunkSize;
    this.requestTimeoutMs = init.requestTimeoutMs;
    this.warn = init.warn;
    this.bucketLabel = `bucket '${init.bucket}'`;
    this.bucketHint = `check that bucket '${init.bucket}' exists (gcloud storage buckets ` +
      `describe gs://${init.bucket}) and that destination.bucket is spelled right`;
    const keys = init.anonymous
      ? "destination.allow_anonymous (the store wants credentials: remove it and set " +
        "destination.credentials_file or GOOGLE_APPLICATION_CREDENTIALS)"
      : "destination.credentials_file, GOOGLE_APPLICATION_CREDENTIALS or the gcloud " +
        "application-default login";
    this.authHint = `${keys}, and that the account holds roles/storage.objectAdmin (or ` +
      `objectCreator plus objectViewer) on bucket '${init.bucket}' (docs/cloud-permissions.md ` +
      "lists the roles each command needs)";
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
   * Runs `attempt` under the kit's retry loop for transient failures (5xx, 408, 429, a network
   * error). RivetErrors pass through unretried.
   */
  retry<T>(
    op: Op,
    attempt: (n: number) => Promise<T>,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    return retryRequest(this, { action: op.action, target: op.target, signal }, {
      transient: isTransient,
      failure: (error, attempts) => this.failure(error, op, attempts),
      reason: reasonOf,
    }, attempt);
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
   * `overwrite`; a retry that meets an object with `expectMd5` there takes it for the copy
   * its lost first attempt made. The kit checks the copy.
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
    return copied;
  }

  /** Maps any failure of `op` to a RivetError with a stable code and no secret. */
  failure(error: unknown, op: Op, attempts: number): RivetError {
    if (error instanceof RivetError) return error;
    const status = error instanceof HttpStatusError ? error.status : statusOf(error);
    let kind: FailureKind;
    let reason = reasonOf(error);
    if (error instanceof CredentialsError) {
      kind = error.transient ? "unavailable" : "auth_failed";
      reason = `the credentials could not be loaded: ${cleanDetail(messageOf(error))}`;
    } else if (status === 412) {
      // Every precondition rivet sends is "must not exist" (or "still this generation").
      kind = "exists";
    } else if (status === 401 || status === 403) {
      kind = "auth_failed";
    } else if (status === 404) {
      // The service says "The specified bucket does not exist." for a bucket and "No such
      // object: b/o" for an object; an upload or a listing can only miss the bucket.
      const detail = messageOf(error);
      const object = /^no such object/i.test(detail);
      kind = !object && (op.bucketLevel === true || /bucket does not exist/i.test(detail))
        ? "bucket_not_found"
        : "not_found";
    } else {
      kind = isTransient(error) ? "unavailable" : "request_failed";
    }
    return storeFailure(this, kind, op, { error, reason, attempts });
  }
}

/** `op` for a call on one object, where a 404 may mean that object is absent. */
function objectLevel(op: Op): Op {
  return op.bucketLevel === true ? { ...op, bucketLevel: false } : op;
}

/** `name` without the destination's `prefix`: the key it stands for. */
export function relative(prefix: string, name: string): string {
  return name.startsWith(prefix) ? name.slice(prefix.length) : name;
}

/** Discards a response body that is not needed, so its connection is released. */
export async function drain(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => {});
}

/** The JSON body of a response; a body cut short is a network failure (retried). */
export async function readJson<T>(res: Response): Promise<T> {
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
export async function statusError(res: Response): Promise<HttpStatusError> {
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

/**
 * HTTP status of an error from fetch, the client (`ApiError.code`) or gaxios: the shapes of the
 * Google client, hence per store.
 */
function statusOf(error: unknown): number | undefined {
  if (error instanceof HttpStatusError) return error.status;
  const e = error as { code?: unknown; status?: unknown; response?: { status?: unknown } } | null;
  for (const value of [e?.code, e?.status, e?.response?.status]) {
    if (typeof value === "number" && value >= 100 && value < 600) return value;
  }
  return undefined;
}

/** A failure of the connection itself: ours (`NetworkError`) or the kit's list. */
function isNetworkFailure(error: unknown): boolean {
  return error instanceof NetworkError || isNetworkError(error);
}

/** A short account of a failed request for a retry warning, without secrets or query strings. */
export function reasonOf(error: unknown): string {
  const status = error instanceof HttpStatusError ? error.status : statusOf(error);
  const detail = cleanDetail(messageOf(error)).slice(0, 200);
  return status === undefined ? detail : `HTTP ${status}: ${detail}`;
}

function isTransient(error: unknown): boolean {
  if (error instanceof CredentialsError) return error.transient;
  return isTransientStatus(statusOf(error)) || isNetworkFailure(error);
}

/** `destination.exists` for the object at `target` (a `gs://` URI). */
export function exists(target: string): PermanentError {
  return existsError("GCS", target);
}

/** `destination.not_found` for the object at `target` (a `gs://` URI). */
export function notFound(target: string, cause?: unknown): PermanentError {
  return notFoundError("GCS", target, cause);
}
