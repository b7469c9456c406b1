import assert from "node:assert/strict";
import {
  ByteBuffer,
  decimal128ToString,
  formatFloat32,
  formatFloat64,
  putDate,
  putTimestampMicros,
} from "./_bytes.ts";

/** A deterministic pseudo-random generator (xorshift), so failures reproduce. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

function text(write: (out: ByteBuffer) => void): string {
  const out = new ByteBuffer(8);
  write(out);
  return new TextDecoder().decode(out.take());
}

/** Independent reference: scale applied by string surgery on BigInt's own text. */
function decimalReference(v: bigint, scale: number): string {
  const neg = v < 0n;
  let digits = (neg ? -v : v).toString().padStart(scale + 1, "0");
  if (scale > 0) digits = digits.slice(0, -scale) + "." + digits.slice(-scale);
  return (neg ? "-" : "") + digits;
}

Deno.test("decimal128ToString matches BigInt text for random 128-bit values and scales", () => {
  const next = rng(42);
  const words = new Uint32Array(4);
  for (let i = 0; i < 20000; i++) {
    // Mix magnitudes: small (fast path), around 2^53, and full 128-bit.
    const width = [1, 2, 3, 4][i % 4]!;
    for (let k = 0; k < 4; k++) words[k] = k < width ? next() : 0;
    if (i % 3 === 0) { for (let k = width; k < 4; k++) words[k] = 0xffffffff; // negatives
     }
    const v = BigInt.asIntN(
      128,
      BigInt(words[0]!) | BigInt(words[1]!) << 32n | BigInt(words[2]!) << 64n |
        BigInt(words[3]!) << 96n,
    );
    const scale = i % 39;
    assert.equal(decimal128ToString(words, 0, scale), decimalReference(v, scale), `${v} s${scale}`);
  }
});

Deno.test("putTimestampMicros agrees with Date for random instants in years 1 to 9999", () => {
  const next = rng(7);
  const d0 = new Date(0); // Date.UTC maps year 1 to 1901, so set the year explicitly.
  d0.setUTCFullYear(1, 0, 1);
  const lo = d0.getTime();
  const hi = Date.UTC(9999, 11, 31, 23, 59, 59, 999);
  for (let i = 0; i < 20000; i++) {
    const ms = lo + Math.floor((next() / 4294967296) * (hi - lo));
    const us = BigInt(ms) * 1000n + BigInt(next() % 1000);
    const u = BigInt.asUintN(64, us);
    const got = text((out) =>
      putTimestampMicros(out, Number(u & 0xffffffffn), Number(BigInt.asIntN(32, u >> 32n)))
    );
    const iso = new Date(ms).toISOString(); // 0001-01-01T00:00:00.000Z
    const frac = String(((us % 1000000n) + 1000000n) % 1000000n).padStart(6, "0");
    assert.equal(got, `${iso.slice(0, 19)}.${frac}`);
  }
});

Deno.test("putDate signs years outside 0..9999 the way chrono does", () => {
  const dayOf = (y: number, m: number, d: number) => {
    const t = new Date(0);
    t.setUTCFullYear(y, m - 1, d);
    return Math.round(t.getTime() / 86400000);
  };
  assert.equal(text((o) => putDate(o, dayOf(10000, 1, 1))), "+10000-01-01");
  assert.equal(text((o) => putDate(o, dayOf(0, 2, 29))), "0000-02-29");
  assert.equal(text((o) => putDate(o, dayOf(-44, 3, 15))), "-0044-03-15");
  assert.equal(text((o) => putDate(o, dayOf(-4713, 11, 24))), "-4713-11-24");
  assert.equal(text((o) => putDate(o, 2147483647)), "+5881580-07-11");
});

Deno.test("formatFloat64 round-trips and never uses an exponent", () => {
  const next = rng(99);
  const f64 = new Float64Array(1);
  const u32 = new Uint32Array(f64.buffer);
  for (let i = 0; i < 20000; i++) {
    u32[0] = next();
    u32[1] = next();
    const x = f64[0]!;
    const s = formatFloat64(x);
    if (x !== x) {
      assert.equal(s, "NaN");
      continue;
    }
    if (!Number.isFinite(x)) continue;
    assert.ok(/^-?\d+(\.\d+)?$/.test(s), s);
    assert.ok(Object.is(Number(s), x), `${s} != ${x}`);
  }
});

Deno.test("formatFloat32 prints the shortest text that reads back to the same float32", () => {
  const next = rng(5);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let i = 0; i < 20000; i++) {
    u32[0] = next();
    const x = f32[0]!;
    if (!Number.isFinite(x)) continue;
    const s = formatFloat32(x);
    assert.ok(Object.is(Math.fround(Number(s)), x), `${s} != ${x}`);
    // One digit fewer would not read back: shortness.
    const digits = s.replace(/^-?0\.0*|[-.]/g, "").replace(/0+$/, "").length;
    if (digits > 1) {
      const shorter = Number(x.toPrecision(digits - 1));
      assert.ok(!Object.is(Math.fround(shorter), x), `${s} is not shortest`);
    }
  }
  assert.equal(formatFloat32(Math.fround(0.1)), "0.1");
  assert.equal(formatFloat32(Math.fround(16777217)), "16777216");
});
