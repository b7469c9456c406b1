import assert from "node:assert/strict";
import { decodeNumeric, intervalToIso, NumericStatus, parseUuidText } from "./_decode.ts";

/** Encodes a decimal string as PostgreSQL's binary numeric (independent of the decoder). */
function pgNumeric(text: string): DataView {
  const neg = text.startsWith("-");
  const [ip, fp = ""] = (neg ? text.slice(1) : text).split(".");
  const intPart = ip!.replace(/^0+/, "");
  const padInt = intPart.padStart(Math.ceil(intPart.length / 4) * 4, "0");
  const padFrac = fp.padEnd(Math.ceil(fp.length / 4) * 4, "0");
  const groups: number[] = [];
  for (let i = 0; i < padInt.length; i += 4) groups.push(Number(padInt.slice(i, i + 4)));
  const intGroups = groups.length;
  for (let i = 0; i < padFrac.length; i += 4) groups.push(Number(padFrac.slice(i, i + 4)));
  let weight = intGroups - 1;
  while (groups.length && groups[0] === 0) {
    groups.shift();
    weight--;
  }
  while (groups.length && groups[groups.length - 1] === 0) groups.pop();
  const bytes = new Uint8Array(8 + 2 * groups.length);
  const v = new DataView(bytes.buffer);
  v.setInt16(0, groups.length);
  v.setInt16(2, groups.length ? weight : 0);
  v.setUint16(4, neg ? 0x4000 : 0);
  v.setInt16(6, fp.length);
  groups.forEach((g, i) => v.setInt16(8 + 2 * i, g));
  return v;
}

function special(sign: number): DataView {
  const v = new DataView(new ArrayBuffer(8));
  v.setUint16(4, sign);
  return v;
}

function words128(out: Uint32Array): bigint {
  const u = BigInt(out[0]!) | (BigInt(out[1]!) << 32n) | (BigInt(out[2]!) << 64n) |
    (BigInt(out[3]!) << 96n);
  return BigInt.asIntN(128, u);
}

function decode(text: string, precision: number, scale: number): bigint | number {
  const out = new Uint32Array(4);
  const status = decodeNumeric(pgNumeric(text), 0, { precision, scale, out, at: 0 });
  return status === NumericStatus.Ok ? words128(out) : status;
}

Deno.test("decodeNumeric gives the exact unscaled integer for numeric(12,2) values", () => {
  assert.equal(decode("0", 12, 2), 0n);
  assert.equal(decode("12.34", 12, 2), 1234n);
  assert.equal(decode("-12.34", 12, 2), -1234n);
  assert.equal(decode("9999999999.99", 12, 2), 999999999999n);
  assert.equal(decode("-9999999999.99", 12, 2), -999999999999n);
  assert.equal(decode("0.01", 12, 2), 1n);
  assert.equal(decode("-0.01", 12, 2), -1n);
  assert.equal(decode("10000", 12, 2), 1000000n);
});

Deno.test("decodeNumeric handles 38-digit values beyond 2^53 without floats", () => {
  const max = "9".repeat(29) + "." + "9".repeat(9);
  assert.equal(decode(max, 38, 9), BigInt("9".repeat(38)));
  assert.equal(decode("-" + max, 38, 9), -BigInt("9".repeat(38)));
  assert.equal(decode("12345678901234567890.123456789", 38, 9), 12345678901234567890123456789n);
  assert.equal(decode("0.000000001", 38, 9), 1n);
  assert.equal(decode("9007199254740993", 38, 0), 9007199254740993n);
});

Deno.test("decodeNumeric rounds extra fractional digits half away from zero", () => {
  assert.equal(decode("1.005", 10, 2), 101n);
  assert.equal(decode("1.004999", 10, 2), 100n);
  assert.equal(decode("-1.005", 10, 2), -101n);
  assert.equal(decode("2.5", 10, 0), 3n);
  assert.equal(decode("0.00005", 10, 4), 1n);
  assert.equal(decode("0.00004999", 10, 4), 0n);
  assert.equal(decode("123.45678", 38, 3), 123457n);
});

Deno.test("decodeNumeric reports NaN, infinities and precision overflow", () => {
  const out = new Uint32Array(4);
  for (const sign of [0xc000, 0xd000, 0xf000]) {
    assert.equal(
      decodeNumeric(special(sign), 0, { precision: 10, scale: 2, out, at: 0 }),
      NumericStatus.NotFinite,
    );
  }
  assert.equal(decode("1000", 5, 2), NumericStatus.Overflow);
  assert.equal(decode("1" + "0".repeat(30), 38, 9), NumericStatus.Overflow);
});

Deno.test("decodeNumeric writes at the given slot of a multi-value buffer", () => {
  const out = new Uint32Array(12);
  decodeNumeric(pgNumeric("-3"), 0, { precision: 5, scale: 0, out, at: 2 });
  assert.deepEqual([...out.subarray(8)], [0xfffffffd, 0xffffffff, 0xffffffff, 0xffffffff]);
  assert.deepEqual([...out.subarray(0, 8)], [0, 0, 0, 0, 0, 0, 0, 0]);
});

Deno.test("intervalToIso matches PostgreSQL's iso_8601 interval style", () => {
  // Expected strings are what `SET IntervalStyle = iso_8601` makes psql print.
  assert.equal(intervalToIso(0n, 0, 0), "PT0S");
  assert.equal(intervalToIso(14_706_500_000n, 3, 14), "P1Y2M3DT4H5M6.5S");
  assert.equal(intervalToIso(0n, 1, 0), "P1D");
  assert.equal(intervalToIso(1n, 0, 0), "PT0.000001S");
  assert.equal(intervalToIso(-14_706_500_000n, 3, -14), "P-1Y-2M3DT-4H-5M-6.5S");
  assert.equal(intervalToIso(-500_000n, 0, 0), "PT-0.5S");
  assert.equal(intervalToIso(3_600_000_000n * 100000n, 0, 0), "PT100000H");
});

Deno.test("parseUuidText accepts hyphenated and bare hex and rejects anything else", () => {
  const enc = new TextEncoder();
  const out = new Uint8Array(16);
  assert.ok(parseUuidText(enc.encode("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), out, 0));
  assert.equal(out[0], 0xa0);
  assert.equal(out[15], 0x11);
  assert.ok(parseUuidText(enc.encode("A0EEBC999C0B4EF8BB6D6BB9BD380A11"), out, 0));
  assert.ok(!parseUuidText(enc.encode("not-a-uuid"), out, 0));
  assert.ok(!parseUuidText(enc.encode("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"), out, 0));
});
