/**
 * `rivet doctor`: checks that a config can run before it does: the config parses, the source
 * accepts the login and answers `SELECT 1`, and every distinct destination accepts a
 * `.rivet_doctor_probe` object that is then deleted. One `[OK]`/`[FAIL]` line per check on stdout,
 * each failure followed by a `Hint:` line; exit 1 when any check fails.
 *
 * Destinations are resolved as `rivet run` resolves them today (`{date}` of today, UTC) and
 * deduplicated by root; a path that still holds `{run_id}` or `{partition}` (filled only while a
 * run writes) is probed at the folder above that token (`src/pipeline/destination_root.ts`). Each check has its own deadline
 * ({@linkcode DOCTOR_TIMEOUT_MS}) and is never retried: doctor fails fast. Messages pass through
 * the redactor, so no secret is printed.
 *
 * Layer: cli.
 *
 * @module
 */
import type { Destination } from "../../core/destination.ts";
import { InterruptedError, toErrorInfo, TransientError } from "../../core/errors.ts";
import type { ConfigSpec, DestinationSpec, SignalOptions } from "../../core/spec.ts";
import { checkRunnable, checkTlsPolicy, loadConfig, resolveConnection } from "../../config/mod.ts";
import { openSource } from "../../sources/mod.ts";
import { openDestination } from "../../destinations/mod.ts";
import { describeDestination, probeRoot } from "../../pipeline/destination_root.ts";
import { redact } from "../../_util/redact.ts";
import type { CommandContext } from "../main.ts";
import { reportError } from "../main.ts";
import { parseParams } from "./run.ts";

/** Options parsed for `rivet doctor`. */
export interface DoctorFlags {
  readonly config: string;
  /** `-p KEY=VALUE` (repeatable). */
  readonly param?: readonly string[];
}

/** Key of the object written then deleted at each destination root. */
export const PROBE_KEY = ".rivet_doctor_probe";
/** Deadline of one check (source login, or one destination probe). */
export const DOCTOR_TIMEOUT_MS = 15_000;

/** The outcome of one check, as printed. */
interface CheckResult {
  readonly ok: boolean;
  /** The text after `[OK] ` or `[FAIL] `. */
  readonly line: string;
  readonly hint?: string;
  /** `[note]` lines printed after the check. */
  readonly notes?: readonly string[];
}

/** Prints one check. Every line is redacted: messages may quote server text. */
function print(ctx: CommandContext, result: CheckResult): void {
  const lines = [`[${result.ok ? "OK" : "FAIL"}] ${result.line}`];
  if (result.hint) lines.push(`  Hint: ${result.hint}`);
  for (const note of result.notes ?? []) lines.push(`[note] ${note}`);
  ctx.io.out(lines.map((l) => redact(l).replace(/\s*\n\s*/g, " ")).join("\n") + "\n");
}

/**
 * Runs `work` with a deadline: it gets a signal that aborts on Ctrl-C or at the deadline, and
 * the check fails at the deadline even if `work` ignores the signal (a dial to a host that drops
 * packets). Work left behind disposes of what it opened once it settles.
 */
async function withDeadline<T>(
  ctx: CommandContext,
  what: string,
  work: (io: SignalOptions) => Promise<T>,
): Promise<T> {
  const deadline = new AbortController();
  const signal = AbortSignal.any([ctx.signal, deadline.signal]);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new TransientError(
        `${what} did not answer within ${DOCTOR_TIMEOUT_MS / 1000} s`,
        { code: "doctor.timeout" },
      );
      deadline.abort(error);
      reject(error);
    }, DOCTOR_TIMEOUT_MS);
  });
  const running = work({ signal });
  running.catch(() => {});
  try {
    return await Promise.race([running, timedOut]);
  } finally {
    clearTimeout(timer);
  }
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

/** A hint for a failed destination probe. */
function destinationHint(spec: DestinationSpec, info: { code: string; hint?: string }): string {
  if (info.hint) return info.hint;
  if (info.code === "doctor.timeout") {
    return "is the store reachable from here? check the endpoint and the network";
  }
  if (spec.kind === "local") {
    return `the folder must exist or be creatable, and be writable by this user: check ` +
      `destination.${spec.path !== undefined ? "path" : "prefix"}`;
  }
  return "check the bucket, the credentials and that they allow writing and deleting objects " +
    "under the prefix";
}

/** Writes the probe object and commits it. */
async function writeProbe(dest: Destination, io: SignalOptions): Promise<void> {
  const upload = await dest.create(PROBE_KEY, { ...io, overwrite: true });
  try {
    const writer = upload.writable.getWriter();
    await writer.write(
      new TextEncoder().encode(`rivet doctor probe ${new Date().toISOString()}\n`),
    );
    await writer.close();
    await upload.commit();
  } catch (error) {
    await upload.abort(error);
    throw error;
  }
}

/** One destination check: open, write the probe, delete it. */
async function checkDestination(
  spec: DestinationSpec,
  ctx: CommandContext,
  cwd: string,
): Promise<CheckResult> {
  const described = describeDestination(spec, cwd);
  // Set inside the deadline's callback, read after it failed.
  const progress: { stage: "write" | "remove" } = { stage: "write" };
  try {
    return await withDeadline(ctx, `The destination ${described}`, async (io) => {
      await using dest = await openDestination(spec, { baseDir: cwd });
      await writeProbe(dest, io);
      if (dest.remove === undefined) {
        return {
          ok: true,
          line: `destination: ${dest.uri} (wrote ${PROBE_KEY}; this destination cannot delete ` +
            "objects: remove it by hand)",
        };
      }
      progress.stage = "remove";
      await dest.remove(PROBE_KEY, io);
      return { ok: true, line: `destination: ${dest.uri} (wrote and removed ${PROBE_KEY})` };
    });
  } catch (error) {
    if (ctx.signal.aborted) throw new InterruptedError();
    const info = toErrorInfo(error);
    const left = progress.stage === "remove" ? ` (wrote ${PROBE_KEY} but could not remove it)` : "";
    return {
      ok: false,
      line: `destination: ${described}${left}: ${info.message}`,
      hint: progress.stage === "remove"
        ? `allow deleting objects there, then remove ${PROBE_KEY} by hand`
        : destinationHint(spec, info),
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

    const cwd = Deno.cwd();
    const at = new Date();
    const seen = new Set<string>();
    for (const exp of config.exports) {
      const spec = probeRoot(exp.destination, exp.name, at);
      const key = describeDestination(spec, cwd) + "\0" + JSON.stringify(identity(spec));
      if (seen.has(key)) continue;
      seen.add(key);
      if (spec.kind === "stdout") {
        print(ctx, { ok: true, line: "destination: stdout (nothing to probe)" });
        continue;
      }
      const checked = await checkDestination(spec, ctx, cwd);
      print(ctx, checked);
      ok &&= checked.ok;
    }
    return ok ? 0 : 1;
  } catch (error) {
    return reportError(error, ctx);
  }
}

/** What makes two destinations distinct beyond their root: the store and its credentials. */
function identity(spec: DestinationSpec): Partial<DestinationSpec> {
  if (spec.kind === "local" || spec.kind === "stdout") return { kind: spec.kind };
  const { path: _path, prefix: _prefix, ...rest } = spec;
  return rest;
}
