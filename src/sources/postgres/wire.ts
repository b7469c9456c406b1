/**
 * A minimal PostgreSQL v3 client: startup, authentication (trust, cleartext, MD5, SCRAM-SHA-256),
 * a buffered reader that parses messages in place from large socket reads, simple and extended
 * query helpers, and CancelRequest. The hot path (DataRow decoding) reads `buf`/`view` directly
 * through {@linkcode PgConnection.next}.
 *
 * @module
 */
import { PermanentError, type RivetError } from "../../core/errors.ts";
import type { TlsSpec } from "../../core/spec.ts";
import { md5Password, ScramClient, ScramError } from "./_auth.ts";
import { classifyPgError, connectionLost, PgPermanentError } from "./_errors.ts";
import {
  cancelRequest,
  MessageWriter,
  parseErrorFields,
  parseRowDescription,
  passwordMessage,
  type PgErrorFields,
  type PgFieldDescription,
  readCString,
  saslInitialResponse,
  saslResponse,
  startupMessage,
  terminateMessage,
  type TextParam,
  writeBind,
  writeDescribe,
  writeExecute,
  writeParse,
  writeQuery,
  writeSync,
} from "./_messages.ts";
import { dial } from "./connect.ts";

/** Message type bytes of the backend messages the client handles. */
export const Msg = {
  Auth: 0x52, // R
  BackendKey: 0x4b, // K
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  CommandComplete: 0x43, // C
  DataRow: 0x44, // D
  EmptyQuery: 0x49, // I
  Error: 0x45, // E
  NoData: 0x6e, // n
  Notice: 0x4e, // N
  Notification: 0x41, // A
  ParameterDescription: 0x74, // t
  ParameterStatus: 0x53, // S
  ParseComplete: 0x31, // 1
  PortalSuspended: 0x73, // s
  ReadyForQuery: 0x5a, // Z
  RowDescription: 0x54, // T
} as const;

/** How to reach and log in to the server. */
export interface PgConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password?: string | undefined;
  readonly database: string;
  readonly tls?: TlsSpec | undefined;
  /** `application_name`; defaults to `rivet`. */
  readonly applicationName?: string;
  /** Dial timeout in ms (0 = OS default). */
  readonly connectTimeoutMs?: number;
  /** Receives NoticeResponse/WARNING messages from the server. */
  readonly onNotice?: (fields: PgErrorFields) => void;
  /**
   * Extra startup parameters, e.g. `replication: "database"` for a logical replication
   * connection (the change-data-capture reader).
   */
  readonly startupParams?: Readonly<Record<string, string>>;
}

/** Result of a simple query: text rows of the last statement that returned rows. */
export interface SimpleResult {
  readonly fields: readonly PgFieldDescription[];
  readonly rows: readonly (readonly (string | null)[])[];
  /** CommandComplete tags in order, e.g. `BEGIN`, `SET`, `SHOW`. */
  readonly tags: readonly string[];
}

const INITIAL_BUFFER = 2 * 1024 * 1024;
const MIN_READ = 256 * 1024;
const textDecoder = new TextDecoder();

/**
 * One logged-in connection. Not safe for concurrent use: one conversation at a time.
 */
export class PgConnection {
  /** Receive buffer; valid between `msgStart` and `msgEnd` for the current message. */
  buf: Uint8Array = new Uint8Array(INITIAL_BUFFER);
  /** DataView over {@linkcode buf}. */
  view: DataView = new DataView(this.buf.buffer);
  /** Body start (after the 5-byte header) of the message returned by `next()`. */
  msgStart = 0;
  /** End of the message returned by `next()`. */
  msgEnd = 0;
  #pos = 0;
  #end = 0;
  readonly #conn: Deno.Conn;
  readonly #options: PgConnectOptions;
  readonly #endpoint: string;
  /** Server parameters from ParameterStatus (server_version, integer_datetimes, ...). */
  readonly parameters: Map<string, string> = new Map();
  #pid = 0;
  #secret = 0;
  #closed = false;
  #broken = false;
  /** Total bytes received, for diagnostics and benchmarks. */
  bytesReceived = 0;

  private constructor(conn: Deno.Conn, options: PgConnectOptions) {
    this.#conn = conn;
    this.#options = options;
    this.#endpoint = `${options.host}:${options.port}`;
  }

  /** Backend process id (from BackendKeyData). */
  get backendPid(): number {
    return this.#pid;
  }

  /** `host:port`, for messages. */
  get endpoint(): string {
    return this.#endpoint;
  }

  /** True after an I/O failure or protocol desync: the connection must not be reused. */
  get broken(): boolean {
    return this.#broken || this.#closed;
  }

  /**
   * Dials, negotiates TLS, sends the startup packet and authenticates.
   *
   * @param options Server, credentials, TLS.
   * @returns A connection in the idle state.
   */
  static async connect(options: PgConnectOptions): Promise<PgConnection> {
    const conn = await dial({
      host: options.host,
      port: options.port,
      tls: options.tls,
      ...(options.connectTimeoutMs === undefined
        ? {}
        : { connectTimeoutMs: options.connectTimeoutMs }),
    });
    const pg = new PgConnection(conn, options);
    try {
      await pg.#startup();
    } catch (error) {
      pg.close();
      throw error;
    }
    return pg;
  }

  async #startup(): Promise<void> {
    const o = this.#options;
    // Only parameters PgBouncer passes on: it refuses a login naming any other one (such as
    // extra_float_digits) unless its admin lists it in ignore_startup_parameters. Data comes
    // back in binary, so text float formatting does not matter here.
    await this.send(startupMessage({
      user: o.user,
      database: o.database,
      application_name: o.applicationName ?? "rivet",
      client_encoding: "UTF8",
      DateStyle: "ISO",
      TimeZone: "UTC",
      ...o.startupParams,
    }));
    let scram: ScramClient | undefined;
    for (;;) {
      const t = await this.nextAsync();
      if (t === Msg.Error) {
        throw classifyPgError(this.errorFields(), { user: o.user, endpoint: this.#endpoint });
      }
      if (t === Msg.BackendKey) {
        this.#pid = this.view.getInt32(this.msgStart);
        this.#secret = this.view.getInt32(this.msgStart + 4);
      } else if (t === Msg.ReadyForQuery) {
        return;
      } else if (t === Msg.Auth) {
        const code = this.view.getInt32(this.msgStart);
        const body = this.buf.slice(this.msgStart + 4, this.msgEnd);
        if (code === 0) continue;
        if (code === 3 || code === 5) {
          const pw = this.#requirePassword();
          await this.send(passwordMessage(code === 3 ? pw : md5Password(o.user, pw, body)));
        } else if (code === 10) {
          const mechanisms: string[] = [];
          let p = 0;
          while (p < body.length && body[p] !== 0) {
            const [name, next] = readCString(body, p);
            mechanisms.push(name);
            p = next;
          }
          if (!mechanisms.includes("SCRAM-SHA-256")) {
            throw new PermanentError(
              `The server at ${this.#endpoint} offers only ${mechanisms.join(", ")} for user ` +
                `'${o.user}'; allow scram-sha-256 (without channel binding) in pg_hba.conf`,
              { code: "source.auth_unsupported" },
            );
          }
          scram = new ScramClient(this.#requirePassword());
          await this.send(saslInitialResponse("SCRAM-SHA-256", scram.clientFirst()));
        } else if (code === 11 && scram) {
          await this.send(saslResponse(await scram.clientFinal(body)));
        } else if (code === 12 && scram) {
          try {
            scram.verifyServerFinal(body);
          } catch (error) {
            throw this.#scramFailure(error);
          }
        } else {
          throw new PermanentError(
            `The server at ${this.#endpoint} asks for an authentication method rivet does not ` +
              `speak (code ${code}) for user '${o.user}'; use scram-sha-256, md5 or trust`,
            { code: "source.auth_unsupported" },
          );
        }
      }
    }
  }

  #scramFailure(error: unknown): RivetError {
    const why = error instanceof ScramError ? error.message : "invalid SCRAM exchange";
    return new PgPermanentError(
      `Authentication failed for user '${this.#options.user}' on ${this.#endpoint}: ${why}; ` +
        "check that you are talking to the right server",
      { code: "source.auth_failed", cause: error },
    );
  }

  #requirePassword(): string {
    const pw = this.#options.password;
    if (pw === undefined || pw === "") {
      throw new PgPermanentError(
        `Authentication failed for user '${this.#options.user}' on ${this.#endpoint}: the server ` +
          "asks for a password and none is configured; set source.password_env or the URL",
        { code: "source.auth_failed", sqlstate: "28P01" },
      );
    }
    return pw;
  }

  /** Writes bytes fully. */
  async send(bytes: Uint8Array): Promise<void> {
    try {
      let off = 0;
      while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
    } catch (error) {
      this.#broken = true;
      throw connectionLost(this.#endpoint, error);
    }
  }

  /** Flushes a MessageWriter's content. */
  flush(w: MessageWriter): Promise<void> {
    return this.send(w.take());
  }

  /**
   * Parses the next complete message in the buffer, in place. NoticeResponse, ParameterStatus and
   * NotificationResponse are consumed here. Synchronous: the hot loop calls it per DataRow.
   *
   * @returns The message type byte, or -1 when the buffer holds no complete message (call `fill`).
   */
  next(): number {
    for (;;) {
      const avail = this.#end - this.#pos;
      if (avail < 5) return -1;
      const len = this.view.getInt32(this.#pos + 1);
      if (avail < len + 1) return -1;
      const type = this.buf[this.#pos]!;
      this.msgStart = this.#pos + 5;
      this.msgEnd = this.#pos + 1 + len;
      this.#pos = this.msgEnd;
      if (type === Msg.Notice) {
        this.#options.onNotice?.(parseErrorFields(this.buf, this.msgStart, this.msgEnd));
        continue;
      }
      if (type === Msg.ParameterStatus) {
        const [k, p] = readCString(this.buf, this.msgStart);
        const [v] = readCString(this.buf, p);
        this.parameters.set(k, v);
        continue;
      }
      if (type === Msg.Notification) continue;
      return type;
    }
  }

  /** Awaits the next message (slow path for the control conversation). */
  async nextAsync(): Promise<number> {
    for (;;) {
      const t = this.next();
      if (t !== -1) return t;
      await this.fill();
    }
  }

  /**
   * Reads more bytes from the socket, first moving a partial message to the buffer start (or
   * growing the buffer when one message is larger than it).
   */
  async fill(): Promise<void> {
    if (this.#closed) throw connectionLost(this.#endpoint);
    const avail = this.#end - this.#pos;
    let need = MIN_READ;
    if (avail >= 5) need = Math.max(need, this.view.getInt32(this.#pos + 1) + 1 - avail);
    if (this.buf.length - this.#end < need) {
      if (this.buf.length - avail < need) {
        let size = this.buf.length * 2;
        while (size - avail < need) size *= 2;
        const next = new Uint8Array(size);
        next.set(this.buf.subarray(this.#pos, this.#end));
        this.buf = next;
        this.view = new DataView(next.buffer);
      } else {
        this.buf.copyWithin(0, this.#pos, this.#end);
      }
      this.#pos = 0;
      this.#end = avail;
    }
    let n: number | null;
    try {
      n = await this.#conn.read(this.buf.subarray(this.#end));
    } catch (error) {
      this.#broken = true;
      throw connectionLost(this.#endpoint, error);
    }
    if (n === null) {
      this.#broken = true;
      throw connectionLost(this.#endpoint, new Error("the server closed the connection"));
    }
    this.#end += n;
    this.bytesReceived += n;
  }

  /** Shrinks the receive buffer back after a huge message, so one large value does not pin memory. */
  compactBuffer(): void {
    if (this.buf.length <= INITIAL_BUFFER * 2) return;
    const avail = this.#end - this.#pos;
    if (avail > INITIAL_BUFFER) return;
    const next = new Uint8Array(INITIAL_BUFFER);
    next.set(this.buf.subarray(this.#pos, this.#end));
    this.buf = next;
    this.view = new DataView(next.buffer);
    this.#pos = 0;
    this.#end = avail;
  }

  /** Fields of the current ErrorResponse/NoticeResponse. */
  errorFields(): PgErrorFields {
    return parseErrorFields(this.buf, this.msgStart, this.msgEnd);
  }

  /** Classifies the given ErrorResponse in this connection's context. */
  classify(fields: PgErrorFields): RivetError {
    return classifyPgError(fields, { user: this.#options.user, endpoint: this.#endpoint });
  }

  /** RowDescription of the current message. */
  rowDescription(): PgFieldDescription[] {
    return parseRowDescription(this.buf, this.view, this.msgStart);
  }

  /** CommandComplete tag of the current message. */
  commandTag(): string {
    return readCString(this.buf, this.msgStart)[0];
  }

  /**
   * Runs SQL through the simple query protocol; rows come back as text. For control statements
   * and small catalog queries only, never for data.
   *
   * @param sql One or more statements.
   * @returns Rows of the last row-returning statement and every command tag.
   */
  async query(sql: string): Promise<SimpleResult> {
    const w = new MessageWriter();
    writeQuery(w, sql);
    await this.flush(w);
    return await this.collect();
  }

  /**
   * Runs one statement through the extended protocol (Parse/Bind/Describe/Execute/Sync) with
   * text parameters: values travel apart from the SQL text, never spliced into it. For control
   * statements and small queries only, never for data.
   *
   * @param sql One statement with `$1`, `$2`, … placeholders.
   * @param params Text values, `null` for SQL NULL.
   * @returns Its text rows and command tag.
   */
  async queryParams(sql: string, params: readonly TextParam[]): Promise<SimpleResult> {
    const w = new MessageWriter();
    writeParse(w, sql);
    writeBind(w, params, [0]);
    writeDescribe(w, "P", "");
    writeExecute(w);
    writeSync(w);
    await this.flush(w);
    return await this.collect();
  }

  /**
   * Reads responses up to ReadyForQuery, collecting text rows; throws the first server error after
   * the connection is idle again.
   */
  async collect(): Promise<SimpleResult> {
    let fields: PgFieldDescription[] = [];
    let rows: (string | null)[][] = [];
    const tags: string[] = [];
    let error: PgErrorFields | undefined;
    for (;;) {
      const t = await this.nextAsync();
      switch (t) {
        case Msg.RowDescription:
          fields = this.rowDescription();
          rows = [];
          break;
        case Msg.DataRow: {
          const n = this.view.getInt16(this.msgStart);
          let p = this.msgStart + 2;
          const row: (string | null)[] = [];
          for (let i = 0; i < n; i++) {
            const len = this.view.getInt32(p);
            p += 4;
            if (len < 0) row.push(null);
            else {
              row.push(textDecoder.decode(this.buf.subarray(p, p + len)));
              p += len;
            }
          }
          rows.push(row);
          break;
        }
        case Msg.CommandComplete:
          tags.push(this.commandTag());
          break;
        case Msg.Error:
          error ??= this.errorFields();
          break;
        case Msg.ReadyForQuery:
          if (error) throw this.classify(error);
          return { fields, rows, tags };
        default:
          break; // ParseComplete, BindComplete, NoData, EmptyQuery, ...
      }
    }
  }

  /** Transaction status from the last ReadyForQuery: `I` idle, `T` in transaction, `E` failed. */
  get transactionStatus(): string {
    return String.fromCharCode(this.buf[this.msgEnd - 1] ?? 0x49);
  }

  /**
   * Asks the server to cancel the running statement: a second connection sends CancelRequest
   * with the backend key, then closes. Best effort; never throws.
   */
  async cancel(): Promise<void> {
    try {
      const conn = await dial({
        host: this.#options.host,
        port: this.#options.port,
        tls: this.#options.tls,
        connectTimeoutMs: 5000,
      });
      try {
        const bytes = cancelRequest(this.#pid, this.#secret);
        let off = 0;
        while (off < bytes.length) off += await conn.write(bytes.subarray(off));
        // The server closes the socket once it has handled the request.
        await conn.read(new Uint8Array(1)).catch(() => null);
      } finally {
        try {
          conn.close();
        } catch { /* closed by the server */ }
      }
    } catch { /* best effort: the statement will end by itself or the socket will be closed */ }
  }

  /** Marks the connection unusable (after a desync) so it gets closed instead of reused. */
  markBroken(): void {
    this.#broken = true;
  }

  /** Sends Terminate (when healthy) and closes the socket. Idempotent. */
  close(): void {
    if (this.#closed) return;
    if (!this.#broken) {
      // Fire and forget: the server ends the session on Terminate or on socket close anyway.
      this.#conn.write(terminateMessage()).catch(() => {});
    }
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}
