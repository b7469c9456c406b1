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

Deno.test("openDestination refuses cloud destinations as not supported yet", async () => {
  for (const kind of ["s3", "gcs", "azure"] as const) {
    await assert.rejects(
      openDestination({ kind, bucket: "b", allowAnonymous: false }, { baseDir: "." }),
      (e: unknown) =>
        e instanceof ConfigError && e.code === "config.not_supported" && e.message.includes(kind),
    );
  }
});
