/**
 * Starts a throwaway PostgreSQL server for tests and benchmarks: initdb in a temp folder, a free
 * loopback port, trust auth for the superuser plus a password user, stopped with `stop()`.
 *
 * Runs initdb/pg_ctl as the `postgres` OS user when the process is root (initdb refuses root).
 *
 * @module
 */

/** A running server. */
export interface PgServer extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** Superuser, trust auth. */
  readonly user: string;
  readonly database: string;
  /** `postgresql://postgres@127.0.0.1:<port>/postgres` (no password). */
  readonly url: string;
  /** A login role with a password (scram-sha-256) for auth tests. */
  readonly passwordUser: { readonly user: string; readonly password: string };
  readonly dataDir: string;
  /** Runs SQL through psql as the superuser; returns stdout. Throws on error. */
  psql(sql: string, options?: { database?: string }): Promise<string>;
  /**
   * Stops the server process (`pg_ctl stop`, `fast` unless told otherwise) but keeps its data
   * folder and port, so that {@linkcode PgServer.startServer} brings the same cluster back: an
   * outage as an operator sees it.
   */
  stopServer(options?: { mode?: "smart" | "fast" | "immediate" }): Promise<void>;
  /** Starts the stopped server again on the same port and data folder. */
  startServer(): Promise<void>;
  /** Stops the server for good and removes a temporary data folder. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startPostgres}. */
export interface StartPostgresOptions {
  /** Extra postgresql.conf lines (written when the cluster is created). */
  readonly conf?: readonly string[];
  /**
   * A data directory to keep between runs (benchmarks): created with initdb if it holds no
   * cluster, left in place by `stop()`. Default: a temp folder removed by `stop()`.
   */
  readonly dataDir?: string;
  /** Shared buffers, default 128MB. */
  readonly sharedBuffers?: string;
  /**
   * `wal_level = logical` with replication slots and WAL senders, for change data capture
   * (replication connections from loopback are trusted in every cluster).
   */
  readonly logical?: boolean;
}

function findBinDir(): string {
  const candidates: string[] = [];
  const env = Deno.env.get("RIVET_PG_BINDIR");
  if (env) candidates.push(env);
  try {
    const versions = [...Deno.readDirSync("/usr/lib/postgresql")]
      .map((e) => e.name).filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(`/usr/lib/postgresql/${v}/bin`);
  } catch { /* not Debian layout */ }
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

/** A free TCP port on 127.0.0.1 (free now; bind it soon). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const isRoot = Deno.uid?.() === 0;

async function run(cmd: string, args: string[], opts: { stdin?: string } = {}): Promise<string> {
  const full = isRoot
    ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] as const
    : [cmd, args] as const;
  const child = new Deno.Command(full[0], {
    args: [...full[1]],
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
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

async function createCluster(bin: string, dataDir: string, options: StartPostgresOptions) {
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
    `shared_buffers=${options.sharedBuffers ?? "128MB"}`,
    "password_encryption='scram-sha-256'",
    "timezone='UTC'",
    ...(options.logical
      ? ["wal_level=logical", "max_replication_slots=32", "max_wal_senders=16"]
      : []),
    ...(options.conf ?? []),
  ];
  await Deno.writeTextFile(`${dataDir}/postgresql.conf`, "\n" + conf.join("\n") + "\n", {
    append: true,
  });
  // The password users must authenticate for real; everything else is trusted on loopback.
  await Deno.writeTextFile(
    `${dataDir}/pg_hba.conf`,
    [
      "local all all trust",
      "host all rivet_pw 127.0.0.1/32 scram-sha-256",
      "host all rivet_md5 127.0.0.1/32 md5",
      "host all all 127.0.0.1/32 trust",
      "host replication all 127.0.0.1/32 trust",
      "",
    ].join("\n"),
  );
}

/**
 * Starts a server. Always `await using` it or call `stop()`.
 *
 * @param options Extra settings.
 * @returns The running server.
 */
export async function startPostgres(options: StartPostgresOptions = {}): Promise<PgServer> {
  const bin = findBinDir();
  const persistent = options.dataDir !== undefined;
  if (persistent) await Deno.mkdir(options.dataDir!, { recursive: true });
  const dataDir = persistent
    ? await Deno.realPath(options.dataDir!)
    : await Deno.makeTempDir({ prefix: "rivet_pg_" });
  const fresh = !(await Deno.stat(`${dataDir}/PG_VERSION`).then(() => true, () => false));
  if (fresh) await createCluster(bin, dataDir, options);
  const port = freePort();
  // The port is a start option, not a conf line, so a kept cluster never collides with a server
  // that took its old port meanwhile.
  const startServer = () =>
    run(`${bin}/pg_ctl`, [
      "-D",
      dataDir,
      "-l",
      `${dataDir}/server.log`,
      "-o",
      `-p ${port}`,
      "-w",
      "start",
    ]).then(() => {});
  await startServer();
  const host = "127.0.0.1";
  const psql = (sql: string, opts: { database?: string } = {}) =>
    run("psql", [
      "-h",
      dataDir,
      "-p",
      String(port),
      "-U",
      "postgres",
      "-d",
      opts.database ?? "postgres",
      "-v",
      "ON_ERROR_STOP=1",
      "-X",
      "-q",
      "-At",
      "-f",
      "-",
    ], { stdin: sql });
  const passwordUser = { user: "rivet_pw", password: "pw-S3CR3T_M4RK3R" };
  if (fresh) {
    await psql(
      `CREATE ROLE rivet_pw LOGIN PASSWORD '${passwordUser.password}';
     GRANT pg_read_all_data TO rivet_pw;
     SET password_encryption = 'md5';
     CREATE ROLE rivet_md5 LOGIN PASSWORD '${passwordUser.password}';
     GRANT pg_read_all_data TO rivet_md5;`,
    );
  }
  let stopped = false;
  let down = false;
  const stopServer = async (opts: { mode?: "smart" | "fast" | "immediate" } = {}) => {
    await run(`${bin}/pg_ctl`, ["-D", dataDir, "-m", opts.mode ?? "fast", "-w", "stop"]);
    down = true;
  };
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      if (!down) await stopServer({ mode: persistent ? "fast" : "immediate" });
    } finally {
      if (!persistent) await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    }
  };
  return {
    host,
    port,
    user: "postgres",
    database: "postgres",
    url: `postgresql://postgres@${host}:${port}/postgres`,
    passwordUser,
    dataDir,
    psql,
    stopServer,
    startServer: async () => {
      await startServer();
      down = false;
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
