/**
 * Unit tests of the binlog reader's pure parts: packed DECIMAL to text, STRING column metadata,
 * ENUM/SET members, position order, the CRC32 of event trailers.
 */
import assert from "node:assert/strict";
import { crc32, rowsEventOp, stringMeta } from "./_binlog_events.ts";
import { decimalBytes, decimalText } from "./_binlog_rows.ts";
import { comparePositions, membersOf } from "./_binlog_setup.ts";

/** MySQL's `decimal2bin` for a value given as text: the reference encoder, written out. */
function packDecimal(text: string, precision: number, scale: number): Uint8Array {
  const negative = text.startsWith("-");
  const [intPart = "", frac = ""] = text.replace("-", "").split(".");
  const intg = precision - scale;
  const dig2bytes = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
  const out: number[] = [];
  const push = (digits: string, n: number) => {
    let v = Number(digits || "0");
    const bytes: number[] = [];
    for (let i = 0; i < n; i++) {
      bytes.unshift(v % 256);
      v = Math.floor(v / 256);
    }
    out.push(...bytes);
  };
  const ip = intPart.padStart(intg, "0");
  const lead = intg % 9;
  if (lead > 0) push(ip.slice(0, lead), dig2bytes[lead]!);
  for (let i = lead; i < intg; i += 9) push(ip.slice(i, i + 9), 4);
  const fp = frac.padEnd(scale, "0");
  const full = Math.floor(scale / 9) * 9;
  for (let i = 0; i < full; i += 9) push(fp.slice(i, i + 9), 4);
  if (scale % 9 > 0) push(fp.slice(full), dig2bytes[scale % 9]!);
  const bytes = Uint8Array.from(out);
  if (negative) { for (let i = 0; i < bytes.length; i++) bytes[i] = ~bytes[i]! & 0xff; }
  bytes[0]! ^= 0x80;
  return bytes;
}

Deno.test("decimalText reads MySQL's packed DECIMAL in every group layout", () => {
  const cases: [string, number, number][] = [
    ["123.45", 5, 2],
    ["-123.45", 5, 2],
    ["0.00", 5, 2],
    ["-0.01", 12, 2],
    ["1234567890.12", 12, 2],
    ["1234567890123456789012345678.0123456789", 38, 10],
    ["-9999999999999999999999999999.9999999999", 38, 10],
    ["-999999999999999999", 18, 0],
    ["0.000000001", 20, 9],
    ["7", 1, 0],
  ];
  for (const [text, p, s] of cases) {
    const packed = packDecimal(text, p, s);
    assert.equal(packed.length, decimalBytes(p, s), `${text} size`);
    assert.equal(decimalText(packed, 0, p, s), text);
  }
});

Deno.test("stringMeta: CHAR lengths above 255 borrow bits of the type byte", () => {
  // CHAR(10) utf8mb4 = 40 bytes: type 254, length 40.
  assert.deepEqual(stringMeta((254 << 8) | 40), { type: 254, length: 40 });
  // CHAR(255) utf8mb4 = 1020 bytes = 0x3fc: high bits 0x300 stored inverted in bits 4-5.
  const b0 = 254 ^ ((0x3fc >> 4) & 0x30);
  assert.deepEqual(stringMeta((b0 << 8) | 0xfc), { type: 254, length: 1020 });
  assert.deepEqual(stringMeta((247 << 8) | 1), { type: 247, length: 1 });
  assert.deepEqual(stringMeta((248 << 8) | 8), { type: 248, length: 8 });
});

Deno.test("membersOf reads ENUM/SET members with quotes and commas", () => {
  assert.deepEqual(membersOf("enum('a','it''s','ü','x,y')"), ["a", "it's", "ü", "x,y"]);
  assert.deepEqual(membersOf("set('')"), [""]);
});

Deno.test("comparePositions orders by file number, then offset", () => {
  assert.ok(comparePositions({ file: "b.000010", pos: 4 }, { file: "b.000009", pos: 99 }) > 0);
  assert.ok(comparePositions({ file: "b.000010", pos: 4 }, { file: "b.000010", pos: 5 }) < 0);
  assert.equal(comparePositions({ file: "b.000010", pos: 5 }, { file: "b.000010", pos: 5 }), 0);
});

Deno.test("crc32 and rowsEventOp", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789"), 0, 9), 0xcbf43926);
  assert.deepEqual([23, 24, 25, 30, 31, 32, 166, 167, 168, 169, 170, 171].map(rowsEventOp), [
    0,
    1,
    2,
    0,
    1,
    2,
    0,
    1,
    2,
    0,
    1,
    2,
  ]);
  assert.equal(rowsEventOp(19), undefined);
});
