/**
 * `rivet doctor` judges a config exactly as `rivet run` does: features this release refuses and
 * key combinations the plan checks refuse fail the config check, before any connection.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers/cli.ts";

const closedUrl = "postgresql://u@127.0.0.1:9/db";

Deno.test("doctor fails the config check wherever run refuses the config", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_doctor_gate_" });
  try {
    const cases: [string, string, RegExp][] = [
      ["cdc to stdout", "mode: cdc", /mode: cdc writes parts, checkpoints after each/],
      [
        "stdout chunked",
        "mode: chunked, chunk_column: id",
        /stdout destination cannot take a chunked/,
      ],
    ];
    const path = join(dir, "rivet.yaml");
    for (const [label, keys, message] of cases) {
      await Deno.writeTextFile(
        path,
        `source:\n  type: postgres\n  url: ${closedUrl}\nexports:\n` +
          `  - {name: orders, table: orders, format: csv, ${keys}, destination: {type: stdout}}\n`,
      );
      const run = await runCli(["run", "-c", path]);
      assert.equal(run.code, 1, `${label}: run: ${run.stderr}`);
      const doctor = await runCli(["doctor", "-c", path]);
      assert.equal(doctor.code, 1, `${label}: ${doctor.stdout}`);
      assert.match(doctor.stdout, /^\[FAIL\] config: /m, `${label}: ${doctor.stdout}`);
      assert.match(doctor.stdout, message, `${label}: ${doctor.stdout}`);
      assert.ok(!doctor.stdout.includes("source:"), `${label}: no connection: ${doctor.stdout}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
