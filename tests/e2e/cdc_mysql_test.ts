// mode: cdc on MariaDB with the binary log in ROW format, through `rivet run` processes: typed
// changes, one part per transaction at rollover 1, and runs killed inside the part cycle that
// lose nothing and repeat nothing.
import { startMariaDb } from "../_helpers/mariadb_server.ts";
import {
  type CdcEngine,
  doctorScenario,
  killScenario,
  ndjsonScenario,
  streamScenario,
  typedChangesScenario,
} from "./_cdc_scenarios.ts";

Deno.test("cdc on MariaDB: typed changes, a transaction per part, kills lose nothing", async (t) => {
  const db = await startMariaDb({ binlogFormat: "ROW" });
  try {
    // Reading the binary log needs the replication privileges (docs/cdc.md).
    await db.sql(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '${db.user}'@'127.0.0.1';`);
    const cdc: CdcEngine = {
      type: "mysql",
      url: db.url,
      sql: async (text) => {
        await db.sql(text, { database: db.database });
      },
      typesTable: (t) =>
        `CREATE TABLE ${t} (id INT PRIMARY KEY, ti TINYINT, su SMALLINT UNSIGNED, bi BIGINT, ` +
        "de DECIMAL(12,3), fl FLOAT, db DOUBLE, d DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL, " +
        "tm TIME(6), y YEAR, c CHAR(5), vc VARCHAR(20), tx TEXT, vb VARBINARY(8), bl BLOB, " +
        "e ENUM('a','b'), st SET('x','y'), bt BIT(8), j JSON)",
      typesInsert: (t, ids) =>
        `INSERT INTO ${t} VALUES ` +
        ids.map((id) =>
          id % 2 === 0
            ? `(${id}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ` +
              "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
            : `(${id}, ${-id}, 65000, ${id}000000000000, -${id}23.456, 1.5, -2.25e10, ` +
              "'2024-02-29', '2024-03-01 04:05:06.789012', '2024-03-01 04:05:06.500000', " +
              `'12:14:15.123456', 2024, 'ab', 'vc${id}', 'tëxt ${id}', X'DEADBEEF', X'00FF', ` +
              `'b', 'x,y', b'10100101', '{"k": [${id}, null]}')`
        ).join(", "),
      typesUpdate: (t, id) =>
        `UPDATE ${t} SET tx = 'updated ${id}', de = -0.5, dt = '1999-12-31 23:59:59' WHERE id = ${id}`,
      cdcKeys: "server_id: 4271",
    };
    await t.step("typed changes, one transaction in one part", () => typedChangesScenario(cdc));
    await t.step(
      "a sandboxed stream stops cleanly on SIGTERM",
      () => streamScenario({ ...cdc, cdcKeys: "server_id: 4273" }),
    );
    await t.step("rivet cdc: NDJSON and a checkpoint file", () => ndjsonScenario(cdc));
    await t.step("rivet doctor: ready here, binlog_off on a server without it", async () => {
      await using plain = await startMariaDb();
      await db.sql("CREATE TABLE d (id INT PRIMARY KEY);", { database: db.database });
      await plain.sql("CREATE TABLE d (id INT PRIMARY KEY);", { database: plain.database });
      await doctorScenario(cdc, { ready: db.url, unready: plain.url }, {
        ready: /change capture ready \(binary log in ROW format/,
        fix: /log-bin/,
      });
    });
    await t.step(
      "killed runs lose and repeat nothing",
      () => killScenario({ ...cdc, cdcKeys: "server_id: 4272" }),
    );
  } finally {
    await db.stop();
  }
});
