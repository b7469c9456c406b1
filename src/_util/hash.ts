/**
 * Content hashes of the manifest and of committed parts: xxh3-64 (fingerprints, `_SUCCESS` body)
 * and MD5 (compared with the MD5/ETag an object store reports). Both come from the WASM builds
 * of npm `hash-wasm`, so bytes are hashed without ever becoming JS strings.
 *
 * Layer: _util. Imports nothing from `src/`.
 *
 * @module
 */
import { createMD5, createXXHash3, type IHasher } from "hash-wasm";

/** An incremental hash over a byte stream. */
export interface Hasher {
  /**
   * Feeds more bytes.
   *
   * @param bytes The next bytes of the content, in order.
   */
  update(bytes: Uint8Array): void;
  /**
   * Finishes the hash. The hasher may not be updated afterwards.
   *
   * @returns The digest in the hasher's documented text form.
   */
  digest(): string;
}

/** A {@linkcode Hasher} whose running state can be carried to another thread. */
export interface PortableHasher extends Hasher {
  /** The running state (hash-wasm's `save()`), to continue the same hash elsewhere. */
  save(): Uint8Array;
  /** Continues from a state taken by `save()` of a hasher of the same algorithm. */
  load(state: Uint8Array): void;
}

class WasmHasher implements PortableHasher {
  readonly #inner: IHasher;
  readonly #render: (inner: IHasher) => string;
  #done = false;

  constructor(inner: IHasher, render: (inner: IHasher) => string) {
    this.#inner = inner;
    this.#render = render;
  }

  update(bytes: Uint8Array): void {
    if (this.#done) throw new Error("Hasher.update() called after digest()");
    this.#inner.update(bytes);
  }

  save(): Uint8Array {
    return this.#inner.save();
  }

  load(state: Uint8Array): void {
    this.#inner.load(state);
  }

  digest(): string {
    if (this.#done) throw new Error("Hasher.digest() called twice");
    this.#done = true;
    return this.#render(this.#inner);
  }
}

/**
 * Creates an xxh3-64 hasher (seed 0), the content and manifest fingerprint (the Rust tool's too).
 *
 * @returns A hasher whose digest is 16 lowercase hex digits (big-endian, as `{:016x}` prints).
 *
 * @example Hash a part while it streams
 * ```ts
 * import { createXxh3 } from "./hash.ts";
 * const hasher = await createXxh3();
 * hasher.update(new TextEncoder().encode("a"));
 * hasher.update(new TextEncoder().encode("bc"));
 * if (hasher.digest().length !== 16) throw new Error("xxh3-64 is 16 hex digits");
 * ```
 */
export async function createXxh3(): Promise<Hasher> {
  // Each call instantiates its own WASM state (the compiled module is cached by hash-wasm), so
  // parts hashed concurrently never share a buffer.
  const inner = await createXXHash3(0, 0);
  inner.init();
  return new WasmHasher(inner, (h) => h.digest("hex"));
}

/**
 * Creates an MD5 hasher, the checksum object stores report (S3 ETag, GCS `md5Hash`, Azure
 * `Content-MD5`).
 *
 * @returns A hasher whose digest is the 16-byte MD5 in standard base64 (24 characters).
 *
 * @example
 * ```ts
 * import { createMd5 } from "./hash.ts";
 * const hasher = await createMd5();
 * if (hasher.digest() !== "1B2M2Y8AsgTpgAmY7PhCfg==") throw new Error("md5 of nothing");
 * ```
 */
export async function createMd5(): Promise<PortableHasher> {
  const inner = await createMD5();
  inner.init();
  return new WasmHasher(inner, (h) => toBase64(h.digest("binary")));
}

/**
 * The xxh3-64 (seed 0) of a whole buffer.
 *
 * @param bytes The content.
 * @returns 16 lowercase hex digits.
 *
 * @example
 * ```ts
 * import { xxh3Hex } from "./hash.ts";
 * if (await xxh3Hex(new Uint8Array()) !== "2d06800538d394c2") throw new Error("xxh3 of nothing");
 * ```
 */
export async function xxh3Hex(bytes: Uint8Array): Promise<string> {
  const hasher = await createXxh3();
  hasher.update(bytes);
  return hasher.digest();
}

/**
 * Standard base64 (with padding) of a small buffer such as a digest.
 *
 * @param bytes The bytes to encode.
 * @returns Their base64 text.
 */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * Hashes many slices of one buffer with xxh3-64 (seed 0), one WASM hasher reused for all of
 * them: the row hash and the unique-column tracking hash thousands of short slices per batch.
 *
 * @returns A function filling `out[i]` with the xxh3-64 of `bytes[offsets[i]..offsets[i+1]]`,
 * read as a signed 64-bit integer (the digest's big-endian bytes, two's complement).
 *
 * @example
 * ```ts
 * import { createSliceHasher } from "./hash.ts";
 * const hash = await createSliceHasher();
 * const out = new BigInt64Array(2);
 * hash(new TextEncoder().encode("ab"), Int32Array.of(0, 0, 2), out);
 * // xxh3-64 of nothing is 2d06800538d394c2
 * if (out[0] !== 0x2d06800538d394c2n) throw new Error();
 * ```
 */
export async function createSliceHasher(): Promise<
  (bytes: Uint8Array, offsets: Int32Array, out: BigInt64Array) => void
> {
  const inner = await createXXHash3(0, 0);
  return (bytes, offsets, out) => {
    for (let i = 0; i < out.length; i++) {
      inner.init();
      inner.update(bytes.subarray(offsets[i]!, offsets[i + 1]!));
      const d = inner.digest("binary");
      out[i] = new DataView(d.buffer, d.byteOffset, 8).getBigInt64(0, false);
    }
  };
}
