/**
 * `rivet schema config`: prints the JSON Schema of the config file, exactly what
 * `configJsonSchema()` generates (its agreement with the loader is tested in
 * `src/config/json_schema_test.ts`).
 */
import assert from "node:assert/strict";
import { runCli } from "../_helpers/cli.ts";
import { configJsonSchema } from "../../src/config/json_schema.ts";
import { VERSION } from "../../src/core/version.ts";

Deno.test("rivet schema config prints the draft 2020-12 schema of rivet.yaml with the version", async () => {
  const res = await runCli(["schema", "config"]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stderr, "");
  const schema = JSON.parse(res.stdout);
  assert.deepEqual(schema, configJsonSchema());
  assert.equal(schema.$schema, "https://json-schema.org/draft/2020-12/schema");
  assert.ok(String(schema.title).includes(VERSION), String(schema.title));
  assert.deepEqual(schema.required, ["source", "exports"]);
});

Deno.test("rivet schema without a known subcommand is a usage error (exit 2)", async () => {
  for (const args of [["schema"], ["schema", "nope"]]) {
    const res = await runCli(args);
    assert.equal(res.code, 2, `${args.join(" ")}: ${res.stderr}`);
    assert.ok(!/^Error:/m.test(res.stderr), res.stderr);
  }
});
