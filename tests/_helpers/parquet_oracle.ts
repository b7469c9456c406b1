/**
 * An independent Parquet reader for tests: npm:hyparquet (pure JS, not the parquet-wasm writer
 * under test), with parsers that keep timestamps as exact microseconds (bigint) and dates as
 * day numbers instead of JS `Date`s.
 *
 * @module
 */
import { parquetMetadata, parquetReadObjects, parquetSchema } from "hyparquet";
import { compressors } from "hyparquet-compressors";

const decoder = new TextDecoder();

/** Parsers that do not lose precision. */
export const exactParsers = {
  timestampFromMilliseconds: (v: bigint) => BigInt(v) * 1000n,
  timestampFromMicroseconds: (v: bigint) => BigInt(v),
  timestampFromNanoseconds: (v: bigint) => BigInt(v),
  dateFromDays: (v: number) => v,
  stringFromBytes: (b: Uint8Array | undefined) => b && decoder.decode(b),
  jsonFromBytes: (b: Uint8Array | undefined) => b && decoder.decode(b),
  geometryFromBytes: (b: Uint8Array | undefined) => b,
  geographyFromBytes: (b: Uint8Array | undefined) => b,
  uuidFromBytes: (b: Uint8Array | undefined) => {
    if (!b) return undefined;
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
      hex.slice(20)
    }`;
  },
};

/** What the oracle read from one file. */
export interface ParquetContents {
  readonly rows: Record<string, unknown>[];
  // deno-lint-ignore no-explicit-any
  readonly metadata: any;
  // deno-lint-ignore no-explicit-any
  readonly schema: any;
}

/**
 * Reads a whole Parquet file.
 *
 * @param path File path.
 * @returns Rows as objects, the file metadata and the schema tree.
 */
export async function readParquet(path: string): Promise<ParquetContents> {
  const bytes = await Deno.readFile(path);
  const file = bytes.buffer.slice(
    bytes.byteOffset,
    bytes.byteOffset + bytes.byteLength,
  ) as ArrayBuffer;
  const metadata = parquetMetadata(file);
  const rows = await parquetReadObjects({
    file,
    compressors,
    // deno-lint-ignore no-explicit-any
    parsers: exactParsers as any,
    utf8: false,
  }) as Record<string, unknown>[];
  return { rows, metadata, schema: parquetSchema(metadata) };
}
