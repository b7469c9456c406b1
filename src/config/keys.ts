/**
 * The vocabulary of a config file, as data: the keys each mapping accepts, the values of each
 * enum key and the range of each numeric key. The parser (`schema.ts`) reads with them, and
 * `rivet schema config` (`json_schema.ts`) describes them, so the two cannot disagree.
 *
 * Layer: config. Pure, no I/O.
 *
 * @module
 */
/** Keys that only make sense under `tuning:`. */
export const TUNING_KEYS = [
  "profile",
  "batch_size",
  "batch_size_memory_mb",
  "throttle_ms",
  "statement_timeout_s",
  "max_retries",
  "retry_backoff_ms",
  "lock_timeout_s",
  "memory_threshold_mb",
  "max_batch_memory_mb",
  "on_batch_memory_exceeded",
  "adaptive",
  "min_parallel",
  "max_value_mb",
] as const;

export const TOP_KEYS = [
  "source",
  "exports",
  "notifications",
  "state",
  "parallel_exports",
  "parallel_export_processes",
] as const;

export const SOURCE_KEYS = [
  "type",
  "url",
  "url_env",
  "url_file",
  "host",
  "port",
  "user",
  "password",
  "password_env",
  "database",
  "instance",
  "environment",
  "tuning",
  "tls",
] as const;

export const TLS_KEYS = [
  "mode",
  "ca_file",
  "accept_invalid_certs",
  "accept_invalid_hostnames",
] as const;

/** Every key of an `exports[]` entry, in the Rust tool's order (error messages list them so). */
export const EXPORT_KEYS = [
  "name",
  "query",
  "query_file",
  "table",
  "mode",
  "cdc",
  "cursor_column",
  "cursor_fallback_column",
  "incremental_cursor_mode",
  "chunk_column",
  "chunk_dense",
  "chunk_size",
  "chunk_size_memory_mb",
  "chunk_count",
  "chunk_by_days",
  "chunk_by_key",
  "parallel",
  "chunk_checkpoint",
  "chunk_max_attempts",
  "time_column",
  "time_column_type",
  "days_window",
  "partition_by",
  "partition_granularity",
  "format",
  "compression",
  "compression_level",
  "compression_profile",
  "skip_empty",
  "destination",
  "verify",
  "meta_columns",
  "quality",
  "max_file_size",
  "tuning",
  "source_group",
  "reconcile_required",
  "columns",
  "target",
  "on_schema_drift",
  "shape_drift_warn_factor",
  "parquet",
  "parquet_types",
] as const;

export const DESTINATION_KEYS = [
  "type",
  "path",
  "prefix",
  "bucket",
  "region",
  "endpoint",
  "credentials_file",
  "access_key_env",
  "secret_key_env",
  "session_token_env",
  "aws_profile",
  "account_name",
  "account_key_env",
  "sas_token_env",
  "allow_anonymous",
] as const;

export const PARQUET_KEYS = [
  "row_group_strategy",
  "row_group_rows",
  "target_row_group_mb",
  "max_row_group_mb",
] as const;
export const QUALITY_KEYS = [
  "row_count_min",
  "row_count_max",
  "null_ratio_max",
  "unique_columns",
  "unique_max_entries",
] as const;
export const META_KEYS = ["exported_at", "row_hash"] as const;
/** Keys of `state:` (the PostgreSQL state backend's URL, from a variable: it holds a password). */
export const STATE_KEYS = ["url_env"] as const;
/** Keys of `notifications:`. */
export const NOTIFICATIONS_KEYS = ["slack", "webhook"] as const;
/** Keys of `notifications.slack:` (the URL inline, registered as a secret, or from a variable). */
export const SLACK_KEYS = ["webhook_url", "webhook_url_env", "on"] as const;
/**
 * Keys of `notifications.webhook:`. The URL only comes from a variable or a file: a receiver's
 * URL often carries a token, and secrets do not belong in the YAML.
 */
export const WEBHOOK_KEYS = ["url_env", "url_file", "secret_env", "on", "timeout_s"] as const;
export const CDC_KEYS = [
  "checkpoint",
  "until_current",
  "max_events",
  "rollover",
  "rollover_memory_mb",
  "rollover_seconds",
  "server_id",
  "slot",
  "publication",
  "capture_instance",
] as const;

/**
 * The keys the parser accepts in each mapping of a config, by section: what `rivet schema config`
 * describes (`json_schema.ts` has a definition per key; a test keeps the two equal). Every section
 * refuses other keys, except `cdc`, whose unknown keys are ignored (as in rivet-cli).
 */
export const CONFIG_KEYS = {
  top: TOP_KEYS,
  source: SOURCE_KEYS,
  tls: TLS_KEYS,
  tuning: TUNING_KEYS,
  export: EXPORT_KEYS,
  destination: DESTINATION_KEYS,
  parquet: PARQUET_KEYS,
  quality: QUALITY_KEYS,
  meta_columns: META_KEYS,
  cdc: CDC_KEYS,
  notifications: NOTIFICATIONS_KEYS,
  state: STATE_KEYS,
  slack: SLACK_KEYS,
  webhook: WEBHOOK_KEYS,
} as const;

/** Valid values of each enum key, as data. */
export const ENUMS = {
  sourceType: ["postgres", "mysql", "mssql"],
  environment: ["local", "replica", "production"],
  tlsMode: ["disable", "require", "verify-ca", "verify-full"],
  profile: ["fast", "balanced", "safe"],
  onBatchMemoryExceeded: ["warn", "fail", "auto_shrink"],
  mode: ["full", "incremental", "chunked", "time_window", "cdc"],
  cursorMode: ["single_column", "coalesce"],
  timeColumnType: ["timestamp", "unix"],
  granularity: ["day", "month", "year"],
  format: ["parquet", "csv"],
  compression: ["zstd", "snappy", "gzip", "lz4", "none"],
  compressionProfile: ["none", "fast", "balanced", "compact"],
  destination: ["local", "stdout", "s3", "gcs", "azure"],
  verify: ["size", "content"],
  onSchemaDrift: ["warn", "continue", "fail"],
  rowGroupStrategy: ["auto", "fixed_rows", "fixed_memory"],
  parquetTypes: ["extended", "portable"],
  notifyOn: ["failure", "schema_change", "degraded", "success"],
} as const;

/**
 * Accepted range `[min, max]` of each integer key. Lower bounds keep loops finite (a batch of 0
 * rows never ends a read); upper bounds keep waits and allocations sane (a backoff beyond about
 * 24 days overflows the timer and fires at once; `parallel: 100000` would open as many
 * connections).
 */
export const BOUNDS = {
  port: [1, 65_535],
  batch_size: [1, 10_000_000],
  batch_size_memory_mb: [1, 65_536],
  throttle_ms: [0, 600_000],
  // PostgreSQL's own limit: INT_MAX milliseconds.
  statement_timeout_s: [0, 2_147_483],
  max_retries: [0, 100],
  retry_backoff_ms: [0, 3_600_000],
  lock_timeout_s: [0, 2_147_483],
  memory_threshold_mb: [0, 1_048_576],
  max_batch_memory_mb: [1, 65_536],
  min_parallel: [1, 256],
  max_value_mb: [1, 1_024],
  chunk_size: [1, Number.MAX_SAFE_INTEGER],
  chunk_size_memory_mb: [1, 1_048_576],
  chunk_count: [1, 1_000_000],
  chunk_by_days: [1, 36_600],
  parallel: [1, 256],
  chunk_max_attempts: [1, 100],
  days_window: [1, 36_600],
  row_count_min: [0, Number.MAX_SAFE_INTEGER],
  row_count_max: [0, Number.MAX_SAFE_INTEGER],
  unique_max_entries: [1, 100_000_000],
  row_group_rows: [1, 100_000_000],
  target_row_group_mb: [1, 4_096],
  max_row_group_mb: [1, 4_096],
} as const satisfies Record<string, readonly [number, number]>;
