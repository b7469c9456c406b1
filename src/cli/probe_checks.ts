/**
 * The probes `rivet doctor` and `rivet check` share: a deadline around one check, the printed
 * `[OK]`/`[FAIL]` line with its `Hint:`, the destination credentials probe (write a
 * `.rivet_doctor_probe` object at each distinct destination root, then delete it), and the
 * format's judgement of a probed schema (also `rivet plan`'s).
 *
 * Each check has its own deadline ({@linkcode DOCTOR_TIMEOUT_MS}) and is never retried: the
 * probes fail fast. Printed lines pass through the redactor, so no secret is printed.
 *
 * Layer: cli.
 *
 * @module
 */
import type { Schema } from "../core/arrow.ts";
import type { Destination } from "../core/destination.ts";
import { InterruptedError, toErrorInfo, TransientError } from "../core/errors.ts";
import type { DestinationSpec, ExportSpec, SignalOptions } from "../core/spec.ts";
import type { ExportJob } from "../core/job.ts";
import { openDestination } from "../destinations/mod.ts";
import { createFormat } from "../formats/mod.ts";
import { describeDestination, probeRoot } from "../pipeline/destination_root.ts";
import { redact } from "../_util/redact.ts";
import type { CommandContext } from "./main.ts";

/** The format's own judgement of the probed schema: CSV refuses lists, for one. */
export function formatCheck(job: ExportJob): (schema: Schema) => Promise<void> {
  return async (schema) => {
    const format = await createFormat(job.spec.format);
    const encoder = format.createEncoder(schema, new WritableStream());
    await encoder.abort().catch(() => {});
  };
}

/** Key of the object written then deleted at each destination root. */
export const PROBE_KEY = ".rivet_doctor_probe";
/** Deadline of one check (source login, or one destination probe). */
export const DOCTOR_TIMEOUT_MS = 15_000;

/** The outcome of one check, as printed. */
export interface CheckResult {
  readonly ok: boolean;
  /** The text after `[OK] ` or `[FAIL] `. */
  readonly line: string;
  readonly hint?: string;
  /** `[note]` lines printed after the check. */
  readonly notes?: readonly string[];
}

/** Prints one check. Every line is redacted: messages may quote server text. */
export function printCheck(ctx: CommandContext, result: CheckResult): void {
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
export async function withDeadline<T>(
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
export async function checkDestination(
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
 * Probes every distinct destination of the exports (deduplicated by root and credentials;
 * `{date}` is today, UTC), handing each result to `report` as it completes.
 *
 * @param exports The exports whose destinations to probe.
 * @param ctx Abort signal.
 * @param report Called once per distinct destination.
 * @returns Whether every probe passed.
 */
export async function checkDestinations(
  exports: readonly ExportSpec[],
  ctx: CommandContext,
  report: (result: CheckResult) => void,
): Promise<boolean> {
  const cwd = Deno.cwd();
  const at = new Date();
  const seen = new Set<string>();
  let ok = true;
  for (const exp of exports) {
    const spec = probeRoot(exp.destination, exp.name, at);
    const key = describeDestination(spec, cwd) + "\0" + JSON.stringify(identity(spec));
    if (seen.has(key)) continue;
    seen.add(key);
    if (spec.kind === "stdout") {
      report({ ok: true, line: "destination: stdout (nothing to probe)" });
      continue;
    }
    const checked = await checkDestination(spec, ctx, cwd);
    report(checked);
    ok &&= checked.ok;
  }
  return ok;
}

/** What makes two destinations distinct beyond their root: the store and its credentials. */
function identity(spec: DestinationSpec): Partial<DestinationSpec> {
  if (spec.kind === "local" || spec.kind === "stdout") return { kind: spec.kind };
  const { path: _path, prefix: _prefix, ...rest } = spec;
  return rest;
}
