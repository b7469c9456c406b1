/**
 * Help-text snapshots: `rivet --help` and `rivet <command> --help` for every command and
 * subcommand (found by walking the "Commands:" lists, so a new command gets a snapshot too)
 * must match `tests/cli/__snapshots__/help/<command path>.txt` byte for byte. A change to the
 * help is then a visible diff in review.
 *
 * Each help runs `cli.ts` in a subprocess with stdout piped, as a script or a pipe sees it: not a
 * terminal, so commander wraps at its fixed 80 columns and prints no colour.
 *
 * After a deliberate change, rewrite the snapshots (and delete those of removed commands) with
 * `UPDATE_SNAPSHOTS=1 deno test -A tests/cli/help_snapshot_test.ts` and review the diff.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawnCli } from "../_helpers/cli.ts";

const SNAPSHOTS = new URL("./__snapshots__/help/", import.meta.url);
const UPDATE = Deno.env.get("UPDATE_SNAPSHOTS") === "1";
const HOW_TO_UPDATE =
  "if the change is intended, run UPDATE_SNAPSHOTS=1 deno test -A tests/cli/help_snapshot_test.ts";

/**
 * The subcommand names of a help text's "Commands:" list (commander's own `help` left out).
 *
 * @param help The text of one `--help`.
 * @returns The names, in the order listed.
 */
export function subcommands(help: string): string[] {
  const lines = help.split("\n");
  const start = lines.indexOf("Commands:");
  if (start < 0) return [];
  const names: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === "") break;
    // An entry starts two spaces in; wrapped descriptions are indented further.
    const entry = line.match(/^ {2}([a-z][\w-]*)/);
    if (entry && entry[1] !== "help") names.push(entry[1]!);
  }
  return names;
}

/** The snapshot file of a command path: `rivet`, `rivet_state_show`. */
const fileOf = (path: readonly string[]) => ["rivet", ...path].join("_") + ".txt";

/** Runs `rivet <path> --help` and returns its stdout, which must be the only output. */
async function help(path: readonly string[]): Promise<string> {
  const r = await spawnCli([...path, "--help"], { env: { NO_COLOR: "1" } });
  assert.equal(r.code, 0, `rivet ${path.join(" ")} --help exited ${r.code}: ${r.stderr}`);
  assert.equal(r.stderr, "", `rivet ${path.join(" ")} --help wrote to stderr`);
  return r.stdout;
}

/** Every command path below the root with its help text, breadth first. */
async function allHelps(): Promise<Map<string, { path: string[]; text: string }>> {
  const found = new Map<string, { path: string[]; text: string }>();
  let level: string[][] = [[]];
  while (level.length > 0) {
    const texts = await Promise.all(level.map(help));
    const next: string[][] = [];
    level.forEach((path, i) => {
      found.set(fileOf(path), { path, text: texts[i]! });
      for (const name of subcommands(texts[i]!)) next.push([...path, name]);
    });
    level = next;
  }
  return found;
}

async function readSnapshot(name: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(new URL(name, SNAPSHOTS));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

async function snapshotNames(): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(SNAPSHOTS)) {
      if (entry.isFile && entry.name.endsWith(".txt")) names.push(entry.name);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return names.sort();
}

Deno.test("subcommands reads the Commands: list, wrapped lines and help left out", () => {
  const text = [
    "Usage: rivet [options] [command]",
    "",
    "Options:",
    "  -h, --help       show help",
    "",
    "Commands:",
    "  run [options]    run the exports of a config file",
    "  state            inspect or reset the state kept in .rivet_state.db next to",
    "                   the config",
    "  reset-chunks     delete checkpointed chunk runs",
    "  help [command]   display help for command",
    "",
    "Getting started:",
    "  1. rivet init -o rivet.yaml",
  ].join("\n");
  assert.deepEqual(subcommands(text), ["run", "state", "reset-chunks"]);
  assert.deepEqual(subcommands("Usage: rivet run [options]\n"), []);
});

Deno.test("every command's --help matches its snapshot", async (t) => {
  const helps = await allHelps();
  // The walk must have found the command tree, not an empty or broken help.
  for (const name of ["rivet.txt", "rivet_run.txt", "rivet_state.txt", "rivet_state_show.txt"]) {
    assert.ok(helps.has(name), `the walk found ${name}`);
  }
  if (UPDATE) await Deno.mkdir(SNAPSHOTS, { recursive: true });
  for (const [name, { path, text }] of helps) {
    await t.step(`rivet ${[...path, "--help"].join(" ")}`, async () => {
      if (UPDATE) {
        await Deno.writeTextFile(new URL(name, SNAPSHOTS), text);
        return;
      }
      const expected = await readSnapshot(name);
      assert.ok(expected !== undefined, `no snapshot ${name}; ${HOW_TO_UPDATE}`);
      assert.equal(text, expected, `the help differs from ${name}; ${HOW_TO_UPDATE}`);
    });
  }
  const stale = (await snapshotNames()).filter((name) => !helps.has(name));
  if (UPDATE) {
    for (const name of stale) await Deno.remove(new URL(name, SNAPSHOTS));
  } else {
    assert.deepEqual(stale, [], `snapshots of commands that no longer exist; ${HOW_TO_UPDATE}`);
  }
});
