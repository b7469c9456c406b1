import assert from "node:assert/strict";
import {
  AccountSASPermissions,
  BlobServiceClient,
  generateAccountSASQueryParameters,
  StorageSharedKeyCredential,
} from "@azure/storage-blob";
import { ConfigError } from "../../src/core/errors.ts";
import type { DestinationSpec } from "../../src/core/spec.ts";
import { redact } from "../../src/_util/redact.ts";
import { startAzurite } from "../_helpers/azurite.ts";
import {
  AZURE_BLOCK_SIZE,
  azureBlobName,
  AzureDestination,
  parseSasExpiry,
} from "../../src/destinations/azure.ts";
import {
  blobNames,
  blockList,
  bytes,
  collect,
  fixture,
  md5,
  MiB,
  patch,
  readAll,
  rejects,
  sanitize,
  type SpecPatch,
  write,
  writeAndCommit,
} from "./azure_fixture.ts";

Deno.test("parseSasExpiry reads se= percent-decoded, with or without '?', and rejects garbage", () => {
  assert.equal(
    parseSasExpiry("?sv=2024-08-04&se=2030-01-02T03%3A04%3A05Z&sp=r&sig=abc")?.toISOString(),
    "2030-01-02T03:04:05.000Z",
  );
  assert.equal(parseSasExpiry("se=2030-01-02T03:04Z")?.toISOString(), "2030-01-02T03:04:00.000Z");
  assert.equal(parseSasExpiry("se=2030-01-02")?.toISOString(), "2030-01-02T00:00:00.000Z");
  assert.equal(
    parseSasExpiry("se=2030-01-02T03%3A04%3A05%2B02%3A00")?.toISOString(),
    "2030-01-02T01:04:05.000Z",
  );
  assert.equal(parseSasExpiry("sv=2024-08-04&sig=abc"), undefined);
  assert.equal(parseSasExpiry("se=tomorrow&sig=abc"), undefined);
  assert.equal(parseSasExpiry("se=2030-13-45T99:00:00Z"), undefined);
  assert.equal(parseSasExpiry("se=%E0%A4%A"), undefined);
});

Deno.test("azureBlobName concatenates prefix and key verbatim and validates the key", () => {
  assert.equal(azureBlobName("exports/", "a.parquet"), "exports/a.parquet");
  assert.equal(azureBlobName("exports", "a.parquet"), "exportsa.parquet");
  assert.equal(azureBlobName("", "d=1/a.csv"), "d=1/a.csv");
  for (const bad of ["../a", "/a", "a/../../b", "a\\b", "", "dir/"]) {
    assert.throws(() => azureBlobName("p/", bad), (e: unknown) => {
      return e instanceof ConfigError && e.code === "destination.bad_key";
    });
  }
});

Deno.test("opening checks SAS expiry, env vars and connection strings before any request", async () => {
  const warnings: string[] = [];
  const now = new Date("2030-01-01T12:00:00Z");
  const token = "sv=2024-08-04&ss=b&srt=sco&sp=racwdl&sig=S3CR3T%2Fsig%3D";
  const env: Record<string, string> = {
    EXPIRED: `?se=2030-01-01T11%3A59%3A00Z&${token}`,
    SOON: `se=2030-01-01T12%3A30%3A00Z&${token}`,
    LATER: `se=2030-01-01T14%3A00%3A00Z&${token}`,
    NOSE: token,
    CS_NOKEY: "DefaultEndpointsProtocol=https;AccountName=acct;EndpointSuffix=core.windows.net",
    CS: "DefaultEndpointsProtocol=https;AccountName=other;AccountKey=QUJDRA==;",
    CS_SAS: `BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=` +
      `se=2030-01-01T11%3A00%3A00Z&${token}`,
  };
  // Port 9 (discard) on loopback: any request would fail, none must be sent.
  const spec: DestinationSpec = {
    kind: "azure",
    bucket: "rivet",
    accountName: "acct",
    endpoint: "http://127.0.0.1:9/acct",
    allowAnonymous: false,
  };
  const options = {
    env: (name: string) => env[name],
    now: () => now,
    warn: (m: string) => void warnings.push(m),
  };

  const expired = await rejects(
    AzureDestination.open({ ...spec, sasTokenEnv: "EXPIRED" }, options),
    "destination.sas_expired",
  );
  assert.equal(expired.exitCode, 1);
  assert.ok(expired instanceof ConfigError);
  assert.match(expired.message, /'EXPIRED'.*2030-01-01T11:59:00\.000Z/);
  assert.ok(!expired.message.includes("S3CR3T"));

  await AzureDestination.open({ ...spec, sasTokenEnv: "SOON" }, options);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /'SOON'.*expires in 30 minutes/);
  await AzureDestination.open({ ...spec, sasTokenEnv: "LATER" }, options);
  assert.equal(warnings.length, 1, "two hours left: no warning");
  await AzureDestination.open({ ...spec, sasTokenEnv: "NOSE" }, options);
  assert.equal(warnings.length, 2);
  assert.match(warnings[1]!, /'NOSE'.*no readable expiry/);
  assert.ok(warnings.every((w) => !w.includes("S3CR3T")));
  // Registered as secrets once read: no later message can carry them.
  assert.equal(redact(`token ${env.NOSE}`), "token ***");
  assert.equal(redact("sig S3CR3T/sig="), "sig ***");

  await rejects(
    AzureDestination.open({ ...spec, sasTokenEnv: "UNSET" }, options),
    "config.missing_env",
  );
  await rejects(
    AzureDestination.open({ ...spec, accountKeyEnv: "CS_NOKEY" }, options),
    "destination.bad_connection_string",
  );
  const mismatch = await rejects(
    AzureDestination.open({ ...spec, accountKeyEnv: "CS" }, options),
    "config.conflicting_keys",
  );
  assert.ok(!mismatch.message.includes("QUJDRA=="));
  await rejects(
    AzureDestination.open({ ...spec, accountKeyEnv: "CS_SAS" }, options),
    "destination.sas_expired",
  );
  await rejects(
    AzureDestination.open({ ...spec, sasTokenEnv: "LATER", accountKeyEnv: "CS" }, options),
    "config.conflicting_keys",
  );
  const inEndpoint = await rejects(
    AzureDestination.open({
      ...spec,
      endpoint: `https://acct.blob.core.windows.net/?${token}`,
      allowAnonymous: true,
    }, options),
    "destination.bad_endpoint",
  );
  assert.ok(!inEndpoint.message.includes("S3CR3T"));
  await rejects(
    AzureDestination.open({ ...spec, bucket: "Bad_Name", allowAnonymous: true }, options),
    "destination.bad_bucket",
  );
  await rejects(
    AzureDestination.open(patch(spec, { bucket: undefined, allowAnonymous: true }), options),
    "config.missing_key",
  );

  const dest = await AzureDestination.open(
    patch(spec, { endpoint: undefined, prefix: "exports/", allowAnonymous: true }),
    options,
  );
  assert.equal(dest.uri, "azure://acct/rivet/exports/");
  assert.equal(dest.endpoint, "https://acct.blob.core.windows.net");
  assert.deepEqual(dest.capabilities, {
    persistent: true,
  });
});

Deno.test(
  "the Azure destination writes, lists, reads and moves blobs on Azurite",
  sanitize,
  async (t) => {
    const anonKey = btoa("rivet-anonymous-test-account-key");
    await using azurite = await startAzurite({ accounts: { rivetanon: anonKey } });
    const f = fixture(azurite);
    /** An account SAS (read, add, create, write, delete, list) valid for three hours. */
    const accountSas = () =>
      generateAccountSASQueryParameters(
        {
          expiresOn: new Date(Date.now() + 3 * 3600_000),
          permissions: AccountSASPermissions.parse("racwdl"),
          resourceTypes: "sco",
          services: "b",
        },
        new StorageSharedKeyCredential(azurite.accountName, azurite.accountKey),
      ).toString();

    await t.step("a small object is one Put Blob at commit and invisible before it", async () => {
      const container = await f.container();
      await using dest = await f.open(container.containerName);
      const data = bytes(100_000, 2);
      const upload = await dest.create("orders_20300101_000000.csv");
      await write(upload, data, 7_000);
      assert.deepEqual(await collect(dest.list("")), []);
      assert.equal(await dest.stat("orders_20300101_000000.csv"), undefined);
      assert.deepEqual(await blobNames(container), [], "nothing sent before commit");
      const meta = await upload.commit();
      assert.deepEqual(meta, {
        key: "orders_20300101_000000.csv",
        size: data.length,
        md5: md5(data),
      });
      assert.deepEqual(await dest.stat(meta.key), meta);
      assert.deepEqual(await collect(dest.list("orders_")), [meta]);
      assert.deepEqual(await collect(dest.list("other")), []);
      assert.deepEqual(await readAll(await dest.read(meta.key)), data);

      const empty = await dest.create("empty.csv");
      assert.deepEqual(await empty.commit(), {
        key: "empty.csv",
        size: 0,
        md5: "1B2M2Y8AsgTpgAmY7PhCfg==",
      });
      assert.deepEqual(await readAll(await dest.read("empty.csv")), new Uint8Array());
    });

    await t.step(
      "a 20 MiB object streams as 8 MiB blocks, committed only by commit()",
      async () => {
        const container = await f.container();
        await using dest = await f.open(container.containerName);
        const data = bytes(20 * MiB, 3);
        const upload = await dest.create("big.parquet");
        await write(upload, data, 100_003);
        // Full blocks are on the service already, uncommitted (the second may still be in flight);
        // the last 4 MiB wait in memory for commit().
        const staged = await blockList(container, "big.parquet");
        assert.deepEqual(staged?.committed, []);
        assert.ok(staged.uncommitted.length >= 1 && staged.uncommitted.length <= 2);
        assert.ok(staged.uncommitted.every((size) => size === AZURE_BLOCK_SIZE));
        assert.deepEqual(await collect(dest.list("")), []);
        assert.equal(await dest.stat("big.parquet"), undefined);
        await rejects(dest.read("big.parquet"), "destination.not_found");
        const meta = await upload.commit();
        assert.deepEqual(meta, { key: "big.parquet", size: data.length, md5: md5(data) });
        assert.deepEqual(await blockList(container, "big.parquet"), {
          committed: [8 * MiB, 8 * MiB, 4 * MiB],
          uncommitted: [],
        });
        // The whole-object MD5 is stored with the block list, so listings report it.
        assert.deepEqual(await collect(dest.list("")), [meta]);
        assert.deepEqual(await readAll(await dest.read("big.parquet")), data);
      },
    );

    await t.step("abort discards staged blocks and leaves nothing listed", async () => {
      const container = await f.container();
      await using dest = await f.open(container.containerName);
      const upload = await dest.create("gone.csv");
      const writer = upload.writable.getWriter();
      await writer.write(bytes(17 * MiB, 4));
      writer.releaseLock();
      assert.ok((await blockList(container, "gone.csv"))!.uncommitted.length >= 1);
      await upload.abort(new Error("source failed"));
      await upload.abort(); // idempotent
      assert.equal(await blockList(container, "gone.csv"), undefined, "no uncommitted blocks left");
      assert.deepEqual(await collect(dest.list("")), []);
      await assert.rejects(upload.commit(), /after aborted/);

      const small = await dest.create("small.csv");
      await write(small, bytes(10, 5));
      await small.abort();
      assert.deepEqual(await blobNames(container), []);
    });

    await t.step("commit(finalKey) places the object at the final key only", async () => {
      const container = await f.container();
      await using dest = await f.open(container.containerName, { prefix: "out/" });
      const small = bytes(5_000, 6);
      const up1 = await dest.create("t_20300101_000000_part0.csv");
      await write(up1, small);
      assert.deepEqual(await up1.commit("t_20300101_000000.csv"), {
        key: "t_20300101_000000.csv",
        size: small.length,
        md5: md5(small),
      });
      const big = bytes(9 * MiB, 7);
      const up2 = await dest.create("u_part0.parquet");
      await write(up2, big, 1 * MiB);
      const meta = await up2.commit("u.parquet");
      assert.deepEqual(meta, { key: "u.parquet", size: big.length, md5: md5(big) });
      assert.deepEqual(await blobNames(container), ["out/t_20300101_000000.csv", "out/u.parquet"]);
      assert.deepEqual(await readAll(await dest.read("u.parquet")), big);
      assert.equal(await blockList(container, "out/u_part0.parquet"), undefined);
    });

    await t.step(
      "a provisional upload stages its blocks on a hidden name; staging blobs are listed apart",
      async () => {
        const container = await f.container();
        await using dest = await f.open(container.containerName, { prefix: "pv/" });
        const big = bytes(9 * MiB, 8);
        const upload = await dest.create("v_part0.csv", { provisional: true });
        await write(upload, big, 1 * MiB);
        assert.deepEqual(await blobNames(container), [], "nothing visible before the commit");
        assert.deepEqual(await upload.commit("v.csv"), {
          key: "v.csv",
          size: big.length,
          md5: md5(big),
        });
        assert.deepEqual(await blobNames(container), ["pv/v.csv"]);
        // A complete staging blob a killed commit left: hidden from list, found and removed.
        await container.getBlockBlobClient("pv/.w_1.csv.tmp").upload("x", 1);
        assert.deepEqual((await collect(dest.list(""))).map((o) => o.key), ["v.csv"]);
        assert.deepEqual(await collect(dest.listStaging("w_")), [
          { key: ".w_1.csv.tmp", finalKey: "w_1.csv", size: 1 },
        ]);
        await rejects(dest.removeStaging("v.csv"), "destination.bad_key");
        await dest.removeStaging(".w_1.csv.tmp");
        assert.deepEqual(await blobNames(container), ["pv/v.csv"]);
      },
    );

    await t.step("a committed object is never overwritten unless overwrite is set", async () => {
      const container = await f.container();
      await using dest = await f.open(container.containerName);
      const first = bytes(1000, 8);
      const up = await dest.create("part.csv");
      await write(up, first);
      await up.commit();
      for (const size of [2000, 9 * MiB]) {
        // A staged object is refused before its first block is sent.
        const again = await dest.create("part.csv");
        await rejects(writeAndCommit(again, bytes(size, 9)), "destination.exists");
        assert.deepEqual(await readAll(await dest.read("part.csv")), first);
      }
      assert.deepEqual((await blockList(container, "part.csv"))?.uncommitted, []);
      const onto = await dest.create("other_part0.csv");
      await rejects(writeAndCommit(onto, bytes(9 * MiB, 10), "part.csv"), "destination.exists");
      assert.deepEqual(await blobNames(container), ["part.csv"]);

      const manifest = new TextEncoder().encode('{"v":2}');
      for (const body of [new TextEncoder().encode('{"v":1}'), manifest]) {
        const m = await dest.create("manifest.json", { overwrite: true });
        await write(m, body);
        await m.commit();
      }
      assert.deepEqual(await readAll(await dest.read("manifest.json")), manifest);
    });

    await t.step(
      "move copies then deletes, never overwriting, and fails on a missing source",
      async () => {
        const container = await f.container();
        await using dest = await f.open(container.containerName, { prefix: "x/" });
        for (const [key, seed] of [["a.csv", 11], ["b.csv", 12]] as const) {
          const up = await dest.create(key);
          await write(up, bytes(3000, seed));
          await up.commit();
        }
        await dest.move("a.csv", "_quarantine/run1/a.csv");
        assert.deepEqual((await collect(dest.list(""))).map((m) => m.key), [
          "_quarantine/run1/a.csv",
          "b.csv",
        ]);
        assert.deepEqual(await readAll(await dest.read("_quarantine/run1/a.csv")), bytes(3000, 11));
        await rejects(dest.move("b.csv", "_quarantine/run1/a.csv"), "destination.exists");
        assert.deepEqual(await readAll(await dest.read("b.csv")), bytes(3000, 12));
        await rejects(dest.move("a.csv", "c.csv"), "destination.not_found");
        await rejects(dest.read("nope.csv"), "destination.not_found");
        await assert.rejects(dest.move("b.csv", "../b.csv"), /not allowed/);
        assert.deepEqual((await collect(dest.list("_quarantine/"))).map((m) => m.key), [
          "_quarantine/run1/a.csv",
        ]);
      },
    );

    await t.step(
      "the prefix is concatenated verbatim, with and without a trailing slash",
      async () => {
        const container = await f.container();
        await using slash = await f.open(container.containerName, { prefix: "exports/" });
        await using bare = await f.open(container.containerName, { prefix: "exports" });
        for (const dest of [slash, bare]) {
          const up = await dest.create("a.parquet");
          await write(up, bytes(10, 13));
          await up.commit();
        }
        assert.deepEqual(await blobNames(container), ["exports/a.parquet", "exportsa.parquet"]);
        assert.equal(slash.uri, `azure://devstoreaccount1/${container.containerName}/exports/`);
        assert.deepEqual((await collect(slash.list(""))).map((m) => m.key), ["a.parquet"]);
        // The bare prefix also matches `exports/a.parquet`, whose key would be `/a.parquet`: not a
        // key this destination can write, so it is not listed.
        assert.deepEqual((await collect(bare.list(""))).map((m) => m.key), ["a.parquet"]);
        assert.deepEqual((await collect(bare.list("a"))).map((m) => m.key), ["a.parquet"]);
      },
    );

    await t.step("a missing container is destination.bucket_not_found", async () => {
      await using dest = await f.open("no-such-container");
      const small = await dest.create("a.csv");
      await write(small, bytes(10, 14));
      const error = await rejects(small.commit(), "destination.bucket_not_found");
      assert.equal(error.exitCode, 1);
      assert.match(error.message, /'no-such-container'.*create the container/);
      await rejects(collect(dest.list("")), "destination.bucket_not_found");
      await rejects(dest.stat("a.csv"), "destination.bucket_not_found");
      const big = await dest.create("b.csv");
      await rejects(writeAndCommit(big, bytes(9 * MiB, 15)), "destination.bucket_not_found");
    });

    await t.step(
      "bad credentials are destination.auth_failed and no secret is printed",
      async () => {
        const container = await f.container();
        const wrongKey = btoa("S3CR3T-not-the-account-key-0123456789");
        const sas = accountSas();
        const badSas = sas.replace(/sig=[^&]+/, "sig=S3CR3TsignatureXYZ%3D");
        const env: Record<string, string> = { WRONG: wrongKey, BADSAS: badSas };
        const options = { env: (n: string) => env[n], warn: () => {}, retry: { retries: 0 } };
        for (
          const spec of [{ accountKeyEnv: "WRONG" }, {
            sasTokenEnv: "BADSAS",
            accountKeyEnv: undefined,
          }]
        ) {
          await using dest = await f.open(container.containerName, spec, options);
          const up = await dest.create("a.csv");
          await write(up, bytes(10, 16));
          const error = await rejects(up.commit(), "destination.auth_failed");
          const envName = Object.values(spec)[0]!;
          assert.ok(error.message.includes(`'${envName}'`), error.message);
          // Message and hint are clean as they are; the whole error, cause included, once redacted.
          const text = Deno.inspect(error, { depth: 10 });
          for (const secret of [wrongKey, "S3CR3T", badSas]) {
            assert.ok(!error.message.includes(secret) && !String(error.hint).includes(secret));
            assert.ok(!redact(text).includes(secret));
          }
          await rejects(collect(dest.list("")), "destination.auth_failed");
        }
        assert.deepEqual(await blobNames(container), []);
      },
    );

    await t.step(
      "a SAS token, a connection string and allow_anonymous all authenticate",
      async () => {
        const container = await f.container();
        const sas = accountSas();
        const env: Record<string, string> = {
          SAS: `?${sas}`,
          CS: azurite.connectionString,
          CS_SAS: `BlobEndpoint=${azurite.endpoint()};SharedAccessSignature=${sas}`,
        };
        const options = { env: (n: string) => env[n] };
        const specs: SpecPatch[] = [
          { sasTokenEnv: "SAS", accountKeyEnv: undefined, prefix: "sas/" },
          // The endpoint comes from the connection string.
          { accountKeyEnv: "CS", endpoint: undefined, accountName: undefined, prefix: "cs/" },
          { accountKeyEnv: "CS_SAS", endpoint: undefined, prefix: "cssas/" },
          { accountKeyEnv: undefined, allowAnonymous: true, prefix: "anon/" },
        ];
        for (const spec of specs) {
          await using dest = await f.open(container.containerName, spec, options);
          const big = bytes(9 * MiB, 17);
          const up = await dest.create("a_part0.bin");
          await write(up, big, MiB);
          await up.commit("a.bin"); // block list + server-side copy + delete
          await dest.move("a.bin", "q/a.bin");
          assert.deepEqual(await collect(dest.list("")), [{
            key: "q/a.bin",
            size: big.length,
            md5: md5(big),
          }]);
          assert.deepEqual(await readAll(await dest.read("q/a.bin")), big);
        }
        assert.equal(redact(azurite.connectionString).includes(azurite.accountKey), false);
        assert.deepEqual(f.warnings, []);
      },
    );

    await t.step(
      "allow_anonymous on a real account reads a public container and cannot write",
      async () => {
        const owner = new BlobServiceClient(
          azurite.endpoint("rivetanon"),
          new StorageSharedKeyCredential("rivetanon", anonKey),
        ).getContainerClient("public");
        await owner.create({ access: "container" });
        await owner.getBlockBlobClient("seen.csv").upload(new Uint8Array(5), 5);
        await using dest = await f.open("public", {
          accountName: "rivetanon",
          endpoint: azurite.endpoint("rivetanon"),
          accountKeyEnv: undefined,
          allowAnonymous: true,
        });
        assert.deepEqual((await collect(dest.list(""))).map((m) => [m.key, m.size]), [[
          "seen.csv",
          5,
        ]]);
        assert.equal((await dest.stat("seen.csv"))?.size, 5);
        assert.equal(await dest.stat("unseen.csv"), undefined);
        const up = await dest.create("a.csv");
        await write(up, bytes(10, 27));
        const error = await rejects(up.commit(), "destination.auth_failed");
        assert.match(error.message, /anonymous requests cannot write; set account_key_env/);
        assert.deepEqual(await blobNames(owner), ["seen.csv"]);
      },
    );

    await t.step("the destination's signal aborts its requests", async () => {
      const container = await f.container();
      const controller = new AbortController();
      await using dest = await f.open(container.containerName, {}, { signal: controller.signal });
      const upload = await dest.create("x.bin");
      const writer = upload.writable.getWriter();
      await writer.write(bytes(9 * MiB, 28));
      controller.abort(new Error("run cancelled"));
      await assert.rejects(writer.write(bytes(10, 29)), /run cancelled/);
      await assert.rejects(dest.stat("x.bin"), /run cancelled/);
      assert.deepEqual(await blobNames(container), []);
    });

    await t.step("an aborted signal stops the upload and nothing is committed", async () => {
      const container = await f.container();
      await using dest = await f.open(container.containerName);
      const controller = new AbortController();
      const upload = await dest.create("cancel.bin", { signal: controller.signal });
      const writer = upload.writable.getWriter();
      await writer.write(bytes(9 * MiB, 18));
      controller.abort(new Error("user pressed Ctrl-C"));
      await assert.rejects(writer.write(bytes(10, 19)), /Ctrl-C/);
      await assert.rejects(upload.commit(), /after aborted/);
      assert.equal(await blockList(container, "cancel.bin"), undefined);
      assert.deepEqual(await blobNames(container), []);
    });

    await t.step("disposing the destination aborts the uploads still open", async () => {
      const container = await f.container();
      {
        await using dest = await f.open(container.containerName);
        const upload = await dest.create("open.bin");
        const writer = upload.writable.getWriter();
        await writer.write(bytes(9 * MiB, 20));
        writer.releaseLock();
      }
      assert.equal(await blockList(container, "open.bin"), undefined);
    });
  },
);
