/**
 * Opening the PostgreSQL state schema: created if missing, then migrated one step per
 * transaction under an advisory lock, so two processes (two hosts) starting at once apply each
 * step exactly once.
 *
 * Layer: state (private).
 *
 * @module
 */
import { ConfigError } from "../core/errors.ts";
import type { SqlSession } from "../core/sql_session.ts";
import { STATE_SCHEMA_VERSION } from "./_migrations.ts";
import { PG_MIGRATIONS } from "./_pg_migrations.ts";
import { nowIso } from "./_sqlite_rows.ts";

/** The schema of the state tables when the URL names none. */
export const DEFAULT_STATE_SCHEMA = "rivet_state";

/** A schema name rivet accepts: a plain lower-case identifier, so it never needs escaping. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Checks a state schema name.
 *
 * @param schema The name.
 * @throws {ConfigError} `state.invalid_schema`.
 */
export function checkSchemaName(schema: string): void {
  if (SCHEMA_NAME.test(schema)) return;
  throw new ConfigError(
    `RIVET_STATE_URL names state schema '${schema.replace(/[^\x20-\x7e]/g, "?")}', which is ` +
      "not a plain lower-case identifier",
    {
      code: "state.invalid_schema",
      hint: "use ?schema= with lower-case letters, digits and _ (default rivet_state)",
    },
  );
}

function sqlstate(error: unknown): string | undefined {
  const value = (error as { sqlstate?: unknown } | null)?.sqlstate;
  return typeof value === "string" ? value : undefined;
}

/** The role may not create the schema (or its tables): the DBA's SQL is the hint. */
function privilegeError(schema: string, where: string, cause: unknown): ConfigError {
  return new ConfigError(
    `The PostgreSQL state database at ${where} refused to create the state schema '${schema}' ` +
      "or its tables: the role lacks the privilege",
    {
      code: "state.schema_privilege",
      hint: `have a DBA run: CREATE SCHEMA IF NOT EXISTS ${schema} AUTHORIZATION <role>; ` +
        `(or GRANT CREATE ON DATABASE <database> TO <role>;) then run rivet again`,
      cause,
    },
  );
}

function tooNewError(schema: string, where: string, version: number): ConfigError {
  return new ConfigError(
    `State schema '${schema}' at ${where} has version ${version}, newer than this rivet knows ` +
      `(${STATE_SCHEMA_VERSION}): upgrade rivet`,
    {
      code: "state.schema_too_new",
      hint: "a newer rivet migrated this state schema; run that version on every host",
    },
  );
}

/**
 * Creates the schema if missing, points the session at it and applies the missing migrations.
 *
 * @param session An open session.
 * @param schema The state schema (checked with {@linkcode checkSchemaName}).
 * @param where `host:port/database`, for messages.
 */
export async function preparePgState(
  session: SqlSession,
  schema: string,
  where: string,
): Promise<void> {
  checkSchemaName(schema);
  try {
    // Under the migration lock: two processes creating the schema at once would otherwise
    // collide in the catalog, IF NOT EXISTS notwithstanding. CREATE SCHEMA needs CREATE on the
    // database even when the schema exists: look first, so a role that only owns (or was
    // granted) the schema a DBA made works.
    await session.query("BEGIN");
    await lockMigrations(session, schema);
    const found = await session.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema]);
    if (found.rows.length === 0) await session.query(`CREATE SCHEMA ${schema}`);
    await session.query("COMMIT");
    await session.query(`SET search_path TO ${schema}`);
    // Transactions of the store last milliseconds; one left open by a frozen process (stopped,
    // swapped out) would hold its row locks from every other host: the server ends it instead.
    await session.query("SET idle_in_transaction_session_timeout = '60s'");
    await migrate(session, schema, where);
  } catch (error) {
    if (!session.broken) await session.query("ROLLBACK").catch(() => {});
    if (sqlstate(error) === "42501") throw privilegeError(schema, where, error);
    throw error;
  }
}

/** Serialises schema creation and migration of one schema across sessions, until COMMIT. */
async function lockMigrations(session: SqlSession, schema: string): Promise<void> {
  await session.query("SELECT pg_advisory_xact_lock(hashtext('rivet.migrate'), hashtext($1))", [
    schema,
  ]);
}

/** One transaction per step, each re-reading the version under the advisory lock. */
async function migrate(session: SqlSession, schema: string, where: string): Promise<void> {
  // The common case, every host but the first: already at this build's version, no lock taken.
  const known = await session.query(
    "SELECT (SELECT MAX(version) FROM rivet_schema_version) " +
      "WHERE to_regclass('rivet_schema_version') IS NOT NULL",
  ).catch(() => undefined);
  if (Number(known?.rows[0]?.[0] ?? 0) === STATE_SCHEMA_VERSION) return;
  for (const migration of PG_MIGRATIONS) {
    await session.query("BEGIN");
    await lockMigrations(session, schema);
    await session.query(
      `CREATE TABLE IF NOT EXISTS rivet_schema_version (
         version BIGINT PRIMARY KEY,
         applied_at TEXT NOT NULL
       )`,
    );
    const result = await session.query(
      "SELECT COALESCE(MAX(version), 0) FROM rivet_schema_version",
    );
    const current = Number(result.rows[0]?.[0] ?? 0);
    if (current > STATE_SCHEMA_VERSION) throw tooNewError(schema, where, current);
    if (current < migration.version) {
      await session.query(migration.sql);
      await session.query(
        "INSERT INTO rivet_schema_version (version, applied_at) VALUES ($1, $2)",
        [String(migration.version), nowIso()],
      );
    }
    await session.query("COMMIT");
  }
}
