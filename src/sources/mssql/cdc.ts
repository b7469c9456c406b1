/**
 * SQL Server change data capture: the changes of one table read from its capture instance's
 * change table with `cdc.fn_cdc_get_all_changes_<instance>`, one LSN window at a time.
 *
 * - Checks first: CDC on for the database (`sys.databases.is_cdc_enabled`) and the table
 *   (`cdc.change_tables`), with the `EXEC sys.sp_cdc_enable_*` to run when it is not; a warning
 *   when SQL Server Agent (which runs the capture job) is visibly down.
 * - Window: from the LSN after the checkpoint (`sys.fn_cdc_increment_lsn`), or on a first run
 *   from the instance's oldest LSN (`sys.fn_cdc_get_min_lsn`: the first run exports every change
 *   the instance still holds), to the database's newest (`sys.fn_cdc_get_max_lsn`). A checkpoint
 *   older than the oldest LSN fails: the cleanup job removed changes in between.
 * - Rows go through the normal SQL Server source (`MssqlSource.read`), so the columns are typed
 *   exactly as a full export of the table types them (probed with `WHERE 1 = 0`, `columns:`
 *   overrides included); `_cdc_chunks.ts` strips the `__$` columns and marks commits.
 * - `untilCurrent`: one window up to the newest LSN at open. Otherwise a new window every
 *   second until the reader is disposed.
 * - `acknowledge` does nothing: the cleanup job owns retention.
 *
 * Layer: sources.
 *
 * @module
 */
import type {
  CdcCheckOptions,
  CdcChunk,
  CdcOpenOptions,
  CdcPosition,
  CdcReader,
  CdcTable,
} from "../../core/cdc.ts";
import type { RecordBatch } from "../../core/arrow.ts";
import type { ConnectionInfo, ReadOptions } from "../../core/source.ts";
import type { SourceSpec } from "../../core/spec.ts";
import { sleep } from "../../_util/abort.ts";
import { ChunkSplitter } from "./_cdc_chunks.ts";
import {
  accessSql,
  AFTER_ALL,
  AGENT_SESSIONS,
  boundsSql,
  capturedColumnsSql,
  cdcTable,
  checkInstance,
  checkpointLsn,
  checkpointTooOld,
  DATABASE_ENABLED,
  databaseNotEnabled,
  instanceRequired,
  instancesSql,
  lsnText,
  type MssqlCdcTable,
  noAccess,
  objectIdSql,
  tableMissing,
  tableNotEnabled,
  windowSql,
  ZERO_LSN,
} from "./_cdc_sql.ts";
import { runBatch, type SmallRows } from "./connect.ts";
import { type MssqlSource, openMssqlSource } from "./source.ts";

/** How long a streaming reader waits between looks for new changes. */
const POLL_MS = 1000;

/** Memory target of one result batch. */
const BATCH_BYTES = 64 * 1024 * 1024;

/**
 * Opens the change stream of one SQL Server table.
 *
 * @param spec The `source` block (TLS).
 * @param connection Host, login, database.
 * @param options The table, its capture instance, the start position, batch size, signal.
 * @returns An open reader; dispose it with `await using`.
 */
export async function openMssqlCdc(
  spec: SourceSpec,
  connection: ConnectionInfo,
  options: CdcOpenOptions,
): Promise<CdcReader> {
  const table = cdcTable(options.tables);
  if (options.captureInstance !== undefined) checkInstance(options.captureInstance);
  const start = options.start === undefined ? undefined : checkpointLsn(options.start);
  const source = await openMssqlSource(spec, connection, {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onWarning ? { onWarning: options.onWarning } : {}),
  });
  try {
    const reader = new MssqlCdcReader(source, table, options, start);
    await reader.open();
    return reader;
  } catch (error) {
    await source[Symbol.asyncDispose]();
    throw error;
  }
}

/**
 * Checks what opening the stream checks (CDC on for the database and the table, the capture
 * instance, access, the Agent), which on SQL Server creates nothing: the reader is opened and
 * closed without reading.
 *
 * @param spec The `source` block.
 * @param connection Where and as whom to connect.
 * @param options The table and the capture instance.
 * @returns What was checked, one line.
 */
export async function checkMssqlCdc(
  spec: SourceSpec,
  connection: ConnectionInfo,
  options: CdcCheckOptions,
): Promise<string> {
  await using reader = await openMssqlCdc(spec, connection, {
    ...options,
    untilCurrent: true,
    batchRows: 1,
  });
  return `change capture ready (CDC enabled, capture instance of ${reader.tables[0]?.name})`;
}

function lsnOf(value: unknown): string {
  return value instanceof Uint8Array ? lsnText(value) : ZERO_LSN;
}

class MssqlCdcReader implements CdcReader {
  readonly #source: MssqlSource;
  readonly #table: MssqlCdcTable;
  readonly #options: CdcOpenOptions;
  /** Aborted by dispose (and by the caller's signal): ends waits and running reads. */
  readonly #closing = new AbortController();
  readonly #signal: AbortSignal;
  #instance = "";
  #columns: string[] = [];
  #tables: CdcTable[] = [];
  /** Last LSN read (the checkpoint's at first); the next window starts after it. */
  #after: string | undefined;
  /** Newest LSN when the reader opened: where `untilCurrent` stops. */
  #end = ZERO_LSN;
  #disposed = false;

  constructor(
    source: MssqlSource,
    table: MssqlCdcTable,
    options: CdcOpenOptions,
    start: string | undefined,
  ) {
    this.#source = source;
    this.#table = table;
    this.#options = options;
    this.#after = start;
    this.#signal = options.signal
      ? AbortSignal.any([options.signal, this.#closing.signal])
      : this.#closing.signal;
  }

  get tables(): readonly CdcTable[] {
    return this.#tables;
  }

  /** The checkpoint, or on a first run the instance's oldest LSN (set by `open`). */
  startedAt?: CdcPosition;

  async #query(sql: string): Promise<SmallRows> {
    const conn = await this.#source.connection(this.#signal);
    return await runBatch(conn, sql, {});
  }

  /** Checks CDC is on, picks the instance, types the columns, finds the first window. */
  async open(): Promise<void> {
    const table = this.#table;
    const [enabled] = await this.#query(DATABASE_ENABLED);
    if (Number(enabled?.[0]) !== 1) {
      throw databaseNotEnabled(String(this.#source.facts?.database ?? "?"), table);
    }
    const [object] = await this.#query(objectIdSql(table));
    if (object?.[0] === null || object?.[0] === undefined) throw tableMissing(table);
    const instances = (await this.#query(instancesSql(table))).map((r) => String(r[0]));
    const asked = this.#options.captureInstance;
    const found = asked === undefined
      ? instances
      : instances.filter((i) => i.toLowerCase() === asked.toLowerCase());
    if (found.length === 0) throw tableNotEnabled(table, asked, instances);
    if (found.length > 1) throw instanceRequired(table, instances);
    this.#instance = checkInstance(found[0]!);
    this.#columns = (await this.#query(capturedColumnsSql(this.#instance))).map((r) =>
      String(r[0])
    );
    await this.#warnIfAgentDown();
    const probe = await this.#source.read(
      { sql: `SELECT ${this.#selectList()} FROM ${table.quoted} WHERE 1 = 0`, params: [] },
      this.#readOptions(),
    );
    await probe.batches.cancel();
    this.#tables = [{
      ref: { schema: table.schema, table: table.table },
      name: table.name,
      columns: probe.columns,
      schema: probe.schema,
    }];
    const bounds = await this.#bounds();
    this.#end = bounds.max;
    this.startedAt = { lsn: this.#after ?? bounds.min };
  }

  #selectList(): string {
    return this.#columns.map((c) => `[${c.replaceAll("]", "]]")}]`).join(", ");
  }

  #readOptions(): ReadOptions {
    return {
      signal: this.#signal,
      batchSize: Math.max(1, this.#options.batchRows),
      batchMemoryBytes: BATCH_BYTES,
      statementTimeoutS: 0,
      lockTimeoutS: 0,
      throttleMs: 0,
      maxValueMb: 0,
      columnOverrides: this.#options.columnOverrides,
    };
  }

  async #warnIfAgentDown(): Promise<void> {
    // Azure SQL Database runs capture on its own scheduler: it has no SQL Server Agent.
    if (this.#source.facts?.engineEdition === 5) return;
    let sessions: unknown;
    try {
      [[sessions]] = await this.#query(AGENT_SESSIONS) as [[unknown]];
    } catch {
      return; // Not answerable here (an older server, a restricted login): say nothing.
    }
    if (sessions === null || sessions === undefined || Number(sessions) > 0) return;
    this.#options.onWarning?.({
      code: "cdc.agent_not_running",
      message: "SQL Server Agent is not running: its capture job copies changes into the " +
        `change table of '${this.#instance}', so no new change of '${this.#table.name}' ` +
        "arrives until it runs. Start SQL Server Agent (on Linux: MSSQL_AGENT_ENABLED=true, or " +
        "mssql-conf set sqlagent.enabled true, then restart)",
    });
  }

  /**
   * The instance's oldest LSN, the newest, and the start of the next window, with the
   * retention check: a window starting before the oldest LSN would skip purged changes.
   */
  async #bounds(): Promise<{ min: string; max: string; from: string }> {
    const [row] = await this.#query(boundsSql(this.#instance, this.#after));
    const min = lsnOf(row?.[0]);
    const max = lsnOf(row?.[1]);
    if (min === ZERO_LSN) {
      // No low end: the login may not read the change data, or the capture job has not
      // scanned the log since the instance was enabled (nothing to read yet).
      const [access] = await this.#query(accessSql(this.#table, this.#instance));
      const [select, role, member, owner] = access ?? [];
      if (Number(select) !== 1 || (role != null && Number(member) === 0 && Number(owner) !== 1)) {
        throw noAccess(this.#table, this.#instance);
      }
      return { min, max, from: AFTER_ALL };
    }
    if (this.#after === undefined) return { min, max, from: min };
    const from = lsnOf(row?.[2]);
    if (from < min) throw checkpointTooOld(this.#table, this.#instance, this.#after, min);
    return { min, max, from };
  }

  changes(): AsyncIterator<CdcChunk> {
    return this.#changes();
  }

  async *#changes(): AsyncGenerator<CdcChunk> {
    try {
      while (!this.#disposed) {
        const { max, from } = await this.#bounds();
        const to = this.#options.untilCurrent ? this.#end : max;
        if (from <= to) {
          for await (const chunk of this.#window(from, to)) yield chunk;
          if (this.#disposed) return;
          this.#after = to;
        }
        if (this.#options.untilCurrent) return;
        await sleep(POLL_MS, this.#signal);
        this.#options.signal?.throwIfAborted();
      }
    } catch (error) {
      // Disposal cuts a running statement short: that ends the stream, it is no failure.
      if (this.#disposed) return;
      throw error;
    }
  }

  async *#window(from: string, to: string): AsyncGenerator<CdcChunk> {
    const stream = await this.#source.read(
      { sql: windowSql(this.#instance, this.#columns, from, to), params: [] },
      this.#readOptions(),
    );
    const split = new ChunkSplitter(this.#tables[0]!.schema, this.#table.name);
    const reader = stream.batches.getReader();
    try {
      while (true) {
        let next: ReadableStreamReadResult<RecordBatch>;
        try {
          next = await reader.read();
        } catch (error) {
          if (this.#disposed) return;
          throw error;
        }
        if (next.done) break;
        yield* split.push(next.value);
      }
      yield* split.finish();
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  acknowledge(_position: CdcPosition): Promise<void> {
    return Promise.resolve(); // The cleanup job owns retention.
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#disposed = true;
    this.#closing.abort();
    await this.#source[Symbol.asyncDispose]();
  }
}
