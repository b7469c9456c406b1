/**
 * The PostgreSQL change reader against a real server started with `wal_level = logical`: typed
 * changes match a full export of the same rows, transaction boundaries, resume from a commit,
 * redelivery after a saved but unacknowledged checkpoint, `untilCurrent`, disposal while waiting,
 * the slot's confirmed position after an acknowledgement, and the refusals with their fixes.
 */
import assert from "node:assert/strict";
import type { RecordBatch } from "../../src/core/arrow.ts";
import type { CdcChunk, CdcOpenOptions, CdcReader } from "../../src/core/cdc.ts";
import type { ConnectionInfo } from "../../src/core/source.ts";
import type { SourceSpec, Warning } from "../../src/core/spec.ts";
import { openSource } from "../../src/sources/mod.ts";
import { openPostgresCdc } from "../../src/sources/postgres/cdc.ts";
import { PgConnection } from "../../src/sources/postgres/wire.ts";
import { type PgServer, startPostgres } from "../_helpers/pg_server.ts";
import { startPgBouncer } from "../_helpers/pgbouncer.ts";
import { makeCertificates } from "../_helpers/tls_certs.ts";
import { expectError, readAll, rowObjects } from "../_helpers/source_read.ts";

const spec: SourceSpec = { kind: "postgres", connection: { form: "url_env", env: "UNUSED" } };

function conn(pg: PgServer, user = "postgres"): ConnectionInfo {
  return { host: pg.host, port: pg.port, user, database: "postgres", params: {} };
}

function cdcOptions(slot: string, table: string, more: Partial<CdcOpenOptions> = {}) {
  return {
    tables: [{ schema: "public", table }],
    untilCurrent: true,
    batchRows: 10_000,
    slot,
    publication: `pub_${slot}`,
    serverId: 0,
    columnOverrides: {},
    ...more,
  } satisfies CdcOpenOptions;
}

/** Reads every chunk (untilCurrent) within a bound, so a reader that never ends fails the test. */
async function drain(reader: CdcReader, limitMs = 30_000): Promise<CdcChunk[]> {
  const out: CdcChunk[] = [];
  const it = reader.changes();
  const deadline = Date.now() + limitMs;
  for (;;) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      it.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error("untilCurrent did not end")),
          deadline - Date.now(),
        );
      }),
    ]).finally(() => clearTimeout(timer));
    if (r.done) return out;
    out.push(r.value);
  }
}

/** A cell as plain data: typed arrays and Arrow vectors (lists) become arrays. */
function plain(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (ArrayBuffer.isView(value)) return Array.from(value as unknown as ArrayLike<unknown>);
  if (typeof value === "object" && "toArray" in value) {
    return Array.from((value as { toArray(): ArrayLike<unknown> }).toArray(), plain);
  }
  return value;
}

function rows(batches: readonly RecordBatch[]): Record<string, unknown>[] {
  return rowObjects(batches, plain);
}

function changeRows(chunks: readonly CdcChunk[]) {
  const out: { op: number; pos: string; row: Record<string, unknown> }[] = [];
  for (const c of chunks) {
    const r = rows([c.batch]);
    r.forEach((row, i) => out.push({ op: c.ops[i]!, pos: c.positions[i]!, row }));
  }
  return out;
}

const TYPED = `CREATE TABLE typed (
  id int4 PRIMARY KEY, i2 int2, i8 int8, n numeric(12,3), f4 float4, f8 float8, b bool,
  t text, vc varchar(20), by bytea, d date, tm time, ts timestamp, tz timestamptz, u uuid,
  j json, jb jsonb, iv interval, ai int4[], at text[])`;

const TYPED_ROWS = `INSERT INTO typed VALUES
  (1, -32768, 9007199254740993, 123456789.125, 1.5, -2.25e300, true, 'héllo', 'vc', '\\x00ff10',
   '2024-02-29', '23:59:59.999999', '1999-12-31 23:59:59.5', '2024-01-01 12:00:00+02',
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": null}', '1 year 2 mons 3 days 04:05:06.5',
   '{1,NULL,3}', '{"x","y z"}'),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL),
  (3, 7, -1, -0.001, 'NaN', 'Infinity', false, '', '', '\\x', '1970-01-01', '00:00', '1970-01-01',
   '1970-01-01 00:00:00+00', '00000000-0000-0000-0000-000000000000', '[]', '{}', '-1 day',
   '{}', '{NULL}')`;

Deno.test("PostgreSQL change reader", async (t) => {
  await using pg = await startPostgres({ logical: true });
  const c = conn(pg);
  /** A streaming reader (no untilCurrent). */
  const live = (slot: string, table: string) =>
    openPostgresCdc(spec, c, cdcOptions(slot, table, { untilCurrent: false }));
  await pg.psql(`${TYPED}; CREATE TABLE tx (id int PRIMARY KEY, v text);
    CREATE TABLE other (id int); CREATE ROLE norepl LOGIN;`);

  await t.step(
    "inserts, updates and deletes of every common type are typed as a full export",
    async () => {
      // The first open creates the slot and the publication at the current end of the log.
      await (await openPostgresCdc(spec, c, cdcOptions("s_typed", "typed")))[Symbol.asyncDispose]();
      await pg.psql(TYPED_ROWS);
      await using source = await openSource(spec, c);
      const inserted = await readAll(source, "SELECT * FROM typed ORDER BY id");
      await pg.psql(
        `UPDATE typed SET t = 'changed', ai = '{9}' WHERE id = 1; DELETE FROM typed WHERE id = 3`,
      );
      const updated = await readAll(source, "SELECT * FROM typed WHERE id = 1");

      const warnings: Warning[] = [];
      await using reader = await openPostgresCdc(
        spec,
        c,
        cdcOptions("s_typed", "typed", { onWarning: (w) => warnings.push(w) }),
      );
      assert.equal(reader.tables[0]!.name, "public.typed");
      assert.deepEqual(reader.tables[0]!.columns, inserted.stream.columns);
      assert.equal(reader.tables[0]!.schema.toString(), inserted.stream.schema.toString());
      const chunks = await drain(reader);
      for (const chunk of chunks) {
        assert.equal(chunk.batch.schema.toString(), inserted.stream.schema.toString());
      }
      const changes = changeRows(chunks);
      assert.deepEqual(changes.map((ch) => ch.op), [0, 0, 0, 1, 2]);
      assert.deepEqual(changes.slice(0, 3).map((ch) => ch.row), rows(inserted.batches));
      assert.deepEqual(changes[3]!.row, rows(updated.batches)[0]);
      const deleted = Object.fromEntries(
        inserted.stream.schema.fields.map((f) => [f.name, f.name === "id" ? 3 : null]),
      );
      assert.deepEqual(changes[4]!.row, deleted);
      for (const ch of changes) assert.match(ch.pos, /^\{"lsn":"[0-9A-F]+\/[0-9A-F]+"\}$/);
      assert.deepEqual(warnings, []);
    },
  );

  await t.step("columns: overrides type the changes as they type a full export", async () => {
    const overrides = {
      n: "decimal(20,5)",
      i2: "int64",
      jb: "text",
      t: "binary",
      ts: "timestamp_ns",
    };
    await (await openPostgresCdc(spec, c, cdcOptions("s_over", "typed")))[Symbol.asyncDispose]();
    await pg.psql(
      "INSERT INTO typed SELECT 10 + id, i2, i8, n, f4, f8, b, t, vc, by, d, tm, ts, tz, " +
        "u, j, jb, iv, ai, at FROM typed WHERE id IN (1, 2) ORDER BY id",
    );
    await using source = await openSource(spec, c);
    const exported = await readAll(source, "SELECT * FROM typed WHERE id > 10 ORDER BY id", {
      columnOverrides: overrides,
    });
    await using reader = await openPostgresCdc(
      spec,
      c,
      cdcOptions("s_over", "typed", { columnOverrides: overrides }),
    );
    assert.deepEqual(reader.tables[0]!.columns, exported.stream.columns);
    assert.equal(reader.tables[0]!.schema.toString(), exported.stream.schema.toString());
    const changes = changeRows(await drain(reader));
    assert.deepEqual(changes.map((ch) => ch.row), rows(exported.batches));
    // A text override of a type whose binary form is not its text cannot be honoured.
    await expectError(
      openPostgresCdc(spec, c, cdcOptions("s_over", "typed", { columnOverrides: { i8: "text" } })),
      { code: "cdc.override_unsupported", exitCode: 1, includes: ["'i8'"] },
    );
  });

  await t.step("a multi-statement transaction arrives with one commit, at its end", async () => {
    await (await openPostgresCdc(spec, c, cdcOptions("s_tx", "tx")))[Symbol.asyncDispose]();
    await pg.psql(`BEGIN; INSERT INTO tx SELECT g, 'a' FROM generate_series(1, 5) g;
      INSERT INTO other VALUES (1); UPDATE tx SET v = 'b' WHERE id <= 2; DELETE FROM tx WHERE id = 5;
      COMMIT; INSERT INTO tx VALUES (6, 'c');`);
    const end = (await pg.psql("SELECT pg_current_wal_insert_lsn()")).trim();
    await using reader = await openPostgresCdc(spec, c, cdcOptions("s_tx", "tx", { batchRows: 3 }));
    // 0-row progress chunks aside.
    const chunks = (await drain(reader)).filter((ch) => ch.batch.numRows > 0);
    const rowsPerChunk = chunks.map((ch) => ch.batch.numRows);
    assert.deepEqual(rowsPerChunk, [3, 3, 2, 1], "8 changes in chunks of at most 3, then 1");
    assert.deepEqual(chunks.map((ch) => ch.commit !== undefined), [false, false, true, true]);
    const commits = chunks.flatMap((ch) => ch.commit ? [String(ch.commit.lsn)] : []);
    assert.equal(commits.length, 2);
    // Commit positions are the ends of the two transactions, in order, within the log.
    const cmp = await pg.psql(
      `SELECT '${commits[0]}'::pg_lsn < '${commits[1]}'::pg_lsn, '${
        commits[1]
      }'::pg_lsn <= '${end}'::pg_lsn`,
    );
    assert.equal(cmp.trim(), "t|t");
  });

  await t.step(
    "an update of the key is the delete of the old key and the insert of the new row",
    async () => {
      await (await openPostgresCdc(spec, c, cdcOptions("s_rekey", "tx")))[Symbol.asyncDispose]();
      await pg.psql("UPDATE tx SET id = 1000 WHERE id = 6; UPDATE tx SET v = 'd' WHERE id = 1000");
      await using reader = await openPostgresCdc(spec, c, cdcOptions("s_rekey", "tx"));
      const changes = changeRows(await drain(reader));
      assert.deepEqual(changes.map((ch) => [ch.op, ch.row]), [
        [2, { id: 6, v: null }],
        [0, { id: 1000, v: "c" }],
        [1, { id: 1000, v: "d" }],
      ]);
      assert.equal(changes[0]!.pos, changes[1]!.pos, "one change, one position");
    },
  );

  await t.step("resume from an acknowledged commit delivers only later transactions", async () => {
    await (await openPostgresCdc(spec, c, cdcOptions("s_resume", "tx")))[Symbol.asyncDispose]();
    await pg.psql("INSERT INTO tx VALUES (100, 'A'); INSERT INTO tx VALUES (101, 'B');");
    let first;
    {
      await using reader = await openPostgresCdc(spec, c, cdcOptions("s_resume", "tx"));
      const chunks = await drain(reader);
      const ids = changeRows(chunks).map((ch) => ch.row.id);
      assert.deepEqual(ids, [100, 101]);
      first = chunks.find((ch) => ch.commit)!.commit!;
      await reader.acknowledge(first);
    }
    await pg.psql("INSERT INTO tx VALUES (102, 'C')");
    await using again = await openPostgresCdc(
      spec,
      c,
      cdcOptions("s_resume", "tx", { start: first }),
    );
    assert.deepEqual(changeRows(await drain(again)).map((ch) => ch.row.id), [101, 102]);
  });

  await t.step(
    "a saved but unacknowledged checkpoint skips the redelivered transactions",
    async () => {
      await (await openPostgresCdc(spec, c, cdcOptions("s_redo", "tx")))[Symbol.asyncDispose]();
      await pg.psql("INSERT INTO tx VALUES (200, 'A'); INSERT INTO tx VALUES (201, 'B');");
      const confirmed = () =>
        pg.psql("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 's_redo'");
      const before = await confirmed();
      let first;
      {
        await using reader = await openPostgresCdc(spec, c, cdcOptions("s_redo", "tx"));
        first = (await drain(reader)).find((ch) => ch.commit)!.commit!;
        // No acknowledge: the server still holds both transactions for this slot. The reader's
        // periodic status updates (and the last one at close) must not move it either.
        await new Promise((r) => setTimeout(r, 1500));
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await confirmed(), before, "the slot moved without an acknowledgement");
      await using again = await openPostgresCdc(
        spec,
        c,
        cdcOptions("s_redo", "tx", { start: first }),
      );
      assert.deepEqual(changeRows(await drain(again)).map((ch) => ch.row.id), [201]);
    },
  );

  await t.step(
    "acknowledge moves the slot's confirmed_flush_lsn once the reader closes",
    async () => {
      await (await openPostgresCdc(spec, c, cdcOptions("s_ack", "tx")))[Symbol.asyncDispose]();
      await pg.psql("INSERT INTO tx VALUES (300, 'A'); INSERT INTO other VALUES (2);");
      const confirmed = async () =>
        (await pg.psql(
          "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 's_ack'",
        )).trim();
      const before = await confirmed();
      let last: string;
      {
        await using reader = await openPostgresCdc(spec, c, cdcOptions("s_ack", "tx"));
        const commits = (await drain(reader)).flatMap((ch) => ch.commit ? [ch.commit] : []);
        assert.ok(commits.length >= 1);
        last = String(commits[commits.length - 1]!.lsn);
        await reader.acknowledge(commits[commits.length - 1]!);
      }
      let now = await confirmed();
      for (let i = 0; i < 50 && now !== last; i++) {
        await new Promise((r) => setTimeout(r, 100));
        now = await confirmed();
      }
      assert.notEqual(before, last);
      assert.equal(now, last);
    },
  );

  await t.step(
    "transactions of other tables report progress, coalesced, past their commits",
    async () => {
      await (await openPostgresCdc(spec, c, cdcOptions("s_quiet", "tx")))[Symbol.asyncDispose]();
      for (let i = 0; i < 20; i++) await pg.psql(`INSERT INTO other VALUES (${i})`);
      const end = (await pg.psql("SELECT pg_current_wal_insert_lsn()")).trim();
      await using reader = await openPostgresCdc(spec, c, cdcOptions("s_quiet", "tx"));
      const chunks = await drain(reader);
      assert.ok(chunks.every((ch) => ch.batch.numRows === 0 && ch.commit), "only progress");
      assert.ok(chunks.length >= 1 && chunks.length <= 3, `${chunks.length} progress chunks`);
      const last = String(chunks[chunks.length - 1]!.commit!.lsn);
      const past = await pg.psql(`SELECT '${last}'::pg_lsn >= '${end}'::pg_lsn`);
      assert.equal(past.trim(), "t", `progress ${last} reaches the log's end ${end} at open`);
    },
  );

  await t.step("untilCurrent with nothing pending ends promptly", async () => {
    await (await openPostgresCdc(spec, c, cdcOptions("s_idle", "tx")))[Symbol.asyncDispose]();
    const started = Date.now();
    await using reader = await openPostgresCdc(spec, c, cdcOptions("s_idle", "tx"));
    const chunks = await drain(reader, 15_000);
    assert.equal(changeRows(chunks).length, 0);
    assert.ok(Date.now() - started < 15_000);
  });

  await t.step("disposing while next() waits settles it and frees the slot", async () => {
    const reader = await live("s_live", "tx");
    const pending = reader.changes().next();
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await reader[Symbol.asyncDispose]();
    const settled = await Promise.race([
      pending.then((r) => (r.done ? "done" : "value"), () => "rejected"),
      new Promise((r) => setTimeout(() => r("hung"), 5000)),
    ]);
    assert.equal(settled, "done");
    assert.ok(Date.now() - started < 5000);
    let active = "t";
    for (let i = 0; i < 50 && active !== "f"; i++) {
      active = (await pg.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 's_live'"))
        .trim();
      if (active !== "f") await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(active, "f", "the server released the slot: the socket was closed");
  });

  await t.step(
    "generated columns, which the stream leaves out, are left out of the rows",
    async () => {
      await pg.psql(
        "CREATE TABLE gen (id int PRIMARY KEY, v int, g int GENERATED ALWAYS AS (v * 2) STORED)",
      );
      await (await openPostgresCdc(spec, c, cdcOptions("s_gen", "gen")))[Symbol.asyncDispose]();
      await pg.psql("INSERT INTO gen (id, v) VALUES (1, 10)");
      await using reader = await openPostgresCdc(spec, c, cdcOptions("s_gen", "gen"));
      assert.deepEqual(reader.tables[0]!.columns.map((col) => col.name), ["id", "v"]);
      assert.deepEqual(changeRows(await drain(reader)).map((ch) => ch.row), [{ id: 1, v: 10 }]);
    },
  );

  await t.step("a partitioned table is captured through its root", async () => {
    await pg.psql(`CREATE TABLE parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
      CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM (0) TO (100);
      CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM (100) TO (200);
      CREATE PUBLICATION pub_leaves FOR TABLE parted`);
    await (await openPostgresCdc(spec, c, cdcOptions("s_part", "parted")))[Symbol.asyncDispose]();
    await pg.psql("INSERT INTO parted VALUES (1, 'a'), (150, 'b')");
    await using reader = await openPostgresCdc(spec, c, cdcOptions("s_part", "parted"));
    assert.deepEqual(changeRows(await drain(reader)).map((ch) => ch.row), [
      { id: 1, v: "a" },
      { id: 150, v: "b" },
    ]);
    const e = await expectError(
      openPostgresCdc(spec, c, cdcOptions("s_leaves", "parted", { publication: "pub_leaves" })),
      { code: "cdc.publication_incomplete", exitCode: 1 },
    );
    assert.match(e.hint ?? "", /publish_via_partition_root = true/);
  });

  await t.step(
    "unchanged TOAST values are NULL with one warning; FULL deletes carry the old row",
    async () => {
      await pg.psql("CREATE TABLE toasty (id int PRIMARY KEY, big text, n int)");
      await (await openPostgresCdc(spec, c, cdcOptions("s_toast", "toasty")))
        [Symbol.asyncDispose]();
      await pg.psql(`INSERT INTO toasty
        SELECT i, (SELECT string_agg(md5(i::text || g::text), '') FROM generate_series(1, 1000) g), 0
        FROM generate_series(1, 2) i;
      UPDATE toasty SET n = 1; ALTER TABLE toasty REPLICA IDENTITY FULL; DELETE FROM toasty WHERE id = 2`);
      const warnings: Warning[] = [];
      await using reader = await openPostgresCdc(
        spec,
        c,
        cdcOptions("s_toast", "toasty", { onWarning: (w) => warnings.push(w) }),
      );
      const changes = changeRows(await drain(reader));
      assert.deepEqual(changes.map((ch) => ch.op), [0, 0, 1, 1, 2]);
      assert.equal((changes[0]!.row.big as string).length, 32_000);
      assert.deepEqual(changes.slice(2, 4).map((ch) => ch.row), [
        { id: 1, big: null, n: 1 },
        { id: 2, big: null, n: 1 },
      ]);
      // REPLICA IDENTITY FULL: the delete carries the whole old row, the big value included.
      assert.equal(changes[4]!.row.id, 2);
      assert.equal((changes[4]!.row.big as string).length, 32_000);
      assert.deepEqual(warnings.map((w) => w.code), ["cdc.unchanged_toast"]);
      assert.match(warnings[0]!.message, /REPLICA IDENTITY FULL/);
    },
  );

  await t.step("a pooler in front is refused with cdc.pooler_refused", async () => {
    await using bouncer = await startPgBouncer({ serverPort: pg.port, poolMode: "session" });
    await expectError(
      openPostgresCdc(spec, { ...c, port: bouncer.port }, cdcOptions("s_pool", "tx")),
      { code: "cdc.pooler_refused", exitCode: 1 },
    );
  });

  await t.step(
    "a role without REPLICATION gets cdc.not_replication_role with the fix",
    async () => {
      await expectError(openPostgresCdc(spec, conn(pg, "norepl"), cdcOptions("s_norepl", "tx")), {
        code: "cdc.not_replication_role",
        exitCode: 1,
      }).then((e) => assert.match(e.hint ?? "", /ALTER ROLE "norepl" WITH REPLICATION/));
    },
  );

  await t.step(
    "a publication missing the table is refused with the ALTER PUBLICATION fix",
    async () => {
      await pg.psql("CREATE PUBLICATION pub_partial FOR TABLE other");
      const e = await expectError(
        openPostgresCdc(spec, c, cdcOptions("s_partial", "tx", { publication: "pub_partial" })),
        { code: "cdc.publication_incomplete", exitCode: 1 },
      );
      assert.match(e.hint ?? "", /ALTER PUBLICATION "pub_partial" ADD TABLE "public"\."tx"/);
    },
  );

  await t.step("slot and publication refusals name their fix", async () => {
    await pg.psql(`CREATE ROLE repl_only LOGIN REPLICATION; GRANT SELECT ON tx TO repl_only;
      SELECT pg_create_logical_replication_slot('s_td', 'test_decoding')`);
    const denied = await expectError(
      openPostgresCdc(spec, conn(pg, "repl_only"), cdcOptions("s_denied", "tx")),
      { code: "cdc.publication_denied", exitCode: 1 },
    );
    assert.match(denied.hint ?? "", /CREATE PUBLICATION "pub_s_denied" FOR TABLE "public"\."tx"/);
    const plugin = await expectError(openPostgresCdc(spec, c, cdcOptions("s_td", "tx")), {
      code: "cdc.slot_unusable",
      exitCode: 1,
    });
    assert.match(plugin.message, /test_decoding/);
    assert.match(plugin.hint ?? "", /pg_drop_replication_slot\('s_td'\)/);
    await expectError(
      openPostgresCdc(spec, c, cdcOptions("s_gone", "tx", { start: { lsn: "0/1000000" } })),
      { code: "cdc.checkpoint_too_old", exitCode: 1, includes: ["no longer exists"] },
    );
    await pg.psql("CREATE TABLE nokey (v int); INSERT INTO nokey VALUES (1)");
    const nokey = await expectError(openPostgresCdc(spec, c, cdcOptions("s_nokey", "nokey")), {
      code: "cdc.no_replica_identity",
      exitCode: 1,
    });
    assert.match(nokey.hint ?? "", /ALTER TABLE "public"\."nokey" REPLICA IDENTITY FULL/);
    // Nothing was published, so the application's writes still work.
    await pg.psql("UPDATE nokey SET v = 2");
    await expectError(openPostgresCdc(spec, c, cdcOptions("s_bad", "no_such_table")), {
      code: "source.undefined_object",
      exitCode: 1,
    });
    await expectError(
      openPostgresCdc(spec, c, { ...cdcOptions("s_bad", "tx"), tables: [{ table: "tx; --" }] }),
      { code: "cdc.bad_table_name", exitCode: 1 },
    );
  });

  await t.step("an abort while the slot waits for running transactions ends the open", async () => {
    // A transaction with an xid holds CREATE_REPLICATION_SLOT until it ends.
    const holder = await PgConnection.connect({ ...c, database: "postgres" });
    try {
      await holder.query("BEGIN; SELECT txid_current()");
      const abort = new AbortController();
      const opening = openPostgresCdc(
        spec,
        c,
        cdcOptions("s_wait", "tx", { signal: abort.signal }),
      );
      await new Promise((r) => setTimeout(r, 500));
      const started = Date.now();
      abort.abort(new Error("stop"));
      const outcome = await Promise.race([
        opening.then(async (r) => {
          await r[Symbol.asyncDispose]();
          return "opened";
        }, (e: Error) => e.message),
        new Promise((r) => setTimeout(() => r("hung"), 5000)),
      ]);
      assert.equal(outcome, "stop");
      assert.ok(Date.now() - started < 5000);
    } finally {
      holder.close();
    }
  });

  await t.step("a slot in use by another reader is cdc.slot_busy (transient)", async () => {
    await using holder = await live("s_busy", "tx");
    await expectError(openPostgresCdc(spec, c, cdcOptions("s_busy", "tx")), {
      code: "cdc.slot_busy",
      exitCode: 2,
    });
    assert.equal(holder.tables.length, 1);
  });

  await t.step(
    "unacknowledged changes hold a fast shutdown no longer than wal_sender_timeout",
    async () => {
      // The server's walsender waits at shutdown until the client confirms what it was sent; a
      // reader that kept sending status updates on its own would hold it forever.
      await pg.psql("ALTER SYSTEM SET wal_sender_timeout = '3s'; SELECT pg_reload_conf()");
      await (await openPostgresCdc(spec, c, cdcOptions("s_hold", "tx")))[Symbol.asyncDispose]();
      await using reader = await live("s_hold", "tx");
      await pg.psql("INSERT INTO tx VALUES (400, 'held')");
      const it = reader.changes();
      let chunk = await it.next();
      while (!chunk.done && chunk.value.batch.numRows === 0) chunk = await it.next();
      assert.ok(!chunk.done && chunk.value.commit, "the change arrived, not acknowledged");
      const pending = it.next();
      pending.catch(() => {}); // rejects once the server is gone
      const started = Date.now();
      try {
        await pg.stopServer({ mode: "fast" });
        const took = Date.now() - started;
        assert.ok(took < 30_000, `shutdown took ${took} ms`);
        await expectError(pending, { code: "source.connection_lost", exitCode: 2 });
      } finally {
        await pg.startServer();
        await pg.psql("ALTER SYSTEM RESET wal_sender_timeout; SELECT pg_reload_conf()");
      }
    },
  );

  await t.step("a server shutdown mid-stream is a transient error, not the end", async () => {
    await using reader = await live("s_down", "tx");
    const it = reader.changes();
    const pending = it.next();
    pending.catch(() => {}); // it rejects while the server stops; awaited below
    await new Promise((r) => setTimeout(r, 300));
    await pg.stopServer({ mode: "fast" });
    try {
      await expectError(
        (async () => {
          for (let r = await pending; !r.done; r = await it.next()) { /* progress chunks */ }
        })(),
        { code: "source.connection_lost", exitCode: 2 },
      );
    } finally {
      await pg.startServer();
    }
  });

  await t.step("ALTER TABLE during capture is cdc.schema_changed", async () => {
    await pg.psql("CREATE TABLE drift (id int PRIMARY KEY, v text)");
    await (await openPostgresCdc(spec, c, cdcOptions("s_drift", "drift")))[Symbol.asyncDispose]();
    await using reader = await live("s_drift", "drift");
    await pg.psql("ALTER TABLE drift ADD COLUMN w int; INSERT INTO drift VALUES (1, 'a', 2)");
    // The reader probed two columns; the stream's relation now has three.
    await expectError(
      (async () => {
        const it = reader.changes();
        for (;;) if ((await it.next()).done) return;
      })(),
      { code: "cdc.schema_changed", exitCode: 1 },
    );
  });
});

Deno.test("PostgreSQL change reader on a server with wal_level = replica", async () => {
  await using pg = await startPostgres();
  await pg.psql("CREATE TABLE t (id int PRIMARY KEY)");
  const e = await expectError(openPostgresCdc(spec, conn(pg), cdcOptions("s", "t")), {
    code: "cdc.wal_level",
    exitCode: 1,
  });
  assert.match(e.hint ?? "", /ALTER SYSTEM SET wal_level = logical/);
});

Deno.test("the replication connection follows the source's TLS policy", async () => {
  const certs = await makeCertificates({ forPostgres: true });
  const ssl = ["ssl=on", `ssl_cert_file='${certs.cert}'`, `ssl_key_file='${certs.key}'`];
  try {
    await using pg = await startPostgres({ logical: true, conf: ssl });
    await pg.psql("CREATE TABLE t (id int PRIMARY KEY)");
    const verified = { acceptInvalidCerts: false, acceptInvalidHostnames: false };
    const tls = (extra: { mode?: "require"; caFile?: string }): SourceSpec => ({
      ...spec,
      tls: { mode: "verify-full", ...verified, ...extra },
    });
    await using reader = await openPostgresCdc(
      tls({ caFile: certs.ca }),
      conn(pg),
      cdcOptions("s_tls", "t", { untilCurrent: false }),
    );
    const encrypted = await pg.psql(
      "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_replication_slots r ON r.active_pid = s.pid " +
        "WHERE r.slot_name = 's_tls'",
    );
    assert.equal(encrypted.trim(), "t", "the walsender's connection is encrypted");
    assert.equal(reader.tables.length, 1);
    await expectError(openPostgresCdc(tls({ mode: "require" }), conn(pg), cdcOptions("s2", "t")), {
      code: "source.tls_verify_failed",
      exitCode: 1,
    });
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});
