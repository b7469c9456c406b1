/**
 * The Azure side of an upload: a small object is one `Put Blob`, a large one blocks staged with
 * `Put Block` (Content-MD5 checked by the service, and compared with the MD5 it echoes) and made
 * visible by one `Put Block List` at `commit()` (see `AzureDestination` in `azure.ts`). The
 * buffering, the commit under another name and the clean-up are the kit's
 * (`_object_store.ts`).
 *
 * Layer: destinations (private). Imports core/ and _util/ only.
 *
 * @module
 */

import { createHash, randomBytes } from "node:crypto";
import { DataIntegrityError, RivetError } from "../core/errors.ts";
import type { Part, PartSession, Sent, StoredObject } from "./_object_store.ts";
import { checksumMismatch } from "./_store_errors.ts";
import { isExists, sameBytes, type Store, toBase64 } from "./_azure_store.ts";

/** Bytes buffered before a block is staged; at most one more block is in flight meanwhile. */
export const AZURE_BLOCK_SIZE = 8 * 1024 * 1024;

/** Options of a write: whether it must not replace a blob, and the upload's signal. */
interface WriteOptions {
  readonly conditional: boolean;
  readonly signal: AbortSignal;
}

/** One `Put Blob` of a whole small object at `key`, its MD5 checked. */
export async function putSingle(
  store: Store,
  key: string,
  bytes: Uint8Array,
  sent: Sent,
  options: WriteOptions,
): Promise<StoredObject> {
  const md5 = toBase64(sent.md5);
  const blob = store.blob(key);
  let attempts = 0;
  let reported: Uint8Array | undefined;
  try {
    const response = await store.request({ op: "upload", key }, (s) => {
      attempts++;
      return blob.upload(bytes, bytes.length, {
        abortSignal: s,
        transactionalContentMD5: sent.md5,
        ...(options.conditional ? { conditions: { ifNoneMatch: "*" } } : {}),
      });
    }, { signal: options.signal });
    reported = response.contentMD5;
  } catch (error) {
    // A retried upload whose first attempt was stored (answer lost) finds its own bytes there.
    if (isExists(error) && attempts > 1 && await store.matches(key, { size: sent.size, md5 })) {
      return { key, size: sent.size, md5 };
    }
    throw error;
  }
  if (reported !== undefined && reported.length > 0) {
    if (!sameBytes(reported, sent.md5)) {
      await store.remove(key, { cleanup: true }).catch(() => {});
      throw mismatch(store, key, md5, toBase64(reported));
    }
    return { key, size: sent.size, md5 };
  }
  return await verify(store, key, sent, options.signal);
}

/**
 * Starts staging blocks for the blob at `key`. Blocks staged on a committed blob could not be
 * discarded without touching it, so a conditional upload is refused before its first block
 * when a blob is there (commit checks again, and its conditional write closes the race).
 */
export async function startParts(
  store: Store,
  key: string,
  options: WriteOptions,
): Promise<PartSession> {
  if (options.conditional && await store.head(key, options.signal) !== undefined) {
    throw store.exists(key);
  }
  return new AzureBlocks(store, key, options.conditional);
}

/** Blocks staged on one blob name, committed by block list. */
class AzureBlocks implements PartSession {
  /** Unique per upload, so a stale upload's blocks on the same name are never committed. */
  readonly #nonce = randomBytes(8).toString("hex");
  readonly #blocks: string[] = [];
  #committed = false;

  constructor(readonly store: Store, readonly key: string, readonly conditional: boolean) {}

  async putPart(part: Part, signal: AbortSignal): Promise<void> {
    const { store, key } = this;
    const id = btoa(`${this.#nonce}-${String(part.n - 1).padStart(6, "0")}`);
    this.#blocks[part.n - 1] = id;
    const body = part.bytes;
    const md5 = createHash("md5").update(body).digest();
    const blob = store.blob(key);
    const response = await store.request(
      { op: `upload block ${part.n} of`, key },
      (s) =>
        blob.stageBlock(id, body, body.length, { transactionalContentMD5: md5, abortSignal: s }),
      { signal },
    );
    // The service verified Content-MD5 on receipt; Azure also echoes what it computed (Azurite
    // does not), a second check of the bytes it kept.
    const echoed = response.contentMD5;
    if (echoed !== undefined && echoed.length > 0 && !sameBytes(echoed, md5)) {
      throw mismatch(store, key, toBase64(md5), toBase64(echoed), `block ${part.n}`);
    }
  }

  /** The last block, `Put Block List`, then a check of the committed size and MD5. */
  async complete(last: Part, sent: Sent, signal: AbortSignal): Promise<StoredObject> {
    const { store, key } = this;
    await this.putPart(last, signal);
    const md5 = toBase64(sent.md5);
    const blob = store.blob(key);
    let attempts = 0;
    try {
      await store.request({ op: "commit", key }, (s) => {
        attempts++;
        return blob.commitBlockList(this.#blocks, {
          abortSignal: s,
          // Stored as the blob's Content-MD5 (each block's MD5 was checked on receipt), so
          // list/stat report it for multi-block objects too.
          blobHTTPHeaders: { blobContentMD5: sent.md5 },
          ...(this.conditional ? { conditions: { ifNoneMatch: "*" } } : {}),
        });
      }, { signal });
    } catch (error) {
      if (
        !(isExists(error) && attempts > 1 && await store.matches(key, { size: sent.size, md5 }))
      ) {
        throw error;
      }
    }
    this.#committed = true;
    return await verify(store, key, sent, signal);
  }

  /**
   * Drops the staged blocks. They cannot be deleted one by one; deleting the blob name removes
   * them where no committed blob exists there (Azurite; Azure collects them after 7 days).
   */
  async cancel(): Promise<void> {
    const { store, key } = this;
    if (this.#committed || this.#blocks.length === 0) return;
    try {
      const blob = store.blob(key);
      await store.request(
        { op: "stat", key },
        (s) => blob.getProperties({ abortSignal: s }),
        { cleanup: true },
      );
      // A committed blob is there (not ours): its uncommitted blocks are left to the service.
    } catch (error) {
      if (error instanceof RivetError && error.code === "destination.not_found") {
        await store.remove(key, { cleanup: true });
      }
    }
  }
}

/** Compares the committed blob's size and MD5 with what was sent; a mismatch deletes it. */
async function verify(
  store: Store,
  key: string,
  sent: Sent,
  signal: AbortSignal,
): Promise<StoredObject> {
  const md5 = toBase64(sent.md5);
  const meta = await store.head(key, signal);
  if (meta !== undefined && meta.size === sent.size && (meta.md5 ?? md5) === md5) return meta;
  await store.remove(key, { cleanup: true }).catch(() => {});
  if (meta === undefined || meta.size !== sent.size) {
    throw new DataIntegrityError(
      `Azure destination: the committed object '${store.where(key)}' has ${
        meta === undefined ? "vanished" : `${meta.size} bytes`
      } but ${sent.size} were written; it was deleted, run again`,
      { code: "destination.size_mismatch" },
    );
  }
  throw mismatch(store, key, md5, meta.md5!);
}

function mismatch(
  store: Store,
  key: string,
  sent: string,
  reported: string,
  what = "the object",
): DataIntegrityError {
  return checksumMismatch(
    "Azure",
    store.where(key),
    `${what} was stored with MD5 ${reported}, rivet sent MD5 ${sent}`,
  );
}
