/**
 * `rivet summarize-events`: the step of the GitHub Action that turns a real
 * `rivet run --events ndjson` stream into the job summary and step outputs, appending to the
 * files GitHub gives (`$GITHUB_STEP_SUMMARY`, `$GITHUB_OUTPUT`).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { encodeEventLine } from "../../src/core/event_protocol.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { runCli, spawnCli } from "../_helpers/cli.ts";

/** The plan: a Parquet query, a chunked CSV table (three files) and a table that does not exist. */
function planYaml(dir: string): string {
  const exp = (name: string, body: string[]) =>
    [`  - name: ${name}`, ...body.map((line) => `    ${line}`)].join("\n") +
    `\n    destination: { type: local, path: ${dir}/out/${name} }\n`;
  return "source: { type: postgres, url_env: SUMMARIZE_TEST_PG_URL }\nexports:\n" +
    exp("small", ["query: SELECT id, v FROM gh_rows WHERE id <= 3", "format: parquet"]) +
    exp("ck", [
      "table: gh_rows",
      "mode: chunked",
      "chunk_column: id",
      "chunk_size: 20",
      "format: csv",
    ]) +
    exp("missing", ["table: no_such_table", "format: csv"]);
}

Deno.test(
  "summarize-events renders a real run's events: table, totals, failed export, outputs",
  { sanitizeResources: false, sanitizeOps: false },
  async () => {
    await using pg = await startPostgres();
    await pg.psql(
      "CREATE TABLE gh_rows AS SELECT g::int8 AS id, 'row ' || g AS v FROM generate_series(1, 50) g;" +
        "GRANT SELECT ON gh_rows TO rivet_pw;",
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_summarize_" });
    try {
      const { user, password } = pg.passwordUser;
      const config = `${dir}/plan.yaml`;
      await Deno.writeTextFile(config, planYaml(dir));
      const res = await spawnCli(["run", "-c", config, "--events", "ndjson"], {
        env: {
          SUMMARIZE_TEST_PG_URL: `postgresql://${user}:${password}@${pg.host}:${pg.port}/postgres`,
        },
      });
      assert.equal(res.code, 1, res.stderr);
      const events = `${dir}/events.ndjson`;
      await Deno.writeTextFile(events, res.stdout);
      // GitHub's files already hold what earlier steps wrote: rivet appends.
      const summary = `${dir}/step_summary.md`;
      const outputs = `${dir}/github_output`;
      await Deno.writeTextFile(summary, "# earlier step\n");
      await Deno.writeTextFile(outputs, "earlier=1\n");

      const out = await runCli([
        "summarize-events",
        "--events",
        events,
        "--exit-code",
        String(res.code),
        "--summary-out",
        summary,
        "--outputs-out",
        outputs,
      ]);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(out.stdout, "", "with --summary-out nothing goes to stdout");

      const markdown = await Deno.readTextFile(summary);
      assert.ok(markdown.startsWith("# earlier step\n## rivet run\n"), markdown);
      assert.match(markdown, /❌ \*\*config\*\* \(exit code 1\): 3 export\(s\), 1 not successful/);
      assert.match(markdown, /^\| Export \| Status \| Rows \| Files \| Bytes \| Duration \|$/m);
      assert.match(markdown, /^\| small \| success \| 3 \| 1 \| [\d.]+ (B|KiB) \| [\d.]+ m?s \|$/m);
      // 50 rows in chunks of 20: three CSV files.
      assert.match(markdown, /^\| ck \| success \| 50 \| 3 \| [\d.]+ (B|KiB) \| [\d.]+ m?s \|$/m);
      assert.match(markdown, /^\| missing \| failed \| 0 \| 0 \| 0 B \| [\d.]+ m?s \|$/m);
      assert.match(markdown, /^\| \*\*Total\*\* \| \*\*config\*\* \| \*\*53\*\* \| \*\*4\*\* \|/m);
      assert.match(markdown, /### Errors\n\n- missing: .*no\\_such\\_table/);
      assert.ok(!markdown.includes(password), "no secret in the summary");

      const lines = (await Deno.readTextFile(outputs)).trimEnd().split("\n");
      assert.equal(lines[0], "earlier=1");
      const written = Object.fromEntries(lines.slice(1).map((l) => l.split("=", 2)));
      assert.equal(written["exit-code"], "1");
      assert.equal(written["exit-class"], "config");
      assert.equal(written.rows, "53");
      assert.equal(written.files, "4");
      assert.equal(written.exports, "3");
      assert.equal(written.failed, "1");
      assert.ok(Number(written.bytes) > 0);

      // Without --summary-out the Markdown goes to stdout; the stream's exit code is the default.
      const printed = await runCli(["summarize-events", "--events", events]);
      assert.equal(printed.code, 0, printed.stderr);
      assert.match(printed.stdout, /^\| \*\*Total\*\* \| \*\*config\*\* \| \*\*53\*\*/m);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("summarize-events: an unreadable events file and a bad exit code are refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_summarize_" });
  try {
    const missing = await runCli(["summarize-events", "--events", `${dir}/nope.ndjson`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^Error: cannot read the events file .*nope\.ndjson/m);
    assert.match(missing.stderr, /^Hint: pass the file 'rivet run --events ndjson > FILE' wrote/m);

    await Deno.writeTextFile(`${dir}/e.ndjson`, "");
    const bad = await runCli([
      "summarize-events",
      "--events",
      `${dir}/e.ndjson`,
      "--exit-code",
      "x",
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /expected an exit code, 0 to 255/);

    // The summary path is a folder: nothing is half-written, the error says which file.
    const unwritable = await runCli([
      "summarize-events",
      "--events",
      `${dir}/e.ndjson`,
      "--summary-out",
      dir,
    ]);
    assert.equal(unwritable.code, 1);
    assert.match(unwritable.stderr, /^Error: cannot write the summary to /m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("summarize-events reads the stream from stdin when no --events is given", async () => {
  const line = encodeEventLine(
    { type: "run_finished", runId: "r", exitCode: 4, outcomes: [] },
    (text) => text,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", fileURLToPath(new URL("../../cli.ts", import.meta.url))]
      .concat(["summarize-events"]),
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(line));
  await writer.close();
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.match(stdout, /❌ \*\*drift\*\* \(exit code 4\): 0 export\(s\)/);
});
