/**
 * Every load-time semantic rule of `validate.ts`, each through a real YAML file and `loadConfig`.
 */
import assert from "node:assert/strict";
import { BASE_SOURCE, loadError, loadYaml } from "./_testing.ts";

/** A config with the base source and one export made of `lines` (2-space YAML under `- `). */
function withExport(lines: string, source = BASE_SOURCE): string {
  const body = lines.trim().split("\n").map((l, i) => (i === 0 ? "  - " : "    ") + l.trim())
    .join("\n");
  return `${source}exports:\n${body}\n`;
}

const LOCAL = "destination: {type: local, path: ./out}";

async function expectRule(yaml: string, code: string, ...parts: (string | RegExp)[]) {
  const error = await loadError(yaml);
  assert.equal(error.code, code, error.text);
  for (const part of parts) {
    if (typeof part === "string") {
      assert.ok(error.text.includes(part), `${part}\n---\n${error.text}`);
    } else assert.match(error.text, part);
  }
  return error;
}

Deno.test("validate refuses an empty export list", async () => {
  await expectRule(
    `${BASE_SOURCE}exports: []\n`,
    "config.no_exports",
    "at least one export must be defined (got empty list)",
  );
});

Deno.test("validate refuses duplicate export names", async () => {
  const yaml = `${BASE_SOURCE}exports:\n` +
    `  - {name: a, table: t, format: csv, ${LOCAL}}\n` +
    `  - {name: a, table: u, format: csv, ${LOCAL}}\n`;
  await expectRule(yaml, "config.duplicate_export", "duplicate export name 'a'", "exports[1]");
});

Deno.test("validate refuses batch_size with batch_size_memory_mb in source.tuning", async () => {
  const source = `${BASE_SOURCE}  tuning: {batch_size: 10, batch_size_memory_mb: 5}\n`;
  await expectRule(
    withExport(`name: o\ntable: t\nformat: csv\n${LOCAL}`, source),
    "config.conflicting_keys",
    "source.tuning: batch_size and batch_size_memory_mb",
  );
});

Deno.test("validate refuses a source without any connection method, listing the four", async () => {
  const error = await expectRule(
    withExport(`name: o\ntable: t\nformat: csv\n${LOCAL}`, "source:\n  type: postgres\n"),
    "config.missing_connection",
    "no connection configured",
  );
  for (const method of ["url_env", "url_file", "url:", "host/port/user/database"]) {
    assert.ok(error.hint?.includes(method), method);
  }
});

Deno.test("validate counts url, url_env and url_file", async () => {
  const source =
    "source:\n  type: postgres\n  url: postgresql://h/db\n  url_env: A\n  url_file: f\n";
  await expectRule(
    withExport(`name: o\ntable: t\nformat: csv\n${LOCAL}`, source),
    "config.conflicting_keys",
    "(got 3 set)",
  );
});

Deno.test("validate refuses URL form mixed with structured fields", async () => {
  const source = "source:\n  type: postgres\n  url_file: pg.url\n  port: 5432\n";
  await expectRule(
    withExport(`name: o\ntable: t\nformat: csv\n${LOCAL}`, source),
    "config.conflicting_keys",
    "pick either URL-based",
    "not both",
  );
});

Deno.test("validate names each missing structured field with a hint", async () => {
  const cases: [string, string][] = [
    ["  user: u\n  database: d\n", "host"],
    ["  host: h\n  database: d\n", "user"],
    ["  host: h\n  user: u\n", "database"],
  ];
  for (const [fields, missing] of cases) {
    const error = await expectRule(
      withExport(
        `name: o\ntable: t\nformat: csv\n${LOCAL}`,
        `source:\n  type: postgres\n${fields}`,
      ),
      "config.missing_key",
      `structured config is missing '${missing}'`,
    );
    assert.ok(error.hint?.includes(missing));
  }
});

Deno.test("validate refuses password together with password_env", async () => {
  const source = "source:\n  type: postgres\n  host: h\n  user: u\n  database: d\n" +
    "  password: abcdef\n  password_env: PGPASSWORD\n";
  await expectRule(
    withExport(`name: o\ntable: t\nformat: csv\n${LOCAL}`, source),
    "config.conflicting_keys",
    "specify 'password' OR 'password_env', not both",
  );
});

Deno.test("validate refuses export names that are not filename-safe", async () => {
  for (const name of ['"../x"', '".hidden"', '"a/b"', '"a\\\\b"', '""', '"a\\0b"', '"x..y"']) {
    await expectRule(
      withExport(`name: ${name}\ntable: t\nformat: csv\n${LOCAL}`),
      "config.unsafe_name",
      "is not safe as a file name",
    );
  }
});

Deno.test("validate refuses both batch knobs after merging source and export tuning", async () => {
  const source = `${BASE_SOURCE}  tuning: {batch_size: 1000}\n`;
  await expectRule(
    withExport(
      `name: o\ntable: t\nformat: csv\ntuning: {batch_size_memory_mb: 8}\n${LOCAL}`,
      source,
    ),
    "config.conflicting_keys",
    "export 'o': tuning sets both batch_size and batch_size_memory_mb",
  );
});

Deno.test("validate wants exactly one of query, query_file and table", async () => {
  await expectRule(
    withExport(`name: o\nformat: csv\n${LOCAL}`),
    "config.conflicting_keys",
    "specify exactly one of 'query', 'query_file', or 'table' (got 0 set)",
  );
  await expectRule(
    withExport(`name: o\ntable: t\nquery: SELECT 1\nquery_file: q.sql\nformat: csv\n${LOCAL}`),
    "config.conflicting_keys",
    "(got 3 set)",
  );
});

Deno.test("validate refuses absolute and '..' query_file paths at load", async () => {
  await expectRule(
    withExport(`name: o\nquery_file: /etc/passwd\nformat: csv\n${LOCAL}`),
    "config.unsafe_path",
    "query_file path must be relative",
  );
  await expectRule(
    withExport(`name: o\nquery_file: sql/../../x.sql\nformat: csv\n${LOCAL}`),
    "config.unsafe_path",
    "query_file path must not contain '..'",
  );
});

Deno.test("validate accepts only name or schema.name ASCII identifiers in table", async () => {
  for (const table of ['"a.b.c"', '"1abc"', '"orders; DROP TABLE x"', '"\\"Orders\\""', '"a-b"']) {
    await expectRule(
      withExport(`name: o\ntable: ${table}\nformat: csv\n${LOCAL}`),
      "config.invalid_value",
      "must be 'name' or 'schema.name'",
    );
  }
  const ok = await loadYaml(withExport(`name: o\ntable: _s1.T_2\nformat: csv\n${LOCAL}`));
  assert.deepEqual(ok.exports[0]!.query, { kind: "table", schema: "_s1", table: "T_2" });
});

Deno.test("validate refuses a non-loopback cloud endpoint unless allow_anonymous", async () => {
  const dest = (extra: string) =>
    `destination: {type: s3, bucket: b, endpoint: "http://storage.example.invalid:9000"${extra}}`;
  await expectRule(
    withExport(`name: o\ntable: t\nformat: parquet\n${dest("")}`),
    "config.endpoint_not_loopback",
    "destination.endpoint",
    "storage.example.invalid",
  );
  await loadYaml(
    withExport(`name: o\ntable: t\nformat: parquet\n${dest(", allow_anonymous: true")}`),
  );
  for (const endpoint of ["http://127.0.0.1:4569", "http://localhost:10000", "http://[::1]:9000"]) {
    await loadYaml(withExport(
      `name: o\ntable: t\nformat: parquet\ndestination: {type: gcs, bucket: b, endpoint: "${endpoint}"}`,
    ));
  }
  await expectRule(
    withExport(
      `name: o\ntable: t\nformat: parquet\ndestination: {type: azure, bucket: b, account_name: a, sas_token_env: S, endpoint: "not a url"}`,
    ),
    "config.endpoint_not_loopback",
  );
});

Deno.test("validate refuses '..' in a local path or prefix but allows absolute paths", async () => {
  await expectRule(
    withExport(`name: o\ntable: t\nformat: csv\ndestination: {type: local, path: out/../../etc}`),
    "config.unsafe_path",
    "destination.path must not contain a '..' component",
  );
  await expectRule(
    withExport(
      `name: o\ntable: t\nformat: csv\ndestination: {type: local, path: out, prefix: "a/../b"}`,
    ),
    "config.unsafe_path",
    "destination.prefix",
  );
  const ok = await loadYaml(
    withExport(`name: o\ntable: t\nformat: csv\ndestination: {type: local, path: /tmp/x..y/out}`),
  );
  assert.equal(ok.exports[0]!.destination.path, "/tmp/x..y/out");
});

Deno.test("validate wants S3 access and secret key env names as a pair", async () => {
  await expectRule(
    withExport(
      `name: o\ntable: t\nformat: parquet\ndestination: {type: s3, bucket: b, access_key_env: AK}`,
    ),
    "config.conflicting_keys",
    "access_key_env and destination.secret_key_env",
  );
  await expectRule(
    withExport(
      `name: o\ntable: t\nformat: parquet\ndestination: {type: s3, bucket: b, secret_key_env: SK}`,
    ),
    "config.conflicting_keys",
    "must be set together",
  );
});

Deno.test("validate refuses GCS allow_anonymous with credentials_file", async () => {
  const yaml = withExport(
    `name: o\ntable: t\nformat: parquet\ndestination: {type: gcs, bucket: b, allow_anonymous: true, credentials_file: key.json}`,
  );
  await expectRule(
    yaml,
    "config.conflicting_keys",
    "allow_anonymous cannot be combined with credentials_file",
  );
});

Deno.test("validate applies the four Azure credential rules", async () => {
  const az = (keys: string) =>
    withExport(`name: o\ntable: t\nformat: parquet\ndestination: {type: azure, bucket: c${keys}}`);
  await expectRule(
    az(", account_name: a, allow_anonymous: true, sas_token_env: S"),
    "config.conflicting_keys",
    "allow_anonymous cannot be combined",
  );
  await expectRule(
    az(", account_name: a, account_key_env: K, sas_token_env: S"),
    "config.conflicting_keys",
    "both account_key_env and sas_token_env",
  );
  await expectRule(az(", sas_token_env: S"), "config.missing_key", "requires account_name");
  await expectRule(
    az(", account_name: a"),
    "config.missing_key",
    "account_key_env or sas_token_env",
  );
  await loadYaml(az(", account_name: a, sas_token_env: S"));
});

Deno.test("validate wants credentials_file to exist, relative to the config dir", async () => {
  const yaml = withExport(
    `name: o\ntable: t\nformat: parquet\ndestination: {type: gcs, bucket: b, credentials_file: keys/sa.json}`,
  );
  await expectRule(yaml, "config.file_not_found", "credentials_file 'keys/sa.json' does not exist");
  const ok = await loadYaml(yaml, { files: { "keys/sa.json": "{}" } });
  // Resolved once, at load, against the config's folder.
  const resolved = ok.exports[0]!.destination.credentialsFile ?? "";
  assert.ok(resolved.startsWith("/") && resolved.endsWith("/keys/sa.json"), resolved);
});

Deno.test("validate refuses a bad max_file_size naming the export", async () => {
  await expectRule(
    withExport(`name: o\ntable: t\nformat: csv\nmax_file_size: 10XB\n${LOCAL}`),
    "config.invalid_value",
    "export 'o': invalid max_file_size '10XB'",
  );
  const ok = await loadYaml(
    withExport(`name: o\ntable: t\nformat: csv\nmax_file_size: 1048576\n${LOCAL}`),
  );
  assert.equal(ok.exports[0]!.maxFileSize, 1048576);
});

Deno.test("validate checks compression_level against the written codec", async () => {
  await expectRule(
    withExport(`name: o\ntable: t\nformat: parquet\ncompression_level: 23\n${LOCAL}`),
    "config.invalid_value",
    "compression_level 23 is out of range for zstd (1..22)",
  );
  await expectRule(
    withExport(
      `name: o\ntable: t\nformat: parquet\ncompression: gzip\ncompression_level: 11\n${LOCAL}`,
    ),
    "config.invalid_value",
    "gzip (0..10)",
  );
  await expectRule(
    withExport(
      `name: o\ntable: t\nformat: parquet\ncompression: snappy\ncompression_level: 3\n${LOCAL}`,
    ),
    "config.invalid_value",
    "not 'snappy'",
  );
  // The raw key is checked even when a profile decides the codec.
  await expectRule(
    withExport(
      `name: o\ntable: t\nformat: parquet\ncompression: lz4\ncompression_profile: compact\ncompression_level: 9\n${LOCAL}`,
    ),
    "config.invalid_value",
    "not 'lz4'",
  );
  const ok = await loadYaml(
    withExport(
      `name: o\ntable: t\nformat: parquet\ncompression: gzip\ncompression_level: 0\n${LOCAL}`,
    ),
  );
  assert.deepEqual(ok.exports[0]!.format, {
    kind: "parquet",
    compression: "gzip",
    compressionLevel: 0,
  });
});

Deno.test("validate applies the incremental cursor rules", async () => {
  await expectRule(
    withExport(`name: o\ntable: t\nmode: incremental\nformat: csv\n${LOCAL}`),
    "config.missing_key",
    "incremental mode requires cursor_column",
  );
  await expectRule(
    withExport(
      `name: o\ntable: t\nmode: incremental\ncursor_column: u\nincremental_cursor_mode: coalesce\nformat: csv\n${LOCAL}`,
    ),
    "config.missing_key",
    "coalesce requires cursor_fallback_column",
  );
  await expectRule(
    withExport(
      `name: o\ntable: t\nmode: incremental\ncursor_column: u\ncursor_fallback_column: c\nformat: csv\n${LOCAL}`,
    ),
    "config.conflicting_keys",
    "cursor_fallback_column requires incremental_cursor_mode: coalesce",
  );
});

Deno.test("validate applies the chunked rules in order", async () => {
  const chunked = (extra: string, query = "table: t") =>
    withExport(`name: o\n${query}\nmode: chunked\n${extra}format: csv\n${LOCAL}`);
  const error = await expectRule(
    chunked("", "query: SELECT 1"),
    "config.missing_key",
    "chunked mode requires chunk_column or table:",
  );
  for (const strategy of ["chunk_column: id", "chunk_dense", "chunk_by_days", "table:"]) {
    assert.ok(error.hint?.includes(strategy), strategy);
  }
  await expectRule(
    chunked("chunk_size: 0\n"),
    "config.invalid_value",
    "chunk_size must be at least 1",
  );
  await expectRule(chunked("parallel: 0\n"), "config.invalid_value", "parallel must be at least 1");
  await expectRule(
    chunked("chunk_count: 0\n"),
    "config.invalid_value",
    "chunk_count must be at least 1",
  );
  await expectRule(
    chunked("chunk_column: id\nchunk_count: 4\nchunk_dense: true\n"),
    "config.conflicting_keys",
    "chunk_count cannot be combined with chunk_dense",
  );
  await expectRule(
    chunked("chunk_column: d\nchunk_count: 4\nchunk_by_days: 7\n"),
    "config.conflicting_keys",
    "chunk_count cannot be combined with chunk_by_days",
  );
  await expectRule(
    chunked("chunk_column: d\nchunk_by_days: 7\nchunk_dense: true\n"),
    "config.conflicting_keys",
    "chunk_by_days cannot be combined with chunk_dense",
  );
  await expectRule(
    chunked("chunk_column: d\nchunk_by_days: 0\n"),
    "config.invalid_value",
    "chunk_by_days must be at least 1",
  );
  // parallel is only checked for chunked exports.
  await loadYaml(withExport(`name: o\ntable: t\nparallel: 0\nformat: csv\n${LOCAL}`));
});

Deno.test("validate keeps chunk keys and cdc blocks to their modes", async () => {
  await expectRule(
    withExport(`name: o\ntable: t\nchunk_dense: true\nformat: csv\n${LOCAL}`),
    "config.conflicting_keys",
    "chunk_dense is only valid with mode: chunked",
  );
  await expectRule(
    withExport(`name: o\ntable: t\nchunk_by_days: 3\nformat: csv\n${LOCAL}`),
    "config.conflicting_keys",
    "chunk_by_days is only valid with mode: chunked",
  );
  await expectRule(
    withExport(`name: o\ntable: t\ncdc: {slot: s}\nformat: csv\n${LOCAL}`),
    "config.conflicting_keys",
    "a cdc: block is only valid with mode: cdc",
  );
});

Deno.test("validate applies the time_window and cdc requirements", async () => {
  await expectRule(
    withExport(`name: o\ntable: t\nmode: time_window\ndays_window: 3\nformat: csv\n${LOCAL}`),
    "config.missing_key",
    "time_window mode requires time_column",
  );
  await expectRule(
    withExport(`name: o\ntable: t\nmode: time_window\ntime_column: ts\nformat: csv\n${LOCAL}`),
    "config.missing_key",
    "time_window mode requires days_window",
  );
  await expectRule(
    withExport(`name: o\nquery: SELECT 1\nmode: cdc\nformat: csv\n${LOCAL}`),
    "config.missing_key",
    "cdc mode requires table:",
  );
});

Deno.test("validate ignores unknown keys inside cdc: only", async () => {
  const ok = await loadYaml(
    withExport(
      `name: o\ntable: t\nmode: cdc\ncdc: {slot: s1, future_knob: 3, max_events: 10}\nformat: csv\n${LOCAL}`,
    ),
  );
  assert.deepEqual(ok.exports[0]!.cdc, { slot: "s1", maxEvents: 10 });
});

Deno.test("validate refuses a bad columns: override naming export and column", async () => {
  await expectRule(
    withExport(`name: o\ntable: t\nformat: parquet\ncolumns: {amount: "decimal(80,2)"}\n${LOCAL}`),
    "config.bad_column_type",
    "export 'o': columns.amount: unsupported column type 'decimal(80,2)'",
  );
});

Deno.test("raw checks move tuning keys from source: under source.tuning:", async () => {
  const error = await expectRule(
    withExport(
      `name: o\ntable: t\nformat: csv\n${LOCAL}`,
      `${BASE_SOURCE}  throttle_ms: 10\n  max_retries: 2\n`,
    ),
    "config.misplaced_tuning",
    "source: field(s) [throttle_ms, max_retries] belong under 'source.tuning:'",
  );
  assert.match(error.hint ?? "", /tuning:\n\s+throttle_ms: 10/);
});

Deno.test("raw checks refuse CSV with a codec or a compression profile", async () => {
  await expectRule(
    withExport(`name: o\ntable: t\nformat: csv\ncompression: zstd\n${LOCAL}`),
    "config.csv_compression",
    "export 'o' (index 0): format csv does not support compression 'zstd'",
  );
  await expectRule(
    withExport(`name: o\ntable: t\nformat: csv\ncompression_profile: fast\n${LOCAL}`),
    "config.csv_compression",
    "compression_profile 'fast'",
  );
  const ok = await loadYaml(
    withExport(
      `name: o\ntable: t\nformat: csv\ncompression: none\ncompression_profile: none\n${LOCAL}`,
    ),
  );
  assert.equal(ok.exports[0]!.format.compression, "none");
});

Deno.test("parquet_types: portable reaches the format spec; CSV refuses it", async () => {
  const spec = async (extra: string, format = "parquet") =>
    (await loadYaml(withExport(`name: o\ntable: t\nformat: ${format}\n${extra}${LOCAL}`)))
      .exports[0]!.format;
  assert.equal((await spec("parquet_types: portable\n")).parquetTypes, "portable");
  assert.equal((await spec("parquet_types: extended\n")).parquetTypes, undefined);
  assert.equal((await spec("")).parquetTypes, undefined);
  assert.equal((await spec("parquet_types: extended\n", "csv")).kind, "csv");
  await expectRule(
    withExport(`name: o\ntable: t\nformat: csv\nparquet_types: portable\n${LOCAL}`),
    "config.csv_parquet_types",
    "export 'o' (index 0): format csv does not support parquet_types 'portable'",
  );
  const bad = await loadError(
    withExport(`name: o\ntable: t\nformat: parquet\nparquet_types: text\n${LOCAL}`),
  );
  assert.match(bad.message, /parquet_types.*extended.*portable/s);
});

Deno.test("raw checks refuse an enforced TLS mode with a verification knob off", async () => {
  for (
    const [mode, knob] of [["verify-full", "accept_invalid_certs"], [
      "require",
      "accept_invalid_hostnames",
    ], ["verify-ca", "accept_invalid_certs"]]
  ) {
    await expectRule(
      withExport(
        `name: o\ntable: t\nformat: csv\n${LOCAL}`,
        `${BASE_SOURCE}  tls: {mode: ${mode}, ${knob}: true}\n`,
      ),
      "config.tls_downgrade",
      `mode '${mode}' together with ${knob}: true`,
    );
  }
  // Omitting mode with a danger knob is allowed (mode defaults to verify-full).
  const ok = await loadYaml(
    withExport(
      `name: o\ntable: t\nformat: csv\n${LOCAL}`,
      `${BASE_SOURCE}  tls: {accept_invalid_certs: true}\n`,
    ),
  );
  assert.deepEqual(ok.source.tls, {
    mode: "verify-full",
    acceptInvalidCerts: true,
    acceptInvalidHostnames: false,
  });
});

Deno.test("validate requires a path for local and a bucket for cloud destinations", async () => {
  await expectRule(
    withExport(`name: o\ntable: t\nformat: csv\ndestination: {type: local}`),
    "config.missing_key",
    "destination.path is required",
  );
  await expectRule(
    withExport(`name: o\ntable: t\nformat: parquet\ndestination: {type: s3}`),
    "config.missing_key",
    "destination.bucket is required for a s3 destination",
  );
});

Deno.test("source.instance is SQL Server's, and belongs to the structured form", async () => {
  const exp = `exports:\n  - name: t\n    table: t\n    format: csv\n    ${LOCAL}\n`;
  const structured = "source:\n  type: mssql\n  host: db\n  user: u\n  database: d\n" +
    "  password_env: PW\n  instance: SQLEXPRESS\n";
  const config = await loadYaml(structured + exp);
  const c = config.source.connection;
  assert.equal(c.form === "structured" ? c.instance : undefined, "SQLEXPRESS");
  assert.equal(c.form === "structured" ? c.port : undefined, 1433);
  await expectRule(
    structured.replace("type: mssql", "type: postgres") + exp,
    "config.invalid_value",
    "named instance",
  );
  await expectRule(
    "source:\n  type: mssql\n  url_env: DB\n  instance: X\n" + exp,
    "config.conflicting_keys",
    "?instance=NAME",
  );
});
