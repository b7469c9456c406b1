/**
 * End to end, the SQL Server source: every mapped type with NULLs and extremes, read back by the
 * independent Parquet reader (and decimals, exactly, through CSV); the TLS policy; snapshot
 * isolation and its fallback; the lock timeout; cancel; primary-key auto-resolution; errors.
 *
 * Runs against the in-repo TDS test server (over a throwaway PostgreSQL), or against a real SQL
 * Server when `RIVET_MSSQL_URL` is set (the CI job). Expected values are constants written here,
 * never computed by the code under test.
 */
import assert from "node:assert/strict";
import { runCli, spawnCli } from "../_helpers/cli.ts";
import { readParquet } from "../_helpers/parquet_oracle.ts";
import { column, defaults, expectError, readAll } from "../_helpers/source_read.ts";
import { parseConnectionUrl } from "../../src/config/connection.ts";
import type { SourceSpec, Warning } from "../../src/core/spec.ts";
import { openSource } from "../../src/sources/mod.ts";
import { mssqlEngine } from "./_mssql_engine.ts";

const REAL = Deno.env.get("RIVET_MSSQL_URL") !== undefined;
const spec: SourceSpec = { kind: "mssql", connection: { form: "url_env", env: "UNUSED" } };

const TYPES_DDL = `
CREATE TABLE types_t (
  id int NOT NULL PRIMARY KEY,
  b bit NULL, ti tinyint NULL, si smallint NULL, i int NULL, bi bigint NULL,
  d38 decimal(38,0) NULL, n3838 numeric(38,38) NULL, d12 decimal(12,2) NULL,
  m money NULL, sm smallmoney NULL, r real NULL, f float NULL,
  dt date NULL, tm time(7) NULL, tm3 time(3) NULL,
  dtm datetime NULL, sdt smalldatetime NULL, dt2 datetime2(7) NULL, dt26 datetime2(6) NULL,
  dto datetimeoffset(7) NULL,
  c char(5) NULL, vc varchar(50) NULL, nc nchar(3) NULL, nvc nvarchar(50) NULL,
  nvm nvarchar(max) NULL, tx text NULL, ntx ntext NULL, x xml NULL,
  bn binary(4) NULL, vb varbinary(10) NULL, vbm varbinary(max) NULL, im image NULL,
  g uniqueidentifier NULL);
INSERT INTO types_t VALUES (1, 0, 0, -32768, -2147483648, -9223372036854775808,
  -99999999999999999999999999999999999999, -0.99999999999999999999999999999999999999,
  -9999999999.99, -922337203685477.5808, -214748.3648, -3.4E+38, -1.79E+308,
  '0001-01-01', '00:00:00', '00:00:00', '1753-01-01T00:00:00', '1900-01-01T00:00:00',
  '0001-01-01T00:00:00', '0001-01-01T00:00:00', '2024-01-01T00:30:00.1234567+14:00',
  'ab', '', N'é', N'héllo 🦀', N'x', 'text', N'ntëxt', N'<a b="1">t</a>',
  0x00010203, 0x, 0xDEADBEEF, 0x00FF, '6F9619FF-8B86-D011-B42D-00C04FC964FF');
INSERT INTO types_t VALUES (2, 1, 255, 32767, 2147483647, 9223372036854775807,
  99999999999999999999999999999999999999, 0.99999999999999999999999999999999999999,
  9999999999.99, 922337203685477.5807, 214748.3647, 3.4E+38, 1.79E+308,
  '9999-12-31', '23:59:59.9999999', '23:59:59.999', '9999-12-31T23:59:59.997',
  '2079-06-06T23:59:00', '9999-12-31T23:59:59.9999999', '9999-12-31T23:59:59.999999',
  '2024-06-30T12:00:00.0000001-12:00',
  'abcde', 'plain ascii', N'日本語', N'', N'yyy', '', N'', N'<r>x</r>',
  0xFFFFFFFF, 0x0102030405060708090A, 0x, 0x, '00000000-0000-0000-0000-000000000000');
INSERT INTO types_t (id) VALUES (3);
INSERT INTO types_t (id, dt2, tm, dtm) VALUES (4, '2024-01-01T12:34:56.1234567', '12:34:56.1234567',
  '2024-01-01T00:00:00.003');
CREATE TABLE refused_t (id int NOT NULL PRIMARY KEY, v sql_variant NULL, h hierarchyid NULL);
CREATE TABLE events_t (id bigint NOT NULL PRIMARY KEY, at datetime2(6) NOT NULL, note nvarchar(20) NULL);
INSERT INTO events_t VALUES (1, '2024-01-01T00:00:00', N'a'), (2, '2024-01-02T00:00:00', N'b'),
  (3, '2024-01-03T00:00:00', NULL);
CREATE TABLE legacy_t (id int NOT NULL PRIMARY KEY, changed datetime NOT NULL);
INSERT INTO legacy_t VALUES (1, '2024-01-01T00:00:00.003'), (2, '2024-01-01T00:00:00.007');
CREATE TABLE keyless_t (code nvarchar(10) NOT NULL, v int NULL);
CREATE UNIQUE INDEX keyless_code ON keyless_t (code);
INSERT INTO keyless_t VALUES (N'a', 1), (N'b', 2), (N'c', 3);
`;

/** Microseconds since the Unix epoch of a UTC wall-clock time (the test's own arithmetic). */
function us(iso: string, extraMicros = 0): bigint {
  return BigInt(Date.parse(`${iso}Z`)) * 1000n + BigInt(extraMicros);
}

async function listFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test({
  name: "SQL Server source end to end",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using db = await mssqlEngine.start();
    await db.sql(TYPES_DDL);
    const info = parseConnectionUrl(db.url, "mssql");
    const dir = await Deno.makeTempDir({ prefix: "rivet_mssql_" });
    Deno.env.set("MSSQL_URL", db.url);
    const config = async (name: string, exports: string, source = "") => {
      const path = `${dir}/${name}.yaml`;
      await Deno.writeTextFile(
        path,
        `source:\n  type: mssql\n  url_env: MSSQL_URL\n${source}exports:\n${exports}`,
      );
      return path;
    };

    await t.step(
      "every mapped type round-trips through Parquet, read back independently",
      async () => {
        const out = `${dir}/types`;
        const cfg = await config(
          "types",
          `  - name: types
    query: SELECT * FROM types_t ORDER BY id
    format: parquet
    destination: { type: local, path: ${out} }
`,
        );
        const res = await runCli(["run", "-c", cfg]);
        assert.equal(res.code, 0, res.stderr);
        assert.match(res.stderr, /Column 'dt2' held values with 100-ns digits/);
        assert.equal(res.stderr.match(/Column 'dt2' held/g)?.length, 1, "warned once per column");
        const data = (await listFiles(out)).filter((f) => f.endsWith(".parquet"));
        const { rows, schema } = await readParquet(`${out}/${data[0]}`);
        assert.equal(rows.length, 4);
        const col = (name: string) => rows.map((r) => r[name]);
        assert.deepEqual(col("b"), [false, true, null, null]);
        assert.deepEqual(col("ti"), [0, 255, null, null]);
        assert.deepEqual(col("si"), [-32768, 32767, null, null]);
        assert.deepEqual(col("i"), [-2147483648, 2147483647, null, null]);
        assert.deepEqual(col("bi"), [-9223372036854775808n, 9223372036854775807n, null, null]);
        assert.deepEqual(col("r"), [Math.fround(-3.4e38), Math.fround(3.4e38), null, null]);
        assert.deepEqual(col("f"), [-1.79e308, 1.79e308, null, null]);
        // Dates as days since 1970-01-01.
        assert.deepEqual(col("dt"), [-719162, 2932896, null, null]);
        // time(7) → Time64 µs (truncated), time(3) too.
        assert.deepEqual(col("tm"), [0n, 86_399_999_999n, null, 45_296_123_456n]);
        assert.deepEqual(col("tm3"), [0n, 86_399_999_000n, null, null]);
        assert.deepEqual(col("dtm"), [
          us("1753-01-01T00:00:00"),
          us("9999-12-31T23:59:59", 996_667),
          null,
          // Tick 1 (0.00333… s) rounds up to the next microsecond.
          us("2024-01-01T00:00:00", 3_334),
        ]);
        assert.deepEqual(col("sdt"), [
          us("1900-01-01T00:00:00"),
          us("2079-06-06T23:59:00"),
          null,
          null,
        ]);
        assert.deepEqual(col("dt2"), [
          us("0001-01-01T00:00:00"),
          us("9999-12-31T23:59:59", 999_999),
          null,
          us("2024-01-01T12:34:56", 123_456),
        ]);
        assert.deepEqual(col("dt26"), [
          us("0001-01-01T00:00:00"),
          us("9999-12-31T23:59:59", 999_999),
          null,
          null,
        ]);
        // datetimeoffset → UTC.
        assert.deepEqual(col("dto"), [
          us("2023-12-31T10:30:00", 123_456),
          us("2024-07-01T00:00:00"),
          null,
          null,
        ]);
        assert.deepEqual(col("c"), ["ab   ", "abcde", null, null]);
        assert.deepEqual(col("vc"), ["", "plain ascii", null, null]);
        assert.deepEqual(col("nc"), ["é  ", "日本語", null, null]);
        assert.deepEqual(col("nvc"), ["héllo 🦀", "", null, null]);
        assert.deepEqual(col("nvm"), ["x", "yyy", null, null]);
        assert.deepEqual(col("tx"), ["text", "", null, null]);
        assert.deepEqual(col("ntx"), ["ntëxt", "", null, null]);
        // (No empty elements: SQL Server re-serializes `<r/>` as `<r />`.)
        assert.deepEqual(col("x"), ['<a b="1">t</a>', "<r>x</r>", null, null]);
        const hex = (v: unknown) =>
          v === null || v === undefined
            ? null
            : [...(v as Uint8Array)].map((x) => x.toString(16).padStart(2, "0")).join("");
        assert.deepEqual(col("bn").map(hex), ["00010203", "ffffffff", null, null]);
        assert.deepEqual(col("vb").map(hex), ["", "0102030405060708090a", null, null]);
        assert.deepEqual(col("vbm").map(hex), ["deadbeef", "", null, null]);
        assert.deepEqual(col("im").map(hex), ["00ff", "", null, null]);
        // SQL Server's mixed-endian GUID bytes come out in RFC 4122 order.
        assert.deepEqual(col("g"), [
          "6f9619ff-8b86-d011-b42d-00c04fc964ff",
          "00000000-0000-0000-0000-000000000000",
          null,
          null,
        ]);
        const byName = Object.fromEntries(
          // deno-lint-ignore no-explicit-any
          schema.children.map((c: any) => [c.element.name, c.element]),
        );
        for (
          const [name, p, s] of [["d38", 38, 0], ["n3838", 38, 38], ["d12", 12, 2], ["m", 19, 4], [
            "sm",
            10,
            4,
          ]] as const
        ) {
          assert.equal(byName[name].precision, p, name);
          assert.equal(byName[name].scale, s, name);
        }
        assert.equal(byName.dto.logical_type?.isAdjustedToUTC, true);
        assert.equal(byName.dt2.logical_type?.isAdjustedToUTC, false);
        assert.equal(byName.g.logical_type?.type, "UUID");
      },
    );

    await t.step("decimals and money are exact to the last digit (through CSV)", async () => {
      const out = `${dir}/decimals`;
      const cfg = await config(
        "decimals",
        `  - name: decimals
    query: SELECT id, d38, n3838, d12, m, sm FROM types_t WHERE id < 4 ORDER BY id
    format: csv
    destination: { type: local, path: ${out} }
`,
      );
      const res = await runCli(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      const data = (await listFiles(out)).filter((f) => f.endsWith(".csv"));
      assert.equal(
        await Deno.readTextFile(`${out}/${data[0]}`),
        "id,d38,n3838,d12,m,sm\n" +
          "1,-99999999999999999999999999999999999999,-0.99999999999999999999999999999999999999," +
          "-9999999999.99,-922337203685477.5808,-214748.3648\n" +
          "2,99999999999999999999999999999999999999,0.99999999999999999999999999999999999999," +
          "9999999999.99,922337203685477.5807,214748.3647\n" +
          "3,,,,,\n",
      );
    });

    await t.step("a timestamp_ns override keeps datetime2's 100-ns ticks", async () => {
      const out = `${dir}/ns`;
      const cfg = await config(
        "ns",
        `  - name: ns
    query: SELECT id, dt2 FROM types_t WHERE id = 4
    format: parquet
    columns: { dt2: timestamp_ns }
    destination: { type: local, path: ${out} }
`,
      );
      const res = await runCli(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      assert.doesNotMatch(res.stderr, /100-ns digits/);
      const data = (await listFiles(out)).filter((f) => f.endsWith(".parquet"));
      const { rows } = await readParquet(`${out}/${data[0]}`);
      assert.equal(rows[0]!.dt2, us("2024-01-01T12:34:56") * 1000n + 123_456_700n);
    });

    await t.step(
      "sql_variant and hierarchyid are refused naming the column and the fix",
      async () => {
        const cfg = await config(
          "refused",
          `  - name: refused
    table: refused_t
    format: parquet
    destination: { type: local, path: ${dir}/refused }
`,
        );
        const res = await runCli(["run", "-c", cfg]);
        assert.equal(res.code, 1, res.stderr);
        assert.match(res.stderr, /'v'/);
        assert.match(res.stderr, /'h'/);
        assert.match(res.stderr, /CAST/);
      },
    );

    await t.step("incremental runs export only new rows, on the datetime2 cursor", async () => {
      const out = `${dir}/inc`;
      const cfg = await config(
        "inc",
        `  - name: inc
    table: events_t
    mode: incremental
    cursor_column: at
    format: csv
    destination: { type: local, path: ${out} }
`,
      );
      const first = await runCli(["run", "-c", cfg, "--json"]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(JSON.parse(first.stdout).total_rows, 3);
      await db.sql("INSERT INTO events_t VALUES (4, '2024-01-04T00:00:00.5', N'd');");
      const second = await runCli(["run", "-c", cfg, "--json"]);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(JSON.parse(second.stdout).total_rows, 1);
    });

    await t.step(
      "doctor, --events, validate, state, metrics and journal work on SQL Server",
      async () => {
        const out = `${dir}/ops`;
        const cfg = await config(
          "ops",
          `  - name: ops
    table: events_t
    mode: incremental
    cursor_column: id
    format: parquet
    destination: { type: local, path: ${out} }
`,
        );
        const doctor = await runCli(["doctor", "-c", cfg]);
        assert.equal(doctor.code, 0, doctor.stdout + doctor.stderr);
        assert.match(doctor.stdout, /\[OK\]/);
        const run = await runCli(["run", "-c", cfg, "--events", "ndjson"]);
        assert.equal(run.code, 0, run.stderr);
        const events = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
        assert.ok(events.some((e) => e.type === "export_finished"), run.stdout);
        const validate = await runCli(["validate", "-c", cfg, "--format", "json"]);
        assert.equal(validate.code, 0, validate.stdout + validate.stderr);
        const state = await runCli(["state", "show", "-c", cfg]);
        assert.equal(state.code, 0, state.stderr);
        assert.match(state.stdout, /ops\s+[0-9a-f]{16}\s+4\b/);
        const metrics = await runCli(["metrics", "-c", cfg]);
        assert.equal(metrics.code, 0, metrics.stderr);
        assert.match(metrics.stdout, /ops/);
        const journal = await runCli(["journal", "-c", cfg, "-e", "ops"]);
        assert.equal(journal.code, 0, journal.stderr);
        assert.match(journal.stdout, /ops/);
      },
    );

    await t.step(
      "isolated children and export workers run SQL Server exports under narrowed permissions",
      async () => {
        const exports = (sub: string) =>
          ["types_t", "events_t"].map((table) =>
            `  - name: ${table}_${sub}
    table: ${table}
    format: parquet
    destination: { type: local, path: ${dir}/${sub}/${table} }
`
          ).join("");
        for (
          const [sub, flag] of [
            ["procs", "--parallel-export-processes"],
            ["threads", "--parallel-exports"],
          ] as const
        ) {
          const cfg = await config(sub, exports(sub));
          // A real child process of cli.ts: the children get narrowed --allow-* flags of their own.
          const res = await spawnCli(["run", "-c", cfg, flag, "--json"], {
            env: { MSSQL_URL: db.url },
          });
          assert.equal(res.code, 0, res.stderr);
          const summary = JSON.parse(res.stdout);
          assert.deepEqual(
            summary.per_export.map((e: { rows: number }) => e.rows).sort(),
            [4, 4],
            res.stdout,
          );
        }
      },
    );

    await t.step(
      "chunked without chunk_column pages a keyless table by its unique key",
      async () => {
        const out = `${dir}/keyset`;
        const cfg = await config(
          "keyset",
          `  - name: keyset
    table: keyless_t
    mode: chunked
    chunk_size: 2
    format: csv
    destination: { type: local, path: ${out} }
`,
        );
        const res = await runCli(["run", "-c", cfg, "--json"]);
        assert.equal(res.code, 0, res.stderr);
        assert.match(res.stderr, /keyset on its unique key 'code'/);
        assert.equal(JSON.parse(res.stdout).total_rows, 3);
      },
    );

    await t.step(
      "incremental on a legacy datetime cursor (1/300 s ticks) loses and repeats nothing",
      async () => {
        const cfg = await config(
          "legacy",
          `  - name: legacy
    table: legacy_t
    mode: incremental
    cursor_column: changed
    format: csv
    destination: { type: local, path: ${dir}/legacy }
`,
        );
        const first = await runCli(["run", "-c", cfg, "--json"]);
        assert.equal(first.code, 0, first.stderr);
        assert.equal(JSON.parse(first.stdout).total_rows, 2);
        // The stored cursor is .006667 s (tick 2): a bare string of it would not even convert to
        // datetime on SQL Server; as datetime2 it compares exactly, so nothing is read twice.
        const again = await runCli(["run", "-c", cfg, "--json"]);
        assert.equal(again.code, 0, again.stderr);
        assert.equal(JSON.parse(again.stdout).total_rows, 0);
        await db.sql("INSERT INTO legacy_t VALUES (3, '2024-01-01T00:00:00.010');");
        const third = await runCli(["run", "-c", cfg, "--json"]);
        assert.equal(third.code, 0, third.stderr);
        assert.equal(JSON.parse(third.stdout).total_rows, 1);
      },
    );

    await t.step("a source sets the lock timeout, and reads under snapshot isolation", async () => {
      const warnings: Warning[] = [];
      await using source = await openSource(spec, info, { onWarning: (w) => warnings.push(w) });
      const options = { ...defaults, lockTimeoutS: 3 };
      const { batches } = await readAll(
        source,
        "SELECT CAST(@@LOCK_TIMEOUT AS int) AS lt",
        options,
      );
      assert.deepEqual(column(batches, "lt"), [3000]);
      assert.deepEqual(warnings.map((w) => w.code), [], "the fixture database allows snapshots");
      if (REAL) {
        // 5 = SNAPSHOT.
        const iso = await readAll(
          source,
          "SELECT CAST(transaction_isolation_level AS int) AS iso FROM sys.dm_exec_sessions " +
            "WHERE session_id = @@SPID",
          options,
        );
        assert.deepEqual(column(iso.batches, "iso"), [5]);
      }
    });

    await t.step(
      "batches follow the memory target: a 500-row probe, then sized by bytes",
      async () => {
        await using source = await openSource(spec, info);
        const { batches } = await readAll(source, "SELECT id, n, s, at FROM bulk ORDER BY id", {
          ...defaults,
          batchSize: 1_000_000,
          batchMemoryBytes: 512 * 1024,
        });
        const sizes = batches.map((b) => b.numRows);
        assert.equal(sizes.reduce((a, b) => a + b, 0), 150_000);
        assert.equal(sizes[0], 500, "the first batch is the probe");
        const rest = sizes.slice(1, -1);
        assert.ok(rest.length >= 5, `several batches, got ${sizes.join(",")}`);
        // ~60 bytes per row (8 + 4 + 32 text + offsets + 8) → 512 KB holds ~8-9k rows, never 150k.
        assert.ok(rest.every((n) => n >= 2000 && n <= 20_000), sizes.join(","));
        const ids = batches.flatMap((b) => column([b], "id") as bigint[]);
        assert.equal(ids[0], 1n);
        assert.equal(ids.at(-1), 150_000n);
      },
    );

    await t.step(
      "statement_timeout_s stops a long statement as source.statement_timeout",
      async () => {
        await using source = await openSource(spec, info);
        const started = Date.now();
        await expectError(
          readAll(source, "WAITFOR DELAY '00:01:00'; SELECT 1 AS x", {
            ...defaults,
            statementTimeoutS: 1,
          }),
          { code: "source.statement_timeout", exitCode: 1 },
        );
        assert.ok(Date.now() - started < 10_000, "stopped within seconds");
        const { batches } = await readAll(source, "SELECT 8 AS eight");
        assert.deepEqual(column(batches, "eight"), [8]);
      },
    );

    await t.step(
      "a statement that writes is refused before it is sent, with or without a signal",
      async () => {
        await using source = await openSource(spec, info);
        for (const signal of [undefined, new AbortController().signal]) {
          await expectError(
            readAll(source, "DELETE FROM events_t", { ...defaults, ...(signal ? { signal } : {}) }),
            { code: "source.not_a_select", exitCode: 1 },
          );
        }
        const { batches } = await readAll(source, "SELECT COUNT_BIG(*) AS n FROM events_t");
        assert.ok(Number(column(batches, "n")[0]) >= 3, "nothing was deleted");
      },
    );

    await t.step("a wrong password is source.auth_failed and never echoed", async () => {
      await expectError(openSource(spec, { ...info, password: "wrong-Pa55word-XYZ" }), {
        code: "source.auth_failed",
        exitCode: 1,
        includes: [info.user],
        excludes: ["wrong-Pa55word-XYZ"],
      });
    });

    await t.step("a remote host with encrypt=false is refused before connecting", async () => {
      Deno.env.set("REMOTE_URL", "sqlserver://u:p@sql.example.invalid/db?encrypt=false");
      const cfg = `${dir}/remote.yaml`;
      await Deno.writeTextFile(
        cfg,
        "source:\n  type: mssql\n  url_env: REMOTE_URL\nexports:\n" +
          `  - {name: r, table: t, format: csv, destination: {type: local, path: ${dir}/r}}\n`,
      );
      const started = Date.now();
      const res = await runCli(["run", "-c", cfg]);
      assert.ok(Date.now() - started < 10_000);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /TLS required for non-loopback host 'sql\.example\.invalid'/);
      assert.match(res.stderr, /mode: disable/);
    });

    await t.step("Ctrl-C style abort stops the running statement promptly", async () => {
      await using source = await openSource(spec, info);
      const controller = new AbortController();
      const started = Date.now();
      const reading = readAll(source, "WAITFOR DELAY '00:01:00'; SELECT 1 AS x", {
        ...defaults,
        signal: controller.signal,
      }).catch((e) => e);
      setTimeout(() => controller.abort(new Error("interrupted")), 300);
      const error = await reading;
      assert.ok(error instanceof Error);
      assert.ok(Date.now() - started < 5000, "cancelled within seconds");
      // The connection is still usable afterwards.
      const { batches } = await readAll(source, "SELECT 7 AS seven");
      assert.deepEqual(column(batches, "seven"), [7]);
    });

    Deno.env.delete("MSSQL_URL");
    Deno.env.delete("REMOTE_URL");
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "SQL Server source: fallbacks only the test server can stage",
  ignore: REAL,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { startTdsServer } = await import("../_helpers/tds_server.ts");
    await using server = await startTdsServer({ snapshotIsolation: false, engineEdition: 5 });
    const info = parseConnectionUrl(
      `sqlserver://${encodeURIComponent(server.login.user)}:${
        encodeURIComponent(server.login.password)
      }@127.0.0.1:${server.port}/${server.database}`,
      "mssql",
    );
    await t.step(
      "Azure SQL is detected and noted once; snapshot off falls back with a warning",
      async () => {
        server.set({ snapshotIsolation: false, engineEdition: 8 });
        const warnings: Warning[] = [];
        await using source = await openSource(spec, info, { onWarning: (w) => warnings.push(w) });
        await readAll(source, "SELECT 1 AS one");
        await readAll(source, "SELECT 2 AS two");
        const codes = warnings.map((w) => w.code).sort();
        assert.deepEqual(codes, ["source.azure_gateway", "source.snapshot_unavailable"]);
        assert.ok(server.sessions().some((s) => /read committed/i.test(s.isolation)));
        server.set({ snapshotIsolation: true, engineEdition: 3 });
        warnings.length = 0;
        await using fresh = await openSource(spec, info, { onWarning: (w) => warnings.push(w) });
        await readAll(fresh, "SELECT 3 AS three");
        assert.deepEqual(warnings, []);
        assert.ok(server.sessions().some((s) => /snapshot/i.test(s.isolation)));
      },
    );
  },
});
