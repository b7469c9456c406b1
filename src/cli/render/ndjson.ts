/**
 * `--events ndjson` output: each run event as one redacted line of the event protocol
 * (`src/core/event_protocol.ts`, which also holds the readers the subprocess engine and tests
 * use).
 *
 * Layer: cli.
 *
 * @module
 */
import type { RivetEvent } from "../../core/events.ts";
import { encodeEventLine } from "../../core/event_protocol.ts";
import { redact } from "../../_util/redact.ts";

/**
 * Serialises one event as an NDJSON line (snake_case field names, `ts` stamped now unless the
 * event carries one) with every string value redacted, so neither a registered secret nor URL
 * credentials nor a terminal control byte can reach the stream.
 *
 * @param event The event.
 * @returns The JSON text followed by `\n`.
 *
 * @example
 * ```ts
 * import { eventToNdjson } from "./ndjson.ts";
 * const line = eventToNdjson({
 *   type: "warning",
 *   ts: "2026-01-31T08:00:00.000Z",
 *   code: "x",
 *   message: "postgres://u:pw@db/x down",
 * });
 * const expected = '{"type":"warning","ts":"2026-01-31T08:00:00.000Z","code":"x",' +
 *   '"message":"postgres://REDACTED@db/x down"}\n';
 * if (line !== expected) throw new Error(line);
 * ```
 */
export function eventToNdjson(event: RivetEvent): string {
  return encodeEventLine(event, redact);
}
