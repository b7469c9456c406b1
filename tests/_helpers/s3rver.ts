/**
 * Starts an s3rver (S3 emulator, Node) on a free loopback port with a fresh data folder and one
 * bucket, for tests of the S3 destination. The program comes from `emulatorBin("s3rver")`.
 *
 * s3rver checks SigV4 signatures against its one built-in account (`S3RVER`/`S3RVER`), so bad
 * credentials get a real 403. It does not implement AbortMultipartUpload, ListMultipartUploads,
 * UploadPartCopy, conditional PUTs or Content-MD5 checks; {@linkcode S3rver.pendingUploads}
 * reads its data folder instead to show multipart uploads that were started and never completed
 * (on s3rver an aborted upload stays there too, since abort is not implemented).
 *
 * @module
 */
import { join } from "node:path";
import type { DestinationSpec } from "../../src/core/spec.ts";
import { emulatorBin, freePort, waitForPort } from "./emulators.ts";

/**
 * The S3 destination spec of this s3rver's bucket, signing with the key pair read from the
 * environment variables `TEST_S3_KEY` and `TEST_S3_SECRET` (give them `accessKeyId` and
 * `secretAccessKey`).
 *
 * @param s3 The running s3rver.
 * @returns The spec, to spread over with per-test keys.
 */
export function s3Spec(s3: S3rver): DestinationSpec {
  return {
    kind: "s3",
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    accessKeyEnv: "TEST_S3_KEY",
    secretKeyEnv: "TEST_S3_SECRET",
    allowAnonymous: false,
  };
}

/**
 * A prefix of this s3rver's bucket as an end-to-end config names it, signing with the key pair in
 * `S3_KEY` / `S3_SECRET` ({@linkcode s3ConfigEnv}): the `destination:` YAML flow map, and the
 * same destination as a spec, for opening it from the test to read back what the run wrote.
 *
 * @param s3 The running s3rver.
 * @param prefix The key prefix.
 * @returns The YAML and the spec.
 */
export function s3ConfigDestination(
  s3: S3rver,
  prefix: string,
): { yaml: string; spec: DestinationSpec } {
  return {
    yaml: `{ type: s3, bucket: ${s3.bucket}, prefix: "${prefix}", endpoint: "${s3.endpoint}", ` +
      "region: us-east-1, access_key_env: S3_KEY, secret_key_env: S3_SECRET }",
    spec: {
      kind: "s3",
      bucket: s3.bucket,
      prefix,
      endpoint: s3.endpoint,
      region: "us-east-1",
      accessKeyEnv: "S3_KEY",
      secretKeyEnv: "S3_SECRET",
      allowAnonymous: false,
    },
  };
}

/**
 * The environment {@linkcode s3ConfigDestination} reads its key pair from.
 *
 * @param s3 The running s3rver.
 * @returns `S3_KEY` and `S3_SECRET`.
 */
export function s3ConfigEnv(s3: S3rver): { S3_KEY: string; S3_SECRET: string } {
  return { S3_KEY: s3.accessKeyId, S3_SECRET: s3.secretAccessKey };
}

/** Options of {@linkcode startS3rver}. */
export interface StartS3rverOptions {
  /** Bucket created at start-up; default `rivet-test`. */
  readonly bucket?: string;
}

/** A running s3rver. Dispose it (or call `close`) to stop it and delete its data. */
export interface S3rver extends AsyncDisposable {
  /** Loopback port it listens on. */
  readonly port: number;
  /** `http://127.0.0.1:<port>`: use it as `endpoint` (path-style). */
  readonly endpoint: string;
  /** The bucket created at start-up. */
  readonly bucket: string;
  /** Its data folder (deleted by `close`). */
  readonly dir: string;
  /** The access key id s3rver accepts. */
  readonly accessKeyId: string;
  /** The secret key s3rver accepts. */
  readonly secretAccessKey: string;
  /**
   * Multipart uploads started in `bucket` and neither completed nor removed, read from the data
   * folder (s3rver has no ListMultipartUploads).
   */
  pendingUploads(): Promise<string[]>;
  /** Stops the process and removes the data folder. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts s3rver: `-d <tempdir> -a 127.0.0.1 -p <free port> --configure-bucket <bucket> -s`.
 *
 * @param options The bucket to create.
 * @returns The running emulator, reachable once this resolves.
 *
 * @example
 * ```ts ignore
 * import { startS3rver } from "./s3rver.ts";
 * await using s3 = await startS3rver();
 * console.log(s3.endpoint, s3.bucket);
 * ```
 */
export async function startS3rver(options: StartS3rverOptions = {}): Promise<S3rver> {
  const bucket = options.bucket ?? "rivet-test";
  const bin = await emulatorBin("s3rver");
  const dir = await Deno.makeTempDir({ prefix: "rivet_s3rver_" });
  const port = freePort();
  const child = new Deno.Command(bin, {
    args: ["-d", dir, "-a", "127.0.0.1", "-p", String(port), "--configure-bucket", bucket, "-s"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // Drains stderr so a chatty failure cannot block the child; kept for the start-up error.
  let stderr = "";
  const drained = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      if (stderr.length < 64_000) stderr += chunk;
    }
  })();
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    try {
      child.kill("SIGTERM");
    } catch { /* exited already */ }
    await child.status;
    await drained.catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await Promise.race([
      waitForPort(port, 30_000),
      child.status.then((s) => {
        throw new Error(`s3rver exited with code ${s.code} before listening: ${stderr}`);
      }),
    ]);
  } catch (error) {
    await close();
    throw error;
  }
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    bucket,
    dir,
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    pendingUploads: () => pendingUploads(dir, bucket),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Upload ids under s3rver's `<dir>/<bucket>/._S3rver_uploads/<id>` folders. */
async function pendingUploads(dir: string, bucket: string): Promise<string[]> {
  const found: string[] = [];
  try {
    for await (const entry of Deno.readDir(join(dir, bucket, "._S3rver_uploads"))) {
      if (entry.isDirectory) found.push(entry.name);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found.sort();
}
