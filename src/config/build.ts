/**
 * Validated config as written → `ConfigSpec`: defaults applied, secrets wrapped, compression
 * profile resolved, relative file paths resolved against the config's folder, load-time warnings
 * collected.
 *
 * One rule for the files a config names (`url_file`, `tls.ca_file`, `credentials_file`): a
 * relative path starts at the folder holding the config file, resolved once, here, so every
 * later reader (the sources, the GCS client, child processes and workers, the permission
 * grants) gets the same absolute path whatever the working directory. (`query_file` follows the
 * same rule; it stays relative in the spec because it must also stay inside that folder.)
 *
 * Layer: config. Pure, no I/O.
 *
 * @module
 */
import { resolve } from "node:path";
import type {
  Compression,
  CompressionProfile,
  ConfigSpec,
  ConnectionSpec,
  DestinationSpec,
  ExportSpec,
  FormatSpec,
  NotificationsSpec,
  QuerySpec,
  SourceKind,
  SourceSpec,
  Warning,
} from "../core/spec.ts";
import { compact } from "./schema.ts";
import type { RawConfig, RawExport, RawSource } from "./schema.ts";
import { parseMaxFileSize } from "./size.ts";

/** Default ports per engine. */
export const DEFAULT_PORTS: Readonly<Record<SourceKind, number>> = {
  postgres: 5432,
  mysql: 3306,
  mssql: 1433,
};

/** What each `compression_profile` means. */
export const COMPRESSION_PROFILES: Readonly<
  Record<CompressionProfile, { readonly compression: Compression; readonly level?: number }>
> = {
  none: { compression: "none" },
  fast: { compression: "snappy" },
  balanced: { compression: "zstd", level: 3 },
  compact: { compression: "zstd", level: 9 },
};

/** Where the config lives. */
export interface BuildContext {
  readonly path: string;
  readonly dir: string;
}

/** A path a config names, made absolute against the config's folder. */
function fromConfigDir(path: string, context: BuildContext): string {
  return resolve(context.dir, path);
}

function urlHasPassword(url: string): boolean {
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(url)?.[1] ?? "";
  const at = authority.lastIndexOf("@");
  return at >= 0 && authority.slice(0, at).includes(":");
}

function buildConnection(
  source: RawSource,
  warnings: Warning[],
  context: BuildContext,
): ConnectionSpec {
  if (source.url !== undefined) {
    if (urlHasPassword(source.url)) {
      warnings.push({
        code: "config.plaintext_password",
        message: "source.url embeds a plaintext password; move the URL to url_env or url_file",
      });
    }
    return { form: "url", url: { secret: source.url } };
  }
  if (source.urlEnv !== undefined) return { form: "url_env", env: source.urlEnv };
  if (source.urlFile !== undefined) {
    return { form: "url_file", path: fromConfigDir(source.urlFile, context) };
  }
  if (source.password !== undefined) {
    warnings.push({
      code: "config.plaintext_password",
      message: "source.password is written in plaintext; use password_env instead",
    });
  }
  return {
    form: "structured",
    host: source.host!,
    port: source.port ?? DEFAULT_PORTS[source.type],
    user: source.user!,
    database: source.database!,
    ...(source.password === undefined ? {} : { password: { secret: source.password } }),
    ...(source.passwordEnv === undefined ? {} : { passwordEnv: source.passwordEnv }),
    ...(source.instance === undefined ? {} : { instance: source.instance }),
  };
}

function buildSource(source: RawSource, warnings: Warning[], context: BuildContext): SourceSpec {
  const tls = source.tls;
  return {
    kind: source.type,
    connection: buildConnection(source, warnings, context),
    ...(source.environment === undefined ? {} : { environment: source.environment }),
    ...(source.tuning === undefined ? {} : { tuning: source.tuning }),
    ...(tls === undefined ? {} : {
      tls: {
        mode: tls.mode ?? "verify-full",
        ...(tls.caFile === undefined ? {} : { caFile: fromConfigDir(tls.caFile, context) }),
        acceptInvalidCerts: tls.acceptInvalidCerts ?? false,
        acceptInvalidHostnames: tls.acceptInvalidHostnames ?? false,
      },
    }),
  };
}

function buildQuery(exp: RawExport): QuerySpec {
  if (exp.query !== undefined) return { kind: "query", sql: exp.query };
  if (exp.queryFile !== undefined) return { kind: "query_file", path: exp.queryFile };
  const [first, second] = exp.table!.split(".");
  return second === undefined
    ? { kind: "table", table: first! }
    : { kind: "table", schema: first!, table: second };
}

function buildFormat(exp: RawExport, warnings: Warning[]): FormatSpec {
  const profile = exp.compressionProfile;
  let compression: Compression;
  let level: number | undefined;
  if (exp.format === "csv") {
    compression = "none";
  } else if (profile !== undefined) {
    const preset = COMPRESSION_PROFILES[profile];
    compression = preset.compression;
    level = preset.level;
    const codecConflict = exp.compression !== undefined && exp.compression !== compression;
    const levelConflict = exp.compressionLevel !== undefined && exp.compressionLevel !== level;
    if (codecConflict || levelConflict) {
      warnings.push({
        code: "config.compression_profile_override",
        export: exp.name,
        message: `export '${exp.name}': compression_profile '${profile}' overrides ` +
          `compression/compression_level; remove one of them`,
      });
    }
  } else {
    compression = exp.compression ?? "zstd";
    level = exp.compressionLevel;
  }
  const p = exp.parquet;
  return {
    kind: exp.format,
    compression,
    ...(level === undefined ? {} : { compressionLevel: level }),
    ...(profile === undefined ? {} : { compressionProfile: profile }),
    ...(p === undefined ? {} : {
      parquet: {
        rowGroupStrategy: p.rowGroupStrategy ?? "auto",
        ...(p.rowGroupRows === undefined ? {} : { rowGroupRows: p.rowGroupRows }),
        targetRowGroupMb: p.targetRowGroupMb ?? 128,
        ...(p.maxRowGroupMb === undefined ? {} : { maxRowGroupMb: p.maxRowGroupMb }),
      },
    }),
    ...(exp.parquetTypes === "portable" ? { parquetTypes: "portable" as const } : {}),
  };
}

function buildDestination(exp: RawExport, context: BuildContext): DestinationSpec {
  const { type, allowAnonymous, credentialsFile, ...rest } = exp.destination;
  return {
    kind: type,
    ...rest,
    ...(credentialsFile === undefined
      ? {}
      : { credentialsFile: fromConfigDir(credentialsFile, context) }),
    allowAnonymous: allowAnonymous ?? false,
  };
}

function buildExport(exp: RawExport, warnings: Warning[], context: BuildContext): ExportSpec {
  return {
    name: exp.name,
    index: exp.index,
    mode: exp.mode ?? "full",
    query: buildQuery(exp),
    format: buildFormat(exp, warnings),
    destination: buildDestination(exp, context),
    skipEmpty: exp.skipEmpty ?? false,
    verify: exp.verify ?? "size",
    metaColumns: {
      exportedAt: exp.metaColumns?.exportedAt ?? false,
      rowHash: exp.metaColumns?.rowHash ?? false,
    },
    columns: exp.columns ?? {},
    onSchemaDrift: exp.onSchemaDrift ?? "warn",
    shapeDriftWarnFactor: exp.shapeDriftWarnFactor ?? 2.0,
    reconcileRequired: exp.reconcileRequired ?? false,
    incrementalCursorMode: exp.incrementalCursorMode ?? "single_column",
    chunkDense: exp.chunkDense ?? false,
    chunkSize: exp.chunkSize ?? 100_000,
    parallel: exp.parallel ?? 1,
    chunkCheckpoint: exp.chunkCheckpoint ?? false,
    timeColumnType: exp.timeColumnType ?? "timestamp",
    partitionGranularity: exp.partitionGranularity ?? "day",
    ...compact({
      maxFileSize: exp.maxFileSize === undefined ? undefined : parseMaxFileSize(exp.maxFileSize),
      tuning: exp.tuning,
      quality: exp.quality,
      target: exp.target,
      sourceGroup: exp.sourceGroup,
      cursorColumn: exp.cursorColumn,
      cursorFallbackColumn: exp.cursorFallbackColumn,
      chunkColumn: exp.chunkColumn,
      chunkSizeMemoryMb: exp.chunkSizeMemoryMb,
      chunkCount: exp.chunkCount,
      chunkByDays: exp.chunkByDays,
      chunkByKey: exp.chunkByKey,
      chunkMaxAttempts: exp.chunkMaxAttempts,
      timeColumn: exp.timeColumn,
      daysWindow: exp.daysWindow,
      partitionBy: exp.partitionBy,
      cdc: exp.cdc,
    }),
  };
}

function buildNotifications(
  config: RawConfig,
  context: BuildContext,
): NotificationsSpec | undefined {
  const { slack, webhook } = config.notifications ?? {};
  if (config.notifications === undefined) return undefined;
  return {
    ...(slack === undefined ? {} : {
      slack: {
        ...(slack.webhookUrl === undefined ? {} : { webhookUrl: { secret: slack.webhookUrl } }),
        ...(slack.webhookUrlEnv === undefined ? {} : { webhookUrlEnv: slack.webhookUrlEnv }),
        on: slack.on ?? ["failure"],
      },
    }),
    ...(webhook === undefined ? {} : {
      webhook: {
        ...(webhook.urlEnv === undefined ? {} : { urlEnv: webhook.urlEnv }),
        ...(webhook.urlFile === undefined
          ? {}
          : { urlFile: fromConfigDir(webhook.urlFile, context) }),
        ...(webhook.secretEnv === undefined ? {} : { secretEnv: webhook.secretEnv }),
        on: webhook.on ?? ["failure"],
        timeoutS: webhook.timeoutS ?? 30,
      },
    }),
  };
}

/**
 * Turns a validated config into the `ConfigSpec` contract.
 *
 * @param config The config as written, already validated.
 * @param context Absolute path and directory of the config file.
 * @returns The spec, with warnings for plaintext passwords and overridden compression keys.
 */
export function buildConfigSpec(config: RawConfig, context: BuildContext): ConfigSpec {
  const warnings: Warning[] = [];
  const source = buildSource(config.source, warnings, context);
  const exports = config.exports.map((exp) => buildExport(exp, warnings, context));
  const notifications = buildNotifications(config, context);
  return {
    path: context.path,
    dir: context.dir,
    source,
    exports,
    ...(notifications === undefined ? {} : { notifications }),
    ...(config.state?.urlEnv === undefined ? {} : { stateUrlEnv: config.state.urlEnv }),
    parallelExports: config.parallelExports ?? false,
    parallelExportProcesses: config.parallelExportProcesses ?? false,
    warnings,
  };
}
