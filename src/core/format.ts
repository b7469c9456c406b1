/**
 * The format contract: Arrow record batches in, bytes out. No I/O of its own.
 *
 * Layer: core.
 *
 * @module
 */
import type { RecordBatch, Schema } from "./arrow.ts";
import type { FormatKind } from "./spec.ts";

/**
 * Pushes batches, emits encoded bytes to the sink given at creation. `bytesWritten` drives
 * `max_file_size` rollover, so it counts bytes handed to the sink so far.
 */
export interface BatchEncoder {
  /** Encodes one batch; resolves when the sink has accepted what could be flushed. */
  write(batch: RecordBatch): Promise<void>;
  /** Flushes the remaining bytes (Parquet footer) and closes the sink. */
  close(): Promise<void>;
  /** Stops encoding and aborts the sink. */
  abort(reason?: unknown): Promise<void>;
  readonly rowsWritten: number;
  readonly bytesWritten: number;
}

/** A configured output format. */
export interface Format {
  readonly kind: FormatKind;
  /** File extension without the dot. */
  readonly extension: string;
  /** Codec label for the manifest, e.g. `zstd` or `none`. */
  readonly compressionLabel: string;
  /**
   * Creates an encoder for one file. Throws a ConfigError naming the column when the schema has a
   * type this format cannot write (e.g. a list in CSV).
   */
  createEncoder(schema: Schema, sink: WritableStream<Uint8Array>): BatchEncoder;
  /**
   * Counts the rows of one encoded file from its bytes, as they stream past (`run --validate`
   * re-checks each part before its commit). Optional: a format without it is not re-counted.
   */
  rowRecounter?(): RowRecounter;
}

/** Counts the rows held by the bytes of one encoded file, fed in order. */
export interface RowRecounter {
  /** Sees the next bytes of the file. */
  observe(chunk: Uint8Array): void;
  /**
   * The rows the whole file holds, once every byte was observed.
   *
   * @throws {DataIntegrityError} when the bytes are not a whole file of this format.
   */
  rows(): number;
}
