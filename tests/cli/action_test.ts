/**
 * The shell steps of the GitHub Action (`action.yml`), run for real with bash outside GitHub:
 * target and repository resolution, the checksum gate (no unverified file is ever run, a cache hit
 * included), and the `rivet run` step against a real PostgreSQL, with `rivet` standing for the
 * release binary, checking the job summary, the outputs and the step's exit code.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { startPostgres } from "../_helpers/pg_server.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));

interface ActionStep {
  readonly name: string;
  readonly id?: string;
  readonly run?: string;
  readonly uses?: string;
  readonly env?: Record<string, string>;
}

async function actionStep(name: string): Promise<ActionStep> {
  const action = parse(await Deno.readTextFile(join(root, "action.yml")));
  const step = (action.runs.steps as ActionStep[]).find((s) => s.name === name);
  assert.ok(step?.run, `action.yml has a run step '${name}'`);
  return step;
}

interface StepResult {
  readonly code: number;
  readonly output: string;
  /** `$GITHUB_OUTPUT` as a map (the last value of a name wins, as on GitHub). */
  readonly outputs: Record<string, string>;
  readonly summary: string;
}

/** Runs one step's script with bash, `env` standing in for GitHub's environment. */
async function runStep(
  step: ActionStep,
  dir: string,
  env: Record<string, string>,
): Promise<StepResult> {
  const outputFile = join(dir, "github_output");
  const summaryFile = join(dir, "step_summary.md");
  await Deno.writeTextFile(outputFile, "");
  await Deno.writeTextFile(summaryFile, "");
  const out = await new Deno.Command("bash", {
    args: ["-c", step.run!],
    cwd: dir,
    env: {
      GITHUB_OUTPUT: outputFile,
      GITHUB_STEP_SUMMARY: summaryFile,
      RUNNER_TEMP: dir,
      RUNNER_OS: "Linux",
      RUNNER_ARCH: "X64",
      GITHUB_RUN_ID: "42",
      GITHUB_RUN_ATTEMPT: "1",
      GITHUB_ACTION: "__acme_rivet",
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const outputs: Record<string, string> = {};
  for (const line of (await Deno.readTextFile(outputFile)).split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) outputs[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return {
    code: out.code,
    output: dec.decode(out.stdout) + dec.decode(out.stderr),
    outputs,
    summary: await Deno.readTextFile(summaryFile),
  };
}

/** A temp folder, removed when the test is done. */
async function tempFolder(): Promise<AsyncDisposable & { readonly path: string }> {
  const path = await Deno.makeTempDir({ prefix: "rivet_action_" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

const exists = (path: string) => Deno.lstat(path).then(() => true, () => false);

Deno.test("action: the target, release tag and repository are resolved from the runner", async () => {
  const step = await actionStep("Resolve the release and the target");
  await using tmp = await tempFolder();
  const dir = tmp.path;
  const base = {
    INPUT_VERSION: "0.2.0",
    INPUT_REPOSITORY: "",
    TOOL_CACHE: join(dir, "cache"),
    GITHUB_ACTION_PATH: "/home/runner/work/_actions/acme/rivet/v0.2.0",
  };
  const cases: [Record<string, string>, Record<string, string>][] = [
    [{}, { repo: "acme/rivet", tag: "v0.2.0", target: "x86_64-unknown-linux-gnu" }],
    [{ RUNNER_ARCH: "ARM64" }, { target: "aarch64-unknown-linux-gnu" }],
    [{ RUNNER_OS: "macOS", RUNNER_ARCH: "ARM64" }, { target: "aarch64-apple-darwin" }],
    [{ RUNNER_OS: "macOS" }, { target: "x86_64-apple-darwin" }],
    [{ INPUT_VERSION: "v1.0.0-rc.1" }, { tag: "v1.0.0-rc.1" }],
    [{ INPUT_REPOSITORY: "other/fork" }, { repo: "other/fork" }],
  ];
  for (const [env, expected] of cases) {
    const r = await runStep(step, dir, { ...base, ...env });
    assert.equal(r.code, 0, r.output);
    for (const [k, v] of Object.entries(expected)) assert.equal(r.outputs[k], v, k);
    assert.equal(
      r.outputs.bin,
      join(dir, "cache", "rivet", r.outputs.tag!, r.outputs.target!, "rivet"),
    );
  }
  const refused: [Record<string, string>, RegExp][] = [
    [{ RUNNER_OS: "Windows" }, /no release binary for Windows\/X64/],
    [{ GITHUB_ACTION_PATH: "/home/runner/work/repo/repo" }, /set the 'repository' input/],
    [{ INPUT_REPOSITORY: "a/b; rm -rf /" }, /must be owner\/name/],
    [{ INPUT_VERSION: "1.0/../../x" }, /'version' must be a release/],
  ];
  for (const [env, message] of refused) {
    const r = await runStep(step, dir, { ...base, ...env });
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, message);
  }
});

const target = "x86_64-unknown-linux-gnu";
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

Deno.test("action: only a binary matching SHA256SUMS is installed and run, cache hits included", async () => {
  const step = await actionStep("Verify the checksum and install");
  await using tmp = await tempFolder();
  const dir = tmp.path;
  const marker = join(dir, "ran");
  const binary = `#!/bin/sh\ntouch '${marker}'\necho "rivet 9.9.9"\n`;
  const env = { TARGET: target, DIR: dir };
  const sums = (hash: string) =>
    Deno.writeTextFile(
      join(dir, "SHA256SUMS"),
      `${"0".repeat(64)}  rivet-aarch64-apple-darwin\n${hash}  rivet-${target}\n`,
    );

  // A download whose checksum differs is deleted, never made executable nor run.
  await Deno.writeTextFile(join(dir, `rivet-${target}.download`), binary);
  await sums(sha256(binary + "tampered"));
  let r = await runStep(step, dir, env);
  assert.equal(r.code, 1, r.output);
  assert.match(r.output, /checksum mismatch for rivet-x86_64-unknown-linux-gnu/);
  assert.ok(!(await exists(marker)) && !(await exists(join(dir, "rivet"))));
  assert.ok(!(await exists(join(dir, `rivet-${target}.download`))), "the download is deleted");

  // No entry for the target: refused.
  await Deno.writeTextFile(join(dir, `rivet-${target}.download`), binary);
  await Deno.writeTextFile(join(dir, "SHA256SUMS"), `${sha256(binary)}  rivet-other\n`);
  r = await runStep(step, dir, env);
  assert.equal(r.code, 1, r.output);
  assert.match(r.output, /SHA256SUMS has no entry for rivet-x86_64-unknown-linux-gnu/);
  assert.ok(!(await exists(marker)));

  // The matching download becomes ./rivet, executable, and answers --version.
  await sums(sha256(binary));
  r = await runStep(step, dir, env);
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /rivet 9\.9\.9/);
  assert.equal((await Deno.stat(join(dir, "rivet"))).mode! & 0o777, 0o755);
  await Deno.remove(marker);

  // A cache hit (./rivet already there) is verified again: a swapped file is not run.
  await Deno.writeTextFile(join(dir, "rivet"), binary.replace("9.9.9", "6.6.6"));
  r = await runStep(step, dir, env);
  assert.equal(r.code, 1, r.output);
  assert.match(r.output, /checksum mismatch/);
  assert.ok(!(await exists(marker)) && !(await exists(join(dir, "rivet"))));
});

Deno.test({
  name: "action: the rivet run step runs the selected exports, writes the summary and outputs, " +
    "and exits with rivet's code",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const step = await actionStep("rivet run");
    await using pg = await startPostgres();
    await pg.psql(`
      CREATE TABLE act_small (id int8 PRIMARY KEY, v text);
      INSERT INTO act_small SELECT g, 'v' || g FROM generate_series(1, 7) g;
      GRANT SELECT ON ALL TABLES IN SCHEMA public TO rivet_pw;
    `);
    await using tmp = await tempFolder();
    const dir = tmp.path;
    // `rivet` stands for the release binary: the same CLI, run by Deno.
    const rivet = join(dir, "rivet");
    await Deno.writeTextFile(
      rivet,
      `#!/bin/sh\nexec '${Deno.execPath()}' run -A --quiet '${join(root, "cli.ts")}' "$@"\n`,
    );
    await Deno.chmod(rivet, 0o755);
    await Deno.mkdir(join(dir, "etl"));
    await Deno.writeTextFile(
      join(dir, "etl", "rivet.yaml"),
      `source:
  type: postgres
  url_env: ACTION_TEST_PG_URL
exports:
  - name: small
    table: act_small
    format: csv
    destination: { type: local, path: out/small }
  - name: broken
    table: no_such_table
    format: csv
    destination: { type: local, path: out/broken }
`,
    );
    const { user, password } = pg.passwordUser;
    const env = {
      RIVET: rivet,
      INPUT_CONFIG: "etl/rivet.yaml",
      ACTION_TEST_PG_URL: `postgresql://${user}:${password}@${pg.host}:${pg.port}/postgres`,
    };

    // Only the export named in `exports` runs; `args` go to rivet run.
    let r = await runStep(step, dir, {
      ...env,
      INPUT_EXPORTS: " small ,",
      INPUT_ARGS: "--validate",
    });
    assert.equal(r.code, 0, r.output);
    assert.equal(r.outputs["exit-code"], "0");
    assert.equal(r.outputs["exit-class"], "ok");
    assert.equal(r.outputs.rows, "7");
    assert.equal(r.outputs.exports, "1");
    assert.match(r.summary, /^\| small \| success \| 7 \| 1 \|/m);
    assert.doesNotMatch(r.summary, /broken/);
    assert.match(r.outputs["events-file"]!, /rivet-events-42-1-__acme_rivet\.ndjson$/);
    assert.match(await Deno.readTextFile(r.outputs["events-file"]!), /"type":"run_finished"/);
    // rivet's stderr stays in the step log.
    assert.match(r.output, /small/);
    assert.ok(!r.output.includes(password) && !r.summary.includes(password));
    // The state file lives beside the config: what the docs tell users to cache.
    assert.ok(await exists(join(dir, "etl", ".rivet_state.db")));

    // All exports, one failing: the step fails with rivet's exit code, outputs are still set.
    r = await runStep(step, dir, { ...env, INPUT_EXPORTS: "", INPUT_ARGS: "" });
    assert.equal(r.code, 1, r.output);
    assert.equal(r.outputs["exit-code"], "1");
    assert.equal(r.outputs["exit-class"], "config");
    assert.equal(r.outputs.failed, "1");
    assert.match(r.summary, /^\| broken \| failed \| 0 \|/m);
    assert.match(r.output, /::error::rivet run failed with exit code 1/);

    // A config that does not exist: no event at all, the class still comes from the exit code.
    r = await runStep(step, dir, {
      ...env,
      INPUT_CONFIG: "nope.yaml",
      INPUT_EXPORTS: "",
      INPUT_ARGS: "",
    });
    assert.equal(r.code, 1, r.output);
    assert.equal(r.outputs["exit-class"], "config");
    assert.match(r.summary, /No export reported any event/);
  },
});
