/**
 * `rivet run --events ndjson`: every run event as one JSON line on stdout, framed by run_started
 * and run_finished, read back with the same parser an orchestrator uses; and the refusals when
 * stdout is already taken.
 */
import assert from "node:assert/strict";
import type { Outcome, RivetEvent } from "../../src/core/events.ts";
import { parseNdjsonEvents } from "../../src/core/event_protocol.ts";
import { stateDbPath } from "../../src/state/mod.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { runCli, spawnCli } from "../_helpers/cli.ts";

function parseStrict(stdout: string): RivetEvent[] {
  return parseNdjsonEvents(stdout, {
    onInvalidLine: (bad) => assert.fail(`line ${bad.lineNumber} (${bad.reason}): ${bad.line}`),
  });
}

function exportName(e: RivetEvent): string | undefined {
  if (e.type === "export_finished") return e.outcome.export;
  return "export" in e ? e.export : undefined;
}

Deno.test({
  name:
    "rivet run --events ndjson streams the run's events on stdout, one finished event per export",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using pg = await startPostgres();
    await pg.psql(`
      CREATE TABLE small (id int8 PRIMARY KEY, v text);
      INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 3) g;
      CREATE TABLE ck (id int8 PRIMARY KEY, v text);
      INSERT INTO ck SELECT g, 'row ' || g FROM generate_series(1, 50) g;
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO rivet_pw;
    `);
    const dir = await Deno.makeTempDir({ prefix: "rivet_events_" });
    try {
      const { user, password } = pg.passwordUser;
      const url = `postgresql://${user}:${password}@${pg.host}:${pg.port}/postgres`;
      const config = `${dir}/plan.yaml`;
      await Deno.writeTextFile(
        config,
        `source:
  type: postgres
  url_env: EVENTS_TEST_PG_URL
exports:
  - name: small
    table: small
    format: parquet
    destination: { type: local, path: ${dir}/out/small }
  - name: ck
    table: ck
    mode: chunked
    chunk_column: id
    chunk_size: 20
    format: csv
    destination: { type: local, path: ${dir}/out/ck }
  - name: missing
    table: no_such_table
    format: csv
    destination: { type: local, path: ${dir}/out/missing }
`,
      );
      const res = await spawnCli(["run", "-c", config, "--events", "ndjson"], {
        env: { EVENTS_TEST_PG_URL: url },
      });
      assert.equal(res.code, 1, res.stderr);
      assert.ok(!res.stdout.includes(password) && !res.stderr.includes(password));

      const events = parseStrict(res.stdout);
      assert.ok(res.stdout.endsWith("\n"));
      // On the wire: type and ts first, snake_case names as in --json (export_name, run_id, ...).
      for (const line of res.stdout.trimEnd().split("\n")) {
        const keys = [...line.matchAll(/"([^"\\]+)":/g)].map((m) => m[1]!);
        assert.deepEqual(keys.slice(0, 2), ["type", "ts"], line);
        assert.match(JSON.parse(line).ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, line);
        for (const key of keys) assert.ok(!/[A-Z]/.test(key) && key !== "export", line);
      }
      assert.ok(events.every((e) => e.ts !== undefined));
      const first = events[0]!;
      const last = events.at(-1)!;
      assert.equal(first.type, "run_started");
      assert.equal(last.type, "run_finished");
      if (first.type !== "run_started" || last.type !== "run_finished") return;
      assert.deepEqual(first.exports, ["small", "ck", "missing"]);
      assert.equal(last.runId, first.runId);
      assert.equal(last.exitCode, res.code);
      assert.equal(events.filter((e) => e.type === "run_started").length, 1);
      assert.equal(events.filter((e) => e.type === "run_finished").length, 1);

      const finished = new Map<string, Outcome>();
      for (const name of ["small", "ck", "missing"]) {
        const own = events.filter((e) => exportName(e) === name);
        assert.equal(own[0]?.type, "export_started", `${name} starts first`);
        const ends = own.filter((e) => e.type === "export_finished");
        assert.equal(ends.length, 1, `${name}: exactly one export_finished`);
        assert.equal(own.at(-1)?.type, "export_finished", `${name} ends with export_finished`);
        const end = ends[0]!;
        if (end.type === "export_finished") finished.set(name, end.outcome);
      }
      assert.equal(finished.get("small")?.status, "success");
      assert.equal(finished.get("small")?.rows, 3);
      assert.equal(finished.get("ck")?.status, "success");
      assert.equal(finished.get("ck")?.rows, 50);
      assert.equal(finished.get("missing")?.status, "failed");
      assert.match(finished.get("missing")?.error?.message ?? "", /no_such_table/);
      assert.deepEqual(last.outcomes.map((o) => [o.export, o.status]), [
        ["small", "success"],
        ["ck", "success"],
        ["missing", "failed"],
      ]);
      // Rows read add up to what each export reports.
      const rowsRead = (name: string) =>
        events.reduce((s, e) => s + (e.type === "batch_read" && e.export === name ? e.rows : 0), 0);
      assert.equal(rowsRead("small"), 3);
      assert.equal(rowsRead("ck"), 50);

      // stderr still has the renderer's plain lines and the summary blocks.
      assert.match(res.stderr, /^\d{4}-\d\d-\d\dT[\d:.]+Z small: started \(full\)$/m);
      assert.match(res.stderr, /^✓ small: success$/m);
      assert.match(res.stderr, /^✗ missing: failed$/m);
      assert.match(res.stderr, /^Error: export 'missing': /m);
      assert.ok(!res.stderr.includes("\x1b["), "no terminal escapes without a terminal");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

async function offlineConfig(destination: string): Promise<{ dir: string; config: string }> {
  const dir = await Deno.makeTempDir({ prefix: "rivet_events_cli_" });
  const config = `${dir}/plan.yaml`;
  await Deno.writeTextFile(
    config,
    `source:
  type: postgres
  url: postgresql://u@127.0.0.1:9/db
exports:
  - name: orders
    table: orders
    format: csv
    destination: ${destination}
`,
  );
  return { dir, config };
}

Deno.test("--events ndjson is refused with --json and with a stdout destination", async () => {
  const local = await offlineConfig("{ type: local, path: ./out }");
  const piped = await offlineConfig("{ type: stdout }");
  try {
    const withJson = await runCli(["run", "-c", local.config, "--events", "ndjson", "--json"]);
    assert.equal(withJson.code, 1, withJson.stderr);
    assert.match(withJson.stderr, /^Error: --events ndjson cannot be combined with --json/m);
    assert.match(withJson.stderr, /^Hint: .*--summary-output/m);
    assert.equal(withJson.stdout, "");

    const withStdout = await runCli(["run", "-c", piped.config, "--events", "ndjson"]);
    assert.equal(withStdout.code, 1, withStdout.stderr);
    assert.match(
      withStdout.stderr,
      /^Error: --events ndjson cannot be combined with export 'orders'/m,
    );
    assert.match(withStdout.stderr, /^Hint: /m);
    assert.equal(withStdout.stdout, "");
  } finally {
    await Deno.remove(local.dir, { recursive: true });
    await Deno.remove(piped.dir, { recursive: true });
  }
});

Deno.test("--events with a format other than ndjson is a usage error", async () => {
  const { dir, config } = await offlineConfig("{ type: local, path: ./out }");
  try {
    for (const format of ["json", "NDJSON", ""]) {
      const res = await runCli(["run", "-c", config, "--events", format]);
      assert.equal(res.code, 2, `${format}: ${res.stderr}`);
      assert.ok(!/^Error:/m.test(res.stderr), res.stderr);
      assert.match(res.stderr, /ndjson/);
      assert.equal(res.stdout, "");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a run that fails after run_started still ends its stream with run_finished", async () => {
  const { dir, config } = await offlineConfig("{ type: local, path: ./out }");
  try {
    // A corrupt state file stops the run before any export starts.
    await Deno.writeFile(stateDbPath(dir), crypto.getRandomValues(new Uint8Array(8192)));
    const res = await runCli(["run", "-c", config, "--events", "ndjson"]);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /^Error: State file '.*' is corrupt/m);
    const events = parseStrict(res.stdout);
    assert.deepEqual(events.map((e) => e.type), ["run_started", "run_finished"]);
    const [started, finished] = events;
    assert.ok(started?.type === "run_started" && finished?.type === "run_finished");
    assert.equal(finished.runId, started.runId);
    assert.equal(finished.exitCode, 1);
    assert.deepEqual(finished.outcomes, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("without --events nothing is written on stdout", async () => {
  const { dir, config } = await offlineConfig("{ type: local, path: ./out }");
  try {
    await Deno.writeFile(stateDbPath(dir), crypto.getRandomValues(new Uint8Array(8192)));
    const res = await runCli(["run", "-c", config]);
    assert.equal(res.code, 1, res.stderr);
    assert.equal(res.stdout, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
