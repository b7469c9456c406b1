/**
 * The source contract: a database read produces an Arrow schema first, then record batches.
 *
 * Layer: core.
 *
 * @module
 */
import type { DataType, RecordBatch, Schema } from "./arrow.ts";
import { ConfigError } from "./errors.ts";
import type { SignalOptions, SourceKind } from "./spec.ts";

/** Where and as whom to connect. `password` is a registered secret: never log it. */
export interface ConnectionInfo {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string;
  readonly database: string;
  /** URL query parameters (e.g. `sslmode`, `application_name`), decoded. */
  readonly params: Readonly<Record<string, string>>;
}

/** How faithfully a column survives the trip to Arrow. */
export type Fidelity = "exact" | "compatible" | "logical_string" | "lossy" | "unsupported";

/** Logical annotation carried as `rivet.logical_type` field metadata. */
export type LogicalType = "json" | "uuid" | "enum" | "interval";

/** What rivet knows about one result column. */
export interface ColumnInfo {
  readonly name: string;
  /** Source type as the database names it, e.g. `numeric(12,2)`, `timestamptz`, `int4[]`. */
  readonly nativeType: string;
  /** Arrow type, or undefined when the column is unsupported. */
  readonly arrowType: DataType | undefined;
  readonly fidelity: Fidelity;
  readonly logicalType?: LogicalType;
  /** Why the column is unsupported, with the fix (e.g. a `columns:` override). */
  readonly unsupportedReason?: string;
}

/**
 * A result with columns rivet cannot export (`source.unsupported_types`, exit 1), thrown by
 * `Source.read` before any row. It carries every column, so `rivet check --type-report` can list
 * the supported ones beside the refused ones.
 */
export class UnsupportedColumnsError extends ConfigError {
  /** Every column of the result, in order; the refused ones have fidelity `unsupported`. */
  readonly columns: readonly ColumnInfo[];

  /**
   * @param message The message naming every refused column.
   * @param columns Every column of the result.
   */
  constructor(message: string, columns: readonly ColumnInfo[]) {
    super(message, { code: "source.unsupported_types" });
    this.name = "ConfigError";
    this.columns = columns;
  }
}

/** Read knobs derived from the tuning plan. */
export interface ReadOptions extends SignalOptions {
  /** Ceiling of rows per fetch. */
  readonly batchSize: number;
  /** Memory target of one fetch, in bytes. */
  readonly batchMemoryBytes: number;
  /** 0 = none. */
  readonly statementTimeoutS: number;
  /** 0 = none. */
  readonly lockTimeoutS: number;
  /** Pause `throttleMs × rows / batchSize` after each batch. */
  readonly throttleMs: number;
  /** Per-value ceiling in MB (0 = off). */
  readonly maxValueMb: number;
  /** `columns:` overrides, name → type string. */
  readonly columnOverrides: Readonly<Record<string, string>>;
  /**
   * `parquet_types: portable`: uuid and json columns come out as plain UTF-8 text (uuid as its
   * 36-character lowercase form), without Arrow extension metadata; fidelity `logical_string`.
   */
  readonly portableTypes?: boolean;
  /**
   * A live ceiling on rows per batch that the caller may lower while the read runs
   * (`on_batch_memory_exceeded: auto_shrink`); sources read it before sizing each fetch.
   */
  readonly rowCap?: { value: number };
}

/** A query to run. */
export interface ReadRequest {
  readonly sql: string;
  readonly params: readonly (string | number | bigint | boolean | null)[];
}

/**
 * Schema first, so an empty result still yields a valid file. `batches` must be read to the end
 * or cancelled; either way the server-side cursor and transaction are closed.
 */
export interface BatchStream {
  readonly schema: Schema;
  readonly columns: readonly ColumnInfo[];
  readonly batches: ReadableStream<RecordBatch>;
}

/** A database connection able to stream query results as Arrow. */
export interface Source extends AsyncDisposable {
  readonly kind: SourceKind;
  /**
   * Starts a read. Resolves once the result's columns are known; rejects with a ConfigError
   * naming every unsupported column before any row is delivered.
   */
  read(request: ReadRequest, options: ReadOptions): Promise<BatchStream>;
  /** Runs a one-row probe such as `SELECT 1`; used by `doctor`. */
  ping(options?: SignalOptions): Promise<void>;
}
