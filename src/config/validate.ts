/**
 * Semantic validation of a typed config, rule by rule in the Rust tool's order: the first failing
 * rule wins, so a config with several mistakes gets the same first message from both tools.
 *
 * Layer: config. Pure: file existence is asked through an injected function.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";
import { parseColumnType } from "../core/column_type.ts";
import { KNOWN_PLACEHOLDERS, unknownPlaceholders } from "../plan/placeholders.ts";
import { clip } from "../_util/text.ts";
import { endpointHost, isLoopbackHost } from "../_util/loopback.ts";
import { suggest } from "./suggest.ts";
import type { RawConfig, RawExport, RawSource } from "./schema.ts";
import { parseMaxFileSize } from "./size.ts";

/** Options of {@linkcode validateConfig}. */
export interface ValidateOptions {
  /** Whether a file exists (paths are resolved against the config dir by the caller). */
  readonly fileExists: (path: string) => boolean;
}

/** What `table:` accepts: `name` or `schema.name`, ASCII identifiers (also the JSON Schema's). */
export const TABLE_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$/;

const connectionHint = [
  "configure exactly one connection method under source:",
  "  url_env: PG_URL              # recommended: the URL comes from the environment",
  "  url_file: secrets/pg.url     # a file holding the URL, relative to the config",
  "  url: postgresql://user@host:5432/db",
  "  host/port/user/database (+ password_env: PG_PASSWORD)",
].join("\n");

const chunkedHint = [
  "pick a chunking strategy:",
  "  chunk_column: id                    # integer range windows of chunk_size rows",
  "  chunk_column: id + chunk_dense: true # ROW_NUMBER paging",
  "  chunk_column: created_at + chunk_by_days: 7",
  "  table: schema.name                  # auto-resolve the integer primary key (or chunk_by_key)",
].join("\n");

function fail(message: string, code: string, hint?: string): never {
  throw new ConfigError(message, { code, ...(hint === undefined ? {} : { hint }) });
}

/**
 * Checks every semantic rule that applies at load time (before any connection is opened).
 *
 * @param config The typed config as written.
 * @param options File-existence probe for `credentials_file`.
 * @throws {ConfigError} On the first rule that fails; the message names the export and key.
 */
export function validateConfig(config: RawConfig, options: ValidateOptions): void {
  if (config.exports.length === 0) {
    fail(
      "at least one export must be defined (got empty list)",
      "config.no_exports",
      "add an export under `exports:`, or scaffold one with `rivet init --source-env DATABASE_URL -o rivet.yaml`",
    );
  }
  const seen = new Map<string, number>();
  for (const exp of config.exports) {
    const first = seen.get(exp.name);
    if (first !== undefined) {
      fail(
        `duplicate export name '${exp.name}' (exports[${first}] and exports[${exp.index}]); ` +
          "export names must be unique",
        "config.duplicate_export",
      );
    }
    seen.set(exp.name, exp.index);
  }
  validateSource(config.source);
  for (const exp of config.exports) validateExport(exp, config.source, options);
  validateNotifications(config);
}

/** Each notification target names its URL exactly one way. */
function validateNotifications(config: RawConfig): void {
  const { slack, webhook } = config.notifications ?? {};
  const targets = [
    ["notifications.slack", slack, [slack?.webhookUrl, slack?.webhookUrlEnv], "webhook_url_env"],
    ["notifications.webhook", webhook, [webhook?.urlEnv, webhook?.urlFile], "url_env"],
  ] as const;
  for (const [where, target, ways, recommended] of targets) {
    if (target === undefined) continue;
    const count = ways.filter((w) => w !== undefined).length;
    if (count === 1) continue;
    fail(
      `${where}: ${count === 0 ? "no URL is configured" : "the URL is configured twice"}; ` +
        "name it exactly one way",
      "config.notification_url",
      where.endsWith("slack")
        ? `set ${recommended}: SLACK_WEBHOOK_URL (a variable holding the URL), or webhook_url`
        : `set ${recommended}: RIVET_WEBHOOK_URL (a variable holding the URL), or url_file: ` +
          "a file holding it; an inline URL is not accepted, since it usually carries a token",
    );
  }
}

function validateSource(source: RawSource): void {
  if (source.tuning?.batchSize !== undefined && source.tuning.batchSizeMemoryMb !== undefined) {
    fail(
      "source.tuning: batch_size and batch_size_memory_mb are mutually exclusive; set only one",
      "config.conflicting_keys",
    );
  }
  const urlForms = [source.url, source.urlEnv, source.urlFile].filter((v) => v !== undefined);
  const structured = [
    source.host,
    source.port,
    source.user,
    source.database,
    source.password,
    source.passwordEnv,
  ].some((v) => v !== undefined);
  if (source.instance !== undefined && source.type !== "mssql") {
    fail(
      `source.instance names a SQL Server named instance; source type '${source.type}' has none`,
      "config.invalid_value",
      "remove `instance:`, or set `type: mssql`",
    );
  }
  if (source.instance !== undefined && urlForms.length > 0) {
    fail(
      "source.instance belongs to the structured form; with a URL write it as `?instance=NAME`",
      "config.conflicting_keys",
      "move the instance name into the URL, or use host/user/database instead of the URL",
    );
  }
  if (urlForms.length === 0 && !structured) {
    fail("source: no connection configured", "config.missing_connection", connectionHint);
  }
  if (urlForms.length > 1) {
    fail(
      `source: specify exactly one of 'url', 'url_env', or 'url_file' (got ${urlForms.length} set)`,
      "config.conflicting_keys",
      "keep url_env: the URL and its password stay out of the config file",
    );
  }
  if (urlForms.length === 1 && structured) {
    fail(
      "source: pick either URL-based connection (url / url_env / url_file) OR structured fields " +
        "(host, port, user, password / password_env, database), not both",
      "config.conflicting_keys",
      "remove the structured fields, or remove the url key",
    );
  }
  if (urlForms.length === 0) {
    const examples: Record<string, string> = {
      host: "host: db.example.com",
      user: "user: rivet_reader",
      database: "database: app",
    };
    for (const key of ["host", "user", "database"] as const) {
      if (source[key] === undefined) {
        fail(
          `source: structured config is missing '${key}'`,
          "config.missing_key",
          `add \`${examples[key]}\` under source:, or use url_env instead`,
        );
      }
    }
    if (source.password !== undefined && source.passwordEnv !== undefined) {
      fail(
        "source: specify 'password' OR 'password_env', not both",
        "config.conflicting_keys",
        "keep password_env so the password stays out of the config file",
      );
    }
  }
}

function hasDotDot(path: string): boolean {
  return path.split(/[\\/]/).includes("..");
}

function isAbsolutePath(path: string): boolean {
  return path.startsWith("/") || path.startsWith("\\") || /^[A-Za-z]:/.test(path);
}

/** Longest export name: it becomes part of file names, object keys and state keys. */
export const EXPORT_NAME_MAX = 128;

// deno-lint-ignore no-control-regex
const controlChar = /[\x00-\x1f\x7f-\x9f]/;
// deno-lint-ignore no-control-regex
const controlChars = /[\x00-\x1f\x7f-\x9f]/g;

/** Shows a name in a message: control characters escaped, long names clipped. */
function shown(text: string): string {
  const escaped = text.replace(
    controlChars,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  return clip(escaped, 80);
}

/**
 * Why an export name is unsafe, or undefined when it is fine. Names are ASCII letters, digits,
 * `_`, `.` and `-` (safe in file names on every OS, in object keys and in state keys), up to
 * {@linkcode EXPORT_NAME_MAX} characters, not starting with `.` or `-` and without `..`.
 */
function nameProblem(name: string): string | undefined {
  if (name.length === 0) return "it is empty";
  if (name.length > EXPORT_NAME_MAX) {
    return `it is ${name.length} characters long (at most ${EXPORT_NAME_MAX})`;
  }
  if (controlChar.test(name)) return "it contains a control character";
  if (name.includes(":")) {
    return "it contains ':', which Windows does not allow in file names and which makes a " +
      "path that starts with the name read as a drive ('c:') or a URL scheme ('s3:')";
  }
  const bad = /[^A-Za-z0-9_.-]/.exec(name);
  if (bad) return `it contains '${bad[0]}', which is not allowed`;
  if (name.startsWith(".") || name.startsWith("-")) return "it starts with '.' or '-'";
  if (name.includes("..")) return "it contains '..'";
  return undefined;
}

function validateExport(exp: RawExport, source: RawSource, options: ValidateOptions): void {
  const where = `export '${exp.name}'`;
  const mode = exp.mode ?? "full";
  const problem = nameProblem(exp.name);
  if (problem !== undefined) {
    fail(
      `export name '${
        shown(exp.name)
      }' (index ${exp.index}) is not safe as a file name: ${problem}`,
      "config.unsafe_name",
      "export names may use ASCII letters, digits, '_', '.' and '-' (e.g. orders_2026 or " +
        "sales.daily), up to 128 characters; use '_' or '-' instead of ':' and spaces",
    );
  }
  const merged = { ...source.tuning, ...exp.tuning };
  if (merged.batchSize !== undefined && merged.batchSizeMemoryMb !== undefined) {
    fail(
      `${where}: tuning sets both batch_size and batch_size_memory_mb ` +
        `(after merging source.tuning); they are mutually exclusive, set only one`,
      "config.conflicting_keys",
    );
  }
  const queryForms = [exp.query, exp.queryFile, exp.table].filter((v) => v !== undefined).length;
  if (queryForms !== 1) {
    fail(
      `${where}: specify exactly one of 'query', 'query_file', or 'table' (got ${queryForms} set)`,
      "config.conflicting_keys",
    );
  }
  if (exp.queryFile !== undefined) {
    if (hasDotDot(exp.queryFile)) {
      fail(
        `${where}: query_file path must not contain '..'`,
        "config.unsafe_path",
        "keep query files inside the config directory and use a relative path",
      );
    }
    if (isAbsolutePath(exp.queryFile)) {
      fail(
        `${where}: query_file path must be relative to the config directory, not absolute`,
        "config.unsafe_path",
        "move the file next to the config and use a relative path",
      );
    }
  }
  if (exp.table !== undefined && !TABLE_PATTERN.test(exp.table)) {
    fail(
      `${where}: table '${exp.table}' must be 'name' or 'schema.name' made of ASCII letters, ` +
        "digits and '_' (not starting with a digit)",
      "config.invalid_value",
      "use query: for quoted or unusual identifiers",
    );
  }
  validateDestination(exp, where, options);
  if (exp.maxFileSize !== undefined) {
    try {
      parseMaxFileSize(exp.maxFileSize);
    } catch (error) {
      if (error instanceof ConfigError) fail(`${where}: ${error.message}`, error.code);
      throw error;
    }
  }
  if (exp.compressionLevel !== undefined) {
    const codec = exp.compression ?? "zstd";
    const range = codec === "zstd" ? [1, 22] : codec === "gzip" ? [0, 10] : undefined;
    if (range === undefined) {
      fail(
        `${where}: compression_level is only valid with compression zstd (1..22) or gzip (0..10), ` +
          `not '${codec}'`,
        "config.invalid_value",
        "remove compression_level or switch the codec",
      );
    }
    if (exp.compressionLevel < range[0]! || exp.compressionLevel > range[1]!) {
      fail(
        `${where}: compression_level ${exp.compressionLevel} is out of range for ${codec} ` +
          `(${range[0]}..${range[1]})`,
        "config.invalid_value",
      );
    }
  }
  validateModeKeys(exp, where, mode);
  for (const [column, text] of Object.entries(exp.columns ?? {})) {
    try {
      parseColumnType(text);
    } catch (error) {
      if (error instanceof ConfigError) {
        fail(`${where}: columns.${column}: ${error.message}`, error.code);
      }
      throw error;
    }
  }
}

function validateDestination(exp: RawExport, where: string, options: ValidateOptions): void {
  const d = exp.destination;
  const cloud = d.type === "s3" || d.type === "gcs" || d.type === "azure";
  if (cloud && d.endpoint !== undefined && d.allowAnonymous !== true) {
    const host = endpointHost(d.endpoint);
    if (host === undefined || !isLoopbackHost(host)) {
      fail(
        `${where}: destination.endpoint host '${host ?? d.endpoint}' is not a loopback address; ` +
          "custom endpoints must be local emulators unless allow_anonymous: true",
        "config.endpoint_not_loopback",
        "remove endpoint to use the provider's default, or point it at 127.0.0.1",
      );
    }
  }
  for (const key of ["path", "prefix", "bucket"] as const) {
    const value = d[key];
    if (value !== undefined && controlChar.test(value)) {
      fail(
        `${where}: destination.${key} '${shown(value)}' contains a control character`,
        "config.invalid_value",
        `write destination.${key} on one line, without control characters`,
      );
    }
  }
  for (const key of ["path", "prefix"] as const) {
    const value = d[key];
    const unknown = value === undefined ? [] : unknownPlaceholders(value);
    if (unknown.length > 0) {
      const close = suggest(unknown[0]!, KNOWN_PLACEHOLDERS);
      fail(
        `${where}: destination.${key} has unknown placeholder ${
          unknown.map((u) => `{${shown(u)}}`).join(", ")
        }`,
        "config.unknown_placeholder",
        `known placeholders: ${KNOWN_PLACEHOLDERS.map((k) => `{${k}}`).join(", ")}` +
          (close === undefined ? "" : `; did you mean {${close}}?`),
      );
    }
  }
  if (d.type === "local" && d.path !== undefined && d.path.trim() === "") {
    fail(
      `${where}: destination.path is empty`,
      "config.invalid_value",
      "name the output folder, e.g. `path: ./out`",
    );
  }
  if (d.type === "local") {
    for (const key of ["path", "prefix"] as const) {
      const value = d[key];
      if (value !== undefined && hasDotDot(value)) {
        fail(
          `${where}: destination.${key} must not contain a '..' component`,
          "config.unsafe_path",
          "write the output directory without '..'; absolute paths are allowed",
        );
      }
    }
  }
  if (d.type === "s3" && (d.accessKeyEnv === undefined) !== (d.secretKeyEnv === undefined)) {
    fail(
      `${where}: destination.access_key_env and destination.secret_key_env must be set together`,
      "config.conflicting_keys",
      "set both, or neither to use the default AWS credential chain",
    );
  }
  if (d.type === "gcs" && d.allowAnonymous === true && d.credentialsFile !== undefined) {
    fail(
      `${where}: destination.allow_anonymous cannot be combined with credentials_file`,
      "config.conflicting_keys",
    );
  }
  if (d.type === "azure") {
    const key = d.accountKeyEnv !== undefined;
    const sas = d.sasTokenEnv !== undefined;
    if (d.allowAnonymous === true && (key || sas)) {
      fail(
        `${where}: destination.allow_anonymous cannot be combined with account_key_env or ` +
          "sas_token_env",
        "config.conflicting_keys",
      );
    }
    if (key && sas) {
      fail(
        `${where}: destination sets both account_key_env and sas_token_env; set only one`,
        "config.conflicting_keys",
      );
    }
    if (d.accountName === undefined) {
      fail(`${where}: azure destination requires account_name`, "config.missing_key");
    }
    if (!key && !sas && d.allowAnonymous !== true) {
      fail(
        `${where}: azure destination requires account_key_env or sas_token_env`,
        "config.missing_key",
      );
    }
  }
  if (d.credentialsFile !== undefined && !options.fileExists(d.credentialsFile)) {
    fail(
      `${where}: destination.credentials_file '${d.credentialsFile}' does not exist`,
      "config.file_not_found",
      "fix the path (relative paths start at the config directory)",
    );
  }
  if (d.type === "local" && d.path === undefined) {
    fail(
      `${where}: destination.path is required for a local destination`,
      "config.missing_key",
      "add e.g. `path: ./out`",
    );
  }
  if (cloud && d.bucket === undefined) {
    fail(
      `${where}: destination.bucket is required for a ${d.type} destination`,
      "config.missing_key",
    );
  }
}

function validateModeKeys(exp: RawExport, where: string, mode: string): void {
  if (mode === "incremental" && exp.cursorColumn === undefined) {
    fail(
      `${where}: incremental mode requires cursor_column`,
      "config.missing_key",
      "add `cursor_column: updated_at` (a unique, monotonic column is safest)",
    );
  }
  const coalesce = exp.incrementalCursorMode === "coalesce";
  if (coalesce && exp.cursorFallbackColumn === undefined) {
    fail(
      `${where}: incremental_cursor_mode: coalesce requires cursor_fallback_column`,
      "config.missing_key",
    );
  }
  if (!coalesce && exp.cursorFallbackColumn !== undefined) {
    fail(
      `${where}: cursor_fallback_column requires incremental_cursor_mode: coalesce`,
      "config.conflicting_keys",
    );
  }
  const chunked = mode === "chunked";
  if (chunked && exp.chunkColumn === undefined && exp.table === undefined) {
    fail(
      `${where}: chunked mode requires chunk_column or table:`,
      "config.missing_key",
      chunkedHint,
    );
  }
  if (exp.chunkSize === 0) fail(`${where}: chunk_size must be at least 1`, "config.invalid_value");
  if (chunked && exp.parallel === 0) {
    fail(`${where}: parallel must be at least 1`, "config.invalid_value");
  }
  if (exp.chunkCount === 0) {
    fail(`${where}: chunk_count must be at least 1`, "config.invalid_value");
  }
  if (exp.chunkCount !== undefined && exp.chunkDense === true) {
    fail(`${where}: chunk_count cannot be combined with chunk_dense`, "config.conflicting_keys");
  }
  if (exp.chunkCount !== undefined && exp.chunkByDays !== undefined) {
    fail(`${where}: chunk_count cannot be combined with chunk_by_days`, "config.conflicting_keys");
  }
  if (mode === "time_window" && exp.timeColumn === undefined) {
    fail(`${where}: time_window mode requires time_column`, "config.missing_key");
  }
  if (mode === "time_window" && exp.daysWindow === undefined) {
    fail(`${where}: time_window mode requires days_window`, "config.missing_key");
  }
  if (mode === "cdc" && exp.table === undefined) {
    fail(`${where}: cdc mode requires table:`, "config.missing_key");
  }
  if (mode === "cdc" && (exp.query !== undefined || exp.queryFile !== undefined)) {
    fail(
      `${where}: cdc mode reads a table's change log; query and query_file are not allowed`,
      "config.conflicting_keys",
    );
  }
  if (exp.chunkDense === true && !chunked) {
    fail(`${where}: chunk_dense is only valid with mode: chunked`, "config.conflicting_keys");
  }
  if (exp.cdc !== undefined && mode !== "cdc") {
    fail(`${where}: a cdc: block is only valid with mode: cdc`, "config.conflicting_keys");
  }
  if (exp.chunkByDays !== undefined) {
    if (!chunked) {
      fail(`${where}: chunk_by_days is only valid with mode: chunked`, "config.conflicting_keys");
    }
    if (exp.chunkDense === true) {
      fail(
        `${where}: chunk_by_days cannot be combined with chunk_dense`,
        "config.conflicting_keys",
      );
    }
    if (exp.chunkByDays === 0) {
      fail(`${where}: chunk_by_days must be at least 1`, "config.invalid_value");
    }
  }
}
