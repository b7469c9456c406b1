/**
 * One block blob being written to Azure: 8 MiB buffers staged as blocks (`Put Block`, MD5
 * checked) while the next fills, made visible in one `Put Block List` at `commit()`; an object
 * under one block is a single `Put Blob`. A commit under another name copies and deletes (see
 * `AzureDestination` in `azure.ts`).
 *
 * Layer: destinations (private). Imports core/ and _util/ only.
 *
 * @module
 */
import { createHash, randomBytes } from "node:crypto";
import type { ObjectMeta, Upload } from "../core/destination.ts";
import { DataIntegrityError, RivetError } from "../core/errors.ts";
import { crashPoint } from "../_util/test_hook.ts";
import { checkKey } from "./_keys.ts";
import { messageOf } from "./_cloud.ts";
import { isExists, sameBytes, type Store, toBase64, type What } from "./_azure_store.ts";
import { closeForCommit } from "./_upload.ts";

/** Bytes buffered before a block is staged; at most one more block is in flight meanwhile. */
export const AZURE_BLOCK_SIZE = 8 * 1024 * 1024;

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
export class AzureUpload implements Upload {
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
    await closeForCommit({
      key: this.#init.key,
      state: this.#state,
      streamClosed: this.#streamClosed,
      writable: this.writable,
    });
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
                `after copying it to '${target}' (${messageOf(error)}); ${
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
