import assert from "node:assert/strict";
import { join } from "node:path";
import { LocalDestination } from "../destinations/local.ts";
import { RivetError } from "../core/errors.ts";
import { xxh3Hex } from "../_util/hash.ts";
import { checkPart } from "./verify.ts";

const bytes = new TextEncoder().encode("id,name\n1,a\n2,b\n");

/** A real local destination holding `part.csv` with {@linkcode bytes}. */
async function withPart(
  body: (dest: LocalDestination, dir: string, xxh3: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rivet_verify_" });
  try {
    await Deno.writeFile(join(dir, "part.csv"), bytes);
    await using dest = await LocalDestination.open({ path: dir }, { baseDir: dir });
    await body(dest, dir, await xxh3Hex(bytes));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("checkPart: a part as recorded matches, with and without reading it back", async () => {
  await withPart(async (dest, _dir, xxh3) => {
    const expected = { key: "part.csv", sizeBytes: bytes.length, xxh3 };
    assert.equal(await checkPart(dest, expected, { readContent: true }), undefined);
    assert.equal(await checkPart(dest, expected, { readContent: false }), undefined);
    // No recorded fingerprint (a file log row without one): size only, even when reading.
    assert.equal(
      await checkPart(dest, { key: "part.csv", sizeBytes: bytes.length }, { readContent: true }),
      undefined,
    );
  });
});

Deno.test("checkPart: missing, another size, other bytes of the same size", async () => {
  await withPart(async (dest, dir, xxh3) => {
    assert.deepEqual(
      await checkPart(dest, { key: "gone.csv", sizeBytes: 1, xxh3 }, { readContent: true }),
      { kind: "missing", during: "stat" },
    );
    assert.deepEqual(
      await checkPart(dest, { key: "part.csv", sizeBytes: 3, xxh3 }, { readContent: true }),
      { kind: "size", size: bytes.length },
    );
    const flipped = bytes.slice();
    flipped[0] = flipped[0]! ^ 1;
    await Deno.writeFile(join(dir, "part.csv"), flipped);
    const expected = { key: "part.csv", sizeBytes: bytes.length, xxh3 };
    assert.deepEqual(await checkPart(dest, expected, { readContent: true }), {
      kind: "content",
      xxh3: await xxh3Hex(flipped),
    });
    // Size only: the changed bytes go unseen, as `--size-only` documents.
    assert.equal(await checkPart(dest, expected, { readContent: false }), undefined);
  });
});

Deno.test("checkPart: a link where the part should be is thrown for the caller to judge", async () => {
  await withPart(async (dest, dir, xxh3) => {
    await Deno.symlink(join(dir, "part.csv"), join(dir, "link.csv"));
    await assert.rejects(
      () =>
        checkPart(dest, { key: "link.csv", sizeBytes: bytes.length, xxh3 }, {
          readContent: true,
        }),
      (error) => error instanceof RivetError && error.code === "destination.symlink",
    );
  });
});
