/**
 * An in-memory destination for pipeline and manifest unit tests, with the local destination's
 * rules: nothing is visible before `commit`, a committed object is never overwritten unless
 * `overwrite` was asked for, `commit(finalKey)` renames.
 *
 * @module
 */
import type { CreateOptions, Destination, ObjectMeta, Upload } from "../../src/core/destination.ts";

/** Records objects, commit order and staging, and can fail a chosen commit. */
export class MemoryDestination implements Destination {
  readonly kind = "local" as const;
  readonly capabilities = {
    commit: "atomic",
    idempotentOverwrite: false,
    retrySafe: true,
    persistent: true,
  } as const;
  readonly uri = "memory://";
  /** Committed objects by key. */
  readonly objects = new Map<string, Uint8Array>();
  /** Keys in commit order. */
  readonly commits: string[] = [];
  /** The `overwrite` option of each `create` call. */
  readonly overwriteFlags: boolean[] = [];
  /** Uploads created and neither committed nor aborted. */
  staging = 0;
  /** A key whose commit fails. */
  failOn: string | undefined;

  create(key: string, options: CreateOptions = {}): Promise<Upload> {
    this.overwriteFlags.push(options.overwrite === true);
    const chunks: Uint8Array[] = [];
    this.staging += 1;
    let open = true;
    const settle = () => {
      if (open) this.staging -= 1;
      open = false;
    };
    return Promise.resolve({
      writable: new WritableStream<Uint8Array>({ write: (c) => void chunks.push(c.slice()) }),
      commit: (finalKey?: string): Promise<ObjectMeta> => {
        const target = finalKey ?? key;
        if (this.failOn === target) return Promise.reject(new Error(`disk gone at ${target}`));
        if (this.objects.has(target) && options.overwrite !== true) {
          return Promise.reject(new Error(`${target} exists`));
        }
        const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
        let at = 0;
        for (const c of chunks) {
          bytes.set(c, at);
          at += c.length;
        }
        this.objects.set(target, bytes);
        this.commits.push(target);
        settle();
        return Promise.resolve({ key: target, size: bytes.length });
      },
      abort: () => {
        settle();
        return Promise.resolve();
      },
    });
  }

  /** Committed text of a key. */
  text(key: string): string {
    return new TextDecoder().decode(this.objects.get(key));
  }

  async *list(): AsyncIterable<ObjectMeta> {}

  [Symbol.asyncDispose](): Promise<void> {
    return Promise.resolve();
  }
}
