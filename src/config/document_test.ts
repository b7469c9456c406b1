import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { ConfigError } from "../core/errors.ts";
import { configFromDocument, type JsonValue } from "./document.ts";
import { loadConfig } from "./load.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const examples = [
  "tests/fixtures/config/pg_local_parquet.yaml",
  "tests/fixtures/config/pg_structured_csv_stdout.yaml",
  "examples/demo.yaml",
];

Deno.test("a config's document rebuilds the same spec through configFromDocument", async () => {
  for (const file of examples) {
    const path = join(root, file);
    let document: JsonValue = null;
    const env = (name: string) => `value-of-${name}`;
    const spec = await loadConfig(path, { env, onDocument: (d) => (document = d) });
    assert.ok(document !== null, file);
    // The document is plain JSON: it survives a JSON round trip unchanged.
    const again = configFromDocument(JSON.parse(JSON.stringify(document)), {
      path,
      dir: dirname(path),
    });
    assert.deepEqual({ ...again, warnings: [] }, { ...spec, warnings: [] }, file);
  }
});

Deno.test("configFromDocument applies the loader's checks to a document", () => {
  const where = { path: "/nowhere/rivet.yaml", dir: "/nowhere" };
  const base = {
    source: { type: "postgres", url_env: "PG_URL" },
    exports: [{ name: "a", table: "t", format: "parquet", destination: { type: "stdout" } }],
  };
  assert.equal(configFromDocument(base, where).exports[0]!.name, "a");
  const unknownKey = { ...base, exports: [{ ...base.exports[0], surprise: 1 }] };
  assert.throws(() => configFromDocument(unknownKey, where), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /unknown field `surprise`/);
    return true;
  });
  assert.throws(
    () => configFromDocument({ ...base, parallel_exports: Number.NaN }, where),
    (e: unknown) => e instanceof ConfigError && e.code === "config.document_invalid",
  );
});
