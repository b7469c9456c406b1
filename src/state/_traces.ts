/**
 * The statements of the {@linkcode RunTraces} role, shared by both backends: they differ only in
 * their parameter placeholders and in the column that records insertion order (SQLite's `rowid`,
 * PostgreSQL's `seq`).
 *
 * Layer: state (private).
 *
 * @module
 */
import type { RunTrace } from "../core/run_trace.ts";
import { RUN_TRACES_KEPT, type RunTraces, type SaveRunTraceOptions } from "../core/state.ts";
import { thisHost } from "./_claimer.ts";

/** One statement and its parameters. */
export interface TraceStatement {
  readonly sql: string;
  readonly params: readonly (string | number)[];
}

/** Runs statements on one backend; `save` runs its statements in one transaction. */
export interface TraceBackend {
  /** Runs the statements, in order, in one transaction. */
  write(statements: readonly TraceStatement[]): Promise<void>;
  /** The `trace_json` of the first row of a query, or undefined. */
  firstJson(statement: TraceStatement): Promise<string | undefined>;
  /** The `trace_json` of every row of a query. */
  allJson(statement: TraceStatement): Promise<string[]>;
}

/**
 * The role over a backend.
 *
 * @param backend Runs the statements.
 * @param placeholder The `i`th (0-based) parameter's placeholder (`?` or `$1`).
 * @param order The column of insertion order.
 * @returns The role's methods.
 */
export function runTraces(
  backend: TraceBackend,
  placeholder: (i: number) => string,
  order: string,
): RunTraces {
  const p = placeholder;
  const parse = (json: string | undefined): RunTrace | undefined =>
    json === undefined ? undefined : JSON.parse(json) as RunTrace;
  return {
    saveRunTrace(trace: RunTrace, options: SaveRunTraceOptions = {}) {
      const keep = Math.max(1, Math.trunc(options.keep ?? RUN_TRACES_KEPT));
      const host = trace.host ?? thisHost() ?? undefined;
      const stamped: RunTrace = {
        ...trace,
        ...(host === undefined ? {} : { host }),
        pid: trace.pid ?? Deno.pid,
      };
      // One row per process: a process saves its trace as it goes, replacing its own row.
      const key = [
        trace.runId,
        trace.exportName,
        `${host ?? ""}:${stamped.pid}:${trace.startedAt}`,
      ];
      return backend.write([
        {
          sql: `DELETE FROM run_trace WHERE run_id = ${p(0)} AND export_name = ${p(1)} ` +
            `AND writer = ${p(2)}`,
          params: key,
        },
        {
          sql: "INSERT INTO run_trace (run_id, export_name, writer, started_at, trace_json) " +
            `VALUES (${p(0)}, ${p(1)}, ${p(2)}, ${p(3)}, ${p(4)})`,
          params: [...key, trace.startedAt, JSON.stringify(stamped)],
        },
        {
          sql: `DELETE FROM run_trace WHERE export_name = ${p(0)} AND ${order} NOT IN ` +
            `(SELECT ${order} FROM run_trace WHERE export_name = ${p(1)} ` +
            `ORDER BY ${order} DESC LIMIT ${p(2)})`,
          params: [trace.exportName, trace.exportName, keep],
        },
      ]);
    },

    async readRunTrace(runId: string, exportName?: string) {
      const byExport = exportName === undefined ? "" : ` AND export_name = ${p(1)}`;
      return parse(
        await backend.firstJson({
          sql: `SELECT trace_json FROM run_trace WHERE run_id = ${p(0)}${byExport} ` +
            `ORDER BY ${order} DESC LIMIT 1`,
          params: exportName === undefined ? [runId] : [runId, exportName],
        }),
      );
    },

    async readRunTraces(runId: string, exportName: string) {
      const rows = await backend.allJson({
        sql: `SELECT trace_json FROM run_trace WHERE run_id = ${p(0)} AND export_name = ${
          p(1)
        } ORDER BY started_at, ${order}`,
        params: [runId, exportName],
      });
      return rows.map((json) => JSON.parse(json) as RunTrace);
    },

    async latestRunTrace(exportName: string) {
      return parse(
        await backend.firstJson({
          sql: `SELECT trace_json FROM run_trace WHERE export_name = ${p(0)} ` +
            `ORDER BY ${order} DESC LIMIT 1`,
          params: [exportName],
        }),
      );
    },
  };
}
