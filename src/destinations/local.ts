/**
 * The local file-system destination: each object is staged in `.<name>.tmp` beside its final
 * name, fsynced, then moved into place, so a reader never sees a partial file (reference §5,
 * reliability.md §1.2 and §1.4).
 *
 * Layer: destinations. Imports core/ and _util/ only.
 *
 * @module
 */
import { basename, dirname, join, resolve } from "node:path";
import type {
  CreateOptions,
  Destination,
  DestinationCapabilities,
  ObjectMeta,
  Upload,
} from "../core/destination.ts";
import { PermanentError, RivetError } from "../core/errors.ts";
import type { DestinationSpec, SignalOptions } from "../core/spec.ts";
import { crashPoint } from "../_util/test_hook.ts";
import { checkKey, isStagingName } from "./_keys.ts";

/** Options of {@linkcode LocalDestination.open}. */
export interface LocalDestinationOptions {
  /**
   * Folder that a relative `path`/`prefix` is resolved against. Callers pass the process CWD:
   * the reference tool resolves local destination paths against the CWD, not the config folder.
   */
  readonly baseDir: string;
}

const capabilities: DestinationCapabilities = {
  commit: "atomic",
  // A committed part is never replaced (file names are collision-proof, not idempotent).
  idempotentOverwrite: false,
  retrySafe: true,
  persistent: true,
};

/**
 * Writes objects as files under one root folder.
 *
 * @example Write and commit one object
 * ```ts
 * import { LocalDestination } from "./local.ts";
 * const dir = await Deno.makeTempDir();
 * await using dest = await LocalDestination.open({ path: "out" }, { baseDir: dir });
 * const upload = await dest.create("a.csv");
 * await ReadableStream.from([new TextEncoder().encode("id\n1\n")]).pipeTo(upload.writable);
 * const meta = await upload.commit();
 * if (meta.size !== 5) throw new Error("5 bytes were written");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class LocalDestination implements Destination {
  /** Always `local`. */
  readonly kind = "local" as const;
  /** Atomic rename, retry-safe, never overwrites a committed part. */
  readonly capabilities: DestinationCapabilities = capabilities;
  /** `file://` followed by the absolute root folder. */
  readonly uri: string;
  /** Absolute root folder. */
  readonly root: string;
  readonly #open = new Set<LocalUpload>();

  private constructor(root: string) {
    this.root = root;
    this.uri = `file://${root}`;
  }

  /**
   * Opens (and creates, with parents) the root folder: `path`, else `prefix`, else `.`.
   *
   * @param spec The destination keys; only `path` and `prefix` are used.
   * @param options The folder a relative root is resolved against.
   * @returns The destination.
   * @throws {PermanentError} `destination.write_failed` when the folder cannot be created.
   */
  static async open(
    spec: Pick<DestinationSpec, "path" | "prefix">,
    options: LocalDestinationOptions,
  ): Promise<LocalDestination> {
    const root = resolve(options.baseDir, spec.path ?? spec.prefix ?? ".");
    try {
      await Deno.mkdir(root, { recursive: true });
    } catch (error) {
      throw writeFailed(root, "create the folder", error);
    }
    return new LocalDestination(root);
  }

  /**
   * Starts an object: opens `.<name>.tmp` exclusively (mode 0600) in the final folder. A stale
   * staging file of that name (left by a killed run, or planted as a symlink) is unlinked once,
   * never followed.
   *
   * @param key Object key relative to the root.
   * @param options `overwrite` for `manifest.json`/`_SUCCESS`; an abort signal.
   * @returns The upload; nothing is visible at `key` before `commit()`.
   * @throws {ConfigError} `destination.bad_key` for an absolute key, `..`, NUL or backslash.
   * @throws {PermanentError} `destination.write_failed` when the file cannot be created.
   */
  async create(key: string, options: CreateOptions = {}): Promise<Upload> {
    checkKey(key);
    options.signal?.throwIfAborted();
    const finalPath = join(this.root, key);
    const dir = dirname(finalPath);
    const tempPath = join(dir, `.${basename(finalPath)}.tmp`);
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (error) {
      throw writeFailed(dir, "create the folder", error);
    }
    const file = await openExclusive(tempPath);
    const upload = new LocalUpload({
      root: this.root,
      key,
      tempPath,
      file,
      overwrite: options.overwrite === true,
      signal: options.signal,
      onDone: (u) => this.#open.delete(u),
    });
    this.#open.add(upload);
    return upload;
  }

  /**
   * Lists committed files under the root whose key starts with `prefix`, recursively, skipping
   * staging files and symlinks (rivet never writes either as an object).
   *
   * @param prefix Key prefix, e.g. `""`, `orders_` or `_quarantine/`.
   * @param options An abort signal.
   * @returns Objects with key and size (no MD5: a local file has none to report).
   */
  async *list(prefix: string, options: SignalOptions = {}): AsyncIterable<ObjectMeta> {
    const slash = prefix.lastIndexOf("/");
    const start = slash > 0 ? prefix.slice(0, slash) : "";
    if (start !== "") checkKey(start);
    yield* this.#walk(start, prefix, options.signal);
  }

  async *#walk(
    rel: string,
    prefix: string,
    signal: AbortSignal | undefined,
  ): AsyncIterable<ObjectMeta> {
    signal?.throwIfAborted();
    const dir = rel === "" ? this.root : join(this.root, rel);
    const entries: Deno.DirEntry[] = [];
    try {
      for await (const entry of Deno.readDir(dir)) entries.push(entry);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw writeFailed(dir, "list the folder", error);
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const key = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory) {
        const asDir = `${key}/`;
        if (asDir.startsWith(prefix) || prefix.startsWith(asDir)) {
          yield* this.#walk(key, prefix, signal);
        }
      } else if (entry.isFile && !isStagingName(entry.name) && key.startsWith(prefix)) {
        const info = await Deno.lstat(join(dir, entry.name));
        yield { key, size: info.size };
      }
    }
  }

  /** Aborts every upload that was neither committed nor aborted. */
  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all([...this.#open].map((upload) => upload.abort()));
  }
}

async function openExclusive(path: string): Promise<Deno.FsFile> {
  const open = () => Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  try {
    return await open();
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) {
      throw writeFailed(path, "create the staging file", error);
    }
  }
  // A stale staging file: unlink the name itself (a symlink is removed, its target untouched),
  // then create once more. O_EXCL refuses to follow a link planted in between.
  try {
    await Deno.remove(path);
    return await open();
  } catch (error) {
    throw writeFailed(path, "replace the stale staging file", error);
  }
}

interface LocalUploadInit {
  readonly root: string;
  readonly key: string;
  readonly tempPath: string;
  readonly file: Deno.FsFile;
  readonly overwrite: boolean;
  readonly signal: AbortSignal | undefined;
  readonly onDone: (upload: LocalUpload) => void;
}

class LocalUpload implements Upload, AsyncDisposable {
  readonly writable: WritableStream<Uint8Array>;
  readonly #init: LocalUploadInit;
  #state: "open" | "committed" | "aborted" = "open";
  #fileOpen = true;
  #streamClosed = false;
  #size = 0;

  constructor(init: LocalUploadInit) {
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
    if (this.#init.signal?.aborted) {
      await this.abort(this.#init.signal.reason);
      throw this.#init.signal.reason;
    }
    try {
      let offset = 0;
      while (offset < chunk.length) offset += await this.#init.file.write(chunk.subarray(offset));
      this.#size += chunk.length;
    } catch (error) {
      await this.abort(error);
      throw writeFailed(this.#init.tempPath, "write", error);
    }
  }

  async commit(finalKey?: string): Promise<ObjectMeta> {
    if (this.#state !== "open") {
      throw new Error(`commit() of '${this.#init.key}' called after ${this.#state}`);
    }
    if (!this.#streamClosed) {
      // Closing waits for queued writes; a writer still holding the lock is a caller bug.
      if (this.writable.locked) {
        throw new Error(`commit() of '${this.#init.key}' called while its writable is locked`);
      }
      await this.writable.close();
    }
    const { root, tempPath, file } = this.#init;
    const key = finalKey === undefined ? this.#init.key : checkKey(finalKey);
    const finalPath = join(root, key);
    let step = "flush";
    try {
      await file.syncData();
      file.close();
      this.#fileOpen = false;
      step = "commit";
      if (dirname(finalPath) !== dirname(tempPath)) {
        await Deno.mkdir(dirname(finalPath), { recursive: true });
      }
      await crashPoint("before_commit_rename");
      if (this.#init.overwrite) await Deno.rename(tempPath, finalPath);
      else await moveNoClobber(tempPath, finalPath);
    } catch (error) {
      await this.abort(error);
      if (error instanceof RivetError) throw error;
      throw writeFailed(step === "flush" ? tempPath : finalPath, step, error);
    }
    this.#state = "committed";
    this.#init.onDone(this);
    await syncDir(dirname(finalPath));
    return { key, size: this.#size };
  }

  async abort(_reason?: unknown): Promise<void> {
    if (this.#state !== "open") return;
    this.#state = "aborted";
    this.#init.onDone(this);
    if (this.#fileOpen) {
      this.#fileOpen = false;
      try {
        this.#init.file.close();
      } catch { /* already closed by a failed write */ }
    }
    try {
      await Deno.remove(this.#init.tempPath);
    } catch { /* gone already, or the folder vanished: nothing left to clean */ }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.abort();
  }
}

/**
 * Moves the staged file to its final name unless that name exists. A hard link fails atomically
 * with EEXIST, which a check-then-rename cannot promise; file systems without hard links fall
 * back to the check.
 */
async function moveNoClobber(from: string, to: string): Promise<void> {
  try {
    await Deno.link(from, to);
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) throw exists(to);
    try {
      await Deno.lstat(to);
    } catch (statError) {
      if (!(statError instanceof Deno.errors.NotFound)) throw statError;
      await Deno.rename(from, to);
      return;
    }
    throw exists(to);
  }
  try {
    await Deno.remove(from);
  } catch {
    // The object is committed under its final name; a leftover staging link is harmless (the
    // next create of this key unlinks it) and listings skip it.
  }
}

async function syncDir(dir: string): Promise<void> {
  // Persists the rename itself. Best effort: the object is already visible, and some file
  // systems (and Windows) refuse to fsync a directory.
  try {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch { /* see above */ }
}

function exists(path: string): PermanentError {
  return new PermanentError(
    `Local destination refuses to overwrite the committed file '${path}'; remove it or ` +
      "write to another path (rivet never replaces a committed part)",
    { code: "destination.exists" },
  );
}

/**
 * A local I/O failure as a permanent error naming the path, with a remedy per errno.
 *
 * @param path The file or folder involved.
 * @param action What rivet was doing (`write`, `commit`, `create the folder`, …).
 * @param cause The underlying error.
 */
function writeFailed(path: string, action: string, cause: unknown): PermanentError {
  const code = (cause as { code?: unknown } | null)?.code;
  let why: string;
  let remedy: string;
  if (code === "ENOSPC" || code === "EDQUOT") {
    why = "no space left on the device";
    remedy = "free space or choose another destination path";
  } else if (code === "EROFS") {
    why = "the file system is read-only";
    remedy = "choose a writable destination path";
  } else if (
    code === "EACCES" || code === "EPERM" || cause instanceof Deno.errors.PermissionDenied
  ) {
    why = "permission denied";
    remedy = "make the folder writable by this user or choose another destination path";
  } else if (cause instanceof Deno.errors.NotCapable) {
    why = "Deno write permission is missing";
    remedy = "grant --allow-write for the destination path";
  } else {
    why = cause instanceof Error ? cause.message : String(cause);
    remedy = "check the destination path";
  }
  return new PermanentError(`Local destination could not ${action} '${path}': ${why}; ${remedy}`, {
    code: "destination.write_failed",
    cause,
  });
}
