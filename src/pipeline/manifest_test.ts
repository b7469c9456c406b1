import assert from "node:assert/strict";
import { MemoryDestination } from "../../tests/_helpers/memory_destination.ts";
import { xxhash3 } from "hash-wasm";
import { LocalDestination } from "../destinations/local.ts";
import {
  buildManifest,
  type ManifestInput,
  schemaFingerprint,
  successBody,
  UNKNOWN_SCHEMA_FINGERPRINT,
  writeManifestAndSuccess,
} from "./manifest.ts";

const input: ManifestInput = {
  runId: "20240102T030405Z-ab12",
  exportName: "orders",
  startedAt: "2024-01-02T03:04:05.000000Z",
  finishedAt: "2024-01-02T03:04:09.500000Z",
  status: "success",
  source: { engine: "postgres", schema: "public", table: "orders" },
  destination: { kind: "local", uri: "file:///data/out" },
  format: "parquet",
  compression: "zstd",
  schemaFingerprint: "xxh3:0123456789abcdef",
  parts: [
    {
      path: "orders_20240102_030405_part0.parquet",
      rows: 10,
      sizeBytes: 2048,
      contentXxh3: "00000000000000ff",
      contentMd5: "1B2M2Y8AsgTpgAmY7PhCfg==",
      status: "committed",
    },
    {
      path: "orders_20240102_030405_part1.parquet",
      rows: 5,
      sizeBytes: 1024,
      contentXxh3: "a0a0a0a0a0a0a0a0",
      contentMd5: "kAFQmDzST7DWlj99KOF/cg==",
      status: "quarantined",
    },
  ],
};

const golden = `{
  "manifest_version": 1,
  "run_id": "20240102T030405Z-ab12",
  "export_name": "orders",
  "started_at": "2024-01-02T03:04:05.000000Z",
  "finished_at": "2024-01-02T03:04:09.500000Z",
  "status": "success",
  "source": {
    "engine": "postgres",
    "schema": "public",
    "table": "orders"
  },
  "destination": {
    "kind": "local",
    "uri": "file:///data/out"
  },
  "format": "parquet",
  "compression": "zstd",
  "schema_fingerprint": "xxh3:0123456789abcdef",
  "row_count": 10,
  "part_count": 2,
  "parts": [
    {
      "part_id": 1,
      "path": "orders_20240102_030405_part0.parquet",
      "rows": 10,
      "size_bytes": 2048,
      "content_fingerprint": "xxh3:00000000000000ff",
      "content_md5": "1B2M2Y8AsgTpgAmY7PhCfg==",
      "status": "committed"
    },
    {
      "part_id": 2,
      "path": "orders_20240102_030405_part1.parquet",
      "rows": 5,
      "size_bytes": 1024,
      "content_fingerprint": "xxh3:a0a0a0a0a0a0a0a0",
      "content_md5": "kAFQmDzST7DWlj99KOF/cg==",
      "status": "quarantined"
    }
  ]
}`;

Deno.test("buildManifest writes the golden JSON with keys in the Rust tool's order", async () => {
  const manifest = await buildManifest(input);
  assert.equal(manifest.json, golden);
  assert.deepEqual(manifest.bytes, new TextEncoder().encode(golden));
  assert.equal(manifest.fingerprint, `xxh3:${await xxhash3(new TextEncoder().encode(golden))}`);
});

Deno.test("buildManifest writes null schema and table for query exports and honours rowCount", async () => {
  const manifest = await buildManifest({
    ...input,
    status: "failed",
    source: { engine: "postgres", table: null },
    rowCount: 42,
    parts: [],
  });
  const parsed = JSON.parse(manifest.json);
  assert.deepEqual(parsed.source, { engine: "postgres", schema: null, table: null });
  assert.equal(parsed.row_count, 42);
  assert.equal(parsed.part_count, 0);
  assert.deepEqual(parsed.parts, []);
  assert.equal(parsed.status, "failed");
});

Deno.test("buildManifest refuses a content fingerprint that is not 16 lowercase hex digits", async () => {
  const { contentMd5, path, rows, sizeBytes, status } = input.parts[0]!;
  const base = { contentMd5, path, rows, sizeBytes, status };
  for (
    const bad of [
      { ...base, contentXxh3: "xxh3:00000000000000ff" },
      { ...base, contentXxh3: "00000000000000FF" },
      { ...base, contentFingerprint: "00000000000000ff" },
      { ...base, contentFingerprint: "md5:00000000000000ff" },
    ]
  ) {
    await assert.rejects(buildManifest({ ...input, parts: [bad] }), TypeError);
  }
});

Deno.test("schemaFingerprint hashes sorted name-tab-type lines", async () => {
  const columns = [
    { name: "status", type: "Utf8" },
    { name: "id", type: "Int64" },
    { name: "amount", type: "Decimal128(12, 2)" },
  ];
  const expected = await xxhash3("amount\tDecimal128(12, 2)\nid\tInt64\nstatus\tUtf8\n");
  assert.equal(await schemaFingerprint(columns), `xxh3:${expected}`);
  assert.equal(await schemaFingerprint([...columns].reverse()), `xxh3:${expected}`);
  assert.notEqual(
    await schemaFingerprint([{ name: "ab", type: "Int64" }, { name: "c", type: "Utf8" }]),
    await schemaFingerprint([{ name: "a", type: "Int64" }, { name: "bc", type: "Utf8" }]),
  );
  assert.equal(await schemaFingerprint([]), `xxh3:${await xxhash3("")}`);
  assert.equal(await schemaFingerprint(undefined), UNKNOWN_SCHEMA_FINGERPRINT);
});

Deno.test("schemaFingerprint sorts names by code point, as Rust sorts UTF-8 bytes", async () => {
  // U+FF5E (BMP) sorts before U+1F600 (astral) by code point but after it in UTF-16 units.
  const expected = await xxhash3("\uff5e\tUtf8\n\u{1f600}\tUtf8\n");
  assert.equal(
    await schemaFingerprint([{ name: "\u{1f600}", type: "Utf8" }, {
      name: "\uff5e",
      type: "Utf8",
    }]),
    `xxh3:${expected}`,
  );
});

Deno.test("successBody is one line of xxh3 over the exact manifest bytes", async () => {
  const bytes = new TextEncoder().encode(golden);
  const body = new TextDecoder().decode(await successBody(bytes));
  assert.equal(body, `xxh3:${await xxhash3(bytes)}\n`);
  assert.match(body, /^xxh3:[0-9a-f]{16}\n$/);
});

Deno.test("writeManifestAndSuccess commits the manifest, then _SUCCESS, both with overwrite", async () => {
  const dest = new MemoryDestination();
  const manifest = await buildManifest(input);
  const first = await writeManifestAndSuccess(dest, manifest, "success");
  assert.deepEqual(dest.commits, ["manifest.json", "_SUCCESS"]);
  assert.deepEqual(dest.overwriteFlags, [true, true]);
  assert.deepEqual(first.manifest, { key: "manifest.json", size: manifest.bytes.length });
  assert.equal(new TextDecoder().decode(dest.objects.get("manifest.json")), golden);
  assert.equal(
    new TextDecoder().decode(dest.objects.get("_SUCCESS")),
    `${manifest.fingerprint}\n`,
  );
  // A re-run replaces both.
  await writeManifestAndSuccess(dest, await buildManifest({ ...input, runId: "r2" }), "success");
  assert.match(new TextDecoder().decode(dest.objects.get("manifest.json")), /"run_id": "r2"/);
});

Deno.test("writeManifestAndSuccess writes no _SUCCESS for a failed or interrupted export", async () => {
  for (const status of ["failed", "interrupted"] as const) {
    const dest = new MemoryDestination();
    const result = await writeManifestAndSuccess(
      dest,
      await buildManifest({ ...input, status }),
      status,
    );
    assert.deepEqual(dest.commits, ["manifest.json"]);
    assert.equal(result.success, undefined);
  }
});

Deno.test("writeManifestAndSuccess writes no _SUCCESS when the manifest commit fails", async () => {
  const dest = new MemoryDestination();
  dest.failOn = "manifest.json";
  await assert.rejects(
    writeManifestAndSuccess(dest, await buildManifest(input), "success"),
    /disk gone/,
  );
  assert.deepEqual(dest.commits, []);
});

Deno.test("writeManifestAndSuccess through a local destination leaves exactly the two files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_manifest_test_" });
  try {
    await using dest = await LocalDestination.open({ path: "out" }, { baseDir: dir });
    const manifest = await buildManifest({
      ...input,
      destination: { kind: "local", uri: dest.uri },
    });
    await writeManifestAndSuccess(dest, manifest, "success");
    // A re-run replaces both (manifest.json and _SUCCESS are the only overwritable keys).
    const rerun = await buildManifest({
      ...input,
      runId: "r2",
      destination: { kind: "local", uri: dest.uri },
    });
    await writeManifestAndSuccess(dest, rerun, "success");
    const names = [];
    for await (const entry of Deno.readDir(dest.root)) names.push(entry.name);
    assert.deepEqual(names.sort(), ["_SUCCESS", "manifest.json"]);
    const written = await Deno.readFile(`${dest.root}/manifest.json`);
    assert.deepEqual(written, rerun.bytes);
    assert.equal(
      await Deno.readTextFile(`${dest.root}/_SUCCESS`),
      `xxh3:${await xxhash3(written)}\n`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parts may give the fingerprint prefixed, and the writer may build from the input", async () => {
  const parts = input.parts.map(({ contentMd5, path, rows, sizeBytes, status }, i) => ({
    contentMd5,
    path,
    rows,
    sizeBytes,
    status,
    contentFingerprint: i === 0 ? "xxh3:00000000000000ff" : "xxh3:a0a0a0a0a0a0a0a0",
  }));
  assert.equal((await buildManifest({ ...input, parts })).json, golden);
  const dest = new MemoryDestination();
  await writeManifestAndSuccess(dest, { ...input, parts });
  assert.deepEqual(dest.commits, ["manifest.json", "_SUCCESS"]);
  assert.equal(new TextDecoder().decode(dest.objects.get("manifest.json")), golden);
  const failed = new MemoryDestination();
  await writeManifestAndSuccess(failed, { ...input, status: "failed" });
  assert.deepEqual(failed.commits, ["manifest.json"]);
});
