/**
 * `--summary-output` never writes through a symbolic link: a link (to a file or dangling) is
 * refused before the run, and the file it points at stays untouched.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers/cli.ts";

const closedUrl = "postgresql://u@127.0.0.1:9/db";

Deno.test("--summary-output refuses a symbolic link and leaves its target alone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_summary_" });
  try {
    const path = join(dir, "rivet.yaml");
    await Deno.writeTextFile(
      path,
      `source:\n  type: postgres\n  url: ${closedUrl}\n  tuning: {max_retries: 0}\nexports:\n` +
        `  - {name: orders, table: orders, format: csv, destination: {type: local, path: ${dir}/out}}\n`,
    );
    const victim = join(dir, "victim.txt");
    await Deno.writeTextFile(victim, "precious\n");
    await Deno.symlink(victim, join(dir, "link.json"));
    await Deno.symlink(join(dir, "created-through-link.json"), join(dir, "dangling.json"));
    for (const link of ["link.json", "dangling.json"]) {
      const res = await runCli(["run", "-c", path, "--summary-output", join(dir, link)]);
      assert.equal(res.code, 1, `${link}: ${res.stderr}`);
      assert.match(res.stderr, /--summary-output .* symbolic link/, res.stderr);
    }
    assert.equal(await Deno.readTextFile(victim), "precious\n");
    assert.equal(
      await Deno.stat(join(dir, "created-through-link.json")).catch(() => undefined),
      undefined,
    );
    // A plain path still gets its summary (written whole: temp file, then rename).
    const plain = join(dir, "summary.json");
    const res = await runCli(["run", "-c", path, "--summary-output", plain]);
    assert.equal(res.code, 2, res.stderr);
    const summary = JSON.parse(await Deno.readTextFile(plain));
    assert.equal(summary.exit_code, 2);
    assert.equal((await Deno.stat(plain)).mode! & 0o777, 0o600);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes(".tmp")),
      [],
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
