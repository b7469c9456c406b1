/**
 * The MD5 of a part, computed on its own thread once the part is large.
 *
 * MD5 runs at about 0.5 GB/s on one core, a fifth of the time of a CSV export of long text when
 * it shares the thread that decodes and encodes. The first {@linkcode OFFLOAD_BYTES} are hashed
 * in place (small parts never pay for a thread); past that, the running state moves to a Web
 * Worker with no permissions and the chunks follow as copies, at most
 * {@linkcode MAX_IN_FLIGHT_BYTES} unacknowledged, so memory stays bounded when the worker falls
 * behind. When a worker cannot start (a library host without `--unstable-worker-options`), the
 * hash simply stays in place.
 *
 * Layer: _util. Imports nothing from `src/` but `_util/`.
 *
 * @module
 */
import { siblingEntry } from "./bundle.ts";
import { createMd5, type PortableHasher } from "./hash.ts";
import type { Md5Reply } from "./md5_worker.ts";

/** Bytes hashed in place before the hash moves to a worker. */
export const OFFLOAD_BYTES = 8 * 1024 * 1024;
/** Smallest copy buffer (chunks are usually about 1 MB). */
const MIN_BUFFER_BYTES = 1024 * 1024;
/** Copy buffers kept for reuse. */
const POOL_SIZE = 24;

/** Bytes sent to the worker and not yet hashed, at most. */
export const MAX_IN_FLIGHT_BYTES = 16 * 1024 * 1024;

/** An MD5 over a byte stream whose `update` may wait (backpressure) and whose digest is async. */
export interface StreamMd5 {
  /** Feeds the next bytes; the caller may reuse `bytes` as soon as this returns or resolves. */
  update(bytes: Uint8Array): void | Promise<void>;
  /** The MD5 in standard base64; stops the worker. */
  digest(): Promise<string>;
  /** Stops the worker without a digest (the part was abandoned). Idempotent. */
  dispose(): void;
}

/**
 * Starts an MD5 over a stream.
 *
 * @param options `offloadBytes`: bytes hashed in place first (tests lower it).
 * @returns The hasher.
 *
 * @example
 * ```ts
 * import { createStreamMd5 } from "./md5_offload.ts";
 * const md5 = await createStreamMd5();
 * await md5.update(new TextEncoder().encode("abc"));
 * if (await md5.digest() !== "kAFQmDzST7DWlj99KOF/cg==") throw new Error("md5 of abc");
 * ```
 */
export async function createStreamMd5(
  options: { readonly offloadBytes?: number } = {},
): Promise<StreamMd5> {
  return new OffloadedMd5(await createMd5(), options.offloadBytes ?? OFFLOAD_BYTES);
}

class OffloadedMd5 implements StreamMd5 {
  readonly #local: PortableHasher;
  readonly #offloadBytes: number;
  #hashedHere = 0;
  #worker: Worker | undefined;
  /** Set once a worker failed to start: everything stays in place. */
  #noWorker = false;
  /** Set by `dispose`: a worker still starting is stopped when it answers. */
  #disposed = false;
  #inFlight = 0;
  /** Copy buffers the worker has handed back. */
  readonly #free: ArrayBuffer[] = [];
  #drained: (() => void) | undefined;
  #answer: ((digest: string) => void) | undefined;
  #failure: Error | undefined;
  #onFailure: ((error: Error) => void) | undefined;

  constructor(local: PortableHasher, offloadBytes: number) {
    this.#local = local;
    this.#offloadBytes = offloadBytes;
  }

  update(bytes: Uint8Array): void | Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#worker === undefined) {
      if (this.#noWorker || this.#hashedHere + bytes.byteLength <= this.#offloadBytes) {
        this.#local.update(bytes);
        this.#hashedHere += bytes.byteLength;
        return;
      }
      return this.#start().then((started) => {
        if (!started) this.#noWorker = true;
        return this.update(bytes);
      });
    }
    // A copy (the caller reuses its buffer), into a buffer the worker hands back with its ack, so
    // the copies are recycled rather than left to the collector of either thread.
    const buffer = this.#take(bytes.byteLength);
    new Uint8Array(buffer, 0, bytes.byteLength).set(bytes);
    this.#inFlight += bytes.byteLength;
    this.#worker!.postMessage({ buffer, length: bytes.byteLength }, [buffer]);
    if (this.#inFlight <= MAX_IN_FLIGHT_BYTES) return;
    return new Promise<void>((resolve, reject) => {
      this.#drained = resolve;
      this.#onFailure = reject;
    });
  }

  async digest(): Promise<string> {
    if (this.#failure !== undefined) throw this.#failure;
    const worker = this.#worker;
    if (worker === undefined) return this.#local.digest();
    try {
      return await new Promise<string>((resolve, reject) => {
        this.#answer = resolve;
        this.#onFailure = reject;
        worker.postMessage({ digest: true });
      });
    } finally {
      this.dispose();
    }
  }

  dispose(): void {
    this.#disposed = true;
    this.#worker?.terminate();
    this.#worker = undefined;
  }

  /** Starts the worker with the running state; false when it cannot run (hash stays here). */
  #start(): Promise<boolean> {
    let worker: Worker;
    try {
      worker = new Worker(siblingEntry(import.meta.url, "md5_worker"), {
        type: "module",
        // deno-lint-ignore no-explicit-any
        deno: { permissions: "none" } as any,
      });
    } catch {
      return Promise.resolve(false);
    }
    return new Promise<boolean>((ready) => {
      worker.onmessage = (event: MessageEvent) => {
        const message = event.data as Md5Reply;
        if (message.ready === true) {
          // Disposed while it started (the part was abandoned): it must not outlive the part.
          if (this.#disposed) {
            worker.terminate();
            ready(false);
            return;
          }
          this.#worker = worker;
          ready(true);
        } else if (message.ack !== undefined) {
          this.#inFlight -= message.ack;
          if (message.buffer !== undefined && this.#free.length < POOL_SIZE) {
            this.#free.push(message.buffer);
          }
          if (this.#inFlight <= MAX_IN_FLIGHT_BYTES / 2 && this.#drained !== undefined) {
            const wake = this.#drained;
            this.#drained = undefined;
            wake();
          }
        } else if (message.digest !== undefined) {
          this.#answer?.(message.digest);
        } else if (message.error !== undefined) {
          this.#fail(new Error(`the MD5 worker failed: ${message.error}`));
        }
      };
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        if (this.#worker === undefined) {
          // It never took the state: the hash goes on here, from where it was.
          worker.terminate();
          ready(false);
        } else this.#fail(new Error(`the MD5 worker failed: ${event.message}`));
      };
      worker.postMessage({ state: this.#local.save() });
    });
  }

  /** A free copy buffer of at least `size` bytes, or a new one. */
  #take(size: number): ArrayBuffer {
    const at = this.#free.findIndex((b) => b.byteLength >= size);
    if (at >= 0) return this.#free.splice(at, 1)[0]!;
    return new ArrayBuffer(Math.max(size, MIN_BUFFER_BYTES));
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#onFailure?.(error);
    this.dispose();
  }
}
