import assert from "node:assert/strict";
import type { ExportSpec, SourceSpec, TuningSpec } from "../core/spec.ts";
import { BASE_SOURCE, loadYaml } from "./_testing.ts";
import { mergeTuning, TUNING_PROFILES } from "./tuning.ts";

function source(tuning?: TuningSpec, environment?: SourceSpec["environment"]): SourceSpec {
  return {
    kind: "postgres",
    connection: { form: "url_env", env: "PG_URL" },
    ...(tuning === undefined ? {} : { tuning }),
    ...(environment === undefined ? {} : { environment }),
  };
}

function exp(tuning?: TuningSpec): ExportSpec {
  return { name: "o", ...(tuning === undefined ? {} : { tuning }) } as ExportSpec;
}

Deno.test("mergeTuning defaults to balanced with its 32 MB memory target", () => {
  const plan = mergeTuning(source(), exp());
  assert.deepEqual(plan, {
    profile: "balanced",
    profileLabel: "balanced (default)",
    ...TUNING_PROFILES.balanced,
  });
  assert.equal(plan.batchSize, 10_000);
  assert.equal(plan.batchSizeMemoryMb, 32);
  assert.equal(plan.statementTimeoutS, 300);
});

Deno.test("mergeTuning derives the profile from source.environment", () => {
  const local = mergeTuning(source(undefined, "local"), exp());
  assert.equal(local.profile, "fast");
  assert.equal(local.profileLabel, "fast (default for environment: local)");
  assert.equal(local.batchSize, 50_000);
  assert.equal(local.batchSizeMemoryMb, 64);
  for (const env of ["replica", "production"] as const) {
    const plan = mergeTuning(source(undefined, env), exp());
    assert.equal(plan.profile, "balanced");
    assert.equal(plan.profileLabel, `balanced (default for environment: ${env})`);
  }
});

Deno.test("mergeTuning lets an explicit profile win over the environment, export over source", () => {
  const plan = mergeTuning(source({ profile: "fast" }, "local"), exp({ profile: "safe" }));
  assert.equal(plan.profile, "safe");
  assert.equal(plan.profileLabel, "safe");
  assert.equal(plan.batchSize, 2_000);
  assert.equal(plan.maxRetries, 5);
  assert.equal(plan.retryBackoffMs, 5_000);
  assert.equal(mergeTuning(source({ profile: "fast" }), exp()).profile, "fast");
});

Deno.test("mergeTuning merges per field: export over source over profile", () => {
  const plan = mergeTuning(
    source({ batchSize: 7_000, throttleMs: 5, maxRetries: 9 }),
    exp({ batchSize: 8_000, adaptive: true }),
  );
  assert.equal(plan.batchSize, 8_000);
  assert.equal(plan.throttleMs, 5);
  assert.equal(plan.maxRetries, 9);
  assert.equal(plan.adaptive, true);
  assert.equal(plan.lockTimeoutS, 30);
  assert.equal(plan.onBatchMemoryExceeded, "warn");
  assert.equal(plan.maxValueMb, 256);
});

Deno.test("mergeTuning keeps the Rust tool's quirk: any tuning block drops the memory target", () => {
  // A block that does not mention batch_size_memory_mb still turns the profile's 32 MB off.
  assert.equal(mergeTuning(source({ throttleMs: 10 }), exp()).batchSizeMemoryMb, undefined);
  assert.equal(mergeTuning(source(), exp({ maxRetries: 1 })).batchSizeMemoryMb, undefined);
  assert.equal(mergeTuning(source({}, "local"), exp()).batchSizeMemoryMb, undefined);
  // Written values are taken from the blocks, export first.
  assert.equal(mergeTuning(source({ batchSizeMemoryMb: 16 }), exp()).batchSizeMemoryMb, 16);
  assert.equal(
    mergeTuning(source({ maxBatchMemoryMb: 100 }), exp({ maxBatchMemoryMb: 50 })).maxBatchMemoryMb,
    50,
  );
  // No block at all: the profile default applies.
  assert.equal(mergeTuning(source(undefined, "local"), exp()).batchSizeMemoryMb, 64);
  assert.equal(mergeTuning(source(), exp({})).batchSizeMemoryMb, undefined);
});

Deno.test("mergeTuning works on specs produced by loadConfig", async () => {
  const config = await loadYaml(
    `${BASE_SOURCE}  environment: local\n  tuning: {statement_timeout_s: 60}\n` +
      `exports:\n  - {name: o, table: t, format: csv, destination: {type: stdout}, tuning: {profile: safe, batch_size: 500}}\n`,
  );
  const plan = mergeTuning(config.source, config.exports[0]!);
  assert.equal(plan.profile, "safe");
  assert.equal(plan.batchSize, 500);
  assert.equal(plan.statementTimeoutS, 60);
  assert.equal(plan.throttleMs, 500);
});
