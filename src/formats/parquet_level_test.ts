import assert from "node:assert/strict";
import { parquetLevelNotApplied } from "./parquet.ts";

Deno.test("parquetLevelNotApplied warns only for a level the Parquet encoder cannot apply", () => {
  assert.match(
    parquetLevelNotApplied({ kind: "parquet", compression: "zstd", compressionLevel: 9 })!,
    /zstd level 9 is not applied.*level 1/,
  );
  assert.equal(
    parquetLevelNotApplied({ kind: "parquet", compression: "zstd", compressionLevel: 1 }),
    undefined,
  );
  assert.equal(parquetLevelNotApplied({ kind: "parquet", compression: "zstd" }), undefined);
  assert.equal(parquetLevelNotApplied({ kind: "parquet", compression: "snappy" }), undefined);
  assert.equal(parquetLevelNotApplied({ kind: "csv", compression: "none" }), undefined);
});
