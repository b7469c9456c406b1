import assert from "node:assert/strict";
import { ConfigError } from "../core/errors.ts";
import { LocalDestination, openDestination, StdoutDestination } from "./mod.ts";

Deno.test("openDestination opens local and stdout destinations", async () => {
  const base = await Deno.makeTempDir();
  try {
    const local = await openDestination({ kind: "local", path: "out", allowAnonymous: false }, {
      baseDir: base,
    });
    assert.ok(local instanceof LocalDestination);
    assert.equal(local.uri, `file://${base}/out`);
    const stdout = await openDestination({ kind: "stdout", allowAnonymous: false }, {
      baseDir: base,
    });
    assert.ok(stdout instanceof StdoutDestination);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("openDestination opens cloud destinations lazily, checking their keys first", async () => {
  // No network: each store's open() validates its keys before any request.
  for (const kind of ["s3", "gcs", "azure"] as const) {
    await assert.rejects(
      openDestination({ kind, allowAnonymous: false }, { baseDir: ".", env: () => undefined }),
      (e: unknown) => e instanceof ConfigError,
    );
  }
});
