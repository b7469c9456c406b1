/**
 * End to end: `rivet run` against a real PostgreSQL 15 started by the harness, output read back
 * with an independent Parquet reader (hyparquet) and compared value by value with what PostgreSQL
 * itself renders; CSV compared byte for byte; manifest and `_SUCCESS` recomputed here.
 */
import assert from "node:assert/strict";
import { startPostgres } from "../_helpers/pg_server.ts";
import { readParquet } from "../_helpers/parquet_oracle.ts";
import { runCli } from "../_helpers/cli.ts";

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

    await Deno.remove(dir, { recursive: true });
  },
});
