/**
 * An object store that fails a request once: `rivet run` (real PostgreSQL, the in-repo GCS
 * server with an injected 503) retries it, says so on stderr as a warning naming the export,
 * the operation, the attempt and the delay, and the run's journal counts the retry; the same
 * from a chunk worker of a `parallel: 2` export.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { spawnCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { startGcsServer } from "../_helpers/gcs_server.ts";
import { openStateStore } from "../../src/state/mod.ts";

interface StoredJournal {
  events: { event: string; message?: string }[];
  completed: { retries: number; status: string };
}

async function journalOf(dir: string, exportName: string): Promise<StoredJournal> {
  await using state = await openStateStore(dir);
  const [entry] = await state.listJournal({ exportName, last: 1 });
  assert.ok(entry, `a journal for ${exportName}`);
  return entry.journal as StoredJournal;
}

Deno.test({
  name:
    "a retried object-store request is a warning and counts in the journal (inline and workers)",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await using gcs = await startGcsServer({ buckets: ["rivet-retry"] });
    await pg.psql(
      `CREATE TABLE ev AS SELECT i::int8 AS id, md5(i::text) AS s FROM generate_series(1, 2000) i;
       ALTER TABLE ev ADD PRIMARY KEY (id);`,
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_dest_retry_" });
    try {
      const dest = (prefix: string) =>
        `{ type: gcs, bucket: rivet-retry, prefix: "${prefix}", endpoint: "${gcs.url}", ` +
        "allow_anonymous: true }";
      const cfg = join(dir, "plan.yaml");
      await Deno.writeTextFile(
        cfg,
        `source:
  type: postgres
  url_env: DB_URL
exports:
  - name: full
    table: ev
    format: csv
    destination: ${dest("full/")}
  - name: chunks
    table: ev
    mode: chunked
    chunk_column: id
    chunk_size: 500
    parallel: 2
    format: csv
    destination: ${dest("chunks/")}
`,
      );
      const env = { DB_URL: pg.url };

      await t.step("inline", async () => {
        gcs.inject({ route: "upload.multipart", status: 503 });
        const res = await spawnCli(["run", "-c", cfg, "-e", "full"], { env });
        assert.equal(res.code, 0, res.stderr);
        assert.match(
          res.stderr,
          /Warning: export 'full': GCS upload 'gs:\/\/rivet-retry\/full\/full_\d{8}_\d{6}\.csv' failed \(HTTP 503: Injected failure\); retry 1\/5 in \d+ ms\n/,
        );
        const journal = await journalOf(dir, "full");
        assert.equal(journal.completed.status, "success");
        assert.equal(journal.completed.retries, 1);
        assert.equal(journal.events.filter((e) => e.event === "retry_attempted").length, 1);
      });

      await t.step("from a chunk worker", async () => {
        gcs.inject({ route: "upload.multipart", status: 503 });
        const res = await spawnCli(["run", "-c", cfg, "-e", "chunks"], { env });
        assert.equal(res.code, 0, res.stderr);
        assert.match(
          res.stderr,
          /Warning: export 'chunks': GCS upload 'gs:\/\/rivet-retry\/chunks\/chunks_\S+\.csv' failed \(HTTP 503: Injected failure\); retry 1\/5 in \d+ ms\n/,
        );
        const journal = await journalOf(dir, "chunks");
        assert.equal(journal.completed.retries, 1);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
