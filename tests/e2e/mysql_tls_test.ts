/**
 * End-to-end tests of `source.tls` for MySQL/MariaDB against a real MariaDB with TLS on: every
 * mode, the CA and host name checks, a REQUIRE SSL account, a server without TLS, through
 * `openSource` and through `rivet run`. Certificates are made with `openssl` for each run; whether
 * a session is encrypted is asked of the server (`Ssl_cipher` of the session), never of rivet.
 */
import assert from "node:assert/strict";
import { column, expectError, readAll } from "../_helpers/source_read.ts";
import { runCli, spawnCli } from "../_helpers/cli.ts";
import { type MariaDbServer, startMariaDb } from "../_helpers/mariadb_server.ts";
import type { ConnectionInfo } from "../../src/core/source.ts";
import type { SourceSpec, TlsSpec } from "../../src/core/spec.ts";
import { openSource } from "../../src/sources/mod.ts";
import { connectMysql, mysqlConfig, runStatement } from "../../src/sources/mysql/connect.ts";
import { makeCertificates } from "../_helpers/tls_certs.ts";

/** A second loopback address the server also listens on; the certificate does not name it. */
const OTHER_LOOPBACK = "127.0.0.2";
const TLS_USER = { user: "rivet_tls", password: "tls-S3CR3T_M4RK3R" };
const CIPHER_SQL = "SELECT VARIABLE_VALUE AS cipher FROM information_schema.SESSION_STATUS " +
  "WHERE VARIABLE_NAME = 'SSL_CIPHER'";

function spec(tls?: Partial<TlsSpec>): SourceSpec {
  return {
    kind: "mysql",
    connection: { form: "url_env", env: "UNUSED" },
    ...(tls === undefined ? {} : {
      tls: {
        mode: "verify-full",
        acceptInvalidCerts: false,
        acceptInvalidHostnames: false,
        ...tls,
      },
    }),
  };
}

function conn(
  db: MariaDbServer,
  options: { host?: string; user?: string; password?: string } = {},
): ConnectionInfo {
  return {
    host: options.host ?? db.host,
    port: db.port,
    user: options.user ?? TLS_USER.user,
    password: options.password ?? TLS_USER.password,
    database: db.database,
    params: {},
  };
}

/** `Ssl_cipher` of the source's own session ("" in plaintext). */
async function sessionCipher(spec: SourceSpec, info: ConnectionInfo): Promise<string> {
  await using source = await openSource(spec, info);
  const { batches } = await readAll(source, CIPHER_SQL);
  const [cipher] = column(batches, "cipher");
  assert.equal(typeof cipher, "string");
  return cipher as string;
}

/** Connections the server aborted (no login) and logins it denied, server-wide. */
async function serverCounters(db: MariaDbServer): Promise<{ aborted: number; denied: number }> {
  const out = await db.sql(
    "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS " +
      "WHERE VARIABLE_NAME IN ('ABORTED_CONNECTS', 'ACCESS_DENIED_ERRORS')",
  );
  const values = Object.fromEntries(
    out.trim().split("\n").map((line) => line.split("\t") as [string, string]),
  );
  return { aborted: Number(values.ABORTED_CONNECTS), denied: Number(values.ACCESS_DENIED_ERRORS) };
}

const secrets = [TLS_USER.password, "S3CR3T_M4RK3R"];

Deno.test("MySQL source over TLS against MariaDB", async (t) => {
  const certs = await makeCertificates();
  try {
    await using db = await startMariaDb({
      args: [
        `--ssl-ca=${certs.ca}`,
        `--ssl-cert=${certs.cert}`,
        `--ssl-key=${certs.key}`,
        // A second loopback address reaches the same server under a name the certificate lacks.
        `--bind-address=127.0.0.1,${OTHER_LOOPBACK}`,
      ],
    });
    await db.sql(
      `CREATE USER '${TLS_USER.user}'@'127.0.0.1' IDENTIFIED BY '${TLS_USER.password}' ` +
        `REQUIRE SSL; GRANT SELECT ON rivet.* TO '${TLS_USER.user}'@'127.0.0.1';`,
    );

    await t.step(
      "verify-full with the right CA connects and the session is encrypted",
      async () => {
        const cipher = await sessionCipher(spec({ caFile: certs.ca }), conn(db));
        assert.match(cipher, /^TLS_|^ECDHE|AES|CHACHA/, `cipher '${cipher}'`);
      },
    );

    await t.step("verify-full accepts the DNS name the certificate lists (localhost)", async () => {
      const cipher = await sessionCipher(
        spec({ caFile: certs.ca }),
        conn(db, { host: "localhost" }),
      );
      assert.notEqual(cipher, "");
    });

    await t.step("require and verify-ca with the right CA connect encrypted", async () => {
      for (const mode of ["require", "verify-ca"] as const) {
        assert.notEqual(await sessionCipher(spec({ mode, caFile: certs.ca }), conn(db)), "", mode);
      }
    });

    await t.step(
      "a CA that did not sign the server certificate is refused in every mode",
      async () => {
        for (const mode of ["require", "verify-ca", "verify-full"] as const) {
          const err = await expectError(
            openSource(spec({ mode, caFile: certs.otherCa }), conn(db)),
            { code: "source.tls_verify_failed", exitCode: 1, includes: ["ca_file"] },
          );
          assert.equal(err.name, "ConfigError", mode);
          for (const s of secrets) assert.ok(!err.message.includes(s), err.message);
        }
      },
    );

    await t.step("no ca_file means the system roots, which do not know the test CA", async () => {
      await expectError(openSource(spec({ mode: "require" }), conn(db)), {
        code: "source.tls_verify_failed",
        exitCode: 1,
        includes: ["ca_file"],
      });
    });

    await t.step(
      "verify-full refuses a host name the certificate lacks, before the password is sent",
      async () => {
        const before = await serverCounters(db);
        const err = await expectError(
          openSource(spec({ caFile: certs.ca }), conn(db, { host: OTHER_LOOPBACK })),
          {
            code: "source.tls_verify_failed",
            exitCode: 1,
            includes: [OTHER_LOOPBACK, "verify-ca"],
          },
        );
        for (const s of secrets) assert.ok(!err.message.includes(s), err.message);
        // The server saw a connection end before any login attempt (no access denied).
        const after = await serverCounters(db);
        assert.ok(
          after.aborted > before.aborted,
          `aborted connects ${before.aborted} → ${after.aborted}`,
        );
        assert.equal(after.denied, before.denied);
      },
    );

    await t.step(
      "verify-ca and require check the chain only, so that host name connects",
      async () => {
        for (const mode of ["require", "verify-ca"] as const) {
          const cipher = await sessionCipher(
            spec({ mode, caFile: certs.ca }),
            conn(db, { host: OTHER_LOOPBACK }),
          );
          assert.notEqual(cipher, "", mode);
        }
      },
    );

    await t.step(
      "accept_invalid_hostnames skips the name check but still verifies the chain",
      async () => {
        const cipher = await sessionCipher(
          spec({ caFile: certs.ca, acceptInvalidHostnames: true }),
          conn(db, { host: OTHER_LOOPBACK }),
        );
        assert.notEqual(cipher, "");
        await expectError(
          openSource(
            spec({ caFile: certs.otherCa, acceptInvalidHostnames: true }),
            conn(db, { host: OTHER_LOOPBACK }),
          ),
          { code: "source.tls_verify_failed", exitCode: 1, includes: ["ca_file"] },
        );
      },
    );

    await t.step("accept_invalid_certs is refused as not supported, naming ca_file", async () => {
      for (const mode of ["require", "verify-ca", "verify-full"] as const) {
        await expectError(
          openSource(spec({ mode, caFile: certs.otherCa, acceptInvalidCerts: true }), conn(db)),
          {
            code: "config.not_supported",
            exitCode: 1,
            includes: ["accept_invalid_certs", "ca_file"],
          },
        );
      }
    });

    await t.step("no tls block against a REQUIRE SSL account fails naming source.tls", async () => {
      const err = await expectError(openSource(spec(), conn(db)), {
        code: "source.auth_failed",
        exitCode: 1,
        includes: [TLS_USER.user, "REQUIRE SSL", "source.tls"],
      });
      for (const s of secrets) assert.ok(!err.message.includes(s), err.message);
      await expectError(openSource(spec({ mode: "disable" }), conn(db)), {
        code: "source.auth_failed",
        exitCode: 1,
        includes: ["source.tls"],
      });
    });

    await t.step("mode disable to loopback connects in plaintext for a normal user", async () => {
      const info = conn(db, { user: db.user, password: db.password });
      assert.equal(await sessionCipher(spec({ mode: "disable", caFile: certs.ca }), info), "");
      assert.equal(await sessionCipher(spec(), info), "");
    });

    await t.step("a second connection with the same settings is verified again", async () => {
      // killQuery reuses the settings object, which keys mysql2's TLS session cache.
      const config = await mysqlConfig(conn(db), {
        mode: "verify-full",
        caFile: certs.ca,
        acceptInvalidCerts: false,
        acceptInvalidHostnames: false,
      });
      for (let i = 0; i < 3; i++) {
        const c = await connectMysql(config, {});
        try {
          const rows = await runStatement(c, CIPHER_SQL) as string[][];
          assert.notEqual(rows[0]![0], "");
        } finally {
          c.destroy();
        }
      }
      const other = await mysqlConfig(conn(db, { host: OTHER_LOOPBACK }), {
        mode: "verify-full",
        caFile: certs.ca,
        acceptInvalidCerts: false,
        acceptInvalidHostnames: false,
      });
      for (let i = 0; i < 2; i++) {
        await expectError(connectMysql(other, {}), {
          code: "source.tls_verify_failed",
          exitCode: 1,
        });
      }
    });

    await t.step("rivet run exports over verify-full and refuses a wrong CA", async () => {
      const dir = await Deno.makeTempDir({ prefix: "rivet_mysql_tls_run_" });
      try {
        const url = `mysql://${TLS_USER.user}:${TLS_USER.password}@127.0.0.1:${db.port}/rivet`;
        Deno.env.set("RIVET_TLS_TEST_URL", url);
        const config = async (name: string, tls: string) => {
          const path = `${dir}/${name}.yaml`;
          await Deno.writeTextFile(
            path,
            `source:\n  type: mysql\n  url_env: RIVET_TLS_TEST_URL\n${tls}exports:\n` +
              `  - name: cipher\n    query: ${CIPHER_SQL}\n    format: csv\n` +
              `    destination: { type: local, path: ${dir}/out_${name} }\n`,
          );
          return path;
        };
        const ok = await runCli([
          "run",
          "-c",
          await config("ok", `  tls: {mode: verify-full, ca_file: ${certs.ca}}\n`),
        ]);
        assert.equal(ok.code, 0, ok.stderr);
        const files = [...Deno.readDirSync(`${dir}/out_ok`)].filter((f) => f.name.endsWith(".csv"));
        assert.equal(files.length, 1);
        const csv = await Deno.readTextFile(`${dir}/out_ok/${files[0]!.name}`);
        assert.match(csv, /^cipher\n\S+\n$/, csv);

        const wrong = await config(
          "wrong",
          `  tls: {mode: verify-full, ca_file: ${certs.otherCa}}\n`,
        );
        const bad = await runCli(["run", "-c", wrong]);
        assert.equal(bad.code, 1, bad.stderr);
        assert.match(bad.stderr, /ca_file/);
        for (const s of secrets) assert.ok(!(bad.stdout + bad.stderr).includes(s), bad.stderr);

        const none = await runCli(["run", "-c", await config("none", "")]);
        assert.equal(none.code, 1, none.stderr);
        assert.match(none.stderr, /REQUIRE SSL/);
        assert.match(none.stderr, /source\.tls/);
        for (const s of secrets) assert.ok(!(none.stdout + none.stderr).includes(s), none.stderr);

        // A real process: exit code and no crash on a TLS failure (the Rust tool once panicked).
        const spawned = await spawnCli(["run", "-c", wrong], {
          env: { RIVET_TLS_TEST_URL: url, PATH: Deno.env.get("PATH") ?? "" },
        });
        assert.equal(spawned.code, 1, spawned.stderr);
        assert.match(spawned.stderr, /ca_file/);
        assert.doesNotMatch(spawned.stderr, /panic|Uncaught|at .*\.js:\d+/);
        for (const s of secrets) {
          assert.ok(!(spawned.stdout + spawned.stderr).includes(s), spawned.stderr);
        }
      } finally {
        Deno.env.delete("RIVET_TLS_TEST_URL");
        await Deno.remove(dir, { recursive: true });
      }
    });
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});

Deno.test("a TLS mode against a MariaDB without TLS fails with source.tls_unavailable", async () => {
  await using db = await startMariaDb({ args: ["--skip-ssl"] });
  for (const mode of ["require", "verify-ca", "verify-full"] as const) {
    const started = performance.now();
    const err = await expectError(
      openSource(spec({ mode }), conn(db, { user: db.user, password: db.password })),
      { code: "source.tls_unavailable", exitCode: 1, includes: [mode, "mode: disable"] },
    );
    assert.equal(err.name, "ConfigError");
    assert.ok(performance.now() - started < 5_000, "fails fast, no hang");
  }
});
