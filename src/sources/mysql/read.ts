/**
 * One read: `SET time_zone = '+00:00'` (plus the statement timeout when > 0: MySQL
 * `max_execution_time` in ms, MariaDB `max_statement_time` in s) → the statement is prepared, and
 * refused unless it returns rows → `START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT` in a
 * session set to `TRANSACTION READ ONLY` → one streaming binary-protocol statement (no server
 * cursor) → `COMMIT` (`ROLLBACK` on failure or cancel) → session variables back to their defaults,
 * on success, failure and cancel alike.
 *
 * Why three guards against a query that writes (`query: DELETE FROM t` must never run):
 * - the read-only transaction makes the server refuse any change to a table (error 1792), also
 *   from a stored function called by a SELECT, on every engine (InnoDB, MyISAM, Aria);
 * - DDL (`DROP`, `CREATE`, `TRUNCATE`, `ALTER`, `RENAME`) commits the open transaction implicitly
 *   and then runs outside it, so a read-only transaction alone does not stop it; the session's
 *   access mode does (`SET SESSION TRANSACTION READ ONLY`: MariaDB 10.11 refuses DDL with 1792
 *   under it). It is set before every read and left on: the connection only ever reads;
 * - the statement is prepared first, and one the server reports without result columns (DELETE,
 *   UPDATE, INSERT, DDL, CALL, SET, `SELECT … INTO`, MariaDB's `DELETE … RETURNING`) is refused
 *   before it runs, so a statement that could switch the session back to read-write never runs.
 *   (Wrapped by rivet's chunked or incremental SQL, such a statement is a syntax error instead,
 *   reported as the same refusal.)
 *
 * mysql2 parses nothing: its per-result row parser is replaced by ours, which decodes each row
 * packet straight into columnar builders. The schema is planned from the column definitions,
 * which arrive before any row; unsupported columns stop the statement before a row is delivered.
 *
 * Sizing and back-pressure: the first batch is a 500-row probe; afterwards a batch holds
 * clamp(memory target / measured Arrow bytes per row, 500, batchSize) rows. When a finished batch
 * waits for the consumer the driver socket is paused, so at most one batch is waiting while the
 * next one fills. Cancel or abort runs `KILL QUERY` from a second connection, then drains the
 * (discarded) rest so the connection stays usable.
 *
 * @module
 */
import { PROBE_ROWS, rowsAfterBatch } from "../_batch_sizing.ts";
import { BatchQueue, pumpBatches } from "../_batch_stream.ts";
import type { BatchStream, ReadOptions, ReadRequest } from "../../core/source.ts";
import type { Warning } from "../../core/spec.ts";
import { classifyMysqlError, type MysqlErrorContext } from "./_errors.ts";
import { RowDecoder } from "./_row_decoder.ts";
import { type ColumnPlans, type MysqlField, planColumns } from "./_types.ts";
import { type MysqlConnection, prepareColumns, runStatement } from "./connect.ts";
import { notASelectError, WRAPPED_HOW, wrappedWrite } from "../_server_text.ts";

/** Server family, from the handshake version string. */
export type MysqlFlavour = "mysql" | "mariadb";

/**
 * The server family of a handshake version such as `5.5.5-10.11.18-MariaDB-0+deb12u1`.
 *
 * @param version Server version string.
 * @returns `mariadb` or `mysql`.
 */
export function flavourOf(version: string | undefined): MysqlFlavour {
  return /mariadb/i.test(version ?? "") ? "mariadb" : "mysql";
}

/**
 * The session statements of a read: setup before, reset after.
 *
 * @param flavour Server family (decides the timeout variable and its unit).
 * @param statementTimeoutS Statement timeout in seconds (0 = none).
 * @returns The two statements.
 */
export function sessionStatements(
  flavour: MysqlFlavour,
  statementTimeoutS: number,
): { setup: string; reset: string } {
  const variable = flavour === "mariadb" ? "max_statement_time" : "max_execution_time";
  if (statementTimeoutS > 0) {
    const value = flavour === "mariadb"
      ? String(statementTimeoutS)
      : String(Math.max(1, Math.round(statementTimeoutS * 1000)));
    return {
      setup: `SET time_zone = '+00:00', SESSION ${variable} = ${value}`,
      reset: `SET time_zone = DEFAULT, SESSION ${variable} = DEFAULT`,
    };
  }
  return { setup: "SET time_zone = '+00:00'", reset: "SET time_zone = DEFAULT" };
}

/** Puts the session in read-only mode: DDL is refused too, not only DML (module comment). */
export const READ_ONLY_SESSION = "SET SESSION TRANSACTION READ ONLY";
/** Opens the read's transaction; MySQL 5.6.5+ and MariaDB accept both characteristics together. */
export const START_READ_ONLY = "START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT";

/** What a read needs from the source besides the connection. */
export interface ReadContext {
  readonly flavour: MysqlFlavour;
  /** Error message context. */
  readonly errors: MysqlErrorContext;
  /** Stops the running statement from another connection. */
  readonly killQuery: (threadId: number) => Promise<void>;
  /** Marks the connection unusable (it is destroyed; the next read reconnects). */
  readonly markBroken: () => void;
  /** Receives zero-date warnings. */
  readonly onWarning?: ((warning: Warning) => void) | undefined;
  /** Called once when the read is over and the connection is idle or destroyed. */
  readonly onDone?: () => void;
}

function toParam(v: ReadRequest["params"][number]): string | number | null {
  if (v === null) return null;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "bigint") return v.toString();
  return v;
}

/** A mysql2 row packet as our parser sees it. */
interface Packet {
  readonly buffer: Uint8Array;
  readonly offset: number;
}

/**
 * Starts a streaming read on an idle connection.
 *
 * @param conn Connected, idle mysql2 connection (owned by the caller).
 * @param request SQL and parameters (`?` placeholders, bound server-side).
 * @param options Tuning knobs, overrides and signal.
 * @param context Flavour, kill hook, warnings sink, completion callback.
 * @returns Schema, column infos and a pull-based batch stream.
 */
export async function readQuery(
  conn: MysqlConnection,
  request: ReadRequest,
  options: ReadOptions,
  context: ReadContext,
): Promise<BatchStream> {
  const signal = options.signal;
  signal?.throwIfAborted();
  const session = sessionStatements(context.flavour, options.statementTimeoutS);
  const classify = (e: unknown) => classifyMysqlError(e, context.errors);

  let finished = false;
  let broken = false;
  let aborted = false;
  // Registered only once the statement is under way (below), when `notify` and `stop` exist; a
  // read refused before that removes a listener that was never added, which is harmless.
  const onAbort = () => {
    aborted = true;
    notify();
    void stop();
  };
  const done = () => {
    if (finished) return;
    finished = true;
    signal?.removeEventListener("abort", onAbort);
    context.onDone?.();
  };
  const breakConnection = () => {
    broken = true;
    context.markBroken();
  };
  let inTransaction = false;
  /**
   * Ends the transaction and resets the session; a failure there makes the connection unusable,
   * not the read.
   */
  const resetSession = async (commit = false) => {
    if (broken) return;
    try {
      if (inTransaction) {
        inTransaction = false;
        await runStatement(conn, commit ? "COMMIT" : "ROLLBACK");
      }
      await runStatement(conn, session.reset);
    } catch {
      breakConnection();
    }
  };

  try {
    await runStatement(conn, session.setup);
  } catch (error) {
    done();
    throw classify(error);
  }
  let refusal: unknown;
  try {
    if (await prepareColumns(conn, request.sql) === 0) {
      refusal = notASelectError(
        "MySQL",
        request.sql,
        "the server reports no result columns for it",
      );
    } else {
      await runStatement(conn, READ_ONLY_SESSION);
      await runStatement(conn, START_READ_ONLY);
      inTransaction = true;
    }
  } catch (error) {
    const errno = (error as { errno?: unknown } | null)?.errno;
    refusal = errno === 1064 && wrappedWrite(request.sql) !== undefined
      ? notASelectError("MySQL", request.sql, WRAPPED_HOW)
      : classify(error);
  }
  if (refusal !== undefined) {
    try {
      if (!broken) conn.unprepare(request.sql);
    } catch { /* statement cache only */ }
    await resetSession();
    done();
    throw refusal;
  }

  // State shared by the driver callbacks and the stream.
  let decoder: RowDecoder | undefined;
  let plans: ColumnPlans | undefined;
  let discard = false;
  let ended = false;
  let driverError: unknown;
  let batchRows = Math.max(1, Math.min(PROBE_ROWS, options.batchSize));
  const queue = new BatchQueue({ pause: () => conn.pause(), resume: () => conn.resume() });
  const notify = () => queue.notify();
  const limits = {
    batchSize: Math.max(1, options.batchSize),
    batchMemoryBytes: options.batchMemoryBytes,
  };
  let decodeError: unknown;

  const cutBatch = () => {
    const d = decoder!;
    batchRows = rowsAfterBatch(d.byteSize(), d.rows, limits, options.rowCap);
    queue.push(d.finish());
    d.reset(batchRows);
  };

  // Our row parser: mysql2 calls `next` for every row packet of the result.
  class RowSink {
    next(packet: Packet): null {
      if (discard || decoder === undefined) return null;
      try {
        decoder.row(packet.buffer, packet.offset);
      } catch (error) {
        // A value we refuse (e.g. out-of-range TIME): stop decoding, cancel the statement.
        decodeError = error;
        discard = true;
        notify();
        return null;
      }
      if (decoder.rows >= batchRows) {
        cutBatch();
      }
      return null;
    }
  }

  const cmd = conn.execute({ sql: request.sql, values: request.params.map(toParam) });
  cmd.buildParserFromFields = () => RowSink;
  // A fatal socket error while a command without callback runs is emitted on the connection,
  // not on the command (mysql2 `_notifyError`), so both are watched.
  let unwatch = () => {};
  const over = new Promise<void>((resolve) => {
    const finish = (error?: unknown) => {
      if (error !== undefined) driverError ??= error;
      if (ended) return;
      ended = true;
      unwatch();
      notify();
      resolve();
    };
    const onConnError = (error: unknown) => {
      breakConnection();
      finish(error);
    };
    const onConnEnd = () => {
      breakConnection();
      finish({
        code: "PROTOCOL_CONNECTION_LOST",
        fatal: true,
        message: "the server closed the connection",
      });
    };
    conn.on("error", onConnError);
    conn.on("end", onConnEnd);
    unwatch = () => {
      conn.removeListener("error", onConnError);
      conn.removeListener("end", onConnEnd);
    };
    cmd.on("end", () => finish());
    cmd.on("error", (error: unknown) => finish(error));
  });
  // Plan synchronously in the `fields` callback: the rows of a small result follow in the same
  // socket chunk, before any promise continuation could run.
  let planError: unknown;
  const onFields = (fields: readonly MysqlField[] | undefined) => {
    if (plans !== undefined || planError !== undefined) {
      // A second result (the closing status of a multi-result statement) or result set: the
      // prepare check lets no such statement through; refuse rather than mix two schemas.
      if (fields !== undefined) {
        decodeError ??= notASelectError(
          "MySQL",
          request.sql,
          "it returned more than one result",
          true,
        );
        discard = true;
      }
      return;
    }
    if (fields === undefined) {
      // An OK packet (affected rows) instead of a result set.
      planError = notASelectError(
        "MySQL",
        request.sql,
        "the server answered with a row count",
        true,
      );
      discard = true;
      return;
    }
    try {
      plans = planColumns(fields, options.columnOverrides);
      decoder = new RowDecoder(plans.schema, plans.plans, {
        maxValueBytes: options.maxValueMb > 0 ? options.maxValueMb * 1024 * 1024 : 0,
      });
      decoder.reset(batchRows);
    } catch (error) {
      planError = error;
      discard = true;
    }
  };
  const fieldsKnown = new Promise<boolean>((resolve) => {
    cmd.on("fields", (fields: readonly MysqlField[] | undefined) => {
      onFields(fields);
      resolve(true);
    });
    void over.then(() => resolve(false));
  });

  /** Stops the statement (if running) and waits until the connection is idle again. */
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      discard = true;
      if (!ended) {
        const threadId = conn.threadId;
        try {
          if (threadId === null) throw new Error("no thread id");
          await context.killQuery(threadId);
        } catch {
          breakConnection();
        }
        queue.resumeDriver();
        if (!broken) await over;
      }
    })();
    return stopping;
  };

  signal?.addEventListener("abort", onAbort, { once: true });

  let closing: Promise<void> | undefined;
  /** Ends the read once; `commit` after a statement that completed without error. */
  const closeOut = (commit = false): Promise<void> => (closing ??= closeOnce(commit));
  const closeOnce = async (commit: boolean): Promise<void> => {
    await resetSession(commit);
    try {
      if (!broken) conn.unprepare(request.sql);
    } catch { /* statement cache only */ }
    if (decoder && context.onWarning && plans) {
      decoder.zeroDates.forEach((count, i) => {
        if (count === 0) return;
        const col = plans!.columns[i]!;
        context.onWarning!({
          code: "source.zero_date",
          message: `Column '${col.name}' (${col.nativeType}) held ${count} zero date` +
            `${count === 1 ? "" : "s"} (0000-00-00), exported as NULL; fix the rows or use ` +
            `NULLIF(${col.name}, '0000-00-00') in the query to make this explicit`,
        });
      });
    }
    done();
  };

  const fail = async (error: unknown): Promise<never> => {
    await stop();
    await closeOut();
    if (aborted && signal?.aborted) throw signal.reason;
    throw error;
  };

  // Schema first: wait for the column definitions (or the end of a statement without a result).
  const hasFields = await fieldsKnown;
  if (aborted) await fail(signal?.reason);
  if (planError !== undefined) await fail(planError);
  if (!hasFields) {
    if (driverError !== undefined) await fail(classify(driverError));
    await fail(notASelectError("MySQL", request.sql, "the server sent no result set", true));
  }

  const batches = pumpBatches({
    queue,
    aborted: () => aborted,
    decodeError: () => decodeError,
    ended: () => ended,
    endError: () => {
      if (driverError === undefined) return undefined;
      const e = classify(driverError);
      if (e.exitCode === 2 && e.code === "source.connection_lost") breakConnection();
      return e;
    },
    tail: () => decoder!.rows > 0 ? decoder!.finish() : undefined,
    fail,
    complete: () => closeOut(true),
    stopNow: () => void stop(),
    closeCancelled: async () => {
      await stop();
      await closeOut();
    },
    closed: () => finished,
    throttle: { ms: options.throttleMs, batchSize: limits.batchSize },
    signal,
  });

  return { schema: plans!.schema, columns: plans!.columns, batches };
}
