/**
 * Which Parquet columns are written without min/max statistics, decided once per file from its
 * first batch: the string and binary columns whose values are long.
 *
 * The writer keeps a running minimum and maximum of every value it encodes. For long values that
 * is two comparisons of the whole value per row (equal or nearly equal texts compare to their
 * last byte): on a table of 2.4 KB texts it took a third of the encoding time, and a minimum and
 * maximum of free text prunes nothing for a reader (parquet-rs truncates them to 64 bytes in the
 * page index anyway). Short strings (codes, names, e-mails, keys) keep their statistics, so
 * filters on them still skip row groups. A column without statistics also carries no null count.
 *
 * Layer: formats. Imports core/ only.
 *
 * @module
 */
import { type RecordBatch, Type } from "../core/arrow.ts";

/** Mean value length (bytes) above which a column gets no min/max statistics. */
export const LONG_VALUE_BYTES = 128;

/**
 * Top-level string/binary columns whose non-null values in `batch` average more than
 * {@linkcode LONG_VALUE_BYTES}.
 *
 * @param batch The file's first batch (its schema is the file schema).
 * @returns Column names, in schema order.
 *
 * @example
 * ```ts
 * import { longValueColumns } from "./_statistics.ts";
 * import { batchOf, utf8Col } from "./_test_batches.ts";
 * const batch = batchOf([utf8Col("code", ["a", "b"]), utf8Col("body", ["x".repeat(500), null])]);
 * if (longValueColumns(batch).join() !== "body") throw new Error("body only");
 * ```
 */
export function longValueColumns(batch: RecordBatch): string[] {
  const out: string[] = [];
  batch.schema.fields.forEach((field, c) => {
    const typeId = field.type.typeId as Type;
    if (
      typeId !== Type.Utf8 && typeId !== Type.Binary && typeId !== Type.LargeUtf8 &&
      typeId !== Type.LargeBinary
    ) return;
    const data = batch.data.children[c]!;
    const values = data.length - data.nullCount;
    if (values <= 0) return;
    const offsets = data.valueOffsets as Int32Array | BigInt64Array;
    const bytes = Number(offsets[data.length]!) - Number(offsets[0]!);
    if (bytes / values > LONG_VALUE_BYTES) out.push(field.name);
  });
  return out;
}
