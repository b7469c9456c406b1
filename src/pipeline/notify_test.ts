import assert from "node:assert/strict";
import { hostsOnly, NotificationWatch, outcomeEvents, slackBody } from "./notify.ts";
import type { Outcome } from "../core/events.ts";

const outcome = (change: Partial<Outcome>): Outcome => ({
  export: "orders",
  runId: "orders_20260131T020000.000",
  status: "success",
  mode: "full",
  rows: 10,
  files: 1,
  bytes: 100,
  durationMs: 5,
  startedAt: "",
  finishedAt: "",
  output: "",
  compression: "none",
  format: "csv",
  peakRssMb: 1,
  tuningProfile: "balanced",
  batchSize: 1,
  ...change,
});

Deno.test("NotificationWatch: drift and degrading warnings count for their own export only", () => {
  const watch = new NotificationWatch();
  const warn = (exportName: string, code: string) =>
    watch.observe({ type: "warning", export: exportName, code, message: "" });
  warn("orders", "schema.drift");
  warn("orders", "run.retrying");
  warn("orders", "run.retrying");
  warn("orders", "partition.expanded");
  warn("other", "destination.retrying");
  assert.deepEqual(watch.signals(outcome({})), {
    schemaChanged: true,
    degraded: ["run.retrying"],
  });
  assert.deepEqual(watch.signals(outcome({ export: "quiet" })), {
    schemaChanged: false,
    degraded: [],
  });
});

Deno.test("a drift that failed the export is a failure and a schema change, not degraded", () => {
  const watch = new NotificationWatch();
  watch.observe({ type: "warning", export: "orders", code: "run.retrying", message: "" });
  const failed = outcome({
    status: "failed",
    error: { name: "SchemaDriftError", code: "schema.drift", message: "changed", exitCode: 4 },
  });
  const signals = watch.signals(failed);
  assert.deepEqual(outcomeEvents(failed, signals), ["failure", "schema_change"]);
  const [attachment] = JSON.parse(slackBody(failed, signals)).attachments;
  assert.equal(attachment.color, "#d40e0d");
  assert.match(attachment.text, /\nerror: changed\nschema changed$/);
});

Deno.test("a skipped (empty) export counts as a success", () => {
  const signals = { schemaChanged: false, degraded: [] };
  assert.deepEqual(outcomeEvents(outcome({ status: "skipped" }), signals), ["success"]);
  const [attachment] = JSON.parse(slackBody(outcome({}), signals)).attachments;
  assert.equal(attachment.color, "#2eb67d");
});

Deno.test("hostsOnly drops userinfo, path, query and fragment of every URL", () => {
  assert.equal(
    hostsOnly("a https://u:p@hooks.example.com:8443/x/y?token=t#f b http://h/p) c"),
    "a https://hooks.example.com:8443 b http://h) c",
  );
});
