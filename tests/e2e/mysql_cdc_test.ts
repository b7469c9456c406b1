/**
 * The MySQL/MariaDB change reader (`src/sources/mysql/cdc.ts`) against a real MariaDB started
 * with the binary log on in ROW format: every common type arrives typed and valued exactly as a
 * full export of the table reads it (compared with a read through the normal source), updates of
 * one transaction end with one `commit`, a restart from a `commit` delivers only what followed,
 * `untilCurrent` ends, disposing a waiting reader settles it; and the refusals of a server or
 * user that cannot stream (STATEMENT format, no binlog, no grant, a purged checkpoint, an ALTER
 * TABLE during capture).
 */
import assert from "node:assert/strict";
import type { RecordBatch } from "../../src/core/arrow.ts";
import type { CdcChunk, CdcOpenOptions, CdcPosition, CdcReader } from "../../src/core/cdc.ts";
import { RivetError } from "../../src/core/errors.ts";
import type { ConnectionInfo } from "../../src/core/source.ts";
import type { SourceSpec, Warning } from "../../src/core/spec.ts";
import { openMysqlCdc } from "../../src/sources/mysql/cdc.ts";
import { openMysqlSource } from "../../src/sources/mysql/source.ts";
import { type MariaDbServer, startMariaDb } from "../_helpers/mariadb_server.ts";
import { readAll, rowObjects } from "../_helpers/source_read.ts";

const spec: SourceSpec = { kind: "mysql", connection: { form: "url_env", env: "UNUSED" } };

function conn(db: MariaDbServer, user = db.user, password = db.password): ConnectionInfo {
  return { host: db.host, port: db.port, user, password, database: db.database, params: {} };
}

function options(table: string, extra: Partial<CdcOpenOptions> = {}): CdcOpenOptions {
  return {
    tables: [{ table }],
    untilCurrent: true,
    batchRows: 1000,
    slot: "",
    publication: "",
    serverId: 4242,
    columnOverrides: {},
    ...extra,
  };
}

/** A value comparable with deepEqual: bigints and bytes as text. */
function plain(v: unknown): unknown {
  if (typeof v === "bigint") return `${v}n`;
  if (v instanceof Uint8Array) return `0x${[...v].map((b) => b.toString(16).padStart(2, "0"))}`;
  if (v !== null && typeof v === "object" && "toJSON" in v) {
    return JSON.stringify(
      (v as { toJSON(): unknown }).toJSON(),
      (_k, x) => typeof x === "bigint" ? `${x}n` : x,
    );
  }
  return v;
}

function rowsOf(batches: readonly RecordBatch[]): Record<string, unknown>[] {
  return rowObjects(batches, plain);
}

/** Everything a reader delivers until it ends. */
async function drain(reader: CdcReader): Promise<CdcChunk[]> {
  const out: CdcChunk[] = [];
  const it = reader.changes();
  while (true) {
    const n = await it.next();
    if (n.done) return out;
    out.push(n.value);
  }
}

async function capture(
  db: MariaDbServer,
  table: string,
  start: CdcPosition | undefined,
  extra: Partial<CdcOpenOptions> = {},
): Promise<{ chunks: CdcChunk[]; reader: CdcReader }> {
  const reader = await openMysqlCdc(spec, conn(db), {
    ...options(table, extra),
    ...(start === undefined ? {} : { start }),
  });
  try {
    return { chunks: await drain(reader), reader };
  } finally {
    await reader[Symbol.asyncDispose]();
  }
}

/** The log's end now (a first run's start). */
async function now(db: MariaDbServer, table: string): Promise<CdcPosition> {
  const { reader } = await capture(db, table, undefined);
  return reader.startedAt!;
}

async function fullRead(db: MariaDbServer, sql: string) {
  await using source = await openMysqlSource(spec, conn(db));
  const { stream, batches } = await readAll(source, sql);
  return { stream, rows: rowsOf(batches) };
}

async function rejects(p: Promise<unknown>, code: string): Promise<RivetError> {
  try {
    await p;
  } catch (error) {
    assert.ok(error instanceof RivetError, `not a RivetError: ${error}`);
    assert.equal(error.code, code, error.message);
    assert.ok(!error.message.includes("S3CR3T_M4RK3R"));
    return error;
  }
  assert.fail(`expected ${code}`);
}

const TYPES = `CREATE TABLE rivet.types (
  id INT PRIMARY KEY, t TINYINT, tu TINYINT UNSIGNED, flag BOOLEAN, s SMALLINT,
  su SMALLINT UNSIGNED, m MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, b BIGINT,
  bu BIGINT UNSIGNED, d52 DECIMAL(5,2), d12 DECIMAL(12,2), d38 DECIMAL(38,10),
  du DECIMAL(10,3) UNSIGNED, d0 DECIMAL(18,0), f FLOAT, dbl DOUBLE, dt DATE, dt0 DATETIME,
  dt3 DATETIME(3), dt6 DATETIME(6), dt1 DATETIME(1), ts TIMESTAMP(6) NULL, ts0 TIMESTAMP NULL,
  tm TIME(6), tm2 TIME(2), tm0 TIME, y YEAR, c CHAR(10), vc VARCHAR(20), vl VARCHAR(400),
  tx TEXT, mt MEDIUMTEXT, bn BINARY(4), vb VARBINARY(10), bl BLOB, e ENUM('a','it''s','ü'),
  st SET('x','y','z'), b1 BIT(1), b12 BIT(12), b64 BIT(64), j JSON, l1 VARCHAR(10)
    CHARACTER SET latin1)`;

const ROWS = `INSERT INTO rivet.types VALUES
  (1, -128, 0, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
   -999.99, -1234567890.12, 1234567890123456789012345678.0123456789, 0.001,
   -999999999999999999, 1.5, 0.1, '1000-01-01', '1000-01-01 00:00:00',
   '1970-01-01 00:00:00.001', '1969-12-31 23:59:59.999999', '2024-02-29 12:00:00.5',
   '1999-12-31 23:59:59.000001', '2038-01-19 03:14:07', '00:00:00', '23:59:59.99',
   '12:34:56', 1901, 'héllo', '', REPEAT('ж', 300), 'τεξτ 🙂', 'mt', 'ab', x'00ff', x'deadbeef',
   'a', '', b'0', b'101010101010', b'1000000000000000000000000000000000000000000000000000000000000001',
   '{"k": [1, "ü", null]}', 'café'),
  (2, 127, 255, 1, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
   9223372036854775807, 18446744073709551615, 999.99, 9999999999.99,
   -9999999999999999999999999999.9999999999, 9999999.999, 0, -3.4e38, -1.7976931348623157e308,
   '9999-12-31', '9999-12-31 23:59:59', '2024-06-30 23:59:59.999', '2000-01-01 00:00:00.000001',
   '2000-01-01 00:00:00.1', '2038-01-19 03:14:07.999999', '1970-01-01 03:00:01',
   '23:59:59.999999', '00:00:00.01', '00:00:01', 2155, 'x', 'vc', 'v', '', '', 'abcd', '',
   '', 'ü', 'x,z', b'1', b'111111111111', b'1111111111111111111111111111111111111111111111111111111111111111',
   '[]', 'Ünïcödé'),
  (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`;

Deno.test("MySQL CDC against MariaDB with a ROW binlog", async (t) => {
  await using db = await startMariaDb({ binlogFormat: "ROW" });
  await db.sql(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'rivet'@'127.0.0.1';
    SET GLOBAL time_zone = '+03:00'; ${TYPES}; CREATE TABLE rivet.other (id INT PRIMARY KEY);`);

  let afterInsert: CdcPosition | undefined;
  await t.step(
    "inserts of every common type arrive typed and valued as a full export",
    async () => {
      const start = await now(db, "types");
      await db.sql(ROWS);
      const { chunks, reader } = await capture(db, "types", start);
      const full = await fullRead(db, "SELECT * FROM types ORDER BY id");
      const table = reader.tables[0]!;
      assert.equal(table.name, "rivet.types");
      assert.deepEqual(table.columns, full.stream.columns);
      assert.equal(table.schema.toString(), full.stream.schema.toString());
      const rows = chunks.filter((c) => c.batch.numRows > 0);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]!.batch.schema.toString(), full.stream.schema.toString());
      assert.deepEqual([...rows[0]!.ops], [0, 0, 0]);
      assert.deepEqual(rowsOf([rows[0]!.batch]), full.rows);
      const pos = JSON.parse(rows[0]!.positions[0]!);
      assert.equal(pos.file, start["file"]);
      assert.ok(pos.pos > (start["pos"] as number));
      assert.equal(rows[0]!.positions[0], JSON.stringify(pos), "compact JSON");
      afterInsert = chunks.at(-1)!.commit;
      assert.ok(afterInsert !== undefined && chunks.at(-1)!.commit === rows[0]!.commit);
    },
  );

  await t.step(
    "updates and a delete in one transaction: after-images, before-image, one commit",
    async () => {
      const before = await fullRead(db, "SELECT * FROM types WHERE id = 3");
      await db.sql(`BEGIN;
      UPDATE rivet.types SET vc = 'changed', d52 = -0.5, tm = '01:02:03.4', e = 'a' WHERE id = 1;
      INSERT INTO rivet.other VALUES (1);
      UPDATE rivet.types SET st = 'y', ts = '2001-02-03 04:05:06.7' WHERE id = 2;
      DELETE FROM rivet.types WHERE id = 3;
      COMMIT;`);
      const { chunks } = await capture(db, "types", afterInsert);
      const full = await fullRead(db, "SELECT * FROM types ORDER BY id");
      const ops = chunks.flatMap((c) => [...c.ops]);
      assert.deepEqual(ops, [1, 1, 2]);
      assert.deepEqual(rowsOf(chunks.map((c) => c.batch)), [...full.rows, ...before.rows]);
      const commits = chunks.filter((c) => c.commit !== undefined);
      assert.equal(commits.length, 1, "one commit, at the transaction's end");
      assert.equal(commits[0], chunks.at(-1));
    },
  );

  await t.step("a restart from a commit delivers only later transactions", async () => {
    await db.sql(
      "INSERT INTO rivet.types (id, vc) VALUES (10, 'a'); " +
        "INSERT INTO rivet.types (id, vc) VALUES (11, 'b');",
    );
    const first = await capture(db, "types", afterInsert);
    const commits = first.chunks.map((c) => c.commit).filter((c) => c !== undefined);
    assert.equal(commits.length, 3);
    const again = await capture(db, "types", commits[1]);
    const rows = rowsOf(again.chunks.map((c) => c.batch));
    assert.deepEqual(rows.map((r) => [r["id"], r["vc"]]), [[11, "b"]]);
    const end = await capture(db, "types", commits[2]);
    assert.deepEqual(end.chunks, [], "nothing after the last commit");
  });

  await t.step("other tables' transactions report progress without rows", async () => {
    const start = await now(db, "types");
    await db.sql("INSERT INTO rivet.other VALUES (2); INSERT INTO rivet.other VALUES (3);");
    const { chunks } = await capture(db, "types", start);
    assert.ok(chunks.length >= 1);
    assert.ok(chunks.every((c) => c.batch.numRows === 0 && c.ops.length === 0));
    assert.ok(chunks.at(-1)!.commit !== undefined);
    assert.deepEqual(await capture(db, "types", chunks.at(-1)!.commit).then((r) => r.chunks), []);
  });

  await t.step("a live stream delivers new changes; dispose while waiting settles", async () => {
    const reader = await openMysqlCdc(spec, conn(db), options("types", { untilCurrent: false }));
    const it = reader.changes();
    const first = it.next();
    await db.sql("INSERT INTO rivet.types (id, vc) VALUES (20, 'live')");
    const got = await first;
    assert.equal(got.done, false);
    assert.deepEqual(rowsOf([got.value!.batch]).map((r) => r["vc"]), ["live"]);
    const pending = it.next();
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, 200));
    await reader[Symbol.asyncDispose]();
    const settled = await Promise.race([
      pending.then((r) => r.done, () => "rejected"),
      new Promise((r) => setTimeout(() => r("timeout"), 5000)),
    ]);
    assert.equal(settled, true);
    assert.ok(Date.now() - t0 < 5000);
  });

  await t.step(
    "two tables, across a binlog rotation: rows by table, positions per file",
    async () => {
      await db.sql("CREATE TABLE rivet.second (id INT PRIMARY KEY, v VARCHAR(5))");
      const start = await now(db, "types");
      await db.sql(`BEGIN; INSERT INTO rivet.types (id, vc) VALUES (30, 'p');
      INSERT INTO rivet.second VALUES (1, 'q'); INSERT INTO rivet.types (id, vc) VALUES (31, 'r');
      COMMIT; FLUSH BINARY LOGS; INSERT INTO rivet.second VALUES (2, 's');`);
      const reader = await openMysqlCdc(spec, conn(db), {
        ...options("types"),
        tables: [{ table: "types" }, { table: "rivet.second" }],
        start,
      });
      const chunks = await drain(reader);
      await reader[Symbol.asyncDispose]();
      assert.deepEqual(reader.tables.map((x) => x.name), ["rivet.types", "rivet.second"]);
      const withRows = chunks.filter((c) => c.batch.numRows > 0);
      assert.deepEqual(withRows.map((c) => [c.table, c.batch.numRows, c.commit !== undefined]), [
        [0, 1, false],
        [1, 1, false],
        [0, 1, true],
        [1, 1, true],
      ]);
      const files = withRows.map((c) => JSON.parse(c.positions[0]!).file);
      assert.equal(files[0], start["file"]);
      assert.notEqual(files[3], files[0], "the last insert is in the next binlog file");
      assert.equal(withRows[3]!.commit!["file"], files[3]);
      assert.deepEqual(
        await capture(db, "second", withRows[2]!.commit).then((r) =>
          rowsOf(r.chunks.map((c) => c.batch))
        ),
        [{ id: 2, v: "s" }],
      );
    },
  );

  await t.step("batchRows splits a big transaction; only its last chunk commits", async () => {
    const start = await now(db, "types");
    await db.sql(
      "INSERT INTO rivet.types (id, vc) SELECT 100 + seq, 'bulk' FROM seq_1_to_250",
      { database: "rivet" },
    );
    const { chunks } = await capture(db, "types", start, { batchRows: 100 });
    assert.deepEqual(chunks.map((c) => c.batch.numRows), [100, 100, 50]);
    assert.deepEqual(chunks.map((c) => c.commit !== undefined), [false, false, true]);
  });

  await t.step("MariaDB UUID, INET4 and INET6 arrive as the export's text", async () => {
    await db.sql("CREATE TABLE rivet.addr (id INT PRIMARY KEY, u UUID, i6 INET6, i4 INET4)");
    const start = await now(db, "addr");
    const uuids = [
      "123e4567-e89b-12d3-a456-426655440000",
      "00000000-0000-0000-0000-000000000000",
      "ffffffff-ffff-ffff-ffff-ffffffffffff",
      "6ccd780c-baba-1026-9564-5b8c656024db",
      "f47ac10b-58cc-4372-a567-0e02b2c3d479",
    ];
    const ips = [
      "2001:db8::ff00:42:8329",
      "::",
      "::1",
      "::2",
      "::1.2.3.4",
      "::ffff:1.2.3.4",
      "2001:db8:0:1:1:1:1:1",
      "1:0:0:2:0:0:3:4",
      "1:0:0:2:0:0:0:3",
      "fe80::1:0:0:1",
      "1:2:3:4:5:6:7:8",
      "::ffff:0:1.2.3.4",
      "::0.0.1.0",
      "1::",
    ];
    const values = ips.map((ip, i) =>
      `(${i}, ${uuids[i] === undefined ? "NULL" : `'${uuids[i]}'`}, '${ip}', '${i}.${
        i * 17
      }.255.0')`
    );
    await db.sql(`INSERT INTO rivet.addr VALUES ${values.join(", ")}`);
    const { chunks } = await capture(db, "addr", start);
    const full = await fullRead(db, "SELECT * FROM addr ORDER BY id");
    assert.deepEqual(rowsOf(chunks.map((c) => c.batch)), full.rows);
  });

  await t.step("CHAR over 255 bytes, BINARY padding, wide VARBINARY", async () => {
    await db.sql(`CREATE TABLE rivet.chars (id INT PRIMARY KEY, c CHAR(100), b BINARY(200),
      c1 CHAR(255) CHARACTER SET latin1, vb VARBINARY(1000))`);
    const start = await now(db, "chars");
    await db.sql(`INSERT INTO rivet.chars VALUES
      (1, REPEAT('ü', 100), x'0102', REPEAT('é', 255), REPEAT(x'00ff', 400)),
      (2, 'a  ', x'00', 'b', x'')`);
    const { chunks } = await capture(db, "chars", start);
    const full = await fullRead(db, "SELECT * FROM chars ORDER BY id");
    assert.deepEqual(rowsOf(chunks.map((c) => c.batch)), full.rows);
  });

  await t.step("a row event larger than one 16 MB protocol packet", async () => {
    await db.sql("CREATE TABLE rivet.big (id INT PRIMARY KEY, b LONGBLOB)");
    const start = await now(db, "big");
    await db.sql("INSERT INTO rivet.big VALUES (1, REPEAT('a', 20000000)), (2, 'x')");
    const { chunks } = await capture(db, "big", start);
    const b = chunks.at(-1)!.batch.getChild("b")!;
    assert.deepEqual([b.get(0)?.length, b.get(1)?.length], [20_000_000, 1]);
    assert.ok((b.get(0) as Uint8Array).every((x) => x === 97));
  });

  await t.step("compressed row events decode alike", async () => {
    const start = await now(db, "types");
    await db.sql(`SET GLOBAL log_bin_compress = ON; SET GLOBAL log_bin_compress_min_len = 10;
      CREATE TABLE rivet.copy LIKE rivet.types; INSERT INTO rivet.copy SELECT * FROM rivet.types
      WHERE id < 3; UPDATE rivet.copy SET vc = 'z'; SET GLOBAL log_bin_compress = OFF;`);
    const { chunks } = await capture(db, "copy", start);
    const full = await fullRead(db, "SELECT * FROM copy ORDER BY id");
    assert.deepEqual(chunks.flatMap((c) => [...c.ops]), [0, 0, 1, 1]);
    const rows = rowsOf(chunks.map((c) => c.batch));
    assert.deepEqual(rows.slice(2), full.rows);

    // A compressed DDL statement ends its group too: the checkpoint can move past it.
    const before = await now(db, "copy");
    await db.sql(`SET GLOBAL log_bin_compress = ON;
      CREATE TABLE rivet.compressed_ddl (id INT PRIMARY KEY, a_long_column_name VARCHAR(10));
      SET GLOBAL log_bin_compress = OFF;`);
    const ddl = await capture(db, "copy", before);
    assert.deepEqual(ddl.chunks.at(-1)?.commit, await now(db, "copy"));
  });

  await t.step("a negative TIME is refused as the full export refuses it", async () => {
    await db.sql("CREATE TABLE rivet.times (id INT PRIMARY KEY, tm TIME(6))");
    const start = await now(db, "times");
    await db.sql("INSERT INTO rivet.times VALUES (1, '-00:00:01.5')");
    const full = await openMysqlSource(spec, conn(db));
    const expected = await rejects(
      readAll(full, "SELECT * FROM times"),
      "source.time_out_of_range",
    );
    await full[Symbol.asyncDispose]();
    const got = await rejects(capture(db, "times", start), "source.time_out_of_range");
    assert.equal(got.message, expected.message);
  });

  await t.step("zero dates: NULL and one source.zero_date warning, as the export", async () => {
    await db.sql(`CREATE TABLE rivet.zeros (id INT PRIMARY KEY, d DATE, dt DATETIME(6))`);
    const start = await now(db, "zeros");
    await db.sql(`SET SESSION sql_mode = '';
      INSERT INTO rivet.zeros VALUES (1, '0000-00-00', '0000-00-00 00:00:00'), (2, '2020-01-01', NULL);`);
    const warnings: Warning[] = [];
    const { chunks } = await capture(db, "zeros", start, { onWarning: (w) => warnings.push(w) });
    const full = await fullRead(db, "SELECT * FROM zeros ORDER BY id");
    assert.deepEqual(rowsOf(chunks.map((c) => c.batch)), full.rows);
    assert.deepEqual(warnings.map((w) => [w.code, w.message.slice(0, 12)]), [
      ["source.zero_date", "Column 'd' ("],
      ["source.zero_date", "Column 'dt' "],
    ]);
  });

  await t.step("an aborted signal fails a waiting next() with its reason", async () => {
    const abort = new AbortController();
    const reader = await openMysqlCdc(spec, conn(db), {
      ...options("types", { untilCurrent: false }),
      signal: abort.signal,
    });
    try {
      const outcome = reader.changes().next().then(() => "resolved", (e) => e);
      abort.abort(new Error("stop here"));
      assert.equal(((await outcome) as Error).message, "stop here");
    } finally {
      await reader[Symbol.asyncDispose]();
    }
  });

  await t.step(
    "MariaDB 5.3 temporal columns are refused with the ALTER that converts them",
    async () => {
      await db.sql(`SET GLOBAL mysql56_temporal_format = OFF;
      CREATE TABLE rivet.old_times (id INT PRIMARY KEY, tm TIME(3));
      SET GLOBAL mysql56_temporal_format = ON;`);
      const e = await rejects(
        openMysqlCdc(spec, conn(db), options("old_times")),
        "cdc.unsupported_type",
      );
      assert.match(e.hint ?? "", /ALTER TABLE rivet\.old_times FORCE/);
      await db.sql("ALTER TABLE rivet.old_times FORCE");
      const start = await now(db, "old_times");
      await db.sql("INSERT INTO rivet.old_times VALUES (1, '01:02:03.456')");
      const { chunks } = await capture(db, "old_times", start);
      assert.deepEqual(rowsOf(chunks.map((c) => c.batch)), [{
        id: 1,
        tm: "3723456000n",
      }]);
    },
  );

  await t.step("TRUNCATE of a captured table warns (no delete changes show it)", async () => {
    await db.sql(
      "CREATE TABLE rivet.trunc (id INT PRIMARY KEY); INSERT INTO rivet.trunc VALUES (1)",
    );
    const start = await now(db, "trunc");
    await db.sql(
      "TRUNCATE TABLE rivet.trunc; TRUNCATE rivet.other; INSERT INTO rivet.trunc VALUES (2);",
    );
    const warnings: Warning[] = [];
    const { chunks } = await capture(db, "trunc", start, { onWarning: (w) => warnings.push(w) });
    assert.deepEqual(rowsOf(chunks.map((c) => c.batch)), [{ id: 2 }]);
    assert.deepEqual(warnings.map((w) => w.code), ["cdc.truncated"]);
    assert.match(warnings[0]!.message, /table rivet\.trunc was truncated at binlog\.\d+:\d+/);
  });

  await t.step("ALTER TABLE during capture: cdc.schema_changed", async () => {
    // Resumed from before an ALTER: the binlog's older rows no longer fit the table.
    const start = await now(db, "other");
    await db.sql("INSERT INTO rivet.other VALUES (8); ALTER TABLE rivet.other ADD COLUMN x INT;");
    await rejects(capture(db, "other", start), "cdc.schema_changed");
    // Live: the ALTER happens while the reader streams.
    const reader = await openMysqlCdc(spec, conn(db), options("other", { untilCurrent: false }));
    try {
      await db.sql("ALTER TABLE rivet.other DROP COLUMN x; INSERT INTO rivet.other VALUES (9);");
      await rejects(drain(reader), "cdc.schema_changed");
    } finally {
      await reader[Symbol.asyncDispose]();
    }
  });

  await t.step("a checkpoint in a purged binlog file: cdc.checkpoint_too_old", async () => {
    // MariaDB purges a file only after its InnoDB checkpoint, too late for a test: a name the
    // server no longer (or never) had stands for it.
    await rejects(
      capture(db, "other", { file: "binlog.000000", pos: 4 }),
      "cdc.checkpoint_too_old",
    );
    await rejects(capture(db, "other", { lsn: "0/0" }), "cdc.bad_checkpoint");
  });

  await t.step("a user without the replication grants: cdc.missing_grant", async () => {
    await db.sql(`CREATE USER 'plain'@'127.0.0.1' IDENTIFIED BY 'pl-S3CR3T_M4RK3R';
      GRANT SELECT ON rivet.* TO 'plain'@'127.0.0.1';`);
    const e = await rejects(
      openMysqlCdc(spec, conn(db, "plain", "pl-S3CR3T_M4RK3R"), options("types")),
      "cdc.missing_grant",
    );
    assert.match(e.hint ?? "", /GRANT REPLICATION SLAVE, REPLICATION CLIENT ON \*\.\* TO 'plain'/);
  });

  await t.step("a proxy in front (MaxScale by its version string): cdc.proxy_refused", async () => {
    // A forwarder that renames the server in its first packet, as MaxScale announces itself.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const from = new TextEncoder().encode("MariaDB-0");
    const to = new TextEncoder().encode("maxscale-");
    const sockets: Deno.Conn[] = [];
    const serve = (async () => {
      for await (const client of listener) {
        const server = await Deno.connect({ hostname: db.host, port: db.port });
        sockets.push(client, server);
        let first = true;
        const rename = new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, out) {
            if (first) {
              first = false;
              for (let i = 0; i + from.length <= chunk.length; i++) {
                if (from.every((b, k) => chunk[i + k] === b)) chunk.set(to, i);
              }
            }
            out.enqueue(chunk);
          },
        });
        server.readable.pipeThrough(rename).pipeTo(client.writable).catch(() => {});
        client.readable.pipeTo(server.writable).catch(() => {});
      }
    })();
    try {
      const e = await rejects(
        openMysqlCdc(spec, { ...conn(db), port }, options("types")),
        "cdc.proxy_refused",
      );
      assert.match(e.hint ?? "", /primary .* directly/);
    } finally {
      listener.close();
      for (const s of sockets) {
        try {
          s.close();
        } catch { /* closed */ }
      }
      await serve.catch(() => {});
    }
  });

  await t.step("a bad table name or server id is refused", async () => {
    await rejects(openMysqlCdc(spec, conn(db), options("types`; --")), "cdc.table_name");
    // The server's own id (1) and ids outside 1..2^32-1 cannot name a replica.
    for (const serverId of [1, 0, -3, 2 ** 32]) {
      await rejects(openMysqlCdc(spec, conn(db), options("types", { serverId })), "cdc.server_id");
    }
  });

  await t.step("an idle stream lives on heartbeats; a silent one fails as transient", async () => {
    const reader = await openMysqlCdc(spec, conn(db), {
      ...options("types", { untilCurrent: false }),
      heartbeatS: 0.5,
    });
    const pid = Number((await Deno.readTextFile(`${db.dataDir}/../mysqld.pid`)).trim());
    try {
      const outcome = reader.changes().next().then(() => "resolved", (e) => e);
      // Idle for 4 s, longer than three heartbeat periods: the heartbeats keep it alive.
      await new Promise((r) => setTimeout(r, 4000));
      assert.equal(await Promise.race([outcome, Promise.resolve("pending")]), "pending");
      Deno.kill(pid, "SIGSTOP");
      const t0 = Date.now();
      const e = await outcome;
      assert.ok(e instanceof RivetError && e.code === "source.connection_lost", String(e));
      assert.equal(e.exitCode, 2);
      assert.ok(Date.now() - t0 < 10_000);
    } finally {
      Deno.kill(pid, "SIGCONT");
      await reader[Symbol.asyncDispose]();
    }
  });

  await t.step("the server going away fails a waiting next() as transient", async () => {
    const reader = await openMysqlCdc(spec, conn(db), options("types", { untilCurrent: false }));
    try {
      const outcome = rejects(reader.changes().next(), "source.connection_lost");
      await db.stopServer();
      const e = await outcome;
      assert.equal(e.exitCode, 2);
    } finally {
      await reader[Symbol.asyncDispose]();
    }
  });
});

Deno.test("MySQL CDC refuses servers that cannot stream rows", async (t) => {
  await t.step("STATEMENT format: cdc.binlog_format; MINIMAL row image warns", async () => {
    await using db = await startMariaDb({ binlogFormat: "STATEMENT" });
    await db.sql(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO 'rivet'@'127.0.0.1';
      CREATE TABLE rivet.t (id INT PRIMARY KEY);`);
    const e = await rejects(openMysqlCdc(spec, conn(db), options("t")), "cdc.binlog_format");
    assert.match(e.hint ?? "", /SET GLOBAL binlog_format = 'ROW'/);
    await db.sql("SET GLOBAL binlog_format = 'ROW'; SET GLOBAL binlog_row_image = 'MINIMAL';");
    const warnings: Warning[] = [];
    const reader = await openMysqlCdc(spec, conn(db), {
      ...options("t"),
      onWarning: (w) => warnings.push(w),
    });
    await reader[Symbol.asyncDispose]();
    assert.deepEqual(warnings.map((w) => w.code), ["cdc.row_image_minimal"]);
  });

  await t.step("no binary log: cdc.binlog_off", async () => {
    await using db = await startMariaDb();
    await db.sql(`CREATE TABLE rivet.t (id INT PRIMARY KEY);`);
    const e = await rejects(openMysqlCdc(spec, conn(db), options("t")), "cdc.binlog_off");
    assert.match(e.hint ?? "", /--log-bin/);
  });
});
