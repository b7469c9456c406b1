/**
 * The object-store emulators the cloud destination tests run against: s3rver (S3) and Azurite
 * (Azure Blob), Node programs installed from npm at pinned versions into `.emulators/` (ignored
 * by git). `.ci/run` installs them up front; a developer's first test run installs them here
 * (about 40 s, npm needed). The GCS emulator is in-repo (`gcs_server.ts`).
 *
 * @module
 */

/** Pinned emulator packages. */
export const EMULATOR_PACKAGES = ["s3rver@3.7.1", "azurite@3.35.0"] as const;

/** Where the emulators are installed (repository root `.emulators/`). */
export const EMULATOR_DIR = new URL("../../.emulators/", import.meta.url).pathname;

let installing: Promise<void> | undefined;

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Installs the emulators unless they are there, and returns the path of one of their programs.
 *
 * @param bin `s3rver` or `azurite-blob`.
 * @returns The program's path.
 */
export async function emulatorBin(bin: "s3rver" | "azurite-blob"): Promise<string> {
  const path = `${EMULATOR_DIR}node_modules/.bin/${bin}`;
  if (await exists(path)) return path;
  installing ??= (async () => {
    await Deno.mkdir(EMULATOR_DIR, { recursive: true });
    const out = await new Deno.Command("npm", {
      args: [
        "install",
        "--prefix",
        EMULATOR_DIR,
        "--no-audit",
        "--no-fund",
        "--no-package-lock",
        "--loglevel=error",
        ...EMULATOR_PACKAGES,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `npm install ${EMULATOR_PACKAGES.join(" ")} failed:\n${
          new TextDecoder().decode(out.stderr)
        }`,
      );
    }
  })();
  await installing;
  if (!(await exists(path))) throw new Error(`${bin} is missing after installing the emulators`);
  return path;
}

/**
 * A free TCP port on 127.0.0.1.
 *
 * @returns The port.
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/**
 * Waits until something accepts TCP connections on `port`.
 *
 * @param port The port.
 * @param ms How long to wait.
 */
export async function waitForPort(port: number, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
}
