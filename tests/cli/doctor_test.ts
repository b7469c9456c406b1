/**
 * `rivet doctor` against a live PostgreSQL and real folders: all checks pass (and the probe is
 * gone), a missing table, a missing column and an unsupported column type fail the export's
 * zero-row probe, a wrong password fails with a hint and never prints the password, a closed port and a
 * TLS mismatch get their own hints, an unwritable destination fails, a bad config stops early.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";

const MARKER = "S3CR3T_M4RK3R_doctor";

function assertNoSecret(res: { stdout: string; stderr: string }): void {
  assert.ok(!res.stdout.includes(MARKER) && !res.stderr.includes(MARKER), "no secret printed");
}

async function listNames(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) out.push(entry.name);
  return out.sort();
}

/** A config with one source block and local destinations (`null` = stdout). */
function plan(source: string, destinations: readonly (string | null)[]): string {
  const exports = destinations.map((path, i) =>
    `  - name: e${i}
    table: t
    format: csv
    destination: ${path === null ? "{ type: stdout }" : `{ type: local, path: "${path}" }`}
`
  ).join("");
  return `source:\n${source}exports:\n${exports}`;
}

/** Runs `mount -t tmpfs -o ro`, or returns why it cannot. */
async function mountReadOnly(dir: string): Promise<string | undefined> {
  const res = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir],
    stdout: "null",
    stderr: "piped",
  }).output().catch((e: unknown) => e as Error);
  if (res instanceof Error) return `mount is unavailable (${res.message})`;
  return res.success ? undefined : new TextDecoder().decode(res.stderr).trim();
}

Deno.test({
  name: "rivet doctor checks the config, the source login and every destination",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    const { user, password } = pg.passwordUser;
    await pg.psql(`ALTER ROLE ${user} PASSWORD '${password}${MARKER}'`);
    await pg.psql(
      `CREATE TABLE t (id int); CREATE TABLE shapes (id int, p point); ` +
        `GRANT SELECT ON t, shapes TO ${user}`,
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_doctor_" });
    const good = `postgresql://${user}:${
      encodeURIComponent(password + MARKER)
    }@${pg.host}:${pg.port}/postgres`;
    Deno.env.set("DOCTOR_TEST_PG_URL", good);
    Deno.env.set("DOCTOR_TEST_PW", `wrong-${MARKER}`);
    const write = async (name: string, text: string) => {
      const path = join(dir, name);
      await Deno.writeTextFile(path, text);
      return path;
    };
    try {
      await t.step(
        "everything OK: one probe per distinct folder, stdout noted, probes gone",
        async () => {
          const today = new Date().toISOString().slice(0, 10);
          const config = await write(
            "ok.yaml",
            plan("  type: postgres\n  url_env: DOCTOR_TEST_PG_URL\n", [
              `${dir}/out/a`,
              `${dir}/out/a`,
              `${dir}/out/{date}`,
              `${dir}/out/p/{partition}`,
              null,
              null,
            ]),
          );
          const res = await runCli(["doctor", "-c", config]);
          assertNoSecret(res);
          assert.equal(res.code, 0, res.stdout + res.stderr);
          assert.equal(
            res.stdout,
            `[OK] config: ${config} (6 exports)\n` +
              `[OK] source: postgres ${pg.host}:${pg.port}/postgres (login and SELECT 1)\n` +
              [0, 1, 2, 3, 4, 5].map((i) => `[OK] export 'e${i}': query runs (1 column)\n`)
                .join("") +
              `[OK] destination: file://${dir}/out/a (wrote and removed .rivet_doctor_probe)\n` +
              `[OK] destination: file://${dir}/out/${today} (wrote and removed .rivet_doctor_probe)\n` +
              `[OK] destination: file://${dir}/out/p (wrote and removed .rivet_doctor_probe)\n` +
              "[OK] destination: stdout (nothing to probe)\n",
          );
          for (const folder of ["out/a", `out/${today}`, "out/p"]) {
            assert.deepEqual(await listNames(join(dir, folder)), [], `${folder} holds nothing`);
          }
        },
      );

      await t.step(
        "a missing table, a missing column, an unsupported type and a list in CSV fail their export",
        async () => {
          const config = await write(
            "missing.yaml",
            "source:\n  type: postgres\n  url_env: DOCTOR_TEST_PG_URL\nexports:\n" +
              "  - { name: ok, table: t, format: csv, destination: { type: stdout } }\n" +
              "  - { name: gone, table: no_such_table, format: csv, destination: { type: stdout } }\n" +
              "  - { name: col, query: 'SELECT id, nope FROM t', format: csv, " +
              "destination: { type: stdout } }\n" +
              "  - { name: shape, table: shapes, format: csv, destination: { type: stdout } }\n" +
              "  - { name: list, query: 'SELECT ARRAY[id] AS ids FROM t', format: csv, " +
              "destination: { type: stdout } }\n",
          );
          const res = await runCli(["doctor", "-c", config]);
          assertNoSecret(res);
          assert.equal(res.code, 1, res.stdout + res.stderr);
          assert.match(res.stdout, /\[OK\] export 'ok': query runs \(1 column\)\n/);
          assert.match(
            res.stdout,
            /\[FAIL\] export 'gone': .*no_such_table.*\n {2}Hint: \S/,
          );
          assert.match(res.stdout, /\[FAIL\] export 'col': .*nope.*\n {2}Hint: \S/);
          assert.match(
            res.stdout,
            /\[FAIL\] export 'shape': .*'p' \(point\).*\n {2}Hint: set a columns: override/,
          );
          // The query runs, but CSV cannot write the list it returns: the run would fail.
          assert.match(
            res.stdout,
            /\[FAIL\] export 'list': CSV cannot write column 'ids' .*use format: parquet/,
          );
          assert.match(res.stdout, /\[OK\] destination: stdout/, "destinations still checked");
          assert.doesNotMatch(res.stdout, /export 'gone': export 'gone'/, "named once");
        },
      );

      await t.step(
        "a wrong password fails with a hint naming the keys, never the password",
        async () => {
          const config = await write(
            "badpw.yaml",
            plan(
              `  type: postgres\n  host: ${pg.host}\n  port: ${pg.port}\n  user: ${user}\n` +
                "  database: postgres\n  password_env: DOCTOR_TEST_PW\n",
              [`${dir}/out/a`],
            ),
          );
          const res = await runCli(["doctor", "-c", config]);
          assertNoSecret(res);
          assert.equal(res.code, 1, res.stdout);
          assert.match(res.stdout, /^\[OK\] config: /);
          assert.match(
            res.stdout,
            new RegExp(
              `\\[FAIL\\] source: Authentication failed for user '${user}'.*\\n` +
                `  Hint: check source.user and the password in \\$DOCTOR_TEST_PW ` +
                "\\(source.password_env\\), and the role's login\\n",
            ),
          );
          assert.match(
            res.stdout,
            /\[OK\] destination: file:\S+\/out\/a /,
            "destinations still checked",
          );
          const json = await runCli(["doctor", "-c", config, "--json-errors"]);
          assertNoSecret(json);
        },
      );

      await t.step("a closed port fails with the is-the-server-running hint", async () => {
        const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const closed = (listener.addr as Deno.NetAddr).port;
        listener.close();
        const config = await write(
          "closed.yaml",
          plan(`  type: postgres\n  url: postgresql://u:${MARKER}@127.0.0.1:${closed}/db\n`, [
            null,
          ]),
        );
        const res = await runCli(["doctor", "-c", config]);
        assertNoSecret(res);
        assert.equal(res.code, 1, res.stdout);
        assert.match(
          res.stdout,
          new RegExp(
            `\\[FAIL\\] source: Cannot connect to PostgreSQL at 127.0.0.1:${closed}: connection ` +
              "refused\\n  Hint: is the server running\\? check host/port \\(in source.url\\)",
          ),
        );
      });

      await t.step("a TLS mode the server does not offer points at the tls block", async () => {
        const config = await write(
          "tls.yaml",
          plan("  type: postgres\n  url_env: DOCTOR_TEST_PG_URL\n  tls: { mode: require }\n", [
            null,
          ]),
        );
        const res = await runCli(["doctor", "-c", config]);
        assertNoSecret(res);
        assert.equal(res.code, 1, res.stdout);
        assert.match(res.stdout, /\[FAIL\] source: .*TLS.*\n {2}Hint: check the source.tls block/);
      });

      await t.step("an unwritable destination fails and the others are still probed", async () => {
        const file = join(dir, "a_file");
        await Deno.writeTextFile(file, "not a folder");
        const readOnly = join(dir, "ro");
        await Deno.mkdir(readOnly);
        // A read-only mount stops everyone; without one, chmod 0555 stops all but root.
        const mountError = await mountReadOnly(readOnly);
        if (mountError !== undefined) await Deno.chmod(readOnly, 0o555);
        try {
          const config = await write(
            "unwritable.yaml",
            plan("  type: postgres\n  url_env: DOCTOR_TEST_PG_URL\n", [
              `${file}/sub`,
              readOnly,
              `${dir}/out/ok`,
            ]),
          );
          const res = await runCli(["doctor", "-c", config]);
          assert.equal(res.code, 1, res.stdout);
          assert.match(
            res.stdout,
            new RegExp(
              `\\[FAIL\\] destination: file://${file}/sub: Local destination could not create ` +
                `the folder '${file}/sub'.*\\n  Hint: the folder must exist or be creatable, and ` +
                "be writable by this user: check destination.path\\n",
            ),
          );
          if (mountError === undefined || Deno.uid?.() !== 0) {
            assert.match(
              res.stdout,
              new RegExp(`\\[FAIL\\] destination: file://${readOnly}: Local destination could not`),
            );
          } else {
            console.log(
              `read-only mount unavailable (${mountError}); chmod 0555 does not stop root`,
            );
          }
          assert.match(res.stdout, /\[OK\] destination: file:\S+\/out\/ok \(wrote and removed/);
          assert.equal(await Deno.readTextFile(file), "not a folder");
        } finally {
          if (mountError === undefined) {
            await new Deno.Command("umount", { args: [readOnly] }).output();
          } else await Deno.chmod(readOnly, 0o755);
        }
      });

      await t.step("a config that does not load fails at once, without a secret", async () => {
        const config = await write(
          "broken.yaml",
          `source:\n  type: postgres\n  url: postgresql://u:${MARKER}@127.0.0.1:1/db\n` +
            "exports:\n  - name: e\n    table: t\n    format: xml\n",
        );
        const res = await runCli(["doctor", "-c", config]);
        assertNoSecret(res);
        assert.equal(res.code, 1, res.stdout);
        assert.match(res.stdout, /^\[FAIL\] config: .*format.*\n {2}Hint: /);
        assert.doesNotMatch(res.stdout, /source:|destination:/);
        const missing = await runCli(["doctor", "-c", join(dir, "nope.yaml")]);
        assert.equal(missing.code, 1);
        assert.match(missing.stdout, /^\[FAIL\] config: /);
        const usage = await runCli(["doctor"]);
        assert.equal(usage.code, 2, "a missing -c is a usage error");
      });
    } finally {
      Deno.env.delete("DOCTOR_TEST_PG_URL");
      Deno.env.delete("DOCTOR_TEST_PW");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
