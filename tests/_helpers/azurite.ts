/**
 * Starts Azurite's Blob service (Azure Storage emulator, Node) on a free loopback port with a
 * fresh data folder, for tests of the Azure destination. The program comes from
 * `emulatorBin("azurite-blob")` and always runs with `--disableTelemetry` (CI must not send
 * traffic off the machine), `--skipApiVersionCheck` (the SDK may be newer than the emulator) and
 * `--loose` (unsupported headers are ignored rather than refused).
 *
 * Azurite checks Shared Key signatures and SAS tokens against its accounts, so bad credentials get
 * a real 403. Its built-in account is the well-known development account below; Microsoft
 * publishes its key, so it is no secret.
 *
 * @module
 */
import { emulatorBin, freePort, waitForPort } from "./emulators.ts";

/** Azurite's built-in development account name. */
export const AZURITE_ACCOUNT = "devstoreaccount1";

/** The published key of {@linkcode AZURITE_ACCOUNT} (the same in every Azurite). */
export const AZURITE_KEY =
  "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** Options of {@linkcode startAzurite}. */
export interface StartAzuriteOptions {
  /**
   * More accounts (name → base64 key) besides {@linkcode AZURITE_ACCOUNT}, passed through
   * `AZURITE_ACCOUNTS`.
   */
  readonly accounts?: Readonly<Record<string, string>>;
}

/** A running Azurite Blob service. Dispose it (or call `close`) to stop it and delete its data. */
export interface Azurite extends AsyncDisposable {
  /** Loopback port it listens on. */
  readonly port: number;
  /** Account name of the development account. */
  readonly accountName: string;
  /** Key of the development account. */
  readonly accountKey: string;
  /** `http://127.0.0.1:<port>/<account>`: the blob endpoint of `account` (default the dev one). */
  endpoint(account?: string): string;
  /** A connection string with the account key of the development account. */
  readonly connectionString: string;
  /** Its data folder (deleted by `close`). */
  readonly dir: string;
  /** Stops the process and removes the data folder. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts `azurite-blob --blobHost 127.0.0.1 --blobPort <free> --location <tempdir>
 * --disableTelemetry --skipApiVersionCheck --loose`.
 *
 * @param options Extra accounts.
 * @returns The running emulator, reachable once this resolves.
 *
 * @example
 * ```ts ignore
 * import { startAzurite } from "./azurite.ts";
 * await using azurite = await startAzurite();
 * console.log(azurite.endpoint(), azurite.connectionString);
 * ```
 */
export async function startAzurite(options: StartAzuriteOptions = {}): Promise<Azurite> {
  const bin = await emulatorBin("azurite-blob");
  const dir = await Deno.makeTempDir({ prefix: "rivet_azurite_" });
  const port = freePort();
  const env: Record<string, string> = {};
  if (options.accounts !== undefined) {
    // Azurite drops its default account once AZURITE_ACCOUNTS is set: list it again.
    const all = { [AZURITE_ACCOUNT]: AZURITE_KEY, ...options.accounts };
    env.AZURITE_ACCOUNTS = Object.entries(all).map(([name, key]) => `${name}:${key}`).join(";");
  }
  const child = new Deno.Command(bin, {
    args: [
      "--blobHost",
      "127.0.0.1",
      "--blobPort",
      String(port),
      "--location",
      dir,
      "--disableTelemetry",
      "--skipApiVersionCheck",
      "--loose",
    ],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Drains both pipes so a chatty emulator cannot block; kept for the start-up error.
  let output = "";
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      if (output.length < 64_000) output += chunk;
    }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
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
        throw new Error(`azurite-blob exited with code ${s.code} before listening: ${output}`);
      }),
    ]);
  } catch (error) {
    await close();
    throw error;
  }
  const endpoint = (account = AZURITE_ACCOUNT) => `http://127.0.0.1:${port}/${account}`;
  return {
    port,
    accountName: AZURITE_ACCOUNT,
    accountKey: AZURITE_KEY,
    endpoint,
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};` +
      `AccountKey=${AZURITE_KEY};BlobEndpoint=${endpoint()};`,
    dir,
    close,
    [Symbol.asyncDispose]: close,
  };
}
