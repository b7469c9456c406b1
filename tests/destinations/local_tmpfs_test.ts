/**
 * Local destination failures that need a real file system of their own: a tmpfs mounted
 * read-only, one too small for the write, one remounted read-only under a committed file.
 * Each case is skipped (with the reason printed) where `mount` is not allowed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { PermanentError, TransientError } from "../../src/core/errors.ts";
import { LocalDestination } from "../../src/destinations/local.ts";
import { assertCode, commitText, failure, names, tempDir } from "../_helpers/local_files.ts";

/** Mounts a tmpfs for the duration of `body`, or returns a reason why it cannot. */
async function withTmpfs(
  options: string,
  body: (dir: string) => Promise<void>,
): Promise<string | undefined> {
  const dir = await tempDir();
  try {
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", options, "tmpfs", dir],
      stdout: "null",
      stderr: "piped",
    }).output().catch((e: unknown) => e as Error);
    if (mount instanceof Error) return `mount is unavailable (${mount.message})`;
    if (!mount.success) return `mount failed: ${new TextDecoder().decode(mount.stderr).trim()}`;
    try {
      await body(dir);
    } finally {
      await new Deno.Command("umount", { args: [dir] }).output();
    }
    return undefined;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a read-only folder fails with destination.write_failed naming the path", async () => {
  const skipped = await withTmpfs("ro,size=1m", async (dir) => {
    const dest = await LocalDestination.open({}, { baseDir: dir });
    const error = await dest.create("x.csv").then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof PermanentError);
    assert.equal(error.code, "destination.write_failed");
    assert.equal(error.exitCode, 1);
    assert.ok(error.message.includes(join(dir, ".x.csv.tmp")), error.message);
    assert.match(error.message, /read-only/);
  });
  if (skipped) console.log(`skipped the read-only case: ${skipped}`);
});

Deno.test("a full disk fails with the transient destination.disk_full and removes the staged file", async () => {
  const skipped = await withTmpfs("size=64k", async (dir) => {
    const dest = await LocalDestination.open({}, { baseDir: dir });
    const upload = await dest.create("big.bin");
    const error = await ReadableStream.from([new Uint8Array(1 << 20)]).pipeTo(upload.writable)
      .then(() => undefined, (e: unknown) => e);
    assert.ok(error instanceof TransientError);
    assert.equal(error.code, "destination.disk_full");
    assert.equal(error.exitCode, 2);
    assert.match(error.message, /^disk full at '.*': .*no space left/);
    assert.ok(error.message.includes(join(dir, ".big.bin.tmp")));
    assert.deepEqual(await names(dir), []);
    await upload.abort();
  });
  if (skipped) console.log(`skipped the disk-full case: ${skipped}`);
});

Deno.test("remove on a file system remounted read-only fails with destination.write_failed naming the path", async () => {
  const skipped = await withTmpfs("size=1m", async (dir) => {
    const dest = await LocalDestination.open({ path: "out" }, { baseDir: dir });
    await commitText(dest, "probe", "x");
    const remount = await new Deno.Command("mount", {
      args: ["-o", "remount,ro", dir],
      stdout: "null",
      stderr: "null",
    }).output();
    assert.ok(remount.success, "remount read-only");
    const error = await failure(dest.remove("probe"));
    assertCode(error, PermanentError, "destination.write_failed");
    assert.ok((error as Error).message.includes(join(dest.root, "probe")), String(error));
    assert.match((error as Error).message, /read-only/);
    assert.equal(await Deno.readTextFile(join(dest.root, "probe")), "x");
  });
  if (skipped) console.log(`skipped the read-only remove case: ${skipped}`);
});
