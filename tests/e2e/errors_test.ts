/**
 * End to end: server-side failures through `rivet run`, each with the right exit class, a clear
 * one-line message, no retry for permanent errors, nothing written, and no terminal control
 * bytes from the database reaching the terminal.
 */
import assert from "node:assert/strict";
import { startPostgres } from "../_helpers/pg_server.ts";
import { spawnCli } from "../_helpers/cli.ts";

Deno.test({
  name: "rivet run reports server errors by class and writes nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await pg.psql(`
      CREATE TABLE secret_t (id int8);
      CREATE TABLE open_t (id int8);
      INSERT INTO open_t VALUES (1), (2);
      CREATE ROLE limited LOGIN;
      GRANT SELECT ON open_t TO limited;
    `);
    const dir = await Deno.makeTempDir({ prefix: "rivet_err_" });

    const run = async (name: string, exports: string, url = pg.url) => {
      const cfg = `${dir}/${name}.yaml`;
      await Deno.writeTextFile(
        cfg,
        `source:
  type: postgres
  url_env: PG_URL
  tuning: { max_retries: 5, retry_backoff_ms: 5000 }
exports:
${exports}`,
      );
      const started = Date.now();
      const res = await spawnCli(["run", "-c", cfg], { env: { PG_URL: url } });
      return { ...res, ms: Date.now() - started };
    };
    const exportOf = (name: string, query: string) =>
      `  - name: ${name}
    query: ${JSON.stringify(query)}
    format: csv
    destination: { type: local, path: ${dir}/out/${name} }
`;
    const noFiles = async (name: string) => {
      const entries = await Array.fromAsync(Deno.readDir(`${dir}/out/${name}`)).catch(() => []);
      assert.deepEqual(entries, [], `${name}: nothing written`);
    };

    await t.step(
      "a syntax error is permanent: exit 1 at once, the server's text, no retry",
      async () => {
        const res = await run("syntax", exportOf("syntax", "SELCT 1"));
        assert.equal(res.code, 1, res.stderr);
        assert.match(res.stderr, /syntax error/);
        assert.ok(!/retry/i.test(res.stderr), res.stderr);
        assert.ok(res.ms < 15_000, `took ${res.ms} ms`);
        await noFiles("syntax");
      },
    );

    await t.step("a missing table is permanent and named", async () => {
      const res = await run("missing", exportOf("missing", "SELECT * FROM nope"));
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /nope/);
      assert.ok(!/retry/i.test(res.stderr));
      await noFiles("missing");
    });

    await t.step(
      "a missing privilege fails that export only; the allowed one completes",
      async () => {
        const url = `postgresql://limited@127.0.0.1:${pg.port}/postgres`;
        const res = await run(
          "privilege",
          exportOf("allowed", "SELECT * FROM open_t ORDER BY id") +
            exportOf("denied", "SELECT * FROM secret_t"),
          url,
        );
        assert.equal(res.code, 1, res.stderr);
        assert.match(res.stderr, /denied/);
        assert.match(res.stderr, /permission denied/i);
        assert.ok(!/retry/i.test(res.stderr));
        const allowed = await Array.fromAsync(Deno.readDir(`${dir}/out/allowed`));
        assert.deepEqual(
          allowed.map((e) => e.name.replace(/_\d{8}_\d{6}/, "")).sort(),
          ["_SUCCESS", "allowed.csv", "manifest.json"],
        );
        await noFiles("denied");
      },
    );

    await t.step("escape sequences in server messages never reach the terminal", async () => {
      const res = await run(
        "inject",
        exportOf("inject", 'SELECT * FROM "evil\u001b[31mred\u001b]0;title\u0007"'),
      );
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /evil/);
      assert.ok(!res.stderr.includes("\u001b"), JSON.stringify(res.stderr));
      assert.ok(!res.stderr.includes("\u0007"));
    });

    await Deno.remove(dir, { recursive: true });
  },
});
