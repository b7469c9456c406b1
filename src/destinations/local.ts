/**
 * The local file-system destination: each object is staged in `.<name>.tmp` beside its final
 * name, fsynced, then moved into place, so a reader never sees a partial file; a kill leaves at
 * most the staging file, which the next run removes (docs/run-guarantees.md, "Crash points").
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
  StagingObject,
  Upload,
} from "../core/destination.ts";
import {
  ConfigError,
  PermanentError,
  resourceErrorKind,
  RivetError,
  TransientError,
} from "../core/errors.ts";
import type { DestinationSpec, SignalOptions } from "../core/spec.ts";
import { crashPoint } from "../_util/test_hook.ts";
import { checkKey, checkStagingKey, finalKeyOfStaging, isStagingName } from "./_keys.ts";
import { UploadShell } from "./_upload.ts";

/** Options of {@linkcode LocalDestination.open}. */
export interface LocalDestinationOptions {
  /**
   * Folder that a relative `path`/`prefix` is resolved against. Callers pass the process CWD:
   * the Rust tool resolves local destination paths against the CWD, not the config folder.
   */
  readonly baseDir: string;
}

const capabilities: DestinationCapabilities = {
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
   * @throws {TransientError} `destination.disk_full` or `destination.too_many_open_files` when
   *   the file system is full or the process has no file handle left.
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
   * Lists committed files under the root whose key starts with `prefix`, recursively, in key
   * order. Only regular files are objects: staging files (`.<name>.tmp`, an upload in progress
   * or left by a killed run) are never listed, and symlinks (to files or folders, including a
   * symlinked folder on the path of `prefix`) are skipped, never followed: rivet writes neither.
   *
   * @param prefix Key prefix, e.g. `""`, `orders_` or `_quarantine/`.
   * @param options An abort signal.
   * @returns Objects with key and size (no MD5: a local file has none to report).
   * @throws {ConfigError} `destination.bad_key` when the folder part of `prefix` leaves the root.
   */
  async *list(prefix: string, options: SignalOptions = {}): AsyncIterable<ObjectMeta> {
    const slash = prefix.lastIndexOf("/");
    const start = slash > 0 ? prefix.slice(0, slash) : "";
    if (start !== "") {
      checkKey(start);
      const folder = await this.#folder(start.split("/"), { key: prefix, onSymlink: "skip" });
      if (folder === undefined) return;
    }
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

  /**
   * Size of the committed file at `key`, without following links. A staging name
   * (`.<name>.tmp`) is not an object.
   *
   * @param key Object key relative to the root, validated like {@linkcode create}'s.
   * @param options An abort signal.
   * @returns Key and size (no MD5), or undefined when no file, or only a staging file, is there.
   * @throws {ConfigError} `destination.bad_key` for an absolute key, `..`, NUL or backslash.
   * @throws {PermanentError} `destination.symlink` when the key or one of its folders is a
   *   symlink; `destination.not_a_file` when the key names a folder or a special file.
   */
  async stat(key: string, options: SignalOptions = {}): Promise<ObjectMeta | undefined> {
    checkKey(key);
    options.signal?.throwIfAborted();
    const found = await this.#object(key);
    return found === undefined ? undefined : { key, size: found.info.size };
  }

  /**
   * Streams the committed file at `key`. The file is opened only after `lstat` showed a regular
   * file, and the opened handle must be that same file (device and inode), so a link swapped in
   * between cannot redirect the read outside the root.
   *
   * @param key Object key relative to the root, validated like {@linkcode create}'s.
   * @param options An abort signal, checked before each chunk.
   * @returns The bytes; read to the end or cancel the stream to close the file.
   * @throws {ConfigError} `destination.bad_key` for an absolute key, `..`, NUL or backslash.
   * @throws {PermanentError} `destination.not_found`, `destination.symlink`,
   *   `destination.not_a_file` or `destination.read_failed`.
   */
  async read(key: string, options: SignalOptions = {}): Promise<ReadableStream<Uint8Array>> {
    checkKey(key);
    options.signal?.throwIfAborted();
    const found = await this.#object(key);
    if (found === undefined) throw notFound(key, join(this.root, key));
    let file: Deno.FsFile;
    try {
      file = await Deno.open(found.path, { read: true });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) throw notFound(key, found.path);
      throw ioFailed(found.path, "open", error, "read");
    }
    try {
      const opened = await file.stat();
      if (!sameFile(opened, found.info)) throw symlinkRefused(key, found.path);
    } catch (error) {
      file.close();
      if (error instanceof RivetError) throw error;
      throw ioFailed(found.path, "open", error, "read");
    }
    return abortable(file.readable, options.signal);
  }

  /**
   * Moves the committed file at `from` to `to`, never replacing a file at `to` (hard link, then
   * unlink of `from`), then fsyncs both folders. Missing folders of `to` are created one by one,
   * and none of them, nor `from`, may be a symlink: the file never leaves the root.
   *
   * @param from Key of the committed object, validated like {@linkcode create}'s.
   * @param to New key, e.g. `_quarantine/<run_id>/<name>`; not a staging name.
   * @param options An abort signal, checked before any change.
   * @throws {ConfigError} `destination.bad_key` for a bad key, or a staging name as `to`.
   * @throws {PermanentError} `destination.not_found` when `from` is absent;
   *   `destination.exists` when `to` exists (both files are left untouched);
   *   `destination.symlink`, `destination.not_a_file` or `destination.write_failed`.
   */
  async move(from: string, to: string, options: SignalOptions = {}): Promise<void> {
    checkKey(from);
    checkKey(to);
    const toParts = join(to).split("/");
    if (isStagingName(toParts[toParts.length - 1]!)) {
      throw new ConfigError(
        `Destination key ${JSON.stringify(to)} is not allowed as a move target: it is a staging ` +
          "name that listings skip; use a name that does not start with '.' and end with '.tmp'",
        { code: "destination.bad_key" },
      );
    }
    options.signal?.throwIfAborted();
    const source = await this.#object(from);
    if (source === undefined) throw notFound(from, join(this.root, from));
    const folder = await this.#folder(toParts.slice(0, -1), { key: to, onSymlink: "throw" }, {
      create: true,
    });
    const target = join(folder!, toParts[toParts.length - 1]!);
    options.signal?.throwIfAborted();
    let how: "linked" | "renamed";
    try {
      how = await placeNoClobber(source.path, target);
    } catch (error) {
      if (error instanceof RivetError) throw error;
      if (error instanceof Deno.errors.NotFound) throw notFound(from, source.path);
      throw ioFailed(target, "move the file to", error, "write");
    }
    if (how === "linked") {
      try {
        await Deno.remove(source.path);
      } catch (error) {
        // Leaving the object under both names would make a resumed run see it again; drop the
        // new link (same inode, no data lost) so the move is all or nothing.
        await Deno.remove(target).catch(() => {});
        throw ioFailed(source.path, "remove the moved file", error, "write");
      }
    }
    await syncDir(dirname(target));
    if (dirname(target) !== dirname(source.path)) await syncDir(dirname(source.path));
  }

  /**
   * Deletes the committed file at `key` (doctor's probe), then fsyncs its folder. The file is
   * found like {@linkcode stat} finds it: a symlink at the key or on its folders is refused, not
   * removed, and a staging name is no object, so an upload in progress is never touched.
   *
   * @param key Object key relative to the root, validated like {@linkcode create}'s.
   * @param options An abort signal, checked before the change.
   * @throws {ConfigError} `destination.bad_key` for an absolute key, `..`, NUL or backslash.
   * @throws {PermanentError} `destination.symlink`, `destination.not_a_file` or
   *   `destination.write_failed` (e.g. a read-only folder).
   */
  async remove(key: string, options: SignalOptions = {}): Promise<void> {
    checkKey(key);
    options.signal?.throwIfAborted();
    const found = await this.#object(key);
    if (found === undefined) return;
    options.signal?.throwIfAborted();
    try {
      // unlink(2) removes a name, never what a link planted meanwhile points to.
      await Deno.remove(found.path);
    } catch (error) {
      if (isMissing(error)) return;
      throw ioFailed(found.path, "remove", error, "write");
    }
    await syncDir(dirname(found.path));
  }

  /**
   * Lists the staging files (`.<name>.tmp`) in the folder of `prefix` whose final name starts
   * with `prefix`: uploads in progress, or files that a killed run left (empty, partial, or
   * complete but never renamed). Symlinked folders are not entered; a staging name that is a
   * symlink is listed (size 0) so that it can be removed, never followed.
   *
   * @param prefix Final-key prefix, e.g. `orders_`.
   * @param options An abort signal.
   * @returns Staging key, final key and size of each.
   */
  async *listStaging(prefix: string, options: SignalOptions = {}): AsyncIterable<StagingObject> {
    const slash = prefix.lastIndexOf("/");
    const folderKey = slash >= 0 ? prefix.slice(0, slash) : "";
    let dir = this.root;
    if (folderKey !== "") {
      checkKey(folderKey);
      const folder = await this.#folder(folderKey.split("/"), {
        key: prefix,
        onSymlink: "skip",
      });
      if (folder === undefined) return;
      dir = folder;
    }
    options.signal?.throwIfAborted();
    const entries: Deno.DirEntry[] = [];
    try {
      for await (const entry of Deno.readDir(dir)) entries.push(entry);
    } catch (error) {
      if (isMissing(error)) return;
      throw ioFailed(dir, "list the folder", error, "read");
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const base = folderKey === "" ? "" : `${folderKey}/`;
    for (const entry of entries) {
      if (entry.isDirectory) continue;
      const finalKey = finalKeyOfStaging(base + entry.name);
      if (finalKey === undefined || !finalKey.startsWith(prefix)) continue;
      let size = 0;
      try {
        const info = await Deno.lstat(join(dir, entry.name));
        size = info.isFile ? info.size : 0;
      } catch (error) {
        if (isMissing(error)) continue;
        throw ioFailed(join(dir, entry.name), "inspect", error, "read");
      }
      yield { key: base + entry.name, finalKey, size };
    }
  }

  /**
   * Removes a staging file (its name: a symlink there is unlinked, its target untouched), then
   * fsyncs its folder. A folder on the way that is a symlink is not entered.
   *
   * @param key A staging key, `dir/.<name>.tmp`.
   * @param options An abort signal, checked before the change.
   * @throws {ConfigError} `destination.bad_key` for a key that is not a staging name.
   * @throws {PermanentError} `destination.not_a_file` for a folder, `destination.write_failed`.
   */
  async removeStaging(key: string, options: SignalOptions = {}): Promise<void> {
    checkStagingKey(key, "Local");
    options.signal?.throwIfAborted();
    const parts = key.split("/");
    const dir = await this.#folder(parts.slice(0, -1), { key, onSymlink: "skip" });
    if (dir === undefined) return;
    const path = join(dir, parts[parts.length - 1]!);
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(path);
    } catch (error) {
      if (isMissing(error)) return;
      throw ioFailed(path, "inspect", error, "read");
    }
    if (info.isDirectory) throw notAFile(key, path);
    try {
      await Deno.remove(path);
    } catch (error) {
      if (isMissing(error)) return;
      throw ioFailed(path, "remove", error, "write");
    }
    await syncDir(dir);
  }

  /**
   * The regular file at `key`, checked with `lstat` from the root down.
   *
   * @returns Its path and lstat info, or undefined when it is absent or a staging name.
   */
  async #object(key: string): Promise<{ path: string; info: Deno.FileInfo } | undefined> {
    const parts = join(key).split("/");
    const name = parts[parts.length - 1]!;
    if (isStagingName(name)) return undefined;
    const folder = await this.#folder(parts.slice(0, -1), { key, onSymlink: "throw" });
    if (folder === undefined) return undefined;
    const path = join(folder, name);
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(path);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw ioFailed(path, "inspect", error, "read");
    }
    if (info.isSymlink) throw symlinkRefused(key, path);
    if (!info.isFile) throw notAFile(key, path);
    return { path, info };
  }

  /**
   * Walks the folders `parts` below the root with `lstat`, so that no symlinked folder is ever
   * entered (a symlinked folder planted in the output could otherwise lead outside it).
   *
   * @returns The folder's path, or undefined when it is missing (or a symlink, with `skip`).
   */
  async #folder(
    parts: readonly string[],
    on: { readonly key: string; readonly onSymlink: "throw" | "skip" },
    options: { readonly create?: boolean } = {},
  ): Promise<string | undefined> {
    let dir = this.root;
    for (const part of parts) {
      dir = join(dir, part);
      let info: Deno.FileInfo | undefined;
      try {
        info = await Deno.lstat(dir);
      } catch (error) {
        if (!isMissing(error)) throw ioFailed(dir, "inspect", error, "read");
      }
      if (info === undefined && options.create === true) {
        try {
          await Deno.mkdir(dir);
        } catch (error) {
          if (!(error instanceof Deno.errors.AlreadyExists)) {
            throw ioFailed(dir, "create the folder", error, "write");
          }
        }
        // Looks again: a concurrent creator may have put a link, not a folder, there.
        try {
          info = await Deno.lstat(dir);
        } catch (error) {
          throw ioFailed(dir, "create the folder", error, "write");
        }
      }
      if (info === undefined) return undefined;
      if (info.isSymlink) {
        if (on.onSymlink === "skip") return undefined;
        throw symlinkRefused(on.key, dir);
      }
      if (!info.isDirectory) {
        if (options.create === true) throw notAFile(on.key, dir, "folder");
        return undefined;
      }
    }
    return dir;
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

class LocalUpload extends UploadShell {
  readonly #init: LocalUploadInit;
  #fileOpen = true;
  #size = 0;

  constructor(init: LocalUploadInit) {
    super(init.key, init.signal);
    this.#init = init;
  }

  protected override async writeChunk(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.length) offset += await this.#init.file.write(chunk.subarray(offset));
    this.#size += chunk.length;
  }

  protected override writeError(error: unknown): unknown {
    return writeFailed(this.#init.tempPath, "write", error);
  }

  async commit(finalKey?: string): Promise<ObjectMeta> {
    await this.closeForCommit();
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
    this.state = "committed";
    this.#init.onDone(this);
    await syncDir(dirname(finalPath));
    return { key, size: this.#size };
  }

  async abort(_reason?: unknown): Promise<void> {
    if (this.state !== "open") return;
    this.state = "aborted";
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
}

/**
 * Moves the staged file to its final name unless that name exists. A leftover staging link is
 * harmless (the next create of this key unlinks it, listings skip it), so unlinking is best
 * effort.
 */
async function moveNoClobber(from: string, to: string): Promise<void> {
  if (await placeNoClobber(from, to) === "renamed") return;
  try {
    await Deno.remove(from);
  } catch { /* committed under its final name already: see above */ }
}

/**
 * Gives `from` the name `to` unless that name exists. A hard link fails atomically with EEXIST,
 * which a check-then-rename cannot promise; file systems without hard links fall back to the
 * check. `link(2)` never follows a symlink at `from`.
 *
 * @returns `linked` when `from` still has to be unlinked, `renamed` when it is gone already.
 * @throws {PermanentError} `destination.exists` when `to` exists.
 */
async function placeNoClobber(from: string, to: string): Promise<"linked" | "renamed"> {
  try {
    await Deno.link(from, to);
    return "linked";
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) throw exists(to);
    if (error instanceof Deno.errors.NotFound) throw error;
    try {
      await Deno.lstat(to);
    } catch (statError) {
      if (!(statError instanceof Deno.errors.NotFound)) throw statError;
      await Deno.rename(from, to);
      return "renamed";
    }
    throw exists(to);
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

/** Whether two infos describe the same file (where the platform reports inodes). */
function sameFile(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  if (a.ino === null || b.ino === null || a.dev === null || b.dev === null) return a.isFile;
  return a.ino === b.ino && a.dev === b.dev;
}

function isMissing(error: unknown): boolean {
  return error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory;
}

/** Stops the file stream between chunks once `signal` aborts, closing the file. */
function abortable(
  bytes: ReadableStream<Uint8Array>,
  signal: AbortSignal | undefined,
): ReadableStream<Uint8Array> {
  if (signal === undefined) return bytes;
  const reader = bytes.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (signal.aborted) {
        await reader.cancel(signal.reason);
        controller.error(signal.reason);
        return;
      }
      const { value, done } = await reader.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

function notFound(key: string, path: string): PermanentError {
  return new PermanentError(
    `Local destination has no object at key '${key}' ('${path}'); check the key, or list the ` +
      "destination to see what it holds",
    { code: "destination.not_found" },
  );
}

function symlinkRefused(key: string, path: string): PermanentError {
  return new PermanentError(
    `Local destination refuses key '${key}': '${path}' is a symlink (or was replaced by one ` +
      "while being opened), and rivet never follows links in its output folder; remove the " +
      "link or move the real file into the destination",
    { code: "destination.symlink" },
  );
}

function notAFile(key: string, path: string, wanted = "regular file"): PermanentError {
  return new PermanentError(
    `Local destination key '${key}' needs '${path}' to be a ${wanted}, but it is something ` +
      "else; remove or rename it, or choose another key",
    { code: "destination.not_a_file" },
  );
}

function exists(path: string): PermanentError {
  return new PermanentError(
    `Local destination refuses to overwrite the committed file '${path}'; remove it or ` +
      "write to another path (rivet never replaces a committed part)",
    { code: "destination.exists" },
  );
}

function writeFailed(path: string, action: string, cause: unknown): RivetError {
  return ioFailed(path, action, cause, "write");
}

/**
 * A local I/O failure as an error naming the path, with a remedy per errno: a full disk, an
 * exceeded quota or too many open files is transient (`destination.disk_full`,
 * `destination.too_many_open_files`: the run is resumable once the resource is freed), anything
 * else permanent.
 *
 * @param path The file or folder involved.
 * @param action What rivet was doing (`write`, `commit`, `create the folder`, `open`, …).
 * @param cause The underlying error.
 * @param direction `write` gives `destination.write_failed`, `read` `destination.read_failed`.
 */
function ioFailed(
  path: string,
  action: string,
  cause: unknown,
  direction: "read" | "write",
): RivetError {
  const resource = resourceErrorKind(cause);
  if (resource === "disk_full") {
    return new TransientError(
      `disk full at '${dirname(path)}': could not ${action} '${path}' (no space left on the ` +
        "device, or the disk quota is used up)",
      {
        code: "destination.disk_full",
        hint: "free space on that file system (or choose another destination path), then run " +
          "again; a checkpointed chunked export continues with --resume",
        cause,
      },
    );
  }
  if (resource === "too_many_open_files") {
    return new TransientError(
      `too many open files: could not ${action} '${path}'`,
      {
        code: "destination.too_many_open_files",
        hint: "raise the open-file limit (ulimit -n) or run fewer exports at once, then run " +
          "again; a checkpointed chunked export continues with --resume",
        cause,
      },
    );
  }
  const code = (cause as { code?: unknown } | null)?.code;
  let why: string;
  let remedy: string;
  if (code === "EROFS") {
    why = "the file system is read-only";
    remedy = "choose a writable destination path";
  } else if (
    code === "EACCES" || code === "EPERM" || cause instanceof Deno.errors.PermissionDenied
  ) {
    why = "permission denied";
    remedy = `make the folder ${direction}able by this user or choose another destination path`;
  } else if (cause instanceof Deno.errors.NotCapable) {
    why = `Deno ${direction} permission is missing`;
    remedy = `grant --allow-${direction} for the destination path`;
  } else {
    why = cause instanceof Error ? cause.message : String(cause);
    remedy = "check the destination path";
  }
  return new PermanentError(`Local destination could not ${action} '${path}': ${why}; ${remedy}`, {
    code: `destination.${direction}_failed`,
    cause,
  });
}
