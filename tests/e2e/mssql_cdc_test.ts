/**
 * SQL Server change data capture through `openMssqlCdc`: CDC off (database, then table) fails
 * with the fix; inserts, updates and deletes of common types arrive typed as a normal read of
 * the table types them; each transaction's rows end with one commit; a resume from a commit
 * delivers only later changes; a checkpoint older than the instance's oldest change fails; a
 * streaming reader picks up new changes and stops promptly when disposed.
 *
 * Runs against the in-repo TDS test server (its CDC emulation, `tests/_helpers/tds/cdc.ts`), or
 * against a real SQL Server when `RIVET_MSSQL_URL` is set (the CI job: SQL Server 2022 with
 * SQL Server Agent on, which runs the capture job). Expected values are constants written here.
 */
import assert from "node:assert/strict";
import type { RecordBatch } from "../../src/core/arrow.ts";
import type { CdcChunk, CdcOpenOptions } from "../../src/core/cdc.ts";
import { parseConnectionUrl } from "../../src/config/connection.ts";
import type { SourceSpec, Warning } from "../../src/core/spec.ts";
import { openMssqlCdc } from "../../src/sources/mssql/cdc.ts";
import { openMssqlSource } from "../../src/sources/mssql/source.ts";
import { expectError, readAll } from "../_helpers/source_read.ts";
import { mssqlEngine } from "./_mssql_engine.ts";

const REAL = Deno.env.get("RIVET_MSSQL_URL") !== undefined;
const spec: SourceSpec = { kind: "mssql", connection: { form: "url_env", env: "UNUSED" } };

const TABLE_DDL = `
CREATE TABLE cdc_t (id int NOT NULL PRIMARY KEY, n bigint NULL, d decimal(12,2) NULL,
  s nvarchar(50) NULL, at datetime2(6) NULL, b bit NULL, g uniqueidentifier NULL,
  vb varbinary(10) NULL);`;

/** One value as comparable text (Arrow gives Uint32Array words for decimals, bytes, bigints). */
function text(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (v instanceof Uint32Array && v.length === 4) {
    let u = 0n;
    for (let k = 3; k >= 0; k--) u = (u << 32n) | BigInt(v[k]!);
    return `dec:${BigInt.asIntN(128, u)}`;
  }
  if (v instanceof Uint8Array) return `hex:${[...v].map((x) => x.toString(16)).join(".")}`;
  return `${typeof v}:${String(v)}`;
}

/** Rows of a batch as text, by column name. */
function rows(batch: RecordBatch): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (let i = 0; i < batch.numRows; i++) {
    const row: Record<string, string> = {};
    for (const f of batch.schema.fields) row[f.name] = text(batch.getChild(f.name)!.get(i));
    out.push(row);
  }
  return out;
}

const OP_NAME = ["insert", "update", "delete"];

/** Everything a reader delivered, flattened. */
interface Read {
  chunks: CdcChunk[];
  /** `op id` per change. */
  changes: string[];
  rows: Record<string, string>[];
  commits: string[];
}

async function drain(iter: AsyncIterator<CdcChunk>): Promise<Read> {
  const out: Read = { chunks: [], changes: [], rows: [], commits: [] };
  while (true) {
    const next = await iter.next();
    if (next.done) return out;
    add(out, next.value);
  }
}

/**
 * A chunk carries a commit exactly when its last row is the last of its transaction, and that
 * commit is the transaction's LSN.
 */
function assertCommitsAtEnds(read: Read, txs: readonly string[]): void {
  const lsns = read.chunks.flatMap((c) => c.positions.map((p) => JSON.parse(p).lsn as string));
  let at = 0;
  for (const c of read.chunks) {
    at += c.batch.numRows;
    const last = lsns[at - 1]!;
    const endsTx = at === lsns.length || lsns[at] !== last;
    assert.equal(c.commit !== undefined, endsTx, `chunk ending at row ${at}`);
    if (c.commit) assert.deepEqual(c.commit, { lsn: last });
    assert.ok(txs.includes(last));
  }
}

function add(out: Read, chunk: CdcChunk): void {
  out.chunks.push(chunk);
  const r = rows(chunk.batch);
  const ids = chunk.batch.getChild("id")!;
  r.forEach((_, i) => out.changes.push(`${OP_NAME[chunk.ops[i]!]} ${ids.get(i)}`));
  out.rows.push(...r);
  if (chunk.commit) out.commits.push(String(chunk.commit.lsn));
}

Deno.test({
  name: "SQL Server CDC reader",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using db = await mssqlEngine.start();
    await db.sql(TABLE_DDL);
    const connection = parseConnectionUrl(db.url, "mssql");
    const warnings: Warning[] = [];
    const options = (extra: Partial<CdcOpenOptions> = {}): CdcOpenOptions => ({
      tables: [{ table: "cdc_t" }],
      untilCurrent: true,
      batchRows: 10_000,
      slot: "",
      publication: "",
      serverId: 0,
      columnOverrides: {},
      onWarning: (w) => warnings.push(w),
      ...extra,
    });
    /** Waits until the capture job has copied `n` rows (matching `where`) into the change table. */
    const captured = async (n: number, where = "") => {
      for (let i = 0; i < 120; i++) {
        const got = Number((await db.sql(`SELECT COUNT(*) FROM cdc.dbo_cdc_t_CT ${where}`)).trim());
        if (got >= n) return;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error(`the capture job did not copy ${n} changes in 60 s`);
    };

    await t.step("CDC off for the database: cdc.not_enabled with sp_cdc_enable_db", async () => {
      const err = await expectError(openMssqlCdc(spec, connection, options()), {
        code: "cdc.not_enabled",
        exitCode: 1,
      });
      assert.match(err.hint ?? "", /EXEC sys\.sp_cdc_enable_db/);
    });

    await db.sql("EXEC sys.sp_cdc_enable_db");

    await t.step("CDC off for the table: cdc.not_enabled with sp_cdc_enable_table", async () => {
      const err = await expectError(openMssqlCdc(spec, connection, options()), {
        code: "cdc.not_enabled",
        exitCode: 1,
      });
      assert.match(
        err.hint ?? "",
        /EXEC sys\.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'cdc_t'/,
      );
    });

    await t.step("a table that does not exist: cdc.table_not_found", async () => {
      await expectError(
        openMssqlCdc(spec, connection, options({ tables: [{ table: "nope_t" }] })),
        { code: "cdc.table_not_found", exitCode: 1, includes: ["dbo.nope_t"] },
      );
    });

    await t.step("names outside [A-Za-z0-9_] are refused before any statement", async () => {
      await expectError(
        openMssqlCdc(spec, connection, options({ tables: [{ table: "cdc_t; DROP TABLE x" }] })),
        { code: "cdc.bad_table_name", exitCode: 1 },
      );
      await expectError(
        openMssqlCdc(spec, connection, options({ captureInstance: "x(0x0,0x0,'all')--" })),
        { code: "cdc.bad_capture_instance", exitCode: 1 },
      );
    });

    await db.sql(
      "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'cdc_t', " +
        "@role_name = NULL",
    );
    // Transaction 1: three inserts; 2: two updates; 3: a delete; 4: one insert.
    await db.sql(`BEGIN TRANSACTION;
INSERT INTO cdc_t VALUES (1, 9223372036854775807, -1234567890.12, N'héllo', '2024-01-02T03:04:05.123456', 1,
  '6F9619FF-8B86-D011-B42D-00C04FC964FF', 0xDEADBEEF);
INSERT INTO cdc_t VALUES (2, -1, 0.01, N'', '0001-01-01T00:00:00', 0, NULL, 0x);
INSERT INTO cdc_t (id) VALUES (3);
COMMIT;`);
    await db.sql(`BEGIN TRANSACTION;
UPDATE cdc_t SET s = N'changed', d = 99.99 WHERE id = 2;
UPDATE cdc_t SET n = 42 WHERE id = 3;
COMMIT;`);
    await db.sql("DELETE FROM cdc_t WHERE id = 1");
    await db.sql("INSERT INTO cdc_t (id, s) VALUES (4, N'four')");
    // The change table holds update before-images too: 3 + 2 × 2 + 1 + 1 rows.
    await captured(9);

    let all: Read | undefined;
    /** Commit LSN of each transaction, in order. */
    let txs: string[] = [];
    await t.step("a first run reads the instance's backlog, typed as a full read", async () => {
      await using reader = await openMssqlCdc(spec, connection, options());
      all = await drain(reader.changes());
      assert.deepEqual(all.changes, [
        "insert 1",
        "insert 2",
        "insert 3",
        "update 2",
        "update 3",
        "delete 1",
        "insert 4",
      ]);
      // Transactions: the distinct commit LSNs of the rows, in order.
      const positions = all.chunks.flatMap((c) => c.positions.map((p) => JSON.parse(p)));
      for (const c of all.chunks) {
        for (const p of c.positions) {
          assert.match(p, /^\{"lsn":"0x[0-9A-F]{20}","seqval":"0x[0-9A-F]{20}"\}$/);
        }
      }
      txs = [...new Set(positions.map((p) => p.lsn as string))];
      assert.equal(txs.length, 4);
      assert.deepEqual(
        positions.map((p) => txs.indexOf(p.lsn)),
        [0, 0, 0, 1, 1, 2, 3],
        "rows of a transaction share its commit LSN",
      );
      assertCommitsAtEnds(all, txs);
      assert.equal(all.commits.at(-1), txs[3], "the window ends with a commit");

      // Typed as a normal read of the table: same Arrow types and column facts.
      await using source = await openMssqlSource(spec, connection);
      const full = await readAll(source, "SELECT * FROM cdc_t ORDER BY id");
      const [table] = reader.tables;
      assert.equal(table!.name, "dbo.cdc_t");
      assert.deepEqual(
        table!.schema.fields.map((f) => `${f.name}:${f.type}:${f.nullable}`),
        full.stream.schema.fields.map((f) => `${f.name}:${f.type}:${f.nullable}`),
      );
      assert.deepEqual(table!.columns, full.stream.columns);
      for (const c of all.chunks) {
        assert.deepEqual(c.batch.schema.fields.map(String), table!.schema.fields.map(String));
      }
      // Values: the after-images of the last change of each row equal the table's rows now.
      const last = new Map<string, Record<string, string>>();
      all.rows.forEach((r, i) => {
        if (all!.changes[i]!.startsWith("delete")) last.delete(r.id!);
        else last.set(r.id!, r);
      });
      assert.deepEqual(
        [...last.values()].sort((a, b) => a.id!.localeCompare(b.id!)),
        rows(full.batches[0]!),
      );
      // The delete carries the before-image; constants for a few cells.
      const deleted = all.rows[5]!;
      assert.equal(deleted.id, "number:1");
      assert.equal(deleted.n, "bigint:9223372036854775807");
      assert.equal(deleted.d, "dec:-123456789012");
      assert.equal(deleted.s, "string:héllo");
      assert.equal(deleted.vb, "hex:de.ad.be.ef");
      assert.equal(all.rows[3]!.s, "string:changed");
      assert.equal(all.rows[3]!.d, "dec:9999");
    });

    await t.step("a resume from a commit delivers only the later transactions", async () => {
      await using reader = await openMssqlCdc(
        spec,
        connection,
        options({ start: { lsn: txs[1]! } }),
      );
      assert.deepEqual(reader.startedAt, { lsn: txs[1] });
      const later = await drain(reader.changes());
      assert.deepEqual(later.changes, ["delete 1", "insert 4"]);
      assert.equal(later.commits.at(-1), txs[3]);
      await using atEnd = await openMssqlCdc(
        spec,
        connection,
        options({ start: { lsn: txs[3]! } }),
      );
      assert.deepEqual((await drain(atEnd.changes())).changes, []);
    });

    await t.step(
      "small batches: a transaction spans chunks, only its last carries the commit",
      async () => {
        for (const batchRows of [1, 2]) {
          await using reader = await openMssqlCdc(spec, connection, options({ batchRows }));
          const small = await drain(reader.changes());
          assert.deepEqual(small.changes, all!.changes);
          assertCommitsAtEnds(small, txs);
          for (const c of small.chunks) assert.ok(c.batch.numRows <= batchRows);
          if (batchRows === 1) assert.deepEqual(small.commits, txs, "one commit per transaction");
        }
      },
    );

    await t.step("columns: overrides type the changes as they type a full read", async () => {
      const columnOverrides = { d: "decimal(20,4)" };
      await using reader = await openMssqlCdc(spec, connection, options({ columnOverrides }));
      const read = await drain(reader.changes());
      await using source = await openMssqlSource(spec, connection);
      const full = await readAll(source, "SELECT * FROM cdc_t WHERE 1 = 0", { columnOverrides });
      assert.equal(String(reader.tables[0]!.schema.fields[2]!.type), "Decimal[20e+4]");
      assert.deepEqual(reader.tables[0]!.columns, full.stream.columns);
      assert.equal(read.rows[5]!.d, "dec:-12345678901200", "the delete's -1234567890.12");
    });

    await t.step("a streaming reader picks up new changes and stops when disposed", async () => {
      const reader = await openMssqlCdc(
        spec,
        connection,
        options({ untilCurrent: false, start: { lsn: txs[3]! } }),
      );
      const iter = reader.changes();
      await db.sql("INSERT INTO cdc_t (id) VALUES (5)");
      await captured(10);
      const got: Read = { chunks: [], changes: [], rows: [], commits: [] };
      const deadline = Date.now() + 60_000;
      while (got.commits.length === 0 && Date.now() < deadline) {
        const next = await iter.next();
        assert.ok(!next.done);
        add(got, next.value);
      }
      assert.deepEqual(got.changes, ["insert 5"]);
      // Nothing more comes: the pending next() settles once the reader is disposed.
      const pending = iter.next();
      await new Promise((r) => setTimeout(r, 1500));
      const started = Date.now();
      await reader[Symbol.asyncDispose]();
      const end = await pending;
      assert.equal(end.done, true);
      assert.ok(Date.now() - started < 10_000, "disposal settles the pending next() promptly");
    });

    await t.step("two capture instances: one must be named", async () => {
      await db.sql(
        "EXEC sys.sp_cdc_enable_table @source_schema = N'dbo', @source_name = N'cdc_t', " +
          "@role_name = NULL, @capture_instance = N'cdc_t_v2'",
      );
      const err = await expectError(openMssqlCdc(spec, connection, options()), {
        code: "cdc.capture_instance_required",
        exitCode: 1,
      });
      assert.match(err.message, /cdc_t_v2/);
      assert.match(err.message, /dbo_cdc_t/);
      await using reader = await openMssqlCdc(
        spec,
        connection,
        options({ captureInstance: "dbo_cdc_t" }),
      );
      assert.equal((await drain(reader.changes())).changes.length, 8);
      await expectError(
        openMssqlCdc(spec, connection, options({ captureInstance: "nope" })),
        { code: "cdc.not_enabled", exitCode: 1 },
      );
    });

    await t.step("a checkpoint older than the instance's oldest change fails loudly", async () => {
      await db.sql(
        "EXEC sys.sp_cdc_cleanup_change_table @capture_instance = N'dbo_cdc_t', " +
          `@low_water_mark = ${txs[2]}, @threshold = 5000`,
      );
      const err = await expectError(
        openMssqlCdc(
          spec,
          connection,
          options({ captureInstance: "dbo_cdc_t", start: { lsn: txs[0]! } }),
        ),
        { code: "cdc.checkpoint_too_old", exitCode: 1 },
      );
      assert.match(err.message, new RegExp(txs[0]!));
      assert.match(err.hint ?? "", /retention/);
      // From a checkpoint at the new oldest change's predecessor on, reading goes on.
      await using reader = await openMssqlCdc(
        spec,
        connection,
        options({ captureInstance: "dbo_cdc_t", start: { lsn: txs[2]! } }),
      );
      assert.deepEqual((await drain(reader.changes())).changes, ["insert 4", "insert 5"]);
    });

    await t.step("until_current stops at the newest change when the reader opened", async () => {
      await using reader = await openMssqlCdc(
        spec,
        connection,
        options({ captureInstance: "dbo_cdc_t", start: { lsn: txs[3]! } }),
      );
      await db.sql("INSERT INTO cdc_t (id) VALUES (6)");
      await captured(1, "WHERE id = 6");
      assert.deepEqual((await drain(reader.changes())).changes, ["insert 5"]);
    });

    if (!REAL) {
      await t.step(
        "no low end yet: nothing to read; a role-gated login: cdc.no_access",
        async () => {
          // SQL Server leaves change_tables.start_lsn NULL until the capture job's first scan.
          await db.sql(
            "UPDATE sys._cdc_instances SET start_lsn = 0x00000000000000000000 " +
              "WHERE capture_instance = N'cdc_t_v2'",
          );
          const fresh = options({ captureInstance: "cdc_t_v2" });
          await using reader = await openMssqlCdc(spec, connection, fresh);
          assert.deepEqual((await drain(reader.changes())).changes, []);
          await db.sql(
            "UPDATE sys._cdc_instances SET role_name = N'cdc_readers' " +
              "WHERE capture_instance = N'cdc_t_v2'",
          );
          const err = await expectError(openMssqlCdc(spec, connection, fresh), {
            code: "cdc.no_access",
            exitCode: 1,
          });
          assert.match(err.hint ?? "", /ALTER ROLE/);
        },
      );

      await t.step("SQL Server Agent down: a warning that changes stop arriving", async () => {
        warnings.length = 0;
        await using _up = await openMssqlCdc(
          spec,
          connection,
          options({ captureInstance: "dbo_cdc_t" }),
        );
        assert.deepEqual(warnings.filter((w) => w.code === "cdc.agent_not_running"), []);
        await db.sql("UPDATE sys._settings SET value = '0' WHERE key = 'agent_running'");
        await using _down = await openMssqlCdc(
          spec,
          connection,
          options({ captureInstance: "dbo_cdc_t" }),
        );
        const [w] = warnings.filter((w) => w.code === "cdc.agent_not_running");
        assert.match(w?.message ?? "", /SQL Server Agent is not running/);
        // Azure SQL Database has no Agent (its own scheduler captures): no warning there.
        warnings.length = 0;
        await db.sql("UPDATE sys._settings SET value = '5' WHERE key = 'engine_edition'");
        await using _azure = await openMssqlCdc(
          spec,
          connection,
          options({ captureInstance: "dbo_cdc_t" }),
        );
        assert.deepEqual(warnings.filter((w) => w.code === "cdc.agent_not_running"), []);
      });
    }
  },
});
