import assert from "node:assert/strict";
import { PermanentError } from "../../src/core/errors.ts";
import { GcsDestination, gcsObjectName } from "../../src/destinations/gcs.ts";
import { crc32cBase64, crc32cUpdate } from "../_helpers/gcs_server.ts";
import {
  BUCKET,
  bytesOf,
  collect,
  isCode,
  md5,
  MiB,
  noEnv,
  open,
  readAll,
  routes,
  server,
  text,
  write,
} from "./gcs_fixture.ts";

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
