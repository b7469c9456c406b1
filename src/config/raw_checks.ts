/**
 * Checks on the untyped YAML tree that run before the typed parse, so that common mistakes get a
 * targeted message instead of a generic "unknown field": misplaced tuning keys, CSV with a codec,
 * and a TLS block that enforces a mode while switching verification off.
 *
 * Layer: config. Pure, no I/O.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";
import type { TreeNode } from "./yaml_tree.ts";

/** Tuning keys that users often write one level too high: on the export or source itself. */
export const MISPLACED_TUNING_KEYS = [
  "batch_size",
  "batch_size_memory_mb",
  "throttle_ms",
  "statement_timeout_s",
  "max_retries",
  "retry_backoff_ms",
  "lock_timeout_s",
  "memory_threshold_mb",
  "profile",
] as const;

function child(node: TreeNode | undefined, key: string): TreeNode | undefined {
  if (node?.kind !== "map") return undefined;
  return node.entries.find((e) => e.key === key)?.value;
}

function scalar(node: TreeNode | undefined): string | number | boolean | null | undefined {
  return node?.kind === "scalar" ? node.value : undefined;
}

function exportLabel(node: TreeNode, index: number): string {
  const name = scalar(child(node, "name"));
  return `export '${typeof name === "string" ? name : "?"}' (index ${index})`;
}

function misplaced(node: TreeNode): { key: string; value: string }[] {
  if (node.kind !== "map") return [];
  return node.entries
    .filter((e) => (MISPLACED_TUNING_KEYS as readonly string[]).includes(e.key))
    .map((e) => ({ key: e.key, value: e.value.kind === "scalar" ? String(e.value.value) : "..." }));
}

function misplacedError(
  where: string,
  target: string,
  found: { key: string; value: string }[],
  exampleHead: string,
): ConfigError {
  const keys = found.map((f) => f.key).join(", ");
  const lines = found.map((f) => `          ${f.key}: ${f.value}`).join("\n");
  return new ConfigError(`${where}: field(s) [${keys}] belong under '${target}'`, {
    code: "config.misplaced_tuning",
    hint: `move them into a tuning block, for example:\n${exampleHead}\n        tuning:\n${lines}`,
  });
}

/**
 * Runs the checks on the parsed YAML tree that come before the typed parse: misplaced tuning
 * keys, CSV with a compression codec, a TLS block that enforces a mode while turning verification
 * off.
 *
 * @param root The document root.
 * @throws {ConfigError} `config.misplaced_tuning`, `config.csv_compression` or
 *   `config.tls_downgrade`.
 */
export function runRawChecks(root: TreeNode): void {
  const source = child(root, "source");
  if (source) {
    const found = misplaced(source);
    if (found.length > 0) {
      throw misplacedError("source", "source.tuning:", found, "    source:");
    }
  }
  const exports = child(root, "exports");
  if (exports?.kind === "seq") {
    exports.items.forEach((exp, index) => {
      const found = misplaced(exp);
      if (found.length > 0) {
        const name = scalar(child(exp, "name"));
        throw misplacedError(
          exportLabel(exp, index),
          "exports[].tuning:",
          found,
          `    exports:\n      - name: ${typeof name === "string" ? name : "..."}`,
        );
      }
      checkCsvCompression(exp, index);
    });
  }
  checkTlsDowngrade(child(source, "tls"));
}

function checkCsvCompression(exp: TreeNode, index: number): void {
  if (scalar(child(exp, "format")) !== "csv") return;
  for (const key of ["compression", "compression_profile"]) {
    const value = scalar(child(exp, key));
    if (value !== undefined && value !== null && value !== "none") {
      throw new ConfigError(
        `${exportLabel(exp, index)}: format csv does not support ${key} '${value}' ` +
          `(rivet writes CSV uncompressed)`,
        {
          code: "config.csv_compression",
          hint:
            `remove \`${key}:\` (or set it to none), or use format: parquet for compressed output`,
        },
      );
    }
  }
  const types = scalar(child(exp, "parquet_types"));
  if (types === "portable") {
    throw new ConfigError(
      `${exportLabel(exp, index)}: format csv does not support parquet_types 'portable' ` +
        `(CSV already writes uuid and json as text)`,
      {
        code: "config.csv_parquet_types",
        hint: "remove `parquet_types:`, or use format: parquet",
      },
    );
  }
}

const enforcedModes = ["require", "verify-ca", "verify-full"];

function checkTlsDowngrade(tls: TreeNode | undefined): void {
  const mode = scalar(child(tls, "mode"));
  if (typeof mode !== "string" || !enforcedModes.includes(mode)) return;
  for (const knob of ["accept_invalid_certs", "accept_invalid_hostnames"]) {
    if (scalar(child(tls, knob)) === true) {
      throw new ConfigError(
        `source.tls: mode '${mode}' together with ${knob}: true would silently downgrade TLS verification`,
        {
          code: "config.tls_downgrade",
          hint:
            `remove ${knob}, or write \`tls: {mode: disable}\` to opt in to plaintext explicitly`,
        },
      );
    }
  }
}
