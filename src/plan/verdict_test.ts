import assert from "node:assert/strict";
import { judge, type VerdictFacts } from "./verdict.ts";

const base: VerdictFacts = { strategy: "full", parallel: 1, accessOk: true };
const chunked: VerdictFacts = {
  strategy: "chunked-windows",
  parallel: 1,
  accessOk: true,
  column: "id",
  columnExists: true,
  columnIndexed: true,
};

Deno.test("verdict: a query that does not run, or a missing driving column, is UNSAFE", () => {
  assert.equal(judge({ ...base, accessOk: false }).verdict, "UNSAFE");
  const missing = judge({ ...chunked, columnExists: false });
  assert.equal(missing.verdict, "UNSAFE");
  assert.deepEqual(missing.warnings.map((w) => w.code), ["preflight.column_missing"]);
  assert.equal(missing.recommendedParallel, 1);
});

Deno.test("verdict: full by table size", () => {
  assert.equal(judge({ ...base, rowEstimate: 100_000 }).verdict, "EFFICIENT");
  assert.equal(judge({ ...base, rowEstimate: 100_001 }).verdict, "ACCEPTABLE");
  assert.equal(judge(base).verdict, "ACCEPTABLE", "unknown size");
  assert.equal(judge({ ...base, rowEstimate: 1_000_000 }).verdict, "ACCEPTABLE");
  const large = judge({ ...base, rowEstimate: 1_000_001 });
  assert.equal(large.verdict, "DEGRADED");
  assert.deepEqual(large.warnings.map((w) => w.code), ["preflight.large_full_scan"]);
  assert.match(large.warnings[0]!.suggestion, /mode: chunked/);
  assert.equal(large.recommendedProfile, "safe");
  assert.equal(
    judge({ strategy: "snapshot-downgrade", parallel: 1, accessOk: true }).verdict,
    "EFFICIENT",
  );
});

Deno.test("verdict: chunked reads by index, size and parallel", () => {
  const indexed = judge({ ...chunked, rowEstimate: 6_000_000, parallel: 4 });
  assert.equal(indexed.verdict, "EFFICIENT");
  assert.equal(indexed.recommendedParallel, 4);
  assert.deepEqual(indexed.warnings, []);
  assert.equal(judge({ ...chunked, rowEstimate: 400_000 }).recommendedParallel, 1);
  assert.equal(judge({ ...chunked, rowEstimate: 1_000_000 }).recommendedParallel, 2);
  const high = judge({ ...chunked, rowEstimate: 400_000, parallel: 8 });
  assert.deepEqual(high.warnings.map((w) => [w.code, w.suggestion]), [
    ["preflight.parallel_high", "parallel: 1"],
  ]);

  const noIndex = judge({ ...chunked, columnIndexed: false, rowEstimate: 50_000_000 });
  assert.equal(noIndex.verdict, "DEGRADED", "one scan per chunk, one at a time");
  assert.equal(noIndex.recommendedParallel, 1);
  const parallel = judge({
    ...chunked,
    columnIndexed: false,
    rowEstimate: 50_000_000,
    parallel: 4,
  });
  assert.equal(parallel.verdict, "UNSAFE");
  assert.deepEqual(parallel.warnings.map((w) => w.code), ["preflight.parallel_full_scans"]);
  const smaller = judge({ ...chunked, columnIndexed: false, rowEstimate: 10_000_000, parallel: 4 });
  assert.equal(smaller.verdict, "DEGRADED", "up to 10M rows, parallel scans are degraded");

  const { columnIndexed: _, ...notKnown } = chunked;
  const unknown = judge({ ...notKnown, strategy: "keyset" });
  assert.equal(unknown.verdict, "ACCEPTABLE");
  assert.deepEqual(unknown.warnings.map((w) => w.code), ["preflight.index_unknown"]);
});

Deno.test("verdict: incremental and time windows", () => {
  const inc: VerdictFacts = { ...chunked, strategy: "incremental", column: "updated_at" };
  assert.equal(judge(inc).verdict, "EFFICIENT");
  assert.equal(judge({ ...inc, columnIndexed: false, rowEstimate: 5_000 }).verdict, "ACCEPTABLE");
  const scan = judge({ ...inc, columnIndexed: false, rowEstimate: 500_000 });
  assert.equal(scan.verdict, "DEGRADED");
  assert.match(scan.warnings[0]!.message, /every run scans the whole table/);
  assert.equal(
    judge({ ...inc, strategy: "time_window", columnIndexed: false }).verdict,
    "DEGRADED",
  );
});

Deno.test("verdict: the recommended profile follows the environment and the verdict", () => {
  assert.equal(judge({ ...chunked, environment: "production" }).recommendedProfile, "safe");
  assert.equal(judge({ ...chunked, environment: "local" }).recommendedProfile, "fast");
  assert.equal(judge(chunked).recommendedProfile, "balanced");
  assert.equal(
    judge({ ...base, accessOk: false, environment: "local" }).recommendedProfile,
    "safe",
  );
});
