/**
 * What every destination's `Upload` does the same way: the writable that feeds it, the refusal
 * of writes after the end, the abort on a failed write or an aborted signal, and the start of
 * `commit()` (no commit after the end, the producer's stream closed and its writes awaited).
 *
 * Layer: destinations (private). Imports core/ only.
 *
 * @module
 */
import type { ObjectMeta, Upload } from "../core/destination.ts";

/** Where an upload stands. */
export type UploadState = "open" | "committing" | "committed" | "aborted";

/**
 * The shell of an upload: subclasses write the bytes, commit and abort; this class runs the
 * writable and the state.
 */
export abstract class UploadShell implements Upload, AsyncDisposable {
  readonly writable: WritableStream<Uint8Array>;
  /** The key given to `create`, for messages. */
  readonly key: string;
  /** Set by the subclass as the upload moves on. */
  protected state: UploadState = "open";
  /** Aborts the writes (with the caller's signal, when it has one). */
  protected readonly signal: AbortSignal | undefined;
  #streamClosed = false;

  constructor(key: string, signal: AbortSignal | undefined) {
    this.key = key;
    this.signal = signal;
    this.writable = new WritableStream<Uint8Array>({
      write: (chunk) => this.#write(chunk),
      close: async () => {
        this.#streamClosed = true;
        await this.closed();
      },
      abort: (reason) => this.abort(reason),
    });
  }

  async #write(chunk: Uint8Array): Promise<void> {
    if (this.state !== "open") throw new Error(`Upload of '${this.key}' is ${this.state}`);
    if (this.signal?.aborted) {
      await this.abort(this.signal.reason);
      throw this.signal.reason;
    }
    try {
      await this.writeChunk(chunk);
    } catch (error) {
      await this.abort(error);
      throw this.writeError(error);
    }
  }

  /** Stores the next bytes; a rejection aborts the upload. */
  protected abstract writeChunk(chunk: Uint8Array): Promise<void>;

  /** What a failed write rejects with; the error itself unless a subclass explains it. */
  protected writeError(error: unknown): unknown {
    return error;
  }

  /** Runs when the producer closes the stream; a rejection fails the close. */
  protected closed(): Promise<void> | void {}

  /**
   * Readies the upload for its commit: refuses a commit after the upload ended (committed,
   * aborted or failed), then closes its writable unless the producer already did, which waits
   * for the queued writes. A writer still holding the writable's lock is a caller bug.
   *
   * @throws {Error} After the end, or while the writable is locked.
   */
  protected async closeForCommit(): Promise<void> {
    if (this.state !== "open") {
      throw new Error(`commit() of '${this.key}' called after ${this.state}`);
    }
    if (this.#streamClosed) return;
    if (this.writable.locked) {
      throw new Error(`commit() of '${this.key}' called while its writable is locked`);
    }
    await this.writable.close();
  }

  abstract commit(finalKey?: string): Promise<ObjectMeta>;
  abstract abort(reason?: unknown): Promise<void>;

  [Symbol.asyncDispose](): Promise<void> {
    return this.abort();
  }
}
