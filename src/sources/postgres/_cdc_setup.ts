/**
 * What the PostgreSQL change reader checks and prepares on an ordinary connection before it
 * streams: `wal_level`, the REPLICATION attribute, the tables (resolved to OIDs and probed for
 * their export typing), the publication (created for the tables or checked to cover them) and
 * the replication slot (its plugin, database and whether another process holds it). Every refusal
 * names the fix.
 *
 * Layer: sources.
 *
 * @module
 */
import { ConfigError, PermanentError, TransientError } from "../../core/errors.ts";
import type { CdcTableRef } from "../../core/cdc.ts";
import { catalogLookup } from "./read.ts";
import { type ColumnPlans, type DecodePlan, planColumns } from "./_types.ts";
import { PgPermanentError } from "./_errors.ts";
import type { PgFieldDescription } from "./_messages.ts";
import type { PgConnection } from "./wire.ts";
import { ColumnBytes, parseLsn } from "./_replication.ts";

/** A captured table, resolved and typed as a normal export types it. */
export interface PgCdcTable {
  /** `pg_class` OID: what Relation and change messages name the table by. */
  readonly oid: number;
  /** A partitioned table: its changes are published under its own name only via the root. */
  readonly partitioned: boolean;
  readonly schemaName: string;
  readonly tableName: string;
  /** `schema.table`. */
  readonly name: string;
  /** The probe's RowDescription: names, type OIDs and typmods a Relation message must match. */
  readonly fields: readonly PgFieldDescription[];
  /** The export's typing of the columns (decoder plans, Arrow schema, column infos). */
  readonly typing: Pick<ColumnPlans, "plans" | "schema" | "columns">;
  /** One {@linkcode ColumnBytes} per column. */
  readonly modes: readonly number[];
}

const NAME = /^[A-Za-z0-9_]+$/;

/**
 * Refuses a table reference outside `[A-Za-z0-9_.]` (the names go into SQL text unquoted).
 *
 * @param ref The table.
 * @returns `schema.table` or `table`, as written.
 */
export function tableText(ref: CdcTableRef): string {
  const parts = ref.schema === undefined ? [ref.table] : [ref.schema, ref.table];
  for (const part of parts) {
    if (!NAME.test(part)) {
      throw new ConfigError(
        `CDC table '${parts.join(".")}' has characters outside [A-Za-z0-9_.]; capture a table ` +
          "whose schema and name are plain identifiers",
        { code: "cdc.bad_table_name" },
      );
    }
  }
  return parts.join(".");
}

/** Double-quotes an identifier (slot and publication names are user text). */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Refuses a server that cannot decode logically, or a role that may not stream.
 *
 * @param conn Control connection.
 * @param user Login role, for the hint.
 */
export async function checkServer(conn: PgConnection, user: string): Promise<void> {
  const res = await conn.query(
    "SELECT current_setting('wal_level'), " +
      "(SELECT rolreplication OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)",
  );
  const walLevel = res.rows[0]?.[0] ?? "?";
  if (walLevel !== "logical") {
    throw new PermanentError(
      `PostgreSQL at ${conn.endpoint} has wal_level = ${walLevel}; change data capture needs ` +
        "logical decoding",
      {
        code: "cdc.wal_level",
        hint: "run ALTER SYSTEM SET wal_level = logical; as a superuser, then restart the server " +
          "(also check max_replication_slots and max_wal_senders are above 0)",
      },
    );
  }
  if (res.rows[0]?.[1] !== "t") {
    throw new PermanentError(
      `Role '${user}' on ${conn.endpoint} lacks the REPLICATION attribute, which streaming ` +
        "changes needs",
      {
        code: "cdc.not_replication_role",
        hint: `a superuser runs ALTER ROLE ${quoteIdent(user)} WITH REPLICATION;`,
      },
    );
  }
}

/** Text-form plans whose column's binary send format is already its text. */
const TEXT_SEND = new Set([18, 19, 25, 114, 705, 1042, 1043]);

async function columnModes(
  conn: PgConnection,
  name: string,
  fields: readonly PgFieldDescription[],
  plans: readonly DecodePlan[],
): Promise<number[]> {
  const modes: number[] = [];
  for (let i = 0; i < plans.length; i++) {
    const oid = fields[i]!.typeOid;
    if (plans[i]!.format === 1) modes.push(ColumnBytes.Binary);
    else if (oid === 3802) modes.push(ColumnBytes.JsonbText);
    else if (TEXT_SEND.has(oid)) modes.push(ColumnBytes.TextSame);
    else {
      const t = await conn.queryParams(
        "SELECT typtype = 'e' OR typname = 'citext' FROM pg_catalog.pg_type WHERE oid = $1",
        [String(oid)],
      );
      if (t.rows[0]?.[0] !== "t") {
        throw new ConfigError(
          `CDC of ${name}: the columns: override of '${plans[i]!.name}' reads the server's text ` +
            "form, which the change stream does not carry for this type (it sends binary values)",
          {
            code: "cdc.override_unsupported",
            hint: "drop that column's override for the CDC export",
          },
        );
      }
      modes.push(ColumnBytes.TextSame);
    }
  }
  return modes;
}

/**
 * Resolves a table and types its columns through the export's own mapping (a `WHERE false`
 * probe, then the same planner a read uses, `columns:` overrides included).
 *
 * @param conn Control connection.
 * @param ref The table.
 * @param overrides `columns:` overrides.
 * @returns The table as the reader captures it.
 */
export async function probeTable(
  conn: PgConnection,
  ref: CdcTableRef,
  overrides: Readonly<Record<string, string>>,
): Promise<PgCdcTable> {
  const text = tableText(ref);
  const found = await conn.queryParams(
    "SELECT c.oid::int8, n.nspname, c.relname, c.relkind = 'p', c.relreplident = 'n' OR " +
      "(c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i " +
      "WHERE i.indrelid = c.oid AND i.indisprimary)) FROM pg_catalog.pg_class c " +
      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)",
    [text],
  );
  const row = found.rows[0];
  if (!row) {
    throw new PgPermanentError(
      `CDC table '${text}' does not exist on ${conn.endpoint}: check the table and schema name`,
      { code: "source.undefined_object" },
    );
  }
  const [schemaName, tableName] = [row[1]!, row[2]!];
  const name = `${schemaName}.${tableName}`;
  if (row[4] === "t") {
    // Publishing updates and deletes of such a table makes the server refuse them: capture
    // would break the application's writes, and a delete would carry no key anyway.
    throw new PermanentError(
      `CDC table ${name} has no replica identity (no primary key): its updates and deletes ` +
        "cannot be published without making them fail on the server",
      {
        code: "cdc.no_replica_identity",
        hint: `add a primary key, or run ALTER TABLE ${quoteIdent(schemaName)}.` +
          `${quoteIdent(tableName)} REPLICA IDENTITY FULL;`,
      },
    );
  }
  // The columns pgoutput sends: generated columns are left out of the change stream.
  const names = await conn.queryParams(
    "SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attnum > 0 " +
      "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
    [row[0]!],
  );
  const list = names.rows.map((r) => quoteIdent(r[0]!)).join(", ");
  const probe = await conn.query(`SELECT ${list} FROM ${text} WHERE false`);
  const plans = await planColumns(probe.fields, { overrides, lookup: catalogLookup(conn) });
  return {
    oid: Number(row[0]),
    partitioned: row[3] === "t",
    schemaName,
    tableName,
    name,
    fields: probe.fields,
    typing: plans,
    modes: await columnModes(conn, name, probe.fields, plans.plans),
  };
}

/**
 * Creates the publication for the tables, or checks that the existing one publishes inserts,
 * updates and deletes of every one of them.
 *
 * @param conn Control connection.
 * @param publication Its name.
 * @param tables The captured tables.
 */
export async function ensurePublication(
  conn: PgConnection,
  publication: string,
  tables: readonly PgCdcTable[],
): Promise<void> {
  const list = tables.map((t) => `${quoteIdent(t.schemaName)}.${quoteIdent(t.tableName)}`)
    .join(", ");
  const partitioned = tables.filter((t) => t.partitioned);
  const pub = await conn.queryParams(
    "SELECT pubinsert AND pubupdate AND pubdelete, pubviaroot FROM pg_catalog.pg_publication " +
      "WHERE pubname = $1",
    [publication],
  );
  if (pub.rows.length === 0) {
    // A partition's changes carry the partition's name unless published via the root.
    const viaRoot = partitioned.length > 0 ? " WITH (publish_via_partition_root = true)" : "";
    const create = `CREATE PUBLICATION ${quoteIdent(publication)} FOR TABLE ${list}${viaRoot}`;
    try {
      await conn.query(create);
    } catch (error) {
      const sqlstate = (error as { sqlstate?: string }).sqlstate;
      if (sqlstate === "42501") {
        throw new PermanentError(
          `Role may not create publication '${publication}' on ${conn.endpoint} (it must own ` +
            `the tables ${tables.map((t) => t.name).join(", ")})`,
          {
            code: "cdc.publication_denied",
            hint: `the tables' owner runs ${create};`,
            cause: error,
          },
        );
      }
      throw error;
    }
    return;
  }
  const quoted = quoteIdent(publication);
  if (pub.rows[0]![0] !== "t") {
    throw new PermanentError(
      `Publication '${publication}' on ${conn.endpoint} does not publish inserts, updates and ` +
        "deletes",
      {
        code: "cdc.publication_incomplete",
        hint: `run ALTER PUBLICATION ${quoted} SET (publish = 'insert, update, delete, truncate');`,
      },
    );
  }
  if (partitioned.length > 0 && pub.rows[0]![1] !== "t") {
    throw new PermanentError(
      `Publication '${publication}' on ${conn.endpoint} publishes the changes of the ` +
        `partitioned table ${partitioned[0]!.name} under its partitions' names`,
      {
        code: "cdc.publication_incomplete",
        hint: `run ALTER PUBLICATION ${quoted} SET (publish_via_partition_root = true);`,
      },
    );
  }
  const covered = await conn.queryParams(
    "SELECT schemaname || '.' || tablename FROM pg_catalog.pg_publication_tables " +
      "WHERE pubname = $1",
    [publication],
  );
  const have = new Set(covered.rows.map((r) => r[0]));
  const missing = tables.filter((t) => !have.has(t.name));
  if (missing.length > 0) {
    const add = missing.map((t) => `${quoteIdent(t.schemaName)}.${quoteIdent(t.tableName)}`);
    throw new PermanentError(
      `Publication '${publication}' on ${conn.endpoint} does not cover ` +
        missing.map((t) => t.name).join(", "),
      {
        code: "cdc.publication_incomplete",
        hint: `a table owner runs ALTER PUBLICATION ${quoted} ADD TABLE ${add.join(", ")};`,
      },
    );
  }
}

/** The slot as found before streaming. */
export interface SlotState {
  /** False when it must be created. */
  readonly exists: boolean;
  /** `confirmed_flush_lsn`, when it exists. */
  readonly confirmedFlush?: bigint;
}

/**
 * Looks the slot up and refuses one that this reader cannot use.
 *
 * @param conn Control connection.
 * @param slot Its name.
 * @returns Whether it exists and its confirmed position.
 */
export async function inspectSlot(conn: PgConnection, slot: string): Promise<SlotState> {
  const res = await conn.queryParams(
    "SELECT plugin, slot_type, database = current_database(), active, active_pid, " +
      "confirmed_flush_lsn::text FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
    [slot],
  );
  const row = res.rows[0];
  if (!row) return { exists: false };
  const [plugin, type, sameDb, active, pid, confirmed] = row;
  if (type !== "logical" || plugin !== "pgoutput" || sameDb !== "t") {
    const what = type !== "logical"
      ? "is a physical slot"
      : plugin !== "pgoutput"
      ? `decodes with '${plugin}', not pgoutput`
      : "belongs to another database";
    throw new PermanentError(
      `Replication slot '${slot}' on ${conn.endpoint} ${what}`,
      {
        code: "cdc.slot_unusable",
        hint: `set cdc.slot to another name, or drop it if nothing else uses it: SELECT ` +
          `pg_drop_replication_slot('${slot.replace(/'/g, "''")}');`,
      },
    );
  }
  if (active === "t") throw slotBusy(slot, conn.endpoint, pid ?? undefined);
  const lsn = confirmed ? parseLsn(confirmed) : undefined;
  return { exists: true, ...(lsn === undefined ? {} : { confirmedFlush: lsn }) };
}

/**
 * The slot is streamed by another process (another rivet run, a subscriber).
 *
 * @param slot Slot name.
 * @param endpoint `host:port`.
 * @param pid The holder's backend pid, when known.
 * @returns A transient `cdc.slot_busy`.
 */
export function slotBusy(slot: string, endpoint: string, pid?: string | null): TransientError {
  return new TransientError(
    `Replication slot '${slot}' on ${endpoint} is in use by another process` +
      (pid ? ` (pid ${pid})` : ""),
    {
      code: "cdc.slot_busy",
      hint: "wait for the other run to end and retry; if nothing should hold the slot, end that " +
        "session with SELECT pg_terminate_backend(<pid>); or give this export its own cdc.slot",
    },
  );
}

/**
 * The checkpoint is behind what the slot can still give (the slot was dropped and re-created,
 * or another consumer acknowledged past it): the changes in between are gone.
 *
 * @param slot Slot name.
 * @param why What showed it.
 * @returns A permanent `cdc.checkpoint_too_old`.
 */
export function checkpointTooOld(slot: string, why: string): PermanentError {
  return new PermanentError(
    `The CDC checkpoint cannot be resumed from replication slot '${slot}': ${why}, so changes ` +
      "after the checkpoint are lost",
    {
      code: "cdc.checkpoint_too_old",
      hint: "take a full export of the tables again, then reset the export's CDC checkpoint so " +
        "capture restarts from now; give each CDC export its own cdc.slot",
    },
  );
}
