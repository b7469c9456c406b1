/**
 * Row counts read back from the bytes of an encoded file as they stream to the destination
 * (`run --validate`): the records of a CSV file (quote-aware, header excluded) and the `num_rows`
 * of a Parquet footer. They re-check the very bytes that will be committed, not the encoder's
 * own tally.
 *
 * Layer: formats. Imports core/ only.
 *
 * @module
 */
import { DataIntegrityError } from "../core/errors.ts";
import type { RowRecounter } from "../core/format.ts";
import { decodeCompactStruct } from "./_parquet_footer.ts";

const NEWLINE = 0x0a;
const QUOTE = 0x22;

/**
 * Counts CSV records: line feeds outside quoted cells, minus the header line. rivet's CSV writer
 * ends every record (the header too) with `\n`, so a file whose last byte is not one was cut.
 *
 * @returns The recounter.
 *
 * @example
 * ```ts
 * import { csvRecounter } from "./_recount.ts";
 * const r = csvRecounter();
 * r.observe(new TextEncoder().encode('id,note\n1,"a\nb"\n2,x\n'));
 * if (r.rows() !== 2) throw new Error();
 * ```
 */
export function csvRecounter(): RowRecounter {
  let lines = 0;
  let quoted = false;
  let last = -1;
  return {
    observe(chunk) {
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i]!;
        // A doubled quote inside a quoted cell toggles twice: still quoted.
        if (b === QUOTE) quoted = !quoted;
        else if (b === NEWLINE && !quoted) lines += 1;
      }
      if (chunk.length > 0) last = chunk[chunk.length - 1]!;
    },
    rows() {
      if (lines === 0 || quoted || last !== NEWLINE) {
        throw new DataIntegrityError(
          "the staged CSV part does not end with a complete record",
          { code: "validate.part_unreadable", hint: partHint },
        );
      }
      return lines - 1;
    },
  };
}

/** The longest footer kept for the re-count; rivet's footers are far smaller. */
const MAX_TAIL_BYTES = 16 * 1024 * 1024;
const FILE_NUM_ROWS = 3;

/**
 * Reads `num_rows` from the footer of a Parquet file: the file's last bytes are kept as they
 * stream past (up to 16 MiB), and the footer is decoded at the end.
 *
 * @returns The recounter.
 */
export function parquetRecounter(): RowRecounter {
  const tail: Uint8Array[] = [];
  let held = 0;
  return {
    observe(chunk) {
      if (chunk.length === 0) return;
      tail.push(chunk.slice());
      held += chunk.length;
      while (tail.length > 1 && held - tail[0]!.length >= MAX_TAIL_BYTES) {
        held -= tail.shift()!.length;
      }
    },
    rows() {
      const bytes = new Uint8Array(held);
      let at = 0;
      for (const c of tail) {
        bytes.set(c, at);
        at += c.length;
      }
      const end = bytes.length;
      const magic = end >= 12 && bytes[end - 4] === 0x50 && bytes[end - 3] === 0x41 &&
        bytes[end - 2] === 0x52 && bytes[end - 1] === 0x31;
      if (!magic) throw unreadable("it does not end with the Parquet magic");
      const length = new DataView(bytes.buffer, end - 8, 4).getUint32(0, true);
      if (length + 8 > end) throw unreadable(`its ${length}-byte footer is not all there`);
      let meta;
      try {
        meta = decodeCompactStruct(bytes.subarray(end - 8 - length, end - 8), {
          only: [FILE_NUM_ROWS],
        });
      } catch (error) {
        throw unreadable(`its footer cannot be decoded (${(error as Error).message})`);
      }
      const value = meta.fields.find((f) => f.id === FILE_NUM_ROWS)?.value;
      if (value?.kind !== "i64") throw unreadable("its footer has no num_rows");
      return Number(value.value);
    },
  };
}

const partHint = "the part was not committed; run the export again, and report a rivet bug if " +
  "it happens again";

function unreadable(detail: string): DataIntegrityError {
  return new DataIntegrityError(`the staged Parquet part cannot be re-read: ${detail}`, {
    code: "validate.part_unreadable",
    hint: partHint,
  });
}
