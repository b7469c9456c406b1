/**
 * `--resume` re-checks the parts its file log records with the same read-back as
 * `rivet validate` (`checkPart` in verify.ts): a real SQLite state and a real local folder.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { RivetEvent } from "../core/events.ts";
import { LocalDestination } from "../destinations/local.ts";
import { openStateStore } from "../state/mod.ts";
import { xxh3Hex } from "../_util/hash.ts";
import { reconcileResume } from "./chunk_resume.ts";
import { chunkFilePrefix } from "./naming.ts";

Deno.test("--resume quarantines a part whose size or bytes drifted and reruns a missing one", async () => {
  const dir = await Deno.makeTempDir({ prefix: "rivet_resume_readback_" });
  try {
    const startedAt = new Date("2026-03-04T05:06:07Z");
    const runId = "orders_20260304T050607.000";
    const names = [0, 1, 2, 3].map((i) => `${chunkFilePrefix("orders", startedAt)}${i}_p0.csv`);
    const bytes = new TextEncoder().encode("id\n1\n2\n3\n");
    await using state = await openStateStore(dir);
    await state.saveChunkPlan({
      runId,
      exportName: "orders",
      planHash: "0000000000000000",
      maxAttempts: 3,
      tasks: names.map((_, i) => ({ startKey: String(i * 10), endKey: String(i * 10 + 9) })),
    });
    for (const [i, fileName] of names.entries()) {
      const task = await state.claimChunk(runId);
      assert.equal(task?.chunkIndex, i);
      await state.recordPart({
        runId,
        exportName: "orders",
        fileName,
        rowCount: 3,
        bytes: bytes.length,
        format: "csv",
        createdAt: startedAt.toISOString(),
        contentFingerprint: `xxh3:${await xxh3Hex(bytes)}`,
        chunkIndex: i,
      });
      await state.completeChunk({ runId, chunkIndex: i, rowsWritten: 3, fileName });
    }
    const out = join(dir, "out");
    await Deno.mkdir(out);
    await Deno.writeFile(join(out, names[0]!), bytes); // intact
    await Deno.writeFile(join(out, names[1]!), new TextEncoder().encode("id\n1\n2\n4\n")); // bytes
    await Deno.writeFile(join(out, names[2]!), new TextEncoder().encode("id\n1\n")); // size
    // names[3] is missing.
    await using destination = await LocalDestination.open({ path: out }, { baseDir: dir });
    const events: RivetEvent[] = [];
    const parts = await reconcileResume({
      exportName: "orders",
      runId,
      destination,
      emit: (e) => events.push(e),
      signal: new AbortController().signal,
      state,
      startedAt,
      force: false,
      resumeHint: "rivet run --resume",
      resetHint: "rivet state reset",
    });
    assert.deepEqual(parts.map((p) => p.fileName), [names[0]]);
    const messages = events.flatMap((e) => e.type === "warning" ? [`${e.code}: ${e.message}`] : []);
    const about = (name: string) => messages.filter((m) => m.includes(name));
    assert.match(about(names[1]!).join("\n"), /resume\.quarantined.*no longer matches/);
    assert.match(
      about(names[2]!).join("\n"),
      /resume\.quarantined.*its size is 5 bytes, the run recorded 9/,
    );
    assert.match(about(names[3]!).join("\n"), /resume\.part_missing.*chunk 3 .*runs again/);
    assert.deepEqual(about(names[0]!), []);
    const tasks = await state.listChunkTasks(runId);
    assert.deepEqual(tasks.map((t) => t.status), ["completed", "pending", "pending", "pending"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
