// The writes that carry the `in_state_write` crash point (docs/run-guarantees.md), killed
// inside their transaction in a child process: each must leave the state as it was before. The
// PostgreSQL store runs the same cases in tests/e2e/state_postgres_test.ts.
import { join } from "node:path";
import { SqliteStateStore } from "./sqlite.ts";
import { crashCases, crashInChild } from "./store_contract_cases.ts";

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
      await crashInChild(
        `import { SqliteStateStore } from ${JSON.stringify(storeUrl)};
         const state = await SqliteStateStore.open(${JSON.stringify(path)});`,
        c.call,
      );
      await using state = await SqliteStateStore.open(path);
      await c.check(state);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
