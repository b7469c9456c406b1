import assert from "node:assert/strict";
import { mysqlFloorArgs, narrowMysqlSql, startBenchMysql } from "./_bench_mysql.ts";

Deno.test("narrowMysqlSql covers ids 1..N with one sequence range per batch", () => {
  const sql = narrowMysqlSql(2500, { batchRows: 1000 });
  const ranges = [...sql.matchAll(/FROM seq_(\d+)_to_(\d+);/g)].map((m) => [+m[1]!, +m[2]!]);
  assert.deepEqual(ranges, [[1, 1000], [1001, 2000], [2001, 2500]]);
  assert.equal(sql.match(/INSERT INTO narrow/g)?.length, 3);
  assert.match(narrowMysqlSql(10_000_000), /FROM seq_9000001_to_10000000;/);
  assert.equal(narrowMysqlSql(10_000_000).match(/INSERT INTO narrow/g)?.length, 10);
  assert.match(sql, /amount\s+decimal\(12,2\)/);
  assert.match(sql, /created_at\s+datetime\(6\)/);
  assert.throws(() => narrowMysqlSql(0), RangeError);
  assert.throws(() => narrowMysqlSql(1.5), RangeError);
  assert.throws(() => narrowMysqlSql(10, { batchRows: 0 }), RangeError);
});

Deno.test("mysqlFloorArgs reads over TCP with --quick and keeps the password off the command line", () => {
  const args = mysqlFloorArgs(
    { host: "127.0.0.1", port: 33061, user: "u", database: "d" },
    "SELECT * FROM narrow",
  );
  assert.equal(args[0], "--no-defaults");
  assert.ok(args.includes("--protocol=TCP") && args.includes("--quick"));
  assert.deepEqual(args.slice(-2), ["-e", "SELECT * FROM narrow"]);
  assert.ok(!args.some((a) => a.startsWith("-p") || a.startsWith("--password")));
});

Deno.test("the MariaDB engine loads narrow in batches with narrow.sql's values and its floor reads every row", async () => {
  await using engine = await startBenchMysql({ bufferPool: "64M", batchRows: 1000 });
  assert.equal(engine.name, "mysql");
  assert.match(engine.version, /^\d+\.\d+/);
  const load = await engine.ensureNarrow(2500);
  assert.equal(load.built, true);

  const url = new URL(engine.source.url);
  assert.equal(engine.source.type, "mysql");
  const target = {
    host: url.hostname,
    port: Number(url.port),
    user: decodeURIComponent(url.username),
    database: url.pathname.slice(1),
  };
  const read = async (sql: string, password: string) => {
    const out = await new Deno.Command("mariadb", {
      args: mysqlFloorArgs(target, sql),
      env: { MYSQL_PWD: password },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: out.code, text: new TextDecoder().decode(out.stdout) };
  };
  const password = decodeURIComponent(url.password);
  // The floor's own command, with stdout kept: a header line and one line per row.
  const all = await read("SELECT * FROM narrow", password);
  assert.equal(all.code, 0);
  assert.equal(all.text.trimEnd().split("\n").length, 2501);
  const sums = await read(
    "SELECT count(*), sum(id), sum(amount), sum(user_id) FROM narrow",
    password,
  );
  // Same formulas as narrow.sql, summed here: amount = (i*104729 % 1e7) / 100, user = 1 + i*7919 % 1e6.
  let amountCents = 0n;
  let users = 0;
  for (let i = 1; i <= 2500; i++) {
    amountCents += BigInt((i * 104729) % 10_000_000);
    users += 1 + (i * 7919) % 1_000_000;
  }
  const amount = `${amountCents / 100n}.${String(amountCents % 100n).padStart(2, "0")}`;
  assert.equal(sums.text.split("\n")[1], `2500\t3126250\t${amount}\t${users}`);
  // Row 7, the same row _bench_pg_test.ts checks in PostgreSQL (datetime has no zone).
  const row7 = await read(
    "SELECT user_id, amount, status, created_at FROM narrow WHERE id = 7",
    password,
  );
  assert.equal(row7.text.split("\n")[1], "55434\t7331.03\tpaid\t2024-01-01 00:00:21.000000");

  const floor = await engine.floor("SELECT * FROM narrow");
  assert.equal(floor.code, 0, floor.stderr);
  assert.ok(floor.wallSeconds > 0 && floor.peakRssMb > 0);
  assert.notEqual((await read("SELECT 1", "wrong-password")).code, 0, "the floor must log in");
});
