/**
 * Config loading under hostile or careless input: `${}` values that try to add structure, alias
 * bombs and deep nesting, numeric keys out of range, unsafe export names, unknown path
 * placeholders, file inputs that are not regular files, Ctrl-C during the load.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, InterruptedError } from "../core/errors.ts";
import { redact } from "../_util/redact.ts";
import { BASE_EXPORT, BASE_SOURCE, loadError, loadYaml, tempDirWith } from "./_testing.ts";
import { loadConfig } from "./load.ts";

const BASE = `${BASE_SOURCE}exports:\n${BASE_EXPORT}`;

function exp(keys: string, destination = "{type: local, path: ./out}"): string {
  return `${BASE_SOURCE}exports:\n  - {name: o, table: t, format: csv, ${keys}${
    keys ? ", " : ""
  }destination: ${destination}}\n`;
}

// ---------------------------------------------------------------------------------------------
// Item 11: substitution into parsed values

Deno.test("a ${} value with newlines and YAML syntax stays inside its one value", async () => {
  const value = "1 FROM t\n  - name: injected\n    table: t2\n    format: csv\n" +
    "    destination: {type: stdout}\n  - name: tail\n    query: SELECT 1";
  const config = await loadYaml(
    `${BASE_SOURCE}exports:\n  - name: o\n    query: SELECT \${V}\n    format: csv\n` +
      `    destination: {type: stdout}\n`,
    { params: { V: value } },
  );
  assert.equal(config.exports.length, 1);
  assert.deepEqual(config.exports[0]!.query, { kind: "query", sql: `SELECT ${value}` });
});

Deno.test("a ${} value with quotes cannot close a quoted scalar", async () => {
  const value = `x", injected: "y`;
  const config = await loadYaml(
    `${BASE_SOURCE}exports:\n  - {name: o, query: "SELECT '\${V}'", format: csv, destination: {type: stdout}}\n`,
    { params: { V: value } },
  );
  assert.deepEqual(config.exports[0]!.query, { kind: "query", sql: `SELECT '${value}'` });
});

Deno.test("${} works in flow mappings and block scalars, and types plain values", async () => {
  const config = await loadYaml(
    `source: {type: postgres, host: \${HOST}, port: \${PORT}, user: u, database: d}\n` +
      `exports:\n  - name: o\n    query: |\n      SELECT \${COL}\n      FROM t\n` +
      `    format: csv\n    chunk_size: \${N}000\n    skip_empty: \${FLAG}\n` +
      `    destination: {type: local, path: ./out/\${DAY}}\n`,
    { params: { HOST: "db", PORT: "6432", COL: "a, b", N: "5", FLAG: "true", DAY: "2026-01-31" } },
  );
  const c = config.source.connection;
  assert.equal(c.form === "structured" && c.host, "db");
  assert.equal(c.form === "structured" && c.port, 6432);
  const e = config.exports[0]!;
  assert.deepEqual(e.query, { kind: "query", sql: "SELECT a, b\nFROM t\n" });
  assert.equal(e.chunkSize, 5000);
  assert.equal(e.skipEmpty, true);
  assert.equal(e.destination.path, "./out/2026-01-31");
  // A quoted value stays a string whatever it holds.
  const quoted = await loadError(
    `source: {type: postgres, host: h, port: "\${PORT}", user: u, database: d}\nexports:\n${BASE_EXPORT}`,
    { params: { PORT: "6432" } },
  );
  assert.match(quoted.message, /source\.port: expected a non-negative integer, got a string/);
});

Deno.test("placeholders in comments are ignored; in keys they are refused", async () => {
  const config = await loadYaml(`# uses \${NOT_SET_ANYWHERE}\n${BASE}`, { params: { ONLY: "x" } });
  assert.deepEqual(config.warnings.map((w) => w.message), [
    "--param ONLY is not used: the config has no ${ONLY} placeholder",
  ]);
  const key = await loadError(
    `${BASE_SOURCE}exports:\n  - name: o\n    table: t\n    format: csv\n` +
      `    columns:\n      \${COL}: int64\n    destination: {type: stdout}\n`,
    { params: { COL: "a" } },
  );
  assert.equal(key.code, "config.placeholder_in_key");
  assert.match(key.message, /line 9, column 7/);
});

Deno.test("a missing variable is named with where it is used, never the text around it", async () => {
  const error = await loadError(
    `${BASE_SOURCE}exports:\n  - {name: o, query: "SELECT secret_col FROM t WHERE x > \${NOPE}", format: csv, destination: {type: stdout}}\n`,
  );
  assert.equal(error.code, "config.missing_env");
  assert.match(error.message, /environment variable 'NOPE' is not set$/);
  assert.match(error.hint ?? "", /line 5/);
  assert.ok(!error.text.includes("secret_col"), error.text);
});

Deno.test("a substituted password is registered before any later error can echo it", async () => {
  const secret = "pw-from-env-S3CR3T_M4RK3R";
  const error = await loadError(
    `source: {type: postgres, host: h, user: u, database: d, password: \${PW}, environment: prod}\n` +
      `exports:\n${BASE_EXPORT}`,
    { env: (n) => (n === "PW" ? secret : undefined) },
  );
  assert.ok(!error.text.includes("S3CR3T_M4RK3R"), error.text);
  assert.equal(redact(`x ${secret} y`), "x *** y");
});

Deno.test("query_file contents keep text substitution, spliced verbatim", async () => {
  const dir = await tempDirWith({
    "rivet.yaml": `${BASE_SOURCE}exports:\n  - {name: o, query_file: q.sql, format: csv, ` +
      `destination: {type: stdout}}\n`,
    "q.sql": "SELECT * FROM ${SCHEMA}.t -- ${SCHEMA}\n",
  });
  try {
    const { exportSql } = await import("./query_file.ts");
    const config = await loadConfig(join(dir, "rivet.yaml"), { env: () => undefined });
    const sql = await exportSql(config.exports[0]!, config.dir, { params: { SCHEMA: "a'b" } });
    assert.equal(sql, "SELECT * FROM a'b.t -- a'b\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// Item 9: alias bombs, nesting, size

function bomb(indent: string): string {
  const names = "abcdefghi".split("");
  const lines = [`${indent}a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]`];
  for (let i = 1; i < names.length; i++) {
    lines.push(
      `${indent}${names[i]}: &${names[i]} [${Array(9).fill(`*${names[i - 1]}`).join(", ")}]`,
    );
  }
  return lines.join("\n") + "\n";
}

Deno.test("an alias bomb is refused in well under a second, wherever it sits", async () => {
  const cases = [
    `${BASE}unknown_key:\n${bomb("  ")}`,
    `${BASE_SOURCE}exports:\n  - name: o\n    table: t\n    format: csv\n    mode: cdc\n` +
    `    destination: {type: stdout}\n    cdc:\n${bomb("      ")}`,
  ];
  for (const yaml of cases) {
    const started = performance.now();
    const error = await loadError(yaml);
    const ms = performance.now() - started;
    assert.equal(error.code, "config.yaml_too_complex", error.text);
    assert.match(error.message, /alias/);
    assert.ok(ms < 3_000, `${ms} ms`);
  }
});

Deno.test("ordinary aliases still work: one destination block shared by many exports", async () => {
  const others = Array.from(
    { length: 50 },
    (_, i) => `  - {name: e${i}, table: t, format: csv, destination: *dest}`,
  ).join("\n");
  const config = await loadYaml(
    `${BASE_SOURCE}exports:\n` +
      `  - {name: first, table: t, format: csv, destination: &dest {type: local, path: ./out}}\n` +
      `${others}\n`,
  );
  assert.equal(config.exports.length, 51);
  assert.equal(config.exports[50]!.destination.path, "./out");
});

Deno.test("deep nesting is refused quickly", async () => {
  const started = performance.now();
  const error = await loadError(`${BASE}x: ${"[".repeat(5000)}${"]".repeat(5000)}\n`);
  assert.ok(["config.yaml_syntax", "config.yaml_too_complex"].includes(error.code), error.text);
  assert.ok(performance.now() - started < 3_000);
});

// ---------------------------------------------------------------------------------------------
// Item 14: bounds and names

Deno.test("numeric keys out of range are refused naming the key and the bound", async () => {
  const cases: [string, RegExp][] = [
    ["tuning: {batch_size: 0}", /batch_size.*>= 1/],
    ["tuning: {throttle_ms: -1}", /throttle_ms.*>= 0/],
    ["tuning: {max_retries: 1000}", /max_retries.*<= 100/],
    ["tuning: {batch_size_memory_mb: 0}", /batch_size_memory_mb.*>= 1/],
    ["chunk_max_attempts: 0", /chunk_max_attempts.*>= 1/],
    ["mode: chunked, chunk_column: id, parallel: 100000", /parallel.*<= /],
    ["mode: time_window, time_column: t, days_window: 0", /days_window.*>= 1/],
    ["shape_drift_warn_factor: -1", /shape_drift_warn_factor/],
    ["parquet: {row_group_rows: 0}", /row_group_rows.*>= 1/],
  ];
  for (const [keys, message] of cases) {
    const error = await loadError(exp(keys));
    assert.equal(error.code, "config.invalid_value", `${keys}: ${error.text}`);
    assert.match(error.message, message, keys);
  }
  const port = await loadError(
    `source: {type: postgres, host: h, port: 70000, user: u, database: d}\nexports:\n${BASE_EXPORT}`,
  );
  assert.match(port.message, /source\.port.*<= 65535/);
});

Deno.test("export names are limited to a safe character set, with a clear message for ':'", async () => {
  const bad: [string, RegExp][] = [
    ['"a:b"', /':'/],
    ['"a\\nb"', /control character/],
    ['"a\\tb"', /control character/],
    ['"a b"', /not allowed/],
    ['"é"', /not allowed/],
    ['"-x"', /start/],
    [`"${"n".repeat(200)}"`, /128/],
  ];
  for (const [name, message] of bad) {
    const error = await loadError(
      `${BASE_SOURCE}exports:\n  - {name: ${name}, table: t, format: csv, destination: {type: stdout}}\n`,
    );
    assert.equal(error.code, "config.unsafe_name", `${name}: ${error.text}`);
    assert.match(error.text, message, name);
  }
  const ok = await loadYaml(
    `${BASE_SOURCE}exports:\n  - {name: Orders_2026.v-1, table: t, format: csv, destination: {type: stdout}}\n`,
  );
  assert.equal(ok.exports[0]!.name, "Orders_2026.v-1");
});

Deno.test("an empty destination path or one with control characters is refused", async () => {
  for (const path of ['""', '"  "', '"out\\nx"']) {
    const error = await loadError(exp("", `{type: local, path: ${path}}`));
    assert.equal(error.code, "config.invalid_value", `${path}: ${error.text}`);
    assert.match(error.message, /destination\.path/);
  }
  const prefix = await loadError(exp("", `{type: s3, bucket: b, prefix: "a\\rb"}`));
  assert.match(prefix.message, /destination\.prefix/);
});

Deno.test("unknown {placeholders} in destination paths are refused listing the known ones", async () => {
  const error = await loadError(exp("", `{type: local, path: "./out/{exprot}/{date}"}`));
  assert.equal(error.code, "config.unknown_placeholder");
  assert.match(error.message, /\{exprot\}/);
  assert.match(error.text, /\{date\}, \{export\}, \{table\}, \{run_id\}, \{partition\}/);
  assert.match(error.text, /did you mean \{export\}/i);
  const ok = await loadYaml(
    exp("", `{type: local, path: "./out/{export}/{table}/{date}/{run_id}"}`),
  );
  assert.equal(ok.exports[0]!.destination.path, "./out/{export}/{table}/{date}/{run_id}");
});

// ---------------------------------------------------------------------------------------------
// Item 12: file inputs

Deno.test("relative ca_file, credentials_file and url_file resolve from the config folder", async () => {
  const dir = await tempDirWith({
    "sub/rivet.yaml": `source:\n  type: postgres\n  url_file: secrets/db.url\n` +
      `  tls: {mode: verify-full, ca_file: certs/ca.pem}\nexports:\n` +
      `  - {name: o, table: t, format: csv, destination: {type: gcs, bucket: b, ` +
      `credentials_file: keys/gcs.json}}\n`,
    "sub/keys/gcs.json": "{}",
  });
  try {
    const config = await loadConfig(join(dir, "sub", "rivet.yaml"), { env: () => undefined });
    assert.equal(config.source.tls?.caFile, join(dir, "sub", "certs", "ca.pem"));
    assert.equal(
      config.exports[0]!.destination.credentialsFile,
      join(dir, "sub", "keys", "gcs.json"),
    );
    assert.deepEqual(config.source.connection, {
      form: "url_file",
      path: join(dir, "sub", "secrets", "db.url"),
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a config file that is not a regular file or is too large is refused", async () => {
  for (const path of ["/dev/zero", "/dev/null"]) {
    const error = await loadConfig(path).catch((e: unknown) => e);
    assert.ok(error instanceof ConfigError, String(error));
    assert.equal(error.code, "config.not_regular_file");
    assert.match(error.message, /not a regular file/);
  }
});

// ---------------------------------------------------------------------------------------------
// Item 10: Ctrl-C during the load

Deno.test("loadConfig stops with InterruptedError when its signal is aborted", async () => {
  const dir = await tempDirWith({ "rivet.yaml": BASE });
  try {
    const controller = new AbortController();
    controller.abort();
    const error = await loadConfig(join(dir, "rivet.yaml"), { signal: controller.signal }).catch(
      (e: unknown) => e,
    );
    assert.ok(error instanceof InterruptedError, String(error));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
