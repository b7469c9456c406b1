/**
 * Bounded memory of the S3 destination: 200 MiB streamed to a real s3rver from a fresh Deno
 * process must not grow its RSS by more than the part buffers. A process-memory test, so it runs
 * in the slow tier (`deno task test:slow`), never beside other tests in one process. Moved
 * unchanged from `tests/e2e/s3_destination_test.ts`.
 */
import assert from "node:assert/strict";
import { S3Destination } from "../../src/destinations/s3.ts";
import { type S3rver, s3Spec, startS3rver } from "../_helpers/s3rver.ts";

const MiB = 1024 * 1024;
// The SDK's node:http agent and s3rver's child process outlive the sanitizers' view of a test.
const opts = { sanitizeResources: false, sanitizeOps: false };

function open(s3: S3rver): Promise<S3Destination> {
  const env: Record<string, string> = {
    TEST_S3_KEY: s3.accessKeyId,
    TEST_S3_SECRET: s3.secretAccessKey,
  };
  return S3Destination.open(s3Spec(s3), { env: (name) => env[name] });
}

/**
 * Streams `totalMiB` into the destination from a fresh Deno process (so earlier tests' garbage
 * does not hide growth) and returns its timings and RSS figures.
 */
async function measureInChild(s3: S3rver, totalMiB: number) {
  const module = new URL("../../src/destinations/s3.ts", import.meta.url).href;
  const code = `
    import { S3Destination } from ${JSON.stringify(module)};
    import { createHash } from "node:crypto";
    const MiB = 1024 * 1024;
    const dest = await S3Destination.open(${JSON.stringify(s3Spec(s3))}, { env: (n) => ({
      TEST_S3_KEY: "${s3.accessKeyId}", TEST_S3_SECRET: "${s3.secretAccessKey}" })[n] });
    const block = new Uint8Array(MiB);
    for (let i = 0; i < MiB; i += 65536) crypto.getRandomValues(block.subarray(i, i + 65536));
    async function send(key, total) {
      const md5 = createHash("md5");
      const upload = await dest.create(key);
      let sent = 0;
      let peak = 0;
      await new ReadableStream({
        pull(controller) {
          if (sent >= total) return controller.close();
          const piece = block.subarray(sent % MiB, sent % MiB + 64 * 1024);
          md5.update(piece);
          sent += piece.length;
          controller.enqueue(piece);
          if (sent % (4 * MiB) === 0) peak = Math.max(peak, Deno.memoryUsage().rss);
        },
      }, { highWaterMark: 0 }).pipeTo(upload.writable);
      const meta = await upload.commit();
      return { meta, md5: md5.digest("base64"), peak };
    }
    await send("warm.bin", 17 * MiB); // client, agent and both part buffers exist from here on
    const before = Deno.memoryUsage().rss;
    const started = performance.now();
    const run = await send("big.bin", ${totalMiB} * MiB);
    const seconds = (performance.now() - started) / 1000;
    const peak = Math.max(run.peak, Deno.memoryUsage().rss);
    console.log(JSON.stringify({ seconds, before, peak, size: run.meta.size,
      md5ok: run.meta.md5 === run.md5 }));
    await dest[Symbol.asyncDispose]();
  `;
  const config = new URL("../../deno.json", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", config, code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as {
    seconds: number;
    before: number;
    peak: number;
    size: number;
    md5ok: boolean;
  };
}

Deno.test("memory stays bounded while streaming 200 MiB", opts, async () => {
  await using s3 = await startS3rver();
  const r = await measureInChild(s3, 200);
  const growth = (r.peak - r.before) / MiB;
  console.log(
    `200 MiB to s3rver: ${r.seconds.toFixed(1)} s (${(200 / r.seconds).toFixed(0)} MiB/s), ` +
      `RSS ${(r.before / MiB).toFixed(0)} MiB after warm-up, peak ${(r.peak / MiB).toFixed(0)} ` +
      `MiB (+${growth.toFixed(0)} MiB)`,
  );
  assert.equal(r.size, 200 * MiB);
  assert.ok(r.md5ok, "the reported MD5 is the MD5 of the bytes written");
  assert.ok(growth < 100, `RSS grew by ${growth.toFixed(0)} MiB`);
  await using dest = await open(s3);
  assert.equal((await dest.stat("big.bin"))?.size, 200 * MiB);
});
