/**
 * The packaging step of `scripts/compile.ts` works offline: with `DENORT_BIN` pointing at the
 * real deno binary (no denort download), it produces an executable and its checksum. The binary
 * is not run as rivet: with deno standing in for denort it behaves like deno (ENVIRONMENT.md §10).
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { compileArgs, permissionFlags, TARGETS, workerEntries } from "../../scripts/compile.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const script = join(root, "scripts", "compile.ts");

Deno.test("compileArgs pins the lock, the worker option, permissions and includes", () => {
  const args = compileArgs("aarch64-apple-darwin", {
    entry: "cli.ts",
    output: "dist/rivet-aarch64-apple-darwin",
    includes: ["src/engines/_worker_main.ts"],
  });
  assert.deepEqual(args, [
    "compile",
    "--frozen",
    "--target",
    "aarch64-apple-darwin",
    "--unstable-worker-options",
    ...permissionFlags,
    "--include",
    "src/engines/_worker_main.ts",
    "--output",
    "dist/rivet-aarch64-apple-darwin",
    "cli.ts",
  ]);
  assert.ok(!permissionFlags.includes("--allow-all") && !permissionFlags.includes("-A"));
  assert.ok(workerEntries.includes("src/engines/_worker_main.ts"));
  assert.equal(TARGETS.length, 4);
});

Deno.test("scripts/compile.ts packages an executable and its sha256 with DENORT_BIN set", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_compile_test_" });
  try {
    // A tiny entry: cli.ts may not exist yet, and the packaging step is what is under test.
    const entry = join(dir, "entry.ts");
    await Deno.writeTextFile(entry, 'console.log("tiny entry");\n');
    const outDir = join(dir, "dist");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script, "--entry", entry, "--out-dir", outDir],
      cwd: root,
      env: { DENORT_BIN: Deno.execPath() },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(stderr, /note: DENORT_BIN=/);
    assert.match(stderr, /--frozen/);
    const binary = join(outDir, `rivet-${Deno.build.target}`);
    const info = await Deno.stat(binary);
    assert.ok(info.isFile);
    assert.ok(info.size > 1_000_000, `binary is ${info.size} bytes`);
    assert.ok((info.mode! & 0o111) !== 0, "binary is executable");
    const expected = createHash("sha256").update(await Deno.readFile(binary)).digest("hex");
    assert.equal(
      await Deno.readTextFile(`${binary}.sha256`),
      `${expected}  rivet-${Deno.build.target}\n`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scripts/compile.ts refuses an unknown target before compiling anything", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      script,
      "--target",
      "riscv64-unknown-linux-gnu",
      "--out-dir",
      "/nonexistent/x",
    ],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  assert.match(new TextDecoder().decode(out.stderr), /Unknown target 'riscv64-unknown-linux-gnu'/);
});
