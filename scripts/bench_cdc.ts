/**
 * `deno task bench:cdc [--changes N] [--engines postgres,mysql] [--format parquet|csv] [--json]`:
 * change data capture throughput on a backlog of N changes (default 1,000,000) per engine, on
 * throwaway servers this script starts (PostgreSQL 15 with `wal_level=logical`, MariaDB with
 * the binary log in ROW format).
 *
 * For each engine: a table `cdc_bench (id bigint PRIMARY KEY, n int, s varchar(32), at timestamp,
 * amount decimal(12,2), flag boolean)`, a first `rivet run` of a `mode: cdc` export (it creates
 * the slot, or notes the binlog position), then the backlog: N changes in transactions of 10,000
 * (inserts, then every tenth row updated and every hundredth deleted, so all three operations
 * are decoded), then the measured run: `rivet run` with `until_current: true` to Parquet (zstd)
 * or CSV on local disk, as a whole process under `/usr/bin/time` (peak RSS).
 *
 * The floor is the database's own reading of the same backlog: PostgreSQL decoding it on the
 * server (`SELECT count(*) FROM pg_logical_slot_peek_binary_changes(...)` with pgoutput on a
 * second slot created beside rivet's, so no client and no network cost), MariaDB's own binlog
 * client (`mariadb-binlog --read-from-remote-server` to /dev/null).
 *
 * A benchmark, not a test: it asserts that every run exits 0 and that the parts hold exactly the
 * changes made.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { startPostgres } from "../tests/_helpers/pg_server.ts";
import { startMariaDb } from "../tests/_helpers/mariadb_server.ts";
import { measureProcess, type ProcessMeasure } from "./_bench_measure.ts";
import { V8_FLAGS_ARG } from "../src/engines/v8_flags.ts";

const cliPath = new URL("../cli.ts", import.meta.url).pathname;

/** One engine's result. */
interface CdcBenchRow {
  readonly engine: string;
  readonly changes: number;
  readonly backlogSeconds: number;
  readonly rivet: ProcessMeasure;
  readonly parts: number;
  readonly floorLabel: string;
  readonly floorSeconds: number;
}

/** The changes of the backlog for `n` changes: inserts, updates of every 10th, deletes of every 100th. */
export function backlogShape(n: number): { inserts: number; updates: number; deletes: number } {
  // inserts + inserts/10 + inserts/100 = n  →  inserts = n / 1.11
  const inserts = Math.round(n / 1.11);
  return {
    inserts,
    updates: Math.floor(inserts / 10),
    // Rows with id % 100 = 1: ids 1, 101, 201, …
    deletes: Math.floor((inserts - 1) / 100) + 1,
  };
}

function planText(type: string, format: string, cdc: string): string {
  return [
    "source:",
    `  type: ${type}`,
    "  url_env: CDC_BENCH_URL",
    "exports:",
    "  - name: cdc_bench",
    "    table: cdc_bench",
    "    mode: cdc",
    `    format: ${format}`,
    "    destination: {type: local, path: ./out}",
    `    cdc: {until_current: true, rollover: 100000, ${cdc}}`,
    "",
  ].join("\n");
}

async function rivetRun(dir: string, url: string): Promise<ProcessMeasure> {
  return await measureProcess(Deno.execPath(), {
    // The V8 settings the compiled binary runs with (as `deno task bench` does).
    args: ["run", "-A", "--quiet", V8_FLAGS_ARG, cliPath, "run", "-c", "plan.yaml"],
    cwd: dir,
    env: { CDC_BENCH_URL: url },
  });
}

async function countChanges(dir: string): Promise<{ rows: number; parts: number }> {
  const manifest = JSON.parse(await Deno.readTextFile(join(dir, "out", "manifest.json")));
  const parts = manifest.parts as { rows: number }[];
  return { rows: parts.reduce((sum, p) => sum + p.rows, 0), parts: parts.length };
}

async function benchPostgres(changes: number, format: string): Promise<CdcBenchRow> {
  const pg = await startPostgres({ logical: true });
  const dir = await Deno.makeTempDir();
  try {
    await pg.psql(
      "CREATE TABLE cdc_bench (id bigint PRIMARY KEY, n int, s varchar(32), at timestamp, " +
        "amount numeric(12,2), flag boolean)",
    );
    await Deno.writeTextFile(join(dir, "plan.yaml"), planText("postgres", format, "slot: bench"));
    const first = await rivetRun(dir, pg.url);
    if (first.code !== 0) throw new Error(`first run failed: ${first.stderr}`);
    await pg.psql("SELECT pg_create_logical_replication_slot('floor', 'pgoutput')");
    const { inserts, updates, deletes } = backlogShape(changes);
    const started = performance.now();
    for (let from = 1; from <= inserts; from += 10_000) {
      const to = Math.min(inserts, from + 9_999);
      await pg.psql(
        `INSERT INTO cdc_bench SELECT g, g % 1000, 'row ' || g, ` +
          `'2024-01-01'::timestamp + g * interval '1 second', g / 100.0, g % 2 = 0 ` +
          `FROM generate_series(${from}, ${to}) g`,
      );
    }
    await pg.psql("UPDATE cdc_bench SET n = n + 1000000 WHERE id % 10 = 0");
    await pg.psql("DELETE FROM cdc_bench WHERE id % 100 = 1");
    const backlogSeconds = (performance.now() - started) / 1000;
    const floorStart = performance.now();
    await pg.psql(
      "SELECT count(*) FROM pg_logical_slot_peek_binary_changes('floor', NULL, NULL, " +
        "'proto_version', '1', 'publication_names', 'bench', 'binary', 'true')",
    );
    const floorSeconds = (performance.now() - floorStart) / 1000;
    const rivet = await rivetRun(dir, pg.url);
    if (rivet.code !== 0) throw new Error(`rivet failed: ${rivet.stderr}`);
    const { rows, parts } = await countChanges(dir);
    const expected = inserts + updates + deletes;
    if (rows !== expected) throw new Error(`rivet wrote ${rows} changes, expected ${expected}`);
    await pg.psql("SELECT pg_drop_replication_slot('floor')");
    return {
      engine: "postgres",
      changes: rows,
      backlogSeconds,
      rivet,
      parts,
      floorLabel: "server-side pgoutput decode (peek_binary_changes)",
      floorSeconds,
    };
  } finally {
    await pg.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

async function benchMysql(changes: number, format: string): Promise<CdcBenchRow> {
  const db = await startMariaDb({
    args: ["--log-bin=bench-bin", "--binlog-format=ROW", "--server-id=1", "--max-binlog-size=1G"],
  });
  const dir = await Deno.makeTempDir();
  try {
    await db.sql(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '${db.user}'@'127.0.0.1'`);
    await db.sql(
      "CREATE TABLE cdc_bench (id bigint PRIMARY KEY, n int, s varchar(32), at datetime(6), " +
        "amount decimal(12,2), flag boolean)",
      { database: db.database },
    );
    await Deno.writeTextFile(join(dir, "plan.yaml"), planText("mysql", format, "server_id: 4271"));
    const first = await rivetRun(dir, db.url);
    if (first.code !== 0) throw new Error(`first run failed: ${first.stderr}`);
    const status = (await db.sql("SHOW MASTER STATUS")).trim().split("\t");
    const { inserts, updates, deletes } = backlogShape(changes);
    const started = performance.now();
    for (let from = 1; from <= inserts; from += 10_000) {
      const to = Math.min(inserts, from + 9_999);
      await db.sql(
        `INSERT INTO cdc_bench SELECT seq, seq % 1000, CONCAT('row ', seq), ` +
          `TIMESTAMP('2024-01-01') + INTERVAL seq SECOND, seq / 100, seq % 2 = 0 ` +
          `FROM seq_${from}_to_${to}`,
        { database: db.database },
      );
    }
    await db.sql("UPDATE cdc_bench SET n = n + 1000000 WHERE id % 10 = 0", {
      database: db.database,
    });
    await db.sql("DELETE FROM cdc_bench WHERE id % 100 = 1", { database: db.database });
    const backlogSeconds = (performance.now() - started) / 1000;
    const floorStart = performance.now();
    const floor = await new Deno.Command("mariadb-binlog", {
      args: [
        "--read-from-remote-server",
        "--verbose",
        `--host=127.0.0.1`,
        `--port=${db.port}`,
        `--user=${db.user}`,
        `--start-position=${status[1]}`,
        "--to-last-log",
        "--result-file=/dev/null",
        status[0]!,
      ],
      env: { MYSQL_PWD: db.password },
      stdout: "null",
      stderr: "piped",
    }).output();
    const floorSeconds = floor.code === 0 ? (performance.now() - floorStart) / 1000 : NaN;
    const rivet = await rivetRun(dir, db.url);
    if (rivet.code !== 0) throw new Error(`rivet failed: ${rivet.stderr}`);
    const { rows, parts } = await countChanges(dir);
    const expected = inserts + updates + deletes;
    if (rows !== expected) throw new Error(`rivet wrote ${rows} changes, expected ${expected}`);
    return {
      engine: "mysql",
      changes: rows,
      backlogSeconds,
      rivet,
      parts,
      floorLabel: "mariadb-binlog --read-from-remote-server --verbose (rows decoded)",
      floorSeconds,
    };
  } finally {
    await db.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      changes: { type: "string", default: "1000000" },
      engines: { type: "string", default: "postgres,mysql" },
      format: { type: "string", default: "parquet" },
      json: { type: "boolean", default: false },
    },
  });
  const changes = Number(values.changes);
  const rows: CdcBenchRow[] = [];
  for (const engine of values.engines!.split(",")) {
    console.error(`bench:cdc ${engine}: ${changes} changes…`);
    rows.push(
      engine === "postgres"
        ? await benchPostgres(changes, values.format!)
        : await benchMysql(changes, values.format!),
    );
  }
  if (values.json) console.log(JSON.stringify(rows, null, 2));
  else {
    console.log(
      "| engine | changes | parts | rivet s | changes/s | peak RSS MiB | floor | floor s | floor changes/s |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|");
    for (const r of rows) {
      const perSecond = Math.round(r.changes / r.rivet.wallSeconds);
      const floorRate = Number.isFinite(r.floorSeconds)
        ? Math.round(r.changes / r.floorSeconds)
        : NaN;
      console.log(
        `| ${r.engine} | ${r.changes} | ${r.parts} | ${r.rivet.wallSeconds.toFixed(1)} | ` +
          `${perSecond} | ${r.rivet.peakRssMb.toFixed(0)} | ${r.floorLabel} | ` +
          `${r.floorSeconds.toFixed(1)} | ${floorRate} |`,
      );
    }
  }
}
