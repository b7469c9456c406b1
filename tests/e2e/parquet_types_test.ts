/**
 * `parquet_types: portable | extended` end to end: a PostgreSQL table with uuid, jsonb, json and
 * uuid[] columns exported both ways and read back by Polars (nodejs-polars, a dev-only reader)
 * and by the independent reader (hyparquet), which checks the footer: no Arrow extension metadata
 * and no UUID/JSON logical types in portable, UUID-annotated uuid[] elements in extended. Then a
 * MariaDB `columns: {c: uuid}` override and a SQL Server uniqueidentifier (the TDS test server)
 * in portable. Expected values are the literals inserted, never output of the code under test.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import pl from "nodejs-polars";
import { startPostgres } from "../_helpers/pg_server.ts";
import { startMariaDb } from "../_helpers/mariadb_server.ts";
import { startTdsServer } from "../_helpers/tds_server.ts";
import { readParquet } from "../_helpers/parquet_oracle.ts";
import { runCli, spawnCli } from "../_helpers/cli.ts";

const U1 = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
const U2 = "00000000-0000-0000-0000-000000000000";
const U3 = "ffffffff-ffff-4fff-bfff-ffffffffffff";

/** The one Parquet file of an export folder. */
async function onlyParquet(dir: string): Promise<string> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".parquet")) names.push(e.name);
  assert.equal(names.length, 1, `parquet files in ${dir}: ${names}`);
  return join(dir, names[0]!);
}

// deno-lint-ignore no-explicit-any
type SchemaElement = any;

/** `id → [u, us]` of every Parquet file of an export folder, read by Polars. */
async function polarsById(dir: string): Promise<Map<number, unknown>> {
  const out = new Map<number, unknown>();
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.endsWith(".parquet")) continue;
    for (const row of pl.readParquet(join(dir, e.name)).toRecords()) {
      const us = row.us === null ? null : [...(row.us as Iterable<unknown>)];
      out.set(Number(row.id), [row.u, us]);
    }
  }
  return out;
}

/** The footer's schema elements, by name. */
async function schemaElements(path: string): Promise<Map<string, SchemaElement>> {
  const { metadata } = await readParquet(path);
  return new Map(metadata.schema.map((el: SchemaElement) => [el.name, el]));
}

/** The `ARROW:schema` key/value of the footer, decoded to text (base64 of IPC bytes). */
async function arrowSchemaText(path: string): Promise<string> {
  const { metadata } = await readParquet(path);
  const kv = (metadata.key_value_metadata ?? []).find((e: SchemaElement) =>
    e.key === "ARROW:schema"
  );
  assert.ok(kv, "ARROW:schema is written");
  const bin = atob(kv.value);
  return bin;
}

Deno.test({
  name: "parquet_types: portable writes text every reader opens; extended annotates uuid[]",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    const dir = await Deno.makeTempDir({ prefix: "rivet_parquet_types_" });
    await pg.psql(`
      CREATE TABLE docs (id int PRIMARY KEY, u uuid, jb jsonb, j json, us uuid[]);
      INSERT INTO docs VALUES
        (1, '${U1.toUpperCase()}', '{"a": 1}', '{"b":  [1, 2]}', ARRAY['${U1}', '${U2}']::uuid[]),
        (2, NULL, NULL, NULL, NULL),
        (3, '${U3}', '[true, null]', '"text"', ARRAY['${U3}', NULL]::uuid[]),
        (4, '${U2}', '{}', '{}', ARRAY[]::uuid[]);
    `);
    let n = 0;
    const run = async (
      name: string,
      body: string,
      source: { type: string; url: string } = { type: "postgres", url: pg.url },
    ) => {
      const cfg = join(dir, `rivet_${++n}.yaml`);
      await Deno.writeTextFile(
        cfg,
        `source:\n  type: ${source.type}\n  url: ${source.url}\nexports:\n  - name: ${name}\n` +
          `${body}    destination: { type: local, path: ${dir}/out/${name} }\n`,
      );
      const result = await runCli(["run", "-c", cfg]);
      return { ...result, out: join(dir, "out", name), cfg };
    };
    /** The docs export; without `types`, no `parquet_types:` key (the default, extended). */
    const docs = (types?: string) =>
      `    query: SELECT * FROM docs ORDER BY id\n    format: parquet\n` +
      (types === undefined ? "" : `    parquet_types: ${types}\n`);

    try {
      await t.step("portable: Polars reads uuid, jsonb, json and uuid[] as text", async () => {
        const r = await run("portable", docs("portable"));
        assert.equal(r.code, 0, r.stderr);
        const df = pl.readParquet(await onlyParquet(r.out));
        assert.deepEqual(df.getColumn("u").toArray(), [U1, null, U3, U2]);
        assert.deepEqual(df.getColumn("jb").toArray(), ['{"a": 1}', null, "[true, null]", "{}"]);
        assert.deepEqual(df.getColumn("j").toArray(), ['{"b":  [1, 2]}', null, '"text"', "{}"]);
        const lists = df.getColumn("us").toArray().map((v: unknown) =>
          v === null ? null : [...(v as Iterable<unknown>)]
        );
        assert.deepEqual(lists, [[U1, U2], null, [U3, null], []]);
        assert.equal(String(df.getColumn("u").dtype), "DataType(String)");
      });

      await t.step("portable: no extension metadata and no UUID/JSON logical types", async () => {
        const path = await onlyParquet(join(dir, "out", "portable"));
        const els = await schemaElements(path);
        for (const name of ["u", "jb", "j", "item"]) {
          const el = els.get(name);
          assert.ok(el, `column ${name}`);
          assert.equal(el.type, "BYTE_ARRAY", name);
          assert.equal(el.converted_type, "UTF8", name);
          assert.equal(el.logical_type?.type, "STRING", name);
        }
        assert.ok(!(await arrowSchemaText(path)).includes("ARROW:extension"));
        const { rows } = await readParquet(path);
        assert.deepEqual(rows.map((row) => row.u), [U1, undefined, U3, U2].map((v) => v ?? null));
      });

      await t.step("extended: Polars refuses the file, which is why portable exists", async () => {
        const r = await run("extended", docs());
        assert.equal(r.code, 0, r.stderr);
        const path = await onlyParquet(r.out);
        // The error Polars gives: "cannot create series from Extension(ExtensionType { name:
        // "arrow.uuid", …" (or "arrow.json": it reads columns in parallel, the first one fails).
        assert.throws(
          () => pl.readParquet(path),
          /cannot create series from Extension.*arrow\.(uuid|json)/,
        );
        for (const [column, extension] of [["u", "uuid"], ["jb", "json"], ["j", "json"]]) {
          assert.throws(
            () => pl.readParquet(path, { columns: [column!] }),
            new RegExp(`cannot create series from Extension.*arrow\\.${extension}`),
            column,
          );
        }
        const explicit = await run("extended_explicit", docs("extended"));
        assert.equal(explicit.code, 0, explicit.stderr);
        assert.deepEqual(
          (await readParquet(await onlyParquet(explicit.out))).metadata.schema,
          (await readParquet(path)).metadata.schema,
        );
      });

      await t.step("extended: uuid and uuid[] elements carry the UUID logical type", async () => {
        const path = await onlyParquet(join(dir, "out", "extended"));
        const els = await schemaElements(path);
        for (const name of ["u", "item"]) {
          const el = els.get(name);
          assert.equal(el.type, "FIXED_LEN_BYTE_ARRAY", name);
          assert.equal(el.type_length, 16, name);
          assert.equal(el.logical_type?.type, "UUID", name);
        }
        assert.equal(els.get("jb").logical_type?.type, "JSON");
        const { rows } = await readParquet(path);
        assert.deepEqual(rows[0]!.us, [U1, U2]);
        assert.deepEqual(rows[2]!.us, [U3, null]);
      });

      await t.step("check --type-report describes the portable columns as text", async () => {
        const r = await run("portable_check", docs("portable"));
        assert.equal(r.code, 0, r.stderr);
        // Also when another column is refused: the report lists the others as written.
        const refused = join(dir, "refused.yaml");
        await Deno.writeTextFile(
          refused,
          (await Deno.readTextFile(r.cfg)).replace(
            "SELECT * FROM docs",
            "SELECT *, '10.0.0.1'::inet AS addr FROM docs",
          ),
        );
        for (const [cfg, code] of [[r.cfg, 0], [refused, 1]] as const) {
          const report = await runCli(["check", "-c", cfg, "--json"]);
          assert.equal(report.code, code, report.stderr);
          const columns = JSON.parse(report.stdout).exports[0].columns;
          const byName = new Map(columns.map((c: SchemaElement) => [c.name, c]));
          for (
            const [name, source, arrow] of [
              ["u", "uuid", "Utf8"],
              ["jb", "jsonb", "Utf8"],
              ["j", "json", "Utf8"],
              ["us", "uuid[]", "List<Utf8>"],
            ]
          ) {
            const c = byName.get(name) as SchemaElement;
            assert.deepEqual(
              [c.source_type, c.arrow_type, c.fidelity],
              [source, arrow, "logical_string"],
              `${cfg}: ${name}`,
            );
          }
        }
        for (const target of ["spark", "polars"]) {
          const judged = await runCli(["check", "-c", r.cfg, "--type-report", "--target", target]);
          assert.equal(judged.code, 0, judged.stderr);
          assert.doesNotMatch(judged.stdout, /unsupported/, target);
        }
      });

      await t.step("check --target polars recommends portable for extended files", async () => {
        const r = await run("extended_check", docs());
        assert.equal(r.code, 0, r.stderr);
        const polars = await runCli(["check", "-c", r.cfg, "--type-report", "--target", "polars"]);
        for (const name of ["u", "jb", "j"]) {
          assert.match(
            polars.stdout,
            new RegExp(`unsupported: '${name}': .*parquet_types: portable`),
          );
        }
        const spark = await runCli(["check", "-c", r.cfg, "--type-report", "--target", "spark"]);
        for (const name of ["u", "us"]) {
          assert.match(
            spark.stdout,
            new RegExp(`unsupported: '${name}': .*parquet_types: portable`),
          );
        }
      });

      await t.step("chunk workers and child processes write the same portable text", async () => {
        const expected = new Map<number, unknown>([
          [1, [U1, [U1, U2]]],
          [2, [null, null]],
          [3, [U3, [U3, null]]],
          [4, [U2, []]],
        ]);
        const chunked = await run(
          "portable_workers",
          "    table: docs\n    mode: chunked\n    chunk_column: id\n    chunk_size: 1\n" +
            "    parallel: 2\n    format: parquet\n    parquet_types: portable\n",
        );
        assert.equal(chunked.code, 0, chunked.stderr);
        assert.deepEqual(await polarsById(chunked.out), expected);
        const child = await run("portable_child", docs("portable"));
        await Deno.remove(child.out, { recursive: true });
        const spawned = await spawnCli(["run", "-c", child.cfg, "--parallel-export-processes"], {
          cwd: dir,
        });
        assert.equal(spawned.code, 0, spawned.stderr);
        assert.deepEqual(await polarsById(child.out), expected);
      });

      await t.step("the schema baseline records the written types: a switch is drift", async () => {
        const first = await run("switch", docs() + "    on_schema_drift: fail\n");
        assert.equal(first.code, 0, first.stderr);
        const cfg = await Deno.readTextFile(first.cfg);
        await Deno.writeTextFile(
          first.cfg,
          cfg.replace(
            "on_schema_drift: fail",
            "on_schema_drift: fail\n    parquet_types: portable",
          ),
        );
        const switched = await runCli(["run", "-c", first.cfg]);
        assert.equal(switched.code, 4, switched.stderr);
        assert.match(
          switched.stderr,
          /retyped u \(FixedSizeBinary\[16\] → Utf8\), us \(List<FixedSizeBinary\[16\]> → List<Utf8>\)/,
        );
      });

      await t.step("the row hash is the same in both modes, but for uuid[] columns", async () => {
        const hashes = async (columns: string, types?: string) => {
          const r = await run(
            `hash_${++n}`,
            `    query: SELECT ${columns} FROM docs ORDER BY id\n    format: parquet\n` +
              (types === undefined ? "" : `    parquet_types: ${types}\n`) +
              "    meta_columns: {row_hash: true}\n",
          );
          assert.equal(r.code, 0, r.stderr);
          const { rows } = await readParquet(await onlyParquet(r.out));
          return rows.map((row) => row._rivet_row_hash);
        };
        // A uuid hashes as its text in both modes; a uuid[] element as hex bytes in extended
        // (an unmarked binary element) and as its text in portable.
        const scalars = await hashes("id, u, jb, j");
        assert.equal(new Set(scalars).size, 4);
        assert.deepEqual(await hashes("id, u, jb, j", "portable"), scalars);
        const lists = await hashes("id, us");
        const portableLists = await hashes("id, us", "portable");
        assert.equal(portableLists[1], lists[1], "a NULL list hashes the same");
        assert.equal(portableLists[3], lists[3], "an empty list hashes the same");
        assert.notEqual(portableLists[0], lists[0]);
      });

      await t.step("a CSV export refuses parquet_types: portable", async () => {
        const r = await run(
          "csv_portable",
          `    query: SELECT * FROM docs\n    format: csv\n    parquet_types: portable\n`,
        );
        assert.equal(r.code, 1);
        assert.match(r.stderr, /config\.csv_parquet_types|parquet_types 'portable'/);
      });

      await t.step("MariaDB: uuid (native and columns: {c: uuid}) writes text", async () => {
        await using maria = await startMariaDb();
        await maria.sql(
          "CREATE TABLE ids (id int PRIMARY KEY, c char(36), n uuid); " +
            `INSERT INTO ids VALUES (1, '${U1}', '${U2}'), (2, NULL, NULL), ` +
            `(3, '${U3.toUpperCase()}', '${U1}')`,
          { database: "rivet" },
        );
        const r = await run(
          "maria_portable",
          "    query: SELECT id, c, n FROM ids ORDER BY id\n    format: parquet\n" +
            "    parquet_types: portable\n    columns: { c: uuid }\n",
          { type: "mysql", url: maria.url },
        );
        assert.equal(r.code, 0, r.stderr);
        const path = await onlyParquet(r.out);
        const els = await schemaElements(path);
        assert.equal(els.get("c").type, "BYTE_ARRAY");
        assert.equal(els.get("n").type, "BYTE_ARRAY", "MariaDB's native uuid type too");
        const df = pl.readParquet(path);
        assert.deepEqual(df.getColumn("c").toArray(), [U1, null, U3]);
        assert.deepEqual(df.getColumn("n").toArray(), [U2, null, U1]);
      });

      await t.step("SQL Server: a uniqueidentifier writes its canonical text", async () => {
        await using tds = await startTdsServer();
        await tds.sql(
          "CREATE TABLE ids (id int NOT NULL PRIMARY KEY, g uniqueidentifier NULL); " +
            `INSERT INTO ids VALUES (1, '${U1.toUpperCase()}'), (2, NULL), (3, '${U3}')`,
        );
        const r = await run(
          "mssql_portable",
          "    query: SELECT id, g FROM ids ORDER BY id\n    format: parquet\n" +
            "    parquet_types: portable\n",
          { type: "mssql", url: JSON.stringify(tds.url) },
        );
        assert.equal(r.code, 0, r.stderr);
        const path = await onlyParquet(r.out);
        assert.equal((await schemaElements(path)).get("g").type, "BYTE_ARRAY");
        assert.deepEqual(pl.readParquet(path).getColumn("g").toArray(), [U1, null, U3]);
      });
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
