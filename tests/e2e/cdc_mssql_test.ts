// mode: cdc on SQL Server through `rivet run` processes, on the in-repo TDS test server (its CDC
// emulation), or on a real SQL Server 2022 with Agent when RIVET_MSSQL_URL is set (the CI job):
// typed changes, one part per transaction at rollover 1, and runs killed inside the part cycle
// that lose nothing and repeat nothing.
import { mssqlEngine } from "./_mssql_engine.ts";
import {
  type CdcEngine,
  killScenario,
  streamScenario,
  typedChangesScenario,
} from "./_cdc_scenarios.ts";

Deno.test({
  name: "cdc on SQL Server: typed changes, a transaction per part, kills lose nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using db = await mssqlEngine.start();
    await db.sql("EXEC sys.sp_cdc_enable_db");
    const cdc: CdcEngine = {
      type: "mssql",
      url: db.url,
      sql: async (text) => {
        await db.sql(text);
      },
      typesTable: (t) =>
        `CREATE TABLE ${t} (id int NOT NULL PRIMARY KEY, n bigint NULL, d decimal(12,2) NULL, ` +
        "f float NULL, s nvarchar(50) NULL, dt date NULL, at datetime2(6) NULL, b bit NULL, " +
        "g uniqueidentifier NULL, vb varbinary(10) NULL)",
      typesInsert: (t, ids) =>
        `INSERT INTO ${t} VALUES ` +
        ids.map((id) =>
          id % 2 === 0
            ? `(${id}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`
            : `(${id}, ${id}000000000000, -${id}23.45, -2.25e10, N'tëxt ${id}', '2024-02-29', ` +
              `'2024-03-01 04:05:06.789012', 1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1${id}', ` +
              "0xDEADBEEF)"
        ).join(", "),
      typesUpdate: (t, id) =>
        `UPDATE ${t} SET s = N'updated ${id}', d = -0.5, at = '1999-12-31 23:59:59' WHERE id = ${id}`,
      cdcKeys: "rollover_memory_mb: 64",
      txn: (statements) => `BEGIN TRANSACTION; ${statements.join("; ")}; COMMIT;`,
      enable: async (table) => {
        await db.sql(
          `EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'${table}', ` +
            "@role_name = NULL",
        );
      },
      captured: async (table, n) => {
        for (let i = 0; i < 120; i++) {
          const got = Number((await db.sql(`SELECT COUNT(*) FROM cdc.dbo_${table}_CT`)).trim());
          if (got >= n) return;
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
        throw new Error(`the capture job did not copy ${n} changes of ${table} in 60 s`);
      },
    };
    await t.step("typed changes, one transaction in one part", () => typedChangesScenario(cdc));
    await t.step("a sandboxed stream stops cleanly on SIGTERM", () => streamScenario(cdc));
    await t.step("killed runs lose and repeat nothing", () => killScenario(cdc));
  },
});
