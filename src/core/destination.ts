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

/** How a destination makes an object visible. */
export interface DestinationCapabilities {
  /** atomic: temp + rename; on_close: multipart completion; streaming: bytes are visible as sent. */
  readonly commit: "atomic" | "on_close" | "streaming";
  readonly idempotentOverwrite: boolean;
  readonly retrySafe: boolean;
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
   * Deletes a committed object; used by doctor's probe; destinations that cannot delete omit it.
   * Resolves once nothing is committed at `key`: an absent key is not an error (object stores
   * delete idempotently). Never touches a staging object, never follows a link.
   */
  remove?(key: string, options?: SignalOptions): Promise<void>;
}
