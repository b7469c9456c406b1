/**
 * `--json` on the inspection commands (`state show|files|chunks|progression`, `metrics`,
 * `journal`): one JSON document each, `{"<key>": [...]}`, whose field names match
 * `rivet run --json` where the same fact appears; empty arrays (exit 0) before any run; errors
 * stay on stderr. The state is made by real runs against a throwaway PostgreSQL.
 */
import assert from "node:assert/strict";
import { runCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { stateDbPath } from "../../src/state/mod.ts";

const isoUtc = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

type Json = Record<string, unknown>;

/** Writes a config as JSON (which is YAML) and returns its path. */
async function writeConfig(dir: string, config: Json): Promise<string> {
  const path = `${dir}/plan.yaml`;
  await Deno.writeTextFile(path, JSON.stringify(config, null, 2));
  return path;
}

/** Runs a command that must succeed with one JSON document holding exactly `key`. */
async function jsonOf(args: string[], key: string): Promise<Json[]> {
  const res = await runCli(args);
  assert.equal(res.code, 0, res.stderr);
  const doc = JSON.parse(res.stdout) as Json;
  assert.deepEqual(Object.keys(doc), [key], res.stdout);
  assert.ok(Array.isArray(doc[key]), res.stdout);
  return doc[key] as Json[];
}

Deno.test({
  name: "--json of state, metrics and journal after real runs: one document each, run --json names",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using pg = await startPostgres();
    await pg.psql(`
      CREATE TABLE ev (id int8 PRIMARY KEY, updated_at timestamptz NOT NULL, v text);
      INSERT INTO ev SELECT g, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 hour',
        'v' || g FROM generate_series(1, 40) g;
    `);
    const dir = await Deno.makeTempDir({ prefix: "rivet_json_out_" });
    try {
      const local = (name: string) => ({ type: "local", path: `${dir}/out/${name}` });
      const config = await writeConfig(dir, {
        source: { type: "postgres", url_env: "JSON_OUT_PG_URL" },
        exports: [
          {
            name: "inc",
            table: "ev",
            mode: "incremental",
            cursor_column: "updated_at",
            format: "parquet",
            destination: local("inc"),
          },
          {
            name: "ck",
            table: "ev",
            mode: "chunked",
            chunk_column: "id",
            chunk_size: 15,
            chunk_checkpoint: true,
            format: "csv",
            destination: local("ck"),
          },
        ],
      });
      Deno.env.set("JSON_OUT_PG_URL", pg.url);
      const run = await runCli(["run", "-c", config, "--json"]);
      assert.equal(run.code, 0, run.stderr);
      const summary = JSON.parse(run.stdout) as { per_export: Json[] };
      const ran = new Map(summary.per_export.map((p) => [p.export_name as string, p]));

      const cursors = await jsonOf(["state", "show", "-c", config, "--json"], "cursors");
      assert.deepEqual(cursors.map((c) => Object.keys(c).sort()), [
        ["config_identity", "export_name", "last_cursor_value", "last_run_at"],
      ]);
      assert.equal(cursors[0]!.export_name, "inc");
      assert.match(String(cursors[0]!.config_identity), /^[0-9a-f]{16}$/);
      assert.match(String(cursors[0]!.last_cursor_value), /^2026-01-02/);
      assert.match(String(cursors[0]!.last_run_at), isoUtc);

      const files = await jsonOf(["state", "files", "-c", config, "--json"], "files");
      assert.ok(files.length >= 4, JSON.stringify(files));
      for (const f of files) {
        assert.equal(typeof f.rows, "number");
        assert.equal(typeof f.bytes, "number");
        assert.match(String(f.created_at), isoUtc);
        assert.equal(f.status, "committed");
        assert.ok("chunk_index" in f && "content_fingerprint" in f, JSON.stringify(f));
      }
      for (const [name, p] of ran) {
        const own = files.filter((f) => f.export_name === name);
        assert.ok(own.every((f) => f.run_id === p.run_id), `${name}: run ids`);
        assert.equal(own.reduce((s, f) => s + (f.rows as number), 0), p.rows, `${name}: rows`);
        assert.equal(own.length, p.files, `${name}: files`);
      }
      const inc = await jsonOf(["state", "files", "-c", config, "-e", "inc", "--json"], "files");
      assert.deepEqual(inc.map((f) => f.export_name), ["inc"]);

      const chunkRuns = await jsonOf(
        ["state", "chunks", "-c", config, "-e", "ck", "--json"],
        "chunk_runs",
      );
      assert.equal(chunkRuns.length, 1);
      const ck = chunkRuns[0]!;
      assert.equal(ck.run_id, ran.get("ck")!.run_id);
      assert.equal(ck.status, "completed");
      assert.deepEqual(ck.task_counts, {
        total: 3,
        completed: 3,
        failed: 0,
        running: 0,
        pending: 0,
      });
      const tasks = ck.tasks as Json[];
      assert.deepEqual(tasks.map((t) => t.chunk_index), [0, 1, 2]);
      assert.equal(tasks.reduce((s, t) => s + (t.rows as number), 0), 40);
      assert.equal(typeof tasks[0]!.start_key, "string", "bounds stay strings");
      assert.equal(tasks[0]!.last_error, null, "an unrecorded fact is null, not missing");
      assert.equal(typeof tasks[0]!.host, "string", "who claimed the task");
      assert.equal(typeof tasks[0]!.pid, "number");

      const progression = await jsonOf(
        ["state", "progression", "-c", config, "--json"],
        "progression",
      );
      // Only checkpointed chunked runs record a progression in this release.
      assert.deepEqual(progression.map((p) => p.export_name), ["ck"]);
      const committed = progression[0]!.committed as Json;
      assert.equal(committed.strategy, "chunked");
      assert.equal(committed.run_id, ran.get("ck")!.run_id);
      assert.equal(committed.chunk_index, 2);
      assert.equal(committed.cursor, null);
      assert.match(String(committed.at), isoUtc);
      assert.equal(progression[0]!.verified, null);

      const runs = await jsonOf(["metrics", "-c", config, "--json"], "runs");
      assert.equal(runs.length, 2);
      for (const m of runs) {
        const p = ran.get(m.export_name as string)!;
        // The facts `rivet run --json` reports carry the same names and values here.
        for (const key of ["run_id", "status", "rows", "files", "bytes", "mode"]) {
          assert.deepEqual(m[key], p[key], `${m.export_name}: ${key}`);
        }
        assert.equal(typeof m.duration_ms, "number");
        assert.equal(m.error_message, null);
        assert.match(String(m.run_at), isoUtc);
      }

      const journals = await jsonOf(["journal", "-c", config, "-e", "ck", "--json"], "journals");
      assert.equal(journals.length, 1);
      const j = journals[0]!;
      for (const key of ["run_id", "status", "rows", "files", "bytes", "mode"]) {
        assert.deepEqual(j[key], ran.get("ck")![key], `journal ${key}`);
      }
      const written = (j.events as Json[]).filter((e) => e.event === "file_written");
      assert.equal(written.length, 3);
      assert.match(String(written[0]!.at), isoUtc);

      // The human forms are unchanged.
      const table = await runCli(["metrics", "-c", config]);
      assert.match(table.stdout, /^EXPORT +STATUS +ROWS/);
    } finally {
      Deno.env.delete("JSON_OUT_PG_URL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

async function offlineConfig(): Promise<{ dir: string; config: string }> {
  const dir = await Deno.makeTempDir({ prefix: "rivet_json_empty_" });
  const config = await writeConfig(dir, {
    source: { type: "postgres", url: "postgresql://u@127.0.0.1:9/db" },
    exports: [{
      name: "orders",
      table: "orders",
      format: "csv",
      destination: { type: "local", path: "./out" },
    }],
  });
  return { dir, config };
}

const commands: [string[], string][] = [
  [["state", "show"], "cursors"],
  [["state", "files"], "files"],
  [["state", "chunks", "-e", "orders"], "chunk_runs"],
  [["state", "progression"], "progression"],
  [["metrics"], "runs"],
  [["journal", "-e", "orders"], "journals"],
];

Deno.test("--json before any run prints empty arrays, exits 0 and creates no state file", async () => {
  const { dir, config } = await offlineConfig();
  try {
    for (const [cmd, key] of commands) {
      const res = await runCli([...cmd, "-c", config, "--json"]);
      assert.equal(res.code, 0, `${cmd.join(" ")}: ${res.stderr}`);
      assert.deepEqual(JSON.parse(res.stdout), { [key]: [] }, cmd.join(" "));
    }
    await assert.rejects(Deno.lstat(stateDbPath(dir)), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--json errors stay on stderr (as JSON with --json-errors), stdout stays empty", async () => {
  const { dir, config } = await offlineConfig();
  try {
    // Every command that takes -e (state show has none).
    for (const [cmd] of commands.slice(1)) {
      const args = [...cmd.filter((a) => a !== "-e" && a !== "orders"), "-c", config, "--json"];
      const res = await runCli([...args, "-e", "nope"]);
      assert.equal(res.code, 1, `${cmd.join(" ")}: ${res.stderr}`);
      assert.equal(res.stdout, "", cmd.join(" "));
      assert.match(res.stderr, /^Error: .*'nope'/m);
      const asJson = await runCli([...args, "-e", "nope", "--json-errors"]);
      assert.equal(asJson.code, 1);
      assert.equal(asJson.stdout, "");
      const err = JSON.parse(asJson.stderr) as { error: string; exit_class: number };
      assert.match(err.error, /nope/);
      assert.equal(err.exit_class, 1);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
