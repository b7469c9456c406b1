/**
 * `docs/error-codes.md` lists exactly the error and warning codes `src/` can raise: a code added
 * to the code but not to the catalogue fails here, and so does a catalogue entry nothing raises
 * any more.
 *
 * A code is a string literal `family.snake_name` in a product file of `src/` (tests and comments
 * left out), whatever carries it: `code: "config.bad_key"`, a helper such as
 * `fail(message, "config.no_exports")`, or a constant. The families are those of the
 * `code: "…"` literals plus those of the catalogue.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const CATALOGUE = join(root, "docs", "error-codes.md");

/**
 * Literals of the code shape that are not codes: config key paths quoted in messages and
 * support tables. Add one here only if it names a config key.
 */
const NOT_CODES = new Set([
  "destination.credentials_file",
  "destination.type",
  "quality.unique_columns",
  "schema.name",
  "source.environment",
  "source.tls",
  "source.tuning",
  "source.type",
]);

/** Lines of a source text without the comment-only lines (doc examples quote codes too). */
const withoutComments = (text: string) =>
  text.split("\n").filter((line) => !/^\s*(\/\/|\/\*|\*)/.test(line)).join("\n");

/** The families named by `code: "family.x"` literals in a text. */
export function codeFamilies(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of withoutComments(text).matchAll(/code: "([a-z]+)\.[a-z][a-z0-9_]*"/g)) {
    out.add(m[1]!);
  }
  return out;
}

/** Every code-shaped literal of one of `families` in a text (file names and key paths left out). */
export function codesIn(text: string, families: ReadonlySet<string>): Set<string> {
  const out = new Set<string>();
  for (const m of withoutComments(text).matchAll(/(["'`])([a-z]+)\.([a-z][a-z0-9_]*)\1/g)) {
    const [, , family, name] = m;
    const code = `${family}.${name}`;
    if (!families.has(family!) || NOT_CODES.has(code)) continue;
    if (/^(ts|js|json|yaml|yml|db|md|txt|html|png)$/.test(name!) || name!.endsWith("_")) continue;
    out.add(code);
  }
  return out;
}

/** The codes of the catalogue: the first cell of each table row, in backticks. */
export function catalogued(markdown: string): Set<string> {
  return new Set([...markdown.matchAll(/^\| `([a-z]+\.[a-z][a-z0-9_]*)` +\|/gm)].map((m) => m[1]!));
}

async function productFiles(dir: string, out: string[] = []): Promise<string[]> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) await productFiles(path, out);
    else if (entry.name.endsWith(".ts") && !/_test\.ts$/.test(entry.name)) out.push(path);
  }
  return out;
}

Deno.test("docs/error-codes.md lists every code src/ raises, and only those", async () => {
  const texts = new Map<string, string>();
  for (const file of await productFiles(join(root, "src"))) {
    texts.set(relative(root, file), await Deno.readTextFile(file));
  }
  const doc = catalogued(await Deno.readTextFile(CATALOGUE));
  const families = new Set([...doc].map((c) => c.split(".")[0]!));
  for (const text of texts.values()) for (const f of codeFamilies(text)) families.add(f);

  const raised = new Map<string, string>();
  for (const [file, text] of texts) {
    for (const code of codesIn(text, families)) if (!raised.has(code)) raised.set(code, file);
  }
  assert.ok(raised.size > 100, `found only ${raised.size} codes: is the scan broken?`);
  const missing = [...raised].filter(([code]) => !doc.has(code)).map(([c, f]) => `${c} (${f})`);
  const stale = [...doc].filter((code) => !raised.has(code));
  assert.deepEqual(missing.sort(), [], "raised in src/ but not in docs/error-codes.md");
  assert.deepEqual(stale.sort(), [], "in docs/error-codes.md but raised nowhere in src/");
});

Deno.test("the scan finds codes however they are passed, and skips comments and key paths", () => {
  const text = [
    '/** @example new ConfigError("x", { code: "config.in_a_comment" }) */',
    'throw new ConfigError("bad", { code: "config.bad_key", hint: "fix it" });',
    'fail("source: no connection configured", "config.missing_connection");',
    'export const PERMISSION_DENIED = "permission.denied";',
    'const key = "source.type"; const file = "manifest.json"; const p = "source.tls_";',
    '// code: "config.only_commented"',
  ].join("\n");
  const families = codeFamilies(text);
  assert.deepEqual([...families], ["config"]);
  families.add("permission").add("source").add("manifest");
  assert.deepEqual([...codesIn(text, families)].sort(), [
    "config.bad_key",
    "config.missing_connection",
    "permission.denied",
  ]);
  assert.deepEqual(
    [...catalogued("| Code | Exit |\n| --- | --- |\n| `config.bad_key` | 1 | … |\n")],
    ["config.bad_key"],
  );
});
