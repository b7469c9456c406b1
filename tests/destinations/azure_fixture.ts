import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  BlobServiceClient,
  type BlobServiceClient as BlobServiceClientType,
  type ContainerClient,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";
import type { Upload } from "../../src/core/destination.ts";
import { RivetError } from "../../src/core/errors.ts";
import type { DestinationSpec } from "../../src/core/spec.ts";
import type { Azurite } from "../_helpers/azurite.ts";
import { AzureDestination, type AzureDestinationOptions } from "../../src/destinations/azure.ts";
import { pseudoRandomBytes } from "../_helpers/bytes.ts";

export const MiB = 1024 * 1024;
// The SDK keeps pooled sockets and timers past a test's end: the emulator is stopped at the end.
export const sanitize = { sanitizeOps: false, sanitizeResources: false };

/** Deterministic bytes, different per seed. */
export function bytes(size: number, seed = 1): Uint8Array {
  return pseudoRandomBytes(size, (seed * 2654435761) >>> 0);
}

export function md5(data: Uint8Array): string {
  return createHash("md5").update(data).digest("base64");
}

export async function write(upload: Upload, data: Uint8Array, chunk = 64 * 1024): Promise<void> {
  const writer = upload.writable.getWriter();
  for (let i = 0; i < data.length; i += chunk) await writer.write(data.subarray(i, i + chunk));
  await writer.close();
}

/** Writes then commits; a failure of either rejects (a staged object may fail while writing). */
export async function writeAndCommit(
  upload: Upload,
  data: Uint8Array,
  finalKey?: string,
): Promise<unknown> {
  await write(upload, data, 1024 * 1024);
  return await upload.commit(finalKey);
}

export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export async function rejects(promise: Promise<unknown>, code: string): Promise<RivetError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof RivetError, `expected a RivetError, got ${error}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

/** Blocks the service holds for a blob name (committed and not), or undefined without one. */
export async function blockList(
  container: ContainerClient,
  name: string,
): Promise<{ committed: number[]; uncommitted: number[] } | undefined> {
  try {
    const list = await container.getBlockBlobClient(name).getBlockList("all");
    return {
      committed: (list.committedBlocks ?? []).map((b) => b.size),
      uncommitted: (list.uncommittedBlocks ?? []).map((b) => b.size),
    };
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return undefined;
    throw error;
  }
}

export async function blobNames(container: ContainerClient): Promise<string[]> {
  const names: string[] = [];
  for await (const item of container.listBlobsFlat()) names.push(item.name);
  return names;
}

/** Changes to the fixture's spec; an `undefined` value removes the key. */
export type SpecPatch = { [K in keyof DestinationSpec]?: DestinationSpec[K] | undefined };

export function patch(base: DestinationSpec, changes: SpecPatch): DestinationSpec {
  const out: Record<string, unknown> = { ...base, ...changes };
  for (const [key, value] of Object.entries(out)) if (value === undefined) delete out[key];
  return out as unknown as DestinationSpec;
}

export interface Fixture {
  readonly azurite: Azurite;
  readonly service: BlobServiceClientType;
  readonly warnings: string[];
  /** The code of each warning, in the same order. */
  readonly codes: (string | undefined)[];
  /** A fresh container for one step. */
  container(): Promise<ContainerClient>;
  /** Opens a destination on `container` with the dev account key from `AZ_KEY`. */
  open(
    container: string,
    spec?: SpecPatch,
    options?: Partial<AzureDestinationOptions>,
  ): Promise<AzureDestination>;
}

let containers = 0;

export function fixture(azurite: Azurite): Fixture {
  const service = new BlobServiceClient(
    azurite.endpoint(),
    new StorageSharedKeyCredential(azurite.accountName, azurite.accountKey),
  );
  const warnings: string[] = [];
  const codes: (string | undefined)[] = [];
  const env: Record<string, string> = { AZ_KEY: azurite.accountKey };
  return {
    azurite,
    service,
    warnings,
    codes,
    async container() {
      const client = service.getContainerClient(`rivet-${++containers}`);
      await client.create();
      return client;
    },
    open(container, spec = {}, options = {}) {
      return AzureDestination.open(
        patch({
          kind: "azure",
          bucket: container,
          accountName: azurite.accountName,
          endpoint: azurite.endpoint(),
          accountKeyEnv: "AZ_KEY",
          allowAnonymous: false,
        }, spec),
        {
          env: (name) => env[name],
          warn: (message, code) => {
            warnings.push(message);
            codes.push(code);
          },
          retry: { baseDelayMs: 20, maxDelayMs: 200 },
          ...options,
        },
      );
    },
  };
}

// First of the emulator tests, so the RSS baseline is not inflated by earlier ones.
