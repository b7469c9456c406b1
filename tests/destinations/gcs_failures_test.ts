import assert from "node:assert/strict";
import {
  DataIntegrityError,
  PermanentError,
  type RivetError,
  TransientError,
} from "../../src/core/errors.ts";
import { redact } from "../../src/_util/redact.ts";
import type { GcsDestination } from "../../src/destinations/gcs.ts";
import { crc32cBase64, crc32cUpdate, type GcsServer } from "../_helpers/gcs_server.ts";
import { startTcpProxy } from "../_helpers/tcp_proxy.ts";
import {
  BUCKET,
  bytesOf,
  collect,
  isCode,
  md5,
  MiB,
  open,
  readAll,
  server,
  text,
  write,
} from "./gcs_fixture.ts";

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
