/**
 * PostgreSQL change data capture: a logical replication slot decoded by `pgoutput` (protocol 1,
 * `binary 'true'`) over the streaming replication protocol of our own wire client. Each column
 * value arrives in its binary send format, the bytes a binary FETCH returns, so rows go through
 * the export's own row decoder and are typed exactly as a full export types them.
 *
 * Positions are LSNs: `__pos` is the change's LSN, a `commit` is the transaction's commit end
 * LSN (where a restart resumes). The server resumes a slot at its `confirmed_flush_lsn`, which
 * moves only when {@linkcode CdcReader.acknowledge} reports a durable commit; a checkpoint that
 * was saved but whose acknowledgement never reached the server is handled by skipping every
 * transaction that ends at or before it.
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
import { CDC_OP_CODE } from "../../core/cdc.ts";
import { ConfigError, PermanentError, type RivetError } from "../../core/errors.ts";
import type { ConnectionInfo } from "../../core/source.ts";
import type { SourceSpec, Warning } from "../../core/spec.ts";
import { checkTlsSupport } from "./connect.ts";
import { postgresConnectOptions } from "./source.ts";
import { connectionLost, PgPermanentError } from "./_errors.ts";
import { MessageWriter, writeQuery } from "./_messages.ts";
import { RowDecoder } from "./_row_decoder.ts";
import {
  checkpointTooOld,
  checkServer,
  ensurePublication,
  inspectSlot,
  type PgCdcTable,
  probeTable,
  quoteIdent,
  slotBusy,
  type SlotState,
} from "./_cdc_setup.ts";
import {
  formatLsn,
  lsnText,
  parseLsn,
  parseRelation,
  Pgo,
  ReplMsg,
  standbyStatusUpdate,
  TupleRewriter,
} from "./_replication.ts";
import { Msg, PgConnection, type PgConnectOptions } from "./wire.ts";

/** How often the reader reports its acknowledged position (and asks for the server's end). */
const STATUS_EVERY_MS = 1000;
/** A reply request this soon after the previous answer is a shutdown's ping-pong. */
const PING_PONG_MS = 500;
/** A quiet stream reports transactions of other tables at most this often. */
const PROGRESS_EVERY_MS = 1000;
/** Capacity a chunk's builders start with; they grow up to `batchRows`. */
const CHUNK_START_ROWS = 1024;

function poolerRefused(endpoint: string, why: string): ConfigError {
  return new ConfigError(
    `PostgreSQL at ${endpoint} is reached through a connection pooler (${why}); replication ` +
      "connections cannot go through a pooler",
    {
      code: "cdc.pooler_refused",
      hint: "point the CDC export's source at the PostgreSQL server itself (its own host and port)",
    },
  );
}

function slotsExhausted(slot: string, endpoint: string, cause: unknown): PermanentError {
  return new PermanentError(
    `Cannot create replication slot '${slot}' on ${endpoint}: every replication slot is in use`,
    {
      code: "cdc.slots_exhausted",
      hint: "drop slots nothing reads any more (SELECT slot_name, active FROM " +
        "pg_replication_slots; then SELECT pg_drop_replication_slot('<name>');) or raise " +
        "max_replication_slots (ALTER SYSTEM SET max_replication_slots = …; and restart)",
      cause,
    },
  );
}

/**
 * Opens the replication connection. A logical replication connection names its database, so
 * pg_hba.conf treats it like the ordinary connection that just logged in (no `replication`
 * line needed); only a pooler refuses it.
 */
async function connectReplication(options: PgConnectOptions): Promise<PgConnection> {
  try {
    return await PgConnection.connect({ ...options, startupParams: { replication: "database" } });
  } catch (error) {
    if (/startup parameter/i.test((error as Error).message ?? "")) {
      throw poolerRefused(
        `${options.host}:${options.port}`,
        "it refused the replication startup parameter",
      );
    }
    throw error;
  }
}

/** Sends a simple query on a replication connection and reads up to the first result or copy. */
async function replicationCommand(conn: PgConnection, sql: string): Promise<number> {
  const w = new MessageWriter();
  writeQuery(w, sql);
  await conn.flush(w);
  for (;;) {
    const t = await conn.nextAsync();
    if (t === Msg.Error) {
      const fields = conn.errorFields();
      // The server follows an error with ReadyForQuery; the connection is dropped anyway.
      conn.markBroken();
      return Promise.reject({ fields });
    }
    if (t === ReplMsg.CopyBothResponse) return t;
    if (t === Msg.ReadyForQuery) return t;
  }
}

/** A table being captured, with its decoder and the rows of the chunk in progress. */
interface Capture {
  readonly table: PgCdcTable;
  readonly decoder: RowDecoder;
  readonly tuples: TupleRewriter;
  ops: number[];
  positions: string[];
}

class PgCdcReader implements CdcReader {
  readonly tables: readonly CdcTable[];
  readonly startedAt?: CdcPosition;
  readonly #conn: PgConnection;
  readonly #options: CdcOpenOptions;
  readonly #captures: Capture[];
  readonly #byRelid = new Map<number, number>();
  /** Skip transactions whose commit ends at or before this (a saved, unacknowledged checkpoint). */
  readonly #skipThrough: bigint;
  /** `untilCurrent`: the WAL position everything committed before the open lies behind. */
  readonly #target: bigint;
  #acked: bigint;
  #serverEnd = 0n;
  #lastCommitEnd = 0n;
  #inTx = false;
  #skipTx = false;
  #txRows = 0;
  #lastTable = 0;
  /** Index of the capture whose chunk is in progress, or -1. */
  #current = -1;
  #pendingProgress: bigint | undefined;
  /** The latest commit position handed out (or the start): progress only moves past it. */
  #delivered: bigint;
  #lastProgressAt = 0;
  /** When a keepalive's reply request was last answered. */
  #answeredAt = 0;
  readonly #ready: CdcChunk[] = [];
  #disposed = false;
  #warnedToast = false;
  #statusChain: Promise<void> = Promise.resolve();
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #onAbort = () => void this[Symbol.asyncDispose]();

  constructor(
    conn: PgConnection,
    options: CdcOpenOptions,
    tables: readonly PgCdcTable[],
    positions: { acked: bigint; skipThrough: bigint; target: bigint },
  ) {
    this.#conn = conn;
    this.#options = options;
    this.#acked = positions.acked;
    this.#skipThrough = positions.skipThrough;
    this.#target = positions.target;
    this.#delivered = positions.skipThrough > positions.acked
      ? positions.skipThrough
      : positions.acked;
    this.startedAt = { lsn: formatLsn(this.#delivered) };
    this.tables = tables.map((t, i) => {
      this.#byRelid.set(t.oid, i);
      return {
        ref: options.tables[i]!,
        name: t.name,
        columns: t.typing.columns,
        schema: t.typing.schema,
      };
    });
    this.#captures = tables.map((table) => ({
      table,
      decoder: new RowDecoder(table.typing.schema, table.typing.plans, { maxValueBytes: 0 }),
      tuples: new TupleRewriter(table.modes),
      ops: [],
      positions: [],
    }));
    // Status updates of its own only when the reader needs the server's position (to end an
    // untilCurrent run, or to report progress): a reader that kept answering unasked would
    // keep a shutting-down server's walsender waiting forever for a confirmation that only the
    // pipeline's acknowledgement gives, where wal_sender_timeout otherwise ends the wait.
    this.#timer = setInterval(() => {
      if (!options.untilCurrent && this.#pendingProgress === undefined) return;
      void this.#sendStatus(true).catch(() => {});
    }, STATUS_EVERY_MS);
    options.signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  #sendStatus(replyRequested: boolean): Promise<void> {
    const next = this.#statusChain.then(() => {
      if (this.#conn.broken) return;
      return this.#conn.send(standbyStatusUpdate(this.#acked, replyRequested, Date.now()));
    });
    this.#statusChain = next.catch(() => {});
    return next;
  }

  changes(): AsyncIterator<CdcChunk> {
    return this.#stream();
  }

  async acknowledge(position: CdcPosition): Promise<void> {
    const lsn = typeof position.lsn === "string" ? parseLsn(position.lsn) : undefined;
    if (lsn === undefined) {
      throw new Error(`PostgreSQL CDC: not a position of this reader: ${JSON.stringify(position)}`);
    }
    if (lsn <= this.#acked) return;
    this.#acked = lsn;
    if (!this.#disposed) await this.#sendStatus(false);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    clearInterval(this.#timer);
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    // A last status update, so the slot's confirmed position holds every acknowledgement before
    // the socket goes; bounded, a dead server must not hold the close.
    if (!this.#conn.broken) {
      const last = this.#sendStatus(false).catch(() => {});
      await Promise.race([last, new Promise((r) => setTimeout(r, 2000))]);
    }
    this.#conn.close();
  }

  #done(): boolean {
    if (!this.#options.untilCurrent || this.#inTx) return false;
    return this.#serverEnd >= this.#target || this.#lastCommitEnd >= this.#target ||
      this.#acked >= this.#target;
  }

  async *#stream(): AsyncGenerator<CdcChunk, void, undefined> {
    const conn = this.#conn;
    try {
      for (;;) {
        while (this.#ready.length > 0) yield this.#ready.shift()!;
        if (this.#disposed) return;
        const t = conn.next();
        if (t === -1) {
          if (this.#done()) {
            this.#flushProgress(true);
            if (this.#ready.length > 0) continue;
            return;
          }
          await conn.fill();
          continue;
        }
        if (t === ReplMsg.CopyData) this.#copyData(conn.buf, conn.view, conn.msgStart);
        else if (t === Msg.Error) throw this.#streamError(conn.errorFields());
        else if (t === ReplMsg.CopyDone) {
          // The server ended the stream (it is shutting down): not the end of the changes.
          throw connectionLost(
            conn.endpoint,
            new Error("the server ended the replication stream"),
          );
        }
        conn.compactBuffer();
      }
    } catch (error) {
      if (this.#disposed) {
        if (this.#options.signal?.aborted) throw this.#options.signal.reason;
        return;
      }
      throw error;
    }
  }

  #streamError(fields: { code: string; message: string }): RivetError {
    if (fields.code === "55006") return slotBusy(this.#options.slot, this.#conn.endpoint);
    return this.#conn.classify(fields as Parameters<PgConnection["classify"]>[0]);
  }

  #copyData(buf: Uint8Array, view: DataView, p: number): void {
    const kind = buf[p];
    if (kind === ReplMsg.Keepalive) {
      const end = view.getBigUint64(p + 1);
      if (end > this.#serverEnd) this.#serverEnd = end;
      if (buf[p + 17] === 1) this.#answerKeepalive();
      // Everything the server decoded before `end` was sent, and no transaction is open: a
      // restart from `end` misses nothing. That is progress even when the transactions were
      // of other tables (which pgoutput does not send at all).
      if (!this.#inTx && end > this.#delivered) this.#pendingProgress = end;
      this.#flushProgress(false);
      return;
    }
    if (kind !== ReplMsg.XLogData) return;
    // The change's LSN stays in the buffer: only a captured row turns it into text.
    this.#message(buf, view, p + 25, p + 1);
  }

  /**
   * Answers a keepalive that asks for a reply, with the acknowledged position. A server asks at
   * most every wal_sender_timeout / 2 while streaming; a shutting-down server asks again right
   * after each answer until the client confirms everything it was sent (which only the
   * pipeline's acknowledgement may do). Answering that ping-pong would hold the shutdown
   * forever, so a request that follows the previous answer within a moment goes unanswered and
   * wal_sender_timeout ends the wait.
   */
  #answerKeepalive(): void {
    const now = Date.now();
    if (now - this.#answeredAt < PING_PONG_MS) return;
    this.#answeredAt = now;
    void this.#sendStatus(false).catch(() => {});
  }

  #message(buf: Uint8Array, view: DataView, p: number, lsn: number): void {
    switch (buf[p]) {
      case Pgo.Begin: {
        const finalLsn = view.getBigUint64(p + 1);
        this.#inTx = true;
        this.#txRows = 0;
        this.#skipTx = finalLsn < this.#skipThrough;
        return;
      }
      case Pgo.Commit:
        this.#commit(view.getBigUint64(p + 10));
        return;
      case Pgo.Relation:
        this.#relation(buf, view, p);
        return;
      case Pgo.Insert:
        this.#change(buf, view, p, lsn, CDC_OP_CODE.insert, p + 5);
        return;
      case Pgo.Update: {
        let at = p + 5;
        if (buf[at] === 0x4b) {
          // 'K': the update changed the key. As an update it would lose the old key, so it is
          // the delete of the old key's row and the insert of the new one.
          this.#change(buf, view, p, lsn, CDC_OP_CODE.delete, at);
          this.#change(buf, view, p, lsn, CDC_OP_CODE.insert, this.#skipTuple(view, at + 1));
          return;
        }
        if (buf[at] === 0x4f) at = this.#skipTuple(view, at + 1);
        this.#change(buf, view, p, lsn, CDC_OP_CODE.update, at);
        return;
      }
      case Pgo.Delete:
        this.#change(buf, view, p, lsn, CDC_OP_CODE.delete, p + 5);
        return;
      case Pgo.Truncate:
        this.#truncate(view, p);
        return;
      default:
        return; // Origin, Type, Message: nothing to capture
    }
  }

  /** Offset past a TupleData that is not captured (the old key of an update). */
  #skipTuple(view: DataView, start: number): number {
    const n = view.getInt16(start);
    let p = start + 2;
    for (let c = 0; c < n; c++) {
      const kind = view.getUint8(p++);
      if (kind === 0x74 || kind === 0x62) p += 4 + view.getInt32(p);
    }
    return p;
  }

  #relation(buf: Uint8Array, view: DataView, p: number): void {
    const rel = parseRelation(buf, view, p);
    const index = this.#byRelid.get(rel.relid);
    if (index === undefined) return;
    const capture = this.#captures[index]!;
    const fields = capture.table.fields;
    const same = rel.columns.length === fields.length &&
      rel.columns.every((c, i) =>
        c.name === fields[i]!.name && c.typeOid === fields[i]!.typeOid &&
        c.typeModifier === fields[i]!.typeModifier
      );
    if (!same) {
      const now = rel.columns.map((c) => c.name).join(", ");
      throw new PermanentError(
        `The columns of ${capture.table.name} changed while capturing (now: ${now}; the run ` +
          `started with: ${fields.map((f) => f.name).join(", ")})`,
        {
          code: "cdc.schema_changed",
          hint: "re-check the export's config (columns: overrides, consumers of the parts) " +
            "against the new table definition, then restart the run",
        },
      );
    }
  }

  #change(
    buf: Uint8Array,
    view: DataView,
    p: number,
    lsn: number,
    op: number,
    tupleAt: number,
  ): void {
    if (this.#skipTx) return;
    const index = this.#byRelid.get(view.getUint32(p + 1));
    if (index === undefined) return;
    const capture = this.#captures[index]!;
    if (this.#current !== index) {
      if (this.#current >= 0) this.#flushChunk(undefined);
      this.#current = index;
      capture.decoder.reset(Math.min(CHUNK_START_ROWS, this.#options.batchRows));
    }
    // The tuple kind byte ('N', 'K' or 'O') precedes the TupleData.
    const facts = capture.tuples.rewrite(buf, view, tupleAt + 1);
    if (facts.textColumn >= 0) {
      const column = capture.table.typing.plans[facts.textColumn]!.name;
      throw new PermanentError(
        `Column '${column}' of ${capture.table.name} arrives as text in the change stream (its ` +
          "type has no binary send function), which the typed decoder cannot read",
        { code: "cdc.unsupported_type", hint: `exclude ${capture.table.name} from CDC` },
      );
    }
    if (facts.unchanged > 0) this.#warnToast(capture.table.name);
    capture.decoder.row(capture.tuples.buf, capture.tuples.view, 0);
    capture.ops.push(op);
    capture.positions.push(`{"lsn":"${lsnText(view.getUint32(lsn), view.getUint32(lsn + 4))}"}`);
    this.#txRows++;
    this.#lastTable = index;
    if (capture.decoder.rows >= this.#options.batchRows) this.#flushChunk(undefined);
  }

  #warnToast(name: string): void {
    if (this.#warnedToast) return;
    this.#warnedToast = true;
    this.#warn({
      code: "cdc.unchanged_toast",
      message: `An update of ${name} left a large (TOASTed) value unchanged and PostgreSQL did ` +
        "not send it: that column is NULL in the change row. Run ALTER TABLE " +
        `${name} REPLICA IDENTITY FULL; to have every value sent`,
    });
  }

  #warn(warning: Warning): void {
    this.#options.onWarning?.(warning);
  }

  #truncate(view: DataView, p: number): void {
    if (this.#skipTx) return;
    const count = view.getInt32(p + 1);
    for (let i = 0; i < count; i++) {
      const index = this.#byRelid.get(view.getUint32(p + 6 + i * 4));
      if (index === undefined) continue;
      this.#warn({
        code: "cdc.truncate",
        message: `${this.#captures[index]!.table.name} was truncated: a TRUNCATE is not a row ` +
          "change and has no rows in the parts; take a full export of it again",
      });
    }
  }

  #commit(endLsn: bigint): void {
    this.#inTx = false;
    if (this.#skipTx || endLsn <= this.#skipThrough) {
      // Redelivered: the checkpoint already holds it. Drop rows a chunk may have begun.
      this.#dropChunk();
      this.#skipTx = false;
      return;
    }
    this.#lastCommitEnd = endLsn;
    const commit = { lsn: formatLsn(endLsn) };
    if (this.#txRows > 0) {
      this.#pendingProgress = undefined;
      this.#delivered = endLsn;
      if (this.#current >= 0) this.#flushChunk(commit);
      else this.#emptyChunk(this.#lastTable, commit);
      return;
    }
    if (endLsn > this.#delivered) this.#pendingProgress = endLsn;
    this.#flushProgress(false);
  }

  /** Emits the pending progress, at most once per PROGRESS_EVERY_MS unless `now`. */
  #flushProgress(now: boolean): void {
    if (this.#pendingProgress === undefined || this.#inTx) return;
    if (!now && Date.now() - this.#lastProgressAt < PROGRESS_EVERY_MS) return;
    const lsn = this.#pendingProgress;
    this.#pendingProgress = undefined;
    this.#delivered = lsn;
    this.#lastProgressAt = Date.now();
    this.#emptyChunk(this.#lastTable, { lsn: formatLsn(lsn) });
  }

  #emptyChunk(index: number, commit: CdcPosition): void {
    const decoder = this.#captures[index]!.decoder;
    if (this.#current === index) this.#flushChunk(undefined);
    decoder.reset(0);
    this.#ready.push({
      table: index,
      batch: decoder.finish(),
      ops: new Uint8Array(0),
      positions: [],
      commit,
    });
  }

  #flushChunk(commit: CdcPosition | undefined): void {
    const index = this.#current;
    if (index < 0) return;
    const capture = this.#captures[index]!;
    this.#current = -1;
    if (capture.decoder.rows === 0 && commit === undefined) return;
    this.#ready.push({
      table: index,
      batch: capture.decoder.finish(),
      ops: Uint8Array.from(capture.ops),
      positions: capture.positions,
      ...(commit ? { commit } : {}),
    });
    capture.ops = [];
    capture.positions = [];
  }

  #dropChunk(): void {
    if (this.#current < 0) return;
    const capture = this.#captures[this.#current]!;
    capture.ops = [];
    capture.positions = [];
    this.#current = -1;
  }
}

/** How long a slot held by another process is waited for: a run that just closed it. */
const SLOT_RELEASE_WAIT_MS = 3000;

/**
 * Inspects the slot, waiting a little while it is active: the server releases a slot a moment
 * after its reader closed the connection, so a run started right after another (a retry, the
 * next scheduled run) would otherwise find it busy.
 */
async function freeSlot(conn: PgConnection, slot: string): Promise<SlotState> {
  const deadline = Date.now() + SLOT_RELEASE_WAIT_MS;
  for (;;) {
    try {
      return await inspectSlot(conn, slot);
    } catch (error) {
      if ((error as RivetError).code !== "cdc.slot_busy" || Date.now() >= deadline) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * The WAL position the stream must pass for everything committed before now to be delivered.
 * The insert position can sit just after a page header that no record ends in; the stream
 * reports the record end before it, the page boundary, so round down there.
 */
function drainTarget(insertLsn: bigint): bigint {
  const inPage = insertLsn % 8192n;
  return inPage === 24n || inPage === 40n ? insertLsn - inPage : insertLsn;
}

/**
 * Checks what opening the stream checks, read-only: no pooler in front, `wal_level` and the
 * REPLICATION attribute, each table (and its replica identity), and the slot when it exists.
 * The publication and the slot are not created.
 *
 * @param spec The `source` block (TLS).
 * @param connection Where and as whom to connect.
 * @param options Tables, slot, `columns:` overrides.
 * @returns What was checked, one line.
 */
export async function checkPostgresCdc(
  spec: SourceSpec,
  connection: ConnectionInfo,
  options: CdcCheckOptions,
): Promise<string> {
  checkTlsSupport(spec.tls);
  const control = await PgConnection.connect({
    ...postgresConnectOptions(spec, connection),
    applicationName: "rivet_doctor",
  });
  try {
    const pid = Number((await control.query("SELECT pg_backend_pid()")).rows[0]?.[0]);
    if (pid !== control.backendPid) {
      throw poolerRefused(control.endpoint, `the backend pid ${pid} is not the one of the login`);
    }
    await checkServer(control, connection.user);
    for (const ref of options.tables) await probeTable(control, ref, options.columnOverrides);
    let slot: string;
    try {
      const state = await inspectSlot(control, options.slot);
      slot = state.exists ? `slot ${options.slot} exists` : `slot ${options.slot} to be created`;
    } catch (error) {
      if ((error as RivetError).code !== "cdc.slot_busy") throw error;
      slot = `slot ${options.slot} is being read by a running stream`;
    }
    return `change capture ready (wal_level logical, REPLICATION role, ${slot})`;
  } finally {
    control.close();
  }
}

/**
 * Opens the change stream of the configured tables.
 *
 * @param spec The `source` block (TLS).
 * @param connection Host, port, credentials, database.
 * @param options Tables, slot, publication, start position.
 * @returns An open reader; dispose it with `await using`.
 */
export async function openPostgresCdc(
  spec: SourceSpec,
  connection: ConnectionInfo,
  options: CdcOpenOptions,
): Promise<CdcReader> {
  checkTlsSupport(spec.tls);
  options.signal?.throwIfAborted();
  if (options.tables.length === 0) {
    throw new ConfigError("CDC needs at least one table", { code: "cdc.no_tables" });
  }
  const start = options.start === undefined ? undefined : parseLsn(String(options.start.lsn));
  if (options.start !== undefined && start === undefined) {
    throw new ConfigError(
      `The CDC checkpoint ${JSON.stringify(options.start)} is not a PostgreSQL position`,
      {
        code: "cdc.bad_checkpoint",
        hint: "reset the export's CDC checkpoint (it was written for another source)",
      },
    );
  }
  const base: PgConnectOptions = {
    ...postgresConnectOptions(spec, connection, options.onWarning),
    applicationName: "rivet_cdc",
  };
  const control = await PgConnection.connect(base);
  let repl: PgConnection | undefined;
  // Creating a slot waits for every running transaction to end: an abort must not wait too.
  const onAbort = () => {
    control.close();
    repl?.close();
  };
  options.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const pid = Number((await control.query("SELECT pg_backend_pid()")).rows[0]?.[0]);
    if (pid !== control.backendPid) {
      throw poolerRefused(control.endpoint, `the backend pid ${pid} is not the one of the login`);
    }
    await checkServer(control, connection.user);
    const tables: PgCdcTable[] = [];
    for (const ref of options.tables) {
      tables.push(await probeTable(control, ref, options.columnOverrides));
    }
    await ensurePublication(control, options.publication, tables);
    const slot = await freeSlot(control, options.slot);
    repl = await connectReplication(base);
    let acked: bigint;
    if (slot.exists) {
      acked = slot.confirmedFlush ?? 0n;
      if (start !== undefined && acked > start) {
        throw checkpointTooOld(
          options.slot,
          `the slot was acknowledged up to ${formatLsn(acked)}, past the checkpoint ` +
            formatLsn(start),
        );
      }
    } else {
      if (start !== undefined) {
        throw checkpointTooOld(options.slot, "the slot no longer exists");
      }
      const created = await repl.query(
        `CREATE_REPLICATION_SLOT ${quoteIdent(options.slot)} LOGICAL pgoutput NOEXPORT_SNAPSHOT`,
      ).catch((e) => {
        const sqlstate = (e as { sqlstate?: string }).sqlstate;
        if (sqlstate === "42710") throw slotBusy(options.slot, control.endpoint);
        if (sqlstate === "53400") throw slotsExhausted(options.slot, control.endpoint, e);
        throw e;
      });
      acked = parseLsn(created.rows[0]?.[1] ?? "") ?? 0n;
    }
    const insert = (await control.query("SELECT pg_current_wal_insert_lsn()::text")).rows[0]?.[0];
    const target = drainTarget(parseLsn(insert ?? "") ?? 0n);
    // From the slot's own position: what lies between it and a saved checkpoint is skipped
    // here, transaction by transaction, by commit end (see PgCdcReader), so the rule is one
    // place and does not depend on how the server treats a later start point.
    const pubText = quoteIdent(options.publication).replace(/'/g, "''");
    const t = await replicationCommand(
      repl,
      `START_REPLICATION SLOT ${quoteIdent(options.slot)} LOGICAL ${formatLsn(acked)} ` +
        `(proto_version '1', publication_names '${pubText}', binary 'true')`,
    ).catch((e: { fields?: { code: string; message: string } }) => {
      if (!e.fields) throw e;
      if (e.fields.code === "55006") throw slotBusy(options.slot, control.endpoint);
      throw control.classify(e.fields as Parameters<PgConnection["classify"]>[0]);
    });
    if (t !== ReplMsg.CopyBothResponse) {
      throw new PgPermanentError(
        `START_REPLICATION did not start a stream on ${control.endpoint}`,
        {
          code: "source.query_failed",
        },
      );
    }
    options.signal?.throwIfAborted();
    return new PgCdcReader(repl, options, tables, {
      acked,
      skipThrough: start ?? 0n,
      target,
    });
  } catch (error) {
    repl?.close();
    if (options.signal?.aborted) throw options.signal.reason;
    throw error;
  } finally {
    options.signal?.removeEventListener("abort", onAbort);
    control.close();
  }
}
