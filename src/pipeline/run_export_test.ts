import assert from "node:assert/strict";
import { MemoryDestination } from "../../tests/_helpers/memory_destination.ts";
import { Field, Int64, makeData, RecordBatch, Schema, Struct, Utf8 } from "../core/arrow.ts";
import { TransientError } from "../core/errors.ts";
import type { RivetEvent } from "../core/events.ts";
import type { BatchStream, Source } from "../core/source.ts";
import type { ExportSpec, TuningPlan } from "../core/spec.ts";
import { createFormat } from "../formats/mod.ts";
import type { StateStore } from "../core/state.ts";
import { openMemoryStateStore } from "../state/mod.ts";
import { type ExportPlan, runExport } from "./run_export.ts";

const schema = new Schema([
  new Field("id", new Int64(), true),
  new Field("name", new Utf8(), true),
]);

function batch(from: number, count: number): RecordBatch {
  const ids = new BigInt64Array(count).map((_, i) => BigInt(from + i));
  const text = new TextEncoder().encode(
    Array.from({ length: count }, (_, i) => `n${from + i}`).join(""),
  );
  const offsets = new Int32Array(count + 1);
  for (let i = 0; i < count; i++) offsets[i + 1] = offsets[i]! + `n${from + i}`.length;
  const children = [
    makeData({ type: new Int64(), length: count, data: ids }),
    makeData({ type: new Utf8(), length: count, valueOffsets: offsets, data: text }),
  ];
  return new RecordBatch(
    schema,
    makeData({ type: new Struct(schema.fields), length: count, children }),
  );
}

/** A source that yields the given batches, then optionally fails. */
function fakeSource(batches: RecordBatch[], failAfter?: Error): Source {
  return {
    kind: "postgres",
    ping: () => Promise.resolve(),
    read(): Promise<BatchStream> {
      let i = 0;
      return Promise.resolve({
        schema,
        columns: [],
        batches: new ReadableStream<RecordBatch>({
          pull(controller) {
            if (i < batches.length) controller.enqueue(batches[i++]!);
            else if (failAfter) controller.error(failAfter);
            else controller.close();
          },
        }),
      });
    },
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}

const tuning: TuningPlan = {
  profile: "balanced",
  profileLabel: "balanced (default)",
  batchSize: 10_000,
  batchSizeMemoryMb: 32,
  throttleMs: 0,
  statementTimeoutS: 0,
  maxRetries: 0,
  retryBackoffMs: 1,
  lockTimeoutS: 0,
  memoryThresholdMb: 0,
  maxBatchMemoryMb: undefined,
  onBatchMemoryExceeded: "warn",
  adaptive: false,
  minParallel: 1,
  maxValueMb: 256,
};

function plan(overrides: Partial<ExportSpec> = {}): ExportPlan {
  const spec = {
    name: "t",
    index: 0,
    mode: "full",
    query: { kind: "query", sql: "SELECT 1" },
    format: { kind: "csv", compression: "none" },
    destination: { kind: "local", allowAnonymous: false },
    skipEmpty: false,
    verify: "size",
    metaColumns: { exportedAt: false, rowHash: false },
    columns: {},
    onSchemaDrift: "warn",
    shapeDriftWarnFactor: 2,
    reconcileRequired: false,
    incrementalCursorMode: "single_column",
    chunkDense: false,
    chunkSize: 100_000,
    parallel: 1,
    chunkCheckpoint: false,
    timeColumnType: "timestamp",
    partitionGranularity: "day",
    ...overrides,
  } as ExportSpec;
  return {
    spec,
    runId: "t_20260102T030405.000",
    sql: "SELECT 1",
    tuning,
    startedAt: new Date("2026-01-02T03:04:05Z"),
    sourceInfo: { engine: "postgres" },
  };
}

async function run(
  p: ExportPlan,
  source: Source,
  options: { destination?: MemoryDestination; state?: StateStore } = {},
) {
  const destination = options.destination ?? new MemoryDestination();
  const events: RivetEvent[] = [];
  const outcome = await runExport(p, {
    source,
    format: await createFormat(p.spec.format),
    destination,
    emit: (e) => events.push(e),
    signal: new AbortController().signal,
    ...(options.state ? { state: options.state } : {}),
  });
  return { outcome, destination, events };
}

Deno.test("runExport writes one part, then the manifest and _SUCCESS", async () => {
  const { outcome, destination } = await run(plan(), fakeSource([batch(0, 3), batch(3, 2)]));
  assert.equal(outcome.status, "success");
  assert.equal(outcome.rows, 5);
  assert.deepEqual([...destination.objects.keys()], [
    "t_20260102_030405.csv",
    "manifest.json",
    "_SUCCESS",
  ]);
  const csv = new TextDecoder().decode(destination.objects.get("t_20260102_030405.csv"));
  assert.equal(csv, "id,name\n0,n0\n1,n1\n2,n2\n3,n3\n4,n4\n");
});

Deno.test("runExport rolls parts over at max_file_size and names them _part<i>", async () => {
  const batches = Array.from({ length: 6 }, (_, i) => batch(i * 100, 100));
  const { outcome, destination } = await run(plan({ maxFileSize: 1000 }), fakeSource(batches));
  assert.equal(outcome.status, "success");
  const parts = [...destination.objects.keys()].filter((k) => k.endsWith(".csv"));
  assert.ok(parts.length > 1);
  assert.deepEqual(parts, parts.map((_, i) => `t_20260102_030405_part${i}.csv`));
  const rows = parts.map((k) => new TextDecoder().decode(destination.objects.get(k)))
    .flatMap((text) => text.trimEnd().split("\n").slice(1));
  assert.equal(rows.length, 600);
  const manifest = JSON.parse(new TextDecoder().decode(destination.objects.get("manifest.json")));
  assert.equal(manifest.part_count, parts.length);
  assert.equal(manifest.row_count, 600);
});

Deno.test("runExport commits nothing when the source fails mid-stream", async () => {
  const failure = new TransientError("connection lost", { code: "source.connection_lost" });
  const batches = Array.from({ length: 4 }, (_, i) => batch(i * 100, 100));
  const { outcome, destination } = await run(
    plan({ maxFileSize: 500 }),
    fakeSource(batches, failure),
  );
  assert.equal(outcome.status, "failed");
  assert.equal(outcome.error?.exitCode, 2);
  assert.equal(outcome.files, 0);
  assert.equal(destination.objects.size, 0, "no part, no manifest, no _SUCCESS");
  assert.equal(destination.staging, 0, "every staged upload was aborted");
});

Deno.test("runExport writes no data file for an empty result, and skips it with skip_empty", async () => {
  const empty = await run(plan(), fakeSource([]));
  assert.equal(empty.outcome.status, "success");
  assert.deepEqual([...empty.destination.objects.keys()], ["manifest.json", "_SUCCESS"]);
  const skipped = await run(plan({ skipEmpty: true }), fakeSource([]));
  assert.equal(skipped.outcome.status, "skipped");
  assert.deepEqual([...skipped.destination.objects.keys()], ["manifest.json"]);
  const manifest = JSON.parse(
    new TextDecoder().decode(skipped.destination.objects.get("manifest.json")),
  );
  assert.equal(manifest.status, "interrupted");
});

Deno.test("runExport records each part and advances the cursor after the last commit", async () => {
  await using state = await openMemoryStateStore();
  const p = { ...plan({ maxFileSize: 1000 }), cursorColumn: "name" };
  const batches = Array.from({ length: 4 }, (_, i) => batch(i * 100, 100));
  const { outcome } = await run(p, fakeSource(batches), { state });
  assert.equal(outcome.status, "success");
  const files = await state.listFiles({ exportName: "t", last: 100 });
  assert.equal(files.length, outcome.files);
  assert.equal(files.reduce((n, f) => n + f.rowCount, 0), 400);
  assert.equal((await state.readCursor("t"))?.lastCursorValue, "n399");
});

Deno.test("runExport keeps the cursor when a part's commit fails", async () => {
  await using state = await openMemoryStateStore();
  await state.advanceCursor({
    exportName: "t",
    lastCursorValue: "old",
    lastRunAt: "2026-01-01T00:00:00Z",
  });
  const destination = new MemoryDestination();
  destination.failOn = "t_20260102_030405_part1.csv";
  const p = { ...plan({ maxFileSize: 1000 }), cursorColumn: "name" };
  const batches = Array.from({ length: 4 }, (_, i) => batch(i * 100, 100));
  const { outcome } = await run(p, fakeSource(batches), { destination, state });
  assert.equal(outcome.status, "failed");
  assert.equal((await state.readCursor("t"))?.lastCursorValue, "old");
});

Deno.test("runExport strips synthetic columns from the files but reads the cursor from them", async () => {
  await using state = await openMemoryStateStore();
  const p = { ...plan(), cursorColumn: "name", stripColumns: ["name"] };
  const { outcome, destination } = await run(p, fakeSource([batch(0, 3)]), { state });
  assert.equal(outcome.status, "success");
  assert.equal(destination.text("t_20260102_030405.csv"), "id\n0\n1\n2\n");
  assert.equal((await state.readCursor("t"))?.lastCursorValue, "n2");
});

/** A previous successful run's manifest and marker, as the destination holds them. */
async function previousRun(destination: MemoryDestination): Promise<{ m: string; s: string }> {
  const first = await run(
    { ...plan(), startedAt: new Date("2026-01-01T00:00:00Z") },
    fakeSource([batch(0, 2)]),
    { destination },
  );
  assert.equal(first.outcome.status, "success");
  return { m: destination.text("manifest.json"), s: destination.text("_SUCCESS") };
}

Deno.test("runExport: a manifest that cannot be written withdraws the parts and keeps the cursor", async () => {
  await using state = await openMemoryStateStore();
  await state.advanceCursor({
    exportName: "t",
    lastCursorValue: "old",
    lastRunAt: "2026-01-01T00:00:00Z",
  });
  const destination = new MemoryDestination();
  const before = await previousRun(destination);
  destination.failOn = "manifest.json";
  const p = { ...plan(), cursorColumn: "name" };
  const { outcome, events } = await run(p, fakeSource([batch(0, 3)]), { destination, state });
  assert.equal(outcome.status, "failed");
  assert.equal(outcome.files, 0, "nothing of this run stays committed");
  assert.equal((await state.readCursor("t"))?.lastCursorValue, "old", "the cursor did not move");
  assert.deepEqual(destination.removes, ["t_20260102_030405.csv"]);
  assert.equal(destination.text("manifest.json"), before.m);
  assert.equal(destination.text("_SUCCESS"), before.s);
  const parts = await state.listRunParts(p.runId);
  assert.deepEqual(parts.map((x) => x.status), ["quarantined"], "the file log says withdrawn");
  assert.ok(events.some((e) => e.type === "warning" && e.code === "run.parts_withdrawn"));
});

Deno.test("runExport: a _SUCCESS that cannot be written puts the previous manifest back", async () => {
  await using state = await openMemoryStateStore();
  const destination = new MemoryDestination();
  const before = await previousRun(destination);
  destination.failOn = "_SUCCESS";
  const p = { ...plan(), cursorColumn: "name" };
  const { outcome } = await run(p, fakeSource([batch(0, 3)]), { destination, state });
  assert.equal(outcome.status, "failed");
  assert.equal(await state.readCursor("t"), undefined, "the cursor was never written");
  assert.equal(destination.text("manifest.json"), before.m, "the previous manifest is back");
  assert.equal(destination.text("_SUCCESS"), before.s);
  assert.ok(!destination.objects.has("t_20260102_030405.csv"));
});

Deno.test("runExport writes the cursor only after manifest.json and _SUCCESS", async () => {
  await using state = await openMemoryStateStore();
  const destination = new MemoryDestination();
  const order: string[] = [];
  const advance = state.advanceCursor.bind(state);
  state.advanceCursor = (entry) => {
    order.push(...destination.commits, "cursor");
    return advance(entry);
  };
  const { outcome } = await run({ ...plan(), cursorColumn: "name" }, fakeSource([batch(0, 3)]), {
    destination,
    state,
  });
  assert.equal(outcome.status, "success");
  assert.deepEqual(order, ["t_20260102_030405.csv", "manifest.json", "_SUCCESS", "cursor"]);
});

Deno.test("runExport: an incremental run without new rows leaves the previous manifest alone", async () => {
  for (const skipEmpty of [false, true]) {
    const destination = new MemoryDestination();
    const before = await previousRun(destination);
    const commits = destination.commits.length;
    const p = { ...plan({ skipEmpty }), cursorColumn: "name" };
    const { outcome } = await run(p, fakeSource([]), { destination });
    assert.equal(outcome.status, skipEmpty ? "skipped" : "success");
    assert.equal(destination.commits.length, commits, "nothing written");
    assert.equal(destination.text("manifest.json"), before.m);
    assert.equal(destination.text("_SUCCESS"), before.s);
  }
  // The first incremental run of an empty source has nothing to keep: it writes the empty
  // manifest and _SUCCESS, as a full export does.
  const empty = await run({ ...plan(), cursorColumn: "name" }, fakeSource([]));
  assert.deepEqual([...empty.destination.objects.keys()], ["manifest.json", "_SUCCESS"]);
});

Deno.test("runExport tags its file names when a run in the same second holds the plain ones", async () => {
  const destination = new MemoryDestination();
  const first = await run(plan(), fakeSource([batch(0, 2)]), { destination });
  const second = await run(plan(), fakeSource([batch(2, 2)]), { destination });
  assert.equal(first.outcome.status, "success");
  assert.equal(second.outcome.status, "success", JSON.stringify(second.outcome.error));
  const data = [...destination.objects.keys()].filter((k) => k.endsWith(".csv")).sort();
  assert.equal(data.length, 2);
  assert.equal(data[0], "t_20260102_030405.csv");
  assert.match(data[1]!, /^t_20260102_030405_[0-9a-f]{8}\.csv$/);
  // Split outputs too: `_part0` of the first run is taken, the second run tags its parts.
  const split = new MemoryDestination();
  const big = Array.from({ length: 4 }, (_, i) => batch(i * 100, 100));
  await run(plan({ maxFileSize: 1000 }), fakeSource(big), { destination: split });
  await run(plan({ maxFileSize: 1000 }), fakeSource(big), { destination: split });
  const parts = [...split.objects.keys()].filter((k) => k.endsWith(".csv"));
  assert.ok(parts.some((k) => /^t_20260102_030405_[0-9a-f]{8}_part0\.csv$/.test(k)), String(parts));
});

Deno.test("an outcome's error names its export once, however many layers wrapped it", async () => {
  const { exportErrorInfo } = await import("./run_export.ts");
  const { PermanentError } = await import("../core/errors.ts");
  const wrapped = new PermanentError(
    "export 'w12': export 'w12': chunk 3 failed: export 'w12': chunk_by_key 'id' is not unique",
    { code: "chunk.failed" },
  );
  const info = exportErrorInfo("w12", wrapped);
  if (info.message !== "export 'w12': chunk 3 failed: chunk_by_key 'id' is not unique") {
    throw new Error(info.message);
  }
  if (info.code !== "chunk.failed" || info.exitCode !== 1) throw new Error(JSON.stringify(info));
  // Another export's name inside the text is data, not a prefix of this one.
  const other = exportErrorInfo("a", new PermanentError("export 'b': x", { code: "c" }));
  if (other.message !== "export 'b': x") throw new Error(other.message);
});
