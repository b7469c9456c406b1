import assert from "node:assert/strict";
import { startAzurite } from "../_helpers/azurite.ts";
import { startTcpProxy } from "../_helpers/tcp_proxy.ts";
import { AzureDestination } from "../../src/destinations/azure.ts";
import {
  blobNames,
  blockList,
  bytes,
  fixture,
  md5,
  MiB,
  readAll,
  rejects,
  sanitize,
  write,
} from "./azure_fixture.ts";

Deno.test(
  "the Azure destination survives or fails cleanly when the connection drops",
  sanitize,
  async (t) => {
    await using azurite = await startAzurite();
    const f = fixture(azurite);

    await t.step("a block cut mid-body is re-sent and the object is complete", async () => {
      const container = await f.container();
      // Cut the first connection that carries 3 MiB: mid-body of the first block.
      await using proxy = startFaultProxy(azurite.port, { cutAt: 3 * MiB });
      f.warnings.length = 0;
      f.codes.length = 0;
      await using dest = await f.open(container.containerName, {
        endpoint: `http://127.0.0.1:${proxy.port}/${azurite.accountName}`,
      });
      const data = bytes(20 * MiB, 21);
      const upload = await dest.create("cut.bin");
      await write(upload, data, 256 * 1024);
      const meta = await upload.commit();
      assert.equal(proxy.faults, 1);
      assert.equal(f.warnings.length, 1, f.warnings.join("\n"));
      assert.match(f.warnings[0]!, /Azure upload block 1 of '[^']*\/cut\.bin' failed .*retry 1\/5/);
      assert.equal(f.codes.at(-1), "destination.retrying", "counted as a retry by the journal");
      assert.deepEqual(meta, { key: "cut.bin", size: data.length, md5: md5(data) });
      const direct = await f.open(container.containerName);
      assert.deepEqual(await readAll(await direct.read("cut.bin")), data);
    });

    await t.step("a single Put Blob cut mid-body is re-sent", async () => {
      const container = await f.container();
      await using proxy = startFaultProxy(azurite.port, { cutAt: 1 * MiB });
      await using dest = await f.open(container.containerName, {
        endpoint: `http://127.0.0.1:${proxy.port}/${azurite.accountName}`,
      });
      const data = bytes(3 * MiB, 22);
      const upload = await dest.create("single.bin");
      await write(upload, data);
      assert.deepEqual(await upload.commit(), {
        key: "single.bin",
        size: data.length,
        md5: md5(data),
      });
      assert.equal(proxy.faults, 1);
      const props = await container.getBlockBlobClient("single.bin").getProperties();
      assert.equal(props.contentLength, data.length);
    });

    await t.step("a store that drops every upload fails as destination.unavailable", async () => {
      const container = await f.container();
      await using proxy = await startTcpProxy({
        targetPort: azurite.port,
        cutConnection: "all",
        cutAfterBytes: 2 * MiB,
      });
      await using dest = await f.open(container.containerName, {
        endpoint: `http://127.0.0.1:${proxy.port}/${azurite.accountName}`,
      }, { retry: { retries: 2, baseDelayMs: 10, maxDelayMs: 50 } });
      const upload = await dest.create("never.bin");
      const started = Date.now();
      const error = await rejects(
        write(upload, bytes(20 * MiB, 23), MiB),
        "destination.unavailable",
      );
      assert.equal(error.exitCode, 2);
      assert.match(error.message, /upload block 1 of '[^']*\/never\.bin' failed after 3 attempts/);
      assert.ok(Date.now() - started < 20_000);
      await assert.rejects(upload.commit(), /after aborted/);
      // Nothing committed, and the staged blocks were dropped (Azurite deletes them with the name).
      assert.equal(await blockList(container, "never.bin"), undefined);
      assert.deepEqual(await blobNames(container), []);

      const small = await dest.create("never-small.bin");
      await write(small, bytes(3 * MiB, 24));
      await rejects(small.commit(), "destination.unavailable");
      assert.deepEqual(await blobNames(container), []);
    });

    await t.step("bytes corrupted in transit are refused by the MD5 check", async () => {
      const container = await f.container();
      await using proxy = startFaultProxy(azurite.port, { flipAt: 200_000 });
      await using dest = await f.open(container.containerName, {
        endpoint: `http://127.0.0.1:${proxy.port}/${azurite.accountName}`,
      });
      const upload = await dest.create("flip.bin");
      await write(upload, bytes(1 * MiB, 25));
      const error = await rejects(upload.commit(), "destination.checksum_mismatch");
      assert.equal(error.exitCode, 3);
      assert.equal(proxy.faults, 1);
      assert.deepEqual(await blobNames(container), []);
    });
  },
);

/**
 * A loopback proxy to Azurite that damages the first connection whose client→server bytes reach
 * `cutAt` (closed there: the request dies mid-body) or `flipAt` (that byte inverted). Unlike
 * `tcp_proxy.ts`, which picks a connection by number, it finds the big request wherever the
 * client's keep-alive pool put it.
 */
function startFaultProxy(
  targetPort: number,
  fault: { readonly cutAt?: number; readonly flipAt?: number },
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let faults = 0;
  const shut = (...list: Deno.Conn[]) => {
    for (const c of list) if (conns.delete(c)) c.close();
  };
  const upstream = async (client: Deno.Conn, target: Deno.Conn) => {
    const buf = new Uint8Array(64 * 1024);
    let seen = 0;
    for (;;) {
      const n = await client.read(buf);
      if (n === null) break;
      let chunk = buf.subarray(0, n);
      const at = fault.cutAt ?? fault.flipAt!;
      const hit = faults === 0 && seen <= at && at < seen + n;
      if (hit && fault.cutAt !== undefined) {
        faults++;
        chunk = chunk.subarray(0, at - seen);
        for (let o = 0; o < chunk.length;) o += await target.write(chunk.subarray(o));
        break;
      }
      if (hit) {
        faults++;
        chunk[at - seen]! ^= 0xff;
      }
      seen += n;
      for (let o = 0; o < n;) o += await target.write(chunk.subarray(o));
    }
  };
  const downstream = async (target: Deno.Conn, client: Deno.Conn) => {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await target.read(buf);
      if (n === null) break;
      for (let o = 0; o < n;) o += await client.write(buf.subarray(o, n));
    }
  };
  const accepting = (async () => {
    for await (const client of listener) {
      const target = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      conns.add(client);
      conns.add(target);
      Promise.race([upstream(client, target), downstream(target, client)])
        .catch(() => {})
        .finally(() => shut(client, target));
    }
  })().catch(() => {});
  const close = async () => {
    listener.close();
    shut(...conns);
    await accepting;
  };
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get faults() {
      return faults;
    },
    [Symbol.asyncDispose]: close,
  };
}

Deno.test(
  "an Azure request that gets no answer in time is retried, then fails as destination.unavailable",
  sanitize,
  async () => {
    // A real socket that accepts connections and never answers: each attempt hits its deadline.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    const accepting = (async () => {
      for await (const conn of listener) held.push(conn);
    })().catch(() => {});
    try {
      const warnings: { message: string; code: string | undefined }[] = [];
      const port = (listener.addr as Deno.NetAddr).port;
      await using dest = await AzureDestination.open(
        {
          kind: "azure",
          bucket: "silent",
          accountName: "devstoreaccount1",
          endpoint: `http://127.0.0.1:${port}/devstoreaccount1`,
          allowAnonymous: true,
        },
        {
          env: () => undefined,
          warn: (message, code) => void warnings.push({ message, code }),
          retry: { retries: 1, baseDelayMs: 1, maxDelayMs: 1, attemptTimeoutMs: 300 },
        },
      );
      const error = await rejects(dest.stat("a.csv"), "destination.unavailable");
      assert.match(
        error.message,
        /stat '[^']*\/a\.csv' failed after 2 attempts \(no answer in 300 ms\)/,
      );
      assert.equal(warnings.length, 1, JSON.stringify(warnings));
      assert.match(
        warnings[0]!.message,
        /^Azure stat '[^']*\/a\.csv' failed \(no answer in 300 ms\); retry 1\/1 in \d+ ms$/,
      );
      assert.equal(warnings[0]!.code, "destination.retrying");
      assert.ok(held.length >= 2, `${held.length} connections: one per attempt`);
    } finally {
      listener.close();
      for (const conn of held) conn.close();
      await accepting;
    }
  },
);
