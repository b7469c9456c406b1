/**
 * `meta_columns`: `_rivet_exported_at` (Timestamp µs UTC, one value per statement: the whole run
 * of a single-query export, one chunk of a chunked one) and `_rivet_row_hash` (Int64, see
 * `row_hash.ts` and docs/row-hash.md), appended after the source columns in that order. They are
 * added where every engine's batches pass (`readStatement`), so inline, worker and subprocess
 * runs write the same columns, and they are part of the columns the schema baseline and the
 * manifest's fingerprint see.
 *
 * Layer: pipeline. Imports core/ and _util/ only.
 *
 * @module
 */
import {
  Field,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  TimestampMicrosecond,
} from "../core/arrow.ts";
import { ConfigError } from "../core/errors.ts";
import type { ColumnInfo } from "../core/source.ts";
import type { ExportSpec } from "../core/spec.ts";
import { assertRenderable, createRowHasher, type RowHasher } from "./row_hash.ts";

/** The column names `meta_columns` adds. */
export const EXPORTED_AT_COLUMN = "_rivet_exported_at";
export const ROW_HASH_COLUMN = "_rivet_row_hash";

/** Appends the meta columns to the batches of one statement. */
export interface MetaColumns {
  /** The result's columns with the meta columns appended; throws when a name is taken. */
  columns(columns: readonly ColumnInfo[]): ColumnInfo[];
  /** The batch with the meta columns appended. */
  apply(batch: RecordBatch): RecordBatch;
}

function metaInfos(spec: Pick<ExportSpec, "metaColumns">): ColumnInfo[] {
  const out: ColumnInfo[] = [];
  if (spec.metaColumns.exportedAt) {
    out.push({
      name: EXPORTED_AT_COLUMN,
      nativeType: "rivet exported_at",
      arrowType: new TimestampMicrosecond("UTC"),
      fidelity: "exact",
    });
  }
  if (spec.metaColumns.rowHash) {
    out.push({
      name: ROW_HASH_COLUMN,
      nativeType: "rivet row_hash",
      arrowType: new Int64(),
      fidelity: "exact",
    });
  }
  return out;
}

/**
 * The result's columns with the export's meta columns appended.
 *
 * @param spec The export (its name and `meta_columns`).
 * @param columns The result's columns.
 * @returns The written columns.
 * @throws {PermanentError} `meta.row_hash_type` when a column's type has no canonical rendering.
 * @throws {ConfigError} `meta.column_taken` when the result already has a meta column's name.
 *
 * @example
 * ```ts
 * import { withMetaColumns } from "./meta_columns.ts";
 * const spec = { name: "o", metaColumns: { exportedAt: true, rowHash: false } };
 * const cols = withMetaColumns(spec, []);
 * if (cols[0]?.name !== "_rivet_exported_at") throw new Error();
 * ```
 */
export function withMetaColumns(
  spec: Pick<ExportSpec, "name" | "metaColumns">,
  columns: readonly ColumnInfo[],
): ColumnInfo[] {
  const extra = metaInfos(spec);
  if (spec.metaColumns.rowHash) assertRenderable(spec.name, columns, "meta_columns.row_hash");
  for (const meta of extra) {
    if (columns.some((c) => c.name === meta.name)) {
      throw new ConfigError(
        `export '${spec.name}': the result already has a column named '${meta.name}', which ` +
          "meta_columns adds",
        {
          code: "meta.column_taken",
          hint: `rename that column in the query (e.g. AS source${meta.name}), or turn off the ` +
            "meta column",
        },
      );
    }
  }
  return [...columns, ...extra];
}

/**
 * The meta columns of one statement, or undefined when the export adds none.
 *
 * @param spec The export.
 * @param exportedAt The value of `_rivet_exported_at` for every row of the statement.
 * @returns The appender.
 */
export async function metaColumnsFor(
  spec: Pick<ExportSpec, "name" | "metaColumns">,
  exportedAt: Date,
): Promise<MetaColumns | undefined> {
  const extra = metaInfos(spec);
  if (extra.length === 0) return undefined;
  const hasher: RowHasher | undefined = spec.metaColumns.rowHash
    ? await createRowHasher()
    : undefined;
  const micros = BigInt(exportedAt.getTime()) * 1000n;
  return {
    columns: (columns) => withMetaColumns(spec, columns),
    apply(batch) {
      const rows = batch.numRows;
      const fields = [...batch.schema.fields];
      const children = [...batch.data.children];
      if (spec.metaColumns.exportedAt) {
        const type = new TimestampMicrosecond("UTC");
        fields.push(new Field(EXPORTED_AT_COLUMN, type, false));
        children.push(makeData({ type, length: rows, data: new BigInt64Array(rows).fill(micros) }));
      }
      if (hasher) {
        // Hashed over the source columns only (the exported_at column is not part of the row).
        const type = new Int64();
        fields.push(new Field(ROW_HASH_COLUMN, type, false));
        children.push(makeData({ type, length: rows, data: hasher(batch) }));
      }
      const schema = new Schema(fields, batch.schema.metadata);
      const data = makeData({ type: new Struct(fields), length: rows, nullCount: 0, children });
      return new RecordBatch(schema, data);
    },
  };
}
