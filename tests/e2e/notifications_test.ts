/**
 * End to end: `notifications.slack` and `notifications.webhook` of `rivet run` against a real
 * PostgreSQL and a local HTTP receiver (`Deno.serve` on a free port) that records every request.
 * The webhook's signature is recomputed here with WebCrypto, independently of rivet's code.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type PgServer, startPostgres } from "../_helpers/pg_server.ts";
import { runCli, spawnCli } from "../_helpers/cli.ts";
import { loadConfig } from "../../src/config/mod.ts";
import { ConfigError } from "../../src/core/errors.ts";

/** One request the receiver got. */
interface Received {
  readonly path: string;
  readonly headers: Headers;
  readonly body: string;
}

/** A local receiver; `answer` decides the response to request number `n` (1-based). */
function startReceiver(answer: (n: number) => Response | Promise<Response> = () => ok()) {
  const received: Received[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    received.push({
      path: url.pathname + url.search,
      headers: req.headers,
      body: await req.text(),
    });
    return await answer(received.length);
  });
  return {
    received,
    /** Its URL, with a path and query that play the secret. */
    url: `http://127.0.0.1:${server.addr.port}/services/T0SECRETPATH/B0SECRET?token=tok3n`,
    port: server.addr.port,
    [Symbol.asyncDispose]: () => server.shutdown(),
  };
}

function ok(): Response {
  return new Response("ok");
}

const SECRET = "whsec-N0T1FY-S3CR3T";

async function expectedSignature(timestamp: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(SECRET),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign(
    "HMAC",
    key,
    new TextEncoder().encode(`${timestamp}.${body}`),
  );
  return "sha256=" +
    Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Writes a config with one export per `[name, query]` and the given notifications block. */
async function writeConfig(
  dir: string,
  exports: readonly [string, string][],
  notifications: string,
  extra = "",
): Promise<string> {
  const path = join(dir, "rivet.yaml");
  await Deno.writeTextFile(
    path,
    "source:\n  type: postgres\n  url_env: NOTIFY_PG_URL\nexports:\n" +
      exports.map(([name, query]) =>
        `  - name: ${name}\n    query: "${query}"\n    format: csv\n${extra}` +
        `    destination: { type: local, path: ${dir}/out/${name} }\n`
      ).join("") +
      `notifications:\n${notifications}`,
  );
  return path;
}

function assertNoSecret(text: string) {
  for (const secret of ["T0SECRETPATH", "B0SECRET", "tok3n", SECRET]) {
    assert.ok(!text.includes(secret), `${secret} leaked:\n${text}`);
  }
}

async function withEnv<T>(env: Record<string, string>, body: () => Promise<T>): Promise<T> {
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
  try {
    return await body();
  } finally {
    for (const k of Object.keys(env)) Deno.env.delete(k);
  }
}

/** Writes a config (see {@linkcode writeConfig}) in a new folder and runs it in-process. */
async function runWith(
  env: Record<string, string>,
  exports: readonly [string, string][],
  notifications: string,
  extra = "",
) {
  const cfg = await writeConfig(await Deno.makeTempDir(), exports, notifications, extra);
  return await withEnv(env, () => runCli(["run", "-c", cfg]));
}

let pgPromise: Promise<PgServer> | undefined;
function pg(): Promise<PgServer> {
  pgPromise ??= startPostgres().then(async (server) => {
    await server.psql(
      "CREATE TABLE t AS SELECT i::int8 AS id, md5(i::text) AS s FROM generate_series(1, 50) i;",
    );
    return server;
  });
  return pgPromise;
}

Deno.test("notifications", async (t) => {
  const server = await pg();
  const base = { NOTIFY_PG_URL: server.url, NOTIFY_HOOK_SECRET: SECRET };

  await t.step("webhook: one signed POST with the export's summary on success", async () => {
    await using hook = startReceiver();
    const res = await runWith(
      { ...base, NOTIFY_HOOK_URL: hook.url },
      [["orders", "SELECT id, s FROM t"]],
      "  webhook: { url_env: NOTIFY_HOOK_URL, secret_env: NOTIFY_HOOK_SECRET, on: [success] }\n",
    );
    assert.equal(res.code, 0, res.stderr);
    assert.equal(hook.received.length, 1);
    const [got] = hook.received;
    assert.equal(got!.path, "/services/T0SECRETPATH/B0SECRET?token=tok3n");
    assert.equal(got!.headers.get("content-type"), "application/json");
    assert.match(got!.headers.get("user-agent") ?? "", /^rivet\/\d+\.\d+\.\d+/);
    assert.equal(got!.headers.get("x-rivet-event"), "success");
    const ts = got!.headers.get("x-rivet-timestamp") ?? "";
    assert.ok(Math.abs(Number(ts) - Date.now() / 1000) < 300, ts);
    assert.equal(got!.headers.get("x-rivet-signature"), await expectedSignature(ts, got!.body));
    const body = JSON.parse(got!.body);
    assert.equal(body.export_name, "orders");
    assert.equal(body.status, "success");
    assert.equal(body.rows, 50);
    assert.equal(body.mode, "full");
    assert.equal(body.error_message, null);
    assert.deepEqual(body.events, ["success"]);
    assert.equal(body.schema_changed, false);
    assert.deepEqual(body.degraded_reasons, []);
    assert.match(body.run_id, /^orders_\d{8}T/);
    assertNoSecret(res.stderr + res.stdout);
  });

  await t.step(
    "slack: a failed export gets a red attachment with its first error line",
    async () => {
      await using slack = startReceiver();
      await using hook = startReceiver();
      const res = await runWith(
        { ...base, NOTIFY_SLACK_URL: slack.url, NOTIFY_HOOK_URL: hook.url },
        [["broken", "SELECT id FROM missing_table"]],
        "  slack: { webhook_url_env: NOTIFY_SLACK_URL }\n" +
          "  webhook: { url_env: NOTIFY_HOOK_URL, on: [success] }\n",
      );
      assert.equal(res.code, 1, res.stderr);
      assert.equal(hook.received.length, 0, "the webhook only wants success");
      assert.equal(slack.received.length, 1);
      const body = JSON.parse(slack.received[0]!.body);
      const [attachment] = body.attachments;
      assert.equal(attachment.color, "#d40e0d");
      assert.match(attachment.title, /^rivet: broken_\d{8}T/);
      assert.match(attachment.text, /^export: broken\nstatus: failed\nrows: 0\nduration: \d+ ms\n/);
      assert.match(attachment.text, /\nerror: .*missing_table/);
      assert.equal(slack.received[0]!.headers.get("x-rivet-signature"), null);
      assertNoSecret(res.stderr + res.stdout);
    },
  );

  await t.step("a receiver that answers 500 twice is retried until it takes it", async () => {
    await using hook = startReceiver((n) => n <= 2 ? new Response("busy", { status: 500 }) : ok());
    const res = await runWith(
      { ...base, NOTIFY_HOOK_URL: hook.url },
      [["orders", "SELECT id FROM t"]],
      "  webhook: { url_env: NOTIFY_HOOK_URL, secret_env: NOTIFY_HOOK_SECRET, on: [success] }\n",
    );
    assert.equal(res.code, 0, res.stderr);
    assert.equal(hook.received.length, 3);
    const ids = new Set(hook.received.map((r) => r.headers.get("x-rivet-delivery")));
    assert.equal(ids.size, 1, "one delivery id across the retries");
    assert.ok(!res.stderr.includes("not delivered"), res.stderr);
  });

  await t.step(
    "a receiver that never answers: deadline, warning with the host only, exit 0",
    async () => {
      let release = () => {};
      const hung = new Promise<Response>((resolve) => (release = () => resolve(ok())));
      await using hook = startReceiver(() => hung);
      await using refusing = startReceiver(() => new Response("no", { status: 404 }));
      const dir = await Deno.makeTempDir();
      const cfg = await writeConfig(
        dir,
        [["orders", "SELECT id FROM t"]],
        "  webhook: { url_env: NOTIFY_HOOK_URL, on: [success], timeout_s: 2 }\n" +
          "  slack: { webhook_url_env: NOTIFY_SLACK_URL, on: [success] }\n",
      );
      const started = Date.now();
      const res = await withEnv(
        { ...base, NOTIFY_HOOK_URL: hook.url, NOTIFY_SLACK_URL: refusing.url },
        () => runCli(["run", "-c", cfg]),
      );
      release();
      assert.equal(res.code, 0, res.stderr);
      assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
      assert.ok(hook.received.length >= 1);
      assert.match(
        res.stderr,
        new RegExp(
          `Warning: notifications\\.webhook: the notification for export 'orders' \\(orders_[^)]+\\) ` +
            `was not delivered to http://127\\.0\\.0\\.1:${hook.port}: no answer before the deadline`,
        ),
      );
      assert.equal(refusing.received.length, 1, "a 404 is not retried");
      assert.match(
        res.stderr,
        /notifications\.slack: .* was not delivered to http:\/\/127\.0\.0\.1:\d+: HTTP 404/,
      );
      assertNoSecret(res.stderr + res.stdout);
    },
  );

  await t.step(
    "--parallel-export-processes: the parent sends one notification per export",
    async () => {
      await using hook = startReceiver();
      const dir = await Deno.makeTempDir();
      const cfg = await writeConfig(
        dir,
        [["a", "SELECT id FROM t"], ["b", "SELECT id FROM t WHERE id <= 10"]],
        "  webhook: { url_env: NOTIFY_HOOK_URL, secret_env: NOTIFY_HOOK_SECRET, on: [success] }\n",
      );
      const res = await spawnCli(["run", "-c", cfg, "--parallel-export-processes", "--json"], {
        env: { ...base, NOTIFY_HOOK_URL: hook.url },
      });
      assert.equal(res.code, 0, res.stderr);
      assert.equal(JSON.parse(res.stdout).parallel_mode, "parallel-processes");
      const bodies = hook.received.map((r) => JSON.parse(r.body));
      assert.deepEqual(
        bodies.map((b) => [b.export_name, b.rows]).sort(),
        [["a", 50], ["b", 10]],
      );
      for (const r of hook.received) {
        const ts = r.headers.get("x-rivet-timestamp")!;
        assert.equal(r.headers.get("x-rivet-signature"), await expectedSignature(ts, r.body));
      }
      assertNoSecret(res.stderr + res.stdout);
    },
  );

  await t.step("degraded: an export that succeeded after a retry", async () => {
    // Serialization failures (a transient class) until one second from now.
    await server.psql(
      "CREATE FUNCTION not_before(ts timestamptz) RETURNS boolean LANGUAGE plpgsql AS $$ " +
        "BEGIN IF clock_timestamp() < ts THEN RAISE serialization_failure; END IF; " +
        "RETURN true; END $$;",
    );
    const opensAt = new Date(Date.now() + 1000).toISOString();
    await using hook = startReceiver();
    const res = await runWith(
      { ...base, NOTIFY_HOOK_URL: hook.url },
      [["flaky", `SELECT id FROM t WHERE not_before('${opensAt}')`]],
      "  webhook: { url_env: NOTIFY_HOOK_URL, on: [degraded] }\n",
      "    tuning: { max_retries: 8, retry_backoff_ms: 300 }\n",
    );
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /retry 1\//);
    assert.equal(hook.received.length, 1);
    const body = JSON.parse(hook.received[0]!.body);
    assert.deepEqual(body.events, ["degraded", "success"]);
    assert.deepEqual(body.degraded_reasons, ["run.retrying"]);
    assert.equal(body.rows, 50);
  });

  await t.step("schema_change: the run whose columns changed, and only that one", async () => {
    await using hook = startReceiver();
    const dir = await Deno.makeTempDir();
    const notify = "  slack: { webhook_url_env: NOTIFY_SLACK_URL, on: [schema_change] }\n";
    const env = { ...base, NOTIFY_SLACK_URL: hook.url };
    const first = await writeConfig(dir, [["drift", "SELECT id FROM t"]], notify);
    assert.equal((await withEnv(env, () => runCli(["run", "-c", first]))).code, 0);
    assert.equal(hook.received.length, 0, "the first run sets the baseline");
    const second = await writeConfig(dir, [["drift", "SELECT id, s FROM t"]], notify);
    const res = await withEnv(env, () => runCli(["run", "-c", second]));
    assert.equal(res.code, 0, res.stderr);
    assert.equal(hook.received.length, 1);
    const [attachment] = JSON.parse(hook.received[0]!.body).attachments;
    assert.equal(attachment.color, "#f2a600");
    assert.match(attachment.text, /\nschema changed$/);
  });

  await t.step(
    "url_file is read relative to the config; plain http to a remote host is refused",
    async () => {
      await using hook = startReceiver();
      const dir = await Deno.makeTempDir();
      await Deno.writeTextFile(join(dir, "hook.url"), hook.url + "\n");
      const cfg = await writeConfig(
        dir,
        [["orders", "SELECT id FROM t"]],
        "  webhook: { url_file: hook.url, on: [success] }\n" +
          "  slack: { webhook_url_env: NOTIFY_SLACK_URL, on: [success] }\n",
      );
      const res = await withEnv(
        { ...base, NOTIFY_SLACK_URL: "http://hooks.example.com/services/T0SECRETPATH" },
        () => runCli(["run", "-c", cfg]),
      );
      assert.equal(res.code, 0, res.stderr);
      assert.equal(hook.received.length, 1);
      assert.match(
        res.stderr,
        /notifications\.slack: .* was not delivered to the receiver: http:\/\/hooks\.example\.com is refused: notifications go over https/,
      );
      assertNoSecret(res.stderr);
    },
  );

  await t.step(
    "config: an inline webhook url and a doubly named URL are refused at load",
    async () => {
      const dir = await Deno.makeTempDir();
      const inline = await writeConfig(
        dir,
        [["orders", "SELECT id FROM t"]],
        "  webhook: { url: https://example.com/hook }\n",
      );
      const res1 = await runCli(["run", "-c", inline]);
      assert.equal(res1.code, 1);
      assert.match(res1.stderr, /unknown field `url`, expected one of `url_env`/);
      const twice = await writeConfig(
        dir,
        [["orders", "SELECT id FROM t"]],
        "  webhook: { url_env: A, url_file: b.url }\n",
      );
      const res2 = await runCli(["run", "-c", twice]);
      assert.equal(res2.code, 1);
      assert.match(res2.stderr, /notifications\.webhook: the URL is configured twice/);
      const error = await loadConfig(twice).then(() => undefined, (e) => e);
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, "config.notification_url");
      const none = await writeConfig(
        dir,
        [["orders", "SELECT id FROM t"]],
        "  slack: { on: [failure] }\n",
      );
      const res3 = await runCli(["run", "-c", none]);
      assert.equal(res3.code, 1);
      assert.match(res3.stderr, /notifications\.slack: no URL is configured/);
    },
  );

  await server[Symbol.asyncDispose]();
});
