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

    await t.step(
      "a connection killed mid-stream is retried and the export completes once",
      async () => {
        await pg.psql("CREATE TABLE many AS SELECT i::int8 AS id FROM generate_series(1, 40000) i");
        const cfg = `${dir}/killed.yaml`;
        await Deno.writeTextFile(
          cfg,
          `source:
  type: postgres
  url_env: PG_URL
  tuning: { batch_size: 1000, throttle_ms: 40, max_retries: 2, retry_backoff_ms: 100 }
exports:
  - name: many
    query: SELECT id FROM many ORDER BY id
    format: csv
    destination: { type: local, path: ${dir}/out/many }
`,
        );
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--quiet",
            new URL("../../cli.ts", import.meta.url).pathname,
            "run",
            "-c",
            cfg,
          ],
          env: { PG_URL: pg.url },
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        // Kill the reading backend once, as a failover or a network cut would.
        let killed = "";
        for (let i = 0; i < 200 && killed !== "t"; i++) {
          killed = (await pg.psql(
            "SELECT coalesce(bool_or(pg_terminate_backend(pid)), false) FROM pg_stat_activity " +
              "WHERE query LIKE 'FETCH%_rivet' AND pid <> pg_backend_pid()",
          )).trim();
          if (killed !== "t") await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(killed, "t", "the backend was found and terminated");
        const res = await child.output();
        const stderr = new TextDecoder().decode(res.stderr);
        assert.equal(res.code, 0, stderr);
        assert.match(stderr, /retry 1\/2/);
        const files = (await Array.fromAsync(Deno.readDir(`${dir}/out/many`))).map((e) => e.name);
        const data = files.filter((f) => f.endsWith(".csv"));
        assert.equal(data.length, 1, files.join(","));
        const lines = (await Deno.readTextFile(`${dir}/out/many/${data[0]}`)).trimEnd().split("\n");
        assert.equal(lines.length, 40001);
        assert.equal(new Set(lines.slice(1)).size, 40000);
      },
    );

    await Deno.remove(dir, { recursive: true });
  },
});
