/**
 * End-to-end tests of the MySQL/MariaDB source against a real throwaway MariaDB: authentication,
 * every mapped type with NULLs and extremes, batch sizing, cancel, timeouts and error classes.
 * Expected values come from constants or from what the `mariadb` client prints, never from the
 * code under test.
 */
import assert from "node:assert/strict";
import { column, decimalText, defaults, expectError, readAll } from "../_helpers/source_read.ts";
import { RivetError } from "../../src/core/errors.ts";
import type { ConnectionInfo } from "../../src/core/source.ts";
import type { SourceSpec, Warning } from "../../src/core/spec.ts";
import { openSource } from "../../src/sources/mod.ts";
import { type MariaDbServer, startMariaDb } from "../_helpers/mariadb_server.ts";

const spec: SourceSpec = { kind: "mysql", connection: { form: "url_env", env: "UNUSED" } };

function conn(db: MariaDbServer, user = db.user, password: string | undefined = db.password) {
  const info: ConnectionInfo = {
    host: db.host,
    port: db.port,
    user,
    database: db.database,
    params: {},
    ...(password === undefined ? {} : { password }),
  };
  return info;
}

/** The client's answer as rows of tab-separated cells (`NULL` stays the string "NULL"). */
async function clientRows(db: MariaDbServer, sql: string): Promise<string[][]> {
  const out = await db.sql(sql, { database: "rivet" });
  return out.split("\n").filter((l) => l.length > 0).map((l) => l.split("\t"));
}

function hex(bytes: Uint8Array | null): string | null {
  if (bytes === null) return null;
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
}

/** Statements of user `rivet` other than this check, as the server's process list sees them. */
async function runningQueries(db: MariaDbServer): Promise<string[]> {
  const rows = await clientRows(
    db,
    "SELECT INFO FROM information_schema.PROCESSLIST WHERE USER = 'rivet' AND COMMAND = 'Execute'" +
      " OR (USER = 'rivet' AND COMMAND = 'Query')",
  );
  return rows.map((r) => r[0]!);
}

async function waitFor(check: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

Deno.test("MySQL source against MariaDB", async (t) => {
  await using db = await startMariaDb();
  await db.sql(`
    USE rivet;
    SET time_zone = '+00:00';
    CREATE TABLE ints (
      id INT PRIMARY KEY, t TINYINT, tu TINYINT UNSIGNED, s SMALLINT, su SMALLINT UNSIGNED,
      m MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, b BIGINT, bu BIGINT UNSIGNED,
      y YEAR, flag BOOLEAN, b1 BIT(1), b8 BIT(8), b64 BIT(64));
    INSERT INTO ints VALUES
      (1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0, 1901, 0, b'0', b'0', b'0'),
      (2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
          9223372036854775807, 18446744073709551615, 2155, 1, b'1', b'11111111', b'0111111111111111111111111111111111111111111111111111111111111111'),
      (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    CREATE TABLE decs (id INT PRIMARY KEY, d12 DECIMAL(12,2), d38 DECIMAL(38,10), du DECIMAL(10,3) UNSIGNED,
      d0 DECIMAL(18,0), f FLOAT, dbl DOUBLE);
    INSERT INTO decs VALUES
      (1, -1234567890.12, 1234567890123456789012345678.0123456789, 0.001, -999999999999999999, 1.2345678, 0.1),
      (2, 9999999999.99, -9999999999999999999999999999.9999999999, 9999999.999, 0, -3.4e38, -1.7976931348623157e308),
      (3, -0.01, 0.0000000001, NULL, 1, NULL, 5e-324),
      (4, NULL, NULL, NULL, NULL, 0, NULL);
    CREATE TABLE temporal (id INT PRIMARY KEY, d DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL, tm TIME(6), dt0 DATETIME);
    INSERT INTO temporal VALUES
      (1, '1000-01-01', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', '00:00:00', '2024-02-29 23:59:59'),
      (2, '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '23:59:59.999999', '1969-12-31 23:59:59'),
      (3, '1969-12-31', '1969-12-31 23:59:59.000001', '2024-07-01 12:34:56.123456', '12:34:56.000001', NULL),
      (4, NULL, NULL, NULL, NULL, NULL);
    CREATE TABLE texts (id INT PRIMARY KEY, c CHAR(5), v VARCHAR(50), tx TEXT, lt LONGTEXT, bl LONGBLOB,
      vb VARBINARY(10), j JSON, e ENUM('small','large'), st SET('a','b','c'))
      CHARACTER SET utf8mb4;
    INSERT INTO texts VALUES
      (1, 'abc', 'héllo 🦀 wörld', '', REPEAT('x', 3000000), REPEAT(X'00FF', 1500000), X'000102', '{"a": [1, 2, {"b": null}]}', 'large', 'a,c'),
      (2, '', '', NULL, NULL, X'', X'', '[]', 'small', ''),
      (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
    CREATE TABLE uuids (id INT PRIMARY KEY, u36 CHAR(36), u16 BINARY(16));
    INSERT INTO uuids VALUES
      (1, '123e4567-e89b-12d3-a456-426614174000', UNHEX('00112233445566778899AABBCCDDEEFF')),
      (2, 'not-a-uuid', NULL),
      (3, NULL, NULL);
    CREATE TABLE odd (id INT PRIMARY KEY, g GEOMETRY, big DECIMAL(65,30), tm TIME);
    INSERT INTO odd VALUES (1, POINT(1, 2), 1.5, '-01:00:00'), (2, NULL, NULL, '25:00:00');
    CREATE TABLE big AS SELECT seq AS id, CONCAT('v', seq) AS s FROM seq_1_to_200000;
    CREATE TABLE secret (x INT);
    SET SESSION sql_mode = '';
    CREATE TABLE zeros (id INT PRIMARY KEY, d DATE, dt DATETIME(6));
    INSERT INTO zeros VALUES (1, '0000-00-00', '0000-00-00 00:00:00'), (2, '2020-01-02', '0000-00-00 00:00:00'),
      (3, '0000-00-00', NULL);
  `);

  await t.step("the password user reads a row and ping succeeds", async () => {
    await using source = await openSource(spec, conn(db));
    const { batches } = await readAll(source, "SELECT CURRENT_USER() AS u");
    assert.deepEqual(column(batches, "u"), ["rivet@127.0.0.1"]);
    await source.ping();
  });

  await t.step("a wrong password fails with source.auth_failed and never echoes it", async () => {
    const err = await expectError(openSource(spec, conn(db, db.user, "wrong-Pa55word-XYZ")), {
      code: "source.auth_failed",
      exitCode: 1,
      includes: ["rivet"],
      excludes: ["wrong-Pa55word-XYZ", "S3CR3T_M4RK3R"],
    });
    assert.equal((err as unknown as { errno: number }).errno, 1045);
  });

  await t.step("a refused port is a transient, fail-fast connect error", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    const err = await expectError(openSource(spec, { ...conn(db), port }), {
      code: "source.connection_refused",
      exitCode: 2,
      includes: [`127.0.0.1:${port}`],
    });
    assert.match(err.hint ?? "", /server is running/);
  });

  await using source = await openSource(spec, conn(db));

  await t.step("integers keep their extremes, signedness and NULLs exactly", async () => {
    const { stream, batches } = await readAll(source, "SELECT * FROM ints ORDER BY id");
    const types = Object.fromEntries(stream.columns.map((c) => [c.name, String(c.arrowType)]));
    assert.deepEqual(types, {
      id: "Int32",
      t: "Int16",
      tu: "Int16",
      s: "Int16",
      su: "Int32",
      m: "Int32",
      mu: "Int32",
      i: "Int32",
      iu: "Int64",
      b: "Int64",
      bu: "Uint64",
      y: "Int16",
      flag: "Bool",
      b1: "Bool",
      b8: "Int64",
      b64: "Int64",
    });
    assert.deepEqual(column(batches, "t"), [-128, 127, null]);
    assert.deepEqual(column(batches, "tu"), [0, 255, null]);
    assert.deepEqual(column(batches, "s"), [-32768, 32767, null]);
    assert.deepEqual(column(batches, "su"), [0, 65535, null]);
    assert.deepEqual(column(batches, "m"), [-8388608, 8388607, null]);
    assert.deepEqual(column(batches, "mu"), [0, 16777215, null]);
    assert.deepEqual(column(batches, "i"), [-2147483648, 2147483647, null]);
    assert.deepEqual(column(batches, "iu"), [0n, 4294967295n, null]);
    assert.deepEqual(column(batches, "b"), [-9223372036854775808n, 9223372036854775807n, null]);
    assert.deepEqual(column(batches, "bu"), [0n, 18446744073709551615n, null]);
    assert.deepEqual(column(batches, "y"), [1901, 2155, null]);
    assert.deepEqual(column(batches, "flag"), [false, true, null]);
    assert.deepEqual(column(batches, "b1"), [false, true, null]);
    assert.deepEqual(column(batches, "b8"), [0n, 255n, null]);
    assert.deepEqual(column(batches, "b64"), [0n, 9223372036854775807n, null]);
    const nativeTypes = stream.columns.map((c) => c.nativeType);
    assert.deepEqual(nativeTypes.slice(0, 3), ["int", "tinyint", "tinyint unsigned"]);
    assert.equal(stream.columns.find((c) => c.name === "bu")!.nativeType, "bigint unsigned");
  });

  await t.step("decimals keep every digit and match information_schema precision", async () => {
    const { stream, batches } = await readAll(source, "SELECT * FROM decs ORDER BY id");
    const b = batches[0]!;
    const expected = await clientRows(db, "SELECT d12, d38, du, d0 FROM decs ORDER BY id");
    const cols = [["d12", 2], ["d38", 10], ["du", 3], ["d0", 0]] as const;
    for (let row = 0; row < 4; row++) {
      cols.forEach(([name, scale], k) => {
        const want = expected[row]![k] === "NULL" ? null : expected[row]![k];
        assert.equal(decimalText(b, name, row, scale), want, `${name} row ${row}`);
      });
    }
    const schemaRows = await clientRows(
      db,
      "SELECT COLUMN_NAME, NUMERIC_PRECISION, NUMERIC_SCALE FROM information_schema.COLUMNS " +
        "WHERE TABLE_SCHEMA = 'rivet' AND TABLE_NAME = 'decs' AND DATA_TYPE = 'decimal' " +
        "ORDER BY ORDINAL_POSITION",
    );
    for (const [name, p, s] of schemaRows) {
      const type = stream.columns.find((c) => c.name === name)!.arrowType as unknown as {
        precision: number;
        scale: number;
        bitWidth: number;
      };
      assert.equal(type.precision, Number(p), name);
      assert.equal(type.scale, Number(s), name);
      assert.equal(type.bitWidth, 128);
    }
    // FLOAT travels as its 4 IEEE bytes: exact, unlike the client's 6-digit text.
    assert.deepEqual(column(batches, "f"), [Math.fround(1.2345678), Math.fround(-3.4e38), null, 0]);
    assert.deepEqual(column(batches, "dbl"), [0.1, -1.7976931348623157e308, 5e-324, null]);
  });

  await t.step(
    "dates and date-times keep microseconds and ignore the process time zone",
    async () => {
      const { stream, batches } = await readAll(source, "SELECT * FROM temporal ORDER BY id");
      const meta = Object.fromEntries(stream.columns.map((c) => [c.name, String(c.arrowType)]));
      assert.equal(meta.d, "Date32<DAY>");
      assert.equal(meta.dt, "Timestamp<MICROSECOND>");
      assert.equal(meta.ts, "Timestamp<MICROSECOND, UTC>");
      assert.equal(meta.tm, "Time64<MICROSECOND>");
      // The client computes the expected epoch offsets itself (session in UTC for the timestamp).
      const expected = await clientRows(
        db,
        "SET time_zone = '+00:00'; SELECT DATEDIFF(d, '1970-01-01'), " +
          "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', dt), " +
          "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', ts), " +
          "HOUR(tm) * 3600000000 + MINUTE(tm) * 60000000 + SECOND(tm) * 1000000 + MICROSECOND(tm), " +
          "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', dt0) FROM temporal ORDER BY id",
      );
      const raw = (name: string) =>
        batches.flatMap((b) => {
          const v = b.getChild(name)!;
          const values = v.data[0]!.values as Int32Array | BigInt64Array;
          return Array.from(
            { length: v.length },
            (_, i) => v.isValid(i) ? String(values[i]) : "NULL",
          );
        });
      const got = ["d", "dt", "ts", "tm", "dt0"].map(raw);
      for (let row = 0; row < 4; row++) {
        for (let k = 0; k < 5; k++) {
          const want = expected[row]![k]!.replace(/\.0+$/, "");
          assert.equal(got[k]![row], want, `column ${k} row ${row}`);
        }
      }
    },
  );

  await t.step(
    "TIME outside a day fails naming the column, and CAST AS CHAR is the way out",
    async () => {
      await expectError(readAll(source, "SELECT tm FROM odd WHERE id = 1"), {
        code: "source.time_out_of_range",
        exitCode: 1,
        includes: ["'tm'", "-01:00:00", "CAST(tm AS CHAR)"],
      });
      const { batches } = await readAll(
        source,
        "SELECT CAST(tm AS CHAR) AS tm FROM odd ORDER BY id",
      );
      assert.deepEqual(column(batches, "tm"), ["-01:00:00", "25:00:00"]);
    },
  );

  await t.step(
    "text keeps unicode, empty strings and NULLs apart; large values arrive intact",
    async () => {
      const { stream, batches } = await readAll(source, "SELECT * FROM texts ORDER BY id");
      assert.deepEqual(column(batches, "c"), ["abc", "", null]);
      assert.deepEqual(column(batches, "v"), ["héllo 🦀 wörld", "", null]);
      assert.deepEqual(column(batches, "tx"), ["", null, null]);
      const lt = column(batches, "lt");
      assert.equal((lt[0] as string).length, 3_000_000);
      assert.ok(/^x+$/.test(lt[0] as string));
      const bl = column(batches, "bl") as (Uint8Array | null)[];
      assert.equal(bl[0]!.length, 3_000_000);
      assert.equal(bl[0]![0], 0);
      assert.equal(bl[0]![2_999_999], 0xff);
      assert.equal(bl[1]!.length, 0);
      assert.equal(bl[2], null);
      assert.deepEqual(
        (column(batches, "vb") as (Uint8Array | null)[]).map(hex),
        ["000102", "", null],
      );
      const j = stream.columns.find((c) => c.name === "j")!;
      assert.equal(j.logicalType, "json");
      assert.equal(j.fidelity, "logical_string");
      const jsonText = await clientRows(db, "SELECT j FROM texts ORDER BY id");
      assert.deepEqual(column(batches, "j"), jsonText.map((r) => (r[0] === "NULL" ? null : r[0])));
      const field = stream.schema.fields.find((f) => f.name === "j")!;
      assert.equal(field.metadata.get("ARROW:extension:name"), "arrow.json");
      assert.deepEqual(column(batches, "e"), ["large", "small", null]);
      assert.deepEqual(column(batches, "st"), ["a,c", "", null]);
      for (const name of ["e", "st"]) {
        assert.equal(stream.columns.find((c) => c.name === name)!.logicalType, "enum");
      }
      assert.equal(stream.columns.find((c) => c.name === "bl")!.nativeType, "blob");
      assert.equal(String(stream.columns.find((c) => c.name === "bl")!.arrowType), "Binary");
    },
  );

  await t.step("max_value_mb refuses a larger value naming the column", async () => {
    await expectError(readAll(source, "SELECT lt FROM texts", { maxValueMb: 1 }), {
      code: "source.value_too_large",
      exitCode: 1,
      includes: ["'lt'"],
    });
  });

  await t.step(
    "uuid overrides read char(36) text and binary(16) bytes; garbage is NULL",
    async () => {
      const { stream, batches } = await readAll(source, "SELECT * FROM uuids ORDER BY id", {
        columnOverrides: { u36: "uuid", u16: "UUID" },
      });
      assert.deepEqual(
        (column(batches, "u36") as (Uint8Array | null)[]).map(hex),
        ["123E4567E89B12D3A456426614174000", null, null],
      );
      assert.deepEqual(
        (column(batches, "u16") as (Uint8Array | null)[]).map(hex),
        ["00112233445566778899AABBCCDDEEFF", null, null],
      );
      const f = stream.schema.fields.find((x) => x.name === "u36")!;
      assert.equal(f.metadata.get("ARROW:extension:name"), "arrow.uuid");
      assert.equal(String(f.type), "FixedSizeBinary[16]");
    },
  );

  await t.step("a json override marks a text expression as json", async () => {
    const { stream, batches } = await readAll(source, "SELECT JSON_OBJECT('k', 1) AS j", {
      columnOverrides: { j: "json" },
    });
    assert.equal(stream.columns[0]!.logicalType, "json");
    assert.deepEqual(column(batches, "j"), ['{"k": 1}']);
  });

  await t.step(
    "zero dates become NULL with one warning per column carrying the count",
    async () => {
      const warnings: Warning[] = [];
      await using zs = await openSource(spec, conn(db), { onWarning: (w) => warnings.push(w) });
      const { batches } = await readAll(zs, "SELECT * FROM zeros ORDER BY id");
      assert.deepEqual(column(batches, "d"), [null, Date.UTC(2020, 0, 2), null]);
      assert.deepEqual(column(batches, "dt"), [null, null, null]);
      assert.equal(warnings.length, 2, JSON.stringify(warnings));
      assert.ok(warnings.every((w) => w.code === "source.zero_date"));
      assert.match(warnings[0]!.message, /'d' \(date\) held 2 zero dates/);
      assert.match(warnings[1]!.message, /'dt' \(datetime\(6\)\) held 2 zero dates/);
    },
  );

  await t.step("unsupported types are listed together before any row is read", async () => {
    const err = await expectError(readAll(source, "SELECT g, big, id FROM odd"), {
      code: "source.unsupported_types",
      exitCode: 1,
      includes: ["'g' (geometry)", "'big' (decimal(65,30))", "decimal(38,"],
    });
    assert.ok(!err.message.includes("'id'"));
    // The connection is usable afterwards and nothing is left running.
    const { batches } = await readAll(source, "SELECT 1 AS one");
    assert.deepEqual(column(batches, "one"), [1]);
  });

  await t.step("query parameters are bound server-side", async () => {
    const { batches } = await readAll(
      source,
      "SELECT id, s FROM big WHERE id IN (?, ?) ORDER BY id",
      {
        params: [7, 123456n],
      },
    );
    assert.deepEqual(column(batches, "s"), ["v7", "v123456"]);
  });

  await t.step("a 200k-row table yields batches within batchSize, probe first", async () => {
    const { batches } = await readAll(source, "SELECT id, s FROM big", { batchSize: 30_000 });
    const sizes = batches.map((b) => b.numRows);
    assert.equal(sizes.reduce((a, b) => a + b, 0), 200_000);
    assert.equal(sizes[0], 500);
    assert.ok(sizes.every((n) => n <= 30_000), String(sizes));
    assert.ok(sizes.filter((n) => n === 30_000).length >= 5, String(sizes));
  });

  await t.step("a smaller memory target gives smaller batches, never below 500 rows", async () => {
    const { batches } = await readAll(source, "SELECT id, s FROM big", {
      batchSize: 100_000,
      batchMemoryBytes: 100_000,
    });
    const sizes = batches.map((b) => b.numRows);
    assert.equal(sizes.reduce((a, b) => a + b, 0), 200_000);
    for (const b of batches.slice(0, -1)) {
      let bytes = 0;
      for (const f of b.data.children) {
        for (const buf of [f.values, f.valueOffsets]) bytes += buf?.byteLength ?? 0;
      }
      assert.ok(b.numRows >= 500);
      assert.ok(bytes <= 130_000, `batch of ${b.numRows} rows holds ${bytes} bytes`);
    }
    const tiny = await readAll(source, "SELECT id FROM big", {
      batchSize: 100_000,
      batchMemoryBytes: 10,
    });
    assert.ok(tiny.batches.slice(0, -1).every((b) => b.numRows === 500));
  });

  await t.step("a batchSize below the probe caps the probe too", async () => {
    const { batches } = await readAll(source, "SELECT id FROM big LIMIT 1000", { batchSize: 100 });
    assert.deepEqual(batches.map((b) => b.numRows), Array(10).fill(100));
  });

  await t.step("an empty result still has a schema and no batch", async () => {
    const { stream, batches } = await readAll(source, "SELECT id, s FROM big WHERE id < 0");
    assert.deepEqual(stream.schema.fields.map((f) => f.name), ["id", "s"]);
    assert.equal(batches.length, 0);
  });

  await t.step("cancelling the stream mid-way leaves no running query", async () => {
    const stream = await source.read(
      { sql: "SELECT a.id, a.s FROM big a JOIN big b ON b.id <= 3", params: [] },
      { ...defaults, batchSize: 1000, statementTimeoutS: 30 },
    );
    const reader = stream.batches.getReader();
    const first = await reader.read();
    assert.equal(first.done, false);
    await reader.cancel();
    assert.ok(await waitFor(async () => (await runningQueries(db)).length === 0));
    // The session settings of the cancelled read were reset.
    const { batches } = await readAll(source, "SELECT @@session.max_statement_time AS t");
    assert.deepEqual(column(batches, "t"), [0]);
  });

  await t.step("aborting the signal stops the statement on the server", async () => {
    const controller = new AbortController();
    const stream = await source.read(
      { sql: "SELECT a.id FROM big a JOIN big b ON b.id <= 20", params: [] },
      { ...defaults, batchSize: 1000, signal: controller.signal },
    );
    const reader = stream.batches.getReader();
    await reader.read();
    controller.abort(new Error("stop now"));
    await assert.rejects(async () => {
      for (;;) if ((await reader.read()).done) break;
    }, /stop now/);
    assert.ok(await waitFor(async () => (await runningQueries(db)).length === 0));
    const { batches } = await readAll(source, "SELECT 2 AS two");
    assert.deepEqual(column(batches, "two"), [2]);
  });

  await t.step(
    "the statement timeout is honoured as a permanent source.statement_timeout",
    async () => {
      await expectError(readAll(source, "SELECT SLEEP(5) AS s", { statementTimeoutS: 1 }), {
        code: "source.statement_timeout",
        exitCode: 1,
        includes: ["statement_timeout_s"],
      });
      const { batches } = await readAll(source, "SELECT @@session.max_statement_time AS t");
      assert.deepEqual(column(batches, "t"), [0]);
    },
  );

  await t.step("server errors map to stable codes and keep the error number", async () => {
    const cases: [string, string, number][] = [
      ["SELECT * FROM no_such_table", "source.undefined_object", 1146],
      ["SELECT no_such_column FROM big", "source.undefined_object", 1054],
      ["SELEC 1", "source.syntax_error", 1064],
    ];
    for (const [sql, code, errno] of cases) {
      const err = await expectError(readAll(source, sql), { code, exitCode: 1 });
      assert.equal((err as unknown as { errno: number }).errno, errno);
    }
    await using limited = await openSource(
      spec,
      conn(db, db.limitedUser.user, db.limitedUser.password),
    );
    const ok = await readAll(limited, "SELECT v FROM allowed");
    assert.deepEqual(column(ok.batches, "v"), ["ok"]);
    await expectError(readAll(limited, "SELECT * FROM secret"), {
      code: "source.permission_denied",
      exitCode: 1,
      includes: ["secret"],
      excludes: ["S3CR3T_M4RK3R"],
    });
    await expectError(openSource(spec, { ...conn(db), database: "nope" }), {
      code: "source.permission_denied",
      exitCode: 1,
    });
  });

  await t.step(
    "a connection killed mid-stream is a TransientError and the source reconnects",
    async () => {
      await using victim = await openSource(spec, conn(db));
      const stream = await victim.read(
        { sql: "SELECT a.id, a.s FROM big a JOIN big b ON b.id <= 5", params: [] },
        { ...defaults, batchSize: 1000 },
      );
      const reader = stream.batches.getReader();
      await reader.read();
      const ids = await clientRows(
        db,
        "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'rivet' AND COMMAND = 'Execute'",
      );
      assert.equal(ids.length, 1);
      await db.sql(`KILL ${ids[0]![0]}`);
      let caught: unknown;
      try {
        for (;;) if ((await reader.read()).done) break;
      } catch (error) {
        caught = error;
      }
      assert.ok(caught instanceof RivetError, String(caught));
      assert.equal(caught.exitCode, 2, caught.message);
      assert.equal(caught.code, "source.connection_lost", caught.message);
      const { batches } = await readAll(victim, "SELECT 3 AS three");
      assert.deepEqual(column(batches, "three"), [3]);
    },
  );
});
