import assert from "node:assert/strict";
import { parse } from "yaml";
import {
  type BenchRow,
  configYaml,
  parseEngines,
  parseOptions,
  parseTables,
  renderSummary,
  renderTable,
  tablesFor,
  targetFor,
  UsageError,
} from "./bench.ts";
import {
  contentItemsSql,
  FIXTURE_QUERY_COLUMNS,
  narrowSql,
  numericOverrides,
  wideSql,
} from "./_bench_fixtures.ts";
import { loadDuckDb, ordersLine, type OrdersReport } from "./bench_orders_size.ts";

const narrowSpec = { table: "narrow" as const, rows: 100, columns: { amount: "decimal(12,2)" } };

Deno.test("configYaml points the source block at the engine and reads a size through a query", () => {
  const whole = parse(
    configYaml({ type: "mysql" }, { spec: narrowSpec, tool: "parquet", rows: 100 }),
  );
  assert.equal(whole.source.type, "mysql");
  assert.equal(whole.source.url_env, "RIVET_BENCH_URL");
  assert.equal(whole.exports[0].name, "narrow_parquet");
  assert.equal(whole.exports[0].table, "narrow");
  assert.equal(whole.exports[0].columns, undefined, "the whole table needs no override");
  assert.equal(whole.exports[0].compression, "zstd");

  const part = parse(configYaml({ type: "postgres" }, { spec: narrowSpec, tool: "csv", rows: 10 }));
  assert.equal(part.source.type, "postgres");
  assert.equal(part.exports[0].name, "narrow_csv");
  assert.equal(part.exports[0].query, "SELECT * FROM narrow WHERE id <= 10");
  assert.deepEqual(part.exports[0].columns, { amount: "decimal(12,2)" });
  assert.equal(part.exports[0].format, "csv");
  assert.equal(part.exports[0].compression, undefined);
  const bare = { ...narrowSpec, columns: {} };
  const partMysql = parse(configYaml({ type: "mysql" }, { spec: bare, tool: "csv", rows: 10 }));
  assert.equal(partMysql.exports[0].columns, undefined);
});

Deno.test("configYaml names the export and reads the table of each fixture, with its overrides", () => {
  for (const table of ["wide", "content_items"] as const) {
    const spec = { table, rows: 500, columns: FIXTURE_QUERY_COLUMNS[table] };
    for (const tool of ["parquet", "csv"] as const) {
      const whole = parse(configYaml({ type: "postgres" }, { spec, tool, rows: 500 }));
      assert.equal(whole.exports[0].name, `${table}_${tool}`);
      assert.equal(whole.exports[0].table, table);
      assert.equal(whole.exports[0].format, tool);
      const part = parse(configYaml({ type: "postgres" }, { spec, tool, rows: 50 }));
      assert.equal(part.exports[0].query, `SELECT * FROM ${table} WHERE id <= 50`);
      const pinned = Object.keys(FIXTURE_QUERY_COLUMNS[table]).length > 0;
      assert.deepEqual(part.exports[0].columns, pinned ? FIXTURE_QUERY_COLUMNS[table] : undefined);
    }
  }
});

Deno.test("every numeric column of each fixture is pinned for a size read through a query", () => {
  assert.deepEqual(numericOverrides(narrowSql(1)), { amount: "decimal(12,2)" });
  assert.deepEqual(FIXTURE_QUERY_COLUMNS.wide, { score: "decimal(10,4)", price: "decimal(12,2)" });
  assert.deepEqual(FIXTURE_QUERY_COLUMNS.content_items, {});
  // The same scan over the scripts themselves: no numeric column left unpinned.
  for (const sql of [wideSql(1), contentItemsSql(1)]) {
    const declared = [...sql.matchAll(/^\s*(\w+)\s+numeric\b/gm)].map((m) => m[1]);
    assert.deepEqual(Object.keys(numericOverrides(sql)), declared);
  }
});

Deno.test("tablesFor keeps narrow on every engine and the wider fixtures where the engine has them", () => {
  const asked = [
    { table: "narrow" as const, rows: 10 },
    { table: "wide" as const, rows: 20 },
    { table: "content_items" as const, rows: 30 },
  ];
  const mysql = tablesFor({ queryColumns: {} }, asked);
  assert.deepEqual(mysql.specs, [{ table: "narrow", rows: 10, columns: {} }]);
  assert.deepEqual(mysql.skipped, ["wide", "content_items"]);
  const pg = tablesFor({
    queryColumns: { amount: "decimal(12,2)" },
    fixtures: {
      ensure: () => Promise.resolve({ built: false, seconds: 0 }),
      queryColumns: FIXTURE_QUERY_COLUMNS,
    },
  }, asked);
  assert.deepEqual(pg.skipped, []);
  assert.deepEqual(pg.specs.map((s) => [s.table, s.rows]), [["narrow", 10], ["wide", 20], [
    "content_items",
    30,
  ]]);
  assert.deepEqual(pg.specs[1]!.columns, FIXTURE_QUERY_COLUMNS.wide);
});

Deno.test("targets: PostgreSQL per table, MariaDB and SQL Server as before", () => {
  assert.deepEqual(targetFor("postgres", "narrow", "parquet"), { ratio: 1.3, rssMb: 256 });
  assert.deepEqual(targetFor("postgres", "wide", "parquet"), { ratio: 1.8, rssMb: 256 });
  assert.deepEqual(targetFor("postgres", "content_items", "parquet"), { ratio: 2.5, rssMb: 256 });
  for (const table of ["narrow", "wide", "content_items"] as const) {
    assert.deepEqual(targetFor("postgres", table, "csv"), { ratio: 1.5, rssMb: 256 });
    assert.deepEqual(targetFor("postgres", table, "floor"), {});
  }
  assert.deepEqual(targetFor("mysql", "narrow", "parquet"), { ratio: 2.5, rssMb: 300 });
  assert.deepEqual(targetFor("mysql", "narrow", "csv"), { ratio: 2, rssMb: 300 });
  assert.deepEqual(targetFor("mssql", "narrow", "csv"), { ratio: 2, rssMb: 300 });
});

Deno.test("parseEngines and parseTables keep the fixed order, default to all and reject unknown names", () => {
  assert.deepEqual(parseEngines(undefined), ["postgres", "mysql"]);
  assert.deepEqual(parseEngines("mysql,postgres"), ["postgres", "mysql"]);
  assert.deepEqual(parseEngines("mysql"), ["mysql"]);
  assert.throws(() => parseEngines("mssql"), /--engines .*got 'mssql'/);
  assert.throws(() => parseEngines(","), /--engines/);
  assert.deepEqual(parseTables(undefined), ["narrow", "wide", "content_items"]);
  assert.deepEqual(parseTables("content_items, narrow"), ["narrow", "content_items"]);
  assert.throws(
    () => parseTables("narrow,orders"),
    (e) =>
      e instanceof UsageError &&
      e.message === "--tables takes a comma-separated list of narrow, wide, content_items, " +
          "got 'narrow,orders'",
  );
  assert.throws(() => parseTables(""), UsageError);
});

Deno.test("parseOptions: defaults, row counts per table, --no-orders", () => {
  const d = parseOptions([]);
  assert.deepEqual(d.tables, ["narrow", "wide", "content_items"]);
  assert.deepEqual(d.rows, { narrow: 10_000_000, wide: 2_000_000, content_items: 2_000_000 });
  assert.equal(d.mysqlRows, 10_000_000);
  assert.equal(d.runs, 3);
  assert.equal(d.smallRows, 1_000_000);
  assert.equal(d.ordersRows, 1_000_000);
  assert.equal(d.parallel, true);
  const o = parseOptions([
    "--engines",
    "postgres",
    "--rows",
    "200_000",
    "--wide-rows",
    "50000",
    "--content-rows",
    "10000",
    "--runs",
    "1",
    "--small-rows",
    "0",
    "--no-parallel",
    "--orders-rows",
    "100000",
  ]);
  assert.deepEqual(o.engines, ["postgres"]);
  assert.deepEqual(o.rows, { narrow: 200_000, wide: 50_000, content_items: 10_000 });
  assert.equal(o.mysqlRows, 200_000, "--mysql-rows follows --rows");
  assert.equal(o.smallRows, 0);
  assert.equal(o.ordersRows, 100_000);
  assert.equal(o.parallel, false);
  assert.equal(parseOptions(["--no-orders", "--orders-rows", "5"]).ordersRows, 0);
});

Deno.test("parseOptions refuses bad counts and unknown flags with a message naming the flag", () => {
  const cases: [string[], RegExp][] = [
    [["--wide-rows", "0"], /^--wide-rows must be at least 1, got '0'$/],
    [["--content-rows", "lots"], /^--content-rows must be a whole number, got 'lots'$/],
    [["--rows", "1.5"], /^--rows must be a whole number, got '1.5'$/],
    [["--orders-rows=-3"], /^--orders-rows must be a whole number, got '-3'$/],
    [["--runs", ""], /^--runs must be a whole number, got ''$/],
    [["--small-rows", "x"], /^--small-rows must be a whole number/],
    [["--tables", "wide,huge"], /^--tables takes a comma-separated list/],
    [["--widerows", "5"], /widerows/],
    [["--rows"], /--rows/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseOptions(args), (e) => {
      assert.ok(e instanceof UsageError, `${args.join(" ")}: ${e}`);
      assert.match(e.message, message);
      return true;
    });
  }
});

function row(
  engine: BenchRow["engine"],
  table: BenchRow["table"],
  tool: BenchRow["tool"],
  extra: Partial<BenchRow> = {},
): BenchRow {
  return {
    engine,
    table,
    floorLabel: engine === "postgres" ? "psql COPY binary" : "mariadb --quick",
    tool,
    rows: 1_000_000,
    runs: 3,
    wallSeconds: 2,
    wallSecondsAll: [2, 2, 2],
    rowsPerSecond: 500_000,
    peakRssMb: 100,
    peakRssMbMax: 110,
    outputBytes: tool === "floor" ? 0 : 2 * 1024 * 1024,
    files: tool === "floor" ? 0 : 1,
    ratio: tool === "floor" ? 1 : 1.5,
    ...(tool === "floor" ? {} : { targetRatio: 2.5, targetRssMb: 300 }),
    verdict: tool === "floor" ? "-" as const : "PASS" as const,
    ...extra,
  };
}

Deno.test("renderTable names the engine, the table and which floor each ratio is against", () => {
  const lines = renderTable([
    row("postgres", "wide", "floor"),
    row("mysql", "narrow", "floor"),
    row("mysql", "narrow", "parquet"),
  ]).split("\n");
  assert.match(lines[0]!, /^engine\s+table\s+rows\s+command/);
  assert.match(lines[2]!, /^postgres\s+wide\s+1M\s+floor \(psql COPY binary\)/);
  assert.match(lines[3]!, /^mysql\s+narrow\s+1M\s+floor \(mariadb --quick\)/);
  assert.match(
    lines[4]!,
    /^mysql\s+narrow\s+1M\s+rivet → parquet zstd\s+2\.00\s+500,000\s+100\s+2\.0 MB\s+1\.50\s+≤ 2\.5×, ≤ 300 MB\s+PASS$/,
  );
});

Deno.test("renderSummary: one line per engine and table at its full size, Parquet with its output", () => {
  const full = { rows: 10_000_000 };
  const md = renderSummary([
    row("postgres", "narrow", "floor", { ...full, wallSeconds: 7.94 }),
    row("postgres", "narrow", "parquet", {
      ...full,
      ratio: 1.19,
      peakRssMb: 252.4,
      outputBytes: 86 * 1024 * 1024,
    }),
    row("postgres", "narrow", "csv", { ...full, ratio: 1.28, peakRssMb: 174 }),
    // The smaller size of narrow stays out of the summary.
    row("postgres", "narrow", "floor", { wallSeconds: 0.5 }),
    row("postgres", "narrow", "parquet", { ratio: 9 }),
    row("postgres", "wide", "floor", { rows: 2_000_000, wallSeconds: 10.4 }),
    row("postgres", "wide", "parquet", {
      rows: 2_000_000,
      ratio: 2.5,
      peakRssMb: 634,
      verdict: "MISS",
    }),
    row("postgres", "wide", "csv", { rows: 2_000_000, ratio: 1.9, verdict: "MISS" }),
    row("postgres", "content_items", "floor", { rows: 2_000_000, wallSeconds: 3 }),
    row("mysql", "narrow", "floor", full),
    row("mysql", "narrow", "parquet", full),
    row("mysql", "narrow", "csv", full),
  ]);
  assert.deepEqual(md.split("\n"), [
    "| table | floor | Parquet | CSV |",
    "| --- | --- | --- | --- |",
    "| narrow 10M × 5 | 7.9 s | 1.19×, 252 MB, 86.0 MB out (PASS) | 1.28×, 174 MB (PASS) |",
    "| wide 2M × 21 | 10.4 s | 2.50×, 634 MB, 2.0 MB out (MISS) | 1.90×, 100 MB (MISS) |",
    "| content_items 2M × 20 | 3.0 s | not timed | not timed |",
    "| narrow 10M × 5 (MariaDB) | 2.0 s | 1.50×, 100 MB, 2.0 MB out (PASS) | 1.50×, 100 MB (PASS) |",
  ]);
});

Deno.test("the orders line gives both sizes, the ratio and the verdict; a missing DuckDB is a reason", async () => {
  const report: OrdersReport = {
    rows: 1_000_000,
    total: { rivet: 12_340_000, duck: 11_900_000 },
    ratio: 12_340_000 / 11_900_000,
    target: 1.1,
    verdict: "PASS",
    columns: {},
  };
  assert.equal(ordersLine(report), "rivet 12.34 MB, DuckDB 11.90 MB: 1.04× (target ≤ 1.10×: PASS)");
  const reason = await loadDuckDb(() =>
    Promise.reject(new Error("No such file: libduckdb.so\nmore"))
  );
  assert.equal(reason, "@duckdb/node-api cannot be imported (No such file: libduckdb.so)");
});
