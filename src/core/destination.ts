/**
 * The destination contract: bytes in, committed objects out. Never sees Arrow.
 *
 * Layer: core.
 *
 * @module
 */
import type { DestinationKind, SignalOptions } from "./spec.ts";

/** A stored object. */
export interface ObjectMeta {
  /** Key relative to the destination root (prefix/path). */
  readonly key: string;
  readonly size: number;
  /** Base64 MD5 when the store exposes it. */
  readonly md5?: string;
}

/** What the pipeline needs to know about a destination beyond its methods. */
export interface DestinationCapabilities {
  /** False for stdout: no manifest, no `_SUCCESS`, no listing. */
  readonly persistent: boolean;
}

/** One object being written. Nothing is visible at a final key before `commit()`. */
export interface Upload {
  readonly writable: WritableStream<Uint8Array>;
  /**
   * Makes the object visible. `finalKey` renames it when the name is only known at the end
   * (e.g. `_part<i>` suffixes); defaults to the key given to `create`.
   */
  commit(finalKey?: string): Promise<ObjectMeta>;
  /** Discards the object (removes temp files, aborts multipart uploads). Idempotent. */
  abort(reason?: unknown): Promise<void>;
}

/** Options of {@linkcode Destination.create}. */
export interface CreateOptions extends SignalOptions {
  /**
   * Allows `commit()` to replace an existing object. Only for rivet's own rewritable keys
   * (`manifest.json`, `_SUCCESS`): a committed data part is never overwritten.
   */
  readonly overwrite?: boolean;
  /**
   * The key is provisional: `commit(finalKey)` may name another one (part 0 of an output split
   * by `max_file_size` keeps the unsplit name when no second part follows). A store that
   * cannot rename then stages the bytes under the hidden staging name of the key
   * (`.<name>.tmp` in its folder) instead of the key itself, so no object ever carries a data
   * name before its commit and a crash leaves only a staging object, which listings skip and
   * {@linkcode Destination.removeStaging} clears.
   */
  readonly provisional?: boolean;
}

/**
 * A staging object: the hidden `.<name>.tmp` of an upload in progress, or one that a killed run
 * left behind (a partial local file, or a complete object staged for a renaming commit).
 */
export interface StagingObject {
  /** The staging key itself (`dir/.<name>.tmp`). */
  readonly key: string;
  /** The key the staged bytes were meant for (`dir/<name>`). */
  readonly finalKey: string;
  readonly size: number;
}

/** A place to write export output. */
export interface Destination extends AsyncDisposable {
  readonly kind: DestinationKind;
  readonly capabilities: DestinationCapabilities;
  /** Root URI for the manifest: `file:///abs/dir`, `s3://bucket/prefix`, `stdout`. */
  readonly uri: string;
  /** Starts writing the object at `key`. Keys are validated (no absolute path, `..`, NUL). */
  create(key: string, options?: CreateOptions): Promise<Upload>;
  /**
   * Lists committed objects whose key starts with `prefix`, in key order. Staging objects
   * (temp files, multipart uploads in progress) are never listed as objects.
   */
  list(prefix: string, options?: SignalOptions): AsyncIterable<ObjectMeta>;
  /**
   * Metadata of the object at `key` (size, md5 when cheap), or undefined when there is none.
   * Never follows a staging file.
   */
  stat(key: string, options?: SignalOptions): Promise<ObjectMeta | undefined>;
  /**
   * Streams the bytes of the committed object at `key`. Rejects with a PermanentError (code
   * `destination.not_found`) when absent. The caller must read the stream to its end or cancel
   * it, which releases the underlying handle.
   */
  read(key: string, options?: SignalOptions): Promise<ReadableStream<Uint8Array>>;
  /**
   * Moves a committed object to `to` without ever overwriting (quarantine:
   * `_quarantine/<run_id>/<name>`). Parent folders of `to` are created. Rejects with
   * PermanentError code `destination.exists` when `to` exists, `destination.not_found` when
   * `from` is absent.
   */
  move(from: string, to: string, options?: SignalOptions): Promise<void>;
  /**
   * Lists the staging objects whose final key starts with `prefix`, in the folder of `prefix`
   * only (rivet writes its files at the destination root). Destinations without staging omit it.
   */
  listStaging?(prefix: string, options?: SignalOptions): AsyncIterable<StagingObject>;
  /**
   * Deletes the staging object at `key` (a key {@linkcode listStaging} reported). Refuses a key
   * that is not a staging name (`destination.bad_key`), so no committed object is ever removed
   * through it; an absent key is not an error. Nothing checks that no upload still writes to
   * it: callers sweep only the staging names of their own export, which has one writer at a
   * time.
   */
  removeStaging?(key: string, options?: SignalOptions): Promise<void>;
  /**
   * Deletes a committed object; used by doctor's probe; destinations that cannot delete omit it.
   * Resolves once nothing is committed at `key`: an absent key is not an error (object stores
   * delete idempotently). Never touches a staging object, never follows a link.
   */
  remove?(key: string, options?: SignalOptions): Promise<void>;
}
