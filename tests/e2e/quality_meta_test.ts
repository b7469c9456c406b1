/**
 * End to end on real PostgreSQL and MariaDB: quality gates (each rule passing and failing; a
 * failure in full mode writes nothing, in incremental mode keeps the cursor, in chunked mode with
 * two workers leaves the chunks without `_SUCCESS`), meta columns read back with the independent
 * Parquet reader (types, one exported_at per run and per chunk, the row hash equal across
 * sources, engines and runs and equal to the worked example of docs/row-hash.md), and shape
 * drift warnings.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { startPostgres } from "../_helpers/pg_server.ts";
import { startMariaDb } from "../_helpers/mariadb_server.ts";
import { readParquet } from "../_helpers/parquet_oracle.ts";
import { runCli } from "../_helpers/cli.ts";
import { SqliteStateStore, stateDbPath } from "../../src/state/mod.ts";
import { xxh3Hex } from "../../src/_util/hash.ts";
import { startTdsServer } from "../_helpers/tds_server.ts";
import { closeTds, connectTds, runTds } from "../_helpers/tds/client.ts";

/** The same rows in both databases: id, name, amount, day, note (NULLs in note). */
const ROWS = [
  "(1, 'widget', 12.50, '2024-02-29', 'first')",
  "(2, 'gadget', -0.05, '1999-12-31', NULL)",
  "(3, 'ünïcødé ✓', 1000000.00, '2024-01-01', 'x')",
  "(4, 'widget', 0.00, '1970-01-01', NULL)",
];

async function files(dir: string, ext: string): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) if (e.isFile && e.name.endsWith(ext)) out.push(e.name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out.sort();
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function rowsOf(dir: string): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  for (const name of await files(dir, ".parquet")) {
    out.push(...(await readParquet(join(dir, name))).rows);
  }
  return out.sort((a, b) => Number(a.id) - Number(b.id));
}

function hashById(rows: Record<string, unknown>[]): Map<number, bigint> {
  return new Map(rows.map((r) => [Number(r.id), r._rivet_row_hash as bigint]));
}

Deno.test({
  name: "quality gates, meta columns and shape drift on PostgreSQL and MariaDB",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await using maria = await startMariaDb();
    const dir = await Deno.makeTempDir({ prefix: "rivet_quality_meta_" });
    const pgUrl = pg.url;
    await pg.psql(
      "CREATE TABLE items (id int PRIMARY KEY, name varchar(50), amount numeric(10,2), " +
        `day date, note text); INSERT INTO items VALUES ${ROWS.join(", ")};`,
    );
    await maria.sql(
      "CREATE TABLE items (id int PRIMARY KEY, name varchar(50), amount decimal(10,2), " +
        `day date, note text) DEFAULT CHARSET utf8mb4; INSERT INTO items VALUES ${
          ROWS.join(", ")
        };`,
      { database: "rivet" },
    );
    let n = 0;
    /** Writes a config with one export and runs it; the export's folder is `out/<name>`. */
    const run = async (
      name: string,
      body: string,
      options: { url?: string; type?: string; args?: string[]; cfg?: string } = {},
    ) => {
      const cfg = options.cfg ?? join(dir, `rivet_${++n}.yaml`);
      await Deno.writeTextFile(
        cfg,
        `source:\n  type: ${options.type ?? "postgres"}\n  url: ${options.url ?? pgUrl}\n` +
          `exports:\n  - name: ${name}\n${body}` +
          `    destination: { type: local, path: ${dir}/out/${name} }\n`,
      );
      const result = await runCli(["run", "-c", cfg, ...(options.args ?? [])]);
      return { ...result, out: join(dir, "out", name), cfg };
    };
    const full = (extra: string, table = "items") =>
      `    query: SELECT * FROM ${table} ORDER BY id\n    format: parquet\n${extra}`;

    try {
      await t.step("each gate passes, and fails with exit 3 writing nothing", async () => {
        const passing: [string, string][] = [
          ["min", "{row_count_min: 4}"],
          ["max", "{row_count_max: 4}"],
          ["nulls", "{null_ratio_max: {note: 0.5}}"],
          ["unique", "{unique_columns: [id], unique_max_entries: 100}"],
          // NULLs are ignored: note has two NULLs and no repeated value.
          ["unique_nulls", "{unique_columns: [note]}"],
          // The cap stops the check with a warning: name repeats, but only after 2 values.
          ["unique_capped", "{unique_columns: [name], unique_max_entries: 2}"],
        ];
        for (const [label, quality] of passing) {
          const r = await run(`ok_${label}`, full(`    quality: ${quality}\n`));
          assert.equal(r.code, 0, `${label}: ${r.stderr}`);
          assert.equal((await files(r.out, ".parquet")).length, 1, label);
          const unbounded = /unique_columns without unique_max_entries/.test(r.stderr);
          assert.equal(unbounded, label === "unique_nulls", `${label}: ${r.stderr}`);
        }
        const capped = await runCli([
          "journal",
          "-c",
          join(dir, "rivet_6.yaml"),
          "-e",
          "ok_unique_capped",
        ]);
        assert.match(
          capped.stdout,
          /quality: .*'name' reached unique_max_entries \(2\)/,
          capped.stdout,
        );
        const failing: [string, string, RegExp][] = [
          ["min", "{row_count_min: 5}", /row count 4 is below row_count_min 5/],
          ["max", "{row_count_max: 3}", /row count 4 is above row_count_max 3/],
          [
            "nulls",
            "{null_ratio_max: {note: 0.25}}",
            /2 of 4 rows are NULL .*null_ratio_max 0\.25/,
          ],
          ["unique", "{unique_columns: [name]}", /column 'name': 1 duplicate value\(s\) among 4/],
          [
            "absent",
            "{unique_columns: [nope]}",
            /unique_columns: column 'nope' is not in the output/,
          ],
          [
            "absent_nulls",
            "{null_ratio_max: {gone: 0.1}, row_count_min: 9}",
            /2 quality check\(s\) failed[\s\S]*below row_count_min 9[\s\S]*'gone' is not in the output/,
          ],
        ];
        for (const [label, quality, message] of failing) {
          const r = await run(`bad_${label}`, full(`    quality: ${quality}\n`));
          assert.equal(r.code, 3, `${label}: ${r.stderr}`);
          assert.match(r.stderr, /quality check\(s\) failed/, label);
          assert.match(r.stderr, message, label);
          assert.deepEqual(await files(r.out, ""), [], `${label}: nothing written`);
          const metrics = await runCli(["metrics", "-c", r.cfg, "-e", `bad_${label}`]);
          assert.match(metrics.stdout, /quality=FAIL/, `${label}: ${metrics.stdout}`);
          const journal = await runCli(["journal", "-c", r.cfg, "-e", `bad_${label}`]);
          assert.match(journal.stdout, /✗ .*failed[\s\S]*quality check\(s\) failed/, label);
          assert.match(journal.stdout, /^ {2}quality: /m, `${label}: ${journal.stdout}`);
        }
        const okMetrics = await runCli([
          "metrics",
          "-c",
          join(dir, "rivet_1.yaml"),
          "-e",
          "ok_min",
        ]);
        assert.match(okMetrics.stdout, /quality=pass/, okMetrics.stdout);
        // stdout cannot hold rows back: warned at the start, reported by the exit code.
        const stdoutCfg = join(dir, "stdout.yaml");
        await Deno.writeTextFile(
          stdoutCfg,
          `source:\n  type: postgres\n  url: ${pgUrl}\nexports:\n  - name: to_stdout\n` +
            `    query: SELECT id FROM items\n    format: csv\n    quality: {row_count_max: 1}\n` +
            "    destination: { type: stdout }\n",
        );
        const piped = await runCli(["run", "-c", stdoutCfg]);
        assert.equal(piped.code, 3, piped.stderr);
        assert.match(piped.stderr, /stdout destination streams rows as they are read/);
        // Zero rows are checked too.
        const empty = await run(
          "bad_empty",
          "    query: SELECT * FROM items WHERE id < 0\n    format: csv\n" +
            "    quality: {row_count_min: 1}\n",
        );
        assert.equal(empty.code, 3, empty.stderr);
      });

      await t.step("a failing gate in incremental mode keeps the cursor where it was", async () => {
        await pg.psql("CREATE TABLE inc AS SELECT id, name FROM items");
        const body = "    query: SELECT id, name FROM inc\n    mode: incremental\n" +
          "    cursor_column: id\n    format: csv\n    quality: {unique_columns: [name], " +
          "unique_max_entries: 1000, row_count_max: 10}\n";
        const cfg = join(dir, "inc.yaml");
        await pg.psql("DELETE FROM inc WHERE id = 4");
        const first = await run("inc", body, { cfg });
        assert.equal(first.code, 0, first.stderr);
        const before = await files(first.out, ".csv");
        await pg.psql("INSERT INTO inc VALUES (5, 'dup'), (6, 'dup')");
        const second = await run("inc", body, { cfg });
        assert.equal(second.code, 3, second.stderr);
        assert.match(second.stderr, /1 duplicate value/);
        assert.deepEqual(await files(second.out, ".csv"), before);
        await using state = await SqliteStateStore.open(stateDbPath(dir));
        assert.equal((await state.readCursor("inc"))?.lastCursorValue, "3");
      });

      await t.step(
        "chunked, parallel 2 on workers: a failed aggregate leaves no _SUCCESS",
        async () => {
          // 'widget' is in chunk 0 (id 1) and chunk 1 (id 4): only the merged sets see it twice.
          const body = "    query: SELECT id, name FROM items\n    mode: chunked\n" +
            "    chunk_column: id\n    chunk_size: 2\n    parallel: 2\n    format: parquet\n";
          const bad = await run("ck_bad", `${body}    quality: {unique_columns: [name]}\n`);
          assert.equal(bad.code, 3, bad.stderr);
          assert.match(bad.stderr, /1 quality check\(s\) failed[\s\S]*'name': 1 duplicate/);
          assert.ok(!(await exists(join(bad.out, "_SUCCESS"))), "no _SUCCESS");
          assert.equal((await files(bad.out, ".parquet")).length, 2, "the chunks stay committed");
          const manifest = JSON.parse(await Deno.readTextFile(join(bad.out, "manifest.json")));
          assert.equal(manifest.status, "failed");
          const listed = await runCli(["state", "files", "-c", bad.cfg, "-e", "ck_bad"]);
          for (const name of await files(bad.out, ".parquet")) {
            assert.ok(listed.stdout.includes(name), listed.stdout);
          }
          // Checkpointed: the run stays open; --resume judges again and fails closed on the
          // values it did not see; reset-chunks discards it.
          const ckBody =
            `${body}    chunk_checkpoint: true\n    quality: {unique_columns: [name]}\n`;
          const ckCfg = join(dir, "ck_cp.yaml");
          const cp = await run("ck_cp", ckBody, { cfg: ckCfg });
          assert.equal(cp.code, 3, cp.stderr);
          assert.match(cp.stderr, /reset-chunks/);
          const resumed = await run("ck_cp", ckBody, { cfg: ckCfg, args: ["--resume"] });
          assert.equal(resumed.code, 3, resumed.stderr);
          assert.match(resumed.stderr, /cannot be judged: 2 file\(s\) of this run/);
          assert.ok(!(await exists(join(cp.out, "_SUCCESS"))));
          const reset = await runCli(["state", "reset-chunks", "-c", ckCfg, "-e", "ck_cp"]);
          assert.equal(reset.code, 0, reset.stderr);
          const good = await run(
            "ck_good",
            `${body}    quality: {unique_columns: [id], row_count_min: 4, null_ratio_max: {name: 0}}\n`,
          );
          assert.equal(good.code, 0, good.stderr);
          assert.ok(await exists(join(good.out, "_SUCCESS")));
          const rowsBad = await run("ck_rows", `${body}    quality: {row_count_max: 3}\n`);
          assert.equal(rowsBad.code, 3, rowsBad.stderr);
          assert.match(rowsBad.stderr, /row count 4 is above row_count_max 3/);
        },
      );

      const meta = "    meta_columns: {exported_at: true, row_hash: true}\n";
      const selectSql = "SELECT id, name, amount, day FROM items";
      let pgHashes: Map<number, bigint> | undefined;

      await t.step(
        "meta columns: types, one exported_at per run, hash stable across runs",
        async () => {
          const body = `    query: ${selectSql}\n    format: parquet\n${meta}`;
          const first = await run("meta_pg", body);
          assert.equal(first.code, 0, first.stderr);
          const [file] = await files(first.out, ".parquet");
          const contents = await readParquet(join(first.out, file!));
          const names = contents.schema.children.map((c: { element: { name: string } }) =>
            c.element.name
          );
          assert.deepEqual(names, [
            "id",
            "name",
            "amount",
            "day",
            "_rivet_exported_at",
            "_rivet_row_hash",
          ]);
          const at = contents.schema.children[4].element;
          assert.equal(at.repetition_type, "REQUIRED");
          assert.equal(at.logical_type?.type, "TIMESTAMP");
          assert.equal(at.logical_type?.unit, "MICROS");
          assert.equal(at.logical_type?.isAdjustedToUTC, true);
          const hashCol = contents.schema.children[5].element;
          assert.equal(hashCol.type, "INT64");
          assert.equal(hashCol.repetition_type, "REQUIRED");
          const rows = await rowsOf(first.out);
          assert.equal(new Set(rows.map((r) => r._rivet_exported_at)).size, 1, "one value per run");
          const stamp = Number(rows[0]!._rivet_exported_at as bigint / 1000n);
          assert.ok(Math.abs(stamp - Date.now()) < 10 * 60_000, `exported_at near now: ${stamp}`);
          pgHashes = hashById(rows);
          assert.equal(new Set(pgHashes.values()).size, 4, "distinct rows hash apart");

          await new Promise((resolve) => setTimeout(resolve, 1_100));
          const second = await run("meta_pg", body, { cfg: first.cfg });
          assert.equal(second.code, 0, second.stderr);
          const again = await rowsOf(second.out);
          assert.deepEqual(
            hashById(again.filter((r) =>
              r._rivet_exported_at !==
                rows[0]!._rivet_exported_at
            )),
            pgHashes,
            "stable across runs",
          );

          // CSV gets them too.
          const csv = await run(
            "meta_csv",
            `    query: ${selectSql} ORDER BY id\n    format: csv\n${meta}`,
          );
          assert.equal(csv.code, 0, csv.stderr);
          const [csvFile] = await files(csv.out, ".csv");
          const lines = (await Deno.readTextFile(join(csv.out, csvFile!))).trim().split("\n");
          assert.equal(lines[0], "id,name,amount,day,_rivet_exported_at,_rivet_row_hash");
          assert.equal(lines[1]!.split(",").at(-1), String(pgHashes.get(1)));
        },
      );

      await t.step("the row hash equals the worked example of docs/row-hash.md", async () => {
        const docs = await Deno.readTextFile(new URL("../../docs/row-hash.md", import.meta.url));
        const documented = /_rivet_row_hash = (-?\d+)/.exec(docs)?.[1];
        assert.ok(documented, "docs/row-hash.md states the example's hash");
        assert.equal(String(pgHashes!.get(1)), documented);
        // Recomputed from the documented bytes with a one-shot xxh3-64.
        const bytes = new TextEncoder().encode("1\x1fwidget\x1f12.50\x1f2024-02-29\x1f");
        const hex = await xxh3Hex(bytes);
        assert.equal(BigInt.asIntN(64, BigInt(`0x${hex}`)), pgHashes!.get(1));
        assert.ok(docs.includes(`0x${hex}`), `docs/row-hash.md shows the digest 0x${hex}`);
      });

      await t.step("the row hash is equal from MariaDB and from chunked parallel 2", async () => {
        const maria1 = await run(
          "meta_maria",
          `    query: ${selectSql}\n    format: parquet\n${meta}`,
          { url: maria.url, type: "mysql" },
        );
        assert.equal(maria1.code, 0, maria1.stderr);
        assert.deepEqual(hashById(await rowsOf(maria1.out)), pgHashes);

        const chunked = await run(
          "meta_chunked",
          `    query: ${selectSql}\n    mode: chunked\n    chunk_column: id\n    chunk_size: 2\n` +
            `    parallel: 2\n    format: parquet\n${meta}`,
        );
        assert.equal(chunked.code, 0, chunked.stderr);
        assert.deepEqual(hashById(await rowsOf(chunked.out)), pgHashes);
        // One exported_at per chunk: each chunk's file holds a single value.
        const parts = await files(chunked.out, ".parquet");
        assert.equal(parts.length, 2);
        for (const part of parts) {
          const { rows } = await readParquet(join(chunked.out, part));
          assert.equal(new Set(rows.map((r) => r._rivet_exported_at)).size, 1, part);
        }
      });

      await t.step("in child processes: the same row hash, the same gate", async () => {
        // Two exports, so that --parallel-export-processes runs each in its own process.
        const cfg = join(dir, "children.yaml");
        const dest = (name: string) =>
          `    destination: { type: local, path: ${dir}/out/${name} }\n`;
        await Deno.writeTextFile(
          cfg,
          `source:\n  type: postgres\n  url: ${pgUrl}\nexports:\n` +
            `  - name: meta_child\n    query: ${selectSql}\n    format: parquet\n${meta}` +
            dest("meta_child") +
            `  - name: bad_child\n${full("    quality: {row_count_max: 1}\n")}${dest("bad_child")}`,
        );
        const r = await runCli(["run", "-c", cfg, "--parallel-export-processes"]);
        assert.equal(r.code, 3, r.stderr);
        assert.doesNotMatch(r.stderr, /run\.export_in_parent|runs in the parent/);
        assert.match(r.stderr, /row count 4 is above row_count_max 1/);
        assert.deepEqual(await files(join(dir, "out", "bad_child"), ""), []);
        assert.deepEqual(hashById(await rowsOf(join(dir, "out", "meta_child"))), pgHashes);
        const metrics = await runCli(["metrics", "-c", cfg, "-e", "bad_child"]);
        assert.match(metrics.stdout, /quality=FAIL/, metrics.stdout);
      });

      await t.step("the row hash is equal from SQL Server (the TDS test server)", async () => {
        await using tds = await startTdsServer();
        const conn = await connectTds({
          host: tds.host,
          port: tds.port,
          database: tds.database,
          ...tds.login,
        });
        try {
          await runTds(
            conn,
            "CREATE TABLE items (id int NOT NULL PRIMARY KEY, name nvarchar(50) NULL, " +
              "amount decimal(10,2) NULL, day date NULL, note nvarchar(max) NULL); " +
              `INSERT INTO items VALUES ${ROWS.join(", ").replaceAll("'ü", "N'ü")}`,
          );
        } finally {
          await closeTds(conn);
        }
        const url = `sqlserver://${encodeURIComponent(tds.login.user)}:${
          encodeURIComponent(tds.login.password)
        }@127.0.0.1:${tds.port}/${tds.database}`;
        const mssql = await run(
          "meta_mssql",
          `    query: ${selectSql}\n    format: parquet\n${meta}`,
          { url: JSON.stringify(url), type: "mssql" },
        );
        assert.equal(mssql.code, 0, mssql.stderr);
        assert.deepEqual(hashById(await rowsOf(mssql.out)), pgHashes);
      });

      await t.step("meta columns are part of the schema baseline and fingerprint", async () => {
        const cfg = join(dir, "meta_drift.yaml");
        const plain = await run("meta_drift", `    query: ${selectSql}\n    format: csv\n`, {
          cfg,
        });
        assert.equal(plain.code, 0, plain.stderr);
        const before = JSON.parse(await Deno.readTextFile(join(plain.out, "manifest.json")));
        const withMeta = await run(
          "meta_drift",
          `    query: ${selectSql}\n    format: csv\n${meta}    on_schema_drift: fail\n`,
          {
            cfg,
          },
        );
        assert.equal(withMeta.code, 4, withMeta.stderr);
        assert.match(withMeta.stderr, /added _rivet_exported_at, _rivet_row_hash/);
        const accepted = await run(
          "meta_drift",
          `    query: ${selectSql}\n    format: csv\n${meta}    on_schema_drift: continue\n`,
          { cfg },
        );
        assert.equal(accepted.code, 0, accepted.stderr);
        const after = JSON.parse(await Deno.readTextFile(join(accepted.out, "manifest.json")));
        assert.notEqual(after.schema_fingerprint, before.schema_fingerprint);
      });

      await t.step("a source column named like a meta column is a config error", async () => {
        const r = await run(
          "meta_taken",
          `    query: SELECT id, 1 AS _rivet_row_hash FROM items\n    format: csv\n${meta}`,
        );
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /already has a column named '_rivet_row_hash'/);
        assert.deepEqual(await files(r.out, ""), []);
      });

      await t.step("shape drift warns when a text column's longest value triples", async () => {
        await pg.psql(
          "CREATE TABLE notes (id int, body text); " +
            "INSERT INTO notes VALUES (1, repeat('a', 10)), (2, 'b')",
        );
        const cases: [string, string, number, boolean][] = [
          ["shape_triple", "", 30, true],
          ["shape_half", "", 15, false],
          ["shape_off", "    shape_drift_warn_factor: 0\n", 30, false],
          // Chunked: the longest values of the chunks are merged (two workers).
          [
            "shape_chunked",
            "    mode: chunked\n    chunk_column: id\n    chunk_size: 1\n    parallel: 2\n",
            30,
            true,
          ],
        ];
        for (const [name, extra, grown, warns] of cases) {
          await pg.psql("UPDATE notes SET body = repeat('a', 10) WHERE id = 1");
          const body = `    query: SELECT id, body FROM notes\n    format: csv\n${extra}`;
          const cfg = join(dir, `${name}.yaml`);
          const first = await run(name, body, { cfg });
          assert.equal(first.code, 0, first.stderr);
          assert.doesNotMatch(first.stderr, /shape_drift_warn_factor/);
          await pg.psql(`UPDATE notes SET body = repeat('a', ${grown}) WHERE id = 1`);
          const second = await run(name, body, { cfg });
          assert.equal(second.code, 0, second.stderr);
          const warned = /column 'body' grew to 30 bytes.*shape_drift_warn_factor \(2\).*10 bytes/
            .test(second.stderr);
          assert.equal(warned, warns, `${name}: ${second.stderr}`);
          if (warns) {
            // Journalled, and the stored length moved up: the same length warns no more.
            const journal = await runCli(["journal", "-c", cfg, "-e", name, "-l", "1"]);
            assert.match(journal.stdout, /grew to 30 bytes/);
            const third = await run(name, body, { cfg });
            assert.doesNotMatch(third.stderr, /grew to/);
          }
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
