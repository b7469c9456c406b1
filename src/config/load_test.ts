import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../core/errors.ts";
import { redact } from "../_util/redact.ts";
import { BASE_EXPORT, BASE_SOURCE, loadError, loadYaml, tempDirWith } from "./_testing.ts";
import { resolveConnection } from "./connection.ts";
import { loadConfig } from "./load.ts";
import { checkTlsPolicy } from "./tls.ts";

const fixtures = fileURLToPath(new URL("../../tests/fixtures/config/", import.meta.url));
const BASE = `${BASE_SOURCE}exports:\n${BASE_EXPORT}`;

Deno.test("loadConfig reports a missing file by path with an init hint", async () => {
  const error = await loadConfig("/nonexistent/dir/rivet.yaml").then(
    () => assert.fail("loaded"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof ConfigError);
  assert.equal(error.code, "config.not_found");
  assert.equal(error.exitCode, 1);
  assert.match(error.message, /^config file '\/nonexistent\/dir\/rivet\.yaml': file not found/);
  assert.match(error.hint ?? "", /rivet init --source-env DATABASE_URL -o rivet\.yaml/);
});

Deno.test("loadConfig refuses a directory given as config: not a regular file", async () => {
  const dir = await tempDirWith({});
  try {
    const error = await loadConfig(dir).catch((e: unknown) => e);
    assert.ok(error instanceof ConfigError);
    assert.equal(error.code, "config.not_regular_file");
    assert.match(error.message, /is a directory, not a regular file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig loads the full PostgreSQL to local Parquet fixture", async () => {
  const config = await loadConfig(join(fixtures, "pg_local_parquet.yaml"), {
    env: () => undefined,
  });
  assert.equal(config.dir, fixtures.replace(/\/$/, ""));
  assert.deepEqual(config.source.connection, { form: "url_env", env: "RIVET_TEST_PG_URL" });
  assert.equal(config.exports.length, 2);
  const [orders, totals] = config.exports;
  assert.deepEqual(orders!.query, { kind: "table", schema: "public", table: "orders" });
  assert.deepEqual(orders!.format, {
    kind: "parquet",
    compression: "zstd",
    compressionLevel: 6,
    parquet: { rowGroupStrategy: "fixed_rows", rowGroupRows: 100000, targetRowGroupMb: 128 },
  });
  assert.equal(orders!.maxFileSize, 256 * 1024 * 1024);
  assert.equal(orders!.destination.path, "./out/{export}/{date}");
  assert.deepEqual(orders!.columns, { amount: "numeric(12,2)", created_at: "timestamptz" });
  assert.deepEqual(totals!.format, {
    kind: "parquet",
    compression: "zstd",
    compressionLevel: 9,
    compressionProfile: "compact",
  });
  assert.deepEqual(config.warnings, []);
});

Deno.test("loadConfig loads the structured CSV-to-stdout fixture with a --param", async () => {
  const config = await loadConfig(join(fixtures, "pg_structured_csv_stdout.yaml"), {
    params: { MIN_ID: "100" },
    env: () => undefined,
  });
  assert.deepEqual(config.source.connection, {
    form: "structured",
    host: "127.0.0.1",
    port: 5432,
    user: "rivet",
    database: "rivet",
    passwordEnv: "RIVET_TEST_PG_PASSWORD",
  });
  assert.deepEqual(config.exports[0]!.query, {
    kind: "query",
    sql: "SELECT id, email FROM public.users WHERE id > 100",
  });
  assert.equal(config.exports[0]!.destination.kind, "stdout");
});

Deno.test("loadConfig applies every export default (the Rust tool's defaults)", async () => {
  const config = await loadYaml(BASE);
  assert.deepEqual(config.exports[0], {
    name: "orders",
    index: 0,
    mode: "full",
    query: { kind: "table", schema: "public", table: "orders" },
    format: { kind: "parquet", compression: "zstd" },
    destination: { kind: "local", path: "./out", allowAnonymous: false },
    skipEmpty: false,
    verify: "size",
    metaColumns: { exportedAt: false, rowHash: false },
    columns: {},
    onSchemaDrift: "warn",
    shapeDriftWarnFactor: 2,
    reconcileRequired: false,
    incrementalCursorMode: "single_column",
    chunkDense: false,
    chunkSize: 100000,
    parallel: 1,
    chunkCheckpoint: false,
    timeColumnType: "timestamp",
    partitionGranularity: "day",
  });
  assert.equal(config.parallelExports, false);
  assert.equal(config.parallelExportProcesses, false);
  assert.equal(config.source.tls, undefined);
  assert.equal(config.notifications, undefined);
});

Deno.test("loadConfig defaults the structured port per engine", async () => {
  for (const [type, port] of [["postgres", 5432], ["mysql", 3306], ["mssql", 1433]] as const) {
    const config = await loadYaml(
      `source: {type: ${type}, host: h, user: u, database: d}\nexports:\n${BASE_EXPORT}`,
    );
    assert.equal(
      config.source.connection.form === "structured" && config.source.connection.port,
      port,
    );
  }
});

Deno.test("loadConfig maps compression profiles and warns when they override written keys", async () => {
  const profiles = [
    ["none", { compression: "none" }],
    ["fast", { compression: "snappy" }],
    ["balanced", { compression: "zstd", compressionLevel: 3 }],
    ["compact", { compression: "zstd", compressionLevel: 9 }],
  ] as const;
  for (const [profile, want] of profiles) {
    const config = await loadYaml(
      `${BASE_SOURCE}exports:\n  - {name: o, table: t, format: parquet, compression_profile: ${profile}, destination: {type: stdout}}\n`,
    );
    assert.deepEqual(config.exports[0]!.format, {
      kind: "parquet",
      ...want,
      compressionProfile: profile,
    });
    assert.deepEqual(config.warnings, []);
  }
  const config = await loadYaml(
    `${BASE_SOURCE}exports:\n  - {name: o, table: t, format: parquet, compression: gzip, compression_profile: fast, destination: {type: stdout}}\n`,
  );
  assert.equal(config.exports[0]!.format.compression, "snappy");
  assert.deepEqual(config.warnings.map((w) => w.code), ["config.compression_profile_override"]);
});

Deno.test("loadConfig warns once per unused --param and not for used ones", async () => {
  const config = await loadYaml(
    `${BASE_SOURCE}exports:\n  - {name: o, query: "SELECT \${COL}", format: csv, destination: {type: stdout}}\n`,
    { params: { COL: "1", EXTRA: "x", OTHER: "y" } },
  );
  assert.deepEqual(config.warnings.map((w) => [w.code, w.message]), [
    ["config.unused_param", "--param EXTRA is not used: the config has no ${EXTRA} placeholder"],
    ["config.unused_param", "--param OTHER is not used: the config has no ${OTHER} placeholder"],
  ]);
});

Deno.test("loadConfig substitutes params before env, and ${} as empty", async () => {
  const config = await loadYaml(
    `${BASE_SOURCE}exports:\n  - {name: o, query: "SELECT \${A}, \${B}\${}", format: csv, destination: {type: stdout}}\n`,
    { params: { A: "1" }, env: (n) => ({ A: "env", B: "2" })[n] },
  );
  assert.deepEqual(config.exports[0]!.query, { kind: "query", sql: "SELECT 1, 2" });
});

Deno.test("a missing variable is named alone and nothing connects", async () => {
  // ${NOPE} in the query: the load fails naming NOPE only.
  const error = await loadError(
    `source:\n  type: postgres\n  url_env: PG_URL\nexports:\n  - {name: o, query: "SELECT * FROM t WHERE secret_col = 'zz' AND x > \${NOPE}", format: csv, destination: {type: stdout}}\n`,
  );
  assert.equal(error.code, "config.missing_env");
  assert.match(error.message, /environment variable 'NOPE' is not set$/);
  assert.ok(!error.text.includes("secret_col"), error.text);
  // url_env: PG_URL unset: the config loads (the URL is read at connect time) and resolving the
  // connection fails naming PG_URL and the export, before any network I/O.
  const config = await loadYaml(
    `source: {type: postgres, url_env: PG_URL}\nexports:\n${BASE_EXPORT}`,
  );
  const connectError = await resolveConnection(config.source, {
    configDir: config.dir,
    env: () => undefined,
    exportName: "orders",
  }).catch((e: unknown) => e);
  assert.ok(connectError instanceof ConfigError);
  assert.equal(connectError.code, "config.missing_env");
  assert.equal(
    connectError.message,
    "environment variable 'PG_URL' (source.url_env) is not set for export 'orders'",
  );
});

Deno.test("path, endpoint and TLS rules fail at load naming the field", async () => {
  const cases: [string, string, string][] = [
    [
      `  - {name: ../x, table: t, format: csv, destination: {type: stdout}}\n`,
      "config.unsafe_name",
      "'../x'",
    ],
    [
      `  - {name: o, table: t, format: csv, destination: {type: local, path: out/../../etc}}\n`,
      "config.unsafe_path",
      "destination.path",
    ],
    [
      `  - {name: o, query_file: /etc/passwd, format: csv, destination: {type: stdout}}\n`,
      "config.unsafe_path",
      "query_file",
    ],
    [
      `  - {name: o, table: t, format: csv, destination: {type: s3, bucket: b, endpoint: "http://storage.example.invalid:9000"}}\n`,
      "config.endpoint_not_loopback",
      "destination.endpoint",
    ],
  ];
  for (const [exp, code, field] of cases) {
    const error = await loadError(`${BASE_SOURCE}exports:\n${exp}`);
    assert.equal(error.code, code, error.text);
    assert.ok(error.message.includes(field), error.message);
  }
  const tls = await loadError(
    `${BASE_SOURCE}  tls: {mode: verify-full, accept_invalid_certs: true}\nexports:\n${BASE_EXPORT}`,
  );
  assert.equal(tls.code, "config.tls_downgrade");
  assert.ok(tls.message.includes("accept_invalid_certs"));
});

Deno.test("loadConfig reports YAML syntax errors with line, column and no source excerpt", async () => {
  const error = await loadError(
    "source:\n  type: postgres\n  url: postgresql://app:hunter2-S3CR3T_M4RK3R@db/x\n    oops: 1\nexports: []\n",
  );
  assert.equal(error.code, "config.yaml_syntax");
  assert.match(error.message, /: YAML syntax error at line \d+, column \d+: /);
  assert.ok(!error.text.includes("S3CR3T_M4RK3R"), error.text);
  assert.ok(!error.text.includes("hunter2"), error.text);
});

Deno.test("loadConfig adds the brace-quoting hint only when a line has an unquoted brace", async () => {
  const braces = await loadError(
    `${BASE_SOURCE}exports:\n  - name: o\n    table: t\n    format: csv\n    destination:\n      type: local\n      path: {export}/data\n`,
  );
  assert.match(braces.hint ?? "", /must be quoted/);
  const other = await loadError(`${BASE_SOURCE}exports:\n  - name: o\n   table: t\n`);
  assert.equal(other.code, "config.yaml_syntax");
  assert.ok(!(other.hint ?? "").includes("quoted"));
});

Deno.test("loadConfig adds the tab-indentation hint", async () => {
  const error = await loadError("source:\n\ttype: postgres\nexports: []\n");
  assert.equal(error.code, "config.yaml_syntax");
  assert.match(error.hint ?? "", /tabs for indentation/);
});

Deno.test("loadConfig refuses duplicate keys", async () => {
  const error = await loadError(`${BASE_SOURCE}  type: mysql\nexports:\n${BASE_EXPORT}`);
  assert.equal(error.code, "config.yaml_syntax");
  assert.match(error.message, /unique/);
});

Deno.test("unknown fields name the path, list the keys and suggest a close one", async () => {
  const cases: [string, string, string][] = [
    [
      `${BASE_SOURCE}exports:\n  - {name: o, table: t, chunk_colum: id, format: csv, destination: {type: stdout}}\n`,
      "exports[0]: unknown field `chunk_colum`",
      "Did you mean `chunk_column`?",
    ],
    [
      `${BASE_SOURCE}exports:\n  - {name: o, table: t, format: csv, destination: {type: local, pth: x}}\n`,
      "exports[0].destination: unknown field `pth`",
      "Did you mean `path`?",
    ],
    [
      `source: {type: postgres, usr: u, host: h, database: d}\nexports:\n${BASE_EXPORT}`,
      "source: unknown field `usr`, expected one of `type`, `url`",
      "Did you mean `user`?",
    ],
    [
      `${BASE_SOURCE}  tuning: {batchsize: 10}\nexports:\n${BASE_EXPORT}`,
      "source.tuning: unknown field `batchsize`",
      "Did you mean `batch_size`?",
    ],
    [
      `${BASE_SOURCE}  tls: {Mode: require}\nexports:\n${BASE_EXPORT}`,
      "source.tls: unknown field `Mode`",
      "Did you mean `mode`?",
    ],
    [
      `${BASE_SOURCE}exports:\n${BASE_EXPORT}paralel_exports: true\n`,
      "unknown field `paralel_exports`",
      "Did you mean `parallel_exports`?",
    ],
  ];
  for (const [yaml, message, suggestion] of cases) {
    const error = await loadError(yaml);
    assert.equal(error.code, "config.unknown_field");
    assert.ok(error.message.includes(message), error.message);
    assert.ok(error.message.endsWith(suggestion), error.message);
  }
});

Deno.test("unknown enum variants list the valid ones and suggest a close one", async () => {
  const error = await loadError(
    `${BASE_SOURCE}exports:\n  - {name: o, table: t, format: Parquet, destination: {type: stdout}}\n`,
  );
  assert.equal(error.code, "config.invalid_value");
  assert.ok(
    error.message.includes(
      "exports[0].format: unknown variant `Parquet`, expected `parquet` or `csv`",
    ),
  );
  assert.ok(error.message.endsWith("Did you mean `parquet`?"));
  const dest = await loadError(
    `${BASE_SOURCE}exports:\n  - {name: o, table: t, format: csv, destination: {type: ftp}}\n`,
  );
  assert.ok(dest.message.includes("expected one of `local`, `stdout`, `s3`, `gcs`, `azure`"));
});

Deno.test("type errors name the key path and the expected type", async () => {
  const cases: [string, string][] = [
    [
      `  - {name: o, table: t, chunk_size: lots, format: csv, destination: {type: stdout}}\n`,
      "exports[0].chunk_size: expected a non-negative integer, got a string",
    ],
    [
      `  - {name: o, table: t, chunk_size: 1.5, format: csv, destination: {type: stdout}}\n`,
      "exports[0].chunk_size: expected a non-negative integer, got a number",
    ],
    [
      `  - {name: o, table: t, skip_empty: yes, format: csv, destination: {type: stdout}}\n`,
      "exports[0].skip_empty: expected a boolean (true or false), got a string",
    ],
    [
      `  - {name: o, table: t, format: csv, destination: {type: stdout, allow_anonymous: 1}}\n`,
      "exports[0].destination.allow_anonymous: expected a boolean",
    ],
    [
      `  - {name: 12, table: t, format: csv, destination: {type: stdout}}\n`,
      "exports[0].name: expected a string, got an integer",
    ],
    [
      `  - {name: o, table: t, format: csv, columns: [a], destination: {type: stdout}}\n`,
      "exports[0].columns: expected a mapping, got a list",
    ],
    [
      `  - {name: o, table: t, chunk_size: -5, format: csv, destination: {type: stdout}}\n`,
      "exports[0].chunk_size: invalid value -5",
    ],
  ];
  for (const [exp, message] of cases) {
    const error = await loadError(`${BASE_SOURCE}exports:\n${exp}`);
    assert.ok(error.message.includes(message), `${message}\n---\n${error.message}`);
    assert.match(error.message, /at line \d+ column \d+/);
  }
  const exportsNotList = await loadError(`${BASE_SOURCE}exports: {name: o}\n`);
  assert.ok(exportsNotList.message.includes("exports: expected a list, got a mapping"));
});

Deno.test("missing required fields get a remediation hint", async () => {
  const cases: [string, string, RegExp][] = [
    [`${BASE_SOURCE}\n`, "missing field `exports`", /exports:/],
    [
      `${BASE_SOURCE}exports:\n  - {table: t, format: csv, destination: {type: stdout}}\n`,
      "exports[0]: missing field `name`",
      /name:/,
    ],
    [
      `${BASE_SOURCE}exports:\n  - {name: o, table: t, destination: {type: stdout}}\n`,
      "exports[0]: missing field `format`",
      /format: parquet/,
    ],
    [
      `${BASE_SOURCE}exports:\n  - {name: o, table: t, format: csv}\n`,
      "exports[0]: missing field `destination`",
      /destination:/,
    ],
    [`source: {url_env: X}\nexports:\n${BASE_EXPORT}`, "source: missing field `type`", /type:/],
  ];
  for (const [yaml, message, hint] of cases) {
    const error = await loadError(yaml);
    assert.equal(error.code, "config.missing_field");
    assert.ok(error.message.includes(message), error.message);
    assert.match(error.hint ?? "", hint);
  }
  const empty = await loadError("");
  assert.ok(empty.message.includes("missing field `source`"));
});

Deno.test("plaintext passwords warn once each and never show the value", async () => {
  const url = await loadYaml(
    `source: {type: postgres, url: "postgresql://app:pw-S3CR3T_M4RK3R@127.0.0.1/db"}\nexports:\n${BASE_EXPORT}`,
  );
  assert.deepEqual(url.warnings.map((w) => w.code), ["config.plaintext_password"]);
  assert.equal(
    url.source.connection.form === "url" && url.source.connection.url.secret,
    "postgresql://app:pw-S3CR3T_M4RK3R@127.0.0.1/db",
  );
  const structured = await loadYaml(
    `source: {type: postgres, host: h, user: u, database: d, password: "pw-S3CR3T_M4RK3R"}\nexports:\n${BASE_EXPORT}`,
  );
  assert.deepEqual(structured.warnings.map((w) => w.code), ["config.plaintext_password"]);
  for (const w of [...url.warnings, ...structured.warnings]) {
    assert.ok(!w.message.includes("S3CR3T_M4RK3R"));
  }
  const clean = await loadYaml(
    `source: {type: postgres, url: "postgresql://app@127.0.0.1/db"}\nexports:\n${BASE_EXPORT}`,
  );
  assert.deepEqual(clean.warnings, []);
});

Deno.test("a password containing S3CR3T_M4RK3R never appears in any load error", async () => {
  const marker = "p@ss:w/rd-S3CR3T_M4RK3R";
  const encoded = encodeURIComponent(marker);
  const failing: string[] = [
    // inline url + unknown key
    `source:\n  type: postgres\n  url: "postgresql://app:${encoded}@db.example.com/x"\n  bogus: 1\nexports:\n${BASE_EXPORT}`,
    // inline url + conflicting connection forms
    `source:\n  type: postgres\n  url: "postgresql://app:${encoded}@db/x"\n  url_env: X\nexports:\n${BASE_EXPORT}`,
    // inline url with the raw '@' password and a YAML error on the same line
    `source:\n  type: postgres\n  url: postgresql://app:${
      marker.replace("/", "%2F")
    }@db/x {\nexports: []\n`,
    // password: + password_env
    `source:\n  type: postgres\n  host: h\n  user: u\n  database: d\n  password: "${marker}"\n  password_env: P\nexports:\n${BASE_EXPORT}`,
    // password: with a type error further down
    `source:\n  type: postgres\n  host: h\n  user: u\n  database: d\n  password: "${marker}"\n  port: abc\nexports:\n${BASE_EXPORT}`,
    // password: that breaks the YAML itself
    `source:\n  type: postgres\n  password: ${marker} {oops\n  host: h\nexports: []\n`,
    // password from ${PGPW} (env) and an enum error
    `source:\n  type: postgres\n  host: h\n  user: u\n  database: d\n  password: "\${PGPW}"\n  environment: prod\nexports:\n${BASE_EXPORT}`,
    // password given as a list (type error must not print the value)
    `source:\n  type: postgres\n  host: h\n  user: u\n  database: d\n  password: ["${marker}"]\nexports:\n${BASE_EXPORT}`,
  ];
  for (const yaml of failing) {
    const error = await loadError(yaml, { env: (n) => (n === "PGPW" ? marker : undefined) });
    assert.ok(!error.text.includes("S3CR3T_M4RK3R"), error.text);
    assert.ok(!error.text.includes(encoded), error.text);
  }
  // Registration happened: the redactor now removes the raw and encoded forms anywhere.
  assert.equal(redact(`x ${marker} y ${encoded} z`), "x *** y *** z");
  // The TLS refusal at connect time names the host, never the URL or password.
  const config = await loadYaml(
    `source: {type: postgres, url: "postgresql://app:${encoded}@db.example.com/x"}\nexports:\n${BASE_EXPORT}`,
  );
  const info = await resolveConnection(config.source, { configDir: config.dir });
  assert.equal(info.password, marker);
  const tls = await Promise.resolve().then(() => checkTlsPolicy(info, config.source.tls)).catch(
    (e: unknown) => e,
  );
  assert.ok(tls instanceof ConfigError);
  assert.ok(!`${tls.message}${tls.hint}`.includes("S3CR3T_M4RK3R"));
  for (const w of config.warnings) assert.ok(!w.message.includes("S3CR3T_M4RK3R"));
});

Deno.test("loadConfig builds notifications and tls blocks with their defaults", async () => {
  const config = await loadYaml(
    `${BASE_SOURCE}  tls: {mode: require, ca_file: ca.pem}\nexports:\n${BASE_EXPORT}` +
      `notifications:\n  slack: {webhook_url_env: SLACK_URL}\nparallel_export_processes: true\n`,
  );
  assert.deepEqual(config.source.tls, {
    mode: "require",
    // Relative to the config's folder, resolved once at load.
    caFile: join(config.dir, "ca.pem"),
    acceptInvalidCerts: false,
    acceptInvalidHostnames: false,
  });
  assert.deepEqual(config.notifications, {
    slack: { webhookUrlEnv: "SLACK_URL", on: ["failure"] },
  });
  assert.equal(config.parallelExportProcesses, true);
});
