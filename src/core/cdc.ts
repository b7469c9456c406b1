/**
 * The change-data-capture contract: a source's change log read as Arrow batches of one table's
 * rows, each row tagged with its operation and log position, with transaction boundaries marked
 * so that parts end only where a transaction ends.
 *
 * Every engine implements {@linkcode CdcReader} (PostgreSQL: a logical replication slot decoded
 * with pgoutput; MySQL/MariaDB: the binlog; SQL Server: its CDC change tables);
 * `pipeline/cdc_job.ts` turns the chunks into parts, checkpoints and acknowledgements.
 *
 * Layer: core.
 *
 * @module
 */
import type { RecordBatch, Schema } from "./arrow.ts";
import type { ColumnInfo } from "./source.ts";
import type { CdcSpec, ExportSpec, SignalOptions, Warning } from "./spec.ts";

/** Defaults of the `cdc:` keys (as in rivet-cli). */
export const CDC_DEFAULTS = {
  /** Changes per part before it rolls at the next transaction end. */
  rollover: 10_000,
  /** Seconds a part stays open at most (a slow stream still commits). */
  rolloverSeconds: 60,
  /** MySQL replica server id. */
  serverId: 4271,
  /** PostgreSQL replication slot (the publication defaults to the same name). */
  slot: "rivet_slot",
} as const;

/**
 * The names an export's reader goes by, defaults filled: PostgreSQL slot and publication (the
 * slot's name unless set), MySQL server id, SQL Server capture instance.
 *
 * @param cdc The export's `cdc:` block.
 * @returns The names.
 */
export function cdcReaderNames(
  cdc: CdcSpec | undefined,
): Pick<CdcOpenOptions, "slot" | "publication" | "serverId" | "captureInstance"> {
  const slot = cdc?.slot ?? CDC_DEFAULTS.slot;
  return {
    slot,
    publication: cdc?.publication ?? slot,
    serverId: cdc?.serverId ?? CDC_DEFAULTS.serverId,
    ...(cdc?.captureInstance ? { captureInstance: cdc.captureInstance } : {}),
  };
}

/**
 * The table a `mode: cdc` export captures (config checks make sure it has `table:`).
 *
 * @param spec The export.
 * @returns Its schema (when given) and table.
 */
export function cdcTableRef(spec: Pick<ExportSpec, "query">): CdcTableRef {
  return spec.query.kind === "table"
    ? { ...(spec.query.schema ? { schema: spec.query.schema } : {}), table: spec.query.table }
    : { table: "" };
}

/** What a change did to its row. */
export type CdcOp = "insert" | "update" | "delete";

/** Operation codes of {@linkcode CdcChunk.ops}, by position: 0 insert, 1 update, 2 delete. */
export const CDC_OPS: readonly CdcOp[] = ["insert", "update", "delete"];

/** Code of an operation in {@linkcode CdcChunk.ops}. */
export const CDC_OP_CODE: Readonly<Record<CdcOp, number>> = { insert: 0, update: 1, delete: 2 };

/**
 * A position in a source's change log, as a flat JSON object: PostgreSQL `{lsn: "0/16B3748"}`,
 * MySQL `{file: "mysql-bin.000003", pos: 4711}`, SQL Server `{lsn: "0x…"}`. Checkpoints store
 * it; the reader that produced it is the only one that interprets it.
 */
export type CdcPosition = Readonly<Record<string, string | number>>;

/** One table a reader captures. */
export interface CdcTableRef {
  /** Schema (PostgreSQL, SQL Server) or database (MySQL); the connection's default when absent. */
  readonly schema?: string;
  readonly table: string;
}

/** The captured table as the reader types it: the same mapping a normal export of it uses. */
export interface CdcTable {
  readonly ref: CdcTableRef;
  /** Fully qualified display name, e.g. `public.orders`. */
  readonly name: string;
  readonly columns: readonly ColumnInfo[];
  /** Arrow schema of {@linkcode CdcChunk.batch} for this table (the table's columns only). */
  readonly schema: Schema;
}

/**
 * Changes of one table, in log order. A transaction may span several chunks; a chunk never
 * holds rows of two tables. `batch`, `ops` and `positions` have one entry per change.
 */
export interface CdcChunk {
  /** Index into {@linkcode CdcReader.tables}. */
  readonly table: number;
  /**
   * The changed rows: after-image for insert and update, the before-image (or at least the
   * key, other columns NULL) for delete. Typed by the table's {@linkcode CdcTable.schema}. May
   * have 0 rows when the chunk only reports a `commit` (a transaction that touched other
   * tables, or an empty one): progress the pipeline may checkpoint and acknowledge.
   */
  readonly batch: RecordBatch;
  /** One {@linkcode CDC_OP_CODE} per row. */
  readonly ops: Uint8Array;
  /** One position per row as compact JSON text: the `__pos` column. */
  readonly positions: readonly string[];
  /**
   * Set when the chunk's last row (or, for a 0-row chunk, the chunk) ends a transaction: the
   * position a restart resumes from to read what follows this transaction. Only such positions
   * are ever checkpointed and acknowledged.
   */
  readonly commit?: CdcPosition;
}

/** What {@linkcode openCdcReader}-style engine functions need beyond the connection. */
export interface CdcOpenOptions extends SignalOptions {
  /** Tables to capture (at least one); rows of other tables are skipped. */
  readonly tables: readonly CdcTableRef[];
  /**
   * Where the last run stopped (a `commit` position this engine produced), or undefined on the
   * first run: start at the log's current end (PostgreSQL: the slot's position).
   */
  readonly start?: CdcPosition;
  /** Stop once the position that was the log's end when the reader opened has been read. */
  readonly untilCurrent: boolean;
  /** Rows per chunk, at most. */
  readonly batchRows: number;
  /** PostgreSQL: replication slot name (created with pgoutput if missing). */
  readonly slot: string;
  /** PostgreSQL: publication name (created for the tables if missing). */
  readonly publication: string;
  /** MySQL: this replica's server id. */
  readonly serverId: number;
  /** SQL Server: the capture instance of the (single) table. */
  readonly captureInstance?: string;
  /** `columns:` overrides, name → type string, as for a normal export. */
  readonly columnOverrides: Readonly<Record<string, string>>;
  /** Receives warnings (a non-FULL row image, a retention gap). */
  readonly onWarning?: (warning: Warning) => void;
}

/**
 * What a read-only readiness check (`rivet doctor`) needs: the tables and the engine's names,
 * without a start position. A check creates nothing (no slot, no publication, no replica).
 */
export type CdcCheckOptions = Pick<
  CdcOpenOptions,
  "tables" | "slot" | "publication" | "serverId" | "captureInstance" | "columnOverrides" | "signal"
>;

/**
 * An open change stream. `changes()` is pulled by one consumer. Disposing the reader while a
 * `next()` is pending (waiting for the next change of a live stream) must settle that `next()`
 * (done, or rejected) and close the connection: that is how a streaming run stops.
 */
export interface CdcReader extends AsyncDisposable {
  /** The captured tables, in the order of {@linkcode CdcOpenOptions.tables}. */
  readonly tables: readonly CdcTable[];
  /**
   * The log position the reader starts from, as a `commit`-like position a later reader can
   * start at. A first run that sees no change saves it as its checkpoint, so the next run starts
   * there (MySQL: the binlog file and position at open; PostgreSQL: the slot's position).
   */
  readonly startedAt?: CdcPosition;
  /**
   * The changes. With `untilCurrent`, ends after the last transaction committed before the
   * reader opened; otherwise waits for new changes until disposed. Rejects with a RivetError
   * (code `cdc.*` or `source.*`) naming the problem and its fix.
   */
  changes(): AsyncIterator<CdcChunk>;
  /**
   * Tells the server that everything up to and including `position` (a `commit` this reader
   * produced) is durable, so it may discard it (PostgreSQL: the slot's confirmed flush
   * position). A no-op where the log is not the reader's to trim.
   */
  acknowledge(position: CdcPosition): Promise<void>;
}
