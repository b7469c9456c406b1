/**
 * Process memory of a GCS upload (the in-repo server): a 200 MiB stream keeps RSS bounded. In the slow tier, in its own process.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawnGcsServer } from "../_helpers/gcs_server.ts";
import { BUCKET, bytesOf, MiB, open, write } from "../destinations/gcs_fixture.ts";

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
