/**
 * The JSON Schema of `rivet.yaml` (`rivet schema config`) against the loader: the definitions
 * cover exactly the parser's keys, unknown keys are refused where the loader refuses them, and a
 * real JSON Schema validator (ajv, draft 2020-12, strict mode: it also checks the schema itself)
 * accepts every example config of the repo and refuses the negative fixtures.
 */
// deno-lint-ignore-file no-explicit-any -- the fixtures edit nested JSON objects freely
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import { VERSION } from "../core/version.ts";
import { loadConfig } from "./load.ts";
import { configJsonSchema, type ConfigSection, DEFINITIONS, OPEN_SECTIONS } from "./json_schema.ts";
import { BOUNDS, CONFIG_KEYS, ENUMS } from "./keys.ts";
import { substituteTree } from "./substitute.ts";
import { parseYamlTree, type TreeNode } from "./yaml_tree.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** A validator of the whole schema, or of one of its sections (`$defs` entry). */
function validator(section?: string) {
  const ajv = new Ajv2020({
    strict: true,
    // `required` inside if/not/oneOf names keys declared on the parent: not a mistake.
    strictRequired: false,
    allowUnionTypes: true,
    allErrors: true,
  });
  const schema = configJsonSchema();
  const validate = ajv.compile(
    section === undefined
      ? schema
      : { $schema: schema.$schema, $defs: schema.$defs, $ref: `#/$defs/${section}` },
  );
  return (value: unknown): string | undefined =>
    validate(value) ? undefined : ajv.errorsText(validate.errors);
}

function plain(node: TreeNode): unknown {
  if (node.kind === "map") {
    return Object.fromEntries(node.entries.map((e) => [e.key, plain(e.value)]));
  }
  if (node.kind === "seq") return node.items.map(plain);
  return node.value;
}

/** A config file as the loader sees it before the typed parse, with every `${NAME}` set to 1. */
async function readConfigValue(text: string): Promise<unknown> {
  const { tree } = substituteTree(await parseYamlTree(text), { env: () => "1" });
  return plain(tree);
}

Deno.test("every key the parser accepts has a definition, and every definition a parser key", () => {
  assert.deepEqual(Object.keys(DEFINITIONS).sort(), Object.keys(CONFIG_KEYS).sort());
  for (const section of Object.keys(CONFIG_KEYS) as ConfigSection[]) {
    const accepted = [...CONFIG_KEYS[section]].sort();
    const defined = Object.keys(DEFINITIONS[section]).sort();
    assert.deepEqual(
      defined,
      accepted,
      `section '${section}': keys without a definition: ${
        accepted.filter((k) => !defined.includes(k)).join(", ") || "none"
      }; definitions of keys the parser refuses: ${
        defined.filter((k) => !(accepted as string[]).includes(k)).join(", ") || "none"
      }`,
    );
  }
});

Deno.test("enum values and integer ranges come from ENUMS and BOUNDS", () => {
  const schema = configJsonSchema() as { title: string; $defs: Record<string, any> };
  assert.equal(schema.title, `rivet ${VERSION} config (rivet.yaml)`);
  const props = (s: string) => schema.$defs[s].properties;
  assert.deepEqual(props("export").mode.enum, [...ENUMS.mode]);
  assert.deepEqual(props("destination").type.enum, [...ENUMS.destination]);
  assert.deepEqual(props("slack").on.items.enum, [...ENUMS.notifyOn]);
  assert.equal(props("tuning").max_retries.maximum, BOUNDS.max_retries[1]);
  assert.equal(props("source").port.minimum, BOUNDS.port[0]);
  assert.equal(props("export").chunk_size.minimum, BOUNDS.chunk_size[0]);
  // Every enum and every bound is used by some key.
  const text = JSON.stringify(DEFINITIONS);
  for (const name of Object.keys(ENUMS)) assert.ok(text.includes(`"enum":"${name}"`), name);
  const keys = new Set(Object.values(CONFIG_KEYS).flat() as string[]);
  for (const name of Object.keys(BOUNDS)) assert.ok(keys.has(name), name);
  for (const section of Object.keys(CONFIG_KEYS) as ConfigSection[]) {
    if (section === "top") continue;
    assert.equal(
      schema.$defs[section].additionalProperties,
      OPEN_SECTIONS.has(section) ? undefined : false,
      section,
    );
  }
});

/** A config with every section present, as the loader accepts it. */
function fullConfig(): Record<string, any> {
  return {
    source: {
      type: "postgres",
      url: "postgresql://u@127.0.0.1:9/db",
      tls: { mode: "disable" },
      tuning: { profile: "fast" },
    },
    state: { url_env: "STATE_URL" },
    notifications: {
      slack: { webhook_url_env: "HOOK", on: ["failure"] },
      webhook: { url_env: "HOOK", secret_env: "HOOK_KEY", on: ["failure", "success"] },
    },
    exports: [{
      name: "e",
      table: "t",
      mode: "cdc",
      cdc: { slot: "s", publication: "p", rollover_seconds: 30 },
      format: "parquet",
      meta_columns: { row_hash: true },
      quality: { row_count_min: 1 },
      parquet: { row_group_strategy: "auto" },
      tuning: { batch_size: 10 },
      destination: { type: "local", path: "./out" },
    }],
  };
}

const sectionPaths: Record<ConfigSection, (c: Record<string, any>) => Record<string, unknown>> = {
  top: (c) => c,
  source: (c) => c.source,
  tls: (c) => c.source.tls,
  tuning: (c) => c.exports[0].tuning,
  export: (c) => c.exports[0],
  destination: (c) => c.exports[0].destination,
  parquet: (c) => c.exports[0].parquet,
  quality: (c) => c.exports[0].quality,
  meta_columns: (c) => c.exports[0].meta_columns,
  cdc: (c) => c.exports[0].cdc,
  notifications: (c) => c.notifications,
  state: (c) => c.state,
  slack: (c) => c.notifications.slack,
  webhook: (c) => c.notifications.webhook,
};

Deno.test("the loader and the schema agree on an unknown key in every section", async () => {
  const check = validator();
  const dir = await Deno.makeTempDir({ prefix: "rivet_json_schema_" });
  try {
    const path = join(dir, "rivet.yaml");
    // JSON is YAML: the same object goes to the loader and to the validator.
    await Deno.writeTextFile(path, JSON.stringify(fullConfig()));
    await loadConfig(path);
    assert.equal(check(fullConfig()), undefined);
    for (const section of Object.keys(sectionPaths) as ConfigSection[]) {
      const config = fullConfig();
      sectionPaths[section](config).zz_unknown_key = 1;
      await Deno.writeTextFile(path, JSON.stringify(config));
      const loaded = await loadConfig(path).then(() => true, () => false);
      const valid = check(config) === undefined;
      assert.equal(loaded, OPEN_SECTIONS.has(section), `loader, section ${section}`);
      assert.equal(valid, loaded, `schema, section ${section}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The YAML blocks of the README and the docs. */
async function docBlocks(): Promise<[string, string][]> {
  const files = ["README.md", "examples/README.md"];
  for (const folder of ["docs", "docs/sources"]) {
    for await (const e of Deno.readDir(join(root, folder))) {
      if (e.isFile && e.name.endsWith(".md")) files.push(`${folder}/${e.name}`);
    }
  }
  const blocks: [string, string][] = [];
  for (const file of files) {
    const text = await Deno.readTextFile(join(root, file)).catch(() => "");
    for (const [i, m] of [...text.matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)].entries()) {
      blocks.push([`${file} block ${i + 1}`, m[1]!]);
    }
  }
  return blocks;
}

Deno.test("every example config of the repo is valid against the schema", async () => {
  const check = validator();
  const files = ["examples/demo.yaml"];
  for await (const e of Deno.readDir(join(root, "tests/fixtures/config"))) {
    if (e.isFile && e.name.endsWith(".yaml")) files.push(`tests/fixtures/config/${e.name}`);
  }
  // g18 is a positive fixture: chunked on a table without chunk_column is accepted.
  files.push("tests/fixtures/config/negative/g18_chunked_table_no_column.yaml");
  for (const file of files) {
    const value = await readConfigValue(await Deno.readTextFile(join(root, file)));
    assert.equal(check(value), undefined, file);
    // The loader accepts them too (with every variable set).
    await loadConfig(join(root, file), { env: () => "1" });
  }
  // The docs' blocks: whole configs, and fragments checked against their section (a list of
  // exports, a `source:` or a `destination:` block).
  const sections = {
    whole: check,
    export: validator("export"),
    source: validator("source"),
    destination: validator("destination"),
  };
  const seen = { whole: 0, export: 0, source: 0, destination: 0 };
  for (const [name, body] of await docBlocks()) {
    const value = await readConfigValue(body);
    const keys = value !== null && typeof value === "object" ? Object.keys(value) : [];
    // A list of GitHub Actions steps (docs/github-actions.md) is not a list of exports.
    const steps = Array.isArray(value) &&
      value.some((item) =>
        item !== null && typeof item === "object" && ("uses" in item || "run" in item)
      );
    const checks: [keyof typeof sections, unknown][] = steps
      ? []
      : Array.isArray(value)
      ? value.map((item) => ["export", item])
      : keys.includes("exports")
      ? [["whole", value]]
      : keys.length === 1 && (keys[0] === "source" || keys[0] === "destination")
      ? [[keys[0], (value as Record<string, unknown>)[keys[0]]]]
      : [];
    for (const [kind, part] of checks) {
      seen[kind] += 1;
      assert.equal(sections[kind](part), undefined, `${name} (${kind})`);
    }
  }
  assert.ok(Object.values(seen).every((n) => n > 0), JSON.stringify(seen));
});

Deno.test("the negative fixtures are refused by the schema too", async () => {
  const check = validator();
  const dir = join(root, "tests/fixtures/config/negative");
  const names: string[] = [];
  // Only the YAML files: other tests may leave state or report folders beside them.
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".yaml")) names.push(e.name);
  }
  // g15 is not YAML (nothing to validate); g18 is accepted (see above).
  const skipped = new Set(["g15_malformed_yaml.yaml", "g18_chunked_table_no_column.yaml"]);
  const checked = names.filter((n) => !skipped.has(n)).sort();
  assert.ok(checked.length >= 16, checked.join(", "));
  for (const name of checked) {
    const value = await readConfigValue(await Deno.readTextFile(join(dir, name)));
    assert.notEqual(check(value), undefined, `${name} passed the schema`);
  }
  // And a few rules beyond unknown keys and types.
  const refused = (change: (c: Record<string, any>) => void) => {
    const c = fullConfig();
    c.exports[0].mode = "full";
    delete c.exports[0].cdc;
    change(c);
    return check(c) !== undefined;
  };
  assert.equal(refused(() => {}), false);
  assert.ok(refused((c) => (c.exports[0].name = "../x")));
  assert.ok(refused((c) => (c.exports[0].table = "a b")));
  assert.ok(refused((c) => (c.exports[0].destination = { type: "s3" })));
  assert.ok(refused((c) => (c.exports[0].destination = { type: "local" })));
  assert.ok(refused((c) => (c.exports[0].tuning = { max_retries: BOUNDS.max_retries[1] + 1 })));
  assert.ok(refused((c) => Object.assign(c.exports[0], { format: "csv", compression: "zstd" })));
  assert.ok(refused((c) => (c.exports[0].mode = "time_window")));
  const chunked = { mode: "chunked", chunk_column: "id" };
  assert.equal(refused((c) => Object.assign(c.exports[0], chunked, { chunk_dense: true })), false);
  assert.ok(
    refused((c) => Object.assign(c.exports[0], chunked, { chunk_dense: true, chunk_count: 4 })),
  );
  assert.ok(refused((c) => Object.assign(c.exports[0], chunked, { parallel: 0 })));
  assert.equal(refused((c) => (c.exports[0].parallel = 0)), false, "parallel 0 outside chunked");
  assert.ok(refused((c) => (c.source.password_env = "PW")));
  assert.ok(refused((c) => (c.exports = [])));
});
