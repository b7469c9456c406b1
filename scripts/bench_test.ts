import assert from "node:assert/strict";
import { parse } from "yaml";
import { type BenchRow, configYaml, parseEngines, renderTable } from "./bench.ts";

Deno.test("configYaml points the source block at the engine and reads a size through a query", () => {
  const mysql = { source: { type: "mysql", url: "mysql://u:p@h:1/d" }, queryColumns: {} };
  const whole = parse(configYaml(mysql, { tool: "parquet", rows: 100, tableRows: 100 }));
  assert.equal(whole.source.type, "mysql");
  assert.equal(whole.source.url_env, "RIVET_BENCH_URL");
  assert.equal(JSON.stringify(whole).includes("u:p@"), false, "the URL stays in the environment");
  assert.deepEqual(whole.exports[0].table, "narrow");
  assert.equal(whole.exports[0].compression, "zstd");

  const pg = {
    source: { type: "postgres", url: "postgresql://h/d" },
    queryColumns: { amount: "decimal(12,2)" },
  };
  const part = parse(configYaml(pg, { tool: "csv", rows: 10, tableRows: 100 }));
  assert.equal(part.source.type, "postgres");
  assert.equal(part.exports[0].query, "SELECT * FROM narrow WHERE id <= 10");
  assert.deepEqual(part.exports[0].columns, { amount: "decimal(12,2)" });
  assert.equal(part.exports[0].format, "csv");
  assert.equal(part.exports[0].compression, undefined);
  const partMysql = parse(configYaml(mysql, { tool: "csv", rows: 10, tableRows: 100 }));
  assert.equal(partMysql.exports[0].columns, undefined);
});

Deno.test("parseEngines keeps the fixed order, defaults to both and rejects unknown names", () => {
  assert.deepEqual(parseEngines(undefined), ["postgres", "mysql"]);
  assert.deepEqual(parseEngines("mysql,postgres"), ["postgres", "mysql"]);
  assert.deepEqual(parseEngines("mysql"), ["mysql"]);
  assert.throws(() => parseEngines("mssql"), /--engines .*got 'mssql'/);
  assert.throws(() => parseEngines(","), /--engines/);
});

Deno.test("renderTable names the engine and which floor each ratio is against", () => {
  const row = (engine: "postgres" | "mysql", floorLabel: string, tool: BenchRow["tool"]) => ({
    engine,
    floorLabel,
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
  });
  const lines = renderTable([
    row("postgres", "psql COPY binary", "floor"),
    row("mysql", "mariadb --quick", "floor"),
    row("mysql", "mariadb --quick", "parquet"),
  ]).split("\n");
  assert.match(lines[0]!, /^engine\s+rows\s+command/);
  assert.match(lines[2]!, /^postgres\s+1M\s+floor \(psql COPY binary\)/);
  assert.match(lines[3]!, /^mysql\s+1M\s+floor \(mariadb --quick\)/);
  assert.match(
    lines[4]!,
    /^mysql\s+1M\s+rivet → parquet zstd\s+2\.00\s+500,000\s+100\s+2\.0 MB\s+1\.50\s+≤ 2\.5×, ≤ 300 MB\s+PASS$/,
  );
});
