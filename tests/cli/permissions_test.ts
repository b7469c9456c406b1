/**
 * `rivet permissions`: the printed `deno run` command runs the plan from a foreign working
 * directory (a fresh temporary folder, neither rivet's nor the config's) with no other grant,
 * against the harness's PostgreSQL (Parquet, and `parallel: 2` chunks read back with hyparquet)
 * and s3rver; the same command with one grant removed ends with exit 1 and the one line that names
 * the flag. The text layout prints the same command, a reason per flag, and no secret.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, runDenoClean } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { writeParquetPlan } from "../_helpers/parquet_plan.ts";
import { readParquet } from "../_helpers/parquet_oracle.ts";
import { s3ConfigDestination, s3ConfigEnv, startS3rver } from "../_helpers/s3rver.ts";
import { S3Destination } from "../../src/destinations/s3.ts";

const ROWS = 1_200;
const ALL = Array.from({ length: ROWS }, (_, i) => i + 1);

interface Report {
  flags: string[];
  net: string[];
  read: string[];
  write: string[];
  env: string[];
  all_env: boolean;
  sys: string[];
  command: string[];
}

/** `rivet permissions --format json` in-process, with `env` visible to it. */
async function permissionsJson(args: string[], env: Record<string, string>): Promise<Report> {
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
  try {
    const res = await runCli(["permissions", ...args, "--format", "json"]);
    assert.equal(res.code, 0, res.stderr);
    return JSON.parse(res.stdout) as Report;
  } finally {
    for (const k of Object.keys(env)) Deno.env.delete(k);
  }
}

/** Ids of every Parquet part an export committed (its manifest lists them). */
async function parquetIds(dir: string): Promise<number[]> {
  await Deno.stat(join(dir, "_SUCCESS"));
  const manifest = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
  const ids: number[] = [];
  for (const part of manifest.parts as { path: string }[]) {
    assert.ok(part.path.endsWith(".parquet"), part.path);
    for (const row of (await readParquet(join(dir, part.path))).rows) ids.push(Number(row.id));
  }
  return ids.sort((a, b) => a - b);
}

/** The command with `entry` taken out of the comma list of `flag`. */
function withoutEntry(command: readonly string[], flag: string, entry: string): string[] {
  return command.map((arg) => {
    if (!arg.startsWith(`${flag}=`)) return arg;
    const kept = arg.slice(flag.length + 1).split(",").filter((e) => e !== entry);
    assert.ok(kept.length < arg.split(",").length, `${entry} is in ${arg}`);
    return `${flag}=${kept.join(",")}`;
  });
}

Deno.test({
  name: "rivet permissions: the printed command runs Parquet and parallel: 2 from a foreign cwd",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "rivet_perm_" }));
    await using pg = await startPostgres();
    const { cfg, out, config } = await writeParquetPlan(root, pg, ROWS);
    const local = (name: string) => `destination: {type: local, path: '${out}/${name}'}`;
    const env = { DATABASE_URL: pg.url };
    const report = await permissionsJson(["-c", config], env);

    await t.step("the flags name exactly the plan's host, folders and variables", () => {
      assert.deepEqual(report.net, [`${pg.host}:${pg.port}`]);
      assert.deepEqual(report.env, ["DATABASE_URL"]);
      assert.equal(report.all_env, false);
      assert.ok(report.write.includes(join(out, "pq")) && report.write.includes(join(out, "ck")));
      assert.ok(report.write.includes(join(cfg, ".rivet_state.db")));
      assert.ok(report.read.includes(cfg));
      assert.ok(report.flags.includes("--unstable-worker-options"));
      assert.ok(!report.flags.some((f) => f === "-A" || f === "--allow-all"));
      for (const f of report.flags.filter((f) => f.startsWith("--allow-"))) {
        assert.match(f, /^--allow-\w+=\S+$/, `every grant is narrowed: ${f}`);
      }
      assert.deepEqual(report.command.slice(0, 2), ["deno", "run"]);
      assert.deepEqual(report.command.slice(-3), ["run", "-c", config]);
      assert.ok(!JSON.stringify(report).includes(pg.url), "no URL in the report");
    });

    await t.step("the printed command exports every row from a foreign cwd", async () => {
      const cwd = await Deno.makeTempDir({ prefix: "rivet_perm_cwd_" });
      const res = await runDenoClean(report.command.slice(1), cwd, env);
      assert.equal(res.code, 0, res.stderr);
      assert.doesNotMatch(res.stderr, /Warning|Error/);
      assert.deepEqual(await parquetIds(join(out, "pq")), ALL);
      assert.deepEqual(await parquetIds(join(out, "ck")), ALL);
      assert.deepEqual(await Array.fromAsync(Deno.readDir(cwd)), [], "nothing in the cwd");
      await Deno.remove(cwd, { recursive: true });
    });

    await t.step("one grant removed: exit 1 and the line naming the flag", async () => {
      const cwd = await Deno.makeTempDir({ prefix: "rivet_perm_cwd_" });
      const command = [
        ...withoutEntry(report.command, "--allow-write", join(out, "pq")),
        "-e",
        "pq",
        "--force",
      ];
      const res = await runDenoClean(command.slice(1), cwd, env);
      assert.equal(res.code, 1, res.stderr);
      assert.doesNotMatch(res.stderr, /crashed|Uncaught|will retry/, res.stderr);
      const errors = res.stderr.split("\n").filter((l) => l.startsWith("Error:"));
      assert.equal(errors.length, 1, res.stderr);
      assert.ok(errors[0]!.includes(`rivet needs --allow-write=${join(out, "pq")} (`), errors[0]);
      await Deno.remove(cwd, { recursive: true });
    });

    await t.step("parallel_export_processes: the printed command runs the children", async () => {
      const procConfig = join(cfg, "processes.yaml");
      await Deno.writeTextFile(
        procConfig,
        `parallel_export_processes: true\nsource:\n  type: postgres\n  url_env: DATABASE_URL\n` +
          `exports:\n  - {name: p1, table: t, format: parquet, ${local("p1")}}\n` +
          `  - {name: p2, table: t, mode: chunked, chunk_column: id, chunk_size: 300, ` +
          `parallel: 2, format: parquet, ${local("p2")}}\n`,
      );
      const r = await permissionsJson(["-c", procConfig], env);
      assert.ok(r.flags.includes(`--allow-run=${Deno.execPath()}`), r.flags.join(" "));
      const cwd = await Deno.makeTempDir({ prefix: "rivet_perm_cwd_" });
      const res = await runDenoClean(r.command.slice(1), cwd, env);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(await parquetIds(join(out, "p1")), ALL);
      assert.deepEqual(await parquetIds(join(out, "p2")), ALL);
      // The children are really started: without the grant, the run says which flag it needs.
      const noRun = r.command.filter((a) => !a.startsWith("--allow-run="));
      const denied = await runDenoClean([...noRun.slice(1), "--force"], cwd, env);
      assert.notEqual(denied.code, 0, denied.stderr);
      assert.match(denied.stderr, /--allow-run/, denied.stderr);
      await Deno.remove(cwd, { recursive: true });
    });

    await t.step("text layout: the same command, one reason per flag, no secret", async () => {
      Deno.env.set("DATABASE_URL", pg.url);
      try {
        const res = await runCli(["permissions", "-c", config]);
        assert.equal(res.code, 0, res.stderr);
        const lines = res.stdout.trimEnd().split("\n");
        assert.equal(lines[0], report.command.join(" "));
        for (const flag of report.flags) {
          assert.ok(
            lines.some((l) => l.startsWith(`${flag.split("=")[0]}: `)),
            `a reason for ${flag}`,
          );
        }
        assert.match(res.stdout, /--allow-net: source: /);
        assert.ok(!res.stdout.includes(pg.url) && !res.stderr.includes(pg.url));
      } finally {
        Deno.env.delete("DATABASE_URL");
      }
    });

    await t.step("a relative destination path is named in a warning", async () => {
      const rel = join(cfg, "rel.yaml");
      await Deno.writeTextFile(
        rel,
        "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n" +
          "  - {name: r, table: t, format: csv, destination: {type: local, path: out/r}}\n",
      );
      Deno.env.set("DATABASE_URL", pg.url);
      try {
        const res = await runCli(["permissions", "-c", rel]);
        assert.equal(res.code, 0, res.stderr);
        assert.match(res.stderr, /Warning: export 'r': destination path 'out\/r' is relative/);
      } finally {
        Deno.env.delete("DATABASE_URL");
      }
    });

    await t.step("S3 (s3rver): the endpoint and the key variables; the command runs", async () => {
      await using s3 = await startS3rver({ bucket: "rivet-perm" });
      const dest = s3ConfigDestination(s3, "chunks/");
      const s3Config = join(cfg, "s3.yaml");
      await Deno.writeTextFile(
        s3Config,
        "source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n" +
          `  - {name: s3c, table: t, mode: chunked, chunk_column: id, chunk_size: 300, ` +
          `parallel: 2, format: parquet, destination: ${dest.yaml}}\n`,
      );
      const s3Env = { ...env, ...s3ConfigEnv(s3) };
      const r = await permissionsJson(["-c", s3Config], s3Env);
      assert.deepEqual(r.net, [`${pg.host}:${pg.port}`, new URL(s3.endpoint).host].sort());
      for (const name of ["DATABASE_URL", "S3_KEY", "S3_SECRET", "AWS_*"]) {
        assert.ok(r.env.includes(name), name);
      }
      assert.ok(r.sys.includes("osRelease"));
      assert.ok(!JSON.stringify(r).includes(s3.secretAccessKey), "no key value printed");
      const cwd = await Deno.makeTempDir({ prefix: "rivet_perm_cwd_" });
      const res = await runDenoClean(r.command.slice(1), cwd, s3Env);
      assert.equal(res.code, 0, res.stderr);
      await using d = await S3Destination.open(dest.spec, {
        env: (name) => (s3Env as Record<string, string>)[name],
      });
      const keys: string[] = [];
      for await (const o of d.list("")) keys.push(o.key);
      assert.ok(keys.some((k) => k.endsWith("_SUCCESS")), keys.join(", "));
      assert.ok(keys.filter((k) => k.endsWith(".parquet")).length >= 2, keys.join(", "));
      await Deno.remove(cwd, { recursive: true });
    });

    await Deno.remove(root, { recursive: true });
  },
});
