import assert from "node:assert/strict";
import { join } from "node:path";
import type { Destination } from "../core/destination.ts";
import { TransientError } from "../core/errors.ts";
import type { DestinationSpec, ExportSpec } from "../core/spec.ts";
import { LocalDestination } from "../destinations/local.ts";
import { describeDestination, placeDestination, probeRoot } from "./destination_root.ts";
import { validateExitCode, validateExport, type ValidateExportOptions } from "./validate_export.ts";
import type { ExportValidation } from "./verify.ts";

const at = new Date("2026-03-04T12:00:00Z");

/** A destination spec as the config loader completes it. */
function d(spec: Omit<DestinationSpec, "allowAnonymous">): DestinationSpec {
  return { allowAnonymous: false, ...spec };
}

function exportOf(
  destination: Omit<DestinationSpec, "allowAnonymous">,
  extra: Partial<ExportSpec> = {},
): ExportSpec {
  return { name: "orders", destination: d(destination), ...extra } as unknown as ExportSpec;
}

function options(
  cwd: string,
  open: ValidateExportOptions["open"],
): ValidateExportOptions {
  return {
    at,
    cwd,
    sizeOnly: false,
    signal: new AbortController().signal,
    state: undefined,
    open,
  };
}

Deno.test("placeDestination fills {date}, {export} and --run-id, or takes --prefix whole", () => {
  const exp = exportOf({ kind: "s3", bucket: "b", prefix: "x/{export}/{date}/{run_id}/" });
  assert.equal(placeDestination(exp, { at }).prefix, "x/orders/2026-03-04/{run_id}/");
  assert.equal(placeDestination(exp, { at, runId: "r1" }).prefix, "x/orders/2026-03-04/r1/");
  assert.equal(placeDestination(exp, { at, prefix: "elsewhere/" }).prefix, "elsewhere/");
  const local = exportOf({ kind: "local", path: "out/{date}" });
  assert.equal(placeDestination(local, { at, prefix: "there" }).path, "there");
});

Deno.test("probeRoot cuts above a token only a run fills", () => {
  assert.equal(probeRoot(d({ kind: "local", path: "out/{run_id}/x" }), "o", at).path, "out/");
  assert.equal(probeRoot(d({ kind: "local", path: "{partition}" }), "o", at).path, ".");
  assert.equal(
    probeRoot(d({ kind: "gcs", bucket: "b", prefix: "{export}/{date}/{partition}/" }), "o", at)
      .prefix,
    "o/2026-03-04/",
  );
});

Deno.test("describeDestination names every kind of root before it is opened", () => {
  assert.equal(describeDestination(d({ kind: "local", path: "out" }), "/data"), "file:///data/out");
  assert.equal(
    describeDestination(d({ kind: "gcs", bucket: "b", prefix: "p/" }), "/"),
    "gs://b/p/",
  );
  assert.equal(
    describeDestination(d({ kind: "azure", accountName: "a", bucket: "c" }), "/"),
    "azure://a/c/",
  );
  assert.equal(describeDestination(d({ kind: "stdout" }), "/"), "stdout");
});

Deno.test("validateExport skips stdout and a partitioned export without opening anything", async () => {
  const open = () => Promise.reject(new Error("must not open"));
  const stdout = await validateExport(exportOf({ kind: "stdout" }), options("/", open));
  assert.equal(stdout.status, "skipped");
  const partitioned = await validateExport(
    exportOf({ kind: "local", path: "out/{partition}" }, { partitionBy: "day" }),
    options("/", open),
  );
  assert.equal(partitioned.status, "skipped");
  assert.match(partitioned.notes[0]!, /--prefix <its folder>/);
});

Deno.test("validateExport: a folder that does not exist, an error that stops the check", async () => {
  const missing = await validateExport(
    exportOf({ kind: "local", path: "out/{date}" }),
    options("/data", () => Promise.resolve(undefined)),
  );
  assert.equal(missing.status, "no_manifest");
  assert.equal(missing.uri, "file:///data/out/2026-03-04");
  const failed = await validateExport(
    exportOf({ kind: "s3", bucket: "b", prefix: "p/" }),
    options("/", () =>
      Promise.reject(
        new TransientError("store down", { code: "destination.unavailable", hint: "retry" }),
      )),
  );
  assert.equal(failed.status, "error");
  assert.equal(failed.uri, "s3://b/p/");
  assert.deepEqual(failed.error, {
    code: "destination.unavailable",
    message: "store down; retry",
    exitCode: 2,
  });
  assert.equal(validateExitCode([missing, failed]), 2);
});

Deno.test("validateExport verifies an opened destination and closes it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_validate_" });
  try {
    let closed = false;
    const report = await validateExport(
      exportOf({ kind: "local", path: "out" }),
      options(dir, async (spec) => {
        await Deno.mkdir(join(dir, "out"));
        const dest = await LocalDestination.open(spec, { baseDir: dir });
        const dispose = dest[Symbol.asyncDispose].bind(dest);
        // Private fields rule out a Proxy: the instance's own dispose records the close.
        Object.defineProperty(dest, Symbol.asyncDispose, {
          value: async () => {
            closed = true;
            await dispose();
          },
        });
        return dest as Destination;
      }),
    );
    assert.equal(report.status, "no_manifest");
    assert.match(report.notes[0]!, /holds no objects/);
    assert.ok(closed);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("validateExitCode: wrong output beats every error class", () => {
  const report = (status: ExportValidation["status"], exitCode?: 1 | 2 | 4) =>
    ({
      status,
      ...(exitCode === undefined ? {} : { error: { code: "c", message: "m", exitCode } }),
    }) as ExportValidation;
  assert.equal(validateExitCode([report("passed")]), 0);
  assert.equal(validateExitCode([report("error", 1)]), 1);
  assert.equal(validateExitCode([report("error", 1), report("error", 4)]), 4);
  assert.equal(validateExitCode([report("error", 2), report("failed")]), 3);
});
