/**
 * Destination placeholders: `{date}` (UTC `YYYY-MM-DD` of the run), `{export}` and `{table}` (both
 * the export name). `{run_id}` and `{partition}` stay verbatim here (they are filled while a run
 * writes). Any other `{token}` is refused when the config is loaded
 * ({@linkcode unknownPlaceholders}), so a typo never becomes a literal folder name.
 *
 * Layer: plan (pure).
 *
 * @module
 */
import type { DestinationSpec } from "../core/spec.ts";

/** Every placeholder a destination `path` or `prefix` may hold, in the order docs list them. */
export const KNOWN_PLACEHOLDERS = ["date", "export", "table", "run_id", "partition"] as const;

/**
 * The `{token}`s of a path or prefix that are not placeholders rivet knows.
 *
 * @param template The configured `path` or `prefix`.
 * @returns Unknown token names, in order of appearance, without duplicates.
 *
 * @example
 * ```ts
 * import { unknownPlaceholders } from "./placeholders.ts";
 * const names = unknownPlaceholders("out/{export}/{dat}/{run_id}");
 * if (names.join() !== "dat") throw new Error(names.join());
 * ```
 */
export function unknownPlaceholders(template: string): string[] {
  const known: readonly string[] = KNOWN_PLACEHOLDERS;
  const unknown = new Set<string>();
  for (const match of template.matchAll(/\{([^{}]*)\}/g)) {
    if (!known.includes(match[1]!)) unknown.add(match[1]!);
  }
  return [...unknown];
}

/**
 * Substitutes placeholders in one path or prefix.
 *
 * @param template The configured `path` or `prefix`.
 * @param values Export name and run date.
 * @returns The resolved text.
 *
 * @example
 * ```ts
 * import { fillPlaceholders } from "./placeholders.ts";
 * const out = fillPlaceholders("out/{export}/{date}/{run_id}", {
 *   exportName: "orders",
 *   at: new Date("2026-03-04T23:59:00Z"),
 * });
 * if (out !== "out/orders/2026-03-04/{run_id}") throw new Error(out);
 * ```
 */
export function fillPlaceholders(
  template: string,
  values: { exportName: string; at: Date },
): string {
  const date = values.at.toISOString().slice(0, 10);
  return template.replace(
    /\{(date|export|table)\}/g,
    (_m, token: string) => token === "date" ? date : values.exportName,
  );
}

/**
 * Returns the destination with `path` and `prefix` placeholders resolved.
 *
 * @param spec The export's destination.
 * @param values Export name and run date.
 * @returns A new spec.
 */
export function resolveDestination(
  spec: DestinationSpec,
  values: { exportName: string; at: Date },
): DestinationSpec {
  return {
    ...spec,
    ...(spec.path === undefined ? {} : { path: fillPlaceholders(spec.path, values) }),
    ...(spec.prefix === undefined ? {} : { prefix: fillPlaceholders(spec.prefix, values) }),
  };
}

/**
 * A partition child's destination: `{partition}` in `path`/`prefix` becomes the child's
 * `<column>=<label>` segment (Hive style).
 *
 * @param spec The parent's destination.
 * @param partition The child's segment, e.g. `created=2024-01` or
 *   `created=__HIVE_DEFAULT_PARTITION__`.
 * @returns The child's destination.
 *
 * @example
 * ```ts
 * import { withPartition } from "./placeholders.ts";
 * const d = withPartition({ kind: "local", path: "out/{partition}", allowAnonymous: false }, "d=2024");
 * if (d.path !== "out/d=2024") throw new Error(d.path);
 * ```
 */
export function withPartition(spec: DestinationSpec, partition: string): DestinationSpec {
  const fill = (text: string) => text.replaceAll("{partition}", partition);
  return {
    ...spec,
    ...(spec.path === undefined ? {} : { path: fill(spec.path) }),
    ...(spec.prefix === undefined ? {} : { prefix: fill(spec.prefix) }),
  };
}

/**
 * Whether a destination names the `{partition}` token (required with `partition_by`).
 *
 * @param spec A destination.
 * @returns True when `path` or `prefix` contains `{partition}`.
 */
export function hasPartitionToken(spec: DestinationSpec): boolean {
  return (spec.path ?? "").includes("{partition}") || (spec.prefix ?? "").includes("{partition}");
}
