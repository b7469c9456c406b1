// mode: cdc on PostgreSQL 15 with wal_level=logical, through `rivet run` processes: typed
// changes, one part per transaction at rollover 1, and runs killed inside the part cycle that
// lose nothing and repeat nothing.
import assert from "node:assert/strict";
import { startPostgres } from "../_helpers/pg_server.ts";
import {
  type CdcEngine,
  doctorScenario,
  killScenario,
  ndjsonScenario,
  streamScenario,
  typedChangesScenario,
} from "./_cdc_scenarios.ts";

async function engine() {
  const pg = await startPostgres({ logical: true });
  const cdc: CdcEngine = {
    type: "postgres",
    url: pg.url,
    sql: async (text) => {
      await pg.psql(text);
    },
    typesTable: (t) =>
      `CREATE TABLE ${t} (id int PRIMARY KEY, i2 int2, i8 int8, n numeric(12,3), f4 float4, ` +
      "f8 float8, b bool, t text, vc varchar(20), by bytea, d date, tm time, ts timestamp, " +
      "tz timestamptz, u uuid, j jsonb, arr int4[])",
    typesInsert: (t, ids) =>
      `INSERT INTO ${t} VALUES ` +
      ids.map((id) =>
        id % 2 === 0
          ? `(${id}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, ` +
            "NULL, NULL, NULL, NULL)"
          : `(${id}, ${-id}, ${id}000000000000, ${id}23.456, 1.5, -2.25e10, true, 'tëxt ${id}', ` +
            `'vc${id}', '\\xdeadbeef', '2024-02-29', '13:14:15.123456', ` +
            `'2024-03-01 04:05:06.789012', '2024-03-01 04:05:06.5+02', ` +
            `'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1${id}', '{"k": [${id}, null]}', '{1,2,${id}}')`
      ).join(", "),
    typesUpdate: (t, id) =>
      `UPDATE ${t} SET t = 'updated ${id}', n = -0.5, ts = '1999-12-31 23:59:59', ` +
      `arr = '{}' WHERE id = ${id}`,
    cdcKeys: "slot: rivet_test_slot",
  };
  return { pg, cdc };
}

Deno.test("cdc on PostgreSQL: typed changes, a transaction per part, kills lose nothing", async (t) => {
  const { pg, cdc } = await engine();
  try {
    await t.step("typed changes, one transaction in one part", () => typedChangesScenario(cdc));
    await t.step(
      "a sandboxed stream stops cleanly on SIGTERM",
      () => streamScenario({ ...cdc, cdcKeys: "slot: rivet_stream_slot" }),
    );
    await t.step("rivet cdc: NDJSON and a checkpoint file", () => ndjsonScenario(cdc));
    await t.step(
      "killed runs lose and repeat nothing",
      () => killScenario({ ...cdc, cdcKeys: "slot: rivet_kill_slot" }),
    );
  } finally {
    await pg.stop();
  }
});

Deno.test("rivet doctor checks what a cdc export needs: ready, or wal_level with its fix", async () => {
  const ready = await startPostgres({ logical: true });
  const plain = await startPostgres();
  try {
    for (const pg of [ready, plain]) await pg.psql("CREATE TABLE d (id int PRIMARY KEY, v text)");
    await doctorScenario({ type: "postgres" }, { ready: ready.url, unready: plain.url }, {
      ready: /change capture ready \(wal_level logical, REPLICATION role, slot/,
      fix: /ALTER SYSTEM SET wal_level = logical/,
    });
    // Nothing was created: no slot, no publication.
    assert.equal((await ready.psql("SELECT count(*) FROM pg_replication_slots")).trim(), "0");
    assert.equal((await ready.psql("SELECT count(*) FROM pg_publication")).trim(), "0");
  } finally {
    await ready.stop();
    await plain.stop();
  }
});
