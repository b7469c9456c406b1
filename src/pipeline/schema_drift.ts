/**
 * Schema drift: the columns of this run against the baseline stored by the last successful run.
 * Checked from the result's metadata before the first write, in every mode (the Rust tool checks
 * single-query exports only after their files, manifest and cursor are committed), so
 * `on_schema_drift: fail` writes nothing, keeps the cursor and keeps the baseline: the next run
 * fails again until someone accepts the change.
 *
 * Layer: pipeline. Pure.
 *
 * @module
 */
import type { SchemaColumnEntry } from "../core/state.ts";

/** What changed between two column lists. */
export interface SchemaDrift {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly retyped: readonly {
    readonly name: string;
    readonly from: string;
    readonly to: string;
  }[];
}

/**
 * Compares the stored baseline with this run's columns.
 *
 * @param baseline Columns of the last successful run.
 * @param current Columns of this run.
 * @returns The drift, or undefined when nothing changed (column order is not drift).
 *
 * @example
 * ```ts
 * import { schemaDrift } from "./schema_drift.ts";
 * const drift = schemaDrift(
 *   [{ name: "id", type: "Int64" }],
 *   [{ name: "id", type: "Int64" }, { name: "extra", type: "Int32" }],
 * );
 * if (drift?.added[0] !== "extra") throw new Error();
 * ```
 */
export function schemaDrift(
  baseline: readonly SchemaColumnEntry[],
  current: readonly SchemaColumnEntry[],
): SchemaDrift | undefined {
  const before = new Map(baseline.map((c) => [c.name, c.type]));
  const after = new Map(current.map((c) => [c.name, c.type]));
  const added = current.filter((c) => !before.has(c.name)).map((c) => c.name);
  const removed = baseline.filter((c) => !after.has(c.name)).map((c) => c.name);
  const retyped = current.flatMap((c) => {
    const from = before.get(c.name);
    return from !== undefined && from !== c.type ? [{ name: c.name, from, to: c.type }] : [];
  });
  return added.length + removed.length + retyped.length === 0
    ? undefined
    : { added, removed, retyped };
}

/**
 * One-line description of a drift, naming every column.
 *
 * @param drift The drift.
 * @returns e.g. `added extra; removed old; retyped n (Int32 → Int64)`.
 */
export function describeDrift(drift: SchemaDrift): string {
  return [
    drift.added.length > 0 ? `added ${drift.added.join(", ")}` : "",
    drift.removed.length > 0 ? `removed ${drift.removed.join(", ")}` : "",
    drift.retyped.length > 0
      ? `retyped ${drift.retyped.map((r) => `${r.name} (${r.from} → ${r.to})`).join(", ")}`
      : "",
  ].filter(Boolean).join("; ");
}
