import assert from "node:assert/strict";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseYamlTree } from "./yaml_tree.ts";

Deno.test("the YAML parser's LOG_TOKENS / LOG_STREAM switches are never read", async () => {
  const before = { tokens: Deno.env.get("LOG_TOKENS"), stream: Deno.env.get("LOG_STREAM") };
  const realEnv = process.env;
  const printed: unknown[] = [];
  const { log, dir } = console;
  Deno.env.set("LOG_TOKENS", "1");
  Deno.env.set("LOG_STREAM", "1");
  console.log = (...args: unknown[]) => printed.push(args);
  console.dir = (...args: unknown[]) => printed.push(args);
  try {
    const tree = await parseYamlTree("source:\n  type: postgres\nexports: []\n");
    assert.equal(tree.kind, "map");
  } finally {
    console.log = log;
    console.dir = dir;
    for (const [name, value] of [["LOG_TOKENS", before.tokens], ["LOG_STREAM", before.stream]]) {
      if (value === undefined) Deno.env.delete(name!);
      else Deno.env.set(name!, value);
    }
  }
  // Set, they would print every token and node on stdout (an --events ndjson stream included).
  assert.deepEqual(printed, []);
  assert.equal(process.env, realEnv, "process.env is the real one again after the parse");
  assert.equal(process.env.PATH, Deno.env.get("PATH"));
});

Deno.test("a config parses without env access to LOG_TOKENS / LOG_STREAM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_yaml_env_" });
  try {
    const script = `${dir}/parse.ts`;
    await Deno.writeTextFile(
      script,
      `import { parseYamlTree } from ${
        JSON.stringify(new URL("./yaml_tree.ts", import.meta.url).href)
      };\nconsole.log((await parseYamlTree("a: [1, 2]")).kind);\n`,
    );
    // No --allow-env at all (and no prompt): the parse must not ask for a variable.
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        "--config",
        fileURLToPath(new URL("../../deno.json", import.meta.url)),
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    assert.equal(out.code, 0, dec.decode(out.stderr));
    assert.equal(dec.decode(out.stdout).trim(), "map");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
