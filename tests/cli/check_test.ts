/**
 * `rivet check` on a live PostgreSQL: every verdict, the access probe (missing table, missing
 * cursor column), an unsupported type, a list column in CSV, the type report with targets and
 * `--strict`, the JSON document, an unknown export, a wrong password, the destination probe.
 * MariaDB and the SQL Server test server in `check_engines_test.ts`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";

const MARKER = "S3CR3T_M4RK3R_check";

// deno-lint-ignore no-explicit-any
type Json = any;

function assertNoSecret(res: { stdout: string; stderr: string }): void {
  assert.ok(!res.stdout.includes(MARKER) && !res.stderr.includes(MARKER), "no secret printed");
}

/** A config over `$CHECK_TEST_PG_URL` with these export lines (flow maps, one per line). */
function config(dir: string, exports: readonly string[]): string {
  return "source:\n  type: postgres\n  url_env: CHECK_TEST_PG_URL\nexports:\n" +
    exports.map((e) =>
      `  - { ${e}${
        e.includes("format:") ? "" : ", format: parquet"
      }, destination: { type: local, path: "${dir}/out" } }\n`
    )
      .join("");
}

/** The export of a `--json` report, by name. */
function exportOf(doc: Json, name: string): Json {
  const found = doc.exports.find((e: Json) => e.export === name);
  assert.ok(found, `export ${name} in the report`);
  return found;
}

Deno.test({
  name: "rivet check on PostgreSQL",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    const { user, password } = pg.passwordUser;
    await pg.psql(`
      ALTER ROLE ${user} PASSWORD '${password}${MARKER}';
      CREATE TABLE orders (id int PRIMARY KEY, updated_at timestamptz NOT NULL, n int NOT NULL,
        amount numeric(12,2), u uuid, tags int[]);
      CREATE INDEX orders_updated ON orders (updated_at);
      INSERT INTO orders SELECT g, '2024-01-01'::timestamptz + g * interval '1 minute', g % 7,
        g / 100.0, md5(g::text)::uuid, ARRAY[g] FROM generate_series(1, 2000) g;
      CREATE TABLE big (id int PRIMARY KEY, n int NOT NULL);
      INSERT INTO big SELECT g, g % 13 FROM generate_series(1, 1000) g;
      CREATE TABLE raw_t (id int, r numeric);
      ANALYZE orders; ANALYZE big;
      GRANT SELECT ON orders, big, raw_t TO ${user};`);
    // The catalog's estimate is what the verdict reads: a big table without writing one.
    await pg.psql("UPDATE pg_class SET reltuples = 20000000 WHERE relname = 'big'");
    const dir = await Deno.makeTempDir({ prefix: "rivet_check_" });
    Deno.env.set(
      "CHECK_TEST_PG_URL",
      `postgresql://${user}:${
        encodeURIComponent(password + MARKER)
      }@${pg.host}:${pg.port}/postgres`,
    );
    const write = async (name: string, exports: readonly string[]) => {
      const path = join(dir, name);
      await Deno.writeTextFile(path, config(dir, exports));
      return path;
    };
    const json = async (args: string[]) => {
      const res = await runCli([...args, "--json"]);
      assertNoSecret(res);
      return { ...res, doc: JSON.parse(res.stdout) as Json };
    };
    try {
      await t.step("every verdict, with strategy, estimate, cursor range, warnings", async () => {
        const path = await write("verdicts.yaml", [
          "name: inc_ok, table: orders, mode: incremental, cursor_column: updated_at",
          "name: chunk_ok, table: orders, mode: chunked, chunk_column: id, chunk_size: 500, " +
          "chunk_checkpoint: true",
          "name: small, table: orders, mode: chunked",
          "name: q_full, query: 'SELECT id, n FROM orders'",
          "name: chunk_noidx, table: orders, mode: chunked, chunk_column: n, chunk_checkpoint: true",
          "name: big_full, table: big",
          "name: big_par, table: big, mode: chunked, chunk_column: n, parallel: 4, " +
          "chunk_checkpoint: true",
        ]);
        const { code, doc, stderr } = await json(["check", "-c", path]);
        assert.equal(code, 0, stderr);
        const verdicts = Object.fromEntries(
          doc.exports.map((e: Json) => [e.export, `${e.strategy} ${e.verdict}`]),
        );
        assert.deepEqual(verdicts, {
          inc_ok: "incremental EFFICIENT",
          chunk_ok: "chunked-windows EFFICIENT",
          small: "snapshot-downgrade EFFICIENT",
          q_full: "full ACCEPTABLE",
          chunk_noidx: "chunked-windows DEGRADED",
          big_full: "full DEGRADED",
          big_par: "chunked-windows UNSAFE",
        });
        const inc = exportOf(doc, "inc_ok");
        assert.equal(inc.row_estimate, 2000);
        assert.deepEqual(inc.cursor_range, {
          min: "2024-01-01T00:01:00.000000",
          max: "2024-01-02T09:20:00.000000",
        });
        assert.deepEqual(inc.access, { ok: true, columns: 6, error: null });
        assert.deepEqual(exportOf(doc, "chunk_ok").cursor_range, { min: "1", max: "2000" });
        assert.equal(exportOf(doc, "chunk_noidx").cursor_range, null, "no scan for the range");
        assert.equal(exportOf(doc, "chunk_noidx").cursor_indexed, false);
        assert.equal(inc.cursor_indexed, true);
        assert.equal(exportOf(doc, "q_full").cursor_indexed, null);
        const codes = (name: string) => exportOf(doc, name).warnings.map((w: Json) => w.code);
        assert.deepEqual(codes("chunk_noidx"), ["preflight.column_not_indexed"]);
        assert.deepEqual(codes("big_full"), ["preflight.large_full_scan"]);
        assert.deepEqual(codes("big_par"), ["preflight.parallel_full_scans"]);
        assert.deepEqual(codes("small"), ["chunk.column_auto", "preflight.snapshot_downgrade"]);
        assert.equal(exportOf(doc, "big_par").recommended_parallel, 1);
        assert.equal(exportOf(doc, "big_par").recommended_profile, "safe");
        for (const e of doc.exports) assert.deepEqual(e.failures, [], e.export);
        assert.deepEqual(doc.destinations, [
          {
            ok: true,
            check: `destination: file://${dir}/out (wrote and removed .rivet_doctor_probe)`,
            hint: null,
          },
        ]);
        assert.equal(doc.ok, true);

        const pretty = await runCli(["check", "-c", path, "-e", "chunk_noidx"]);
        assert.equal(pretty.code, 0, pretty.stderr);
        assert.match(
          pretty.stdout,
          new RegExp(
            "^Export 'chunk_noidx'\\n  Strategy: +chunked-windows\\n  Mode: +chunked\\n" +
              "  Row estimate: +~2,000 rows\\n  Row width: +~\\d+ B\\n" +
              "  Cursor range: +n: not read \\(no index to read it from cheaply\\)\\n  Access: +OK \\(the query runs: 6 columns\\)\\n" +
              "  Verdict: +DEGRADED\\n  Recommended profile: +safe\\n" +
              "  Recommended parallel: +1\\n" +
              "  Warning: column 'n' has no index: every chunk scans .*\\n" +
              "    Suggestion: create an index on 'n'\\n",
          ),
        );
        assert.match(pretty.stdout, /\nDestinations:\n {2}\[OK\] destination: file:/);
        assert.doesNotMatch(pretty.stdout, /COLUMN/, "no type report unless asked");
      });

      await t.step(
        "a missing table, a missing cursor column, an unsupported type, a list in CSV: exit 1",
        async () => {
          const path = await write("broken.yaml", [
            "name: fine, table: orders",
            "name: gone, table: no_such_table",
            "name: nocol, query: 'SELECT id, n FROM orders', mode: incremental, " +
            "cursor_column: changed_at",
            "name: raw, table: raw_t",
            "name: listcsv, table: orders, format: csv",
          ]);
          const { code, doc, stderr } = await json(["check", "-c", path]);
          assert.equal(code, 1, stderr);
          assert.match(
            stderr,
            /^Error: rivet check: export 'gone', 'nocol', 'raw', 'listcsv' cannot run/,
          );
          assert.match(stderr, /\nHint: fix what the report above names/);
          const failure = (name: string) => exportOf(doc, name).failures.map((f: Json) => f.code);
          assert.deepEqual(failure("fine"), []);
          const gone = exportOf(doc, "gone");
          assert.equal(gone.access.ok, false);
          assert.match(gone.access.error.message, /no_such_table/);
          assert.equal(gone.verdict, "UNSAFE");
          assert.deepEqual(failure("nocol"), ["preflight.column_missing"]);
          assert.match(
            exportOf(doc, "nocol").failures[0].message,
            /^export 'nocol': column 'changed_at'/,
          );
          assert.match(exportOf(doc, "nocol").failures[0].hint, /returns: id, n/);
          assert.deepEqual(failure("raw"), ["source.unsupported_types"]);
          assert.deepEqual(
            exportOf(doc, "raw").columns.map((c: Json) =>
              `${c.name} ${c.source_type} ${c.fidelity}`
            ),
            ["id int4 exact", "r numeric unsupported"],
          );
          assert.deepEqual(exportOf(doc, "raw").violations.map((v: Json) => v.column), ["r"]);
          assert.deepEqual(failure("listcsv"), ["format.csv_unsupported_type"]);
          assert.match(exportOf(doc, "listcsv").failures[0].message, /^export 'listcsv': .*'tags'/);

          const pretty = await runCli(["check", "-c", path, "-e", "gone"]);
          assert.equal(pretty.code, 1);
          assert.match(pretty.stdout, / {2}Access: +FAILED: .*no_such_table/);
          assert.match(pretty.stdout, / {2}Error: export 'gone': .*no_such_table.*\n {4}Hint: /);
        },
      );

      await t.step("type report, --target (aliases) and --strict", async () => {
        const path = await write("types.yaml", [
          "name: ids, query: 'SELECT id, u, amount FROM orders'",
          "name: ns, query: 'SELECT id, updated_at FROM orders', " +
          "columns: { updated_at: timestamptz_ns }",
        ]);
        const plain = await runCli(["check", "-c", path, "--type-report", "-e", "ids"]);
        assert.equal(plain.code, 0, plain.stderr);
        assert.match(
          plain.stdout,
          / {2}Type report:\n {4}COLUMN +SOURCE TYPE +ARROW TYPE +FIDELITY\n {4}id +int4 +Int32 +exact\n {4}u +uuid +FixedSizeBinary\[16\] +exact\n {4}amount +numeric\(12,2\) +Decimal128\(12, 2\) +exact\n/,
        );

        const spark = await json(["check", "-c", path, "-e", "ids", "--target", "spark"]);
        assert.equal(spark.code, 0, "advisory without --strict");
        const u = exportOf(spark.doc, "ids").columns.find((c: Json) => c.name === "u");
        assert.equal(u.fidelity, "exact");
        assert.equal(u.target_fidelity, "unsupported");
        assert.match(u.note, /Spark cannot read the Arrow UUID extension/);
        assert.deepEqual(exportOf(spark.doc, "ids").violations.map((v: Json) => v.column), ["u"]);
        const strict = await runCli([
          "check",
          "-c",
          path,
          "-e",
          "ids",
          "--target",
          "spark",
          "--strict",
        ]);
        assert.equal(strict.code, 1);
        assert.match(
          strict.stderr,
          /^Error: rivet check --strict: 1 column is lossy or unsupported\n/,
        );
        assert.match(
          strict.stdout,
          / {4}u +uuid +FixedSizeBinary\[16\] +exact +\(none\) +unsupported\n/,
        );
        const duck = await json(["check", "-c", path, "-e", "ids", "--target", "duck", "--strict"]);
        assert.equal(duck.code, 0, duck.stderr);
        assert.equal(exportOf(duck.doc, "ids").target, "duckdb");

        const bq = await runCli(["check", "-c", path, "-e", "ns", "--target", "bq", "--strict"]);
        assert.equal(bq.code, 1, "nanoseconds are lossy in BigQuery");
        assert.match(bq.stdout, /lossy: 'updated_at': BigQuery keeps microseconds only/);
        const sf = await runCli(["check", "-c", path, "-e", "ns", "--target", "sf", "--strict"]);
        assert.equal(sf.code, 0, sf.stderr);
        const bad = await runCli(["check", "-c", path, "--target", "excel"]);
        assert.equal(bad.code, 2, "an unknown target is a usage error");
        const fromConfig = await write("target.yaml", [
          "name: ids, query: 'SELECT id, u FROM orders', target: spark",
          "name: odd, query: 'SELECT id FROM orders', target: excel",
        ]);
        const configured = await json(["check", "-c", fromConfig, "-e", "ids"]);
        assert.equal(configured.doc.exports[0].target, "spark", "exports[].target applies");
        const flagWins = await json(["check", "-c", fromConfig, "-e", "ids", "--target", "duckdb"]);
        assert.equal(flagWins.doc.exports[0].target, "duckdb", "the flag beats exports[].target");
        const odd = await runCli(["check", "-c", fromConfig]);
        assert.equal(odd.code, 1);
        assert.match(
          odd.stderr,
          /^Error: export 'odd': unknown target 'excel'\nHint: use one of: duckdb, duck,/,
        );
      });

      await t.step("unknown export, wrong password, unwritable destination", async () => {
        const path = await write("one.yaml", ["name: fine, table: orders"]);
        const unknown = await runCli(["check", "-c", path, "-e", "fin"]);
        assert.equal(unknown.code, 1);
        assert.match(
          unknown.stderr,
          /unknown export 'fin'; known exports: fine \(did you mean 'fine'\?\)/,
        );
        assert.equal(unknown.stdout, "");

        Deno.env.set(
          "CHECK_TEST_PG_URL",
          `postgresql://${user}:wrong${MARKER}@${pg.host}:${pg.port}/postgres`,
        );
        try {
          const res = await runCli(["check", "-c", path]);
          assertNoSecret(res);
          assert.equal(res.code, 1, res.stderr);
          assert.match(res.stderr, /Authentication failed/);
          const j = await runCli(["check", "-c", path, "--json", "--json-errors"]);
          assertNoSecret(j);
        } finally {
          Deno.env.set(
            "CHECK_TEST_PG_URL",
            `postgresql://${user}:${
              encodeURIComponent(password + MARKER)
            }@${pg.host}:${pg.port}/postgres`,
          );
        }

        const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const closed = (listener.addr as Deno.NetAddr).port;
        listener.close();
        const down = join(dir, "down.yaml");
        await Deno.writeTextFile(
          down,
          `source:\n  type: postgres\n  url: postgresql://u:${MARKER}@127.0.0.1:${closed}/db\n` +
            "exports:\n  - { name: fine, table: orders, format: parquet, " +
            "destination: { type: stdout } }\n",
        );
        const unreachable = await runCli(["check", "-c", down]);
        assertNoSecret(unreachable);
        assert.equal(unreachable.code, 2, unreachable.stderr);
        // The config's own warnings come first, on stderr, as with `rivet run`.
        assert.match(unreachable.stderr, /^Warning: source\.url embeds a plaintext password/);
        assert.match(unreachable.stderr, /\nError: .*connection refused/);
        assert.equal(unreachable.stdout, "");

        const file = join(dir, "a_file");
        await Deno.writeTextFile(file, "not a folder");
        const blocked = join(dir, "blocked.yaml");
        await Deno.writeTextFile(
          blocked,
          "source:\n  type: postgres\n  url_env: CHECK_TEST_PG_URL\nexports:\n" +
            `  - { name: fine, table: orders, format: parquet, destination: { type: local, path: "${file}/sub" } }\n`,
        );
        const res = await json(["check", "-c", blocked]);
        assert.equal(res.code, 1);
        assert.match(res.stderr, /a destination refused the credentials probe/);
        assert.equal(res.doc.destinations[0].ok, false);
        assert.match(res.doc.destinations[0].hint, /must exist or be creatable/);
      });
    } finally {
      Deno.env.delete("CHECK_TEST_PG_URL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
