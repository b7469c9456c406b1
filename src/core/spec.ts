/**
 * User intent: the validated shape of a `rivet.yaml`, produced by `config/` only.
 *
 * Layer: core. Imports nothing from `src/` but `core/`.
 *
 * Field names are the YAML keys in camelCase. Every key of the Rust tool's config schema (rivet-cli
 * 0.14.1) is represented, including those whose feature lands in a later release;
 * `config/support.ts` refuses those with a clear "not supported yet" error.
 *
 * @module
 */

/** Database engines. */
export type SourceKind = "postgres" | "mysql" | "mssql";
/** Output formats. */
export type FormatKind = "parquet" | "csv";
/** Destination kinds. */
export type DestinationKind = "local" | "stdout" | "s3" | "gcs" | "azure";
/** Export modes. */
export type ExportMode = "full" | "incremental" | "chunked" | "time_window" | "cdc";
/** Parquet codecs (CSV accepts only `none`). */
export type Compression = "zstd" | "snappy" | "gzip" | "lz4" | "none";
/** Named compression presets: none→none, fast→snappy, balanced→zstd 3, compact→zstd 9. */
export type CompressionProfile = "none" | "fast" | "balanced" | "compact";
/** Tuning profiles. */
export type TuningProfile = "fast" | "balanced" | "safe";
/** TLS modes of `source.tls.mode`. */
export type TlsMode = "disable" | "require" | "verify-ca" | "verify-full";

/** A secret string. Never interpolate it into messages; `redact` knows its value. */
export interface Secret {
  readonly secret: string;
}

/** How the source connection is given (exactly one form). */
export type ConnectionSpec =
  | { readonly form: "url"; readonly url: Secret }
  | { readonly form: "url_env"; readonly env: string }
  | { readonly form: "url_file"; readonly path: string }
  | {
    readonly form: "structured";
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly database: string;
    readonly password?: Secret;
    readonly passwordEnv?: string;
    /** SQL Server named instance (resolved through SQL Server Browser). */
    readonly instance?: string;
  };

/** `source.tls`. */
export interface TlsSpec {
  /** `verify-full` when a `tls:` block exists without `mode`. */
  readonly mode: TlsMode;
  readonly caFile?: string;
  readonly acceptInvalidCerts: boolean;
  readonly acceptInvalidHostnames: boolean;
}

/** A tuning block as written (every field optional; merged source → export → profile). */
export interface TuningSpec {
  readonly profile?: TuningProfile;
  readonly batchSize?: number;
  readonly batchSizeMemoryMb?: number;
  readonly throttleMs?: number;
  readonly statementTimeoutS?: number;
  readonly maxRetries?: number;
  readonly retryBackoffMs?: number;
  readonly lockTimeoutS?: number;
  readonly memoryThresholdMb?: number;
  readonly maxBatchMemoryMb?: number;
  readonly onBatchMemoryExceeded?: "warn" | "fail" | "auto_shrink";
  readonly adaptive?: boolean;
  readonly minParallel?: number;
  readonly maxValueMb?: number;
}

/** Tuning after merging source, export and profile defaults: what the pipeline obeys. */
export interface TuningPlan {
  readonly profile: TuningProfile;
  /** Human label, e.g. `balanced (default)`. */
  readonly profileLabel: string;
  readonly batchSize: number;
  /** Memory target of one fetch, when set (MB). */
  readonly batchSizeMemoryMb: number | undefined;
  readonly throttleMs: number;
  readonly statementTimeoutS: number;
  readonly maxRetries: number;
  readonly retryBackoffMs: number;
  readonly lockTimeoutS: number;
  readonly memoryThresholdMb: number;
  readonly maxBatchMemoryMb: number | undefined;
  readonly onBatchMemoryExceeded: "warn" | "fail" | "auto_shrink";
  readonly adaptive: boolean;
  readonly minParallel: number;
  readonly maxValueMb: number;
}

/** `source`. */
export interface SourceSpec {
  readonly kind: SourceKind;
  readonly connection: ConnectionSpec;
  readonly environment?: "local" | "replica" | "production";
  readonly tuning?: TuningSpec;
  /** Absent when no `tls:` block was written. */
  readonly tls?: TlsSpec;
}

/** What to read: exactly one of `table`, `query`, `query_file`. */
export type QuerySpec =
  | { readonly kind: "table"; readonly schema?: string; readonly table: string }
  | { readonly kind: "query"; readonly sql: string }
  /** `path` is relative to the config dir; `sql` is loaded lazily by `config/query_file.ts`. */
  | { readonly kind: "query_file"; readonly path: string };

/** `exports[].parquet`. */
export interface ParquetSpec {
  readonly rowGroupStrategy: "auto" | "fixed_rows" | "fixed_memory";
  readonly rowGroupRows?: number;
  readonly targetRowGroupMb: number;
  readonly maxRowGroupMb?: number;
}

/**
 * How uuid and json columns are written to Parquet: `extended` with the Arrow extension types and
 * the Parquet UUID / JSON logical types; `portable` as plain UTF-8 text that every reader opens.
 */
export type ParquetTypes = "extended" | "portable";

/** The format part of an export. */
export interface FormatSpec {
  readonly kind: FormatKind;
  /** Codec after applying `compression_profile`. */
  readonly compression: Compression;
  /** Level for zstd (1..22) or gzip (0..10); undefined means codec default. */
  readonly compressionLevel?: number;
  readonly compressionProfile?: CompressionProfile;
  /** Present only when a `parquet:` block was written. */
  readonly parquet?: ParquetSpec;
  /** `parquet_types`; absent means `extended`. */
  readonly parquetTypes?: ParquetTypes;
}

/** `exports[].destination` (one shared key set for all kinds, as in the Rust tool). */
export interface DestinationSpec {
  readonly kind: DestinationKind;
  readonly path?: string;
  readonly prefix?: string;
  readonly bucket?: string;
  readonly region?: string;
  readonly endpoint?: string;
  readonly credentialsFile?: string;
  readonly accessKeyEnv?: string;
  readonly secretKeyEnv?: string;
  readonly sessionTokenEnv?: string;
  readonly awsProfile?: string;
  readonly accountName?: string;
  readonly accountKeyEnv?: string;
  readonly sasTokenEnv?: string;
  readonly allowAnonymous: boolean;
}

/** `exports[].quality`. */
export interface QualitySpec {
  readonly rowCountMin?: number;
  readonly rowCountMax?: number;
  readonly nullRatioMax?: Readonly<Record<string, number>>;
  readonly uniqueColumns?: readonly string[];
  readonly uniqueMaxEntries?: number;
}

/** `exports[].cdc` (unknown keys ignored, as in the Rust tool). */
export interface CdcSpec {
  readonly checkpoint?: string;
  readonly untilCurrent?: boolean;
  readonly maxEvents?: number;
  readonly rollover?: number;
  readonly rolloverMemoryMb?: number;
  /** Longest a part stays open, seconds (default 60). */
  readonly rolloverSeconds?: number;
  readonly serverId?: number;
  readonly slot?: string;
  /** PostgreSQL publication (default: the slot's name). */
  readonly publication?: string;
  readonly captureInstance?: string;
}

/** One export, fully validated. */
export interface ExportSpec {
  readonly name: string;
  /** Zero-based position in `exports:`, for messages. */
  readonly index: number;
  readonly mode: ExportMode;
  readonly query: QuerySpec;
  readonly format: FormatSpec;
  readonly destination: DestinationSpec;
  readonly skipEmpty: boolean;
  /** Bytes; parsed from `max_file_size`. */
  readonly maxFileSize?: number;
  readonly verify: "size" | "content";
  readonly metaColumns: { readonly exportedAt: boolean; readonly rowHash: boolean };
  /** Column name → override type string (parsed by `core/column_type.ts`: at load and by the source). */
  readonly columns: Readonly<Record<string, string>>;
  /** Export tuning block as written (merge with source tuning via `config/tuning.ts`). */
  readonly tuning?: TuningSpec;
  readonly onSchemaDrift: "warn" | "continue" | "fail";
  readonly shapeDriftWarnFactor: number;
  readonly quality?: QualitySpec;
  readonly target?: string;
  readonly sourceGroup?: string;
  readonly reconcileRequired: boolean;
  // incremental
  readonly cursorColumn?: string;
  readonly cursorFallbackColumn?: string;
  readonly incrementalCursorMode: "single_column" | "coalesce";
  // chunked
  readonly chunkColumn?: string;
  readonly chunkDense: boolean;
  readonly chunkSize: number;
  readonly chunkSizeMemoryMb?: number;
  readonly chunkCount?: number;
  readonly chunkByDays?: number;
  readonly chunkByKey?: string;
  readonly parallel: number;
  readonly chunkCheckpoint: boolean;
  readonly chunkMaxAttempts?: number;
  // time_window
  readonly timeColumn?: string;
  readonly timeColumnType: "timestamp" | "unix";
  readonly daysWindow?: number;
  // partitioning
  readonly partitionBy?: string;
  readonly partitionGranularity: "day" | "month" | "year";
  readonly cdc?: CdcSpec;
}

/** What an export's outcome can notify about (`notifications.*.on`). */
export type NotifyEvent = "failure" | "schema_change" | "degraded" | "success";

/** `notifications`: sent by `rivet run` after the run (docs/notifications.md). */
export interface NotificationsSpec {
  readonly slack?: {
    readonly webhookUrl?: Secret;
    readonly webhookUrlEnv?: string;
    readonly on: readonly NotifyEvent[];
  };
  readonly webhook?: {
    /** Variable holding the receiver's URL. */
    readonly urlEnv?: string;
    /** Absolute path of a file holding the URL (written relative to the config). */
    readonly urlFile?: string;
    /** Variable holding the HMAC-SHA256 key that signs each body; unsigned without it. */
    readonly secretEnv?: string;
    readonly on: readonly NotifyEvent[];
    /** Total time for one notification, retries included (default 30). */
    readonly timeoutS: number;
  };
}

/** A whole validated config file. */
export interface ConfigSpec {
  /** Absolute path of the config file. */
  readonly path: string;
  /** Directory of the config file: state and reports live here, `query_file` is relative to it. */
  readonly dir: string;
  readonly source: SourceSpec;
  readonly exports: readonly ExportSpec[];
  readonly notifications?: NotificationsSpec;
  /**
   * `state.url_env`: the variable whose value, a `postgresql://` URL, selects the PostgreSQL state
   * backend (instead of `RIVET_STATE_URL`). Unset: `RIVET_STATE_URL`, else the SQLite file.
   */
  readonly stateUrlEnv?: string;
  readonly parallelExports: boolean;
  readonly parallelExportProcesses: boolean;
  /** Warnings raised while loading (unused params, plaintext password, ...). */
  readonly warnings: readonly Warning[];
}

/** A warning with a stable code. */
export interface Warning {
  readonly code: string;
  readonly message: string;
  readonly export?: string;
}

/** Options shared by every I/O call. */
export interface SignalOptions {
  readonly signal?: AbortSignal;
}
