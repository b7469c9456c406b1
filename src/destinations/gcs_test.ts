import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { Destination, ObjectMeta, Upload } from "../core/destination.ts";
import { DataIntegrityError, PermanentError, RivetError, TransientError } from "../core/errors.ts";
import type { DestinationSpec } from "../core/spec.ts";
import { redact } from "../_util/redact.ts";
import { GcsDestination, type GcsDestinationOptions, gcsObjectName } from "./gcs.ts";
import {
  crc32cBase64,
  crc32cUpdate,
  type GcsServer,
  type GcsServerOptions,
  spawnGcsServer,
  startGcsServer,
} from "../../tests/_helpers/gcs_server.ts";
import { startTcpProxy } from "../../tests/_helpers/tcp_proxy.ts";

const BUCKET = "rivet-test";
const MiB = 1024 * 1024;
const text = (s: string) => new TextEncoder().encode(s);
const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("base64");

/** Deterministic, incompressible bytes (xorshift32), so checksums mean something. */
function bytesOf(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  const words = new Uint32Array(out.buffer, 0, length >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < length; i++) out[i] = i & 0xff;
  return out;
}

function* pieces(data: Uint8Array, size: number): Generator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function write(upload: Upload, data: Uint8Array, pieceSize = 64 * 1024): Promise<void> {
  await ReadableStream.from(pieces(data, pieceSize)).pipeTo(upload.writable);
}

async function collect(dest: Destination, prefix = ""): Promise<ObjectMeta[]> {
  const out: ObjectMeta[] = [];
  for await (const meta of dest.list(prefix)) out.push(meta);
  return out;
}

async function readAll(dest: Destination, key: string): Promise<Uint8Array> {
  return new Uint8Array(await new Response(await dest.read(key)).arrayBuffer());
}

const noEnv = () => undefined;

async function server(options: GcsServerOptions = {}): Promise<GcsServer> {
  return await startGcsServer({ buckets: [BUCKET], ...options });
}

function open(
  endpoint: string,
  spec: Partial<DestinationSpec> = {},
  options: Partial<GcsDestinationOptions> = {},
): Promise<GcsDestination> {
  return GcsDestination.open(
    { kind: "gcs", bucket: BUCKET, endpoint, allowAnonymous: true, ...spec },
    { env: noEnv, retry: { baseDelayMs: 5, maxDelayMs: 50 }, warn: () => {}, ...options },
  );
}

function isCode(code: string, cls: new (...a: never[]) => RivetError = RivetError) {
  return (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name} ${code}, got ${e}`);
    assert.equal((e as RivetError).code, code, (e as Error).message);
    return true;
  };
}

const routes = (gcs: GcsServer) => gcs.requests.map((r) => r.route);

// ------------------------------------------------------------------------------------------
// Key layout

Deno.test("gcsObjectName concatenates prefix and key verbatim, without adding a slash", () => {
  assert.equal(gcsObjectName("exports/", "a.parquet"), "exports/a.parquet");
  assert.equal(gcsObjectName("exports", "a.parquet"), "exportsa.parquet");
  assert.equal(gcsObjectName(undefined, "d/a.csv"), "d/a.csv");
  assert.equal(gcsObjectName("", "a.csv"), "a.csv");
  assert.throws(() => gcsObjectName("p/", "../a"), isCode("destination.bad_key"));
  assert.throws(() => gcsObjectName("p/", "/abs"), isCode("destination.bad_key"));
});

Deno.test("objects land at prefix + key in the bucket for both prefix forms, and uri shows it", async () => {
  await using gcs = await server();
  for (const prefix of ["exports/", "exports"]) {
    await using dest = await open(gcs.url, { prefix });
    assert.equal(dest.uri, `gs://${BUCKET}/${prefix}`);
    const upload = await dest.create("a.csv");
    await write(upload, text("id\n1\n"));
    assert.deepEqual(await upload.commit(), { key: "a.csv", size: 5, md5: md5(text("id\n1\n")) });
    assert.deepEqual(await collect(dest), [{ key: "a.csv", size: 5, md5: md5(text("id\n1\n")) }]);
  }
  assert.deepEqual(gcs.names(BUCKET), ["exports/a.csv", "exportsa.csv"]);
  await using root = await open(gcs.url);
  assert.equal(root.uri, `gs://${BUCKET}/`);
  assert.deepEqual((await collect(root)).map((m) => m.key), ["exports/a.csv", "exportsa.csv"]);
});

Deno.test("GcsDestination.open requires a bucket and a chunk size in 256 KiB steps", async () => {
  await assert.rejects(
    GcsDestination.open({ kind: "gcs", allowAnonymous: true }, { env: noEnv }),
    isCode("config.missing_key"),
  );
  await assert.rejects(
    open("http://127.0.0.1:9", {}, { chunkSize: 300 * 1024 }),
    isCode("config.invalid_value"),
  );
  const dest = await open("http://127.0.0.1:9");
  assert.deepEqual(dest.capabilities, {
    persistent: true,
  });
});

// ------------------------------------------------------------------------------------------
// Writes

Deno.test("a small object is one simple upload at commit with ifGenerationMatch=0, invisible before", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, { prefix: "p/" });
  const data = bytesOf(300 * 1024, 7);
  const upload = await dest.create("small.parquet");
  await write(upload, data, 10_000);
  assert.deepEqual(routes(gcs), [], "no request before commit");
  assert.equal(await dest.stat("small.parquet"), undefined);
  assert.deepEqual(await collect(dest), []);
  const meta = await upload.commit();
  assert.deepEqual(meta, { key: "small.parquet", size: data.length, md5: md5(data) });
  const uploads = gcs.requests.filter((r) => r.route.startsWith("upload."));
  assert.equal(uploads.length, 1);
  assert.equal(uploads[0]!.route, "upload.multipart");
  assert.equal(uploads[0]!.query.ifGenerationMatch, "0");
  const stored = gcs.object(BUCKET, "p/small.parquet")!;
  assert.equal(stored.contentType, "application/vnd.apache.parquet");
  assert.equal(stored.md5Hash, md5(data));
  assert.deepEqual(await readAll(dest, "small.parquet"), data);
  assert.deepEqual(await dest.stat("small.parquet"), meta);
});

Deno.test("an empty object commits as a zero-byte simple upload", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url);
  const upload = await dest.create("_SUCCESS", { overwrite: true });
  const meta = await upload.commit();
  assert.deepEqual(meta, { key: "_SUCCESS", size: 0, md5: "1B2M2Y8AsgTpgAmY7PhCfg==" });
  assert.equal(gcs.object(BUCKET, "_SUCCESS")!.data.length, 0);
  assert.equal(
    gcs.requests.at(-1)!.query.ifGenerationMatch,
    undefined,
    "overwrite: no precondition",
  );
});

Deno.test("a 20 MiB stream goes out in 8 MiB chunks as it comes, and the last chunk only at commit", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, { prefix: "big/" });
  const data = bytesOf(20 * MiB + 12_345, 3);
  const upload = await dest.create("orders.parquet");
  await write(upload, data, 100_000);
  // Written, not committed: two full chunks are in the session, the rest is held back.
  const chunks = gcs.requests.filter((r) => r.route === "upload.chunk");
  assert.deepEqual(chunks.map((r) => r.contentRange), [
    `bytes 0-${8 * MiB - 1}/*`,
    `bytes ${8 * MiB}-${16 * MiB - 1}/*`,
  ]);
  assert.equal(gcs.requests.filter((r) => r.route === "upload.start").length, 1);
  assert.equal(
    gcs.requests.find((r) => r.route === "upload.start")!.query.ifGenerationMatch,
    "0",
  );
  assert.equal(gcs.openSessions, 1);
  assert.equal(routes(gcs).includes("upload.final"), false);
  assert.deepEqual(gcs.names(BUCKET), []);
  assert.deepEqual(await collect(dest), []);
  assert.equal(await dest.stat("orders.parquet"), undefined);

  const meta = await upload.commit();
  assert.deepEqual(meta, { key: "orders.parquet", size: data.length, md5: md5(data) });
  const final = gcs.requests.filter((r) => r.route === "upload.final");
  assert.deepEqual(final.map((r) => r.contentRange), [
    `bytes ${16 * MiB}-${data.length - 1}/${data.length}`,
  ]);
  assert.equal(gcs.openSessions, 0);
  const stored = gcs.object(BUCKET, "big/orders.parquet")!;
  assert.equal(stored.md5Hash, md5(data));
  assert.equal(stored.crc32c, crc32cBase64(crc32cUpdate(0, data)));
  assert.deepEqual(await readAll(dest, "orders.parquet"), data);
});

Deno.test("an object of exactly one chunk stays a simple upload (the full buffer leaves only when more follows)", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, {}, { chunkSize: 256 * 1024 });
  const data = bytesOf(256 * 1024, 5);
  const upload = await dest.create("one.bin");
  await write(upload, data, 1000);
  await upload.commit();
  assert.deepEqual(routes(gcs).filter((r) => r.startsWith("upload.")), ["upload.multipart"]);
  const two = await dest.create("two.bin");
  await write(two, bytesOf(256 * 1024 + 1, 6), 1000);
  await two.commit();
  assert.deepEqual(routes(gcs).filter((r) => r.startsWith("upload.")).slice(1), [
    "upload.start",
    "upload.chunk",
    "upload.final",
  ]);
  assert.equal(gcs.object(BUCKET, "two.bin")!.data.length, 256 * 1024 + 1);
});

Deno.test("abort leaves nothing: the session is cancelled, no object, and abort is idempotent", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, {}, { chunkSize: 256 * 1024 });
  const big = await dest.create("big.csv");
  await write(big, bytesOf(MiB, 9), 50_000);
  assert.equal(gcs.openSessions, 1);
  await big.abort(new Error("source failed"));
  await big.abort();
  assert.equal(gcs.openSessions, 0);
  assert.ok(routes(gcs).includes("upload.cancel"));
  await assert.rejects(big.commit(), /after aborted/);

  const small = await dest.create("small.csv");
  await write(small, text("x\n"));
  await small.abort();
  assert.deepEqual(gcs.names(BUCKET), []);
  assert.deepEqual(await collect(dest), []);
});

Deno.test("disposing the destination aborts uploads left open", async () => {
  await using gcs = await server();
  {
    await using dest = await open(gcs.url, {}, { chunkSize: 256 * 1024 });
    const upload = await dest.create("left.bin");
    await write(upload, bytesOf(600 * 1024), 64 * 1024);
    assert.equal(gcs.openSessions, 1);
  }
  assert.equal(gcs.openSessions, 0);
  assert.deepEqual(gcs.names(BUCKET), []);
});

Deno.test("a writable aborted by the pipeline aborts the upload", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, {}, { chunkSize: 256 * 1024 });
  const upload = await dest.create("x.bin");
  const writer = upload.writable.getWriter();
  await writer.write(bytesOf(700 * 1024));
  assert.equal(gcs.openSessions, 1);
  await writer.abort(new Error("encoder failed"));
  assert.equal(gcs.openSessions, 0);
  assert.deepEqual(gcs.names(BUCKET), []);
});

Deno.test("commit under another key: small objects go straight there, large ones are copied then removed", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, { prefix: "r/" }, { chunkSize: 256 * 1024 });
  const small = await dest.create("t_part0.csv");
  await write(small, text("a\n"));
  assert.deepEqual(await small.commit("t.csv"), { key: "t.csv", size: 2, md5: md5(text("a\n")) });
  assert.deepEqual(gcs.names(BUCKET), ["r/t.csv"]);

  const data = bytesOf(MiB + 3, 11);
  const big = await dest.create("u_part0.csv");
  await write(big, data, 77_777);
  const meta = await big.commit("u.csv");
  assert.deepEqual(meta, { key: "u.csv", size: data.length, md5: md5(data) });
  assert.deepEqual(gcs.names(BUCKET), ["r/t.csv", "r/u.csv"]);
  assert.deepEqual(gcs.object(BUCKET, "r/u.csv")!.data, data);
  assert.ok(routes(gcs).includes("object.rewrite"));
  const rewrite = gcs.requests.find((r) => r.route === "object.rewrite")!;
  assert.equal(rewrite.query.ifGenerationMatch, "0");
});

Deno.test("a provisional upload streams to a hidden staging name that no listing shows", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, { prefix: "r/" }, { chunkSize: 256 * 1024 });
  const data = bytesOf(MiB + 5, 12);
  const upload = await dest.create("v_part0.csv", { provisional: true });
  await write(upload, data, 100_000);
  const start = gcs.requests.find((r) => r.route === "upload.start")!;
  assert.equal(start.query.name, "r/.v_part0.csv.tmp", "the session is opened on the hidden name");
  assert.equal(start.query.ifGenerationMatch, undefined, "a stale staging object is replaced");
  assert.deepEqual(await upload.commit("v.csv"), {
    key: "v.csv",
    size: data.length,
    md5: md5(data),
  });
  assert.deepEqual(gcs.names(BUCKET), ["r/v.csv"], "staged, copied, and the staging object gone");

  // Without a rename, commit() makes it visible at the create key.
  const same = await dest.create("w_part0.csv", { provisional: true });
  await write(same, data, 100_000);
  await same.commit();
  assert.deepEqual(gcs.names(BUCKET), ["r/v.csv", "r/w_part0.csv"]);
});

Deno.test("staging objects are listed and removed only through listStaging/removeStaging", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, { prefix: "s/" });
  for (const name of ["s/.o_1.csv.tmp", "s/.p_1.csv.tmp", "s/o_1.csv", "s/sub/.o_2.csv.tmp"]) {
    gcs.putObject(BUCKET, name, text(name));
  }
  assert.deepEqual((await collect(dest)).map((o) => o.key), ["o_1.csv"], "staging names hidden");
  assert.deepEqual(await Array.fromAsync(dest.listStaging("o_")), [
    { key: ".o_1.csv.tmp", finalKey: "o_1.csv", size: "s/.o_1.csv.tmp".length },
  ]);
  await assert.rejects(dest.removeStaging("o_1.csv"), isCode("destination.bad_key"));
  await dest.removeStaging(".o_1.csv.tmp");
  await dest.removeStaging(".o_1.csv.tmp");
  assert.deepEqual(gcs.names(BUCKET), ["s/.p_1.csv.tmp", "s/o_1.csv", "s/sub/.o_2.csv.tmp"]);
});

Deno.test("a renaming commit whose staged object cannot be deleted leaves one name, or warns for a hidden one", async () => {
  await using gcs = await server();
  const warnings: { message: string; code: string | undefined }[] = [];
  await using dest = await open(gcs.url, { prefix: "k/" }, {
    chunkSize: 256 * 1024,
    warn: (message, code) => void warnings.push({ message, code }),
  });
  const data = bytesOf(MiB, 13);
  // Not provisional: the object was finalised under a data name, which must not stay twice.
  const plain = await dest.create("a_part0.csv");
  await write(plain, data, 100_000);
  gcs.inject({ route: "object.delete", status: 403 });
  await assert.rejects(plain.commit("a.csv"), isCode("destination.auth_failed"));
  assert.deepEqual(gcs.names(BUCKET), [], "neither the copy nor the finalised object stays");

  // Provisional: the copy stands, the staging object stays hidden for the next run to remove.
  const hidden = await dest.create("b_part0.csv", { provisional: true });
  await write(hidden, data, 100_000);
  gcs.inject({ route: "object.delete", status: 403 });
  assert.equal((await hidden.commit("b.csv")).key, "b.csv");
  assert.deepEqual(gcs.names(BUCKET), ["k/.b_part0.csv.tmp", "k/b.csv"]);
  assert.deepEqual((await collect(dest)).map((o) => o.key), ["b.csv"]);
  assert.deepEqual(warnings.map((w) => w.code), ["destination.staging_left"]);
  assert.match(
    warnings[0]!.message,
    /could not delete the staging object 'gs:\/\/rivet-test\/k\/\.b_part0\.csv\.tmp'/,
  );
});

Deno.test("commit refuses to overwrite an existing object unless overwrite is set", async () => {
  await using gcs = await server();
  gcs.putObject(BUCKET, "d/a.csv", text("old\n"));
  gcs.putObject(BUCKET, "d/b.csv", text("old\n"));
  gcs.putObject(BUCKET, "d/manifest.json", text("{}"));
  await using dest = await open(gcs.url, { prefix: "d/" }, { chunkSize: 256 * 1024 });

  const small = await dest.create("a.csv");
  await write(small, text("new\n"));
  await assert.rejects(small.commit(), isCode("destination.exists", PermanentError));
  assert.deepEqual(gcs.object(BUCKET, "d/a.csv")!.data, text("old\n"));

  // The session itself carries ifGenerationMatch=0: the refusal may come before commit.
  const big = await dest.create("b.csv");
  await assert.rejects(
    write(big, bytesOf(MiB), 100_000).then(() => big.commit()),
    isCode("destination.exists", PermanentError),
  );
  assert.deepEqual(gcs.object(BUCKET, "d/b.csv")!.data, text("old\n"));
  assert.equal(gcs.openSessions, 0, "the refused upload's session is cancelled");

  const manifest = await dest.create("manifest.json", { overwrite: true });
  await write(manifest, text('{"v":2}'));
  await manifest.commit();
  assert.deepEqual(gcs.object(BUCKET, "d/manifest.json")!.data, text('{"v":2}'));
});

Deno.test("an object that appears between the check and the final chunk is refused by ifGenerationMatch", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, {}, { chunkSize: 256 * 1024 });
  const upload = await dest.create("race.bin");
  await write(upload, bytesOf(300 * 1024), 100_000);
  // The session was opened with ifGenerationMatch=0; a writer that slips in first wins.
  gcs.putObject(BUCKET, "race.bin", text("theirs"));
  await assert.rejects(upload.commit(), isCode("destination.exists"));
  assert.deepEqual(gcs.object(BUCKET, "race.bin")!.data, text("theirs"));
});

// ------------------------------------------------------------------------------------------
// Read side

Deno.test("list pages through every object under a prefix in key order with size and MD5", async () => {
  await using gcs = await server({ maxPageSize: 2 });
  for (const name of ["x/b.csv", "x/a.csv", "x/sub/c.csv", "x/folder/", "y/d.csv", "x/e.csv"]) {
    gcs.putObject(BUCKET, name, text(name));
  }
  await using dest = await open(gcs.url, { prefix: "x/" });
  const all = await collect(dest);
  assert.deepEqual(all.map((m) => m.key), ["a.csv", "b.csv", "e.csv", "sub/c.csv"]);
  assert.deepEqual(all[0], { key: "a.csv", size: 7, md5: md5(text("x/a.csv")) });
  assert.deepEqual((await collect(dest, "sub/")).map((m) => m.key), ["sub/c.csv"]);
  assert.deepEqual(await collect(dest, "zzz"), []);
  assert.ok(gcs.requests.filter((r) => r.route === "object.list").length >= 3, "paginated");
});

Deno.test("stat, read, move and remove behave like the local destination", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, { prefix: "m/" });
  gcs.putObject(BUCKET, "m/a.csv", text("alpha\n"));
  gcs.putObject(BUCKET, "m/taken.csv", text("taken\n"));
  assert.deepEqual(await dest.stat("a.csv"), { key: "a.csv", size: 6, md5: md5(text("alpha\n")) });
  assert.equal(await dest.stat("none.csv"), undefined);
  await assert.rejects(dest.read("none.csv"), isCode("destination.not_found", PermanentError));
  assert.deepEqual(await readAll(dest, "a.csv"), text("alpha\n"));

  await dest.move("a.csv", "_quarantine/run1/a.csv");
  assert.equal(await dest.stat("a.csv"), undefined);
  assert.deepEqual(await readAll(dest, "_quarantine/run1/a.csv"), text("alpha\n"));
  await assert.rejects(dest.move("a.csv", "b.csv"), isCode("destination.not_found"));
  await assert.rejects(
    dest.move("_quarantine/run1/a.csv", "taken.csv"),
    isCode("destination.exists"),
  );
  assert.deepEqual(gcs.names(BUCKET), ["m/_quarantine/run1/a.csv", "m/taken.csv"]);
  await assert.rejects(dest.move("taken.csv", "../x"), isCode("destination.bad_key"));

  await dest.remove("taken.csv");
  await dest.remove("taken.csv");
  assert.deepEqual(gcs.names(BUCKET), ["m/_quarantine/run1/a.csv"]);
});

Deno.test("move is all or nothing: a source that cannot be deleted keeps its name, the copy goes", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, { prefix: "m/" });
  gcs.putObject(BUCKET, "m/a.csv", text("alpha\n"));
  gcs.inject({ route: "object.delete", status: 403 });
  await assert.rejects(
    dest.move("a.csv", "_quarantine/r/a.csv"),
    isCode("destination.auth_failed", PermanentError),
  );
  assert.deepEqual(gcs.names(BUCKET), ["m/a.csv"], "exactly one name holds the object");
  assert.deepEqual(await readAll(dest, "a.csv"), text("alpha\n"));
});

Deno.test("move whose source delete took effect but whose answers were lost keeps the copy", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, { prefix: "m/" });
  gcs.putObject(BUCKET, "m/a.csv", text("alpha\n"));
  // The delete happens, its reply is lost, and every retry meets a 503.
  gcs.inject({ route: "object.delete", kind: "cut_after" });
  gcs.inject({ route: "object.delete", nth: 2, times: 10, status: 503 });
  await dest.move("a.csv", "_quarantine/r/a.csv");
  assert.deepEqual(gcs.names(BUCKET), ["m/_quarantine/r/a.csv"]);
  assert.deepEqual(await readAll(dest, "_quarantine/r/a.csv"), text("alpha\n"));
});

Deno.test("every retried request warns with code destination.retrying, naming no session URL", async () => {
  await using gcs = await server();
  const warnings: { message: string; code: string | undefined }[] = [];
  await using dest = await open(gcs.url, {}, {
    chunkSize: 256 * 1024,
    warn: (message, code) => void warnings.push({ message, code }),
  });
  gcs.inject({ route: "upload.chunk", nth: 2, status: 503 });
  gcs.inject({ route: "object.list", status: 502 });
  const upload = await dest.create("retry.bin");
  await write(upload, bytesOf(MiB, 14), 60_000);
  await upload.commit();
  await collect(dest);
  assert.deepEqual(warnings.map((w) => w.code), ["destination.retrying", "destination.retrying"]);
  assert.match(
    warnings[0]!.message,
    /^GCS upload 'gs:\/\/rivet-test\/retry\.bin' failed \(HTTP 503: Injected failure\); retry 1\/5 in \d+ ms$/,
  );
  assert.match(
    warnings[1]!.message,
    /^GCS list objects under 'gs:\/\/rivet-test\/' failed \(HTTP 502[^)]*\); retry 1\/5 in \d+ ms$/,
  );
  assert.ok(warnings.every((w) => !w.message.includes("upload_id")), "no session URL");
});

Deno.test("keys with spaces, reserved URL characters and non-ASCII round-trip on every path", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, { prefix: "q/" }, { chunkSize: 256 * 1024 });
  const keys = ["dt=2024-01-01/a b#1?x=%2F+&.csv", "été/ü €.parquet"];
  for (const [i, key] of keys.entries()) {
    const data = bytesOf(i === 0 ? 1000 : 300 * 1024, i + 30);
    const upload = await dest.create(key);
    await write(upload, data);
    await upload.commit();
    assert.deepEqual(gcs.object(BUCKET, `q/${key}`)!.data, data);
    assert.deepEqual(await readAll(dest, key), data);
    assert.equal((await dest.stat(key))?.size, data.length);
  }
  assert.deepEqual((await collect(dest)).map((m) => m.key), keys);
  await dest.move(keys[1]!, "_quarantine/r/ü €.parquet");
  assert.deepEqual(gcs.names(BUCKET), ["q/_quarantine/r/ü €.parquet", `q/${keys[0]}`]);
});

Deno.test("read streams a large object and a signal cancels it", async () => {
  await using gcs = await server();
  const data = bytesOf(5 * MiB, 21);
  gcs.putObject(BUCKET, "big.bin", data);
  await using dest = await open(gcs.url);
  assert.deepEqual(await readAll(dest, "big.bin"), data);
  const controller = new AbortController();
  const stream = await dest.read("big.bin", { signal: controller.signal });
  const reader = stream.getReader();
  await reader.read();
  controller.abort(new Error("stop"));
  await assert.rejects(async () => {
    for (;;) if ((await reader.read()).done) break;
  });
});

// ------------------------------------------------------------------------------------------
// Failures: bucket, credentials

Deno.test("a bucket that does not exist is destination.bucket_not_found naming it", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, { bucket: "no-such-bucket" });
  const small = await dest.create("a.csv");
  await write(small, text("a\n"));
  await assert.rejects(small.commit(), (e) => {
    isCode("destination.bucket_not_found", PermanentError)(e);
    assert.match((e as Error).message, /'no-such-bucket'/);
    return true;
  });
  const big = await (await open(gcs.url, { bucket: "no-such-bucket" }, { chunkSize: 256 * 1024 }))
    .create("b.csv");
  await assert.rejects(
    write(big, bytesOf(MiB), 100_000),
    isCode("destination.bucket_not_found"),
  );
  await assert.rejects(collect(dest), isCode("destination.bucket_not_found"));
  await assert.rejects(dest.stat("a.csv"), isCode("destination.bucket_not_found"));
  await assert.rejects(dest.read("a.csv"), isCode("destination.bucket_not_found"));
});

Deno.test("a store that wants credentials refuses an anonymous client with destination.auth_failed", async () => {
  await using gcs = await server({ requireToken: "tok-good-123456" });
  await using dest = await open(gcs.url);
  await assert.rejects(collect(dest), (e) => {
    isCode("destination.auth_failed", PermanentError)(e);
    assert.match((e as Error).message, /HTTP 401/);
    assert.match((e as Error).message, /allow_anonymous/);
    return true;
  });
  const upload = await dest.create("a.csv");
  await write(upload, text("a\n"));
  await assert.rejects(upload.commit(), isCode("destination.auth_failed"));
  assert.deepEqual(gcs.names(BUCKET), []);
});

/** An `external_account` credentials file whose token service is the test server. */
async function externalAccount(gcs: GcsServer, subjectToken: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "rivet_gcs_cred_" });
  await Deno.writeTextFile(`${dir}/subject`, subjectToken);
  const file = `${dir}/creds.json`;
  await Deno.writeTextFile(
    file,
    JSON.stringify({
      type: "external_account",
      audience: "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/" +
        "providers/x",
      subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
      token_url: `${gcs.url}/token`,
      credential_source: { file: `${dir}/subject` },
    }),
  );
  return file;
}

Deno.test("credentials_file is used: its token is sent as a bearer and the store accepts it", async () => {
  const subject = "subject-token-abcdef";
  await using gcs = await server({
    requireToken: "access-token-good-777",
    sts: { subjectToken: subject, accessToken: "access-token-good-777" },
  });
  const file = await externalAccount(gcs, subject);
  try {
    await using dest = await open(gcs.url, { allowAnonymous: false, credentialsFile: file }, {
      chunkSize: 256 * 1024,
    });
    const data = bytesOf(600 * 1024, 2);
    const upload = await dest.create("auth.bin");
    await write(upload, data, 100_000);
    await upload.commit();
    assert.deepEqual(await readAll(dest, "auth.bin"), data);
    assert.deepEqual((await collect(dest)).map((m) => m.key), ["auth.bin"]);
    const api = gcs.requests.filter((r) => r.route !== "token");
    assert.ok(api.every((r) => r.authorization === "Bearer access-token-good-777"));
    assert.equal(
      redact("x access-token-good-777 y"),
      "x *** y",
      "the token is a registered secret",
    );
  } finally {
    await Deno.remove(file.slice(0, file.lastIndexOf("/")), { recursive: true });
  }
});

Deno.test("GOOGLE_APPLICATION_CREDENTIALS is read through the env option", async () => {
  const subject = "subject-token-env-42";
  await using gcs = await server({
    requireToken: "access-token-env-42",
    sts: { subjectToken: subject, accessToken: "access-token-env-42" },
  });
  const file = await externalAccount(gcs, subject);
  try {
    const env = (name: string) => name === "GOOGLE_APPLICATION_CREDENTIALS" ? file : undefined;
    await using dest = await open(gcs.url, { allowAnonymous: false }, { env });
    const upload = await dest.create("env.csv");
    await write(upload, text("ok\n"));
    await upload.commit();
    assert.equal(gcs.requests.at(-1)!.authorization, "Bearer access-token-env-42");
    await assert.rejects(
      open(gcs.url, { allowAnonymous: false }, {
        env: (n) => n === "GOOGLE_APPLICATION_CREDENTIALS" ? "/nonexistent/creds.json" : undefined,
      }),
      (e) => {
        isCode("destination.auth_failed")(e);
        assert.match((e as Error).message, /GOOGLE_APPLICATION_CREDENTIALS/);
        return true;
      },
    );
  } finally {
    await Deno.remove(file.slice(0, file.lastIndexOf("/")), { recursive: true });
  }
});

Deno.test("bad credentials are destination.auth_failed and no secret reaches the message", async () => {
  await using gcs = await server({
    requireToken: "access-token-good-999",
    sts: { subjectToken: "the-right-subject", accessToken: "access-token-good-999" },
  });
  // A subject token the token service refuses.
  const wrongSubject = "wrong-subject-token-SECRET-1";
  const refused = await externalAccount(gcs, wrongSubject);
  // A token the token service issues but the store does not accept.
  await using other = await server({
    requireToken: "store-wants-this",
    sts: { subjectToken: "ok-subject-SECRET-2", accessToken: "issued-token-SECRET-3" },
  });
  const rejected = await externalAccount(other, "ok-subject-SECRET-2");
  // A service-account key that cannot sign.
  const dir = await Deno.makeTempDir({ prefix: "rivet_gcs_sa_" });
  const privateKey = "-----BEGIN PRIVATE KEY-----\nNOT-A-KEY-SECRET-4\n-----END PRIVATE KEY-----\n";
  await Deno.writeTextFile(
    `${dir}/sa.json`,
    JSON.stringify({
      type: "service_account",
      project_id: "p",
      private_key_id: "kid-SECRET-5",
      private_key: privateKey,
      client_email: "rivet@p.iam.gserviceaccount.com",
      client_id: "1",
      token_uri: "https://oauth2.googleapis.com/token",
    }),
  );
  // A gcloud application-default login found through CLOUDSDK_CONFIG, but incomplete.
  await Deno.mkdir(`${dir}/gcloud`);
  await Deno.writeTextFile(
    `${dir}/gcloud/application_default_credentials.json`,
    JSON.stringify({ type: "authorized_user", client_id: "c", client_secret: "cs-SECRET-6" }),
  );
  await Deno.writeTextFile(`${dir}/not-json.json`, "-----BEGIN PRIVATE KEY-----SECRET-7");
  try {
    const cases: Array<[string, () => Promise<GcsDestination>, string]> = [
      [wrongSubject, () => open(gcs.url, { allowAnonymous: false, credentialsFile: refused }), ""],
      [
        "issued-token-SECRET-3",
        () => open(other.url, { allowAnonymous: false, credentialsFile: rejected }),
        "HTTP 401",
      ],
      [
        "NOT-A-KEY-SECRET-4",
        () => open(gcs.url, { allowAnonymous: false, credentialsFile: `${dir}/sa.json` }),
        "",
      ],
      ["cs-SECRET-6", () =>
        open(gcs.url, { allowAnonymous: false }, {
          env: (n) => n === "CLOUDSDK_CONFIG" ? `${dir}/gcloud` : undefined,
        }), ""],
    ];
    for (const [secret, make, mention] of cases) {
      // Refused at open (a file the client cannot use) or at the first request.
      const attempt = async () => {
        await using dest = await make();
        const upload = await dest.create("a.csv");
        await write(upload, text("a\n"));
        await upload.commit();
      };
      await assert.rejects(attempt(), (e) => {
        isCode("destination.auth_failed", PermanentError)(e);
        const shown = `${(e as Error).message}\n${(e as RivetError).hint ?? ""}`;
        assert.equal(shown.includes(secret), false, `secret in: ${shown}`);
        assert.equal(redact(shown).includes("SECRET"), false);
        if (mention !== "") assert.ok(shown.includes(mention), shown);
        assert.match(shown, /credentials_file|CLOUDSDK_CONFIG|gcloud/);
        return true;
      });
    }
    await assert.rejects(
      open(gcs.url, { allowAnonymous: false, credentialsFile: `${dir}/not-json.json` }),
      (e) => {
        isCode("destination.auth_failed")(e);
        assert.equal((e as Error).message.includes("SECRET-7"), false);
        return true;
      },
    );
    assert.equal(redact(privateKey).includes("NOT-A-KEY"), false, "private_key is registered");
    assert.deepEqual(gcs.names(BUCKET), []);
    assert.deepEqual(other.names(BUCKET), []);
  } finally {
    for (const f of [refused, rejected]) {
      await Deno.remove(f.slice(0, f.lastIndexOf("/")), { recursive: true });
    }
    await Deno.remove(dir, { recursive: true });
  }
});

// ------------------------------------------------------------------------------------------
// Failures: transient errors, cut connections, corruption

Deno.test("a 503 on a chunk is retried from the offset the session reports, not from the start", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, {}, { chunkSize: 256 * 1024 });
  gcs.inject({ route: "upload.chunk", nth: 2, status: 503 });
  gcs.inject({ route: "upload.final", nth: 1, status: 500 });
  const data = bytesOf(MiB + 100, 4);
  const upload = await dest.create("retry.bin");
  await write(upload, data, 60_000);
  await upload.commit();
  assert.deepEqual(gcs.object(BUCKET, "retry.bin")!.data, data);
  const session = gcs.requests.filter((r) =>
    r.route.startsWith("upload.") && r.route !== "upload.start"
  );
  assert.deepEqual(session.map((r) => `${r.route} ${r.status} ${r.contentRange}`), [
    `upload.chunk 308 bytes 0-262143/*`,
    `upload.chunk 503 bytes 262144-524287/*`,
    `upload.status 308 bytes */*`,
    `upload.chunk 308 bytes 262144-524287/*`,
    `upload.chunk 308 bytes 524288-786431/*`,
    `upload.chunk 308 bytes 786432-1048575/*`,
    `upload.final 500 bytes 1048576-1048675/1048676`,
    `upload.status 308 bytes */*`,
    `upload.final 200 bytes 1048576-1048675/1048676`,
  ]);
});

Deno.test("a lost reply after the object was finalised is recovered, not reported as a conflict", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, {}, { chunkSize: 256 * 1024 });
  // Resumable: the final chunk lands, its reply is cut; the status query returns the object.
  gcs.inject({ route: "upload.final", kind: "cut_after" });
  const data = bytesOf(300 * 1024, 8);
  const big = await dest.create("big.bin");
  await write(big, data);
  assert.deepEqual(await big.commit(), { key: "big.bin", size: data.length, md5: md5(data) });
  // Simple: the object is written with ifGenerationMatch=0, the reply is cut; the retry gets
  // 412 and finds its own bytes there.
  gcs.inject({ route: "upload.multipart", kind: "cut_after" });
  const small = await dest.create("small.csv");
  await write(small, text("s\n"));
  assert.deepEqual(await small.commit(), { key: "small.csv", size: 2, md5: md5(text("s\n")) });
  assert.deepEqual(
    gcs.requests.filter((r) => r.route === "upload.multipart").map((r) => r.status),
    [0, 412],
  );
  // A chunk whose reply dies before it was applied is sent again.
  gcs.inject({ route: "upload.chunk", nth: 1, kind: "cut_before" });
  const third = await dest.create("third.bin");
  await write(third, data);
  await third.commit();
  assert.deepEqual(gcs.object(BUCKET, "third.bin")!.data, data);
});

Deno.test("a request that hangs past the deadline is abandoned and retried", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, {}, { chunkSize: 256 * 1024, requestTimeoutMs: 150 });
  gcs.inject({ route: "upload.chunk", nth: 1, kind: "delay", delayMs: 600 });
  gcs.inject({ route: "object.get", nth: 1, kind: "delay", delayMs: 600 });
  const data = bytesOf(600 * 1024, 12);
  const upload = await dest.create("slow.bin");
  const started = performance.now();
  await write(upload, data, 100_000);
  await upload.commit();
  assert.ok(performance.now() - started < 2000);
  assert.deepEqual(gcs.object(BUCKET, "slow.bin")!.data, data);
  assert.ok(gcs.requests.filter((r) => r.route === "object.get").length >= 2, "HEAD retried");
  assert.ok(gcs.requests.filter((r) => r.route === "upload.status").length >= 1, "chunk resumed");
});

Deno.test("a store that stays unavailable fails with destination.unavailable and commits nothing", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, {}, {
    chunkSize: 256 * 1024,
    retry: { retries: 2, baseDelayMs: 5 },
  });
  gcs.inject({ route: "upload.chunk", nth: 2, times: 100, status: 503 });
  const upload = await dest.create("down.bin");
  await assert.rejects(write(upload, bytesOf(2 * MiB), 100_000), (e) => {
    isCode("destination.unavailable", TransientError)(e);
    assert.match((e as Error).message, /3 attempt/);
    assert.equal((e as Error).message.includes("upload_id"), false, "no session URL");
    return true;
  });
  assert.deepEqual(gcs.names(BUCKET), []);
  assert.equal(gcs.openSessions, 0, "the failed upload's session is cancelled");

  gcs.inject({ route: "object.list", times: 100, status: 502 });
  await assert.rejects(collect(dest), isCode("destination.unavailable", TransientError));
  await assert.rejects(
    open("http://127.0.0.1:9", {}, { retry: { retries: 1, baseDelayMs: 1 } }).then((d) =>
      d.stat("x")
    ),
    isCode("destination.unavailable", TransientError),
  );
});

Deno.test("a connection cut mid-chunk by a TCP proxy is resumed and the object is whole", async () => {
  await using gcs = await server();
  // Every connection dies after 3 MiB: a 1 MiB chunk always fits in a fresh one, but the
  // connections the client reuses are cut in the middle of a chunk.
  await using proxy = await startTcpProxy({
    targetPort: gcs.port,
    cutAfterBytes: 3 * MiB,
    cutConnection: "all",
  });
  await using dest = await open(`http://127.0.0.1:${proxy.port}`, {}, { chunkSize: MiB });
  const data = bytesOf(12 * MiB + 5, 13);
  const upload = await dest.create("cut.bin");
  await write(upload, data, 256 * 1024);
  const meta = await upload.commit();
  assert.ok(proxy.cuts >= 1, "the proxy cut at least one connection");
  assert.deepEqual(meta, { key: "cut.bin", size: data.length, md5: md5(data) });
  assert.deepEqual(gcs.object(BUCKET, "cut.bin")!.data, data);
});

Deno.test("a connection that always dies mid-chunk fails cleanly and never leaves a short object", async () => {
  await using gcs = await server();
  await using proxy = await startTcpProxy({
    targetPort: gcs.port,
    cutAfterBytes: 400 * 1024,
    cutConnection: "all",
  });
  await using dest = await open(`http://127.0.0.1:${proxy.port}`, {}, {
    chunkSize: MiB,
    retry: { retries: 2, baseDelayMs: 5 },
  });
  const upload = await dest.create("short.bin");
  await assert.rejects(
    write(upload, bytesOf(3 * MiB), 256 * 1024),
    isCode("destination.unavailable", TransientError),
  );
  assert.ok(proxy.cuts >= 3);
  assert.deepEqual(gcs.names(BUCKET), []);
  const small = await dest.create("small.bin");
  await write(small, bytesOf(600 * 1024));
  await assert.rejects(small.commit(), isCode("destination.unavailable"));
  assert.deepEqual(gcs.names(BUCKET), []);
});

Deno.test("a store that alters the bytes is destination.checksum_mismatch and the object is removed", async () => {
  await using gcs = await server({ corrupt: true });
  await using dest = await open(gcs.url, {}, { chunkSize: 256 * 1024 });
  for (const size of [1000, 700 * 1024]) {
    const upload = await dest.create(`c${size}.bin`);
    await write(upload, bytesOf(size, size));
    await assert.rejects(
      upload.commit(),
      isCode("destination.checksum_mismatch", DataIntegrityError),
    );
  }
  assert.deepEqual(gcs.names(BUCKET), []);
  assert.equal(gcs.openSessions, 0);
});

Deno.test("an abort signal stops an upload in flight and leaves nothing", async () => {
  await using gcs = await server();
  await using dest = await open(gcs.url, {}, { chunkSize: 256 * 1024 });
  const controller = new AbortController();
  const upload = await dest.create("sig.bin", { signal: controller.signal });
  const writer = upload.writable.getWriter();
  await writer.write(bytesOf(600 * 1024));
  controller.abort(new Error("interrupted"));
  await assert.rejects(writer.write(bytesOf(1024)), /interrupted/);
  await upload.abort();
  assert.equal(gcs.openSessions, 0);
  assert.deepEqual(gcs.names(BUCKET), []);
});

// ------------------------------------------------------------------------------------------
// The test server itself

Deno.test("the test server answers both API prefixes and the real client validates its checksums", async () => {
  await using gcs = await server();
  const data = bytesOf(3 * MiB + 7, 17);
  gcs.putObject(BUCKET, "dir/o.bin", data);
  for (const base of [`${gcs.url}/storage/v1`, gcs.url]) {
    const meta = await (await fetch(`${base}/b/${BUCKET}/o/${encodeURIComponent("dir/o.bin")}`))
      .json();
    assert.equal(meta.size, String(data.length));
    assert.equal(meta.md5Hash, md5(data));
    assert.equal(meta.crc32c, crc32cBase64(crc32cUpdate(0, data)));
    const list = await (await fetch(`${base}/b/${BUCKET}/o?prefix=dir/`)).json();
    assert.deepEqual(list.items.map((i: { name: string }) => i.name), ["dir/o.bin"]);
  }
  assert.deepEqual(gcs.requests.map((r) => r.v1Prefix), [true, true, false, false]);
  assert.equal(crc32cUpdate(0, text("123456789")), 0xe3069283, "CRC32C check value");
  assert.equal(crc32cBase64(0), "AAAAAA==");

  const { Storage } = await import("@google-cloud/storage");
  const client = new Storage({ apiEndpoint: gcs.url, projectId: "p" });
  const [downloaded] = await client.bucket(BUCKET).file("dir/o.bin").download({
    validation: "crc32c",
  });
  assert.equal(md5(downloaded), md5(data));
  await client.bucket(BUCKET).file("via-client.bin").save(data, {
    resumable: true,
    chunkSize: MiB,
    validation: "md5",
  });
  assert.deepEqual(gcs.object(BUCKET, "via-client.bin")!.data, data);
});

Deno.test("the test server enforces resumable-upload rules", async () => {
  await using gcs = await server();
  const start = await fetch(
    `${gcs.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=resumable&name=r.bin`,
    { method: "POST", body: "{}", headers: { "content-type": "application/json" } },
  );
  const session = start.headers.get("location")!;
  await start.body?.cancel();
  const put = async (range: string, body: Uint8Array) => {
    const res = await fetch(session, {
      method: "PUT",
      headers: { "content-range": range },
      body: body as Uint8Array<ArrayBuffer>,
    });
    await res.body?.cancel();
    return res;
  };
  assert.equal((await put("bytes 0-999/*", new Uint8Array(1000))).status, 400, "not 256 KiB");
  const first = await put(`bytes 0-${256 * 1024 - 1}/*`, new Uint8Array(256 * 1024));
  assert.equal(first.status, 308);
  assert.equal(first.headers.get("range"), `bytes=0-${256 * 1024 - 1}`);
  assert.deepEqual(gcs.names(BUCKET), [], "an intermediate chunk never finalises");
  const status = await put("bytes */*", new Uint8Array(0));
  assert.equal(status.headers.get("range"), `bytes=0-${256 * 1024 - 1}`);
  const last = await put(
    `bytes ${256 * 1024}-${256 * 1024 + 9}/${256 * 1024 + 10}`,
    new Uint8Array(10),
  );
  assert.equal(last.status, 200);
  assert.equal(gcs.object(BUCKET, "r.bin")!.data.length, 256 * 1024 + 10);
  const conflict = await fetch(
    `${gcs.url}/upload/storage/v1/b/${BUCKET}/o?uploadType=multipart&ifGenerationMatch=0`,
    {
      method: "POST",
      headers: { "content-type": "multipart/related; boundary=B" },
      body: '--B\r\ncontent-type: application/json\r\n\r\n{"name":"r.bin"}\r\n--B\r\n' +
        "content-type: text/plain\r\n\r\nhi\r\n--B--\r\n",
    },
  );
  assert.equal(conflict.status, 412);
  await conflict.body?.cancel();
});

// ------------------------------------------------------------------------------------------
// Memory

Deno.test("a 200 MiB stream keeps memory bounded (two chunk buffers)", async () => {
  await using gcs = await spawnGcsServer([BUCKET]);
  await using dest = await open(gcs.url);
  // Warm-up: loads the client and the MD5 WASM before the baseline.
  const warm = await dest.create("warm.bin");
  await write(warm, bytesOf(9 * MiB));
  await warm.commit();
  const total = 200 * MiB;
  const piece = 256 * 1024;
  const expected = createHash("md5");
  let produced = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (produced >= total) return controller.close();
      const chunk = new Uint8Array(piece);
      new DataView(chunk.buffer).setUint32(0, produced / piece);
      chunk[piece - 1] = produced & 0xff;
      expected.update(chunk);
      produced += piece;
      controller.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
  const baseline = Deno.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, Deno.memoryUsage().rss);
  }, 20);
  const started = performance.now();
  let digest = "";
  try {
    const upload = await dest.create("huge.bin");
    await source.pipeTo(upload.writable);
    const meta = await upload.commit();
    assert.equal(meta.size, total);
    digest = expected.digest("base64");
    assert.equal(meta.md5, digest);
  } finally {
    clearInterval(sampler);
  }
  const seconds = (performance.now() - started) / 1000;
  peak = Math.max(peak, Deno.memoryUsage().rss);
  const growth = (peak - baseline) / MiB;
  console.log(
    `200 MiB to the GCS test server: ${seconds.toFixed(2)} s ` +
      `(${(200 / seconds).toFixed(0)} MiB/s), RSS growth ${growth.toFixed(1)} MiB`,
  );
  assert.ok(growth < 100, `RSS grew by ${growth.toFixed(1)} MiB`);
  assert.deepEqual(await dest.stat("huge.bin"), { key: "huge.bin", size: total, md5: digest });
});
