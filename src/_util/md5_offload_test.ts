import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createStreamMd5, MAX_IN_FLIGHT_BYTES } from "./md5_offload.ts";

function content(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 2654435761) >>> 24;
  return bytes;
}

const reference = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("base64");

Deno.test("the streamed MD5 equals a one-shot MD5, hashed in place and on a worker", async () => {
  const data = content(3 * MAX_IN_FLIGHT_BYTES + 12_345);
  for (const offloadBytes of [Infinity, 0, 5_000_001]) {
    const md5 = await createStreamMd5({ offloadBytes });
    // Uneven chunks, each a view into the larger buffer (only the view's bytes may be hashed),
    // and the caller overwrites nothing: chunks are recycled copies on the worker side.
    for (let at = 0, step = 1; at < data.length; at += step, step = (step * 7 + 13) % 3_000_000) {
      await md5.update(data.subarray(at, Math.min(data.length, at + step)));
    }
    assert.equal(await md5.digest(), reference(data), `offloadBytes ${offloadBytes}`);
  }
});

Deno.test("the streamed MD5 of nothing and of a reused caller buffer", async () => {
  assert.equal(
    await (await createStreamMd5({ offloadBytes: 0 })).digest(),
    reference(new Uint8Array()),
  );
  // The caller refills one buffer between updates: the worker must have hashed a copy.
  const md5 = await createStreamMd5({ offloadBytes: 0 });
  const buffer = new Uint8Array(1 << 20);
  const all: Uint8Array[] = [];
  for (let round = 0; round < 40; round++) {
    buffer.fill(round);
    all.push(buffer.slice());
    await md5.update(buffer);
  }
  const joined = new Uint8Array(40 << 20);
  all.forEach((chunk, i) => joined.set(chunk, i << 20));
  assert.equal(await md5.digest(), reference(joined));
});

Deno.test("a process whose streamed MD5 was abandoned or finished still exits by itself", async () => {
  // A live worker keeps a Deno process running, so a leaked one shows as a process that never
  // ends: the child is given 30 s.
  const dir = await Deno.makeTempDir({ prefix: "rivet_md5_" });
  try {
    const script = `${dir}/leak.ts`;
    await Deno.writeTextFile(
      script,
      `import { createStreamMd5 } from ${JSON.stringify(import.meta.resolve("./md5_offload.ts"))};
const abandoned = await createStreamMd5({ offloadBytes: 0 });
await abandoned.update(new Uint8Array(1 << 20));
abandoned.dispose();
abandoned.dispose();
// Abandoned while its worker is still starting.
const racing = await createStreamMd5({ offloadBytes: 0 });
const pending = racing.update(new Uint8Array(1 << 20));
racing.dispose();
await pending;
const finished = await createStreamMd5({ offloadBytes: 0 });
await finished.update(new Uint8Array(1 << 20));
console.log(await finished.digest());
`,
    );
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const out = await child.output();
    clearTimeout(timer);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(new TextDecoder().decode(out.stdout).trim(), reference(new Uint8Array(1 << 20)));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
