import assert from "node:assert/strict";
import { join } from "node:path";
import { analyzeTable, type InventoryTable } from "./inventory.ts";
import { renderScaffold, yamlString } from "./scaffold.ts";
import { loadConfig } from "../config/mod.ts";
import type { SourceKind } from "../core/spec.ts";

function table(name: string, over: Partial<InventoryTable> = {}): InventoryTable {
  return {
    schema: "app",
    name,
    kind: "table",
    rowEstimate: 5,
    columns: [{ name: "id", type: "integer", baseType: "int4", nullable: false }],
    keys: [{ name: "pk", primary: true, columns: ["id"] }],
    unsupported: [],
    ...over,
  };
}

function render(kind: SourceKind, tables: InventoryTable[], extra = {}) {
  const analyses = tables.map((t) => analyzeTable(kind, t));
  return renderScaffold({ kind, host: "db", database: "shop", tables }, analyses, {
    connection: { form: "url_env", env: "DATABASE_URL", fromUrl: true },
    destination: { kind: "local" },
    ...extra,
  });
}

async function load(yaml: string) {
  const dir = await Deno.makeTempDir({ prefix: "rivet_scaffold_" });
  try {
    const path = join(dir, "rivet.yaml");
    await Deno.writeTextFile(path, yaml);
    return await loadConfig(path, { env: () => undefined });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("yamlString: plain when safe, quoted otherwise", () => {
  assert.equal(yamlString("orders"), "orders");
  assert.equal(yamlString("./out/orders"), "./out/orders");
  assert.equal(yamlString("../pg.url"), "../pg.url");
  assert.equal(yamlString("true"), "'true'");
  assert.equal(yamlString("12"), "'12'");
  assert.equal(yamlString("it's"), "'it''s'");
  assert.equal(yamlString("a: b # c"), "'a: b # c'");
  assert.equal(yamlString("x\ny"), '"x\\ny"');
});

Deno.test("hostile names: no line injected, quoted SQL, unique filename-safe export names", async () => {
  const evil = table("bad\nexports: []\n#", {
    columns: [{ name: "a'b", type: "integer", baseType: "int4", nullable: false }],
    keys: [],
  });
  const tables = [
    evil,
    table("orders"),
    table("orders", { schema: "other" }),
    table("select"),
    table("dollar${HOME}"),
  ];
  const { yaml, exports, skipped } = render("postgres", tables);
  assert.equal(exports, 4);
  assert.deepEqual(skipped, ["app.dollar${HOME}"]);
  assert.ok(!yaml.includes("\nexports: []"), yaml);
  const config = await load(yaml);
  assert.deepEqual(config.exports.map((e) => e.name), [
    "bad_exports______",
    "app_orders",
    "other_orders",
    "select",
  ]);
  const sql = config.exports.map((e) => e.query);
  assert.deepEqual(sql[0], { kind: "query", sql: 'SELECT * FROM "app"."bad\nexports: []\n#"' });
  assert.deepEqual(sql[1], { kind: "table", schema: "app", table: "orders" });
  assert.deepEqual(sql[3], { kind: "query", sql: 'SELECT * FROM "app"."select"' });
});

Deno.test("every mode loads: chunked, incremental with coalesce, time_window, overrides", async () => {
  const big = table("big", { rowEstimate: 7_000_000 });
  const events = table("events", {
    rowEstimate: 200_000,
    keys: [],
    columns: [
      { name: "updated_at", type: "datetime", baseType: "datetime", nullable: true },
      { name: "created_at", type: "datetime", baseType: "datetime", nullable: false },
      {
        name: "amount",
        type: "decimal(60,4)",
        baseType: "decimal",
        nullable: true,
        precision: 60,
        scale: 4,
      },
    ],
  });
  const { yaml } = render("mysql", [big, events], {
    destination: { kind: "gcs", bucket: "lake", credentialsFile: "key.json" },
  });
  assert.match(yaml, /parallel: 4/);
  assert.match(yaml, /cursor_fallback_column: created_at/);
  assert.match(yaml, /amount: 'decimal\(38,4\)'/);
  assert.match(
    yaml,
    /type: gcs\n {6}bucket: lake\n {6}prefix: big\/\n {6}credentials_file: key\.json/,
  );
  const dir = await Deno.makeTempDir({ prefix: "rivet_scaffold_" });
  try {
    await Deno.writeTextFile(join(dir, "key.json"), "{}");
    await Deno.writeTextFile(join(dir, "r.yaml"), yaml);
    const config = await loadConfig(join(dir, "r.yaml"));
    const [b, e] = config.exports;
    assert.equal(b!.mode, "chunked");
    assert.equal(b!.chunkCheckpoint, true);
    assert.equal(e!.incrementalCursorMode, "coalesce");
    assert.deepEqual(e!.columns, { amount: "decimal(38,4)" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const tw = analyzeTable("mysql", events, { mode: "time_window" });
  const windowed = renderScaffold(
    { kind: "mysql", host: "h", database: "d", tables: [events] },
    [tw],
    { connection: { form: "url_file", path: "db.url" }, destination: { kind: "local" } },
  );
  assert.match(windowed.yaml, /url_file: db\.url/);
  const loaded = await load(windowed.yaml);
  assert.equal(loaded.exports[0]!.mode, "time_window");
  assert.equal(loaded.exports[0]!.timeColumn, "updated_at");
});

Deno.test("a table nothing can be read from gets a REVIEW comment, no export", () => {
  const { yaml, exports } = render("mssql", [
    table("locked", { unreadable: "permission denied" }),
    table("geo", {
      columns: [{ name: "g", type: "geography", baseType: "geography", nullable: true }],
      unsupported: [{ column: "g", type: "geography", reason: "unsupported" }],
      keys: [],
    }),
  ]);
  assert.equal(exports, 0);
  assert.match(yaml, /# REVIEW: app\.locked has no export: cannot be read \(permission denied\)/);
  assert.match(yaml, /# REVIEW: app\.geo has no export: none of its columns can be exported/);
});

Deno.test("--mode cdc scaffolds a runnable cdc block per table, each with its own reader", async () => {
  const tables = [table("orders"), table("items"), table("Weird Name")];
  for (const kind of ["postgres", "mysql", "mssql"] as const) {
    const analyses = tables.map((t) => analyzeTable(kind, t, { mode: "cdc" }));
    const { yaml } = renderScaffold({ kind, host: "db", database: "shop", tables }, analyses, {
      connection: { form: "url_env", env: "DATABASE_URL", fromUrl: true },
      destination: { kind: "local" },
    });
    const config = await load(yaml);
    const modes = Object.fromEntries(config.exports.map((e) => [e.name, e.mode]));
    // A quoted name cannot be captured: exported whole, with a REVIEW line.
    assert.deepEqual(Object.values(modes).sort(), ["cdc", "cdc", "full"], kind);
    assert.match(yaml, /# REVIEW: cdc needs a table named with letters/);
    const cdc = config.exports.filter((e) => e.mode === "cdc");
    assert.ok(
      cdc.every((e) => e.cdc?.untilCurrent === true && e.cdc.checkpoint?.endsWith(".ckpt")),
    );
    // Meta columns cannot go with cdc: only the full export offers them.
    assert.equal(yaml.match(/meta_columns: \{exported_at/g)?.length, 1);
    // The plan checks accept it: distinct slots / server ids and folders.
    const { checkRunnable } = await import("../config/mod.ts");
    checkRunnable(config, config.exports, { resume: false });
    if (kind === "postgres") {
      assert.deepEqual(cdc.map((e) => e.cdc?.slot).sort(), ["rivet_items", "rivet_orders"]);
    }
    if (kind === "mysql") {
      const ids = cdc.map((e) => e.cdc!.serverId!);
      assert.equal(new Set(ids).size, 2);
      assert.ok(ids.every((id) => id >= 4271));
    }
    if (kind === "mssql") {
      assert.deepEqual(cdc.map((e) => e.cdc?.captureInstance).sort(), ["app_items", "app_orders"]);
    }
  }
});
