// The PostgreSQL state backend (RIVET_STATE_URL) against a throwaway cluster: the whole contract
// table that the SQLite store passes, then what only a shared server has: claims from several
// sessions at once, migrations from several processes at once, and the errors of a role that
// may not create the schema, an unreachable server and a schema from a newer rivet.
import assert from "node:assert/strict";
import { RivetError } from "../../src/core/errors.ts";
import type { StateStore } from "../../src/core/state.ts";
import { openRunStateStore, parseStateUrl } from "../../src/engines/state.ts";
import { cases, crashCases, crashInChild } from "../../src/state/store_contract_cases.ts";
import { STATE_SCHEMA_VERSION } from "../../src/state/mod.ts";
import { type PgServer, startPostgres } from "../_helpers/pg_server.ts";
import { makeCertificates } from "../_helpers/tls_certs.ts";

const opts = { sanitizeResources: false, sanitizeOps: false } as const;

let schemas = 0;
/** A store on a fresh schema of its own. */
function openStore(pg: PgServer, url = pg.url): Promise<StateStore> {
  const schema = `contract_${++schemas}`;
  return openRunStateStore("/nonexistent", {
    env: (name) => name === "RIVET_STATE_URL" ? `${url}?schema=${schema}` : undefined,
  });
}

function envOf(url: string) {
  return (name: string) => name === "RIVET_STATE_URL" ? url : undefined;
}

/** `n` stores on one URL, opened at once (as `n` processes starting together would). */
function openStores(url: string, n: number): Promise<StateStore[]> {
  return Promise.all(
    Array.from({ length: n }, () => openRunStateStore("/nonexistent", { env: envOf(url) })),
  );
}

Deno.test({
  name: "PostgresStateStore passes the state contract",
  ...opts,
  async fn(t) {
    await using pg = await startPostgres();
    for (const [name, body] of cases) {
      await t.step(name, async () => {
        const store = await openStore(pg);
        try {
          await body(store);
        } finally {
          await store.close();
        }
      });
    }
  },
});

Deno.test({
  name: "PostgresStateStore killed mid state write leaves the state as it was",
  ...opts,
  async fn(t) {
    await using pg = await startPostgres();
    const openUrl = new URL("../../src/engines/state.ts", import.meta.url).href;
    for (const [i, c] of crashCases.entries()) {
      await t.step(c.name, async () => {
        const url = `${pg.url}?schema=crash_${i}`;
        {
          await using state = await openRunStateStore("/x", { env: envOf(url) });
          await c.setup(state);
        }
        await crashInChild(
          `import { openRunStateStore } from ${JSON.stringify(openUrl)};
           const state = await openRunStateStore("/x");`,
          c.call,
          { RIVET_STATE_URL: url },
        );
        await using state = await openRunStateStore("/x", { env: envOf(url) });
        await c.check(state);
      });
    }
  },
});

Deno.test({
  name: "PostgresStateStore: sessions claiming at once each get distinct tasks, all of them",
  ...opts,
  async fn() {
    await using pg = await startPostgres();
    const url = `${pg.url}?schema=claims`;
    const stores = await openStores(url, 4);
    try {
      await stores[0]!.saveChunkPlan({
        runId: "r1",
        exportName: "orders",
        planHash: "h",
        maxAttempts: 1,
        tasks: Array.from({ length: 40 }, (_, i) => ({ startKey: `${i}`, endKey: `${i + 1}` })),
      });
      const claimed = await Promise.all(stores.map(async (store, worker) => {
        const mine: number[] = [];
        for (;;) {
          const task = await store.claimChunk("r1", { host: `host-${worker}`, pid: worker });
          if (task === undefined) return mine;
          mine.push(task.chunkIndex);
          await store.completeChunk({ runId: "r1", chunkIndex: task.chunkIndex, rowsWritten: 1 });
        }
      }));
      const all = claimed.flat().sort((a, b) => a - b);
      assert.deepEqual(all, Array.from({ length: 40 }, (_, i) => i), "each task exactly once");
      assert.ok(claimed.filter((c) => c.length > 0).length >= 2, `${claimed.map((c) => c.length)}`);
      const tasks = await stores[1]!.listChunkTasks("r1");
      assert.ok(tasks.every((task) => task.status === "completed" && task.attempts === 1));
      const hosts = new Set(tasks.map((task) => task.claimedByHost));
      assert.ok(hosts.size >= 2, [...hosts].join(","));
      await stores[2]!.completeChunkRun("r1");
    } finally {
      for (const store of stores) await store.close();
    }
  },
});

Deno.test({
  name: "PostgresStateStore: processes opening a fresh schema at once migrate it exactly once",
  ...opts,
  async fn() {
    await using pg = await startPostgres();
    const url = `${pg.url}?schema=racing`;
    const stores = await openStores(url, 4);
    for (const store of stores) await store.close();
    const versions = await pg.psql(
      "SELECT string_agg(version::text, ',' ORDER BY version) FROM racing.rivet_schema_version",
    );
    const expected = Array.from({ length: STATE_SCHEMA_VERSION }, (_, i) => i + 1).join(",");
    assert.equal(versions.trim(), expected);
  },
});

Deno.test({
  name: "PostgresStateStore: a role without CREATE gets the DBA's SQL; a granted schema works",
  ...opts,
  async fn() {
    await using pg = await startPostgres();
    await pg.psql(
      "CREATE ROLE etl LOGIN PASSWORD 'S3cret-pw!'; REVOKE CREATE ON DATABASE postgres FROM PUBLIC;",
    );
    const url = `postgresql://etl:S3cret-pw!@${pg.host}:${pg.port}/postgres`;
    const error = await openRunStateStore("/x", { env: envOf(url) }).then(
      () => assert.fail("opened without the privilege"),
      (e: unknown) => e,
    );
    assert.ok(error instanceof RivetError, String(error));
    assert.equal(error.code, "state.schema_privilege");
    assert.equal(error.exitCode, 1);
    assert.match(error.hint ?? "", /CREATE SCHEMA IF NOT EXISTS rivet_state AUTHORIZATION/);
    assert.doesNotMatch(`${error.message} ${error.hint}`, /S3cret-pw/);
    await pg.psql("CREATE SCHEMA rivet_state AUTHORIZATION etl;");
    await using store = await openRunStateStore("/x", { env: envOf(url) });
    await store.advanceCursor({ exportName: "o", lastCursorValue: "1", lastRunAt: "t" });
    assert.equal((await store.readCursor("o"))?.lastCursorValue, "1");
  },
});

Deno.test({
  name: "PostgresStateStore: an unreachable server is transient; a newer schema is refused",
  ...opts,
  async fn() {
    await using pg = await startPostgres();
    const url = `${pg.url}?schema=newer`;
    {
      await using _store = await openRunStateStore("/x", { env: envOf(url) });
    }
    await pg.psql(
      "INSERT INTO newer.rivet_schema_version VALUES (" + (STATE_SCHEMA_VERSION + 1) + ", 'x')",
    );
    const tooNew = await openRunStateStore("/x", { env: envOf(url) }).catch((e) => e);
    assert.equal(tooNew.code, "state.schema_too_new");
    await pg.stopServer();
    const down = await openRunStateStore("/x", { env: envOf(url) }).catch((e) => e);
    assert.ok(down instanceof RivetError, String(down));
    assert.equal(down.code, "state.unreachable");
    assert.equal(down.exitCode, 2);
    assert.match(down.message, /state database at 127\.0\.0\.1:\d+\/postgres cannot be reached/);
  },
});

Deno.test("parseStateUrl applies the TLS policy of sources and checks the schema name", () => {
  const refused = (url: string) => {
    try {
      parseStateUrl(url);
    } catch (error) {
      return (error as RivetError).code;
    }
    return "accepted";
  };
  assert.equal(refused("postgres://u:pw@db.internal/ops"), "state.tls_required");
  assert.equal(refused("postgres://u@db.internal/ops?sslmode=prefer"), "state.invalid_url");
  assert.equal(refused("postgres://u@127.0.0.1/ops?schema=Bad-Name"), "state.invalid_schema");
  assert.equal(refused("mysql://u@127.0.0.1/ops"), "state.invalid_url");
  assert.equal(refused("postgres://u@db.internal/ops?sslmode=require"), "accepted");
  const plain = parseStateUrl("postgres://u:pw@db.internal:6543/ops?sslmode=disable");
  assert.equal(plain.where, "db.internal:6543/ops");
  assert.match(plain.warnings.join(), /TLS is not enforced for state database host/);
  assert.equal(parseStateUrl("postgresql://u@localhost/ops").schema, "rivet_state");
  // A config's state.url_env: the messages name that variable.
  assert.throws(
    () => parseStateUrl("postgres://u:pw@db.internal/ops", "ORDERS_STATE_URL"),
    (e: RivetError) =>
      /ORDERS_STATE_URL has no sslmode/.test(e.message) &&
      !/RIVET_STATE_URL/.test(`${e.message} ${e.hint}`),
  );
  assert.equal(
    parseStateUrl("postgres://u@127.0.0.1/ops", "ORDERS_STATE_URL").variable,
    "ORDERS_STATE_URL",
  );
});

Deno.test({
  name: "PostgresStateStore over TLS: sslmode=verify-full with sslrootcert relative to the config",
  ...opts,
  async fn() {
    const certs = await makeCertificates({ forPostgres: true });
    const configDir = await Deno.makeTempDir({ prefix: "rivet_state_tls_" });
    try {
      await using pg = await startPostgres({
        conf: ["ssl=on", `ssl_cert_file='${certs.cert}'`, `ssl_key_file='${certs.key}'`],
      });
      await Deno.copyFile(certs.ca, `${configDir}/state-ca.pem`);
      const url = (ca: string) =>
        `${pg.url}?schema=tls&sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}`;
      {
        await using store = await openRunStateStore(configDir, {
          env: envOf(url("state-ca.pem")),
        });
        await store.advanceCursor({ exportName: "o", lastCursorValue: "7", lastRunAt: "t" });
        const encrypted = await pg.psql(
          "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) " +
            "WHERE a.application_name = 'rivet-state' AND s.ssl",
        );
        assert.equal(encrypted.trim(), "1", "the state session is encrypted");
      }
      await Deno.copyFile(certs.otherCa, `${configDir}/other-ca.pem`);
      const refused = await openRunStateStore(configDir, { env: envOf(url("other-ca.pem")) })
        .catch((e) => e);
      assert.ok(refused instanceof RivetError, String(refused));
      assert.equal(refused.code, "state.connect_refused");
      assert.match(
        refused.message,
        /state database at 127\.0\.0\.1:\d+\/postgres refused rivet: TLS/,
      );
      assert.match(refused.message, /sslrootcert/);
    } finally {
      await Deno.remove(configDir, { recursive: true });
      await Deno.remove(certs.dir, { recursive: true });
    }
  },
});
