/**
 * One read on SQL Server: `SET TRANSACTION ISOLATION LEVEL SNAPSHOT` (READ COMMITTED when the
 * database does not allow snapshots), `SET LOCK_TIMEOUT`, `BEGIN TRANSACTION` → the statement
 * (tedious `execSql`, i.e. `sp_executesql`) → `ROLLBACK`, on success, failure and cancel alike.
 *
 * Why a transaction that always rolls back: SQL Server has no read-only transaction, so a query
 * that writes (a `SELECT … INTO`, a function with side effects, a `query:` that is really a
 * `DELETE`) is undone, whatever it was. Two checks keep most of them from running at all: a
 * statement that starts with a writing keyword (`INSERT`, `DELETE`, `DROP`, `EXEC`, …) is refused
 * before it is sent, and one that answers without a result set is refused (after the rollback).
 *
 * tedious' own value parser is replaced for the types that must stay exact (`_decode.ts`); each
 * `row` event's values go straight into columnar builders (`_batch.ts`) and the row array is
 * dropped. The schema is planned from COLMETADATA, before any row; an unsupported column
 * (sql_variant, geography, geometry, hierarchyid) cancels the statement before a row is kept.
 *
 * Sizing and back-pressure: the first batch is a 500-row probe; afterwards a batch holds
 * clamp(memory target / measured Arrow bytes per row, 500, batchSize) rows. When a finished batch
 * waits for the consumer the request is paused (tedious stops reading the socket), so at most one
 * batch waits while the next fills. Cancel, abort and the statement timeout send an ATTENTION
 * (tedious `cancel`); the server stops the statement and the connection stays usable.
 *
 * @module
 */
import { Request } from "tedious";
import { PROBE_ROWS, rowsAfterBatch } from "../_batch_sizing.ts";
import { BatchQueue, pumpBatches } from "../_batch_stream.ts";
import type { BatchStream, ColumnInfo, ReadOptions, ReadRequest } from "../../core/source.ts";
import type { Warning } from "../../core/spec.ts";
import { firstKeyword, notASelectError } from "../_server_text.ts";
import { classifyMssqlError, type MssqlErrorContext } from "./_errors.ts";
import { MssqlBatchBuilder, mssqlSchema } from "./_batch.ts";
import { type MssqlColumnMeta, mssqlColumns } from "./_types.ts";
import { type MssqlConnection, runBatch } from "./connect.ts";

/**
 * The session batch sent before each read.
 *
 * @param snapshot Whether the database allows snapshot isolation.
 * @param lockTimeoutS `lock_timeout_s` (0 = wait forever, SQL Server's default).
 * @returns One T-SQL batch.
 *
 * @example
 * ```ts
 * import { sessionSetup } from "./read.ts";
 * if (!sessionSetup(true, 5).includes("SET LOCK_TIMEOUT 5000")) throw new Error();
 * ```
 */
export function sessionSetup(snapshot: boolean, lockTimeoutS: number): string {
  const lockMs = lockTimeoutS > 0 ? Math.max(1, Math.round(lockTimeoutS * 1000)) : -1;
  return `SET TRANSACTION ISOLATION LEVEL ${snapshot ? "SNAPSHOT" : "READ COMMITTED"}; ` +
    `SET LOCK_TIMEOUT ${lockMs}; BEGIN TRANSACTION;`;
}

/** Ends the read's transaction whatever happened in it. */
export const END_READ = "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION;";

/** What a read needs from the source besides the connection. */
export interface ReadContext {
  /** Whether the database allows `SNAPSHOT` isolation. */
  readonly snapshot: boolean;
  /** Error message context. */
  readonly errors: MssqlErrorContext;
  /** Marks the connection unusable (it is closed; the next read reconnects). */
  readonly markBroken: () => void;
  /** Receives warnings (truncated 100-ns digits). */
  readonly onWarning?: ((warning: Warning) => void) | undefined;
  /** Called once when the read is over and the connection is idle or closed. */
  readonly onDone?: () => void;
}

/**
 * Statements refused before they reach the server: they change data, schema, permissions or the
 * server. Anything else goes to the server (a typo then gets SQL Server's own syntax error), and
 * the rollback and the result-set check catch what this list does not.
 */
const WRITE_KEYWORDS = new Set([
  "INSERT",
  "UPDATE",
  "DELETE",
  "MERGE",
  "TRUNCATE",
  "CREATE",
  "ALTER",
  "DROP",
  "GRANT",
  "REVOKE",
  "DENY",
  "EXEC",
  "EXECUTE",
  "BULK",
  "BACKUP",
  "RESTORE",
  "DBCC",
  "KILL",
  "SHUTDOWN",
  "RECONFIGURE",
  "USE",
  "SET",
  "COMMIT",
  "ROLLBACK",
  "BEGIN",
  "SAVE",
  "DISABLE",
  "ENABLE",
  "CHECKPOINT",
]);

/**
 * Starts a streaming read on an idle connection.
 *
 * @param conn Logged-in, idle tedious connection (owned by the caller).
 * @param request SQL (rivet's SQL Server SQL carries its values inline: no parameters).
 * @param options Tuning knobs, overrides and signal.
 * @param context Snapshot support, names for messages, warnings sink, completion callback.
 * @returns Schema, column infos and a pull-based batch stream.
 */
export async function readQuery(
  conn: MssqlConnection,
  request: ReadRequest,
  options: ReadOptions,
  context: ReadContext,
): Promise<BatchStream> {
  const signal = options.signal;
  signal?.throwIfAborted();
  const classify = (e: unknown) => classifyMssqlError(e, context.errors);
  let aborted = false;
  // Declared before anything can end the read (`done` removes it); it only runs once it is
  // registered, after the statement was sent.
  const onAbort = () => {
    aborted = true;
    cancelStatement();
    notify();
  };
  let finished = false;
  const done = () => {
    if (finished) return;
    finished = true;
    signal?.removeEventListener("abort", onAbort);
    context.onDone?.();
  };
  if (request.params.length > 0) {
    done();
    throw new Error("SQL Server reads take no bind parameters; values are written inline");
  }
  const keyword = firstKeyword(request.sql);
  if (keyword !== undefined && WRITE_KEYWORDS.has(keyword)) {
    done();
    throw notASelectError("SQL Server", request.sql, `a ${keyword} statement changes state`);
  }

  let broken = false;
  const breakConnection = () => {
    broken = true;
    context.markBroken();
  };
  try {
    await runBatch(conn, sessionSetup(context.snapshot, options.lockTimeoutS), context.errors);
  } catch (error) {
    await runBatch(conn, END_READ, context.errors).catch(breakConnection);
    done();
    throw classify(error);
  }

  // State shared by the driver callbacks and the stream.
  let builder: MssqlBatchBuilder | undefined;
  let columns: readonly ColumnInfo[] | undefined;
  let schema: BatchStream["schema"] | undefined;
  let discard = false;
  let ended = false;
  let driverError: unknown;
  let planError: unknown;
  let decodeError: unknown;
  let batchRows = Math.max(1, Math.min(PROBE_ROWS, options.batchSize));
  const queue = new BatchQueue({ pause: () => req.pause(), resume: () => req.resume() });
  const notify = () => queue.notify();
  const limits = {
    batchSize: Math.max(1, options.batchSize),
    batchMemoryBytes: options.batchMemoryBytes,
  };

  let resolveFields!: (known: boolean) => void;
  const fieldsKnown = new Promise<boolean>((resolve) => (resolveFields = resolve));
  let resolveOver!: () => void;
  const over = new Promise<void>((resolve) => (resolveOver = resolve));

  const req = new Request(request.sql, (error) => {
    if (error) driverError ??= error;
    ended = true;
    resolveFields(columns !== undefined);
    notify();
    resolveOver();
  });
  if (options.statementTimeoutS > 0) req.setTimeout(Math.round(options.statementTimeoutS * 1000));

  const cancelStatement = () => {
    discard = true;
    if (ended) return;
    queue.resumeDriver();
    try {
      conn.cancel();
    } catch {
      breakConnection();
    }
  };

  req.on("columnMetadata", (meta: unknown) => {
    if (columns !== undefined || planError !== undefined) {
      decodeError ??= notASelectError(
        "SQL Server",
        request.sql,
        "it returned more than one result",
        true,
      );
      cancelStatement();
      return;
    }
    try {
      const planned = mssqlColumns(
        meta as readonly MssqlColumnMeta[],
        options.columnOverrides,
      );
      schema = mssqlSchema(planned);
      columns = planned;
      builder = new MssqlBatchBuilder(planned, schema, {
        maxValueBytes: options.maxValueMb > 0 ? options.maxValueMb * 1024 * 1024 : 0,
        rows: batchRows,
      });
      resolveFields(true);
    } catch (error) {
      planError = error;
      resolveFields(false);
      cancelStatement();
    }
  });

  const cutBatch = () => {
    const b = builder!;
    batchRows = rowsAfterBatch(b.byteSize(), b.rows, limits, options.rowCap);
    queue.push(b.finish());
  };

  req.on("row", (values: readonly { value: unknown }[]) => {
    if (discard || builder === undefined) return;
    try {
      builder.appendRow(values);
    } catch (error) {
      decodeError = error;
      cancelStatement();
      notify();
      return;
    }
    if (builder.rows >= batchRows) {
      cutBatch();
    }
  });

  signal?.addEventListener("abort", onAbort, { once: true });

  try {
    conn.execSql(req);
  } catch (error) {
    await runBatch(conn, END_READ, context.errors).catch(breakConnection);
    done();
    throw classify(error);
  }

  let closing: Promise<void> | undefined;
  const closeOut = (): Promise<void> => (closing ??= closeOnce());
  const closeOnce = async (): Promise<void> => {
    if (!broken) {
      try {
        await runBatch(conn, END_READ, context.errors);
      } catch {
        breakConnection();
      }
    }
    if (builder && context.onWarning) {
      for (const name of builder.truncated()) {
        context.onWarning({
          code: "source.time_truncated",
          message: `Column '${name}' held values with 100-ns digits; exported with microsecond ` +
            `precision (truncated). Add \`columns: {${name}: timestamp_ns}\` to keep them ` +
            "(and to make an incremental cursor on it exact)",
        });
      }
    }
    done();
  };

  const fail = async (error: unknown): Promise<never> => {
    cancelStatement();
    await over;
    await closeOut();
    if (aborted && signal?.aborted) throw signal.reason;
    throw error;
  };

  const driverFailure = (): unknown => {
    const e = classify(driverError);
    if (e.exitCode === 2 && e.code === "source.connection_lost") breakConnection();
    return e;
  };

  // Schema first: wait for the column metadata (or the end of a statement without a result).
  const hasFields = await fieldsKnown;
  if (aborted) await fail(signal?.reason);
  if (planError !== undefined) await fail(planError);
  if (!hasFields) {
    if (driverError !== undefined) await fail(driverFailure());
    await fail(
      notASelectError("SQL Server", request.sql, "the server sent no result set", true),
    );
  }

  const batches = pumpBatches({
    queue,
    aborted: () => aborted,
    decodeError: () => decodeError,
    ended: () => ended,
    endError: () => driverError === undefined ? undefined : driverFailure(),
    tail: () => builder!.rows > 0 ? builder!.finish() : undefined,
    fail,
    complete: closeOut,
    stopNow: cancelStatement,
    closeCancelled: async () => {
      await over;
      await closeOut();
    },
    closed: () => finished,
    throttle: { ms: options.throttleMs, batchSize: limits.batchSize },
    signal,
  });

  return { schema: schema!, columns: columns!, batches };
}
