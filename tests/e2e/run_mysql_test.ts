/**
 * End to end on MariaDB: `rivet run` with `source.type: mysql`, every type of the mapping
 * (as the README lists it) with NULLs and extremes, read back with the independent Parquet reader
 * (hyparquet) and compared value by value with what the `mariadb` client computes; CSV compared
 * byte for byte; zero dates become NULL with a warning.
 */
import assert from "node:assert/strict";
import { startMariaDb } from "../_helpers/mariadb_server.ts";
import { readParquet } from "../_helpers/parquet_oracle.ts";
import { runCli } from "../_helpers/cli.ts";

const seed = `
CREATE TABLE all_types (
  id bigint PRIMARY KEY,
  c_bool tinyint(1), c_bit1 bit(1), c_tiny tinyint, c_utiny tinyint unsigned,
  c_small smallint, c_usmall smallint unsigned, c_medium mediumint, c_umedium mediumint unsigned,
  c_int int, c_uint int unsigned, c_big bigint, c_ubig bigint unsigned, c_bit8 bit(8),
  c_dec decimal(12,2), c_dec38 decimal(38,10), c_float float, c_double double,
  c_date date, c_time time(6), c_dt datetime(6), c_ts timestamp(6) NULL DEFAULT NULL, c_year year,
  c_char char(5), c_varchar varchar(50), c_text longtext, c_blob longblob, c_varbinary varbinary(16),
  c_json json, c_enum enum('sad','ok','happy'), c_set set('a','b','c'),
  c_uuid_text char(36), c_uuid_bin binary(16)
) DEFAULT CHARSET utf8mb4;
SET time_zone = '+00:00';
INSERT INTO all_types VALUES
 (1, 1, b'1', 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, b'00000011', 1234.56, 1.0000000001, 1.5, 2.25,
  '2024-02-29', '12:34:56.789012', '2024-02-29 12:34:56.789012', '2024-02-29 12:34:56.789012',
  2024, 'ab', 'varchar', 'hello', x'00ff10', x'0102', '{"a": 1}', 'happy', 'a,c',
  'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', x'a0eebc999c0b4ef8bb6d6bb9bd380a11'),
 (2, ${Array(32).fill("NULL").join(", ")}),
 (3, 0, b'0', -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, b'0',
  -9999999999.99, -9999999999999999999999999999.9999999999, -3.4e38, -1.7976931348623157e308,
  '1000-01-01', '00:00:00', '1000-01-01 00:00:00', '1970-01-01 00:00:01', 1901, '', '', '', x'',
  x'', '[]', 'sad', '', '00000000-0000-0000-0000-000000000000', x'00000000000000000000000000000000'),
 (4, 1, b'1', 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
  9223372036854775807, 18446744073709551615, b'11111111', 9999999999.99,
  9999999999999999999999999999.9999999999, 3.4e38, 1.7976931348623157e308, '9999-12-31',
  '23:59:59.999999', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', 2155, 'xyz',
  'ünïcødé', 'héllo ✓ 🚀 "quoted", comma\\nnew line', x'deadbeef', x'ffff', '{"k": "v"}', 'ok',
  'a,b,c', 'ffffffff-ffff-ffff-ffff-ffffffffffff', x'ffffffffffffffffffffffffffffffff'),
 (5, 0, b'0', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, b'0', 0.00, -0.0000000001, 0, -0.5, '1969-12-31',
  '00:00:00.000001', '1969-12-31 23:59:59.999999', NULL, NULL, NULL, NULL, REPEAT('x', 2000000),
  REPEAT(x'ab', 1000000), NULL, NULL, NULL, NULL, NULL, NULL);
SET SESSION sql_mode = '';
CREATE TABLE zero_dates (id int, d date, dt datetime);
INSERT INTO zero_dates VALUES (1, '0000-00-00', '0000-00-00 00:00:00'), (2, '2024-01-02', '2024-01-02 03:04:05');
`;

/** Canonical text of each column as MariaDB computes it (session in UTC). */
const expectedColumns: Record<string, string> = {
  id: "id",
  c_bool: "c_bool",
  c_bit1: "CAST(c_bit1 AS UNSIGNED)",
  c_tiny: "c_tiny",
  c_utiny: "c_utiny",
  c_small: "c_small",
  c_usmall: "c_usmall",
  c_medium: "c_medium",
  c_umedium: "c_umedium",
  c_int: "c_int",
  c_uint: "c_uint",
  c_big: "c_big",
  c_ubig: "c_ubig",
  c_bit8: "CAST(c_bit8 AS UNSIGNED)",
  c_double: "c_double",
  c_date: "DATEDIFF(c_date, '1970-01-01')",
  c_time:
    "HOUR(c_time) * 3600000000 + MINUTE(c_time) * 60000000 + SECOND(c_time) * 1000000 + MICROSECOND(c_time)",
  c_dt: "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', c_dt)",
  c_ts: "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', c_ts)",
  c_year: "c_year",
  c_char: "HEX(c_char)",
  c_varchar: "HEX(c_varchar)",
  c_text: "HEX(c_text)",
  c_blob: "HEX(c_blob)",
  c_varbinary: "HEX(c_varbinary)",
  c_json: "HEX(c_json)",
  c_enum: "HEX(c_enum)",
  c_set: "HEX(c_set)",
  c_uuid_text: "LOWER(c_uuid_text)",
  c_uuid_bin: "LOWER(HEX(c_uuid_bin))",
};

const encoder = new TextEncoder();
const hex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();

/** The Parquet value of a column in the canonical form of `expectedColumns`. */
function canonical(column: string, value: unknown): string {
  if (value === null || value === undefined) return "NULL";
  if (typeof value === "boolean") return value ? "1" : "0";
  switch (column) {
    case "c_char":
    case "c_varchar":
    case "c_text":
    case "c_json":
    case "c_enum":
    case "c_set":
      return hex(encoder.encode(String(value)));
    case "c_blob":
    case "c_varbinary":
      return hex(value as Uint8Array);
    case "c_uuid_bin":
      return String(value).replaceAll("-", "");
    default:
      return String(value);
  }
}

async function listFiles(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir)).catch(() => [])).map((e) => e.name).sort();
}

Deno.test({
  name: "rivet run exports MariaDB to local Parquet and CSV exactly",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using db = await startMariaDb();
    await db.sql(seed, { database: db.database });
    const dir = await Deno.makeTempDir({ prefix: "rivet_mysql_e2e_" });
    Deno.env.set("MY_URL", db.url);
    const config = async (name: string, exports: string) => {
      const path = `${dir}/${name}.yaml`;
      await Deno.writeTextFile(
        path,
        `source:\n  type: mysql\n  url_env: MY_URL\nexports:\n${exports}`,
      );
      return path;
    };

    await t.step("every mapped type round-trips value by value through Parquet", async () => {
      const out = `${dir}/types`;
      const cfg = await config(
        "types",
        `  - name: all_types
    query: SELECT * FROM all_types ORDER BY id
    format: parquet
    columns:
      c_uuid_text: uuid
      c_uuid_bin: uuid
    destination: { type: local, path: ${out} }
`,
      );
      const res = await runCli(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      const data = (await listFiles(out)).filter((f) => f.endsWith(".parquet"));
      assert.equal(data.length, 1);
      const { rows, schema } = await readParquet(`${out}/${data[0]}`);
      const names = Object.keys(expectedColumns);
      const text = await db.sql(
        `SET time_zone = '+00:00'; SELECT ${
          names.map((n) => `COALESCE(CAST(${expectedColumns[n]} AS CHAR), 'NULL')`).join(", ")
        } FROM all_types ORDER BY id`,
        { database: db.database },
      );
      const expected = text.trimEnd().split("\n").map((line) => line.split("\t"));
      assert.equal(rows.length, expected.length);
      for (let r = 0; r < expected.length; r++) {
        names.forEach((name, c) => {
          const want = expected[r]![c]!;
          const got = canonical(name, rows[r]![name]);
          if (name === "c_double" && want !== "NULL") {
            assert.equal(Number(got), Number(want), `row ${r + 1} ${name}`);
          } else {
            assert.equal(got, want, `row ${r + 1} ${name}`);
          }
        });
      }
      // float, decimal: exact checks against the inserted literals (decimals again through CSV).
      assert.deepEqual(rows.map((row) => row.c_float), [
        Math.fround(1.5),
        null,
        Math.fround(-3.4e38),
        Math.fround(3.4e38),
        0,
      ]);
      assert.deepEqual(rows.map((row) => row.c_dec), [
        1234.56,
        null,
        -9999999999.99,
        9999999999.99,
        0,
      ]);

      const byName = Object.fromEntries(
        // deno-lint-ignore no-explicit-any
        schema.children.map((c: any) => [c.element.name, c.element]),
      );
      assert.equal(byName.c_bool.type, "BOOLEAN");
      assert.equal(byName.c_bit1.type, "BOOLEAN");
      assert.equal(byName.c_ubig.logical_type?.type, "INTEGER");
      assert.equal(byName.c_ubig.logical_type?.isSigned, false);
      assert.equal(byName.c_dec.precision, 12);
      assert.equal(byName.c_dec.scale, 2);
      assert.equal(byName.c_dec38.precision, 38);
      assert.equal(byName.c_dec38.scale, 10);
      assert.equal(byName.c_dt.logical_type?.isAdjustedToUTC, false);
      assert.equal(byName.c_ts.logical_type?.isAdjustedToUTC, true);
      assert.equal(byName.c_ts.logical_type?.unit, "MICROS");
      assert.equal(byName.c_date.logical_type?.type, "DATE");
      assert.equal(byName.c_json.logical_type?.type, "JSON");
      assert.equal(byName.c_uuid_text.logical_type?.type, "UUID");
      assert.equal(byName.c_uuid_bin.logical_type?.type, "UUID");
      assert.equal(byName.c_blob.logical_type, undefined);
    });

    await t.step("CSV renders every MySQL type exactly", async () => {
      const out = `${dir}/csv`;
      const cfg = await config(
        "csv",
        `  - name: csv_types
    query: >-
      SELECT id, c_bool, c_bit1, c_ubig, c_big, c_dec, c_dec38, c_date, c_time, c_dt, c_ts,
      c_year, c_text, c_blob, c_enum, c_set, c_uuid_text FROM all_types WHERE id <= 4 ORDER BY id
    format: csv
    columns:
      c_uuid_text: uuid
    destination: { type: local, path: ${out} }
`,
      );
      const res = await runCli(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      const data = (await listFiles(out)).filter((f) => f.endsWith(".csv"));
      assert.equal(
        await Deno.readTextFile(`${out}/${data[0]}`),
        [
          "id,c_bool,c_bit1,c_ubig,c_big,c_dec,c_dec38,c_date,c_time,c_dt,c_ts,c_year,c_text,c_blob,c_enum,c_set,c_uuid_text",
          '1,true,true,10,9,1234.56,1.0000000001,2024-02-29,12:34:56.789012,2024-02-29T12:34:56.789012,2024-02-29T12:34:56.789012,2024,hello,00ff10,happy,"a,c",a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
          "2,,,,,,,,,,,,,,,,",
          "3,false,false,0,-9223372036854775808,-9999999999.99,-9999999999999999999999999999.9999999999,1000-01-01,00:00:00.000000,1000-01-01T00:00:00.000000,1970-01-01T00:00:01.000000,1901,,,sad,,00000000-0000-0000-0000-000000000000",
          '4,true,true,18446744073709551615,9223372036854775807,9999999999.99,9999999999999999999999999999.9999999999,9999-12-31,23:59:59.999999,9999-12-31T23:59:59.999999,2038-01-19T03:14:07.999999,2155,"héllo ✓ 🚀 ""quoted"", comma\nnew line",deadbeef,ok,"a,b,c",ffffffff-ffff-ffff-ffff-ffffffffffff',
          "",
        ].join("\n"),
      );
    });

    await t.step("zero dates become NULL with a warning naming the column", async () => {
      const out = `${dir}/zero`;
      const cfg = await config(
        "zero",
        `  - name: zero
    query: SELECT id, d, dt FROM zero_dates ORDER BY id
    format: csv
    destination: { type: local, path: ${out} }
`,
      );
      const res = await runCli(["run", "-c", cfg]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, /Warning: .*zero/i);
      assert.match(res.stderr, /\bd\b/);
      const data = (await listFiles(out)).filter((f) => f.endsWith(".csv"));
      assert.equal(
        await Deno.readTextFile(`${out}/${data[0]}`),
        "id,d,dt\n1,,\n2,2024-01-02,2024-01-02T03:04:05.000000\n",
      );
    });

    Deno.env.delete("MY_URL");
    await Deno.remove(dir, { recursive: true });
  },
});
