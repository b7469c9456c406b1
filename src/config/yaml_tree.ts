/**
 * YAML text → a small position-aware tree, with syntax errors that name line and column and
 * never echo the source line (it may hold a password).
 *
 * Hostile documents are refused in bounded time and memory: nesting deeper than
 * {@linkcode YAML_LIMITS}`.maxDepth`, more than `maxAliases` aliases, or a tree that would expand
 * to more than `maxNodes` nodes once aliases are followed (a "billion laughs" alias bomb is a few
 * hundred bytes that expand to billions of nodes). Aliases are resolved by this module, once each,
 * and share the converted subtree, so their cost is counted without being paid. The parse runs
 * token by token and yields to the event loop every few thousand tokens, so Ctrl-C is seen while
 * a large document is read.
 *
 * `${NAME}` placeholders are protected before parsing: each is replaced by an inert word, so a
 * placeholder can never change the document's structure, and every scalar that held one comes
 * back as a template (see `substitute.ts`). Placeholders in comments vanish with the comments;
 * placeholders in mapping keys are refused.
 *
 * Layer: config. The only file importing the `yaml` package (with `_yaml_env.ts`, which hides
 * the package's debug variables while it runs, so no `--allow-env` is needed for them).
 *
 * @module
 */
import { Composer, CST, isAlias, isMap, isScalar, isSeq, Lexer, Parser, Scalar } from "yaml";
import type { Alias, Document, Node as YamlNode } from "yaml";
import { ConfigError, InterruptedError } from "../core/errors.ts";
import { withoutYamlDebugEnv } from "./_yaml_env.ts";
import { PLACEHOLDER_PATTERN } from "./substitute.ts";

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

/** A piece of a templated scalar: literal text, or a `${name}` placeholder. */
export type TemplatePart = string | { readonly name: string };

/** A parsed YAML node. Scalars keep the YAML 1.2 core-schema value (string, number, bool, null). */
export type TreeNode =
  | { readonly kind: "map"; readonly entries: readonly TreeEntry[]; readonly pos: Position }
  | { readonly kind: "seq"; readonly items: readonly TreeNode[]; readonly pos: Position }
  | {
    readonly kind: "scalar";
    readonly value: string | number | boolean | null;
    readonly pos: Position;
    /**
     * Present when the scalar holds `${}` placeholders: its text as parts. `value` is then the
     * text as written (`${NAME}` included) until `substitute.ts` fills it in.
     */
    readonly template?: readonly TemplatePart[];
    /** Whether the scalar was written plain (unquoted): its type is resolved after substitution. */
    readonly plain?: boolean;
  };

/** Limits on what a config document may be. */
export const YAML_LIMITS = {
  /** Collections nested deeper than this are refused. */
  maxDepth: 64,
  /** Alias uses (`*name`) in one document. */
  maxAliases: 10_000,
  /** Nodes of the tree once every alias is expanded. */
  maxNodes: 200_000,
} as const;

/** Options of {@linkcode parseYamlTree}. */
export interface ParseYamlOptions {
  /** Ctrl-C: the parse stops with `InterruptedError` at its next yield. */
  readonly signal?: AbortSignal;
}

/** Where the protected text differs from the original: one entry per placeholder. */
interface Protected {
  readonly text: string;
  /** The inert word standing for each distinct placeholder name, by name. */
  readonly names: readonly string[];
  /** Matches the inert words; group 1 is the index into `names`. */
  readonly marker: RegExp;
  /** Start offset of each replacement in the protected text, ascending. */
  readonly starts: readonly number[];
  /** End offset of each replacement in the protected text. */
  readonly ends: readonly number[];
  /** Start offset of each placeholder in the original text. */
  readonly origins: readonly number[];
  /** Original offset minus protected offset just after each replacement. */
  readonly deltas: readonly number[];
}

function protect(text: string): Protected {
  let nonce: string;
  do {
    nonce = `Zq${Math.random().toString(36).slice(2, 10)}`;
  } while (text.includes(nonce));
  const names: string[] = [];
  const index = new Map<string, number>();
  const starts: number[] = [];
  const ends: number[] = [];
  const origins: number[] = [];
  const deltas: number[] = [];
  let delta = 0;
  const out = text.replace(PLACEHOLDER_PATTERN, (whole, raw: string, offset: number) => {
    const name = raw.trim();
    let i = index.get(name);
    if (i === undefined) {
      i = names.length;
      names.push(name);
      index.set(name, i);
    }
    // Letters and digits only: inert in any YAML context (plain, quoted, flow, block, key).
    const word = `${nonce}${i}Z`;
    const start = offset - delta;
    starts.push(start);
    ends.push(start + word.length);
    origins.push(offset);
    delta += whole.length - word.length;
    deltas.push(delta);
    return word;
  });
  return {
    text: out,
    names,
    marker: new RegExp(`${nonce}(\\d+)Z`, "g"),
    starts,
    ends,
    origins,
    deltas,
  };
}

/** Maps an offset of the protected text to a line and column of the original text. */
function positionMapper(original: string, p: Protected): (offset: number | undefined) => Position {
  const lineStarts = [0];
  for (let i = original.indexOf("\n"); i >= 0; i = original.indexOf("\n", i + 1)) {
    lineStarts.push(i + 1);
  }
  const last = (sorted: readonly number[], value: number): number => {
    let lo = 0;
    let hi = sorted.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! <= value) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
  return (offset) => {
    let at = offset ?? 0;
    const r = last(p.starts, at);
    if (r >= 0) at = at < p.ends[r]! ? p.origins[r]! : at + p.deltas[r]!;
    const line = Math.max(0, last(lineStarts, at));
    return { line: line + 1, col: at - lineStarts[line]! + 1 };
  };
}

function tooComplex(message: string): ConfigError {
  return new ConfigError(message, {
    code: "config.yaml_too_complex",
    hint: "a rivet config is a plain list of exports: remove the deep nesting or the aliases " +
      "that repeat large blocks",
  });
}

/** Lets timers and signal handlers run, then stops if the signal was aborted. */
async function breathe(signal: AbortSignal | undefined): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 0));
  if (signal?.aborted) throw new InterruptedError();
}

/** Lexes and parses token by token (yielding now and then), then composes the one document. */
async function parseDocument(
  text: string,
  pos: (offset: number | undefined) => Position,
  signal: AbortSignal | undefined,
): Promise<Document.Parsed> {
  if (signal?.aborted) throw new InterruptedError();
  const parser = new Parser();
  const tokens: CST.Token[] = [];
  let aliases = 0;
  let scalars = 0;
  const lexemes = new Lexer().lex(text)[Symbol.iterator]();
  // npm:yaml reads its debug switches (LOG_TOKENS, LOG_STREAM) from process.env on every token
  // and node: each synchronous stretch of the parse runs with them hidden, and the real
  // environment is back before every yield to the event loop.
  const step = (): boolean =>
    withoutYamlDebugEnv(() => {
      for (let n = 0; n < 4096; n++) {
        const next = lexemes.next();
        if (next.done) {
          for (const token of parser.end()) tokens.push(token);
          return true;
        }
        const lexeme = next.value;
        // Cheap early refusals, before the whole document is parsed: convert() applies the exact
        // limits, but a document with this many aliases or values cannot pass them anyway (a
        // value is a node; a key is a scalar too, hence twice the node limit).
        const type = CST.tokenType(lexeme);
        if (type === "alias" && ++aliases > YAML_LIMITS.maxAliases) {
          throw tooComplex(`YAML document uses more than ${YAML_LIMITS.maxAliases} aliases`);
        }
        if (type === "scalar" && ++scalars > 2 * YAML_LIMITS.maxNodes) {
          throw tooComplex(`YAML document holds more than ${YAML_LIMITS.maxNodes} values`);
        }
        for (const token of parser.next(lexeme)) tokens.push(token);
        // The parser's stack holds one entry per open collection (plus the document).
        if (parser.stack.length > YAML_LIMITS.maxDepth + 2) {
          throw tooComplex(`YAML nesting is deeper than ${YAML_LIMITS.maxDepth} levels`);
        }
      }
      return false;
    });
  while (!step()) await breathe(signal);
  await breathe(signal);
  // Duplicate keys are found in convert() with a Set: the library's own check is quadratic.
  const docs = withoutYamlDebugEnv(() => {
    const composer = new Composer({ prettyErrors: false, uniqueKeys: false });
    return [...composer.compose(tokens, true, text.length)];
  });
  const [doc, extra] = docs;
  if (extra !== undefined) {
    const at = pos(extra.range[0]);
    throw new ConfigError(
      `YAML syntax error at line ${at.line}, column ${at.col}: the file holds more than one ` +
        "YAML document",
      { code: "config.yaml_syntax", hint: "remove the `---` line: a config is one document" },
    );
  }
  return doc!;
}

/**
 * Parses YAML text into a {@linkcode TreeNode}. An empty document becomes an empty mapping.
 *
 * @param text The config file's text, `${NAME}` placeholders included.
 * @param options Abort signal.
 * @returns The root node; scalars that hold placeholders carry a `template`.
 * @throws {ConfigError} `config.yaml_syntax` with line/column and, when they apply, the
 *   brace-quoting and tab-indentation hints; `config.yaml_too_complex` for a document over
 *   {@linkcode YAML_LIMITS}; `config.placeholder_in_key` for `${}` in a mapping key.
 * @throws {InterruptedError} When `signal` aborts during the parse.
 */
export async function parseYamlTree(
  text: string,
  options: ParseYamlOptions = {},
): Promise<TreeNode> {
  const p = protect(text);
  const pos = positionMapper(text, p);
  const doc = await parseDocument(p.text, pos, options.signal);
  const first = doc.errors[0];
  if (first) {
    const start = pos(first.pos[0]);
    throw new ConfigError(
      `YAML syntax error at line ${start.line}, column ${start.col}: ${
        firstSentence(first.message)
      }`,
      { code: "config.yaml_syntax", ...syntaxHint(text, start.line, first.code) },
    );
  }
  const converter = new Converter(pos, p);
  const root = converter.convert(doc.contents, 0) ?? { kind: "map", entries: [], pos: pos(0) };
  await breathe(options.signal);
  return root;
}

// The yaml message may end with " at line L, column C:\n\n<source excerpt>": keep the reason only.
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

/** Size of an expanded subtree: how many nodes a walk over it visits. */
const sizes = new WeakMap<object, number>();
/** Height of a subtree (1 for a scalar), known without walking a shared subtree again. */
const heights = new WeakMap<object, number>();

function heightOf(node: TreeNode): number {
  return heights.get(node) ?? 1;
}

/** Converts the composed document, resolving aliases itself (once each, in document order). */
class Converter {
  readonly #pos: (offset: number | undefined) => Position;
  readonly #protected: Protected;
  /** The latest node carrying each anchor, in document order. */
  readonly #anchors = new Map<string, unknown>();
  /** Converted anchored nodes (aliases share them). */
  readonly #done = new Map<unknown, TreeNode>();
  /** Anchored nodes being converted: an alias to one of them is a cycle. */
  readonly #open = new Set<unknown>();
  #nodes = 0;
  #aliases = 0;

  constructor(pos: (offset: number | undefined) => Position, p: Protected) {
    this.#pos = pos;
    this.#protected = p;
  }

  #count(n: number): void {
    this.#nodes += n;
    if (this.#nodes > YAML_LIMITS.maxNodes) {
      throw tooComplex(
        `YAML document expands to more than ${YAML_LIMITS.maxNodes} nodes once its aliases ` +
          "are followed (an alias bomb?)",
      );
    }
  }

  convert(node: unknown, depth: number): TreeNode | undefined {
    if (node === null || node === undefined) return undefined;
    if (depth > YAML_LIMITS.maxDepth) {
      throw tooComplex(`YAML nesting is deeper than ${YAML_LIMITS.maxDepth} levels`);
    }
    if (isAlias(node)) return this.#alias(node, depth);
    const anchor = (node as { anchor?: string }).anchor;
    if (anchor === undefined) return this.#convertNode(node, depth);
    this.#anchors.set(anchor, node);
    this.#open.add(node);
    const converted = this.#convertNode(node, depth);
    this.#open.delete(node);
    if (converted !== undefined) this.#done.set(node, converted);
    return converted;
  }

  #alias(node: Alias, depth: number): TreeNode | undefined {
    const at = this.#pos(node.range?.[0]);
    if (++this.#aliases > YAML_LIMITS.maxAliases) {
      throw tooComplex(`YAML document uses more than ${YAML_LIMITS.maxAliases} aliases`);
    }
    const target = this.#anchors.get(node.source);
    if (target === undefined) {
      throw new ConfigError(
        `YAML syntax error at line ${at.line}, column ${at.col}: alias *${node.source} ` +
          "has no anchor before it",
        { code: "config.yaml_syntax", hint: `define &${node.source} before using *${node.source}` },
      );
    }
    if (this.#open.has(target)) {
      throw tooComplex(
        `YAML alias *${node.source} at line ${at.line}, column ${at.col} refers to a node ` +
          "that contains it",
      );
    }
    const converted = this.#done.get(target);
    if (converted === undefined) return undefined;
    this.#count(sizes.get(converted) ?? 1);
    if (depth + heightOf(converted) > YAML_LIMITS.maxDepth + 1) {
      throw tooComplex(`YAML nesting is deeper than ${YAML_LIMITS.maxDepth} levels`);
    }
    return converted;
  }

  #convertNode(node: unknown, depth: number): TreeNode | undefined {
    const yamlNode = node as YamlNode;
    const at = this.#pos(yamlNode.range?.[0]);
    const before = this.#nodes;
    this.#count(1);
    let result: TreeNode | undefined;
    if (isMap(node)) {
      const entries: TreeEntry[] = [];
      const seen = new Set<string>();
      for (const pair of node.items) {
        const keyNode = pair.key;
        const keyAt = this.#pos((keyNode as YamlNode | null)?.range?.[0]);
        if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === "object") {
          throw new ConfigError(
            `YAML mapping key at line ${keyAt.line}, column ${keyAt.col} must be a plain word`,
            { code: "config.yaml_syntax" },
          );
        }
        const key = String(keyNode.value);
        this.#protected.marker.lastIndex = 0;
        const keyHasPlaceholder = this.#protected.marker.test(key);
        this.#protected.marker.lastIndex = 0;
        if (keyHasPlaceholder) {
          throw new ConfigError(
            `a \${} placeholder is used in a mapping key at line ${keyAt.line}, ` +
              `column ${keyAt.col}; placeholders are substituted in values only`,
            { code: "config.placeholder_in_key", hint: "write the key itself in the config" },
          );
        }
        if (seen.has(key)) {
          throw new ConfigError(
            `YAML syntax error at line ${keyAt.line}, column ${keyAt.col}: Map keys must be ` +
              `unique ('${key}' appears twice)`,
            { code: "config.yaml_syntax" },
          );
        }
        seen.add(key);
        if (keyNode.anchor !== undefined) this.#anchors.set(keyNode.anchor, keyNode);
        const value = this.convert(pair.value, depth + 1) ??
          { kind: "scalar" as const, value: null, pos: keyAt };
        entries.push({ key, keyPos: keyAt, value });
      }
      result = { kind: "map", entries, pos: at };
    } else if (isSeq(node)) {
      const items = node.items.map((item) =>
        this.convert(item, depth + 1) ?? { kind: "scalar" as const, value: null, pos: at }
      );
      result = { kind: "seq", items, pos: at };
    } else if (isScalar(node)) {
      result = this.#scalar(node, at);
    }
    if (result !== undefined) {
      sizes.set(result, this.#nodes - before);
      const children = result.kind === "map"
        ? result.entries.map((e) => e.value)
        : result.kind === "seq"
        ? result.items
        : [];
      let tallest = 0;
      for (const child of children) tallest = Math.max(tallest, heightOf(child));
      heights.set(result, tallest + 1);
    }
    return result;
  }

  #scalar(node: Scalar, at: Position): TreeNode {
    const value = node.value;
    if (typeof value === "string") {
      const { marker, names } = this.#protected;
      marker.lastIndex = 0;
      const matches = [...value.matchAll(marker)];
      if (matches.length === 0) return { kind: "scalar", value, pos: at };
      const template: TemplatePart[] = [];
      let written = "";
      let last = 0;
      for (const match of matches) {
        const name = names[Number(match[1])]!;
        if (match.index > last) template.push(value.slice(last, match.index));
        template.push({ name });
        written += value.slice(last, match.index) + `\${${name}}`;
        last = match.index + match[0].length;
      }
      if (last < value.length) template.push(value.slice(last));
      written += value.slice(last);
      return {
        kind: "scalar",
        value: written,
        pos: at,
        template,
        plain: node.type === Scalar.PLAIN,
      };
    }
    if (
      value === null || typeof value === "number" || typeof value === "boolean"
    ) return { kind: "scalar", value, pos: at };
    return { kind: "scalar", value: String(value), pos: at };
  }
}
