import assert from "node:assert/strict";
import { parquetMetadata, parquetReadObjects } from "hyparquet";
import { compressors } from "hyparquet-compressors";
import { exactParsers } from "../../tests/_helpers/parquet_oracle.ts";
import {
  batchOf,
  binaryCol,
  int32Col,
  int64Col,
  memorySink,
  utf8Col,
  uuidCol,
} from "./_test_batches.ts";
import { DICTIONARY_PAGE_BYTES } from "./_dictionary.ts";
import { createParquetFormat } from "./parquet.ts";

// deno-lint-ignore no-explicit-any
type Meta = any;

const ROWS = 3_000;
const uuidOf = (v: number) => `00000000-0000-4000-8000-${v.toString(16).padStart(12, "0")}`;
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** Row `i` of batch `b`: low-cardinality columns with NULLs, a unique key, a note that changes. */
function rowsOf(b: number) {
  const ids = Array.from({ length: ROWS }, (_, i) => b * ROWS + i);
  return {
    id: ids.map((i) => BigInt(i)),
    status: ids.map((
      i,
    ) => (i % 11 === 0 ? null : ["new", "paid", "shipped", "void", "held"][i % 5]!)),
    flag: ids.map((i) => (i % 13 === 0 ? null : Uint8Array.of(i % 3, 0xff))),
    customer: ids.map((i) => (i % 17 === 0 ? null : uuidOf((i * 7919) % 300))),
    qty: ids.map((i) => (i % 19 === 0 ? null : i % 9)),
    // Batch 0 repeats four notes (so the dictionary is chosen); later batches are all distinct
    // and long, more than the dictionary page limit holds: the chunk falls back to plain.
    note: ids.map((i) =>
      i % 23 === 0 ? null : b === 0 ? `note ${i % 4}` : `${i} `.padEnd(1200, String(i % 10))
    ),
  };
}

function batchFor(b: number) {
  const r = rowsOf(b);
  const keys = [int64Col("id", r.id), uuidCol("customer", r.customer)];
  const labels = [utf8Col("status", r.status), binaryCol("flag", r.flag)];
  return batchOf([keys[0]!, ...labels, keys[1]!, int32Col("qty", r.qty), utf8Col("note", r.note)]);
}

Deno.test("parquet dictionary: chosen columns are dictionary-encoded, one falls back mid-chunk, all read back exactly", async () => {
  const batches = [0, 1, 2].map(batchFor);
  // The fallback needs more distinct note bytes than the limit within one column chunk.
  assert.ok(2 * ROWS * 1200 > DICTIONARY_PAGE_BYTES);
  const format = await createParquetFormat({ kind: "parquet", compression: "zstd" });
  const out = memorySink();
  const encoder = format.createEncoder(batches[0]!.schema, out.sink);
  for (const batch of batches) await encoder.write(batch);
  await encoder.close();
  const bytes = out.bytes();
  const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const metadata: Meta = parquetMetadata(file as ArrayBuffer);
  assert.equal(metadata.row_groups.length, 1, "one column chunk per column");

  const chunks: Record<string, Meta> = Object.fromEntries(
    metadata.row_groups[0].columns.map((c: Meta) => [c.meta_data.path_in_schema[0], c.meta_data]),
  );
  const dictionaryPages = (name: string) =>
    chunks[name]!.encodings.includes("RLE_DICTIONARY") ||
    chunks[name]!.encodings.includes("PLAIN_DICTIONARY");
  const decided = Object.keys(chunks).filter(dictionaryPages);
  assert.deepEqual(decided, ["status", "flag", "customer", "qty", "note"]);
  assert.equal(chunks.id!.dictionary_page_offset, undefined, "the unique key stays plain");
  for (const name of decided) assert.ok(chunks[name]!.dictionary_page_offset !== undefined, name);

  // Data pages by encoding: the note chunk starts with dictionary pages and continues plain.
  const dataPages = (name: string) =>
    Object.fromEntries(
      (chunks[name]!.encoding_stats as Meta[])
        .filter((s) => s.page_type === "DATA_PAGE" || s.page_type === "DATA_PAGE_V2")
        .map((s) => [s.encoding, s.count]),
    );
  const note = dataPages("note");
  assert.ok(note.RLE_DICTIONARY > 0 && note.PLAIN > 0, JSON.stringify(note));
  const status = dataPages("status");
  assert.ok(status.RLE_DICTIONARY > 0 && status.PLAIN === undefined, JSON.stringify(status));

  const rows = await parquetReadObjects({
    file: file as ArrayBuffer,
    compressors,
    // deno-lint-ignore no-explicit-any
    parsers: exactParsers as any,
    utf8: false,
  }) as Record<string, unknown>[];
  assert.equal(rows.length, 3 * ROWS);
  const expected = [0, 1, 2].flatMap((b) => {
    const r = rowsOf(b);
    return r.id.map((id, i) => ({
      id,
      status: r.status[i] ?? null,
      flag: r.flag[i] === null ? null : hex(r.flag[i]!),
      customer: r.customer[i] ?? null,
      qty: r.qty[i] ?? null,
      note: r.note[i] ?? null,
    }));
  });
  // Strings come back decoded (the oracle's parsers), binaries as bytes, uuids as text.
  const actual = rows.map((row) => ({
    id: row.id,
    status: row.status ?? null,
    flag: row.flag === null || row.flag === undefined ? null : hex(row.flag as Uint8Array),
    customer: row.customer ?? null,
    qty: row.qty ?? null,
    note: row.note ?? null,
  }));
  assert.deepEqual(actual, expected);
});

Deno.test("parquet dictionary: the same batches give the same bytes", async () => {
  const format = await createParquetFormat({ kind: "parquet", compression: "zstd" });
  const write = async () => {
    const out = memorySink();
    const encoder = format.createEncoder(batchFor(0).schema, out.sink);
    for (const b of [0, 1]) await encoder.write(batchFor(b));
    await encoder.close();
    return out.bytes();
  };
  assert.deepEqual(await write(), await write());
});
