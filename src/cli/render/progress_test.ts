import assert from "node:assert/strict";
import type { Outcome } from "../../core/events.ts";
import { registerSecret } from "../../_util/redact.ts";
import { createProgressRenderer, formatDurationMs } from "./progress.ts";
import { renderOutcome } from "./summary.ts";

const up = (n: number) => `\x1b[${n}A\r`;
const clr = "\x1b[2K";

function outcome(name: string, overrides: Partial<Outcome> = {}): Outcome {
  return {
    export: name,
    runId: `${name}_20260101T000000.000`,
    status: "success",
    mode: "full",
    rows: 1234567,
    files: 3,
    bytes: 5 * 1024 * 1024,
    durationMs: 4200,
    startedAt: "2026-01-01T00:00:00.000Z",
    finishedAt: "2026-01-01T00:00:04.200Z",
    output: "file:///tmp/out",
    compression: "zstd",
    format: "parquet",
    peakRssMb: 210,
    tuningProfile: "balanced",
    batchSize: 10000,
    ...overrides,
  };
}

/** A renderer on a fake clock that records each write separately. */
function harness(tty: boolean, columns?: number) {
  const clock = { t: Date.UTC(2026, 0, 1) };
  const writes: string[] = [];
  const renderer = createProgressRenderer({
    tty,
    write: (text) => writes.push(text),
    now: () => clock.t,
    ...(columns === undefined ? {} : { columns }),
  });
  const at = (ms: number) => (clock.t = Date.UTC(2026, 0, 1) + ms);
  /** The writes since the last call. */
  const take = () => writes.splice(0).join("");
  return { renderer, at, take, writes };
}

Deno.test("without a terminal, progress is plain timestamped lines and the summary block", () => {
  const { renderer, at, take } = harness(false);
  renderer.emit({ type: "export_started", export: "orders", runId: "r", mode: "chunked" });
  renderer.emit({ type: "chunks_planned", export: "orders", total: 4, done: 0 });
  at(1000);
  renderer.emit({ type: "batch_read", export: "orders", rows: 100, totalRows: 100 });
  at(2000);
  renderer.emit({
    type: "chunk_completed",
    export: "orders",
    chunk: 0,
    rows: 100,
    files: 1,
    durationMs: 5,
  });
  at(3000);
  renderer.emit({ type: "batch_read", export: "orders", rows: 50, totalRows: 150 });
  at(7000);
  // 5 s since the last line (at 2 s): a time-based line.
  renderer.emit({ type: "batch_read", export: "orders", rows: 50, totalRows: 200 });
  renderer.emit({
    type: "chunk_failed",
    export: "orders",
    chunk: 1,
    attempt: 2,
    message: "connection reset",
    willRetry: true,
  });
  renderer.emit({ type: "warning", export: "orders", code: "x", message: "chunk_column not set" });
  const done = outcome("orders");
  renderer.emit({ type: "export_finished", outcome: done });
  renderer.close();
  assert.equal(
    take(),
    [
      "2026-01-01T00:00:00.000Z orders: started (chunked)",
      "2026-01-01T00:00:00.000Z orders: 4 chunks planned",
      "2026-01-01T00:00:02.000Z orders: 100 rows, 1/4 chunks, 50 rows/s",
      "2026-01-01T00:00:07.000Z orders: 200 rows, 1/4 chunks, 29 rows/s",
      "2026-01-01T00:00:07.000Z orders: chunk 1 failed (attempt 2): connection reset (will retry)",
      "Warning: chunk_column not set",
      "",
    ].join("\n") + renderOutcome(done),
  );
});

Deno.test("without a terminal, batches of an export without chunks print a line at most every 5 s", () => {
  const { renderer, at, writes } = harness(false);
  renderer.emit({ type: "export_started", export: "t", runId: "r", mode: "full" });
  renderer.emit({ type: "chunks_planned", export: "t", total: 0, done: 0 });
  writes.length = 0;
  for (let ms = 100; ms <= 12_000; ms += 100) {
    at(ms);
    renderer.emit({ type: "batch_read", export: "t", rows: 10, totalRows: ms / 10 });
  }
  renderer.close();
  assert.deepEqual(writes, [
    "2026-01-01T00:00:05.000Z t: 500 rows, 100 rows/s\n",
    "2026-01-01T00:00:10.000Z t: 1,000 rows, 100 rows/s\n",
  ]);
});

Deno.test("without a terminal, the lines existing tests grep for are unchanged", () => {
  const { renderer, take } = harness(false);
  renderer.emit({
    type: "warning",
    export: "sized",
    code: "plan.no_chunk_column",
    message: "export 'sized': chunk_column not set",
  });
  renderer.emit({ type: "export_finished", outcome: outcome("sized") });
  const text = take();
  assert.match(text, /^Warning: .*chunk_column not set$/m);
  assert.match(text, /✓ sized: success/);
  assert.match(text, /run_id: {6}sized_20260101T000000\.000/);
});

Deno.test("on a terminal, a live line is drawn at once and redrawn at most every 200 ms", () => {
  const { renderer, at, take } = harness(true);
  renderer.emit({ type: "export_started", export: "orders", runId: "r", mode: "full" });
  assert.equal(take(), `${clr}▸ orders  0 rows  0 rows/s  0s\n`);
  at(100);
  renderer.emit({ type: "batch_read", export: "orders", rows: 100, totalRows: 100 });
  at(150);
  renderer.emit({ type: "batch_read", export: "orders", rows: 200, totalRows: 300 });
  assert.equal(take(), "", "throttled");
  at(250);
  renderer.emit({ type: "batch_read", export: "orders", rows: 200, totalRows: 500 });
  assert.equal(take(), `${up(1)}${clr}▸ orders  500 rows  2,000 rows/s  0s\n`);
  renderer.close();
  assert.equal(take(), "", "close has nothing new to draw");
});

Deno.test("on a terminal, nothing is written when the live text did not change", () => {
  const { renderer, at, take } = harness(true);
  renderer.emit({ type: "export_started", export: "orders", runId: "r", mode: "full" });
  take();
  at(500);
  renderer.emit({ type: "batch_read", export: "orders", rows: 0, totalRows: 0 });
  renderer.emit({ type: "chunk_started", export: "orders", chunk: 0, attempt: 1 });
  renderer.emit({ type: "part_committed", export: "orders", key: "k", rows: 0, bytes: 1 });
  assert.equal(take(), "");
  renderer.close();
  assert.equal(take(), "");
});

Deno.test("on a terminal, a throttled update is flushed by its timer", async () => {
  const { renderer, at, take } = harness(true);
  renderer.emit({ type: "export_started", export: "orders", runId: "r", mode: "full" });
  take();
  at(50);
  renderer.emit({ type: "batch_read", export: "orders", rows: 7, totalRows: 7 });
  assert.equal(take(), "");
  at(1000);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(take(), `${up(1)}${clr}▸ orders  7 rows  7 rows/s  1s\n`);
  renderer.close();
});

Deno.test("on a terminal, elapsed time refreshes without events", async () => {
  const { renderer, at, take } = harness(true);
  renderer.emit({ type: "export_started", export: "orders", runId: "r", mode: "full" });
  take();
  at(65_000);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  assert.equal(take(), `${up(1)}${clr}▸ orders  0 rows  0 rows/s  1m 05s\n`);
  renderer.close();
});

Deno.test("on a terminal, warnings and chunk failures print above the live block", () => {
  const { renderer, at, take } = harness(true);
  renderer.emit({ type: "export_started", export: "a", runId: "r", mode: "full" });
  at(300);
  renderer.emit({ type: "export_started", export: "bbb", runId: "r", mode: "chunked" });
  take();
  at(400);
  renderer.emit({ type: "warning", code: "w", message: "disk is slow\nsecond line" });
  assert.equal(
    take(),
    `${up(2)}${clr}Warning: disk is slow\n${clr}second line\n` +
      `${clr}▸ a    0 rows  0 rows/s  0s\n${clr}▸ bbb  0 rows  0 rows/s  0s\n`,
  );
  renderer.emit({
    type: "chunk_failed",
    export: "bbb",
    chunk: 3,
    attempt: 1,
    message: "reset\nstack",
    willRetry: true,
  });
  assert.equal(
    take(),
    `${up(2)}${clr}! bbb: chunk 3 failed (attempt 1), will retry: reset\n` +
      `${clr}▸ a    0 rows  0 rows/s  0s\n${clr}▸ bbb  0 rows  0 rows/s  0s\n`,
  );
  renderer.close();
});

Deno.test("on a terminal, two concurrent exports each keep a line and end as ✓ and ✗ lines", () => {
  const { renderer, at, take } = harness(true);
  renderer.emit({ type: "export_started", export: "orders", runId: "r", mode: "full" });
  renderer.emit({ type: "export_started", export: "users", runId: "r", mode: "full" });
  at(1000);
  renderer.emit({ type: "batch_read", export: "users", rows: 5000, totalRows: 5000 });
  assert.equal(
    take(),
    `${clr}▸ orders  0 rows  0 rows/s  0s\n` +
      `${
        up(1)
      }${clr}▸ orders  0 rows  0 rows/s  1s\n${clr}▸ users   5,000 rows  5,000 rows/s  1s\n`,
  );
  at(2000);
  renderer.emit({ type: "export_finished", outcome: outcome("users", { files: 1 }) });
  // The block shrinks by one line: the rest of the old block is cleared.
  assert.equal(
    take(),
    `${up(2)}${clr}✓ users   1,234,567 rows  1 file  5.0 MiB  4.2 s  peak RSS 210 MB\n` +
      `${clr}▸ orders  0 rows  0 rows/s  2s\n`,
  );
  at(3000);
  const failed = outcome("orders", {
    status: "failed",
    rows: 0,
    files: 0,
    bytes: 0,
    durationMs: 125_000,
    error: { name: "SourceError", code: "c", message: "relation missing\ndetail", exitCode: 1 },
  });
  renderer.emit({ type: "export_finished", outcome: failed });
  assert.equal(
    take(),
    `${
      up(1)
    }${clr}✗ orders  0 rows  0 files  0 B  2m 05s  peak RSS 210 MB  error: relation missing\n`,
  );
  renderer.close();
  assert.equal(take(), "", "no summary block on a terminal");
});

Deno.test("on a terminal, the ETA comes from the chunks completed in this run", () => {
  const { renderer, at, take } = harness(true);
  renderer.emit({ type: "export_started", export: "big", runId: "r", mode: "chunked" });
  at(200);
  // Resumed: 2 of 10 chunks were done by an earlier attempt and do not count for the pace.
  renderer.emit({ type: "chunks_planned", export: "big", total: 10, done: 2 });
  assert.match(take(), /▸ big {2}0 rows {2}2\/10 chunks {2}0 rows\/s {2}0s {2}ETA --\n$/);
  at(5000);
  renderer.emit({
    type: "chunk_completed",
    export: "big",
    chunk: 2,
    rows: 0,
    files: 1,
    durationMs: 1,
  });
  at(10_000);
  renderer.emit({
    type: "chunk_completed",
    export: "big",
    chunk: 3,
    rows: 0,
    files: 1,
    durationMs: 1,
  });
  renderer.emit({ type: "batch_read", export: "big", rows: 20_000, totalRows: 20_000 });
  // The batch is throttled (same instant); close draws it.
  renderer.close();
  // 2 chunks in 10 s: 6 left take 30 s.
  assert.equal(
    take().split(up(1)).at(-1),
    `${clr}▸ big  20,000 rows  4/10 chunks  2,000 rows/s  10s  ETA 30s\n`,
  );
});

Deno.test("on a terminal, live lines are cut to the width and secrets are redacted", () => {
  registerSecret("tty-secret-value");
  const { renderer, take } = harness(true, 30);
  renderer.emit({
    type: "export_started",
    export: "orders_with_a_very_long_name",
    runId: "r",
    mode: "full",
  });
  const line = take();
  assert.equal(line, `${clr}▸ orders_with_a_very_long_na…\n`);
  assert.equal([...line.slice(clr.length, -1)].length, 29);
  renderer.emit({ type: "warning", code: "w", message: "pw tty-secret-value \x1b[31mred\x07" });
  const warning = take();
  assert.ok(!warning.includes("tty-secret-value"), warning);
  assert.ok(warning.includes("Warning: pw *** red\n"), warning);
  assert.ok(!warning.includes("\x1b[31m") && !warning.includes("\x07"), warning);
  renderer.close();
});

Deno.test("close draws the last pending state, stops the timers and ignores later events", () => {
  const { renderer, at, take } = harness(true);
  renderer.emit({ type: "export_started", export: "orders", runId: "r", mode: "full" });
  take();
  at(100);
  renderer.emit({ type: "batch_read", export: "orders", rows: 42, totalRows: 42 });
  assert.equal(take(), "");
  renderer.close();
  assert.equal(take(), `${up(1)}${clr}▸ orders  42 rows  420 rows/s  0s\n`);
  renderer.emit({ type: "warning", code: "w", message: "late" });
  assert.equal(take(), "");
});

Deno.test("a writer that throws does not make emit throw", () => {
  const renderer = createProgressRenderer({
    tty: false,
    write: () => {
      throw new Error("broken pipe");
    },
  });
  renderer.emit({ type: "warning", code: "w", message: "x" });
  renderer.close();
});

Deno.test("durations read as ms, seconds, then clock time", () => {
  assert.equal(formatDurationMs(850), "850 ms");
  assert.equal(formatDurationMs(4200), "4.2 s");
  assert.equal(formatDurationMs(185_000), "3m 05s");
  assert.equal(formatDurationMs(7_620_000), "2h 07m");
});
