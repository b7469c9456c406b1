/**
 * The NDJSON event protocol: one {@linkcode RivetEvent} per line, as JSON. It is what
 * `rivet run --events ndjson` writes and what the subprocess engine reads from its children, so
 * it is a contract between processes, not a rendering: writers use {@linkcode encodeEventLine};
 * readers (an orchestrator reading a child's stdout, tests) use {@linkcode ndjsonEventStream} for
 * a byte stream or {@linkcode parseNdjsonEvents} for text they already hold. Both readers skip
 * blank lines and report, without throwing, lines that are not a known event: the shape rules
 * (the required fields of each event type, {@linkcode decodeEventLine}) live here, beside the
 * event types they check.
 *
 * On the wire, field names are snake_case, the names `rivet run --json` and the `--json` of the
 * inspection commands use for the same facts: `run_id`, `total_rows`, `duration_ms`,
 * `exit_code`, `peak_rss_mb`, and `export_name` for the export (`export` in the event types).
 * Every line starts with `type` and `ts` (ISO-8601 UTC with milliseconds). The encoder renames
 * the keys of the event objects and the decoder renames them back, so the names are converted
 * here only; event fields must therefore be camelCase field names, never data (a map keyed by
 * column names would be renamed too), and never `exportName` (it would come back as `export`).
 *
 * The encoder takes the string scrubber as an argument instead of importing the redactor: core
 * imports nothing outside core, and which secrets to hide is the writer's registry (the CLI
 * passes `redact` from `_util/redact.ts`).
 *
 * Layer: core.
 *
 * @module
 */
import type { RivetEvent } from "./events.ts";

/**
 * The wire name of an event field: snake_case, and `export_name` for `export`.
 *
 * @param field A field name of the event types.
 * @returns Its name on the wire.
 *
 * @example
 * ```ts
 * import { wireFieldName } from "./event_protocol.ts";
 * if (wireFieldName("totalRows") !== "total_rows" || wireFieldName("export") !== "export_name") {
 *   throw new Error();
 * }
 * ```
 */
export function wireFieldName(field: string): string {
  return field === "export" ? "export_name" : field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function fieldNameOf(wire: string): string {
  return wire === "export_name"
    ? "export"
    : wire.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

/** A copy of a JSON value whose object keys went through `rename`, at every depth. */
function renameKeys(value: unknown, rename: (key: string) => string): unknown {
  if (Array.isArray(value)) return value.map((item) => renameKeys(item, rename));
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [rename(key), renameKeys(item, rename)]),
  );
}

/**
 * Serialises one event as an NDJSON line: `type` and `ts` first, then the event's fields under
 * their wire names ({@linkcode wireFieldName}). Every string value (messages, names, keys, nested
 * outcome fields) goes through `scrub`, so what the writer hides (secrets, URL credentials,
 * terminal control bytes) cannot reach the stream; newlines and tabs inside strings are
 * JSON-escaped, so the result is always exactly one line.
 *
 * @param event The event; without `ts` it is stamped with `now()`.
 * @param scrub Applied to every string value (the CLI passes `redact`).
 * @param now The clock of the stamp (default: the current time).
 * @returns The JSON text followed by `\n`.
 *
 * @example
 * ```ts
 * import { encodeEventLine } from "./event_protocol.ts";
 * const line = encodeEventLine(
 *   { type: "warning", export: "orders", code: "x", message: "token abc" },
 *   (text) => text.replaceAll("abc", "***"),
 *   () => new Date(Date.UTC(2026, 0, 31, 8)),
 * );
 * const expected = '{"type":"warning","ts":"2026-01-31T08:00:00.000Z","export_name":"orders",' +
 *   '"code":"x","message":"token ***"}\n';
 * if (line !== expected) throw new Error(line);
 * ```
 */
export function encodeEventLine(
  event: RivetEvent,
  scrub: (text: string) => string,
  now: () => Date = () => new Date(),
): string {
  const { type, ts, ...fields } = event;
  const wire = {
    type,
    ts: ts ?? now().toISOString(),
    ...renameKeys(fields, wireFieldName) as object,
  };
  return JSON.stringify(
    wire,
    (_key, value: unknown) => (typeof value === "string" ? scrub(value) : value),
  ) + "\n";
}

/** A line that a reader skipped, as given to `onInvalidLine`. */
export interface InvalidNdjsonLine {
  /** 1-based line number in the stream. */
  readonly lineNumber: number;
  /** The line without its terminator (cut to its first 1,000 characters when longer). */
  readonly line: string;
  /** Why it was skipped, e.g. `not JSON` or `unknown event type 'foo'`. */
  readonly reason: string;
}

/** Options of the NDJSON readers. */
export interface NdjsonReadOptions {
  /**
   * Called for each non-blank line that is not a known event (a stray `console.log`, a truncated
   * write, an event from a newer rivet). Must not throw. Default: ignore.
   */
  readonly onInvalidLine?: (invalid: InvalidNdjsonLine) => void;
}

type FieldKind = "string" | "number" | "boolean" | "object" | "array";

// Required fields per event type: enough to trust the event's shape, cheap enough per line.
// `satisfies` makes the compiler flag a new event type that is missing here.
const requiredFields = {
  run_started: { runId: "string", exports: "array", at: "string" },
  export_started: { export: "string", runId: "string", mode: "string" },
  batch_read: { export: "string", rows: "number", totalRows: "number" },
  part_committed: { export: "string", key: "string", rows: "number", bytes: "number" },
  warning: { code: "string", message: "string" },
  chunks_planned: { export: "string", total: "number", done: "number" },
  chunk_started: { export: "string", chunk: "number", attempt: "number" },
  chunk_completed: {
    export: "string",
    chunk: "number",
    rows: "number",
    files: "number",
    durationMs: "number",
  },
  chunk_failed: {
    export: "string",
    chunk: "number",
    attempt: "number",
    message: "string",
    willRetry: "boolean",
  },
  export_finished: { outcome: "object" },
  run_finished: { runId: "string", exitCode: "number", outcomes: "array" },
} as const satisfies Record<RivetEvent["type"], Record<string, FieldKind>>;

const outcomeFields: Record<string, FieldKind> = {
  export: "string",
  runId: "string",
  status: "string",
  mode: "string",
  rows: "number",
  files: "number",
  bytes: "number",
  durationMs: "number",
};

function kindOf(value: unknown): FieldKind | "other" {
  if (Array.isArray(value)) return "array";
  if (value === null) return "other";
  const t = typeof value;
  return t === "string" || t === "number" || t === "boolean" || t === "object" ? t : "other";
}

function missingField(
  value: Record<string, unknown>,
  fields: Record<string, FieldKind>,
): string | undefined {
  for (const [name, kind] of Object.entries(fields)) {
    if (kindOf(value[name]) !== kind) return name;
  }
  return undefined;
}

/**
 * The event of one line (without its terminator), or why the line is not one: not JSON, not an
 * object, no `type`, an unknown type, no `ts`, or a required field missing or of the wrong kind.
 *
 * @param line One line, with the wire names ({@linkcode wireFieldName}).
 * @returns The event, its fields under the event types' names and its `ts` kept, or the reason
 *   as text (e.g. `unknown event type 'foo'`, `batch_read without a valid 'total_rows'`).
 */
export function decodeEventLine(line: string): RivetEvent | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return "not JSON";
  }
  if (kindOf(value) !== "object") return "not a JSON object";
  const record = renameKeys(value, fieldNameOf) as Record<string, unknown>;
  const type = record.type;
  if (typeof type !== "string") return "no 'type' field";
  if (!Object.hasOwn(requiredFields, type)) return `unknown event type '${type}'`;
  const fields: Record<string, FieldKind> = {
    ts: "string",
    ...requiredFields[type as RivetEvent["type"]],
  };
  const missing = missingField(record, fields);
  if (missing !== undefined) return `${type} without a valid '${wireFieldName(missing)}'`;
  if (type === "export_finished") {
    const bad = missingField(record.outcome as Record<string, unknown>, outcomeFields);
    if (bad !== undefined) return `export_finished without a valid 'outcome.${wireFieldName(bad)}'`;
  }
  if (type === "run_finished") {
    for (const o of record.outcomes as unknown[]) {
      if (kindOf(o) !== "object") return "run_finished with an outcome that is not an object";
      const bad = missingField(o as Record<string, unknown>, outcomeFields);
      if (bad !== undefined) {
        return `run_finished without a valid 'outcomes[].${wireFieldName(bad)}'`;
      }
    }
  }
  return record as unknown as RivetEvent;
}

const maxReportedChars = 1000;

/** Line splitter state shared by both readers. */
class LineDecoder {
  #lineNumber = 0;
  constructor(private readonly options: NdjsonReadOptions) {}

  /** The event of one line (terminator already removed), or undefined when skipped. */
  decode(raw: string): RivetEvent | undefined {
    this.#lineNumber += 1;
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (line.trim() === "") return undefined;
    const decoded = decodeEventLine(line);
    if (typeof decoded !== "string") return decoded;
    this.report(line, decoded);
    return undefined;
  }

  /** Reports a line that is skipped without being parsed (too long). */
  skip(line: string, reason: string): void {
    this.#lineNumber += 1;
    this.report(line, reason);
  }

  private report(line: string, reason: string): void {
    this.options.onInvalidLine?.({
      lineNumber: this.#lineNumber,
      line: line.length > maxReportedChars ? line.slice(0, maxReportedChars) : line,
      reason,
    });
  }
}

/**
 * Parses NDJSON text into events. A last line without its `\n` is parsed like the others; blank
 * lines are skipped silently; other lines that are not events are skipped and reported.
 *
 * @param text The whole stream (e.g. a child's captured stdout).
 * @param options `onInvalidLine`.
 * @returns The events, in order.
 *
 * @example
 * ```ts
 * import { parseNdjsonEvents } from "./event_protocol.ts";
 * const skipped: string[] = [];
 * const line = '{"type":"warning","ts":"2026-01-31T08:00:00.000Z","code":"c","message":"m"}';
 * const events = parseNdjsonEvents(`${line}\nhello\n`, {
 *   onInvalidLine: (bad) => skipped.push(bad.line),
 * });
 * if (events.length !== 1 || skipped[0] !== "hello") throw new Error();
 * ```
 */
export function parseNdjsonEvents(text: string, options: NdjsonReadOptions = {}): RivetEvent[] {
  const decoder = new LineDecoder(options);
  const events: RivetEvent[] = [];
  const lines = text.split("\n");
  // A trailing "\n" leaves an empty last element, not a line.
  if (lines.at(-1) === "") lines.pop();
  for (const line of lines) {
    const event = decoder.decode(line);
    if (event) events.push(event);
  }
  return events;
}

// A line longer than this is not an event rivet writes; drop it instead of buffering forever.
const maxLineChars = 16 * 1024 * 1024;

/**
 * Reads events from a byte stream as they arrive (a child process's stdout). UTF-8 split across
 * chunks, `\r\n` terminators and a last line without `\n` are handled; blank lines are skipped;
 * other lines that are not events (or longer than 16 Mi characters) are skipped and reported.
 * Breaking out of the loop early cancels the stream; when it ends normally the lock is released.
 *
 * @param readable The bytes, e.g. `child.stdout`.
 * @param options `onInvalidLine`.
 * @returns The events, in order, as they are read.
 *
 * @example
 * ```ts
 * import { ndjsonEventStream } from "./event_protocol.ts";
 * const bytes = new TextEncoder().encode(
 *   '{"type":"warning","ts":"2026-01-31T08:00:00.000Z","code":"c","message":"m"}',
 * );
 * for await (const event of ndjsonEventStream(ReadableStream.from([bytes]))) {
 *   if (event.type !== "warning") throw new Error();
 * }
 * ```
 */
export async function* ndjsonEventStream(
  readable: ReadableStream<Uint8Array>,
  options: NdjsonReadOptions = {},
): AsyncGenerator<RivetEvent, void, undefined> {
  const decoder = new LineDecoder(options);
  const text = new TextDecoder();
  const reader = readable.getReader();
  let buffer = "";
  // While true, the rest of an over-long line is being dropped up to its `\n`.
  let dropping = false;
  let finished = false;
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += text.decode(value, { stream: true });
      let start = 0;
      for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n", start)) {
        const line = buffer.slice(start, nl);
        start = nl + 1;
        if (dropping) {
          dropping = false;
          continue;
        }
        const event = decoder.decode(line);
        if (event) yield event;
      }
      buffer = buffer.slice(start);
      if (buffer.length > maxLineChars) {
        if (!dropping) decoder.skip(buffer, `line longer than ${maxLineChars} characters`);
        dropping = true;
        buffer = "";
      }
    }
    buffer += text.decode();
    if (buffer !== "" && !dropping) {
      const event = decoder.decode(buffer);
      if (event) yield event;
    }
    finished = true;
  } finally {
    if (finished) reader.releaseLock();
    else await reader.cancel().catch(() => {});
  }
}
