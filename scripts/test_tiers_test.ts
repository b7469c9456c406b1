/**
 * The test tiers of `deno.json` stay honest: together they run every test file exactly once, the
 * unit tier runs in parallel and starts no server, emulator or tmpfs, and process-memory tests
 * run only in the slow tier. Each rule is also shown failing on a made-up case.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { summary, type Tier, tiersOf } from "./test_tiers.ts";

const root = fileURLToPath(new URL("../", import.meta.url));
const SKIP_DIRS = new Set([".git", "node_modules", ".emulators", ".bench", "out", ".rivet"]);

/**
 * Test files that still start a server, an emulator or a tmpfs under `src/` because they are
 * being moved to `tests/destinations/` (issue 11). Each entry must exist: once the move lands,
 * this test fails until the entry is removed, so the exemption cannot outlive its reason.
 */
const PENDING_MOVE = [
  "src/destinations/local_test.ts",
];

/** This file quotes what the rules look for, in its samples and patterns. */
const SELF = "scripts/test_tiers_test.ts";

/** A test module as `deno test` finds it in a folder. */
const isTestFile = (path: string) => /(?:^|[/_.])test\.[cm]?[jt]sx?$/.test(path);

async function walk(dir: string, out: string[] = []): Promise<string[]> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory && !SKIP_DIRS.has(entry.name)) await walk(path, out);
    else if (entry.isFile) out.push(relative(root, path).replaceAll("\\", "/"));
  }
  return out;
}

/** The paths, folders and globs a `deno test` command line names, unquoted. */
export function testTargets(command: string): string[] {
  const words = command.match(/'[^']*'|"[^"]*"|\S+/g) ?? [];
  const at = words.findIndex((w, i) => w === "test" && words[i - 1]?.endsWith("deno"));
  assert.ok(at >= 0, `not a deno test command: ${command}`);
  return words.slice(at + 1).filter((w) => !w.startsWith("-")).map((w) =>
    w.replace(/^['"]|['"]$/g, "")
  );
}

/** Whether a target (file, folder ending in `/`, or glob with `*` and `**`) takes `file`. */
export function targetTakes(target: string, file: string): boolean {
  const t = target.replace(/^\.\//, "");
  if (t.includes("*")) {
    const pattern = t.split(/(\*\*\/|\*)/).map((part) =>
      part === "**/"
        ? "(?:.*/)?"
        : part === "*"
        ? "[^/]*"
        : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")
    ).join("");
    return new RegExp(`^${pattern}$`).test(file);
  }
  if (t.endsWith("/")) return file.startsWith(t) && isTestFile(file);
  return file === t;
}

/** Which tiers run `file`. */
export function tiersTaking(tiers: readonly Tier[], file: string): string[] {
  return tiers.filter((tier) => testTargets(tier.command).some((t) => targetTakes(t, file)))
    .map((tier) => tier.task);
}

const SERVER_HELPER =
  /["'][^"']*\/(?:_helpers\/(?:pg_server|mariadb_server|s3rver|azurite|gcs_server|emulators)|e2e\/_engines|_bench_pg|_bench_mysql)\.ts["']/;

/** Why a unit-tier file is too heavy for it, or undefined. */
export function unitTierViolation(text: string): string | undefined {
  const helper = text.match(SERVER_HELPER);
  if (helper) return `imports the server/emulator helper ${helper[0]}`;
  if (/\btmpfs\b/.test(text)) return "mounts a tmpfs";
  return undefined;
}

/** Whether a test file measures process memory (and so belongs in the slow tier). */
export const measuresMemory = (text: string) =>
  /memoryUsage\(\)|\bmeasureProcess\(|VmHWM|VmRSS/.test(text);

const tiers = tiersOf(await Deno.readTextFile(join(root, "deno.json")));
const files = (await walk(root)).sort();
const testFiles = files.filter(isTestFile);

Deno.test("deno task test runs every tier through scripts/test_tiers.ts", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(join(root, "deno.json"))).tasks;
  assert.match(tasks.test.command, /^deno run -A scripts\/test_tiers\.ts$/);
  assert.deepEqual(
    tiers.map((t) => t.task).filter((t) => ["test:unit", "test:cli", "test:slow"].includes(t)),
    ["test:unit", "test:cli", "test:slow"],
  );
  assert.ok(tiers.some((t) => t.task.startsWith("test:e2e:")));
});

Deno.test("every test file runs in exactly one tier", () => {
  assert.ok(testFiles.length > 50, `found only ${testFiles.length} test files`);
  const wrong = testFiles.map((f) => ({ f, in: tiersTaking(tiers, f) }))
    .filter((x) => x.in.length !== 1)
    .map((x) => `${x.f}: ${x.in.length === 0 ? "in no tier" : `in ${x.in.join(", ")}`}`);
  assert.deepEqual(wrong, [], "add each file to exactly one test:* task of deno.json");
});

Deno.test("every path a tier names exists (globs may match nothing yet)", async () => {
  const missing: string[] = [];
  for (const tier of tiers) {
    for (const target of testTargets(tier.command)) {
      if (target.includes("*")) continue;
      try {
        await Deno.stat(join(root, target));
      } catch {
        missing.push(`${tier.task}: ${target}`);
      }
    }
  }
  assert.deepEqual(missing, []);
});

Deno.test("the unit tier runs in parallel, with no server, emulator or tmpfs", async () => {
  const unit = tiers.find((t) => t.task === "test:unit");
  assert.ok(unit, "deno.json has a test:unit task");
  assert.match(unit.command, /deno test .*--parallel/);
  assert.ok(testTargets(unit.command).includes("src/"), "the unit tier is every test under src/");
  const heavy: string[] = [];
  for (const file of testFiles.filter((f) => tiersTaking([unit], f).length > 0)) {
    if (PENDING_MOVE.includes(file) || file === SELF) continue;
    const why = unitTierViolation(await Deno.readTextFile(join(root, file)));
    if (why) heavy.push(`${file} ${why}: move it under tests/ (an e2e tier)`);
  }
  assert.deepEqual(heavy, []);
});

Deno.test("process-memory tests run only in the slow tier", async () => {
  const misplaced: string[] = [];
  for (const file of testFiles) {
    if (PENDING_MOVE.includes(file) || file === SELF) continue;
    if (!measuresMemory(await Deno.readTextFile(join(root, file)))) continue;
    const taking = tiersTaking(tiers, file);
    if (taking.join() !== "test:slow") {
      misplaced.push(`${file} (in ${taking.join(", ") || "none"})`);
    }
  }
  assert.deepEqual(misplaced, [], "put RSS tests in tests/slow/ (their own files)");
});

Deno.test("every file exempted as pending its move still exists", () => {
  const gone = PENDING_MOVE.filter((f) => !files.includes(f));
  assert.deepEqual(gone, [], "moved: delete these entries from PENDING_MOVE");
});

Deno.test("the tier rules catch what they are meant to catch", () => {
  assert.match(
    unitTierViolation('import { startPostgres } from "../../tests/_helpers/pg_server.ts";') ?? "",
    /pg_server/,
  );
  assert.match(unitTierViolation('await import("../_helpers/azurite.ts")') ?? "", /azurite/);
  assert.match(
    unitTierViolation('new Deno.Command("mount", { args: ["-t", "tmpfs"] })') ?? "",
    /tmpfs/,
  );
  assert.equal(
    unitTierViolation('import { x } from "../_helpers/memory_destination.ts";'),
    undefined,
  );
  assert.ok(measuresMemory("const rss = Deno.memoryUsage().rss;"));
  assert.ok(!measuresMemory("const peakRssMb = 88;"));

  const made: Tier[] = [
    { task: "test:a", command: "TZ=X deno test -A --parallel src/ tests/x_test.ts" },
    { task: "test:b", command: "deno test -A 'tests/d/**/*_test.ts' tests/x_test.ts" },
  ];
  assert.deepEqual(testTargets(made[1]!.command), ["tests/d/**/*_test.ts", "tests/x_test.ts"]);
  assert.deepEqual(tiersTaking(made, "src/a/b_test.ts"), ["test:a"]);
  assert.deepEqual(tiersTaking(made, "src/a/b.ts"), []);
  assert.deepEqual(tiersTaking(made, "tests/x_test.ts"), ["test:a", "test:b"]);
  assert.deepEqual(tiersTaking(made, "tests/d/e/f_test.ts"), ["test:b"]);
  assert.deepEqual(tiersTaking(made, "tests/d/f_test.ts"), ["test:b"]);
  assert.deepEqual(tiersTaking(made, "tests/e/f_test.ts"), []);
});

Deno.test("the closing table names each tier's time and result", () => {
  const text = summary([
    { task: "test:unit", seconds: 21.4, code: 0 },
    { task: "test:e2e:pg", seconds: 95, code: 1 },
  ]);
  assert.match(text, /^test:unit +21 s {2}ok$/m);
  assert.match(text, /^test:e2e:pg +95 s {2}FAILED \(exit 1\)$/m);
  assert.match(text, /^total +116 s {2}1 of 2 tiers FAILED$/m);
});
