/**
 * The SQL Server engine of the end-to-end cases (`_engines.ts`), on one of two backends:
 * - by default the in-repo TDS test server (`tests/_helpers/tds_server.ts`), which needs only a
 *   PostgreSQL;
 * - a real SQL Server when `RIVET_MSSQL_URL` is set (the CI job with SQL Server 2022), e.g.
 *   `sqlserver://sa:<pw>@127.0.0.1:1433/master?trust_server_certificate=true`: a fresh database
 *   `rivet_e2e_<random>` with the fixtures and a `limited` login is created there and dropped
 *   at the end.
 * The fixtures are the same T-SQL on both, and `sql()` runs T-SQL through tedious on both.
 *
 * @module
 */
import type { Connection } from "tedious";
import type { Engine, EngineServer } from "./_engines.ts";
import { startTdsServer } from "../_helpers/tds_server.ts";
import { closeTds, connectTds, runTds, type TdsLogin } from "../_helpers/tds/client.ts";

/** Rows of `bulk`, as for the other engines. */
const BULK_ROWS = 150_000;

/**
 * The shared fixture in T-SQL that both SQL Server and the TDS test server run: `bulk(id, n, s,
 * at)` from a numbers CTE (s = md5 of the id, as the other engines), `empty_t`, `open_t`,
 * `secret_t`.
 */
export function mssqlFixtureSql(rows: number): string {
  return `
CREATE TABLE bulk (id bigint NOT NULL PRIMARY KEY, n int NOT NULL, s varchar(32) NOT NULL,
  at datetime2(6) NOT NULL);
WITH d AS (SELECT n FROM (VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)) AS v(n)),
  nums AS (SELECT a.n + 10 * b.n + 100 * c.n + 1000 * e.n + 10000 * f.n + 100000 * g.n + 1 AS i
    FROM d a CROSS JOIN d b CROSS JOIN d c CROSS JOIN d e CROSS JOIN d f CROSS JOIN d g)
INSERT INTO bulk (id, n, s, at)
  SELECT i, (i * 7919) % 1000,
    LOWER(CONVERT(varchar(32), HASHBYTES('MD5', CAST(i AS varchar(20))), 2)),
    DATEADD(second, i, CAST('2024-01-01 00:00:00' AS datetime2(6)))
  FROM nums WHERE i <= ${rows};
CREATE TABLE empty_t (id bigint NULL, name nvarchar(100) NULL);
CREATE TABLE open_t (id bigint NULL);
INSERT INTO open_t VALUES (1), (2);
CREATE TABLE secret_t (id bigint NULL);
`;
}

/** psql -At style text: one line per row, values joined by `|`, NULL as empty. */
function asText(rows: unknown[][]): string {
  const value = (v: unknown) =>
    v === null || v === undefined ? "" : v instanceof Date ? v.toISOString() : String(v);
  return rows.map((r) => r.map(value).join("|") + "\n").join("");
}

const url = (login: TdsLogin, query = "") =>
  `sqlserver://${encodeURIComponent(login.user)}:${
    encodeURIComponent(login.password)
  }@${login.host}:${login.port}/${login.database}${query}`;

/** What differs between the two backends. */
interface Backend {
  readonly admin: TdsLogin;
  readonly limited: TdsLogin;
  readonly query: string;
  activeReads(marker: string): Promise<number>;
  killRead(marker: string): Promise<boolean>;
  stop(): Promise<void>;
}

async function tdsBackend(): Promise<Backend> {
  const srv = await startTdsServer();
  const at = { host: srv.host, port: srv.port, database: srv.database };
  const reads = (marker: string) => srv.sessions().filter((s) => s.running?.includes(marker));
  return {
    admin: { ...at, ...srv.login },
    limited: { ...at, ...srv.limitedLogin },
    query: "",
    activeReads: (marker) => Promise.resolve(reads(marker).length),
    killRead: (marker) => {
      const found = reads(marker);
      for (const s of found) srv.kill(s.id);
      return Promise.resolve(found.length > 0);
    },
    stop: async () => {
      await srv[Symbol.asyncDispose]();
    },
  };
}

async function realBackend(serverUrl: string): Promise<Backend> {
  const u = new URL(serverUrl);
  const server: TdsLogin = {
    host: u.hostname,
    port: Number(u.port || 1433),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.slice(1)) || "master",
    encrypt: true,
  };
  const suffix = crypto.randomUUID().replaceAll("-", "").slice(0, 12);
  const database = `rivet_e2e_${suffix}`;
  const limitedUser = `rivet_limited_${suffix}`;
  const limitedPassword = `Lim1ted-${suffix}!`;
  const master = await connectTds(server);
  try {
    await runTds(master, `CREATE DATABASE [${database}]`);
    await runTds(master, `ALTER DATABASE [${database}] SET ALLOW_SNAPSHOT_ISOLATION ON`);
    await runTds(
      master,
      `CREATE LOGIN [${limitedUser}] WITH PASSWORD = '${limitedPassword}', CHECK_POLICY = OFF`,
    );
  } finally {
    await closeTds(master);
  }
  const admin = { ...server, database };
  const conn = await connectTds(admin);
  try {
    await runTds(conn, `CREATE USER [limited] FOR LOGIN [${limitedUser}]`);
  } finally {
    await closeTds(conn);
  }
  const sessions = (marker: string) =>
    `SELECT r.session_id FROM sys.dm_exec_requests r CROSS APPLY sys.dm_exec_sql_text(r.sql_handle) t
     WHERE r.session_id <> @@SPID AND t.text LIKE '%${marker}%' AND t.text NOT LIKE '%dm_exec_requests%'`;
  const query = u.search;
  return {
    admin,
    limited: { ...server, database, user: limitedUser, password: limitedPassword },
    query,
    async activeReads(marker) {
      const c = await connectTds(admin);
      try {
        return (await runTds(c, sessions(marker))).rows.length;
      } finally {
        await closeTds(c);
      }
    },
    async killRead(marker) {
      const c = await connectTds(admin);
      try {
        const ids = (await runTds(c, sessions(marker))).rows.map((r) => Number(r[0]));
        for (const id of ids) await runTds(c, `KILL ${id}`).catch(() => {});
        return ids.length > 0;
      } finally {
        await closeTds(c);
      }
    },
    async stop() {
      const c = await connectTds(server);
      try {
        await runTds(
          c,
          `ALTER DATABASE [${database}] SET SINGLE_USER WITH ROLLBACK IMMEDIATE; DROP DATABASE [${database}];`,
        );
        await runTds(c, `DROP LOGIN [${limitedUser}]`);
      } finally {
        await closeTds(c);
      }
    },
  };
}

/** SQL Server: the TDS test server, or the real server of `RIVET_MSSQL_URL`. */
export const mssqlEngine: Engine = {
  name: "mssql",
  async start(): Promise<EngineServer> {
    const real = Deno.env.get("RIVET_MSSQL_URL");
    const backend = real ? await realBackend(real) : await tdsBackend();
    let conn: Connection | undefined;
    const sql = async (text: string) => {
      conn ??= await connectTds(backend.admin);
      return asText((await runTds(conn, text)).rows);
    };
    try {
      await sql(mssqlFixtureSql(BULK_ROWS));
      await sql("GRANT SELECT ON dbo.open_t TO [limited]");
    } catch (err) {
      if (conn) await closeTds(conn);
      await backend.stop();
      throw err;
    }
    const { admin } = backend;
    return {
      type: "mssql",
      url: url(admin, backend.query),
      passwordLogin: {
        host: admin.host,
        port: admin.port,
        user: admin.user,
        password: admin.password,
        database: admin.database,
      },
      wrongPasswordUrl: (marker) =>
        url({ ...admin, password: `p@ss:w/rd-${marker}` }, backend.query),
      limitedUrl: url(backend.limited, backend.query),
      sql,
      sleepQuery: "WAITFOR DELAY '00:01:00'; SELECT 1 AS x",
      activeReads: (marker) => backend.activeReads(marker),
      killRead: (marker) => backend.killRead(marker),
      syntaxErrorText: /Incorrect syntax/,
      permissionText: /permission was denied/i,
      async [Symbol.asyncDispose]() {
        if (conn) await closeTds(conn);
        await backend.stop();
      },
    };
  },
};
