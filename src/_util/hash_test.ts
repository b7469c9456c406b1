import assert from "node:assert/strict";
import { createMd5, createXxh3, toBase64, xxh3Hex } from "./hash.ts";

const text = (s: string) => new TextEncoder().encode(s);

Deno.test("xxh3Hex matches the published xxh3-64 vectors", async () => {
  assert.equal(await xxh3Hex(new Uint8Array()), "2d06800538d394c2");
  assert.equal(await xxh3Hex(text("a")), "e6c632b61e964e1f");
  assert.equal(await xxh3Hex(text("abc")), "78af5f94892f3950");
});

Deno.test("createXxh3 gives the same digest however the input is split", async () => {
  // 1 MiB crosses every xxh3 code path (short, mid, long with stripes and blocks).
  const data = new Uint8Array(1 << 20);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  const whole = await xxh3Hex(data);
  const hasher = await createXxh3();
  for (let at = 0, step = 1; at < data.length; at += step, step = step * 3 + 7) {
    hasher.update(data.subarray(at, Math.min(data.length, at + step)));
  }
  const split = hasher.digest();
  assert.equal(split, whole);
  assert.match(split, /^[0-9a-f]{16}$/);
  assert.notEqual(whole, await xxh3Hex(data.subarray(1)));
});

Deno.test("createMd5 gives base64 digests of the RFC 1321 vectors", async () => {
  const empty = await createMd5();
  assert.equal(empty.digest(), "1B2M2Y8AsgTpgAmY7PhCfg==");
  const abc = await createMd5();
  abc.update(text("a"));
  abc.update(text("bc"));
  // 900150983cd24fb0d6963f7d28e17f72
  assert.equal(abc.digest(), "kAFQmDzST7DWlj99KOF/cg==");
});

Deno.test("a hasher refuses updates after its digest", async () => {
  const hasher = await createXxh3();
  hasher.digest();
  assert.throws(() => hasher.update(text("late")), /after digest/);
  assert.throws(() => hasher.digest(), /twice/);
});

Deno.test("toBase64 agrees with btoa over every byte value", () => {
  const bytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  assert.equal(toBase64(bytes), btoa(String.fromCharCode(...bytes)));
  assert.equal(toBase64(new Uint8Array([0xfb, 0xff])), "+/8=");
});
