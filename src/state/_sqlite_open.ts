/**
 * Opening a state file: recognising it as rivet's before anything is written, the connection
 * pragmas, and the migration ladder. A file is migrated only once it is recognised (a 0-byte
 * file, an empty SQLite database, or one carrying rivet's `application_id`); anything else is
 * refused with the file left byte-for-byte untouched. `:memory:` opens a private in-memory
 * database with the same schema.
 *
 * Layer: state (private).
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { ConfigError } from "../core/errors.ts";
import { MIGRATIONS, STATE_APPLICATION_ID, STATE_SCHEMA_VERSION } from "./_migrations.ts";
import { nowIso, num, type Row } from "./_sqlite_rows.ts";

/** The path that opens a private in-memory database instead of a file. */
export const MEMORY_PATH = ":memory:";

/** Options of opening a SQLite state store. */
export interface SqliteStateStoreOptions {
  /** How long a writer waits for a lock held by another connection. Default 10000. */
  readonly busyTimeoutMs?: number;
}

const defaults = { busyTimeoutMs: 10_000 } satisfies Required<SqliteStateStoreOptions>;

const SQLITE_MAGIC = "SQLite format 3\0";

function corruptError(path: string, why: string, cause?: unknown): ConfigError {
  return new ConfigError(
    `State file '${path}' is corrupt (${why}): move it aside to start with empty state`,
    {
      code: "state.corrupt",
      ...(cause === undefined ? {} : { cause }),
      hint: `rename or delete '${path}' (cursors and checkpoints in it are lost); ` +
        "'rivet state reset' cannot help because it needs a readable state file",
    },
  );
}

function foreignError(path: string): ConfigError {
  return new ConfigError(
    `State file '${path}' is a SQLite database of another application, not rivet state: ` +
      "move it aside",
    {
      code: "state.foreign",
      hint: `rename '${path}' or keep that database elsewhere; rivet never migrates a file it ` +
        "did not create, and 'rivet state reset' cannot help",
    },
  );
}

/** What the pre-open inspection found. */
type Recognised = { readonly kind: "fresh" } | { readonly kind: "rivet"; readonly version: number };

function isNotFound(error: unknown): boolean {
  return error instanceof Deno.errors.NotFound;
}

/** Creates the file with mode 0600 (the state file can hold cursors, i.e. data). */
function createPrivateFile(path: string): void {
  try {
    Deno.openSync(path, { write: true, createNew: true, mode: 0o600 }).close();
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
}

function restrictMode(path: string): void {
  if (Deno.build.os !== "windows") Deno.chmodSync(path, 0o600);
}

/** Reads the first `n` bytes of a file (fewer when the file is shorter). */
function readHead(path: string, n: number): Uint8Array {
  using file = Deno.openSync(path, { read: true });
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const read = file.readSync(buf.subarray(got));
    if (read === null || read === 0) break;
    got += read;
  }
  return buf.subarray(0, got);
}

/**
 * Decides, without writing anything, whether `path` may be opened read-write and migrated.
 * Checks the 100-byte SQLite header first, then opens the file read-only.
 */
function recognise(path: string): Recognised {
  let size: number;
  try {
    const info = Deno.statSync(path);
    if (!info.isFile) throw corruptError(path, "not a regular file");
    size = info.size;
  } catch (error) {
    if (!isNotFound(error)) throw error;
    createPrivateFile(path);
    restrictMode(path);
    return { kind: "fresh" };
  }
  if (size === 0) {
    restrictMode(path);
    return { kind: "fresh" };
  }
  const head = readHead(path, 100);
  if (head.length < 100) throw corruptError(path, "truncated SQLite header");
  if (new TextDecoder().decode(head.subarray(0, 16)) !== SQLITE_MAGIC) {
    throw corruptError(path, "not a SQLite database");
  }
  const rawPageSize = (head[16]! << 8) | head[17]!;
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0 || size % pageSize !== 0) {
    throw corruptError(path, "truncated or damaged SQLite file");
  }
  // A read-only open of a WAL-mode file creates `-wal`/`-shm`; remove the ones we caused if the
  // file is refused, so a refused file is left exactly as found.
  const sideFiles = [`${path}-wal`, `${path}-shm`].filter((side) => !exists(side));
  let db: DatabaseSync | undefined;
  let accepted = false;
  try {
    db = new DatabaseSync(path, { readOnly: true });
    const appId = num(db.prepare("PRAGMA application_id").get() as Row, "application_id");
    const objects = db.prepare("SELECT name FROM sqlite_master").all() as Row[];
    if (appId === STATE_APPLICATION_ID) {
      const names = new Set(objects.map((o) => String(o.name)));
      if (!names.has("schema_version")) throw corruptError(path, "schema_version table missing");
      const version = maxVersion(db);
      accepted = version <= STATE_SCHEMA_VERSION;
      return { kind: "rivet", version };
    }
    if (appId === 0 && objects.length === 0) {
      accepted = true;
      return { kind: "fresh" };
    }
    throw foreignError(path);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw corruptError(path, "SQLite cannot read it", error);
  } finally {
    db?.close();
    if (!accepted) {
      for (const side of sideFiles) {
        try {
          Deno.removeSync(side);
        } catch {
          // Not created after all.
        }
      }
    }
  }
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

function tooNewError(path: string, version: number): ConfigError {
  return new ConfigError(
    `State file '${path}' has schema version ${version}, newer than this rivet knows ` +
      `(${STATE_SCHEMA_VERSION}): upgrade rivet`,
    {
      code: "state.schema_too_new",
      hint: "a newer rivet wrote this file; run that version, or move the file aside to start " +
        "with empty state",
    },
  );
}

/**
 * Recognises, opens read-write and migrates the file. The read-write open happens only after
 * {@linkcode recognise} accepted the file, so a foreign or corrupt file is never written.
 * {@linkcode MEMORY_PATH} has no file to recognise: it opens a fresh database.
 *
 * @param path File path, or `:memory:`.
 * @param options Busy timeout.
 * @returns The open, migrated database.
 */
export function openDatabase(path: string, options: SqliteStateStoreOptions = {}): DatabaseSync {
  const found = path === MEMORY_PATH ? { kind: "fresh" } as const : recognise(path);
  if (found.kind === "rivet" && found.version > STATE_SCHEMA_VERSION) {
    throw tooNewError(path, found.version);
  }
  const { busyTimeoutMs } = { ...defaults, ...options };
  const db = new DatabaseSync(path);
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(busyTimeoutMs))}`);
    db.exec("PRAGMA foreign_keys = ON");
    db.exec("PRAGMA journal_mode = WAL");
    // NORMAL is safe against application crashes in WAL mode; a power loss can drop only the
    // last commits, never corrupt the file.
    db.exec("PRAGMA synchronous = NORMAL");
    migrate(db, path);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Applies the missing migrations, each in one transaction; re-checks the version under lock. */
function migrate(db: DatabaseSync, path: string): void {
  for (const migration of MIGRATIONS) {
    db.exec("BEGIN IMMEDIATE");
    try {
      const current = currentVersion(db);
      if (current > STATE_SCHEMA_VERSION) throw tooNewError(path, current);
      if (current >= migration.version) {
        db.exec("COMMIT");
        continue;
      }
      try {
        db.exec(migration.sql);
      } catch (error) {
        throw migrationError(path, { from: current, to: migration.version }, error);
      }
      db.prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)").run(
        migration.version,
        nowIso(),
      );
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
  }
}

function migrationError(
  path: string,
  versions: { readonly from: number; readonly to: number },
  cause: unknown,
): ConfigError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new ConfigError(
    `State file '${path}' could not be migrated from schema version ${versions.from} to ` +
      `${versions.to} (${why}); it was left at version ${versions.from}: move it aside to ` +
      "start with empty state",
    {
      code: "state.migration_failed",
      cause,
      hint: `keep a copy of '${path}' for a bug report, then rename it; every migration is ` +
        "atomic, so the file is exactly as the older rivet left it",
    },
  );
}

function currentVersion(db: DatabaseSync): number {
  const table = db.prepare(
    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
  ).get();
  return table === undefined ? 0 : maxVersion(db);
}

/** The highest version in `schema_version`, 0 when it is empty. */
function maxVersion(db: DatabaseSync): number {
  const row = db.prepare("SELECT MAX(version) AS v FROM schema_version").get() as Row;
  return row.v === null ? 0 : num(row, "v");
}
