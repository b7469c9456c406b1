/**
 * `rivet validate` against what crashed runs leave, from real `rivet run` processes on a live
 * PostgreSQL:
 *
 * - a folder with this export's data files but no `manifest.json` (the first run crashed after
 *   committing a part) is a crashed export: FAILED, the files listed, exit 3;
 * - a folder with no file of this export (empty, or only other files) has nothing to validate:
 *   NO MANIFEST, exit 0, as the Rust tool does for output without a manifest;
 * - next to a valid manifest, a data file of this export that no manifest lists and no
 *   successful run recorded (a later run crashed) fails with exit 3 and is named, while the files
 *   of an earlier successful run stay an advisory note; without the state file (validate run
 *   from a copy of the config elsewhere) the file names' stamps decide: files newer than the
 *   manifest's run are failures, older ones advisory.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, spawnCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";

interface JsonReport {
  export: string;
  status: string;
  problems: { code: string; message: string }[];
  notes: string[];
  extra_objects: string[];
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

const pause = () => new Promise((r) => setTimeout(r, 1100));

Deno.test({
  name: "rivet validate fails (exit 3) on a crashed export's files, listed in no manifest",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await pg.psql(
      "CREATE TABLE t AS SELECT i::int8 AS id, md5(i::text) AS s FROM generate_series(1, 3000) i;",
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_validate_left_" });
    Deno.env.set("VALIDATE_LEFT_PG_URL", pg.url);
    try {
      const plan = (out: string) =>
        `source:
  type: postgres
  url_env: VALIDATE_LEFT_PG_URL
exports:
  - name: orders
    table: t
    format: csv
    max_file_size: 40KB
    tuning: { batch_size: 500 }
    destination: { type: local, path: ${out} }
`;
      const cfg = join(dir, "plan.yaml");
      const out = join(dir, "out");
      await Deno.writeTextFile(cfg, plan(out));
      const env = { VALIDATE_LEFT_PG_URL: pg.url };
      const crash = () =>
        spawnCli(["run", "-c", cfg, "-e", "orders"], {
          env: { ...env, RIVET_TEST_CRASH_AT: "after_file_write" },
        });
      const validate = async (config = cfg, prefix?: string) => {
        const args = ["validate", "-c", config, "--format", "json"];
        const res = await runCli(prefix === undefined ? args : [...args, "--prefix", prefix]);
        return { code: res.code, report: (JSON.parse(res.stdout) as JsonReport[])[0]!, res };
      };

      await t.step("an empty folder, or one without this export's files: exit 0", async () => {
        const empty = join(dir, "empty");
        await Deno.mkdir(empty);
        const none = await runCli(["validate", "-c", cfg, "--prefix", empty]);
        assert.equal(none.code, 0, none.stdout);
        assert.match(none.stdout, /status: {4}NO MANIFEST\n/);
        assert.match(none.stdout, /note: the destination holds no objects/);
        await Deno.writeTextFile(join(empty, "README.txt"), "not rivet's\n");
        await Deno.writeTextFile(join(empty, "orders_notes.csv"), "id\n1\n");
        const others = await validate(cfg, empty);
        assert.equal(others.code, 0, others.res.stdout);
        assert.equal(others.report.status, "no_manifest");
        assert.deepEqual(others.report.problems, []);
      });

      await t.step("a first run that crashed: its files without a manifest fail", async () => {
        const crashed = await crash();
        assert.equal(crashed.code, 86, crashed.stderr);
        const files = (await names(out)).filter((n) => n.startsWith("orders_"));
        assert.equal(files.length, 1, `one committed part: ${files}`);
        const pretty = await runCli(["validate", "-c", cfg]);
        assert.equal(pretty.code, 3, pretty.stdout);
        assert.match(pretty.stdout, /status: {4}FAILED\n/);
        assert.match(
          pretty.stdout,
          new RegExp(
            `problem: no manifest.json, but 1 data file\\(s\\) of export 'orders' are here ` +
              `\\(a run that did not finish\\?\\): ${files[0]}`,
          ),
        );
        const json = await validate();
        assert.equal(json.report.status, "failed");
        assert.deepEqual(json.report.problems.map((p) => p.code), ["run.no_manifest"]);
        for (const f of files) await Deno.remove(join(out, f));
      });

      const ours = async () => (await names(out)).filter((n) => n.startsWith("orders_"));
      await pause();
      const first = await spawnCli(["run", "-c", cfg, "-e", "orders"], { env });
      assert.equal(first.code, 0, first.stderr);
      const firstFiles = await ours();
      await pause();
      const second = await spawnCli(["run", "-c", cfg, "-e", "orders"], { env });
      assert.equal(second.code, 0, second.stderr);
      const bothRuns = await ours();
      await pause();
      assert.equal((await crash()).code, 86);
      const crashedFiles = (await ours()).filter((n) => !bothRuns.includes(n));
      assert.equal(crashedFiles.length, 1, "the crashed run committed one part");
      const orphan = crashedFiles[0]!;

      await t.step(
        "next to a valid manifest, a crashed run's file fails; older runs' do not",
        async () => {
          const { code, report, res } = await validate();
          assert.equal(code, 3, res.stdout);
          assert.equal(report.status, "failed");
          assert.deepEqual(report.problems.map((p) => p.code), ["object.unlisted"]);
          assert.match(report.problems[0]!.message, new RegExp(orphan));
          for (const f of firstFiles) {
            assert.ok(!report.problems[0]!.message.includes(f), f);
            assert.ok(report.extra_objects.includes(f), `advisory: ${f}`);
          }
          const pretty = await runCli(["validate", "-c", cfg]);
          assert.equal(pretty.code, 3);
          assert.match(pretty.stdout, new RegExp(`problem: [^\\n]*${orphan}`));
        },
      );

      await t.step("without the state file, the stamps decide", async () => {
        const elsewhere = join(dir, "elsewhere");
        await Deno.mkdir(elsewhere);
        const copy = join(elsewhere, "plan.yaml");
        await Deno.writeTextFile(copy, plan(out));
        const { code, report, res } = await validate(copy);
        assert.equal(code, 3, res.stdout);
        assert.deepEqual(report.problems.map((p) => p.code), ["object.unlisted"]);
        assert.match(report.problems[0]!.message, new RegExp(orphan));
        for (const f of firstFiles) assert.ok(report.extra_objects.includes(f), f);
        assert.deepEqual(await names(elsewhere), ["plan.yaml"], "no state file created");
      });

      await t.step("once the crashed file is moved aside, validate passes", async () => {
        await Deno.mkdir(join(out, "_quarantine/manual"), { recursive: true });
        await Deno.rename(join(out, orphan), join(out, "_quarantine/manual", orphan));
        const { code, report, res } = await validate();
        assert.equal(code, 0, res.stdout);
        assert.equal(report.status, "passed");
      });
    } finally {
      Deno.env.delete("VALIDATE_LEFT_PG_URL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
