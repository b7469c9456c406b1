/**
 * The packaging step of `scripts/compile.ts` works offline: with `DENORT_BIN` pointing at the
 * real deno binary (no denort download), it compiles the real `cli.ts` with every worker entry
 * and parquet-wasm embedded, the worker option and permissions baked in, and a checksum file
 * `sha256sum` accepts. The binary is not run as rivet: with deno standing in for denort it
 * behaves like deno; the release workflow's smoke test runs the real one.
 *
 * @module
 */
import { V8_FLAGS_ARG } from "../../src/engines/v8_flags.ts";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  buildEntrySource,
  bundleArgs,
  compile,
  compileArgs,
  compileFailure,
  PARQUET_WASM_SPECIFIER,
  parseArgs,
  PERMISSION_FLAGS,
  TARGETS,
  UNSTABLE_FLAGS,
  WORKER_ENTRIES,
} from "../../scripts/compile.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const script = join(root, "scripts", "compile.ts");
const wasmPath = fileURLToPath(import.meta.resolve(PARQUET_WASM_SPECIFIER));
const decoder = new TextDecoder();

/**
 * Embedded files over the runtime, MiB: the release budget. Measured 15 MiB (the bundle's 11 MB
 * of JavaScript and the 5 MB wasm); the whole node_modules tree it replaced was 93 MiB.
 */
const PAYLOAD_BUDGET_MIB = 40;

function runScript(args: string[], env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, ...args],
    cwd: root,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
}

Deno.test("compileArgs pins the lock, bakes the worker option and permissions, includes each file", () => {
  const args = compileArgs("aarch64-apple-darwin", {
    entry: "cli.ts",
    output: "dist/rivet-aarch64-apple-darwin",
    includes: ["src/engines/chunk_worker.ts", "src/engines/export_worker.ts"],
  });
  assert.deepEqual(args, [
    "compile",
    "--no-config",
    "--no-check",
    "--target",
    "aarch64-apple-darwin",
    "--unstable-worker-options",
    V8_FLAGS_ARG,
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-run",
    "--allow-sys=osRelease,homedir,hostname,networkInterfaces,userInfo",
    "--include",
    "src/engines/chunk_worker.ts",
    "--include",
    "src/engines/export_worker.ts",
    "--output",
    "dist/rivet-aarch64-apple-darwin",
    "cli.ts",
  ]);
  assert.deepEqual(UNSTABLE_FLAGS, ["--unstable-worker-options"]);
  // The bundle step pins the lock and inlines the packages; names stay for stack traces.
  assert.deepEqual(bundleArgs(["b/rivet.ts", "b/chunk_worker.ts"], "b/out"), [
    "bundle",
    "--frozen",
    "--platform",
    "deno",
    "--code-splitting",
    "--keep-names",
    "--outdir",
    "b/out",
    "b/rivet.ts",
    "b/chunk_worker.ts",
  ]);
  for (const banned of ["-A", "--allow-all", "--allow-ffi"]) {
    assert.ok(!PERMISSION_FLAGS.some((f) => f.startsWith(banned)), `${banned} is not baked in`);
  }
  // System information only by name, never the whole category.
  assert.ok(!PERMISSION_FLAGS.includes("--allow-sys"), "--allow-sys is scoped");
  assert.deepEqual(WORKER_ENTRIES, [
    "src/engines/chunk_worker.ts",
    "src/engines/export_worker.ts",
    "src/_util/md5_worker.ts",
  ]);
  assert.deepEqual(TARGETS, [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
  ]);
});

Deno.test("parseArgs expands 'all', resolves paths against the cwd and rejects unknown options", () => {
  const opts = parseArgs(["--target", "all", "--out-dir=out/bin", "--entry", "/abs/cli.ts"]);
  assert.deepEqual(opts.targets, [...TARGETS]);
  assert.equal(opts.outDir, resolve(Deno.cwd(), "out/bin"));
  assert.equal(opts.entry, "/abs/cli.ts");
  assert.equal(parseArgs(["--output", "/x/rivet"]).output, "/x/rivet");
  assert.throws(() => parseArgs(["--frobnicate"]), /Unknown option '--frobnicate'/);
  assert.throws(() => parseArgs(["--target"]), /--target needs a value/);
  assert.equal(parseArgs(["--max-payload-mib", "40"]).maxPayloadMiB, 40);
  assert.throws(() => parseArgs(["--max-payload-mib=0"]), /positive number/);
});

Deno.test("the release builds with the payload budget, and a bundle over it is refused before compiling", async () => {
  const release = await Deno.readTextFile(join(root, ".github", "workflows", "release.yml"));
  assert.match(release, /scripts\/compile\.ts --target .* --max-payload-mib 40\b/);
  const dir = await Deno.makeTempDir({ prefix: "rivet_compile_budget_" });
  try {
    const out = await runScript(["--output", join(dir, "rivet"), "--max-payload-mib", "1"], {
      DENORT_BIN: Deno.execPath(),
    });
    const stderr = decoder.decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(stderr, /the bundle for \S+ is \d+\.\d MiB, over the --max-payload-mib 1 budget/);
    assert.doesNotMatch(stderr, /deno compile /, "refused before compiling");
    await assert.rejects(Deno.stat(join(dir, "rivet")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("WORKER_ENTRIES lists every worker module that src/ starts", async () => {
  // A worker URL is not followed by the module graph: an entry missing from WORKER_ENTRIES is
  // left out of the binary, which then fails only when that worker starts.
  // Either inline in `new Worker(...)`, or a module URL of a `*_worker.ts` file kept in a
  // constant and started later.
  const workerUrl =
    /new Worker\(\s*(?:new URL\(\s*["']([^"']+)["']\s*,\s*import\.meta\.url|import\.meta\.resolve\(\s*["']([^"']+)["'])|new URL\(\s*["']([^"']*_worker\.ts)["']\s*,\s*import\.meta\.url|siblingEntry\(\s*import\.meta\.url\s*,\s*["']([^"']+)["']\s*\)/g;
  const started = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    for await (const e of Deno.readDir(dir)) {
      const path = join(dir, e.name);
      if (e.isDirectory) await walk(path);
      else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) {
        for (const m of (await Deno.readTextFile(path)).matchAll(workerUrl)) {
          const file = m[1] ?? m[2] ?? m[3] ?? `./${m[4]}.ts`;
          started.add(relative(root, resolve(dirname(path), file)));
        }
      }
    }
  };
  await walk(join(root, "src"));
  assert.ok(started.size > 0, "src/ starts workers");
  assert.deepEqual([...started].sort(), [...WORKER_ENTRIES].sort());
});

Deno.test("only the cloud SDKs and tedious reach sys-gated APIs, and --allow-sys names what they read", async () => {
  // Deno APIs behind --allow-sys, and node:os (cpus, userInfo, hostname, totalmem... are gated).
  const gatedDeno =
    /\bDeno\.(hostname|osRelease|osUptime|loadavg|networkInterfaces|systemMemoryInfo|uid|gid)\b/;
  const importsOs = /(?:require\(\s*|from\s+|import\(\s*)["'](?:node:)?os["']/;
  const findings: string[] = [];
  const packages = new Set<string>();
  let npmIndex: Record<string, { dependencies: string[]; localPath?: string }> = {};
  for (const entry of ["cli.ts", ...WORKER_ENTRIES]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, `deno info ${entry}: ${decoder.decode(out.stderr)}`);
    const info = JSON.parse(decoder.decode(out.stdout)) as {
      modules: {
        specifier: string;
        npmPackage?: string;
        local?: string;
        error?: string;
      }[];
      npmPackages: typeof npmIndex;
    };
    const broken = info.modules.filter((m) => m.error).map((m) => `${m.specifier}: ${m.error}`);
    assert.deepEqual(broken, [], `the graph of ${entry} resolves`);
    npmIndex = info.npmPackages;
    for (const mod of info.modules) {
      if (mod.specifier === "node:os") findings.push(`${entry} reaches node:os`);
      if (mod.npmPackage) packages.add(mod.npmPackage);
      if (mod.specifier.startsWith("file:") && mod.local) {
        const text = await Deno.readTextFile(mod.local);
        if (gatedDeno.test(text) || importsOs.test(text)) findings.push(mod.local);
      }
    }
  }
  // npm packages are not expanded by deno info: scan the reachable closure's JavaScript.
  const pending = [...packages];
  while (pending.length) {
    const id = pending.pop()!;
    const pkg = npmIndex[id];
    assert.ok(pkg, `npm package ${id} is in deno info's index`);
    for (const dep of pkg.dependencies) {
      if (packages.has(dep) || !npmIndex[dep]) continue;
      packages.add(dep);
      pending.push(dep);
    }
  }
  assert.ok([...packages].some((p) => p.startsWith("parquet-wasm@")), "graph reaches npm code");
  for (const id of packages) {
    const dir = npmIndex[id]!.localPath;
    assert.ok(dir, `npm package ${id} has a local path (deno install --frozen)`);
    const walk = async (path: string): Promise<void> => {
      for await (const e of Deno.readDir(path)) {
        const child = join(path, e.name);
        if (e.isDirectory && e.name !== "node_modules") await walk(child);
        else if (e.isFile && /\.[cm]?js$/.test(e.name)) {
          if (importsOs.test(await Deno.readTextFile(child))) findings.push(child);
        }
      }
    };
    await walk(dir);
  }
  // rivet's own modules reach a sys-gated API only where listed here (the host name a chunk
  // claim records, which falls back to none when not granted); npm code that does is the cloud
  // SDKs' (user agents, home directories, the GCE check) and tedious' (the host name in the SQL
  // Server login). The baked --allow-sys list covers all of them.
  const ownAllowed = new Map([[join(root, "src", "state", "_claimer.ts"), "hostname"]]);
  const own = [...new Set(findings.filter((f) => !f.includes("/node_modules/")))];
  assert.deepEqual(
    own.filter((f) => !ownAllowed.has(f)),
    [],
    "rivet's own modules call sys-gated APIs only where listed",
  );
  for (const name of ownAllowed.values()) {
    assert.ok(PERMISSION_FLAGS.some((f) => f.startsWith("--allow-sys=") && f.includes(name)));
  }
  const cloud =
    /(@aws-sdk|@smithy|@azure|@typespec|google-auth-library|gcp-metadata|@google-cloud|tedious@|is-wsl@|\/bl@[^/]*\/node_modules\/bl\/test\/)/;
  const foreign = findings.filter((f) => f.includes("/node_modules/") && !cloud.test(f));
  assert.deepEqual(foreign, [], "only the cloud SDKs and tedious may reach node:os");
  assert.ok(
    PERMISSION_FLAGS.includes("--allow-sys=osRelease,homedir,hostname,networkInterfaces,userInfo"),
    "the binary grants the sys names the cloud SDKs read",
  );
});

Deno.test("compile refuses to package when a worker entry is missing, naming the file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_compile_missing_" });
  try {
    await Deno.writeTextFile(join(dir, "cli.ts"), 'console.log("tiny");\n');
    await assert.rejects(
      compile({ root: dir, outDir: join(dir, "dist") }),
      (e: Error) =>
        e.message.includes(join(dir, WORKER_ENTRIES[0]!)) && /fails at run/.test(e.message),
    );
    await assert.rejects(Deno.stat(join(dir, "dist")), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scripts/compile.ts refuses bad targets and --output with several targets before compiling", async () => {
  const unknown = await runScript([
    "--target",
    "riscv64-unknown-linux-gnu",
    "--out-dir",
    "/nonexistent/x",
  ]);
  assert.equal(unknown.code, 1);
  assert.match(decoder.decode(unknown.stderr), /Unknown target 'riscv64-unknown-linux-gnu'/);
  const several = await runScript(["--target", "all", "--output", "/nonexistent/x/rivet"]);
  assert.equal(several.code, 1);
  assert.match(decoder.decode(several.stderr), /--output names one file but 4 targets/);
});

Deno.test("scripts/compile.ts packages cli.ts with the workers and parquet-wasm, and a sha256sum file", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_compile_test_" });
  try {
    const binary = join(dir, "bin", "rivet-test");
    const out = await runScript(["--output", binary], { DENORT_BIN: Deno.execPath() });
    const stderr = decoder.decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.match(stderr, /note: DENORT_BIN=/);

    // The arguments actually passed to deno compile, as echoed by the script.
    const line = stderr.split("\n").find((l) => l.startsWith("deno compile "));
    assert.ok(line, stderr);
    const args = line.slice("deno ".length).split(" ");
    // The bundle's entry (the generated one, which records commit and target, then starts
    // cli.ts) is compiled; the build folder is removed after.
    const bundleDir = join(root, ".build", Deno.build.target, "bundle");
    assert.equal(args.at(-1), join(bundleDir, "rivet.js"));
    await assert.rejects(Deno.stat(join(root, ".build", Deno.build.target)), Deno.errors.NotFound);
    assert.equal(args[args.indexOf("--target") + 1], Deno.build.target);
    assert.equal(args[args.indexOf("--output") + 1], binary);
    for (const flag of ["--no-config", ...UNSTABLE_FLAGS, ...PERMISSION_FLAGS]) {
      assert.ok(args.includes(flag), `${flag} passed`);
    }
    const included = args.flatMap((a, i) => (a === "--include" ? [args[i + 1]] : []));
    assert.deepEqual(included, [
      ...WORKER_ENTRIES.map((f) =>
        join(bundleDir, `${f.split("/").at(-1)!.replace(".ts", ".js")}`)
      ),
      join(bundleDir, "parquet_wasm_bg.wasm"),
    ]);

    // No package tree is embedded (test, demo and bench packages included): only the bundle.
    // The payload (binary minus the runtime standing in for denort) stays within the release
    // budget, which the package tree alone (93 MiB) broke.
    const embedded = stderr.slice(stderr.indexOf("Embedded Files"));
    assert.doesNotMatch(embedded, /node_modules|hyparquet|pglite|polars/);
    const info = await Deno.stat(binary);
    assert.ok(info.isFile && info.size > 10_000_000, `binary is ${info.size} bytes`);
    const payloadMiB = (info.size - (await Deno.stat(Deno.execPath())).size) / 1048576;
    assert.ok(payloadMiB < PAYLOAD_BUDGET_MIB, `payload ${payloadMiB.toFixed(1)} MiB`);
    assert.ok((info.mode! & 0o111) !== 0, "binary is executable");
    const bytes = await Deno.readFile(binary);
    const wasm = await Deno.readFile(wasmPath);
    // Native substring search over the ~150 MB binary; the wasm is stored uncompressed.
    const haystack = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    assert.ok(haystack.indexOf(wasm.subarray(0, 65536)) >= 0, "parquet-wasm bytes embedded");

    const expected = createHash("sha256").update(bytes).digest("hex");
    const sumLine = `${expected}  rivet-test\n`;
    assert.equal(await Deno.readTextFile(`${binary}.sha256`), sumLine);
    assert.equal(decoder.decode(out.stdout), sumLine, "stdout carries only the checksum line");
    const check = await new Deno.Command("sha256sum", {
      args: ["-c", "rivet-test.sha256"],
      cwd: join(dir, "bin"),
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(decoder.decode(check.stdout), "rivet-test: OK\n", decoder.decode(check.stderr));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a compile that cannot download its runtime says to set DENORT_BIN", async () => {
  assert.match(compileFailure("x86_64-apple-darwin", 1, false), /set DENORT_BIN/);
  assert.doesNotMatch(compileFailure("x86_64-apple-darwin", 1, true), /set DENORT_BIN/);
  const dir = await Deno.makeTempDir({ prefix: "rivet_compile_offline_" });
  try {
    // A proxy on a closed port stands for a machine without internet access.
    const out = await runScript(["--output", join(dir, "rivet")], {
      HTTPS_PROXY: "http://127.0.0.1:9",
      HTTP_PROXY: "http://127.0.0.1:9",
      DENORT_BIN: "",
    });
    const stderr = decoder.decode(out.stderr);
    if (out.code === 0) return; // this machine already holds the runtime in its cache
    assert.equal(out.code, 1, stderr);
    assert.match(stderr, /deno compile failed for .* set DENORT_BIN to a denort binary/s);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the generated entry records commit and target before starting the CLI", () => {
  const src = buildEntrySource({ commit: "0123abc", target: "x86_64-apple-darwin" }, "../cli.ts");
  assert.equal(
    src,
    "// Generated by scripts/compile.ts for one binary; not committed.\n" +
      'import { start } from "../cli.ts";\n' +
      "(globalThis as Record<string, unknown>).__RIVET_BUILD__ = " +
      '{"commit":"0123abc","target":"x86_64-apple-darwin"};\n' +
      "await start();\n",
  );
});
