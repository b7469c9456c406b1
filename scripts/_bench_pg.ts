/**
 * The benchmark's PostgreSQL: a cluster kept in `.bench/pgdata` between runs (loading 10M rows
 * takes about a minute), or a throwaway one from `tests/_helpers/pg_server.ts`; plus the `narrow`
 * fixture of PERFORMANCE.md with a row-count parameter.
 *
 * The cached cluster uses the harness's recipe (initdb as the `postgres` user when root, trust
 * auth on loopback, fsync off) with `shared_buffers=512MB`, on a fresh free port each start.
 *
 * @module
 */
import { startPostgres } from "../tests/_helpers/pg_server.ts";

/** A running benchmark server. */
export interface BenchPg extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** `postgresql://postgres@127.0.0.1:<port>/postgres` (trust). */
  readonly url: string;
  /** Server version, e.g. `15.18`. */
  readonly version: string;
  /** Runs SQL through psql as the superuser; returns stdout. */
  psql(sql: string): Promise<string>;
  stop(): Promise<void>;
}

/** Options of {@linkcode startBenchPg}. */
export interface StartBenchPgOptions {
  /** Data directory to keep between runs; undefined = throwaway cluster. */
  readonly cacheDir?: string;
  readonly sharedBuffers?: string;
}

const isRoot = Deno.uid?.() === 0;

function findBinDir(): string {
  const env = Deno.env.get("RIVET_PG_BINDIR");
  const candidates = env ? [env] : [];
  try {
    const versions = [...Deno.readDirSync("/usr/lib/postgresql")]
      .map((e) => e.name).filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  } catch { /* not the Debian layout */ }
  for (const dir of candidates) {
    try {
      Deno.statSync(`${dir}/initdb`);
      return dir;
    } catch { /* next */ }
  }
  throw new Error(
    "PostgreSQL server binaries not found: install the 'postgresql' package (apt-get install -y postgresql) or set RIVET_PG_BINDIR",
  );
}

async function run(cmd: string, args: readonly string[], stdin?: string): Promise<string> {
  const [program, argv] = isRoot
    ? ["runuser", ["-u", "postgres", "--", cmd, ...args]]
    : [cmd, [...args]];
  const child = new Deno.Command(program, {
    args: argv,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}${stdout}`,
    );
  }
  return stdout;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Starts the benchmark server: the cached cluster when `cacheDir` is given (created on first
 * use), else a throwaway one.
 *
 * @param options Cache folder and shared_buffers.
 * @returns The running server.
 */
export async function startBenchPg(options: StartBenchPgOptions = {}): Promise<BenchPg> {
  const sharedBuffers = options.sharedBuffers ?? "512MB";
  if (options.cacheDir === undefined) {
    const pg = await startPostgres({ sharedBuffers });
    const psql = (sql: string) => pg.psql(sql);
    return {
      host: pg.host,
      port: pg.port,
      url: pg.url,
      version: (await psql("SHOW server_version")).trim().split(" ")[0]!,
      psql,
      stop: () => pg.stop(),
      [Symbol.asyncDispose]: () => pg.stop(),
    };
  }
  const bin = findBinDir();
  await Deno.mkdir(options.cacheDir, { recursive: true });
  const dataDir = await Deno.realPath(options.cacheDir);
  const fresh = !(await Deno.stat(`${dataDir}/PG_VERSION`).then(() => true, () => false));
  if (fresh) {
    // initdb refuses root, so the cluster belongs to the `postgres` OS user.
    if (isRoot) {
      await new Deno.Command("chown", { args: ["-R", "postgres:postgres", dataDir] }).output();
    }
    await run(`${bin}/initdb`, [
      "-D",
      dataDir,
      "-U",
      "postgres",
      "--auth=trust",
      "-E",
      "UTF8",
      "--locale=C.UTF-8",
    ]);
    const conf = [
      "listen_addresses='127.0.0.1'",
      `unix_socket_directories='${dataDir}'`,
      "fsync=off",
      "synchronous_commit=off",
      "full_page_writes=off",
      `shared_buffers=${sharedBuffers}`,
      // The fixture is created and filled in one transaction: with wal_level=minimal its rows
      // skip the WAL, so loading is faster and the cache folder stays near the table's size.
      "wal_level=minimal",
      "max_wal_senders=0",
      "max_wal_size=1GB",
      "timezone='UTC'",
    ];
    await Deno.writeTextFile(`${dataDir}/postgresql.conf`, "\n" + conf.join("\n") + "\n", {
      append: true,
    });
    await Deno.writeTextFile(
      `${dataDir}/pg_hba.conf`,
      "local all all trust\nhost all all 127.0.0.1/32 trust\n",
    );
  }
  const port = freePort();
  // The port is per start (a command-line option), so a cached cluster never collides with a
  // server that took its old port meanwhile.
  await run(`${bin}/pg_ctl`, [
    "-D",
    dataDir,
    "-l",
    `${dataDir}/server.log`,
    "-o",
    `-p ${port}`,
    "-w",
    "start",
  ]);
  const psql = (sql: string) =>
    run("psql", [
      "-h",
      dataDir,
      "-p",
      String(port),
      "-U",
      "postgres",
      "-d",
      "postgres",
      "-v",
      "ON_ERROR_STOP=1",
      "-X",
      "-q",
      "-At",
      "-f",
      "-",
    ], sql);
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await run(`${bin}/pg_ctl`, ["-D", dataDir, "-m", "fast", "-w", "stop"]);
  };
  return {
    host: "127.0.0.1",
    port,
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    version: (await psql("SHOW server_version")).trim().split(" ")[0]!,
    psql,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * The `narrow` fixture of `shared/bench/narrow.sql` (bigint, int, numeric(12,2), short text,
 * timestamptz; deterministic), with `rows` as the generate_series bound and a table comment
 * recording that bound.
 *
 * @param rows Row count.
 * @returns SQL for psql.
 */
export function narrowSql(rows: number): string {
  if (!Number.isSafeInteger(rows) || rows < 1) throw new RangeError(`bad row count ${rows}`);
  return `
DROP TABLE IF EXISTS narrow;
BEGIN;
CREATE TABLE narrow (
    id          bigint        NOT NULL,
    user_id     int           NOT NULL,
    amount      numeric(12,2) NOT NULL,
    status      text          NOT NULL,
    created_at  timestamptz   NOT NULL
);
INSERT INTO narrow (id, user_id, amount, status, created_at)
SELECT i,
       (1 + (i * 7919) % 1000000)::int,
       ((i * 104729) % 10000000) / 100.0,
       (ARRAY['pending','paid','shipped','delivered','cancelled','refunded'])[1 + i % 6],
       timestamptz '2024-01-01 00:00:00+00' + i * interval '3 seconds'
FROM generate_series(1::bigint, ${rows}) AS i;
ALTER TABLE narrow ADD PRIMARY KEY (id);
COMMENT ON TABLE narrow IS '${narrowComment(rows)}';
COMMIT;
VACUUM (FREEZE, ANALYZE) narrow;
`;
}

function narrowComment(rows: number): string {
  return `rivet bench narrow v1 rows=${rows}`;
}

/**
 * Creates `narrow` with `rows` rows unless a table built for that count is already there.
 *
 * @param pg The server.
 * @param rows Row count.
 * @returns Whether the table was (re)built, and the seconds it took.
 */
export async function ensureNarrow(
  pg: BenchPg,
  rows: number,
): Promise<{ built: boolean; seconds: number }> {
  const comment = (await pg.psql(
    "SELECT coalesce(obj_description(to_regclass('public.narrow'), 'pg_class'), '')",
  )).trim();
  if (comment === narrowComment(rows)) return { built: false, seconds: 0 };
  const started = performance.now();
  await pg.psql(narrowSql(rows));
  return { built: true, seconds: (performance.now() - started) / 1000 };
}
