/**
 * The SQL Server engine adapter of the end-to-end cases (`tests/e2e/_mssql_engine.ts`) on the
 * TDS test server: the shared fixture in T-SQL, the URLs it hands out (password, limited and
 * wrong-password logins), the sleep query, and finding and killing a running read; plus the
 * `RIVET_E2E_ENGINES` filter of the engine list.
 */
import assert from "node:assert/strict";
import { mssqlEngine } from "./_mssql_engine.ts";
import { type Engine, selectEngines } from "./_engines.ts";
import { closeTds, connectTds, runTds, type TdsLogin } from "../_helpers/tds/client.ts";

function loginOf(url: string): TdsLogin {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: u.pathname.slice(1),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test({
  name: "mssql engine on the TDS server: fixture, logins, sleep query, finding and killing a read",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using db = await mssqlEngine.start();
    assert.equal(db.type, "mssql");
    assert.match(
      db.url,
      /^sqlserver:\/\/rivet:p%40ss%3Aw%2Frd%3F%23%26%3D%25%2B%201@127\.0\.0\.1:\d+\/rivet$/,
    );
    assert.equal(
      await db.sql("SELECT COUNT(*) AS n, MAX(id) AS top_id FROM bulk"),
      "150000|150000\n",
    );
    assert.equal(
      await db.sql("SELECT id, n, s, at FROM bulk WHERE id <= 2 ORDER BY id"),
      "1|919|c4ca4238a0b923820dcc509a6f75849b|2024-01-01T00:00:01.000Z\n" +
        "2|838|c81e728d9d4c2f636f067f89cc14862c|2024-01-01T00:00:02.000Z\n",
    );
    assert.equal(await db.sql("SELECT COUNT(*) FROM empty_t"), "0\n");

    const limited = await connectTds(loginOf(db.limitedUrl));
    try {
      assert.deepEqual((await runTds(limited, "SELECT id FROM open_t ORDER BY id")).rows, [["1"], [
        "2",
      ]]);
      const denied = await runTds(limited, "SELECT * FROM secret_t").then(
        () => undefined,
        (e) => e,
      );
      assert.match(String(denied?.message), db.permissionText);
    } finally {
      await closeTds(limited);
    }
    const wrong = await connectTds(loginOf(db.wrongPasswordUrl("M4RK"))).then(
      () => undefined,
      (e) => e,
    );
    assert.equal(wrong?.code, "ELOGIN");
    const syntax = await db.sql("SELCT 1").then(() => "", (e) => String(e.message));
    assert.match(syntax, db.syntaxErrorText);

    const marker = "rivet_engine_probe";
    const reader = await connectTds({ ...db.passwordLogin });
    try {
      const running = runTds(reader, `${db.sleepQuery} /* ${marker} */`).then(
        () => undefined,
        (e) => e,
      );
      let active = 0;
      for (let i = 0; i < 100 && active === 0; i++) {
        active = await db.activeReads(marker);
        if (active === 0) await sleep(50);
      }
      assert.equal(active, 1);
      assert.equal(await db.killRead(marker), true);
      const err = await running;
      assert.match(String(err?.code), /^(ESOCKET|ECONNRESET)$/);
      assert.equal(await db.activeReads(marker), 0);
    } finally {
      await closeTds(reader);
    }
  },
});

Deno.test("RIVET_E2E_ENGINES narrows the engine list and rejects unknown names", () => {
  const fake = (name: string): Engine => ({
    name,
    start: () => Promise.reject(new Error("unused")),
  });
  const all = [fake("postgres"), fake("mariadb"), fake("mssql")];
  assert.deepEqual(selectEngines(all, undefined).map((e) => e.name), [
    "postgres",
    "mariadb",
    "mssql",
  ]);
  assert.deepEqual(selectEngines(all, "").map((e) => e.name), ["postgres", "mariadb", "mssql"]);
  assert.deepEqual(selectEngines(all, "mssql").map((e) => e.name), ["mssql"]);
  assert.deepEqual(selectEngines(all, " mariadb , postgres").map((e) => e.name), [
    "postgres",
    "mariadb",
  ]);
  assert.throws(() => selectEngines(all, "oracle"), /unknown engines: oracle/);
});
