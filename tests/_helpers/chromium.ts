/**
 * Headless Chromium for tests of HTML pages rivet writes (the run report): the DOM after the
 * page's scripts ran, its console messages, every network request the page made, and a
 * screenshot.
 *
 * Network proof: Chromium runs with `--host-resolver-rules="MAP * ~NOTFOUND"` (no name resolves,
 * so nothing can leave the machine even if the page tried) and `--log-net-log=<file>`, the
 * browser's own log of every request. Requests made on behalf of the page carry the page's
 * `file://` site in their network isolation key (or its opaque `null` initiator); the browser's
 * own background traffic (update and account checks, which the flags below mostly switch off)
 * carries neither, and is not the page's doing. `pageRequests` lists every page request whose URL
 * is not `file:`, `data:` or `about:`; a page that loads nothing lists none.
 *
 * Debian's package is `chromium`, others ship `chromium-browser`; `.ci/run` installs it, so CI
 * has it. Elsewhere the tests that need it are ignored with a message saying what to install.
 *
 * @module
 */
import { join } from "node:path";

/** Path of the Chromium binary on PATH, or undefined. */
export function findChromium(): string | undefined {
  for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
    for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
      if (dir === "") continue;
      const path = join(dir, name);
      try {
        if (Deno.statSync(path).isFile) return path;
      } catch {
        // not in this folder
      }
    }
  }
  return undefined;
}

const binary = findChromium();

/** Why Chromium tests cannot run here (undefined when they can). */
export const chromiumMissing: string | undefined = binary === undefined
  ? "chromium not found on PATH: install it (Debian: apt-get install -y chromium); .ci/run does"
  : undefined;

/**
 * Whether to ignore the Chromium tests: only outside CI. CI installs Chromium, so there a missing
 * binary fails the tests (with the message above) instead of skipping them unseen.
 */
export const ignoreChromiumTests = chromiumMissing !== undefined && Deno.env.get("CI") !== "true";

if (ignoreChromiumTests) console.warn(`skipping Chromium tests: ${chromiumMissing}`);

/** Flags of every run: headless, no sandbox (CI runs as root), no network, no background chatter. */
const BASE_FLAGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--host-resolver-rules=MAP * ~NOTFOUND",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-extensions",
  "--disable-default-apps",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-features=Translate,OptimizationHints,MediaRouter",
];

/** What a page did when loaded. */
export interface PageLoad {
  /** The DOM after scripts ran, serialised. */
  readonly dom: string;
  /** Console messages (errors included, e.g. an uncaught exception or a CSP refusal). */
  readonly console: string[];
  /** URLs the page requested that are not `file:`, `data:` or `about:`. */
  readonly requests: string[];
}

interface NetLog {
  constants: { logEventTypes: Record<string, number> };
  events: { type: number; params?: Record<string, unknown> }[];
}

/** Network requests made on behalf of a `file://` page, from a Chromium net log. */
export function pageRequests(log: NetLog): string[] {
  const start = log.constants.logEventTypes["URL_REQUEST_START_JOB"];
  const urls = new Set<string>();
  for (const e of log.events) {
    if (e.type !== start || !e.params) continue;
    const url = String(e.params.url ?? "");
    const key = String(e.params.network_isolation_key ?? "");
    const initiator = String(e.params.initiator ?? "");
    const fromPage = key.includes("file://") || initiator === "null" ||
      initiator.startsWith("file:");
    if (fromPage && !/^(file|data|about):/.test(url)) urls.add(url);
  }
  return [...urls];
}

async function run(args: string[], dir: string): Promise<{ stdout: string; stderr: string }> {
  if (!binary) throw new Error(chromiumMissing);
  const out = await new Deno.Command(binary, {
    args: [...BASE_FLAGS, `--user-data-dir=${join(dir, "profile")}`, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { HOME: dir },
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`chromium exited ${out.code}: ${stderr.slice(-2000)}`);
  return { stdout, stderr };
}

/** Loads an HTML file: its DOM after scripts, its console messages and its network requests. */
export async function loadPage(htmlPath: string): Promise<PageLoad> {
  const dir = await Deno.makeTempDir({ prefix: "rivet-chromium-" });
  try {
    const netLog = join(dir, "net.json");
    const { stdout, stderr } = await run([
      "--enable-logging=stderr",
      "--v=0",
      `--log-net-log=${netLog}`,
      "--dump-dom",
      `file://${htmlPath}`,
    ], dir);
    const console = stderr.split("\n").filter((l) => /:CONSOLE[:(]/.test(l));
    const log = JSON.parse(await Deno.readTextFile(netLog)) as NetLog;
    return { dom: stdout, console, requests: pageRequests(log) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes a PNG screenshot of an HTML file at 1400×1000. */
export async function screenshot(htmlPath: string, pngPath: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rivet-chromium-" });
  try {
    await run([`--screenshot=${pngPath}`, "--window-size=1400,1000", `file://${htmlPath}`], dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
