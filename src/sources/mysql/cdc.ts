/**
 * The MySQL/MariaDB change reader: the binary log streamed as a replica (`COM_REGISTER_SLAVE`,
 * `COM_BINLOG_DUMP`), row events of the captured tables decoded into the same Arrow columns a
 * full export of those tables writes.
 *
 * At open, on one connection: refuse a proxy in front (a replication stream must reach the
 * primary itself), check the server (`log_bin` on, `binlog_format = ROW`; a non-FULL
 * `binlog_row_image` only warns), note the log's end (`SHOW BINARY LOG STATUS` on MySQL 8.4+,
 * `SHOW BINLOG STATUS` on MariaDB 10.5+, `SHOW MASTER STATUS` elsewhere), check that the start
 * file still exists (`SHOW BINARY LOGS`), probe each table with `SELECT * … WHERE 1=0` (its
 * column definitions go through the export's own type mapping) and read its ENUM/SET members and
 * character sets from `information_schema`. Then the connection becomes the dump.
 *
 * Transactions: a MariaDB GTID event (not standalone) or a `BEGIN` query opens one; an XID
 * event, a `COMMIT`/`ROLLBACK` query, a statement outside a transaction (DDL), or the last rows
 * event of a statement outside one (a non-transactional table) ends it. The `commit` position is
 * the end of that event (`{file, pos}` of the next one), where a restart continues.
 *
 * Liveness: the server sends a heartbeat on an idle stream (`@master_heartbeat_period`); a
 * stream silent for three periods fails as a lost connection (transient), and so does an EOF
 * that comes before the reader is done. Events the reader cannot read are refused, never
 * skipped: MySQL 8 compressed transactions and partial JSON updates, a table map that no longer
 * fits the probed columns (`cdc.schema_changed`). TRUNCATE of a captured table, which removes
 * rows without row events, warns (`cdc.truncated`).
 *
 * Layer: sources (MySQL).
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
import {
  DataIntegrityError,
  PermanentError,
  SchemaDriftError,
  TransientError,
} from "../../core/errors.ts";
import type { ConnectionInfo } from "../../core/source.ts";
import type { SourceSpec } from "../../core/spec.ts";
import {
  checksumOfFormat,
  crc32,
  EventType,
  HEADER_LENGTH,
  mariaGtidOpensTransaction,
  queryText,
  readHeader,
  readRowsEvent,
  readTableMap,
  rotateTarget,
  rowsEventOp,
  type TableMap,
  truncatedTable,
} from "./_binlog_events.ts";
import { mapMismatch, RowImageWriter } from "./_binlog_rows.ts";
import { startDump } from "./_binlog_stream.ts";
import {
  type BinlogPosition,
  cdcErrors,
  comparePositions,
  missingGrant,
  probeCdcTables,
  type ProbedTable,
  refuseProxyOrSettings,
} from "./_binlog_setup.ts";
import { classifyMysqlError } from "./_errors.ts";
import { RowDecoder } from "./_row_decoder.ts";
import { connectMysql, mysqlConfig, type MysqlConnection, runStatement } from "./connect.ts";
import { flavourOf } from "./read.ts";

/** Seconds between the server's heartbeats on an idle stream (see {@linkcode MysqlCdcOptions}). */
const HEARTBEAT_S = 30;

/** Options of {@linkcode openMysqlCdc}: the contract's, plus the idle-stream watchdog. */
export interface MysqlCdcOptions extends CdcOpenOptions {
  /**
   * The server sends a heartbeat after this many idle seconds (`@master_heartbeat_period`); a
   * stream silent for three of them (a dead peer, a firewall that dropped the idle connection)
   * fails as a lost connection instead of waiting forever. Default 30.
   */
  readonly heartbeatS?: number;
}

/** Chunks waiting for the consumer before the socket is paused. */
const HIGH_WATER = 8;

/** One captured table while streaming. */
interface Capture {
  readonly table: CdcTable;
  readonly probed: ProbedTable;
  readonly decoder: RowDecoder;
  readonly writer: RowImageWriter;
  ops: number[];
  positions: string[];
}

/**
 * Opens the binlog change stream of the configured tables.
 *
 * @param spec The `source` block (TLS).
 * @param connection Host, port, credentials, database.
 * @param options Tables, start position, server id, chunk size, overrides, warnings, signal.
 * @returns An open reader; dispose it with `await using`.
 */
export async function openMysqlCdc(
  spec: SourceSpec,
  connection: ConnectionInfo,
  options: MysqlCdcOptions,
): Promise<CdcReader> {
  options.signal?.throwIfAborted();
  const heartbeatS = options.heartbeatS ?? HEARTBEAT_S;
  const config = await mysqlConfig(connection, spec.tls);
  const errors = cdcErrors(connection);
  const conn = await connectMysql(config, errors);
  try {
    const flavour = flavourOf(conn._handshakePacket?.serverVersion);
    const server = await refuseProxyOrSettings(conn, flavour, connection, options);
    const probed = await probeCdcTables(conn, connection, options);
    const start: BinlogPosition = options.start === undefined
      ? server.end
      : server.checkStart(options.start);
    await runStatement(
      conn,
      "SET @master_binlog_checksum = @@global.binlog_checksum, " +
        "@source_binlog_checksum = @@global.binlog_checksum",
    ).catch((error) => {
      throw classifyMysqlError(error, errors);
    });
    if (flavour === "mariadb") await runStatement(conn, "SET @mariadb_slave_capability = 4");
    const periodNs = Math.round(heartbeatS * 1e9);
    await runStatement(
      conn,
      `SET @master_heartbeat_period = ${periodNs}, @source_heartbeat_period = ${periodNs}`,
    );
    const reader = new MysqlCdcReader(conn, probed, options, start, server, heartbeatS);
    await reader.begin(connection.user);
    return reader;
  } catch (error) {
    conn.destroy();
    throw error;
  }
}

/**
 * Checks what opening the stream checks, read-only: no proxy in front, the binary log on in ROW
 * format, the replication grants, a usable server id, and each table. No replica is registered.
 *
 * @param spec The `source` block (TLS).
 * @param connection Where and as whom to connect.
 * @param options Tables, server id, `columns:` overrides.
 * @returns What was checked, one line.
 */
export async function checkMysqlCdc(
  spec: SourceSpec,
  connection: ConnectionInfo,
  options: CdcCheckOptions,
): Promise<string> {
  const config = await mysqlConfig(connection, spec.tls);
  const conn = await connectMysql(config, cdcErrors(connection));
  try {
    const flavour = flavourOf(conn._handshakePacket?.serverVersion);
    const open = { ...options, untilCurrent: true, batchRows: 1 };
    const server = await refuseProxyOrSettings(conn, flavour, connection, open);
    await probeCdcTables(conn, connection, open);
    return `change capture ready (binary log in ROW format at ${server.end.file}, ` +
      `replication grants, server id ${options.serverId})`;
  } finally {
    conn.destroy();
  }
}

/**
 * Refuses the MySQL 8 events that would hide row changes from this reader (skipping them would
 * lose changes silently).
 */
function unreadableEvent(type: number): PermanentError {
  const partial = type === EventType.PartialUpdateRows;
  return new PermanentError(
    partial
      ? "the binlog holds partial JSON updates (binlog_row_value_options = PARTIAL_JSON), " +
        "which carry no full after-image"
      : "the binlog holds compressed transactions (binlog_transaction_compression = ON), " +
        "which this reader does not decompress",
    {
      code: "cdc.binlog_unsupported",
      hint: partial
        ? "run SET GLOBAL binlog_row_value_options = '' (and in my.cnf), then re-export the " +
          "table in full and reset the CDC checkpoint"
        : "run SET GLOBAL binlog_transaction_compression = OFF (and in my.cnf), then re-export " +
          "the table in full and reset the CDC checkpoint",
    },
  );
}

/** The reader; see the module notes. */
class MysqlCdcReader implements CdcReader {
  readonly tables: readonly CdcTable[];
  readonly startedAt: CdcPosition;
  readonly #conn: MysqlConnection;
  readonly #options: CdcOpenOptions;
  readonly #captures: Capture[];
  readonly #byName = new Map<string, number>();
  /** Table id → capture index, for the maps of captured tables. */
  readonly #maps = new Map<number, number>();
  readonly #target: BinlogPosition | undefined;
  readonly #queue: CdcChunk[] = [];
  #file: string;
  #checksum = 0;
  #inTxn = false;
  #current = -1;
  #lastTable = 0;
  #paused = false;
  /** When the last packet arrived (or the socket was resumed). */
  #lastSeen = Date.now();
  readonly #silenceMs: number;
  #watchdog: ReturnType<typeof setInterval> | undefined;
  #done = false;
  #failure: unknown;
  #wake: (() => void) | undefined;
  #opened: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  #user = "";

  constructor(
    conn: MysqlConnection,
    probed: readonly ProbedTable[],
    options: CdcOpenOptions,
    start: BinlogPosition,
    server: { readonly end: BinlogPosition; readonly checksum: number },
    heartbeatS: number,
  ) {
    this.#silenceMs = heartbeatS * 3000;
    const end = server.end;
    this.#checksum = server.checksum;
    this.#conn = conn;
    this.#options = options;
    this.#file = start.file;
    this.startedAt = { file: start.file, pos: start.pos };
    this.#target = options.untilCurrent ? end : undefined;
    this.#captures = probed.map((p) => {
      const decoder = new RowDecoder(p.plans.schema, p.plans.plans, { maxValueBytes: 0 });
      decoder.reset(options.batchRows);
      return {
        probed: p,
        table: { ref: p.ref, name: p.name, columns: p.plans.columns, schema: p.plans.schema },
        decoder,
        writer: new RowImageWriter(p.plans.plans, p.extras),
        ops: [],
        positions: [],
      };
    });
    this.tables = this.#captures.map((c) => c.table);
    this.#captures.forEach((c, i) => this.#byName.set(`${c.probed.database}.${c.probed.table}`, i));
    if (this.#target !== undefined && comparePositions(start, this.#target) >= 0) this.#done = true;
    options.signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Starts the dump and waits for its first event (or the server's refusal). */
  begin(user: string): Promise<void> {
    this.#user = user;
    if (this.#done) {
      this.#close();
      return Promise.resolve();
    }
    const opened = new Promise<void>((resolve, reject) => (this.#opened = { resolve, reject }));
    this.#watchdog = setInterval(() => {
      if (this.#paused || Date.now() - this.#lastSeen <= this.#silenceMs) return;
      this.#fail(
        new TransientError(
          `the binlog stream sent nothing, not even a heartbeat, for ${
            Math.round((Date.now() - this.#lastSeen) / 1000)
          } s`,
          {
            code: "source.connection_lost",
            hint: "the server or the network between stopped answering; run again, the stream " +
              "resumes from the last checkpoint",
          },
        ),
      );
    }, Math.max(100, this.#silenceMs / 6));
    startDump(this.#conn, {
      serverId: this.#options.serverId,
      file: this.startedAt.file as string,
      pos: this.startedAt.pos as number,
      // Blocking even with untilCurrent: the reader stops itself at the target. A non-blocking dump
      // ends with the server closing the socket, which a paused (backpressured) socket reports
      // as a lost connection before its buffered events are read.
      flags: 0,
    }, {
      event: (buf, start, end) => {
        this.#lastSeen = Date.now();
        if (this.#done) return;
        try {
          this.#event(buf, start, end);
        } catch (error) {
          this.#fail(error);
        }
        this.#opened?.resolve();
        this.#opened = undefined;
      },
      end: (error) => {
        // The reader ends itself once it reaches the target, before the server's EOF; an EOF
        // that comes first (a server shutting down sends one) is a stream cut short.
        this.#fail(
          error !== undefined ? this.#dumpError(error) : new TransientError(
            `the server ended the binlog stream at ${this.#file} before the reader was done`,
            {
              code: "source.connection_lost",
              hint: "the server shut down or dropped this replica; run again, the stream " +
                "resumes from the last checkpoint",
            },
          ),
        );
      },
    });
    return opened;
  }

  #onAbort = () => this.#fail(this.#options.signal?.reason);

  #dumpError(error: unknown): unknown {
    const errno = (error as { errno?: number }).errno;
    const text = String((error as { message?: string }).message ?? error);
    if (errno === 1236 && /could not find|purged|not found/i.test(text)) {
      return new PermanentError(
        `the binary log position ${JSON.stringify(this.startedAt)} cannot be read: ${text}`,
        {
          code: "cdc.checkpoint_too_old",
          hint: "the binlog file was purged (binlog_expire_logs_seconds / expire_logs_days); " +
            "reset the CDC checkpoint and re-export the table in full, then capture again",
          cause: error,
        },
      );
    }
    if (errno === 1227 || errno === 1045) return missingGrant(this.#user, text, error);
    return classifyMysqlError(error, {});
  }

  /** Warns once, when the stream ends, per column that held zero dates (read as NULL). */
  #reportZeroDates(): void {
    const warn = this.#options.onWarning;
    for (const c of this.#captures) {
      c.decoder.zeroDates.forEach((count, i) => {
        if (count === 0 || warn === undefined) return;
        const col = c.table.columns[i]!;
        warn({
          code: "source.zero_date",
          message: `Column '${col.name}' (${col.nativeType}) of ${c.table.name} held ${count} ` +
            `zero date${count === 1 ? "" : "s"} (0000-00-00), captured as NULL; fix the rows`,
        });
        c.decoder.zeroDates[i] = 0;
      });
    }
  }

  #fail(error: unknown): void {
    if (this.#done) return;
    this.#failure ??= error;
    this.#done = true;
    this.#reportZeroDates();
    this.#close();
    this.#opened?.reject(error);
    this.#opened = undefined;
    this.#notify();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#flush(undefined);
    this.#reportZeroDates();
    this.#close();
    this.#opened?.resolve();
    this.#opened = undefined;
    this.#notify();
  }

  /** Closes the socket and stops the watchdog. */
  #close(): void {
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    this.#conn.destroy();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #push(chunk: CdcChunk): void {
    this.#queue.push(chunk);
    if (!this.#paused && this.#queue.length >= HIGH_WATER) {
      this.#paused = true;
      this.#conn.pause();
    }
    this.#notify();
  }

  /** Emits the current table's pending rows, with `commit` when a transaction ends here. */
  #flush(commit: CdcPosition | undefined): void {
    const c = this.#current >= 0 ? this.#captures[this.#current] : undefined;
    if (c !== undefined && c.decoder.rows > 0) {
      const batch = c.decoder.finish();
      c.decoder.reset(this.#options.batchRows);
      this.#push({
        table: this.#current,
        batch,
        ops: Uint8Array.from(c.ops),
        positions: c.positions,
        ...(commit === undefined ? {} : { commit }),
      });
      c.ops = [];
      c.positions = [];
      return;
    }
    if (commit === undefined) return;
    // A transaction without captured rows: progress only. Coalesce with an unread one.
    const last = this.#queue.at(-1);
    if (last !== undefined && last.batch.numRows === 0 && last.commit !== undefined) {
      this.#queue[this.#queue.length - 1] = { ...last, commit };
      return;
    }
    const t = this.#captures[this.#lastTable]!;
    const batch = t.decoder.finish();
    t.decoder.reset(this.#options.batchRows);
    this.#push({ table: this.#lastTable, batch, ops: new Uint8Array(0), positions: [], commit });
  }

  #boundary(logPos: number): void {
    this.#inTxn = false;
    this.#flush({ file: this.#file, pos: logPos });
    this.#current = -1;
  }

  #event(buf: Uint8Array, start: number, end: number): void {
    const header = readHeader(buf, start);
    if (header.type === EventType.FormatDescription) {
      this.#checksum = checksumOfFormat(buf, start, end);
    }
    const bodyEnd = end - (this.#checksum === 1 ? 4 : 0);
    // Heartbeats carry no data, and not every server version checksums them.
    if (header.type === EventType.Heartbeat || header.type === EventType.HeartbeatV2) return;
    if (this.#checksum === 1) {
      const want = (buf[bodyEnd]! | (buf[bodyEnd + 1]! << 8) | (buf[bodyEnd + 2]! << 16) |
        (buf[bodyEnd + 3]! << 24)) >>> 0;
      if (crc32(buf, start, bodyEnd) !== want) {
        throw new DataIntegrityError(
          `binlog event at ${this.#file}:${header.logPos - header.size} fails its CRC32 checksum`,
          {
            code: "cdc.binlog_checksum",
            hint: "the event was damaged on the way or on the server's disk; run again (the " +
              "stream restarts from the last checkpoint) and check the server's binlog with " +
              "mysqlbinlog --verify-binlog-checksum",
          },
        );
      }
    }
    const body = start + HEADER_LENGTH;
    switch (header.type) {
      case EventType.Rotate:
        this.#file = rotateTarget(buf, body, bodyEnd);
        return;
      case EventType.MariaGtid:
        if (mariaGtidOpensTransaction(buf, body)) this.#inTxn = true;
        break;
      case EventType.Query: {
        const query = queryText(buf, body, bodyEnd);
        const text = query.text.trim().toUpperCase();
        if (text.startsWith("BEGIN")) this.#inTxn = true;
        else if (text.startsWith("COMMIT") || text.startsWith("ROLLBACK") || !this.#inTxn) {
          this.#truncated(query.text, query.database, header.logPos - header.size);
          this.#boundary(header.logPos);
        }
        break;
      }
      case EventType.Xid:
        this.#boundary(header.logPos);
        break;
      case EventType.MariaQueryCompressed:
        // Only long statements are compressed (never BEGIN or COMMIT): DDL or a statement of a
        // non-transactional table, which ends a group when no transaction is open.
        if (!this.#inTxn) this.#boundary(header.logPos);
        break;
      case EventType.TableMap:
        this.#tableMap(buf, body);
        break;
      case EventType.PartialUpdateRows:
      case EventType.TransactionPayload:
        throw unreadableEvent(header.type);
      default: {
        const op = rowsEventOp(header.type);
        if (op === undefined) break;
        const rows = readRowsEvent(buf, header.type, body, bodyEnd);
        const index = this.#maps.get(rows.tableId);
        if (index !== undefined) this.#rows(index, op, rows, header.logPos - header.size);
        if (rows.statementEnd && !this.#inTxn) this.#boundary(header.logPos);
      }
    }
    if (
      this.#target !== undefined && !this.#inTxn && header.logPos > 0 &&
      comparePositions({ file: this.#file, pos: header.logPos }, this.#target) >= 0
    ) {
      this.#finish();
    }
  }

  /** TRUNCATE removes rows without row events: say so, as the changes cannot show it. */
  #truncated(text: string, database: string, pos: number): void {
    const name = truncatedTable(text, database);
    const index = name === undefined ? undefined : this.#byName.get(name);
    if (index === undefined) return;
    this.#options.onWarning?.({
      code: "cdc.truncated",
      message: `table ${name} was truncated at ${this.#file}:${pos}: its rows were removed ` +
        "without delete changes; re-export the table in full to see its state",
    });
  }

  #tableMap(buf: Uint8Array, body: number): void {
    const names = readTableMap(buf, body, false);
    const index = this.#byName.get(`${names.database}.${names.table}`);
    if (index === undefined) {
      this.#maps.delete(names.id);
      return;
    }
    const map = readTableMap(buf, body, true) as TableMap;
    const capture = this.#captures[index]!;
    const mismatch = mapMismatch(map, capture.probed.plans.plans);
    if (mismatch !== undefined) {
      throw new SchemaDriftError(
        `table ${capture.table.name} changed while it was captured: ${mismatch}`,
        {
          code: "cdc.schema_changed",
          hint: "an ALTER TABLE ran; the changes before it are saved: re-export the table in " +
            "full, reset the CDC checkpoint and capture again",
        },
      );
    }
    capture.writer.bind(map);
    this.#maps.set(map.id, index);
  }

  #rows(index: number, op: 0 | 1 | 2, rows: ReturnType<typeof readRowsEvent>, pos: number): void {
    if (this.#current !== index) {
      this.#flush(undefined);
      this.#current = index;
      this.#lastTable = index;
    }
    const c = this.#captures[index]!;
    const position = `{"file":${JSON.stringify(this.#file)},"pos":${pos}}`;
    let p = rows.start;
    while (p < rows.end) {
      if (op === 1) {
        p = c.writer.row(rows.buf, p, rows.present, undefined);
        p = c.writer.row(rows.buf, p, rows.presentAfter!, c.decoder);
      } else {
        p = c.writer.row(rows.buf, p, rows.present, c.decoder);
      }
      c.ops.push(op);
      c.positions.push(position);
      if (c.decoder.rows >= this.#options.batchRows) this.#flush(undefined);
    }
  }

  changes(): AsyncIterator<CdcChunk> {
    return {
      next: async (): Promise<IteratorResult<CdcChunk>> => {
        while (true) {
          const chunk = this.#queue.shift();
          if (chunk !== undefined) {
            if (this.#paused && this.#queue.length < HIGH_WATER / 2) {
              this.#paused = false;
              this.#lastSeen = Date.now();
              this.#conn.resume();
            }
            return { value: chunk, done: false };
          }
          if (this.#failure !== undefined) throw this.#failure;
          if (this.#done) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (this.#wake = resolve));
        }
      },
      return: async (): Promise<IteratorResult<CdcChunk>> => {
        await this[Symbol.asyncDispose]();
        return { value: undefined, done: true };
      },
    };
  }

  acknowledge(_position: CdcPosition): Promise<void> {
    // The binlog's retention is the server's (binlog_expire_logs_seconds): nothing to confirm.
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    if (!this.#done) {
      this.#done = true;
      this.#reportZeroDates();
      this.#queue.length = 0;
      this.#close();
      this.#opened?.resolve();
      this.#opened = undefined;
    }
    this.#notify();
    return Promise.resolve();
  }
}
