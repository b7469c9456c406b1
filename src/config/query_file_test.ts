import assert from "node:assert/strict";
import { join } from "node:path";
import type { ExportSpec } from "../core/spec.ts";
import { configErrorOf, loadYaml, tempDirWith } from "./_testing.ts";
import { exportSql, readQueryFile } from "./query_file.ts";

const withFile = (path: string) =>
  ({ name: "daily", query: { kind: "query_file", path } }) as ExportSpec;

Deno.test("readQueryFile reads under the config dir and substitutes params and env", async () => {
  const dir = await tempDirWith({ "sql/q.sql": "SELECT * FROM ${SCHEMA}.t WHERE d > '${SINCE}'" });
  try {
    const sql = await readQueryFile(withFile("sql/q.sql"), dir, {
      params: { SCHEMA: "shop" },
      env: (n) => (n === "SINCE" ? "2024-01-01" : undefined),
    });
    assert.equal(sql, "SELECT * FROM shop.t WHERE d > '2024-01-01'");
    const missing = await configErrorOf(() =>
      readQueryFile(withFile("sql/q.sql"), dir, { env: () => undefined })
    );
    assert.equal(missing.code, "config.missing_env");
    assert.match(missing.message, /export 'daily': environment variable 'SCHEMA' is not set/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readQueryFile refuses a symlink that escapes the config dir", async () => {
  const outside = await tempDirWith({ "secret.sql": "SELECT 'outside'" });
  const dir = await tempDirWith({ "inside.sql": "SELECT 1" });
  try {
    await Deno.symlink(join(outside, "secret.sql"), join(dir, "link.sql"));
    await Deno.symlink(outside, join(dir, "linkdir"));
    for (const path of ["link.sql", "linkdir/secret.sql"]) {
      const error = await configErrorOf(() => readQueryFile(withFile(path), dir));
      assert.equal(error.code, "config.unsafe_path");
      assert.match(error.message, /resolves outside the config directory/);
    }
    // A symlink that stays inside is fine.
    await Deno.symlink(join(dir, "inside.sql"), join(dir, "alias.sql"));
    assert.equal(await readQueryFile(withFile("alias.sql"), dir), "SELECT 1");
    const missing = await configErrorOf(() => readQueryFile(withFile("nope.sql"), dir));
    assert.equal(missing.code, "config.not_found");
    assert.match(missing.message, /query_file 'nope\.sql' does not exist/);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("exportSql gives SELECT * for tables, the text for queries, the file for query_file", async () => {
  const config = await loadYaml(
    "source: {type: postgres, url_env: X}\nexports:\n" +
      "  - {name: a, table: public.orders, format: csv, destination: {type: stdout}}\n" +
      "  - {name: b, table: orders, format: csv, destination: {type: stdout}}\n" +
      "  - {name: c, query: 'SELECT 1 AS one', format: csv, destination: {type: stdout}}\n",
  );
  const [a, b, c] = config.exports;
  assert.equal(await exportSql(a!, config.dir), "SELECT * FROM public.orders");
  assert.equal(await exportSql(b!, config.dir), "SELECT * FROM orders");
  assert.equal(await exportSql(c!, config.dir), "SELECT 1 AS one");
  const dir = await tempDirWith({ "q.sql": "SELECT ${N}" });
  try {
    assert.equal(await exportSql(withFile("q.sql"), dir, { params: { N: "7" } }), "SELECT 7");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
