/**
 * End-to-end tests of the PostgreSQL source against a real throwaway server: authentication,
 * every mapped type with NULLs and extremes, batch sizing, cancel, timeouts and error classes.
 * Expected values come from constants or from what psql prints, never from the code under test.
 */
import assert from "node:assert/strict";
import { column, decimalText, defaults, expectError, readAll } from "../_helpers/source_read.ts";
import type { SourceSpec } from "../../src/core/spec.ts";
import type { ConnectionInfo } from "../../src/core/source.ts";
import { openSource } from "../../src/sources/mod.ts";
import { type PgServer, startPostgres } from "../_helpers/pg_server.ts";
import { makeCertificates } from "../_helpers/tls_certs.ts";

const spec: SourceSpec = { kind: "postgres", connection: { form: "url_env", env: "UNUSED" } };

function conn(pg: PgServer, user = "postgres", password?: string): ConnectionInfo {
  return {
    host: pg.host,
    port: pg.port,
    user,
    database: "postgres",
    params: {},
    ...(password === undefined ? {} : { password }),
  };
}

function utf8(value: unknown): string {
  return value as string;
}

async function openTransactions(pg: PgServer): Promise<string> {
  return (await pg.psql(
    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rivet' " +
      "AND state <> 'idle'",
  )).trim();
}

Deno.test("PostgreSQL source", async (t) => {
  await using pg = await startPostgres();
  const pw = pg.passwordUser.password;
  await pg.psql(`
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
    CREATE DOMAIN money2 AS numeric(10,2);
    CREATE TABLE big AS SELECT i::int8 AS id, ('v' || i) AS s FROM generate_series(1, 200000) i;
    CREATE TABLE secret (x int);
    CREATE ROLE rivet_nopriv LOGIN;
    CREATE FUNCTION noisy() RETURNS int LANGUAGE plpgsql AS
      $$ BEGIN RAISE WARNING 'careful: noisy'; RETURN 1; END $$;
  `);

  await t.step("trust, scram-sha-256 and md5 logins all read a row", async () => {
    for (const [user, password] of [["postgres", undefined], ["rivet_pw", pw], ["rivet_md5", pw]]) {
      await using source = await openSource(spec, conn(pg, user!, password));
      const { batches } = await readAll(source, "SELECT current_user::text AS u");
      assert.deepEqual(column(batches, "u"), [user]);
      await source.ping();
    }
  });

  await t.step("a wrong password fails with source.auth_failed and never echoes it", async () => {
    for (const user of ["rivet_pw", "rivet_md5"]) {
      await expectError(openSource(spec, conn(pg, user, "wrong-Pa55word-XYZ")), {
        code: "source.auth_failed",
        exitCode: 1,
        includes: [user],
        excludes: ["wrong-Pa55word-XYZ", pw],
      });
    }
    await expectError(openSource(spec, conn(pg, "rivet_pw")), {
      code: "source.auth_failed",
      exitCode: 1,
    });
  });

  await t.step(
    "a refused port is a transient connect failure with a connectivity hint",
    async () => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      listener.close();
      const err = await expectError(openSource(spec, { ...conn(pg), port }), {
        code: "source.connection_refused",
        exitCode: 2,
        includes: [`127.0.0.1:${port}`],
      });
      assert.match(err.hint ?? "", /server is running/);
    },
  );

  await using source = await openSource(spec, conn(pg, "rivet_pw", pw));

  await t.step("integers keep their extremes and NULLs exactly", async () => {
    const { stream, batches } = await readAll(
      source,
      `SELECT a::int2, b::int4, c::int8, d::oid FROM (VALUES
        ('-32768', '-2147483648', '-9223372036854775808', '0'),
        ('32767', '2147483647', '9223372036854775807', '4294967295'),
        (NULL, NULL, NULL, NULL)) v(a, b, c, d)`,
    );
    assert.deepEqual(stream.columns.map((c) => c.arrowType?.toString()), [
      "Int16",
      "Int32",
      "Int64",
      "Int64",
    ]);
    assert.deepEqual(column(batches, "a"), [-32768, 32767, null]);
    assert.deepEqual(column(batches, "b"), [-2147483648, 2147483647, null]);
    assert.deepEqual(column(batches, "c"), [-9223372036854775808n, 9223372036854775807n, null]);
    assert.deepEqual(column(batches, "d"), [0n, 4294967295n, null]);
  });

  await t.step("bool, float4 and float8 values round-trip", async () => {
    const { batches } = await readAll(
      source,
      `SELECT * FROM (VALUES (true, 1.5::float4, 0.1::float8), (false, '-Infinity'::float4,
        'NaN'::float8), (NULL, NULL, '1e308'::float8)) v(b, f4, f8)`,
    );
    assert.deepEqual(column(batches, "b"), [true, false, null]);
    assert.deepEqual(column(batches, "f4"), [1.5, -Infinity, null]);
    const f8 = column(batches, "f8");
    assert.equal(f8[0], 0.1);
    assert.ok(Number.isNaN(f8[1]));
    assert.equal(f8[2], 1e308);
  });

  await t.step(
    "numeric(38,x) and numeric(12,2) match what psql prints, digit for digit",
    async () => {
      const sql = `SELECT a::numeric(38,9), b::numeric(12,2), c::numeric(38,0) FROM (VALUES
      (99999999999999999999999999999.999999999, 9999999999.99, 1),
      (-99999999999999999999999999999.999999999, -9999999999.99, -99999999999999999999999999999999999999),
      (0.000000001, 0.01, 99999999999999999999999999999999999999),
      (-0.5, -0.05, 0),
      (NULL, NULL, NULL),
      (123456789.000000001, 42, -1)) v(a, b, c)`;
      const { stream, batches } = await readAll(source, sql);
      assert.equal(stream.columns[0]!.nativeType, "numeric(38,9)");
      const dec = stream.columns[0]!.arrowType as unknown as Record<string, number>;
      assert.deepEqual([dec.precision, dec.scale, dec.bitWidth], [38, 9, 128]);
      const printed = (await pg.psql(sql)).trim()
        .split("\n").map((l) => l.split("|").map((x) => x === "" ? null : x));
      const b = batches[0]!;
      for (let r = 0; r < printed.length; r++) {
        assert.equal(decimalText(b, "a", r, 9), printed[r]![0]);
        assert.equal(decimalText(b, "b", r, 2), printed[r]![1]);
        assert.equal(decimalText(b, "c", r, 0), printed[r]![2]);
      }
    },
  );

  await t.step("a numeric domain maps through its base type and typmod", async () => {
    // RowDescription reports a domain column with its base type's OID and typmod.
    const { stream, batches } = await readAll(source, "SELECT 12.345::money2 AS m");
    assert.equal(stream.columns[0]!.nativeType, "numeric(10,2)");
    assert.equal(decimalText(batches[0]!, "m", 0, 2), "12.35");
  });

  await t.step("unconstrained numeric needs an override, and then rounds exactly", async () => {
    await expectError(source.read({ sql: "SELECT 1.5::numeric AS n", params: [] }, defaults), {
      code: "source.unsupported_types",
      exitCode: 1,
      includes: ["'n'", "decimal(38,9)"],
    });
    const { batches } = await readAll(
      source,
      "SELECT * FROM (VALUES (1.23456789012::numeric), (-2.5), (NULL)) v(n)",
      { columnOverrides: { n: "decimal(20,10)" } },
    );
    assert.equal(decimalText(batches[0]!, "n", 0, 10), "1.2345678901");
    assert.equal(decimalText(batches[0]!, "n", 1, 10), "-2.5000000000");
    assert.equal(decimalText(batches[0]!, "n", 2, 10), null);
  });

  await t.step("NaN in a decimal column is an error naming the column", async () => {
    await expectError(
      readAll(source, "SELECT 'NaN'::numeric(10,2) AS price"),
      { code: "source.numeric_not_finite", exitCode: 1, includes: ["'price'"] },
    );
    assert.equal(await openTransactions(pg), "0");
  });

  await t.step(
    "dates, times and timestamps are exact to the microsecond at the extremes",
    async () => {
      const sql = `SELECT * FROM (VALUES
      ('0001-01-01'::date, '00:00:00'::time, '0001-01-01 00:00:00'::timestamp, '0001-01-01 00:00:00+00'::timestamptz),
      ('9999-12-31', '23:59:59.999999', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999999+00'),
      ('1969-12-31', '12:34:56.000001', '1969-12-31 23:59:59.999999', '1999-12-31 23:59:59.999999+00'),
      ('1999-12-31', '00:00:00.5', '2000-01-01 00:00:00.000001', '2024-02-29 12:00:00.123456-05'),
      (NULL, NULL, NULL, NULL)) v(d, t, ts, tstz)`;
      const { stream, batches } = await readAll(source, sql);
      assert.deepEqual(stream.columns.map((c) => c.arrowType?.toString()), [
        "Date32<DAY>",
        "Time64<MICROSECOND>",
        "Timestamp<MICROSECOND>",
        "Timestamp<MICROSECOND, UTC>",
      ]);
      const printed = (await pg.psql(
        `SELECT (d - date '1970-01-01'), (extract(epoch from t) * 1000000)::int8,
       (extract(epoch from ts) * 1000000)::int8, (extract(epoch from tstz) * 1000000)::int8
       FROM (${sql}) q`,
      )).trim().split("\n").map((l) => l.split("|"));
      const b = batches[0]!;
      const raw = (name: string, row: number) => {
        const v = b.getChild(name)!;
        if (!v.isValid(row)) return "";
        const values = v.data[0]!.values as Int32Array | BigInt64Array;
        return String(values[row]);
      };
      for (let r = 0; r < printed.length; r++) {
        assert.deepEqual(
          [raw("d", r), raw("t", r), raw("ts", r), raw("tstz", r)],
          printed[r],
          `row ${r}`,
        );
      }
      // Year 1 and 9999 as constants too, independent of psql.
      assert.equal(raw("ts", 0), String(-62135596800000000n));
      assert.equal(raw("tstz", 1), String(253402300799999999n));
    },
  );

  await t.step("timestamptz values do not depend on the process time zone", async () => {
    const code = `
      import { openSource } from "${new URL("../../src/sources/mod.ts", import.meta.url)}";
      const s = await openSource({ kind: "postgres", connection: { form: "url_env", env: "X" } },
        { host: "${pg.host}", port: ${pg.port}, user: "postgres", database: "postgres", params: {} });
      const r = await s.read({ sql: "SELECT '2024-07-01 12:00:00.000001+00'::timestamptz AS a, '2024-07-01 12:00:00.000001'::timestamp AS b", params: [] },
        { batchSize: 10, batchMemoryBytes: 0, statementTimeoutS: 0, lockTimeoutS: 0, throttleMs: 0, maxValueMb: 0, columnOverrides: {} });
      for await (const b of r.batches) console.log(String(b.getChild("a").data[0].values[0]), String(b.getChild("b").data[0].values[0]), Intl.DateTimeFormat().resolvedOptions().timeZone);
      await s[Symbol.asyncDispose]();`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", new URL("../../deno.json", import.meta.url).pathname, code],
      env: { TZ: "America/New_York" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    // Date.UTC(2024, 6, 1, 12) = 1719835200000 ms.
    assert.equal(text, "1719835200000001 1719835200000001 America/New_York");
  });

  await t.step("infinite dates and timestamps are refused with a column-naming error", async () => {
    await expectError(readAll(source, "SELECT 'infinity'::timestamptz AS seen_at"), {
      code: "source.infinite_value",
      exitCode: 1,
      includes: ["'seen_at'"],
    });
    await expectError(readAll(source, "SELECT '-infinity'::date AS born"), {
      code: "source.infinite_value",
      exitCode: 1,
      includes: ["'born'"],
    });
  });

  await t.step("text keeps unicode, empty strings and NULLs apart", async () => {
    const { stream, batches } = await readAll(
      source,
      `SELECT t::text, vc::varchar(5), bp::char(3), nm::name FROM (VALUES ('héllo wörld', 'ab',
        'x', 'n'), ('日本語 🎉👍🏽', '', '', ''), (NULL, NULL, NULL, NULL)) v(t, vc, bp, nm)`,
    );
    assert.deepEqual(stream.columns.map((c) => c.nativeType), [
      "text",
      "varchar",
      "bpchar",
      "name",
    ]);
    assert.deepEqual(column(batches, "t"), ["héllo wörld", "日本語 🎉👍🏽", null]);
    assert.deepEqual(column(batches, "vc"), ["ab", "", null]);
    assert.deepEqual(column(batches, "bp"), ["x  ", "   ", null]);
    assert.deepEqual(column(batches, "nm"), ["n", "", null]);
  });

  await t.step("several-MB text and bytea values arrive intact", async () => {
    const { batches } = await readAll(
      source,
      `SELECT repeat('ab€', 1500000) AS t, decode(repeat('00ff10', 2000000), 'hex') AS b,
         ''::bytea AS e, NULL::bytea AS n`,
    );
    const t0 = utf8(column(batches, "t")[0]);
    assert.equal(t0.length, 4_500_000);
    assert.equal(t0.slice(0, 6), "ab€ab€");
    const b0 = column(batches, "b")[0] as Uint8Array;
    assert.equal(b0.length, 6_000_000);
    assert.deepEqual([...b0.subarray(0, 4)], [0, 255, 16, 0]);
    assert.deepEqual([...b0.subarray(b0.length - 3)], [0, 255, 16]);
    assert.deepEqual(column(batches, "e")[0], new Uint8Array(0));
    assert.equal(column(batches, "n")[0], null);
  });

  await t.step("max_value_mb refuses a larger value naming the column", async () => {
    await expectError(
      readAll(source, "SELECT repeat('x', 2 * 1048576) AS blob", { maxValueMb: 1 }),
      {
        code: "source.value_too_large",
        exitCode: 1,
        includes: ["'blob'", "max_value_mb"],
      },
    );
    const { batches } = await readAll(source, "SELECT repeat('x', 1000) AS ok", { maxValueMb: 1 });
    assert.equal(utf8(column(batches, "ok")[0]).length, 1000);
  });

  await t.step("json, jsonb, uuid, interval and enum carry their logical types", async () => {
    const { stream, batches } = await readAll(
      source,
      `SELECT '{"b": [1, 2], "a": "é"}'::json AS j, '{"b": [1, 2], "a": "é"}'::jsonb AS jb,
        'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u,
        '1 year 2 months 3 days 04:05:06.5'::interval AS iv, 'happy'::mood AS m
       UNION ALL SELECT NULL, NULL, NULL, '-1 day -00:00:00.25', NULL`,
    );
    const byName = Object.fromEntries(stream.columns.map((c) => [c.name, c]));
    assert.equal(byName.j!.logicalType, "json");
    assert.equal(byName.jb!.fidelity, "logical_string");
    assert.equal(byName.u!.logicalType, "uuid");
    assert.equal(byName.iv!.logicalType, "interval");
    assert.equal(byName.m!.logicalType, "enum");
    assert.equal(byName.m!.nativeType, "mood");
    const meta = (name: string) => stream.schema.fields.find((f) => f.name === name)!.metadata;
    assert.equal(meta("u").get("ARROW:extension:name"), "arrow.uuid");
    assert.equal(meta("jb").get("ARROW:extension:name"), "arrow.json");
    assert.equal(meta("m").get("rivet.native_type"), "mood");
    assert.equal(meta("m").get("rivet.fidelity"), "compatible");
    const printed = (await pg.psql(
      `SET IntervalStyle = iso_8601; SELECT '{"b": [1, 2], "a": "é"}'::json, '{"b": [1, 2], "a": "é"}'::jsonb,
        '1 year 2 months 3 days 04:05:06.5'::interval, '-1 day -00:00:00.25'::interval`,
    )).trim().split("|");
    assert.deepEqual(column(batches, "j"), [printed[0], null]);
    assert.deepEqual(column(batches, "jb"), [printed[1], null]);
    assert.deepEqual(column(batches, "iv"), [printed[2], printed[3]]);
    const u = column(batches, "u")[0] as Uint8Array;
    assert.equal(
      [...u].map((x) => x.toString(16).padStart(2, "0")).join(""),
      "a0eebc999c0b4ef8bb6d6bb9bd380a11",
    );
    assert.equal(column(batches, "u")[1], null);
    assert.deepEqual(column(batches, "m"), ["happy", null]);
  });

  await t.step("1-D arrays become lists with NULL elements kept, empty arrays empty", async () => {
    const { stream, batches } = await readAll(
      source,
      `SELECT i::int4[], t::text[], m::mood[], n::numeric(5,2)[] FROM (VALUES
        ('{1,NULL,3}', '{a,NULL,ü}', '{sad,ok}', '{1.5}'), ('{}', '{}', '{}', '{}'),
        (NULL, NULL, NULL, NULL)) v(i, t, m, n)`,
    );
    assert.deepEqual(stream.columns.map((c) => c.nativeType), [
      "int4[]",
      "text[]",
      "mood[]",
      "numeric(5,2)[]",
    ]);
    assert.equal(stream.schema.fields[0]!.type.children[0]!.name, "item");
    const lists = (name: string) =>
      column(batches, name).map((v) => v === null ? null : [...(v as Iterable<unknown>)]);
    assert.deepEqual(lists("i"), [[1, null, 3], [], null]);
    assert.deepEqual(lists("t"), [["a", null, "ü"], [], null]);
    assert.deepEqual(lists("m"), [["sad", "ok"], [], null]);
    assert.equal(lists("n")[1]!.length, 0);
    const n0 = batches[0]!.getChild("n")!.data[0]!.children[0]!.values as Uint32Array;
    assert.deepEqual([...n0.subarray(0, 4)], [150, 0, 0, 0]);
  });

  await t.step("a multi-dimensional array fails at read time naming the column", async () => {
    await expectError(readAll(source, "SELECT ARRAY[[1,2],[3,4]]::int4[] AS grid"), {
      code: "source.multidimensional_array",
      exitCode: 1,
      includes: ["'grid'"],
    });
  });

  await t.step("unsupported types are listed together before any row is read", async () => {
    const err = await expectError(
      source.read({
        sql: `SELECT '10.0.0.1'::inet AS ip, int4range(1, 5) AS r, point(1, 2) AS p,
          'a b'::tsvector AS ts, 1 AS fine, '<a/>'::xml AS x`,
        params: [],
      }, defaults),
      { code: "source.unsupported_types", exitCode: 1 },
    );
    for (
      const s of ["'ip' (inet)", "'r' (int4range)", "'p' (point)", "'ts' (tsvector)", "'x' (xml)"]
    ) {
      assert.ok(err.message.includes(s), err.message);
    }
    assert.ok(!err.message.includes("'fine'"));
    assert.ok(err.message.includes("ip::text"));
    assert.equal(await openTransactions(pg), "0");
  });

  await t.step("a text override reads an unsupported type through its text form", async () => {
    const sql = "SELECT '10.0.0.0/8'::inet AS ip, 7::int2 AS n";
    const { stream, batches } = await readAll(source, sql, {
      columnOverrides: { ip: "TEXT", n: "bigint" },
    });
    assert.deepEqual(column(batches, "ip"), [(await pg.psql(sql)).split("|")[0]]);
    assert.equal(column(batches, "ip")[0], "10.0.0.0/8");
    assert.deepEqual(column(batches, "n"), [7n]);
    assert.equal(stream.columns[1]!.arrowType?.toString(), "Int64");
  });

  await t.step("query parameters are bound through the extended protocol", async () => {
    const { batches } = await readAll(
      source,
      "SELECT id FROM big WHERE id > $1 AND s <> $2 ORDER BY id LIMIT 3",
      {
        params: [199_997n, "x"],
      },
    );
    assert.deepEqual(column(batches, "id"), [199_998n, 199_999n, 200_000n]);
  });

  await t.step("a 200k-row table yields several batches within batchSize", async () => {
    const { batches } = await readAll(source, "SELECT id, s FROM big ORDER BY id", {
      batchSize: 50_000,
    });
    const counts = batches.map((b) => b.numRows);
    assert.equal(counts.reduce((a, b) => a + b, 0), 200_000);
    assert.ok(counts.length >= 5, String(counts));
    assert.equal(counts[0], 500, "the first fetch is the 500-row probe");
    assert.ok(counts.every((c) => c <= 50_000), String(counts));
    const ids = column(batches, "id");
    assert.equal(ids[0], 1n);
    assert.equal(ids[199_999], 200_000n);
    assert.equal(column(batches, "s")[123_456], "v123457");
  });

  await t.step("a smaller memory target gives smaller fetches", async () => {
    const big = await readAll(source, "SELECT id, s FROM big", { batchSize: 50_000 });
    const small = await readAll(source, "SELECT id, s FROM big", {
      batchSize: 50_000,
      batchMemoryBytes: 100_000,
    });
    const maxBig = Math.max(...big.batches.map((b) => b.numRows));
    const maxSmall = Math.max(...small.batches.map((b) => b.numRows));
    // About 8 + 4 + 7 bytes a row: a 100 kB target allows ~5k rows, not 45k+.
    assert.ok(maxSmall < 10_000, `small target fetched ${maxSmall} rows`);
    assert.ok(maxBig > 20_000, `default fetched only ${maxBig} rows`);
    assert.equal(small.batches.reduce((a, b) => a + b.numRows, 0), 200_000);
  });

  await t.step("a batchSize below the probe caps the probe too", async () => {
    const { batches } = await readAll(source, "SELECT id FROM big LIMIT 1000", { batchSize: 300 });
    assert.deepEqual(batches.map((b) => b.numRows), [300, 300, 300, 100]);
  });

  await t.step("an empty result still has a schema and no batch", async () => {
    const { stream, batches } = await readAll(source, "SELECT id, s FROM big WHERE false");
    assert.equal(batches.length, 0);
    assert.deepEqual(stream.schema.fields.map((f) => f.name), ["id", "s"]);
  });

  await t.step("cancelling the stream mid-way leaves no open transaction", async () => {
    const stream = await source.read({ sql: "SELECT id, s FROM big", params: [] }, {
      ...defaults,
      batchSize: 20_000,
    });
    const reader = stream.batches.getReader();
    assert.equal((await reader.read()).value?.numRows, 500);
    assert.ok(((await reader.read()).value?.numRows ?? 0) > 0);
    await reader.cancel();
    assert.equal(await openTransactions(pg), "0");
    const { batches } = await readAll(source, "SELECT 1 AS one");
    assert.deepEqual(column(batches, "one"), [1]);
  });

  await t.step("aborting the signal cancels the running statement and rolls back", async () => {
    const controller = new AbortController();
    const stream = await source.read({ sql: "SELECT 1 AS x FROM pg_sleep(30)", params: [] }, {
      ...defaults,
      signal: controller.signal,
    });
    const started = Date.now();
    setTimeout(() => controller.abort(new Error("stop now")), 300);
    await assert.rejects(
      async () => {
        for await (const _ of stream.batches) { /* consume */ }
      },
      /stop now/,
    );
    assert.ok(Date.now() - started < 10_000, "the server statement was cancelled");
    assert.equal(await openTransactions(pg), "0");
  });

  await t.step("statement_timeout is honoured as source.statement_timeout", async () => {
    await expectError(readAll(source, "SELECT 1 AS z FROM pg_sleep(5)", { statementTimeoutS: 1 }), {
      code: "source.statement_timeout",
      exitCode: 1,
    });
    assert.equal(await openTransactions(pg), "0");
  });

  await t.step("server errors map to stable codes", async () => {
    await expectError(readAll(source, "SELEC 1"), {
      code: "source.syntax_error",
      exitCode: 1,
      includes: ["SELEC"],
    });
    await expectError(readAll(source, "SELECT * FROM no_such_table"), {
      code: "source.undefined_object",
      exitCode: 1,
      includes: ["no_such_table"],
    });
    await expectError(readAll(source, "SELECT no_such_col FROM big"), {
      code: "source.undefined_object",
      exitCode: 1,
      includes: ["no_such_col"],
    });
    await using noPriv = await openSource(spec, conn(pg, "rivet_nopriv"));
    await expectError(readAll(noPriv, "SELECT * FROM secret"), {
      code: "source.permission_denied",
      exitCode: 1,
      includes: ["secret"],
    });
    const { batches } = await readAll(source, "SELECT 2 AS two");
    assert.deepEqual(column(batches, "two"), [2]);
  });

  await t.step("server warnings reach the warnings callback", async () => {
    const warnings: string[] = [];
    await using noisy = await openSource(spec, conn(pg), {
      onWarning: (w) => warnings.push(w.message),
    });
    await readAll(noisy, "SELECT noisy() AS n");
    assert.ok(warnings.some((w) => w.includes("careful: noisy")), String(warnings));
  });

  await t.step("throttle pauses in proportion to the rows of each batch", async () => {
    const started = performance.now();
    const { batches } = await readAll(source, "SELECT id FROM big LIMIT 3000", {
      batchSize: 1000,
      throttleMs: 200,
    });
    const elapsed = performance.now() - started;
    // 500 + 1000 + 1000 + 500 rows → 100 + 200 + 200 ms of pauses (the last batch closes the stream).
    assert.deepEqual(batches.map((b) => b.numRows), [500, 1000, 1000, 500]);
    assert.ok(elapsed >= 450, `elapsed ${elapsed} ms`);
  });
});

Deno.test("PostgreSQL source over TLS", async (t) => {
  const certs = await makeCertificates({ forPostgres: true });
  try {
    await using pg = await startPostgres({
      conf: ["ssl=on", `ssl_cert_file='${certs.cert}'`, `ssl_key_file='${certs.key}'`],
    });
    const tlsSpec = (extra: Partial<NonNullable<SourceSpec["tls"]>> = {}): SourceSpec => ({
      ...spec,
      tls: {
        mode: "verify-full",
        acceptInvalidCerts: false,
        acceptInvalidHostnames: false,
        ...extra,
      },
    });

    await t.step("verify-full with the CA file connects and the session is encrypted", async () => {
      await using source = await openSource(
        tlsSpec({ caFile: certs.ca }),
        conn(pg, "rivet_pw", pg.passwordUser.password),
      );
      const { batches } = await readAll(
        source,
        "SELECT ssl::text AS ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
      );
      assert.deepEqual(column(batches, "ssl"), ["true"]);
    });

    await t.step("require also verifies, so an unknown CA is refused clearly", async () => {
      await expectError(openSource(tlsSpec({ mode: "require" }), conn(pg)), {
        code: "source.tls_verify_failed",
        exitCode: 1,
        includes: ["ca_file"],
      });
    });

    await t.step("accept_invalid_certs is refused as not supported", async () => {
      await expectError(openSource(tlsSpec({ acceptInvalidCerts: true }), conn(pg)), {
        code: "config.not_supported",
        exitCode: 1,
        includes: ["accept_invalid_certs", "ca_file"],
      });
    });

    await t.step("disable connects in plaintext", async () => {
      await using source = await openSource(tlsSpec({ mode: "disable" }), conn(pg));
      const { batches } = await readAll(
        source,
        "SELECT ssl::text AS ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
      );
      assert.deepEqual(column(batches, "ssl"), ["false"]);
    });
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("a TLS mode against a server without TLS fails with source.tls_unavailable", async () => {
  await using pg = await startPostgres();
  await expectError(
    openSource({
      ...spec,
      tls: { mode: "verify-full", acceptInvalidCerts: false, acceptInvalidHostnames: false },
    }, conn(pg)),
    { code: "source.tls_unavailable", exitCode: 1 },
  );
});
