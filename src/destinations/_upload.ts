/**
 * What every destination's `Upload` does the same way at the start of `commit()`.
 *
 * Layer: destinations (private). Imports nothing from `src/`.
 *
 * @module
 */

/**
 * Readies an upload for its commit: refuses a commit after the upload ended (committed, aborted
 * or failed), then closes its writable unless the producer already did, which waits for the
 * queued writes. A writer still holding the writable's lock is a caller bug.
 *
 * @param upload The upload's key (for messages), state, whether its stream is closed, and its
 *   writable.
 * @throws {Error} After the end, or while the writable is locked.
 */
export async function closeForCommit(upload: {
  readonly key: string;
  readonly state: string;
  readonly streamClosed: boolean;
  readonly writable: WritableStream<Uint8Array>;
}): Promise<void> {
  if (upload.state !== "open") {
    throw new Error(`commit() of '${upload.key}' called after ${upload.state}`);
  }
  if (upload.streamClosed) return;
  if (upload.writable.locked) {
    throw new Error(`commit() of '${upload.key}' called while its writable is locked`);
  }
  await upload.writable.close();
}
