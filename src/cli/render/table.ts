/**
 * Plain aligned text tables for the inspection commands.
 *
 * Layer: cli.
 *
 * @module
 */
import { redact } from "../../_util/redact.ts";
/**
 * Aligns a table: a header line, then one line per row, columns separated by two spaces,
 * trailing blanks trimmed. Cells are redacted and stripped of control bytes, since cursor values
 * and file names come from the data.
 *
 * @param headers Column titles.
 * @param rows Cells, one array per row, as long as `headers`.
 * @param options `right`: indexes of the columns to right-align (numbers).
 * @returns The lines, without newlines.
 *
 * @example
 * ```ts
 * import { alignTable } from "./table.ts";
 * const lines = alignTable(["A", "N"], [["x", "10"]], { right: [1] });
 * if (lines[1] !== "x  10") throw new Error(lines.join("|"));
 * ```
 */
export function alignTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  options: { readonly right?: readonly number[] } = {},
): string[] {
  const right = new Set(options.right ?? []);
  const clean = rows.map((row) => row.map((cell) => redact(cell).replace(/\s+/g, " ")));
  const widths = headers.map((h, i) => Math.max(h.length, ...clean.map((r) => r[i]?.length ?? 0)));
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) => right.has(i) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)).join(
      "  ",
    ).trimEnd();
  return [line(headers), ...clean.map(line)];
}
