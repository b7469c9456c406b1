import assert from "node:assert/strict";
import { flavourOf, sessionStatements } from "./read.ts";
import { nextBatchRows } from "../_batch_sizing.ts";

Deno.test("batch rows follow the memory target between 500 and batchSize", () => {
  assert.equal(nextBatchRows(100, { batchSize: 10_000, batchMemoryBytes: 100_000 }), 1000);
  assert.equal(nextBatchRows(100, { batchSize: 10_000, batchMemoryBytes: 1000 }), 500);
  assert.equal(nextBatchRows(100, { batchSize: 300, batchMemoryBytes: 1000 }), 300);
  assert.equal(nextBatchRows(1, { batchSize: 50_000, batchMemoryBytes: 0 }), 50_000);
  // No target: 64 MB.
  assert.equal(nextBatchRows(1024, { batchSize: 1e9, batchMemoryBytes: 0 }), 65_536);
});

Deno.test("the statement timeout uses each flavour's variable and unit, and is reset", () => {
  assert.equal(flavourOf("5.5.5-10.11.18-MariaDB-0+deb12u1"), "mariadb");
  assert.equal(flavourOf("8.0.36"), "mysql");
  assert.deepEqual(sessionStatements("mariadb", 2), {
    setup: "SET time_zone = '+00:00', SESSION max_statement_time = 2",
    reset: "SET time_zone = DEFAULT, SESSION max_statement_time = DEFAULT",
  });
  assert.equal(
    sessionStatements("mysql", 2).setup,
    "SET time_zone = '+00:00', SESSION max_execution_time = 2000",
  );
  assert.deepEqual(sessionStatements("mysql", 0), {
    setup: "SET time_zone = '+00:00'",
    reset: "SET time_zone = DEFAULT",
  });
});
