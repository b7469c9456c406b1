/**
 * `rivet completions bash|zsh|fish`: each script is valid for its shell and really completes in
 * it (bash through its completion variables, fish through `complete -C`, zsh through the
 * function with `compadd` recorded, since zsh's completion system needs a terminal); the scripts
 * come from the command tree, so a command added to the tree is completed without editing the
 * generator; an unknown shell is a usage error.
 */
import assert from "node:assert/strict";
import { Command, Option } from "commander";
import { runCli } from "../_helpers/cli.ts";
import { completionScript, SHELLS } from "../../src/cli/commands/completions.ts";

async function script(shell: string): Promise<string> {
  const res = await runCli(["completions", shell]);
  assert.equal(res.code, 0, res.stderr);
  assert.equal(res.stderr, "");
  return res.stdout;
}

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

async function has(cmd: string): Promise<boolean> {
  return (await run("sh", ["-c", `command -v ${cmd}`]).catch(() => ({ code: 1 }))).code === 0;
}

async function withFile<T>(text: string, body: (path: string) => Promise<T>): Promise<T> {
  const path = await Deno.makeTempFile({ prefix: "rivet_completion_" });
  try {
    await Deno.writeTextFile(path, text);
    return await body(path);
  } finally {
    await Deno.remove(path);
  }
}

/** Shell words of a command line that ends in the word being completed. */
const cases: [string[], string[]][] = [
  [["rivet", ""], ["run", "state", "metrics", "journal", "schema", "completions"]],
  [["rivet", "state", ""], ["show", "files", "chunks", "progression"]],
  [["rivet", "state", "show", "--"], ["--config", "--json", "--json-errors"]],
  [["rivet", "validate", "--format", ""], ["pretty", "json"]],
  [["rivet", "run", "--events", ""], ["ndjson"]],
  [["rivet", "completions", ""], ["bash", "zsh", "fish"]],
  [["rivet", "schema", ""], ["config"]],
  // An option's value is not taken for a command.
  [["rivet", "metrics", "-e", "state", "--"], ["--last", "--json"]],
];

async function bashCompletes(text: string, line: string[]): Promise<string[]> {
  const words = line.map((w) => `'${w}'`).join(" ");
  return await withFile(text, async (path) => {
    const res = await run("bash", [
      "-c",
      `source '${path}'; COMP_WORDS=(${words}); COMP_CWORD=${line.length - 1}; _rivet; ` +
      `printf '%s\\n' "\${COMPREPLY[@]}"`,
    ]);
    assert.equal(res.code, 0, res.out);
    return res.out.split("\n").filter((l) => l !== "");
  });
}

Deno.test("the bash script is valid bash and completes commands, subcommands, options and choices", async () => {
  const text = await script("bash");
  await withFile(text, async (path) => {
    const res = await run("bash", ["-n", path]);
    assert.equal(res.code, 0, res.out);
  });
  for (const [line, expected] of cases) {
    const got = await bashCompletes(text, line);
    for (const word of expected) assert.ok(got.includes(word), `${line.join(" ")}: ${got}`);
  }
  // Only the choices of --format, and only the matching subcommands.
  assert.deepEqual(
    (await bashCompletes(text, ["rivet", "validate", "--format", ""])).sort(),
    ["json", "pretty"],
  );
  assert.deepEqual(await bashCompletes(text, ["rivet", "state", "re"]), ["reset", "reset-chunks"]);
  // Hidden options stay hidden.
  const runOptions = await bashCompletes(text, ["rivet", "run", "--"]);
  assert.ok(!runOptions.includes("--process-child"), String(runOptions));
});

/**
 * How each other shell checks a script's syntax and lists what it offers for a command line.
 * zsh: compadd and compdef belong to its completion system, which needs a terminal, so the test
 * records what the function hands to compadd.
 */
const shells: Record<"fish" | "zsh", {
  syntax: (path: string) => string[];
  complete: (path: string, line: string[]) => string[];
}> = {
  fish: {
    syntax: (path) => ["--no-execute", path],
    complete: (path, line) => ["-c", `source '${path}'; complete -C '${line.join(" ")}'`],
  },
  zsh: {
    syntax: (path) => ["-n", path],
    complete: (path, line) => [
      "-c",
      `compdef() { :; }; compadd() { [[ $1 == -- ]] && shift; print -l -- "$@"; }; ` +
      `_files() { print -- FILES; }; source '${path}'; ` +
      `words=(${line.map((w) => `'${w}'`).join(" ")}); CURRENT=${line.length}; _rivet`,
    ],
  },
};

for (const [shell, how] of Object.entries(shells)) {
  Deno.test({
    name: `the ${shell} script is valid ${shell} and completes the same words`,
    // Skipped on a machine without the shell, but never in CI, which installs all three.
    ignore: !(await has(shell)) && Deno.env.get("CI") === undefined,
    async fn() {
      await withFile(await script(shell), async (path) => {
        const check = await run(shell, how.syntax(path));
        assert.equal(check.code, 0, check.out);
        for (const [line, expected] of cases) {
          const res = await run(shell, how.complete(path, line));
          assert.equal(res.code, 0, res.out);
          // fish prints `word<TAB>description`.
          const got = res.out.split("\n").map((l) => l.split("\t")[0]!);
          for (const word of expected) assert.ok(got.includes(word), `${line.join(" ")}: ${got}`);
        }
      });
    },
  });
}

Deno.test("scripts follow the command tree: a new command and its choices appear without edits", () => {
  const root = new Command("rivet").option("--json-errors", "errors as JSON");
  root.command("zz-new").description("a new command")
    .addOption(new Option("--mode <m>", "a mode").choices(["alpha", "beta"]));
  for (const shell of SHELLS) {
    const text = completionScript(shell, root);
    // fish writes long options without their dashes (`-l mode`).
    for (const word of ["zz-new", "mode", "alpha", "beta", "json-errors"]) {
      assert.ok(text.includes(word), `${shell}: ${word}`);
    }
  }
});

Deno.test("an unknown or missing shell is a usage error (exit 2) naming the shells", async () => {
  for (const args of [["completions", "powershell"], ["completions"]]) {
    const res = await runCli(args);
    assert.equal(res.code, 2, res.stderr);
    assert.equal(res.stdout, "");
    assert.ok(!/^Error:/m.test(res.stderr), res.stderr);
  }
  const bad = await runCli(["completions", "tcsh"]);
  assert.match(bad.stderr, /bash, zsh, fish/);
});
