/**
 * The pure parts of `bench_mssql.ts` (no SQL Server runs here; the CI job runs the script
 * itself): flags, the URL it reads, the fixture SQL, the floor command lines, the Markdown report.
 *
 * @module
 */
import assert from "node:assert/strict";
import { median } from "./_bench_measure.ts";
import type { BenchRow } from "./bench.ts";
import {
  fixtureUrl,
  FLOOR_TOOLS,
  floorCommand,
  floorLabel,
  type MssqlReport,
  narrowMssqlSql,
  parseBenchArgs,
  parseTarget,
  renderMarkdown,
} from "./bench_mssql.ts";

Deno.test("parseBenchArgs: defaults, the CI flags, and bad values named by their flag", () => {
  assert.deepEqual(parseBenchArgs([]), {
    rows: 1_000_000,
    runs: 3,
    database: "rivet_bench",
    json: false,
    help: false,
  });
  const ci = parseBenchArgs([
    "--container",
    "3f9a0c1b2d4e",
    "--summary",
    "/tmp/step_summary.md",
    "--rows",
    "10_000",
    "--runs",
    "5",
  ]);
  assert.equal(ci.container, "3f9a0c1b2d4e");
  assert.equal(ci.summary, "/tmp/step_summary.md");
  assert.equal(ci.rows, 10_000);
  assert.equal(ci.runs, 5);
  assert.equal(parseBenchArgs(["--runs", "0"]).runs, 1, "at least one round");
  assert.throws(() => parseBenchArgs(["--rows", "0"]), /--rows must be between 1 and/);
  assert.throws(() => parseBenchArgs(["--rows", "200000001"]), /--rows must be between/);
  assert.throws(() => parseBenchArgs(["--rows", "1e3x"]), /--rows must be a whole number/);
  assert.throws(() => parseBenchArgs(["--database", "x]; DROP"]), /--database must be a plain/);
  assert.throws(() => parseBenchArgs(["--container", "a b"]), /--container must be/);
  assert.throws(() => parseBenchArgs(["--engines", "mssql"]), /engines/);
});

Deno.test("parseTarget reads the CI URL; encryption follows encrypt= or a remote host", () => {
  const ci = parseTarget(
    "sqlserver://sa:Pa%40ss-1@127.0.0.1:1433/master?trust_server_certificate=true",
  );
  assert.deepEqual(ci, {
    host: "127.0.0.1",
    port: 1433,
    user: "sa",
    password: "Pa@ss-1",
    database: "master",
    encrypt: false,
    trustServerCertificate: true,
  });
  const remote = parseTarget("mssql://u:p@db.example.net");
  assert.equal(remote.port, 1433);
  assert.equal(remote.database, "master");
  assert.equal(remote.encrypt, true);
  assert.equal(parseTarget("mssql://u:p@db.example.net?encrypt=false").encrypt, false);
  assert.equal(parseTarget("sqlserver://u:p@localhost:1?encrypt=TRUE").encrypt, true);
  assert.throws(() => parseTarget("postgresql://u:p@h/db"), /must start with sqlserver:\/\//);
  assert.throws(() => parseTarget("sqlserver://h:1433/db"), /must name a host and a user/);
  assert.throws(() => parseTarget("sqlserver://u:p@h/db?instance=SQLEXPRESS"), /named instance/);
  // The URL holds a password: the message must not repeat it.
  assert.throws(
    () => parseTarget("sqlserver://u:secret@[bad/db"),
    (e: Error) => /not a URL/.test(e.message) && !e.message.includes("secret"),
  );
});

Deno.test("fixtureUrl points rivet at the fixture database and keeps everything else", () => {
  assert.equal(
    fixtureUrl(
      "sqlserver://sa:pw@127.0.0.1:1433/master?trust_server_certificate=true",
      "rivet_bench",
    ),
    "sqlserver://sa:pw@127.0.0.1:1433/rivet_bench?trust_server_certificate=true",
  );
  assert.equal(fixtureUrl("mssql://u:p@h", "b"), "mssql://u:p@h/b");
});

Deno.test("narrowMssqlSql builds narrow set-based with the other engines' columns and values", () => {
  const sql = narrowMssqlSql(1_000_000);
  assert.match(sql, /SELECT TOP \(1000000\) ROW_NUMBER\(\) OVER/);
  // Eight cross-joined copies of the ten-row list: up to 10^8 rows.
  assert.equal(sql.match(/\bd AS [a-z]\b/g)?.length, 8);
  assert.match(sql, /INSERT INTO dbo\.narrow WITH \(TABLOCK\)/);
  for (
    const column of [
      /id\s+bigint\s+NOT NULL PRIMARY KEY/,
      /n\s+int\s+NOT NULL/,
      /s\s+varchar\(32\)/,
      /at\s+datetime2\(6\)/,
      /amount\s+decimal\(12,2\)/,
    ]
  ) assert.match(sql, column);
  // Same formulas as the PostgreSQL and MariaDB fixtures (row 7: n 55434, paid, 00:00:21, 7331.03).
  assert.match(sql, /1 \+ \(i \* 7919\) % 1000000/);
  assert.match(sql, /\(\(i \* 104729\) % 10000000\) \/ 100\.0/);
  assert.match(sql, /DATEADD\(second, CAST\(i \* 3 AS int\)/);
  assert.match(sql, /CHOOSE\(CAST\(1 \+ i % 6 AS int\), 'pending', 'paid'/);
  assert.equal(1 + (7 * 7919) % 1_000_000, 55434);
  assert.equal(((7 * 104729) % 10_000_000) / 100, 7331.03);
  assert.throws(() => narrowMssqlSql(0), RangeError);
  assert.throws(() => narrowMssqlSql(1.5), RangeError);
  assert.throws(() => narrowMssqlSql(100_000_001), RangeError);
});

Deno.test("floorCommand: bcp queryout or sqlcmd to /dev/null, password only in the environment", () => {
  const [bcp18, bcp17, sqlcmd18] = FLOOR_TOOLS;
  const place = { host: "127.0.0.1", port: 14330, user: "sa", database: "rivet_bench" };
  const sql = "SELECT * FROM narrow";

  const docker = floorCommand(bcp18!, { ...place, container: "abc123" }, sql);
  assert.equal(docker.command, "docker");
  assert.deepEqual(docker.args.slice(0, 4), ["exec", "-e", "SQLCMDPASSWORD", "abc123"]);
  const inner = docker.args.slice(4);
  assert.deepEqual(inner.slice(0, 4), ["sh", "-c", 'exec "$@" -P "$SQLCMDPASSWORD"', "sh"]);
  assert.deepEqual(inner.slice(4, 8), ["/opt/mssql-tools18/bin/bcp", sql, "queryout", "/dev/null"]);
  // Inside the container the server is its own localhost; -u (not -C, a code page for bcp)
  // trusts its self-signed certificate.
  assert.deepEqual(inner.slice(8), [
    "-c",
    "-S",
    "localhost,1433",
    "-U",
    "sa",
    "-d",
    "rivet_bench",
    "-u",
  ]);

  const local = floorCommand(bcp17!, place, sql);
  assert.equal(local.command, "sh");
  assert.ok(local.args.includes("127.0.0.1,14330"));
  assert.ok(!local.args.includes("-u"), "mssql-tools 17 has no -u");

  const sqlcmd = floorCommand(sqlcmd18!, place, sql);
  assert.equal(sqlcmd.command, "/opt/mssql-tools18/bin/sqlcmd");
  assert.deepEqual(sqlcmd.args.slice(-4), ["-Q", `SET NOCOUNT ON; ${sql}`, "-o", "/dev/null"]);
  assert.ok(sqlcmd.args.includes("-C"));
  for (const c of [docker, local, sqlcmd]) {
    assert.ok(!c.args.some((a) => a === "-P"), "no -P value on the visible command line");
  }
  assert.equal(floorLabel(bcp18!, true), "bcp queryout -c (mssql-tools18, in the container)");
  assert.equal(floorLabel(sqlcmd18!, false), "sqlcmd -o /dev/null (mssql-tools18)");
});

function benchRow(tool: BenchRow["tool"], wall: number, ratio: number): BenchRow {
  return {
    engine: "mssql",
    table: "narrow",
    floorLabel: "bcp",
    tool,
    rows: 1_000_000,
    runs: 3,
    wallSeconds: wall,
    wallSecondsAll: [wall, wall + 0.1, wall - 0.1],
    rowsPerSecond: 1_000_000 / wall,
    peakRssMb: tool === "floor" ? 12 : 180,
    peakRssMbMax: 190,
    outputBytes: tool === "floor" ? 0 : 30 * 1024 * 1024,
    files: tool === "floor" ? 0 : 1,
    ratio,
    ...(tool === "floor" ? {} : { targetRatio: 2.5, targetRssMb: 300 }),
    verdict: tool === "floor" ? "-" : ratio <= 2.5 ? "PASS" : "MISS",
  };
}

Deno.test("renderMarkdown: one table row per command, ratios, the floor used and skipped", () => {
  const report: MssqlReport = {
    version: "16.0.4135.4 (Developer Edition (64-bit))",
    rows: 1_000_000,
    runs: 3,
    floor: {
      tool: FLOOR_TOOLS[0]!,
      label: "bcp queryout -c (mssql-tools18, in the container)",
      skipped: [],
      rssMeasured: false,
    },
    results: [benchRow("floor", 2, 1), benchRow("parquet", 4, 2), benchRow("csv", 6, 3)],
    deno: "2.9.6",
    cpus: 4,
  };
  const md = renderMarkdown(report);
  const lines = md.split("\n");
  assert.equal(
    lines[0],
    "### SQL Server 16.0.4135.4 (Developer Edition (64-bit)): narrow, 1M rows",
  );
  assert.match(md, /Medians of 3 runs/);
  const table = lines.filter((l) => l.startsWith("|"));
  assert.equal(table.length, 5, "header, separator, floor, parquet, csv");
  assert.match(table[1]!, /^\| --- \| --- \|/);
  assert.equal(
    table[2],
    "| floor: bcp queryout -c (mssql-tools18, in the container) | 1M | 2.00 (2.00, 2.10, 1.90) " +
      "| 500,000 | — | — | 1.00 | — | — |",
  );
  assert.equal(
    table[3],
    "| rivet → parquet zstd | 1M | 4.00 (4.00, 4.10, 3.90) | 250,000 | 180 MB | 30.0 MB " +
      "| **2.00** | ≤ 2.5×, ≤ 300 MB | PASS |",
  );
  assert.match(table[4]!, /^\| rivet → csv \| 1M \|.*\| \*\*3\.00\*\* \|.*\| MISS \|$/);
  assert.match(md, /peak RSS is not measured/);
  assert.doesNotMatch(md, /rivet was not timed/);

  const failed = renderMarkdown({
    ...report,
    floor: {
      ...report.floor,
      label: "sqlcmd | x",
      skipped: ["/opt/mssql-tools18/bin/bcp: not found"],
      rssMeasured: true,
    },
    results: [benchRow("floor", 2, 1)],
    rivetError: "rivet run (mssql → csv, 1000 rows) exited with 1:\nError: export 'narrow_csv': …",
  });
  assert.match(failed, /floor: sqlcmd \\\| x/, "a | in a cell is escaped");
  assert.match(failed, /\| 12 MB \|/, "a floor run on this machine has its RSS");
  assert.match(failed, /- floor skipped: \/opt\/mssql-tools18\/bin\/bcp: not found/);
  assert.match(failed, /\*\*rivet was not timed\*\*[\s\S]*```\nrivet run \(mssql → csv/);
  assert.doesNotMatch(failed, /peak RSS is not measured/);
});

Deno.test("median: middle value, mean of the two middle values, NaN for none", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});
