import assert from "node:assert/strict";
import { VERSION } from "../core/version.ts";
import { BUILD_INFO_GLOBAL, buildInfo, versionLine } from "./build_info.ts";

Deno.test("the version line names the commit and target a compiled build records", () => {
  const global = globalThis as Record<string, unknown>;
  assert.equal(buildInfo(), undefined);
  assert.equal(versionLine(), `rivet ${VERSION} (from source, ${Deno.build.target})`);
  try {
    global[BUILD_INFO_GLOBAL] = { commit: "0123456789ab-dirty", target: "aarch64-apple-darwin" };
    assert.equal(
      versionLine(),
      `rivet ${VERSION} (commit 0123456789ab-dirty, aarch64-apple-darwin)`,
    );
    // A malformed record is ignored rather than printed.
    global[BUILD_INFO_GLOBAL] = { commit: 42 };
    assert.equal(buildInfo(), undefined);
  } finally {
    delete global[BUILD_INFO_GLOBAL];
  }
});
