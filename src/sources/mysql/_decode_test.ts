import assert from "node:assert/strict";
import {
  daysFromCivil,
  DecimalStatus,
  parseDecimal,
  parseUuidText,
  writeMicros,
} from "./_decode.ts";

const enc = new TextEncoder();

/** Parses with the decoder, returns the 128-bit value as a BigInt (or the failure status). */
function dec(text: string, precision: number, scale: number): bigint | number {
  const out = new Uint32Array(8).fill(0xdeadbeef);
  const bytes = enc.encode(`##${text}#`);
  const s = parseDecimal(bytes, 2, 2 + text.length, { precision, scale, out, at: 4 });
  if (s !== DecimalStatus.Ok) return s;
  assert.equal(out[3], 0xdeadbeef, "writes only its own slot");
  let u = 0n;
  for (let k = 3; k >= 0; k--) u = (u << 32n) | BigInt(out[4 + k]!);
  return BigInt.asIntN(128, u);
}

Deno.test("parseDecimal scales, signs and pads decimal text exactly", () => {
  assert.equal(dec("-1234567890.12", 12, 2), -123456789012n);
  assert.equal(dec("0.001", 10, 3), 1n);
  assert.equal(dec("-0.01", 12, 2), -1n);
  assert.equal(dec("0.00", 12, 2), 0n);
  assert.equal(dec("-0", 5, 0), 0n);
  assert.equal(dec("7", 5, 2), 700n);
  assert.equal(dec("1.5", 5, 3), 1500n);
});

Deno.test("parseDecimal keeps all 38 digits beyond the float range", () => {
  const max = "9999999999999999999999999999.9999999999";
  assert.equal(dec(max, 38, 10), 10n ** 38n - 1n);
  assert.equal(dec(`-${max}`, 38, 10), -(10n ** 38n - 1n));
  assert.equal(
    dec("1234567890123456789012345678.0123456789", 38, 10),
    12345678901234567890123456780123456789n,
  );
  assert.equal(dec("9007199254740993", 20, 0), 9007199254740993n);
});

Deno.test("parseDecimal is exact on both sides of the 2^32 and 2^53 word boundaries", () => {
  for (
    const v of [4294967295n, 4294967296n, 4294967297n, 9007199254740991n, 9007199254740992n]
  ) {
    assert.equal(dec(String(v), 20, 0), v);
    assert.equal(dec(`-${v}`, 20, 0), -v);
  }
  // A large value then a small one: the scratch words of the first must not leak into the next.
  assert.equal(dec("-123456789012345678901234567890", 38, 0), -123456789012345678901234567890n);
  assert.equal(dec("-42.5", 38, 1), -425n);
});

Deno.test("parseDecimal reports overflow, lost digits and garbage", () => {
  assert.equal(dec("123456", 5, 0), DecimalStatus.Overflow);
  assert.equal(dec("1.25", 5, 1), DecimalStatus.Truncated);
  assert.equal(dec("1.20", 5, 1), 12n);
  assert.equal(dec("1.2.3", 5, 1), DecimalStatus.Invalid);
  assert.equal(dec("abc", 5, 1), DecimalStatus.Invalid);
  assert.equal(dec("", 5, 1), DecimalStatus.Invalid);
});

Deno.test("daysFromCivil matches Date.UTC over the MySQL date range", () => {
  for (
    const [y, m, d] of [[1000, 1, 1], [1969, 12, 31], [1970, 1, 1], [2000, 2, 29], [9999, 12, 31]]
  ) {
    assert.equal(daysFromCivil(y!, m!, d!), Date.UTC(y!, m! - 1, d!) / 86_400_000);
  }
});

Deno.test("writeMicros is exact on both sides of the 2^53 fast path", () => {
  const cases: [number, number][] = [
    [0, 0],
    [-1, 1],
    [1_700_000_000, 123_456],
    [253_402_300_799, 999_999], // 9999-12-31 23:59:59.999999
    [-30_610_224_000, 0], // 1000-01-01
    [-30_610_224_000, 1],
  ];
  for (const [s, us] of cases) {
    const out = new Int32Array(2);
    writeMicros(s, us, out, 0);
    const got = (BigInt(out[1]!) << 32n) | BigInt(out[0]! >>> 0);
    assert.equal(got, BigInt(s) * 1_000_000n + BigInt(us), `${s}.${us}`);
  }
});

Deno.test("parseUuidText accepts hyphenated and bare hex, refuses anything else", () => {
  const out = new Uint8Array(16);
  const t = enc.encode("123e4567-e89b-12d3-a456-426614174000");
  assert.ok(parseUuidText(t, 0, t.length, out, 0));
  assert.equal(out[0], 0x12);
  assert.equal(out[15], 0x00);
  const bare = enc.encode("00112233445566778899aabbccddeeff");
  assert.ok(parseUuidText(bare, 0, bare.length, out, 0));
  assert.equal(out[15], 0xff);
  for (const bad of ["not-a-uuid", "00112233", "00112233445566778899aabbccddeeff00"]) {
    const b = enc.encode(bad);
    assert.equal(parseUuidText(b, 0, b.length, out, 0), false, bad);
  }
});
