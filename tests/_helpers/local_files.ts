/**
 * Small helpers of the local destination's tests (unit and tmpfs tiers): temp folders, folder
 * listings, committing a text object, and asserting an error's class and code.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Destination, ObjectMeta } from "../../src/core/destination.ts";
import type { ConfigError, PermanentError } from "../../src/core/errors.ts";

/** UTF-8 bytes of `s`. */
export const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A new temp folder for one test. */
export async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "rivet_local_test_" });
}

/** The sorted entry names of a folder. */
export async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) out.push(entry.name);
  return out.sort();
}

/** Writes `body` at `key` and commits it. */
export async function commitText(
  dest: Destination,
  key: string,
  body: string | Uint8Array,
): Promise<ObjectMeta> {
  const upload = await dest.create(key);
  await ReadableStream.from([typeof body === "string" ? bytes(body) : body]).pipeTo(
    upload.writable,
  );
  return await upload.commit();
}

/** The error a promise rejects with, or undefined when it resolves. */
export async function failure(promise: Promise<unknown>): Promise<unknown> {
  return await promise.then(() => undefined, (e: unknown) => e);
}

/** Asserts that `error` is an instance of `type` with the stable `code`. */
export function assertCode(
  error: unknown,
  type: typeof ConfigError | typeof PermanentError,
  code: string,
): void {
  assert.ok(error instanceof type, `expected ${type.name} ${code}, got ${String(error)}`);
  assert.equal(error.code, code, String(error));
}
