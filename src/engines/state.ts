/**
 * The one place that chooses the state backend: the SQLite file next to the config (the default),
 * or a PostgreSQL schema when `RIVET_STATE_URL` is set, so that several processes on several hosts
 * share one checkpointed run. Every run, engine and `state` command opens its store here.
 *
 * Layer: engines (composition root): joins `state/` with the PostgreSQL wire client of
 * `sources/postgres/` through the `core/sql_session.ts` seam.
 *
 * @module
 */
import { resolve } from "node:path";
import { parseConnectionUrl } from "../config/mod.ts";
import { ConfigError, RivetError, TransientError } from "../core/errors.ts";
import type { TlsSpec } from "../core/spec.ts";
import type { StateStore } from "../core/state.ts";
import { PgSqlSession } from "../sources/postgres/mod.ts";
import {
  checkSchemaName,
  DEFAULT_STATE_SCHEMA,
  openStateStore,
  PostgresStateStore,
} from "../state/mod.ts";
import { isLoopbackHost } from "../_util/loopback.ts";

/** The variable that selects the PostgreSQL state backend. */
export const STATE_URL_ENV = "RIVET_STATE_URL";

/** Test hook: the lease of chunk claims on the PostgreSQL state backend, in ms. */
export const TEST_LEASE_ENV = "RIVET_TEST_LEASE_MS";

/** Options of {@linkcode openRunStateStore}. */
export interface OpenRunStateStoreOptions {
  /** Environment lookup; the process environment by default. */
  readonly env?: (name: string) => string | undefined;
  /** Receives a warning (plaintext to a remote state database); stderr by default, once. */
  readonly warn?: (message: string) => void;
  /**
   * The config's `state.url_env`: the variable holding the URL instead of `RIVET_STATE_URL`.
   * Named but unset is an error (a silent fallback to SQLite would split the state of hosts).
   */
  readonly urlEnv?: string;
}

/** Where the PostgreSQL state store lives, as parsed from its URL. */
export interface StateDatabase {
  /** The variable the URL came from, named in messages. */
  readonly variable: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string | undefined;
  readonly database: string;
  readonly schema: string;
  readonly tls: TlsSpec | undefined;
  /** `host:port/database`, for messages. */
  readonly where: string;
  /** Warnings of the TLS policy. */
  readonly warnings: readonly string[];
}

const SSL_MODES = new Set(["disable", "require", "verify-ca", "verify-full"]);

function tlsOf(params: Readonly<Record<string, string>>, variable: string): TlsSpec | undefined {
  const mode = params.sslmode;
  if (mode === undefined) return undefined;
  if (!SSL_MODES.has(mode)) {
    throw new ConfigError(
      `${variable} has sslmode=${mode.replace(/[^\x20-\x7e]/g, "?")}, which rivet does not ` +
        "support",
      {
        code: "state.invalid_url",
        hint: "use sslmode=require, verify-ca or verify-full (sslrootcert=<CA file> for a " +
          "private CA), or sslmode=disable to opt in to plaintext",
      },
    );
  }
  return {
    mode: mode as TlsSpec["mode"],
    ...(params.sslrootcert === undefined ? {} : { caFile: params.sslrootcert }),
    acceptInvalidCerts: false,
    acceptInvalidHostnames: false,
  };
}

/**
 * Parses the state URL and applies the TLS policy of sources: plaintext only to a loopback host,
 * or with the explicit `sslmode=disable` (with a warning). The password is registered for
 * redaction by the parser.
 *
 * @param url The value of `RIVET_STATE_URL` (a secret).
 * @param variable The variable it came from (the config's `state.url_env`), for messages.
 * @returns Where and how to connect.
 * @throws {ConfigError} `state.invalid_url`, `state.tls_required`, `state.invalid_schema`.
 *
 * @example
 * ```ts
 * import { parseStateUrl } from "./state.ts";
 * const db = parseStateUrl("postgres://rivet:pw@127.0.0.1:5433/ops?schema=etl");
 * if (db.schema !== "etl" || db.where !== "127.0.0.1:5433/ops") throw new Error();
 * ```
 */
export function parseStateUrl(url: string, variable: string = STATE_URL_ENV): StateDatabase {
  if (!/^postgres(ql)?:\/\//i.test(url.trim())) {
    throw new ConfigError(`${variable} must start with postgresql:// or postgres://`, {
      code: "state.invalid_url",
      hint: `set ${variable}=postgresql://user:password@host:5432/database, or unset it ` +
        "to keep state in .rivet_state.db next to the config",
    });
  }
  let info;
  try {
    info = parseConnectionUrl(url, "postgres");
  } catch (error) {
    const why = error instanceof Error ? error.message.replace(/^source URL/, "the URL") : "";
    throw new ConfigError(`${variable} is not a valid URL: ${why}`, {
      code: "state.invalid_url",
      hint: "percent-encode reserved characters of the password, e.g. '@' as %40",
      cause: error,
    });
  }
  const schema = info.params.schema ?? DEFAULT_STATE_SCHEMA;
  checkSchemaName(schema);
  const tls = tlsOf(info.params, variable);
  const host = info.host.replace(/[^\x20-\x7e]/g, "?");
  const warnings: string[] = [];
  if (!isLoopbackHost(info.host)) {
    if (tls === undefined) {
      throw new ConfigError(
        `TLS required for non-loopback state database host '${host}': ${variable} has no ` +
          "sslmode",
        {
          code: "state.tls_required",
          hint: `add ?sslmode=require (or verify-full with sslrootcert=<CA file>) to ` +
            `${variable}, or ?sslmode=disable to opt in to plaintext explicitly`,
        },
      );
    }
    if (tls.mode === "disable") {
      warnings.push(
        `TLS is not enforced for state database host '${host}' (sslmode=disable): traffic is ` +
          "plaintext",
      );
    }
  }
  return {
    variable,
    host: info.host,
    port: info.port,
    user: info.user,
    password: info.password,
    database: info.database,
    schema,
    tls,
    where: `${host}:${info.port}/${info.database}`,
    warnings,
  };
}

const warned = new Set<string>();

function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  Deno.stderr.writeSync(new TextEncoder().encode(`Warning: ${message}\n`));
}

/**
 * A login or TLS failure of the state connection, worded for `RIVET_STATE_URL` (the wire
 * client's messages name the `source.tls` keys of a source).
 */
function refusedError(db: StateDatabase, error: RivetError): ConfigError {
  const why = error.message
    .replace(/source\.tls\.ca_file/g, "sslrootcert")
    .replace(/source\.tls\.mode/g, "sslmode")
    .replace(/source\.password_env or the URL/g, "the password in the URL");
  return new ConfigError(`The PostgreSQL state database at ${db.where} refused rivet: ${why}`, {
    code: "state.connect_refused",
    hint: `check the user, the password and sslmode/sslrootcert in ${db.variable}`,
    cause: error,
  });
}

/**
 * Connects to the PostgreSQL state database and opens (creating and migrating) its schema.
 *
 * @param db The parsed URL.
 * @returns The open store.
 * @throws {TransientError} `state.unreachable` when the server cannot be reached (exit 2).
 * @throws {ConfigError} `state.schema_privilege` when the role cannot create the schema.
 */
export async function openPostgresStateStore(db: StateDatabase): Promise<StateStore> {
  let session: PgSqlSession;
  try {
    session = await PgSqlSession.connect({
      host: db.host,
      port: db.port,
      user: db.user,
      password: db.password,
      database: db.database,
      tls: db.tls,
      applicationName: "rivet-state",
      connectTimeoutMs: 10_000,
    });
  } catch (error) {
    if (error instanceof RivetError && !(error instanceof TransientError)) {
      throw refusedError(db, error);
    }
    if (!(error instanceof TransientError)) throw error;
    throw new TransientError(
      `The PostgreSQL state database at ${db.where} cannot be reached: ${error.message}`,
      {
        code: "state.unreachable",
        hint: `check that the server in ${db.variable} is running and reachable from this ` +
          "host, then retry; unset the variable to use the state file next to the config",
        cause: error,
      },
    );
  }
  // Tests shorten the lease of chunk claims, so that a killed "host" is replaced in seconds.
  const leaseMs = Number(envLookup(TEST_LEASE_ENV) ?? "");
  return await PostgresStateStore.open(session, {
    schema: db.schema,
    where: db.where,
    ...(Number.isInteger(leaseMs) && leaseMs > 0 ? { chunkLeaseMs: leaseMs } : {}),
  });
}

/**
 * The options of {@linkcode openRunStateStore} a config asks for (its `state.url_env`).
 *
 * @param config The config.
 * @returns `{ urlEnv }`, or nothing to add.
 */
export function stateOptions(
  config: { readonly stateUrlEnv?: string },
): OpenRunStateStoreOptions {
  return config.stateUrlEnv === undefined ? {} : { urlEnv: config.stateUrlEnv };
}

/**
 * The variable holding a config's state URL: its `state.url_env`, else `RIVET_STATE_URL`.
 *
 * @param config The config (its `stateUrlEnv`), if any.
 * @returns The variable's name.
 */
export function stateUrlVariable(config?: { readonly stateUrlEnv?: string }): string {
  return config?.stateUrlEnv ?? STATE_URL_ENV;
}

/**
 * Whether `RIVET_STATE_URL` (or the variable `name`) selects the PostgreSQL backend.
 *
 * @param env Environment lookup; the process environment by default.
 */
export function stateUrlSet(
  env: (name: string) => string | undefined = envLookup,
  name: string = STATE_URL_ENV,
): boolean {
  return (env(name) ?? "").trim() !== "";
}

/**
 * The process environment; a variable this process may not read is unset (a sandboxed worker
 * is granted `RIVET_STATE_URL` only when its parent has it set).
 */
function envLookup(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) return undefined;
    throw error;
  }
}

/**
 * Opens the state store of a run or a `state` command: PostgreSQL when `RIVET_STATE_URL` is set,
 * else `.rivet_state.db` in the config's directory.
 *
 * @param configDir Directory of the config file.
 * @param options Environment and warning sink.
 * @returns The open store; dispose it with `await using`.
 */
export async function openRunStateStore(
  configDir: string,
  options: OpenRunStateStoreOptions = {},
): Promise<StateStore> {
  const env = options.env ?? envLookup;
  const name = options.urlEnv ?? STATE_URL_ENV;
  if (!stateUrlSet(env, name)) {
    if (options.urlEnv !== undefined) {
      throw new ConfigError(
        `state.url_env names ${name}, which is not set: the state database is unknown`,
        {
          code: "state.url_env_unset",
          hint: `set ${name}=postgresql://user:password@host:5432/database (every host of the ` +
            "run needs it), or remove state.url_env to keep state in .rivet_state.db",
        },
      );
    }
    return await openStateStore(configDir);
  }
  const parsed = parseStateUrl(env(name)!, name);
  for (const warning of parsed.warnings) (options.warn ?? warnOnce)(warning);
  // sslrootcert is relative to the config folder, as every input file of a plan is.
  const caFile = parsed.tls?.caFile;
  const db = caFile === undefined
    ? parsed
    : { ...parsed, tls: { ...parsed.tls!, caFile: resolve(configDir, caFile) } };
  return await openPostgresStateStore(db);
}
