/**
 * The destination contract, as one set of tests that runs against every persistent store:
 * local (a temp folder), S3 (s3rver), GCS (the in-repo server) and Azure (Azurite). Each store's
 * runner file calls {@linkcode destinationContract} with a factory of fresh, empty destinations.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Destination, ObjectMeta, Upload } from "../../src/core/destination.ts";
import { RivetError } from "../../src/core/errors.ts";
import { pseudoRandomBytes } from "../_helpers/bytes.ts";

/** What a runner gives the contract. */
export interface ContractStore extends AsyncDisposable {
  /** A new, empty destination; each test gets its own. */
  open(): Promise<Destination>;
  /** Bytes that need more than one part/chunk/block of this store. */
  readonly multiPartSize: number;
  /**
   * Arms one transient failure (HTTP 503) for the next upload request, where the emulator can;
   * the contract then checks that the upload is retried and warned about.
   */
  readonly injectTransient?: () => void;
  /** Warnings the destinations printed since the store started (message, code). */
  readonly warnings?: { message: string; code: string | undefined }[];
}

const MiB = 1024 * 1024;

/** Deterministic, incompressible bytes (see tests/_helpers/bytes.ts). */
export const bytesOf = pseudoRandomBytes;

async function write(upload: Upload, data: Uint8Array): Promise<void> {
  const pieces = function* () {
    for (let i = 0; i < data.length; i += 256 * 1024) yield data.subarray(i, i + 256 * 1024);
  };
  await ReadableStream.from(pieces()).pipeTo(upload.writable);
}

async function put(dest: Destination, key: string, data: Uint8Array): Promise<ObjectMeta> {
  const upload = await dest.create(key);
  await write(upload, data);
  return await upload.commit();
}

async function keys(dest: Destination, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const meta of dest.list(prefix)) out.push(meta.key);
  return out;
}

async function readAll(dest: Destination, key: string): Promise<Uint8Array> {
  return new Uint8Array(await new Response(await dest.read(key)).arrayBuffer());
}

function md5(data: Uint8Array): string {
  return createHash("md5").update(data).digest("base64");
}

function code(expected: string) {
  return (error: unknown) => {
    assert.ok(error instanceof RivetError, String(error));
    assert.equal(error.code, expected, error.message);
    return true;
  };
}

/**
 * Registers the contract's tests for one store.
 *
 * @param name The store's name in test names, e.g. `S3 (s3rver)`.
 * @param start Starts the store (once per test) and returns its factory.
 */
export function destinationContract(name: string, start: () => Promise<ContractStore>): void {
  const test = (title: string, fn: (store: ContractStore) => Promise<void>) =>
    Deno.test({
      name: `contract, ${name}: ${title}`,
      // The SDKs keep pooled sockets and timers past a test's end; the store is stopped.
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        await using store = await start();
        await fn(store);
      },
    });

  test("create, then commit makes the object visible with its size and bytes", async (s) => {
    await using dest = await s.open();
    const data = bytesOf(1000, 1);
    const upload = await dest.create("a.csv");
    await write(upload, data);
    assert.deepEqual(await keys(dest), [], "nothing is visible before commit");
    assert.equal(await dest.stat("a.csv"), undefined);
    const meta = await upload.commit();
    assert.equal(meta.key, "a.csv");
    assert.equal(meta.size, 1000);
    assert.deepEqual(await keys(dest), ["a.csv"]);
    assert.equal((await dest.stat("a.csv"))?.size, 1000);
    assert.deepEqual(await readAll(dest, "a.csv"), data);
  });

  test("abort leaves nothing, is idempotent, and a commit after it is refused", async (s) => {
    await using dest = await s.open();
    for (const size of [10, s.multiPartSize]) {
      const upload = await dest.create("gone.bin");
      const writer = upload.writable.getWriter();
      await writer.write(bytesOf(size, 2));
      await upload.abort();
      await upload.abort();
      await assert.rejects(upload.commit());
      assert.deepEqual(await keys(dest), []);
      assert.equal(await dest.stat("gone.bin"), undefined);
    }
  });

  test("empty objects and multi-part objects round-trip", async (s) => {
    await using dest = await s.open();
    const empty = await put(dest, "empty.csv", new Uint8Array(0));
    assert.equal(empty.size, 0);
    assert.equal((await dest.stat("empty.csv"))?.size, 0);
    assert.deepEqual(await readAll(dest, "empty.csv"), new Uint8Array(0));
    const big = bytesOf(s.multiPartSize, 3);
    const meta = await put(dest, "big.bin", big);
    assert.equal(meta.size, big.length);
    if (meta.md5 !== undefined) assert.equal(meta.md5, md5(big));
    assert.deepEqual(await readAll(dest, "big.bin"), big);
  });

  test("list skips staging objects, filters by prefix, in key order; stat ignores staging", async (s) => {
    await using dest = await s.open();
    await put(dest, "b.csv", bytesOf(3, 4));
    await put(dest, "a.csv", bytesOf(2, 5));
    await put(dest, "sub/c.csv", bytesOf(1, 6));
    const pending = await dest.create("d.csv", { provisional: true });
    await write(pending, bytesOf(5, 7));
    assert.deepEqual(await keys(dest), ["a.csv", "b.csv", "sub/c.csv"]);
    assert.deepEqual(await keys(dest, "sub/"), ["sub/c.csv"]);
    assert.equal(await dest.stat(".d.csv.tmp"), undefined);
    await pending.commit("d_final.csv");
    assert.deepEqual(await keys(dest), ["a.csv", "b.csv", "d_final.csv", "sub/c.csv"]);
    const staging = [];
    for await (const object of dest.listStaging!("")) staging.push(object);
    assert.deepEqual(staging, [], "a committed provisional upload leaves no staging object");
    await assert.rejects(dest.removeStaging!("a.csv"), code("destination.bad_key"));
    assert.deepEqual(await keys(dest, "a"), ["a.csv"]);
  });

  test("a committed part is never overwritten; overwrite is for manifest/_SUCCESS", async (s) => {
    await using dest = await s.open();
    const first = bytesOf(100, 8);
    await put(dest, "part.csv", first);
    for (const size of [50, s.multiPartSize]) {
      await assert.rejects(put(dest, "part.csv", bytesOf(size, 9)), code("destination.exists"));
      assert.deepEqual(await readAll(dest, "part.csv"), first);
    }
    const renamed = await dest.create("other.csv", { provisional: true });
    await write(renamed, bytesOf(20, 10));
    await assert.rejects(renamed.commit("part.csv"), code("destination.exists"));
    assert.deepEqual(await keys(dest), ["part.csv"]);
    for (const body of ['{"v":1}', '{"v":2}']) {
      const manifest = await dest.create("manifest.json", { overwrite: true });
      await write(manifest, new TextEncoder().encode(body));
      await manifest.commit();
    }
    assert.equal(new TextDecoder().decode(await readAll(dest, "manifest.json")), '{"v":2}');
  });

  test("move is all or nothing: missing source, existing target, success", async (s) => {
    await using dest = await s.open();
    const data = bytesOf(300, 11);
    await put(dest, "m.csv", data);
    await put(dest, "taken.csv", bytesOf(1, 12));
    await assert.rejects(dest.move("absent.csv", "x.csv"), code("destination.not_found"));
    await assert.rejects(dest.move("m.csv", "taken.csv"), code("destination.exists"));
    assert.deepEqual(await keys(dest), ["m.csv", "taken.csv"], "a refused move changes nothing");
    await dest.move("m.csv", "_quarantine/run1/m.csv");
    assert.deepEqual(await keys(dest), ["_quarantine/run1/m.csv", "taken.csv"]);
    assert.deepEqual(await readAll(dest, "_quarantine/run1/m.csv"), data);
    await assert.rejects(dest.read("m.csv"), code("destination.not_found"));
  });

  test("keys with '..', absolute paths, NUL or backslashes are refused everywhere", async (s) => {
    await using dest = await s.open();
    for (const bad of ["../x", "a/../../x", "/etc/passwd", "a\0b", "a\\b", "", "dir/"]) {
      await assert.rejects(dest.create(bad), code("destination.bad_key"), JSON.stringify(bad));
      await assert.rejects(dest.stat(bad), code("destination.bad_key"), JSON.stringify(bad));
      await assert.rejects(dest.read(bad), code("destination.bad_key"), JSON.stringify(bad));
      await assert.rejects(dest.move(bad, "ok.csv"), code("destination.bad_key"));
      await assert.rejects(dest.move("ok.csv", bad), code("destination.bad_key"));
    }
    assert.deepEqual(await keys(dest), []);
  });

  test("remove deletes a committed object; an absent key is no error", async (s) => {
    await using dest = await s.open();
    await put(dest, "probe", bytesOf(4, 13));
    await dest.remove!("probe");
    await dest.remove!("probe");
    assert.deepEqual(await keys(dest), []);
  });

  test("a transient failure of an upload is retried and warned about", async (s) => {
    if (s.injectTransient === undefined || s.warnings === undefined) return;
    await using dest = await s.open();
    s.injectTransient();
    const data = bytesOf(2 * MiB, 14);
    await put(dest, "retry.bin", data);
    assert.deepEqual(await readAll(dest, "retry.bin"), data);
    assert.deepEqual(s.warnings.map((w) => w.code), ["destination.retrying"]);
    assert.match(s.warnings[0]!.message, /failed \(HTTP 503.*\); retry 1\/\d+ in \d+ ms$/);
  });
}
