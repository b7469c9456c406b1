import assert from "node:assert/strict";
import { RivetError } from "../../core/errors.ts";
import {
  boundsSql,
  cdcTable,
  checkInstance,
  checkpointLsn,
  lsnText,
  windowSql,
} from "./_cdc_sql.ts";

const code = (c: string) => (e: unknown) => e instanceof RivetError && e.code === c;

Deno.test("cdcTable: one plain [schema.]table, dbo by default", () => {
  assert.deepEqual(cdcTable([{ table: "orders" }]), {
    schema: "dbo",
    table: "orders",
    name: "dbo.orders",
    quoted: "[dbo].[orders]",
  });
  assert.equal(cdcTable([{ table: "sales.Orders_2" }]).quoted, "[sales].[Orders_2]");
  assert.equal(cdcTable([{ schema: "s", table: "t" }]).name, "s.t");
  for (const bad of ["a]b", "a.b.c", "o'x", "", "t;DROP", "t t", "é"]) {
    assert.throws(() => cdcTable([{ table: bad }]), code("cdc.bad_table_name"), bad);
  }
  assert.throws(() => cdcTable([{ table: "a" }, { table: "b" }]), code("cdc.one_table"));
  assert.throws(() => cdcTable([]), code("cdc.one_table"));
});

Deno.test("checkInstance: only letters, digits and _ reach the function name", () => {
  assert.equal(checkInstance("dbo_orders"), "dbo_orders");
  for (const bad of ["x(0x0,0x0,'all')--", "a.b", "a b", "", "x".repeat(129)]) {
    assert.throws(() => checkInstance(bad), code("cdc.bad_capture_instance"), bad);
  }
});

Deno.test("checkpointLsn: {lsn: 0x + 20 hex digits}, uppercased; anything else refused", () => {
  assert.equal(checkpointLsn({ lsn: "0x0000002a000001f00003" }), "0x0000002A000001F00003");
  for (
    const bad of [{}, { lsn: 5 }, { lsn: "0/16B3748" }, { lsn: "0x00" }, { file: "x", pos: 4 }]
  ) {
    assert.throws(() => checkpointLsn(bad), code("cdc.bad_checkpoint"), JSON.stringify(bad));
  }
});

Deno.test("lsnText: 0x and uppercase hex, which sorts as the LSN does", () => {
  const a = lsnText(Uint8Array.from([0, 0, 0, 0x2a, 0, 0, 1, 0xf0, 0, 3]));
  assert.equal(a, "0x0000002A000001F00003");
  assert.ok(lsnText(Uint8Array.from([0, 0, 0, 0x2b, 0, 0, 0, 0, 0, 0])) > a);
});

Deno.test("windowSql and boundsSql: checked names and LSNs only", () => {
  const from = "0x0000002A000001F00003";
  const to = "0x0000002B000000000000";
  assert.equal(
    windowSql("dbo_orders", ["id", "a]b"], from, to),
    "SELECT __$start_lsn, __$seqval, __$operation, [id], [a]]b] FROM " +
      `cdc.fn_cdc_get_all_changes_dbo_orders(${from}, ${to}, N'all') ` +
      "ORDER BY __$start_lsn, __$seqval",
  );
  assert.throws(() => windowSql("x--", ["id"], from, to), code("cdc.bad_capture_instance"));
  assert.throws(() => windowSql("x", ["id"], "0x1; DROP", to));
  assert.equal(
    boundsSql("dbo_orders", from),
    "SELECT sys.fn_cdc_get_min_lsn(N'dbo_orders'), sys.fn_cdc_get_max_lsn(), " +
      `sys.fn_cdc_increment_lsn(${from})`,
  );
});
