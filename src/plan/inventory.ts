/**
 * What `rivet init` knows about a database and what it makes of it: the inventory of tables
 * (built from the rows of the catalog statements of `inventory_sql.ts`), and the pure decisions
 * on each table: candidate cursor columns ranked with reason codes, integer keys to chunk on,
 * `columns:` overrides for numerics the export cannot carry as they are, and the suggested mode
 * (size → full, chunked with checkpoints and `parallel`, or incremental on an `updated_at`-like
 * column). `--discover` prints {@linkcode discoveryJson} of it; the YAML scaffold is rendered
 * from the same analysis (`scaffold.ts`).
 *
 * Layer: plan (pure). Imports only `core/` and `plan/`.
 *
 * @module
 */
import type { ExportMode, SourceKind } from "../core/spec.ts";
import { isIntegerTypeName } from "./catalog.ts";

/** One column as the catalog describes it. */
export interface InventoryColumn {
  readonly name: string;
  /** The type as the database spells it: `numeric(12,2)`, `datetime2(7)`, `int unsigned`. */
  readonly type: string;
  /** The bare type name: `numeric`, `datetime2`, `int`. */
  readonly baseType: string;
  readonly nullable: boolean;
  readonly precision?: number;
  readonly scale?: number;
}

/** A unique key (the primary key included). */
export interface InventoryKey {
  readonly name: string;
  readonly primary: boolean;
  readonly columns: readonly string[];
}

/** A column the export cannot read, with the source's reason. */
export interface UnsupportedColumn {
  readonly column: string;
  readonly type: string;
  readonly reason: string;
}

/** One table or view. */
export interface InventoryTable {
  readonly schema: string;
  readonly name: string;
  readonly kind: "table" | "view";
  /** The catalog's row estimate; undefined when it has none (views, never analyzed). */
  readonly rowEstimate?: number;
  /** Table, index and toast bytes; undefined for views. */
  readonly totalBytes?: number;
  readonly columns: readonly InventoryColumn[];
  readonly keys: readonly InventoryKey[];
  /** Columns the source refused when the table was probed (filled by the discovery). */
  readonly unsupported: readonly UnsupportedColumn[];
  /** Why the table cannot be read at all (permission, broken view), when it cannot. */
  readonly unreadable?: string;
}

/** What was inventoried. */
export interface Inventory {
  readonly kind: SourceKind;
  readonly host: string;
  readonly database: string;
  readonly tables: readonly InventoryTable[];
}

/** Size thresholds of the mode heuristics (rows, from the catalog estimate). */
export interface Thresholds {
  /** At most this many rows: `full`. */
  readonly fullMaxRows: number;
  /** Chunked: `parallel: 1` up to this many rows. */
  readonly parallelOneMaxRows: number;
  /** Chunked: `parallel: 2` below this many rows, 4 from here on. */
  readonly parallelFourFromRows: number;
}

/** The thresholds rivet-cli uses: 100k rows, 500k, 5M. */
export const DEFAULT_THRESHOLDS: Thresholds = {
  fullMaxRows: 100_000,
  parallelOneMaxRows: 500_000,
  parallelFourFromRows: 5_000_000,
};

/** Rows per chunk of a scaffolded chunked export. */
export const SCAFFOLD_CHUNK_SIZE = 100_000;

/** Why a column is a cursor candidate, best first. */
export type CursorReason =
  | "updated_at_name"
  | "created_at_name"
  | "timestamp_column"
  | "date_column";

/** A column an incremental export could follow. */
export interface CursorCandidate {
  readonly column: string;
  readonly type: string;
  readonly reason: CursorReason;
  readonly nullable: boolean;
}

/** A column chunked windows can be cut over. */
export interface ChunkCandidate {
  readonly column: string;
  readonly type: string;
  readonly reason: "integer_primary_key" | "integer_unique_key";
}

/** A `columns:` override the scaffold writes, and why. */
export interface ColumnOverride {
  readonly column: string;
  readonly type: string;
  /** The `# REVIEW:` text. */
  readonly review: string;
}

/** The export the scaffold suggests for a table. */
export interface Suggestion {
  readonly mode: ExportMode;
  /** Why this mode, one sentence for the YAML comment. */
  readonly why: string;
  readonly chunkColumn?: string;
  readonly parallel?: number;
  readonly cursorColumn?: string;
  /** With a nullable cursor: the NOT NULL column it is coalesced with. */
  readonly fallbackColumn?: string;
  /** What the user should check (`# REVIEW:` lines). */
  readonly review: readonly string[];
}

/** Everything decided about one table. */
export interface TableAnalysis {
  readonly table: InventoryTable;
  readonly primaryKey: readonly string[];
  readonly cursorCandidates: readonly CursorCandidate[];
  readonly fallbackColumn?: string;
  readonly chunkCandidates: readonly ChunkCandidate[];
  readonly overrides: readonly ColumnOverride[];
  readonly suggestion: Suggestion;
  readonly notes: readonly string[];
}

const TIMESTAMP_TYPES = new Set([
  "timestamp",
  "timestamptz",
  "datetime",
  "datetime2",
  "smalldatetime",
  "datetimeoffset",
]);

const UPDATED_NAMES = new Set([
  "updated_at",
  "updatedat",
  "updated",
  "updated_on",
  "update_time",
  "last_updated",
  "last_updated_at",
  "modified_at",
  "modifiedat",
  "modified",
  "modified_on",
  "last_modified",
  "last_modified_at",
  "modify_time",
  "mtime",
]);

const CREATED_NAMES = new Set([
  "created_at",
  "createdat",
  "created",
  "created_on",
  "create_time",
  "inserted_at",
  "insert_time",
  "ctime",
]);

const REASON_RANK: Readonly<Record<CursorReason, number>> = {
  updated_at_name: 0,
  created_at_name: 1,
  timestamp_column: 2,
  date_column: 3,
};

const REASON_TEXT: Readonly<Record<CursorReason, string>> = {
  updated_at_name: "an update timestamp",
  created_at_name: "a creation timestamp",
  timestamp_column: "a timestamp",
  date_column: "a date",
};

function temporalKind(column: InventoryColumn): "timestamp" | "date" | undefined {
  const base = column.baseType.toLowerCase();
  if (TIMESTAMP_TYPES.has(base)) return "timestamp";
  return base === "date" ? "date" : undefined;
}

/**
 * The columns an incremental export could follow, best first: a timestamp named like
 * `updated_at`/`modified_at` (changes with every write), then `created_at`-like (sees inserts
 * only), then other timestamps, then dates; NOT NULL before nullable within a rank.
 *
 * @param columns The table's columns.
 * @returns The candidates, ranked.
 *
 * @example
 * ```ts
 * import { cursorCandidates } from "./inventory.ts";
 * const c = (name: string) => ({ name, type: "timestamp", baseType: "timestamp", nullable: false });
 * const ranked = cursorCandidates([c("seen"), c("created_at"), c("updated_at")]);
 * if (ranked.map((r) => r.column).join() !== "updated_at,created_at,seen") throw new Error();
 * ```
 */
export function cursorCandidates(columns: readonly InventoryColumn[]): CursorCandidate[] {
  const out: CursorCandidate[] = [];
  for (const column of columns) {
    const kind = temporalKind(column);
    if (kind === undefined) continue;
    const name = column.name.toLowerCase();
    const reason: CursorReason = kind === "date"
      ? "date_column"
      : UPDATED_NAMES.has(name)
      ? "updated_at_name"
      : CREATED_NAMES.has(name)
      ? "created_at_name"
      : "timestamp_column";
    out.push({ column: column.name, type: column.type, reason, nullable: column.nullable });
  }
  // Stable sort: the table's column order breaks ties.
  return out.sort((a, b) =>
    REASON_RANK[a.reason] - REASON_RANK[b.reason] || Number(a.nullable) - Number(b.nullable)
  );
}

function columnOf(table: InventoryTable, name: string): InventoryColumn | undefined {
  return table.columns.find((c) => c.name === name);
}

/**
 * Integer columns that are a whole unique key on their own and NOT NULL: the primary key first.
 *
 * @param table The table.
 * @returns The candidates.
 */
export function chunkCandidates(table: InventoryTable): ChunkCandidate[] {
  const out: ChunkCandidate[] = [];
  const keys = [...table.keys].sort((a, b) => Number(b.primary) - Number(a.primary));
  for (const key of keys) {
    if (key.columns.length !== 1) continue;
    const column = columnOf(table, key.columns[0]!);
    if (column === undefined || !isIntegerTypeName(column.baseType)) continue;
    if (!key.primary && column.nullable) continue;
    if (out.some((c) => c.column === column.name)) continue;
    out.push({
      column: column.name,
      type: column.type,
      reason: key.primary ? "integer_primary_key" : "integer_unique_key",
    });
  }
  return out;
}

/**
 * The `columns:` override a numeric column needs, if any: PostgreSQL's unbounded `numeric` has no
 * precision and scale to map to a decimal (`decimal(38,18)`, to be reviewed), and a decimal wider
 * than Parquet's 38 digits is written as exact text.
 *
 * @param kind The source engine.
 * @param column The column.
 * @returns The override, or undefined when the column maps as it is.
 *
 * @example
 * ```ts
 * import { numericOverride } from "./inventory.ts";
 * const col = { name: "amount", type: "numeric", baseType: "numeric", nullable: true };
 * if (numericOverride("postgres", col)?.type !== "decimal(38,18)") throw new Error();
 * ```
 */
export function numericOverride(
  kind: SourceKind,
  column: InventoryColumn,
): ColumnOverride | undefined {
  const base = column.baseType.toLowerCase();
  if (base !== "numeric" && base !== "decimal") return undefined;
  if (kind === "postgres" && column.precision === undefined) {
    return {
      column: column.name,
      type: "decimal(38,18)",
      review: `${column.name} is numeric without precision: read as decimal(38,18), so values ` +
        "with more than 20 integer digits fail the run and fraction digits past 18 are " +
        "rounded; set the precision and scale your data needs",
    };
  }
  if (column.precision !== undefined && column.precision > 38 && kind === "mysql") {
    // MySQL sends decimals as text but our reader takes no text override on them: narrow it.
    const scale = Math.min(column.scale ?? 0, 38);
    return {
      column: column.name,
      type: `decimal(38,${scale})`,
      review: `${column.name} is ${column.type}, wider than the 38 digits of a Parquet ` +
        `decimal: read as decimal(38,${scale}), so a value with more than ${38 - scale} ` +
        "integer digits fails the run; cast it to CHAR in a query if they do not fit",
    };
  }
  if (column.precision !== undefined && column.precision > 38) {
    return {
      column: column.name,
      type: "text",
      review: `${column.name} is ${column.type}, wider than the 38 digits of a Parquet ` +
        "decimal: exported as exact text; use decimal(38,s) instead if its values fit",
    };
  }
  return undefined;
}

function formatRows(n: number): string {
  return n.toLocaleString("en-US");
}

function parallelFor(rows: number, t: Thresholds): number {
  if (rows <= t.parallelOneMaxRows) return 1;
  return rows < t.parallelFourFromRows ? 2 : 4;
}

/** The best candidate's NOT NULL fallback, when the best one is nullable. */
function fallbackFor(candidates: readonly CursorCandidate[]): string | undefined {
  const best = candidates[0];
  if (best === undefined || !best.nullable) return undefined;
  // COALESCE of the two must compare as one type: same type, whatever its fraction digits.
  const bare = (type: string) => type.replace(/\(\d+\)/g, "");
  return candidates.find((c) =>
    c !== best && !c.nullable && c.reason !== "date_column" && bare(c.type) === bare(best.type)
  )?.column;
}

interface Decision {
  readonly cursors: readonly CursorCandidate[];
  readonly chunks: readonly ChunkCandidate[];
  readonly fallback: string | undefined;
}

function incremental(d: Decision, why: string, review: string[]): Suggestion {
  const best = d.cursors[0]!;
  if (best.nullable && d.fallback === undefined) {
    review.push(
      `${best.column} is nullable: rows where it is NULL are exported by the first run only`,
    );
  }
  if (best.reason !== "updated_at_name") {
    review.push(
      `${best.column} is not an update timestamp: rows changed after their first export are ` +
        "not exported again",
    );
  }
  return {
    mode: "incremental",
    why,
    cursorColumn: best.column,
    ...(d.fallback === undefined ? {} : { fallbackColumn: d.fallback }),
    review,
  };
}

function chunked(d: Decision, rows: number | undefined, t: Thresholds, why: string): Suggestion {
  const parallel = rows === undefined ? 1 : parallelFor(rows, t);
  return {
    mode: "chunked",
    why,
    chunkColumn: d.chunks[0]!.column,
    parallel,
    review: [],
  };
}

function full(why: string, review: string[] = []): Suggestion {
  return { mode: "full", why, review };
}

/** `--mode` given: the mode the user asked for, when the table has what it needs. */
function forced(mode: Suggestion["mode"], d: Decision, rows: number | undefined, t: Thresholds) {
  const asked = `--mode ${mode}`;
  switch (mode) {
    case "full":
      return full(`${asked} was given`);
    case "cdc":
      return {
        mode,
        why: `${asked} was given: each run drains the table's change log up to now`,
        review: [
          "capture starts at the first run: export the table once with mode: full for its " +
          "current rows; docs/cdc.md lists what the database needs (logical WAL, binlog in ROW " +
          "format, or CDC enabled on the table)",
        ],
      };
    case "chunked":
      return d.chunks.length > 0
        ? chunked(d, rows, t, `${asked} was given; chunked on integer key ${d.chunks[0]!.column}`)
        : full(`${asked} was given but the table has no single-column integer key`, [
          "no integer key to chunk on: exported whole; set mode: chunked with a chunk_column " +
          "(or chunk_by_key) by hand if it is too big for one query",
        ]);
    case "incremental":
    case "time_window": {
      if (d.cursors.length === 0) {
        return full(`${asked} was given but the table has no date or timestamp column`, [
          `no date or timestamp column to follow: exported whole instead of ${mode}`,
        ]);
      }
      if (mode === "incremental") return incremental(d, `${asked} was given`, []);
      return {
        mode,
        why: `${asked} was given`,
        cursorColumn: d.cursors[0]!.column,
        review: [`days_window: 7 exports the last 7 days at each run; set the window you need`],
      };
    }
  }
}

/**
 * The mode rivet-cli's `init` would pick for a table: at most `fullMaxRows` estimated rows →
 * `full`; larger with a single-column integer primary key → `chunked` (checkpointed, `parallel`
 * 1, 2 or 4 by size); else a date or timestamp column → `incremental` on the best candidate;
 * else `full`, flagged for review. `--mode` forces a mode when the table allows it.
 *
 * @param table The table.
 * @param decision Its cursor and chunk candidates.
 * @param options The forced mode and the thresholds.
 * @returns The suggestion.
 */
function suggest(
  table: InventoryTable,
  d: Decision,
  options: { mode?: Suggestion["mode"]; thresholds: Thresholds },
): Suggestion {
  const t = options.thresholds;
  const rows = table.rowEstimate;
  if (options.mode !== undefined) return forced(options.mode, d, rows, t);
  if (rows !== undefined && rows <= t.fullMaxRows) {
    return full(`about ${formatRows(rows)} rows (at most ${formatRows(t.fullMaxRows)}): one query`);
  }
  const size = rows === undefined
    ? "no row estimate"
    : `about ${formatRows(rows)} rows (more than ${formatRows(t.fullMaxRows)})`;
  const unknown = rows === undefined
    ? [
      table.kind === "view"
        ? "a view has no row estimate: check its size"
        : "the catalog has no row estimate (run ANALYZE, then rivet init again)",
    ]
    : [];
  const pk = d.chunks.find((c) => c.reason === "integer_primary_key");
  if (pk !== undefined) {
    const s = chunked(
      d,
      rows,
      t,
      `${size} with integer primary key ${pk.column}: checkpointed chunks, so a crash resumes ` +
        "with --resume",
    );
    return { ...s, review: unknown };
  }
  if (d.cursors.length > 0) {
    const best = d.cursors[0]!;
    return incremental(
      d,
      `${size}, no integer primary key; ${best.column} is ${REASON_TEXT[best.reason]}`,
      unknown,
    );
  }
  return full(`${size}, no integer primary key and no date or timestamp column`, [
    ...unknown,
    "exported whole by one query at every run: fine if it is small, else add a chunk_column " +
    "or a cursor by hand",
  ]);
}

/**
 * Everything `init` decides about one table.
 *
 * @param kind The source engine.
 * @param table The table.
 * @param options `--mode` and the thresholds (default rivet-cli's).
 * @returns The analysis.
 */
export function analyzeTable(
  kind: SourceKind,
  table: InventoryTable,
  options: { mode?: Suggestion["mode"]; thresholds?: Thresholds } = {},
): TableAnalysis {
  const unsupported = new Set(table.unsupported.map((u) => u.column));
  const readable = table.columns.filter((c) => !unsupported.has(c.name));
  const cursors = cursorCandidates(readable);
  const chunks = chunkCandidates({ ...table, columns: readable });
  const fallback = fallbackFor(cursors);
  const overrides = readable.map((c) => numericOverride(kind, c)).filter((o) => o !== undefined);
  const primary = table.keys.find((k) => k.primary);
  const notes: string[] = [];
  if (table.unreadable !== undefined) notes.push(`cannot be read: ${table.unreadable}`);
  for (const u of table.unsupported) {
    notes.push(`column ${u.column} (${u.type}) cannot be exported: left out`);
  }
  if (table.kind === "view") notes.push("view: no keys and no row estimate");
  const suggestion = suggest(table, { cursors, chunks, fallback }, {
    ...(options.mode === undefined ? {} : { mode: options.mode }),
    thresholds: options.thresholds ?? DEFAULT_THRESHOLDS,
  });
  return {
    table,
    primaryKey: primary?.columns ?? [],
    cursorCandidates: cursors,
    ...(fallback === undefined ? {} : { fallbackColumn: fallback }),
    chunkCandidates: chunks,
    overrides,
    suggestion,
    notes,
  };
}

/** Format version of the `--discover` document. */
export const DISCOVERY_VERSION = 1;

/**
 * The `--discover` document: snake_case, one entry per table, sorted by schema and name.
 *
 * @param inventory What was inventoried.
 * @param analyses The analysis of each table (same order).
 * @returns A JSON-ready object.
 */
export function discoveryJson(
  inventory: Inventory,
  analyses: readonly TableAnalysis[],
): Record<string, unknown> {
  return {
    version: DISCOVERY_VERSION,
    source: { kind: inventory.kind, host: inventory.host, database: inventory.database },
    tables: analyses.map((a) => {
      const t = a.table;
      const typed = (name: string) => ({ column: name, type: columnOf(t, name)?.type ?? null });
      return {
        schema: t.schema,
        name: t.name,
        kind: t.kind,
        row_estimate: t.rowEstimate ?? null,
        total_bytes: t.totalBytes ?? null,
        primary_key: a.primaryKey.map(typed),
        unique_keys: t.keys.filter((k) => !k.primary).map((k) => ({
          name: k.name,
          columns: k.columns.map(typed),
        })),
        columns: t.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable })),
        suggested_mode: t.unreadable === undefined ? a.suggestion.mode : null,
        cursor_candidates: a.cursorCandidates.map((c) => ({
          column: c.column,
          type: c.type,
          reason: c.reason,
          nullable: c.nullable,
        })),
        suggested_cursor_fallback_column: a.fallbackColumn ?? null,
        chunk_candidates: a.chunkCandidates.map((c) => ({
          column: c.column,
          type: c.type,
          reason: c.reason,
        })),
        column_overrides: a.overrides.map((o) => ({ column: o.column, type: o.type })),
        unsupported_columns: t.unsupported.map((u) => ({
          column: u.column,
          type: u.type,
          reason: u.reason,
        })),
        notes: [...a.notes, ...a.suggestion.review],
      };
    }),
  };
}
