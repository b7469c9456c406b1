/**
 * `${NAME}` placeholders, filled from `--param` values, then the environment.
 *
 * In the config, substitution happens after the YAML is parsed, inside each scalar value
 * ({@linkcode substituteTree}): a value can never add keys, exports or documents, whatever it
 * holds (newlines, quotes, `: `, `- `). In a `query_file` the text is SQL, and the values are
 * spliced into it verbatim ({@linkcode substitutePlaceholders}).
 *
 * Layer: config. Pure: the environment is passed in as a lookup function.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";
import type { TemplatePart, TreeNode } from "./yaml_tree.ts";

/** Options of {@linkcode substitutePlaceholders}. */
export interface SubstituteOptions {
  /** `--param KEY=VALUE` pairs; they win over the environment. */
  readonly params?: Readonly<Record<string, string>>;
  /** Environment lookup; undefined means unset. */
  readonly env?: (name: string) => string | undefined;
  /** What is being substituted, for messages (e.g. `query_file 'q.sql'`). Omitted: the config. */
  readonly what?: string;
}

/**
 * `${NAME}`: anything up to the closing brace on the same line, so `${}` (empty) and odd names
 * are seen too; never another `$` or `{`, so no stretch of text is scanned twice. Group 1 is the
 * name as written (trim it). Global: use it with `replace`/`matchAll` only.
 */
export const PLACEHOLDER_PATTERN = /\$\{([^}\n${]*)\}/g;

/**
 * Replaces every `${NAME}` in `text` (comments included), splicing values verbatim.
 *
 * `${}` becomes the empty string. An unset name is an error that names only the variable, never
 * the text around it (it may hold a password). A value holding a NUL byte is refused.
 *
 * @param text Raw text (a YAML file or a query file).
 * @param options Params, environment and a label for messages.
 * @returns The substituted text.
 * @throws {ConfigError} `config.missing_env` or `config.invalid_value`.
 *
 * @example
 * ```ts
 * import { substitutePlaceholders } from "./substitute.ts";
 * const out = substitutePlaceholders("db: ${DB}", { params: { DB: "shop" } });
 * if (out !== "db: shop") throw new Error(out);
 * ```
 */
export function substitutePlaceholders(text: string, options: SubstituteOptions = {}): string {
  return text.replace(
    PLACEHOLDER_PATTERN,
    (_whole, rawName: string) => lookup(rawName.trim(), options, options.what),
  );
}

/** The value of one placeholder: params first, then the environment. */
function lookup(name: string, options: SubstituteOptions, where?: string, hint?: string): string {
  if (name === "") return "";
  const params = options.params ?? {};
  const value = Object.hasOwn(params, name) ? params[name] : options.env?.(name);
  if (value === undefined) {
    throw new ConfigError(
      `environment variable '${name}' is not set${where ? ` (used in ${where})` : ""}`,
      {
        code: "config.missing_env",
        hint: `export ${name}=... or pass --param ${name}=...${hint ?? ""}`,
      },
    );
  }
  if (value.includes("\0")) {
    throw new ConfigError(`value of '${name}' contains a NUL byte, which is not allowed`, {
      code: "config.invalid_value",
      hint: `set ${name} to a value without NUL bytes`,
    });
  }
  return value;
}

/** What {@linkcode substituteTree} returns. */
export interface SubstitutedTree {
  /** The tree with every templated scalar filled in. */
  readonly tree: TreeNode;
  /** Every placeholder name found in a value (comments do not count). */
  readonly used: ReadonlySet<string>;
}

/**
 * Fills the `${NAME}` placeholders of every scalar value of a parsed config, in document order.
 *
 * A value is spliced into its scalar as text, never parsed as YAML. A scalar written plain
 * (unquoted) then gets its YAML 1.2 core-schema type from the result, as if the value had been
 * written there (`port: ${PORT}` is a number, `skip_empty: ${FLAG}` a boolean); a quoted scalar
 * stays a string.
 *
 * @param root The tree from `parseYamlTree`.
 * @param options Params and environment.
 * @returns The filled tree and the names used.
 * @throws {ConfigError} `config.missing_env` naming only the variable (the hint says where it is
 *   used), or `config.invalid_value` for a NUL byte.
 */
export function substituteTree(root: TreeNode, options: SubstituteOptions = {}): SubstitutedTree {
  const used = new Set<string>();
  // Aliases share subtrees: fill each shared node once.
  const done = new Map<TreeNode, TreeNode>();
  const walk = (node: TreeNode): TreeNode => {
    const known = done.get(node);
    if (known !== undefined) return known;
    let result: TreeNode;
    if (node.kind === "map") {
      result = { ...node, entries: node.entries.map((e) => ({ ...e, value: walk(e.value) })) };
    } else if (node.kind === "seq") {
      result = { ...node, items: node.items.map(walk) };
    } else if (node.template === undefined) {
      result = node;
    } else {
      const where = ` (at line ${node.pos.line}, column ${node.pos.col})`;
      const text = node.template.map((part: TemplatePart) => {
        if (typeof part === "string") return part;
        used.add(part.name);
        return lookup(part.name, options, undefined, where);
      }).join("");
      result = { kind: "scalar", value: node.plain ? resolvePlain(text) : text, pos: node.pos };
    }
    done.set(node, result);
    return result;
  };
  return { tree: walk(root), used };
}

const nullPattern = /^(?:~|null|Null|NULL|)$/;
const boolPattern = /^(?:true|True|TRUE|false|False|FALSE)$/;
const intPattern = /^[-+]?[0-9]+$/;
const octPattern = /^0o[0-7]+$/;
const hexPattern = /^0x[0-9a-fA-F]+$/;
const floatPattern = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/;
const infPattern = /^[-+]?\.(?:inf|Inf|INF)$/;
const nanPattern = /^\.(?:nan|NaN|NAN)$/;

/**
 * The YAML 1.2 core-schema value of a plain scalar's text (what the YAML library would have
 * read had the text been written there).
 *
 * @param text The scalar's text after substitution.
 * @returns null, a boolean, a number or the text itself.
 *
 * @example
 * ```ts
 * import { resolvePlain } from "./substitute.ts";
 * if (resolvePlain("5432") !== 5432 || resolvePlain("a: b") !== "a: b") throw new Error();
 * ```
 */
export function resolvePlain(text: string): string | number | boolean | null {
  if (nullPattern.test(text)) return null;
  if (boolPattern.test(text)) return text[0] === "t" || text[0] === "T";
  if (intPattern.test(text)) return Number.parseInt(text, 10);
  if (octPattern.test(text)) return Number.parseInt(text.slice(2), 8);
  if (hexPattern.test(text)) return Number.parseInt(text.slice(2), 16);
  if (floatPattern.test(text)) return Number.parseFloat(text);
  if (infPattern.test(text)) return text[0] === "-" ? -Infinity : Infinity;
  if (nanPattern.test(text)) return NaN;
  return text;
}
