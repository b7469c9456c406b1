/**
 * The stdout destination: each part's bytes are copied to standard output as they come, for
 * `rivet run … | consumer` pipelines. Nothing is staged, so nothing can be retried or listed.
 *
 * Layer: destinations. Imports core/ and _util/ only.
 *
 * @module
 */
import type {
  CreateOptions,
  Destination,
  DestinationCapabilities,
  ObjectMeta,
  Upload,
} from "../core/destination.ts";
import { PermanentError } from "../core/errors.ts";
import type { SignalOptions } from "../core/spec.ts";
import { checkKey } from "./_keys.ts";

const capabilities: DestinationCapabilities = {
  persistent: false,
};

/**
 * Writes every object to one byte sink, by default `Deno.stdout`, never closing it.
 *
 * @example Capture two parts in memory
 * ```ts
 * import { StdoutDestination } from "./stdout.ts";
 * const chunks: Uint8Array[] = [];
 * const dest = new StdoutDestination(new WritableStream({ write: (c) => void chunks.push(c) }));
 * for (const key of ["a.csv", "b.csv"]) {
 *   const upload = await dest.create(key);
 *   await ReadableStream.from([new TextEncoder().encode("x\n")]).pipeTo(upload.writable);
 *   await upload.commit();
 * }
 * if (chunks.length !== 2) throw new Error("both parts reach the sink");
 * ```
 */
export class StdoutDestination implements Destination {
  /** Always `stdout`. */
  readonly kind = "stdout" as const;
  /** Streaming, not retry-safe, not persistent (no manifest, no `_SUCCESS`). */
  readonly capabilities: DestinationCapabilities = capabilities;
  /** Always `stdout`. */
  readonly uri = "stdout";
  readonly #sink: WritableStream<Uint8Array>;
  // Parts take the sink in turn: the next part waits until the previous one released its writer,
  // so two parts never interleave their bytes.
  #turn: Promise<void> = Promise.resolve();

  /**
   * @param sink Where bytes go; defaults to `Deno.stdout.writable` (tests pass their own).
   */
  constructor(sink?: WritableStream<Uint8Array>) {
    this.#sink = sink ?? Deno.stdout.writable;
  }

  /**
   * Starts a part. Its bytes go to the sink as they are written.
   *
   * @param key Part name, validated like every key but otherwise unused.
   * @param options An abort signal (`overwrite` is meaningless here).
   * @returns The upload.
   */
  // deno-lint-ignore require-await
  async create(key: string, options: CreateOptions = {}): Promise<Upload> {
    checkKey(key);
    options.signal?.throwIfAborted();
    const previous = this.#turn;
    let release!: () => void;
    this.#turn = new Promise((resolve) => (release = resolve));
    return new StdoutUpload(key, { sink: this.#sink, previous, release });
  }

  /**
   * Yields nothing: stdout keeps no objects.
   *
   * @param _prefix Ignored.
   * @param _options Ignored.
   */
  async *list(_prefix: string, _options?: SignalOptions): AsyncIterable<ObjectMeta> {}

  /**
   * Resolves undefined: stdout keeps no objects, so no key ever has one.
   *
   * @param key Validated like every key, otherwise unused.
   * @param _options Ignored.
   * @returns Always undefined.
   * @throws {ConfigError} `destination.bad_key` for an absolute key, `..`, NUL or backslash.
   */
  // deno-lint-ignore require-await
  async stat(key: string, _options?: SignalOptions): Promise<ObjectMeta | undefined> {
    checkKey(key);
    return undefined;
  }

  /**
   * Always rejects: bytes sent to stdout cannot be read back.
   *
   * @param key The object asked for, validated like every key.
   * @param _options Ignored.
   * @throws {ConfigError} `destination.bad_key` for an absolute key, `..`, NUL or backslash.
   * @throws {PermanentError} `destination.unsupported` for any valid key.
   */
  // deno-lint-ignore require-await
  async read(key: string, _options?: SignalOptions): Promise<ReadableStream<Uint8Array>> {
    checkKey(key);
    throw unsupported(`read '${key}'`);
  }

  /**
   * Always rejects: stdout keeps no object to move (nor a folder to quarantine into).
   *
   * @param from The object asked for, validated like every key.
   * @param to Its new key, validated like every key.
   * @param _options Ignored.
   * @throws {ConfigError} `destination.bad_key` for an absolute key, `..`, NUL or backslash.
   * @throws {PermanentError} `destination.unsupported` for any valid keys.
   */
  // deno-lint-ignore require-await
  async move(from: string, to: string, _options?: SignalOptions): Promise<void> {
    checkKey(from);
    checkKey(to);
    throw unsupported(`move '${from}' to '${to}'`);
  }

  /** Nothing to release: stdout stays open for the process. */
  async [Symbol.asyncDispose](): Promise<void> {}
}

function unsupported(action: string): PermanentError {
  return new PermanentError(
    `Stdout destination cannot ${action}: stdout keeps no objects; write to a local or cloud ` +
      "destination to read, validate or quarantine its output",
    { code: "destination.unsupported" },
  );
}

interface Turn {
  readonly sink: WritableStream<Uint8Array>;
  readonly previous: Promise<void>;
  readonly release: () => void;
}

class StdoutUpload implements Upload {
  readonly writable: WritableStream<Uint8Array>;
  readonly #key: string;
  readonly #turn: Turn;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #size = 0;
  #done = false;
  #closed = false;

  constructor(key: string, turn: Turn) {
    this.#key = key;
    this.#turn = turn;
    this.writable = new WritableStream<Uint8Array>({
      write: async (chunk) => {
        if (this.#done) throw new Error(`Part '${this.#key}' was already committed or aborted`);
        const writer = this.#writer ??= await this.#acquire();
        await writer.write(chunk);
        this.#size += chunk.length;
      },
      close: () => {
        this.#closed = true;
        this.#finish();
      },
      abort: () => this.#finish(),
    });
  }

  async #acquire(): Promise<WritableStreamDefaultWriter<Uint8Array>> {
    await this.#turn.previous;
    if (this.#done) throw new Error(`Part '${this.#key}' was aborted`);
    return this.#turn.sink.getWriter();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    // Release, never close: the next part (and the process) keep using stdout.
    this.#writer?.releaseLock();
    this.#turn.release();
  }

  async commit(finalKey?: string): Promise<ObjectMeta> {
    if (!this.#closed && !this.#done) {
      if (this.writable.locked) {
        throw new Error(`commit() of '${this.#key}' called while its writable is locked`);
      }
      await this.writable.close();
    }
    this.#finish();
    return { key: finalKey === undefined ? this.#key : checkKey(finalKey), size: this.#size };
  }

  abort(_reason?: unknown): Promise<void> {
    this.#finish();
    return Promise.resolve();
  }
}
