import assert from "node:assert/strict";
import type { Outcome, RivetEvent } from "../../core/events.ts";
import { encodeEventLine } from "../../core/event_protocol.ts";
import {
  escapeMarkdownCell,
  exitClassOf,
  formatGithubOutputs,
  renderGithubSummary,
  summarizeNdjson,
} from "./github_summary.ts";

const t0 = Date.UTC(2026, 0, 31, 8);
let clock = 0;
/** NDJSON text of the events, stamped one second apart from t0. */
function ndjson(events: RivetEvent[]): string {
  clock = 0;
  return events.map((e) => encodeEventLine(e, (s) => s, () => new Date(t0 + 1000 * clock++)))
    .join("");
}

function outcome(name: string, fields: Partial<Outcome> = {}): Outcome {
  return {
    export: name,
    runId: "r1",
    status: "success",
    mode: "full",
    rows: 10,
    files: 1,
    bytes: 2048,
    durationMs: 1500,
    startedAt: "2026-01-31T08:00:00.000Z",
    finishedAt: "2026-01-31T08:00:01.500Z",
    output: "out/",
    compression: "zstd",
    format: "parquet",
    peakRssMb: 50,
    tuningProfile: "balanced",
    batchSize: 10000,
    ...fields,
  };
}

function run(outcomes: Outcome[], exitCode: 0 | 1 | 2 | 3 | 4 | 130): string {
  return ndjson([
    { type: "run_started", runId: "r1", exports: outcomes.map((o) => o.export), at: "x" },
    ...outcomes.map((o): RivetEvent => ({ type: "export_finished", outcome: o })),
    { type: "run_finished", runId: "r1", exitCode, outcomes },
  ]);
}

/** The table rows of the Markdown (lines starting with `|`), header and rule left out. */
function tableRows(markdown: string): string[] {
  return markdown.split("\n").filter((l) => l.startsWith("|")).slice(2);
}

Deno.test("a successful run: one row per export, totals, the wall time and ok outputs", () => {
  const text = run([
    outcome("orders", { rows: 1200, files: 2, bytes: 3 * 1024 * 1024, durationMs: 2500 }),
    outcome("customers", { rows: 30, files: 1, bytes: 512, durationMs: 400 }),
  ], 0);
  const { markdown, outputs } = renderGithubSummary(summarizeNdjson(text), { exitCode: 0 });
  assert.deepEqual(tableRows(markdown), [
    "| orders | success | 1,200 | 2 | 3.0 MiB | 2.5 s |",
    "| customers | success | 30 | 1 | 512 B | 400 ms |",
    // run_started at t0, run_finished 3 events (3 s) later.
    "| **Total** | **ok** | **1,230** | **3** | **3.0 MiB** | **3.0 s** |",
  ]);
  assert.match(markdown, /✅ \*\*ok\*\* \(exit code 0\): 2 export\(s\), 0 not successful/);
  assert.doesNotMatch(markdown, /### Errors/);
  assert.deepEqual(outputs, {
    "exit-code": "0",
    "exit-class": "ok",
    exports: "2",
    failed: "0",
    rows: "1230",
    files: "3",
    bytes: String(3 * 1024 * 1024 + 512),
  });
});

Deno.test("a failed export: its status, its escaped error and the exit class of the run", () => {
  const text = run([
    outcome("ok_one"),
    outcome("broken", {
      status: "failed",
      rows: 0,
      files: 0,
      bytes: 0,
      error: {
        message: "export 'broken': relation \"no_such\" does not exist\n<b>|x|</b>",
        code: "source.query_failed",
        exitCode: 1,
      } as NonNullable<Outcome["error"]>,
    }),
  ], 1);
  const { markdown, outputs } = renderGithubSummary(summarizeNdjson(text));
  assert.equal(outputs["exit-code"], "1");
  assert.equal(outputs["exit-class"], "config");
  assert.equal(outputs.failed, "1");
  assert.match(markdown, /^\| broken \| failed \| 0 \| 0 \| 0 B \| 1\.5 s \|$/m);
  assert.match(markdown, /❌ \*\*config\*\* \(exit code 1\): 2 export\(s\), 1 not successful/);
  assert.ok(
    markdown.includes(
      "### Errors\n\n- broken: export 'broken': relation \"no\\_such\" does not exist " +
        "&lt;b&gt;\\|x\\|&lt;/b&gt;\n",
    ),
    markdown,
  );
});

Deno.test("exit classes: every documented exit code has its name; the process's code wins", () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 130, 137, -1].map(exitClassOf),
    ["ok", "config", "transient", "integrity", "drift", "interrupted", "unknown", "unknown"],
  );
  const summary = summarizeNdjson(run([outcome("a")], 0));
  // The stream said 0, but the process died later (e.g. killed): the process's code counts.
  assert.equal(
    renderGithubSummary(summary, { exitCode: 130 }).outputs["exit-class"],
    "interrupted",
  );
  assert.equal(renderGithubSummary(summary).outputs["exit-class"], "ok");
  for (const [code, cls] of [[3, "integrity"], [4, "drift"], [2, "transient"]] as const) {
    const r = renderGithubSummary(summarizeNdjson(run([outcome("a")], code)));
    assert.equal(r.outputs["exit-class"], cls);
    assert.match(r.markdown, new RegExp(`\\*\\*Total\\*\\* \\| \\*\\*${cls}\\*\\*`));
  }
});

Deno.test("a config error before any event: no table, the class from the exit code", () => {
  const { markdown, outputs } = renderGithubSummary(summarizeNdjson(""), { exitCode: 1 });
  assert.deepEqual(tableRows(markdown), []);
  assert.match(markdown, /No export reported any event/);
  assert.equal(outputs["exit-class"], "config");
  assert.equal(outputs.rows, "0");
  assert.equal(renderGithubSummary(summarizeNdjson("")).outputs["exit-class"], "unknown");
  assert.equal(renderGithubSummary(summarizeNdjson("")).outputs["exit-code"], "");
});

Deno.test("a killed run: exports without an outcome keep what they committed", () => {
  const text = ndjson([
    { type: "run_started", runId: "r1", exports: ["done", "half", "never"], at: "x" },
    { type: "export_finished", outcome: outcome("done", { rows: 5, files: 1, bytes: 100 }) },
    { type: "export_started", export: "half", runId: "r1", mode: "chunked" },
    { type: "batch_read", export: "half", rows: 100, totalRows: 100 },
    { type: "part_committed", export: "half", key: "half/p1.csv", rows: 100, bytes: 700 },
    { type: "batch_read", export: "half", rows: 100, totalRows: 200 },
  ]);
  const { markdown, outputs } = renderGithubSummary(summarizeNdjson(text), { exitCode: 137 });
  assert.deepEqual(tableRows(markdown), [
    "| done | success | 5 | 1 | 100 B | 1.5 s |",
    "| half | unfinished | 200 | 1 | 700 B |  |",
    "| never | not started | 0 | 0 | 0 B |  |",
    "| **Total** | **unknown** | **205** | **2** | **800 B** | **5.0 s** |",
  ]);
  assert.equal(outputs.failed, "2");
  assert.equal(outputs["exit-class"], "unknown");
});

Deno.test("hostile export names are escaped: no new row, no HTML, no code span, no link", () => {
  const names = [
    "a|b",
    "x\n| injected | row |",
    "<img src=x onerror=alert(1)>",
    "`code`",
    "[link](javascript:alert(1))",
    "**bold**_it_~~s~~",
    "back\\slash",
    "tab\tand\u2028sep\u0007bell",
  ];
  const { markdown } = renderGithubSummary(summarizeNdjson(run(names.map((n) => outcome(n)), 0)));
  const rows = tableRows(markdown);
  assert.equal(rows.length, names.length + 1, "one row per export plus the total");
  for (const row of rows) {
    // Every row has exactly 7 unescaped pipes: 6 cells.
    assert.equal(row.match(/(?<!\\)\|/g)?.length, 7, row);
  }
  assert.ok(!markdown.includes("<img") && !markdown.includes("\u2028"), markdown);
  assert.ok(!/(?<!\\)`/.test(markdown), "no unescaped backtick");
  assert.ok(markdown.includes("\\[link\\](javascript:alert(1))"));
  assert.ok(markdown.includes("back\\\\slash"));
  assert.equal(escapeMarkdownCell("x".repeat(500)), "x".repeat(200) + "…");
  assert.equal(escapeMarkdownCell("a&b"), "a&amp;b");
  // A status is text from the stream too.
  const forged = run([outcome("a", { status: "<script>" as Outcome["status"] })], 0);
  assert.ok(!renderGithubSummary(summarizeNdjson(forged)).markdown.includes("<script>"));
});

Deno.test("the table is capped; totals still count every export", () => {
  const many = Array.from({ length: 250 }, (_, i) => outcome(`e${i}`, { rows: 2, bytes: 1 }));
  const { markdown, outputs } = renderGithubSummary(summarizeNdjson(run(many, 0)));
  const rows = tableRows(markdown);
  assert.equal(rows.length, 200 + 2);
  assert.equal(rows[199], "| e199 | success | 2 | 1 | 1 B | 1.5 s |");
  assert.equal(rows[200], "| … and 50 more | | | | | |");
  assert.match(rows[201]!, /^\| \*\*Total\*\* \| \*\*ok\*\* \| \*\*500\*\* \| \*\*250\*\* \|/);
  assert.equal(outputs.exports, "250");
  assert.equal(outputs.rows, "500");
  const small = renderGithubSummary(summarizeNdjson(run(many.slice(0, 5), 0)), { maxRows: 3 });
  assert.equal(tableRows(small.markdown)[3], "| … and 2 more | | | | | |");
});

Deno.test("lines that are not events are counted and said, not fatal", () => {
  const text = "hello\n" + run([outcome("a")], 0) + '{"type":"nope"}\n\n';
  const summary = summarizeNdjson(text);
  assert.equal(summary.invalidLines, 2);
  assert.equal(summary.rows.length, 1);
  assert.match(renderGithubSummary(summary).markdown, /2 line\(s\) of the event stream/);
});

Deno.test("outputs are name=value lines that cannot break a line", () => {
  assert.equal(
    formatGithubOutputs({ "exit-class": "ok", rows: "3", x: "a\nb=c" }),
    "exit-class=ok\nrows=3\nx=a b=c\n",
  );
});
