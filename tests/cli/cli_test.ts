/**
 * The command-line contract: help, version, usage errors and their exit codes, config errors
 * before any connection, `--json-errors`. No database is needed: every case fails (or succeeds)
 * before connecting.
 */
import assert from "node:assert/strict";
import { runCli, spawnCli } from "../_helpers/cli.ts";
import { main } from "../../src/cli/main.ts";
import { VERSION } from "../../src/core/version.ts";

const denoJson = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));

async function tempConfig(body: (dir: string) => string): Promise<{ dir: string; path: string }> {
  const dir = await Deno.makeTempDir({ prefix: "rivet_cli_" });
  const path = `${dir}/plan.yaml`;
  await Deno.writeTextFile(path, body(dir));
  return { dir, path };
}

// A closed loopback port: a connection attempt would fail with a transient error (exit 2), so an
// exit 1 with a config message proves that the error came before any connection.
const closedUrl = "postgresql://u@127.0.0.1:9/db";

Deno.test("rivet --version prints the deno.json version, the build and the target", async () => {
  assert.equal(VERSION, denoJson.version);
  const res = await runCli(["--version"]);
  assert.equal(res.code, 0);
  // Run from source here; a compiled binary names its commit instead (see build_info_test).
  assert.equal(res.stdout.trim(), `rivet ${VERSION} (from source, ${Deno.build.target})`);
});

Deno.test("rivet --help lists the run command, the exit codes and the getting-started path", async () => {
  const res = await runCli(["--help"]);
  assert.equal(res.code, 0);
  assert.match(res.stdout, /Usage: rivet/);
  assert.match(res.stdout, /run \[options\]/);
  assert.match(res.stdout, /Exit codes: 0 success/);
  assert.match(res.stdout, /rivet run -c rivet\.yaml/);
});

Deno.test("rivet run --help documents every flag", async () => {
  const res = await runCli(["run", "--help"]);
  assert.equal(res.code, 0);
  for (
    const flag of [
      "--config",
      "--export",
      "--param",
      "--json",
      "--summary-output",
      "--resume",
      "--force",
    ]
  ) {
    assert.ok(res.stdout.includes(flag), `${flag} missing from help`);
  }
});

Deno.test("usage errors exit 2 with usage text and no Error: line", async () => {
  for (const args of [["run", "--bogus", "-c", "x.yaml"], ["run"], ["nonsense"], []]) {
    const res = await runCli(args);
    assert.equal(res.code, 2, `${args.join(" ")}: ${res.stderr}`);
    assert.ok(!/^Error:/m.test(res.stderr), res.stderr);
    assert.match(res.stdout + res.stderr, /Usage|usage|--help/);
  }
});

Deno.test("a missing config file exits 1 naming the path and hinting rivet init", async () => {
  const res = await runCli(["run", "-c", "/nonexistent/dir/plan.yaml"]);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /\/nonexistent\/dir\/plan\.yaml/);
  assert.match(res.stderr, /rivet init/);
});

Deno.test("an unknown --export name exits 1 and lists the known exports", async () => {
  const { path, dir } = await tempConfig((dir) =>
    `source:
  type: postgres
  url: ${closedUrl}
exports:
  - name: orders
    table: orders
    format: csv
    destination: { type: local, path: ${dir}/out }
`
  );
  const res = await runCli(["run", "-c", path, "-e", "oders"]);
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /oders/);
  assert.match(res.stderr, /orders/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a cdc export with keys a change stream cannot honour is refused before connecting", async () => {
  const { path, dir } = await tempConfig((dir) =>
    `source:
  type: postgres
  url: ${closedUrl}
exports:
  - name: orders
    table: orders
    mode: cdc
    max_file_size: 10MB
    format: csv
    destination: { type: local, path: ${dir}/out }
`
  );
  const res = await runCli(["run", "-c", path]);
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /mode: cdc cannot be combined with max_file_size/);
  assert.match(res.stderr, /cdc\.rollover/);
  const flags = await runCli(["run", "-c", path, "--parallel-exports"]);
  assert.equal(flags.code, 1);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--json-errors prints one JSON object with the exit class", async () => {
  const res = await runCli(["run", "-c", "/nonexistent/plan.yaml", "--json-errors"]);
  assert.equal(res.code, 1);
  const lines = res.stderr.trim().split("\n");
  assert.equal(lines.length, 1, res.stderr);
  const obj = JSON.parse(lines[0]!);
  assert.equal(obj.exit_class, 1);
  assert.match(obj.error, /nonexistent/);
  // Also valid before the subcommand.
  const before = await runCli(["--json-errors", "run", "-c", "/nonexistent/plan.yaml"]);
  assert.equal(JSON.parse(before.stderr.trim()).exit_class, 1);
});

Deno.test("a refused connection is transient (exit 2) and fails fast without retries", async () => {
  const { path, dir } = await tempConfig((dir) =>
    `source:
  type: postgres
  url: ${closedUrl}
  tuning: { max_retries: 3, retry_backoff_ms: 5000 }
exports:
  - name: orders
    table: orders
    format: csv
    destination: { type: local, path: ${dir}/out }
`
  );
  const started = Date.now();
  const res = await spawnCli(["run", "-c", path]);
  assert.equal(res.code, 2, res.stderr);
  assert.match(res.stderr, /connection refused/i);
  assert.ok(!/retry \d/.test(res.stderr), res.stderr);
  assert.ok(Date.now() - started < 5000, "no backoff was waited");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("the secret in an inline URL never reaches the output of a failing run", async () => {
  const marker = "S3CR3T_M4RK3R";
  const { path, dir } = await tempConfig((dir) =>
    `source:
  type: postgres
  url: postgresql://app:pw-${marker}@127.0.0.1:9/db
  tuning: { max_retries: 0 }
exports:
  - name: orders
    query: SELECT '${"$"}{NOPE_UNSET_VAR}'
    format: csv
    destination: { type: local, path: ${dir}/out }
`
  );
  const res = await spawnCli(["run", "-c", path]);
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /NOPE_UNSET_VAR/);
  assert.ok(!res.stderr.includes(marker) && !res.stdout.includes(marker), res.stderr);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("every negative config fixture fails at load with exit 1 and names the config file", async () => {
  const dir = new URL("../fixtures/config/negative/", import.meta.url).pathname;
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".yaml"))
    .sort();
  assert.equal(names.length, 18);
  for (const name of names) {
    const res = await runCli(["run", "-c", `${dir}${name}`]);
    assert.equal(res.code, 1, `${name}: ${res.stderr}`);
    if (name.startsWith("g18")) {
      // g18 (chunked via table:) is valid config: it fails only on its unset url_env.
      assert.match(res.stderr, /DATABASE_URL/, name);
    } else {
      assert.match(res.stderr, /config file '/, name);
    }
    assert.ok(!/Cannot connect|refused|timed out/i.test(res.stderr), `${name}: ${res.stderr}`);
  }
});

Deno.test("a remote host without a tls: block is refused before any connection attempt", async () => {
  // 192.0.2.0/24 is TEST-NET-1: never routable, so a connection attempt would hang or fail slowly.
  const { path, dir } = await tempConfig((dir) =>
    `source:
  type: postgres
  url: postgresql://u@192.0.2.10:5432/db
exports:
  - name: orders
    table: orders
    format: csv
    destination: { type: local, path: ${dir}/out }
`
  );
  const started = Date.now();
  const res = await runCli(["run", "-c", path]);
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /TLS required/i);
  assert.match(res.stderr, /tls:/);
  assert.ok(Date.now() - started < 2000, "refused without dialing");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a process-mode child stopped before its run begins writes nothing on stderr", async () => {
  // The parent reports the export as interrupted; an "Error: Interrupted" from the child would be
  // relayed as a stray "child process wrote on stderr" warning. A stop as the child starts (its
  // signal already fired) is the deterministic form of a SIGTERM that lands during its start-up.
  const dir = await Deno.makeTempDir({ prefix: "rivet_child_stop_" });
  try {
    const config = `${dir}/rivet.yaml`;
    await Deno.writeTextFile(
      config,
      "source: {type: postgres, url: 'postgresql://u@127.0.0.1:9/db'}\n" +
        "exports:\n  - {name: e, table: t, format: csv, destination: {type: stdout}}\n",
    );
    const stop = new AbortController();
    stop.abort();
    for (const child of [[], ["--process-child", "flags"]]) {
      let stderr = "";
      const code = await main(["run", "-c", config, ...child], {
        io: { out: () => {}, err: (t) => (stderr += t), errIsTerminal: false },
        signal: stop.signal,
      });
      assert.equal(code, 130);
      if (child.length === 0) assert.match(stderr, /Interrupted/, "a user's run says why");
      else assert.equal(stderr, "", "a child leaves it to its parent");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
