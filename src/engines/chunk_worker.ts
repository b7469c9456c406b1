/**
 * Entry of a chunk worker of the Web Worker engine (`workers.ts`). A worker holds one database
 * connection and runs chunk units the main thread posts to it: read, encode, commit, then report
 * the committed parts. It never touches the state store and never posts Arrow data: only events
 * and part records cross the boundary. It runs with the permissions the pool gave it (the source
 * host, the output folder); parquet-wasm arrives as a compiled `WebAssembly.Module` because the
 * worker may not read the package's files.
 *
 * Protocol (main → worker): `init`, then `run` (one at a time), `abort`, `close`.
 * (worker → main): `ready` | `init_failed`, `event`, `result`, `crash` (a test crash point),
 * `closed`.
 *
 * Layer: engines (a worker's composition root).
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { type ErrorInfo, toErrorInfo } from "../core/errors.ts";
import type { Destination } from "../core/destination.ts";
import { destinationWarnings, type RivetEvent } from "../core/events.ts";
import type { Source } from "../core/source.ts";
import type { ExportJob } from "../core/job.ts";
import type { DestinationSpec } from "../core/spec.ts";
import { overrideCrashAt, setCrashHandler } from "../_util/test_hook.ts";
import { runChunkUnit, type UnitResult, type UnitSpec } from "../pipeline/chunk_unit.ts";
import { processEnv, threadOpeners } from "./openers.ts";
import { ParentGone, sealWrites } from "./parent_watch.ts";

/** The first message: everything the worker needs to rebuild its collaborators. */
export interface ChunkWorkerInit {
  readonly type: "init";
  /** The export, resolved. */
  readonly job: ExportJob;
  /** Run start (file stamps), epoch ms. */
  readonly startedAtMs: number;
  /** The export's destination with this run's placeholders filled. */
  readonly destination: DestinationSpec;
  readonly wasmModule?: WebAssembly.Module;
  /** Test only: this worker throws an uncaught error at that crash point (a crashed worker). */
  readonly crashWorkerAt?: string;
}

/** Messages the main thread posts. */
export type ChunkWorkerRequest =
  | ChunkWorkerInit
  | { readonly type: "run"; readonly unit: UnitSpec }
  /** `seal`: the process's parent is gone; revoke this worker's write grant first. */
  | { readonly type: "abort"; readonly seal?: boolean }
  | { readonly type: "close" };

/** Messages the worker posts. */
export type ChunkWorkerReply =
  | { readonly type: "ready" }
  | { readonly type: "init_failed"; readonly error: ErrorInfo }
  | { readonly type: "event"; readonly event: RivetEvent }
  | { readonly type: "result"; readonly result: UnitResult }
  | { readonly type: "crash"; readonly point: string }
  | { readonly type: "closed" };

const post = (reply: ChunkWorkerReply) => self.postMessage(reply);
const abort = new AbortController();
let context: Parameters<typeof runChunkUnit>[1] | undefined;
let source: Source | undefined;
let destination: (Destination & AsyncDisposable) | undefined;

async function init(message: ChunkWorkerInit): Promise<void> {
  const crashAt = message.crashWorkerAt;
  setCrashHandler((point) => {
    if (point === crashAt) {
      // An uncaught error ends this worker the way a crash would; the pool sees `error`.
      setTimeout(() => {
        throw new Error(`injected worker crash at ${point}`);
      });
      return;
    }
    post({ type: "crash", point });
  });
  if (crashAt !== undefined) overrideCrashAt(crashAt);
  const { job } = message;
  const { spec } = job;
  const open = threadOpeners({
    env: processEnv,
    cwd: job.configDir,
    ...(message.wasmModule ? { wasmModule: message.wasmModule } : {}),
  });
  const format = await open.format(spec.format);
  const emit = (event: RivetEvent) => post({ type: "event", event });
  destination = await open.destination(message.destination, {
    signal: abort.signal,
    // Store retries and leftovers reach the run's journal and display like the main thread's.
    warn: destinationWarnings(emit, spec.name),
  });
  const connect = () =>
    open.source(job, {
      signal: abort.signal,
      onWarning: (w) =>
        emit({ type: "warning", export: spec.name, code: w.code, message: w.message }),
    });
  context = {
    spec,
    tuning: job.tuning,
    startedAt: new Date(message.startedAtMs),
    format,
    destination,
    emit,
    signal: abort.signal,
    connection: async () => {
      source ??= await connect();
      return source;
    },
    dropConnection: async () => {
      const s = source;
      source = undefined;
      try {
        await s?.[Symbol.asyncDispose]();
      } catch {
        // Already broken.
      }
    },
    rss: () => Deno.memoryUsage().rss,
  };
}

async function close(): Promise<void> {
  try {
    await source?.[Symbol.asyncDispose]();
    await destination?.[Symbol.asyncDispose]();
  } finally {
    post({ type: "closed" });
    self.close();
  }
}

self.onmessage = async (event: MessageEvent<ChunkWorkerRequest>) => {
  const message = event.data;
  switch (message.type) {
    case "init":
      try {
        await init(message);
        post({ type: "ready" });
      } catch (error) {
        post({ type: "init_failed", error: toErrorInfo(error) });
      }
      return;
    case "run": {
      const result = await runChunkUnit(message.unit, context!);
      post({ type: "result", result });
      return;
    }
    case "abort":
      if (message.seal) {
        sealWrites();
        abort.abort(new ParentGone());
      } else abort.abort(new DOMException("interrupted", "AbortError"));
      return;
    case "close":
      await close();
      return;
  }
};
