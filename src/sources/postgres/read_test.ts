import assert from "node:assert/strict";
import { nextFetchSize, parseWorkMem } from "./read.ts";

Deno.test("parseWorkMem reads every unit SHOW work_mem prints", () => {
  assert.equal(parseWorkMem("4MB"), 4 * 1024 * 1024);
  assert.equal(parseWorkMem("64kB"), 64 * 1024);
  assert.equal(parseWorkMem("1GB"), 1024 ** 3);
  assert.equal(parseWorkMem("2048"), 2048 * 1024);
});

Deno.test("nextFetchSize obeys the memory target, work_mem and the batch ceiling", () => {
  const base = { batchSize: 50_000, batchMemoryBytes: 0, workMemBytes: 0 };
  assert.equal(nextFetchSize(100, base), 50_000);
  assert.equal(nextFetchSize(100, { ...base, batchMemoryBytes: 1_000_000 }), 10_000);
  // 70% of 4 MB / max(64, 1.2 × 40 B) = 45,875 rows.
  assert.equal(nextFetchSize(40, { ...base, workMemBytes: 4 * 1024 * 1024 }), 45_875);
  // Never below 100 rows, never above batchSize.
  assert.equal(nextFetchSize(10_000_000, { ...base, batchMemoryBytes: 1_000 }), 100);
  assert.equal(nextFetchSize(10_000_000, { ...base, batchSize: 50, batchMemoryBytes: 1_000 }), 50);
});
