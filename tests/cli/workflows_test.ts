/**
 * Every GitHub workflow of the repository passes `action-validator` (the schema GitHub applies),
 * and the check itself can fail.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

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

Deno.test("action-validator rejects a broken workflow", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_workflow_test_" });
  try {
    const file = join(dir, "broken.yml");
    // `stepz` is not a job key, and the job has neither `steps` nor `uses`.
    await Deno.writeTextFile(
      file,
      "name: broken\non: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    stepz:\n      - run: echo hi\n",
    );
    const { code, output } = await validate(file);
    assert.notEqual(code, 0);
    assert.match(output, /stepz/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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
