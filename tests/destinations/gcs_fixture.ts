import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Destination, ObjectMeta, Upload } from "../../src/core/destination.ts";
import { RivetError } from "../../src/core/errors.ts";
import type { DestinationSpec } from "../../src/core/spec.ts";
import { GcsDestination, type GcsDestinationOptions } from "../../src/destinations/gcs.ts";
import { type GcsServer, type GcsServerOptions, startGcsServer } from "../_helpers/gcs_server.ts";
import { pseudoRandomBytes } from "../_helpers/bytes.ts";

export const BUCKET = "rivet-test";
export const MiB = 1024 * 1024;
export const text = (s: string) => new TextEncoder().encode(s);
export const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("base64");

/** Deterministic, incompressible bytes (see tests/_helpers/bytes.ts). */
export const bytesOf = pseudoRandomBytes;

function* pieces(data: Uint8Array, size: number): Generator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

export async function write(
  upload: Upload,
  data: Uint8Array,
  pieceSize = 64 * 1024,
): Promise<void> {
  await ReadableStream.from(pieces(data, pieceSize)).pipeTo(upload.writable);
}

export async function collect(dest: Destination, prefix = ""): Promise<ObjectMeta[]> {
  const out: ObjectMeta[] = [];
  for await (const meta of dest.list(prefix)) out.push(meta);
  return out;
}

export async function readAll(dest: Destination, key: string): Promise<Uint8Array> {
  return new Uint8Array(await new Response(await dest.read(key)).arrayBuffer());
}

export const noEnv = () => undefined;

export async function server(options: GcsServerOptions = {}): Promise<GcsServer> {
  return await startGcsServer({ buckets: [BUCKET], ...options });
}

export function open(
  endpoint: string,
  spec: Partial<DestinationSpec> = {},
  options: Partial<GcsDestinationOptions> = {},
): Promise<GcsDestination> {
  return GcsDestination.open(
    { kind: "gcs", bucket: BUCKET, endpoint, allowAnonymous: true, ...spec },
    { env: noEnv, retry: { baseDelayMs: 5, maxDelayMs: 50 }, warn: () => {}, ...options },
  );
}

export function isCode(code: string, cls: new (...a: never[]) => RivetError = RivetError) {
  return (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name} ${code}, got ${e}`);
    assert.equal((e as RivetError).code, code, (e as Error).message);
    return true;
  };
}

export const routes = (gcs: GcsServer) => gcs.requests.map((r) => r.route);

// ------------------------------------------------------------------------------------------
// Key layout
