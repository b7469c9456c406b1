/**
 * A config as a plain JSON document: the YAML tree after `${NAME}` substitution, keys as written
 * (snake_case), values typed. `rivet plan` stores the selected part of it in its artifact
 * (secrets stripped), and `rivet apply` turns it back into a `ConfigSpec` through the same raw
 * checks, typed parse and validation as a YAML file, so an artifact is never trusted further
 * than a config file would be, and `apply` never reads the YAML again.
 *
 * Layer: config.
 *
 * @module
 */
import { resolve } from "node:path";
import { ConfigError } from "../core/errors.ts";
import type { ConfigSpec } from "../core/spec.ts";
import { exists } from "./_fs.ts";
import { buildConfigSpec } from "./build.ts";
import { runRawChecks } from "./raw_checks.ts";
import { parseConfigTree } from "./schema.ts";
import { validateConfig } from "./validate.ts";
import type { TreeNode } from "./yaml_tree.ts";

/** A JSON value. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { readonly [key: string]: JsonValue };

/**
 * The plain value of a parsed (and substituted) YAML tree.
 *
 * @param node A tree node.
 * @returns Mappings as objects (keys in document order), sequences as arrays, scalars as is.
 */
export function treeToDocument(node: TreeNode): JsonValue {
  switch (node.kind) {
    case "map":
      return Object.fromEntries(node.entries.map((e) => [e.key, treeToDocument(e.value)]));
    case "seq":
      return node.items.map(treeToDocument);
    case "scalar":
      return node.value;
  }
}

const NOWHERE = { line: 1, col: 1 };

function documentToTree(value: unknown, depth: number): TreeNode {
  if (depth > 64) {
    throw new ConfigError("the config document is nested too deeply", {
      code: "config.document_invalid",
      hint: "re-create the document (e.g. re-run `rivet plan`)",
    });
  }
  if (Array.isArray(value)) {
    return { kind: "seq", items: value.map((v) => documentToTree(v, depth + 1)), pos: NOWHERE };
  }
  if (value !== null && typeof value === "object") {
    return {
      kind: "map",
      entries: Object.entries(value).map(([key, v]) => ({
        key,
        keyPos: NOWHERE,
        value: documentToTree(v, depth + 1),
      })),
      pos: NOWHERE,
    };
  }
  if (
    value === null || typeof value === "string" || typeof value === "boolean" ||
    (typeof value === "number" && Number.isFinite(value))
  ) {
    return { kind: "scalar", value, pos: NOWHERE };
  }
  throw new ConfigError("the config document holds a value JSON cannot hold", {
    code: "config.document_invalid",
    hint: "re-create the document (e.g. re-run `rivet plan`)",
  });
}

/**
 * Builds a validated config from a document, as `loadConfig` does from a YAML file: raw checks,
 * typed parse refusing unknown keys, semantic validation, relative paths against `dir`.
 *
 * @param document The document (see {@linkcode treeToDocument}).
 * @param where The config file it stands for (absolute) and the folder paths start at.
 * @returns The spec.
 * @throws {ConfigError} Whatever a config file with the same content would fail with.
 */
export function configFromDocument(
  document: unknown,
  where: { readonly path: string; readonly dir: string },
): ConfigSpec {
  const tree = documentToTree(document, 0);
  runRawChecks(tree);
  const typed = parseConfigTree(tree);
  validateConfig(typed, { fileExists: (p) => exists(resolve(where.dir, p)) });
  return buildConfigSpec(typed, where);
}
