/**
 * The re-count of `run --validate` on files the real encoders wrote: CSV records with quoted
 * newlines, commas and doubled quotes, Parquet footers of several row groups; and the damaged
 * files it must refuse (a cut CSV record, an open quote, a Parquet file without its footer).
 */
import assert from "node:assert/strict";
import { DataIntegrityError } from "../core/errors.ts";
import type { Format } from "../core/format.ts";
import { batchOf, int64Col, memorySink, utf8Col } from "./_test_batches.ts";
import { createFormat } from "./create_format.ts";

const rows = (n: number, from = 0) =>
  batchOf([
    int64Col("id", Array.from({ length: n }, (_, i) => BigInt(from + i))),
    utf8Col(
      "note",
      Array.from({ length: n }, (_, i) => i % 3 === 0 ? `two\nlines, "q" ${i}` : i % 3 ? null : ""),
    ),
  ]);

/** Encodes batches of `sizes` rows and returns the file's bytes, in the chunks the sink got. */
async function encode(format: Format, sizes: number[]): Promise<Uint8Array[]> {
  const mem = memorySink();
  let from = 0;
  const first = rows(sizes[0]!);
  const encoder = format.createEncoder(first.schema, mem.sink);
  for (const n of sizes) {
    await encoder.write(rows(n, from));
    from += n;
  }
  await encoder.close();
  return mem.chunks;
}

function recount(format: Format, chunks: readonly Uint8Array[]): number {
  const r = format.rowRecounter!();
  for (const c of chunks) r.observe(c);
  return r.rows();
}

/** Splits the bytes into single bytes: the counters must not depend on chunk boundaries. */
function byteByByte(chunks: readonly Uint8Array[]): Uint8Array[] {
  return chunks.flatMap((c) => Array.from(c, (b) => Uint8Array.of(b)));
}

Deno.test("CSV: records are counted from the bytes, quoted newlines and all", async () => {
  const csv = await createFormat({ kind: "csv", compression: "none" });
  const chunks = await encode(csv, [7, 1, 12]);
  assert.equal(recount(csv, chunks), 20);
  assert.equal(recount(csv, byteByByte(chunks)), 20);
  const text = new TextDecoder().decode(chunks.reduce((a, c) => new Uint8Array([...a, ...c])));
  assert.ok(text.includes('"two\nlines, ""q"" 0"'), "the fixture really has quoted newlines");
  // One stray record more is seen as such.
  assert.equal(recount(csv, [...chunks, new TextEncoder().encode("tampered\n")]), 21);
});

Deno.test("CSV: a cut record or an open quote is refused", async () => {
  const csv = await createFormat({ kind: "csv", compression: "none" });
  const whole = (await encode(csv, [5])).reduce((a, c) => new Uint8Array([...a, ...c]));
  assert.throws(() => recount(csv, [whole.subarray(0, whole.length - 1)]), DataIntegrityError);
  const quoteOpen = whole.subarray(0, whole.indexOf(0x0a, whole.indexOf(0x22)) + 1);
  assert.throws(() => recount(csv, [quoteOpen]), /does not end with a complete record/);
  assert.throws(() => recount(csv, []), DataIntegrityError);
});

Deno.test("Parquet: num_rows is read from the footer of a file of several row groups", async () => {
  const parquet = await createFormat({
    kind: "parquet",
    compression: "zstd",
    parquet: { rowGroupStrategy: "fixed_rows", rowGroupRows: 4, targetRowGroupMb: 128 },
  });
  const chunks = await encode(parquet, [3, 9, 5]);
  assert.equal(recount(parquet, chunks), 17);
  assert.equal(recount(parquet, byteByByte(chunks)), 17);
});

Deno.test("Parquet: a file without its footer, or with bytes after it, is refused", async () => {
  const parquet = await createFormat({ kind: "parquet", compression: "none" });
  const whole = (await encode(parquet, [6])).reduce((a, c) => new Uint8Array([...a, ...c]));
  assert.throws(
    () => recount(parquet, [whole.subarray(0, whole.length - 3)]),
    /cannot be re-read: it does not end with the Parquet magic/,
  );
  assert.throws(
    () => recount(parquet, [whole, new TextEncoder().encode("tampered\n")]),
    DataIntegrityError,
  );
  // The length before the magic claims more bytes than the file has.
  const bent = whole.slice();
  new DataView(bent.buffer).setUint32(bent.length - 8, bent.length, true);
  assert.throws(() => recount(parquet, [bent]), /footer is not all there/);
});
