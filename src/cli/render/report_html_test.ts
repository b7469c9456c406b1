import assert from "node:assert/strict";
import { DETAIL_LIMIT, renderReportHtml, reportTotals } from "./report_html.ts";
import { syntheticRun } from "../../../tests/_helpers/report_fixture.ts";

/** The opening tags of the timeline bars, in page order. */
const bars = (
  html: string,
) => [...html.matchAll(/<rect class="k ([^"]*)" data-c="(\d+)" data-a="(\d+)"/g)];

Deno.test("report: one bar per chunk attempt, the failure and the retry marked", () => {
  const run = syntheticRun({ chunks: 100, lanes: 3, failOnce: [42] });
  const html = renderReportHtml({ exports: [run], exitCode: 0 });
  const found = bars(html).map((m) => `${m[2]}.${m[3]}`);
  assert.equal(found.length, 101);
  assert.equal(new Set(found).size, 101);
  const failed = bars(html).filter((m) => m[1]!.split(" ").includes("f"));
  assert.deepEqual(failed.map((m) => `${m[2]}.${m[3]}`), ["42.1"]);
  const retries = bars(html).filter((m) => m[1]!.split(" ").includes("x"));
  assert.deepEqual(retries.map((m) => `${m[2]}.${m[3]}`), ["42.2"]);
  assert.equal([...html.matchAll(/<g class="lane" /g)].length, 3);
});

Deno.test("report: the summary totals are the metrics given", () => {
  const run = syntheticRun({ chunks: 100, failOnce: [7] });
  const html = renderReportHtml({ exports: [run], exitCode: 2 });
  const m = run.metrics;
  assert.match(
    html,
    new RegExp(
      `<section id="summary" data-rows="${m.totalRows}" data-files="${m.filesProduced}" ` +
        `data-bytes="${m.bytesWritten}" data-duration-ms="${m.durationMs}" ` +
        `data-exit-class="transient" data-exports="1" data-peak-rss-mb="131">`,
    ),
  );
  assert.match(html, /profile balanced, batch 10,000, chunk 100,000, parallel 3/);
});

Deno.test("report: no URL and a CSP that forbids every fetch", () => {
  const html = renderReportHtml({ exports: [syntheticRun({ chunks: 100 })] });
  assert.match(
    html,
    /<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">/,
  );
  assert.doesNotMatch(html, /https?:|\/\/[a-z]|\bsrc=|\bhref=|@import|url\(/i);
});

Deno.test("report: hostile names, ranges and errors are escaped everywhere", () => {
  const evil = `<img src=x onerror="alert(1)"></script><script>alert(2)</script>&amp;'`;
  const run = syntheticRun({ chunks: 5, exportName: evil, failOnce: [2] });
  const trace = {
    ...run.trace,
    lanes: [evil, "w2", "w3"],
    chunks: run.trace.chunks.map((c) => ({ ...c, range: evil, error: evil })),
  };
  const html = renderReportHtml({
    exports: [{
      metrics: { ...run.metrics, runId: evil, errorMessage: evil, tuningProfile: evil },
      trace,
      warnings: [evil],
      errors: [evil],
      manifest: { status: "failed", detail: evil },
    }],
  });
  // The only tags are the page's own: no <img>, exactly the two scripts of the page.
  assert.doesNotMatch(html, /<img/i);
  assert.equal([...html.matchAll(/<script/gi)].length, 2);
  assert.equal([...html.matchAll(/<\/script/gi)].length, 2);
  assert.doesNotMatch(html, /onerror="/);
  assert.match(html, /&#60;img src=x onerror=&#34;alert\(1\)&#34;&#62;/);
  // The hover data holds the text as JSON with `<` escaped.
  assert.match(html, /\\u003cimg src=x onerror=\\"alert\(1\)\\">\\u003c\/script>/);
});

Deno.test("report: a run without a trace says so and shows the summary only", () => {
  const run = syntheticRun({ chunks: 3 });
  const html = renderReportHtml({ exports: [{ metrics: run.metrics }] });
  assert.match(html, /<p id="no-trace" class="note">No trace was recorded for <b>orders<\/b>/);
  assert.match(html, new RegExp(`data-rows="${run.metrics.totalRows}"`));
  assert.doesNotMatch(html, /id="timeline"/);
  assert.match(
    html,
    /<li class="manifest not_checked" data-export="orders" data-status="not_checked">/,
  );
});

Deno.test("report: several exports get one lane group each, totals summed", () => {
  const a = syntheticRun({ chunks: 20, lanes: 2, exportName: "a" });
  const b = syntheticRun({
    chunks: 30,
    lanes: 3,
    exportName: "b",
    startedAt: "2026-12-01T02:00:05.000Z",
  });
  const input = { exports: [a, b] };
  const html = renderReportHtml(input);
  assert.equal([...html.matchAll(/<g class="lane" data-e="0"/g)].length, 2);
  assert.equal(
    [...html.matchAll(/<g class="lane" data-e="1" data-l="\d" transform="translate\(5000 /g)]
      .length,
    3,
  );
  assert.equal(bars(html).length, 50);
  const t = reportTotals(input);
  assert.equal(t.rows, a.metrics.totalRows + b.metrics.totalRows);
  assert.equal(t.files, 50);
  // The duration is the wall-clock span: b starts 5 s after a.
  const end = (r: typeof a) => Date.parse(r.metrics.runAt) + r.metrics.durationMs;
  assert.equal(
    t.durationMs,
    Math.max(end(a), end(b)) - Date.parse(a.metrics.runAt),
  );
  assert.ok(t.durationMs > Math.max(a.metrics.durationMs, b.metrics.durationMs));
});

Deno.test("report: 10,000 attempts stay under 1 MB, the notable ones keep their details", () => {
  const run = syntheticRun({ chunks: 9_999, lanes: 8, failOnce: [5000], samples: 600 });
  const html = renderReportHtml({ exports: [run] });
  const size = new TextEncoder().encode(html).length;
  assert.ok(size < 1_000_000, `page is ${size} bytes`);
  assert.equal(bars(html).length, 10_000, "9,999 chunks and one retry: the trace's bound");
  assert.ok(10_000 > DETAIL_LIMIT);
  const data = JSON.parse(
    html.match(/<script type="application\/json" id="report-data">(.*?)<\/script>/)![1]!,
  );
  assert.ok(data.d["0.5000.1"], "the failed attempt keeps its details");
  assert.ok(data.d["0.5000.2"], "the retry keeps its details");
  assert.ok(Object.keys(data.d).length <= 12, "the completed ones are cut down");
});

Deno.test("report: quarantines marked, a running attempt drawn to the end of the run", () => {
  const run = syntheticRun({ chunks: 6 });
  const chunks = run.trace.chunks.map((c, i) =>
    i === 0 ? { ...c, quarantined: 2 } : i === 5
      ? {
        chunk: c.chunk,
        attempt: 1,
        lane: c.lane,
        startMs: c.startMs,
        outcome: "running" as const,
      }
      : c
  );
  const end = Date.parse(run.trace.finishedAt!) - Date.parse(run.trace.startedAt);
  const html = renderReportHtml({ exports: [{ ...run, trace: { ...run.trace, chunks } }] });
  const first = chunks[0]!;
  assert.match(html, new RegExp(`<rect class="k c q" data-c="${first.chunk}" data-a="1"`));
  const last = chunks[5]!;
  assert.match(
    html,
    new RegExp(
      `<rect class="k u" data-c="${last.chunk}" data-a="1" x="${last.startMs}" width="${
        end - last.startMs
      }"/>`,
    ),
  );
  assert.match(html, /"0\.\d+\.1":\[\d+,\d+,"\[\d+, \d+\]",null,2\]/, "hover data has the count");
});

Deno.test("report: a worst-case 10,000-attempt page (hours long, all failed, long errors) < 1 MB", () => {
  const run = syntheticRun({ chunks: 10_000, lanes: 16, samples: 600 });
  const long = "x".repeat(5_000);
  const chunks = run.trace.chunks.map((c) => ({
    ...c,
    chunk: c.chunk + 900_000,
    attempt: 9,
    startMs: c.startMs * 1_000,
    endMs: c.endMs! * 1_000,
    outcome: "failed" as const,
    range: long,
    error: long,
    quarantined: 12,
  }));
  const samples = run.trace.samples.map((s) => ({ ...s, tMs: s.tMs * 1_000 }));
  const html = renderReportHtml({
    exports: [{
      ...run,
      trace: { ...run.trace, chunks, samples },
      warnings: Array.from({ length: 5_000 }, () => long),
      errors: Array.from({ length: 5_000 }, () => long),
    }],
  });
  const size = new TextEncoder().encode(html).length;
  assert.ok(size < 1_000_000, `page is ${size} bytes`);
  assert.equal(bars(html).length, 10_000);
  assert.doesNotMatch(html.replace(/<ul id="(errors|warnings)">.*?<\/ul>/gs, ""), /x{201}/);
  assert.doesNotMatch(html, /x{501}/, "long texts are clipped");
  assert.match(html, /<li class="none">4,950 more warnings \(see the run's log\)<\/li>/);
});

Deno.test("report: an export run without chunk attempts is one bar from its start to its end", () => {
  const chunked = syntheticRun({ chunks: 10, exportName: "chunked" });
  const plain = syntheticRun({ chunks: 10, exportName: "plain" });
  const failed = syntheticRun({ chunks: 10, exportName: "broken" });
  const noChunks = (r: typeof plain, status: "success" | "failed") => ({
    metrics: { ...r.metrics, status },
    trace: { ...r.trace, chunks: [], lanes: [] },
  });
  const html = renderReportHtml({
    exports: [chunked, noChunks(plain, "success"), noChunks(failed, "failed")],
  });
  assert.equal(bars(html).length, 10, "chunk bars are those of the chunked export only");
  const whole = [
    ...html.matchAll(
      /<g class="lane" data-e="(\d)" data-l="0"[^>]*><rect class="w (\w)" x="0" width="(\d+)"\/><\/g>/g,
    ),
  ];
  assert.deepEqual(whole.map((m) => [m[1], m[2]]), [["1", "c"], ["2", "f"]]);
  const samplesEnd = plain.trace.samples.at(-1)!.tMs;
  assert.ok(Number(whole[0]![3]) >= samplesEnd, "the bar spans the run");
  const data = JSON.parse(
    /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1]!,
  );
  assert.deepEqual(data.d["1.w"], [plain.metrics.totalRows, plain.metrics.bytesWritten ?? null]);
  // Only the chunked export has slowest chunks; a page of chunkless runs has no such table.
  assert.match(html, /<table id="slowest">/);
  const alone = renderReportHtml({ exports: [noChunks(plain, "success")] });
  assert.doesNotMatch(alone, /id="slowest"/);
  assert.match(alone, /<rect class="w c"/);
  // A process that saved no end (killed) before a resume: its bar has no outcome of its own.
  const { finishedAt: _, ...unfinished } = plain.trace;
  const killed = { ...unfinished, chunks: [], lanes: [], host: "h1" };
  const resumed = { ...plain.trace, host: "h2", status: "success" as const };
  const both = renderReportHtml({ exports: [{ ...plain, trace: killed, moreTraces: [resumed] }] });
  assert.match(both, /<rect class="w u"/);
  assert.match(both, />plain · process 1\/2 on h1, no end recorded \(killed, or still running\)</);
});

Deno.test("report: a run resumed by another process is one lane group per process", () => {
  const run = syntheticRun({ chunks: 20, lanes: 2, failOnce: [3] });
  const first = { ...run.trace, host: "host-a", pid: 11, status: "failed" as const };
  const later = {
    ...syntheticRun({ chunks: 5, lanes: 3, startedAt: "2026-12-01T02:00:30.000Z" }).trace,
    host: "host-b",
    pid: 12,
    status: "success" as const,
  };
  const html = renderReportHtml({ exports: [{ ...run, trace: first, moreTraces: [later] }] });
  assert.equal(bars(html).length, first.chunks.length + later.chunks.length);
  assert.equal([...html.matchAll(/<g class="lane" data-e="0"/g)].length, 2);
  assert.equal(
    [...html.matchAll(/<g class="lane" data-e="1" data-l="\d" transform="translate\(30000 /g)]
      .length,
    3,
    "the second process's lanes start 30 s later",
  );
  assert.match(html, /<text class="ex"[^>]*>orders · process 1\/2 on host-a, failed<\/text>/);
  assert.match(html, /<text class="ex"[^>]*>orders · process 2\/2 on host-b, ok<\/text>/);
  const data = JSON.parse(
    /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1]!,
  );
  assert.deepEqual(data.n, [
    "orders · process 1/2 on host-a, failed",
    "orders · process 2/2 on host-b, ok",
  ]);
});

Deno.test("report: a page of many big traces keeps 10,000 attempts, the notable ones first", () => {
  const exports = Array.from(
    { length: 5 },
    (_, i) => syntheticRun({ chunks: 9_000, lanes: 8, exportName: `t${i}`, failOnce: [100 + i] }),
  );
  const html = renderReportHtml({ exports });
  const size = new TextEncoder().encode(html).length;
  assert.ok(size < 1_000_000, `page is ${size} bytes`);
  const drawn = bars(html);
  assert.equal(drawn.length, 10_000, "5 × 9,001 attempts, 35,005 left out");
  // Every failure and its retry are kept, in every export.
  assert.equal(drawn.filter((m) => m[1]!.split(" ").includes("f")).length, 5);
  assert.equal(drawn.filter((m) => m[1]!.split(" ").includes("x")).length, 5);
  assert.match(html, /<span id="omitted">35,005 more attempts were not kept in the trace<\/span>/);
});
