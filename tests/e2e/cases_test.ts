/**
 * End to end, one table of cases run on every engine (`_engines.ts`): `rivet run` against a real
 * server, the output checked on disk. Type round trips, which differ per engine, live in
 * `run_postgres_test.ts` and `run_mysql_test.ts`.
 */
import assert from "node:assert/strict";
import { createXXHash3 } from "hash-wasm";
import { runCli, spawnCli } from "../_helpers/cli.ts";
import { BULK_ROWS, type Engine, engines, type EngineServer } from "./_engines.ts";
import { SqliteStateStore, stateDbPath } from "../../src/state/mod.ts";

const cliPath = new URL("../../cli.ts", import.meta.url).pathname;

/** What a case gets. */
interface CaseContext {
  readonly db: EngineServer;
  /** A fresh folder for this case: the config and the outputs live here. */
  readonly dir: string;
  /** Writes `plan.yaml` in `dir` with the given exports under a `source` using `url_env: DB_URL`. */
  config(exports: string, source?: string): Promise<string>;
}

interface Case {
  readonly name: string;
  run(ctx: CaseContext): Promise<void>;
}

async function listFiles(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir)).catch(() => [])).map((e) => e.name).sort();
}

async function xxh3Hex(bytes: Uint8Array): Promise<string> {
  const h = await createXXHash3();
  h.init();
  h.update(bytes);
  return h.digest("hex");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns true or `ms` pass. */
async function waitFor(probe: () => Promise<boolean>, ms = 20_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await probe()) return true;
    await sleep(50);
  }
  return false;
}

/** `CREATE TABLE name AS SELECT …` in the engine's dialect (SQL Server: `SELECT … INTO`). */
function createAs(db: EngineServer, name: string, selectList: string): string {
  if (db.type === "mssql") {
    const from = selectList.indexOf(" FROM ");
    return `SELECT ${selectList.slice(0, from)} INTO ${name}${selectList.slice(from)}`;
  }
  return `CREATE TABLE ${name} AS SELECT ${selectList}`;
}

function csvExport(name: string, query: string, dir: string, extra = ""): string {
  return `  - name: ${name}
    query: ${JSON.stringify(query)}
    format: csv
${extra}    destination: { type: local, path: ${dir}/out/${name} }
`;
}

const cases: Case[] = [
  {
    name: "max_file_size splits into numbered parts whose union is the table, with a manifest",
    async run({ dir, config }) {
      const cfg = await config(`  - name: bulk
    table: bulk
    format: csv
    max_file_size: 2MB
    destination: { type: local, path: ${dir}/out }
`);
      const res = await runCli(["run", "-c", cfg, "--json", "--summary-output", `${dir}/sum.json`]);
      assert.equal(res.code, 0, res.stderr);
      const summary = JSON.parse(res.stdout);
      assert.equal(summary.total_rows, BULK_ROWS);
      assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/sum.json`)), summary);
      const parts = (await listFiles(`${dir}/out`)).filter((f) => f.endsWith(".csv"));
      assert.ok(parts.length >= 3, `expected several parts, got ${parts}`);
      parts.forEach((p) => assert.match(p, /^bulk_\d{8}_\d{6}_part\d+\.csv$/));
      const ids = new Set<string>();
      for (const p of parts) {
        const lines = (await Deno.readTextFile(`${dir}/out/${p}`)).trimEnd().split("\n");
        assert.equal(lines[0], "id,n,s,at");
        for (const line of lines.slice(1)) ids.add(line.split(",")[0]!);
      }
      assert.equal(ids.size, BULK_ROWS);
      const manifestBytes = await Deno.readFile(`${dir}/out/manifest.json`);
      const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
      assert.equal(manifest.manifest_version, 1);
      assert.equal(manifest.status, "success");
      assert.equal(manifest.row_count, BULK_ROWS);
      assert.equal(manifest.part_count, parts.length);
      for (const part of manifest.parts) {
        const bytes = await Deno.readFile(`${dir}/out/${part.path}`);
        assert.equal(part.size_bytes, bytes.length);
        assert.equal(part.content_fingerprint, `xxh3:${await xxh3Hex(bytes)}`);
      }
      const success = await Deno.readTextFile(`${dir}/out/_SUCCESS`);
      assert.equal(success, `xxh3:${await xxh3Hex(manifestBytes)}\n`);
    },
  },
  {
    name: "CSV renders the first rows exactly",
    async run({ dir, config }) {
      const cfg = await config(
        csvExport("head", "SELECT id, n, s, at FROM bulk WHERE id <= 2 ORDER BY id", dir),
      );
      const res = await runCli(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      const data = (await listFiles(`${dir}/out/head`)).filter((f) => f.endsWith(".csv"));
      assert.equal(
        await Deno.readTextFile(`${dir}/out/head/${data[0]}`),
        "id,n,s,at\n" +
          "1,919,c4ca4238a0b923820dcc509a6f75849b,2024-01-01T00:00:01.000000\n" +
          "2,838,c81e728d9d4c2f636f067f89cc14862c,2024-01-01T00:00:02.000000\n",
      );
    },
  },
  {
    name: "an empty result writes no data file; skip_empty marks it skipped",
    async run({ dir, config }) {
      const cfg = await config(`  - name: empty_ok
    table: empty_t
    format: parquet
    destination: { type: local, path: ${dir}/a }
  - name: empty_skip
    table: empty_t
    format: parquet
    skip_empty: true
    destination: { type: local, path: ${dir}/b }
`);
      const res = await runCli(["run", "-c", cfg, "--json"]);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(await listFiles(`${dir}/a`), ["_SUCCESS", "manifest.json"]);
      assert.deepEqual(await listFiles(`${dir}/b`), ["manifest.json"]);
      const summary = JSON.parse(res.stdout);
      assert.deepEqual(summary.per_export.map((e: { status: string }) => e.status), [
        "success",
        "skipped",
      ]);
    },
  },
  {
    name: "stdout destination streams CSV to stdout and writes no manifest",
    async run({ db, dir, config }) {
      const cfg = await config(`  - name: to_stdout
    query: SELECT id, n FROM bulk WHERE id <= 3 ORDER BY id
    format: csv
    destination: { type: stdout }
`);
      const res = await spawnCli(["run", "-c", cfg], { env: { DB_URL: db.url }, cwd: dir });
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout, "id,n\n1,919\n2,838\n3,757\n");
      assert.deepEqual((await listFiles(dir)).filter((f) => !f.startsWith(".")), ["plan.yaml"]);
    },
  },
  {
    name: "a wrong password fails with exit 1 and the password appears in no output",
    async run({ db, dir, config }) {
      const marker = "S3CR3T_M4RK3R";
      const cfg = await config(csvExport("secret_run", "SELECT id FROM bulk", dir));
      for (const extra of [[], ["--json-errors"], ["--json"]]) {
        const res = await spawnCli(["run", "-c", cfg, ...extra], {
          env: { DB_URL: db.wrongPasswordUrl(marker) },
        });
        assert.equal(res.code, 1, res.stderr);
        assert.match(res.stderr, /authentication|password|access denied/i);
        for (const text of [res.stdout, res.stderr]) {
          assert.ok(!text.includes(marker), `marker leaked: ${text}`);
        }
      }
      for (const run of await listFiles(`${dir}/.rivet/runs`)) {
        for (const f of await listFiles(`${dir}/.rivet/runs/${run}`)) {
          const text = await Deno.readTextFile(`${dir}/.rivet/runs/${run}/${f}`);
          assert.ok(!text.includes(marker), `marker leaked into ${f}`);
        }
      }
    },
  },
  {
    name: "structured source with password_env, query_file with a param, columns: overrides",
    async run({ db, dir, config }) {
      await Deno.mkdir(`${dir}/sql`);
      await Deno.writeTextFile(
        `${dir}/sql/totals.sql`,
        "SELECT n, sum(id) AS total, avg(id) AS mean FROM bulk WHERE n < ${max_n} GROUP BY n ORDER BY n",
      );
      const login = db.passwordLogin;
      const cfg = await config(
        `  - name: totals
    query_file: sql/totals.sql
    format: csv
    columns:
      total: "decimal(20,0)"
      mean: "decimal(12,3)"
    destination: { type: local, path: ${dir}/out }
`,
        `  type: ${db.type}
  host: ${login.host}
  port: ${login.port}
  user: ${login.user}
  password_env: RIVET_TEST_PW
  database: ${login.database}
`,
      );
      const res = await spawnCli(["run", "-c", cfg, "-p", "max_n=3"], {
        env: { RIVET_TEST_PW: login.password },
      });
      assert.equal(res.code, 0, res.stderr);
      const data = (await listFiles(`${dir}/out`)).filter((f) => f.endsWith(".csv"));
      const expected = await db.sql(
        db.type === "postgres"
          ? "SELECT n || ',' || sum(id) || ',' || round(avg(id), 3) FROM bulk WHERE n < 3 GROUP BY n ORDER BY n"
          : "SELECT CONCAT(n, ',', sum(id), ',', ROUND(AVG(id), 3)) FROM bulk WHERE n < 3 GROUP BY n ORDER BY n",
      );
      assert.equal(await Deno.readTextFile(`${dir}/out/${data[0]}`), "n,total,mean\n" + expected);
      assert.ok(!res.stderr.includes(login.password));
    },
  },
  {
    name: "an aggregate without a usable precision is refused, naming the column and the fix",
    async run({ db, dir, config }) {
      const cfg = await config(`  - name: sums
    query: SELECT sum(id) AS total FROM bulk
    format: parquet
    destination: { type: local, path: ${dir}/out }
`);
      const res = await runCli(["run", "-c", cfg]);
      if (db.type === "mssql") {
        // SQL Server types SUM(bigint) as bigint: nothing to refuse.
        assert.equal(res.code, 0, res.stderr);
        return;
      }
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /total/);
      assert.match(res.stderr, /columns:/);
      assert.deepEqual(await listFiles(`${dir}/out`), []);
    },
  },
  {
    name: "a syntax error is permanent: exit 1 at once with the server's text, no retry",
    async run({ db, dir }) {
      const cfg = `${dir}/plan.yaml`;
      await Deno.writeTextFile(
        cfg,
        `source:
  type: ${db.type}
  url_env: DB_URL
  tuning: { max_retries: 5, retry_backoff_ms: 5000 }
exports:
${csvExport("syntax", "SELCT 1", dir)}`,
      );
      const started = Date.now();
      const res = await spawnCli(["run", "-c", cfg], { env: { DB_URL: db.url } });
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, db.syntaxErrorText);
      assert.ok(!/retry \d/i.test(res.stderr), res.stderr);
      assert.ok(Date.now() - started < 15_000);
      assert.deepEqual(await listFiles(`${dir}/out/syntax`), []);
    },
  },
  {
    name: "a missing table is permanent and named",
    async run({ db, dir, config }) {
      const cfg = await config(csvExport("missing", "SELECT * FROM nope", dir));
      const res = await spawnCli(["run", "-c", cfg], { env: { DB_URL: db.url } });
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /nope/);
      assert.ok(!/retry \d/i.test(res.stderr));
    },
  },
  {
    name: "a missing privilege fails that export only; the allowed one completes",
    async run({ db, dir, config }) {
      const cfg = await config(
        csvExport("allowed", "SELECT * FROM open_t ORDER BY id", dir) +
          csvExport("denied", "SELECT * FROM secret_t", dir),
      );
      const res = await spawnCli(["run", "-c", cfg], { env: { DB_URL: db.limitedUrl } });
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /denied/);
      assert.match(res.stderr, db.permissionText);
      assert.ok(!/retry \d/i.test(res.stderr));
      assert.deepEqual(
        (await listFiles(`${dir}/out/allowed`)).map((f) => f.replace(/_\d{8}_\d{6}/, "")),
        ["_SUCCESS", "allowed.csv", "manifest.json"],
      );
      assert.deepEqual(await listFiles(`${dir}/out/denied`), []);
    },
  },
  {
    name: "escape sequences in server messages never reach the terminal",
    async run({ db, dir, config }) {
      const name = "evil\u001b[31mred\u001b]0;title\u0007";
      const quoted = db.type === "postgres"
        ? `"${name}"`
        : db.type === "mssql"
        ? `[${name.replaceAll("]", "]]")}]`
        : `\`${name}\``;
      const cfg = await config(csvExport("inject", `SELECT * FROM ${quoted}`, dir));
      const res = await spawnCli(["run", "-c", cfg], { env: { DB_URL: db.url } });
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /evil/);
      assert.ok(!res.stderr.includes("\u001b"), JSON.stringify(res.stderr));
      assert.ok(!res.stderr.includes("\u0007"));
    },
  },
  {
    name: "a connection killed mid-stream is retried and the export completes exactly once",
    async run({ db, dir }) {
      const marker = "rivet_kill_me";
      const cfg = `${dir}/plan.yaml`;
      await Deno.writeTextFile(
        cfg,
        `source:
  type: ${db.type}
  url_env: DB_URL
  tuning: { batch_size: 1000, throttle_ms: 20, max_retries: 2, retry_backoff_ms: 100 }
exports:
${csvExport("many", `SELECT id, s, at FROM bulk /* ${marker} */ ORDER BY id`, dir)}`,
      );
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", cliPath, "run", "-c", cfg],
        env: { DB_URL: db.url },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const killed = await waitFor(() => db.killRead(marker));
      const res = await child.output();
      const stderr = new TextDecoder().decode(res.stderr);
      assert.ok(killed, "the reading session was found and killed");
      assert.equal(res.code, 0, stderr);
      assert.match(stderr, /retry 1\/2/);
      const data = (await listFiles(`${dir}/out/many`)).filter((f) => f.endsWith(".csv"));
      assert.equal(data.length, 1);
      const lines = (await Deno.readTextFile(`${dir}/out/many/${data[0]}`)).trimEnd().split("\n");
      // The whole table (~7 MB) is more than socket buffers hold, so the server is still sending
      // when the session is killed, whatever the engine's streaming model.
      assert.equal(lines.length, BULK_ROWS + 1);
      assert.equal(new Set(lines.slice(1)).size, BULK_ROWS);
    },
  },
  {
    name: "incremental: three runs give every row, then none, then exactly the new rows",
    async run({ db, dir, config }) {
      await db.sql(createAs(db, "inc_t", "id, at FROM bulk WHERE id <= 1000"));
      const cfg = await config(`  - name: inc
    query: SELECT id, at FROM inc_t
    mode: incremental
    cursor_column: at
    format: csv
    destination: { type: local, path: ${dir}/out/\${run} }
`);
      const ids = async (run: string) => {
        const files = (await listFiles(`${dir}/out/${run}`)).filter((f) => f.endsWith(".csv"));
        const lines: string[] = [];
        for (const f of files) {
          lines.push(
            ...(await Deno.readTextFile(`${dir}/out/${run}/${f}`)).trimEnd().split("\n").slice(1),
          );
        }
        return lines.map((l) => Number(l.split(",")[0]));
      };
      const cursor = async () => {
        await using state = await SqliteStateStore.open(stateDbPath(dir));
        return (await state.readCursor("inc"))?.lastCursorValue;
      };

      const first = await runCli(["run", "-c", cfg, "-p", "run=1"]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal((await ids("1")).length, 1000);
      assert.equal(await cursor(), "2024-01-01T00:16:40.000000");

      const second = await runCli(["run", "-c", cfg, "-p", "run=2", "--json"]);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(JSON.parse(second.stdout).total_rows, 0);
      assert.deepEqual(await ids("2"), [], "no data file for no new rows");
      assert.equal(await cursor(), "2024-01-01T00:16:40.000000", "no advance on 0 rows");

      await db.sql(
        "INSERT INTO inc_t (id, at) VALUES (2001, '2025-01-01 00:00:01'), (2002, '2025-01-01 00:00:02'), " +
          "(2003, '2025-01-01 00:00:03'), (2004, '2025-01-01 00:00:04'), (2005, '2025-01-01 00:00:05')",
      );
      const third = await runCli(["run", "-c", cfg, "-p", "run=3"]);
      assert.equal(third.code, 0, third.stderr);
      assert.deepEqual((await ids("3")).sort((a, b) => a - b), [2001, 2002, 2003, 2004, 2005]);
      assert.equal(await cursor(), "2025-01-01T00:00:05.000000");
      // The file log holds one row per committed file, with its row count.
      await using state = await SqliteStateStore.open(stateDbPath(dir));
      const files = await state.listFiles({ exportName: "inc", last: 10 });
      assert.deepEqual(files.map((f) => f.rowCount).sort((a, b) => a - b), [5, 1000]);
      const metrics = await state.listMetrics({ exportName: "inc", last: 10 });
      assert.deepEqual(metrics.map((m) => m.totalRows).sort((a, b) => a - b), [0, 5, 1000]);
      // Each run left a journal; the newest records its one file of 5 rows.
      const journals = await state.listJournal({ exportName: "inc", last: 10 });
      assert.equal(journals.length, 3);
      const newest = journals[0]!.journal as {
        events: { event: string; rows?: number }[];
        completed: { status: string; rows: number };
      };
      assert.deepEqual(newest.completed.status, "success");
      assert.deepEqual(newest.events.filter((e) => e.event === "file_written").map((e) => e.rows), [
        5,
      ]);
      // Inspection commands take no --param: the config's ${run} comes from the environment.
      Deno.env.set("run", "x");
      const journal = await runCli(["journal", "-c", cfg, "-e", "inc"]);
      Deno.env.delete("run");
      assert.equal(journal.code, 0, journal.stderr);
      assert.match(journal.stdout, /^✓ inc_\S+ {2}success .* files=1 rows=5 /);
    },
  },
  {
    name: "time_window exports exactly the rows since midnight days_window days ago (UTC)",
    async run({ db, dir, config }) {
      const day = (offset: number) => {
        const d = new Date(Date.now() + offset * 86_400_000);
        return d.toISOString().slice(0, 10);
      };
      // 7 days ago at 00:00 is inside the window, the second before it is not.
      await db.sql(
        `CREATE TABLE tw_t (id int, at ${
          db.type === "postgres"
            ? "timestamp"
            : db.type === "mssql"
            ? "datetime2(6)"
            : "datetime(6)"
        })`,
      );
      await db.sql(
        `INSERT INTO tw_t VALUES (1, '${day(-10)} 12:00:00'), (2, '${day(-8)} 23:59:59'), ` +
          `(3, '${day(-7)} 00:00:00'), (4, '${day(-3)} 08:00:00'), (5, '${day(0)} 00:00:01')`,
      );
      const cfg = await config(`  - name: tw
    query: SELECT id, at FROM tw_t
    mode: time_window
    time_column: at
    days_window: 7
    format: csv
    destination: { type: local, path: ${dir}/out }
`);
      const res = await runCli(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      const data = (await listFiles(`${dir}/out`)).filter((f) => f.endsWith(".csv"));
      const ids = (await Deno.readTextFile(`${dir}/out/${data[0]}`)).trimEnd().split("\n").slice(1)
        .map((l) => Number(l.split(",")[0])).sort();
      assert.deepEqual(ids, [3, 4, 5]);
    },
  },
  {
    name: "schema drift with on_schema_drift: fail exits 4 before writing; warn accepts it",
    async run({ db, dir, config }) {
      await db.sql("CREATE TABLE drift_t (id int, v int)");
      await db.sql("INSERT INTO drift_t VALUES (1, 10), (2, 20), (3, 30)");
      const cfg = await config(`  - name: drift
    query: SELECT * FROM drift_t
    mode: incremental
    cursor_column: id
    on_schema_drift: \${policy}
    format: csv
    destination: { type: local, path: ${dir}/out/\${run} }
`);
      const cursor = async () => {
        await using state = await SqliteStateStore.open(stateDbPath(dir));
        return (await state.readCursor("drift"))?.lastCursorValue;
      };
      const first = await runCli(["run", "-c", cfg, "-p", "policy=fail", "-p", "run=1"]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(await cursor(), "3");

      await db.sql("ALTER TABLE drift_t ADD COLUMN extra int");
      await db.sql("INSERT INTO drift_t VALUES (4, 40, 400)");
      for (const run of ["2", "3"]) {
        const res = await runCli(["run", "-c", cfg, "-p", "policy=fail", "-p", `run=${run}`]);
        assert.equal(res.code, 4, res.stderr);
        assert.match(res.stderr, /extra/);
        assert.deepEqual(await listFiles(`${dir}/out/${run}`), [], "nothing written");
        assert.equal(await cursor(), "3", "cursor not advanced");
      }

      const accepted = await runCli(["run", "-c", cfg, "-p", "policy=warn", "-p", "run=4"]);
      assert.equal(accepted.code, 0, accepted.stderr);
      assert.match(accepted.stderr, /Warning: .*schema changed.*extra/);
      const data = (await listFiles(`${dir}/out/4`)).filter((f) => f.endsWith(".csv"));
      assert.equal(await Deno.readTextFile(`${dir}/out/4/${data[0]}`), "id,v,extra\n4,40,400\n");
      assert.equal(await cursor(), "4");
      // The new baseline holds: the same columns again are no drift, even under fail.
      const again = await runCli(["run", "-c", cfg, "-p", "policy=fail", "-p", "run=5"]);
      assert.equal(again.code, 0, again.stderr);
    },
  },
  {
    name:
      "single-export crash points: after each crash, a re-run loses no row and state never runs ahead",
    async run({ db, dir }) {
      await db.sql(createAs(db, "crash_t", "id, n FROM bulk WHERE id <= 500"));
      const cfg = `${dir}/plan.yaml`;
      const outOf = (point: string, run: number) => `${dir}/out/${point}/${run}`;
      await Deno.writeTextFile(
        cfg,
        `source:
  type: ${db.type}
  url_env: DB_URL
exports:
  - name: crash
    query: SELECT id, n FROM crash_t
    mode: incremental
    cursor_column: id
    format: csv
    destination: { type: local, path: ${dir}/out/\${point}/\${run} }
`,
      );
      const run = (point: string, n: number, crash?: string) =>
        spawnCli(["run", "-c", cfg, "-p", `point=${point}`, "-p", `run=${n}`], {
          env: { DB_URL: db.url, ...(crash ? { RIVET_TEST_CRASH_AT: crash } : {}) },
        });
      const idsIn = async (path: string) => {
        const out: number[] = [];
        for (const f of (await listFiles(path)).filter((f) => f.endsWith(".csv"))) {
          const lines = (await Deno.readTextFile(`${path}/${f}`)).trimEnd().split("\n").slice(1);
          out.push(...lines.map((l) => Number(l.split(",")[0])));
        }
        return out;
      };
      const state = async () => {
        await using s = await SqliteStateStore.open(stateDbPath(dir));
        return {
          cursor: (await s.readCursor("crash"))?.lastCursorValue,
          files: (await s.listFiles({ exportName: "crash", last: 100 })).length,
        };
      };
      const reset = async () => {
        await using s = await SqliteStateStore.open(stateDbPath(dir));
        await s.resetExport("crash");
      };
      const all = Array.from({ length: 500 }, (_, i) => i + 1);

      // after_source_read: crash after the read, before anything is finalized.
      await reset();
      const filesBefore = (await state()).files;
      assert.equal((await run("b1", 1, "after_source_read")).code, 86);
      // A kill may leave the dot-prefixed staging file, never a data file.
      assert.deepEqual(
        (await listFiles(outOf("b1", 1))).filter((f) => !f.startsWith(".")),
        [],
        "no data file",
      );
      assert.deepEqual(await state(), { cursor: undefined, files: filesBefore });
      assert.equal((await run("b1", 2)).code, 0);
      assert.deepEqual((await idsIn(outOf("b1", 2))).sort((a, b) => a - b), all);

      // after_file_write: crash after the file is committed, before the file log.
      await reset();
      const b2Before = (await state()).files;
      assert.equal((await run("b2", 1, "after_file_write")).code, 86);
      assert.equal((await idsIn(outOf("b2", 1))).length, 500, "the committed file is whole");
      assert.deepEqual(await state(), { cursor: undefined, files: b2Before });
      assert.equal((await run("b2", 2)).code, 0);
      assert.equal((await idsIn(outOf("b2", 2))).length, 500, "re-exported: at least once");
      assert.deepEqual(await state(), { cursor: "500", files: b2Before + 1 });

      // after_manifest_update: crash after the file log, before the cursor.
      await reset();
      const b3Before = (await state()).files;
      assert.equal((await run("b3a", 1, "after_manifest_update")).code, 86);
      assert.deepEqual(await state(), { cursor: undefined, files: b3Before + 1 });
      assert.equal((await run("b3a", 2)).code, 0);
      assert.equal(
        new Set([...await idsIn(outOf("b3a", 1)), ...await idsIn(outOf("b3a", 2))]).size,
        500,
      );

      // after_cursor_commit: crash right after the cursor commit: the next run adds nothing.
      await reset();
      assert.equal((await run("b3b", 1, "after_cursor_commit")).code, 86);
      assert.equal((await state()).cursor, "500");
      assert.equal((await run("b3b", 2)).code, 0);
      assert.deepEqual(await idsIn(outOf("b3b", 2)), [], "no duplicate file");
    },
  },
  {
    name: "a corrupt state file fails the run cleanly, untouched, before anything is written",
    async run({ dir, config }) {
      const cfg = await config(csvExport("guarded", "SELECT id FROM bulk WHERE id <= 3", dir));
      const bytes = crypto.getRandomValues(new Uint8Array(4096));
      await Deno.writeFile(stateDbPath(dir), bytes);
      const res = await runCli(["run", "-c", cfg]);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /\.rivet_state\.db/);
      assert.deepEqual(await Deno.readFile(stateDbPath(dir)), bytes, "the file is unchanged");
      assert.deepEqual(await listFiles(`${dir}/out/guarded`), [], "nothing exported");
    },
  },
  {
    name: "max_batch_memory_mb: fail stops the export, auto_shrink halves the batches and finishes",
    async run({ dir, config }) {
      const exp = (policy: string) =>
        csvExport(
          policy,
          "SELECT id, s FROM bulk",
          dir,
          `    tuning: { batch_size: 100000, max_batch_memory_mb: 1, on_batch_memory_exceeded: ${policy} }\n`,
        );
      const cfg = await config(exp("fail") + exp("auto_shrink"));
      const failed = await runCli(["run", "-c", cfg, "-e", "fail"]);
      assert.equal(failed.code, 1, failed.stderr);
      assert.match(failed.stderr, /above max_batch_memory_mb \(1\)/);
      assert.match(failed.stderr, /batch_size to about \d+/);
      assert.deepEqual(await listFiles(`${dir}/out/fail`), [], "nothing written");
      const shrunk = await runCli(["run", "-c", cfg, "-e", "auto_shrink"]);
      assert.equal(shrunk.code, 0, shrunk.stderr);
      assert.match(shrunk.stderr, /next batches hold at most \d+ rows/);
      const data = (await listFiles(`${dir}/out/auto_shrink`)).filter((f) => f.endsWith(".csv"));
      const lines = (await Deno.readTextFile(`${dir}/out/auto_shrink/${data[0]}`)).trimEnd()
        .split("\n");
      assert.equal(lines.length, BULK_ROWS + 1, "every row exported");
    },
  },
  {
    name: "SIGINT cancels the running query, writes nothing and exits 130",
    async run({ db, dir }) {
      const marker = "rivet_sigint";
      const cfg = `${dir}/plan.yaml`;
      await Deno.writeTextFile(
        cfg,
        `source:
  type: ${db.type}
  url_env: DB_URL
exports:
  - name: slow
    query: ${JSON.stringify(`${db.sleepQuery} /* ${marker} */`)}
    format: parquet
    destination: { type: local, path: ${dir}/out }
`,
      );
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", cliPath, "run", "-c", cfg],
        env: { DB_URL: db.url },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      assert.ok(await waitFor(async () => (await db.activeReads(marker)) > 0), "query running");
      const started = Date.now();
      child.kill("SIGINT");
      const res = await child.output();
      const stderr = new TextDecoder().decode(res.stderr);
      assert.equal(res.code, 130, stderr);
      assert.ok(Date.now() - started < 10_000, "the interrupt is prompt");
      assert.match(stderr, /interrupted/i);
      assert.deepEqual(await listFiles(`${dir}/out`), [], "no committed or staging file");
      assert.ok(
        await waitFor(async () => (await db.activeReads(marker)) === 0, 5000),
        "the server stopped running the statement",
      );
    },
  },
];

function suite(engine: Engine) {
  Deno.test({
    name: `${engine.name}: rivet run end-to-end cases`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn(t) {
      await using db = await engine.start();
      const root = await Deno.makeTempDir({ prefix: `rivet_${engine.name}_` });
      Deno.env.set("DB_URL", db.url);
      let n = 0;
      for (const c of cases) {
        const dir = `${root}/case${n++}`;
        await Deno.mkdir(dir);
        const config = async (exports: string, source?: string) => {
          const path = `${dir}/plan.yaml`;
          await Deno.writeTextFile(
            path,
            `source:\n${source ?? `  type: ${db.type}\n  url_env: DB_URL\n`}exports:\n${exports}`,
          );
          return path;
        };
        await t.step(c.name, () => c.run({ db, dir, config }));
      }
      Deno.env.delete("DB_URL");
      await Deno.remove(root, { recursive: true });
    },
  });
}

for (const engine of engines) suite(engine);
