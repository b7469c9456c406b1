/**
 * A throwaway PgBouncer (the Debian package's binary) in front of a test PostgreSQL: trust auth,
 * a loopback port, its files in a temp folder, run in the foreground as the `postgres` OS user
 * when the process is root (PgBouncer refuses root). Stopped with SIGTERM on dispose.
 *
 * @module
 */
import { freePort } from "./pg_server.ts";

/** A running PgBouncer. */
export interface PgBouncer extends AsyncDisposable {
  readonly port: number;
  /** URL of database `postgres` as user `postgres` through the pooler. */
  readonly url: string;
}

/** Options of {@linkcode startPgBouncer}. */
export interface PgBouncerOptions {
  /** The server's loopback port. */
  readonly serverPort: number;
  readonly poolMode: "session" | "transaction";
  /**
   * Extra `[pgbouncer]` lines, e.g. `server_round_robin = 1` (the oldest idle server connection
   * is used first, so consecutive transactions of one client alternate between servers).
   */
  readonly extra?: readonly string[];
}

function findBinary(): string {
  const isFile = (path: string) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  };
  const found = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].find(isFile);
  if (found) return found;
  throw new Error(
    "pgbouncer not found: install the 'pgbouncer' package (apt-get install -y pgbouncer)",
  );
}

const isRoot = Deno.uid?.() === 0;

/**
 * Starts PgBouncer and waits until it accepts connections.
 *
 * @param options The server to pool, the pool mode, extra settings.
 * @returns The pooler; dispose it to stop it.
 */
export async function startPgBouncer(options: PgBouncerOptions): Promise<PgBouncer> {
  const binary = findBinary();
  const dir = await Deno.makeTempDir({ prefix: "rivet_pgbouncer_" });
  const port = freePort();
  await Deno.writeTextFile(`${dir}/users.txt`, '"postgres" ""\n');
  await Deno.writeTextFile(
    `${dir}/pgbouncer.ini`,
    [
      "[databases]",
      `* = host=127.0.0.1 port=${options.serverPort}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${dir}/users.txt`,
      `pool_mode = ${options.poolMode}`,
      `logfile = ${dir}/pgbouncer.log`,
      ...(options.extra ?? []),
      "",
    ].join("\n"),
  );
  if (isRoot) await new Deno.Command("chown", { args: ["-R", "postgres", dir] }).output();
  const [cmd, args] = isRoot
    ? ["runuser", ["-u", "postgres", "--", binary, `${dir}/pgbouncer.ini`]]
    : [binary, [`${dir}/pgbouncer.ini`]];
  const child = new Deno.Command(cmd, { args, stdout: "null", stderr: "null", stdin: "null" })
    .spawn();
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        await child.status;
        const log = await Deno.readTextFile(`${dir}/pgbouncer.log`).catch(() => "");
        throw new Error(`pgbouncer did not start:\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  let stopped = false;
  return {
    port,
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    async [Symbol.asyncDispose]() {
      if (stopped) return;
      stopped = true;
      // runuser passes SIGTERM on to PgBouncer, which closes its connections and exits.
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
