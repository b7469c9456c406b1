import assert from "node:assert/strict";
import { crashPoint, resetTestHooks } from "./test_hook.ts";

const hookUrl = JSON.stringify(new URL("./test_hook.ts", import.meta.url).href);

async function runWith(env: Record<string, string>, point: string) {
  const script = `import { crashPoint } from ${hookUrl};
const t0 = Date.now();
await crashPoint(${JSON.stringify(point)});
console.log("passed after", Date.now() - t0);`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("crashPoint does nothing and returns synchronously when no hook is set", () => {
  resetTestHooks();
  assert.equal(crashPoint("before_commit_rename"), undefined);
});

Deno.test("RIVET_TEST_CRASH_AT exits with code 86 at the named point only", async () => {
  const hit = await runWith({ RIVET_TEST_CRASH_AT: "after_file_write" }, "after_file_write");
  assert.equal(hit.code, 86);
  assert.equal(hit.stdout, "");
  assert.match(hit.stderr, /crashing at after_file_write/);
  const miss = await runWith({ RIVET_TEST_CRASH_AT: "after_file_write" }, "after_source_read");
  assert.equal(miss.code, 0);
  assert.match(miss.stdout, /passed after/);
});

Deno.test("RIVET_TEST_BLOCK_AT sleeps RIVET_TEST_BLOCK_MS at the named point", async () => {
  const out = await runWith(
    { RIVET_TEST_BLOCK_AT: "before_commit_rename", RIVET_TEST_BLOCK_MS: "300" },
    "before_commit_rename",
  );
  assert.equal(out.code, 0);
  const waited = Number(/passed after (\d+)/.exec(out.stdout)?.[1]);
  assert.ok(waited >= 290 && waited < 5000, `waited ${waited} ms`);
});
