/**
 * An in-memory destination for pipeline and manifest unit tests, with the local destination's
 * rules: nothing is visible before `commit`, a committed object is never overwritten unless
 * `overwrite` was asked for, `commit(finalKey)` renames, `move` never overwrites, `remove` of an
 * absent key is no error.
 *
 * @module
 */
import type { CreateOptions, Destination, ObjectMeta, Upload } from "../../src/core/destination.ts";
import { PermanentError } from "../../src/core/errors.ts";

function notFound(key: string): PermanentError {
  return new PermanentError(`Memory destination has no object at '${key}'; check the key`, {
    code: "destination.not_found",
  });
}

/** Records objects, commit order and staging, and can fail a chosen commit. */
export class MemoryDestination implements Destination {
  readonly kind = "local" as const;
  readonly capabilities = {
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
  /** `[from, to]` of each successful `move`, in order. */
  readonly moves: [string, string][] = [];
  /** Keys deleted by `remove`, in order. */
  readonly removes: string[] = [];
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

  /** Committed objects whose key starts with `prefix`, in key order (staging never shows). */
  async *list(prefix: string): AsyncIterable<ObjectMeta> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    for (const key of keys) yield { key, size: this.objects.get(key)!.length };
  }

  /** Key and size of a committed object, or undefined. */
  stat(key: string): Promise<ObjectMeta | undefined> {
    const bytes = this.objects.get(key);
    return Promise.resolve(bytes === undefined ? undefined : { key, size: bytes.length });
  }

  /** The committed bytes of `key` as one chunk; `destination.not_found` when absent. */
  read(key: string): Promise<ReadableStream<Uint8Array>> {
    const bytes = this.objects.get(key);
    if (bytes === undefined) return Promise.reject(notFound(key));
    return Promise.resolve(ReadableStream.from([bytes.slice()]));
  }

  /** Renames a committed object, never overwriting; records the move in {@linkcode moves}. */
  move(from: string, to: string): Promise<void> {
    const bytes = this.objects.get(from);
    if (bytes === undefined) return Promise.reject(notFound(from));
    if (this.objects.has(to)) {
      return Promise.reject(
        new PermanentError(`Memory destination refuses to overwrite '${to}'; use another key`, {
          code: "destination.exists",
        }),
      );
    }
    this.objects.delete(from);
    this.objects.set(to, bytes);
    this.moves.push([from, to]);
    return Promise.resolve();
  }

  /** Deletes a committed object (absent is fine); records the key in {@linkcode removes}. */
  remove(key: string): Promise<void> {
    if (this.objects.delete(key)) this.removes.push(key);
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return Promise.resolve();
  }
}
