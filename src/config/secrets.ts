/**
 * Registers secret values with the redactor as early as possible: from the raw text before the
 * YAML is parsed (a syntax error must not be the first place a password shows up), from the
 * parsed tree once `${}` values are in, and again once each field is read.
 *
 * Every scan here is linear in the text length (a config may hold a 200 KB query literal).
 *
 * Layer: config. Pure apart from the redactor's registry.
 *
 * @module
 */
import { findUrlUserinfo, registerSecret } from "../_util/redact.ts";
import type { TreeNode } from "./yaml_tree.ts";

/**
 * Registers a URL and its (raw and percent-decoded) password with the redactor.
 *
 * @param url A connection URL that may carry credentials.
 */
export function registerUrlSecrets(url: string): void {
  registerSecret(url);
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#\s]*)/.exec(url.trim())?.[1] ?? "";
  const at = authority.lastIndexOf("@");
  if (at < 0) return;
  const userinfo = authority.slice(0, at);
  const colon = userinfo.indexOf(":");
  if (colon < 0) return;
  const password = userinfo.slice(colon + 1);
  registerSecret(password);
  try {
    registerSecret(decodeURIComponent(password));
  } catch {
    // Not valid percent-encoding: the raw form is already registered.
  }
}

// In YAML text a quote ends a URL as well.
const urlStop = /[\s/?#'"]/;

/**
 * The `scheme://userinfo@` heads of the URLs with credentials in a text.
 *
 * @param text Any text.
 * @returns Each URL head, e.g. `postgresql://app:pw@`.
 */
export function urlsWithUserinfo(text: string): string[] {
  return findUrlUserinfo(text, urlStop).map((m) => text.slice(m.start, m.at + 1));
}

const secretKeys = new Set(["password", "webhook_url"]);

/**
 * Scans raw config text for `password:` / `webhook_url:` values and URLs with credentials, and
 * registers them, so that no later error (YAML syntax, type, validation) can echo them.
 *
 * @param text Raw YAML text.
 */
export function sweepSecrets(text: string): void {
  for (const line of text.split("\n")) {
    let i = 0;
    while (i < line.length && (line[i] === " " || line[i] === "\t" || line[i] === "-")) i++;
    const colon = line.indexOf(":", i);
    if (colon < 0) continue;
    const key = line.slice(i, colon).trim();
    if (!secretKeys.has(key)) continue;
    let value = line.slice(colon + 1).trim();
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.length > 1 && value.endsWith(quote)) {
      value = value.slice(1, -1);
    } else {
      const comment = value.search(/[ \t]#/);
      if (comment >= 0) value = value.slice(0, comment).trimEnd();
    }
    // `${NAME}` is a placeholder, not the secret: its value is registered after substitution.
    if (value !== "" && !value.includes("${")) registerSecret(value);
  }
  for (const url of urlsWithUserinfo(text)) registerUrlSecrets(url);
}

/**
 * Registers the secrets of a parsed config once its `${}` values are in: `password` and
 * `webhook_url` values, and every URL with credentials in any value.
 *
 * @param root The substituted tree.
 */
export function sweepTreeSecrets(root: TreeNode): void {
  const seen = new Set<TreeNode>();
  const walk = (node: TreeNode, key: string | undefined): void => {
    if (seen.has(node)) return;
    seen.add(node);
    if (node.kind === "map") {
      for (const entry of node.entries) walk(entry.value, entry.key);
    } else if (node.kind === "seq") {
      for (const item of node.items) walk(item, undefined);
    } else if (typeof node.value === "string") {
      if (key !== undefined && secretKeys.has(key)) registerSecret(node.value);
      if (node.value.includes("://")) {
        for (const url of urlsWithUserinfo(node.value)) registerUrlSecrets(url);
      }
    }
  };
  walk(root, undefined);
}
