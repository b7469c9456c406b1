/**
 * The Web Worker engine of chunked exports (`parallel: N`): N workers, each with its own database
 * connection, run the chunk units the main thread hands out; the main thread stays the only
 * writer of state (ADR-0009). Arrow data never crosses the boundary: a worker reads, encodes and
 * commits its chunk and reports events and the committed parts.
 *
 * Each worker runs with permissions narrowed to its chunk's needs: network access to the source
 * host only, read and write on the output folder only (plus the CA file), the test-hook
 * variables only, and no subprocess, FFI or system access. parquet-wasm is compiled here and
 * posted as a `WebAssembly.Module`, since the worker may not read the package's files.
 *
 * Layer: engines.
 *
 * @module
 */
import { dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type ErrorInfo, PermanentError, toErrorInfo, TransientError } from "../core/errors.ts";
import { deniedPermission, PERMISSION_DENIED } from "../core/denied_permission.ts";
import type { EventSink } from "../core/events.ts";
import type { ExportJob } from "../core/job.ts";
import type { DestinationSpec } from "../core/spec.ts";
import type { UnitResult, UnitSpec } from "../pipeline/chunk_unit.ts";
import { type ChunkExecutor, WORKER_CRASHED } from "../pipeline/run_chunked.ts";
import { DEFAULT_BATCH_MEMORY_MB } from "../pipeline/part_writer.ts";
import { compileParquetWasm } from "../formats/mod.ts";
import { CRASH_EXIT_CODE } from "../_util/test_hook.ts";
import { cloudEnv, storeHosts, TEST_HOOK_ENV } from "./permissions.ts";
import { siblingEntry } from "../_util/bundle.ts";
import { localRoot } from "../plan/resolve.ts";
import type { ChunkWorkerInit, ChunkWorkerReply, ChunkWorkerRequest } from "./chunk_worker.ts";
import { isParentGone } from "./parent_watch.ts";
import { processEnv } from "./openers.ts";

/** What the pool needs to start workers for one export. */
export interface WorkerPoolOptions {
  /** The export, resolved (its local destination folder is absolute). */
  readonly job: ExportJob;
  readonly startedAt: Date;
  /** The export's destination, placeholders filled for this run. */
  readonly destination: DestinationSpec;
  readonly emit: EventSink;
  readonly signal: AbortSignal;
  /** Environment lookup (test hooks). */
  readonly env?: (name: string) => string | undefined;
}

/** The variables a chunk worker may read: the test hooks, plus its cloud SDK's. */
function cloudEnvFor(destination: DestinationSpec): string[] | true {
  const names = cloudEnv(destination);
  return names === true ? true : [...TEST_HOOK_ENV, ...names];
}

/**
 * The permissions of a chunk worker: the source's host and port (or its Unix socket folder), the
 * output folder, the CA file, the test-hook variables, nothing else.
 *
 * @param options The export's source, connection and destination.
 * @returns Options for `new Worker(…, { deno: { permissions } })`.
 */
export function chunkWorkerPermissions(
  options: Pick<WorkerPoolOptions, "job" | "destination">,
): Deno.PermissionOptionsObject {
  const { job, destination } = options;
  const { connection } = job;
  const socket = connection.host.startsWith("/");
  // The job's local folder is absolute already; the placeholders of this run are filled.
  const output = destination.kind === "local" ? [localRoot(destination, job.configDir)] : [];
  const ca = job.source.tls?.caFile;
  const caPath = ca === undefined ? [] : [isAbsolute(ca) ? ca : resolve(job.configDir, ca)];
  const cloud = storeHosts(destination);
  const mssql = job.source.kind === "mssql";
  const sys = [
    ...(cloud.length > 0 ? ["osRelease" as const] : []),
    ...(mssql ? ["hostname" as const] : []),
  ];
  return {
    net: socket && cloud.length === 0 ? false : [...(socket ? [] : [sourceNet(job)]), ...cloud],
    read: [...output, ...caPath, ...(socket ? [connection.host] : [])],
    write: [...output, ...(socket ? [connection.host] : [])],
    // The cloud SDKs read their own variables (AWS_*, proxies, the Azure SDK enumerates the
    // environment) and the OS release for their user agent; SQL Server's driver (tedious)
    // enumerates the environment when it loads and sends the host name in its login.
    env: mssql ? true : cloudEnvFor(destination),
    run: false,
    ffi: false,
    sys: sys.length > 0 ? sys : false,
    import: false,
  };
}

/** `host:port` of the source, or the host alone for a SQL Server named instance (any port). */
function sourceNet(job: WorkerPoolOptions["job"]): string {
  const { host, port, params } = job.connection;
  const named = job.source.kind === "mssql" && params.instance !== undefined;
  return named ? host : `${host}:${port}`;
}

/** The worker's entry module (a local file under `deno run`, embedded in a compiled binary). */
const WORKER_ENTRY = siblingEntry(import.meta.url, "chunk_worker");

/** Whether this thread holds a permission (never prompts: a query, not a request). */
function granted(descriptor: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(descriptor).state === "granted";
  } catch {
    return false;
  }
}

/**
 * Fits the workers' permissions within this thread's, or says which flag is missing.
 *
 * A worker can never hold more than the thread that starts it (`new Worker` then throws a bare
 * `NotCapable: Can't escalate parent thread permissions`), and it loads its module graph under
 * this thread's read permission. Under a narrowed `deno run` every grant the chunks need is
 * therefore checked here first, so a missing one ends the export with the flag to add instead of
 * a worker that fails at start, is replaced and fails again. The test-hook variables are
 * optional: dropped when not granted.
 *
 * @param permissions What each chunk worker needs ({@linkcode chunkWorkerPermissions}).
 * @param parallel The export's `parallel`, named in the message.
 * @returns The same permissions without ungranted optional variables.
 * @throws {PermanentError} `permission.denied` naming the first flag to add.
 */
export function fitWorkerPermissions(
  permissions: Deno.PermissionOptionsObject,
  parallel: number,
): Deno.PermissionOptionsObject {
  const why = `the chunk workers of 'parallel: ${parallel}'`;
  const need = (flag: string, reason: string): never => {
    throw new PermanentError(`rivet needs ${flag} (${why} ${reason})`, {
      code: PERMISSION_DENIED,
    });
  };
  if (WORKER_ENTRY.protocol === "file:") {
    const entry = fileURLToPath(WORKER_ENTRY);
    if (!granted({ name: "read", path: entry })) {
      need(`--allow-read=${dirname(dirname(entry))}`, "load rivet's code from it");
    }
  }
  const list = (value: unknown): string[] => Array.isArray(value) ? value as string[] : [];
  for (const host of list(permissions.net)) {
    if (!granted({ name: "net", host })) need(`--allow-net=${host}`, "connect to it");
  }
  for (const path of list(permissions.read)) {
    if (!granted({ name: "read", path })) need(`--allow-read=${path}`, "read it");
  }
  for (const path of list(permissions.write)) {
    if (!granted({ name: "write", path })) need(`--allow-write=${path}`, "write it");
  }
  for (const kind of list(permissions.sys)) {
    const descriptor = { name: "sys", kind } as Deno.SysPermissionDescriptor;
    if (!granted(descriptor)) {
      need(`--allow-sys=${kind}`, "need it for the object store's or SQL Server's client");
    }
  }
  let env = permissions.env ?? false;
  if (env === true && !granted({ name: "env" })) {
    need("--allow-env", "run the Azure or SQL Server client, which reads the whole environment");
  }
  if (Array.isArray(env)) {
    env = env.filter((variable) => granted({ name: "env", variable }));
    if (env.length === 0) env = false;
  }
  return { ...permissions, env };
}

interface Slot {
  worker: Worker | undefined;
  pending: ((reply: UnitResult) => void) | undefined;
  unit: UnitSpec | undefined;
}

/** Fetch memory target of a worker, at least (the fetch-size rules need room for a few rows). */
const MIN_WORKER_BATCH_MB = 4;

/**
 * The job a worker of a pool of `size` runs: the export's fetch memory target is shared among the
 * workers rather than given to each, so `parallel: N` holds about the memory of one export (each
 * worker still has its own runtime and Parquet writer, bounded by the row-group byte ceiling).
 *
 * @param job The export.
 * @param size Workers in the pool.
 * @returns The job with `tuning.batchSizeMemoryMb` divided by `size`.
 *
 * @example
 * ```ts ignore
 * shareBatchMemory(job, 4).tuning.batchSizeMemoryMb; // 64 MB (profile fast) → 16
 * ```
 */
export function shareBatchMemory(job: ExportJob, size: number): ExportJob {
  if (size <= 1) return job;
  const total = job.tuning.batchSizeMemoryMb ?? DEFAULT_BATCH_MEMORY_MB;
  const share = Math.max(MIN_WORKER_BATCH_MB, Math.floor(total / size));
  return { ...job, tuning: { ...job.tuning, batchSizeMemoryMb: share } };
}

/**
 * Starts a pool of `size` chunk workers for one export (workers start on first use and are
 * replaced when one crashes).
 *
 * @param size Number of workers (`parallel`, at most the number of chunks).
 * @param options Source, connection, export, destination, events and signal.
 * @returns The executor the chunk loop runs units on; dispose it to close every worker.
 */
export async function startChunkWorkers(
  size: number,
  options: WorkerPoolOptions,
): Promise<ChunkExecutor> {
  const { spec } = options.job;
  const wasmModule = spec.format.kind === "parquet" ? await compileParquetWasm() : undefined;
  const permissions = fitWorkerPermissions(chunkWorkerPermissions(options), size);
  const env = options.env ?? processEnv;
  // `RIVET_TEST_CRASH_AT=worker:<point>` crashes the first worker (only) at that point. A test
  // hook only: unreadable (a narrowed --allow-env) means unset.
  let crashSpec: string | undefined;
  try {
    crashSpec = env("RIVET_TEST_CRASH_AT");
  } catch {
    crashSpec = undefined;
  }
  let crashWorkerAt = crashSpec?.startsWith("worker:") ? crashSpec.slice(7) : undefined;
  const slots: Slot[] = Array.from({ length: size }, () => ({
    worker: undefined,
    pending: undefined,
    unit: undefined,
  }));
  let spawned = 0;

  const failure = (unit: UnitSpec, info: ErrorInfo): UnitResult => ({
    chunkIndex: unit.chunkIndex,
    rows: 0,
    parts: [],
    peakRss: 0,
    durationMs: 0,
    failure: info,
  });

  const onAbort = () => {
    // A process-mode child whose parent is gone: each worker also revokes its own write grant.
    const seal = isParentGone(options.signal.reason);
    for (const slot of slots) {
      slot.worker?.postMessage({ type: "abort", seal } as ChunkWorkerRequest);
    }
  };
  options.signal.addEventListener("abort", onAbort, { once: true });

  async function spawn(slot: Slot, index: number): Promise<Worker> {
    const worker = new Worker(WORKER_ENTRY, {
      type: "module",
      name: `rivet-chunk-${index}`,
      deno: { permissions },
    });
    const init: ChunkWorkerInit = {
      type: "init",
      job: shareBatchMemory(options.job, size),
      startedAtMs: options.startedAt.getTime(),
      destination: options.destination,
      ...(wasmModule ? { wasmModule } : {}),
      ...(crashWorkerAt !== undefined && spawned === 0 ? { crashWorkerAt } : {}),
    };
    spawned += 1;
    if (init.crashWorkerAt !== undefined) crashWorkerAt = undefined;
    const ready = new Promise<void>((resolveReady, rejectReady) => {
      worker.onmessage = (event: MessageEvent<ChunkWorkerReply>) => {
        const reply = event.data;
        switch (reply.type) {
          case "ready":
            resolveReady();
            return;
          case "init_failed":
            rejectReady(reply.error);
            return;
          case "event":
            options.emit(reply.event);
            return;
          case "result": {
            const done = slot.pending;
            slot.pending = undefined;
            slot.unit = undefined;
            done?.(reply.result);
            return;
          }
          case "crash":
            // A test crash point inside the worker: end the whole process as a kill would.
            console.error(`rivet: test hook: worker crashed the process at ${reply.point}`);
            Deno.exit(CRASH_EXIT_CODE);
            return;
          case "closed":
            return;
        }
      };
      worker.onerror = (event: ErrorEvent) => {
        // Handled here: an unhandled worker error would end the main thread too.
        event.preventDefault();
        worker.terminate();
        if (slot.worker === worker) slot.worker = undefined;
        // A permission Deno refused inside the worker (its error crosses as text only) is no
        // crash: a new worker would be refused the same, so the chunk fails for good.
        const denied = deniedPermission(event.message);
        let info: ErrorInfo;
        if (denied) {
          info = toErrorInfo(new PermanentError(denied.message, { code: PERMISSION_DENIED }));
        } else {
          const message = `chunk worker ${index} crashed: ${event.message}`;
          options.emit({
            type: "warning",
            export: spec.name,
            code: WORKER_CRASHED,
            message: `export '${spec.name}': ${message}; it is replaced`,
          });
          info = toErrorInfo(new TransientError(message, { code: WORKER_CRASHED }));
        }
        rejectReady(info);
        const done = slot.pending;
        const unit = slot.unit;
        slot.pending = undefined;
        slot.unit = undefined;
        if (done && unit) done(failure(unit, info));
      };
    });
    worker.postMessage(init);
    await ready;
    return worker;
  }

  return {
    size,
    async run(unit: UnitSpec): Promise<UnitResult> {
      // The caller's lane when free, so a chunk's `lane` in the events is the worker that ran it.
      const index = unit.lane !== undefined && slots[unit.lane]?.unit === undefined
        ? unit.lane
        : slots.findIndex((s) => s.unit === undefined);
      const slot = slots[index];
      if (!slot) throw new Error("chunk worker pool: more units than workers");
      // Taken before any await, so a concurrent run() never picks the same slot.
      slot.unit = unit;
      try {
        slot.worker ??= await spawn(slot, index);
      } catch (error) {
        slot.worker?.terminate();
        slot.worker = undefined;
        slot.unit = undefined;
        return failure(unit, isErrorInfo(error) ? error : toErrorInfo(error));
      }
      return await new Promise<UnitResult>((done) => {
        slot.pending = done;
        slot.worker!.postMessage({ type: "run", unit } as ChunkWorkerRequest);
      });
    },
    async [Symbol.asyncDispose]() {
      options.signal.removeEventListener("abort", onAbort);
      await Promise.all(slots.map(async (slot) => {
        const worker = slot.worker;
        slot.worker = undefined;
        if (!worker) return;
        let timer: ReturnType<typeof setTimeout> | undefined;
        const closed = new Promise<void>((done) => {
          worker.addEventListener("message", (event) => {
            if ((event as MessageEvent<ChunkWorkerReply>).data.type === "closed") done();
          });
          // A worker stuck in a read is not waited for: terminate() ends it below.
          timer = setTimeout(done, 2_000);
        });
        worker.postMessage({ type: "close" } as ChunkWorkerRequest);
        await closed;
        clearTimeout(timer);
        worker.terminate();
      }));
    },
  };
}

function isErrorInfo(value: unknown): value is ErrorInfo {
  return typeof value === "object" && value !== null && "exitCode" in value && "code" in value;
}
