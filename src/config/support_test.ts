import assert from "node:assert/strict";
import { BASE_SOURCE, configErrorOf, loadYaml } from "./_testing.ts";
import { assertSupported } from "./support.ts";
import type { ExportSpec } from "../core/spec.ts";

const exp = (extra: string, dest = "{type: local, path: ./out}") =>
  `${BASE_SOURCE}exports:\n  - {name: orders, table: t, format: parquet, destination: ${dest}${extra}}\n`;

Deno.test("assertSupported accepts everything this release implements", async () => {
  const config = await loadYaml(
    `${BASE_SOURCE}  tls: {mode: disable}\n  tuning: {profile: safe}\nexports:\n` +
      "  - {name: a, table: t, format: parquet, compression_profile: fast, skip_empty: true, max_file_size: 1GB,\n" +
      "     on_schema_drift: fail, shape_drift_warn_factor: 0, source_group: g, reconcile_required: true,\n" +
      "     target: bq, columns: {x: int8}, tuning: {batch_size: 10}, parquet: {row_group_strategy: auto},\n" +
      "     destination: {type: local, path: ./out}}\n" +
      "  - {name: b, query: SELECT 1, format: csv, destination: {type: stdout}}\n" +
      "parallel_exports: true\nparallel_export_processes: true\n",
  );
  assert.equal(config.parallelExports, true);
  assert.equal(config.parallelExportProcesses, true);
  assertSupported(config, config.exports);
  for (const type of ["mysql", "mssql"]) {
    const other = await loadYaml(exp("").replace("type: postgres", `type: ${type}`));
    assertSupported(other, other.exports);
  }
});

Deno.test("assertSupported refuses later-release features naming key, value and export", async () => {
  // Every value the schema accepts runs in this release (cdc included): the gate only sees a
  // value from a spec built by hand.
  const accepted = await loadYaml(exp(", mode: cdc"));
  assertSupported(accepted, accepted.exports);
  const cases: [string, string][] = [
    [
      exp(""),
      "export 'orders': mode 'stream' is not supported yet by this version of rivet (supported: full, incremental, time_window, chunked, cdc)",
    ],
  ];
  for (const [yaml, message] of cases) {
    const config = await loadYaml(yaml);
    const exports = config.exports.map((e) => ({ ...e, mode: "stream" }) as unknown as ExportSpec);
    const error = await configErrorOf(() => assertSupported(config, exports));
    assert.equal(error.code, "config.not_supported");
    assert.ok(error.message.includes(message), `${message}\n---\n${error.message}`);
  }
});

Deno.test("assertSupported checks only the selected exports", async () => {
  const config = await loadYaml(
    `${BASE_SOURCE}exports:\n  - {name: a, table: t, format: csv, destination: {type: stdout}}\n` +
      "  - {name: b, table: t, format: csv, destination: {type: stdout}}\n",
  );
  const later = { ...config.exports[1]!, mode: "stream" } as unknown as ExportSpec;
  assertSupported(config, [config.exports[0]!]);
  await configErrorOf(() => assertSupported(config, [config.exports[0]!, later]));
});

Deno.test("notifications pass the support gate (rivet run sends them)", async () => {
  const config = await loadYaml(
    `${exp("")}notifications:\n  slack: {webhook_url_env: S}\n` +
      "  webhook: {url_env: W, secret_env: K, on: [failure, success]}\n",
  );
  assertSupported(config, config.exports);
  assert.deepEqual(config.notifications?.webhook, {
    urlEnv: "W",
    secretEnv: "K",
    on: ["failure", "success"],
    timeoutS: 30,
  });
});
