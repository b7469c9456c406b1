/**
 * End to end, chunked mode on every engine (`_engines.ts`): each chunk strategy, the catalog
 * auto-resolution and guards, checkpoints and `--resume` (parallel checkpointed chunks, a crash
 * after a chunk's file or its completion, the resume gates, a crash at every crash point of
 * docs/run-guarantees.md), `partition_by`, and the duplicate guard. Outputs are read back
 * from disk (CSV text, Parquet through hyparquet) and compared with the source.
 */
import assert from "node:assert/strict";
import { runCli, spawnCli } from "../_helpers/cli.ts";
import { readParquet } from "../_helpers/parquet_oracle.ts";
import { type Engine, engines, type EngineServer } from "./_engines.ts";
import { SqliteStateStore, stateDbPath } from "../../src/state/mod.ts";
import { pressureSql } from "../../src/plan/catalog.ts";

/** Rows of the chunk fixture `ck`: ids 1..N except a gap, so windows are uneven. */
const CK_ROWS = 2_000;
const CK_IDS = Array.from({ length: CK_ROWS + 100 }, (_, i) => i + 1).filter((id) =>
  id <= 500 || id > 600
);

interface Ctx {
  readonly db: EngineServer;
  readonly dir: string;
  /** Writes `plan.yaml` with these exports; the source reads `DB_URL`. */
  config(exports: string): Promise<string>;
  /** Runs rivet in a child process with `DB_URL` set (and optional crash hooks). */
  rivet(args: string[], env?: Record<string, string>): ReturnType<typeof spawnCli>;
}

interface Case {
  readonly name: string;
  readonly only?: "postgres" | "mariadb";
  run(ctx: Ctx): Promise<void>;
}

async function walk(dir: string, base = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const rel = base ? `${base}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await walk(`${dir}/${e.name}`, rel));
    else out.push(rel);
  }
  return out.sort();
}

async function files(dir: string): Promise<string[]> {
  try {
    return await walk(dir);
  } catch {
    return [];
  }
}

/** Ids (first column) of every CSV data file directly in `dir`, quarantine excluded. */
async function csvIds(dir: string): Promise<number[]> {
  const ids: number[] = [];
  for (const f of await files(dir)) {
    if (!f.endsWith(".csv") || f.includes("/") || f.startsWith(".")) continue;
    const lines = (await Deno.readTextFile(`${dir}/${f}`)).trimEnd().split("\n").slice(1);
    ids.push(...lines.filter(Boolean).map((l) => Number(l.split(",")[0])));
  }
  return ids.sort((a, b) => a - b);
}

async function manifestOf(dir: string) {
  return JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`)) as {
    status: string;
    run_id: string;
    row_count: number;
    part_count: number;
    parts: { path: string; rows: number; size_bytes: number }[];
  };
}

function chunked(name: string, dir: string, extra: string, format = "csv"): string {
  return `  - name: ${name}
    mode: chunked
${extra}    format: ${format}
    destination: { type: local, path: ${dir}/out/${name} }
`;
}

const CHUNK_FILE = /^(\w+)_\d{8}_\d{6}_chunk(\d+)_[0-9a-f]{16}\.(csv|parquet)$/;

const cases: Case[] = [
  {
    name: "every window strategy exports each row exactly once, one file per non-empty chunk",
    async run({ dir, config, rivet }) {
      const cfg = await config(
        chunked("by_range", dir, "    table: ck\n    chunk_column: id\n    chunk_size: 500\n") +
          chunked(
            "by_count",
            dir,
            "    query: SELECT * FROM ck\n    chunk_column: id\n    chunk_count: 3\n",
          ) +
          chunked(
            "by_dense",
            dir,
            "    query: SELECT id, v FROM ck\n    chunk_column: id\n    chunk_dense: true\n    chunk_size: 700\n",
          ) +
          chunked(
            "by_days",
            dir,
            "    query: SELECT id, d FROM ck\n    chunk_column: d\n    chunk_by_days: 30\n",
          ) +
          chunked("by_key", dir, "    table: ck\n    chunk_by_key: id\n    chunk_size: 900\n"),
      );
      const res = await rivet(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      for (const name of ["by_range", "by_count", "by_dense", "by_days", "by_key"]) {
        const out = `${dir}/out/${name}`;
        assert.deepEqual(await csvIds(out), CK_IDS, `${name}: rows exactly once`);
        const data = (await files(out)).filter((f) => f.endsWith(".csv"));
        const manifest = await manifestOf(out);
        assert.equal(manifest.status, "success", name);
        assert.equal(manifest.row_count, CK_ROWS, name);
        assert.deepEqual(manifest.parts.map((p) => p.path).sort(), data, name);
        assert.ok((await files(out)).includes("_SUCCESS"), name);
        if (name === "by_key") {
          assert.deepEqual(data.map((f) => f.replace(/^.*_keyset/, "")), [
            "0.csv",
            "1.csv",
            "2.csv",
          ]);
        } else {
          for (const f of data) assert.match(f, CHUNK_FILE, `${name}: ${f}`);
        }
      }
      // 1..2100 in windows of 500: the window 501..1000 holds only 601..1000; five windows.
      const range = (await files(`${dir}/out/by_range`)).filter((f) => f.endsWith(".csv"));
      assert.deepEqual(
        range.map((f) => Number(CHUNK_FILE.exec(f)![2])).sort(),
        [0, 1, 2, 3, 4],
      );
      assert.equal(
        (await files(`${dir}/out/by_count`)).filter((f) => f.endsWith(".csv")).length,
        3,
      );
      assert.equal(
        (await files(`${dir}/out/by_dense`)).filter((f) => f.endsWith(".csv")).length,
        3,
      );
      // The dense ordinal column is not written.
      const dense = (await files(`${dir}/out/by_dense`)).find((f) => f.endsWith(".csv"))!;
      assert.equal(
        (await Deno.readTextFile(`${dir}/out/by_dense/${dense}`)).split("\n")[0],
        "id,v",
      );
    },
  },
  {
    name:
      "table: without chunk_column chunks on the integer primary key, with a warning; Parquet reads back",
    async run({ dir, config, rivet }) {
      const cfg = await config(
        chunked("auto", dir, "    table: ck\n    chunk_size: 1000\n", "parquet"),
      );
      const res = await rivet(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, /Warning: .*chunk_column not set.*'id'/);
      const out = `${dir}/out/auto`;
      const ids: number[] = [];
      for (const f of (await files(out)).filter((f) => f.endsWith(".parquet"))) {
        assert.match(f, CHUNK_FILE);
        const { rows } = await readParquet(`${out}/${f}`);
        ids.push(...rows.map((r) => Number(r.id)));
      }
      assert.deepEqual(ids.sort((a, b) => a - b), CK_IDS);
    },
  },
  {
    name: "a small table: without chunk_column runs as one snapshot query, with a warning",
    async run({ db, dir, config, rivet }) {
      await db.sql("CREATE TABLE small_t (id int PRIMARY KEY, v int)");
      await db.sql("INSERT INTO small_t SELECT id, n FROM bulk WHERE id <= 30");
      await db.sql(
        db.type === "postgres" ? "ANALYZE small_t, ck" : db.type === "mssql"
          ? "SELECT 1" // sys.partitions counts rows without statistics
          : "ANALYZE TABLE small_t, ck",
      );
      const cfg = await config(chunked("small", dir, "    table: small_t\n    chunk_size: 1000\n"));
      const res = await rivet(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, /one snapshot query: the catalog estimates 30 rows/);
      const data = (await files(`${dir}/out/small`)).filter((f) => f.endsWith(".csv"));
      assert.equal(data.length, 1);
      assert.match(data[0]!, /^small_\d{8}_\d{6}\.csv$/);
      assert.equal((await csvIds(`${dir}/out/small`)).length, 30);
      // chunk_size_memory_mb sizes chunks from the catalog's row width (at least 10,000 rows), so
      // ck's 2,000 rows fit in one and the export runs as one query too.
      const sized = await config(
        chunked("sized", dir, "    table: ck\n    chunk_column: id\n    chunk_size_memory_mb: 1\n"),
      );
      const bySize = await rivet(["run", "-c", sized]);
      assert.equal(bySize.code, 0, bySize.stderr);
      const size = Number(/within one chunk of (\d+)/.exec(bySize.stderr)?.[1]);
      assert.ok(size >= 10_000 && size <= 5_000_000, bySize.stderr);
      assert.equal((await csvIds(`${dir}/out/sized`)).length, CK_ROWS);
    },
  },
  {
    name: "NULLs in the chunk column stop the export before anything is written",
    async run({ db, dir, config, rivet }) {
      await db.sql("CREATE TABLE ck_nulls (id int, v int)");
      await db.sql("INSERT INTO ck_nulls VALUES (1, 1), (NULL, 2), (3, 3)");
      const cfg = await config(
        chunked(
          "nulls",
          dir,
          "    query: SELECT * FROM ck_nulls\n    chunk_column: id\n    chunk_size: 1\n",
        ),
      );
      const res = await rivet(["run", "-c", cfg]);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /chunk_column 'id' has 1 NULL values/);
      assert.match(res.stderr, /chunk_dense/);
      assert.deepEqual(await files(`${dir}/out/nulls`), []);
    },
  },
  {
    name: "checkpointed chunks with parallel 4 complete every task once; state chunks shows them",
    async run({ dir, config, rivet }) {
      const cfg = await config(
        chunked(
          "ckp",
          dir,
          "    table: ck\n    chunk_column: id\n    chunk_size: 250\n    parallel: 4\n    chunk_checkpoint: true\n",
        ),
      );
      const res = await rivet(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      const out = `${dir}/out/ckp`;
      assert.deepEqual(await csvIds(out), CK_IDS);
      const data = (await files(out)).filter((f) => f.endsWith(".csv"));
      // Windows 1..2100 by 250 = 9, of which 501..750 is half empty and none is fully empty.
      assert.deepEqual(data.map((f) => Number(CHUNK_FILE.exec(f)![2])).sort((a, b) => a - b), [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
      ]);
      await using state = await SqliteStateStore.open(stateDbPath(dir));
      const run = await state.latestChunkRun("ckp");
      assert.equal(run?.status, "completed");
      const tasks = await state.listChunkTasks(run!.runId);
      assert.equal(tasks.length, 9);
      assert.ok(tasks.every((t) => t.status === "completed" && t.attempts === 1));
      assert.equal(tasks.reduce((s, t) => s + (t.rowsWritten ?? 0), 0), CK_ROWS);
      const shown = await runCli(["state", "chunks", "-c", cfg, "-e", "ckp"]);
      assert.equal(shown.code, 0, shown.stderr);
      assert.match(shown.stdout, /completed/);
    },
  },
  {
    name: "a crash after a chunk's file or its completion resumes without losing or doubling rows",
    async run({ dir, config, rivet }) {
      const body = (name: string) =>
        chunked(
          name,
          dir,
          "    table: ck\n    chunk_column: id\n    chunk_size: 500\n    chunk_checkpoint: true\n",
        );
      const cfg = await config(body("b4") + body("b5"));
      // Export b4: chunk 0 completed, then the process dies.
      const b4 = await rivet(["run", "-c", cfg, "-e", "b4"], {
        RIVET_TEST_CRASH_AT: "after_chunk_complete:0",
      });
      assert.equal(b4.code, 86, b4.stderr);
      assert.equal((await files(`${dir}/out/b4`)).filter((f) => f.endsWith(".csv")).length, 1);
      const fresh = await rivet(["run", "-c", cfg, "-e", "b4"]);
      assert.equal(fresh.code, 1, "a fresh run is refused while one is in progress");
      assert.match(fresh.stderr, /in progress.*--resume/s);
      const b4r = await rivet(["run", "-c", cfg, "-e", "b4", "--resume"]);
      assert.equal(b4r.code, 0, b4r.stderr);
      const b4files = (await files(`${dir}/out/b4`)).filter((f) => f.endsWith(".csv"));
      assert.equal(b4files.filter((f) => CHUNK_FILE.exec(f)![2] === "0").length, 1);
      assert.deepEqual(await csvIds(`${dir}/out/b4`), CK_IDS, "physical rows = source exactly");
      assert.ok((await files(`${dir}/out/b4`)).includes("_SUCCESS"));
      const manifest = await manifestOf(`${dir}/out/b4`);
      assert.equal(manifest.row_count, CK_ROWS);
      assert.equal(manifest.parts.length, b4files.length);

      // Export b5: chunk 0's file committed and logged, task still running.
      const b5 = await rivet(["run", "-c", cfg, "-e", "b5"], {
        RIVET_TEST_CRASH_AT: "after_chunk_file:0",
      });
      assert.equal(b5.code, 86, b5.stderr);
      {
        await using state = await SqliteStateStore.open(stateDbPath(dir));
        const run = await state.latestChunkRun("b5");
        const tasks = await state.listChunkTasks(run!.runId);
        assert.equal(tasks[0]!.status, "running");
      }
      const b5r = await rivet(["run", "-c", cfg, "-e", "b5", "--resume"]);
      assert.equal(b5r.code, 0, b5r.stderr);
      // The first attempt's file of chunk 0 was moved aside: the output holds each row once.
      assert.match(b5r.stderr, /_quarantine\//);
      assert.deepEqual(await csvIds(`${dir}/out/b5`), CK_IDS, "each row exactly once");
      await using state = await SqliteStateStore.open(stateDbPath(dir));
      const run = await state.latestChunkRun("b5");
      assert.equal(run?.status, "completed");
      const tasks = await state.listChunkTasks(run!.runId);
      assert.ok(tasks.every((t) => t.status === "completed"));
    },
  },
  {
    name: "--resume needs a checkpoint, refuses a completed prefix, and --force re-verifies it",
    async run({ dir, config, rivet }) {
      const cfg = await config(
        chunked(
          "b8",
          dir,
          "    table: ck\n    chunk_column: id\n    chunk_size: 1000\n    chunk_checkpoint: true\n",
        ),
      );
      const none = await rivet(["run", "-c", cfg, "--resume"]);
      assert.equal(none.code, 1, none.stderr);
      assert.match(none.stderr, /in-progress checkpoint/);
      assert.deepEqual(await files(`${dir}/out/b8`), [], "nothing written");
      assert.equal((await rivet(["run", "-c", cfg])).code, 0);
      const before = await files(`${dir}/out/b8`);
      const done = await rivet(["run", "-c", cfg, "--resume"]);
      assert.equal(done.code, 1, done.stderr);
      assert.match(done.stderr, /_SUCCESS/);
      assert.match(done.stderr, /--force/);
      const forced = await rivet(["run", "-c", cfg, "--resume", "--force"]);
      assert.equal(forced.code, 0, forced.stderr);
      assert.deepEqual(await files(`${dir}/out/b8`), before, "nothing re-exported");
      // A part deleted behind rivet's back is rewritten by a forced resume.
      const victim = before.find((f) => f.endsWith(".csv"))!;
      await Deno.remove(`${dir}/out/b8/${victim}`);
      const repaired = await rivet(["run", "-c", cfg, "--resume", "--force"]);
      assert.equal(repaired.code, 0, repaired.stderr);
      assert.match(repaired.stderr, /missing at the destination/);
      assert.deepEqual(await csvIds(`${dir}/out/b8`), CK_IDS);
    },
  },
  {
    name: "a crash at every crash point, then --resume, always gives every row",
    async run({ dir, config, rivet }) {
      const points = [
        "after_source_read",
        "before_commit_rename",
        "after_file_write",
        "after_manifest_update",
        "after_chunk_file:1",
        "after_chunk_complete:1",
        "in_state_write",
        "before_success_marker",
      ];
      let i = 0;
      for (const point of points) {
        const name = `soak${i++}`;
        const cfg = await config(
          chunked(
            name,
            dir,
            "    table: ck\n    chunk_column: id\n    chunk_size: 600\n    chunk_checkpoint: true\n",
          ),
        );
        const crashed = await rivet(["run", "-c", cfg], { RIVET_TEST_CRASH_AT: point });
        assert.equal(crashed.code, 86, `${point}: ${crashed.stderr}`);
        const resumed = await rivet(["run", "-c", cfg, "--resume"]);
        assert.equal(resumed.code, 0, `${point}: ${resumed.stderr}`);
        // At-least-once would mean distinct ids = source and physical rows ≥ source; resume's
        // quarantine does better: each row exactly once outside _quarantine/.
        const ids = await csvIds(`${dir}/out/${name}`);
        assert.deepEqual(ids, CK_IDS, point);
        assert.ok((await files(`${dir}/out/${name}`)).includes("_SUCCESS"), point);
      }
    },
  },
  {
    name: "partition_by writes one export per month plus the NULL bucket under {partition}",
    async run({ db, dir, config, rivet }) {
      await db.sql("CREATE TABLE part_t (id int, d date)");
      await db.sql(
        "INSERT INTO part_t VALUES (1, '2024-01-05'), (2, '2024-01-31'), (3, '2024-03-01'), " +
          "(4, NULL), (5, '2024-03-31')",
      );
      const cfg = await config(`  - name: parts
    query: SELECT id, d FROM part_t
    partition_by: d
    partition_granularity: month
    format: csv
    destination: { type: local, path: "${dir}/out/{partition}" }
`);
      const res = await rivet(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      const out = `${dir}/out`;
      assert.deepEqual(await csvIds(`${out}/d=2024-01`), [1, 2]);
      assert.deepEqual(await csvIds(`${out}/d=2024-02`), []);
      assert.deepEqual(await csvIds(`${out}/d=2024-03`), [3, 5]);
      assert.deepEqual(await csvIds(`${out}/d=__HIVE_DEFAULT_PARTITION__`), [4]);
      for (const p of ["d=2024-01", "d=2024-02", "d=2024-03", "d=__HIVE_DEFAULT_PARTITION__"]) {
        assert.ok((await files(`${out}/${p}`)).includes("_SUCCESS"), p);
      }
      assert.match(res.stderr, /parts__2024-01/);
      const missing = await config(`  - name: parts
    query: SELECT id, d FROM part_t
    partition_by: d
    format: csv
    destination: { type: local, path: ${dir}/flat }
`);
      const refused = await rivet(["run", "-c", missing]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /\{partition\}/);
    },
  },
  {
    name: "adaptive: the pressure counter is readable and an adaptive chunked run completes",
    async run({ db, dir, config, rivet }) {
      const value = (await db.sql(pressureSql(db.type))).trim();
      assert.match(value, /^\d+$/, `pressure probe gave '${value}'`);
      const cfg = await config(
        chunked(
          "adaptive",
          dir,
          "    table: ck\n    chunk_column: id\n    chunk_size: 1000\n    tuning: { adaptive: true, batch_size: 100 }\n",
        ),
      );
      const res = await rivet(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(await csvIds(`${dir}/out/adaptive`), CK_IDS);
    },
  },
  {
    name: "a stdout destination refuses chunked mode before connecting",
    async run({ config, rivet }) {
      const cfg = await config(`  - name: s
    table: ck
    mode: chunked
    chunk_column: id
    format: csv
    destination: { type: stdout }
`);
      const res = await rivet(["run", "-c", cfg]);
      assert.equal(res.code, 1);
      assert.match(res.stderr, /stdout.*chunked/);
      assert.equal(res.stdout, "");
    },
  },
  {
    name: "duplicate guard: a transient failure after committed chunks is not retried and exits 3",
    only: "postgres",
    async run({ db, dir, config }) {
      const cfg = await config(`  - name: dup
    query: SELECT id, v FROM ck /* rivet_dup_marker */
    mode: chunked
    chunk_column: id
    chunk_size: 1000
    format: csv
    tuning: { max_retries: 0 }
    destination: { type: local, path: ${dir}/out/dup }
`);
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          new URL("../../cli.ts", import.meta.url).pathname,
          "run",
          "-c",
          cfg,
        ],
        env: {
          DB_URL: db.url,
          RIVET_TEST_BLOCK_AT: "after_chunk_file:0",
          RIVET_TEST_BLOCK_MS: "3000",
        },
        stdout: "null",
        stderr: "piped",
      }).spawn();
      // Once rivet waits after chunk 0 (the hook says so on stderr), its idle session dies.
      const reader = child.stderr.getReader();
      let stderr = "";
      const decoder = new TextDecoder();
      while (!stderr.includes("test hook: blocking")) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += decoder.decode(value, { stream: true });
      }
      const killed = (await db.sql(
        "SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity " +
          "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' AND state = 'idle'",
      )).trim() === "t";
      assert.ok(killed, "rivet's session was found and terminated");
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += decoder.decode(value, { stream: true });
      }
      const res = await child.status;
      assert.equal(res.code, 3, stderr);
      assert.match(stderr, /already committed/);
      assert.equal(
        (await csvIds(`${dir}/out/dup`)).length,
        900,
        "chunk 0 (ids 1..1000 but the gap) is kept",
      );
    },
  },
];

async function fixture(db: EngineServer): Promise<void> {
  const date = db.type === "postgres"
    ? "date '2024-01-01' + (id % 200)::int"
    : db.type === "mssql"
    ? "DATEADD(day, id % 200, CAST('2024-01-01' AS date))"
    : "DATE_ADD('2024-01-01', INTERVAL (id % 200) DAY)";
  await db.sql(
    `CREATE TABLE ck (id bigint PRIMARY KEY, v int, d date)`,
  );
  await db.sql(
    `INSERT INTO ck SELECT id, n, ${date} FROM bulk WHERE id <= ${
      CK_ROWS + 100
    } AND (id <= 500 OR id > 600)`,
  );
}

function suite(engine: Engine) {
  Deno.test({
    name: `${engine.name}: chunked mode end-to-end cases`,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn(t) {
      await using db = await engine.start();
      await fixture(db);
      const root = await Deno.makeTempDir({ prefix: `rivet_chunked_${engine.name}_` });
      let n = 0;
      for (const c of cases) {
        if (c.only && c.only !== engine.name) continue;
        const dir = `${root}/case${n++}`;
        await Deno.mkdir(dir);
        const config = async (exports: string) => {
          const path = `${dir}/plan.yaml`;
          await Deno.writeTextFile(
            path,
            `source:\n  type: ${db.type}\n  url_env: DB_URL\nexports:\n${exports}`,
          );
          return path;
        };
        const rivet = (args: string[], env: Record<string, string> = {}) =>
          spawnCli(args, { env: { DB_URL: db.url, ...env } });
        await t.step(c.name, () => c.run({ db, dir, config, rivet }));
      }
      await Deno.remove(root, { recursive: true });
    },
  });
}

for (const engine of engines) suite(engine);
