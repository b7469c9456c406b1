/**
 * TDS test server: what tedious sees. Login (ok, wrong password, unknown database), batches and
 * sp_executesql with typed parameters, TOP / OFFSET FETCH / ROW_NUMBER, the catalog query that
 * resolves a primary key, SQL Server error numbers, pause/resume under TCP backpressure, cancel,
 * snapshot isolation refused, session state and KILL through the control API.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { TYPES } from "tedious";
import { startTdsServer, type TdsServer } from "../_helpers/tds_server.ts";
import { closeTds, connectTds, runTds } from "../_helpers/tds/client.ts";

const FIXTURE = `
CREATE TABLE [dbo].[nums] ([id] bigint NOT NULL, [label] nvarchar(20) NOT NULL, [at] datetime2(7) NULL,
  CONSTRAINT [pk_nums] PRIMARY KEY CLUSTERED ([id] ASC));
WITH d AS (SELECT n FROM (VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)) AS v(n))
INSERT INTO [dbo].[nums] ([id], [label], [at])
  SELECT a.n * 10 + b.n + 1, CONCAT(N'n', a.n * 10 + b.n + 1), NULL FROM d a CROSS JOIN d b;
CREATE TABLE [dbo].[pk2] ([a] int NOT NULL, [b] nvarchar(10) NOT NULL, [c] int NULL,
  CONSTRAINT [pk_pk2] PRIMARY KEY ([b], [a]));
CREATE UNIQUE INDEX [ux_pk2_c] ON [dbo].[pk2] ([c]);
CREATE TABLE [dbo].[wide] ([id] int NOT NULL PRIMARY KEY, [pad] varchar(400) NOT NULL);
WITH d AS (SELECT n FROM (VALUES (0),(1),(2),(3),(4),(5),(6),(7),(8),(9)) AS v(n))
INSERT INTO [dbo].[wide] SELECT a.n + 10 * b.n + 100 * c.n + 1000 * e.n + 10000 * f.n + 1,
  REPLICATE('x', 400) FROM d a CROSS JOIN d b CROSS JOIN d c CROSS JOIN d e CROSS JOIN d f
  WHERE f.n < 5;
CREATE TABLE [dbo].[open_t] ([id] bigint NOT NULL);
INSERT INTO [dbo].[open_t] VALUES (1), (2);
CREATE TABLE [dbo].[secret_t] ([id] bigint NOT NULL);
GRANT SELECT ON [dbo].[open_t] TO limited;
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withServer(fn: (srv: TdsServer) => Promise<void>, options = {}) {
  await using srv = await startTdsServer(options);
  await srv.sql(FIXTURE);
  await fn(srv);
}

const loginOf = (srv: TdsServer) => ({
  ...srv.login,
  host: srv.host,
  port: srv.port,
  database: srv.database,
});

Deno.test({
  name: "TDS server: tedious logs in, runs batches and sp_executesql, and gets SQL Server's errors",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await withServer(async (srv) => {
      const conn = await connectTds(loginOf(srv));
      try {
        await t.step("login: DB_NAME() and @@SPID of the session", async () => {
          const { rows } = await runTds(conn, "SELECT DB_NAME() AS db, @@SPID AS spid");
          assert.equal(rows[0]![0], "rivet");
          assert.deepEqual(srv.sessions().map((s) => s.id), [rows[0]![1]]);
        });
        await t.step("login: a wrong password is ELOGIN with error 18456", async () => {
          const err = await connectTds({ ...loginOf(srv), password: "wrong" }).then(
            () => undefined,
            (e) => e,
          );
          assert.equal(err?.code, "ELOGIN");
          assert.match(err.message, /Login failed for user 'rivet'/);
          assert.deepEqual(err.serverErrors, [18456]);
        });
        await t.step("login: an unknown database is ELOGIN with error 4060", async () => {
          const err = await connectTds({ ...loginOf(srv), database: "nope" }).then(
            () => undefined,
            (e) => e,
          );
          assert.equal(err?.code, "ELOGIN");
          assert.match(err.message, /Cannot open database "nope"/);
          // tedious retries 4060 as transient, like SQL Server clients do; every answer is 4060.
          assert.deepEqual(new Set(err.serverErrors), new Set([4060]));
        });
        await t.step("sp_executesql with typed parameters", async () => {
          const { rows, columns } = await runTds(
            conn,
            "SELECT id, label FROM dbo.nums WHERE id BETWEEN @lo AND @hi AND label <> @skip ORDER BY id",
            { lo: [TYPES.BigInt, "5"], hi: [TYPES.Int, 8], skip: [TYPES.NVarChar, "n6"] },
          );
          assert.deepEqual(rows, [["5", "n5"], ["7", "n7"], ["8", "n8"]]);
          assert.deepEqual(columns.map((c) => c.type.name), ["IntN", "NVarChar"]);
          const typed = await runTds(
            conn,
            "SELECT @b AS b, @d AS d, CAST(@when AS datetime2(3)) AS w, @g AS g, @bin AS bin, @day AS day",
            {
              b: [TYPES.Bit, true],
              d: [TYPES.Decimal, 12.5, { precision: 5, scale: 1 }],
              when: [TYPES.DateTime2, new Date("2024-05-06T07:08:09.123Z")],
              g: [TYPES.UniqueIdentifier, "6F9619FF-8B86-D011-B42D-00C04FC964FF"],
              bin: [TYPES.VarBinary, Buffer.from([1, 2, 255])],
              day: [TYPES.Date, new Date("2024-02-29T00:00:00Z")],
            },
          );
          const [b, d, w, g, bin, day] = typed.rows[0]!;
          assert.equal(b, true);
          assert.equal(d, 12.5);
          assert.equal((w as Date).toISOString(), "2024-05-06T07:08:09.123Z");
          assert.equal(g, "6F9619FF-8B86-D011-B42D-00C04FC964FF");
          assert.deepEqual([...(bin as Uint8Array)], [1, 2, 255]);
          assert.equal((day as Date).toISOString(), "2024-02-29T00:00:00.000Z");
        });
        await t.step(
          "a batch of SET statements and a SELECT; session state is visible",
          async () => {
            const { rows } = await runTds(
              conn,
              "SET LOCK_TIMEOUT 5000\nSET TRANSACTION ISOLATION LEVEL REPEATABLE READ;\nSELECT COUNT(*) AS n FROM nums",
            );
            assert.deepEqual(rows, [[100]]);
            assert.deepEqual(
              srv.sessions().map((s) => [s.isolation, s.lockTimeoutMs]),
              [["REPEATABLE READ", 5000]],
            );
          },
        );
        await t.step("TOP, OFFSET … FETCH and ROW_NUMBER() OVER", async () => {
          const top = await runTds(
            conn,
            "SELECT TOP (3) [id] FROM [dbo].[nums] ORDER BY [id] DESC",
          );
          assert.deepEqual(top.rows, [["100"], ["99"], ["98"]]);
          const top2 = await runTds(
            conn,
            "SELECT TOP 2 id FROM nums WHERE id > (SELECT TOP 1 id FROM nums ORDER BY id) ORDER BY id",
          );
          assert.deepEqual(top2.rows, [["2"], ["3"]]);
          const page = await runTds(
            conn,
            "SELECT id FROM nums ORDER BY id OFFSET 10 ROWS FETCH NEXT 3 ROWS ONLY",
          );
          assert.deepEqual(page.rows, [["11"], ["12"], ["13"]]);
          const dense = await runTds(
            conn,
            "SELECT id, rn FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id DESC) AS rn FROM nums) AS x WHERE rn <= 2 ORDER BY rn",
          );
          assert.deepEqual(dense.rows, [["100", "1"], ["99", "2"]]);
        });
        await t.step(
          "the catalog resolves a primary key and the declared column types",
          async () => {
            const pk = await runTds(
              conn,
              `SELECT c.name FROM sys.indexes i
               JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
               JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
             WHERE i.object_id = OBJECT_ID(N'dbo.pk2') AND i.is_primary_key = 1
             ORDER BY ic.key_ordinal`,
            );
            assert.deepEqual(pk.rows, [["b"], ["a"]]);
            const cols = await runTds(
              conn,
              `SELECT c.name, t.name AS type_name, c.max_length, c.precision, c.scale, c.is_nullable
             FROM sys.columns c JOIN sys.types t ON t.user_type_id = c.user_type_id
             WHERE c.object_id = OBJECT_ID(N'[dbo].[nums]') ORDER BY c.column_id`,
            );
            assert.deepEqual(cols.rows, [
              ["id", "bigint", 8, 19, 0, false],
              ["label", "nvarchar", 40, 0, 0, false],
              ["at", "datetime2", 8, 27, 7, true],
            ]);
            const missing = await runTds(conn, "SELECT OBJECT_ID(N'dbo.nope') AS id");
            assert.deepEqual(missing.rows, [[null]]);
            const props = await runTds(
              conn,
              "SELECT CAST(SERVERPROPERTY(N'EngineEdition') AS int) AS e, CAST(SERVERPROPERTY(N'ProductVersion') AS nvarchar(128)) AS v, @@VERSION AS ver",
            );
            assert.deepEqual(props.rows[0]!.slice(0, 2), [3, "16.0.4003.1"]);
            assert.match(String(props.rows[0]![2]), /^Microsoft SQL Server 2022/);
            const stats = await runTds(
              conn,
              "SELECT SUM(p.rows) AS n FROM sys.partitions p WHERE p.object_id = OBJECT_ID(N'dbo.nums') AND p.index_id IN (0, 1)",
            );
            assert.equal(Number(stats.rows[0]![0]), 100);
          },
        );
        await t.step("errors carry SQL Server's numbers", async () => {
          const number = (sql: string) =>
            runTds(conn, sql).then(() => 0, (e) => e.number as number);
          assert.equal(await number("SELCT 1"), 102);
          assert.equal(await number("SELECT * FROM nope"), 208);
          assert.equal(await number("SELECT nope FROM nums"), 207);
          srv.set({ failNextQuery: { number: 1205, message: "deadlock victim" } });
          assert.equal(await number("SELECT 1 AS x"), 1205);
          assert.equal(await number("SELECT 1 AS x"), 0, "only the next query fails");
          const limited = await connectTds({ ...loginOf(srv), ...srv.limitedLogin });
          try {
            assert.deepEqual((await runTds(limited, "SELECT id FROM open_t ORDER BY id")).rows, [[
              "1",
            ], ["2"]]);
            const denied = await runTds(limited, "SELECT * FROM secret_t").then(
              () => undefined,
              (e) => e,
            );
            assert.equal(denied?.number, 229);
            assert.match(
              denied.message,
              /The SELECT permission was denied on the object 'secret_t'/,
            );
          } finally {
            await closeTds(limited);
          }
        });
      } finally {
        await closeTds(conn);
      }
    });
  },
});

Deno.test({
  name: "TDS server: pause/resume holds the server back (TCP backpressure), cancel and KILL work",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await withServer(async (srv) => {
      await t.step(
        "pause/resume over 50,000 wide rows: the server waits for the socket",
        async () => {
          const conn = await connectTds(loginOf(srv));
          try {
            let seen = 0;
            let paused = false;
            let last = 0;
            const result = runTds(
              conn,
              "SELECT id, pad FROM wide ORDER BY id",
              undefined,
              (req) => {
                req.on("row", (cols) => {
                  seen++;
                  last = cols[0]!.value as number;
                  if (seen === 10 && !paused) {
                    paused = true;
                    req.pause();
                    setTimeout(() => req.resume(), 1500);
                  }
                });
              },
            );
            await sleep(1000);
            assert.equal(seen, 10, "no rows while paused");
            // ~20 MB of rows: far more than socket buffers hold, so the statement is still running.
            assert.equal(srv.sessions()[0]?.running, "SELECT id, pad FROM wide ORDER BY id");
            const { rows } = await result;
            assert.equal(rows.length, 50_000);
            assert.equal(last, 50_000);
          } finally {
            await closeTds(conn);
          }
        },
      );
      await t.step(
        "cancel stops a WAITFOR DELAY within 2 s and the connection stays usable",
        async () => {
          const conn = await connectTds(loginOf(srv));
          try {
            const started = Date.now();
            const err = await runTds(
              conn,
              "WAITFOR DELAY '00:01:00'; SELECT 1 AS x",
              undefined,
              (req) => {
                setTimeout(() => conn.cancel(), 300);
                void req;
              },
            ).then(() => undefined, (e) => e);
            assert.equal(err?.code, "ECANCEL");
            assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
            assert.deepEqual((await runTds(conn, "SELECT 2 AS y")).rows, [[2]]);
            assert.equal(srv.sessions()[0]?.running, undefined);
            const sleeping = await srv.pg.psql(
              "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
            );
            assert.equal(sleeping.trim(), "0");
          } finally {
            await closeTds(conn);
          }
        },
      );
      await t.step(
        "snapshot isolation is refused with 3952 while the database disallows it",
        async () => {
          srv.set({ snapshotIsolation: false });
          const conn = await connectTds(loginOf(srv));
          try {
            const err = await runTds(
              conn,
              "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; SELECT 1 AS x",
            ).then(
              () => undefined,
              (e) => e,
            );
            assert.equal(err?.number, 3952);
            assert.match(err.message, /snapshot isolation is not allowed in this database/);
            const state = await runTds(
              conn,
              "SELECT snapshot_isolation_state FROM sys.databases WHERE name = DB_NAME()",
            )
              .then(() => "ran", (e) => e.number);
            assert.equal(state, 3952, "every statement fails while SNAPSHOT is set");
            await runTds(conn, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
            const off = await runTds(
              conn,
              "SELECT snapshot_isolation_state FROM sys.databases WHERE name = DB_NAME()",
            );
            assert.deepEqual(off.rows, [[0]]);
            srv.set({ snapshotIsolation: true });
            await sleep(100);
            const ok = await runTds(
              conn,
              "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; SELECT 1 AS x",
            );
            assert.deepEqual(ok.rows, [[1]]);
          } finally {
            await closeTds(conn);
          }
        },
      );
      await t.step("kill() drops the session: tedious gets a socket error mid-stream", async () => {
        const conn = await connectTds(loginOf(srv));
        try {
          const [session] = srv.sessions();
          let killed = false;
          const err = await runTds(
            conn,
            "SELECT id, pad FROM wide ORDER BY id",
            undefined,
            (req) => {
              req.on("row", () => {
                if (!killed) {
                  killed = true;
                  srv.kill(session!.id);
                }
              });
            },
          ).then(() => undefined, (e) => e);
          // tedious reports the reset as ECONNRESET ("socket hang up") or ESOCKET.
          assert.match(String(err?.code), /^(ESOCKET|ECONNRESET)$/, String(err));
          await sleep(200);
          assert.deepEqual(srv.sessions(), []);
        } finally {
          await closeTds(conn);
        }
      });
    });
  },
});
