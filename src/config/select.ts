/**
 * `--export NAME` selection.
 *
 * Layer: config. Pure, no I/O.
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";
import type { ConfigSpec, ExportSpec } from "../core/spec.ts";
import { suggest } from "./suggest.ts";

/**
 * The exports to run: all of them when `names` is empty, else the named ones in the order given
 * (duplicates dropped).
 *
 * @param config The loaded config.
 * @param names Names from `--export`.
 * @returns The selected exports.
 * @throws {ConfigError} `config.unknown_export` naming the unknown export and listing known ones.
 *
 * @example
 * ```ts
 * import { selectExports } from "./select.ts";
 * import type { ConfigSpec } from "../core/spec.ts";
 * const config = { exports: [{ name: "a" }, { name: "b" }] } as unknown as ConfigSpec;
 * if (selectExports(config, ["b"])[0]?.name !== "b") throw new Error();
 * ```
 */
export function selectExports(config: ConfigSpec, names: readonly string[]): readonly ExportSpec[] {
  if (names.length === 0) return config.exports;
  const byName = new Map(config.exports.map((e) => [e.name, e]));
  const selected: ExportSpec[] = [];
  for (const name of new Set(names)) {
    const exp = byName.get(name);
    if (exp === undefined) {
      const known = config.exports.map((e) => e.name);
      const close = suggest(name, known);
      throw new ConfigError(
        `unknown export '${name}'; known exports: ${known.join(", ")}` +
          `${close === undefined ? "" : ` (did you mean '${close}'?)`}; check the spelling`,
        { code: "config.unknown_export" },
      );
    }
    selected.push(exp);
  }
  return selected;
}
