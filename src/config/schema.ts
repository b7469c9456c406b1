/**
 * Typed parse of the YAML tree: every object refuses unknown keys (except `cdc:`), enums list
 * their variants, type errors name the key path. Produces the config *as written* (no defaults);
 * `validate.ts` checks it and `build.ts` turns it into a `ConfigSpec`.
 *
 * Layer: config. Pure, no I/O.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";
import type {
  CompressionProfile,
  DestinationKind,
  DestinationSpec,
  ExportMode,
  FormatKind,
  NotifyEvent,
  ParquetTypes,
  SourceKind,
  TlsMode,
  TuningSpec,
} from "../core/spec.ts";
import { registerSecret } from "../_util/redact.ts";
import { registerUrlSecrets } from "./secrets.ts";
import { expectedPhrase, suggest } from "./suggest.ts";
import type { Position, TreeEntry, TreeNode } from "./yaml_tree.ts";
import {
  BOUNDS,
  CDC_KEYS,
  DESTINATION_KEYS,
  ENUMS,
  EXPORT_KEYS,
  META_KEYS,
  NOTIFICATIONS_KEYS,
  PARQUET_KEYS,
  QUALITY_KEYS,
  SLACK_KEYS,
  SOURCE_KEYS,
  STATE_KEYS,
  TLS_KEYS,
  TOP_KEYS,
  TUNING_KEYS,
  WEBHOOK_KEYS,
} from "./keys.ts";

/** `source.tls` as written. */
export interface RawTls {
  readonly mode?: TlsMode;
  readonly caFile?: string;
  readonly acceptInvalidCerts?: boolean;
  readonly acceptInvalidHostnames?: boolean;
}

/** `source` as written. */
export interface RawSource {
  readonly type: SourceKind;
  readonly url?: string;
  readonly urlEnv?: string;
  readonly urlFile?: string;
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  readonly passwordEnv?: string;
  readonly database?: string;
  /** SQL Server named instance (structured form only). */
  readonly instance?: string;
  readonly environment?: "local" | "replica" | "production";
  readonly tuning?: TuningSpec;
  readonly tls?: RawTls;
}

/** `exports[].destination` as written: the spec's keys, with `type` and `allow_anonymous` unset by default. */
export type RawDestination =
  & Omit<DestinationSpec, "kind" | "allowAnonymous">
  & { readonly type: DestinationKind; readonly allowAnonymous?: boolean };

/** One `exports[]` entry as written. */
export interface RawExport {
  readonly index: number;
  readonly name: string;
  readonly query?: string;
  readonly queryFile?: string;
  readonly table?: string;
  readonly mode?: ExportMode;
  readonly cdc?: {
    readonly checkpoint?: string;
    readonly untilCurrent?: boolean;
    readonly maxEvents?: number;
    readonly rollover?: number;
    readonly rolloverMemoryMb?: number;
    readonly rolloverSeconds?: number;
    readonly serverId?: number;
    readonly slot?: string;
    readonly publication?: string;
    readonly captureInstance?: string;
  };
  readonly cursorColumn?: string;
  readonly cursorFallbackColumn?: string;
  readonly incrementalCursorMode?: "single_column" | "coalesce";
  readonly chunkColumn?: string;
  readonly chunkDense?: boolean;
  readonly chunkSize?: number;
  readonly chunkSizeMemoryMb?: number;
  readonly chunkCount?: number;
  readonly chunkByDays?: number;
  readonly chunkByKey?: string;
  readonly parallel?: number;
  readonly chunkCheckpoint?: boolean;
  readonly chunkMaxAttempts?: number;
  readonly timeColumn?: string;
  readonly timeColumnType?: "timestamp" | "unix";
  readonly daysWindow?: number;
  readonly partitionBy?: string;
  readonly partitionGranularity?: "day" | "month" | "year";
  readonly format: FormatKind;
  readonly compression?: "zstd" | "snappy" | "gzip" | "lz4" | "none";
  readonly compressionLevel?: number;
  readonly compressionProfile?: CompressionProfile;
  readonly skipEmpty?: boolean;
  readonly destination: RawDestination;
  readonly verify?: "size" | "content";
  readonly metaColumns?: { readonly exportedAt?: boolean; readonly rowHash?: boolean };
  readonly quality?: {
    readonly rowCountMin?: number;
    readonly rowCountMax?: number;
    readonly nullRatioMax?: Readonly<Record<string, number>>;
    readonly uniqueColumns?: readonly string[];
    readonly uniqueMaxEntries?: number;
  };
  readonly maxFileSize?: string;
  readonly tuning?: TuningSpec;
  readonly sourceGroup?: string;
  readonly reconcileRequired?: boolean;
  readonly columns?: Readonly<Record<string, string>>;
  readonly target?: string;
  readonly onSchemaDrift?: "warn" | "continue" | "fail";
  readonly shapeDriftWarnFactor?: number;
  readonly parquet?: {
    readonly rowGroupStrategy?: "auto" | "fixed_rows" | "fixed_memory";
    readonly rowGroupRows?: number;
    readonly targetRowGroupMb?: number;
    readonly maxRowGroupMb?: number;
  };
  readonly parquetTypes?: ParquetTypes;
}

/** `notifications` as written. */
export interface RawNotifications {
  readonly slack?: {
    readonly webhookUrl?: string;
    readonly webhookUrlEnv?: string;
    readonly on?: readonly NotifyEvent[];
  };
  readonly webhook?: {
    readonly urlEnv?: string;
    readonly urlFile?: string;
    readonly secretEnv?: string;
    readonly on?: readonly NotifyEvent[];
    readonly timeoutS?: number;
  };
}

/** A whole config as written. */
export interface RawConfig {
  readonly source: RawSource;
  readonly exports: readonly RawExport[];
  readonly notifications?: RawNotifications;
  /** `state.url_env`: the variable holding the PostgreSQL state URL. */
  readonly state?: { readonly urlEnv?: string };
  readonly parallelExports?: boolean;
  readonly parallelExportProcesses?: boolean;
}

const missingHints: Readonly<Record<string, string>> = {
  source: "add a `source:` block (type plus a connection), or scaffold a config with " +
    "`rivet init --source-env DATABASE_URL -o rivet.yaml`",
  exports: "add an `exports:` list with at least one export (name, table or query, format, " +
    "destination)",
  name: "give every export a unique, filename-safe `name:`",
  format: "add `format: parquet` or `format: csv`",
  destination: "add a destination, e.g. `destination: {type: local, path: ./out}`",
  type: "add the `type:` key",
};

type Json = string | number | boolean | null;

function describe(node: TreeNode): string {
  if (node.kind === "map") return "a mapping";
  if (node.kind === "seq") return "a list";
  const v: Json = node.value;
  if (v === null) return "an empty value";
  if (typeof v === "string") return "a string";
  if (typeof v === "boolean") return "a boolean";
  return Number.isInteger(v) ? "an integer" : "a number";
}

function at(pos: Position): string {
  return ` at line ${pos.line} column ${pos.col}`;
}

/** Reads one YAML mapping, refusing keys it does not know. */
class MapReader {
  readonly #entries: Map<string, TreeEntry>;
  readonly path: string;
  readonly pos: Position;

  constructor(node: TreeNode, path: string, allowed: readonly string[], ignoreUnknown = false) {
    this.path = path;
    this.pos = node.pos;
    if (node.kind !== "map") {
      throw new ConfigError(
        `${path || "config"}: invalid type: ${describe(node)}, expected a mapping${at(node.pos)}`,
        { code: "config.invalid_type" },
      );
    }
    this.#entries = new Map(node.entries.map((e) => [e.key, e]));
    if (ignoreUnknown) return;
    for (const entry of node.entries) {
      if (allowed.includes(entry.key)) continue;
      const close = suggest(entry.key, allowed);
      throw new ConfigError(
        `${this.prefix()}unknown field \`${entry.key}\`, expected ${expectedPhrase(allowed)}${
          at(entry.keyPos)
        }${close ? `. Did you mean \`${close}\`?` : ""}`,
        { code: "config.unknown_field" },
      );
    }
  }

  prefix(): string {
    return this.path ? `${this.path}: ` : "";
  }

  key(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  node(key: string): TreeNode | undefined {
    const entry = this.#entries.get(key);
    if (!entry || (entry.value.kind === "scalar" && entry.value.value === null)) return undefined;
    return entry.value;
  }

  has(key: string): boolean {
    return this.node(key) !== undefined;
  }

  require(key: string): TreeNode {
    const node = this.node(key);
    if (node === undefined) {
      const hint = missingHints[key];
      throw new ConfigError(`${this.prefix()}missing field \`${key}\`${at(this.pos)}`, {
        code: "config.missing_field",
        ...(hint ? { hint } : {}),
      });
    }
    return node;
  }

  typeError(key: string, node: TreeNode, expected: string): ConfigError {
    return new ConfigError(
      `${this.key(key)}: expected ${expected}, got ${describe(node)}${at(node.pos)}`,
      { code: "config.invalid_type" },
    );
  }

  str(key: string): string | undefined {
    const node = this.node(key);
    return node === undefined ? undefined : this.strOf(key, node);
  }

  strOf(key: string, node: TreeNode): string {
    if (node.kind !== "scalar" || typeof node.value !== "string") {
      throw this.typeError(key, node, "a string");
    }
    return node.value;
  }

  /** An integer in `[min, max]` (see {@linkcode BOUNDS}). */
  int(key: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
    const node = this.node(key);
    if (node === undefined) return undefined;
    if (node.kind !== "scalar" || typeof node.value !== "number" || !Number.isInteger(node.value)) {
      throw this.typeError(key, node, min >= 0 ? "a non-negative integer" : "an integer");
    }
    if (node.value < min || !Number.isSafeInteger(node.value)) {
      throw this.rangeError(key, node, `an integer >= ${min}`);
    }
    if (node.value > max) throw this.rangeError(key, node, `an integer <= ${max}`);
    return node.value;
  }

  /** {@linkcode int} with the bounds of {@linkcode BOUNDS}[`key`]. */
  bounded(key: keyof typeof BOUNDS): number | undefined {
    const [min, max] = BOUNDS[key];
    return this.int(key, min, max);
  }

  rangeError(key: string, node: TreeNode, expected: string): ConfigError {
    const value = node.kind === "scalar" ? String(node.value) : describe(node);
    return new ConfigError(
      `${this.key(key)}: invalid value ${value}, expected ${expected}${at(node.pos)}`,
      { code: "config.invalid_value" },
    );
  }

  /** A finite number in `[min, max]`. */
  num(key: string, min = -Infinity, max = Infinity): number | undefined {
    const node = this.node(key);
    if (node === undefined) return undefined;
    if (node.kind !== "scalar" || typeof node.value !== "number" || !Number.isFinite(node.value)) {
      throw this.typeError(key, node, "a number");
    }
    if (node.value < min) throw this.rangeError(key, node, `a number >= ${min}`);
    if (node.value > max) throw this.rangeError(key, node, `a number <= ${max}`);
    return node.value;
  }

  bool(key: string): boolean | undefined {
    const node = this.node(key);
    if (node === undefined) return undefined;
    if (node.kind !== "scalar" || typeof node.value !== "boolean") {
      throw this.typeError(key, node, "a boolean (true or false)");
    }
    return node.value;
  }

  enumOf<T extends string>(key: string, values: readonly T[]): T | undefined {
    const node = this.node(key);
    return node === undefined ? undefined : this.enumValue(key, node, values);
  }

  enumValue<T extends string>(key: string, node: TreeNode, values: readonly T[]): T {
    if (node.kind !== "scalar" || typeof node.value !== "string") {
      throw this.typeError(key, node, expectedPhrase(values));
    }
    const value = node.value;
    if ((values as readonly string[]).includes(value)) return value as T;
    const close = suggest(value, values);
    throw new ConfigError(
      `${this.key(key)}: unknown variant \`${value}\`, expected ${expectedPhrase(values)}${
        at(node.pos)
      }${close ? `. Did you mean \`${close}\`?` : ""}`,
      { code: "config.invalid_value" },
    );
  }

  map(key: string, allowed: readonly string[], ignoreUnknown = false): MapReader | undefined {
    const node = this.node(key);
    return node === undefined
      ? undefined
      : new MapReader(node, this.key(key), allowed, ignoreUnknown);
  }

  seq(key: string): readonly TreeNode[] | undefined {
    const node = this.node(key);
    if (node === undefined) return undefined;
    if (node.kind !== "seq") throw this.typeError(key, node, "a list");
    return node.items;
  }

  /** A free-form `name → value` mapping (column names are data, not keys). */
  dict<T>(key: string, read: (name: string, node: TreeNode) => T): Record<string, T> | undefined {
    const node = this.node(key);
    if (node === undefined) return undefined;
    if (node.kind !== "map") throw this.typeError(key, node, "a mapping");
    const out: Record<string, T> = {};
    for (const entry of node.entries) out[entry.key] = read(entry.key, entry.value);
    return out;
  }
}

/** `{a: X | undefined}` → `{a?: X}`: the shape after dropping undefined values. */
export type Compact<T> =
  & { [K in keyof T as undefined extends T[K] ? never : K]: T[K] }
  & { [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined> };

/**
 * Removes keys whose value is undefined, so optional fields stay absent.
 *
 * @param value An object literal with possibly-undefined fields.
 * @returns The same object without the undefined fields.
 */
export function compact<T extends object>(value: T): Compact<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Compact<T>;
}

function parseTuning(parent: MapReader): TuningSpec | undefined {
  const r = parent.map("tuning", TUNING_KEYS);
  if (!r) return undefined;
  return compact({
    profile: r.enumOf("profile", ENUMS.profile),
    batchSize: r.bounded("batch_size"),
    batchSizeMemoryMb: r.bounded("batch_size_memory_mb"),
    throttleMs: r.bounded("throttle_ms"),
    statementTimeoutS: r.bounded("statement_timeout_s"),
    maxRetries: r.bounded("max_retries"),
    retryBackoffMs: r.bounded("retry_backoff_ms"),
    lockTimeoutS: r.bounded("lock_timeout_s"),
    memoryThresholdMb: r.bounded("memory_threshold_mb"),
    maxBatchMemoryMb: r.bounded("max_batch_memory_mb"),
    onBatchMemoryExceeded: r.enumOf("on_batch_memory_exceeded", ENUMS.onBatchMemoryExceeded),
    adaptive: r.bool("adaptive"),
    minParallel: r.bounded("min_parallel"),
    maxValueMb: r.bounded("max_value_mb"),
  });
}

function parseSource(r: MapReader): RawSource {
  const type = r.enumValue("type", r.require("type"), ENUMS.sourceType);
  // Secrets are registered the moment they are read, before any later error can be raised.
  const url = r.str("url");
  if (url !== undefined) registerUrlSecrets(url);
  const password = r.str("password");
  if (password !== undefined) registerSecret(password);
  const tlsReader = r.map("tls", TLS_KEYS);
  const tls = tlsReader
    ? compact({
      mode: tlsReader.enumOf("mode", ENUMS.tlsMode),
      caFile: tlsReader.str("ca_file"),
      acceptInvalidCerts: tlsReader.bool("accept_invalid_certs"),
      acceptInvalidHostnames: tlsReader.bool("accept_invalid_hostnames"),
    })
    : undefined;
  return compact({
    type,
    url,
    urlEnv: r.str("url_env"),
    urlFile: r.str("url_file"),
    host: r.str("host"),
    port: r.bounded("port"),
    user: r.str("user"),
    password,
    passwordEnv: r.str("password_env"),
    database: r.str("database"),
    instance: r.str("instance"),
    environment: r.enumOf("environment", ENUMS.environment),
    tuning: parseTuning(r),
    tls,
  });
}

function parseDestination(r: MapReader): RawDestination {
  return compact({
    type: r.enumValue("type", r.require("type"), ENUMS.destination),
    path: r.str("path"),
    prefix: r.str("prefix"),
    bucket: r.str("bucket"),
    region: r.str("region"),
    endpoint: r.str("endpoint"),
    credentialsFile: r.str("credentials_file"),
    accessKeyEnv: r.str("access_key_env"),
    secretKeyEnv: r.str("secret_key_env"),
    sessionTokenEnv: r.str("session_token_env"),
    awsProfile: r.str("aws_profile"),
    accountName: r.str("account_name"),
    accountKeyEnv: r.str("account_key_env"),
    sasTokenEnv: r.str("sas_token_env"),
    allowAnonymous: r.bool("allow_anonymous"),
  });
}

function parseExport(node: TreeNode, index: number): RawExport {
  const r = new MapReader(node, `exports[${index}]`, EXPORT_KEYS);
  const name = r.strOf("name", r.require("name"));
  const cdc = r.map("cdc", CDC_KEYS, true);
  const meta = r.map("meta_columns", META_KEYS);
  const quality = r.map("quality", QUALITY_KEYS);
  const parquet = r.map("parquet", PARQUET_KEYS);
  const maxFileSizeNode = r.node("max_file_size");
  let maxFileSize: string | undefined;
  if (maxFileSizeNode !== undefined) {
    // A bare number of bytes may be written unquoted.
    if (maxFileSizeNode.kind === "scalar" && typeof maxFileSizeNode.value === "number") {
      maxFileSize = String(maxFileSizeNode.value);
    } else maxFileSize = r.strOf("max_file_size", maxFileSizeNode);
  }
  const uniqueColumns = quality?.seq("unique_columns")?.map((item, i) =>
    quality.strOf(`unique_columns[${i}]`, item)
  );
  return compact({
    index,
    name,
    query: r.str("query"),
    queryFile: r.str("query_file"),
    table: r.str("table"),
    mode: r.enumOf("mode", ENUMS.mode),
    cdc: cdc
      ? compact({
        checkpoint: cdc.str("checkpoint"),
        untilCurrent: cdc.bool("until_current"),
        maxEvents: cdc.int("max_events"),
        rollover: cdc.int("rollover"),
        rolloverMemoryMb: cdc.int("rollover_memory_mb"),
        rolloverSeconds: cdc.int("rollover_seconds"),
        serverId: cdc.int("server_id"),
        slot: cdc.str("slot"),
        publication: cdc.str("publication"),
        captureInstance: cdc.str("capture_instance"),
      })
      : undefined,
    cursorColumn: r.str("cursor_column"),
    cursorFallbackColumn: r.str("cursor_fallback_column"),
    incrementalCursorMode: r.enumOf("incremental_cursor_mode", ENUMS.cursorMode),
    chunkColumn: r.str("chunk_column"),
    chunkDense: r.bool("chunk_dense"),
    // 0 passes here so validate.ts can give its own message for it, the Rust tool's wording.
    chunkSize: r.int("chunk_size", 0, BOUNDS.chunk_size[1]),
    chunkSizeMemoryMb: r.bounded("chunk_size_memory_mb"),
    chunkCount: r.int("chunk_count", 0, BOUNDS.chunk_count[1]),
    chunkByDays: r.int("chunk_by_days", 0, BOUNDS.chunk_by_days[1]),
    chunkByKey: r.str("chunk_by_key"),
    parallel: r.int("parallel", 0, BOUNDS.parallel[1]),
    chunkCheckpoint: r.bool("chunk_checkpoint"),
    chunkMaxAttempts: r.bounded("chunk_max_attempts"),
    timeColumn: r.str("time_column"),
    timeColumnType: r.enumOf("time_column_type", ENUMS.timeColumnType),
    daysWindow: r.bounded("days_window"),
    partitionBy: r.str("partition_by"),
    partitionGranularity: r.enumOf("partition_granularity", ENUMS.granularity),
    format: r.enumValue("format", r.require("format"), ENUMS.format),
    compression: r.enumOf("compression", ENUMS.compression),
    compressionLevel: r.int("compression_level", Number.MIN_SAFE_INTEGER),
    compressionProfile: r.enumOf("compression_profile", ENUMS.compressionProfile),
    skipEmpty: r.bool("skip_empty"),
    destination: parseDestination(
      new MapReader(r.require("destination"), r.key("destination"), DESTINATION_KEYS),
    ),
    verify: r.enumOf("verify", ENUMS.verify),
    metaColumns: meta
      ? compact({ exportedAt: meta.bool("exported_at"), rowHash: meta.bool("row_hash") })
      : undefined,
    quality: quality
      ? compact({
        rowCountMin: quality.bounded("row_count_min"),
        rowCountMax: quality.bounded("row_count_max"),
        nullRatioMax: quality.dict("null_ratio_max", (column, value) => {
          if (value.kind !== "scalar" || typeof value.value !== "number") {
            throw quality.typeError(`null_ratio_max.${column}`, value, "a number between 0 and 1");
          }
          if (!(value.value >= 0 && value.value <= 1)) {
            throw quality.rangeError(`null_ratio_max.${column}`, value, "a number between 0 and 1");
          }
          return value.value;
        }),
        uniqueColumns,
        uniqueMaxEntries: quality.bounded("unique_max_entries"),
      })
      : undefined,
    maxFileSize,
    tuning: parseTuning(r),
    sourceGroup: r.str("source_group"),
    reconcileRequired: r.bool("reconcile_required"),
    columns: r.dict("columns", (column, value) => r.strOf(`columns.${column}`, value)),
    target: r.str("target"),
    onSchemaDrift: r.enumOf("on_schema_drift", ENUMS.onSchemaDrift),
    shapeDriftWarnFactor: r.num("shape_drift_warn_factor", 0, 1_000_000),
    parquet: parquet
      ? compact({
        rowGroupStrategy: parquet.enumOf("row_group_strategy", ENUMS.rowGroupStrategy),
        rowGroupRows: parquet.bounded("row_group_rows"),
        targetRowGroupMb: parquet.bounded("target_row_group_mb"),
        maxRowGroupMb: parquet.bounded("max_row_group_mb"),
      })
      : undefined,
    parquetTypes: r.enumOf("parquet_types", ENUMS.parquetTypes),
  });
}

function parseNotifications(r: MapReader): RawNotifications {
  const slack = r.map("slack", SLACK_KEYS);
  const webhook = r.map("webhook", WEBHOOK_KEYS);
  const events = (m: MapReader) =>
    m.seq("on")?.map((item) => m.enumValue("on", item, ENUMS.notifyOn));
  const webhookUrl = slack?.str("webhook_url");
  if (webhookUrl !== undefined) registerSecret(webhookUrl);
  return compact({
    slack: slack
      ? compact({ webhookUrl, webhookUrlEnv: slack.str("webhook_url_env"), on: events(slack) })
      : undefined,
    webhook: webhook
      ? compact({
        urlEnv: webhook.str("url_env"),
        urlFile: webhook.str("url_file"),
        secretEnv: webhook.str("secret_env"),
        on: events(webhook),
        timeoutS: webhook.num("timeout_s", 1, 300),
      })
      : undefined,
  });
}

/**
 * Parses the YAML tree into the config as written.
 *
 * @param root The document root.
 * @returns The typed, not yet validated config.
 * @throws {ConfigError} `config.unknown_field`, `config.missing_field`, `config.invalid_type` or
 *   `config.invalid_value`, naming the key path and position.
 */
export function parseConfigTree(root: TreeNode): RawConfig {
  const r = new MapReader(root, "", TOP_KEYS);
  const sourceNode = r.require("source");
  const exportsNode = r.require("exports");
  const source = parseSource(new MapReader(sourceNode, "source", SOURCE_KEYS));
  if (exportsNode.kind !== "seq") throw r.typeError("exports", exportsNode, "a list");
  const exports = exportsNode.items.map((item, index) => parseExport(item, index));
  const notificationsReader = r.map("notifications", NOTIFICATIONS_KEYS);
  const stateReader = r.map("state", STATE_KEYS);
  return compact({
    source,
    exports,
    notifications: notificationsReader ? parseNotifications(notificationsReader) : undefined,
    state: stateReader ? compact({ urlEnv: stateReader.str("url_env") }) : undefined,
    parallelExports: r.bool("parallel_exports"),
    parallelExportProcesses: r.bool("parallel_export_processes"),
  });
}
