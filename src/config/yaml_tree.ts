/**
 * YAML text → a small position-aware tree, with syntax errors that name line and column and
 * never echo the source line (it may hold a password).
 *
 * Layer: config. The only file importing the `yaml` package (with `_yaml_env.ts`).
 *
 * @module
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter } from "yaml";
// npm:yaml's parseDocument with its debug variables hidden (no --allow-env needed for them).
import { parseDocument } from "./_yaml_env.ts";
import type { Document, Node as YamlNode } from "yaml";
import { ConfigError } from "../core/errors.ts";

/** A 1-based source position. */
export interface Position {
  readonly line: number;
  readonly col: number;
}

/** One `key: value` pair of a mapping. */
export interface TreeEntry {
  readonly key: string;
  readonly keyPos: Position;
  readonly value: TreeNode;
}

/** A parsed YAML node. Scalars keep the YAML 1.2 core-schema value (string, number, bool, null). */
export type TreeNode =
  | { readonly kind: "map"; readonly entries: readonly TreeEntry[]; readonly pos: Position }
  | { readonly kind: "seq"; readonly items: readonly TreeNode[]; readonly pos: Position }
  | {
    readonly kind: "scalar";
    readonly value: string | number | boolean | null;
    readonly pos: Position;
  };

/**
 * Parses YAML text into a {@linkcode TreeNode}. An empty document becomes an empty mapping.
 *
 * @param text YAML after placeholder substitution.
 * @returns The root node.
 * @throws {ConfigError} `config.yaml_syntax` with line/column and, when they apply, the
 *   brace-quoting and tab-indentation hints.
 */
export function parseYamlTree(text: string): TreeNode {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first) {
    const start = first.linePos?.[0] ?? lineCounter.linePos(first.pos[0]);
    throw new ConfigError(
      `YAML syntax error at line ${start.line}, column ${start.col}: ${
        firstSentence(first.message)
      }`,
      { code: "config.yaml_syntax", ...syntaxHint(text, start.line, first.code) },
    );
  }
  const pos = (offset: number | undefined): Position => lineCounter.linePos(offset ?? 0);
  return convert(doc, doc.contents, pos, 0) ?? { kind: "map", entries: [], pos: pos(0) };
}

// The yaml message ends with " at line L, column C:\n\n<source excerpt>": keep the reason only.
function firstSentence(message: string): string {
  const head = message.split("\n")[0] ?? message;
  return head.replace(/ at line \d+, column \d+:?$/, "").replace(/:$/, "");
}

const braceHint =
  "values with brace templates such as {partition}, {date} or {export} must be quoted, " +
  `e.g. path: "out/{export}/{date}/"`;
const tabHint = "YAML does not allow tabs for indentation; indent with spaces";

// An unquoted value (after `key:` or `- `) holding `{`: YAML reads a leading `{` as a flow mapping.
function hasUnquotedBrace(line: string): boolean {
  let rest = line.trim().replace(/^-\s+/, "");
  const colon = rest.search(/:(\s|$)/);
  if (colon >= 0) rest = rest.slice(colon + 1).trim();
  if (rest.startsWith("'") || rest.startsWith('"') || rest.startsWith("#")) return false;
  return rest.includes("{");
}

function syntaxHint(text: string, line: number, code: string): { hint?: string } {
  const lines = text.split("\n");
  const hints: string[] = [];
  // The scanner often reports an unclosed `{` on the next line, so look one line back as well.
  const suspects = [lines[line - 1], lines[line - 2]].filter((l): l is string => l !== undefined);
  if (suspects.some(hasUnquotedBrace)) hints.push(braceHint);
  if (code === "TAB_AS_INDENT" || lines.some((l) => /^ *\t/.test(l))) hints.push(tabHint);
  return hints.length > 0 ? { hint: hints.join("\n") } : {};
}

function convert(
  doc: Document,
  node: unknown,
  pos: (offset: number | undefined) => Position,
  depth: number,
): TreeNode | undefined {
  if (node === null || node === undefined) return undefined;
  if (depth > 64) {
    throw new ConfigError("YAML nesting is deeper than 64 levels", {
      code: "config.yaml_syntax",
    });
  }
  if (isAlias(node)) return convert(doc, node.resolve(doc), pos, depth + 1);
  const yamlNode = node as YamlNode;
  const at = pos(yamlNode.range?.[0]);
  if (isMap(node)) {
    const entries: TreeEntry[] = [];
    for (const pair of node.items) {
      const keyNode = pair.key;
      const keyAt = pos((keyNode as YamlNode | null)?.range?.[0]);
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === "object") {
        throw new ConfigError(
          `YAML mapping key at line ${keyAt.line}, column ${keyAt.col} must be a plain word`,
          { code: "config.yaml_syntax" },
        );
      }
      const value = convert(doc, pair.value, pos, depth + 1) ??
        { kind: "scalar" as const, value: null, pos: keyAt };
      entries.push({ key: String(keyNode.value), keyPos: keyAt, value });
    }
    return { kind: "map", entries, pos: at };
  }
  if (isSeq(node)) {
    const items = node.items.map((item) =>
      convert(doc, item, pos, depth + 1) ?? { kind: "scalar" as const, value: null, pos: at }
    );
    return { kind: "seq", items, pos: at };
  }
  if (isScalar(node)) {
    const value = node.value;
    if (
      value === null || typeof value === "string" || typeof value === "number" ||
      typeof value === "boolean"
    ) return { kind: "scalar", value, pos: at };
    return { kind: "scalar", value: String(value), pos: at };
  }
  return undefined;
}
