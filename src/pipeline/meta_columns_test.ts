import assert from "node:assert/strict";
import { Field, Int32, List, Struct, Utf8 } from "../core/arrow.ts";
import { RivetError } from "../core/errors.ts";
import type { ColumnInfo } from "../core/source.ts";
import type { ExportSpec } from "../core/spec.ts";
import { withMetaColumns } from "./meta_columns.ts";
import { statsCollectorFor } from "./quality.ts";

const both = { name: "o", metaColumns: { exportedAt: true, rowHash: true } };
const col = (name: string, arrowType: ColumnInfo["arrowType"]): ColumnInfo => ({
  name,
  nativeType: "t",
  arrowType,
  fidelity: "exact",
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof RivetError) return `${error.code}: ${error.message}`;
    throw error;
  }
  return undefined;
}

Deno.test("withMetaColumns appends exported_at then row_hash after the source columns", () => {
  const out = withMetaColumns(both, [col("id", new Int32())]);
  assert.deepEqual(out.map((c) => c.name), ["id", "_rivet_exported_at", "_rivet_row_hash"]);
  assert.equal(String(out[1]!.arrowType), "Timestamp<MICROSECOND, UTC>");
  assert.equal(String(out[2]!.arrowType), "Int64");
  const hashOnly = withMetaColumns(
    { ...both, metaColumns: { exportedAt: false, rowHash: true } },
    [],
  );
  assert.deepEqual(hashOnly.map((c) => c.name), ["_rivet_row_hash"]);
});

Deno.test("a taken name or a type with no canonical rendering is refused before any read", async () => {
  assert.match(
    codeOf(() => withMetaColumns(both, [col("_rivet_exported_at", new Utf8())]))!,
    /^meta\.column_taken: export 'o': the result already has a column named '_rivet_exported_at'/,
  );
  const nested = col("s", new Struct([new Field("a", new Int32())]));
  assert.match(
    codeOf(() => withMetaColumns(both, [col("id", new Int32()), nested]))!,
    /^meta\.row_hash_type: export 'o': column 's' has Arrow type .*meta_columns\.row_hash cannot/,
  );
  // A list of a renderable type is fine; a list of structs is not.
  withMetaColumns(both, [col("l", new List(new Field("item", new Int32())))]);
  assert.ok(
    codeOf(() => withMetaColumns(both, [col("l", new List(new Field("item", nested.arrowType!)))])),
  );
  // Without row_hash the type does not matter.
  withMetaColumns({ ...both, metaColumns: { exportedAt: true, rowHash: false } }, [nested]);
  // unique_columns renders its columns the same way.
  const spec = { name: "o", quality: { uniqueColumns: ["s"] }, shapeDriftWarnFactor: 0 };
  const collector = (await statsCollectorFor(spec as unknown as ExportSpec))!;
  assert.match(
    codeOf(() => collector.columns([nested]))!,
    /^meta\.row_hash_type: .*quality\.unique_columns cannot render/,
  );
});
