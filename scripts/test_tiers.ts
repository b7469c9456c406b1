/**
 * `deno task test`: runs every test tier of `deno.json` (the tasks named `test:<tier>`, in the
 * order they are declared) one after another, keeps going after a failing tier so one run shows
 * every failure, prints how long each tier took, and exits non-zero if any tier failed.
 *
 * The tiers themselves are plain `deno test` commands in `deno.json`, so each can be run alone
 * (`deno task test:unit`); `scripts/test_tiers_test.ts` checks that together they run every test
 * file exactly once. See `docs/testing.md`.
 *
 * Usage: `deno run -A scripts/test_tiers.ts [tier ...]` (default: every tier).
 *
 * @module
 */

/** One `test:<tier>` task of `deno.json`. */
export interface Tier {
  /** The task name, `test:unit`. */
  readonly task: string;
  /** Its command line. */
  readonly command: string;
}

/**
 * The test tiers declared in a `deno.json` text, in declaration order.
 *
 * @param denoJson The text of `deno.json`.
 * @returns Every task whose name starts with `test:`.
 */
export function tiersOf(denoJson: string): Tier[] {
  const tasks = JSON.parse(denoJson).tasks ?? {};
  return Object.entries(tasks as Record<string, string | { command: string }>)
    .filter(([name]) => name.startsWith("test:"))
    .map(([task, value]) => ({
      task,
      command: typeof value === "string" ? value : value.command,
    }));
}

/** What one tier did. */
export interface TierResult {
  readonly task: string;
  readonly seconds: number;
  readonly code: number;
}

/**
 * The closing table: one line per tier with its time and result, then the total.
 *
 * @param results The tiers run, in order.
 * @returns The text to print.
 */
export function summary(results: readonly TierResult[]): string {
  const width = Math.max(...results.map((r) => r.task.length), "total".length);
  const line = (name: string, seconds: number, result: string) =>
    `${name.padEnd(width)}  ${seconds.toFixed(0).padStart(5)} s  ${result}`;
  const total = results.reduce((sum, r) => sum + r.seconds, 0);
  const failed = results.filter((r) => r.code !== 0).length;
  return [
    "== test tiers",
    ...results.map((r) => line(r.task, r.seconds, r.code === 0 ? "ok" : `FAILED (exit ${r.code})`)),
    line("total", total, failed === 0 ? "ok" : `${failed} of ${results.length} tiers FAILED`),
    "",
  ].join("\n");
}

if (import.meta.main) {
  const root = new URL("../", import.meta.url);
  const all = tiersOf(await Deno.readTextFile(new URL("deno.json", root)));
  const wanted = Deno.args.map((a) => (a.startsWith("test:") ? a : `test:${a}`));
  const unknown = wanted.filter((w) => !all.some((t) => t.task === w));
  if (unknown.length > 0) {
    console.error(
      `unknown tier ${unknown.join(", ")}; the tiers are: ${all.map((t) => t.task).join(", ")}`,
    );
    Deno.exit(2);
  }
  const results: TierResult[] = [];
  for (const tier of all.filter((t) => wanted.length === 0 || wanted.includes(t.task))) {
    console.log(`== deno task ${tier.task}`);
    const started = performance.now();
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: ["task", tier.task],
      cwd: root,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    results.push({ task: tier.task, seconds: (performance.now() - started) / 1000, code });
  }
  console.log(summary(results));
  Deno.exit(results.every((r) => r.code === 0) ? 0 : 1);
}
