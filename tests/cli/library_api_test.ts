/**
 * The library entry point (`mod.ts`) applies the same gate and plan checks as `rivet run`: a
 * feature this release does not implement is refused, never run as something else.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, loadConfig, runExports } from "../../mod.ts";

// A closed loopback port: reaching the network would end as a transient failure (exit 2).
const closedUrl = "postgresql://u@127.0.0.1:9/db";

async function withConfig(body: string, fn: (path: string, dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "rivet_lib_" });
  try {
    const path = join(dir, "rivet.yaml");
    await Deno.writeTextFile(path, body.replaceAll("$DIR", dir));
    await fn(path, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const options = () => ({
  emit: () => {},
  signal: new AbortController().signal,
  params: {},
  cwd: Deno.cwd(),
});

Deno.test("mod.ts runExports refuses a cdc export it cannot run, before connecting", async () => {
  const cases: [string, RegExp][] = [
    ["mode: cdc, partition_by: at", /mode: cdc cannot be combined with partition_by/],
  ];
  for (const [keys, message] of cases) {
    await withConfig(
      `source:\n  type: postgres\n  url: ${closedUrl}\nexports:\n` +
        `  - {name: orders, table: orders, format: csv, ${keys}, ` +
        `destination: {type: local, path: $DIR/out}}\n`,
      async (path, dir) => {
        const config = await loadConfig(path);
        const result = await runExports(config, config.exports, options()).then(
          (r) => r,
          (e: unknown) => e,
        );
        assert.ok(
          result instanceof ConfigError,
          `${keys}: ran instead (${JSON.stringify(result)})`,
        );
        assert.equal(result.code, "plan.cdc_conflicting_keys");
        assert.match(result.message, message);
        // Nothing was written.
        assert.ok(!(await Deno.stat(join(dir, "out")).catch(() => undefined)));
      },
    );
  }
});

Deno.test("mod.ts runExports applies the plan checks (stdout cannot take a chunked export)", async () => {
  await withConfig(
    `source:\n  type: postgres\n  url: ${closedUrl}\nexports:\n` +
      `  - {name: orders, table: orders, format: csv, mode: chunked, chunk_column: id, ` +
      `destination: {type: stdout}}\n`,
    async (path) => {
      const config = await loadConfig(path);
      const error = await runExports(config, config.exports, options()).catch((e: unknown) => e);
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.code, "plan.stdout_chunked");
    },
  );
});

Deno.test("mod.ts runExports refuses two cdc exports writing one folder", async () => {
  await withConfig(
    `source:\n  type: mssql\n  url: sqlserver://u@127.0.0.1:9/db\nexports:\n` +
      `  - {name: a, table: a, format: csv, mode: cdc, destination: {type: local, path: $DIR/out}}\n` +
      `  - {name: b, table: b, format: csv, mode: cdc, destination: {type: local, path: $DIR/out}}\n`,
    async (path) => {
      const config = await loadConfig(path);
      const error = await runExports(config, config.exports, options()).catch((e: unknown) => e);
      assert.ok(error instanceof ConfigError, String(error));
      assert.equal(error.code, "plan.cdc_shared_destination");
    },
  );
});
