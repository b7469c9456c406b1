import assert from "node:assert/strict";
import { BASE_SOURCE, configErrorOf, loadYaml } from "./_testing.ts";
import { selectExports } from "./select.ts";

const yaml = `${BASE_SOURCE}exports:\n` +
  ["orders", "users", "items"].map((n) =>
    `  - {name: ${n}, table: ${n}, format: csv, destination: {type: stdout}}\n`
  )
    .join("");

Deno.test("selectExports returns all exports for no names, else the named ones in order", async () => {
  const config = await loadYaml(yaml);
  assert.deepEqual(selectExports(config, []).map((e) => e.name), ["orders", "users", "items"]);
  assert.deepEqual(selectExports(config, ["items", "orders", "items"]).map((e) => e.name), [
    "items",
    "orders",
  ]);
});

Deno.test("selectExports names an unknown export, lists the known ones and says check the spelling", async () => {
  const config = await loadYaml(yaml);
  const error = await configErrorOf(() => selectExports(config, ["oders"]));
  assert.equal(error.code, "config.unknown_export");
  assert.equal(error.exitCode, 1);
  assert.match(error.message, /unknown export 'oders'; known exports: orders, users, items/);
  assert.match(error.message, /did you mean 'orders'\?/);
  assert.match(error.message, /check the spelling$/);
});
