/**
 * Source connection resolution: `url` / `url_env` / `url_file` / structured fields →
 * {@linkcode ConnectionInfo}, with every password registered for redaction.
 *
 * Layer: config. `url_file` is read through `_fs.ts`.
 *
 * @module
 */
import { resolve } from "node:path";
import { ConfigError } from "../core/errors.ts";
import type { SourceKind, SourceSpec } from "../core/spec.ts";
import { registerSecret } from "../_util/redact.ts";
import { INPUT_LIMITS, InputFileError, isNotFound, processEnv, readInput } from "./_fs.ts";
import { DEFAULT_PORTS } from "./build.ts";
import { registerUrlSecrets } from "./secrets.ts";

export type { ConnectionInfo } from "../core/source.ts";
import type { ConnectionInfo } from "../core/source.ts";

/** Options of {@linkcode resolveConnection}. */
export interface ResolveConnectionOptions {
  /** Directory of the config file; `url_file` is relative to it. */
  readonly configDir: string;
  /** Environment lookup; defaults to the process environment. */
  readonly env?: (name: string) => string | undefined;
  /** Export being run, named in "variable not set" errors. */
  readonly exportName?: string;
}

const schemes: Readonly<Record<string, SourceKind>> = {
  postgresql: "postgres",
  postgres: "postgres",
  mysql: "mysql",
  sqlserver: "mssql",
  mssql: "mssql",
};

function decode(part: string, what: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new ConfigError(`source URL has invalid percent-encoding in the ${what}`, {
      code: "config.invalid_url",
      hint: "percent-encode reserved characters, e.g. '@' as %40 and '/' as %2F",
    });
  }
}

/**
 * Parses a connection URL (`postgresql://`, `postgres://`, `mysql://`, `sqlserver://`, `mssql://`).
 *
 * The userinfo ends at the last `@` of the authority, so an unencoded `@` in a password still
 * parses; user, password and database are percent-decoded; the port defaults per engine.
 * Messages never contain the URL.
 *
 * @param url The URL (a secret).
 * @param expected The source type the URL must match, when known.
 * @returns The connection parts.
 * @throws {ConfigError} `config.invalid_url`.
 *
 * @example
 * ```ts
 * import { parseConnectionUrl } from "./connection.ts";
 * const info = parseConnectionUrl("postgres://app:p%40ss@db:6432/shop?sslmode=require");
 * if (info.password !== "p@ss" || info.port !== 6432 || info.params.sslmode !== "require") {
 *   throw new Error();
 * }
 * ```
 */
export function parseConnectionUrl(url: string, expected?: SourceKind): ConnectionInfo {
  registerUrlSecrets(url);
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#.*)?$/.exec(
    url.trim(),
  );
  const scheme = match?.[1]?.toLowerCase();
  const kind = scheme === undefined ? undefined : schemes[scheme];
  if (!match || kind === undefined) {
    throw new ConfigError(
      `source URL must start with postgresql://, postgres://, mysql://, sqlserver:// or mssql://` +
        (scheme === undefined ? "" : ` (got '${scheme}://')`),
      { code: "config.invalid_url" },
    );
  }
  if (expected !== undefined && kind !== expected) {
    throw new ConfigError(
      `source URL scheme '${scheme}://' does not match source type '${expected}'`,
      { code: "config.invalid_url", hint: "fix `type:` or the URL scheme" },
    );
  }
  const authority = match[2]!;
  const at = authority.lastIndexOf("@");
  const userinfo = at >= 0 ? authority.slice(0, at) : "";
  const hostPort = at >= 0 ? authority.slice(at + 1) : authority;
  const colon = userinfo.indexOf(":");
  const user = decode(colon >= 0 ? userinfo.slice(0, colon) : userinfo, "user name");
  const password = colon >= 0 ? decode(userinfo.slice(colon + 1), "password") : undefined;
  if (password !== undefined) registerSecret(password);

  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(hostPort);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
  } else {
    const portColon = hostPort.lastIndexOf(":");
    host = portColon >= 0 ? hostPort.slice(0, portColon) : hostPort;
    portText = portColon >= 0 ? hostPort.slice(portColon + 1) : undefined;
  }
  host = decode(host, "host");
  if (host === "") {
    throw new ConfigError("source URL has no host", {
      code: "config.invalid_url",
      hint: "write it as scheme://user@host:port/database",
    });
  }
  let port = DEFAULT_PORTS[kind];
  if (portText !== undefined && portText !== "") {
    port = Number(portText);
    if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
      throw new ConfigError("source URL has an invalid port (expected 1..65535)", {
        code: "config.invalid_url",
      });
    }
  }
  const database = decode(match[3]!.replace(/^\//, ""), "database");
  const params: Record<string, string> = {};
  for (const pair of (match[4] ?? "").split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const key = decode((eq >= 0 ? pair.slice(0, eq) : pair).replaceAll("+", " "), "query");
    params[key] = decode((eq >= 0 ? pair.slice(eq + 1) : "").replaceAll("+", " "), "query");
  }
  return {
    host,
    port,
    user,
    ...(password === undefined ? {} : { password }),
    // PostgreSQL's own default: the database named after the user.
    database: database === "" && kind === "postgres" ? user : database,
    params,
  };
}

function unsetVariable(name: string, key: string, exportName: string | undefined): ConfigError {
  return new ConfigError(
    `environment variable '${name}' (source.${key}) is not set` +
      (exportName === undefined ? "" : ` for export '${exportName}'`),
    { code: "config.missing_env", hint: `export ${name} before running rivet` },
  );
}

/**
 * The engine a connection URL names by its scheme.
 *
 * @param url The URL (a secret: never quoted in the error).
 * @returns The engine.
 * @throws {ConfigError} `config.invalid_url` for any other scheme.
 *
 * @example
 * ```ts
 * import { sourceKindOfUrl } from "./connection.ts";
 * if (sourceKindOfUrl("sqlserver://sa@db/x") !== "mssql") throw new Error();
 * ```
 */
export function sourceKindOfUrl(url: string): SourceKind {
  registerUrlSecrets(url);
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url.trim())?.[1]?.toLowerCase();
  const kind = scheme === undefined ? undefined : schemes[scheme];
  if (kind !== undefined) return kind;
  // parseConnectionUrl words the error (and knows every scheme).
  parseConnectionUrl(url);
  throw new ConfigError("source URL has an unknown scheme", { code: "config.invalid_url" });
}

/**
 * The URL of a `url`, `url_env` or `url_file` connection, read now (registered for redaction).
 *
 * @param c The connection form.
 * @param options Config dir (`url_file` is relative to it), environment, export for messages.
 * @returns The URL, trimmed for `url_file`.
 * @throws {ConfigError} `config.missing_env`, `config.not_found` or `config.read_failed`.
 */
export async function readSourceUrl(
  c: Exclude<SourceSpec["connection"], { form: "structured" }>,
  options: ResolveConnectionOptions,
): Promise<string> {
  const env = options.env ?? processEnv;
  switch (c.form) {
    case "url":
      return c.url.secret;
    case "url_env": {
      const value = env(c.env);
      if (value === undefined || value.trim() === "") {
        throw unsetVariable(c.env, "url_env", options.exportName);
      }
      registerUrlSecrets(value);
      return value;
    }
    case "url_file": {
      const path = resolve(options.configDir, c.path);
      let text: string;
      try {
        text = await readInput(path, { maxBytes: INPUT_LIMITS.secret });
      } catch (error) {
        if (error instanceof InputFileError) throw error.about(`source.url_file '${c.path}'`);
        throw new ConfigError(
          `source.url_file '${c.path}' ${isNotFound(error) ? "does not exist" : "cannot be read"}`,
          {
            code: isNotFound(error) ? "config.not_found" : "config.read_failed",
            cause: error,
            hint: "url_file is relative to the config directory",
          },
        );
      }
      const url = text.trim();
      registerUrlSecrets(url);
      return url;
    }
  }
}

/**
 * Resolves the source's connection form into host, port, user, password and database.
 *
 * `url_env` and `password_env` are read now (connect time), `url_file` is read relative to the
 * config directory and trimmed. Passwords are registered with the redactor before anything can
 * fail.
 *
 * @param source The source spec.
 * @param options Config dir, environment and the export for messages.
 * @returns Connection parameters.
 * @throws {ConfigError} `config.missing_env`, `config.not_found` (url_file) or
 *   `config.invalid_url`; messages name the variable or file, never the value.
 */
export async function resolveConnection(
  source: SourceSpec,
  options: ResolveConnectionOptions,
): Promise<ConnectionInfo> {
  const env = options.env ?? processEnv;
  const c = source.connection;
  switch (c.form) {
    case "url":
    case "url_env":
    case "url_file":
      return parseConnectionUrl(await readSourceUrl(c, options), source.kind);
    case "structured": {
      let password = c.password?.secret;
      if (c.passwordEnv !== undefined) {
        password = env(c.passwordEnv);
        if (password === undefined) {
          throw unsetVariable(c.passwordEnv, "password_env", options.exportName);
        }
      }
      if (password !== undefined) registerSecret(password);
      return {
        host: c.host,
        port: c.port,
        user: c.user,
        ...(password === undefined ? {} : { password }),
        database: c.database,
        params: c.instance === undefined ? {} : { instance: c.instance },
      };
    }
  }
}
