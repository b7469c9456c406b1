import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { ByteScanner } from "./_csv_scan.ts";

/** The byte-by-byte answer the word-at-a-time scanner must give. */
function naive(bytes: Uint8Array, from: number, to: number, set: number[]): number {
  for (let k = from; k < to; k++) if (set.includes(bytes[k]!)) return k;
  return to;
}

Deno.test("ByteScanner finds the first special byte and quote at every alignment", () => {
  let seed = 7;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  // Mostly letters, some specials, and bytes one off from each special (0x2b, 0x2d, 0x21, 0x23,
  // 0x09, 0x0b, 0x0c, 0x0e) and high bytes, which a wrong bit trick would report.
  const alphabet = [0x61, 0x62, 0x20, 0x2b, 0x2d, 0x21, 0x23, 0x09, 0x0b, 0x0c, 0x0e, 0xac, 0xa2];
  const specials = [0x2c, 0x22, 0x0a, 0x0d];
  const backing = new Uint8Array(4096 + 3);
  for (let shift = 0; shift < 4; shift++) {
    const bytes = backing.subarray(shift, shift + 4096);
    for (let trial = 0; trial < 300; trial++) {
      for (let i = 0; i < bytes.length; i++) {
        bytes[i] = rnd(40) === 0 ? specials[rnd(4)]! : alphabet[rnd(alphabet.length)]!;
      }
      const scan = new ByteScanner(bytes);
      const from = rnd(200), to = from + rnd(300);
      assertEquals(scan.firstSpecial(from, to), naive(bytes, from, to, specials));
      assertEquals(scan.firstQuote(from, to), naive(bytes, from, to, [0x22]));
    }
  }
});

Deno.test("ByteScanner reports none in an empty range and in a range without specials", () => {
  const bytes = new TextEncoder().encode("plain text without any of them, then a comma");
  const scan = new ByteScanner(bytes);
  assertEquals(scan.firstSpecial(3, 3), 3);
  assertEquals(scan.firstSpecial(0, 30), 30);
  assertEquals(scan.firstSpecial(0, bytes.length), 30);
  assertEquals(scan.firstQuote(0, bytes.length), bytes.length);
});
