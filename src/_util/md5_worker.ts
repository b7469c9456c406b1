/**
 * Worker entry of the offloaded MD5 (see `md5_offload.ts`): continues a hash from the state it is
 * given, acknowledges each chunk once hashed (the sender's backpressure), answers the digest.
 *
 * Layer: _util (worker entry). Messages: `{buffer, length}` → hash, reply `{ack, buffer}` (the buffer handed back);
 * `{state}` → load, reply `{ready}`; `{digest: true}` → reply `{digest}`; any failure → reply `{error}`.
 *
 * @module
 */
import { createMd5 } from "./hash.ts";

/** The worker global, typed for what this entry uses. */
const scope = self as unknown as {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: unknown, transfer?: Transferable[]): void;
};

/** A message to the worker. */
export interface Md5Request {
  readonly state?: Uint8Array;
  readonly buffer?: ArrayBuffer;
  readonly length?: number;
  readonly digest?: boolean;
}

/** A message from the worker. */
export interface Md5Reply {
  readonly ready?: boolean;
  readonly ack?: number;
  readonly buffer?: ArrayBuffer;
  readonly digest?: string;
  readonly error?: string;
}

const hasher = createMd5();
// Messages are handled strictly in order, each after the previous one (and the hasher) is ready.
let queue: Promise<void> = Promise.resolve();
scope.onmessage = (event: MessageEvent) => {
  const message = event.data as Md5Request;
  queue = queue.then(async () => {
    const h = await hasher;
    if (message.state !== undefined) {
      h.load(message.state);
      scope.postMessage({ ready: true });
    } else if (message.buffer !== undefined) {
      const length = message.length ?? message.buffer.byteLength;
      h.update(new Uint8Array(message.buffer, 0, length));
      // The buffer goes back to be filled again.
      scope.postMessage({ ack: length, buffer: message.buffer }, [message.buffer]);
    } else if (message.digest === true) scope.postMessage({ digest: h.digest() });
  }).catch((error) => scope.postMessage({ error: String((error as Error)?.message ?? error) }));
};
