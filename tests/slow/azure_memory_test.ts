/**
 * Process memory of an Azure upload (Azurite): a 200 MiB stream keeps RSS bounded. In the slow tier, in its own process.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { startAzurite } from "../_helpers/azurite.ts";
import { bytes, fixture, MiB, sanitize } from "../destinations/azure_fixture.ts";

Deno.test("a 200 MiB stream keeps memory bounded", sanitize, async () => {
  await using azurite = await startAzurite();
  const f = fixture(azurite);
  const container = await f.container();
  await using dest = await f.open(container.containerName);
  const total = 200 * MiB;
  const chunk = bytes(1 * MiB, 26);
  const hash = createHash("md5");
  const upload = await dest.create("huge.bin");
  const writer = upload.writable.getWriter();
  const before = Deno.memoryUsage().rss;
  let peak = before;
  const started = performance.now();
  for (let i = 0; i < total / MiB; i++) {
    chunk[0] = i & 0xff; // each chunk differs, so a reordered block would change the MD5
    hash.update(chunk);
    await writer.write(chunk);
    peak = Math.max(peak, Deno.memoryUsage().rss);
  }
  await writer.close();
  const meta = await upload.commit();
  const seconds = (performance.now() - started) / 1000;
  peak = Math.max(peak, Deno.memoryUsage().rss);
  const growth = (peak - before) / MiB;
  console.log(
    `200 MiB to Azurite: ${seconds.toFixed(1)} s (${(200 / seconds).toFixed(0)} MiB/s), ` +
      `RSS growth ${growth.toFixed(0)} MiB`,
  );
  assert.deepEqual(meta, { key: "huge.bin", size: total, md5: hash.digest("base64") });
  assert.equal((await dest.stat("huge.bin"))?.md5, meta.md5);
  assert.ok(growth < 100, `RSS grew ${growth.toFixed(0)} MiB`);
});
