/**
 * The run report in a real browser (headless Chromium): every chunk attempt is drawn once, the
 * failure and the retry are marked, the header totals are the metrics, the script runs without
 * a console message, nothing is fetched from the network, hostile text stays text, and a
 * 10,000-attempt page stays under 1 MB. A screenshot goes to `out/test-artifacts/report.png`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { renderReportHtml, type ReportInput } from "../../src/cli/render/report_html.ts";
import { ignoreChromiumTests, loadPage, screenshot } from "../_helpers/chromium.ts";
import { syntheticRun } from "../_helpers/report_fixture.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const artifacts = join(root, "out", "test-artifacts");
const ignore = ignoreChromiumTests;

/** Writes the page to a temp file, loads it in Chromium, and screenshots it to `png` if given. */
async function open(html: string, png?: string) {
  const dir = await Deno.makeTempDir({ prefix: "rivet-report-" });
  try {
    const path = join(dir, "report.html");
    await Deno.writeTextFile(path, html);
    const page = await loadPage(path);
    if (png) await screenshot(path, png);
    return page;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** `chunk.attempt` of every timeline bar in the DOM, with its classes and lane. */
function barsOf(dom: string) {
  const out: { key: string; classes: string[]; lane: string }[] = [];
  for (const g of dom.matchAll(/<g class="lane" data-e="(\d+)" data-l="(\d+)"[^>]*>(.*?)<\/g>/gs)) {
    for (const r of g[3]!.matchAll(/<rect class="k ([^"]*)" data-c="(\d+)" data-a="(\d+)"/g)) {
      out.push({ key: `${r[2]}.${r[3]}`, classes: r[1]!.split(" "), lane: `${g[1]}.${g[2]}` });
    }
  }
  return out;
}

/**
 * The page with a script that stands in for the mouse: one mousemove on the first element of
 * each selector, each tooltip's text copied into a `<pre class="hovered">` for --dump-dom.
 */
function hovered(html: string, selectors: readonly string[]): string {
  const script = `<script>for (const sel of ${JSON.stringify(selectors)}) {
    const r = document.querySelector(sel), b = r.getBoundingClientRect();
    r.dispatchEvent(new MouseEvent("mousemove", { bubbles: true, clientX: b.x, clientY: b.y }));
    const out = document.createElement("pre");
    out.className = "hovered";
    out.textContent = document.getElementById("tip").textContent;
    document.body.append(out);
  }</script>`;
  return html.replace("</body>", `${script}</body>`);
}

Deno.test({
  name: "report in Chromium: 100 chunks on 3 lanes, one failure and its retry",
  ignore,
  fn: async () => {
    const run = syntheticRun({ chunks: 100, lanes: 3, failOnce: [42] });
    const input: ReportInput = {
      exports: [{ ...run, warnings: ["1 chunk retried"], manifest: { status: "passed" } }],
      exitCode: 0,
    };
    await Deno.mkdir(artifacts, { recursive: true });
    const png = join(artifacts, "report.png");
    await Deno.remove(png).catch(() => {});
    const page = await open(renderReportHtml(input), png);
    const bars = barsOf(page.dom);
    const expected = run.trace.chunks.map((c) => `${c.chunk}.${c.attempt}`).sort();
    assert.deepEqual(bars.map((b) => b.key).sort(), expected, "each attempt exactly once");
    assert.equal(new Set(bars.map((b) => b.lane)).size, 3);
    assert.deepEqual(bars.filter((b) => b.classes.includes("f")).map((b) => b.key), ["42.1"]);
    assert.deepEqual(bars.filter((b) => b.classes.includes("x")).map((b) => b.key), ["42.2"]);
    // The lane of each bar is the one the trace says.
    for (const c of run.trace.chunks) {
      const bar = bars.find((b) => b.key === `${c.chunk}.${c.attempt}`)!;
      assert.equal(bar.lane, `0.${c.lane}`);
    }
    const summary = page.dom.match(/<section id="summary"([^>]*)>/)![1]!;
    const attr = (n: string) => summary.match(new RegExp(`${n}="([^"]*)"`))?.[1];
    assert.equal(Number(attr("data-rows")), run.metrics.totalRows);
    assert.equal(Number(attr("data-files")), run.metrics.filesProduced);
    assert.equal(Number(attr("data-bytes")), run.metrics.bytesWritten);
    assert.equal(Number(attr("data-duration-ms")), run.metrics.durationMs);
    assert.equal(attr("data-exit-class"), "ok");
    assert.match(page.dom, /<table id="slowest">/);
    assert.equal([...page.dom.matchAll(/<tr data-c="\d+" data-a="\d+">/g)].length, 10);
    assert.match(page.dom, /<polyline class="s s0" data-n="119"/, "throughput plot");
    assert.match(page.dom, /<polyline class="s s0" data-n="120"/, "RSS plot");
    assert.match(page.dom, /data-status="passed"/);
    assert.match(page.dom, /<body data-js="ok">/, "the script ran to its end");
    assert.deepEqual(page.console, [], "no console message");
    assert.deepEqual(page.requests, [], "no network request");
    const head = (await Deno.readFile(png)).subarray(0, 8);
    assert.deepEqual([...head], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  },
});

Deno.test({
  name: "report in Chromium: 10,000 attempts, under 1 MB, each drawn once",
  ignore,
  fn: async () => {
    const run = syntheticRun({ chunks: 9_999, lanes: 8, failOnce: [1234], samples: 600 });
    const html = renderReportHtml({ exports: [run], exitCode: 0 });
    const size = new TextEncoder().encode(html).length;
    assert.ok(size < 1_000_000, `page is ${size} bytes`);
    const page = await open(html);
    const keys = barsOf(page.dom).map((b) => b.key);
    assert.equal(keys.length, 10_000);
    assert.equal(new Set(keys).size, 10_000);
    assert.deepEqual(page.console, []);
    assert.deepEqual(page.requests, []);
  },
});

Deno.test({
  name: "report in Chromium: hostile export names and errors stay text",
  ignore,
  fn: async () => {
    const evil = `<img src=x onerror="document.body.setAttribute('data-pwned','1')">` +
      `</script><script>document.body.setAttribute('data-pwned','2')</script>`;
    const run = syntheticRun({ chunks: 4, exportName: evil, failOnce: [2] });
    const trace = { ...run.trace, chunks: run.trace.chunks.map((c) => ({ ...c, error: evil })) };
    const page = await open(renderReportHtml({
      exports: [{ metrics: run.metrics, trace, errors: [evil], warnings: [evil] }],
    }));
    // The text is shown (escaped by the serialiser), never parsed: no <img>, no extra script.
    assert.match(page.dom, /<h1>rivet report: &lt;img src=x onerror=/);
    assert.doesNotMatch(page.dom, /<img/);
    assert.equal([...page.dom.matchAll(/<script/g)].length, 2);
    assert.match(page.dom, /<body data-js="ok">/, "no handler set data-pwned on <body>");
    assert.deepEqual(page.console, []);
  },
});

Deno.test({
  name: "the network check sees a page that fetches, and the report's CSP refuses such fetches",
  ignore,
  fn: async () => {
    // A page without the CSP: the net log shows both requests (the check can fail).
    const bare = await open(
      `<!DOCTYPE html><html><body><img src="http://example.invalid/x.png">` +
        `<script>fetch("https://cdn.example.invalid/a.js").catch(() => {})</script></body></html>`,
    );
    assert.deepEqual(bare.requests.sort(), [
      "http://example.invalid/x.png",
      "https://cdn.example.invalid/a.js",
    ]);
    // The same image slipped into a report page: the browser refuses it before any request.
    const html = renderReportHtml({ exports: [syntheticRun({ chunks: 3 })] }).replace(
      "<h1>",
      `<img src="http://example.invalid/x.png"><h1>`,
    );
    const page = await open(html);
    assert.deepEqual(page.requests, []);
    assert.ok(
      page.console.some((l) => /Content Security Policy/.test(l)),
      page.console.join("\n"),
    );
  },
});

Deno.test({
  name: "report in Chromium: hovering a bar shows its chunk, range, rows/s and error",
  ignore,
  fn: async () => {
    const run = syntheticRun({ chunks: 30, failOnce: [12] });
    // One mousemove on the failed bar and on its retry.
    const page = await open(
      hovered(renderReportHtml({ exports: [run] }), ["rect.k.f", "rect.k.x"]),
    );
    const tips = [...page.dom.matchAll(/<pre class="hovered">([^<]*)<\/pre>/g)].map((m) => m[1]!);
    const failed = run.trace.chunks.find((c) => c.outcome === "failed")!;
    const retry = run.trace.chunks.find((c) => c.attempt === 2)!;
    assert.equal(tips.length, 2);
    assert.match(tips[0]!, /^orders: chunk 12, attempt 1 \(failed\)\n/);
    assert.match(tips[0]!, /\nrange \[1200001, 1300000\]\n/);
    assert.match(tips[0]!, /\nerror: connection reset by peer \(transient\)$/);
    const seconds = ((failed.endMs! - failed.startMs) / 1000).toFixed(2);
    assert.match(tips[0]!, new RegExp(`duration ${seconds.replace(".", "\\.")} s`));
    assert.match(tips[1]!, /^orders: chunk 12, attempt 2 \(completed\)\n/);
    const rate = Math.round(retry.rows! / (retry.endMs! - retry.startMs) * 1000 * 10) / 10;
    assert.match(
      tips[1]!,
      new RegExp(
        `rows ${retry.rows!.toLocaleString("en-US")}, ${rate.toLocaleString("en-US")} rows/s`,
      ),
    );
    assert.deepEqual(page.console, []);
  },
});

Deno.test({
  name: "report in Chromium: an export without chunks is one bar whose hover gives its rows/s",
  ignore,
  fn: async () => {
    const run = syntheticRun({ chunks: 10, exportName: "customers" });
    const plain = { metrics: run.metrics, trace: { ...run.trace, chunks: [], lanes: [] } };
    const page = await open(hovered(renderReportHtml({ exports: [plain] }), ["rect.w"]));
    const tip = /<pre class="hovered">([^<]*)<\/pre>/.exec(page.dom)?.[1] ?? "";
    assert.match(tip, /^customers: the export run, no chunk attempts \(succeeded\)\n/);
    assert.match(tip, new RegExp(`\\nrows ${run.metrics.totalRows.toLocaleString("en-US")}, `));
    assert.match(page.dom, /<body data-js="ok">/);
    assert.deepEqual(page.console, []);
  },
});
