/**
 * `deno task bench:mssql [--rows N] [--runs N] [--container ID] [--database NAME]
 * [--summary FILE] [--json]`: rivet against SQL Server's own export tools on a 1M-row `narrow`
 * table, on a server you already run (CI: the SQL Server 2022 service container). The server is
 * named by `RIVET_MSSQL_URL` (`sqlserver://user:pass@host:port/db?trust_server_certificate=true`);
 * without it the script refuses to start.
 *
 * Same method as `deno task bench` (`bench.ts`, whose timing loop it reuses): the fixture is
 * loaded once, then for each round (the order rotating) it times as whole processes the floor,
 * `rivet run` to Parquet (zstd) and `rivet run` to CSV (local destination), and reports medians
 * of wall time, rows/s, peak RSS, output size and the ratio to the floor, as a Markdown table on
 * stdout (appended to `--summary FILE` too, e.g. `$GITHUB_STEP_SUMMARY`; `--json`: the figures as
 * JSON instead).
 *
 * The fixture: database `rivet_bench` (`--database`; created when missing, snapshot isolation
 * allowed so rivet reads it as it would in production) holding `dbo.narrow` (`id bigint PRIMARY
 * KEY, n int, s varchar(32), at datetime2(6), amount decimal(12,2)`) filled by one set-based
 * `INSERT … SELECT` from a tally CTE with the same values as the PostgreSQL and MariaDB `narrow`.
 * It is rebuilt only when its row count differs. The database named in the URL is only used to
 * log in; nothing else in it is touched.
 *
 * The floor, first that works of: `bcp "SELECT * FROM narrow" queryout /dev/null -c` from
 * mssql-tools18 (`-u` trusts the server's self-signed certificate; bcp's `-C` is a code page, not
 * sqlcmd's trust switch), the older mssql-tools `bcp`, then `sqlcmd -o /dev/null` (tools18, then
 * the older one). With `--container ID` they run inside that container through `docker exec` and
 * reach the server as `localhost`; the peak RSS of the floor is then the docker client's and is
 * not reported. Without it they run on this machine against the URL's host and port. The report
 * says which floor was used and why the others were skipped. The password goes in the
 * environment (`SQLCMDPASSWORD`), never on the command line docker or this machine shows.
 *
 * A benchmark, not a test: it asserts only that every rivet run exits 0 with the expected row
 * count; when rivet cannot read the server (a tiny probe run fails), the floor alone is reported
 * with rivet's error, and the command exits 1. The pure parts are tested in the unit tier
 * (`bench_mssql_test.ts`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Connection, Request } from "tedious";
import { type BenchEngine, measureProcess, type ProcessMeasure } from "./_bench_measure.ts";
import {
  benchEngine,
  type BenchRow,
  type EngineResult,
  fmtBytes,
  fmtRows,
  positiveInt,
} from "./bench.ts";

/** The environment variable naming the server. */
export const URL_ENV = "RIVET_MSSQL_URL";

/** Upper bound of the tally CTE (10 × 10 … eight times). */
const MAX_ROWS = 100_000_000;

/** Options of one bench run, from the command line. */
export interface MssqlBenchOptions {
  readonly rows: number;
  readonly runs: number;
  /** Container of the server, for the floor tools (`docker exec`). */
  readonly container?: string;
  /** Database holding the fixture. */
  readonly database: string;
  /** File the Markdown report is appended to. */
  readonly summary?: string;
  readonly json: boolean;
  readonly help: boolean;
}

/**
 * Parses the command line of `deno task bench:mssql`.
 *
 * @param args Arguments after the task name.
 * @returns The options, with defaults (1M rows, 3 runs, database `rivet_bench`).
 * @throws Error naming the flag, for a bad value or an unknown flag.
 */
export function parseBenchArgs(args: readonly string[]): MssqlBenchOptions {
  const { values } = parseArgs({
    args: [...args],
    options: {
      rows: { type: "string" },
      runs: { type: "string" },
      container: { type: "string" },
      database: { type: "string" },
      summary: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const rows = positiveInt("rows", values.rows, 1_000_000);
  if (rows < 1 || rows > MAX_ROWS) {
    throw new Error(`--rows must be between 1 and ${MAX_ROWS}, got '${values.rows}'`);
  }
  const database = values.database ?? "rivet_bench";
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(database)) {
    throw new Error(`--database must be a plain name (letters, digits, _), got '${database}'`);
  }
  if (values.container !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(values.container)) {
    throw new Error(`--container must be a container id or name, got '${values.container}'`);
  }
  return {
    rows,
    runs: Math.max(1, positiveInt("runs", values.runs, 3)),
    database,
    json: values.json,
    help: values.help,
    ...(values.container === undefined ? {} : { container: values.container }),
    ...(values.summary === undefined ? {} : { summary: values.summary }),
  };
}

/** What the bench needs of `RIVET_MSSQL_URL`. */
export interface MssqlTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** The database the URL names (login only), `master` when none. */
  readonly database: string;
  /** Whether the fixture connection encrypts: `encrypt=true`, or a host that is not loopback. */
  readonly encrypt: boolean;
  readonly trustServerCertificate: boolean;
}

/**
 * Reads the parts of a `sqlserver://` or `mssql://` URL the fixture connection and the floor
 * need. Only what the CI URL uses: host, port, user, password, database, `encrypt`,
 * `trust_server_certificate` (named instances are out of scope for a benchmark).
 *
 * @param text The URL.
 * @returns The target.
 * @throws Error (without the URL, which holds a password) when it cannot be used.
 */
export function parseTarget(text: string): MssqlTarget {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new Error(`${URL_ENV} is not a URL (expected sqlserver://user:pass@host:port/db)`);
  }
  if (url.protocol !== "sqlserver:" && url.protocol !== "mssql:") {
    throw new Error(`${URL_ENV} must start with sqlserver:// or mssql://, not ${url.protocol}//`);
  }
  if (url.hostname === "" || url.username === "") {
    throw new Error(`${URL_ENV} must name a host and a user (sqlserver://user:pass@host:port/db)`);
  }
  if (url.searchParams.has("instance")) {
    throw new Error(`${URL_ENV}: the benchmark needs host:port, not a named instance`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const loopback = host === "localhost" || host === "::1" || /^127\./.test(host);
  const flag = (name: string) => url.searchParams.get(name)?.toLowerCase();
  return {
    host,
    port: url.port === "" ? 1433 : Number(url.port),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.replace(/^\//, "")) || "master",
    encrypt: flag("encrypt") === "true" || (!loopback && flag("encrypt") !== "false"),
    trustServerCertificate: flag("trust_server_certificate") === "true",
  };
}

/**
 * The URL rivet reads the fixture with: the given one, pointed at the fixture's database.
 *
 * @param text `RIVET_MSSQL_URL`.
 * @param database The fixture's database.
 * @returns The same URL (credentials and parameters kept) with `/database` as its path.
 */
export function fixtureUrl(text: string, database: string): string {
  const url = new URL(text);
  url.pathname = `/${database}`;
  return url.href;
}

/**
 * T-SQL creating `dbo.narrow` with `rows` rows in the current database: the columns of the
 * other engines' `narrow` (bigint id, int, varchar, datetime2(6), decimal(12,2)) and the same
 * deterministic values, from one `INSERT … SELECT` over a tally CTE (ten rows cross-joined
 * eight times, cut by `TOP`), so the server builds it set-based in seconds. `TABLOCK` lets a
 * simple-recovery database log it minimally.
 *
 * @param rows Row count, 1 to 100M.
 * @returns One batch.
 */
export function narrowMssqlSql(rows: number): string {
  if (!Number.isSafeInteger(rows) || rows < 1 || rows > MAX_ROWS) {
    throw new RangeError(`bad row count ${rows}`);
  }
  const digits = "(0),(0),(0),(0),(0),(0),(0),(0),(0),(0)";
  const joins = ["b", "c", "e", "f", "g", "h", "k"].map((a) => `CROSS JOIN d AS ${a}`).join(" ");
  return `DROP TABLE IF EXISTS dbo.narrow;
CREATE TABLE dbo.narrow (
    id      bigint        NOT NULL PRIMARY KEY,
    n       int           NOT NULL,
    s       varchar(32)   NOT NULL,
    at      datetime2(6)  NOT NULL,
    amount  decimal(12,2) NOT NULL
);
WITH d(x) AS (SELECT x FROM (VALUES ${digits}) AS v(x)),
  t(i) AS (SELECT TOP (${rows}) ROW_NUMBER() OVER (ORDER BY (SELECT NULL)) FROM d AS a ${joins})
INSERT INTO dbo.narrow WITH (TABLOCK) (id, n, s, at, amount)
SELECT i,
       CAST(1 + (i * 7919) % 1000000 AS int),
       CHOOSE(CAST(1 + i % 6 AS int), 'pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded'),
       DATEADD(second, CAST(i * 3 AS int), CAST('2024-01-01T00:00:00' AS datetime2(6))),
       CAST(((i * 104729) % 10000000) / 100.0 AS decimal(12,2))
FROM t;
`;
}

/** One program that can serve as the floor. */
export interface FloorTool {
  readonly kind: "bcp" | "sqlcmd";
  readonly path: string;
  /** Extra switches: tools18 encrypt by default and must trust the self-signed certificate. */
  readonly trust: readonly string[];
}

/** Floor candidates, best first. */
export const FLOOR_TOOLS: readonly FloorTool[] = [
  { kind: "bcp", path: "/opt/mssql-tools18/bin/bcp", trust: ["-u"] },
  { kind: "bcp", path: "/opt/mssql-tools/bin/bcp", trust: [] },
  { kind: "sqlcmd", path: "/opt/mssql-tools18/bin/sqlcmd", trust: ["-C"] },
  { kind: "sqlcmd", path: "/opt/mssql-tools/bin/sqlcmd", trust: [] },
];

/** Where the floor runs and how it reaches the server. */
export interface FloorPlace {
  /** Container id: run through `docker exec`, reaching the server as localhost:1433. */
  readonly container?: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
}

/**
 * The command line of one floor run: the tool reading `sql` and throwing the rows away.
 * The password is not in it: sqlcmd reads `SQLCMDPASSWORD` itself, and bcp gets `-P` from that
 * variable inside a small `sh -c` (so only the tool's own process line holds it); with a
 * container, `docker exec -e SQLCMDPASSWORD` passes the variable through from this process.
 *
 * @param tool The program.
 * @param place Container or host, login and database.
 * @param sql The query.
 * @returns Program and arguments; run it with `SQLCMDPASSWORD` in the environment.
 */
export function floorCommand(
  tool: FloorTool,
  place: FloorPlace,
  sql: string,
): { command: string; args: string[] } {
  const server = place.container === undefined ? `${place.host},${place.port}` : "localhost,1433";
  const login = ["-S", server, "-U", place.user, "-d", place.database, ...tool.trust];
  const argv = tool.kind === "bcp"
    ? ["sh", "-c", 'exec "$@" -P "$SQLCMDPASSWORD"', "sh", tool.path, sql, "queryout", "/dev/null"]
      .concat(["-c", ...login])
    : [tool.path, ...login, "-b", "-h", "-1", "-W", "-Q", `SET NOCOUNT ON; ${sql}`]
      .concat(["-o", "/dev/null"]);
  return place.container === undefined
    ? { command: argv[0]!, args: argv.slice(1) }
    : { command: "docker", args: ["exec", "-e", "SQLCMDPASSWORD", place.container, ...argv] };
}

/** What the report says about the floor. */
export interface FloorChoice {
  readonly tool: FloorTool;
  /** e.g. `bcp queryout (mssql-tools18, in the container)`. */
  readonly label: string;
  /** Candidates tried before it, with why each was skipped. */
  readonly skipped: readonly string[];
  /** False when the floor ran through docker exec (the RSS is the docker client's). */
  readonly rssMeasured: boolean;
}

/** The report's name of a floor tool. */
export function floorLabel(tool: FloorTool, inContainer: boolean): string {
  const what = tool.kind === "bcp" ? "bcp queryout -c" : "sqlcmd -o /dev/null";
  const tools = tool.path.includes("tools18") ? "mssql-tools18" : "mssql-tools";
  return `${what} (${tools}${inContainer ? ", in the container" : ""})`;
}

/** Everything the Markdown report shows. */
export interface MssqlReport {
  readonly version: string;
  readonly rows: number;
  readonly runs: number;
  readonly floor: FloorChoice;
  readonly results: readonly BenchRow[];
  readonly rivetError?: string;
  readonly deno: string;
  readonly cpus: number;
}

/**
 * Renders the report as Markdown: a heading line with the server and the floor, the table
 * (medians; every run's wall time in brackets), and the notes (skipped floors, rivet's error).
 *
 * @param report The figures.
 * @returns Markdown, ending with a newline.
 */
export function renderMarkdown(report: MssqlReport): string {
  const head = [
    "command",
    "rows",
    "wall s (each run)",
    "rows/s",
    "peak RSS",
    "output",
    "× floor",
    "target",
    "verdict",
  ];
  const body = report.results.map((r) => [
    r.tool === "floor"
      ? `floor: ${report.floor.label}`
      : `rivet → ${r.tool}${r.tool === "parquet" ? " zstd" : ""}`,
    fmtRows(r.rows),
    `${r.wallSeconds.toFixed(2)} (${r.wallSecondsAll.map((w) => w.toFixed(2)).join(", ")})`,
    Math.round(r.rowsPerSecond).toLocaleString("en-US"),
    r.tool === "floor" && !report.floor.rssMeasured ? "—" : `${r.peakRssMb.toFixed(0)} MB`,
    r.tool === "floor" ? "—" : fmtBytes(r.outputBytes),
    r.tool === "floor" ? "1.00" : `**${r.ratio.toFixed(2)}**`,
    [
      r.targetRatio === undefined ? "" : `≤ ${r.targetRatio}×`,
      r.targetRssMb === undefined ? "" : `≤ ${r.targetRssMb} MB`,
    ].filter(Boolean).join(", ") || "—",
    r.verdict === "-" ? "—" : r.verdict,
  ]);
  const row = (cells: readonly string[]) => `| ${cells.map(escapeCell).join(" | ")} |`;
  const lines = [
    `### SQL Server ${report.version}: narrow, ${fmtRows(report.rows)} rows`,
    "",
    `${report.runs === 1 ? "One run" : `Medians of ${report.runs} runs`}, whole processes, ` +
    `the order rotating per round; Deno ${report.deno}, ${report.cpus} CPUs. ` +
    `Floor: ${report.floor.label}.`,
    "",
    row(head),
    row(head.map(() => "---")),
    ...body.map(row),
    "",
  ];
  if (!report.floor.rssMeasured) {
    lines.push("The floor ran through `docker exec`: its peak RSS is not measured.", "");
  }
  for (const skipped of report.floor.skipped) lines.push(`- floor skipped: ${skipped}`);
  if (report.floor.skipped.length > 0) lines.push("");
  if (report.rivetError !== undefined) {
    lines.push(
      "**rivet was not timed**: its probe run failed:",
      "",
      "```",
      report.rivetError.trim(),
      "```",
      "",
    );
  }
  return lines.join("\n");
}

function escapeCell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

// ---------------------------------------------------------------------------------------------
// The parts below talk to the server and run programs; CI exercises them.

function connect(target: MssqlTarget): Promise<Connection> {
  const connection = new Connection({
    server: target.host,
    authentication: {
      type: "default",
      options: { userName: target.user, password: target.password },
    },
    options: {
      port: target.port,
      database: target.database,
      encrypt: target.encrypt,
      trustServerCertificate: target.trustServerCertificate,
      connectTimeout: 60_000,
      // The 1M-row load runs well under this; 0 would mean no bound at all.
      requestTimeout: 30 * 60_000,
    },
  });
  return new Promise((resolve, reject) => {
    connection.connect((error) => error ? reject(error) : resolve(connection));
  });
}

/** Runs one batch and returns its rows as arrays of values. */
function batch(connection: Connection, sql: string): Promise<unknown[][]> {
  return new Promise((resolve, reject) => {
    const rows: unknown[][] = [];
    const request = new Request(sql, (error) => error ? reject(error) : resolve(rows));
    request.on("row", (columns: { value: unknown }[]) => rows.push(columns.map((c) => c.value)));
    connection.execSqlBatch(request);
  });
}

/** Creates the database if missing, allows snapshot isolation in it, and (re)loads narrow. */
async function ensureFixture(
  connection: Connection,
  database: string,
  rows: number,
): Promise<{ built: boolean; seconds: number }> {
  const started = performance.now();
  const db = `[${database}]`;
  const name = `N'${database}'`;
  await batch(
    connection,
    `IF DB_ID(${name}) IS NULL CREATE DATABASE ${db};
IF (SELECT snapshot_isolation_state FROM sys.databases WHERE name = ${name}) = 0
  ALTER DATABASE ${db} SET ALLOW_SNAPSHOT_ISOLATION ON;
IF (SELECT recovery_model FROM sys.databases WHERE name = ${name}) <> 3 AND ${name} <> N'master'
  ALTER DATABASE ${db} SET RECOVERY SIMPLE;`,
  );
  await batch(connection, `USE ${db};`);
  // IF/ELSE, not CASE: a statement naming a missing table fails to compile even where the
  // branch would not run, while an ELSE branch that does not run is never compiled.
  const [count] = await batch(
    connection,
    "IF OBJECT_ID(N'dbo.narrow', N'U') IS NULL SELECT CAST(-1 AS bigint) " +
      "ELSE SELECT COUNT_BIG(*) FROM dbo.narrow;",
  );
  if (Number(count?.[0]) === rows) {
    return { built: false, seconds: (performance.now() - started) / 1000 };
  }
  await batch(connection, narrowMssqlSql(rows));
  return { built: true, seconds: (performance.now() - started) / 1000 };
}

/** Tries each floor candidate on a one-row query; the first that exits 0 is the floor. */
async function chooseFloor(place: FloorPlace, password: string): Promise<FloorChoice> {
  const skipped: string[] = [];
  const inContainer = place.container !== undefined;
  for (const tool of FLOOR_TOOLS) {
    const { command, args } = floorCommand(tool, place, "SELECT TOP (1) * FROM dbo.narrow");
    const out = await new Deno.Command(command, {
      args,
      env: { SQLCMDPASSWORD: password },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output().catch((error: Error) => ({
      code: -1,
      stderr: new TextEncoder().encode(error.message),
    }));
    if (out.code === 0) {
      return { tool, label: floorLabel(tool, inContainer), skipped, rssMeasured: !inContainer };
    }
    const why = new TextDecoder().decode(out.stderr).trim().split("\n")[0] || `exit ${out.code}`;
    skipped.push(`${tool.path}: ${why.slice(0, 200)}`);
  }
  throw new Error(
    `no floor tool worked ${
      inContainer ? `in container ${place.container}` : "on this machine"
    }:\n` +
      skipped.join("\n"),
  );
}

async function main(args: string[]): Promise<number> {
  const options = parseBenchArgs(args);
  if (options.help) {
    console.log(
      "RIVET_MSSQL_URL=sqlserver://user:pass@host:1433/master?trust_server_certificate=true \\\n" +
        "  deno task bench:mssql [--rows N (1000000)] [--runs N (3)] [--container ID] " +
        "[--database NAME (rivet_bench)] [--summary FILE] [--json]",
    );
    return 0;
  }
  const url = Deno.env.get(URL_ENV);
  if (url === undefined || url.trim() === "") {
    console.error(
      `bench:mssql needs a SQL Server to read: set ${URL_ENV}, e.g.\n` +
        `  ${URL_ENV}='sqlserver://sa:<password>@127.0.0.1:1433/master?trust_server_certificate=true' ` +
        "deno task bench:mssql --container <id of the server's container>",
    );
    return 1;
  }
  const target = parseTarget(url.trim());
  const log = (line: string) => console.error(line);

  log(`Connecting to ${target.host}:${target.port} as ${target.user}…`);
  const connection = await connect(target);
  let version: string;
  let load: { built: boolean; seconds: number };
  try {
    const [info] = await batch(
      connection,
      "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)), " +
        "CAST(SERVERPROPERTY('Edition') AS nvarchar(128))",
    );
    version = `${info?.[0]} (${info?.[1]})`;
    log(`SQL Server ${version}; loading ${options.database}.dbo.narrow…`);
    load = await ensureFixture(connection, options.database, options.rows);
  } finally {
    connection.close();
  }

  const place: FloorPlace = {
    host: target.host,
    port: target.port,
    user: target.user,
    database: options.database,
    ...(options.container === undefined ? {} : { container: options.container }),
  };
  const floor = await chooseFloor(place, target.password);
  log(
    `Floor: ${floor.label}${floor.skipped.length ? ` (skipped: ${floor.skipped.join("; ")})` : ""}`,
  );

  const engine: BenchEngine = {
    name: "mssql",
    product: "SQL Server",
    version,
    floorLabel: floor.label,
    ensureNarrow: () => Promise.resolve(load),
    floor: (sql: string): Promise<ProcessMeasure> => {
      const { command, args } = floorCommand(floor.tool, place, sql);
      return measureProcess(command, { args, env: { SQLCMDPASSWORD: target.password } });
    },
    source: { type: "mssql", url: fixtureUrl(url.trim(), options.database) },
    queryColumns: {},
    stop: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
  const result: EngineResult = await benchEngine(engine, {
    rows: options.rows,
    smallRows: 0,
    runs: options.runs,
    parallel: false,
    s3: false,
  });
  const report: MssqlReport = {
    version,
    rows: options.rows,
    runs: options.runs,
    floor,
    results: result.rows,
    deno: Deno.version.deno,
    cpus: navigator.hardwareConcurrency,
    ...(result.rivetError === undefined ? {} : { rivetError: result.rivetError }),
  };
  const markdown = renderMarkdown(report);
  console.log(options.json ? JSON.stringify(report, null, 2) : markdown);
  if (options.summary !== undefined) {
    await Deno.writeTextFile(options.summary, `${markdown}\n`, { append: true });
  }
  return result.rivetError === undefined ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    // One line for a bad flag, a refused login or an unreachable server; no stack to scroll.
    console.error(`bench:mssql: ${error instanceof Error ? error.message : String(error)}`);
    Deno.exit(1);
  }
}
