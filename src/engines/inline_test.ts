import assert from "node:assert/strict";
import type { ExportSpec, FormatSpec } from "../core/spec.ts";
import { parquetLevelNotApplied } from "./inline.ts";

const withFormat = (format: FormatSpec) => ({ name: "orders", format }) as unknown as ExportSpec;

Deno.test("parquetLevelNotApplied warns only for a level the Parquet encoder cannot apply", () => {
  assert.match(
    parquetLevelNotApplied(
      withFormat({ kind: "parquet", compression: "zstd", compressionLevel: 9 }),
    )!,
    /zstd level 9 is not applied.*level 1/,
  );
  assert.equal(
    parquetLevelNotApplied(
      withFormat({ kind: "parquet", compression: "zstd", compressionLevel: 1 }),
    ),
    undefined,
  );
  assert.equal(
    parquetLevelNotApplied(withFormat({ kind: "parquet", compression: "zstd" })),
    undefined,
  );
  assert.equal(
    parquetLevelNotApplied(withFormat({ kind: "parquet", compression: "snappy" })),
    undefined,
  );
  assert.equal(parquetLevelNotApplied(withFormat({ kind: "csv", compression: "none" })), undefined);
});
