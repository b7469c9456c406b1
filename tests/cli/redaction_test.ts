/**
 * Redaction against a live PostgreSQL: a short password is masked where it stands as a
 * credential, never inside paths or names that merely contain it, and a server error quoting a
 * 200 KB literal is reported in seconds.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runBounded } from "../_helpers/bounded_cli.ts";
import { spawnCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";

Deno.test({
  name: "a short password never garbles paths in stderr or summary.json; long errors stay fast",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    const { user } = pg.passwordUser;
    await pg.psql(`ALTER ROLE ${user} PASSWORD 'rivet'; CREATE TABLE t AS SELECT 1 AS id;`);
    await pg.psql(`GRANT SELECT ON t TO ${user}`);
    // The temp folder's name holds "rivet", as does the `.rivet/runs` report folder.
    const dir = await Deno.makeTempDir({ prefix: "rivet_redaction_" });
    try {
      await t.step("paths holding the short password stay readable", async () => {
        const path = join(dir, "rivet.yaml");
        await Deno.writeTextFile(
          path,
          `source:\n  type: postgres\n  url: postgresql://${user}:rivet@${pg.host}:${pg.port}/postgres\n` +
            `exports:\n  - {name: rivet-cfg-matrix-test, table: t, format: csv, ` +
            `destination: {type: local, path: ${dir}/rivet-out}}\n`,
        );
        const res = await spawnCli(["run", "-c", path, "--summary-output", join(dir, "s.json")]);
        assert.equal(res.code, 0, res.stderr);
        assert.ok(!res.stderr.includes("***"), res.stderr);
        assert.ok(res.stderr.includes(`report: ${dir}/.rivet/runs/`), res.stderr);
        const summary = await Deno.readTextFile(join(dir, "s.json"));
        assert.ok(!summary.includes("***"), summary);
        assert.ok(summary.includes("rivet-cfg-matrix-test"), summary);
        const reportPath = res.stderr.match(/report: (\S+)/)![1]!;
        const report = JSON.parse(await Deno.readTextFile(reportPath));
        assert.ok(String(report.output).includes(`${dir}/rivet-out`), report.output);
      });

      await t.step("a server error quoting a 200 KB literal is reported in seconds", async () => {
        const path = join(dir, "long.yaml");
        await Deno.writeTextFile(
          path,
          `source:\n  type: postgres\n  url: postgresql://${user}:rivet@${pg.host}:${pg.port}/postgres\n` +
            `  tuning: {max_retries: 0}\nexports:\n  - name: long\n` +
            `    query: "SELECT ('${"x".repeat(200_000)}')::int AS v"\n    format: csv\n` +
            `    destination: {type: local, path: ${dir}/long-out}\n`,
        );
        const res = await runBounded(["run", "-c", path], { timeoutMs: 90_000 });
        const ms = res.ms;
        assert.ok(!res.killed, `killed after ${ms} ms`);
        console.log(`  200 KB literal in a server error: exit ${res.code} in ${ms} ms`);
        assert.equal(res.code, 1, res.stderr.slice(0, 2000));
        assert.match(res.stderr, /invalid input syntax/);
        assert.ok(ms < 15_000, `${ms} ms`);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
