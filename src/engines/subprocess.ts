/**
 * `--parallel-export-processes`: each export runs in a child process of rivet itself, so a
 * crash, a kill or an out-of-memory abort takes down one export and never its siblings.
 *
 * How a child is started:
 * - under `deno run`: `deno run --allow-*=<only what this export needs> cli.ts run -c <config>
 *   -e <name> --events ndjson --process-child flags`; Deno refuses (`NotCapable`) any other
 *   host, path or variable;
 * - as a compiled binary (`Deno.build.standalone`), which takes no permission flags at run time:
 *   `<binary> run -c <config> -e <name> --events ndjson --process-child worker`; the child runs the
 *   export in a Web Worker whose `deno.permissions` are the same narrow lists
 *   (`export_worker.ts`).
 * Each child gets a cleared environment holding only the runtime's own variables and those its
 * export may read, stdout and stderr piped, and on stdin a pipe the parent never writes to: when
 * the parent dies, however it dies, the pipe ends and the child seals its writes, cancels its
 * queries and exits within a second (`parent_watch.ts`), so a SIGKILLed parent leaves no child
 * holding database sessions or committing files.
 *
 * A child reports on stdout as NDJSON run events (the public `--events ndjson` stream); the parent
 * forwards them to its own sink as they arrive, so progress is live and an orchestrator reading
 * the parent's `--events ndjson` sees one stream. The outcome of an export is its child's
 * `export_finished` event. A child that ends without one failed:
 * - killed by a signal (SIGKILL, the kernel's OOM killer, V8's out-of-memory abort): exit class 2,
 *   `run.child_killed`, since the same run may succeed again, except after the child reported
 *   a committed part: a re-run would then duplicate those rows, so class 3 (the duplicate guard,
 *   as for any transient failure after a commit);
 * - exited with a rivet exit code (1–4) before reporting: that class, `run.child_failed`;
 * - exited with any other code (a crash hook's 86, a runtime panic): class 1, `run.child_crashed`.
 * The parent records that failed run's metrics row and journal (the child never did). The
 * child's stderr (its human output is off, so what remains is runtime errors, panics, hook
 * notes) is kept, at most 5,000 lines, stripped of control bytes and secrets, and shown as one
 * warning after the child exits.
 *
 * Concurrency: every child starts at once (one per export, as the Rust tool does): exports are
 * few and mostly wait on their databases; bound their number by the exports of the config.
 * Exports with `partition_by` (the Rust tool disables process mode while partitioning) and
 * exports writing to stdout (a child's stdout carries its events) run in this process, one after
 * the other, while the children run.
 *
 * SIGINT/SIGTERM to the parent (the run's abort signal): every child gets SIGTERM (it stops its
 * export and reports it interrupted), then SIGKILL after {@linkcode CHILD_KILL_GRACE_MS}. A parent
 * that exits at once (a second Ctrl-C) SIGKILLs the children from its `unload` handler.
 *
 * Layer: engines.
 *
 * @module
 */
import { V8_FLAGS_ARG } from "./v8_flags.ts";
import { fileURLToPath } from "node:url";
import {
  DataIntegrityError,
  type ExitCode,
  InterruptedError,
  PermanentError,
  RivetError,
  TransientError,
} from "../core/errors.ts";
import type { EventSink, Outcome } from "../core/events.ts";
import type { StateStore } from "../core/state.ts";
import type { ConfigSpec, ExportSpec } from "../core/spec.ts";
import { redact } from "../_util/redact.ts";
import { openRunStateStore, stateOptions } from "./state.ts";
import {
  engineFailure,
  type InlineRunOptions,
  type RunResult,
  runResult,
  runSpec,
} from "./inline.ts";
import { recordJournal, recordMetrics } from "../pipeline/run_record.ts";
import { serializedState } from "./concurrent.ts";
import {
  envAllowed,
  type ExportPermissions,
  exportPermissions,
  toDenoFlags,
} from "./permissions.ts";
import { processEnv } from "./openers.ts";
import { ndjsonEventStream } from "../core/event_protocol.ts";
import { grantArgs, type OperatorGrants } from "./grants.ts";
import { BUNDLED } from "../_util/bundle.ts";
import { runExportsInWorkers } from "./export_worker.ts";

/**
 * Milliseconds between SIGTERM and SIGKILL when the run is aborted: every child must be gone
 * within 2 s of the signal to the parent, with room left for the SIGKILL to land.
 */
export const CHILD_KILL_GRACE_MS = 1500;
/** Lines of a child's stderr kept (the Rust tool's cap). */
export const STDERR_MAX_LINES = 5000;

/** How a child narrows its permissions. */
export type ChildIsolation = "flags" | "worker";

/** Options of {@linkcode runExportsInProcesses}. */
export interface ProcessRunOptions extends InlineRunOptions {
  /** The config file the children load (absolute). */
  readonly configPath: string;
  /**
   * `flags`: a `deno run` child with `--allow-*` flags; `worker`: a child holding the binary's
   * broad permissions that runs its export in a narrowed worker. Default `flags`; a compiled
   * binary always uses `worker` (tests use `worker` under `deno run` to exercise that path).
   */
  readonly isolation?: ChildIsolation;
  /** Grace between SIGTERM and SIGKILL on abort; default {@linkcode CHILD_KILL_GRACE_MS}. */
  readonly killGraceMs?: number;
  /**
   * The run is sandboxed (a compiled binary, `--sandbox`, or `--allow-*` flags): the exports
   * that stay in the parent run in narrowed workers too, and each child gets `grants` again.
   */
  readonly sandbox?: boolean;
  /** The operator's `--allow-*` flags, already checked against the run's needs. */
  readonly grants?: OperatorGrants;
}

/** The command that starts one export's child. */
export interface ChildCommand {
  readonly program: string;
  readonly args: readonly string[];
  /** The child's whole environment (the parent's is not inherited). */
  readonly env: Readonly<Record<string, string>>;
}

/**
 * Runs each export in its own child process, all at once, and waits for every child.
 *
 * @param config The loaded config.
 * @param exports The exports; outcomes come back in this order.
 * @param options Event sink, abort signal, params, base directory, resume flags, the config
 *   path, the event decoder and the isolation.
 * @returns Outcomes and the most serious exit class among them (130 when aborted).
 */
export async function runExportsInProcesses(
  config: ConfigSpec,
  exports: readonly ExportSpec[],
  options: ProcessRunOptions,
): Promise<RunResult> {
  const startedAt = new Date();
  // The parent opens (creating and migrating) the state file before any child does, and a
  // corrupt file stops the run here, before anything is read or written.
  await using store = await openRunStateStore(config.dir, stateOptions(config));
  const state = serializedState(store);
  await using children = new ChildSet(options.killGraceMs ?? CHILD_KILL_GRACE_MS);
  const onAbort = () => children.terminate();
  options.signal.addEventListener("abort", onAbort, { once: true });
  try {
    const inParent = exports.filter((e) => inParentReason(e) !== undefined);
    for (const spec of inParent) {
      options.emit({
        type: "warning",
        export: spec.name,
        code: "run.export_in_parent",
        message: `export '${spec.name}': ${inParentReason(spec)}, so it runs in the parent ` +
          "process (one such export after another, while the children run)",
      });
    }
    const lanes = new Map<string, Promise<Outcome[]>>();
    for (const spec of exports) {
      if (!inParent.includes(spec)) {
        lanes.set(spec.name, runChild(config, spec, { ...options, children, state }));
      }
    }
    const parentOutcomes = new Map<string, Outcome[]>();
    for (const spec of inParent) {
      if (options.signal.aborted) break;
      parentOutcomes.set(
        spec.name,
        options.sandbox
          ? [...(await runExportsInWorkers(config, [spec], options)).outcomes]
          : await runSpec(config, spec, { ...options, state }),
      );
    }
    const outcomes: Outcome[] = [];
    for (const spec of exports) {
      outcomes.push(...(lanes.has(spec.name) ? await lanes.get(spec.name)! : []));
      outcomes.push(...(parentOutcomes.get(spec.name) ?? []));
    }
    return runResult(outcomes, { startedAt, signal: options.signal });
  } finally {
    options.signal.removeEventListener("abort", onAbort);
  }
}

/** Why an export cannot run in a child, or undefined when it can. */
function inParentReason(spec: ExportSpec): string | undefined {
  if (spec.partitionBy !== undefined) {
    return "partition_by disables process mode (its partitions run one after the other)";
  }
  if (spec.destination.kind === "stdout") {
    return "its destination is stdout, which in a child carries the child's events";
  }
  return undefined;
}

/**
 * The command line and environment of one export's child.
 *
 * @param spec The export.
 * @param facts Config path, permissions, params, resume flags, isolation and the parent's
 *   environment (all variables, for copying the allowed ones).
 * @returns Program, arguments and environment.
 */
export function childCommand(
  spec: ExportSpec,
  facts: {
    configPath: string;
    permissions: ExportPermissions;
    params: Readonly<Record<string, string>>;
    resume?: boolean;
    force?: boolean;
    validate?: boolean;
    reconcile?: boolean;
    isolation: ChildIsolation;
    parentEnv: Readonly<Record<string, string>>;
    grants?: OperatorGrants;
  },
): ChildCommand {
  const rivetArgs = [
    "run",
    "-c",
    facts.configPath,
    "-e",
    spec.name,
    "--events",
    "ndjson",
    ...Object.entries(facts.params).flatMap(([k, v]) => ["-p", `${k}=${v}`]),
    ...(facts.resume ? ["--resume"] : []),
    ...(facts.force ? ["--force"] : []),
    ...(facts.validate ? ["--validate"] : []),
    ...(facts.reconcile ? ["--reconcile"] : []),
    // Human output off (the parent draws the events); `worker`: run in a narrowed worker.
    "--process-child",
    facts.isolation,
    // The operator's grants again: the child checks its export against them before it starts.
    ...grantArgs(facts.grants),
  ];
  const env = childEnv(facts.permissions, facts.parentEnv);
  if (Deno.build.standalone) {
    // The binary is rivet itself, with its permissions baked in: no `run <script>` prefix.
    return { program: Deno.execPath(), args: rivetArgs, env };
  }
  const denoArgs = [
    "run",
    "--quiet",
    "--no-prompt",
    "--unstable-worker-options",
    V8_FLAGS_ARG,
    ...denoConfigFlag(),
    // The worker path mirrors the compiled binary: broad grants (scripts/compile.ts), narrowed
    // by the export's worker.
    ...(facts.isolation === "worker"
      ? ["--allow-net", "--allow-read", "--allow-write", "--allow-env", "--allow-sys"]
      : toDenoFlags(facts.permissions)),
    cliPath(),
  ];
  return { program: Deno.execPath(), args: [...denoArgs, ...rivetArgs], env };
}

/** Variables the Deno runtime itself reads (cache location, temp dir, time zone, locale). */
const RUNTIME_ENV = [
  "PATH",
  "HOME",
  "DENO_DIR",
  "DENO_NO_UPDATE_CHECK",
  "XDG_CACHE_HOME",
  "TMPDIR",
  "TZ",
  "LANG",
  "LC_ALL",
  "LC_CTYPE",
  "NO_COLOR",
];

/** The child's environment: the runtime's variables plus those the export may read. */
function childEnv(
  permissions: ExportPermissions,
  parentEnv: Readonly<Record<string, string>>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parentEnv)) {
    if (permissions.allEnv || RUNTIME_ENV.includes(name) || envAllowed(name, permissions.env)) {
      env[name] = value;
    }
  }
  return env;
}

/** `cli.ts` of this code base, or the bundle's entry (the child's entry under `deno run`). */
function cliPath(): string {
  return fileURLToPath(BUNDLED ? Deno.mainModule : new URL("../../cli.ts", import.meta.url));
}

/** `--config <deno.json>` so the child resolves the same import map from any working folder. */
function denoConfigFlag(): string[] {
  // The bundle imports no package: it needs no import map.
  if (BUNDLED) return ["--no-config"];
  const url = new URL("../../deno.json", import.meta.url);
  if (url.protocol !== "file:") return [];
  try {
    Deno.statSync(url);
    return ["--config", fileURLToPath(url)];
  } catch {
    return [];
  }
}

/** The parent's environment, or only the variables it may read when access is narrowed. */
function parentEnvironment(names: readonly string[]): Record<string, string> {
  try {
    return Deno.env.toObject();
  } catch {
    const env: Record<string, string> = {};
    for (const name of names) {
      try {
        const value = Deno.env.get(name);
        if (value !== undefined) env[name] = value;
      } catch {
        // Not readable here: the child cannot get it either.
      }
    }
    return env;
  }
}

/** Runs one export's child and turns what it reported (or did not) into outcomes. */
async function runChild(
  config: ConfigSpec,
  spec: ExportSpec,
  options: ProcessRunOptions & { children: ChildSet; state: StateStore },
): Promise<Outcome[]> {
  const startedAt = new Date();
  // The child records its own metrics; one that never reported gets its failed run recorded
  // here, so `rivet metrics` and `rivet journal` show it.
  const fail = async (error: unknown, runId?: string): Promise<Outcome[]> => {
    const outcome = engineFailure(config, spec, {
      error,
      startedAt,
      peakRssMb: 0,
      ...(runId ? { runId } : {}),
    });
    await recordFailure(options.state, config, spec, outcome, options.emit);
    options.emit({ type: "export_finished", outcome });
    return [outcome];
  };
  let child: Deno.ChildProcess;
  try {
    const env = options.env ?? processEnv;
    const permissions = await exportPermissions(config, spec, {
      cwd: options.cwd,
      env,
      params: options.params,
    });
    const command = childCommand(spec, {
      configPath: options.configPath,
      permissions,
      params: options.params,
      ...(options.resume ? { resume: true } : {}),
      ...(options.force ? { force: true } : {}),
      ...(options.validate ? { validate: true } : {}),
      ...(options.reconcile ? { reconcile: true } : {}),
      // A compiled binary takes no permission flags: it can only narrow in a worker.
      isolation: Deno.build.standalone ? "worker" : options.isolation ?? "flags",
      parentEnv: parentEnvironment([...RUNTIME_ENV, ...permissions.env]),
      ...(options.grants ? { grants: options.grants } : {}),
    });
    if (options.signal.aborted) {
      return await fail(new InterruptedError("interrupted before it started"));
    }
    child = options.children.spawn(command, options.cwd);
  } catch (error) {
    return await fail(error);
  }

  const stderr = collectLines(child.stderr, STDERR_MAX_LINES);
  const outcomes: Outcome[] = [];
  let runId: string | undefined;
  let committed = 0;
  let streamError: unknown;
  const strayLines: string[] = [];
  const onInvalidLine = (invalid: { line: string; reason: string }) => {
    if (strayLines.length < STDERR_MAX_LINES) strayLines.push(redact(invalid.line));
  };
  try {
    for await (const event of ndjsonEventStream(child.stdout, { onInvalidLine })) {
      if (event.type === "run_started") continue;
      if (event.type === "run_finished") {
        // A child that reported outcomes only in its summary still reported them.
        if (outcomes.length === 0) outcomes.push(...event.outcomes.filter(isOwn(spec)));
        continue;
      }
      if (event.type === "export_started") runId = event.runId;
      if (event.type === "part_committed") committed += 1;
      if (event.type === "export_finished") outcomes.push(event.outcome);
      options.emit(event);
    }
  } catch (error) {
    // A broken event stream: the child can no longer be followed, so it is stopped.
    streamError = error;
    options.children.kill(child);
  }
  const status = await child.status;
  options.children.forget(child);
  // The child's note that it got the parent's SIGTERM repeats what the parent printed itself.
  const lines = (await stderr).filter((l) =>
    !(options.signal.aborted && l.startsWith("Interrupted: stopping"))
  );
  if (strayLines.length > 0) {
    options.emit({
      type: "warning",
      export: spec.name,
      code: "run.child_stdout",
      message: `export '${spec.name}': its child process wrote ${strayLines.length} line(s) on ` +
        `stdout that are not events:\n  ${strayLines.join("\n  ")}`,
    });
  }
  if (lines.length > 0) {
    options.emit({
      type: "warning",
      export: spec.name,
      code: "run.child_stderr",
      message: `export '${spec.name}': its child process wrote on stderr:\n  ${lines.join("\n  ")}`,
    });
  }
  if (outcomes.length > 0) return outcomes;
  return await fail(
    childFailure(spec, {
      status,
      committed,
      aborted: options.signal.aborted,
      streamError,
      firstError: lines.find((l) => l.startsWith("Error: "))?.slice("Error: ".length),
    }),
    runId,
  );
}

/** Records the metrics row and journal of a run its child never reported; failures only warn. */
async function recordFailure(
  state: StateStore,
  config: ConfigSpec,
  spec: ExportSpec,
  o: Outcome,
  emit: EventSink,
): Promise<void> {
  await recordMetrics(state, o, { spec, sourceKind: config.source.kind, emit });
  await recordJournal(state, o, [], emit);
}

function isOwn(spec: ExportSpec): (o: Outcome) => boolean {
  return (o) => o.export === spec.name;
}

/**
 * The error of a child that ended without reporting its export's outcome (see the module doc
 * for the classes).
 *
 * @param spec The export.
 * @param facts How the child ended, how many parts it reported committed, whether the run was
 *   aborted, a broken event stream, and the child's first `Error:` line.
 * @returns The error to record as the export's outcome.
 */
export function childFailure(
  spec: Pick<ExportSpec, "name">,
  facts: {
    status: Deno.CommandStatus;
    committed: number;
    aborted: boolean;
    streamError?: unknown;
    firstError?: string | undefined;
  },
): RivetError {
  const { status } = facts;
  const name = spec.name;
  if (facts.aborted) {
    return new InterruptedError("interrupted before its child process finished");
  }
  if (facts.streamError !== undefined) {
    const reason = facts.streamError instanceof Error
      ? facts.streamError.message
      : String(facts.streamError);
    return new PermanentError(
      `its child process sent an unreadable event stream (${redact(reason)})`,
      {
        code: "run.child_protocol",
        hint: "the child and the parent must be the same rivet build; re-run the export alone " +
          `with 'rivet run -c <config> -e ${name}' to see its output`,
      },
    );
  }
  if (status.signal !== null) {
    const killed = `its child process was killed by ${status.signal} before ` +
      "it reported a result (out of memory, or stopped from outside)";
    if (facts.committed > 0) {
      return new DataIntegrityError(
        `${killed}, after committing ${facts.committed} part(s)`,
        {
          code: "run.duplicate_guard",
          hint: "the committed files are kept; a plain re-run would duplicate their rows: dedupe " +
            "by content_fingerprint or clean the destination first, or use chunk_checkpoint: " +
            "true and --resume",
        },
      );
    }
    return new TransientError(killed, {
      code: "run.child_killed",
      hint: "re-run the export; if it ran out of memory, lower tuning.batch_size or set " +
        "max_batch_memory_mb",
    });
  }
  const detail = facts.firstError ? `: ${facts.firstError}` : "";
  if ([1, 2, 3, 4].includes(status.code)) {
    return new RivetError(
      `its child process exited with code ${status.code} before it ` +
        `reported a result${detail}`,
      {
        code: "run.child_failed",
        exitCode: status.code as ExitCode,
        hint: "its stderr is shown above; re-run the export alone with " +
          `'rivet run -c <config> -e ${name}'`,
      },
    );
  }
  return new PermanentError(
    `its child process crashed (exit code ${status.code}) before it reported ` +
      `a result${detail}`,
    {
      code: "run.child_crashed",
      hint: "its stderr is shown above; re-run the export alone with " +
        `'rivet run -c <config> -e ${name}'`,
    },
  );
}

/**
 * Reads a stream of text lines, keeping at most `max` of them (then one line saying how many
 * were dropped), each redacted: terminal control bytes and known secrets removed.
 */
async function collectLines(stream: ReadableStream<Uint8Array>, max: number): Promise<string[]> {
  const kept: string[] = [];
  let dropped = 0;
  let rest = "";
  const take = (line: string) => {
    if (kept.length < max) kept.push(redact(line.replace(/\r$/, "")));
    else dropped += 1;
  };
  try {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + text).split("\n");
      rest = parts.pop()!;
      for (const line of parts) take(line);
    }
  } catch {
    // A stream torn down with the child: keep what arrived.
  }
  if (rest !== "") take(rest);
  while (kept.length > 0 && kept[kept.length - 1]!.trim() === "") kept.pop();
  if (dropped > 0) kept.push(`(${dropped} more line(s) dropped)`);
  return kept;
}

/**
 * The running children of one run: spawned, terminated together on abort, and SIGKILLed if the
 * parent exits while they run.
 */
class ChildSet implements AsyncDisposable {
  readonly #live = new Set<Deno.ChildProcess>();
  readonly #graceMs: number;
  #killTimer: ReturnType<typeof setTimeout> | undefined;
  #terminating = false;
  readonly #onUnload = () => {
    for (const child of this.#live) this.kill(child);
  };

  constructor(graceMs: number) {
    this.#graceMs = graceMs;
    globalThis.addEventListener("unload", this.#onUnload);
  }

  /**
   * Starts a child (stdout and stderr piped, environment cleared). Its stdin is a pipe this
   * process holds open and never writes: its end is how the child learns that the parent died.
   */
  spawn(command: ChildCommand, cwd: string): Deno.ChildProcess {
    const child = new Deno.Command(command.program, {
      args: [...command.args],
      cwd,
      env: { ...command.env },
      clearEnv: true,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#live.add(child);
    // Started after an abort (a race with terminate()): stop it as well.
    if (this.#terminating) this.#signal(child, "SIGTERM");
    return child;
  }

  /** Stops following a child that exited, and closes the pipe on its stdin. */
  forget(child: Deno.ChildProcess): void {
    this.#live.delete(child);
    child.stdin.close().catch(() => {
      // The child is gone, and the pipe with it.
    });
  }

  /** SIGKILLs one child. */
  kill(child: Deno.ChildProcess): void {
    this.#signal(child, "SIGKILL");
  }

  /** SIGTERM to every child, then SIGKILL to those still running after the grace period. */
  terminate(): void {
    if (this.#terminating) return;
    this.#terminating = true;
    for (const child of this.#live) this.#signal(child, "SIGTERM");
    this.#killTimer = setTimeout(() => {
      for (const child of this.#live) this.kill(child);
    }, this.#graceMs);
  }

  #signal(child: Deno.ChildProcess, signal: Deno.Signal): void {
    try {
      child.kill(signal);
    } catch {
      // Already exited.
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    clearTimeout(this.#killTimer);
    globalThis.removeEventListener("unload", this.#onUnload);
    for (const child of this.#live) this.kill(child);
    return Promise.resolve();
  }
}
