/**
 * `deno task demo`: a zero-install tour of rivet. Starts an embedded PostgreSQL (PGlite, a wasm
 * build, served over TCP by pglite-socket on a free loopback port) holding a small shop schema,
 * runs `rivet run -c examples/demo.yaml` in-process against it, prints where the files went and
 * how to look at them, then stops the database.
 *
 * The database comes from the pre-seeded archive `examples/demo/pgdata.tar.gz` (about 2 s to
 * start); without it, it is seeded in memory (initdb plus seed, slower). Rebuild the archive with
 * `deno run -A scripts/demo_seed.ts` after changing the seed.
 *
 * @module
 */
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { relative } from "node:path";
import { DEMO_ARCHIVE_PATH, demoSeedDigest, seedDemo } from "./demo_seed.ts";

/** The repository root (this file lives in `scripts/`). */
const REPO_ROOT = new URL("../", import.meta.url);

/** The demo config, relative to the repository root. */
export const DEMO_CONFIG_PATH = "examples/demo.yaml";

/** The env var `examples/demo.yaml` reads its connection URL from. */
export const DEMO_URL_ENV = "RIVET_DEMO_URL";

/** The output root `examples/demo.yaml` writes under, relative to the CWD. */
export const DEMO_OUTPUT_DIR = "out/demo";

/** A running demo database. */
export interface DemoDatabase extends AsyncDisposable {
  /** `postgresql://postgres@127.0.0.1:<port>/postgres` (trust auth, no password). */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Where the data came from: the pre-seeded archive, or a seed run in memory. */
  readonly origin: "archive" | "memory";
  /** Seconds from the call to a listening server. */
  readonly startSeconds: number;
  /** Stops the socket server and closes the database. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startDemoDatabase}. */
export interface StartDemoDatabaseOptions {
  /** Archive to load; default `examples/demo/pgdata.tar.gz`. `null` forces an in-memory seed. */
  readonly archive?: string | URL | null;
  /** Port to listen on; default 0 (a free one). */
  readonly port?: number;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

/**
 * Starts the demo database on a loopback port.
 *
 * @param options Archive location, port and logging.
 * @returns The running database; `await using` it or call `stop()`.
 */
export async function startDemoDatabase(
  options: StartDemoDatabaseOptions = {},
): Promise<DemoDatabase> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  const archiveUrl = options.archive === undefined
    ? new URL(DEMO_ARCHIVE_PATH, REPO_ROOT)
    : options.archive;
  const bytes = archiveUrl === null ? undefined : await readIfExists(archiveUrl);
  let db: PGlite;
  let origin: DemoDatabase["origin"];
  if (bytes) {
    db = await PGlite.create({ loadDataDir: new Blob([bytes]) });
    origin = "archive";
    const digest = await archiveDigest(db);
    if (digest !== await demoSeedDigest()) {
      log(
        `note: ${DEMO_ARCHIVE_PATH} was built from an older seed; rebuild it with ` +
          "`deno run -A scripts/demo_seed.ts`",
      );
    }
  } else {
    log(
      `note: ${DEMO_ARCHIVE_PATH} not found; seeding in memory (slower). ` +
        "Build it once with `deno run -A scripts/demo_seed.ts`",
    );
    db = await PGlite.create();
    await seedDemo(db);
    origin = "memory";
  }
  // Queries are serialised by pglite-socket anyway; extra connections only wait their turn,
  // which keeps a client that opens a second connection (a cancel, a probe) from being refused.
  const server = new PGLiteSocketServer({
    db,
    host: "127.0.0.1",
    port: options.port ?? 0,
    maxConnections: 8,
  });
  try {
    await server.start();
  } catch (error) {
    await db.close();
    throw error;
  }
  const [host, portText] = server.getServerConn().split(":") as [string, string];
  const port = Number(portText);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      await server.stop();
    } finally {
      await db.close();
    }
  };
  return {
    url: `postgresql://postgres@${host}:${port}/postgres`,
    host,
    port,
    origin,
    startSeconds: (performance.now() - started) / 1000,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

async function readIfExists(path: string | URL): Promise<Uint8Array<ArrayBuffer> | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** The seed digest recorded in a database by `seedDemo`, or undefined. */
async function archiveDigest(db: PGlite): Promise<string | undefined> {
  const result = await db.query<{ comment: string | null }>(
    "SELECT obj_description('public'::regnamespace, 'pg_namespace') AS comment",
  );
  const comment = result.rows[0]?.comment ?? "";
  return /seed sha256:([0-9a-f]{64})/.exec(comment)?.[1];
}

/** Lists the files under `dir`, recursively, with sizes, sorted by path. */
async function listFiles(dir: string): Promise<{ path: string; size: number }[]> {
  const found: { path: string; size: number }[] = [];
  const walk = async (path: string) => {
    for await (const entry of Deno.readDir(path)) {
      const child = `${path}/${entry.name}`;
      if (entry.isDirectory) await walk(child);
      else if (entry.isFile) found.push({ path: child, size: (await Deno.stat(child)).size });
    }
  };
  try {
    await walk(dir);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return found.sort((a, b) => a.path.localeCompare(b.path));
}

function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** What to try next, given the files the run produced. */
function hints(files: readonly { path: string }[]): string {
  const dirOf = (path: string) => path.slice(0, path.lastIndexOf("/"));
  const parquet = files.find((f) => f.path.endsWith(".parquet"));
  // An unsplit CSV reads best with `head`; split parts are shown reassembled by DuckDB.
  const csv = files.find((f) => f.path.endsWith(".csv") && !/_part\d+\.csv$/.test(f.path));
  const split = files.find((f) => /_part\d+\.csv$/.test(f.path));
  const lines = ["", "Look at the results:"];
  if (parquet) {
    lines.push(`  duckdb -c "SELECT * FROM '${dirOf(parquet.path)}/*.parquet' LIMIT 5"`);
    lines.push(`  duckdb -c "DESCRIBE SELECT * FROM '${dirOf(parquet.path)}/*.parquet'"`);
  }
  if (split) {
    lines.push(`  duckdb -c "SELECT count(*) FROM read_csv('${dirOf(split.path)}/*.csv')"`);
  }
  if (csv) lines.push(`  head -5 ${csv.path}`);
  lines.push(`  cat ${DEMO_OUTPUT_DIR}/*/manifest.json`);
  lines.push("", `Then edit ${DEMO_CONFIG_PATH} and run \`deno task demo\` again.`);
  return lines.join("\n");
}

/** Options of {@linkcode runDemo}. */
export interface RunDemoOptions {
  /** Lines for the user (default: stderr). */
  readonly log?: (line: string) => void;
  /** Forwarded to {@linkcode startDemoDatabase}. */
  readonly archive?: string | URL | null;
}

/**
 * The whole demo: database up, `rivet run -c examples/demo.yaml`, file listing and hints,
 * database down.
 *
 * @param options Logging and archive location.
 * @returns The exit code of the rivet run.
 */
export async function runDemo(options: RunDemoOptions = {}): Promise<number> {
  const log = options.log ?? ((line: string) => console.error(line));
  // Every run starts from an empty output folder, so the listing and the hints show this run.
  await Deno.remove(DEMO_OUTPUT_DIR, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  log("Starting the embedded PostgreSQL (PGlite)…");
  await using db = await startDemoDatabase({
    log,
    ...(options.archive === undefined ? {} : { archive: options.archive }),
  });
  log(
    `PostgreSQL is listening on ${db.host}:${db.port} ` +
      `(${db.origin === "archive" ? "pre-seeded" : "seeded in memory"}, ` +
      `${db.startSeconds.toFixed(1)} s); ${DEMO_URL_ENV}=${db.url}`,
  );
  Deno.env.set(DEMO_URL_ENV, db.url);
  // Shown and passed as `examples/demo.yaml` from the repo root; absolute from anywhere else.
  const absoluteConfig = new URL(DEMO_CONFIG_PATH, REPO_ROOT).pathname;
  const fromCwd = relative(Deno.cwd(), absoluteConfig);
  const configPath = fromCwd.startsWith("..") ? absoluteConfig : fromCwd;
  log(`\n$ rivet run -c ${configPath}\n`);
  // Imported lazily so that `startDemoDatabase` stays usable without the CLI.
  const { main } = await import("../src/cli/main.ts");
  const code = await main(["run", "-c", configPath]);
  const files = await listFiles(DEMO_OUTPUT_DIR);
  if (files.length > 0) {
    log(`\nFiles written under ${DEMO_OUTPUT_DIR}/:`);
    const width = Math.max(...files.map((f) => f.path.length));
    for (const f of files) log(`  ${f.path.padEnd(width)}  ${humanBytes(f.size).padStart(9)}`);
  }
  if (code === 0) log(hints(files));
  else log(`\nrivet exited with code ${code}; see the messages above.`);
  return code;
}

if (import.meta.main) {
  const code = await runDemo();
  // PGlite leaves timers behind; exit explicitly with rivet's code.
  Deno.exit(code);
}
