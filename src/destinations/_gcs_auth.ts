/**
 * Credentials and client of the GCS destination: which credentials file applies (the
 * `credentials_file` key, `GOOGLE_APPLICATION_CREDENTIALS`, the gcloud application-default
 * login), reading it with its secrets registered, and building the `@google-cloud/storage`
 * client on the configured endpoint.
 *
 * Layer: destinations (private). Imports core/ and _util/ only.
 *
 * @module
 */
import type { Storage } from "@google-cloud/storage";
import { PermanentError } from "../core/errors.ts";
import type { DestinationSpec } from "../core/spec.ts";
import { registerSecret } from "../_util/redact.ts";
import { INPUT_LIMITS, readInputText } from "../_util/input_file.ts";
import { cleanDetail as clean, messageOf } from "./_store_errors.ts";

const DEFAULT_ENDPOINT = "https://storage.googleapis.com";

/**
 * Builds the storage client of a destination: its credentials (none when `anonymous`), its
 * endpoint, and no retries of its own (the request layer retries).
 *
 * @param spec The destination keys (`endpoint`, `credentials_file`).
 * @param anonymous `allow_anonymous`: no credentials are loaded and none are sent.
 * @param env Reads the environment variables that locate a credentials file.
 * @param signal Cancels the build between its steps.
 * @returns The client.
 * @throws {PermanentError} `destination.auth_failed` when a credentials file cannot be read, is
 *   not JSON, or is not usable.
 */
export async function openStorage(
  spec: DestinationSpec,
  anonymous: boolean,
  env: (name: string) => string | undefined,
  signal: AbortSignal | undefined,
): Promise<Storage> {
  const credentials = anonymous ? undefined : await loadCredentials(spec, env);
  signal?.throwIfAborted();
  // Loaded on first use: the client pulls a large module graph (and reads the environment)
  // that local and stdout runs never need.
  const { Storage } = await import("@google-cloud/storage");
  const endpoint = spec.endpoint?.replace(/\/+$/, "");
  const storageOptions = {
    // An explicit endpoint always wins over STORAGE_EMULATOR_HOST. For an anonymous client
    // without one, the trailing slash marks the default endpoint as "custom": the client
    // then sends no credentials (its only switch for that), and the slash is stripped.
    apiEndpoint: endpoint ?? (anonymous ? `${DEFAULT_ENDPOINT}/` : DEFAULT_ENDPOINT),
    useAuthWithCustomEndpoint: !anonymous,
    retryOptions: { autoRetry: false },
  };
  let storage = new Storage(storageOptions);
  if (credentials !== undefined) {
    // The client's `credentials` option and `fromJSON` print deprecation notices on the
    // console, which would tear rivet's progress display; the call is synchronous, so
    // muting the console for its duration hides nothing else. The client built from the
    // JSON (with the storage scopes) is then handed to a second Storage.
    let built;
    try {
      built = quietly(() => storage.authClient.fromJSON(credentials.json as never));
    } catch (error) {
      throw new PermanentError(
        `GCS credentials file '${credentials.path}' (from ${credentials.from}) is not usable: ` +
          `${clean(messageOf(error))}; point ${credentials.from} at a service-account key or ` +
          "an application-default credentials file",
        { code: "destination.auth_failed", cause: error },
      );
    }
    storage = new Storage({ ...storageOptions, authClient: built });
  }
  // The client takes its JSON base from STORAGE_EMULATOR_HOST when that is set, even with an
  // apiEndpoint; keep every request on the one endpoint the uploads use.
  storage.baseUrl = `${storage.apiEndpoint}/storage/v1`;
  return storage;
}

/** Runs a synchronous call with `console.warn` muted (see {@linkcode openStorage}). */
function quietly<T>(call: () => T): T {
  const warn = console.warn;
  console.warn = () => {};
  try {
    return call();
  } finally {
    console.warn = warn;
  }
}

/** Reads the credentials the keys and the environment name, registering their secrets. */
async function loadCredentials(
  spec: DestinationSpec,
  env: (name: string) => string | undefined,
): Promise<Credentials | undefined> {
  if (spec.credentialsFile !== undefined) {
    return await readCredentials(spec.credentialsFile, "destination.credentials_file");
  }
  const adc = env("GOOGLE_APPLICATION_CREDENTIALS");
  if (adc !== undefined && adc !== "") {
    return await readCredentials(adc, "GOOGLE_APPLICATION_CREDENTIALS");
  }
  const config = env("CLOUDSDK_CONFIG") ||
    (env("APPDATA") ? `${env("APPDATA")}/gcloud` : undefined) ||
    (env("HOME") ? `${env("HOME")}/.config/gcloud` : undefined);
  if (config !== undefined) {
    const path = `${config}/application_default_credentials.json`;
    let present = false;
    try {
      present = (await Deno.stat(path)).isFile;
    } catch { /* no gcloud login: fall through to the client's default chain */ }
    if (present) return await readCredentials(path, "the gcloud application-default login");
  }
  return undefined;
}

const SECRET_FIELDS = ["private_key", "client_secret", "refresh_token", "private_key_id"];

/** A parsed credentials file and where it came from, for messages. */
interface Credentials {
  readonly json: Record<string, unknown>;
  readonly path: string;
  /** The key or variable that named it. */
  readonly from: string;
}

async function readCredentials(path: string, from: string): Promise<Credentials> {
  let text: string;
  try {
    text = await readInputText(path, { maxBytes: INPUT_LIMITS.secret });
  } catch (error) {
    throw new PermanentError(
      `GCS credentials file '${path}' (from ${from}) could not be read: ${messageOf(error)}; ` +
        `check ${from} and the file's permissions`,
      { code: "destination.auth_failed", cause: error },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // The parser's message quotes the text, which may hold a private key: say nothing more.
    json = undefined;
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new PermanentError(
      `GCS credentials file '${path}' (from ${from}) is not a JSON object; point ${from} at ` +
        "a service-account key or an application-default credentials file",
      { code: "destination.auth_failed" },
    );
  }
  const record = json as Record<string, unknown>;
  for (const field of SECRET_FIELDS) {
    const value = record[field];
    if (typeof value === "string") registerSecret(value);
  }
  return { json: record, path, from };
}
