/**
 * `rivet plan` and `rivet apply` on live PostgreSQL and MariaDB: a chunked plan replays exactly
 * its recorded windows (rows inserted above the planned max after `plan` are not exported by
 * `apply`, while `run` exports them), and editing the YAML after `plan` changes nothing `apply`
 * runs; an incremental plan is refused once its cursor moved (unless `--force`); a changed
 * artifact, an expired one (unless `--force`) and one whose inline credentials were stripped
 * are refused; a 2-hour-old artifact warns; `-o` needs `--format json`; `-e unknown` fails;
 * waves follow `parallel_exports`; the SQL Server test server replays a chunked plan too.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type CliResult, runCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { startMariaDb } from "../_helpers/mariadb_server.ts";
import { manifestIds } from "../_helpers/exported.ts";
import { type PlanArtifact, type PlanBody, sealPlan } from "../../src/pipeline/plan_artifact.ts";

const MARKER = "S3CR3T_M4RK3R_plan";
const HOUR = 3_600_000;

function ok(res: CliResult, what: string): void {
  assert.equal(res.code, 0, `${what}: ${res.stderr}`);
}

async function readArtifact(path: string): Promise<PlanArtifact> {
  return JSON.parse(await Deno.readTextFile(path));
}

/** The artifact's body re-sealed at another time, through the module's own seal. */
async function resealAt(from: string, to: string, at: Date): Promise<void> {
  const {
    format: _f,
    version: _v,
    created_at: _c,
    expires_at: _x,
    integrity: _i,
    ...body
  } = await readArtifact(from);
  await Deno.writeTextFile(to, JSON.stringify(await sealPlan(body as PlanBody, at)));
}

/** `rivet plan -c config [args]... --format json -o out`. */
function planTo(out: string, config: string, ...args: string[]): Promise<CliResult> {
  return runCli([
    "plan",
    "-c",
    config,
    ...args,
    "--format",
    "json",
    "-o",
    out,
  ]);
}

/** Writes `rivet.yaml` into `dir`; returns its path. */
async function writeConfig(dir: string, yaml: string): Promise<string> {
  const path = join(dir, "rivet.yaml");
  await Deno.writeTextFile(path, yaml);
  return path;
}

function ids(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** The servers and the CLI leave resources the sanitizers would flag. */
const LIVE = { sanitizeResources: false, sanitizeOps: false };

Deno.test("rivet plan / apply on PostgreSQL: replay, refusals, secrets, waves", LIVE, async (t) => {
  await using pg = await startPostgres();
  await pg.psql(`
      CREATE TABLE orders (id int8 PRIMARY KEY, note text);
      INSERT INTO orders SELECT g, 'order ' || g FROM generate_series(1, 50) g;
      CREATE TABLE events (id int8 PRIMARY KEY, kind text DEFAULT 'event');
      INSERT INTO events (id) SELECT generate_series(1, 5);
      ALTER ROLE ${pg.passwordUser.user} PASSWORD '${pg.passwordUser.password}${MARKER}';
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${pg.passwordUser.user};
    `);
  const dir = await Deno.makeTempDir({ prefix: "rivet_plan_" });
  Deno.env.set("PLAN_TEST_PG_URL", pg.url);
  const yaml = (opts: { chunkSize: number; ordersOut: string; parallel?: boolean }) =>
    `source:
  type: postgres
  url_env: PLAN_TEST_PG_URL
${opts.parallel ? "parallel_exports: true\n" : ""}exports:
  - name: orders
    table: orders
    mode: chunked
    chunk_column: id
    chunk_size: ${opts.chunkSize}
    format: csv
    destination: { type: local, path: ${opts.ordersOut} }
  - name: events
    table: events
    mode: incremental
    cursor_column: id
    format: csv
    destination: { type: local, path: ${dir}/out/events }
  - name: whole
    query: "SELECT id, note FROM orders WHERE id <= 3"
    format: csv
    destination: { type: local, path: ${dir}/out/whole }
  - name: fromfile
    query_file: pick.sql
    format: csv
    destination: { type: local, path: out/fromfile }
`;
  const config = await writeConfig(
    dir,
    yaml({ chunkSize: 10, ordersOut: join(dir, "out/orders") }),
  );
  const planFile = join(dir, "orders.plan.json");
  await Deno.writeTextFile(
    join(dir, "pick.sql"),
    "SELECT id, note FROM orders WHERE id <= ${MAXID} ORDER BY id",
  );
  try {
    await t.step("an export that cannot run is not planned", async () => {
      const broken = join(dir, "broken.yaml");
      await Deno.writeTextFile(
        broken,
        (await Deno.readTextFile(config)).replace("table: orders", "table: no_such_table"),
      );
      const res = await runCli(["plan", "-c", broken, "-e", "orders", "--format", "json"]);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /no_such_table/);
      assert.equal(res.stdout, "", "no artifact printed");
    });

    await t.step("-o with --format pretty is a usage error; -e unknown fails", async () => {
      const pretty = await runCli(["plan", "-c", config, "-o", planFile]);
      assert.equal(pretty.code, 1, pretty.stderr);
      assert.match(pretty.stderr, /--output requires --format json/);
      await assert.rejects(Deno.stat(planFile));
      const unknown = await runCli(["plan", "-c", config, "-e", "nope"]);
      assert.equal(unknown.code, 1, unknown.stderr);
      assert.match(unknown.stderr, /nope/);
    });

    await t.step("chunked: apply replays the recorded ranges, not the YAML", async () => {
      const plan = await planTo(planFile, config, "-e", "orders");
      ok(plan, "plan");
      const artifact = await readArtifact(planFile);
      assert.equal(artifact.format, "rivet-plan");
      assert.match(artifact.integrity, /^xxh3:[0-9a-f]{16}$/);
      assert.equal(Date.parse(artifact.expires_at) - Date.parse(artifact.created_at), 24 * HOUR);
      const orders = artifact.exports[0]!;
      assert.equal(orders.export_name, "orders");
      assert.equal(orders.computed.chunk_count, 5);
      assert.deepEqual(orders.computed.chunk_ranges[0], { start: "1", end: "10" });
      assert.deepEqual(orders.computed.chunk_ranges[4], { start: "41", end: "50" });
      assert.equal(orders.computed.cursor_snapshot, null);
      // The verdict and recommendations are `rivet check`'s (chunks over the primary key).
      assert.equal(orders.diagnostics.verdict, "EFFICIENT");
      assert.equal(orders.diagnostics.recommended_parallel, 1);
      assert.deepEqual(artifact.waves, [{ wave: 1, exports: ["orders"] }]);
      // Nothing written, no state created.
      await assert.rejects(Deno.stat(join(dir, "out/orders")));
      await assert.rejects(Deno.stat(join(dir, ".rivet_state.db")));

      // After plan: rows above the planned max, and a YAML that now says otherwise.
      await pg.psql("INSERT INTO orders SELECT g, 'late ' || g FROM generate_series(51, 60) g");
      await writeConfig(dir, yaml({ chunkSize: 1000, ordersOut: join(dir, "out/orders_run") }));
      const apply = await runCli(["apply", planFile]);
      ok(apply, "apply");
      const applied = await manifestIds(join(dir, "out/orders"));
      assert.deepEqual(applied.ids, ids(1, 50), "apply exports exactly the planned windows");
      assert.ok(applied.success);
      const manifest = JSON.parse(
        await Deno.readTextFile(join(dir, "out/orders/manifest.json")),
      );
      assert.equal(manifest.parts.length, 5, "one part per recorded window");
      // `run` with the edited YAML plans afresh and sees the late rows.
      const run = await runCli(["run", "-c", config, "-e", "orders"]);
      ok(run, "run");
      assert.deepEqual((await manifestIds(join(dir, "out/orders_run"))).ids, ids(1, 60));
    });

    await t.step("a changed byte of a range is refused", async () => {
      const text = await Deno.readTextFile(planFile);
      const tampered = join(dir, "tampered.json");
      const edited = text.replace('"end": "50"', '"end": "59"');
      assert.notEqual(edited, text);
      await Deno.writeTextFile(tampered, edited);
      const res = await runCli(["apply", tampered]);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /integrity hash/);
      assert.match(res.stderr, /Hint: re-run `rivet plan`/);
    });

    await t.step("age: 2 hours warns, 25 hours is refused unless --force", async () => {
      const old = join(dir, "old.json");
      await resealAt(planFile, old, new Date(Date.now() - 2 * HOUR));
      const warm = await runCli(["apply", old]);
      ok(warm, "2-hour-old apply");
      assert.match(warm.stderr, /Warning: plan [0-9a-f-]+ was created 2 h ago/);

      const expired = join(dir, "expired.json");
      await resealAt(planFile, expired, new Date(Date.now() - 25 * HOUR));
      const refused = await runCli(["apply", expired]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /expired at/);
      assert.match(refused.stderr, /--force/);
      const forced = await runCli(["apply", expired, "--force"]);
      ok(forced, "forced apply");
      assert.match(forced.stderr, /expired at .*applied \(--force\)/);
    });

    await t.step(
      "incremental: a second apply of one artifact is refused (cursor moved)",
      async () => {
        const inc = join(dir, "events.plan.json");
        ok(await planTo(inc, config, "-e", "events"), "plan events");
        const artifact = await readArtifact(inc);
        assert.deepEqual(artifact.exports[0]!.computed.cursor_snapshot, {
          cursor_column: "id",
          last_cursor_value: null,
        });
        ok(await runCli(["apply", inc]), "first apply");
        assert.deepEqual((await manifestIds(join(dir, "out/events"))).ids, ids(1, 5));
        const again = await runCli(["apply", inc]);
        assert.equal(again.code, 1, again.stderr);
        assert.match(again.stderr, /cursor moved/);
        assert.match(
          again.stderr,
          /Hint: another run advanced it from none \(first run\) to '5'/,
        );
        await pg.psql("INSERT INTO events (id) VALUES (6)");
        const forced = await runCli(["apply", inc, "--force"]);
        ok(forced, "forced second apply");
        assert.match(forced.stderr, /running from the current cursor/);
        assert.deepEqual((await manifestIds(join(dir, "out/events"))).ids, [6]);
      },
    );

    await t.step(
      "pretty summary and waves: one per export, or one with parallel_exports",
      async () => {
        const pretty = await runCli(["plan", "-c", config, "-p", "MAXID=3"]);
        ok(pretty, "pretty plan");
        for (
          const text of [
            "export 'orders'",
            "Strategy:        chunked (windows of 1000 on id)",
            "Chunks:          1 (first [1, 60], last [1, 60])",
            "Cursor snapshot: id > 6",
            "Row estimate:",
            "Resources:",
            "batch size",
            "throttle",
            "memory guard",
            "  1: orders\n  2: events\n  3: whole\n  4: fromfile",
          ]
        ) {
          assert.ok(
            pretty.stdout.includes(text),
            `pretty output has '${text}':\n${pretty.stdout}`,
          );
        }
        await writeConfig(
          dir,
          yaml({ chunkSize: 10, ordersOut: join(dir, "out/orders"), parallel: true }),
        );
        const json = await runCli(
          ["plan", "-c", config, "-e", "orders", "-e", "events", "-e", "whole", "--format", "json"],
        );
        ok(json, "json plan");
        const artifact = JSON.parse(json.stdout) as PlanArtifact;
        assert.deepEqual(artifact.waves, [{ wave: 1, exports: ["orders", "events", "whole"] }]);
        assert.deepEqual(artifact.settings, { parallel_exports: true });
        const multi = join(dir, "multi.json");
        await Deno.writeTextFile(multi, json.stdout);
        ok(await runCli(["apply", multi, "--force"]), "multi-export apply");
        assert.deepEqual((await manifestIds(join(dir, "out/whole"))).ids, [1, 2, 3]);
      },
    );

    await t.step(
      "query_file and -p: apply runs the text plan read, from any directory",
      async () => {
        const file = join(dir, "fromfile.json");
        const cwd = Deno.cwd();
        Deno.chdir(dir);
        try {
          ok(await planTo(file, config, "-e", "fromfile", "-p", "MAXID=2"), "plan");
        } finally {
          Deno.chdir(cwd);
        }
        const exp = (await readArtifact(file)).exports[0]!.resolved_plan.export;
        assert.equal(exp.query, "SELECT id, note FROM orders WHERE id <= 2 ORDER BY id");
        assert.equal(exp.query_file, undefined);
        assert.deepEqual(exp.destination, { type: "local", path: join(dir, "out/fromfile") });
        await Deno.writeTextFile(
          join(dir, "pick.sql"),
          "SELECT id, note FROM orders WHERE id > 40",
        );
        ok(await runCli(["apply", file]), "apply");
        assert.deepEqual((await manifestIds(join(dir, "out/fromfile"))).ids, [1, 2]);
      },
    );

    await t.step("inline credentials never reach the artifact; apply refuses it", async () => {
      const secretPassword = pg.passwordUser.password + MARKER;
      const forms = {
        structured: `  host: ${pg.host}
  port: ${pg.port}
  user: ${pg.passwordUser.user}
  password: "${secretPassword}"
  database: postgres`,
        url: `  url: "postgresql://${pg.passwordUser.user}:${
          encodeURIComponent(secretPassword)
        }@${pg.host}:${pg.port}/postgres"`,
      };
      for (const [form, source] of Object.entries(forms)) {
        const inline = join(dir, `inline_${form}.yaml`);
        await Deno.writeTextFile(
          inline,
          `source:
  type: postgres
${source}
exports:
  - name: orders
    table: orders
    format: csv
    destination: { type: local, path: ${dir}/out/inline }
`,
        );
        const file = join(dir, `inline_${form}.json`);
        const plan = await planTo(file, inline);
        ok(plan, `plan ${form}`);
        const text = await Deno.readTextFile(file);
        assert.ok(!text.includes(MARKER), `${form}: no password in the artifact`);
        assert.ok(!text.includes(encodeURIComponent(secretPassword)));
        if (form === "url") assert.match(text, /postgresql:\/\/REDACTED@/);
        const res = await runCli(["apply", file]);
        assert.equal(res.code, 1, res.stderr);
        assert.match(res.stderr, /source credentials \(source\.(password|url)\)/);
        assert.match(res.stderr, /Hint: give the connection as source\.url_env/);
        assert.ok(!res.stderr.includes(MARKER));
        await assert.rejects(Deno.stat(join(dir, "out/inline")), "nothing was exported");
      }
    });
  } finally {
    Deno.env.delete("PLAN_TEST_PG_URL");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test(
  "rivet plan / apply on MariaDB: a chunked plan replays its ranges only",
  LIVE,
  async () => {
    await using db = await startMariaDb();
    await db.sql(
      `CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(20));
      INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_30;`,
      { database: "rivet" },
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_plan_my_" });
    Deno.env.set("PLAN_TEST_MY_URL", db.url);
    try {
      const config = await writeConfig(
        dir,
        `source:
  type: mysql
  url_env: PLAN_TEST_MY_URL
exports:
  - name: items
    table: items
    mode: chunked
    chunk_column: id
    chunk_count: 3
    chunk_checkpoint: true
    format: parquet
    destination: { type: local, path: ${dir}/out/items }
`,
      );
      const file = join(dir, "items.json");
      ok(await planTo(file, config), "plan");
      const artifact = await readArtifact(file);
      assert.deepEqual(
        artifact.exports[0]!.computed.chunk_ranges,
        [{ start: "1", end: "10" }, { start: "11", end: "20" }, { start: "21", end: "30" }],
      );
      await db.sql("INSERT INTO items SELECT seq, 'late' FROM seq_31_to_40", {
        database: "rivet",
      });
      const apply = await runCli(["apply", file]);
      ok(apply, "apply");
      assert.ok(!apply.stderr.includes(db.password));
      const out = await manifestIds(join(dir, "out/items"));
      assert.deepEqual(out.ids, ids(1, 30));
      assert.ok(out.success);
    } finally {
      Deno.env.delete("PLAN_TEST_MY_URL");
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("rivet plan / apply on SQL Server (TDS test server): chunked replay", LIVE, async () => {
  const { startTdsServer } = await import("../_helpers/tds_server.ts");
  await using server = await startTdsServer();
  const values = (from: number, to: number) => ids(from, to).map((i) => `(${i}, N'n${i}')`);
  await server.sql(
    `CREATE TABLE parts (id bigint NOT NULL PRIMARY KEY, label nvarchar(20) NULL);
    INSERT INTO parts (id, label) VALUES ${values(1, 25).join(", ")};`,
  );
  const dir = await Deno.makeTempDir({ prefix: "rivet_plan_ms_" });
  Deno.env.set(
    "PLAN_TEST_MS_URL",
    `sqlserver://${encodeURIComponent(server.login.user)}:${
      encodeURIComponent(server.login.password)
    }@127.0.0.1:${server.port}/${server.database}`,
  );
  try {
    const config = await writeConfig(
      dir,
      `source: { type: mssql, url_env: PLAN_TEST_MS_URL }
exports:
  - { name: parts, table: parts, mode: chunked, chunk_column: id, chunk_size: 10,
      format: csv, destination: { type: local, path: ${dir}/out/parts } }
`,
    );
    const file = join(dir, "parts.json");
    ok(await planTo(file, config), "plan");
    assert.deepEqual(
      (await readArtifact(file)).exports[0]!.computed.chunk_ranges,
      [{ start: "1", end: "10" }, { start: "11", end: "20" }, { start: "21", end: "25" }],
    );
    await server.sql(`INSERT INTO parts (id, label) VALUES ${values(26, 30).join(", ")};`);
    ok(await runCli(["apply", file]), "apply");
    assert.deepEqual((await manifestIds(join(dir, "out/parts"))).ids, ids(1, 25));
  } finally {
    Deno.env.delete("PLAN_TEST_MS_URL");
    await Deno.remove(dir, { recursive: true });
  }
});
