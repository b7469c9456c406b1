// The writes that carry the `in_state_write` crash point (docs/run-guarantees.md), killed
// inside their transaction in a child process: each must leave the state as it was before.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { StateStore } from "../core/state.ts";
import { CRASH_EXIT_CODE } from "../_util/test_hook.ts";
import { SqliteStateStore } from "./sqlite.ts";

const T0 = "2024-05-01T10:00:00.000Z";

interface CrashCase {
  readonly name: string;
  /** Writes the state the killed call must leave as it is. */
  setup(state: StateStore): Promise<void>;
  /** The call, as the source text of a statement on `state`. */
  readonly call: string;
  /** What the state reads back after the kill. */
  check(state: StateStore): Promise<void>;
}

const crashCases: readonly CrashCase[] = [
  {
    name: "advanceCursor keeps the previous cursor",
    setup: (s) => s.advanceCursor({ exportName: "o", lastCursorValue: "1", lastRunAt: T0 }),
    call: `state.advanceCursor({ exportName: "o", lastCursorValue: "2", lastRunAt: "x" })`,
    async check(s) {
      assert.deepEqual(await s.readCursor("o"), {
        exportName: "o",
        lastCursorValue: "1",
        lastRunAt: T0,
      });
    },
  },
  {
    name: "completeChunk leaves the task running",
    async setup(s) {
      const tasks = [{ startKey: "1", endKey: "2" }];
      await s.saveChunkPlan({ runId: "r1", exportName: "o", planHash: "h", maxAttempts: 1, tasks });
      await s.claimChunk("r1");
    },
    call: `state.completeChunk({ runId: "r1", chunkIndex: 0, rowsWritten: 5 })`,
    async check(s) {
      const [task] = await s.listChunkTasks("r1");
      assert.deepEqual([task?.status, task?.rowsWritten], ["running", undefined]);
    },
  },
];

for (const c of crashCases) {
  Deno.test(`SqliteStateStore killed mid state write: ${c.name}`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "rivet_state_crash_" });
    try {
      const path = join(dir, ".rivet_state.db");
      {
        await using state = await SqliteStateStore.open(path);
        await c.setup(state);
      }
      const storeUrl = new URL("./sqlite.ts", import.meta.url).href;
      const script = `import { SqliteStateStore } from ${JSON.stringify(storeUrl)};
        const state = await SqliteStateStore.open(${JSON.stringify(path)});
        await ${c.call};
        console.log("not reached");`;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--ext=ts", script],
        env: { RIVET_TEST_CRASH_AT: "in_state_write" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, CRASH_EXIT_CODE, stderr);
      assert.match(stderr, /crashing at in_state_write/);
      await using state = await SqliteStateStore.open(path);
      await c.check(state);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
