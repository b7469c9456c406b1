/**
 * Test data: deterministic, incompressible bytes (xorshift32), so checksums mean something and a
 * failure reproduces.
 *
 * @module
 */

/**
 * `length` pseudo-random bytes from `seed`.
 *
 * @param length How many bytes.
 * @param seed Any 32-bit value; 0 counts as 1.
 * @returns The bytes.
 */
export function pseudoRandomBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  const words = new Uint32Array(out.buffer, 0, length >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < length; i++) out[i] = i & 0xff;
  return out;
}
