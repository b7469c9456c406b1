// The contract of core/state.ts (the case table of `store_contract_cases.ts`) against the SQLite store
// on a file and in memory (`:memory:`, what pipeline unit tests use); the PostgreSQL store runs
// the same table in tests/e2e/state_postgres_test.ts.
import assert from "node:assert/strict";
import { join } from "node:path";
import type { StateStore } from "../core/state.ts";
import { cases, T0 } from "./store_contract_cases.ts";
import { openMemoryStateStore } from "./open.ts";
import { SqliteStateStore } from "./sqlite.ts";
interface Impl {
  readonly name: string;
  open(): Promise<{ store: StateStore; cleanup(): Promise<void> }>;
}

const impls: readonly Impl[] = [
  {
    name: "SqliteStateStore (file)",
    async open() {
      const dir = await Deno.makeTempDir({ prefix: "rivet_state_contract_" });
      const store = await SqliteStateStore.open(join(dir, ".rivet_state.db"));
      return {
        store,
        async cleanup() {
          await store.close();
          await Deno.remove(dir, { recursive: true });
        },
      };
    },
  },
  {
    name: "SqliteStateStore (:memory:)",
    async open() {
      const store = await openMemoryStateStore();
      return { store, cleanup: () => store.close() };
    },
  },
];

for (const impl of impls) {
  for (const [name, body] of cases) {
    Deno.test(`${impl.name} ${name}`, async () => {
      const { store, cleanup } = await impl.open();
      try {
        await body(store);
      } finally {
        await cleanup();
      }
    });
  }
}

Deno.test("SqliteStateStore on :memory: writes no file, and each store is its own database", async () => {
  const cwd = Deno.cwd();
  const stray = () => [...Deno.readDirSync(cwd)].filter((e) => e.name.startsWith(":memory:"));
  assert.deepEqual(stray(), [], "no leftover of an earlier run");
  try {
    await using a = await SqliteStateStore.open(":memory:");
    await using b = await openMemoryStateStore();
    assert.equal(a.path, ":memory:");
    await a.advanceCursor({ exportName: "orders", lastCursorValue: "1", lastRunAt: T0 });
    assert.equal(await b.readCursor("orders"), undefined, "stores share nothing");
    assert.deepEqual(stray(), [], "nothing was created in the working directory");
  } finally {
    for (const entry of stray()) await Deno.remove(join(cwd, entry.name));
  }
});
