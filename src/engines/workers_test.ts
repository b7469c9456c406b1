import assert from "node:assert/strict";
import type { ExportJob } from "../core/job.ts";
import { TUNING_PROFILES } from "../config/tuning.ts";
import { shareBatchMemory } from "./workers.ts";

function jobWith(batchSizeMemoryMb: number | undefined): ExportJob {
  const tuning = {
    ...TUNING_PROFILES.fast,
    batchSizeMemoryMb,
    profile: "fast",
    profileLabel: "fast",
  };
  return { tuning } as unknown as ExportJob;
}

Deno.test("parallel workers share the export's fetch memory target instead of each taking it", () => {
  assert.equal(shareBatchMemory(jobWith(64), 4).tuning.batchSizeMemoryMb, 16);
  assert.equal(shareBatchMemory(jobWith(64), 3).tuning.batchSizeMemoryMb, 21);
  // No target set: the default (32 MB) is shared; never below 4 MB a worker.
  assert.equal(shareBatchMemory(jobWith(undefined), 2).tuning.batchSizeMemoryMb, 16);
  assert.equal(shareBatchMemory(jobWith(8), 16).tuning.batchSizeMemoryMb, 4);
  // One worker keeps the job as it is.
  const single = jobWith(64);
  assert.equal(shareBatchMemory(single, 1), single);
});
