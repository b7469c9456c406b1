/**
 * The inventory `rivet init` works from, read through an open {@linkcode Source}: the catalog
 * statements of `plan/inventory_sql.ts` (tables and views, columns, unique keys of the chosen
 * schemas, in three statements), the tables the user selected (`--table`, `--include`,
 * `--exclude`), then each table's columns read as the export would read them (a `WHERE 1 = 0`
 * probe with the scaffold's own `columns:` overrides), so a column the export cannot carry is
 * known, and left out, before any YAML is written.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import { ConfigError, toErrorInfo } from "../core/errors.ts";
import type { Source } from "../core/source.ts";
import type { SourceKind } from "../core/spec.ts";
import {
  columnsSql,
  defaultSchemaSql,
  keysSql,
  selectSql,
  tablesSql,
} from "../plan/inventory_sql.ts";
import {
  type InventoryColumn,
  type InventoryKey,
  type InventoryTable,
  numericOverride,
  type UnsupportedColumn,
} from "../plan/inventory.ts";
import { probeColumns, probeRows, probeScalar } from "./probe.ts";
import { redact } from "../_util/redact.ts";

/** A `--table` argument: `name` or `schema.name`. */
export interface TableRef {
  readonly schema?: string;
  readonly name: string;
}

/** What to inventory. */
export interface DiscoverOptions {
  readonly signal?: AbortSignal;
  /** `--schema`: the schema of unqualified names (default: the connection's). */
  readonly schema?: string;
  /** `--table`: exactly these tables (an unknown one is an error). */
  readonly tables?: readonly TableRef[];
  /** `--include` globs (`*`, `?`); none means every table. */
  readonly include?: readonly string[];
  /** `--exclude` globs; they win over `--include`. */
  readonly exclude?: readonly string[];
}

/** Statement timeout of each catalog statement and probe (seconds). */
const CATALOG_TIMEOUT_S = 60;
/** Catalog rows read at most (a schema of this many columns is past what init is for). */
const MAX_CATALOG_ROWS = 1_000_000;

/**
 * A glob (`*` any run of characters, `?` one character, everything else literal) as a
 * whole-string, case-sensitive pattern.
 *
 * @param glob The glob.
 * @returns The pattern.
 *
 * @example
 * ```ts
 * import { globPattern } from "./discover.ts";
 * if (!globPattern("ord?r_*").test("order_lines") || globPattern("a.b").test("axb")) {
 *   throw new Error();
 * }
 * ```
 */
export function globPattern(glob: string): RegExp {
  let source = "";
  for (const ch of glob) {
    source += ch === "*" ? ".*" : ch === "?" ? "." : ch.replace(/[\\^$.|+()[\]{}]/g, "\\$&");
  }
  return new RegExp(`^${source}$`, "s");
}

/**
 * Whether a table passes `--include`/`--exclude`: a glob with a `.` is matched against
 * `schema.name`, else against the name; exclude beats include; no include means all.
 *
 * @param table The table.
 * @param include Include globs.
 * @param exclude Exclude globs.
 * @returns True when the table is selected.
 */
export function selectedByGlobs(
  table: TableRef & { schema: string },
  include: readonly string[],
  exclude: readonly string[],
): boolean {
  const matches = (glob: string) =>
    globPattern(glob).test(glob.includes(".") ? `${table.schema}.${table.name}` : table.name);
  if (exclude.some(matches)) return false;
  return include.length === 0 || include.some(matches);
}

function toNumber(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/** SQL Server's type spelled with its length, precision or fraction digits. */
function mssqlTypeName(base: string, precision?: number, scale?: number, maxLength?: number) {
  const b = base.toLowerCase();
  if (b === "decimal" || b === "numeric") return `${b}(${precision},${scale})`;
  if (["varchar", "char", "varbinary", "binary", "nvarchar", "nchar"].includes(b)) {
    if (maxLength === undefined) return b;
    if (maxLength === -1) return `${b}(max)`;
    return `${b}(${b.startsWith("n") ? maxLength / 2 : maxLength})`;
  }
  if (["datetime2", "datetimeoffset", "time"].includes(b) && scale !== undefined) {
    return `${b}(${scale})`;
  }
  return b;
}

const key = (schema: string, name: string) => `${schema}\u0000${name}`;

function columnFromRow(kind: SourceKind, row: (string | undefined)[]): InventoryColumn {
  const [, , name, type, base, nullable, p, s, len] = row;
  const precision = toNumber(p);
  const scale = toNumber(s);
  const baseType = (base ?? type ?? "").toLowerCase();
  return {
    name: name ?? "",
    type: kind === "mssql"
      ? mssqlTypeName(baseType, precision, scale, toNumber(len))
      : (type ?? baseType),
    baseType: kind === "postgres" && baseType === "bpchar" ? "char" : baseType,
    nullable: nullable !== "0",
    ...(precision === undefined ? {} : { precision }),
    ...(scale === undefined ? {} : { scale }),
  };
}

function keysFromRows(rows: (string | undefined)[][]): Map<string, InventoryKey[]> {
  const byTable = new Map<
    string,
    Map<string, { primary: boolean; columns: (string | undefined)[] }>
  >();
  for (const [schema, table, index, primary, column] of rows) {
    const k = key(schema ?? "", table ?? "");
    const indexes = byTable.get(k) ?? new Map();
    byTable.set(k, indexes);
    const entry = indexes.get(index ?? "") ?? { primary: primary === "1", columns: [] };
    indexes.set(index ?? "", entry);
    entry.columns.push(column);
  }
  const out = new Map<string, InventoryKey[]>();
  for (const [k, indexes] of byTable) {
    const keys: InventoryKey[] = [];
    for (const [name, entry] of indexes) {
      // A key part without a column (an expression) proves no column unique.
      if (entry.columns.some((c) => c === undefined)) continue;
      keys.push({ name, primary: entry.primary, columns: entry.columns as string[] });
    }
    out.set(k, keys);
  }
  return out;
}

function unknownTable(ref: TableRef, schema: string, known: readonly string[]): ConfigError {
  const close = known.filter((n) => n.toLowerCase() === ref.name.toLowerCase());
  return new ConfigError(
    `table '${schema}.${ref.name}' does not exist (or this login cannot see it)`,
    {
      code: "init.unknown_table",
      hint: close.length > 0
        ? `did you mean ${
          close.map((n) => `'${schema}.${n}'`).join(" or ")
        }? names are case-sensitive`
        : `run rivet init --discover to list the tables of schema '${schema}', or pass --schema`,
    },
  );
}

/**
 * Reads the inventory of the selected tables.
 *
 * @param source An open source.
 * @param kind Its engine.
 * @param options Selection and signal.
 * @returns The schema listed (`--schema` or the connection's) and the selected tables, sorted by
 *   schema and name, with the columns each export cannot read.
 * @throws {ConfigError} `init.no_schema` (no default schema), `init.unknown_table`.
 */
export async function discoverTables(
  source: Source,
  kind: SourceKind,
  options: DiscoverOptions = {},
): Promise<{ schema: string; tables: InventoryTable[] }> {
  const probe = {
    statementTimeoutS: CATALOG_TIMEOUT_S,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  let schema = options.schema;
  if (schema === undefined) {
    schema = await probeScalar(source, defaultSchemaSql(kind), probe);
    if (schema === undefined || schema === "") {
      throw new ConfigError("the connection has no default schema (or database)", {
        code: "init.no_schema",
        hint: kind === "mysql"
          ? "name the database in the URL (mysql://user@host/db) or pass --schema"
          : "pass --schema",
      });
    }
  }
  const refs = (options.tables ?? []).map((r) => ({ schema: r.schema ?? schema, name: r.name }));
  const schemas = [...new Set([schema, ...refs.map((r) => r.schema)])].sort();
  const many = { ...probe, maxRows: MAX_CATALOG_ROWS };
  const tableRows = await probeRows(source, tablesSql(kind, schemas), many);
  const known = new Map(tableRows.map((r) => [key(r[0] ?? "", r[1] ?? ""), r]));
  for (const ref of refs) {
    if (!known.has(key(ref.schema, ref.name))) {
      const names = tableRows.filter((r) => r[0] === ref.schema).map((r) => r[1] ?? "");
      throw unknownTable(ref, ref.schema, names);
    }
  }
  const wanted = new Set(refs.map((r) => key(r.schema, r.name)));
  const selected = tableRows.filter((r) => {
    const t = { schema: r[0] ?? "", name: r[1] ?? "" };
    if (wanted.size > 0) return wanted.has(key(t.schema, t.name));
    return t.schema === schema &&
      selectedByGlobs(t, options.include ?? [], options.exclude ?? []);
  });
  if (selected.length === 0) return { schema, tables: [] };

  const columns = new Map<string, InventoryColumn[]>();
  for (const row of await probeRows(source, columnsSql(kind, schemas), many)) {
    const k = key(row[0] ?? "", row[1] ?? "");
    const list = columns.get(k) ?? [];
    columns.set(k, list);
    list.push(columnFromRow(kind, row));
  }
  const keys = keysFromRows(await probeRows(source, keysSql(kind, schemas), many));

  const tables: InventoryTable[] = [];
  for (const [s, name, relkind, rows, bytes] of selected) {
    const k = key(s ?? "", name ?? "");
    const cols = columns.get(k) ?? [];
    const base = {
      schema: s ?? "",
      name: name ?? "",
      kind: relkind === "view" ? "view" as const : "table" as const,
      ...(toNumber(rows) === undefined ? {} : { rowEstimate: toNumber(rows)! }),
      ...(toNumber(bytes) === undefined ? {} : { totalBytes: toNumber(bytes)! }),
      columns: cols,
      keys: keys.get(k) ?? [],
    };
    tables.push({ ...base, ...await readability(source, kind, base, probe) });
  }
  return { schema, tables };
}

/**
 * Reads a table's columns as the export would (no row), with the scaffold's overrides: what it
 * cannot read. A statement the source refuses for its types is retried one column at a time to
 * name each refused column; any other permanent failure (no SELECT privilege, a broken view)
 * marks the table unreadable. Transient failures and interruptions propagate.
 */
async function readability(
  source: Source,
  kind: SourceKind,
  table: Pick<InventoryTable, "schema" | "name" | "columns">,
  probe: { statementTimeoutS: number; signal?: AbortSignal },
): Promise<{ unsupported: UnsupportedColumn[]; unreadable?: string }> {
  const overrides: Record<string, string> = {};
  for (const c of table.columns) {
    const o = numericOverride(kind, c);
    if (o !== undefined) overrides[c.name] = o.type;
  }
  const options = { ...probe, columnOverrides: overrides };
  try {
    await probeColumns(source, selectSql(kind, table.schema, table.name), options);
    return { unsupported: [] };
  } catch (error) {
    const info = toErrorInfo(error);
    if (info.exitCode === 2 || info.exitCode === 130) throw error;
    if (info.code !== "source.unsupported_types") {
      // Server text lands in the YAML and the JSON, which are not redacted on their way out.
      return { unsupported: [], unreadable: redact(info.message) };
    }
  }
  const unsupported: UnsupportedColumn[] = [];
  for (const c of table.columns) {
    try {
      await probeColumns(source, selectSql(kind, table.schema, table.name, [c.name]), options);
    } catch (error) {
      const info = toErrorInfo(error);
      if (info.exitCode === 2 || info.exitCode === 130) throw error;
      unsupported.push({
        column: c.name,
        type: c.type,
        reason: redact(columnReason(info.message, c.name)),
      });
    }
  }
  return { unsupported };
}

/** The source's reason for one column, without the "Unsupported column types: 'x' (t): " lead. */
function columnReason(message: string, column: string): string {
  const lead = message.indexOf(`'${column}' (`);
  if (lead < 0) return message;
  const colon = message.indexOf("): ", lead);
  return colon < 0 ? message : message.slice(colon + 3);
}
