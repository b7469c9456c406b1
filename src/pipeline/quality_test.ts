import assert from "node:assert/strict";
import { Field, Int32, makeData, RecordBatch, Schema, Struct, Utf8 } from "../core/arrow.ts";
import { DataIntegrityError } from "../core/errors.ts";
import type { ExportSpec } from "../core/spec.ts";
import {
  enforceQuality,
  enforceRunQuality,
  judgeQuality,
  mergeStats,
  statsCollectorFor,
} from "./quality.ts";

function batch(ids: (number | null)[], names: string[]): RecordBatch {
  const rows = ids.length;
  const bits = new Uint8Array((rows + 7) >> 3).fill(0xff);
  ids.forEach((v, i) => v === null && (bits[i >> 3]! &= ~(1 << (i & 7))));
  const enc = names.map((n) => new TextEncoder().encode(n));
  const offsets = new Int32Array(rows + 1);
  enc.forEach((b, i) => (offsets[i + 1] = offsets[i]! + b.length));
  const bytes = new Uint8Array(offsets[rows]!);
  enc.forEach((b, i) => bytes.set(b, offsets[i]!));
  const fields = [new Field("id", new Int32(), true), new Field("name", new Utf8())];
  const children = [
    makeData({
      type: new Int32(),
      length: rows,
      data: Int32Array.from(ids, (v) => v ?? 0),
      nullBitmap: bits,
    }),
    makeData({ type: new Utf8(), length: rows, valueOffsets: offsets, data: bytes }),
  ];
  return new RecordBatch(
    new Schema(fields),
    makeData({ type: new Struct(fields), length: rows, nullCount: 0, children }),
  );
}

const spec = (quality: ExportSpec["quality"], factor = 0) =>
  ({ name: "o", mode: "full", quality, shapeDriftWarnFactor: factor }) as ExportSpec;

Deno.test("stats: NULL counts from the bitmap, unique sets ignore NULLs, longest values", async () => {
  const c = (await statsCollectorFor(
    spec({ nullRatioMax: { id: 0.1 }, uniqueColumns: ["id", "name"] }, 2),
  ))!;
  c.columns([
    { name: "id", nativeType: "int4", arrowType: new Int32(), fidelity: "exact" },
    { name: "name", nativeType: "text", arrowType: new Utf8(), fidelity: "exact" },
  ]);
  c.observe(batch([1, null, 2, null], ["a", "bb", "a", "cccc"]));
  const s = c.result();
  assert.equal(s.rows, 4);
  assert.equal(s.nulls.id, 2);
  assert.equal(s.unique.id!.nonNull, 2);
  assert.equal(s.unique.id!.size, 2);
  assert.equal(s.unique.name!.nonNull - s.unique.name!.size, 1);
  assert.deepEqual(s.maxBytes, { name: 4 });
  const v = judgeQuality({ nullRatioMax: { id: 0.1 }, uniqueColumns: ["id", "name"] }, s);
  assert.equal(v.failures.length, 2);
  assert.match(v.failures[0]!, /2 of 4 rows are NULL/);
  assert.match(v.failures[1]!, /'name': 1 duplicate/);
});

Deno.test("stats: chunks merge their unique sets, so a value in two chunks is a duplicate", async () => {
  const quality = { uniqueColumns: ["id"] };
  const one = (await statsCollectorFor(spec(quality)))!;
  one.observe(batch([1, 2, 3], ["a", "b", "c"]));
  const two = (await statsCollectorFor(spec(quality)))!;
  two.observe(batch([4, 3], ["d", "e"]));
  // Through structured clone, as a worker's unit result travels.
  const merged = mergeStats(
    structuredClone(one.result()),
    structuredClone(two.result()),
    undefined,
  );
  assert.equal(merged.rows, 5);
  assert.match(judgeQuality(quality, merged).failures[0]!, /1 duplicate value\(s\) among 5/);
  // Many distinct values grow the table without false duplicates.
  const big = (await statsCollectorFor(spec(quality)))!;
  const ids = Array.from({ length: 5000 }, (_, i) => i);
  big.observe(batch(ids, ids.map(String)));
  assert.deepEqual(judgeQuality(quality, big.result()).failures, []);
});

Deno.test("unique_max_entries caps tracking with a warning, not a failure", async () => {
  const quality = { uniqueColumns: ["id"], uniqueMaxEntries: 2 };
  const c = (await statsCollectorFor(spec(quality)))!;
  c.observe(batch([1, 2, 3, 3], ["a", "b", "c", "d"]));
  const warnings: string[] = [];
  enforceQuality(spec(quality), c.result(), (m) => warnings.push(m));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /reached unique_max_entries \(2\)/);
});

Deno.test("enforceQuality throws quality.failed with one line per failed check", () => {
  const stats = { rows: 0, nulls: {}, unique: {}, absent: ["x"], maxBytes: {} };
  assert.throws(
    () => enforceQuality(spec({ rowCountMin: 1, uniqueColumns: ["x"] }), stats, () => {}),
    (e: unknown) =>
      e instanceof DataIntegrityError && e.code === "quality.failed" && e.exitCode === 3 &&
      /2 quality check\(s\) failed:\n {2}- row count 0 is below row_count_min 1\n {2}- unique_columns: column 'x' is not in the output/
        .test(e.message),
  );
});

Deno.test("a resumed chunked run counts earlier rows and fails closed on value rules", () => {
  const stats = { rows: 2, nulls: {}, unique: {}, absent: [], maxBytes: {} };
  const run = {
    files: [{ path: "b" }],
    priorParts: [{ fileName: "a", rowCount: 5 }, { fileName: "b", rowCount: 2 }],
  };
  assert.throws(
    () => enforceRunQuality(spec({ rowCountMax: 6 }), stats, () => {}, run),
    /row count 7 is above row_count_max 6/,
  );
  enforceRunQuality(spec({ rowCountMax: 7 }), stats, () => {}, run);
  assert.throws(
    () => enforceRunQuality(spec({ uniqueColumns: ["id"] }), stats, () => {}, run),
    /cannot be judged: 1 file\(s\) of this run were exported by an earlier invocation/,
  );
});
