/**
 * The PostgreSQL migration ladder of the state schema: the same tables, columns and version
 * numbers as the SQLite ladder (`_migrations.ts`), in PostgreSQL types. Each step runs once, in
 * order, in its own transaction (PostgreSQL DDL is transactional), under an advisory lock so that
 * two processes starting at once never migrate twice; the applied versions are rows of
 * `rivet_schema_version`.
 *
 * Layer: state (private).
 *
 * @module
 */
import { type Migration, MIGRATIONS } from "./_migrations.ts";

/**
 * A step of the SQLite ladder in PostgreSQL: the same text, so the two backends cannot drift
 * apart, with SQLite's own words translated. `INTEGER` counts become `BIGINT` (SQLite's are
 * 64-bit); an `INTEGER PRIMARY KEY AUTOINCREMENT` insertion order becomes an identity column;
 * the version table (PostgreSQL keeps `rivet_schema_version`, made by the migrator) and
 * `PRAGMA`s are dropped. `extra` is appended: what SQLite has implicitly (`rowid`).
 */
export function fromSqlite(version: number, extra = ""): Migration {
  const step = MIGRATIONS.find((m) => m.version === version);
  if (step === undefined) throw new RangeError(`No SQLite state migration v${version}`);
  const sql = step.sql
    .replace(/CREATE TABLE schema_version \([^;]*\);/, "")
    .replace(/PRAGMA [^;]*;/g, "")
    .replace(
      /INTEGER PRIMARY KEY AUTOINCREMENT/g,
      "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    )
    .replace(/\bINTEGER\b/g, "BIGINT");
  return { version, sql: sql + extra };
}

/**
 * The ladder: one entry per SQLite step, in order. Append only: never edit a released step. A
 * SQLite step that PostgreSQL cannot run as translated gets its own SQL here instead, under the
 * same version number.
 */
export const PG_MIGRATIONS: readonly Migration[] = [
  // `chunk_run` and `run_aggregate` order ties by insertion, which SQLite's `rowid` gives.
  fromSqlite(
    1,
    `ALTER TABLE chunk_run ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;
     ALTER TABLE run_aggregate ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;`,
  ),
  fromSqlite(2),
  fromSqlite(3),
  fromSqlite(4),
  // v5 rebuilds export_state with the (export_name, config_identity) key: the same SQL runs here.
  fromSqlite(5),
  fromSqlite(6),
  fromSqlite(7),
  // Traces order by insertion, which SQLite's `rowid` gives.
  fromSqlite(8, `ALTER TABLE run_trace ADD COLUMN seq BIGINT GENERATED ALWAYS AS IDENTITY;`),
];
