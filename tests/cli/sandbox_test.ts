/**
 * The compiled binary's sandbox, exercised under `deno run -A` (the binary's broad grants): with
 * `--allow-*` flags (or `--sandbox`) every export runs in a worker allowed only what it needs;
 * the flags `rivet permissions --for binary` prints run a Parquet + `parallel: 2` plan from a
 * foreign working directory against the harness's PostgreSQL; a plan needing more than the flags
 * grant is refused before anything is written; the worker's own permissions are probed from the
 * inside (`RIVET_TEST_SANDBOX_PROBE`).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runCli, runDenoClean } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { writeParquetPlan } from "../_helpers/parquet_plan.ts";
import { committedIds } from "../_helpers/exported.ts";

const ROWS = 1_200;
const ALL = Array.from({ length: ROWS }, (_, i) => i + 1);
const root = fileURLToPath(new URL("../../", import.meta.url));

/** `deno run` standing in for the compiled binary: broad grants, the binary's worker option. */
function asBinary(rivetArgs: readonly string[]): string[] {
  return [
    "run",
    "-A",
    "--quiet",
    "--unstable-worker-options",
    `--config=${join(root, "deno.json")}`,
    join(root, "cli.ts"),
    ...rivetArgs,
  ];
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** The flag `--allow-<kind>=…` of a command, as a list. */
function grantOf(command: readonly string[], kind: string): string[] {
  const flag = command.find((a) => a.startsWith(`--allow-${kind}=`));
  assert.ok(flag, `--allow-${kind} in ${command.join(" ")}`);
  return flag.slice(`--allow-${kind}=`.length).split(",");
}

/** The command with the `--allow-<kind>` flag replaced by `entries`. */
function withGrant(command: readonly string[], kind: string, entries: readonly string[]) {
  return command.map((a) => a.startsWith(`--allow-${kind}=`) ? `--allow-${kind}=${entries}` : a);
}

Deno.test({
  name: "sandboxed rivet run: narrowed export workers, operator grants checked before the start",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "rivet_sandbox_" }));
    await using pg = await startPostgres();
    const { cfg, out, config } = await writeParquetPlan(base, pg, ROWS);
    const outside = join(base, "outside");
    await Deno.mkdir(outside);
    const env = { DATABASE_URL: pg.url };
    const cwd = await Deno.makeTempDir({ prefix: "rivet_sandbox_cwd_" });

    Deno.env.set("DATABASE_URL", pg.url);
    let command: string[];
    try {
      const res = await runCli([
        "permissions",
        "-c",
        config,
        "--for",
        "binary",
        "--format",
        "json",
      ]);
      assert.equal(res.code, 0, res.stderr);
      command = JSON.parse(res.stdout).command;
    } finally {
      Deno.env.delete("DATABASE_URL");
    }

    await t.step("permissions --for binary prints rivet run with the plan's grants", () => {
      assert.deepEqual(command.slice(0, 4), ["rivet", "run", "-c", config]);
      assert.deepEqual(grantOf(command, "net"), [`${pg.host}:${pg.port}`]);
      assert.deepEqual(grantOf(command, "env"), ["DATABASE_URL"]);
      assert.ok(grantOf(command, "write").includes(join(out, "pq")));
      assert.ok(grantOf(command, "read").includes(cfg));
      // The binary fixes these when it is built; a deno-only flag would be taken for rivet's.
      for (const arg of command) assert.doesNotMatch(arg, /^--(allow-sys|config|no-prompt)/);
      assert.ok(!command.includes(pg.url), "no URL in the command");
    });

    await t.step("a grant short of the plan is refused before anything is written", async () => {
      const short = withGrant(
        command,
        "write",
        grantOf(command, "write").filter((p) => p !== join(out, "pq")),
      );
      const res = await runDenoClean(asBinary(short.slice(1)), cwd, env);
      assert.equal(res.code, 1, res.stderr);
      const errors = res.stderr.split("\n").filter((l) => l.startsWith("Error:"));
      assert.equal(errors.length, 1, res.stderr);
      assert.match(errors[0]!, /nothing was started/);
      assert.ok(errors[0]!.includes(`--allow-write lacks ${join(out, "pq")} (output folder`));
      assert.match(
        res.stderr,
        new RegExp(`Hint: grant them \\(--allow-write=\\S*${join(out, "pq")}`),
      );
      assert.ok(!await exists(out), "no output folder");
      assert.ok(!await exists(join(cfg, ".rivet_state.db")), "no state database");

      const otherHost = withGrant(command, "net", ["127.0.0.1:9"]);
      const net = await runDenoClean(asBinary(otherHost.slice(1)), cwd, env);
      assert.equal(net.code, 1, net.stderr);
      assert.ok(
        net.stderr.includes(`--allow-net lacks ${pg.host}:${pg.port} (source)`),
        net.stderr,
      );
      assert.ok(!await exists(out), "no output folder");
    });

    await t.step("the printed flags export every row from a foreign cwd", async () => {
      const probe = [
        { name: "read", path: cfg },
        { name: "write", path: join(out, "pq") },
        { name: "read", path: outside },
        { name: "write", path: outside },
        { name: "write", path: cwd },
        { name: "net", host: `${pg.host}:${pg.port}` },
        { name: "net", host: "127.0.0.1:9" },
        { name: "env", variable: "DATABASE_URL" },
        { name: "env", variable: "HOME" },
        { name: "run" },
        { name: "ffi" },
      ];
      // The probe's own variable must be granted for the worker to read it.
      const args = withGrant(command, "env", [
        ...grantOf(command, "env"),
        "RIVET_TEST_SANDBOX_PROBE",
      ]);
      const res = await runDenoClean(
        asBinary([...args.slice(1), "--events", "ndjson"]),
        cwd,
        { ...env, RIVET_TEST_SANDBOX_PROBE: JSON.stringify(probe) },
      );
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(await committedIds(join(out, "pq")), ALL);
      assert.deepEqual(await committedIds(join(out, "ck")), ALL);
      assert.deepEqual(await Array.fromAsync(Deno.readDir(cwd)), [], "nothing in the cwd");
      const events = res.stdout.trim().split("\n").map((l) => JSON.parse(l));
      const probes = events.filter((e) => e.code === "test.sandbox_probe");
      assert.deepEqual(
        probes.map((e) => e.export_name).sort(),
        ["ck", "pq"],
        "one worker per export",
      );
      const pq = probes.find((e) => e.export_name === "pq").message.split("\n");
      const state = (line: string) => pq.find((l: string) => l.startsWith(line))?.split(": ")[1];
      assert.equal(state(`read ${cfg}`), "granted");
      assert.equal(state(`write ${join(out, "pq")}`), "granted");
      assert.equal(state(`net ${pg.host}:${pg.port}`), "granted");
      assert.equal(state("env DATABASE_URL"), "granted");
      for (const line of [`read ${outside}`, `write ${outside}`, `write ${cwd}`]) {
        assert.notEqual(state(line), "granted", line);
      }
      for (const line of ["net 127.0.0.1:9", "env HOME", "run ", "ffi "]) {
        assert.notEqual(state(line), "granted", line);
      }
    });

    await t.step("--parallel-exports runs the narrowed workers at once", async () => {
      await Deno.remove(out, { recursive: true });
      const res = await runDenoClean(
        asBinary([...command.slice(1), "--parallel-exports", "--json"]),
        cwd,
        env,
      );
      assert.equal(res.code, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout).parallel_mode, "parallel-threads");
      assert.deepEqual(await committedIds(join(out, "pq")), ALL);
      assert.deepEqual(await committedIds(join(out, "ck")), ALL);
    });

    await t.step("--sandbox without grants narrows the workers to the plan", async () => {
      const probe = [{ name: "read", path: outside }, { name: "read", path: cfg }];
      const res = await runDenoClean(
        asBinary(["run", "-c", config, "-e", "pq", "--sandbox", "--events", "ndjson"]),
        cwd,
        { ...env, RIVET_TEST_SANDBOX_PROBE: JSON.stringify(probe) },
      );
      assert.equal(res.code, 0, res.stderr);
      const events = res.stdout.trim().split("\n").map((l) => JSON.parse(l));
      const lines = events.find((e) => e.code === "test.sandbox_probe").message.split("\n");
      assert.deepEqual(lines.map((l: string) => l.split(": ")[1]), ["prompt", "granted"]);
    });

    await t.step("an export to stdout writes from its worker", async () => {
      const stdoutConfig = join(cfg, "stdout.yaml");
      await Deno.writeTextFile(
        stdoutConfig,
        `source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n` +
          `  - {name: so, query: 'SELECT id FROM t ORDER BY id', format: csv, ` +
          `destination: {type: stdout}}\n`,
      );
      const res = await runDenoClean(asBinary(["run", "-c", stdoutConfig, "--sandbox"]), cwd, env);
      assert.equal(res.code, 0, res.stderr);
      assert.deepEqual(res.stdout.trim().split("\n"), ["id", ...ALL.map(String)]);
    });

    await t.step(
      "Ctrl-C of a sandboxed run: the worker's query is cancelled, exit 130, no file",
      async () => {
        const marker = "rivet_sandbox_sigint";
        const intConfig = join(cfg, "interrupt.yaml");
        await Deno.writeTextFile(
          intConfig,
          `source:\n  type: postgres\n  url_env: DATABASE_URL\nexports:\n` +
            `  - {name: slow, query: 'SELECT 1 AS x FROM pg_sleep(30) /* ${marker} */', ` +
            `format: parquet, destination: {type: local, path: '${base}/int'}}\n`,
        );
        const child = new Deno.Command(Deno.execPath(), {
          args: asBinary(["run", "-c", intConfig, "--sandbox"]),
          cwd,
          env,
          stdin: "null",
          stdout: "null",
          stderr: "piped",
        }).spawn();
        const active = async () =>
          Number(
            (await pg.psql(
              // The export reads through a cursor: its running statement is a FETCH.
              `SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND ` +
                `pid <> pg_backend_pid() AND (query LIKE 'FETCH%_rivet' OR query LIKE '%${marker}%') ` +
                `AND query NOT LIKE '%pg_stat_activity%'`,
            )).trim(),
          );
        const deadline = Date.now() + 20_000;
        while ((await active()) === 0) {
          assert.ok(Date.now() < deadline, "the export's query started");
          await new Promise((r) => setTimeout(r, 100));
        }
        const sent = performance.now();
        child.kill("SIGINT");
        const res = await child.output();
        const ms = performance.now() - sent;
        const stderr = new TextDecoder().decode(res.stderr);
        assert.equal(res.code, 130, stderr);
        assert.ok(ms < 5_000, `stopped ${ms.toFixed(0)} ms after SIGINT`);
        assert.match(stderr, /interrupted/i);
        const names = await Array.fromAsync(Deno.readDir(`${base}/int`)).catch(() => []);
        assert.deepEqual(names, [], "no committed or staging file");
        assert.equal(await active(), 0, "the server stopped running the statement");
      },
    );

    await t.step("--no-sandbox with grants is a usage conflict", async () => {
      const res = await runDenoClean(asBinary([...command.slice(1), "--no-sandbox"]), cwd, env);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /--no-sandbox cannot be combined with --allow-\* flags/);
    });

    await t.step("parallel_export_processes: the children get and keep the grants", async () => {
      const procConfig = join(cfg, "processes.yaml");
      await Deno.writeTextFile(
        procConfig,
        (await Deno.readTextFile(config)).replace(
          "source:",
          "parallel_export_processes: true\nsource:",
        ),
      );
      await Deno.remove(out, { recursive: true });
      const args = command.slice(1).map((a) => a === config ? procConfig : a);
      const res = await runDenoClean(asBinary([...args, "--json"]), cwd, env);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout).parallel_mode, "parallel-processes");
      assert.deepEqual(await committedIds(join(out, "ck")), ALL);
      assert.deepEqual(await committedIds(join(out, "pq")), ALL);
    });

    await Deno.remove(cwd, { recursive: true });
    await Deno.remove(base, { recursive: true });
  },
});
