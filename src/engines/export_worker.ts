/**
 * Runs exports in Web Workers whose `deno.permissions` allow only what each export needs
 * (`permissions.ts`). A compiled binary takes no `--allow-*` flags at run time, so this is how
 * its process-mode children (`rivet run … --export-worker`) narrow themselves: the child's main
 * thread keeps the binary's broad grants and does nothing but relay; the export runs in the
 * worker, where any other host, path or variable is refused with `NotCapable`.
 *
 * This module is both sides. Imported, it is the host: {@linkcode runExportsInWorkers}. As a
 * worker's entry (`new Worker(new URL("./export_worker.ts", import.meta.url))`), it runs the one
 * job it is given (resolved by the host: the worker never reads the config) and posts every
 * event back. The host compiles the Parquet wasm module and posts it, so the worker needs no
 * read access to the package.
 *
 * Protocol (structured-clone messages):
 * - host → worker: `start` (the export's job, resolved by the host; cwd, resume flags, wasm
 *   module), then possibly `abort` (with `seal` when the process's parent is gone: the worker revokes its
 *   write grant first, see `parent_watch.ts`);
 * - worker → host: `event` (a run event), `done` (the outcomes), `failed` (an error before the
 *   export ran), `crash` (a crash hook fired: the host ends the process as the hook would),
 *   `exited` (the worker called `Deno.exit`, which ends only the worker: a chunk pool does so
 *   when one of its own workers hits a crash hook; the host then ends the process the same way).
 *
 * A `deno compile` binary must `--include` this file (the worker graph is not followed) and be
 * compiled with `--unstable-worker-options`.
 *
 * Layer: engines.
 *
 * @module
 */
import { type ErrorInfo, PermanentError, RivetError, toErrorInfo } from "../core/errors.ts";
import { deniedPermission, PERMISSION_DENIED } from "../core/denied_permission.ts";
import type { Outcome, RivetEvent } from "../core/events.ts";
import type { ConfigSpec, ExportSpec } from "../core/spec.ts";
import type { ExportJob } from "../core/job.ts";
import { openRunStateStore, stateOptions } from "./state.ts";
import { runInLanes } from "./concurrent.ts";
import { resolveJob } from "../plan/resolve.ts";
import { runJob } from "../pipeline/run_job.ts";
import { compileParquetWasm, loadParquetWasm } from "../formats/mod.ts";
import { CRASH_EXIT_CODE, sandboxProbe, setCrashHandler } from "../_util/test_hook.ts";
import {
  engineFailure,
  inlineOpeners,
  type InlineRunOptions,
  type RunResult,
  runResult,
} from "./inline.ts";
import { processEnv } from "./openers.ts";
import { exportPermissions, toWorkerPermissions } from "./permissions.ts";
import { type OperatorGrants, withinGrants } from "./grants.ts";
import { siblingEntry } from "../_util/bundle.ts";
import { isParentGone, ParentGone, sealWrites } from "./parent_watch.ts";

/** Name prefix of an export worker (the export's name follows); the worker side serves on it. */
const EXPORT_WORKER_PREFIX = "rivet-export-";

/** Host → worker: run one export, resolved by the host. */
interface StartMessage {
  readonly type: "start";
  readonly job: ExportJob;
  readonly cwd: string;
  readonly resume: boolean;
  readonly force: boolean;
  readonly validate?: boolean;
  readonly reconcile?: boolean;
  readonly wasm?: WebAssembly.Module;
  /** The config's `state.url_env` (the worker opens the state store itself). */
  readonly stateUrlEnv?: string;
}

/** Host → worker: stop; `seal` when the process's parent is gone (revoke write first). */
interface AbortMessage {
  readonly type: "abort";
  readonly seal?: boolean;
}

/** Worker → host. */
type WorkerMessage =
  | { readonly type: "event"; readonly event: RivetEvent }
  | { readonly type: "done"; readonly outcomes: readonly Outcome[] }
  | { readonly type: "failed"; readonly error: ErrorInfo }
  | { readonly type: "crash"; readonly point: string }
  | { readonly type: "exited" };

/** Options of {@linkcode runExportsInWorkers}. */
export interface WorkerRunOptions extends InlineRunOptions {
  /** Start every export at once (`--parallel-exports`); stdout exports still share one lane. */
  readonly concurrent?: boolean;
  /** The operator's `--allow-*` flags (already checked against the run's needs). */
  readonly grants?: OperatorGrants;
}

/**
 * Runs each export in its own permission-narrowed worker: one after the other, or all at once
 * with `concurrent` (exports writing to stdout then share one lane, so their bytes never
 * interleave). Needs `--unstable-worker-options`, and permissions at least as broad as every
 * export's.
 *
 * @param config The loaded config.
 * @param exports The exports (a process-mode child has exactly one).
 * @param options Event sink, abort signal, params, base directory, resume flags, concurrency,
 *   the operator's grants.
 * @returns Outcomes (in export order) and the most serious exit class among them.
 */
export async function runExportsInWorkers(
  config: ConfigSpec,
  exports: readonly ExportSpec[],
  options: WorkerRunOptions,
): Promise<RunResult> {
  const startedAt = new Date();
  let wasm: WebAssembly.Module | undefined;
  const run = async (spec: ExportSpec): Promise<Outcome[]> => {
    const started = new Date();
    try {
      if (spec.format.kind === "parquet") wasm ??= await compileParquetWasm();
      return await runInWorker(config, spec, { ...options, wasm });
    } catch (error) {
      const outcome = engineFailure(config, spec, { error, startedAt: started });
      options.emit({ type: "export_finished", outcome });
      return [outcome];
    }
  };
  let outcomes: Outcome[];
  if (options.concurrent) {
    // Compiled once before the lanes start, so concurrent exports do not each compile it.
    if (exports.some((e) => e.format.kind === "parquet")) wasm = await compileParquetWasm();
    outcomes = await runInLanes(exports, run, options.signal);
  } else {
    outcomes = [];
    for (const spec of exports) {
      if (options.signal.aborted) break;
      outcomes.push(...await run(spec));
    }
  }
  return runResult(outcomes, { startedAt, signal: options.signal });
}

async function runInWorker(
  config: ConfigSpec,
  spec: ExportSpec,
  options: WorkerRunOptions & { wasm: WebAssembly.Module | undefined },
): Promise<Outcome[]> {
  const env = options.env ?? processEnv;
  // Resolved here, once: the worker runs the job as it is and never reads the config.
  const job = await resolveJob(config, spec, { params: options.params, cwd: options.cwd, env });
  const permissions = withinGrants(
    await exportPermissions(config, spec, {
      cwd: options.cwd,
      env,
      params: options.params,
      connection: job.connection,
    }),
    options.grants,
  );
  const worker = new Worker(siblingEntry(import.meta.url, "export_worker"), {
    type: "module",
    name: `${EXPORT_WORKER_PREFIX}${spec.name}`,
    deno: { permissions: toWorkerPermissions(permissions) },
  });
  const onAbort = () =>
    worker.postMessage({ type: "abort", seal: isParentGone(options.signal.reason) });
  try {
    let settled = false;
    return await new Promise<Outcome[]>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
        const message = e.data;
        if (message.type === "event") options.emit(message.event);
        else if (message.type === "done") {
          settled = true;
          resolve([...message.outcomes]);
        } else if (message.type === "failed") {
          settled = true;
          reject(errorFromInfo(message.error));
        } else if (message.type === "crash" || (message.type === "exited" && !settled)) {
          console.error(`rivet: test hook: export worker ended the process (${message.type})`);
          Deno.exit(CRASH_EXIT_CODE);
        }
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        // A Deno refusal crosses as text: still the one-line "rivet needs --allow-…" error.
        const denied = deniedPermission(e.message);
        reject(
          denied
            ? new PermanentError(denied.message, { code: PERMISSION_DENIED })
            : new RivetError(`its worker failed: ${e.message}`, {
              code: "run.worker_failed",
              exitCode: 1,
            }),
        );
      };
      worker.onmessageerror = () =>
        reject(
          new RivetError("its worker sent an unreadable message", {
            code: "run.worker_failed",
            exitCode: 1,
          }),
        );
      const start: StartMessage = {
        type: "start",
        job,
        cwd: options.cwd,
        resume: options.resume === true,
        force: options.force === true,
        ...(options.validate ? { validate: true } : {}),
        ...(options.reconcile ? { reconcile: true } : {}),
        ...(options.wasm ? { wasm: options.wasm } : {}),
        ...(config.stateUrlEnv === undefined ? {} : { stateUrlEnv: config.stateUrlEnv }),
      };
      worker.postMessage(start);
      options.signal.addEventListener("abort", onAbort, { once: true });
      if (options.signal.aborted) onAbort();
    });
  } finally {
    options.signal.removeEventListener("abort", onAbort);
    worker.terminate();
  }
}

function errorFromInfo(info: ErrorInfo): RivetError {
  return new RivetError(info.message, {
    code: info.code,
    exitCode: info.exitCode,
    ...(info.hint === undefined ? {} : { hint: info.hint }),
  });
}

/** The worker side: runs the export it is told to and reports back. */
function serveAsWorker(scope: {
  postMessage(message: WorkerMessage): void;
  onmessage: ((e: MessageEvent) => void) | null;
}): void {
  const controller = new AbortController();
  const post = (message: WorkerMessage) => scope.postMessage(message);
  // A crash hook must end the whole process, which only the host thread can do.
  setCrashHandler((point) => post({ type: "crash", point }));
  // `Deno.exit` here ends only this worker, silently for the host: say so on the way out.
  globalThis.addEventListener("unload", () => post({ type: "exited" }));
  scope.onmessage = async (e: MessageEvent<StartMessage | AbortMessage>) => {
    const message = e.data;
    if (message.type === "abort") {
      // The process's parent is gone: nothing may be written from here on, and the export's
      // chunk workers are told the same through the abort reason.
      if (message.seal) sealWrites();
      controller.abort(message.seal ? new ParentGone() : undefined);
      return;
    }
    try {
      if (message.wasm) await loadParquetWasm(message.wasm);
      const { job } = message;
      const probe = sandboxProbe();
      if (probe !== undefined) {
        post({
          type: "event",
          event: {
            type: "warning",
            export: job.spec.name,
            code: "test.sandbox_probe",
            message: probe.join("\n"),
          },
        });
      }
      await using state = await openRunStateStore(job.configDir, stateOptions(message));
      const outcomes = await runJob(job, {
        state,
        emit: (event) => post({ type: "event", event }),
        signal: controller.signal,
        open: inlineOpeners({ env: processEnv, cwd: message.cwd }),
        rss: () => Deno.memoryUsage().rss,
        resume: message.resume,
        force: message.force,
        ...(message.validate ? { validate: true } : {}),
        ...(message.reconcile ? { reconcile: true } : {}),
      });
      post({ type: "done", outcomes });
    } catch (error) {
      post({ type: "failed", error: toErrorInfo(error) });
    }
  };
}

// Serve only in an export worker (named by runInWorker), never when another worker merely imports
// this file. The name, not `import.meta.main`: in the release bundle this code sits in a shared
// chunk, which is never the main module.
// deno-lint-ignore no-explicit-any
const workerScope = (globalThis as any).WorkerGlobalScope;
if (
  workerScope !== undefined && globalThis instanceof workerScope &&
  // deno-lint-ignore no-explicit-any
  String((globalThis as any).name ?? "").startsWith(EXPORT_WORKER_PREFIX)
) {
  // deno-lint-ignore no-explicit-any
  serveAsWorker(globalThis as any);
}
