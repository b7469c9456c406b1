/**
 * Configuration of the Azure destination: the container, the account, the endpoint and the
 * credential, from `account_key_env` (an account key or a whole connection string),
 * `sas_token_env` (expiry checked before any request) or `allow_anonymous`; every secret is
 * registered so no message can print it.
 *
 * Layer: destinations (private). Imports core/ and _util/ only.
 *
 * @module
 */
import { AnonymousCredential, StorageSharedKeyCredential } from "@azure/storage-blob";
import { ConfigError } from "../core/errors.ts";
import type { DestinationSpec } from "../core/spec.ts";
import { registerSecret } from "../_util/redact.ts";
import { consoleWarn, type DestinationWarn } from "./_store_errors.ts";

/** Where the configuration's values come from besides the destination keys. */
export interface AuthOptions {
  /** Reads an environment variable (`account_key_env`, `sas_token_env`). */
  readonly env: (name: string) => string | undefined;
  /** The clock of the SAS expiry check; default `new Date()`. */
  readonly now?: () => Date;
  /** Receives the warning of a SAS close to its expiry; default `console.warn`. */
  readonly warn?: DestinationWarn;
}

/**
 * Azurite's built-in development account and its key, published by Microsoft (no secret). Used
 * when `allow_anonymous: true` names this account: Azurite refuses anonymous writes.
 */
const AZURITE_ACCOUNT = "devstoreaccount1";
const AZURITE_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** A SAS token with less than this left triggers a warning at open. */
const SAS_WARN_MS = 60 * 60 * 1000;

/**
 * The expiry (`se=`) of a SAS token, percent-decoded (`%3A`, `%2B`) and parsed as an ISO 8601
 * UTC time (`2030-01-01`, `2030-01-01T10:00Z`, `2030-01-01T10:00:00.000Z`, or with an offset).
 *
 * @param token The token, with or without its leading `?`.
 * @returns The expiry, or undefined when `se` is missing or unreadable.
 *
 * @example
 * ```ts
 * import { parseSasExpiry } from "./azure.ts";
 * const at = parseSasExpiry("?sv=2024-08-04&se=2030-01-02T03%3A04%3A05Z&sig=x");
 * if (at?.toISOString() !== "2030-01-02T03:04:05.000Z") throw new Error(String(at));
 * ```
 */
export function parseSasExpiry(token: string): Date | undefined {
  for (const pair of token.replace(/^\?/, "").split("&")) {
    const eq = pair.indexOf("=");
    if (eq < 0 || pair.slice(0, eq).toLowerCase() !== "se") continue;
    let value: string;
    try {
      value = decodeURIComponent(pair.slice(eq + 1)).trim();
    } catch {
      return undefined;
    }
    if (
      !/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(value)
    ) {
      return undefined;
    }
    // A bare date is midnight UTC, as Date.parse reads it; an offset needs its colon.
    const normalized = value.replace(/([+-]\d{2})(\d{2})$/, "$1:$2");
    const ms = Date.parse(normalized);
    return Number.isNaN(ms) ? undefined : new Date(ms);
  }
  return undefined;
}

/** How the destination authenticates, and what to tell a user whose credentials are refused. */
export interface Auth {
  readonly credential: StorageSharedKeyCredential | AnonymousCredential;
  /** SAS token without `?`, appended to the service URL. */
  readonly sas?: string;
  /** Names the config keys and variables to check (never their values). */
  readonly hint: string;
}

/** Where the destination writes, for URIs and messages. */
export interface Place {
  readonly account: string;
  readonly container: string;
  readonly prefix: string;
  /** Endpoint without query string. */
  readonly endpoint: string;
  readonly uri: string;
  readonly authHint: string;
  /** No credentials: the service answers 404 ResourceNotFound for a private container. */
  readonly anonymous: boolean;
}

/**
 * Where a destination writes and how it authenticates, from its keys; sends no request.
 *
 * @param spec The destination keys.
 * @param options The environment, the clock and the warning sink.
 * @returns The place (account, container, prefix, endpoint, URI) and the credential.
 * @throws {ConfigError} See `AzureDestination.open`.
 */
export function resolve(
  spec: DestinationSpec,
  options: AuthOptions,
): { place: Place; auth: Auth } {
  const container = spec.bucket;
  if (container === undefined || container === "") {
    throw new ConfigError(
      "Azure destination has no container: set destination.bucket to the container name",
      { code: "config.missing_key" },
    );
  }
  if (!/^(?:\$root|\$web|[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})$/.test(container)) {
    throw new ConfigError(
      `Azure container name '${container}' (destination.bucket) is not valid: use 3 to 63 ` +
        "lowercase letters, digits and single hyphens, starting and ending with a letter or digit",
      { code: "destination.bad_bucket" },
    );
  }
  const now = options.now?.() ?? new Date();
  const warn = options.warn ?? consoleWarn;
  let account = spec.accountName;
  let endpoint = spec.endpoint;
  let auth: Auth;
  if (spec.accountKeyEnv !== undefined && spec.sasTokenEnv !== undefined) {
    throw new ConfigError(
      "Azure destination sets both account_key_env and sas_token_env; set only one",
      { code: "config.conflicting_keys" },
    );
  }
  if (spec.accountKeyEnv !== undefined) {
    const name = spec.accountKeyEnv;
    const value = readEnv(options, name, "account_key_env");
    registerSecret(value);
    if (looksLikeConnectionString(value)) {
      const cs = parseConnectionString(value, name);
      if (account !== undefined && cs.account !== undefined && account !== cs.account) {
        throw new ConfigError(
          `Azure destination.account_name '${account}' differs from the AccountName of the ` +
            `connection string in environment variable '${name}' (account_key_env); make them ` +
            "the same, or remove account_name",
          { code: "config.conflicting_keys" },
        );
      }
      account ??= cs.account;
      if (account === undefined) throw missingAccount();
      endpoint ??= cs.endpoint ?? `${cs.protocol}://${account}.blob.${cs.suffix}`;
      if (cs.key !== undefined) {
        auth = {
          credential: new StorageSharedKeyCredential(account, cs.key),
          hint: `the connection string in environment variable '${name}' (account_key_env): ` +
            "its AccountName and AccountKey",
        };
      } else {
        const sas = cs.sas!;
        checkSasExpiry(sas, name, "account_key_env", { now, warn });
        auth = {
          credential: new AnonymousCredential(),
          sas,
          hint: `the SharedAccessSignature of the connection string in environment variable ` +
            `'${name}' (account_key_env): ${SAS_NEEDS}`,
        };
      }
    } else {
      if (account === undefined) throw missingAccount();
      auth = {
        credential: new StorageSharedKeyCredential(account, value.trim()),
        hint: `destination.account_name and the account key in environment variable '${name}' ` +
          "(account_key_env)",
      };
    }
  } else if (spec.sasTokenEnv !== undefined) {
    const name = spec.sasTokenEnv;
    const sas = readEnv(options, name, "sas_token_env").trim().replace(/^\?/, "");
    registerSas(sas);
    checkSasExpiry(sas, name, "sas_token_env", { now, warn });
    if (account === undefined) throw missingAccount();
    auth = {
      credential: new AnonymousCredential(),
      sas,
      hint: `destination.account_name and the SAS token in environment variable '${name}' ` +
        `(sas_token_env): ${SAS_NEEDS}`,
    };
  } else if (spec.allowAnonymous) {
    if (account === undefined) throw missingAccount();
    auth = account === AZURITE_ACCOUNT
      ? {
        credential: new StorageSharedKeyCredential(account, AZURITE_KEY),
        hint: "destination.account_name and endpoint (allow_anonymous uses Azurite's published " +
          "development key for devstoreaccount1)",
      }
      : {
        credential: new AnonymousCredential(),
        hint: "destination.allow_anonymous: anonymous requests cannot write; set " +
          "account_key_env or sas_token_env instead",
      };
  } else {
    throw new ConfigError(
      "Azure destination has no credentials: set destination.account_key_env or " +
        "destination.sas_token_env, or allow_anonymous: true for an emulator",
      { code: "config.missing_key" },
    );
  }
  if (endpoint?.includes("?")) {
    // A SAS pasted into the endpoint would end up in every URI and message.
    throw new ConfigError(
      "Azure destination.endpoint has a query string; give the bare service URL and put a SAS " +
        "token in the variable named by sas_token_env",
      { code: "destination.bad_endpoint" },
    );
  }
  endpoint = (endpoint ?? `https://${account}.blob.core.windows.net`).replace(/\/+$/, "");
  const prefix = spec.prefix ?? "";
  return {
    place: {
      account,
      container,
      prefix,
      endpoint,
      uri: `azure://${account}/${container}/${prefix}`,
      authHint: auth.hint,
      anonymous: auth.credential instanceof AnonymousCredential && auth.sas === undefined,
    },
    auth,
  };
}

const SAS_NEEDS = "it must be valid for this container and allow read, add, create, write, " +
  "delete and list (sp=racwdl), with an expiry ('se') after the run ends";

function missingAccount(): ConfigError {
  return new ConfigError(
    "Azure destination has no storage account: set destination.account_name",
    { code: "config.missing_key" },
  );
}

function readEnv(options: AuthOptions, name: string, key: string): string {
  const value = options.env(name);
  if (value === undefined || value.trim() === "") {
    throw new ConfigError(
      `Environment variable '${name}' (destination.${key}) is not set or empty; export it ` +
        "before running rivet",
      { code: "config.missing_env", hint: `export ${name} before running rivet` },
    );
  }
  return value;
}

function looksLikeConnectionString(value: string): boolean {
  return /(^|;)\s*(DefaultEndpointsProtocol|BlobEndpoint)\s*=/i.test(value);
}

interface ConnectionString {
  readonly account?: string;
  readonly key?: string;
  readonly sas?: string;
  readonly endpoint?: string;
  readonly protocol: string;
  readonly suffix: string;
}

function parseConnectionString(text: string, envName: string): ConnectionString {
  const fields = new Map<string, string>();
  for (const part of text.split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const get = (name: string) => {
    const value = fields.get(name.toLowerCase());
    return value === undefined || value === "" ? undefined : value;
  };
  const key = get("AccountKey");
  const sasRaw = get("SharedAccessSignature");
  const sas = sasRaw?.replace(/^\?/, "");
  if (key !== undefined) registerSecret(key);
  if (sas !== undefined) registerSas(sas);
  if (key === undefined && sas === undefined) {
    throw new ConfigError(
      `The connection string in environment variable '${envName}' (account_key_env) has ` +
        "neither AccountKey nor SharedAccessSignature; copy the full connection string from " +
        "the storage account's access keys",
      { code: "destination.bad_connection_string" },
    );
  }
  const account = get("AccountName");
  const endpoint = get("BlobEndpoint");
  if (endpoint === undefined && account === undefined) {
    throw new ConfigError(
      `The connection string in environment variable '${envName}' (account_key_env) has ` +
        "neither BlobEndpoint nor AccountName; copy the full connection string from the " +
        "storage account's access keys",
      { code: "destination.bad_connection_string" },
    );
  }
  return {
    ...(account === undefined ? {} : { account }),
    ...(key === undefined ? {} : { key }),
    ...(sas === undefined ? {} : { sas }),
    ...(endpoint === undefined ? {} : { endpoint }),
    protocol: get("DefaultEndpointsProtocol") ?? "https",
    suffix: get("EndpointSuffix") ?? "core.windows.net",
  };
}

/** Registers a SAS token and its signature (raw and decoded) so no message can carry them. */
function registerSas(sas: string): void {
  registerSecret(sas);
  const sig = /(?:^|&)sig=([^&]*)/i.exec(sas)?.[1];
  if (sig !== undefined) {
    registerSecret(sig);
    try {
      registerSecret(decodeURIComponent(sig));
    } catch { /* not percent-encoded */ }
  }
}

function checkSasExpiry(
  sas: string,
  envName: string,
  key: string,
  options: { readonly now: Date; readonly warn: (message: string) => void },
): void {
  const expiry = parseSasExpiry(sas);
  if (expiry === undefined) {
    options.warn(
      `The SAS token in environment variable '${envName}' (destination.${key}) has no readable ` +
        "expiry ('se='); rivet cannot check it before uploading",
    );
    return;
  }
  const left = expiry.getTime() - options.now.getTime();
  if (left <= 0) {
    throw new ConfigError(
      `The SAS token in environment variable '${envName}' (destination.${key}) expired at ` +
        `${expiry.toISOString()}; issue a new token and export it in '${envName}'`,
      { code: "destination.sas_expired" },
    );
  }
  if (left < SAS_WARN_MS) {
    options.warn(
      `The SAS token in environment variable '${envName}' (destination.${key}) expires in ` +
        `${Math.floor(left / 60_000)} minutes (${expiry.toISOString()}); a longer run will fail ` +
        "part-way: issue a token that outlives the run",
    );
  }
}
