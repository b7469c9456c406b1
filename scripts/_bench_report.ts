/**
 * The tables `deno task bench` times and how its results are printed: the detailed table (one
 * line per engine, table, size and command) and the summary (one line per engine and table, as in
 * the README's "Performance" section). Pure functions, tested in `bench_test.ts`.
 *
 * @module
 */
import type { BenchEngine } from "./_bench_measure.ts";

/** What a row of the report measures. */
export type Tool = "floor" | "parquet" | "csv";

/** The benchmark tables, in the order they run. */
export const TABLE_NAMES = ["narrow", "wide", "content_items"] as const;
/** A benchmark table. */
export type TableName = typeof TABLE_NAMES[number];

/** Column count and a short description of each table (the fixtures' `CREATE TABLE`). */
export const TABLES: Readonly<Record<TableName, { columns: number; description: string }>> = {
  narrow: { columns: 5, description: "bigint, int, numeric(12,2), short text, timestamptz" },
  wide: {
    columns: 21,
    description: "text of 100–500 characters, jsonb, uuid, numerics, dates, booleans, NULLs",
  },
  content_items: {
    columns: 20,
    description: "about 4.8 KB of repetitive text a row: title, body, raw HTML, two jsonb",
  },
};

/** Medians of one command on one table at one size. */
export interface BenchRow {
  readonly engine: BenchEngine["name"];
  /** The table read (every row of the JSON report names it). */
  readonly table: TableName;
  /** What the floor ran, e.g. `psql COPY binary`. */
  readonly floorLabel: string;
  readonly tool: Tool;
  readonly rows: number;
  readonly runs: number;
  readonly wallSeconds: number;
  readonly wallSecondsAll: readonly number[];
  readonly rowsPerSecond: number;
  readonly peakRssMb: number;
  readonly peakRssMbMax: number;
  readonly outputBytes: number;
  readonly files: number;
  /** Median wall / median floor wall (1 for the floor). */
  readonly ratio: number;
  readonly targetRatio?: number;
  readonly targetRssMb?: number;
  /** PASS when every target of the row is met. */
  readonly verdict: "PASS" | "MISS" | "-";
}

/**
 * A row count in short form.
 *
 * @param n Rows.
 * @returns e.g. `10M`, `1.5M`, `200k`, `1234`.
 */
export function fmtRows(n: number): string {
  if (n >= 1e6 && n % 1e5 === 0) return `${n / 1e6}M`;
  if (n >= 1e3 && n % 100 === 0) return `${n / 1e3}k`;
  return String(n);
}

/**
 * A byte count in MiB or KiB (`-` for none).
 *
 * @param n Bytes.
 * @returns e.g. `86.0 MB`, `512 KB`.
 */
export function fmtBytes(n: number): string {
  if (n === 0) return "-";
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : `${(n / 1024).toFixed(0)} KB`;
}

/**
 * Renders the detailed report as a fixed-width text table.
 *
 * @param rows Results of every engine, table and size.
 * @returns The table, one line per command.
 */
export function renderTable(rows: readonly BenchRow[]): string {
  const head = [
    "engine",
    "table",
    "rows",
    "command",
    "wall s",
    "rows/s",
    "RSS MB",
    "output",
    "× floor",
    "target",
    "verdict",
  ];
  const body = rows.map((r) => [
    r.engine,
    r.table,
    fmtRows(r.rows),
    r.tool === "floor"
      ? `floor (${r.floorLabel})`
      : `rivet → ${r.tool}${r.tool === "parquet" ? " zstd" : ""}`,
    r.wallSeconds.toFixed(2),
    Math.round(r.rowsPerSecond).toLocaleString("en-US"),
    r.peakRssMb.toFixed(0),
    fmtBytes(r.outputBytes),
    r.ratio.toFixed(2),
    [
      r.targetRatio === undefined ? "" : `≤ ${r.targetRatio}×`,
      r.targetRssMb === undefined ? "" : `≤ ${r.targetRssMb} MB`,
    ].filter(Boolean).join(", "),
    r.verdict === "-" ? "" : r.verdict,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const numeric = (i: number) => i >= 4 && i <= 8;
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (numeric(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join("  ").trimEnd();
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...body.map(line)].join("\n");
}

const PRODUCTS: Readonly<Record<BenchEngine["name"], string>> = {
  postgres: "PostgreSQL",
  mysql: "MariaDB",
  mssql: "SQL Server",
};

/**
 * Renders the summary: a Markdown table with one line per engine and table at its full size
 * (the largest size timed), the floor's wall time and, for Parquet and CSV, the ratio to the
 * floor, the peak RSS (and the Parquet output size) with the verdict. Tables of engines other
 * than PostgreSQL name the engine.
 *
 * @param rows Results of every engine, table and size.
 * @returns The Markdown table.
 */
export function renderSummary(rows: readonly BenchRow[]): string {
  const lines = ["| table | floor | Parquet | CSV |", "| --- | --- | --- | --- |"];
  const keys = [...new Set(rows.map((r) => `${r.engine}\t${r.table}`))];
  for (const key of keys) {
    const [engine, table] = key.split("\t") as [BenchEngine["name"], TableName];
    const mine = rows.filter((r) => r.engine === engine && r.table === table);
    const size = Math.max(...mine.map((r) => r.rows));
    const at = (tool: Tool) => mine.find((r) => r.tool === tool && r.rows === size);
    const floor = at("floor");
    const tool = (t: "parquet" | "csv") => {
      const r = at(t);
      if (r === undefined) return "not timed";
      const out = t === "parquet" ? `, ${fmtBytes(r.outputBytes)} out` : "";
      return `${r.ratio.toFixed(2)}×, ${r.peakRssMb.toFixed(0)} MB${out} (${r.verdict})`;
    };
    const label = `${table} ${fmtRows(size)} × ${TABLES[table].columns}` +
      (engine === "postgres" ? "" : ` (${PRODUCTS[engine]})`);
    const floorCell = floor === undefined
      ? "-"
      : `${floor.wallSeconds.toFixed(floor.wallSeconds < 1 ? 2 : 1)} s`;
    lines.push(`| ${label} | ${floorCell} | ${tool("parquet")} | ${tool("csv")} |`);
  }
  return lines.join("\n");
}
