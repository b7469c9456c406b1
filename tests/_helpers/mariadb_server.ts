/**
 * Starts a throwaway MariaDB server for tests and measurements: `mariadb-install-db` into a temp
 * folder, `mariadbd --no-defaults` on a free loopback port, a database `rivet`,
 * a TCP user with a password and a second user allowed to read one table only.
 *
 * Runs as root with `--user=root` (mariadbd refuses root otherwise). `--no-defaults` must be the
 * first argument or the system my.cnf is read.
 *
 * @module
 */

/** A running server. */
export interface MariaDbServer extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** TCP user with ALL on `rivet.*`. */
  readonly user: string;
  /** Its password (contains `S3CR3T_M4RK3R`, so leaks are easy to grep). */
  readonly password: string;
  readonly database: string;
  /** `mysql://user:password@127.0.0.1:port/rivet`. */
  readonly url: string;
  /** A user with SELECT on `rivet.allowed` only (created by `sql` before use). */
  readonly limitedUser: { readonly user: string; readonly password: string };
  /** Unix socket of the server (root logs in here without a password). */
  readonly socket: string;
  readonly dataDir: string;
  /**
   * Runs SQL through the `mariadb` client as root over the socket; returns stdout (tab-separated,
   * no column names, `--raw`). Throws on error.
   */
  sql(text: string, options?: { database?: string }): Promise<string>;
  /**
   * Stops `mariadbd` (SIGTERM, a clean shutdown; SIGKILL with `kill: true`) but keeps its data
   * folder and port, so that {@linkcode MariaDbServer.startServer} brings the same server back:
   * an outage as an operator sees it.
   */
  stopServer(options?: { kill?: boolean }): Promise<void>;
  /** Starts the stopped server again on the same port and data folder. */
  startServer(): Promise<void>;
  /** Stops the server for good and removes its folder. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startMariaDb}. */
export interface StartMariaDbOptions {
  /** InnoDB buffer pool, default `128M`. */
  readonly bufferPool?: string;
  /** Extra `mariadbd` arguments. */
  readonly args?: readonly string[];
  /**
   * Binary log on, in this format (`--log-bin`, `--server-id=1`, `--binlog-row-image=FULL`), for
   * change data capture; off (`--skip-log-bin`) when absent.
   */
  readonly binlogFormat?: "ROW" | "STATEMENT" | "MIXED";
}

function findBinary(name: string): string {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter((d) => d.length > 0);
  for (const dir of [...dirs, "/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch { /* next */ }
  }
  throw new Error(
    `MariaDB binary '${name}' not found on PATH or in /usr/sbin: install mariadb-server ` +
      "(apt-get install -y mariadb-server)",
  );
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function run(cmd: string, args: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}${stdout}`);
  }
  return stdout;
}

async function waitForSocket(
  client: string,
  socket: string,
  child: Deno.ChildProcess,
  log: string,
): Promise<void> {
  let exited = false;
  child.status.then(() => (exited = true));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (exited) break;
    try {
      await run(client, [
        "--no-defaults",
        "--protocol=socket",
        "-S",
        socket,
        "-u",
        "root",
        "-e",
        "SELECT 1",
      ]);
      return;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  const text = await Deno.readTextFile(log).catch(() => "");
  throw new Error(`mariadbd did not start: ${text.slice(-2000)}`);
}

/**
 * Starts a server. Always `await using` it or call `stop()`.
 *
 * @param options Buffer pool and extra arguments.
 * @returns The running server.
 */
export async function startMariaDb(options: StartMariaDbOptions = {}): Promise<MariaDbServer> {
  const mariadbd = findBinary("mariadbd");
  const installDb = findBinary("mariadb-install-db");
  const client = findBinary("mariadb");
  const dir = await Deno.makeTempDir({ prefix: "rivet_mariadb_" });
  const dataDir = `${dir}/data`;
  const socket = `${dir}/mysqld.sock`;
  const log = `${dir}/error.log`;
  await run(installDb, [
    "--no-defaults",
    `--datadir=${dataDir}`,
    "--user=root",
    "--auth-root-authentication-method=normal",
    "--skip-test-db",
  ]);
  const port = freePort();
  const spawn = () =>
    new Deno.Command(mariadbd, {
      args: [
        "--no-defaults",
        `--datadir=${dataDir}`,
        `--socket=${socket}`,
        `--pid-file=${dir}/mysqld.pid`,
        `--port=${port}`,
        "--bind-address=127.0.0.1",
        "--user=root",
        ...(options.binlogFormat === undefined ? ["--skip-log-bin"] : [
          `--log-bin=${dir}/binlog`,
          `--binlog-format=${options.binlogFormat}`,
          "--server-id=1",
          "--binlog-row-image=FULL",
        ]),
        `--innodb-buffer-pool-size=${options.bufferPool ?? "128M"}`,
        "--innodb-flush-log-at-trx-commit=0",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_general_ci",
        "--max-allowed-packet=256M",
        `--log-error=${log}`,
        ...(options.args ?? []),
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  let child: Deno.ChildProcess | undefined = spawn();
  const stopServer = async (opts: { kill?: boolean } = {}) => {
    const running = child;
    child = undefined;
    if (running === undefined) return;
    try {
      running.kill(opts.kill ? "SIGKILL" : "SIGTERM");
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        running.kill("SIGKILL");
      } catch { /* gone */ }
    }, 10_000);
    await running.status;
    clearTimeout(timer);
  };
  const startServer = async () => {
    if (child !== undefined) return;
    child = spawn();
    await waitForSocket(client, socket, child, log);
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await stopServer();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await waitForSocket(client, socket, child, log);
  } catch (error) {
    await stop();
    throw error;
  }
  const sql = (text: string, opts: { database?: string } = {}) =>
    run(client, [
      "--no-defaults",
      "--protocol=socket",
      "-S",
      socket,
      "-u",
      "root",
      "--batch",
      "--raw",
      "--skip-column-names",
      "--default-character-set=utf8mb4",
      ...(opts.database ? [opts.database] : []),
    ], text);
  const host = "127.0.0.1";
  const user = "rivet";
  const password = "pw-S3CR3T_M4RK3R";
  const limitedUser = { user: "rivet_limited", password: "lim-S3CR3T_M4RK3R" };
  try {
    await sql(`CREATE DATABASE rivet CHARACTER SET utf8mb4;
      CREATE USER '${user}'@'127.0.0.1' IDENTIFIED BY '${password}';
      GRANT ALL ON rivet.* TO '${user}'@'127.0.0.1';
      CREATE TABLE rivet.allowed (id INT PRIMARY KEY, v VARCHAR(20));
      INSERT INTO rivet.allowed VALUES (1, 'ok');
      CREATE USER '${limitedUser.user}'@'127.0.0.1' IDENTIFIED BY '${limitedUser.password}';
      GRANT SELECT ON rivet.allowed TO '${limitedUser.user}'@'127.0.0.1';`);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    host,
    port,
    user,
    password,
    database: "rivet",
    url: `mysql://${user}:${password}@${host}:${port}/rivet`,
    limitedUser,
    socket,
    dataDir,
    sql,
    stopServer,
    startServer,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
