/**
 * Error messages name their export exactly once, however many layers wrap them, and unknown
 * `-e` names list the known exports (with the closest one) in every command that takes `-e`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers/cli.ts";

const closedUrl = "postgresql://u@127.0.0.1:9/db";

function count(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

Deno.test("a failing export's error carries its `export 'x':` prefix once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_messages_" });
  try {
    const path = join(dir, "rivet.yaml");
    await Deno.writeTextFile(
      path,
      `source:\n  type: postgres\n  url: ${closedUrl}\nexports:\n` +
        `  - {name: orders, query_file: missing.sql, format: csv, ` +
        `destination: {type: local, path: ${dir}/out}}\n`,
    );
    const res = await runCli(["run", "-c", path, "--summary-output", join(dir, "s.json")]);
    assert.equal(res.code, 1, res.stderr);
    const line = res.stderr.split("\n").find((l) => l.startsWith("Error:")) ?? "";
    assert.match(line, /query_file 'missing\.sql'/, res.stderr);
    assert.equal(count(line, "export 'orders'"), 1, line);
    assert.ok(!res.stderr.includes("export 'orders': export 'orders'"), res.stderr);
    const summary = JSON.parse(await Deno.readTextFile(join(dir, "s.json")));
    const message: string = summary.per_export[0].error_message;
    assert.ok(!message.includes("export 'orders': export 'orders'"), message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an unknown -e name lists the known exports and suggests the closest", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_messages_" });
  try {
    const path = join(dir, "rivet.yaml");
    await Deno.writeTextFile(
      path,
      `source:\n  type: postgres\n  url: ${closedUrl}\nexports:\n` +
        `  - {name: orders, table: orders, format: csv, destination: {type: local, path: ${dir}/o}}\n` +
        `  - {name: customers, table: c, format: csv, destination: {type: local, path: ${dir}/c}}\n`,
    );
    for (
      const args of [
        ["run", "-c", path, "-e", "oders"],
        ["state", "reset", "-c", path, "-e", "oders"],
        ["state", "chunks", "-c", path, "-e", "oders"],
        ["validate", "-c", path, "-e", "oders"],
        ["metrics", "-c", path, "-e", "oders"],
      ]
    ) {
      const res = await runCli(args);
      assert.equal(res.code, 1, `${args.join(" ")}: ${res.stderr}`);
      assert.match(res.stderr, /unknown export 'oders'/, args.join(" "));
      assert.match(res.stderr, /known exports: orders, customers/, args.join(" "));
      assert.match(res.stderr, /did you mean 'orders'/, args.join(" "));
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
