/**
 * Every GitHub workflow of the repository, the example workflows and the Action (`action.yml`)
 * pass `action-validator` (the schema GitHub applies), and the check itself can fail.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const root = fileURLToPath(new URL("../../", import.meta.url));
const workflowsDir = join(root, ".github", "workflows");

/** The validator as pinned in the import map (`npm:@action-validator/cli@x.y.z`). */
async function validatorSpecifier(): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(join(root, "deno.json")));
  const specifier = config.imports?.["@action-validator/cli"];
  assert.ok(typeof specifier === "string" && specifier.startsWith("npm:"), "pinned in deno.json");
  return specifier;
}

async function validate(file: string): Promise<{ code: number; output: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    // Run from the repo root so the committed lock pins the validator and its WASM core.
    args: ["run", "--allow-read", "--allow-env", "--frozen", await validatorSpecifier(), file],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, output: decode(out.stdout) + decode(out.stderr) };
}

/** Validates `text` saved as `name` in a fresh folder (`action.yml` is checked as an action). */
async function validateText(name: string, text: string): Promise<{ code: number; output: string }> {
  const dir = await Deno.makeTempDir({ prefix: "rivet_workflow_test_" });
  try {
    await Deno.writeTextFile(join(dir, name), text);
    return await validate(join(dir, name));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("every workflow in .github/workflows passes action-validator", async () => {
  const files: string[] = [];
  for await (const entry of Deno.readDir(workflowsDir)) {
    if (entry.isFile && /\.ya?ml$/.test(entry.name)) files.push(join(workflowsDir, entry.name));
  }
  assert.ok(files.some((f) => f.endsWith("ci.yml")), "ci.yml exists");
  for (const file of files.sort()) {
    const { code, output } = await validate(file);
    assert.equal(code, 0, `${file} is not a valid workflow:\n${output}`);
  }
});

Deno.test("action.yml and every example workflow pass action-validator", async () => {
  const examplesDir = join(root, "examples", "github-actions");
  const files = [join(root, "action.yml")];
  for await (const entry of Deno.readDir(examplesDir)) {
    if (entry.isFile && /\.ya?ml$/.test(entry.name)) files.push(join(examplesDir, entry.name));
  }
  assert.ok(files.length >= 2, "examples/github-actions has example workflows");
  for (const file of files.sort()) {
    const { code, output } = await validate(file);
    assert.equal(code, 0, `${file} is not valid:\n${output}`);
  }
});

Deno.test("action-validator rejects a broken action", async () => {
  // Named action.yml, the file is checked as an action: a composite step needs `shell`.
  const { code, output } = await validateText(
    "action.yml",
    "name: x\ndescription: y\nruns:\n  using: composite\n  steps:\n    - run: echo hi\n",
  );
  assert.notEqual(code, 0);
  assert.match(output, /"actionType": "action"/);
  assert.match(output, /\/runs\/steps\/0\/shell/);
});

Deno.test("the examples and docs/github-actions.md use only the Action's inputs and outputs", async () => {
  const action = parse(await Deno.readTextFile(join(root, "action.yml")));
  const inputs = Object.keys(action.inputs);
  const outputs = Object.keys(action.outputs);
  assert.deepEqual(inputs.slice(0, 4), ["version", "config", "args", "exports"]);
  const docs = await Deno.readTextFile(join(root, "docs", "github-actions.md"));
  for (const name of [...inputs, ...outputs]) {
    assert.match(docs, new RegExp(`^\\| \`${name}\` +\\|`, "m"), `docs list '${name}'`);
  }
  const examplesDir = join(root, "examples", "github-actions");
  for await (const entry of Deno.readDir(examplesDir)) {
    const text = await Deno.readTextFile(join(examplesDir, entry.name));
    const workflow = parse(text);
    for (const job of Object.values(workflow.jobs) as { steps: Record<string, unknown>[] }[]) {
      const ids = new Set<string>();
      for (const step of job.steps) {
        if (!/\/rivet@/.test(String(step.uses ?? ""))) continue;
        ids.add(String(step.id));
        for (const key of Object.keys(step.with ?? {})) {
          assert.ok(inputs.includes(key), `${entry.name}: unknown input '${key}'`);
        }
      }
      for (const m of text.matchAll(/steps\.([\w-]+)\.outputs\.([\w-]+)/g)) {
        if (ids.has(m[1]!)) assert.ok(outputs.includes(m[2]!), `${entry.name}: output '${m[2]}'`);
      }
    }
  }
  // Every YAML snippet of the page parses.
  for (const m of docs.matchAll(/```yaml\n([\s\S]*?)```/g)) parse(m[1]!);
  // The complete example in the docs is the validated file, word for word.
  const nightly = await Deno.readTextFile(join(examplesDir, "nightly-export.yml"));
  assert.ok(docs.includes("```yaml\n" + nightly + "```"), "docs embed nightly-export.yml");
});

Deno.test("action-validator rejects a broken workflow", async () => {
  // `stepz` is not a job key, and the job has neither `steps` nor `uses`.
  const { code, output } = await validateText(
    "broken.yml",
    "name: broken\non: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz:\n      - run: echo hi\n",
  );
  assert.notEqual(code, 0);
  assert.match(output, /stepz/);
});

Deno.test("the CI workflow pins Deno 2.9.6 and names the check and e2e-postgres jobs", async () => {
  const text = await Deno.readTextFile(join(workflowsDir, "ci.yml"));
  assert.match(text, /^ {2}check:$/m);
  assert.match(text, /^ {2}e2e-postgres:$/m);
  assert.match(text, /denoland\/setup-deno@v2/);
  assert.match(text, /DENO_VERSION: "2\.9\.6"/);
  assert.match(text, /deno install --frozen/);
});

Deno.test("the CI workflow runs every test tier of deno task test, each in its own step", async () => {
  const text = await Deno.readTextFile(join(workflowsDir, "ci.yml"));
  const tasks = JSON.parse(await Deno.readTextFile(join(root, "deno.json"))).tasks;
  const tiers = Object.keys(tasks).filter((name) => name.startsWith("test:"));
  assert.ok(tiers.includes("test:unit"), "deno.json has test tiers");
  const run = [...text.matchAll(/^ +run: deno task (\S+)$/gm)].map((m) => m[1]);
  assert.deepEqual(tiers.filter((t) => !run.includes(t)), [], "tiers CI does not run");
});

Deno.test("the CI workflow's SQL Server job: 2022 service with a health check, e2e cases, TLS, benchmark", async () => {
  const ci = parse(await Deno.readTextFile(join(workflowsDir, "ci.yml")));
  const job = ci.jobs?.mssql;
  assert.ok(job, "ci.yml has an mssql job");
  assert.equal(job.name, "SQL Server 2022 end to end");
  assert.ok(job["timeout-minutes"] <= 30, "the job is bounded to 30 minutes");

  const service = job.services?.mssql;
  assert.equal(service?.image, "mcr.microsoft.com/mssql/server:2022-latest");
  assert.equal(service.env.ACCEPT_EULA, "Y");
  assert.equal(service.env.MSSQL_PID, "Developer");
  assert.deepEqual(service.ports, ["1433:1433"]);
  const password = String(service.env.MSSQL_SA_PASSWORD);
  // SQL Server refuses to start with a weak sa password: 8+ characters from 3 of 4 classes.
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((c) => c.test(password));
  assert.ok(password.length >= 8 && classes.length >= 3, "a password SQL Server accepts");
  // Steps wait for the server only through the health check, so it must log in for real.
  const options = String(service.options);
  assert.match(options, /--health-cmd "\/opt\/mssql-tools18\/bin\/sqlcmd -C -S localhost -U sa /);
  assert.ok(
    options.includes(`-P ${password} -Q 'SELECT 1'`),
    "the health check uses that password",
  );
  assert.match(options, /--health-retries \d+/);

  // Every login of the job uses the container's password.
  const url = new URL(job.env.RIVET_MSSQL_URL);
  assert.equal(url.protocol, "sqlserver:");
  assert.equal(`${url.hostname}:${url.port}`, "127.0.0.1:1433");
  assert.equal(decodeURIComponent(url.password), password);
  const steps: { name?: string; run?: string; env?: Record<string, string> }[] = job.steps;
  for (const step of steps) {
    for (const m of (step.run ?? "").matchAll(/ -P (\S+)/g)) assert.equal(m[1], password);
    const tlsUrl = step.env?.RIVET_TLS_URL;
    if (tlsUrl) assert.equal(decodeURIComponent(new URL(tlsUrl).password), password);
  }

  const e2e = steps.find((s) => s.run?.includes("deno test"));
  assert.equal(e2e?.env?.RIVET_E2E_ENGINES, "mssql");
  for (
    const file of [
      "tests/e2e/cases_test.ts",
      "tests/e2e/chunked_test.ts",
      "tests/e2e/mssql_source_test.ts",
    ]
  ) assert.ok(e2e!.run!.includes(file), `the e2e step runs ${file}`);

  // CDC: the capture job runs under SQL Server Agent, which the container starts only when asked.
  assert.equal(service.env.MSSQL_AGENT_ENABLED, "true");
  const cdc = steps.find((s) => s.run?.includes("tests/e2e/mssql_cdc_test.ts"));
  assert.ok(cdc, "a step runs the SQL Server CDC test");
  assert.match(cdc.run!, /^deno test /);

  const tls = steps.find((s) => s.run?.includes("mode: verify-full"));
  assert.ok(tls?.run?.includes("mode: require"), "a TLS step checks require and verify-full");

  const bench = steps.find((s) => s.run?.includes("deno task bench:mssql"));
  assert.ok(bench, "a step runs the SQL Server benchmark");
  assert.match(bench.run!, /--container \$\{\{ job\.services\.mssql\.id \}\}/);
  assert.match(bench.run!, /--summary "\$GITHUB_STEP_SUMMARY"/);
  const tasks = JSON.parse(await Deno.readTextFile(join(root, "deno.json"))).tasks;
  assert.match(tasks["bench:mssql"]?.command ?? "", /scripts\/bench_mssql\.ts$/);
});

Deno.test("CI installs Chromium for the run report tests (.ci/run and ci.yml)", async () => {
  const ciRun = await Deno.readTextFile(join(root, ".ci", "run"));
  assert.match(ciRun, /command -v chromium >\/dev\/null 2>&1 .*\n\s+packages\+=\(chromium\)/);
  const ci = parse(await Deno.readTextFile(join(workflowsDir, "ci.yml")));
  const job = Object.values(ci.jobs as Record<string, { steps: { run?: string }[] }>)
    .find((j) => j.steps.some((s) => s.run === "deno task test:cli"));
  assert.ok(job, "a job runs the CLI tier");
  const at = job.steps.findIndex((s) => /apt-get install -y .*\bchromium\b/.test(s.run ?? ""));
  const cli = job.steps.findIndex((s) => s.run === "deno task test:cli");
  assert.ok(at >= 0 && at < cli, "chromium is installed before the CLI tier runs");
});
