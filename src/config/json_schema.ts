/**
 * `rivet schema config`: the JSON Schema (draft 2020-12) of `rivet.yaml`, generated from the
 * parser's own tables in `keys.ts`: the keys of each section ({@linkcode CONFIG_KEYS}), the
 * enum values ({@linkcode ENUMS}) and the integer ranges ({@linkcode BOUNDS}), plus the
 * definitions below (a type and a description per key). The definitions are typed over the key
 * lists, and a test checks them both ways, so a key the parser accepts cannot be missing here and
 * a key described here cannot be one the parser refuses.
 *
 * The cross-key rules (exactly one of `query`/`query_file`/`table`, the connection forms, what
 * each mode and destination type requires) repeat those of `validate.ts` that a JSON Schema can
 * say; the rest (unique export names, merged tuning, files that must exist) stay the loader's.
 *
 * Layer: config. Pure.
 *
 * @module
 */
import { VERSION } from "../core/version.ts";
import { BOUNDS, type CONFIG_KEYS, ENUMS } from "./keys.ts";
import { EXPORT_NAME_MAX, TABLE_PATTERN } from "./validate.ts";

/** A section of the config: one mapping whose keys the parser lists. */
export type ConfigSection = keyof typeof CONFIG_KEYS;

type Scalar = "string" | "boolean" | "integer" | "number";

/** The definition of one key. */
export interface KeyDefinition {
  /**
   * `object`: a nested section (`section`); `array`: a list of `items`; `map`: free-form names
   * (column names) to `items`; `size`: a string such as `512MB` or a bare number of bytes.
   */
  readonly type: Scalar | "object" | "array" | "map" | "size";
  readonly description: string;
  /** The {@linkcode ENUMS} entry of a string key (or of the items of a list). */
  readonly enum?: keyof typeof ENUMS;
  /** The nested section of an `object` key. */
  readonly section?: ConfigSection;
  /** The item type of an `array` or `map` key. */
  readonly items?: Scalar;
  /**
   * Range of a number (or of a map's numbers); for an integer it replaces the {@linkcode BOUNDS}
   * entry of the same name, and without either an integer is `>= 0`.
   */
  readonly range?: readonly [number, number] | "any";
}

type Definitions = {
  readonly [S in ConfigSection]: {
    readonly [K in (typeof CONFIG_KEYS)[S][number]]: KeyDefinition;
  };
};

const str = (description: string): KeyDefinition => ({ type: "string", description });
const bool = (description: string): KeyDefinition => ({ type: "boolean", description });
const int = (description: string): KeyDefinition => ({ type: "integer", description });
const oneOf = (e: keyof typeof ENUMS, description: string): KeyDefinition => ({
  type: "string",
  enum: e,
  description,
});
const section = (s: ConfigSection, description: string): KeyDefinition => ({
  type: "object",
  section: s,
  description,
});

/** Type and description of every key the parser accepts, by section. */
export const DEFINITIONS: Definitions = {
  top: {
    source: section("source", "The database to read (required)."),
    exports: {
      type: "array",
      description: "The exports (required, at least one).",
      section: "export",
    },
    notifications: section("notifications", "Messages sent after each export."),
    state: section(
      "state",
      "Where state is kept when not in .rivet_state.db next to the config (PostgreSQL).",
    ),
    parallel_exports: bool("true: run the exports concurrently, as --parallel-exports."),
    parallel_export_processes: bool(
      "true: run each export in its own child process, as --parallel-export-processes.",
    ),
  },
  source: {
    type: oneOf("sourceType", "The database engine (mysql covers MariaDB)."),
    url: str("Connection URL, inline (a password in it gets a warning)."),
    url_env: str("Name of the environment variable holding the connection URL."),
    url_file: str("File holding the connection URL (relative to the config's folder)."),
    host: str("Structured form: host name."),
    port: int("Structured form: port (default 5432, 3306 or 1433)."),
    user: str("Structured form: user name."),
    password: str("Structured form: password (prefer password_env)."),
    password_env: str("Structured form: environment variable holding the password."),
    database: str("Structured form: database name."),
    instance: str("SQL Server only: a named instance (resolved through SQL Server Browser)."),
    environment: oneOf("environment", "Picks the default tuning profile."),
    tuning: section("tuning", "Tuning defaults for every export."),
    tls: section("tls", "TLS policy of the connection."),
  },
  tls: {
    mode: oneOf("tlsMode", "TLS mode (verify-full when a tls: block is given)."),
    ca_file: str("CA certificate(s), PEM."),
    accept_invalid_certs: bool("Refused: use ca_file."),
    accept_invalid_hostnames: bool("Refused: use ca_file."),
  },
  tuning: {
    profile: oneOf("profile", "Defaults for the other tuning keys."),
    batch_size: int("Rows per fetch (not with batch_size_memory_mb)."),
    batch_size_memory_mb: int("Memory target of a fetch, in MB (not with batch_size)."),
    throttle_ms: int("Pause between fetches, in milliseconds."),
    statement_timeout_s: int("Statement timeout of the read, in seconds."),
    max_retries: int("Retries of a transient failure."),
    retry_backoff_ms: int("Base of the exponential, jittered retry backoff, in milliseconds."),
    lock_timeout_s: int("Lock timeout of the read, in seconds."),
    memory_threshold_mb: int("Pause before the next chunk while the process RSS is above this."),
    max_batch_memory_mb: int("Batch memory ceiling, in MB."),
    on_batch_memory_exceeded: oneOf(
      "onBatchMemoryExceeded",
      "What to do with a batch above max_batch_memory_mb.",
    ),
    adaptive: bool("true: follow the server's write pressure and move the batch size."),
    min_parallel: int("Accepted; no effect in this version."),
    max_value_mb: int("Largest single value accepted, in MB."),
  },
  export: {
    name: str("Unique export name: ASCII letters, digits, '_', '.', '-'."),
    query: str("The SQL query to export (exactly one of query, query_file, table)."),
    query_file: str("File holding the query, relative to the config's folder, without '..'."),
    table: str("The table to export: name or schema.name."),
    mode: oneOf("mode", "Export mode (default full)."),
    cdc: section("cdc", "Change data capture settings (mode: cdc only)."),
    cursor_column: str("incremental: the increasing column."),
    cursor_fallback_column: str("incremental_cursor_mode: coalesce: the second cursor column."),
    incremental_cursor_mode: oneOf("cursorMode", "How the cursor is read (default single_column)."),
    chunk_column: str("chunked: the column the windows are cut on."),
    chunk_dense: bool("chunked: number rows at read time instead of using the column's values."),
    chunk_size: int("chunked: keys (or rows) per window (default 100000)."),
    chunk_size_memory_mb: int("chunked: size the chunks by memory from the table's row width."),
    chunk_count: int("chunked: cut the key span into this many windows."),
    chunk_by_days: int("chunked: windows of this many days on a date or timestamp column."),
    chunk_by_key: str("chunked: keyset paging on this unique key."),
    parallel: {
      type: "integer",
      description: "chunked: chunks read by this many workers (at least 1).",
      range: [0, BOUNDS.parallel[1]],
    },
    chunk_checkpoint: bool("chunked: record every chunk in the state file; enables --resume."),
    chunk_max_attempts: int("Attempts per chunk in a checkpointed run."),
    time_column: str("time_window: the time column."),
    time_column_type: oneOf("timeColumnType", "time_window: timestamp or unix seconds."),
    days_window: int("time_window: how many days back."),
    partition_by: str("A date column: one export per day, month or year, under {partition}."),
    partition_granularity: oneOf("granularity", "partition_by granularity (default day)."),
    format: oneOf("format", "Output format (required)."),
    compression: oneOf("compression", "Parquet codec (default zstd); CSV: none only."),
    compression_level: {
      type: "integer",
      description: "Codec level: zstd 1-22, gzip 0-10.",
      range: "any",
    },
    compression_profile: oneOf("compressionProfile", "Codec and level in one word."),
    skip_empty: bool("true: an empty result writes no data file."),
    destination: section("destination", "Where the files go (required)."),
    verify: oneOf("verify", "How validate and --resume check parts (default size)."),
    meta_columns: section("meta_columns", "Extra columns rivet adds to each row."),
    quality: section("quality", "Quality gates checked before anything is committed."),
    max_file_size: {
      type: "size",
      description: "Split the output into parts of about this size (512MB, 1GB, or bytes).",
    },
    tuning: section("tuning", "Per-export tuning, merged over source.tuning key by key."),
    source_group: str("Advisory grouping of exports that share a source."),
    reconcile_required: bool("Advisory planning hint."),
    columns: {
      type: "map",
      items: "string",
      description: "Type overrides per column, e.g. decimal(18,2), text, json, uuid.",
    },
    target: str("The reader whose type fidelity check --type-report judges."),
    on_schema_drift: oneOf("onSchemaDrift", "What a change of the result's columns does."),
    shape_drift_warn_factor: {
      type: "number",
      description: "Warn when a column's width grows past this factor; 0 disables.",
      range: [0, 1_000_000],
    },
    parquet: section("parquet", "Parquet row group settings."),
    parquet_types: oneOf(
      "parquetTypes",
      "Parquet: uuid/json as extension types (extended, default) or plain text (portable).",
    ),
  },
  destination: {
    type: oneOf("destination", "Destination kind (required)."),
    path: str("local: the output folder (may hold {date}, {export}, {partition}, ...)."),
    prefix: str("Cloud: key prefix (may hold placeholders)."),
    bucket: str("Cloud: bucket (Azure: container)."),
    region: str("S3 region."),
    endpoint: str("Custom endpoint: a loopback emulator, or any host with allow_anonymous."),
    credentials_file: str("GCS service-account file."),
    access_key_env: str("S3: environment variable holding the access key id."),
    secret_key_env: str("S3: environment variable holding the secret access key."),
    session_token_env: str("S3: environment variable holding the session token."),
    aws_profile: str("S3: profile of the shared AWS config."),
    account_name: str("Azure: storage account name."),
    account_key_env: str("Azure: environment variable holding the account key."),
    sas_token_env: str("Azure: environment variable holding a SAS token."),
    allow_anonymous: bool("Unsigned requests, for emulators."),
  },
  parquet: {
    row_group_strategy: oneOf("rowGroupStrategy", "How row groups are cut (default auto)."),
    row_group_rows: int("fixed_rows: rows per row group."),
    target_row_group_mb: int("auto/fixed_memory: target row group size, in MB."),
    max_row_group_mb: int("Row group size ceiling, in MB."),
  },
  quality: {
    row_count_min: int("Fewest rows the export may have."),
    row_count_max: int("Most rows the export may have."),
    null_ratio_max: {
      type: "map",
      items: "number",
      range: [0, 1],
      description: "Largest share of nulls per column, 0 to 1.",
    },
    unique_columns: { type: "array", items: "string", description: "Columns that must be unique." },
    unique_max_entries: int("Memory bound of the uniqueness check, in distinct values."),
  },
  meta_columns: {
    exported_at: bool("Add _rivet_exported_at (timestamp of the run or chunk, UTC)."),
    row_hash: bool("Add _rivet_row_hash (a deterministic hash of the row)."),
  },
  cdc: {
    checkpoint: str("Checkpoint file."),
    until_current: bool("Stop at the log position current at start."),
    max_events: int("Stop after this many events."),
    rollover: int("Events per output file."),
    rollover_memory_mb: int("Memory per output file, in MB."),
    rollover_seconds: int(
      "Longest a part stays open, in seconds (default 60): a slow stream still commits parts.",
    ),
    server_id: int("MySQL replication server id."),
    slot: str(
      "PostgreSQL replication slot (default rivet_slot; created with pgoutput if missing).",
    ),
    publication: str(
      "PostgreSQL publication the slot decodes (default: the slot's name; created for the table if missing).",
    ),
    capture_instance: str("SQL Server capture instance."),
  },
  state: {
    url_env: str(
      "Environment variable holding the postgresql:// URL of a shared state database " +
        "(default RIVET_STATE_URL; docs/state.md).",
    ),
  },
  notifications: {
    slack: section("slack", "A Slack incoming webhook."),
    webhook: section("webhook", "A generic HTTPS webhook: the export's summary as signed JSON."),
  },
  slack: {
    webhook_url: str("The webhook URL (prefer webhook_url_env)."),
    webhook_url_env: str("Environment variable holding the webhook URL."),
    on: {
      type: "array",
      items: "string",
      enum: "notifyOn",
      description: "When to send (default: failure).",
    },
  },
  webhook: {
    url_env: str("Environment variable holding the receiver's URL."),
    url_file: str("File holding the receiver's URL (relative to the config's folder)."),
    secret_env: str("Environment variable holding the HMAC-SHA256 signing key."),
    on: {
      type: "array",
      items: "string",
      enum: "notifyOn",
      description: "When to send (default: failure).",
    },
    timeout_s: {
      type: "number",
      range: [1, 300],
      description: "Total delivery deadline in seconds, retries included (default 30).",
    },
  },
};

/** Sections whose unknown keys the parser ignores instead of refusing. */
export const OPEN_SECTIONS: ReadonlySet<ConfigSection> = new Set(["cdc"]);

type Json = { [key: string]: unknown };

function scalarSchema(type: Scalar, key: string, def: KeyDefinition): Json {
  const out: Json = { type };
  if (def.enum !== undefined) out.enum = [...ENUMS[def.enum]];
  if (type === "integer" || type === "number") {
    const range = def.range ??
      (Object.hasOwn(BOUNDS, key) ? BOUNDS[key as keyof typeof BOUNDS] : undefined) ??
      (type === "integer" ? [0, Number.MAX_SAFE_INTEGER] : "any");
    if (range !== "any") {
      out.minimum = range[0];
      out.maximum = range[1];
    }
  }
  return out;
}

function keySchema(key: string, def: KeyDefinition): Json {
  const description = { description: def.description };
  switch (def.type) {
    case "object":
      return { $ref: `#/$defs/${def.section}`, ...description };
    case "array":
      if (def.section !== undefined) {
        return {
          type: "array",
          minItems: 1,
          items: { $ref: `#/$defs/${def.section}` },
          ...description,
        };
      }
      return {
        type: "array",
        items: scalarSchema(def.items ?? "string", key, def),
        ...description,
      };
    case "map":
      return {
        type: "object",
        additionalProperties: scalarSchema(def.items ?? "string", key, def),
        ...description,
      };
    case "size":
      return { type: ["string", "number"], ...description };
    default:
      return { ...scalarSchema(def.type, key, def), ...description };
  }
}

function sectionSchema(name: ConfigSection): Json {
  const defs: Record<string, KeyDefinition> = DEFINITIONS[name];
  const properties: Json = {};
  for (const [key, def] of Object.entries(defs)) properties[key] = keySchema(key, def);
  return {
    type: "object",
    properties,
    ...(OPEN_SECTIONS.has(name) ? {} : { additionalProperties: false }),
    ...(rules[name] ?? {}),
  };
}

const structuredKeys = ["host", "port", "user", "database", "password", "password_env", "instance"];
const has = (...keys: string[]) => ({ required: keys });
const is = (key: string, value: string | boolean) => ({
  properties: { [key]: { const: value } },
  required: [key],
});
const when = (condition: Json, then: Json) => ({ if: condition, then });

// The cross-key rules of validate.ts (and the CSV rule of raw_checks.ts) that a schema can say.
const rules: Partial<Record<ConfigSection, Json>> = {
  source: {
    required: ["type"],
    // Exactly one connection form: one URL key, or host + user + database; never both forms.
    oneOf: [has("url"), has("url_env"), has("url_file"), has("host", "user", "database")],
    not: {
      anyOf: [
        has("password", "password_env"),
        // A URL key together with a structured one.
        {
          allOf: [
            { anyOf: [has("url"), has("url_env"), has("url_file")] },
            { anyOf: structuredKeys.map((k) => has(k)) },
          ],
        },
      ],
    },
    allOf: [when({ not: is("type", "mssql") }, { not: has("instance") })],
  },
  tuning: { not: has("batch_size", "batch_size_memory_mb") },
  // The receiver's URL comes from exactly one place (validate.ts).
  webhook: { oneOf: [has("url_env"), has("url_file")] },
  export: {
    required: ["name", "format", "destination"],
    oneOf: [has("query"), has("query_file"), has("table")],
    allOf: [
      when(is("mode", "incremental"), has("cursor_column")),
      when(is("incremental_cursor_mode", "coalesce"), has("cursor_fallback_column")),
      when(has("cursor_fallback_column"), is("incremental_cursor_mode", "coalesce")),
      when(is("mode", "chunked"), {
        anyOf: [has("chunk_column"), has("table")],
        properties: { parallel: { type: "integer", minimum: 1 } },
      }),
      when(is("mode", "time_window"), has("time_column", "days_window")),
      when(is("mode", "cdc"), { ...has("table") }),
      when(has("cdc"), is("mode", "cdc")),
      when(has("chunk_by_days"), is("mode", "chunked")),
      when(is("chunk_dense", true), is("mode", "chunked")),
      { not: has("chunk_count", "chunk_by_days") },
      ...["chunk_count", "chunk_by_days"].map((key) => ({
        not: { required: [key, "chunk_dense"], properties: { chunk_dense: { const: true } } },
      })),
      when(is("format", "csv"), {
        properties: {
          compression: { const: "none" },
          compression_profile: { const: "none" },
          parquet_types: { const: "extended" },
        },
      }),
    ],
  },
  destination: {
    required: ["type"],
    allOf: [
      when(is("type", "local"), has("path")),
      when({ properties: { type: { enum: ["s3", "gcs", "azure"] } } }, has("bucket")),
      when(is("type", "azure"), {
        ...has("account_name"),
        not: has("account_key_env", "sas_token_env"),
      }),
    ],
    dependentRequired: {
      access_key_env: ["secret_key_env"],
      secret_key_env: ["access_key_env"],
    },
  },
};

/**
 * The JSON Schema (draft 2020-12) of a rivet config file.
 *
 * @returns The schema, ready for `JSON.stringify`.
 *
 * @example
 * ```ts
 * import { configJsonSchema } from "./json_schema.ts";
 * const schema = configJsonSchema();
 * if (schema.$schema !== "https://json-schema.org/draft/2020-12/schema") throw new Error();
 * ```
 */
export function configJsonSchema(): Json {
  const $defs: Json = {};
  for (const name of Object.keys(DEFINITIONS) as ConfigSection[]) {
    if (name !== "top") $defs[name] = sectionSchema(name);
  }
  const exp = $defs.export as { properties: Json };
  const name = exp.properties.name as Json;
  // Filename-safe: no leading '.' or '-', no '..', no ':' (validate.ts, nameProblem).
  name.pattern = "^(?![.-])(?!.*\\.\\.)[A-Za-z0-9_.-]+$";
  name.minLength = 1;
  name.maxLength = EXPORT_NAME_MAX;
  (exp.properties.table as Json).pattern = TABLE_PATTERN.source;
  // Relative, without a '..' component (validate.ts).
  (exp.properties.query_file as Json).pattern =
    "^(?![/\\\\])(?![A-Za-z]:)(?!(.*[/\\\\])?\\.\\.([/\\\\]|$))";
  const top = sectionSchema("top");
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: `rivet ${VERSION} config (rivet.yaml)`,
    description: "A rivet config file: one source, a list of exports. Generated by " +
      "`rivet schema config` from the definitions the config loader uses.",
    ...top,
    required: ["source", "exports"],
    $defs,
  };
}
