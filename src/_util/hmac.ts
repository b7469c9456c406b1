/**
 * HMAC-SHA256 through WebCrypto, as lowercase hex: the signature of webhook notifications.
 *
 * Layer: _util. Imports nothing from `src/`.
 *
 * @module
 */

/**
 * HMAC-SHA256 of `message` under `key`, as 64 lowercase hex digits.
 *
 * @param key The shared secret (its UTF-8 bytes are the key).
 * @param message The exact bytes to sign.
 * @returns The hex digest.
 *
 * @example RFC 4231 test case 2
 * ```ts
 * import { hmacSha256Hex } from "./hmac.ts";
 * const mac = await hmacSha256Hex("Jefe", new TextEncoder().encode("what do ya want for nothing?"));
 * if (mac !== "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843") throw new Error();
 * ```
 */
export async function hmacSha256Hex(key: string, message: Uint8Array): Promise<string> {
  const cryptoKey = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(
    await crypto.subtle.sign("HMAC", cryptoKey, message as Uint8Array<ArrayBuffer>),
  );
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}
