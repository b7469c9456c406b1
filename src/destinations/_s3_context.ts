/**
 * Configuration of the S3 destination: the bucket, the client (region, endpoint, addressing,
 * credentials from `access_key_env`/`secret_key_env`/`session_token_env` or `aws_profile` or the
 * SDK's default chain) and the hint a refused request gives, gathered in the context every
 * request of the destination and its uploads uses.
 *
 * Layer: destinations (private). Imports core/ and _util/ only.
 *
 * @module
 */
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { ConfigError } from "../core/errors.ts";
import type { DestinationSpec } from "../core/spec.ts";
import { registerSecret } from "../_util/redact.ts";
import {
  consoleWarn,
  DEFAULT_RETRY,
  type DestinationWarn,
  type StoreFacts,
} from "./_store_errors.ts";

/** Where the context's values come from besides the destination keys. */
export interface S3ContextOptions {
  /** Reads the variables named by `access_key_env`, `secret_key_env`, `session_token_env`. */
  readonly env: (name: string) => string | undefined;
  /** Receives warnings; default `console.warn`. */
  readonly warn?: DestinationWarn;
}

/** What every request needs: the client, where, and how to explain failures. */
export interface S3Context extends StoreFacts {
  readonly client: S3Client;
  readonly bucket: string;
  readonly prefix: string;
  /** Set once a request showed the bucket exists (tells a missing key from a missing bucket). */
  bucketSeen: boolean;
  /** Cleared when the store refuses `If-None-Match` on writes (501). */
  conditionalWrites: boolean;
}

/**
 * The context of one destination, built from its keys; makes no request.
 *
 * @param spec The destination keys.
 * @param options The environment and the warning sink.
 * @returns The context.
 * @throws {ConfigError} `config.missing_key`, `config.conflicting_keys`, `config.missing_env`,
 *   `config.invalid_url` (see `S3Destination.open`).
 */
export function buildContext(spec: DestinationSpec, options: S3ContextOptions): S3Context {
  if (spec.bucket === undefined || spec.bucket === "") {
    throw new ConfigError("S3 destination has no bucket; set destination.bucket", {
      code: "config.missing_key",
    });
  }
  const bucket = spec.bucket;
  const config: S3ClientConfig = {
    region: spec.region ?? "us-east-1",
    // Retries are ours (per request, part uploads included), so the SDK makes one attempt.
    maxAttempts: 1,
    // Content-MD5 is sent on every upload instead of the SDK's default CRC32 (computed in JS).
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    followRegionRedirects: true,
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 120_000 },
  };
  let endpoint: string | undefined;
  if (spec.endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(spec.endpoint);
    } catch {
      url = new URL("invalid:");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new ConfigError(
        "S3 destination endpoint is not an http(s) URL; write it as http://host:port",
        { code: "config.invalid_url" },
      );
    }
    endpoint = `${url.protocol}//${url.host}${url.pathname === "/" ? "" : url.pathname}`;
    Object.assign(config, { endpoint: spec.endpoint, forcePathStyle: true });
  }
  let authHint: string;
  if (spec.accessKeyEnv !== undefined || spec.secretKeyEnv !== undefined) {
    if (spec.accessKeyEnv === undefined || spec.secretKeyEnv === undefined) {
      throw new ConfigError(
        "S3 destination sets only one of access_key_env and secret_key_env; set both, or " +
          "neither to use the default AWS credential chain",
        { code: "config.conflicting_keys" },
      );
    }
    const accessKeyId = readEnv(options, spec.accessKeyEnv, "access_key_env");
    const secretAccessKey = readEnv(options, spec.secretKeyEnv, "secret_key_env");
    const sessionToken = spec.sessionTokenEnv === undefined
      ? undefined
      : readEnv(options, spec.sessionTokenEnv, "session_token_env");
    config.credentials = {
      accessKeyId,
      secretAccessKey,
      ...(sessionToken === undefined ? {} : { sessionToken }),
    };
    authHint = `check the values of ${spec.accessKeyEnv} (access_key_env) and ` +
      `${spec.secretKeyEnv} (secret_key_env)` +
      (spec.sessionTokenEnv === undefined
        ? ""
        : ` and that ${spec.sessionTokenEnv} (session_token_env) has not expired`);
  } else if (spec.awsProfile !== undefined) {
    config.profile = spec.awsProfile;
    authHint = `check the keys of profile '${spec.awsProfile}' (aws_profile) in ` +
      "~/.aws/credentials or ~/.aws/config";
  } else {
    authHint = "check the default AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, " +
      "AWS_PROFILE, ~/.aws/credentials, or the instance role), or set access_key_env and " +
      "secret_key_env";
  }
  authHint += `, and that they may read, write and list bucket '${bucket}'`;
  return {
    store: "S3",
    policy: DEFAULT_RETRY,
    client: new S3Client(config),
    bucket,
    prefix: spec.prefix ?? "",
    endpoint,
    bucketLabel: `bucket '${bucket}'`,
    bucketHint: `check destination.bucket, region and endpoint${
      endpoint === undefined ? "" : ` (${endpoint})`
    }`,
    authHint,
    bucketSeen: false,
    conditionalWrites: true,
    warn: options.warn ?? consoleWarn,
  };
}

function readEnv(options: S3ContextOptions, name: string, key: string): string {
  const value = options.env(name);
  if (value === undefined || value === "") {
    throw new ConfigError(`environment variable '${name}' (destination.${key}) is not set`, {
      code: "config.missing_env",
      hint: `export ${name} before running rivet`,
    });
  }
  registerSecret(value);
  return value;
}
