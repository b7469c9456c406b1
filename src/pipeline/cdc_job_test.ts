// The cdc pipeline over a scripted change stream: parts roll only at transaction ends, each part
// is committed before its checkpoint and its checkpoint saved before the acknowledgement, a part
// no checkpoint covers is replaced by the next run, and a stop finishes the transaction in hand.
// The real readers (PostgreSQL, MariaDB) run the same pipeline in tests/e2e/cdc_*_test.ts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { Field, Int64, makeData, RecordBatch, Schema, Struct, Utf8 } from "../core/arrow.ts";
import type { CdcChunk, CdcOpenOptions, CdcPosition, CdcReader } from "../core/cdc.ts";
import type { Outcome, RivetEvent } from "../core/events.ts";
import type { ExportJob } from "../core/job.ts";
import type { StateStore } from "../core/state.ts";
import { loadConfig } from "../config/mod.ts";
import { openDestination } from "../destinations/mod.ts";
import { createFormat } from "../formats/mod.ts";
import { resolveJob } from "../plan/resolve.ts";
import { openMemoryStateStore } from "../state/mod.ts";
import { runCdcJob } from "./cdc_job.ts";
import { checkpointStore } from "./cdc_checkpoint.ts";

const schema = new Schema([new Field("id", new Int64(), true), new Field("v", new Utf8(), true)]);

/** One transaction of the script: ids, all inserts but the ops given. */
interface Txn {
  readonly ids: readonly number[];
  readonly ops?: readonly number[];
}

function rows(ids: readonly number[]): RecordBatch {
  const n = ids.length;
  const text = ids.map((id) => `v${id}`);
  const bytes = new TextEncoder().encode(text.join(""));
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i]! + text[i]!.length;
  const children = [
    makeData({ type: new Int64(), length: n, data: BigInt64Array.from(ids.map(BigInt)) }),
    makeData({ type: new Utf8(), length: n, valueOffsets: offsets, data: bytes }),
  ];
  return new RecordBatch(
    schema,
    makeData({ type: new Struct(schema.fields), length: n, children }),
  );
}

/** What a scripted reader saw. */
interface Seen {
  starts: (CdcPosition | undefined)[];
  acks: CdcPosition[];
}

/**
 * A reader replaying `script` (transaction `t` ends at position `{t}`, 1-based), split in chunks
 * of at most 2 rows; starts after the transaction its start names. `live`: after the script it
 * waits until disposed, as a streaming reader does.
 */
function scripted(script: readonly Txn[], seen: Seen, live = false) {
  return (_job: ExportJob, options: CdcOpenOptions): Promise<CdcReader> => {
    seen.starts.push(options.start);
    const from = options.start === undefined ? 0 : Number(options.start.t);
    let release: () => void = () => {};
    const disposed = new Promise<void>((resolve) => release = resolve);
    async function* changes(): AsyncGenerator<CdcChunk> {
      for (let t = from; t < script.length; t++) {
        const txn = script[t]!;
        for (let at = 0; at < txn.ids.length; at += 2) {
          const ids = txn.ids.slice(at, at + 2);
          const last = at + 2 >= txn.ids.length;
          yield {
            table: 0,
            batch: rows(ids),
            ops: Uint8Array.from(ids.map((_, i) => txn.ops?.[at + i] ?? 0)),
            positions: ids.map((id) => JSON.stringify({ t: t + 1, id })),
            ...(last ? { commit: { t: t + 1 } } : {}),
          };
        }
      }
      if (live) await disposed;
    }
    return Promise.resolve({
      tables: [{ ref: { table: "t" }, name: "public.t", columns: [], schema }],
      changes,
      acknowledge(position: CdcPosition) {
        seen.acks.push(position);
        return Promise.resolve();
      },
      [Symbol.asyncDispose]() {
        release();
        return Promise.resolve();
      },
    });
  };
}

async function jobIn(dir: string, cdc: string, format = "csv"): Promise<ExportJob> {
  const yaml = "source:\n  type: postgres\n  url_env: PG_URL\nexports:\n" +
    `  - name: t\n    table: public.t\n    mode: cdc\n    format: ${format}\n` +
    `    destination: {type: local, path: ./out}\n    cdc: {${cdc}}\n`;
  await Deno.writeTextFile(join(dir, "rivet.yaml"), yaml);
  const env = (name: string) => name === "PG_URL" ? "postgresql://u@127.0.0.1:5/db" : undefined;
  const config = await loadConfig(join(dir, "rivet.yaml"), { env });
  return await resolveJob(config, config.exports[0]!, { env, cwd: dir, params: {} });
}

async function runOnce(
  job: ExportJob,
  state: StateStore,
  reader: ReturnType<typeof scripted>,
  signal = new AbortController().signal,
): Promise<{ outcome: Outcome; events: RivetEvent[] }> {
  const events: RivetEvent[] = [];
  const outcome = await runCdcJob(job, {
    state,
    emit: (e) => events.push(e),
    signal,
    rss: () => 0,
    open: {
      cdc: reader,
      format: (spec) => createFormat(spec),
      destination: (spec, o) =>
        openDestination(spec, { baseDir: job.configDir, env: () => undefined, ...o }),
    },
  });
  return { outcome, events };
}

async function partsIn(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const entry of Deno.readDir(join(dir, "out"))) {
    if (entry.name.startsWith("cdc-")) {
      out[entry.name] = await Deno.readTextFile(join(dir, "out", entry.name));
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

function idsOf(csv: string): number[] {
  return csv.trim().split("\n").slice(1).map((line) => Number(line.split(",").at(-2)));
}

Deno.test("cdc parts roll at transaction ends, then checkpoint, then acknowledge", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const job = await jobIn(dir, "rollover: 3, until_current: true");
    await using state = await openMemoryStateStore();
    const seen: Seen = { starts: [], acks: [] };
    const script: Txn[] = [
      { ids: [1, 2] },
      { ids: [3, 4], ops: [1, 2] },
      { ids: [5, 6, 7, 8, 9] },
      {
        ids: [10],
      },
    ];
    const { outcome } = await runOnce(job, state, scripted(script, seen));
    assert.equal(outcome.status, "success", JSON.stringify(outcome.error));
    assert.equal(outcome.rows, 10);
    assert.equal(outcome.files, 3);
    const parts = await partsIn(dir);
    assert.deepEqual(Object.keys(parts), ["cdc-000000.csv", "cdc-000001.csv", "cdc-000002.csv"]);
    // Part 0: transactions 1 and 2 (it reached 3 rows only at the end of transaction 2).
    assert.deepEqual(Object.values(parts).map(idsOf), [[1, 2, 3, 4], [5, 6, 7, 8, 9], [10]]);
    const first = parts["cdc-000000.csv"]!.split("\n");
    assert.equal(first[0], "__op,__pos,id,v");
    assert.equal(first[3], `update,"{""t"":2,""id"":3}",3,v3`);
    assert.equal(first[4], `delete,"{""t"":2,""id"":4}",4,v4`);
    assert.deepEqual(seen.acks, [{ t: 2 }, { t: 3 }, { t: 4 }]);
    const saved = await checkpointStore(job, state).load(new AbortController().signal);
    assert.deepEqual(saved?.position, { t: 4 });
    assert.equal(saved?.nextPart, 3);
    const manifest = JSON.parse(await Deno.readTextFile(join(dir, "out", "manifest.json")));
    assert.equal(manifest.status, "success");
    assert.deepEqual(manifest.parts.map((p: { path: string }) => p.path), Object.keys(parts));
    await Deno.stat(join(dir, "out", "_SUCCESS"));

    // The next run starts after the checkpoint and numbers its parts on.
    const more = [...script, { ids: [11, 12] }];
    const again = await runOnce(job, state, scripted(more, seen));
    assert.equal(again.outcome.rows, 2);
    assert.deepEqual(seen.starts.at(-1), { t: 4 });
    assert.deepEqual(idsOf((await partsIn(dir))["cdc-000003.csv"]!), [11, 12]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a part no checkpoint covers is replaced by the next run, not duplicated", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const job = await jobIn(dir, "rollover: 2, until_current: true, checkpoint: ./ckpt/t.json");
    await using state = await openMemoryStateStore();
    // Once the (absent) checkpoint was read, a file takes the checkpoint folder's place: the
    // save after part 0's commit fails.
    const seen: Seen = { starts: [], acks: [] };
    const script: Txn[] = [{ ids: [1, 2] }, { ids: [3] }];
    const blocked = scripted(script, seen);
    const failed = await runOnce(job, state, async (j, o) => {
      await Deno.writeTextFile(join(dir, "ckpt"), "in the way");
      return await blocked(j, o);
    });
    assert.equal(failed.outcome.status, "failed");
    assert.equal(failed.outcome.error?.code, "cdc.checkpoint_write_failed");
    assert.deepEqual(seen.acks, [], "nothing acknowledged before its checkpoint");
    assert.deepEqual(Object.keys(await partsIn(dir)), ["cdc-000000.csv"]);

    await Deno.remove(join(dir, "ckpt"));
    const ok = await runOnce(job, state, scripted(script, seen));
    assert.equal(ok.outcome.status, "success", JSON.stringify(ok.outcome.error));
    assert.deepEqual(seen.starts, [undefined, undefined]);
    const parts = await partsIn(dir);
    assert.deepEqual(Object.values(parts).map(idsOf), [[1, 2], [3]], "each change once");
    const file = JSON.parse(await Deno.readTextFile(join(dir, "ckpt", "t.json")));
    assert.deepEqual(file.position, { t: 2 });
    assert.equal(file.next_part, 2);
    assert.equal(file.engine, "postgres");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stop finishes the transaction in hand and commits the open part", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const job = await jobIn(dir, "");
    await using state = await openMemoryStateStore();
    const seen: Seen = { starts: [], acks: [] };
    const stop = new AbortController();
    const reader = scripted([{ ids: [1, 2, 3, 4, 5] }, { ids: [6] }], seen, true);
    // Stop as soon as the first chunk (mid-transaction) was read.
    const events: RivetEvent[] = [];
    const outcome = await runCdcJob(job, {
      state,
      emit: (e) => {
        events.push(e);
        if (e.type === "batch_read" && e.totalRows === 2) stop.abort();
      },
      signal: stop.signal,
      rss: () => 0,
      open: {
        cdc: reader,
        format: (spec) => createFormat(spec),
        destination: (spec, o) =>
          openDestination(spec, { baseDir: dir, env: () => undefined, ...o }),
      },
    });
    assert.equal(outcome.status, "success", JSON.stringify(outcome.error));
    // The whole first transaction, not the second.
    assert.deepEqual(Object.values(await partsIn(dir)).map(idsOf), [[1, 2, 3, 4, 5]]);
    assert.deepEqual(seen.acks, [{ t: 1 }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a live stream stopped while waiting ends cleanly; max_events stops at a boundary", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const job = await jobIn(dir, "max_events: 3");
    await using state = await openMemoryStateStore();
    const seen: Seen = { starts: [], acks: [] };
    const capped = await runOnce(
      job,
      state,
      scripted([{ ids: [1, 2] }, { ids: [3, 4] }, { ids: [5] }], seen, true),
    );
    assert.equal(capped.outcome.status, "success");
    assert.equal(capped.outcome.rows, 4, "stops at the end of the transaction that reached 3");

    const live = await jobIn(dir, "");
    const stop = new AbortController();
    const waiting = runOnce(
      live,
      state,
      scripted([{ ids: [1, 2] }, { ids: [3, 4] }, { ids: [5] }], seen, true),
      stop.signal,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    stop.abort();
    const { outcome } = await waiting;
    assert.equal(outcome.status, "success");
    assert.equal(outcome.rows, 1, "the live stream resumed after the first run's checkpoint");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a part open for rollover_seconds is committed while a live stream waits", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const job = await jobIn(dir, "rollover_seconds: 1");
    await using state = await openMemoryStateStore();
    const seen: Seen = { starts: [], acks: [] };
    const stop = new AbortController();
    const running = runOnce(job, state, scripted([{ ids: [1, 2, 3] }], seen, true), stop.signal);
    // Well before the stop, the waiting run has committed its part and acknowledged it.
    const deadline = Date.now() + 10_000;
    while (seen.acks.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.deepEqual(seen.acks, [{ t: 1 }]);
    assert.deepEqual(Object.values(await partsIn(dir)).map(idsOf), [[1, 2, 3]]);
    stop.abort();
    const { outcome } = await running;
    assert.equal(outcome.status, "success");
    assert.equal(outcome.files, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
