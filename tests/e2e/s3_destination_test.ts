/**
 * The S3 destination against a real s3rver (started per test): multipart and single-PUT paths,
 * commit-time visibility, renaming commit, overwrite refusal, list/stat/read/move, the verbatim
 * prefix rule, a missing bucket, bad credentials, dropped connections and corrupted bytes (bounded
 * memory is in `tests/slow/s3_memory_test.ts`). An independent SDK client (not the destination)
 * checks what the store holds.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import type { Destination, ObjectMeta } from "../../src/core/destination.ts";
import type { DestinationSpec } from "../../src/core/spec.ts";
import { RivetError } from "../../src/core/errors.ts";
import { redact } from "../../src/_util/redact.ts";
import { S3Destination, s3ObjectKey } from "../../src/destinations/s3.ts";
import { type S3rver, s3Spec, startS3rver } from "../_helpers/s3rver.ts";
import { startTcpProxy } from "../_helpers/tcp_proxy.ts";
import { pseudoRandomBytes } from "../_helpers/bytes.ts";

const MiB = 1024 * 1024;
// The SDK's node:http agent and s3rver's child process outlive the sanitizers' view of a test.
const opts = { sanitizeResources: false, sanitizeOps: false };

/** Deterministic pseudo-random bytes, so failures are reproducible. */
const pseudoRandom = pseudoRandomBytes;

/** `bytes` as a stream of `chunk`-sized pieces (odd sizes cross part boundaries). */
function chunked(bytes: Uint8Array, chunk = 100_003): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + chunk));
      offset += chunk;
    },
  });
}

const md5b64 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("base64");

function spec(s3: S3rver, extra: Partial<DestinationSpec> = {}): DestinationSpec {
  return { ...s3Spec(s3), ...extra };
}

function envOf(s3: S3rver, values: Record<string, string> = {}) {
  const table: Record<string, string> = {
    TEST_S3_KEY: s3.accessKeyId,
    TEST_S3_SECRET: s3.secretAccessKey,
    ...values,
  };
  return (name: string) => table[name];
}

function open(s3: S3rver, extra: Partial<DestinationSpec> = {}): Promise<S3Destination> {
  return S3Destination.open(spec(s3, extra), { env: envOf(s3) });
}

/** A client of its own, to see the bucket as a third party does. */
function rawClient(s3: S3rver): S3Client {
  return new S3Client({
    region: "us-east-1",
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
}

async function rawKeys(s3: S3rver): Promise<string[]> {
  const client = rawClient(s3);
  try {
    const out = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket }));
    return (out.Contents ?? []).map((o) => o.Key!);
  } finally {
    client.destroy();
  }
}

async function rawGet(s3: S3rver, key: string): Promise<Uint8Array> {
  const client = rawClient(s3);
  try {
    const out = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    return await out.Body!.transformToByteArray();
  } finally {
    client.destroy();
  }
}

async function collect(dest: Destination, prefix: string): Promise<ObjectMeta[]> {
  return await Array.fromAsync(dest.list(prefix));
}

async function readAll(dest: Destination, key: string): Promise<Uint8Array> {
  return new Uint8Array(await new Response(await dest.read(key)).arrayBuffer());
}

async function put(dest: Destination, key: string, bytes: Uint8Array): Promise<ObjectMeta> {
  const upload = await dest.create(key);
  await chunked(bytes).pipeTo(upload.writable);
  return await upload.commit();
}

function hasCode(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof RivetError, `expected a RivetError, got ${error}`);
    assert.equal(error.code, code, error.message);
    return true;
  };
}

Deno.test("s3ObjectKey concatenates prefix and key verbatim, adding no slash", () => {
  assert.equal(s3ObjectKey("exports/", "a.parquet"), "exports/a.parquet");
  assert.equal(s3ObjectKey("exports", "a.parquet"), "exportsa.parquet");
  assert.equal(s3ObjectKey(undefined, "d/a.parquet"), "d/a.parquet");
  assert.equal(s3ObjectKey("", "a.parquet"), "a.parquet");
  assert.throws(() => s3ObjectKey("exports/", "../a.parquet"), hasCode("destination.bad_key"));
  assert.throws(() => s3ObjectKey("exports/", "/a.parquet"), hasCode("destination.bad_key"));
});

Deno.test("S3Destination.open checks its keys and names unset variables without a request", async () => {
  const fake = { endpoint: "http://127.0.0.1:9" } as S3rver;
  const env = () => undefined;
  await assert.rejects(
    S3Destination.open({ kind: "s3", allowAnonymous: false }, { env }),
    hasCode("config.missing_key"),
  );
  await assert.rejects(
    S3Destination.open({ kind: "s3", bucket: "b", accessKeyEnv: "K", allowAnonymous: false }, {
      env,
    }),
    hasCode("config.conflicting_keys"),
  );
  await assert.rejects(
    S3Destination.open(spec(fake, { bucket: "b" }), { env }),
    (error: unknown) =>
      hasCode("config.missing_env")(error) &&
      /TEST_S3_KEY/.test((error as Error).message),
  );
  await assert.rejects(
    S3Destination.open(spec(fake, { bucket: "b", endpoint: "ftp://x" }), {
      env: (n) => n + "-value",
    }),
    hasCode("config.invalid_url"),
  );
  const dest = await S3Destination.open(spec(fake, { bucket: "b", prefix: "exp/" }), {
    env: (n) => n + "-value",
  });
  assert.equal(dest.uri, "s3://b/exp/");
  assert.deepEqual(dest.capabilities, {
    persistent: true,
  });
  // The secret values read from the environment are registered for redaction.
  assert.equal(redact("key TEST_S3_SECRET-value here"), "key *** here");
  await dest[Symbol.asyncDispose]();
});

Deno.test(
  "a 20 MiB stream goes up as multipart parts, invisible until commit, and reads back identical",
  opts,
  async () => {
    await using s3 = await startS3rver();
    await using dest = await open(s3, { prefix: "exports/" });
    const data = pseudoRandom(20 * MiB + 12_345);
    const started = performance.now();
    const upload = await dest.create("orders_20240101_000000.parquet");
    await chunked(data, 64 * 1024 + 7).pipeTo(upload.writable);
    // Parts were sent while writing (a multipart upload is in progress), yet nothing is visible.
    assert.equal((await s3.pendingUploads()).length, 1);
    assert.deepEqual(await rawKeys(s3), []);
    assert.deepEqual(await collect(dest, ""), []);
    assert.equal(await dest.stat("orders_20240101_000000.parquet"), undefined);
    const meta = await upload.commit();
    const seconds = (performance.now() - started) / 1000;
    console.log(`20 MiB multipart upload to s3rver: ${seconds.toFixed(2)} s`);
    assert.deepEqual(meta, {
      key: "orders_20240101_000000.parquet",
      size: data.length,
      md5: md5b64(data),
    });
    assert.deepEqual(await s3.pendingUploads(), []);
    assert.deepEqual(await rawKeys(s3), ["exports/orders_20240101_000000.parquet"]);
    assert.equal(md5b64(await rawGet(s3, "exports/orders_20240101_000000.parquet")), md5b64(data));
    assert.equal(md5b64(await readAll(dest, "orders_20240101_000000.parquet")), md5b64(data));
    const listed = await collect(dest, "");
    assert.equal(listed.length, 1);
    assert.equal(listed[0]!.key, "orders_20240101_000000.parquet");
    assert.equal(listed[0]!.size, data.length);
  },
);

Deno.test(
  "a small object is sent with one PutObject at commit and reports its MD5",
  opts,
  async () => {
    await using s3 = await startS3rver();
    await using dest = await open(s3);
    const data = pseudoRandom(300_000, 7);
    const upload = await dest.create("d/small.csv");
    await chunked(data, 1000).pipeTo(upload.writable);
    assert.deepEqual(await s3.pendingUploads(), []); // no multipart upload for a small object
    assert.deepEqual(await rawKeys(s3), []);
    const meta = await upload.commit();
    assert.deepEqual(meta, { key: "d/small.csv", size: data.length, md5: md5b64(data) });
    assert.deepEqual(await rawGet(s3, "d/small.csv"), data);
    assert.deepEqual(await dest.stat("d/small.csv"), meta);
    assert.deepEqual(await collect(dest, "d/"), [meta]);
    // An empty object is an object too.
    const empty = await dest.create("empty.csv");
    await empty.writable.close();
    assert.deepEqual(await empty.commit(), {
      key: "empty.csv",
      size: 0,
      md5: md5b64(new Uint8Array(0)),
    });
    assert.deepEqual(await rawGet(s3, "empty.csv"), new Uint8Array(0));
  },
);

Deno.test(
  "abort, a failing writer, the signal and disposal leave nothing visible",
  opts,
  async () => {
    await using s3 = await startS3rver();
    const data = pseudoRandom(9 * MiB, 3);
    {
      await using dest = await open(s3);
      // Explicit abort after a multipart upload started, twice (idempotent).
      const upload = await dest.create("a.bin");
      const writer = upload.writable.getWriter();
      await writer.write(data);
      await upload.abort();
      await upload.abort();
      await assert.rejects(writer.write(data));
      await assert.rejects(upload.commit());
      // A writer that errors the stream aborts the upload.
      const failing = await dest.create("b.bin");
      const broken = new ReadableStream<Uint8Array>({
        pull(controller) {
          controller.enqueue(data);
          controller.error(new Error("encoder failed"));
        },
      });
      await assert.rejects(broken.pipeTo(failing.writable), /encoder failed/);
      await assert.rejects(failing.commit());
      // The create signal cancels the requests in flight and the writes that follow.
      const controller = new AbortController();
      const signalled = await dest.create("c.bin", { signal: controller.signal });
      const w = signalled.writable.getWriter();
      await w.write(data); // part 1 in flight
      controller.abort(new Error("operator interrupt"));
      await assert.rejects(w.write(data), /operator interrupt/);
      // Disposal aborts uploads still open.
      const open1 = await dest.create("d.bin");
      const w2 = open1.writable.getWriter();
      await w2.write(data);
      w2.releaseLock();
    }
    assert.deepEqual(await rawKeys(s3), []);
    const dest = await open(s3);
    assert.deepEqual(await collect(dest, ""), []);
    for (const key of ["a.bin", "b.bin", "c.bin", "d.bin"]) {
      assert.equal(await dest.stat(key), undefined);
    }
    await dest[Symbol.asyncDispose]();
  },
);

Deno.test("a signal cancels a request in flight to a store that never answers", opts, async () => {
  // Accepts connections, reads whatever comes and never replies.
  const hole = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of hole) {
      conns.push(conn);
      conn.readable.pipeTo(new WritableStream()).catch(() => {});
    }
  })().catch(() => {});
  const fake = { endpoint: `http://127.0.0.1:${(hole.addr as Deno.NetAddr).port}` } as S3rver;
  const dest = await S3Destination.open(spec(fake, { bucket: "b" }), { env: () => "S3RVER" });
  try {
    const controller = new AbortController();
    const upload = await dest.create("a.bin", { signal: controller.signal });
    const writer = upload.writable.getWriter();
    // The first full part sends CreateMultipartUpload, which hangs.
    const pending = writer.write(pseudoRandom(9 * MiB));
    setTimeout(() => controller.abort(new Error("operator interrupt")), 300);
    const started = performance.now();
    await assert.rejects(pending, /operator interrupt/);
    assert.ok(performance.now() - started < 5000, "cancelled promptly, not by a timeout");
    const statSignal = AbortSignal.timeout(300);
    await assert.rejects(dest.stat("a.bin", { signal: statSignal }), /TimeoutError|timed out/i);
  } finally {
    await dest[Symbol.asyncDispose]();
    hole.close();
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* closed by the client */ }
    }
    await accepting;
  }
});

Deno.test(
  "commit with a final key puts the object there and nothing at the create key",
  opts,
  async () => {
    await using s3 = await startS3rver();
    await using dest = await open(s3, { prefix: "p/" });
    const big = pseudoRandom(17 * MiB, 11);
    const small = pseudoRandom(5000, 12);
    for (const [key, data] of [["big.parquet", big], ["small.parquet", small]] as const) {
      const upload = await dest.create(key);
      await chunked(data).pipeTo(upload.writable);
      const final = key.replace(".parquet", "_part0.parquet");
      const meta = await upload.commit(final);
      assert.deepEqual(meta, { key: final, size: data.length, md5: md5b64(data) });
      assert.equal(await dest.stat(key), undefined);
      assert.equal(md5b64(await readAll(dest, final)), md5b64(data));
    }
    assert.deepEqual(await rawKeys(s3), ["p/big_part0.parquet", "p/small_part0.parquet"]);
  },
);

Deno.test("commit refuses an existing object unless overwrite was asked for", opts, async () => {
  await using s3 = await startS3rver();
  await using dest = await open(s3);
  const first = pseudoRandom(1000, 21);
  await put(dest, "part.csv", first);
  // Single-PUT and multipart paths both refuse, and leave the committed object as it was.
  for (const size of [2000, 9 * MiB]) {
    const upload = await dest.create("part.csv");
    await chunked(pseudoRandom(size, 22)).pipeTo(upload.writable);
    await assert.rejects(upload.commit(), hasCode("destination.exists"));
    assert.deepEqual(await rawGet(s3, "part.csv"), first);
  }
  // A renaming commit refuses an existing final key too.
  const renamed = await dest.create("other.csv");
  await chunked(pseudoRandom(9 * MiB, 23)).pipeTo(renamed.writable);
  await assert.rejects(renamed.commit("part.csv"), hasCode("destination.exists"));
  assert.deepEqual(await rawKeys(s3), ["part.csv"]);
  // manifest.json-style rewrites pass `overwrite`.
  for (const size of [10, 9 * MiB]) {
    const replacement = pseudoRandom(size, 24 + size);
    const upload = await dest.create("part.csv", { overwrite: true });
    await chunked(replacement).pipeTo(upload.writable);
    await upload.commit();
    assert.equal(md5b64(await rawGet(s3, "part.csv")), md5b64(replacement));
  }
});

Deno.test(
  "a provisional multipart upload is completed under a hidden staging key, then renamed",
  opts,
  async () => {
    await using s3 = await startS3rver();
    await using dest = await open(s3, { prefix: "p/" });
    const data = pseudoRandom(9 * MiB, 41);
    const upload = await dest.create("t_part0.csv", { provisional: true });
    await chunked(data).pipeTo(upload.writable);
    assert.deepEqual(await rawKeys(s3), [], "nothing visible before the commit");
    const meta = await upload.commit("t.csv");
    assert.deepEqual(meta, { key: "t.csv", size: data.length, md5: md5b64(data) });
    assert.deepEqual(await rawKeys(s3), ["p/t.csv"], "the staging object is gone");

    // What a kill between the completion and the copy leaves: hidden, removable.
    const client = rawClient(s3);
    try {
      for (const key of ["p/.u_1.csv.tmp", "p/.v_1.csv.tmp", "p/sub/.u_2.csv.tmp"]) {
        await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: "x" }));
      }
    } finally {
      client.destroy();
    }
    assert.deepEqual((await collect(dest, "")).map((m) => m.key), ["t.csv"]);
    assert.deepEqual(await Array.fromAsync(dest.listStaging("u_")), [
      { key: ".u_1.csv.tmp", finalKey: "u_1.csv", size: 1 },
    ]);
    await assert.rejects(dest.removeStaging("t.csv"), hasCode("destination.bad_key"));
    await dest.removeStaging(".u_1.csv.tmp");
    assert.deepEqual(await rawKeys(s3), ["p/.v_1.csv.tmp", "p/sub/.u_2.csv.tmp", "p/t.csv"]);
  },
);

Deno.test("list, stat, read and move work on committed objects only", opts, async () => {
  await using s3 = await startS3rver();
  await using dest = await open(s3, { prefix: "root/" });
  const a = pseudoRandom(100, 31);
  const b = pseudoRandom(200, 32);
  const c = pseudoRandom(300, 33);
  await put(dest, "x_b.csv", b);
  await put(dest, "x_a.csv", a);
  await put(dest, "y/c.csv", c);
  const pending = await dest.create("x_pending.csv");
  await chunked(pseudoRandom(50)).pipeTo(pending.writable);
  assert.deepEqual((await collect(dest, "")).map((m) => [m.key, m.size, m.md5]), [
    ["x_a.csv", 100, md5b64(a)],
    ["x_b.csv", 200, md5b64(b)],
    ["y/c.csv", 300, md5b64(c)],
  ]);
  assert.deepEqual((await collect(dest, "x_")).map((m) => m.key), ["x_a.csv", "x_b.csv"]);
  assert.deepEqual((await collect(dest, "y/")).map((m) => m.key), ["y/c.csv"]);
  assert.deepEqual(await collect(dest, "zzz"), []);
  assert.deepEqual(await dest.stat("y/c.csv"), { key: "y/c.csv", size: 300, md5: md5b64(c) });
  assert.equal(await dest.stat("y/none.csv"), undefined);
  assert.deepEqual(await readAll(dest, "x_a.csv"), a);
  await assert.rejects(dest.read("none.csv"), hasCode("destination.not_found"));
  // move never overwrites, and names what is missing.
  await assert.rejects(dest.move("x_a.csv", "x_b.csv"), hasCode("destination.exists"));
  await assert.rejects(dest.move("none.csv", "q.csv"), hasCode("destination.not_found"));
  await dest.move("x_a.csv", "_quarantine/run 1/ü+x_a.csv");
  assert.equal(await dest.stat("x_a.csv"), undefined);
  assert.deepEqual(await readAll(dest, "_quarantine/run 1/ü+x_a.csv"), a);
  assert.deepEqual(await rawKeys(s3), [
    "root/_quarantine/run 1/ü+x_a.csv",
    "root/x_b.csv",
    "root/y/c.csv",
  ]);
  await pending.abort();
});

Deno.test(
  "the prefix is concatenated verbatim: 'exports/' makes a folder, 'exports' a name prefix",
  opts,
  async () => {
    await using s3 = await startS3rver();
    const data = pseudoRandom(64, 41);
    await using slash = await open(s3, { prefix: "exports/" });
    await using bare = await open(s3, { prefix: "exports" });
    assert.equal(slash.uri, `s3://${s3.bucket}/exports/`);
    assert.equal(bare.uri, `s3://${s3.bucket}/exports`);
    await put(slash, "a.parquet", data);
    await put(bare, "a.parquet", data);
    assert.deepEqual(await rawKeys(s3), ["exports/a.parquet", "exportsa.parquet"]);
    assert.deepEqual((await collect(slash, "")).map((m) => m.key), ["a.parquet"]);
    // Under `exports`, `exports/a.parquet` would be the key `/a.parquet`: not a rivet key, skipped.
    assert.deepEqual((await collect(bare, "")).map((m) => m.key), ["a.parquet"]);
    assert.deepEqual(await readAll(bare, "a.parquet"), data);
  },
);

Deno.test(
  "a bucket that does not exist fails with destination.bucket_not_found naming it",
  opts,
  async () => {
    await using s3 = await startS3rver();
    await using dest = await open(s3, { bucket: "no-such-bucket" });
    const isMissing = (error: unknown) =>
      hasCode("destination.bucket_not_found")(error) &&
      /no-such-bucket/.test((error as Error).message);
    const small = await dest.create("a.csv");
    await chunked(pseudoRandom(10)).pipeTo(small.writable);
    await assert.rejects(small.commit(), isMissing);
    const big = await dest.create("b.csv");
    await assert.rejects(chunked(pseudoRandom(9 * MiB)).pipeTo(big.writable), isMissing);
    await assert.rejects(dest.stat("a.csv"), isMissing);
    await assert.rejects(collect(dest, ""), isMissing);
    await assert.rejects(dest.read("a.csv"), isMissing);
  },
);

Deno.test(
  "bad credentials fail with destination.auth_failed and no secret in the message",
  opts,
  async () => {
    await using s3 = await startS3rver();
    const keyId = "AKIAMARKERKEYID12345";
    const secret = "marker/Secret+Value/0123456789abcdef";
    await using dest = await S3Destination.open(spec(s3), {
      env: envOf(s3, { TEST_S3_KEY: keyId, TEST_S3_SECRET: secret }),
    });
    const check = (error: unknown) => {
      hasCode("destination.auth_failed")(error);
      const text = `${(error as RivetError).message}\n${(error as RivetError).hint}`;
      assert.ok(!text.includes(secret) && !text.includes(keyId), text);
      assert.match(text, /TEST_S3_KEY/); // names the variable to check, not its value
      return true;
    };
    const upload = await dest.create("a.csv");
    await chunked(pseudoRandom(10)).pipeTo(upload.writable);
    await assert.rejects(upload.commit(), check);
    await assert.rejects(dest.stat("a.csv"), check);
    await assert.rejects(collect(dest, ""), check);
    assert.deepEqual(await rawKeys(s3), []);
  },
);

Deno.test(
  "aws_profile picks its keys from the shared credentials file by profile name",
  opts,
  async () => {
    await using s3 = await startS3rver();
    const dir = await Deno.makeTempDir({ prefix: "rivet_s3_profile_" });
    const saved = ["AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"].map((
      n,
    ) => [n, Deno.env.get(n)]);
    try {
      await Deno.writeTextFile(
        join(dir, "credentials"),
        `[rivet-good]\naws_access_key_id = ${s3.accessKeyId}\naws_secret_access_key = ${s3.secretAccessKey}\n` +
          "[rivet-bad]\naws_access_key_id = NOSUCHKEY\naws_secret_access_key = nosuchsecret\n",
      );
      await Deno.writeTextFile(join(dir, "config"), "");
      Deno.env.set("AWS_SHARED_CREDENTIALS_FILE", join(dir, "credentials"));
      Deno.env.set("AWS_CONFIG_FILE", join(dir, "config"));
      const env = () => undefined;
      const base: DestinationSpec = {
        kind: "s3",
        bucket: s3.bucket,
        endpoint: s3.endpoint,
        allowAnonymous: false,
      };
      await using good = await S3Destination.open({ ...base, awsProfile: "rivet-good" }, {
        env,
      });
      const data = pseudoRandom(100, 51);
      await put(good, "p.csv", data);
      assert.deepEqual(await rawGet(s3, "p.csv"), data);
      await using bad = await S3Destination.open({ ...base, awsProfile: "rivet-bad" }, {
        env,
      });
      await assert.rejects(
        bad.stat("p.csv"),
        (error: unknown) =>
          hasCode("destination.auth_failed")(error) && /rivet-bad/.test((error as Error).message),
      );
    } finally {
      for (const [name, value] of saved) {
        if (value === undefined) Deno.env.delete(name!);
        else Deno.env.set(name!, value);
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "a connection dropped in the middle of a part is retried and the object is whole",
  opts,
  async () => {
    await using s3 = await startS3rver();
    // The first connection to carry 5 MiB dies inside a part body (parts are 8 MiB), once.
    await using proxy = await startTcpProxy({
      targetPort: s3.port,
      cutAfterBytes: 5 * MiB,
      cutConnection: "all",
      maxCuts: 1,
    });
    await using dest = await open(s3);
    const warnings: { message: string; code: string | undefined }[] = [];
    const viaProxy = await S3Destination.open(
      spec(s3, { endpoint: `http://127.0.0.1:${proxy.port}` }),
      {
        env: envOf(s3),
        warn: (message, code) => void warnings.push({ message, code }),
      },
    );
    const data = pseudoRandom(20 * MiB, 61);
    const meta = await put(viaProxy, "r.bin", data);
    assert.equal(proxy.cuts, 1);
    // The retry is not silent: one warning, with the code the run journal counts.
    assert.deepEqual(warnings.map((w) => w.code), ["destination.retrying"]);
    assert.match(
      warnings[0]!.message,
      /^S3 upload part \d of 's3:\/\/[^']+\/r\.bin' failed \([^)]+\); retry 1\/5 in \d+ ms$/,
    );
    assert.ok(!warnings[0]!.message.includes(s3.secretAccessKey));
    assert.ok(proxy.connections >= 2, `${proxy.connections} connections`);
    assert.deepEqual(meta, { key: "r.bin", size: data.length, md5: md5b64(data) });
    assert.equal(md5b64(await rawGet(s3, "r.bin")), md5b64(data));
    assert.deepEqual(await dest.stat("r.bin"), {
      key: "r.bin",
      size: data.length,
      md5: md5b64(data),
    });
    await viaProxy[Symbol.asyncDispose]();
  },
);

Deno.test(
  "a store that drops every upload fails with destination.unavailable and commits nothing",
  opts,
  async () => {
    await using s3 = await startS3rver();
    // Small requests get through; every connection dies 1 MiB in, inside the first part's body.
    await using proxy = await startTcpProxy({
      targetPort: s3.port,
      cutAfterBytes: MiB,
      cutConnection: "all",
    });
    await using dest = await open(s3);
    const viaProxy = await S3Destination.open(
      spec(s3, { endpoint: `http://127.0.0.1:${proxy.port}` }),
      {
        env: envOf(s3),
      },
    );
    const upload = await viaProxy.create("u.bin");
    const started = performance.now();
    await assert.rejects(
      chunked(pseudoRandom(20 * MiB, 71)).pipeTo(upload.writable),
      hasCode("destination.unavailable"),
    );
    const seconds = (performance.now() - started) / 1000;
    assert.equal(proxy.cuts, 6, "one attempt and five retries of part 1");
    assert.ok(seconds > 3 && seconds < 20, `retries took ${seconds} s`);
    await assert.rejects(upload.commit());
    assert.deepEqual(await rawKeys(s3), []);
    assert.equal(await dest.stat("u.bin"), undefined);
    await viaProxy[Symbol.asyncDispose]();
  },
);

Deno.test(
  "bytes corrupted in transit fail the commit with destination.checksum_mismatch",
  opts,
  async () => {
    await using s3 = await startS3rver();
    await using dest = await open(s3);
    // s3rver checks no Content-MD5, so it stores the altered byte and its ETag gives it away.
    // The offset falls in a body whichever pooled connection carries it (headers are < 1 KiB).
    for (const [size, at] of [[200_000, 100_000], [12 * MiB, 4 * MiB]] as const) {
      await using proxy = await startTcpProxy({
        targetPort: s3.port,
        corruptByteAt: at,
        cutConnection: "all",
      });
      const viaProxy = await S3Destination.open(
        spec(s3, { endpoint: `http://127.0.0.1:${proxy.port}` }),
        { env: envOf(s3) },
      );
      const upload = await viaProxy.create(`c${size}.bin`);
      const written = chunked(pseudoRandom(size, 81)).pipeTo(upload.writable)
        .then(() => upload.commit());
      await assert.rejects(written, (error: unknown) => {
        hasCode("destination.checksum_mismatch")(error);
        assert.equal((error as RivetError).exitCode, 3);
        return true;
      });
      assert.ok(proxy.corruptions >= 1);
      assert.equal(await dest.stat(`c${size}.bin`), undefined);
      await viaProxy[Symbol.asyncDispose]();
    }
    assert.deepEqual(await rawKeys(s3), []);
  },
);
