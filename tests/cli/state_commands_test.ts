/**
 * The inspection commands `state show|reset|files|chunks|reset-chunks|progression`, `metrics`
 * and `journal`, run in-process against a state file populated through `SqliteStateStore`. The
 * config points at a closed port: these commands never connect to the source.
 */
import assert from "node:assert/strict";
import { runCli } from "../_helpers/cli.ts";
import { SqliteStateStore, stateDbPath } from "../../src/state/mod.ts";

const closedUrl = "postgresql://u@127.0.0.1:9/db";

interface Fixture extends AsyncDisposable {
  readonly dir: string;
  readonly config: string;
  readonly db: string;
}

async function fixture(): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "rivet_state_cli_" });
  const config = `${dir}/plan.yaml`;
  await Deno.writeTextFile(
    config,
    `source:
  type: postgres
  url: ${closedUrl}
exports:
  - name: orders
    table: orders
    format: parquet
    destination: { type: local, path: ${dir}/out }
  - name: users
    table: users
    format: csv
    destination: { type: local, path: ${dir}/out }
`,
  );
  return {
    dir,
    config,
    db: stateDbPath(dir),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

async function populate(db: string): Promise<void> {
  await using state = await SqliteStateStore.open(db);
  await state.advanceCursor({
    exportName: "orders",
    configIdentity: "0123456789abcdef",
    lastCursorValue: "2024-03-01 10:00:00",
    lastRunAt: "2024-03-01T10:05:00.000Z",
  });
  await state.advanceCursor({
    exportName: "users",
    lastCursorValue: null,
    lastRunAt: "2024-03-02T08:00:00.000Z",
  });
  await state.saveProgression({
    exportName: "orders",
    boundary: "committed",
    strategy: "incremental",
    cursor: "2024-03-01 10:00:00",
    runId: "orders_20240301T100500.000",
    at: "2024-03-01T10:05:00.000Z",
  });
  for (let i = 0; i < 3; i++) {
    await state.recordPart({
      runId: `orders_2024030${i + 1}T100500.000`,
      exportName: "orders",
      fileName: `orders/part-${i}.parquet`,
      rowCount: 1000 * (i + 1),
      bytes: 2048 * (i + 1),
      format: "parquet",
      compression: "zstd",
      createdAt: `2024-03-0${i + 1}T10:05:00.000Z`,
    });
  }
  await state.recordPart({
    runId: "users_20240302T080000.000",
    exportName: "users",
    fileName: "users/users.csv",
    rowCount: 7,
    bytes: 300,
    format: "csv",
    createdAt: "2024-03-02T08:00:00.000Z",
  });
  await state.recordRun({
    runId: "orders_20240301T100500.000",
    exportName: "orders",
    runAt: "2024-03-01T10:05:00.000Z",
    durationMs: 1250,
    totalRows: 1000,
    status: "success",
    peakRssMb: 88,
    filesProduced: 1,
    bytesWritten: 2048,
    retries: 1,
    validated: true,
    schemaChanged: true,
  });
  await state.recordRun({
    runId: "users_20240302T080000.000",
    exportName: "users",
    runAt: "2024-03-02T08:00:00.000Z",
    durationMs: 420,
    totalRows: 0,
    status: "failed",
    errorMessage: "connection refused by postgresql://app:secret@db:5432/x\nsecond line",
    validated: false,
  });
}

Deno.test("state show before any run says so and creates no state file", async () => {
  await using f = await fixture();
  const res = await runCli(["state", "show", "-c", f.config]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(
    res.stdout,
    `No state yet: no export of this config has run (no state file at ${f.db})\n`,
  );
  for (const args of [["state", "files"], ["metrics"], ["state", "progression"]]) {
    const other = await runCli([...args, "-c", f.config]);
    assert.equal(other.code, 0, other.stderr);
    assert.match(other.stdout, /^No state yet/);
  }
  const reset = await runCli(["state", "reset", "-c", f.config, "-e", "orders"]);
  assert.equal(reset.code, 0, reset.stderr);
  assert.match(reset.stdout, /^Nothing to reset for export 'orders'/);
  await assert.rejects(Deno.lstat(f.db), Deno.errors.NotFound);
});

Deno.test("state show of a state file without cursors says the exports ran without one", async () => {
  await using f = await fixture();
  {
    await using state = await SqliteStateStore.open(f.db);
    await state.recordRun({
      runId: "users_1",
      exportName: "users",
      runAt: "2024-01-01T00:00:00.000Z",
      durationMs: 5,
      totalRows: 1,
      status: "success",
    });
  }
  const res = await runCli(["state", "show", "-c", f.config]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(
    res.stdout,
    "No incremental cursor stored: exports have run, but none has advanced a cursor " +
      "(only incremental exports keep one)\n",
  );
});

Deno.test("state show prints the cursors as an aligned table", async () => {
  await using f = await fixture();
  await populate(f.db);
  const res = await runCli(["state", "show", "-c", f.config]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(
    res.stdout,
    [
      "EXPORT  IDENTITY          LAST CURSOR          LAST RUN",
      "orders  0123456789abcdef  2024-03-01 10:00:00  2024-03-01T10:05:00.000Z",
      // Stored before cursor identities existed.
      "users   -                 -                    2024-03-02T08:00:00.000Z",
      "",
    ].join("\n"),
  );
});

Deno.test("state reset deletes the cursor and the progression of one export", async () => {
  await using f = await fixture();
  await populate(f.db);
  const res = await runCli(["state", "reset", "-c", f.config, "-e", "orders"]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(
    res.stdout,
    "Reset export 'orders': cursor and progression deleted; its next run starts from the " +
      "beginning\n",
  );
  const show = await runCli(["state", "show", "-c", f.config]);
  assert.equal(
    show.stdout,
    "EXPORT  IDENTITY  LAST CURSOR  LAST RUN\nusers   -         -            2024-03-02T08:00:00.000Z\n",
  );
  {
    await using state = await SqliteStateStore.open(f.db);
    assert.equal(await state.readProgression("orders"), undefined);
  }
  const again = await runCli(["state", "reset", "-c", f.config, "-e", "orders"]);
  assert.equal(
    again.stdout,
    "Nothing to reset for export 'orders': it has no stored cursor or progression\n",
  );
});

Deno.test("state reset of an unknown export exits 1 listing the known exports", async () => {
  await using f = await fixture();
  await populate(f.db);
  const res = await runCli(["state", "reset", "-c", f.config, "-e", "oders"]);
  assert.equal(res.code, 1);
  assert.equal(res.stdout, "");
  assert.match(res.stderr, /^Error: .*unknown export 'oders'; known exports: orders, users/);
  const cursor = await runCli(["state", "show", "-c", f.config]);
  assert.match(cursor.stdout, /^orders {2}0123456789abcdef {2}2024-03-01 10:00:00/m);
  const missing = await runCli(["state", "reset", "-c", f.config]);
  assert.equal(missing.code, 2, "-e is required");
});

Deno.test("state files lists the file log newest first and honours -e and --last", async () => {
  await using f = await fixture();
  await populate(f.db);
  const all = await runCli(["state", "files", "-c", f.config]);
  assert.equal(all.code, 0, all.stderr);
  assert.equal(
    all.stdout,
    [
      "RUN ID                      FILE                   ROWS    BYTES  CREATED",
      "users_20240302T080000.000   users/users.csv           7    300 B  2024-03-02T08:00:00.000Z",
      "orders_20240303T100500.000  orders/part-2.parquet  3000  6.0 KiB  2024-03-03T10:05:00.000Z",
      "orders_20240302T100500.000  orders/part-1.parquet  2000  4.0 KiB  2024-03-02T10:05:00.000Z",
      "orders_20240301T100500.000  orders/part-0.parquet  1000  2.0 KiB  2024-03-01T10:05:00.000Z",
      "",
    ].join("\n"),
  );
  const last = await runCli(["state", "files", "-c", f.config, "-e", "orders", "--last", "2"]);
  assert.equal(last.code, 0, last.stderr);
  assert.deepEqual(last.stdout.trimEnd().split("\n").map((l) => l.split(/\s{2,}/)[1]), [
    "FILE",
    "orders/part-2.parquet",
    "orders/part-1.parquet",
  ]);
  const short = await runCli(["state", "files", "-c", f.config, "-l", "1"]);
  assert.equal(short.stdout.trimEnd().split("\n").length, 2);
  for (const bad of ["0", "-3", "x"]) {
    const res = await runCli(["state", "files", "-c", f.config, "--last", bad]);
    assert.equal(res.code, 2, `--last ${bad}`);
  }
});

Deno.test("metrics prints one row per run with its error and flags lines", async () => {
  await using f = await fixture();
  await populate(f.db);
  const res = await runCli(["metrics", "-c", f.config]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(
    res.stdout,
    [
      "EXPORT  STATUS   ROWS  DURATION    RSS  FILES    BYTES  RUN ID",
      "users   failed      0    420 ms      -      -        -  users_20240302T080000.000",
      "  Error: connection refused by postgresql://REDACTED@db:5432/x second line",
      "  retries=0 validated=FAIL schema=ok",
      "orders  success  1000    1.25 s  88 MB      1  2.0 KiB  orders_20240301T100500.000",
      "  retries=1 validated=pass schema=CHANGED",
      "",
    ].join("\n"),
  );
  const one = await runCli(["metrics", "-c", f.config, "-e", "orders"]);
  assert.equal(one.stdout.split("\n").length, 4);
  assert.match(one.stdout, /^orders {2}success/m);
  const last = await runCli(["metrics", "-c", f.config, "-l", "1"]);
  assert.match(last.stdout, /users_20240302T080000\.000/);
  assert.doesNotMatch(last.stdout, /orders_/);
  const unknown = await runCli(["metrics", "-c", f.config, "-e", "nope"]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown export 'nope'/);
});

Deno.test("state chunks, reset-chunks and progression read the checkpoint tables", async () => {
  await using f = await fixture();
  await populate(f.db);
  {
    await using state = await SqliteStateStore.open(f.db);
    await state.saveChunkPlan({
      runId: "orders_r1",
      exportName: "orders",
      planHash: "abc123",
      maxAttempts: 3,
      tasks: [{ startKey: "1", endKey: "100" }, { startKey: "101", endKey: null }],
      createdAt: "2024-03-05T00:00:00.000Z",
    });
    const t = await state.claimChunk("orders_r1", { host: "worker-a", pid: 41 });
    await state.completeChunk({
      runId: "orders_r1",
      chunkIndex: t!.chunkIndex,
      rowsWritten: 100,
      fileName: "orders/chunk0.parquet",
    });
  }
  const chunks = await runCli(["state", "chunks", "-c", f.config, "-e", "orders"]);
  assert.equal(chunks.code, 0, chunks.stderr);
  const lines = chunks.stdout.split("\n");
  assert.equal(lines[0], "Run:       orders_r1");
  assert.equal(lines[1], "Plan hash: abc123");
  assert.equal(lines[2], "Status:    in_progress");
  assert.equal(
    lines[5],
    "Tasks:     2 (1 completed, 0 failed, 0 running, 1 pending; max attempts 3)",
  );
  assert.equal(
    lines[7],
    "CHUNK  STATUS     ATTEMPTS  START  END  ROWS  FILE                   HOST      PID  ERROR",
  );
  assert.equal(
    lines[8],
    "    0  completed         1  1      100   100  orders/chunk0.parquet  worker-a   41",
  );
  assert.equal(
    lines[9],
    "    1  pending           0  101    -       -  -                      -           -",
  );
  const none = await runCli(["state", "chunks", "-c", f.config, "-e", "users"]);
  assert.equal(none.stdout, "No checkpointed run for export 'users'\n");

  const progression = await runCli(["state", "progression", "-c", f.config]);
  assert.equal(progression.code, 0, progression.stderr);
  assert.equal(
    progression.stdout.split("\n")[1],
    "orders  incremental  2024-03-01 10:00:00  2024-03-01T10:05:00.000Z  -          -",
  );

  const neither = await runCli(["state", "reset-chunks", "-c", f.config]);
  assert.equal(neither.code, 2);
  const both = await runCli([
    "state",
    "reset-chunks",
    "-c",
    f.config,
    "-e",
    "orders",
    "--stuck-checkpoints",
  ]);
  assert.equal(both.code, 2);
  const stuck = await runCli(["state", "reset-chunks", "-c", f.config, "--failed"]);
  assert.equal(stuck.code, 0, stuck.stderr);
  assert.equal(stuck.stdout, "Deleted stuck checkpointed run 'orders_r1' of export 'orders'\n");
  const gone = await runCli(["state", "chunks", "-c", f.config, "-e", "orders"]);
  assert.equal(gone.stdout, "No checkpointed run for export 'orders'\n");
});

Deno.test("journal prints one digest per run, newest first, without creating a state file", async () => {
  await using f = await fixture();
  const empty = await runCli(["journal", "-c", f.config, "-e", "orders"]);
  assert.equal(empty.code, 0, empty.stderr);
  assert.match(empty.stdout, /^No state yet/);
  await assert.rejects(Deno.lstat(f.db), Deno.errors.NotFound);

  {
    await using state = await SqliteStateStore.open(f.db);
    await state.appendJournal({
      runId: "orders_r1",
      exportName: "orders",
      finishedAt: "2024-03-01T10:05:00.000Z",
      journal: {
        events: [
          { event: "file_written", at: "x", key: "orders_1.parquet", rows: 10, bytes: 2048 },
          { event: "retry_attempted", at: "x", message: "connection lost; retry 1/3 in 2000 ms" },
        ],
        completed: {
          status: "success",
          rows: 10,
          files: 1,
          bytes: 2048,
          durationMs: 1250,
          retries: 1,
        },
      },
    });
    await state.appendJournal({
      runId: "orders_r2",
      exportName: "orders",
      finishedAt: "2024-03-02T10:05:00.000Z",
      journal: {
        events: [{ event: "schema_changed", at: "x", message: "added extra" }],
        completed: {
          status: "failed",
          rows: 0,
          files: 0,
          bytes: 0,
          durationMs: 80,
          retries: 0,
          error: "export 'orders': columns changed\nsecond line",
        },
      },
    });
  }
  const res = await runCli(["journal", "-c", f.config, "-e", "orders"]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(
    res.stdout,
    [
      "✗ orders_r2  failed  80 ms  files=0 rows=0 bytes=0 B retries=0",
      "  schema: added extra",
      "  error: export 'orders': columns changed",
      "✓ orders_r1  success  1.25 s  files=1 rows=10 bytes=2.0 KiB retries=1",
      "  retry: connection lost; retry 1/3 in 2000 ms",
      "",
    ].join("\n"),
  );
  const one = await runCli(["journal", "-c", f.config, "-e", "orders", "--run-id", "orders_r1"]);
  assert.match(one.stdout, /^✓ orders_r1/);
  assert.ok(!one.stdout.includes("orders_r2"));
  const last = await runCli(["journal", "-c", f.config, "-e", "orders", "-l", "1"]);
  assert.match(last.stdout, /^✗ orders_r2/);
  assert.ok(!last.stdout.includes("orders_r1"));
  const unknown = await runCli(["journal", "-c", f.config, "-e", "nope"]);
  assert.equal(unknown.code, 1);
});

Deno.test("a bad config path exits 1 and creates no state file", async () => {
  await using f = await fixture();
  const missing = `${f.dir}/nope/plan.yaml`;
  for (
    const args of [
      ["state", "show"],
      ["state", "files"],
      ["state", "reset", "-e", "orders"],
      ["state", "progression"],
      ["metrics"],
    ]
  ) {
    const res = await runCli([...args, "-c", missing]);
    assert.equal(res.code, 1, `${args.join(" ")}: ${res.stderr}`);
    assert.match(res.stderr, /file not found/);
  }
  const entries = [...Deno.readDirSync(f.dir)].map((e) => e.name);
  assert.deepEqual(entries, ["plan.yaml"]);
});

Deno.test("a corrupt state file exits 1 and is left byte for byte", async () => {
  await using f = await fixture();
  const junk = crypto.getRandomValues(new Uint8Array(8192));
  await Deno.writeFile(f.db, junk);
  for (
    const args of [
      ["state", "show"],
      ["state", "files"],
      ["state", "reset", "-e", "orders"],
      ["metrics"],
    ]
  ) {
    const res = await runCli([...args, "-c", f.config]);
    assert.equal(res.code, 1, `${args.join(" ")}: ${res.stderr}`);
    assert.match(res.stderr, /^Error: State file '.*' is corrupt/);
  }
  assert.deepEqual(await Deno.readFile(f.db), junk);
  const entries = [...Deno.readDirSync(f.dir)].map((e) => e.name).sort();
  assert.deepEqual(entries, [".rivet_state.db", "plan.yaml"]);
});

Deno.test("every inspection command documents its flags in --help", async () => {
  const cases: [string[], string[]][] = [
    [["state", "show"], ["--config"]],
    [["state", "reset"], ["--config", "--export"]],
    [["state", "files"], ["--config", "--export", "--last", "(default: 50)"]],
    [["state", "chunks"], ["--config", "--export"]],
    [["state", "reset-chunks"], ["--config", "--export", "--stuck-checkpoints"]],
    [["state", "progression"], ["--config", "--export"]],
    [["metrics"], ["--config", "--export", "--last", "(default: 20)"]],
    [["journal"], ["--config", "--export", "--last", "--run-id"]],
  ];
  for (const [args, flags] of cases) {
    const res = await runCli([...args, "--help"]);
    assert.equal(res.code, 0, args.join(" "));
    for (const flag of flags) {
      assert.ok(res.stdout.includes(flag), `${args.join(" ")}: ${flag} missing\n${res.stdout}`);
    }
  }
  const group = await runCli(["state", "--help"]);
  assert.equal(group.code, 0);
  for (const sub of ["show", "reset", "files", "chunks", "reset-chunks", "progression"]) {
    assert.match(group.stdout, new RegExp(`^  ${sub} `, "m"));
  }
  const top = await runCli(["--help"]);
  assert.match(top.stdout, /^ {2}metrics /m);
  assert.match(top.stdout, /^ {2}state /m);
});
