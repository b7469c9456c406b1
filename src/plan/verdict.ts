/**
 * The preflight verdict of an export, as a pure function of what the catalog and a zero-row probe
 * told: how the export will read its source (the strategy), how many rows the catalog expects,
 * whether the column that drives the reads (cursor, chunk, key or time column) exists and is the
 * leading column of an index, and the `parallel` asked for. `rivet check` prints it; `rivet plan`
 * records it.
 *
 * The rules, in words a data engineer can check:
 * - the query does not run, or its driving column is not among its columns: UNSAFE (the run fails);
 * - a chunked read (windows or keyset) over a column without an index, with `parallel > 1`, on a
 *   table of more than {@linkcode HUGE_ROWS} rows: UNSAFE (every worker scans the whole table at
 *   once); without `parallel` or on a smaller table: DEGRADED (every chunk scans the table);
 * - incremental or time-window reads over a column without an index: DEGRADED (each run scans the
 *   table), or ACCEPTABLE when the table has at most {@linkcode SMALL_ROWS} rows;
 * - a driving column with an index: EFFICIENT; with an index nobody can check (a `query:` export):
 *   ACCEPTABLE, with a warning;
 * - `full`: EFFICIENT up to {@linkcode SMALL_ROWS} rows (and the chunked snapshot downgrade),
 *   ACCEPTABLE up to {@linkcode LARGE_ROWS} or when the size is unknown, DEGRADED above (one
 *   long query, nothing to resume after a crash).
 *
 * Layer: plan (pure). Imports only `core/` and `plan/`.
 *
 * @module
 */

/** How an export reads its source. */
export type Strategy =
  | "full"
  | "incremental"
  | "chunked-windows"
  | "keyset"
  | "time_window"
  | "snapshot-downgrade"
  /** `mode: cdc`: the table's change log, not the table. */
  | "cdc";

/** The verdict, best first. */
export type Verdict = "EFFICIENT" | "ACCEPTABLE" | "DEGRADED" | "UNSAFE";

/** A tuning profile a verdict recommends. */
export type Profile = "fast" | "balanced" | "safe";

/** A finding of the preflight: stable code, message, and what to do about it. */
export interface PreflightWarning {
  readonly code: string;
  readonly message: string;
  readonly suggestion: string;
}

/** At most this many rows is a small table: one query reads it well. */
export const SMALL_ROWS = 100_000;
/** More than this many rows is a large table: `full` is one long query. */
export const LARGE_ROWS = 1_000_000;
/** More than this many rows is a huge table: parallel full scans hurt the server. */
export const HUGE_ROWS = 10_000_000;

/** What the verdict is judged on. */
export interface VerdictFacts {
  readonly strategy: Strategy;
  /** The catalog's row estimate; undefined when unknown (a `query:` export, a fresh table). */
  readonly rowEstimate?: number;
  /** `parallel` of the export (1 when not chunked). */
  readonly parallel: number;
  /** Whether the zero-row probe of the export's query ran. */
  readonly accessOk: boolean;
  /** The column that drives the reads (cursor, chunk, key or time column), if any. */
  readonly column?: string;
  /** Whether that column is among the query's columns (undefined when the probe failed). */
  readonly columnExists?: boolean;
  /** Whether the column leads an index: undefined when it cannot be told (a `query:` export). */
  readonly columnIndexed?: boolean;
  /** `source.environment`. */
  readonly environment?: "local" | "replica" | "production";
}

/** The judgement. */
export interface Judgement {
  readonly verdict: Verdict;
  readonly recommendedProfile: Profile;
  readonly recommendedParallel: number;
  readonly warnings: readonly PreflightWarning[];
}

const RANK: Readonly<Record<Verdict, number>> = {
  EFFICIENT: 0,
  ACCEPTABLE: 1,
  DEGRADED: 2,
  UNSAFE: 3,
};

/**
 * The worse of two verdicts.
 *
 * @param a A verdict.
 * @param b Another.
 * @returns The one further from EFFICIENT.
 */
export function worseVerdict(a: Verdict, b: Verdict): Verdict {
  return RANK[a] >= RANK[b] ? a : b;
}

/** `parallel` for a chunked read over an index, by table size (unknown: 1). */
function parallelFor(rows: number | undefined): number {
  if (rows === undefined || rows <= 500_000) return 1;
  return rows < 5_000_000 ? 2 : 4;
}

function rowsText(rows: number | undefined): string {
  return rows === undefined ? "an unknown number of" : `about ${rows}`;
}

/**
 * Judges an export.
 *
 * @param facts What the preflight found.
 * @returns The verdict, the recommended profile and `parallel`, and warnings with suggestions.
 *
 * @example
 * ```ts
 * import { judge } from "./verdict.ts";
 * const j = judge({
 *   strategy: "chunked-windows", rowEstimate: 2_000_000, parallel: 2, accessOk: true,
 *   column: "id", columnExists: true, columnIndexed: true,
 * });
 * if (j.verdict !== "EFFICIENT" || j.recommendedParallel !== 2) throw new Error(j.verdict);
 * ```
 */
export function judge(facts: VerdictFacts): Judgement {
  const warnings: PreflightWarning[] = [];
  const rows = facts.rowEstimate;
  const chunked = facts.strategy === "chunked-windows" || facts.strategy === "keyset";
  let verdict = "EFFICIENT" as Verdict;
  const add = (v: Verdict, w?: PreflightWarning) => {
    verdict = worseVerdict(verdict, v);
    if (w) warnings.push(w);
  };

  if (!facts.accessOk) {
    add("UNSAFE");
  } else if (facts.column !== undefined && facts.columnExists === false) {
    add("UNSAFE", {
      code: "preflight.column_missing",
      message: `column '${facts.column}' is not among the columns of the export's query`,
      suggestion: "fix the column name in the config, or select the column in the query",
    });
  } else if (facts.strategy === "full") {
    if (rows !== undefined && rows > LARGE_ROWS) {
      add("DEGRADED", {
        code: "preflight.large_full_scan",
        message: `mode full reads ${rowsText(rows)} rows in one query, with nothing to resume ` +
          "from after a failure",
        suggestion: "use mode: chunked on an indexed integer column (chunk_checkpoint: true), " +
          "or mode: incremental on an indexed updated_at column",
      });
    } else if (rows === undefined || rows > SMALL_ROWS) add("ACCEPTABLE");
  } else if (facts.strategy !== "snapshot-downgrade" && facts.column !== undefined) {
    if (facts.columnIndexed === false) {
      const huge = rows !== undefined && rows > HUGE_ROWS;
      if (chunked && facts.parallel > 1 && huge) {
        add("UNSAFE", {
          code: "preflight.parallel_full_scans",
          message: `column '${facts.column}' has no index: each of the ${facts.parallel} ` +
            `parallel workers scans all ${rowsText(rows)} rows for every chunk`,
          suggestion: `create an index on '${facts.column}', or set parallel: 1`,
        });
      } else if (chunked || rows === undefined || rows > SMALL_ROWS) {
        add("DEGRADED", {
          code: "preflight.column_not_indexed",
          message: `column '${facts.column}' has no index: every ${
            chunked ? "chunk" : "run"
          } scans the whole table (${rowsText(rows)} rows)`,
          suggestion: `create an index on '${facts.column}'`,
        });
      } else add("ACCEPTABLE");
    } else if (facts.columnIndexed === undefined) {
      add("ACCEPTABLE", {
        code: "preflight.index_unknown",
        message: `cannot tell whether column '${facts.column}' is indexed (the export is a query)`,
        suggestion: `make sure '${facts.column}' is indexed in the table it comes from`,
      });
    }
  }

  const recommendedParallel = chunked && facts.columnIndexed !== false && verdict !== "UNSAFE"
    ? parallelFor(rows)
    : 1;
  if (chunked && facts.parallel > recommendedParallel && verdict !== "UNSAFE") {
    warnings.push({
      code: "preflight.parallel_high",
      message: `parallel: ${facts.parallel} is more than this table needs`,
      suggestion: `parallel: ${recommendedParallel}`,
    });
  }
  const recommendedProfile: Profile = facts.environment === "production" ||
      verdict === "DEGRADED" || verdict === "UNSAFE"
    ? "safe"
    : facts.environment === "local" && verdict === "EFFICIENT"
    ? "fast"
    : "balanced";
  return { verdict, recommendedProfile, recommendedParallel, warnings };
}
