/**
 * Test support: a wire-level TDS (SQL Server protocol) server that unmodified tedious logs into
 * and queries. Statements run on a throwaway PostgreSQL after a small T-SQL translation, and
 * results are encoded with the declared SQL Server types of the columns, so rivet's SQL Server
 * source is tested end to end on machines where no SQL Server can run. See
 * `.github/adr/0012-tds-test-server.md` for what it covers and what it does not.
 *
 * @module
 */
import postgres from "postgres";
import { type PgServer, startPostgres } from "./pg_server.ts";
import { catalogSql } from "./tds/catalog.ts";
import { cdcCatalogSql } from "./tds/cdc.ts";
import { Session, type SessionHost } from "./tds/session.ts";
import { parseType, type SqlType } from "./tds/types.ts";
import { translateBatch } from "./tds/translate.ts";

/** A session as the control API shows it. */
export interface TdsSessionInfo {
  readonly id: number;
  /** `READ COMMITTED`, `SNAPSHOT`, … as last set by the client. */
  readonly isolation: string;
  /** `SET LOCK_TIMEOUT` value, -1 (wait forever) unless set. */
  readonly lockTimeoutMs: number;
  /** The T-SQL statement running now, if any. */
  readonly running?: string;
}

/** A running TDS test server. */
export interface TdsServer extends AsyncDisposable {
  readonly host: string;
  readonly port: number;
  /** The one database it serves. */
  readonly database: string;
  /** A login that may read everything; the password has URL-special characters. */
  readonly login: { readonly user: string; readonly password: string };
  /** A login that may read `open_t` only. */
  readonly limitedLogin: { readonly user: string; readonly password: string };
  /** `sqlserver://` URL of `login` (user and password percent-encoded). */
  readonly url: string;
  /** The backing PostgreSQL. */
  readonly pg: PgServer;
  /** Runs T-SQL (fixtures) through the same translator, as the owner. */
  sql(tsql: string): Promise<void>;
  /** The connected sessions. */
  sessions(): TdsSessionInfo[];
  /** Drops a session's client socket (the client sees a connection reset). */
  kill(sessionId: number): void;
  /** Changes server behaviour for the next requests. */
  set(options: {
    snapshotIsolation?: boolean;
    engineEdition?: number;
    failNextQuery?: { number: number; message: string };
    /** Whether SQL Server Agent (the CDC capture job's runner) shows as running (default true). */
    agentRunning?: boolean;
  }): void;
}

/** Options of {@linkcode startTdsServer}. */
export interface TdsServerOptions {
  /** `SERVERPROPERTY('EngineEdition')`: 3 (Enterprise/Developer, default), 5 or 8 (Azure SQL). */
  readonly engineEdition?: number;
  /** Whether the database allows snapshot isolation (default true). */
  readonly snapshotIsolation?: boolean;
}

/**
 * Starts a PostgreSQL and a TDS listener on a free loopback port. Always `await using` it.
 *
 * @param options Server behaviour.
 * @returns The running server.
 */
export async function startTdsServer(options: TdsServerOptions = {}): Promise<TdsServer> {
  const pg = await startPostgres();
  const database = "rivet";
  const settings: SessionHost["settings"] = {
    snapshotIsolation: options.snapshotIsolation ?? true,
    engineEdition: options.engineEdition ?? 3,
  };
  const login = { user: "rivet", password: "p@ss:w/rd?#&=%+ 1" };
  const limitedLogin = { user: "limited", password: "limited-Pw1" };
  await pg.psql(`CREATE ROLE limited LOGIN; CREATE DATABASE ${database};`);
  await pg.psql(
    `ALTER DATABASE ${database} SET search_path = dbo, public;\n` + catalogSql(settings) +
      cdcCatalogSql(),
    { database },
  );
  const admin = postgres({
    host: pg.host,
    port: pg.port,
    database,
    username: "postgres",
    max: 2,
    fetch_types: false,
    onnotice: () => {},
  });
  const declared = new Map<string, SqlType>();
  const sessions = new Map<number, Session>();
  let nextId = 51;
  const host: SessionHost = {
    database,
    pg,
    logins: new Map([
      [login.user, { password: login.password, role: "postgres" }],
      [limitedLogin.user, { password: limitedLogin.password, role: "limited" }],
    ]),
    settings,
    async declaredType(table, column) {
      const key = `${table}:${column}`;
      let t = declared.get(key);
      if (!t) {
        const [row] = await admin`SELECT sys._declared(${table}::oid, ${column}::int) AS d`;
        t = parseType(String(row?.d)) ?? { name: "nvarchar", length: -1 };
        declared.set(key, t);
      }
      return t;
    },
    invalidate: () => declared.clear(),
    kill: (id) => sessions.get(id)?.close(),
    async setSnapshotIsolation(on) {
      settings.snapshotIsolation = on;
      await admin`UPDATE sys._settings SET value = ${
        on ? "1" : "0"
      } WHERE key = 'snapshot_isolation'`;
    },
  };
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    for await (const conn of listener) {
      const session = new Session(nextId++, conn, host);
      sessions.set(session.id, session);
      session.serve().finally(() => sessions.delete(session.id));
    }
  })().catch(() => {});
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    listener.close();
    await serving;
    for (const s of sessions.values()) s.close();
    await admin.end({ timeout: 0 });
    await pg.stop();
  };
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    host: "127.0.0.1",
    port,
    database,
    login,
    limitedLogin,
    url: `sqlserver://${encodeURIComponent(login.user)}:${
      encodeURIComponent(login.password)
    }@127.0.0.1:${port}/${database}`,
    pg,
    async sql(tsql) {
      for (const plan of translateBatch(tsql, { spid: 0 })) {
        if (plan.kind !== "sql") continue;
        for (const s of plan.sql) await admin.unsafe(s);
      }
      declared.clear();
    },
    sessions: () =>
      [...sessions.values()].filter((s) => !s.closed).map((s) => ({
        id: s.id,
        isolation: s.isolation,
        lockTimeoutMs: s.lockTimeoutMs,
        ...(s.running === undefined ? {} : { running: s.running }),
      })),
    kill: (id) => sessions.get(id)?.close(),
    set(o) {
      if (o.snapshotIsolation !== undefined) {
        host.setSnapshotIsolation(o.snapshotIsolation).catch(() => {});
      }
      if (o.engineEdition !== undefined) {
        settings.engineEdition = o.engineEdition;
        admin`UPDATE sys._settings SET value = ${
          String(o.engineEdition)
        } WHERE key = 'engine_edition'`
          .catch(() => {});
      }
      if (o.failNextQuery) settings.failNextQuery = o.failNextQuery;
      if (o.agentRunning !== undefined) {
        admin`UPDATE sys._settings SET value = ${
          o.agentRunning ? "1" : "0"
        } WHERE key = 'agent_running'`.catch(() => {});
      }
    },
    [Symbol.asyncDispose]: stop,
  };
}
