/**
 * Entries ↔ rows for the SQLite roles: each table's mapping is declared once ({@linkcode table}:
 * the entry's fields by kind, columns named by one rule) and drives both the reads and the
 * writes, so a field cannot be written under one column and read from another.
 *
 * Layer: state (private).
 *
 * @module
 */
import type { DatabaseSync, SQLInputValue } from "node:sqlite";

/** One result row, by column name. */
export type Row = Record<string, SQLInputValue | null>;

/**
 * How a column's value converts: `text` as is (NULL stays null), `int` a number, `bool` 0/1,
 * `json` JSON text (an absent value is stored as `null`).
 */
export type ColumnKind = "text" | "int" | "bool" | "json";

/** Entry fields of `T`, by how their columns store them. */
export interface ColumnSpec<T> {
  readonly text?: readonly (keyof T & string)[];
  readonly int?: readonly (keyof T & string)[];
  readonly bool?: readonly (keyof T & string)[];
  readonly json?: readonly (keyof T & string)[];
}

/**
 * How entries of `T` map to the columns of a table. A field's column is its name in snake_case
 * (`rowCount` → `row_count`) after `prefix`, unless `rename` names it.
 */
export interface TableSpec<T> extends ColumnSpec<T> {
  /** Fields read back only when their column is not NULL, so they stay absent, not null. */
  readonly optional?: ColumnSpec<T>;
  /** Columns not named after their field (taken as they are, without the prefix). */
  readonly rename?: { readonly [K in keyof T]?: string };
  /** Put before every derived column name. */
  readonly prefix?: string;
}

type Column<T> = readonly [field: keyof T & string, column: string, kind: ColumnKind];

/** A table's mapping: the required columns first (the first is the key of an upsert). */
export interface Table<T> {
  readonly required: readonly Column<T>[];
  readonly optional: readonly Column<T>[];
  /** Both, in that order: what a write binds. */
  readonly all: readonly Column<T>[];
}

const KINDS: readonly ColumnKind[] = ["text", "int", "bool", "json"];

/**
 * Declares how entries of `T` map to a table.
 *
 * @example
 * ```ts
 * import { table } from "./_sqlite_rows.ts";
 * const t = table<{ runId: string; rowCount: number }>({ text: ["runId"], int: ["rowCount"] });
 * if (t.required[1]?.[1] !== "row_count") throw new Error("column");
 * ```
 */
export function table<T>(spec: TableSpec<T>): Table<T> {
  const columns = (group: ColumnSpec<T>) =>
    KINDS.flatMap((kind) =>
      (group[kind] ?? []).map((field): Column<T> => [
        field,
        spec.rename?.[field] ??
          (spec.prefix ?? "") + field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
        kind,
      ])
    );
  const required = columns(spec);
  const optional = columns(spec.optional ?? {});
  return { required, optional, all: [...required, ...optional] };
}

/** Now, as the ISO-8601 UTC string every stored time is. */
export function nowIso(): string {
  return new Date().toISOString();
}

/** A column read as text. */
export function text(row: Row, column: string): string {
  return String(row[column]);
}

/** A column read as a number. */
export function num(row: Row, column: string): number {
  return Number(row[column]);
}

function fromSql(value: SQLInputValue | null, kind: ColumnKind): unknown {
  if (value === null) return null;
  switch (kind) {
    case "int":
      return Number(value);
    case "bool":
      // 1 from SQLite, "1" from a backend that returns text (PostgreSQL).
      return value === 1 || value === 1n || value === "1";
    case "json":
      return JSON.parse(String(value));
    case "text":
      return value;
  }
}

function toSql(value: unknown, kind: ColumnKind): SQLInputValue {
  if (kind === "json") return JSON.stringify(value ?? null);
  if (value === undefined || value === null) return null;
  if (kind === "bool") return value ? 1 : 0;
  return value as SQLInputValue;
}

/**
 * An entry from a row: required fields always set (a NULL text column reads as null), optional
 * ones only when their column is not NULL.
 */
export function fromRow<T>(row: Row, table: Table<T>): T {
  const out: Record<string, unknown> = {};
  for (const [field, column, kind] of table.required) {
    out[field] = fromSql(row[column] ?? null, kind);
  }
  for (const [field, column, kind] of table.optional) {
    const value = row[column];
    // An absent optional JSON field is stored as the JSON text `null`: it stays absent.
    const parsed = value === null || value === undefined ? null : fromSql(value, kind);
    if (parsed !== null) out[field] = parsed;
  }
  return out as T;
}

/**
 * The INSERT of every mapped column of a table.
 *
 * @param verb `INSERT` or `INSERT OR REPLACE`.
 * @param name The table (a constant of the caller, never input).
 * @param table The mapping.
 * @param placeholder The placeholder of the `i`-th value (0-based): `?` in SQLite, `$1`, `$2`, … in
 *   PostgreSQL.
 */
export function insertSql<T>(
  verb: string,
  name: string,
  table: Table<T>,
  placeholder: (i: number) => string = () => "?",
): string {
  const names = table.all.map(([, column]) => column);
  return `${verb} INTO ${name} (${names.join(", ")}) VALUES (${
    names.map((_, i) => placeholder(i)).join(", ")
  })`;
}

/** The `ON CONFLICT` clause that sets every mapped column but the key (the first column). */
export function upsertClause<T>(table: Table<T>): string {
  const [key, ...rest] = table.all.map(([, column]) => column);
  const set = rest.map((c) => `${c} = excluded.${c}`).join(", ");
  return ` ON CONFLICT (${key}) DO UPDATE SET ${set}`;
}

/** The values of an entry, in the order of {@linkcode insertSql}'s columns. */
export function params<T>(entry: T, table: Table<T>): SQLInputValue[] {
  return table.all.map(([field, , kind]) => toSql(entry[field], kind));
}

/**
 * Inserts an entry as one row, absent fields as NULL.
 *
 * @param db The database.
 * @param name The table (a constant of the caller, never input).
 * @param table The mapping.
 * @param entry The entry.
 * @param verb `INSERT OR REPLACE` to replace the row with the same primary key.
 */
export function insert<T>(
  db: DatabaseSync,
  name: string,
  table: Table<T>,
  entry: T,
  verb: "INSERT" | "INSERT OR REPLACE" = "INSERT",
): void {
  db.prepare(insertSql(verb, name, table)).run(...params(entry, table));
}

/**
 * Inserts an entry, or sets the mapped columns of the row with the same key (the first
 * column), leaving the row's other columns as they are.
 *
 * @param db The database.
 * @param name The table (a constant of the caller, never input).
 * @param table The mapping, key first.
 * @param entry The entry.
 */
export function upsert<T>(db: DatabaseSync, name: string, table: Table<T>, entry: T): void {
  db.prepare(insertSql("INSERT", name, table) + upsertClause(table)).run(...params(entry, table));
}
