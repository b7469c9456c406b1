import assert from "node:assert/strict";
import { registerSecret } from "../../_util/redact.ts";
import { parseNdjsonEvents } from "../../core/event_protocol.ts";
import { eventToNdjson } from "./ndjson.ts";

Deno.test("secrets, URL credentials and control bytes never reach the stream", () => {
  registerSecret("s3cr3t-token-value");
  const line = eventToNdjson({
    type: "warning",
    export: "orders",
    code: "source.retry",
    message: "retry with s3cr3t-token-value on mysql://root:pw@h/db \x1b[31mred\x1b[0m\x07 bell",
  });
  assert.ok(!line.includes("s3cr3t-token-value"), line);
  assert.ok(!line.includes("root:pw"), line);
  assert.ok(!line.includes("\x1b") && !line.includes("\\u001b"), line);
  assert.ok(!line.includes("\\u0007"), line);
  const [event] = parseNdjsonEvents(line);
  assert.match(event?.ts ?? "", /^\d{4}-\d\d-\d\dT[\d:.]+Z$/);
  assert.deepEqual({ ...event, ts: undefined }, {
    type: "warning",
    ts: undefined,
    export: "orders",
    code: "source.retry",
    message: "retry with *** on mysql://REDACTED@h/db red bell",
  });
});

Deno.test("the --events line of a failed export is one line with its error redacted", () => {
  const line = eventToNdjson({
    type: "warning",
    code: "c",
    message: "query on postgresql://app:hunter2pw@db/x failed\nline two",
  });
  assert.equal(line.indexOf("\n"), line.length - 1);
  assert.ok(!line.includes("hunter2pw"), line);
});
