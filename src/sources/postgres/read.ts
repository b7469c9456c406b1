/**
 * One read: `BEGIN … READ ONLY` → optional `SET LOCAL` timeouts → `SHOW work_mem` →
 * `DECLARE _rivet NO SCROLL CURSOR` (parameters bound through the extended protocol) → `FETCH n`
 * with binary result columns until a short fetch → `CLOSE` → `COMMIT`; `ROLLBACK` on error or
 * cancel. The schema is known (and unsupported columns refused) before the stream is returned.
 *
 * rivet only reads: a cursor holds only a query, so `DELETE`, DDL and the like fail at DECLARE
 * before they run (reported as `source.not_a_select`), and a write from inside a query (a function,
 * `FOR UPDATE`, `nextval`) is refused by the READ ONLY transaction (`source.read_only`).
 *
 * Sizing: the first fetch is a 500-row probe; afterwards n = clamp(memory target / measured
 * bytes-per-row, 100, batchSize), and n ≤ 70% of work_mem / max(64, 1.2 × bytes-per-row). Each
 * fetch is one batch. Unless throttled, the next FETCH is sent before the current one is decoded
 * so the server works while the client decodes; at most two fetches exist at once.
 *
 * @module
 */
import { sleep } from "../../_util/abort.ts";
import type { RecordBatch } from "../../core/arrow.ts";
import type { RivetError } from "../../core/errors.ts";
import type { BatchStream, ReadOptions, ReadRequest } from "../../core/source.ts";
import {
  MessageWriter,
  type PgErrorFields,
  type PgFieldDescription,
  type TextParam,
  writeBind,
  writeDescribe,
  writeExecute,
  writeParse,
  writeSync,
} from "./_messages.ts";
import {
  firstKeyword,
  notASelectError,
  statementStart,
  WRAPPED_HOW,
  wrappedWrite,
} from "../_server_text.ts";
import { RowDecoder } from "./_row_decoder.ts";
import { PG_TYPE_LOOKUP_SQL, type PgTypeInfo, planColumns, type TypeLookup } from "./_types.ts";
import { Msg, type PgConnection } from "./wire.ts";
import { PROBE_ROWS } from "../_batch_sizing.ts";

const CURSOR = "_rivet";
/** What the user's query is wrapped in; server positions count from its first character. */
const DECLARE_PREFIX = `DECLARE ${CURSOR} NO SCROLL CURSOR FOR `;

/**
 * The rivet error of a failed DECLARE: positions are moved back into the user's query, and a
 * statement a cursor cannot hold (DELETE, UPDATE, INSERT, DDL, …; the parser stops at its first
 * word) is reported as not being a SELECT.
 *
 * @param conn The connection (error context).
 * @param fields The ErrorResponse.
 * @param sql The user's query.
 * @returns The error to throw.
 */
export function declareError(
  conn: PgConnection,
  fields: PgErrorFields,
  sql: string,
): RivetError {
  if (fields.code === "42601" && wrappedWrite(sql) !== undefined) {
    return notASelectError("PostgreSQL", sql, WRAPPED_HOW);
  }
  const at = Number(fields.position);
  if (!Number.isInteger(at) || at <= DECLARE_PREFIX.length) return conn.classify(fields);
  const position = at - DECLARE_PREFIX.length;
  // The server counts characters (code points); the leading blanks and comments are counted alike.
  const start = statementStart(sql);
  const keyword = firstKeyword(sql);
  if (
    fields.code === "42601" && keyword !== undefined && NOT_QUERIES.has(keyword) &&
    position === [...sql.slice(0, start)].length + 1
  ) {
    return notASelectError("PostgreSQL", sql, "a read cursor cannot run it");
  }
  if (fields.code === "42601" && /SELECT \.\.\. INTO is not allowed/.test(fields.message)) {
    return notASelectError("PostgreSQL", sql, "SELECT … INTO creates a table");
  }
  return conn.classify({ ...fields, position: String(position) });
}

/**
 * First words of PostgreSQL statements that are not queries (a cursor holds only SELECT, VALUES,
 * TABLE and WITH … SELECT). Any other first word that fails there is a typo: a syntax error.
 */
const NOT_QUERIES = new Set(
  ("INSERT UPDATE DELETE MERGE CREATE DROP ALTER TRUNCATE GRANT REVOKE COPY CALL DO SET RESET " +
    "BEGIN START COMMIT ROLLBACK END ABORT SAVEPOINT RELEASE PREPARE EXECUTE DEALLOCATE DISCARD " +
    "LOCK VACUUM ANALYZE CLUSTER REINDEX REFRESH COMMENT SECURITY IMPORT LISTEN NOTIFY UNLISTEN " +
    "CHECKPOINT LOAD REASSIGN EXPLAIN SHOW DECLARE FETCH MOVE CLOSE").split(" "),
);

/** Parses a `SHOW work_mem` answer (`4MB`, `64kB`, `1GB`, bare kB) into bytes. */
export function parseWorkMem(text: string): number {
  const m = /^\s*(\d+)\s*(kB|MB|GB|TB)?\s*$/i.exec(text);
  if (!m) return 4 * 1024 * 1024;
  const unit = (m[2] ?? "kB").toLowerCase();
  const mult = unit === "kb"
    ? 1024
    : unit === "mb"
    ? 1024 ** 2
    : unit === "gb"
    ? 1024 ** 3
    : 1024 ** 4;
  return Number(m[1]) * mult;
}

/**
 * Rows to ask for in the next FETCH.
 *
 * @param bytesPerRow Measured Arrow bytes per row of the previous batch.
 * @param limits Ceiling, memory target and work_mem.
 * @returns The fetch size.
 *
 * @example
 * ```ts
 * import { nextFetchSize } from "./read.ts";
 * const n = nextFetchSize(100, { batchSize: 10_000, batchMemoryBytes: 100_000, workMemBytes: 4 << 20 });
 * if (n !== 1000) throw new Error(String(n));
 * ```
 */
export function nextFetchSize(
  bytesPerRow: number,
  limits: { batchSize: number; batchMemoryBytes: number; workMemBytes: number },
): number {
  const bpr = Math.max(1, bytesPerRow);
  let n = limits.batchSize;
  if (limits.batchMemoryBytes > 0) n = Math.min(n, Math.floor(limits.batchMemoryBytes / bpr));
  if (limits.workMemBytes > 0) {
    n = Math.min(n, Math.floor((0.7 * limits.workMemBytes) / Math.max(64, bpr * 1.2)));
  }
  return Math.max(1, Math.min(Math.max(n, 100), limits.batchSize));
}

function toTextParam(v: ReadRequest["params"][number]): TextParam {
  if (v === null) return null;
  if (typeof v === "boolean") return v ? "true" : "false";
  return String(v);
}

function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** The `pg_type` lookup through a simple query on the same connection. */
export function catalogLookup(conn: PgConnection): TypeLookup {
  return async (oids) => {
    const out = new Map<number, PgTypeInfo>();
    if (oids.length === 0) return out;
    const ints = oids.map((o) => String(Math.trunc(o))).join(",");
    const res = await conn.query(PG_TYPE_LOOKUP_SQL.replace("$OIDS", ints));
    for (const r of res.rows) {
      out.set(Number(r[0]), {
        oid: Number(r[0]),
        name: r[1] ?? "",
        type: r[2] ?? "",
        baseOid: Number(r[3] ?? 0),
        baseTypmod: Number(r[4] ?? -1),
        elemOid: Number(r[5] ?? 0),
        category: r[6] ?? "",
      });
    }
    return out;
  };
}

/** Events of a read that the caller may want to know about. */
export interface ReadHooks {
  /** Called once when the read is over (success, error or cancel) and the connection is idle or closed. */
  readonly onDone?: () => void;
}

/**
 * Starts a cursor read on an idle connection.
 *
 * @param conn Logged-in, idle connection (owned by the caller; closed here only when broken).
 * @param request SQL and parameters.
 * @param options Tuning knobs, overrides and signal.
 * @param hooks Completion callback.
 * @returns Schema, column infos and a pull-based batch stream.
 */
export async function readQuery(
  conn: PgConnection,
  request: ReadRequest,
  options: ReadOptions,
  hooks: ReadHooks = {},
): Promise<BatchStream> {
  const signal = options.signal;
  signal?.throwIfAborted();
  let finished = false;
  const done = () => {
    if (finished) return;
    finished = true;
    signal?.removeEventListener("abort", onAbort);
    hooks.onDone?.();
  };
  let aborted = false;
  const onAbort = () => {
    aborted = true;
    void conn.cancel();
  };
  signal?.addEventListener("abort", onAbort, { once: true });

  const rollback = async () => {
    if (conn.broken) {
      conn.close();
      return;
    }
    try {
      await conn.query("ROLLBACK");
    } catch {
      conn.markBroken();
      conn.close();
    }
  };

  let fields: PgFieldDescription[];
  let workMemBytes: number;
  try {
    let setup = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;";
    if (options.statementTimeoutS > 0) {
      setup += ` SET LOCAL statement_timeout = ${quoteLiteral(`${options.statementTimeoutS}s`)};`;
    }
    if (options.lockTimeoutS > 0) {
      setup += ` SET LOCAL lock_timeout = ${quoteLiteral(`${options.lockTimeoutS}s`)};`;
    }
    setup += " SHOW work_mem";
    const res = await conn.query(setup);
    workMemBytes = parseWorkMem(res.rows[0]?.[0] ?? "4MB");

    const w = new MessageWriter();
    writeParse(w, DECLARE_PREFIX + request.sql);
    writeBind(w, request.params.map(toTextParam), []);
    writeExecute(w);
    writeDescribe(w, "P", CURSOR);
    writeSync(w);
    await conn.flush(w);
    fields = [];
    let error: PgErrorFields | undefined;
    for (;;) {
      const t = await conn.nextAsync();
      if (t === Msg.RowDescription) fields = conn.rowDescription();
      else if (t === Msg.Error) error ??= conn.errorFields();
      else if (t === Msg.ReadyForQuery) break;
    }
    if (error) throw declareError(conn, error, request.sql);
    if (aborted) signal?.throwIfAborted();
  } catch (error) {
    await rollback();
    done();
    if (aborted) signal?.throwIfAborted();
    throw error;
  }

  let plans;
  try {
    plans = await planColumns(fields, {
      overrides: options.columnOverrides,
      lookup: catalogLookup(conn),
    });
  } catch (error) {
    await rollback();
    done();
    throw error;
  }

  const decoder = new RowDecoder(plans.schema, plans.plans, {
    maxValueBytes: options.maxValueMb > 0 ? options.maxValueMb * 1024 * 1024 : 0,
  });
  const limits = {
    batchSize: Math.max(1, options.batchSize),
    batchMemoryBytes: options.batchMemoryBytes,
    workMemBytes,
  };
  const formats = plans.formats.every((f) => f === 1) ? [1] : plans.formats;
  const pipelining = options.throttleMs <= 0;
  const inflight: number[] = [];
  let nextSize = Math.min(PROBE_ROWS, limits.batchSize);
  let probed = false;
  let exhausted = false;
  let busy: Promise<unknown> = Promise.resolve();

  const sendFetch = async (rows: number) => {
    const w = new MessageWriter();
    writeParse(w, `FETCH ${rows} FROM ${CURSOR}`);
    writeBind(w, [], formats);
    writeExecute(w);
    writeSync(w);
    inflight.push(rows);
    await conn.flush(w);
  };

  /** Reads one fetch response; decodes rows when `decode`, else discards them. */
  const readFetch = async (decode: boolean): Promise<PgErrorFields | undefined> => {
    let error: PgErrorFields | undefined;
    for (;;) {
      const t = conn.next();
      if (t === Msg.DataRow) {
        if (decode && error === undefined) decoder.row(conn.buf, conn.view, conn.msgStart);
        continue;
      }
      if (t === -1) {
        await conn.fill();
        continue;
      }
      if (t === Msg.ReadyForQuery) break;
      if (t === Msg.Error) error ??= conn.errorFields();
    }
    inflight.shift();
    return error;
  };

  const drain = async () => {
    while (inflight.length > 0 && !conn.broken) await readFetch(false);
  };

  const finishOk = async () => {
    await drain();
    await conn.query(`CLOSE ${CURSOR}; COMMIT`);
  };

  const fail = async (error: unknown): Promise<never> => {
    if (!conn.broken) {
      try {
        await drain();
      } catch { /* the rollback below reports or closes */ }
    }
    await rollback();
    done();
    if (aborted && signal?.aborted) throw signal.reason;
    throw error;
  };

  const pullOnce = async (controller: ReadableStreamDefaultController<RecordBatch>) => {
    try {
      if (aborted) signal?.throwIfAborted();
      if (inflight.length === 0) await sendFetch(nextSize);
      const size = inflight[0]!;
      // Overlap: the server produces the next fetch while this one is decoded and consumed.
      if (pipelining && probed && inflight.length === 1) await sendFetch(nextSize);
      decoder.reset(size);
      const error = await readFetch(true);
      if (error) throw conn.classify(error);
      if (aborted) signal?.throwIfAborted();
      const rows = decoder.rows;
      probed = true;
      if (rows > 0) {
        nextSize = Math.max(
          1,
          Math.min(
            nextFetchSize(decoder.byteSize() / rows, limits),
            options.rowCap?.value ?? Infinity,
          ),
        );
      }
      if (rows < size) exhausted = true;
      conn.compactBuffer();
      if (rows > 0) controller.enqueue(decoder.finish());
      if (exhausted) {
        await finishOk();
        done();
        controller.close();
        return;
      }
      if (!pipelining) await sleep(options.throttleMs * rows / limits.batchSize, signal);
    } catch (error) {
      await fail(error);
    }
  };

  const batches = new ReadableStream<RecordBatch>({
    pull(controller) {
      const p = pullOnce(controller);
      busy = p.catch(() => {});
      return p;
    },
    async cancel() {
      if (finished) return;
      // A pull may be mid-flight: let it end (cancelling the statement speeds that up).
      await busy;
      if (finished) return;
      try {
        await drain();
        await conn.query(`CLOSE ${CURSOR}; ROLLBACK`);
      } catch {
        conn.markBroken();
        conn.close();
      }
      done();
    },
  }, { highWaterMark: 0 });

  return { schema: plans.schema, columns: plans.columns, batches };
}
