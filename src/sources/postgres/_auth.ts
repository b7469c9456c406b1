/**
 * Password authentication exchanges: MD5 (`md5` + hex of md5(md5(password + user) + salt)) and
 * SCRAM-SHA-256 (RFC 5802/7677) with the server signature verified, on WebCrypto.
 *
 * @module
 */
import { createHash } from "node:crypto";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function md5Hex(data: Uint8Array): string {
  return createHash("md5").update(data).digest("hex");
}

/**
 * The PasswordMessage payload for AuthenticationMD5Password.
 *
 * @param user Login role.
 * @param password Cleartext password.
 * @param salt The 4 salt bytes sent by the server.
 * @returns `md5` followed by 32 hex digits.
 */
export function md5Password(user: string, password: string, salt: Uint8Array): string {
  const inner = md5Hex(encoder.encode(password + user));
  const outer = new Uint8Array(32 + salt.length);
  outer.set(encoder.encode(inner));
  outer.set(salt, 32);
  return "md5" + md5Hex(outer);
}

async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, data as Uint8Array<ArrayBuffer>));
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
}

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(",")) {
    const eq = part.indexOf("=");
    if (eq > 0) out.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return out;
}

/** Why a SCRAM exchange was refused by the client. */
export class ScramError extends Error {
  /** @param message What was wrong with the server's answer. */
  constructor(message: string) {
    super(message);
    this.name = "ScramError";
  }
}

/**
 * Client side of one SCRAM-SHA-256 exchange (no channel binding).
 *
 * @example
 * ```ts
 * import { ScramClient } from "./_auth.ts";
 * const c = new ScramClient("pencil", "rOprNGfwEbeRWgbNEkqO");
 * if (new TextDecoder().decode(c.clientFirst()) !== "n,,n=,r=rOprNGfwEbeRWgbNEkqO") throw new Error();
 * ```
 */
export class ScramClient {
  readonly #password: string;
  readonly #nonce: string;
  readonly #user: string;
  #authMessage = "";
  #serverSignature: Uint8Array | undefined;

  /**
   * @param password Cleartext password (used only to derive keys; never stored elsewhere).
   * @param nonce Client nonce; random when omitted (tests pass a fixed one).
   * @param user `n=` attribute; PostgreSQL ignores it and takes the startup user, so it is empty.
   */
  constructor(password: string, nonce?: string, user = "") {
    this.#password = password.normalize("NFKC");
    this.#nonce = nonce ?? b64(crypto.getRandomValues(new Uint8Array(18)));
    this.#user = user;
  }

  /** The client-first-message. PostgreSQL takes the user from the startup packet: `n=` is empty. */
  clientFirst(): Uint8Array {
    return encoder.encode(`n,,${this.#bare()}`);
  }

  #bare(): string {
    return `n=${this.#user},r=${this.#nonce}`;
  }

  /**
   * Answers the server-first-message.
   *
   * @param serverFirst The AuthenticationSASLContinue payload.
   * @returns The client-final-message.
   */
  async clientFinal(serverFirst: Uint8Array): Promise<Uint8Array> {
    const text = decoder.decode(serverFirst);
    const attrs = attributes(text);
    const nonce = attrs.get("r");
    const salt = attrs.get("s");
    const iterations = Number(attrs.get("i"));
    if (!nonce || !nonce.startsWith(this.#nonce) || nonce.length === this.#nonce.length) {
      throw new ScramError("the server nonce does not extend the client nonce");
    }
    if (!salt || !Number.isInteger(iterations) || iterations < 1) {
      throw new ScramError("the server-first-message lacks a salt or an iteration count");
    }
    const key = await crypto.subtle.importKey(
      "raw",
      encoder.encode(this.#password),
      "PBKDF2",
      false,
      ["deriveBits"],
    );
    const salted = new Uint8Array(
      await crypto.subtle.deriveBits(
        {
          name: "PBKDF2",
          hash: "SHA-256",
          salt: unb64(salt) as Uint8Array<ArrayBuffer>,
          iterations,
        },
        key,
        256,
      ),
    );
    const clientKey = await hmac(salted, encoder.encode("Client Key"));
    const storedKey = await sha256(clientKey);
    const withoutProof = `c=biws,r=${nonce}`;
    this.#authMessage = `${this.#bare()},${text},${withoutProof}`;
    const clientSignature = await hmac(storedKey, encoder.encode(this.#authMessage));
    const proof = new Uint8Array(clientKey.length);
    for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
    const serverKey = await hmac(salted, encoder.encode("Server Key"));
    this.#serverSignature = await hmac(serverKey, encoder.encode(this.#authMessage));
    return encoder.encode(`${withoutProof},p=${b64(proof)}`);
  }

  /**
   * Checks the server-final-message so a server that does not know the password is refused.
   *
   * @param serverFinal The AuthenticationSASLFinal payload.
   */
  verifyServerFinal(serverFinal: Uint8Array): void {
    const attrs = attributes(decoder.decode(serverFinal));
    if (attrs.has("e")) throw new ScramError(`the server rejected the proof (${attrs.get("e")})`);
    const v = attrs.get("v");
    if (!v || this.#serverSignature === undefined || v !== b64(this.#serverSignature)) {
      throw new ScramError("the server signature does not match");
    }
  }
}
