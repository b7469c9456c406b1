import assert from "node:assert/strict";
import type { Outcome, RivetEvent } from "./events.ts";
import { redact } from "../_util/redact.ts";
import {
  decodeEventLine,
  encodeEventLine,
  type InvalidNdjsonLine,
  ndjsonEventStream,
  parseNdjsonEvents,
} from "./event_protocol.ts";

/** The time every test event is stamped with. */
const stamp = "2026-01-01T00:00:02.250Z";

/** The encoder as the CLI uses it (test files may import _util), with a fixed clock. */
const eventToNdjson = (event: RivetEvent) => encodeEventLine(event, redact, () => new Date(stamp));

const outcome: Outcome = {
  export: "orders",
  runId: "orders_20260101T000000.000",
  status: "failed",
  mode: "full",
  rows: 10,
  files: 1,
  bytes: 2048,
  durationMs: 1500,
  startedAt: "2026-01-01T00:00:00.000Z",
  finishedAt: "2026-01-01T00:00:01.500Z",
  output: "file:///tmp/out",
  compression: "zstd",
  format: "parquet",
  peakRssMb: 120,
  tuningProfile: "balanced",
  batchSize: 10000,
  error: {
    name: "SourceError",
    code: "source.query_failed",
    message: "query on postgresql://app:hunter2pw@db/x failed\nline two",
    exitCode: 1,
  },
};

const allEvents: RivetEvent[] = [
  { type: "run_started", runId: "agg_1", exports: ["orders"], at: "2026-01-01T00:00:00.000Z" },
  { type: "export_started", export: "orders", runId: outcome.runId, mode: "chunked" },
  { type: "chunks_planned", export: "orders", total: 4, done: 1 },
  { type: "chunk_started", export: "orders", chunk: 2, attempt: 1 },
  { type: "batch_read", export: "orders", rows: 5, totalRows: 5 },
  { type: "part_committed", export: "orders", key: "orders/part-0.parquet", rows: 5, bytes: 99 },
  { type: "chunk_completed", export: "orders", chunk: 2, rows: 5, files: 1, durationMs: 12 },
  { type: "chunk_failed", export: "orders", chunk: 3, attempt: 1, message: "x", willRetry: true },
  { type: "warning", export: "orders", code: "w", message: "careful" },
  { type: "warning", code: "w", message: "no export" },
  { type: "export_finished", outcome },
  { type: "run_finished", runId: "agg_1", exitCode: 1, outcomes: [outcome] },
];

function redacted(o: Outcome): Outcome {
  return {
    ...o,
    error: { ...o.error!, message: "query on postgresql://REDACTED@db/x failed\nline two" },
  };
}

Deno.test("every event type round-trips through one NDJSON line each", () => {
  const text = allEvents.map(eventToNdjson).join("");
  assert.equal(text.split("\n").length, allEvents.length + 1);
  const parsed = parseNdjsonEvents(text, { onInvalidLine: (bad) => assert.fail(bad.reason) });
  const expected = allEvents.map((e) =>
    e.type === "export_finished"
      ? { ...e, ts: stamp, outcome: redacted(e.outcome) }
      : e.type === "run_finished"
      ? { ...e, ts: stamp, outcomes: e.outcomes.map(redacted) }
      : { ...e, ts: stamp }
  );
  assert.deepEqual(parsed, expected);
});

/** Every key of a JSON value, at any depth. */
function keysOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(keysOf);
  if (value === null || typeof value !== "object") return [];
  return Object.entries(value).flatMap(([k, v]) => [k, ...keysOf(v)]);
}

Deno.test("on the wire every field is snake_case, as in --json, after type and ts", () => {
  for (const line of allEvents.map(eventToNdjson)) {
    const wire = JSON.parse(line) as Record<string, unknown>;
    assert.deepEqual(Object.keys(wire).slice(0, 2), ["type", "ts"], line);
    assert.match(String(wire.ts), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    for (const key of keysOf(wire)) assert.match(key, /^[a-z][a-z0-9_]*$/, line);
    assert.ok(!keysOf(wire).includes("export"), `the export is export_name: ${line}`);
  }
  const [, started, , , batch, , chunk, failed, , , finished, run] = allEvents.map((e) =>
    JSON.parse(eventToNdjson(e))
  );
  assert.equal(started.run_id, outcome.runId);
  assert.equal(started.export_name, "orders");
  assert.equal(batch.total_rows, 5);
  assert.equal(chunk.duration_ms, 12);
  assert.equal(failed.will_retry, true);
  assert.equal(run.exit_code, 1);
  // The outcome's facts under the names of `rivet run --json`'s per_export.
  for (const o of [finished.outcome, run.outcomes[0]]) {
    assert.equal(o.export_name, "orders");
    assert.equal(o.run_id, outcome.runId);
    assert.equal(o.duration_ms, 1500);
    assert.equal(o.peak_rss_mb, 120);
    assert.equal(o.error.exit_code, 1);
  }
});

Deno.test("an event's own ts is kept through encode and decode (a child's events keep its time)", () => {
  const childTime = "2025-12-31T23:59:59.999Z";
  const line = encodeEventLine(
    { type: "chunk_started", ts: childTime, export: "o", chunk: 1, attempt: 1 },
    redact,
  );
  const [event] = parseNdjsonEvents(line);
  assert.equal(event?.ts, childTime);
  // Relayed by a parent: still the child's time.
  assert.equal(JSON.parse(encodeEventLine(event!, redact)).ts, childTime);
  // Without one, the encoder stamps the current time.
  const before = Date.now();
  const now = Date.parse(
    JSON.parse(encodeEventLine({ type: "warning", code: "c", message: "m" }, redact)).ts,
  );
  assert.ok(now >= before && now <= Date.now() + 1);
});

Deno.test("the encoder applies the writer's scrubber to every string value, nested ones too", () => {
  const line = encodeEventLine(
    { type: "export_finished", outcome: { ...outcome, export: "tok-1" } },
    (text) => text.replaceAll("tok-1", "***").replaceAll("hunter2pw", "***"),
  );
  assert.ok(!line.includes("tok-1") && !line.includes("hunter2pw"), line);
  const [event] = parseNdjsonEvents(line);
  assert.equal(event?.type === "export_finished" && event.outcome.export, "***");
});

Deno.test("decodeEventLine names why a line is not an event", () => {
  assert.equal(
    decodeEventLine(`{"type":"warning","ts":"${stamp}","code":"c"}`),
    "warning without a valid 'message'",
  );
  assert.equal(
    decodeEventLine('{"type":"warning","code":"c","message":"m"}'),
    "warning without a valid 'ts'",
  );
  assert.equal(
    decodeEventLine(`{"type":"batch_read","ts":"${stamp}","export_name":"o","rows":1}`),
    "batch_read without a valid 'total_rows'",
  );
  assert.equal(
    decodeEventLine(
      `{"type":"run_finished","ts":"${stamp}","run_id":"r","exit_code":0,"outcomes":[1]}`,
    ),
    "run_finished with an outcome that is not an object",
  );
  assert.deepEqual(
    decodeEventLine(
      `{"type":"warning","ts":"${stamp}","export_name":"o","code":"c","message":"m"}`,
    ),
    { type: "warning", ts: stamp, export: "o", code: "c", message: "m" },
  );
});

Deno.test("a newline inside a message stays inside its one JSON line", () => {
  const line = eventToNdjson({ type: "warning", code: "c", message: "a\nb\tc" });
  assert.equal(line.indexOf("\n"), line.length - 1);
  assert.deepEqual(parseNdjsonEvents(line), [
    { type: "warning", ts: stamp, code: "c", message: "a\nb\tc" },
  ]);
});

Deno.test("non-event lines are skipped and reported with their line number and reason", () => {
  const invalid: InvalidNdjsonLine[] = [];
  const text = [
    eventToNdjson({ type: "warning", code: "c", message: "first" }).trimEnd(),
    "",
    "debug: hello",
    "[1,2]",
    '{"type":"from_the_future","x":1}',
    `{"type":"batch_read","ts":"${stamp}","export_name":"o","rows":"5","total_rows":5}`,
    `{"type":"export_finished","ts":"${stamp}","outcome":{"export_name":"o"}}`,
    '{"no":"type"}',
    eventToNdjson({ type: "warning", code: "c", message: "last" }).trimEnd() + "\r",
  ].join("\n");
  const events = parseNdjsonEvents(text, { onInvalidLine: (bad) => invalid.push(bad) });
  assert.deepEqual(events.map((e) => e.type === "warning" && e.message), ["first", "last"]);
  assert.deepEqual(invalid, [
    { lineNumber: 3, line: "debug: hello", reason: "not JSON" },
    { lineNumber: 4, line: "[1,2]", reason: "not a JSON object" },
    {
      lineNumber: 5,
      line: '{"type":"from_the_future","x":1}',
      reason: "unknown event type 'from_the_future'",
    },
    {
      lineNumber: 6,
      line: `{"type":"batch_read","ts":"${stamp}","export_name":"o","rows":"5","total_rows":5}`,
      reason: "batch_read without a valid 'rows'",
    },
    {
      lineNumber: 7,
      line: `{"type":"export_finished","ts":"${stamp}","outcome":{"export_name":"o"}}`,
      reason: "export_finished without a valid 'outcome.run_id'",
    },
    { lineNumber: 8, line: '{"no":"type"}', reason: "no 'type' field" },
  ]);
});

function chunkedStream(parts: Uint8Array[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(parts);
}

Deno.test("the stream reader reassembles lines and UTF-8 split across chunks", async () => {
  const text = eventToNdjson({ type: "warning", code: "c", message: "héllo ✓ 日本" }) +
    eventToNdjson({ type: "chunks_planned", export: "é", total: 3, done: 0 });
  const bytes = new TextEncoder().encode(text);
  // One byte per chunk splits every multi-byte character and every line.
  const parts = Array.from(bytes, (b) => Uint8Array.of(b));
  const events: RivetEvent[] = [];
  for await (const e of ndjsonEventStream(chunkedStream(parts))) events.push(e);
  assert.deepEqual(events, parseNdjsonEvents(text));
  assert.equal(events.length, 2);
});

Deno.test("the stream reader parses a last line without its newline and reports a torn one", async () => {
  const enc = new TextEncoder();
  const whole = eventToNdjson({ type: "warning", code: "c", message: "m" });
  const complete: RivetEvent[] = [];
  for await (const e of ndjsonEventStream(chunkedStream([enc.encode(whole.trimEnd())]))) {
    complete.push(e);
  }
  assert.equal(complete.length, 1);

  const invalid: InvalidNdjsonLine[] = [];
  const torn: RivetEvent[] = [];
  const stream = chunkedStream([enc.encode(whole + whole.slice(0, 10))]);
  for await (const e of ndjsonEventStream(stream, { onInvalidLine: (b) => invalid.push(b) })) {
    torn.push(e);
  }
  assert.equal(torn.length, 1);
  assert.deepEqual(invalid, [{ lineNumber: 2, line: whole.slice(0, 10), reason: "not JSON" }]);
});

Deno.test("breaking out of the stream reader cancels the source stream", async () => {
  let cancelled = false;
  const line = new TextEncoder().encode(
    eventToNdjson({ type: "warning", code: "c", message: "m" }),
  );
  const stream = new ReadableStream<Uint8Array>({
    pull: (controller) => controller.enqueue(line),
    cancel: () => {
      cancelled = true;
    },
  });
  let seen = 0;
  for await (const _ of ndjsonEventStream(stream)) {
    if (++seen === 3) break;
  }
  assert.equal(seen, 3);
  assert.ok(cancelled);
});

Deno.test("the stream reader reads a real child process's stdout", async () => {
  const script = `
    const w = (s) => Deno.stdout.writeSync(new TextEncoder().encode(s));
    const ts = '"ts":"2026-01-01T00:00:00.000Z"';
    w('{"type":"run_started",' + ts + ',"run_id":"r","exports":["a"],"at":"t"}\\n');
    w('not json\\n');
    w('{"type":"run_finished",' + ts + ',"run_id":"r","exit_code":0,"outcomes":[]}');
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    stdout: "piped",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const invalid: string[] = [];
  const types: string[] = [];
  for await (
    const e of ndjsonEventStream(child.stdout, { onInvalidLine: (b) => invalid.push(b.line) })
  ) {
    types.push(e.type);
  }
  assert.equal((await child.status).code, 0);
  assert.deepEqual(types, ["run_started", "run_finished"]);
  assert.deepEqual(invalid, ["not json"]);
});

Deno.test("the run trace's chunk fields (lane, range, bytes, quarantined) round-trip in snake_case", () => {
  const events: RivetEvent[] = [
    { type: "chunk_started", export: "o", chunk: 1, attempt: 2, lane: 2, range: "1 .. 10" },
    {
      type: "chunk_completed",
      export: "o",
      chunk: 1,
      rows: 5,
      files: 1,
      durationMs: 3,
      lane: 2,
      bytes: 70,
    },
    {
      type: "chunk_failed",
      export: "o",
      chunk: 1,
      attempt: 1,
      message: "m",
      willRetry: true,
      lane: 0,
      quarantined: 1,
    },
  ].map((e) => ({ ...e, ts: "2026-01-01T00:00:00.000Z" }) as RivetEvent);
  const text = events.map((e) => encodeEventLine(e, redact)).join("");
  assert.match(text, /"duration_ms":3,"lane":2,"bytes":70/);
  assert.match(text, /"will_retry":true,"lane":0,"quarantined":1/);
  assert.deepEqual(parseNdjsonEvents(text), events);
});
