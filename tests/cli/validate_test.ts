/**
 * `rivet validate` against the real output of `rivet run` on a live PostgreSQL: the clean run
 * passes, then each corruption of a copy of the output (checked with `--prefix`) is caught with
 * exit 3: a missing part, a size change, a flipped byte of the same size, an edited or missing
 * `_SUCCESS`, an inconsistent manifest; a folder without manifest is a crashed export (exit 3)
 * when it holds the export's data files, else legacy (exit 0) unless it holds `_SUCCESS`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { MANIFEST_KEY, SUCCESS_KEY, successBody } from "../../src/pipeline/manifest.ts";

const MARKER = "S3CR3T_M4RK3R_validate";

interface ManifestDoc {
  run_id: string;
  status: string;
  row_count: number;
  part_count: number;
  parts: { part_id: number; path: string; size_bytes: number; rows: number }[];
}

interface JsonReport {
  export: string;
  uri: string;
  status: string;
  manifest: string;
  success_marker: string;
  parts_total: number;
  parts_verified: number;
  content_verified: boolean;
  row_count: number | null;
  problems: { code: string; message: string }[];
  notes: string[];
  extra_objects: string[];
  extra_object_count: number;
}

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.isFile) await Deno.copyFile(join(from, entry.name), join(to, entry.name));
  }
}

async function readManifest(dir: string): Promise<ManifestDoc> {
  return JSON.parse(await Deno.readTextFile(join(dir, MANIFEST_KEY)));
}

/** Rewrites manifest.json and a matching _SUCCESS, so only the manifest's content is wrong. */
async function rewriteManifest(dir: string, edit: (m: ManifestDoc) => void): Promise<void> {
  const doc = await readManifest(dir);
  edit(doc);
  const bytes = new TextEncoder().encode(JSON.stringify(doc, null, 2));
  await Deno.writeFile(join(dir, MANIFEST_KEY), bytes);
  await Deno.writeFile(join(dir, SUCCESS_KEY), await successBody(bytes));
}

function assertNoSecret(res: { stdout: string; stderr: string }): void {
  assert.ok(!res.stdout.includes(MARKER) && !res.stderr.includes(MARKER), "no secret printed");
}

Deno.test({
  name: "rivet validate passes a real run and catches every corruption of its output with exit 3",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await pg.psql(`
      CREATE TABLE orders (id int8 PRIMARY KEY, customer text, amount numeric(10,2));
      INSERT INTO orders SELECT g, 'customer ' || g, g * 1.25 FROM generate_series(1, 6000) g;
      CREATE TABLE users (id int8 PRIMARY KEY, name text);
      INSERT INTO users SELECT g, 'user ' || g FROM generate_series(1, 40) g;
      ALTER ROLE rivet_pw PASSWORD '${pg.passwordUser.password}${MARKER}';
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO rivet_pw;
    `);
    const dir = await Deno.makeTempDir({ prefix: "rivet_validate_" });
    const url = `postgresql://${pg.passwordUser.user}:${
      encodeURIComponent(pg.passwordUser.password + MARKER)
    }@${pg.host}:${pg.port}/postgres`;
    Deno.env.set("VALIDATE_TEST_PG_URL", url);
    try {
      // `rivet run` does not take `verify: content` yet; validate reads it from a twin config.
      const plan = (usersVerify: string) =>
        `source:
  type: postgres
  url_env: VALIDATE_TEST_PG_URL
exports:
  - name: orders
    table: orders
    format: csv
    max_file_size: 40KB
    tuning: { batch_size: 500 }
    destination: { type: local, path: ${dir}/out/orders }
  - name: users
    table: users
    format: parquet
    verify: ${usersVerify}
    destination: { type: local, path: ${dir}/out/users }
  - name: dated
    table: users
    format: csv
    destination: { type: local, path: "${dir}/out/dated/{date}" }
  - name: never
    table: users
    format: csv
    destination: { type: local, path: ${dir}/out/never }
  - name: piped
    table: users
    format: csv
    destination: { type: stdout }
`;
      const config = join(dir, "plan.yaml");
      await Deno.writeTextFile(config, plan("size"));
      const contentConfig = join(dir, "plan_content.yaml");
      await Deno.writeTextFile(contentConfig, plan("content"));
      const run = await runCli(["run", "-c", config, "-e", "orders", "-e", "users", "-e", "dated"]);
      assert.equal(run.code, 0, run.stderr);
      const orders = join(dir, "out/orders");
      const manifest = await readManifest(orders);
      assert.ok(manifest.parts.length >= 3, `several parts, got ${manifest.parts.length}`);
      const partPath = (i: number) => join(orders, manifest.parts[i]!.path);

      /** Validates a corrupted copy of the orders output through --prefix. */
      const corrupt = async (name: string, damage: (copy: string) => Promise<void>) => {
        const copy = join(dir, "cases", name);
        await copyDir(orders, copy);
        await damage(copy);
        return await runCli(["validate", "-c", config, "-e", "orders", "--prefix", copy]);
      };
      const copyPart = (copy: string, i: number) => join(copy, manifest.parts[i]!.path);

      await t.step(
        "the clean output passes; never-run, stdout and other days are labelled",
        async () => {
          const res = await runCli(["validate", "-c", config]);
          assertNoSecret(res);
          assert.equal(res.code, 0, res.stdout + res.stderr);
          const n = manifest.parts.length;
          assert.ok(
            res.stdout.includes(
              `orders: file://${orders}\n  status:    PASSED\n` +
                `  parts:     ${n}/${n} verified (size and xxh3 content)\n` +
                `  _SUCCESS:  consistent\n` +
                `  manifest:  self-consistent (run ${manifest.run_id}, success, 6000 rows)\n`,
            ),
            res.stdout,
          );
          const today = new Date().toISOString().slice(0, 10);
          assert.match(
            res.stdout,
            new RegExp(`dated: file://${dir}/out/dated/${today}\n  status:    PASSED`),
          );
          assert.match(
            res.stdout,
            /never: file:\S+\/out\/never\n {2}status: {4}NO MANIFEST\n {2}note: the destination folder does not exist/,
          );
          assert.match(
            res.stdout,
            /piped: stdout\n {2}status: {4}SKIPPED\n {2}note: stdout destination/,
          );
          assert.match(res.stdout, /validate: 3 passed, 1 no manifest, 1 skipped\n$/);
          await assert.rejects(Deno.lstat(join(dir, "out/never")), Deno.errors.NotFound);

          const otherDay = await runCli([
            "validate",
            "-c",
            config,
            "-e",
            "dated",
            "--date",
            "2001-02-03",
          ]);
          assert.equal(otherDay.code, 0);
          assert.match(otherDay.stdout, /out\/dated\/2001-02-03\n {2}status: {4}NO MANIFEST/);
          await assert.rejects(Deno.lstat(join(dir, "out/dated/2001-02-03")), Deno.errors.NotFound);
        },
      );

      await t.step("the JSON report parses, and -o writes it only with --format json", async () => {
        const res = await runCli(["validate", "-c", config, "--format", "json"]);
        assert.equal(res.code, 0, res.stderr);
        const reports = JSON.parse(res.stdout) as JsonReport[];
        assert.deepEqual(reports.map((r) => [r.export, r.status]), [
          ["orders", "passed"],
          ["users", "passed"],
          ["dated", "passed"],
          ["never", "no_manifest"],
          ["piped", "skipped"],
        ]);
        const o = reports[0]!;
        assert.equal(o.uri, `file://${orders}`);
        assert.equal(o.parts_total, manifest.parts.length);
        assert.equal(o.parts_verified, manifest.parts.length);
        assert.equal(o.content_verified, true);
        assert.equal(o.row_count, 6000);
        assert.equal(o.manifest, "self-consistent");
        assert.equal(o.success_marker, "consistent");
        assert.deepEqual(o.problems, []);

        const file = join(dir, "report.json");
        const written = await runCli(["validate", "-c", config, "--format", "json", "-o", file]);
        assert.equal(written.code, 0, written.stderr);
        assert.equal(written.stdout, "");
        assert.deepEqual(JSON.parse(await Deno.readTextFile(file)), reports);

        const pretty = await runCli(["validate", "-c", config, "-o", file]);
        assert.equal(pretty.code, 1);
        assert.match(pretty.stderr, /^Error: --output requires --format json\n/);
        const badDate = await runCli(["validate", "-c", config, "--date", "2024-02-30"]);
        assert.equal(badDate.code, 1);
        assert.match(badDate.stderr, /--date '2024-02-30' is not a calendar date/);
        const prefixMany = await runCli(["validate", "-c", config, "--prefix", orders]);
        assert.equal(prefixMany.code, 1);
        assert.match(prefixMany.stderr, /--prefix names one folder but 5 exports are selected/);
        const unknown = await runCli(["validate", "-c", config, "-e", "oders"]);
        assert.equal(unknown.code, 1);
        assert.match(unknown.stderr, /unknown export 'oders'/);
      });

      await t.step("a deleted part fails as missing", async () => {
        const res = await corrupt("missing", (copy) => Deno.remove(copyPart(copy, 1)));
        assert.equal(res.code, 3, res.stdout);
        const n = manifest.parts.length;
        assert.match(res.stdout, /status: {4}FAILED/);
        assert.ok(res.stdout.includes(`parts:     ${n - 1}/${n} verified`), res.stdout);
        assert.ok(
          res.stdout.includes(`problem: part 2 '${manifest.parts[1]!.path}': missing\n`),
          res.stdout,
        );
        assert.match(res.stdout, /_SUCCESS: {2}consistent/);
      });

      await t.step("a part one byte longer or shorter fails on its size", async () => {
        const longer = await corrupt("appended", async (copy) => {
          await Deno.writeTextFile(copyPart(copy, 0), "x", { append: true });
        });
        assert.equal(longer.code, 3, longer.stdout);
        const size = manifest.parts[0]!.size_bytes;
        assert.ok(
          longer.stdout.includes(
            `part 1 '${manifest.parts[0]!.path}': ${size + 1} bytes, the manifest records ${size}`,
          ),
          longer.stdout,
        );
        const shorter = await corrupt("truncated", async (copy) => {
          await Deno.truncate(copyPart(copy, 2), manifest.parts[2]!.size_bytes - 1);
        });
        assert.equal(shorter.code, 3, shorter.stdout);
        assert.match(shorter.stdout, /part 3 '[^']+': \d+ bytes, the manifest records \d+/);
      });

      await t.step("a flipped byte of the same size fails on the content fingerprint", async () => {
        const flip = async (path: string) => {
          const bytes = await Deno.readFile(path);
          bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
          await Deno.writeFile(path, bytes);
        };
        const res = await corrupt("flipped", (copy) => flip(copyPart(copy, 0)));
        assert.equal(res.code, 3, res.stdout);
        assert.match(
          res.stdout,
          /problem: part 1 '[^']+': content fingerprint xxh3:[0-9a-f]{16}, the manifest records xxh3:[0-9a-f]{16} \(same size, different bytes\)/,
        );
        // verify: size + --size-only: sizes only, the flip goes unseen (documented trade-off).
        const sizeOnly = await runCli([
          "validate",
          "-c",
          config,
          "-e",
          "orders",
          "--size-only",
          "--prefix",
          join(dir, "cases/flipped"),
        ]);
        assert.equal(sizeOnly.code, 0, sizeOnly.stdout);
        assert.match(sizeOnly.stdout, /verified \(size only\)/);
        // verify: content: --size-only does not apply, the part is read back.
        const users = join(dir, "cases/users_flipped");
        await copyDir(join(dir, "out/users"), users);
        const usersManifest = await readManifest(users);
        await flip(join(users, usersManifest.parts[0]!.path));
        const content = await runCli([
          "validate",
          "-c",
          contentConfig,
          "-e",
          "users",
          "--size-only",
          "--prefix",
          users,
        ]);
        assert.equal(content.code, 3, content.stdout);
        assert.match(content.stdout, /content fingerprint/);
      });

      await t.step("an edited or missing _SUCCESS fails", async () => {
        const edited = await corrupt(
          "success_edited",
          (copy) => Deno.writeTextFile(join(copy, SUCCESS_KEY), "xxh3:0000000000000000\n"),
        );
        assert.equal(edited.code, 3, edited.stdout);
        assert.match(edited.stdout, /_SUCCESS: {2}MISMATCH/);
        assert.match(
          edited.stdout,
          /problem: _SUCCESS does not match manifest.json: it holds "xxh3:0000000000000000"/,
        );
        const missing = await corrupt(
          "success_missing",
          (copy) => Deno.remove(join(copy, SUCCESS_KEY)),
        );
        assert.equal(missing.code, 3, missing.stdout);
        assert.match(missing.stdout, /_SUCCESS: {2}missing\n/);
        assert.match(
          missing.stdout,
          /problem: _SUCCESS is missing although manifest.json records a successful run/,
        );
      });

      await t.step("a self-inconsistent manifest fails even with a matching _SUCCESS", async () => {
        const res = await corrupt("inconsistent", (copy) =>
          rewriteManifest(copy, (m) => {
            m.part_count += 1;
            m.row_count -= 1;
            m.parts[1]!.part_id = m.parts[0]!.part_id;
          }));
        assert.equal(res.code, 3, res.stdout);
        assert.match(res.stdout, /manifest: {2}INCONSISTENT/);
        assert.match(res.stdout, /_SUCCESS: {2}consistent/);
        assert.match(res.stdout, /manifest.json part_count is \d+ but it lists \d+ part\(s\)/);
        assert.match(
          res.stdout,
          /manifest.json row_count is 5999 but its committed parts hold 6000 row\(s\)/,
        );
        assert.match(res.stdout, /parts\[1\]: part_id 1 is not unique/);
        const garbage = await corrupt("garbage", async (copy) => {
          const bytes = new TextEncoder().encode("{ not json");
          await Deno.writeFile(join(copy, MANIFEST_KEY), bytes);
          await Deno.writeFile(join(copy, SUCCESS_KEY), await successBody(bytes));
        });
        assert.equal(garbage.code, 3, garbage.stdout);
        assert.match(garbage.stdout, /manifest: {2}UNREADABLE/);
        assert.match(garbage.stdout, /problem: manifest.json is not valid JSON/);
        const failedRun = await corrupt("failed_run", async (copy) => {
          await rewriteManifest(copy, (m) => (m.status = "failed"));
          await Deno.remove(join(copy, SUCCESS_KEY));
        });
        assert.equal(failedRun.code, 3, failedRun.stdout);
        assert.match(failedRun.stdout, /_SUCCESS: {2}absent \(as expected for this run status\)/);
        assert.match(failedRun.stdout, /problem: manifest.json records a failed run/);
      });

      await t.step(
        "no manifest: a crashed export (exit 3) when its files are there, else legacy (exit 0)",
        async () => {
          const crashed = await corrupt("legacy", async (copy) => {
            await Deno.remove(join(copy, MANIFEST_KEY));
            await Deno.remove(join(copy, SUCCESS_KEY));
          });
          assert.equal(crashed.code, 3, crashed.stdout);
          assert.match(crashed.stdout, /status: {4}FAILED\n/);
          assert.match(
            crashed.stdout,
            new RegExp(
              `problem: no manifest.json, but ${manifest.parts.length} data file\\(s\\) of ` +
                "export 'orders' are here",
            ),
          );
          const legacy = await corrupt("legacy_foreign", async (copy) => {
            for (const part of manifest.parts) {
              await Deno.rename(join(copy, part.path), join(copy, `old_${part.path}`));
            }
            await Deno.remove(join(copy, MANIFEST_KEY));
            await Deno.remove(join(copy, SUCCESS_KEY));
          });
          assert.equal(legacy.code, 0, legacy.stdout);
          assert.match(legacy.stdout, /status: {4}NO MANIFEST\n/);
          assert.match(
            legacy.stdout,
            new RegExp(
              `note: no manifest.json: legacy output, ${manifest.parts.length} object\\(s\\) not verified`,
            ),
          );
          const orphan = await corrupt(
            "orphan_success",
            (copy) => Deno.remove(join(copy, MANIFEST_KEY)),
          );
          assert.equal(orphan.code, 3, orphan.stdout);
          assert.match(orphan.stdout, /status: {4}FAILED/);
          assert.match(
            orphan.stdout,
            /_SUCCESS: {2}present without manifest.json\n {2}manifest: {2}missing/,
          );
          assert.match(orphan.stdout, /problem: _SUCCESS exists but manifest.json does not/);
        },
      );

      await t.step("objects the manifest does not list are an advisory note", async () => {
        const res = await corrupt("extra", async (copy) => {
          await Deno.writeTextFile(join(copy, "stray.csv"), "id\n1\n");
          await Deno.writeTextFile(join(copy, ".stray.csv.tmp"), "staging, never listed");
        });
        assert.equal(res.code, 0, res.stdout);
        assert.match(res.stdout, /status: {4}PASSED/);
        assert.match(
          res.stdout,
          /note: 1 object\(s\) not in the manifest \(advisory\): stray.csv\n/,
        );
        const json = await runCli([
          "validate",
          "-c",
          config,
          "-e",
          "orders",
          "--format",
          "json",
          "--prefix",
          join(dir, "cases/extra"),
        ]);
        const [report] = JSON.parse(json.stdout) as JsonReport[];
        assert.deepEqual(report!.extra_objects, ["stray.csv"]);
      });

      await t.step("the original output is untouched by all of this", async () => {
        for (const [i, part] of manifest.parts.entries()) {
          assert.equal((await Deno.stat(partPath(i))).size, part.size_bytes);
        }
        const res = await runCli(["validate", "-c", config, "-e", "orders", "--format", "json"]);
        assertNoSecret(res);
        assert.equal(res.code, 0);
      });
    } finally {
      Deno.env.delete("VALIDATE_TEST_PG_URL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
