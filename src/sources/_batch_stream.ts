/**
 * The consumer side of a push-driver read, shared by the MySQL and SQL Server sources: driver
 * callbacks cut batches into a {@linkcode BatchQueue} (which pauses the driver); the stream made by
 * {@linkcode pumpBatches} hands them out one pull at a time, resumes the driver, throttles, and
 * turns the driver's end, a decode failure, an abort or a cancel into the read's close-out.
 *
 * Layer: sources. Imports core/ and _util/ only.
 *
 * @module
 */
import { sleep } from "../_util/abort.ts";
import type { RecordBatch } from "../core/arrow.ts";

/** How the queue stops and restarts the driver's reading of the socket. */
export interface DriverFlow {
  pause(): void;
  resume(): void;
}

/**
 * Finished batches waiting for the consumer, the wake-up of a waiting pull, and the driver's
 * flow: a batch waiting pauses the driver, handing it out resumes it.
 */
export class BatchQueue {
  readonly #ready: RecordBatch[] = [];
  readonly #flow: DriverFlow;
  #wake: (() => void) | undefined;
  #paused = false;

  /** @param flow Pauses and resumes the driver. */
  constructor(flow: DriverFlow) {
    this.#flow = flow;
  }

  /** Adds a batch, pauses the driver until it is taken, and wakes the consumer. */
  push(batch: RecordBatch): void {
    this.#ready.push(batch);
    if (!this.#paused) {
      this.#paused = true;
      this.#flow.pause();
    }
    this.notify();
  }

  /** Lets a paused driver read on (a batch was taken, or the statement is being stopped). */
  resumeDriver(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#flow.resume();
  }

  /** The oldest waiting batch, if any. */
  shift(): RecordBatch | undefined {
    return this.#ready.shift();
  }

  /** Wakes a waiting pull (something changed: a batch, the end, an error). */
  notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Resolves at the next {@linkcode notify}. */
  wait(): Promise<void> {
    return new Promise<void>((resolve) => (this.#wake = resolve));
  }
}

/** What {@linkcode pumpBatches} asks of the read. */
export interface PumpOptions {
  readonly queue: BatchQueue;
  /** Whether the read was aborted (its signal's reason is then thrown). */
  readonly aborted: () => boolean;
  /** A value the decoder refused, which stops the read; undefined while none. */
  readonly decodeError: () => unknown;
  /** Whether the driver has finished the statement (successfully or not). */
  readonly ended: () => boolean;
  /** Once ended: the driver's failure, classified, or undefined after a clean end. */
  readonly endError: () => unknown;
  /** Once ended cleanly: the rows left in the builder as the last batch, if any. */
  readonly tail: () => RecordBatch | undefined;
  /** Stops the statement, closes the read, and throws (the abort's reason when aborted). */
  readonly fail: (error: unknown) => Promise<never>;
  /** Closes the read after the last batch. */
  readonly complete: () => Promise<void>;
  /** The consumer cancelled: start stopping the statement (no waiting). */
  readonly stopNow: () => void;
  /** The consumer cancelled: wait for the statement to stop, then close the read. */
  readonly closeCancelled: () => Promise<void>;
  /** Whether the read is closed already. */
  readonly closed: () => boolean;
  /** `throttle_ms` per `batchSize` rows, paused after each batch. */
  readonly throttle: { readonly ms: number; readonly batchSize: number };
  readonly signal?: AbortSignal | undefined;
}

/**
 * The batch stream of a read (pull-based, `highWaterMark` 0: a batch is cut ahead only while the
 * previous one is being consumed).
 *
 * @param o The read's hooks.
 * @returns The stream to return in `BatchStream.batches`.
 */
export function pumpBatches(o: PumpOptions): ReadableStream<RecordBatch> {
  let busy: Promise<unknown> = Promise.resolve();
  let cancelled = false;
  const pullOnce = async (controller: ReadableStreamDefaultController<RecordBatch>) => {
    for (;;) {
      if (cancelled) return;
      if (o.aborted()) await o.fail(o.signal?.reason);
      const refused = o.decodeError();
      if (refused !== undefined) await o.fail(refused);
      const batch = o.queue.shift();
      if (batch !== undefined) {
        controller.enqueue(batch);
        if (!o.ended()) o.queue.resumeDriver();
        await sleep(o.throttle.ms * batch.numRows / o.throttle.batchSize, o.signal);
        return;
      }
      if (o.ended()) {
        const error = o.endError();
        if (error !== undefined) await o.fail(error);
        const last = o.tail();
        if (last !== undefined) controller.enqueue(last);
        await o.complete();
        controller.close();
        return;
      }
      await o.queue.wait();
    }
  };
  return new ReadableStream<RecordBatch>({
    pull(controller) {
      const p = pullOnce(controller);
      busy = p.catch(() => {});
      return p;
    },
    async cancel() {
      cancelled = true;
      if (o.closed()) return;
      o.stopNow();
      o.queue.notify();
      await busy;
      if (o.closed()) return;
      await o.closeCancelled();
    },
  }, { highWaterMark: 0 });
}
