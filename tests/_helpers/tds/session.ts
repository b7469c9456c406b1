/**
 * Test support (TDS test server): one client connection. Reads client messages while a request
 * runs (so an ATTENTION can cancel it), logs in against the server's logins, executes each
 * statement on the session's own PostgreSQL connection and streams the result as COLMETADATA and
 * ROW/NBCROW tokens, one cursor batch at a time, waiting for the socket between batches.
 *
 * @module
 */
import postgres from "postgres";
import { MessageReader, MessageWriter, PacketType, type Writer } from "./wire.ts";
import {
  Done,
  done,
  envChange,
  envChangeBytes,
  loginAck,
  preloginResponse,
  returnStatus,
  type ServerMessage,
  serverMessage,
  Token,
} from "./tokens.ts";
import { parseBatch, parseLogin, parseRpc, parseTm } from "./requests.ts";
import { parameterTexts, type Plan, translateBatch } from "./translate.ts";
import { computedType, type SqlType, typeText, writeTypeInfo } from "./types.ts";
import { decimalScale, writeValue } from "./values.ts";
import { sqlServerError } from "./errors.ts";

/** What a session needs from its server. */
export interface SessionHost {
  readonly database: string;
  readonly pg: { readonly host: string; readonly port: number };
  readonly logins: ReadonlyMap<string, { readonly password: string; readonly role: string }>;
  readonly settings: {
    snapshotIsolation: boolean;
    engineEdition: number;
    failNextQuery?: { number: number; message: string } | undefined;
  };
  /** Declared SQL Server type of a table column (PostgreSQL table OID, attribute number). */
  declaredType(table: number, column: number): Promise<SqlType>;
  /** Forgets cached declared types (after DDL). */
  invalidate(): void;
  /** Ends another session (KILL). */
  kill(session: number): void;
  /** Stores a changed database option (ALTER DATABASE … SET ALLOW_SNAPSHOT_ISOLATION). */
  setSnapshotIsolation(on: boolean): Promise<void>;
}

const ROWS_PER_FETCH = 1000;

/** One TDS connection. */
export class Session {
  isolation = "READ COMMITTED";
  lockTimeoutMs = -1;
  running: string | undefined;
  #sql: postgres.Sql | undefined;
  #query: { cancel(): void } | undefined;
  #attention = false;
  #work: Promise<void> = Promise.resolve();
  #packetSize = 4096;
  #closed = false;
  #txn = 0;

  constructor(readonly id: number, readonly conn: Deno.Conn, readonly host: SessionHost) {}

  /** Whether the session has ended (it may still be winding down its last statement). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Serves the connection until the client leaves or the session is killed. */
  async serve(): Promise<void> {
    const reader = new MessageReader(this.conn);
    try {
      while (true) {
        const msg = await reader.next();
        if (msg === null) break;
        if (msg.type === PacketType.ATTENTION) {
          this.#attention = true;
          this.#query?.cancel();
          this.#queue(() => this.#ackAttention());
          continue;
        }
        this.#queue(() => this.#handle(msg.type, msg.payload));
      }
    } catch {
      // A reset or a malformed stream ends the session.
    } finally {
      await this.#work.catch(() => {});
      this.close();
    }
  }

  /** Drops the client socket and the PostgreSQL connection (KILL, or the end of the session). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.running = undefined;
    this.#query?.cancel();
    try {
      this.conn.close();
    } catch { /* already closed */ }
    this.#sql?.end({ timeout: 0 }).catch(() => {});
  }

  #queue(fn: () => Promise<void>): void {
    this.#work = this.#work.then(fn).catch(() => this.close());
  }

  #writer(): MessageWriter {
    return new MessageWriter(this.conn, this.#packetSize, this.id);
  }

  async #ackAttention(): Promise<void> {
    this.#attention = false;
    const out = this.#writer();
    done(out.body, Done.ATTN);
    await out.end();
  }

  #handle(type: number, payload: Uint8Array): Promise<void> {
    if (type === PacketType.PRELOGIN) {
      const out = this.#writer();
      out.body.bytes(preloginResponse());
      return out.end();
    }
    if (type === PacketType.LOGIN7) return this.#login(payload);
    if (!this.#sql) throw new Error("request before login");
    if (type === PacketType.SQL_BATCH) return this.#batch(parseBatch(payload));
    if (type === PacketType.RPC) {
      const call = parseRpc(payload);
      const stmt = call.params[0]?.value;
      if (
        (call.proc !== 10 && String(call.proc).toLowerCase() !== "sp_executesql") ||
        typeof stmt !== "string"
      ) {
        return this.#fail({
          number: 2812,
          class: 16,
          message: `Could not find stored procedure '${call.proc}'.`,
        });
      }
      const declaration = call.params[1]?.value;
      const values = call.params.slice(2).map((p) => p.value);
      return this.#batch(
        stmt,
        parameterTexts(typeof declaration === "string" ? declaration : "", values),
      );
    }
    if (type === PacketType.TRANSACTION_MANAGER) return this.#tm(payload);
    throw new Error(`unexpected packet type ${type}`);
  }

  async #fail(m: ServerMessage): Promise<void> {
    const out = this.#writer();
    serverMessage(out.body, m);
    done(out.body, Done.ERROR);
    await out.end();
  }

  async #login(payload: Uint8Array): Promise<void> {
    const login = parseLogin(payload);
    const entry = this.host.logins.get(login.user);
    if (!entry || entry.password !== login.password) {
      return this.#fail({
        number: 18456,
        class: 14,
        message: `Login failed for user '${login.user}'.`,
      });
    }
    const database = login.database || this.host.database;
    if (database.toLowerCase() !== this.host.database.toLowerCase()) {
      return this.#fail({
        number: 4060,
        class: 11,
        message: `Cannot open database "${database}" requested by the login. The login failed.`,
      });
    }
    this.#sql = postgres({
      host: this.host.pg.host,
      port: this.host.pg.port,
      database: this.host.database,
      username: entry.role,
      max: 1,
      idle_timeout: 0,
      prepare: false,
      fetch_types: false,
      onnotice: () => {},
      connection: { application_name: `tds:${this.id}` },
    });
    await this.#sql`SELECT 1`;
    if (login.packetSize >= 512 && login.packetSize <= 32767) this.#packetSize = login.packetSize;
    const out = this.#writer();
    envChange(out.body, 1, this.host.database, "master");
    envChange(out.body, 2, "us_english");
    loginAck(out.body);
    envChange(out.body, 4, String(this.#packetSize), "4096");
    done(out.body, Done.FINAL, 0n, Token.DONE, 0);
    await out.end();
  }

  async #tm(payload: Uint8Array): Promise<void> {
    const tm = parseTm(payload);
    const out = this.#writer();
    const descriptor = new Uint8Array(8);
    new DataView(descriptor.buffer).setUint32(0, this.#txn, true);
    try {
      if (tm.kind === "begin") {
        const levels = [
          "",
          "READ UNCOMMITTED",
          "READ COMMITTED",
          "REPEATABLE READ",
          "SERIALIZABLE",
          "SNAPSHOT",
        ];
        if (tm.isolation) this.isolation = levels[tm.isolation] ?? this.isolation;
        this.#checkSnapshot();
        await this.#begin();
        this.#txn++;
        new DataView(descriptor.buffer).setUint32(0, this.#txn, true);
        envChangeBytes(out.body, 8, descriptor, new Uint8Array(0));
      } else if (tm.kind !== "other") {
        await this.#track(this.#sql!.unsafe(tm.kind === "commit" ? "COMMIT" : "ROLLBACK"));
        envChangeBytes(out.body, tm.kind === "commit" ? 9 : 10, new Uint8Array(0), descriptor);
      }
      done(out.body, Done.FINAL);
    } catch (err) {
      serverMessage(out.body, this.#error(err));
      done(out.body, Done.ERROR);
    }
    await out.end();
  }

  #checkSnapshot(): void {
    if (this.isolation === "SNAPSHOT" && !this.host.settings.snapshotIsolation) {
      throw {
        tds: {
          number: 3952,
          class: 16,
          state: 1,
          message:
            `Snapshot isolation transaction failed accessing database '${this.host.database}' ` +
            "because snapshot isolation is not allowed in this database. Use ALTER DATABASE to allow " +
            "snapshot isolation.",
        },
      };
    }
  }

  #begin(): Promise<unknown> {
    const level = this.isolation === "SNAPSHOT" || this.isolation === "REPEATABLE READ"
      ? "REPEATABLE READ"
      : this.isolation === "SERIALIZABLE"
      ? "SERIALIZABLE"
      : "READ COMMITTED";
    return this.#track(this.#sql!.unsafe(`BEGIN ISOLATION LEVEL ${level}`));
  }

  #error(err: unknown): ServerMessage {
    const tds = (err as { tds?: ServerMessage }).tds;
    return tds ?? sqlServerError(err, { database: this.host.database, spid: this.id });
  }

  async #track<T>(
    q: postgres.PendingQuery<postgres.Row[]> | Promise<T> & { cancel(): void },
  ): Promise<T> {
    this.#query = q as { cancel(): void };
    try {
      return await (q as unknown as Promise<T>);
    } finally {
      this.#query = undefined;
    }
  }

  /** Runs a batch (or the statement of an sp_executesql call, `rpc` set) and answers it. */
  async #batch(
    text: string,
    rpc?: ReadonlyMap<string, string>,
  ): Promise<void> {
    const out = this.#writer();
    const token = rpc ? Token.DONEINPROC : Token.DONE;
    // Like SQL Server's sys.dm_exec_sql_text: the whole batch, comments included.
    this.running = text;
    let failed = false;
    let finished = false;
    try {
      const plans = translateBatch(text, {
        spid: this.id,
        lockTimeoutMs: this.lockTimeoutMs,
        params: rpc ?? new Map(),
      });
      for (let i = 0; i < plans.length && !this.#attention; i++) {
        const more = rpc !== undefined || i < plans.length - 1;
        const count = await this.#run(plans[i]!, out);
        if (this.#attention) break;
        done(
          out.body,
          (more ? Done.MORE : 0) | (count === undefined ? 0 : Done.COUNT),
          count ?? 0n,
          token,
        );
        finished = !more;
        await out.flush();
      }
    } catch (err) {
      if (isConnectionLoss(err)) {
        this.close();
        return;
      }
      if (!this.#attention) {
        serverMessage(out.body, this.#error(err));
        done(out.body, Done.ERROR | (rpc ? Done.MORE : 0), 0n, token);
        failed = true;
        finished = !rpc;
      }
    }
    if (rpc) {
      returnStatus(out.body, failed ? -6 : 0);
      done(out.body, failed ? Done.ERROR : 0, 0n, Token.DONEPROC);
    } else if (!finished) done(out.body, Done.FINAL);
    this.running = undefined;
    await out.end();
  }

  /** Runs one statement; the row count for its DONE, or undefined when it has none. */
  async #run(plan: Plan, out: MessageWriter): Promise<bigint | undefined> {
    const sql = this.#sql!;
    switch (plan.kind) {
      case "set":
        if (plan.option === "isolation") this.isolation = plan.value;
        if (plan.option === "LOCK_TIMEOUT") {
          this.lockTimeoutMs = Number(plan.value.replace(/\s/g, ""));
          await this.#track(sql.unsafe(`SET lock_timeout = ${Math.max(this.lockTimeoutMs, 0)}`));
        }
        return undefined;
      case "waitfor":
        await this.#track(sql.unsafe(`SELECT pg_sleep(${plan.seconds})`));
        return undefined;
      case "kill":
        this.host.kill(plan.session);
        return undefined;
      case "use":
        if (plan.database.toLowerCase() !== this.host.database.toLowerCase()) {
          throw {
            tds: { number: 911, class: 16, message: `Database '${plan.database}' does not exist.` },
          };
        }
        return undefined;
      case "begin":
        this.#checkSnapshot();
        await this.#begin();
        return undefined;
      case "commit":
      case "rollback":
        await this.#track(sql.unsafe(plan.kind.toUpperCase()));
        return undefined;
    }
    const alter = /^ALTER\s+DATABASE\s+\S+\s+SET\s+ALLOW_SNAPSHOT_ISOLATION\s+(ON|OFF)/i.exec(
      plan.text,
    );
    if (alter) {
      await this.host.setSnapshotIsolation(alter[1]!.toUpperCase() === "ON");
      return undefined;
    }
    this.#checkSnapshot();
    const fail = this.host.settings.failNextQuery;
    if (fail) {
      this.host.settings.failNextQuery = undefined;
      throw { tds: { ...fail, class: 16 } };
    }
    {
      for (const s of plan.sql.slice(0, -1)) await this.#track(sql.unsafe(s));
      if (plan.into) return await this.#selectInto(plan.into);
      const last = plan.sql.at(-1)!;
      const desc = await this.#track<{ columns: postgres.ColumnList<string> }>(
        sql.unsafe(last).describe() as never,
      );
      if (desc.columns.length > 0) return await this.#stream(last, desc.columns, out);
      const result = await this.#track<postgres.RowList<postgres.Row[]>>(
        sql.unsafe(last) as never,
      );
      if (/^(CREATE|DROP|ALTER)/i.test(last)) this.host.invalidate();
      return /^(INSERT|UPDATE|DELETE|MERGE|SELECT|COPY)/.test(result.command ?? "")
        ? BigInt(result.count ?? 0)
        : undefined;
    }
  }

  /** `SELECT … INTO t`: creates the table, then carries each source column's declared type over. */
  async #selectInto(into: { target: string; select: string }): Promise<bigint> {
    const sql = this.#sql!;
    const desc = await this.#track<{ columns: postgres.ColumnList<string> }>(
      sql.unsafe(into.select).describe() as never,
    );
    const result = await this.#track<postgres.RowList<postgres.Row[]>>(
      sql.unsafe(`CREATE TABLE ${into.target} AS ${into.select}`) as never,
    );
    for (const c of desc.columns) {
      if (!c.table) continue;
      const t = await this.host.declaredType(c.table, c.number);
      const decl = `mssql:${typeText(t)}`;
      await this.#track(
        sql.unsafe(
          `COMMENT ON COLUMN ${into.target}."${c.name.replaceAll('"', '""')}" IS '${decl}'`,
        ),
      );
    }
    this.host.invalidate();
    return BigInt(result.count ?? 0);
  }

  async #stream(
    text: string,
    columns: postgres.ColumnList<string>,
    out: MessageWriter,
  ): Promise<bigint> {
    const query = this.#sql!.unsafe(text).raw();
    this.#query = query;
    const rows = query.cursor(ROWS_PER_FETCH)[Symbol.asyncIterator]();
    try {
      const first = await rows.next();
      let batch = (first.done ? [] : first.value) as unknown as (Uint8Array | null)[][];
      const types: SqlType[] = [];
      for (let i = 0; i < columns.length; i++) {
        const c = columns[i]!;
        types.push(
          c.table
            ? await this.host.declaredType(c.table, c.number)
            : computedType(c.type, scaleOf(batch, i)),
        );
      }
      writeColumns(out.body, columns.map((c) => c.name), types, this.host.database);
      let count = 0n;
      let done = first.done ?? false;
      while (true) {
        for (const row of batch) writeRow(out.body, types, row);
        count += BigInt(batch.length);
        await out.flush();
        if (done || this.#attention) break;
        const next = await rows.next();
        if (next.done) break;
        batch = next.value as unknown as (Uint8Array | null)[][];
        done = false;
      }
      return count;
    } finally {
      this.#query = undefined;
      await rows.return?.();
    }
  }
}

function isConnectionLoss(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === "CONNECTION_CLOSED" || code === "CONNECTION_ENDED" ||
    code === "CONNECTION_DESTROYED" ||
    code === "57P01";
}

const text = new TextDecoder();

/** Scale of a computed numeric column: the most decimals in the first values, else 10. */
function scaleOf(rows: (Uint8Array | null)[][], i: number): number {
  let scale = -1;
  for (const r of rows) {
    const v = r[i];
    if (v) scale = Math.max(scale, decimalScale(text.decode(v)));
  }
  return scale < 0 ? 10 : Math.min(scale, 38);
}

function writeColumns(w: Writer, names: string[], types: SqlType[], database: string): void {
  w.u8(Token.COLMETADATA).u16(names.length);
  for (let i = 0; i < names.length; i++) {
    w.u32(0).u16(0x0001 | 0x0008);
    writeTypeInfo(w, types[i]!, database, []);
    w.bvarchar(names[i]!);
  }
}

function writeRow(w: Writer, types: SqlType[], row: (Uint8Array | null)[]): void {
  if (!row.includes(null)) {
    w.u8(Token.ROW);
    for (let i = 0; i < types.length; i++) writeValue(w, types[i]!, row[i]!);
    return;
  }
  w.u8(Token.NBCROW);
  const bitmap = new Uint8Array(Math.ceil(types.length / 8));
  row.forEach((v, i) => {
    if (v === null) bitmap[i >> 3]! |= 1 << (i & 7);
  });
  w.bytes(bitmap);
  for (let i = 0; i < types.length; i++) if (row[i] !== null) writeValue(w, types[i]!, row[i]!);
}
