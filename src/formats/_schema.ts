/**
 * Schema checks shared by the encoders.
 *
 * Layer: formats (private). Imports core/ only.
 *
 * @module
 */
import type { RecordBatch, Schema } from "../core/arrow.ts";
import { PermanentError } from "../core/errors.ts";

/**
 * Throws when a batch does not have the encoder's column names and types. The Parquet writer
 * silently drops batches it cannot write, so this check is what keeps a bad batch from vanishing.
 *
 * @param schema The schema the encoder was created with.
 * @param batch The incoming batch.
 */
export function assertBatchMatches(schema: Schema, batch: RecordBatch): void {
  const got = batch.schema.fields;
  const want = schema.fields;
  let ok = got.length === want.length;
  for (let i = 0; ok && i < want.length; i++) {
    const a = want[i]!, b = got[i]!;
    ok = a.name === b.name && String(a.type) === String(b.type);
  }
  if (!ok) {
    const show = (s: readonly { name: string; type: unknown }[]) =>
      s.map((f) => `${f.name}: ${String(f.type)}`).join(", ");
    throw new PermanentError(
      `Batch columns (${show(got)}) differ from the file schema (${show(want)}); ` +
        `start a new file when the result shape changes`,
      { code: "format.schema_mismatch" },
    );
  }
}
