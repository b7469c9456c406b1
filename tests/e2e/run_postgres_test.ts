/**
 * End to end: `rivet run` against a real PostgreSQL 15 started by the harness, output read back
 * with an independent Parquet reader (hyparquet) and compared value by value with what PostgreSQL
 * itself renders; CSV compared byte for byte; manifest and `_SUCCESS` recomputed here.
 */
import assert from "node:assert/strict";
import { createXXHash3 } from "hash-wasm";
import { startPostgres } from "../_helpers/pg_server.ts";
import { readParquet } from "../_helpers/parquet_oracle.ts";
import { runCli, spawnCli } from "../_helpers/cli.ts";

const seed = `
SET intervalstyle = iso_8601;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE all_types (
  id int8 PRIMARY KEY,
  c_bool bool, c_int2 int2, c_int4 int4, c_int8 int8, c_float4 float4, c_float8 float8,
  c_num numeric(12,2), c_num38 numeric(38,10), c_date date, c_time time,
  c_ts timestamp, c_tstz timestamptz, c_text text, c_varchar varchar(20), c_bpchar char(5),
  c_bytea bytea, c_json json, c_jsonb jsonb, c_uuid uuid, c_interval interval, c_mood mood,
  c_int4arr int4[], c_textarr text[]
);
INSERT INTO all_types VALUES
 (1, true, 1, 2, 3, 1.5, 2.25, 1234.56, 1.0000000001, '2024-02-29', '12:34:56.789012',
  '2024-02-29 12:34:56.789012', '2024-02-29 12:34:56.789012+02', 'hello', 'varchar', 'ab',
  '\\x00ff10', '{"a": 1}', '{"b": [1, 2]}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '1 year 2 months 3 days 04:05:06.5', 'happy', '{1,NULL,3}', '{"x",NULL,"y z"}'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, false, -32768, -2147483648, -9223372036854775808, -3.4e38, -1.7976931348623157e308,
  -9999999999.99, -9999999999999999999999999999.9999999999, '0001-01-01', '00:00:00',
  '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '', '', '', '\\x', '[]', '{}',
  '00000000-0000-0000-0000-000000000000', '-1 days -00:00:00.000001', 'sad', '{}', '{}'),
 (4, true, 32767, 2147483647, 9223372036854775807, 3.4e38, 1.7976931348623157e308,
  9999999999.99, 9999999999999999999999999999.9999999999, '9999-12-31', '23:59:59.999999',
  '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999999+00',
  E'héllo ✓ 🚀 "quoted", comma\\nnew line', 'ünïcødé', 'xyz', '\\xdeadbeef',
  '{"k": "v\\u00e9"}', '{"n": null}', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '00:00:00', 'ok',
  '{-1}', '{""}'),
 (5, false, 0, 0, 0, 0, -0.0, 0.00, -0.0000000001, '1969-12-31', '00:00:00.000001',
  '1969-12-31 23:59:59.999999', '1999-12-31 23:59:59.999999-05', repeat('x', 2000000),
  NULL, NULL, decode(repeat('ab', 1000000), 'hex'), NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE bulk AS
  SELECT i::int8 AS id, (i * 7919 % 1000)::int4 AS n, md5(i::text) AS s,
         timestamptz '2024-01-01 00:00:00+00' + i * interval '1 second' AS at
  FROM generate_series(1, 150000) AS i;
CREATE TABLE empty_t (id int8, name text);
CREATE TABLE bad_t (id int8, addr inet, r int4range, p point);
`;

/** What PostgreSQL itself says each value is, in a canonical text form. */
const expectedSql = `
SET intervalstyle = iso_8601;
SELECT json_agg(json_build_object(
  'id', id::text,
  'c_bool', c_bool::text,
  'c_int2', c_int2::text, 'c_int4', c_int4::text, 'c_int8', c_int8::text,
  'c_float4', c_float4::text, 'c_float8', c_float8::text,
  'c_num', c_num::text, 'c_num38', c_num38::text,
  'c_date', (c_date - date '1970-01-01')::text,
  'c_time', (extract(epoch from c_time) * 1000000)::numeric(30,0)::text,
  'c_ts', (extract(epoch from c_ts) * 1000000)::numeric(30,0)::text,
  'c_tstz', (extract(epoch from c_tstz) * 1000000)::numeric(30,0)::text,
  'c_text', c_text, 'c_varchar', c_varchar, 'c_bpchar', rpad(c_bpchar::text, 5),
  'c_bytea', encode(c_bytea, 'hex'), 'c_json', c_json::text, 'c_jsonb', c_jsonb::text,
  'c_uuid', c_uuid::text, 'c_interval', c_interval::text, 'c_mood', c_mood::text,
  'c_int4arr', array_to_json(c_int4arr)::text, 'c_textarr', array_to_json(c_textarr)::text
) ORDER BY id) FROM all_types;
`;

function hex(bytes: unknown): string | null {
  if (bytes === null || bytes === undefined) return null;
  return Array.from(bytes as Uint8Array, (b) => b.toString(16).padStart(2, "0")).join("");
}

function canonical(column: string, value: unknown): string | null {
  if (value === null || value === undefined) return null;
  switch (column) {
    case "c_bytea":
      return hex(value);
    case "c_uuid": {
      // The UUID logical type makes hyparquet return the hyphenated string; CSV gives it too.
      if (typeof value === "string") return value;
      const h = hex(value)!;
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${
        h.slice(20)
      }`;
    }
    case "c_int4arr":
    case "c_textarr":
      return JSON.stringify(value);
    case "c_float4":
    case "c_float8":
      return String(value);
    case "c_num":
    case "c_num38":
      return String(value);
    default:
      return typeof value === "bigint" ? value.toString() : String(value);
  }
}

function pgArrayJson(text: string | null): string | null {
  if (text === null) return null;
  return JSON.stringify(JSON.parse(text));
}

async function xxh3Hex(bytes: Uint8Array): Promise<string> {
  const h = await createXXHash3();
  h.init();
  h.update(bytes);
  return h.digest("hex");
}

async function listFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

Deno.test({
  name: "rivet run exports PostgreSQL to local Parquet and CSV exactly",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await pg.psql(seed);
    const dir = await Deno.makeTempDir({ prefix: "rivet_e2e_" });
    const env = { PG_URL: pg.url };
    for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);

    const writeConfig = async (name: string, body: string) => {
      const path = `${dir}/${name}`;
      await Deno.writeTextFile(path, body);
      return path;
    };

    await t.step(
      "every type of the mapping round-trips value by value through Parquet",
      async () => {
        const out = `${dir}/out_types`;
        const cfg = await writeConfig(
          "types.yaml",
          `source:
  type: postgres
  url_env: PG_URL
exports:
  - name: all_types
    query: SELECT * FROM all_types ORDER BY id
    format: parquet
    destination:
      type: local
      path: ${out}
`,
        );
        const res = await runCli(["run", "-c", cfg]);
        assert.equal(res.code, 0, res.stderr);
        const files = await listFiles(out);
        const data = files.filter((f) => f.endsWith(".parquet"));
        assert.equal(data.length, 1, files.join(","));
        assert.match(data[0]!, /^all_types_\d{8}_\d{6}\.parquet$/);
        assert.ok(files.includes("manifest.json") && files.includes("_SUCCESS"));
        assert.ok(!files.some((f) => f.startsWith(".")), `no staging files left: ${files}`);

        const { rows, schema } = await readParquet(`${out}/${data[0]}`);
        const expected = JSON.parse(await pg.psql(expectedSql)) as Record<string, string | null>[];
        assert.equal(rows.length, expected.length);
        for (let i = 0; i < expected.length; i++) {
          const want = expected[i]!;
          const got = rows[i]!;
          for (const column of Object.keys(want)) {
            let w = want[column] ?? null;
            let g = canonical(column, got[column]);
            if (column === "c_int4arr" || column === "c_textarr") w = pgArrayJson(w);
            if ((column === "c_float4" || column === "c_float8") && w !== null && g !== null) {
              const want32 = column === "c_float4" ? Math.fround(Number(w)) : Number(w);
              assert.equal(Number(g), want32, `row ${want.id} ${column}`);
              continue;
            }
            if ((column === "c_num" || column === "c_num38") && w !== null && g !== null) {
              // hyparquet turns decimals into JS numbers; exactness is checked through CSV below.
              const diff = Math.abs(Number(g) - Number(w));
              assert.ok(
                diff <= Math.abs(Number(w)) * 1e-15,
                `row ${want.id} ${column}: ${g} vs ${w}`,
              );
              continue;
            }
            if (w !== null && column === "c_json" || column === "c_jsonb") {
              w = w === null ? null : JSON.stringify(JSON.parse(w));
              g = g === null ? null : JSON.stringify(JSON.parse(g));
            }
            assert.deepEqual(g, w, `row ${want.id} column ${column}`);
          }
        }
        // Logical types the reader sees.
        const byName = Object.fromEntries(
          // deno-lint-ignore no-explicit-any
          schema.children.map((c: any) => [c.element.name, c.element]),
        );
        assert.equal(byName.c_tstz.logical_type?.type, "TIMESTAMP");
        assert.equal(byName.c_tstz.logical_type?.isAdjustedToUTC, true);
        assert.equal(byName.c_ts.logical_type?.isAdjustedToUTC, false);
        assert.equal(byName.c_num.precision, 12);
        assert.equal(byName.c_num.scale, 2);
        assert.equal(byName.c_num38.precision, 38);
        assert.equal(byName.c_date.logical_type?.type, "DATE");
        assert.equal(byName.c_int8.type, "INT64");
        assert.equal(byName.c_uuid.logical_type?.type, "UUID");
        assert.equal(byName.c_json.logical_type?.type, "JSON");
        assert.equal(byName.c_jsonb.logical_type?.type, "JSON");
      },
    );

    await t.step("CSV renders every scalar type exactly", async () => {
      const out = `${dir}/out_csv`;
      const cfg = await writeConfig(
        "csv.yaml",
        `source:
  type: postgres
  url_env: PG_URL
exports:
  - name: csv_types
    query: >-
      SELECT id, c_bool, c_int2, c_int8, c_num, c_num38, c_date, c_time, c_ts, c_tstz,
      c_text, c_bytea, c_uuid, c_interval, c_mood, c_json
      FROM all_types WHERE id IN (1, 2, 3, 4) ORDER BY id
    format: csv
    destination:
      type: local
      path: ${out}
`,
      );
      const res = await runCli(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      const data = (await listFiles(out)).filter((f) => f.endsWith(".csv"));
      assert.equal(data.length, 1);
      const text = await Deno.readTextFile(`${out}/${data[0]}`);
      const expected = [
        "id,c_bool,c_int2,c_int8,c_num,c_num38,c_date,c_time,c_ts,c_tstz,c_text,c_bytea,c_uuid,c_interval,c_mood,c_json",
        '1,true,1,3,1234.56,1.0000000001,2024-02-29,12:34:56.789012,2024-02-29T12:34:56.789012,2024-02-29T10:34:56.789012,hello,00ff10,a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11,P1Y2M3DT4H5M6.5S,happy,"{""a"": 1}"',
        "2,,,,,,,,,,,,,,,",
        "3,false,-32768,-9223372036854775808,-9999999999.99,-9999999999999999999999999999.9999999999,0001-01-01,00:00:00.000000,0001-01-01T00:00:00.000000,0001-01-01T00:00:00.000000,,,00000000-0000-0000-0000-000000000000,P-1DT-0.000001S,sad,[]",
        '4,true,32767,9223372036854775807,9999999999.99,9999999999999999999999999999.9999999999,9999-12-31,23:59:59.999999,9999-12-31T23:59:59.999999,9999-12-31T23:59:59.999999,"héllo ✓ 🚀 ""quoted"", comma\nnew line",deadbeef,ffffffff-ffff-ffff-ffff-ffffffffffff,PT0S,ok,"{""k"": ""v\\u00e9""}"',
        "",
      ].join("\n");
      assert.equal(text, expected);
    });

    await t.step("max_file_size splits into numbered parts whose union is the table", async () => {
      const out = `${dir}/out_split`;
      const cfg = await writeConfig(
        "split.yaml",
        `source:
  type: postgres
  url_env: PG_URL
exports:
  - name: bulk
    table: bulk
    format: csv
    max_file_size: 2MB
    destination:
      type: local
      path: ${out}
`,
      );
      const res = await runCli(["run", "-c", cfg, "--json", "--summary-output", `${dir}/sum.json`]);
      assert.equal(res.code, 0, res.stderr);
      const summary = JSON.parse(res.stdout);
      assert.equal(summary.total_rows, 150000);
      assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/sum.json`)), summary);
      assert.equal(summary.per_export[0].files, summary.total_files);
      const parts = (await listFiles(out)).filter((f) => f.endsWith(".csv"));
      assert.ok(parts.length >= 3, `expected several parts, got ${parts}`);
      parts.forEach((p) => assert.match(p, /^bulk_\d{8}_\d{6}_part\d+\.csv$/));
      const ids = new Set<string>();
      for (const p of parts) {
        const lines = (await Deno.readTextFile(`${out}/${p}`)).trimEnd().split("\n");
        assert.equal(lines[0], "id,n,s,at");
        for (const line of lines.slice(1)) ids.add(line.split(",")[0]!);
      }
      assert.equal(ids.size, 150000);

      // The manifest lists every part with its size and fingerprint; _SUCCESS fingerprints it.
      const manifestBytes = await Deno.readFile(`${out}/manifest.json`);
      const manifest = JSON.parse(new TextDecoder().decode(manifestBytes));
      assert.equal(manifest.manifest_version, 1);
      assert.equal(manifest.status, "success");
      assert.equal(manifest.row_count, 150000);
      assert.equal(manifest.part_count, parts.length);
      for (const part of manifest.parts) {
        const bytes = await Deno.readFile(`${out}/${part.path}`);
        assert.equal(part.size_bytes, bytes.length);
        assert.equal(part.content_fingerprint, `xxh3:${await xxh3Hex(bytes)}`);
      }
      const success = await Deno.readTextFile(`${out}/_SUCCESS`);
      assert.equal(success, `xxh3:${await xxh3Hex(manifestBytes)}\n`);
    });

    await t.step("an empty result writes no data file; skip_empty marks it skipped", async () => {
      const out = `${dir}/out_empty`;
      const cfg = await writeConfig(
        "empty.yaml",
        `source:
  type: postgres
  url_env: PG_URL
exports:
  - name: empty_ok
    table: empty_t
    format: parquet
    destination: { type: local, path: ${out}/a }
  - name: empty_skip
    table: empty_t
    format: parquet
    skip_empty: true
    destination: { type: local, path: ${out}/b }
`,
      );
      const res = await runCli(["run", "-c", cfg, "--json"]);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(await listFiles(`${out}/a`), ["_SUCCESS", "manifest.json"]);
      assert.deepEqual(await listFiles(`${out}/b`), ["manifest.json"]);
      const summary = JSON.parse(res.stdout);
      assert.deepEqual(summary.per_export.map((e: { status: string }) => e.status), [
        "success",
        "skipped",
      ]);
    });

    await t.step("unsupported column types are refused before any file is written", async () => {
      const out = `${dir}/out_bad`;
      const cfg = await writeConfig(
        "bad.yaml",
        `source:
  type: postgres
  url_env: PG_URL
exports:
  - name: bad
    table: bad_t
    format: parquet
    destination: { type: local, path: ${out} }
`,
      );
      const res = await runCli(["run", "-c", cfg]);
      assert.equal(res.code, 1, res.stderr);
      for (const column of ["addr", "r", "p"]) assert.match(res.stderr, new RegExp(column));
      const files = await listFiles(out).catch(() => [] as string[]);
      assert.deepEqual(files, []);
    });

    await t.step(
      "a wrong password fails with exit 1 and the password appears nowhere",
      async () => {
        const marker = "S3CR3T_M4RK3R";
        const password = `p@ss:w/rd-${marker}`;
        const cfg = await writeConfig(
          "pw.yaml",
          `source:
  type: postgres
  url_env: BAD_URL
exports:
  - name: secret_run
    table: bulk
    format: csv
    destination: { type: local, path: ${dir}/out_pw }
`,
        );
        const url = `postgresql://rivet_pw:${
          encodeURIComponent(password)
        }@127.0.0.1:${pg.port}/postgres`;
        for (const extra of [[], ["--json-errors"], ["--json"]]) {
          const res = await spawnCli(["run", "-c", cfg, ...extra], { env: { BAD_URL: url } });
          assert.equal(res.code, 1, res.stderr);
          assert.match(res.stderr, /authentication|password/i);
          for (const text of [res.stdout, res.stderr]) {
            assert.ok(!text.includes(marker), `marker leaked: ${text}`);
            assert.ok(!text.includes(encodeURIComponent(password)));
          }
        }
        for await (const entry of Deno.readDir(`${dir}/.rivet/runs`)) {
          for await (const f of Deno.readDir(`${dir}/.rivet/runs/${entry.name}`)) {
            const text = await Deno.readTextFile(`${dir}/.rivet/runs/${entry.name}/${f.name}`);
            assert.ok(!text.includes(marker), `marker leaked into ${f.name}`);
          }
        }
      },
    );

    await t.step("stdout destination streams CSV to stdout and writes no manifest", async () => {
      const cfg = await writeConfig(
        "stdout.yaml",
        `source:
  type: postgres
  url_env: PG_URL
exports:
  - name: to_stdout
    query: SELECT id, n FROM bulk WHERE id <= 3 ORDER BY id
    format: csv
    destination: { type: stdout }
`,
      );
      const res = await spawnCli(["run", "-c", cfg], { env: { PG_URL: pg.url }, cwd: dir });
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout, "id,n\n1,919\n2,838\n3,757\n");
    });

    await t.step(
      "structured source with password_env, query_file and columns: overrides",
      async () => {
        const out = `${dir}/out_structured`;
        await Deno.mkdir(`${dir}/sql`, { recursive: true });
        await Deno.writeTextFile(
          `${dir}/sql/totals.sql`,
          "SELECT n, sum(id)::numeric AS total, avg(id) AS mean FROM bulk WHERE n < ${max_n} GROUP BY n ORDER BY n",
        );
        const cfg = await writeConfig(
          "structured.yaml",
          `source:
  type: postgres
  host: 127.0.0.1
  port: ${pg.port}
  user: ${pg.passwordUser.user}
  password_env: RIVET_TEST_PW
  database: postgres
exports:
  - name: totals
    query_file: sql/totals.sql
    format: csv
    columns:
      total: "decimal(20,0)"
      mean: "decimal(12,3)"
    destination: { type: local, path: ${out} }
`,
        );
        Deno.env.set("RIVET_TEST_PW", pg.passwordUser.password);
        const res = await runCli(["run", "-c", cfg, "-p", "max_n=3"]);
        Deno.env.delete("RIVET_TEST_PW");
        assert.equal(res.code, 0, res.stderr);
        const data = (await listFiles(out)).filter((f) => f.endsWith(".csv"));
        const text = await Deno.readTextFile(`${out}/${data[0]}`);
        const expected = await pg.psql(
          "SELECT n || ',' || sum(id) || ',' || round(avg(id), 3) FROM bulk WHERE n < 3 GROUP BY n ORDER BY n",
        );
        assert.equal(text, "n,total,mean\n" + expected);
        assert.ok(!res.stderr.includes(pg.passwordUser.password));
      },
    );

    await t.step(
      "an unconstrained numeric without an override is refused with the fix",
      async () => {
        const cfg = await writeConfig(
          "numeric.yaml",
          `source:
  type: postgres
  url_env: PG_URL
exports:
  - name: sums
    query: SELECT sum(id) AS total FROM bulk
    format: parquet
    destination: { type: local, path: ${dir}/out_numeric }
`,
        );
        const res = await runCli(["run", "-c", cfg]);
        assert.equal(res.code, 1, res.stderr);
        assert.match(res.stderr, /total/);
        assert.match(res.stderr, /columns:/);
      },
    );

    await t.step("SIGINT cancels the running query, writes nothing and exits 130", async () => {
      const out = `${dir}/out_sigint`;
      const cfg = await writeConfig(
        "sigint.yaml",
        `source:
  type: postgres
  url_env: PG_URL
exports:
  - name: slow
    query: SELECT 1 AS x FROM pg_sleep(60)
    format: parquet
    destination: { type: local, path: ${out} }
`,
      );
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
        env: { PG_URL: pg.url },
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      // Wait until the query is running on the server, then interrupt.
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline) {
        const n = await pg.psql(
          "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'FETCH%_rivet' AND pid <> pg_backend_pid()",
        );
        if (n.trim() !== "0") break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const started = Date.now();
      child.kill("SIGINT");
      const res = await child.output();
      const stderr = new TextDecoder().decode(res.stderr);
      assert.equal(res.code, 130, stderr);
      assert.ok(Date.now() - started < 10_000, "the interrupt is prompt");
      assert.match(stderr, /interrupted/i);
      const files = await listFiles(out).catch(() => [] as string[]);
      assert.deepEqual(files.filter((f) => !f.startsWith(".")), [], "no committed file");
      assert.deepEqual(files, [], "no staging file either");
      // The server is not left running the statement.
      let running = "1";
      for (let i = 0; i < 50 && running !== "0"; i++) {
        running = (await pg.psql(
          "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'FETCH%_rivet' AND state = 'active' AND pid <> pg_backend_pid()",
        )).trim();
        if (running !== "0") await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(running, "0");
    });

    await Deno.remove(dir, { recursive: true });
  },
});
