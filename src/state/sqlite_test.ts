import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { ConfigError } from "../core/errors.ts";
import { MIGRATIONS } from "./_migrations.ts";
import { openStateStore } from "./open.ts";
import {
  SqliteStateStore,
  STATE_APPLICATION_ID,
  STATE_SCHEMA_VERSION,
  stateDbPath,
} from "./sqlite.ts";

const T0 = "2024-05-01T10:00:00.000Z";

async function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "rivet_state_sqlite_" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Opening must fail with `code`, naming the file, and leave its bytes and its folder as found. */
async function assertRefused(dir: string, path: string, code: string): Promise<void> {
  const before = await Deno.readFile(path);
  const namesBefore = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  await assert.rejects(SqliteStateStore.open(path), (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.code, code);
    assert.equal(e.exitCode, 1);
    assert.ok(e.message.includes(path), e.message);
    assert.match(e.message, /move it aside|upgrade rivet/);
    return true;
  });
  assert.deepEqual(await Deno.readFile(path), before, "the file bytes are unchanged");
  // Never opened read-write, and the read-only probe cleaned up after itself.
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), namesBefore);
}

async function seededStateFile(dir: string): Promise<string> {
  const path = stateDbPath(dir);
  await using state = await SqliteStateStore.open(path);
  await state.advanceCursor({ exportName: "orders", lastCursorValue: "42", lastRunAt: T0 });
  for (let i = 0; i < 200; i++) {
    await state.recordPart({
      runId: "r",
      exportName: "orders",
      fileName: `orders_${i}_${"x".repeat(200)}.parquet`,
      rowCount: i,
      bytes: i,
      format: "parquet",
      createdAt: T0,
    });
  }
  return path;
}

const V2_FILE_LOG_COLUMNS = [
  "content_fingerprint",
  "content_md5",
  "chunk_index",
  "part_index",
  "status",
];

function fileLogColumns(db: DatabaseSync): string[] {
  return db.prepare("PRAGMA table_info(file_log)").all().map((r) => String(r.name));
}

function schemaVersions(path: string): number[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare("SELECT version FROM schema_version ORDER BY version").all()
      .map((r) => Number(r.version));
  } finally {
    db.close();
  }
}

/**
 * Writes a state file as the v1-only build did (WAL, migration v1 and its version row), holding
 * a file log row, a cursor and a checkpointed run in progress.
 */
function writeV1StateFile(path: string): void {
  const v1 = MIGRATIONS.find((m) => m.version === 1)!;
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("BEGIN IMMEDIATE");
    db.exec(v1.sql);
    db.prepare("INSERT INTO schema_version (version, applied_at) VALUES (1, ?)").run(T0);
    db.exec("COMMIT");
    db.prepare(
      `INSERT INTO file_log (run_id, export_name, file_name, row_count, bytes, format,
         compression, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run("orders_r1", "orders", "orders_c0.parquet", 10, 1234, "parquet", "zstd", T0);
    db.prepare("INSERT INTO export_state VALUES ('orders', '42', ?)").run(T0);
    db.prepare(
      `INSERT INTO chunk_run VALUES ('orders_r1', 'orders', 'h', 'in_progress', 3, ?, ?)`,
    ).run(T0, T0);
    db.prepare(
      `INSERT INTO chunk_task (run_id, chunk_index, start_key, end_key, status, attempts,
         rows_written, file_name, updated_at)
       VALUES ('orders_r1', 0, '1', '10', 'completed', 1, 10, 'orders_c0.parquet', ?),
              ('orders_r1', 1, '10', NULL, 'running', 1, NULL, NULL, ?)`,
    ).run(T0, T0);
  } finally {
    db.close();
  }
}

Deno.test("stateDbPath puts .rivet_state.db in the config directory", () => {
  assert.equal(stateDbPath("/srv/rivet"), "/srv/rivet/.rivet_state.db");
});

Deno.test("SqliteStateStore creates the file with mode 0600, WAL journal and the current schema", async () => {
  await withDir(async (dir) => {
    const path = stateDbPath(dir);
    {
      await using state = await SqliteStateStore.open(path);
      await state.advanceCursor({ exportName: "o", lastCursorValue: "1", lastRunAt: T0 });
      if (Deno.build.os !== "windows") {
        assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
        // SQLite gives the WAL the database file's permissions.
        assert.equal((await Deno.stat(`${path}-wal`)).mode! & 0o777, 0o600);
      }
    }
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
      assert.equal(db.prepare("PRAGMA application_id").get()?.application_id, STATE_APPLICATION_ID);
      const versions = db.prepare("SELECT version FROM schema_version ORDER BY version").all();
      assert.deepEqual(versions.map((r) => r.version), [1, 2, 3, 4, 5, 6, 7, 8]);
      assert.equal(STATE_SCHEMA_VERSION, 8);
      const keyColumns = db.prepare("PRAGMA table_info(export_state)").all()
        .filter((r) => Number(r.pk) > 0).map((r) => r.name);
      assert.deepEqual(keyColumns, ["export_name", "config_identity"]);
      const taskColumns = db.prepare("PRAGMA table_info(chunk_task)").all().map((r) => r.name);
      assert.deepEqual(taskColumns.slice(-4), [
        "failure",
        "claimed_by_host",
        "claimed_by_pid",
        "lease_expires_at",
      ]);
      assert.deepEqual(fileLogColumns(db).slice(-5), V2_FILE_LOG_COLUMNS);
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()
        .map((r) => String(r.name));
      for (
        const table of [
          "export_state",
          "export_metrics",
          "export_schema",
          "file_log",
          "chunk_run",
          "chunk_task",
          "export_progression",
          "run_journal",
          "run_aggregate",
          "run_trace",
          "schema_version",
        ]
      ) assert.ok(tables.includes(table), `table ${table}`);
    } finally {
      db.close();
    }
  });
});

Deno.test("SqliteStateStore migrations are idempotent and rows survive a re-open", async () => {
  await withDir(async (dir) => {
    const path = stateDbPath(dir);
    {
      await using state = await SqliteStateStore.open(path);
      await state.advanceCursor({ exportName: "o", lastCursorValue: "7", lastRunAt: T0 });
      await state.saveChunkPlan({
        runId: "r1",
        exportName: "o",
        planHash: "h",
        maxAttempts: 2,
        tasks: [{ startKey: "1", endKey: "2" }],
      });
      await state.claimChunk("r1");
    }
    for (let i = 0; i < 2; i++) {
      await using state = await openStateStore(dir);
      assert.equal((await state.readCursor("o"))?.lastCursorValue, "7");
      assert.deepEqual((await state.listChunkTasks("r1")).map((t) => [t.status, t.attempts]), [[
        "running",
        1,
      ]]);
    }
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      assert.equal(
        db.prepare("SELECT COUNT(*) AS n FROM schema_version").get()?.n,
        MIGRATIONS.length,
      );
    } finally {
      db.close();
    }
  });
});

Deno.test("SqliteStateStore initialises a 0-byte file and an empty SQLite database", async () => {
  await withDir(async (dir) => {
    const empty = join(dir, "empty.db");
    await Deno.writeFile(empty, new Uint8Array(0), { mode: 0o644 });
    {
      await using state = await SqliteStateStore.open(empty);
      await state.advanceCursor({ exportName: "o", lastCursorValue: "1", lastRunAt: T0 });
    }
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(empty)).mode! & 0o777, 0o600);
    }
    const bare = join(dir, "bare.db");
    const db = new DatabaseSync(bare);
    db.exec("CREATE TABLE t (a); DROP TABLE t; VACUUM");
    db.close();
    await using state = await SqliteStateStore.open(bare);
    assert.equal(await state.readCursor("o"), undefined);
  });
});

Deno.test("SqliteStateStore refuses random bytes and leaves them untouched", async () => {
  await withDir(async (dir) => {
    const path = stateDbPath(dir);
    const junk = new Uint8Array(16384);
    crypto.getRandomValues(junk);
    await Deno.writeFile(path, junk);
    await assertRefused(dir, path, "state.corrupt");
  });
});

Deno.test("SqliteStateStore refuses a truncated header or a truncated file", async () => {
  await withDir(async (dir) => {
    const path = await seededStateFile(dir);
    const whole = await Deno.readFile(path);
    await Deno.remove(`${path}-wal`).catch(() => {});
    await Deno.remove(`${path}-shm`).catch(() => {});
    for (const size of [10, 16, 60, whole.length - 1000]) {
      await Deno.writeFile(path, whole.subarray(0, size));
      await assertRefused(dir, path, "state.corrupt");
    }
  });
});

Deno.test("SqliteStateStore refuses a state file whose pages are damaged", async () => {
  await withDir(async (dir) => {
    const path = await seededStateFile(dir);
    const bytes = await Deno.readFile(path);
    assert.ok(bytes.length >= 4096 * 4, `seeded file is ${bytes.length} bytes`);
    // Keep page 1 (header + sqlite_master), scribble over every other page.
    crypto.getRandomValues(bytes.subarray(4096, Math.min(bytes.length, 4096 + 65536)));
    await Deno.writeFile(path, bytes);
    await assertRefused(dir, path, "state.corrupt");
  });
});

Deno.test("SqliteStateStore refuses another application's SQLite database", async () => {
  await withDir(async (dir) => {
    const path = stateDbPath(dir);
    const db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode = DELETE");
    db.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)");
    db.exec("INSERT INTO users (name) VALUES ('ada')");
    db.close();
    await assertRefused(dir, path, "state.foreign");
    // Even one that happens to have a schema_version table of its own.
    const other = new DatabaseSync(path);
    other.exec("CREATE TABLE schema_version (version INTEGER)");
    other.exec("INSERT INTO schema_version VALUES (1)");
    other.close();
    await assertRefused(dir, path, "state.foreign");
  });
});

Deno.test("SqliteStateStore refuses a schema version newer than it knows", async () => {
  await withDir(async (dir) => {
    const path = stateDbPath(dir);
    (await SqliteStateStore.open(path)).close();
    const db = new DatabaseSync(path);
    db.prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)").run(
      STATE_SCHEMA_VERSION + 1,
      T0,
    );
    db.close();
    await assertRefused(dir, path, "state.schema_too_new");
  });
});

Deno.test("SqliteStateStore cascades chunk tasks when chunk runs are reset (foreign keys on)", async () => {
  await withDir(async (dir) => {
    const path = stateDbPath(dir);
    {
      await using state = await SqliteStateStore.open(path);
      await state.saveChunkPlan({
        runId: "r1",
        exportName: "o",
        planHash: "h",
        maxAttempts: 1,
        tasks: [{ startKey: "1", endKey: "2" }, { startKey: "2", endKey: "3" }],
      });
      assert.equal(await state.resetChunks("o"), 1);
    }
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      assert.equal(db.prepare("SELECT COUNT(*) AS n FROM chunk_task").get()?.n, 0);
    } finally {
      db.close();
    }
  });
});

Deno.test("SqliteStateStore connections claiming concurrently never get the same task", async () => {
  await withDir(async (dir) => {
    const path = stateDbPath(dir);
    const total = 120;
    {
      await using state = await SqliteStateStore.open(path);
      await state.saveChunkPlan({
        runId: "r1",
        exportName: "o",
        planHash: "h",
        maxAttempts: 3,
        tasks: Array.from({ length: total }, (_, i) => ({ startKey: `${i}`, endKey: `${i + 1}` })),
      });
    }
    // Each worker is its own thread with its own SQLite connection. They open the store, report
    // ready, and start claiming only when all are ready, so their claims overlap.
    const storeUrl = new URL("./sqlite.ts", import.meta.url).href;
    const source = `
      import { SqliteStateStore } from ${JSON.stringify(storeUrl)};
      let state;
      self.onmessage = async (event) => {
        if (event.data.path !== undefined) {
          state = await SqliteStateStore.open(event.data.path);
          self.postMessage("ready");
          return;
        }
        const claimed = [];
        for (;;) {
          const task = await state.claimChunk("r1");
          if (task === undefined) break;
          claimed.push(task.chunkIndex);
          await state.completeChunk({ runId: "r1", chunkIndex: task.chunkIndex, rowsWritten: 1 });
        }
        await state.close();
        self.postMessage(claimed);
      };`;
    const url = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
    const workers = Array.from({ length: 4 }, () => new Worker(url, { type: "module" }));
    const next = (worker: Worker) =>
      new Promise<unknown>((resolve, reject) => {
        worker.onmessage = (e) => resolve(e.data);
        worker.onerror = (e) => {
          e.preventDefault();
          reject(new Error(e.message));
        };
      });
    try {
      const ready = workers.map(next);
      for (const worker of workers) worker.postMessage({ path });
      await Promise.all(ready);
      const done = workers.map(next);
      for (const worker of workers) worker.postMessage({ go: true });
      const results = (await Promise.all(done)) as number[][];
      const all = results.flat();
      assert.equal(all.length, total, "every task claimed exactly once");
      assert.equal(new Set(all).size, total, "no task claimed twice");
      for (const claimed of results) {
        assert.deepEqual(claimed, [...claimed].sort((a, b) => a - b), "each claims in order");
      }
      await using state = await SqliteStateStore.open(path);
      const tasks = await state.listChunkTasks("r1");
      assert.ok(tasks.every((t) => t.status === "completed" && t.attempts === 1));
    } finally {
      for (const worker of workers) worker.terminate();
      URL.revokeObjectURL(url);
    }
  });
});

Deno.test("SqliteStateStore migrates a v1 state file in place and keeps its rows", async () => {
  await withDir(async (dir) => {
    const path = stateDbPath(dir);
    writeV1StateFile(path);
    assert.deepEqual(schemaVersions(path), [1]);
    const legacy = {
      runId: "orders_r1",
      exportName: "orders",
      fileName: "orders_c0.parquet",
      rowCount: 10,
      bytes: 1234,
      format: "parquet",
      compression: "zstd",
      createdAt: T0,
    };
    {
      await using state = await SqliteStateStore.open(path);
      // The v1 row reads back as it was: the new fields are absent, not null.
      assert.deepEqual(await state.listFiles({ last: 10 }), [legacy]);
      assert.deepEqual(await state.listRunParts("orders_r1"), [legacy]);
      // The v1 cursor has no identity: any identity reads it, its first advance takes it over.
      assert.deepEqual(await state.readCursor("orders", "0123456789abcdef"), {
        exportName: "orders",
        lastCursorValue: "42",
        lastRunAt: (await state.readCursor("orders"))!.lastRunAt,
      });
      assert.deepEqual(
        (await state.listChunkTasks("orders_r1")).map((t) => [t.status, t.fileName]),
        [["completed", "orders_c0.parquet"], ["running", undefined]],
      );
      // The migrated file takes the new fields and the resume calls.
      const next = {
        ...legacy,
        fileName: "orders_c1.parquet",
        contentFingerprint: "xxh3:0123456789abcdef",
        contentMd5: "1B2M2Y8AsgTpgAmY7PhCfg==",
        chunkIndex: 1,
        partIndex: 0,
      };
      await state.recordPart(next);
      assert.equal(
        await state.markPartsQuarantined({ runId: "orders_r1", fileNames: [legacy.fileName] }),
        1,
      );
      assert.deepEqual(await state.listRunParts("orders_r1"), [
        { ...legacy, status: "quarantined" },
        next,
      ]);
      assert.equal(await state.resetRunningChunks("orders_r1"), 1);
    }
    assert.deepEqual(schemaVersions(path), [1, 2, 3, 4, 5, 6, 7, 8]);
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      assert.equal(db.prepare("PRAGMA application_id").get()?.application_id, STATE_APPLICATION_ID);
      assert.deepEqual(fileLogColumns(db).slice(-5), V2_FILE_LOG_COLUMNS);
      assert.equal(db.prepare("SELECT COUNT(*) AS n FROM file_log").get()?.n, 2);
    } finally {
      db.close();
    }
    // Opening again applies nothing twice.
    (await SqliteStateStore.open(path)).close();
    assert.deepEqual(schemaVersions(path), [1, 2, 3, 4, 5, 6, 7, 8]);
  });
});

Deno.test("SqliteStateStore rolls a failed migration back and leaves the file at v1", async () => {
  await withDir(async (dir) => {
    const path = stateDbPath(dir);
    writeV1StateFile(path);
    // A hand-added column makes the second statement of v2 fail after the first succeeded.
    const db = new DatabaseSync(path);
    db.exec("ALTER TABLE file_log ADD COLUMN content_md5 TEXT");
    db.close();
    await assert.rejects(SqliteStateStore.open(path), (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
      assert.equal(e.code, "state.migration_failed");
      assert.ok(e.message.includes(path), e.message);
      assert.match(e.message, /from schema version 1 to 2 \(duplicate column name: content_md5\)/);
      assert.match(e.message, /move it aside/);
      return true;
    });
    assert.deepEqual(schemaVersions(path), [1]);
    const after = new DatabaseSync(path, { readOnly: true });
    try {
      const columns = fileLogColumns(after);
      assert.ok(!columns.includes("content_fingerprint"), "the first ALTER was rolled back");
      assert.equal(after.prepare("SELECT COUNT(*) AS n FROM file_log").get()?.n, 1);
    } finally {
      after.close();
    }
  });
});

Deno.test("SqliteStateStore refuses a part status outside committed and quarantined", async () => {
  await withDir(async (dir) => {
    const path = stateDbPath(dir);
    (await SqliteStateStore.open(path)).close();
    const db = new DatabaseSync(path);
    try {
      assert.throws(
        () =>
          db.exec(
            `INSERT INTO file_log (run_id, export_name, file_name, row_count, bytes, format,
               created_at, status) VALUES ('r', 'e', 'f', 1, 1, 'csv', 'now', 'deleted')`,
          ),
        /CHECK constraint failed/,
      );
    } finally {
      db.close();
    }
  });
});

Deno.test("SqliteStateStore quarantines more file names than SQLite binds parameters", async () => {
  await withDir(async (dir) => {
    await using state = await SqliteStateStore.open(stateDbPath(dir));
    for (let i = 0; i < 3; i++) {
      await state.recordPart({
        runId: "r",
        exportName: "e",
        fileName: `p${i}.csv`,
        rowCount: 1,
        bytes: 1,
        format: "csv",
        createdAt: T0,
      });
    }
    const names = Array.from({ length: 40_000 }, (_, i) => `p${i}.csv`);
    assert.equal(await state.markPartsQuarantined({ runId: "r", fileNames: names }), 3);
  });
});
