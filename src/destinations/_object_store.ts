/**
 * The object-store kit: everything S3, GCS and Azure do the same way, written once over an
 * {@linkcode ObjectStoreDriver} that offers the few calls that differ (head, raw listing,
 * read, server-side copy, delete, and the part-by-part upload of one object).
 *
 * What the kit owns: key checks; listing committed objects apart from staging objects
 * (`.<name>.tmp`) and clearing those; the upload state machine (bytes buffered in parts, at
 * most one part in flight while the next fills, nothing visible before `commit()`, a hidden
 * staging name for a provisional upload, the commit under another name by copy and delete,
 * abort and clean-up); the all-or-nothing move; and, in `_store_errors.ts`, the retry loop and
 * the wording of every error.
 *
 * Layer: destinations (private). Imports core/ and _util/ only.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, type Hash } from "node:crypto";
import type {
  CreateOptions,
  Destination,
  DestinationCapabilities,
  ObjectMeta,
  StagingObject,
  Upload,
} from "../core/destination.ts";
import { PermanentError } from "../core/errors.ts";
import type { SignalOptions } from "../core/spec.ts";
import { crashPoint } from "../_util/test_hook.ts";
import {
  checkKey,
  checkStagingKey,
  finalKeyOfStaging,
  isKey,
  isStagingKey,
  stagingKeyOf,
} from "./_keys.ts";
import {
  checksumMismatch,
  CLEANUP_TIMEOUT_MS,
  type DestinationWarn,
  existsError,
  messageOf,
  notFoundError,
} from "./_store_errors.ts";
import { UploadShell } from "./_upload.ts";

/**
 * What every object store offers: objects outlive the run (a manifest, `_SUCCESS`, listings).
 */
export const OBJECT_STORE_CAPABILITIES: DestinationCapabilities = { persistent: true };

/** An object as a store reports it: its metadata and, where the store has one, its version. */
export interface StoredObject extends ObjectMeta {
  /** GCS generation; deletes and copies can be limited to it. */
  readonly version?: string;
}

/** What an upload sent, to check what the store kept against it. */
export interface Sent {
  readonly size: number;
  /** MD5 of the whole object, raw. */
  readonly md5: Uint8Array;
}

/** One part of an object: its number (1-based), where it starts, its bytes. */
export interface Part {
  readonly n: number;
  readonly offset: number;
  readonly bytes: Uint8Array;
}

/** An object being sent part by part (a multipart upload, a resumable session, staged blocks). */
export interface PartSession {
  /** Sends an intermediate part; the kit keeps at most one in flight. */
  putPart(part: Part, signal: AbortSignal): Promise<void>;
  /**
   * Sends the last part (never empty) and makes the object visible at the session's key,
   * refusing to replace an object there when the session was started `conditional`. Verifies
   * what the store kept against `sent` (a mismatch deletes it and throws).
   */
  complete(last: Part, sent: Sent, signal: AbortSignal): Promise<StoredObject>;
  /** Discards what was sent; best effort, under its own clean-up deadline. */
  cancel(): Promise<void>;
}

/** The calls of one store that the kit builds a destination from. Keys are already checked. */
export interface ObjectStoreDriver {
  /** `S3`, `GCS` or `Azure`, for messages. */
  readonly store: string;
  /** Root URI: `s3://bucket/prefix`, `gs://…`, `azure://account/container/prefix`. */
  readonly uri: string;
  readonly warn: DestinationWarn;
  /** Size of part `n` (1-based) of an upload. */
  partSize(n: number): number;
  /** Every object whose key starts with `prefix`, staging keys included, valid keys only. */
  listRaw(prefix: string, signal: AbortSignal | undefined): AsyncIterable<ObjectMeta>;
  /** The committed object at `key`, or undefined when there is none. */
  head(key: string, signal: AbortSignal | undefined): Promise<StoredObject | undefined>;
  /** The bytes of the committed object at `key` (`destination.not_found` when absent). */
  read(key: string, signal: AbortSignal | undefined): Promise<ReadableStream<Uint8Array>>;
  /**
   * Server-side copy, refusing to replace an object at `to` unless `overwrite`; a retry that
   * meets the copy its lost first attempt made accepts it. Resolves with the copy when the
   * answer describes it.
   */
  copy(
    from: string,
    to: string,
    options: {
      readonly overwrite: boolean;
      /** Size of the source (S3 copies objects over 5 GiB range by range). */
      readonly size: number;
      /** MD5 of the source, where known: what a lost first attempt's copy has. */
      readonly md5: string | undefined;
      readonly signal: AbortSignal | undefined;
    },
  ): Promise<StoredObject | undefined>;
  /** Deletes the object at `key` (only that `version`, when given); absent is no error. */
  delete(
    key: string,
    options: { readonly version?: string | undefined; readonly signal: AbortSignal | undefined },
  ): Promise<void>;
  /**
   * One request that writes a whole small object at `key` (conditional: refusing to replace
   * one), verified against `sent` like {@linkcode PartSession.complete}.
   */
  putSingle(
    key: string,
    bytes: Uint8Array,
    sent: Sent,
    options: { readonly conditional: boolean; readonly signal: AbortSignal },
  ): Promise<StoredObject>;
  /** Opens the part-by-part upload of a large object at `key`. */
  startParts(
    key: string,
    options: { readonly conditional: boolean; readonly signal: AbortSignal },
  ): Promise<PartSession>;
  /** Releases the client (sockets, timers). */
  close?(): void;
  /** Aborts every request of the destination, uploads included (Azure's `signal` option). */
  readonly signal?: AbortSignal | undefined;
}

/** One signal that aborts when any of `signals` does; undefined when there is none. */
function anyOf(signals: readonly (AbortSignal | undefined)[]): AbortSignal | undefined {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  return present.length <= 1 ? present[0] : AbortSignal.any(present);
}

/** One page of a store's listing: the objects by their full name, and the next page's token. */
export interface ListPage {
  readonly items: readonly {
    readonly name: string;
    readonly size: number;
    readonly md5?: string;
  }[];
  readonly next: string | undefined;
}

/**
 * Every object of a paged listing whose full name starts with `root`, as keys relative to it;
 * names that are no valid key (folder markers ending in `/`, a `/` right after a prefix
 * without one) are skipped: rivet could not have written them.
 *
 * @param root The destination's prefix.
 * @param page Fetches the page after `token` (undefined for the first).
 * @returns Key, size and MD5 (when the store reports one) of each object.
 */
export async function* listPages(
  root: string,
  page: (token: string | undefined) => Promise<ListPage>,
): AsyncIterable<ObjectMeta> {
  let token: string | undefined;
  do {
    const { items, next } = await page(token);
    for (const item of items) {
      const key = item.name.slice(root.length);
      if (!item.name.startsWith(root) || !isKey(key)) continue;
      yield { key, size: item.size, ...(item.md5 === undefined ? {} : { md5: item.md5 }) };
    }
    token = next || undefined;
  } while (token !== undefined);
}

/**
 * The bytes of a download as rivet hands them on: read only as fast as they are consumed, and
 * a failure of the body turned into the error `failed` gives (the abort reason when `signal`
 * aborted, else the store's classified error).
 *
 * @param body The SDK's stream, or undefined for an empty object.
 * @param signal The caller's signal.
 * @param failed The error a broken body becomes.
 * @returns The stream; cancelling it cancels the body.
 */
export function bodyStream(
  body: ReadableStream<Uint8Array> | undefined,
  signal: AbortSignal | undefined,
  failed: (error: unknown) => unknown,
): ReadableStream<Uint8Array> {
  if (body === undefined) return new ReadableStream({ start: (c) => c.close() });
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (error) {
        controller.error(signal?.aborted ? signal.reason : failed(error));
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/** Full URI of a key, for messages. */
function where(driver: ObjectStoreDriver, key: string): string {
  return `${driver.uri}${key}`;
}

/**
 * A destination built on a driver: S3, GCS and Azure extend it with their `open` and their
 * own fields.
 */
export abstract class ObjectStoreDestination implements Destination {
  abstract readonly kind: "s3" | "gcs" | "azure";
  /** Objects outlive the run. */
  readonly capabilities: DestinationCapabilities = OBJECT_STORE_CAPABILITIES;
  /** Root URI. */
  readonly uri: string;
  readonly #driver: ObjectStoreDriver;
  readonly #open = new Set<ObjectUpload>();

  protected constructor(driver: ObjectStoreDriver) {
    this.#driver = driver;
    this.uri = driver.uri;
  }

  /**
   * Starts an object. Nothing is sent before the first full part, nothing is visible before
   * `commit()`.
   *
   * @param key Object key relative to the destination root.
   * @param options `overwrite` for `manifest.json`/`_SUCCESS`; `provisional` to stage under
   *   the hidden `.<name>.tmp`; a signal that aborts the requests.
   * @returns The upload.
   * @throws {ConfigError} `destination.bad_key` for an absolute key, `..`, NUL or backslash.
   */
  create(key: string, options: CreateOptions = {}): Promise<Upload> {
    try {
      checkKey(key);
      options.signal?.throwIfAborted();
    } catch (error) {
      return Promise.reject(error);
    }
    const upload = new ObjectUpload(this.#driver, key, {
      overwrite: options.overwrite === true,
      hidden: options.provisional === true,
      signal: options.signal,
      onDone: (u) => this.#open.delete(u),
    });
    this.#open.add(upload);
    return Promise.resolve(upload);
  }

  /**
   * Lists committed objects whose key starts with `prefix`, in the store's key order. Uploads
   * in progress are no objects; staging objects and names that are no valid key (folder
   * markers, a `/` right after a prefix without one) are skipped.
   *
   * @param prefix Key prefix relative to the destination root.
   * @param options An abort signal.
   * @returns Key, size and, where the store reports a content MD5, the base64 MD5.
   */
  async *list(prefix: string, options: SignalOptions = {}): AsyncIterable<ObjectMeta> {
    for await (const object of this.#driver.listRaw(prefix, options.signal)) {
      if (!isStagingKey(object.key)) yield object;
    }
  }

  /**
   * Lists the staging objects (`dir/.<name>.tmp`) in the folder of `prefix` (not its
   * sub-folders) whose final key starts with `prefix`: complete objects a killed renaming
   * commit left. Uploads in progress are no objects and are not listed.
   *
   * @param prefix Final-key prefix relative to the destination root, e.g. `orders_`.
   * @param options An abort signal.
   * @returns Staging key, final key and size of each.
   */
  async *listStaging(prefix: string, options: SignalOptions = {}): AsyncIterable<StagingObject> {
    const slash = prefix.lastIndexOf("/");
    const folder = prefix.slice(0, slash + 1);
    const raw = `${folder}.${prefix.slice(slash + 1)}`;
    for await (const object of this.#driver.listRaw(raw, options.signal)) {
      if (object.key.indexOf("/", folder.length) >= 0) continue;
      const finalKey = finalKeyOfStaging(object.key);
      if (finalKey?.startsWith(prefix)) yield { key: object.key, finalKey, size: object.size };
    }
  }

  /**
   * Deletes a staging object (see {@linkcode listStaging}); an absent key is no error.
   *
   * @param key A staging key, `dir/.<name>.tmp`.
   * @param options An abort signal.
   * @throws {ConfigError} `destination.bad_key` for a key that is not a staging name.
   */
  async removeStaging(key: string, options: SignalOptions = {}): Promise<void> {
    checkStagingKey(key, this.#driver.store);
    await this.#driver.delete(key, { signal: options.signal });
  }

  /**
   * Size and MD5 (where the store reports a content MD5) of the committed object at `key`.
   *
   * @param key Object key relative to the root.
   * @param options An abort signal.
   * @returns The metadata, or undefined when there is no object.
   */
  async stat(key: string, options: SignalOptions = {}): Promise<ObjectMeta | undefined> {
    checkKey(key);
    const found = await this.#driver.head(key, options.signal);
    return found === undefined ? undefined : metaOf(found);
  }

  /**
   * Streams the committed object at `key`.
   *
   * @param key Object key relative to the root.
   * @param options A signal; it also ends the stream.
   * @returns The bytes; read to the end or cancel the stream to release the connection.
   * @throws {PermanentError} `destination.not_found` when absent.
   */
  async read(key: string, options: SignalOptions = {}): Promise<ReadableStream<Uint8Array>> {
    checkKey(key);
    return await this.#driver.read(key, options.signal);
  }

  /**
   * Moves a committed object by server-side copy (refused when `to` exists), a check of the
   * copy, and delete of `from` (that version only, where the store has versions). All or
   * nothing, see {@linkcode moveByCopy}.
   *
   * @param from Key of the committed object.
   * @param to New key, e.g. `_quarantine/<run_id>/<name>`.
   * @param options An abort signal.
   * @throws {PermanentError} `destination.not_found` when `from` is absent;
   *   `destination.exists` when `to` exists (both untouched); `destination.move_incomplete`
   *   when both names may hold the object.
   * @throws {DataIntegrityError} `destination.checksum_mismatch` when the copy differs (it is
   *   deleted).
   */
  async move(from: string, to: string, options: SignalOptions = {}): Promise<void> {
    checkKey(from);
    checkKey(to);
    const driver = this.#driver;
    const signal = options.signal;
    const source = await driver.head(from, signal);
    if (source === undefined) throw notFoundError(driver.store, where(driver, from));
    if (await driver.head(to, signal) !== undefined) {
      throw existsError(driver.store, where(driver, to));
    }
    let copied: StoredObject | undefined;
    await moveByCopy({
      from: where(driver, from),
      to: where(driver, to),
      copy: async () => {
        copied = await copyVerified(driver, from, to, { overwrite: false, expect: source, signal });
      },
      removeSource: () => driver.delete(from, { version: source.version, signal }),
      sourceExists: async () => {
        const now = await driver.head(from, cleanupSignal());
        return now !== undefined && now.version === source.version;
      },
      removeCopy: () => driver.delete(to, { version: copied?.version, signal: cleanupSignal() }),
    });
  }

  /**
   * Deletes a committed object (doctor's probe); an absent key is not an error.
   *
   * @param key Object key relative to the root.
   * @param options An abort signal.
   */
  async remove(key: string, options: SignalOptions = {}): Promise<void> {
    checkKey(key);
    await this.#driver.delete(key, { signal: options.signal });
  }

  /** Aborts every upload that was neither committed nor aborted, then releases the client. */
  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all([...this.#open].map((upload) => upload.abort()));
    this.#driver.close?.();
  }
}

function metaOf(object: StoredObject): ObjectMeta {
  return {
    key: object.key,
    size: object.size,
    ...(object.md5 === undefined ? {} : { md5: object.md5 }),
  };
}

function cleanupSignal(): AbortSignal {
  return AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
}

/**
 * Copies `from` to `to` and checks the copy: the same size, and the same MD5 where both sides
 * report one. A copy that differs is deleted.
 *
 * @throws {DataIntegrityError} `destination.checksum_mismatch`.
 */
async function copyVerified(
  driver: ObjectStoreDriver,
  from: string,
  to: string,
  options: {
    readonly overwrite: boolean;
    readonly expect: { readonly size: number; readonly md5?: string | undefined };
    readonly signal: AbortSignal | undefined;
  },
): Promise<StoredObject | undefined> {
  const { expect, signal } = options;
  let copied = await driver.copy(from, to, {
    overwrite: options.overwrite,
    size: expect.size,
    md5: expect.md5,
    signal,
  });
  if (copied?.size === undefined || copied.size !== expect.size) {
    copied = await driver.head(to, signal);
  }
  const sameMd5 = expect.md5 === undefined || copied?.md5 === undefined ||
    copied.md5 === expect.md5;
  if (copied === undefined || copied.size !== expect.size || !sameMd5) {
    await driver.delete(to, { version: copied?.version, signal: cleanupSignal() })
      .catch(() => {});
    throw checksumMismatch(
      driver.store,
      where(driver, to),
      `copy of ${copied?.size ?? "no"} bytes with MD5 ${copied?.md5 ?? "unknown"}, source ` +
        `${expect.size} bytes with MD5 ${expect.md5 ?? "unknown"}`,
    );
  }
  return copied;
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
  /** Full URIs of both keys, for messages. */
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

interface ObjectUploadInit {
  readonly overwrite: boolean;
  /** Stage under the hidden `.<name>.tmp` of the key (`CreateOptions.provisional`). */
  readonly hidden: boolean;
  readonly signal: AbortSignal | undefined;
  readonly onDone: (upload: ObjectUpload) => void;
}

/** Small objects (manifests, `_SUCCESS`) do not pin a whole part: the buffer starts here. */
const FIRST_BUFFER = 64 * 1024;

/**
 * One object being written to a store. Bytes fill a buffer of the driver's part size; a full
 * buffer leaves as a part only when more bytes follow (the last part goes with the
 * completion at `commit()`), with at most one part in flight while the next fills. An object
 * that never filled a part is one request at `commit()`.
 *
 * The commit: unless `overwrite`, an object at the final key refuses it; the object is made
 * visible where it was streamed (the create key, or its hidden staging key when
 * `provisional`), verified, and, when `commit(finalKey)` names another key than that, copied
 * there (verified, never replacing an object) and deleted where it was streamed. A failed copy
 * deletes the streamed object; a staging object that cannot be deleted after the copy is only
 * a warning (`destination.staging_left`: the next run removes it), while an object streamed
 * under the create key is deleted together with its copy and the commit fails, so the object
 * is under exactly one name or none.
 */
class ObjectUpload extends UploadShell {
  readonly #driver: ObjectStoreDriver;
  readonly #init: ObjectUploadInit;
  /** Where the bytes are streamed: the create key, or its staging key when hidden. */
  readonly #stageKey: string;
  /** Aborted by `abort()`: cancels requests in flight. */
  readonly #stop = new AbortController();
  readonly #requests: AbortSignal;
  readonly #md5: Hash = createHash("md5");
  #buf: Uint8Array = new Uint8Array(0);
  #fill = 0;
  #spare: Uint8Array | undefined;
  #size = 0;
  /** Bytes handed to parts so far (stored or in flight). */
  #sent = 0;
  #parts = 0;
  #session: PartSession | undefined;
  #inflight: Promise<void> | undefined;
  /** The object made visible under the staging or create key, not yet at its final key. */
  #completed: StoredObject | undefined;
  /** The copy a renaming commit made, until the commit stands. */
  #copied: { key: string; version: string | undefined } | undefined;

  constructor(driver: ObjectStoreDriver, key: string, init: ObjectUploadInit) {
    super(key, anyOf([init.signal, driver.signal]));
    this.#driver = driver;
    this.#init = init;
    this.#stageKey = init.hidden ? stagingKeyOf(key) : key;
    this.#requests = anyOf([this.#stop.signal, this.signal])!;
  }

  protected override async writeChunk(chunk: Uint8Array): Promise<void> {
    this.#requests.throwIfAborted();
    this.#md5.update(chunk);
    this.#size += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      const size = this.#driver.partSize(this.#parts + 1);
      if (this.#fill === size) await this.#flush();
      const n = Math.min(size - this.#fill, chunk.length - offset);
      this.#reserve(this.#fill + n, size);
      this.#buf.set(chunk.subarray(offset, offset + n), this.#fill);
      this.#fill += n;
      offset += n;
    }
  }

  /** The end of the stream waits for the part in flight, so its failure surfaces there. */
  protected override async closed(): Promise<void> {
    try {
      await this.#drain();
    } catch (error) {
      await this.abort(error);
      throw error;
    }
  }

  #reserve(length: number, size: number): void {
    if (length <= this.#buf.length) return;
    let grown = Math.max(this.#buf.length, Math.min(FIRST_BUFFER, size));
    while (grown < length) grown = Math.min(size, grown * 2);
    const next = new Uint8Array(grown);
    next.set(this.#buf.subarray(0, this.#fill));
    this.#buf = next;
  }

  /** Sends the full buffer as the next part, once the part before it is stored. */
  async #flush(): Promise<void> {
    await this.#drain();
    this.#session ??= await this.#startParts();
    const buffer = this.#buf;
    const part = { n: ++this.#parts, offset: this.#sent, bytes: buffer.subarray(0, this.#fill) };
    this.#sent += this.#fill;
    const sending = this.#session.putPart(part, this.#requests).then(() => {
      this.#spare = buffer;
    });
    sending.catch(() => {}); // observed by #drain; never left unhandled meanwhile
    this.#inflight = sending;
    const next = this.#driver.partSize(this.#parts + 1);
    this.#buf = this.#spare?.length === next ? this.#spare : new Uint8Array(next);
    this.#spare = undefined;
    this.#fill = 0;
  }

  async #startParts(): Promise<PartSession> {
    const { overwrite, hidden } = this.#init;
    const driver = this.#driver;
    // A staging object of the same name can only be a killed run's leftover: replaced.
    return await driver.startParts(this.#stageKey, {
      conditional: !overwrite && !hidden,
      signal: this.#requests,
    });
  }

  /** Waits for the part in flight; its failure is thrown. */
  async #drain(): Promise<void> {
    const inflight = this.#inflight;
    this.#inflight = undefined;
    await inflight;
  }

  /**
   * Makes the object visible (see the class doc).
   *
   * @param finalKey Key to make the object visible at; defaults to the create key.
   * @returns Key, size and base64 MD5.
   */
  async commit(finalKey?: string): Promise<ObjectMeta> {
    await this.closeForCommit();
    if (this.state !== "open") throw new Error(`Upload of '${this.key}' is ${this.state}`);
    const target = finalKey === undefined ? this.key : checkKey(finalKey);
    this.state = "committing";
    const sent: Sent = { size: this.#size, md5: this.#md5.digest() };
    try {
      await this.#drain();
      await this.#commitAt(target, sent);
    } catch (error) {
      this.state = "open";
      await this.abort(error);
      throw error;
    }
    this.state = "committed";
    this.#init.onDone(this);
    this.#release();
    return { key: target, size: sent.size, md5: Buffer.from(sent.md5).toString("base64") };
  }

  async #commitAt(target: string, sent: Sent): Promise<void> {
    const driver = this.#driver;
    const { overwrite } = this.#init;
    const signal = this.#requests;
    if (!overwrite && await driver.head(target, signal) !== undefined) {
      throw existsError(driver.store, where(driver, target));
    }
    const bytes = this.#buf.subarray(0, this.#fill);
    if (this.#session === undefined) {
      // One request straight at the final key: nothing to rename.
      await driver.putSingle(target, bytes, sent, { conditional: !overwrite, signal });
      return;
    }
    const last = { n: ++this.#parts, offset: this.#sent, bytes };
    const session = this.#session;
    const completed = await session.complete(last, sent, signal);
    this.#session = undefined;
    if (target === this.#stageKey) return;
    this.#completed = completed;
    await this.#rename(completed, target, sent);
    this.#completed = this.#copied = undefined;
  }

  /** Copies the completed object to `target`, then deletes it where it was streamed. */
  async #rename(completed: StoredObject, target: string, sent: Sent): Promise<void> {
    const driver = this.#driver;
    const signal = this.#requests;
    await crashPoint("before_commit_rename");
    const md5 = Buffer.from(sent.md5).toString("base64");
    const copy = await copyVerified(driver, this.#stageKey, target, {
      overwrite: this.#init.overwrite,
      expect: { size: sent.size, md5 },
      signal,
    });
    this.#copied = { key: target, version: copy?.version };
    await crashPoint("after_commit_copy");
    try {
      await driver.delete(this.#stageKey, { version: completed.version, signal });
    } catch (error) {
      // Without a staging name, abort() deletes both: a commit is all or nothing. A staging
      // object is no data: the commit stands, and the next run of the export removes it.
      if (!this.#init.hidden) throw error;
      this.#completed = undefined;
      driver.warn(
        `${driver.store} destination could not delete the staging object ` +
          `'${where(driver, this.#stageKey)}' after copying it to '${where(driver, target)}' ` +
          `(${messageOf(error)}); the next run of the export removes it`,
        "destination.staging_left",
      );
    }
  }

  /**
   * Cancels the part in flight and the session, and deletes what a failed commit made
   * visible. Idempotent.
   */
  async abort(_reason?: unknown): Promise<void> {
    if (this.state !== "open") return;
    this.state = "aborted";
    this.#init.onDone(this);
    this.#stop.abort(new Error(`upload of '${this.key}' aborted`));
    await this.#inflight?.catch(() => {});
    this.#inflight = undefined;
    this.#release();
    const driver = this.#driver;
    const session = this.#session;
    this.#session = undefined;
    await session?.cancel().catch(() => {});
    const leftovers = [
      this.#copied,
      this.#completed && { key: this.#stageKey, version: this.#completed.version },
    ];
    this.#completed = this.#copied = undefined;
    for (const object of leftovers) {
      if (object === undefined) continue;
      await driver.delete(object.key, { version: object.version, signal: cleanupSignal() })
        .catch(() => {});
    }
  }

  #release(): void {
    this.#buf = new Uint8Array(0);
    this.#spare = undefined;
    this.#fill = 0;
  }
}
