/**
 * The database engines the end-to-end cases run against, behind one small adapter: start a real
 * server, run SQL as its superuser, and the few dialect facts a case needs. `cases_test.ts` runs
 * every case on every engine from one table, so PostgreSQL and MariaDB cannot drift apart.
 *
 * @module
 */
import { startPostgres } from "../_helpers/pg_server.ts";
import { startMariaDb } from "../_helpers/mariadb_server.ts";
import { mssqlEngine } from "./_mssql_engine.ts";

/** A running server, seen by the cases. */
export interface EngineServer extends AsyncDisposable {
  /** `source.type` value. */
  readonly type: "postgres" | "mysql" | "mssql";
  /** URL of a user that may read everything (no secret worth hiding). */
  readonly url: string;
  /** Structured connection of a user that authenticates with a password. */
  readonly passwordLogin: {
    readonly host: string;
    readonly port: number;
    readonly user: string;
    readonly password: string;
    readonly database: string;
  };
  /** URL with a wrong password for `passwordLogin.user`, containing `marker`. */
  wrongPasswordUrl(marker: string): string;
  /** URL of a user allowed to read `open_t` only. */
  readonly limitedUrl: string;
  /** Runs SQL as the superuser; returns the client's text output. */
  sql(text: string): Promise<string>;
  /** A query that runs for a minute before its first row. */
  readonly sleepQuery: string;
  /** Sessions currently executing rivet's read of a query containing `marker`. */
  activeReads(marker: string): Promise<number>;
  /** Terminates the session reading a query containing `marker`; true if one was found. */
  killRead(marker: string): Promise<boolean>;
  /** Server text of a syntax error. */
  readonly syntaxErrorText: RegExp;
  /** Server text of a missing privilege. */
  readonly permissionText: RegExp;
}

/** How to start one engine. */
export interface Engine {
  readonly name: string;
  start(): Promise<EngineServer>;
}

/**
 * Creates the shared fixture tables: `bulk(id, n, s, at)` with `rows` deterministic rows,
 * `empty_t`, `open_t` (2 rows) and `secret_t`.
 */
function fixtureSql(type: "postgres" | "mysql", rows: number): string {
  if (type === "postgres") {
    return `
CREATE TABLE bulk AS
  SELECT i::int8 AS id, (i * 7919 % 1000)::int4 AS n, md5(i::text) AS s,
         timestamp '2024-01-01 00:00:00' + i * interval '1 second' AS at
  FROM generate_series(1, ${rows}) AS i;
CREATE TABLE empty_t (id int8, name text);
CREATE TABLE open_t (id int8);
INSERT INTO open_t VALUES (1), (2);
CREATE TABLE secret_t (id int8);
`;
  }
  return `
CREATE TABLE bulk AS
  SELECT CAST(seq AS SIGNED) AS id, CAST(seq * 7919 % 1000 AS SIGNED INTEGER) AS n,
         md5(seq) AS s, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq SECOND AS at
  FROM seq_1_to_${rows};
CREATE TABLE empty_t (id bigint, name text);
CREATE TABLE open_t (id bigint);
INSERT INTO open_t VALUES (1), (2);
CREATE TABLE secret_t (id bigint);
`;
}

/** Rows of `bulk`. */
export const BULK_ROWS = 150_000;

/** PostgreSQL 15 from the Debian packages. */
export const postgresEngine: Engine = {
  name: "postgres",
  async start() {
    const pg = await startPostgres();
    await pg.psql(fixtureSql("postgres", BULK_ROWS));
    await pg.psql("CREATE ROLE limited LOGIN; GRANT SELECT ON open_t TO limited;");
    return {
      type: "postgres",
      url: pg.url,
      passwordLogin: {
        host: pg.host,
        port: pg.port,
        user: pg.passwordUser.user,
        password: pg.passwordUser.password,
        database: pg.database,
      },
      wrongPasswordUrl: (marker) =>
        `postgresql://${pg.passwordUser.user}:${
          encodeURIComponent(`p@ss:w/rd-${marker}`)
        }@127.0.0.1:${pg.port}/postgres`,
      limitedUrl: `postgresql://limited@127.0.0.1:${pg.port}/postgres`,
      sql: (text) => pg.psql(text),
      sleepQuery: "SELECT 1 AS x FROM pg_sleep(60)",
      activeReads: async (marker) =>
        Number(
          (await pg.psql(
            `SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() ` +
              `AND (query LIKE 'FETCH%_rivet' OR query LIKE '%${marker}%') AND query NOT LIKE '%pg_stat_activity%'`,
          )).trim(),
        ),
      killRead: async (marker) =>
        (await pg.psql(
          `SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity ` +
            `WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' ` +
            `AND (query LIKE 'FETCH%_rivet' OR query LIKE '%${marker}%') ` +
            `AND query NOT LIKE '%pg_stat_activity%'`,
        )).trim() === "t",
      syntaxErrorText: /syntax error/,
      permissionText: /permission denied/i,
      [Symbol.asyncDispose]: () => pg.stop(),
    };
  },
};

/** MariaDB 10.11 from the Debian packages, read through the `mysql` source type. */
export const mariadbEngine: Engine = {
  name: "mariadb",
  async start() {
    const db = await startMariaDb();
    await db.sql(fixtureSql("mysql", BULK_ROWS), { database: db.database });
    await db.sql(
      `CREATE USER 'limited'@'127.0.0.1' IDENTIFIED BY 'limited-pw';
       GRANT SELECT ON ${db.database}.open_t TO 'limited'@'127.0.0.1';`,
    );
    const processes = (marker: string) =>
      `FROM information_schema.processlist WHERE command IN ('Query', 'Execute') AND id <> CONNECTION_ID() ` +
      `AND info LIKE '%${marker}%' AND info NOT LIKE '%processlist%'`;
    return {
      type: "mysql",
      url: db.url,
      passwordLogin: {
        host: db.host,
        port: db.port,
        user: db.user,
        password: db.password,
        database: db.database,
      },
      wrongPasswordUrl: (marker) =>
        `mysql://${db.user}:${
          encodeURIComponent(`p@ss:w/rd-${marker}`)
        }@127.0.0.1:${db.port}/${db.database}`,
      limitedUrl: `mysql://limited:limited-pw@127.0.0.1:${db.port}/${db.database}`,
      sql: (text) => db.sql(text, { database: db.database }),
      sleepQuery: "SELECT SLEEP(60) AS x",
      activeReads: async (marker) =>
        Number((await db.sql(`SELECT count(*) ${processes(marker)}`)).trim()),
      killRead: async (marker) => {
        const ids = (await db.sql(`SELECT id ${processes(marker)}`)).trim().split("\n").filter(
          Boolean,
        );
        for (const id of ids) await db.sql(`KILL ${id}`).catch(() => {});
        return ids.length > 0;
      },
      syntaxErrorText: /SQL syntax/,
      permissionText: /command denied/i,
      [Symbol.asyncDispose]: () => db.stop(),
    };
  },
};

/**
 * Every engine the cases run on, narrowed by `RIVET_E2E_ENGINES` (a comma list of engine names,
 * e.g. `mssql` in the CI job that has a real SQL Server); all of them when it is unset.
 */
export const engines: readonly Engine[] = selectEngines(
  [postgresEngine, mariadbEngine, mssqlEngine],
  Deno.env.get("RIVET_E2E_ENGINES"),
);

/** The engines named in a `RIVET_E2E_ENGINES` value; every engine when it is unset or empty. */
export function selectEngines(all: readonly Engine[], names: string | undefined): Engine[] {
  const wanted = (names ?? "").split(",").map((n) => n.trim()).filter(Boolean);
  if (wanted.length === 0) return [...all];
  const unknown = wanted.filter((n) => !all.some((e) => e.name === n));
  if (unknown.length > 0) {
    throw new Error(
      `RIVET_E2E_ENGINES names unknown engines: ${unknown.join(", ")} (known: ${
        all.map((e) => e.name).join(", ")
      })`,
    );
  }
  return all.filter((e) => wanted.includes(e.name));
}
