/**
 * Shape drift: a string or binary column whose longest value grew past `shape_drift_warn_factor`
 * times the longest value stored with the schema baseline. The lengths come from the Arrow value
 * offsets (`quality.ts` collects them); the stored maximum is a high-water mark updated after
 * each successful run, so a column warns once for a jump, not on every later run.
 *
 * Layer: pipeline. Pure.
 *
 * @module
 */

/**
 * The warnings of one run: one per column whose longest value exceeds stored × factor. A column
 * with no stored length (new, or only empty values so far) never warns.
 *
 * @param exportName The export, for the messages.
 * @param factor `shape_drift_warn_factor` (0 disables).
 * @param stored Longest value per column from earlier runs.
 * @param observed Longest value per column in this run.
 * @returns One message per drifted column.
 *
 * @example
 * ```ts
 * import { shapeDriftWarnings } from "./shape_drift.ts";
 * const w = shapeDriftWarnings("o", 2, { note: 10 }, { note: 30 });
 * if (w.length !== 1) throw new Error();
 * if (shapeDriftWarnings("o", 2, { note: 10 }, { note: 15 }).length !== 0) throw new Error();
 * ```
 */
export function shapeDriftWarnings(
  exportName: string,
  factor: number,
  stored: Readonly<Record<string, number>> | undefined,
  observed: Readonly<Record<string, number>>,
): string[] {
  if (factor <= 0 || !stored) return [];
  return Object.entries(observed).flatMap(([name, max]) => {
    const before = stored[name];
    if (before === undefined || before <= 0 || max <= before * factor) return [];
    return [
      `export '${exportName}': column '${name}' grew to ${max} bytes, more than ` +
      `shape_drift_warn_factor (${factor}) × its previous longest value (${before} bytes)`,
    ];
  });
}

/**
 * The stored lengths after a successful run: the larger of stored and observed, per column.
 *
 * @param stored Longest value per column from earlier runs.
 * @param observed This run's.
 * @returns The new high-water marks, or undefined when they did not change.
 */
export function nextShape(
  stored: Readonly<Record<string, number>> | undefined,
  observed: Readonly<Record<string, number>>,
): Record<string, number> | undefined {
  const next: Record<string, number> = { ...stored };
  let changed = false;
  for (const [name, max] of Object.entries(observed)) {
    if ((next[name] ?? -1) < max) {
      next[name] = max;
      changed = true;
    }
  }
  return changed ? next : undefined;
}
