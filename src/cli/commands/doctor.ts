/**
 * `rivet doctor`: checks that a config can run before it does: the config parses, the source
 * accepts the login and answers `SELECT 1`, each export's query runs for no row (so a missing
 * table, column or privilege, or a column type rivet cannot export, fails here and not in the
 * run), and every distinct destination accepts a `.rivet_doctor_probe` object that is then
 * deleted. One `[OK]`/`[FAIL]` line per check on stdout,
 * each failure followed by a `Hint:` line; exit 1 when any check fails.
 *
 * Destinations are resolved as `rivet run` resolves them today (`{date}` of today, UTC) and
 * deduplicated by root; a path that still holds `{run_id}` or `{partition}` (filled only while a
 * run writes) is probed at the folder above that token (`src/pipeline/destination_root.ts`). The
shared probes live in `cli/probe_checks.ts`. Each check has its own deadline
 * ({@linkcode DOCTOR_TIMEOUT_MS}) and is never retried: doctor fails fast. Messages pass through
 * the redactor, so no secret is printed.
 *
 * Layer: cli.
 *
 * @module
 */
import { InterruptedError, toErrorInfo } from "../../core/errors.ts";
import type { ConfigSpec } from "../../core/spec.ts";
import { checkRunnable, checkTlsPolicy, loadConfig, resolveConnection } from "../../config/mod.ts";
import { processEnv } from "../../engines/openers.ts";
import { openSource } from "../../sources/mod.ts";
import { checkCdcReady } from "../../sources/cdc.ts";
import { cdcReaderNames, cdcTableRef } from "../../core/cdc.ts";
import { probeAccess } from "../../pipeline/preflight.ts";
import { resolveJob } from "../../plan/resolve.ts";
import type { CommandContext } from "../main.ts";
import { reportError } from "../main.ts";
import {
  checkDestinations,
  type CheckResult,
  DOCTOR_TIMEOUT_MS,
  formatCheck,
  printCheck as print,
  withDeadline,
} from "../probe_checks.ts";
import { parseParams } from "./run.ts";

export { DOCTOR_TIMEOUT_MS, PROBE_KEY } from "../probe_checks.ts";

/** Options parsed for `rivet doctor`. */
export interface DoctorFlags {
  readonly config: string;
  /** `-p KEY=VALUE` (repeatable). */
  readonly param?: readonly string[];
}

/**
 * The config check: parse and validate, then the judgement `rivet run` applies before running
 * (support gate and plan checks, via the shared `checkRunnable`) over every export.
 */
async function checkConfig(
  flags: DoctorFlags,
  ctx: CommandContext,
): Promise<{ result: CheckResult; config?: ConfigSpec }> {
  const params = parseParams(flags.param ?? []);
  try {
    const config = await loadConfig(flags.config, { params, signal: ctx.signal });
    const { warnings } = checkRunnable(config, config.exports, { resume: false });
    const n = config.exports.length;
    return {
      config,
      result: {
        ok: true,
        line: `config: ${config.path} (${n} export${n === 1 ? "" : "s"})`,
        notes: [...config.warnings.map((w) => w.message), ...warnings].map((w) => `config: ${w}`),
      },
    };
  } catch (error) {
    if (ctx.signal.aborted) throw new InterruptedError();
    const info = toErrorInfo(error);
    return {
      result: {
        ok: false,
        line: `config: ${info.message}`,
        hint: info.hint ?? "fix the config file, then run rivet doctor again",
      },
    };
  }
}

/** Where the source's host, port and credentials are configured, for hints. */
function sourceKeys(config: ConfigSpec): { endpoint: string; credentials: string } {
  const c = config.source.connection;
  switch (c.form) {
    case "url":
      return { endpoint: "in source.url", credentials: "the user and password in source.url" };
    case "url_env":
      return {
        endpoint: `in the URL of $${c.env} (source.url_env)`,
        credentials: `the user and password in the URL of $${c.env} (source.url_env)`,
      };
    case "url_file":
      return {
        endpoint: `in the URL of source.url_file '${c.path}'`,
        credentials: `the user and password in the URL of source.url_file '${c.path}'`,
      };
    case "structured":
      return {
        endpoint: "source.host and source.port",
        credentials: c.passwordEnv !== undefined
          ? `source.user and the password in $${c.passwordEnv} (source.password_env)`
          : c.password !== undefined
          ? "source.user and source.password"
          : "source.user, and set source.password_env: no password is configured",
      };
  }
}

/** A hint for a failed source check, by error code: what to look at, naming the config keys. */
function sourceHint(config: ConfigSpec, info: { code: string; hint?: string }): string {
  const keys = sourceKeys(config);
  const code = info.code;
  if (
    code === "source.connection_refused" || code === "source.connect_failed" ||
    code === "source.connection_lost" || code === "source.server_unavailable" ||
    code === "doctor.timeout"
  ) {
    return `is the server running? check host/port (${keys.endpoint}) and that it is reachable ` +
      "from here";
  }
  if (code === "source.auth_failed") return `check ${keys.credentials}, and the role's login`;
  if (code === "source.tls_required") return info.hint ?? "add a source.tls block";
  if (code.startsWith("source.tls_")) {
    return "check the source.tls block (mode, ca_file) against the server's TLS setup";
  }
  return info.hint ?? "check the source block of the config";
}

/** The source check: connect, log in, `SELECT 1`. */
async function checkSource(config: ConfigSpec, ctx: CommandContext): Promise<CheckResult> {
  const notes: string[] = [];
  try {
    const connection = await resolveConnection(config.source, { configDir: config.dir });
    const host = connection.host.includes(":") ? `[${connection.host}]` : connection.host;
    const where = `${config.source.kind} ${host}:${connection.port}/${connection.database}`;
    for (const w of checkTlsPolicy(connection, config.source.tls, config.source.kind).warnings) {
      notes.push(`source: ${w}`);
    }
    await withDeadline(ctx, `The source at ${host}:${connection.port}`, async (io) => {
      await using source = await openSource(config.source, connection, {
        ...io,
        onWarning: (w) => notes.push(`source: ${w.message}`),
      });
      await source.ping(io);
    });
    return { ok: true, line: `source: ${where} (login and SELECT 1)`, notes };
  } catch (error) {
    if (ctx.signal.aborted) throw new InterruptedError();
    const info = toErrorInfo(error);
    return {
      ok: false,
      line: `source: ${info.message}`,
      hint: sourceHint(config, info),
      notes,
    };
  }
}

/**
 * Runs `rivet doctor`: the config check, then (when it parses) the source check and one probe
 * per distinct destination, printing each result as it completes.
 *
 * @param flags `-c` and `-p`.
 * @param ctx Output and abort signal.
 * @returns 0 when every check passed, 1 when any failed (130 when interrupted).
 */
export async function doctorCommand(flags: DoctorFlags, ctx: CommandContext): Promise<number> {
  try {
    const { result, config } = await checkConfig(flags, ctx);
    print(ctx, result);
    if (config === undefined) return 1;
    let ok = true;
    const source = await checkSource(config, ctx);
    print(ctx, source);
    ok &&= source.ok;
    if (source.ok) {
      const params = parseParams(flags.param ?? []);
      for (const exp of config.exports) {
        const checked = await checkExport(config, exp, params, ctx);
        print(ctx, checked);
        ok &&= checked.ok;
      }
    }
    ok = await checkDestinations(config.exports, ctx, (r) => print(ctx, r)) && ok;
    return ok ? 0 : 1;
  } catch (error) {
    return reportError(error, ctx);
  }
}

/**
 * One export's access probe: its query run for no row, through a connection of its own, within
 * the check deadline.
 */
async function checkExport(
  config: ConfigSpec,
  exp: ConfigSpec["exports"][number],
  params: Record<string, string>,
  ctx: CommandContext,
): Promise<CheckResult> {
  const name = `export '${exp.name}'`;
  try {
    const job = await resolveJob(config, exp, { params, cwd: Deno.cwd(), env: processEnv });
    const access = await withDeadline(ctx, `The query of ${name}`, async (io) => {
      await using source = await openSource(config.source, job.connection, {
        ...io,
        onWarning: () => {},
      });
      return await probeAccess(source, job, { ...io, statementTimeoutS: DOCTOR_TIMEOUT_MS / 1000 });
    });
    const problem = access.error ?? access.unsupported;
    // The query runs, but the format must also take what it returns (CSV refuses lists).
    if (problem === undefined && access.schema) await formatCheck(job)(access.schema);
    if (problem === undefined) {
      const n = access.columns.length;
      const runs = `${name}: query runs (${n} column${n === 1 ? "" : "s"})`;
      if (exp.mode !== "cdc") return { ok: true, line: runs };
      // A change stream needs more than SELECT: server settings, privileges, the reader's names.
      const ready = await withDeadline(
        ctx,
        `The change capture check of ${name}`,
        (io) =>
          checkCdcReady(config.source, job.connection, {
            tables: [cdcTableRef(exp)],
            ...cdcReaderNames(exp.cdc),
            columnOverrides: exp.columns,
            ...io,
          }),
      );
      return { ok: true, line: `${runs}; ${ready}` };
    }
    return exportFailure(name, problem);
  } catch (error) {
    if (ctx.signal.aborted) throw new InterruptedError();
    return exportFailure(name, toErrorInfo(error));
  }
}

/** A failed export probe; the message names the export once. */
function exportFailure(name: string, info: { message: string; hint?: string }): CheckResult {
  const message = info.message.startsWith(`${name}: `)
    ? info.message.slice(name.length + 2)
    : info.message;
  return {
    ok: false,
    line: `${name}: ${message}`,
    ...(info.hint ? { hint: info.hint } : {}),
  };
}
