import assert from "node:assert/strict";
import { ConfigError } from "../core/errors.ts";
import {
  canonicalJson,
  checkCredentials,
  checkCursorSnapshots,
  type PlanBody,
  type PlannedExport,
  presetOf,
  sealPlan,
  stripSecrets,
  verifyPlan,
} from "./plan_artifact.ts";

const HOUR = 3_600_000;
const WINDOWS = { column: "id", shape: { kind: "range", size: 10 } } as const;

function planned(overrides: Partial<PlannedExport> = {}): PlannedExport {
  return {
    export_name: "orders",
    strategy: "chunked (windows of 10 on id)",
    plan_fingerprint: "xxh3:0000000000000000",
    resolved_plan: {
      source: { type: "postgres", url_env: "PG" },
      export: {},
      stripped_secrets: [],
    },
    computed: {
      chunking: { kind: "windows", ...WINDOWS, plan_hash: "abc" },
      chunk_ranges: [{ start: "1", end: "10" }, { start: "11", end: "15" }],
      chunk_count: 2,
      cursor_snapshot: null,
      row_estimate: 15,
    },
    resources: {
      profile: "balanced",
      batch_size: 10000,
      batch_size_memory_mb: null,
      throttle_ms: 0,
      memory_threshold_mb: 0,
      parallel: 1,
    },
    diagnostics: {
      verdict: "EFFICIENT",
      warnings: [],
      recommended_profile: "balanced",
      recommended_parallel: 1,
    },
    ...overrides,
  };
}

function body(exports: PlannedExport[] = [planned()]): PlanBody {
  return {
    rivet_version: "0.0.0",
    plan_id: "p1",
    config_path: "/x/rivet.yaml",
    settings: {},
    settings_stripped: [],
    exports,
    waves: [{ wave: 1, exports: exports.map((e) => e.export_name) }],
  };
}

async function refusal(promise: Promise<unknown>): Promise<ConfigError> {
  const error = await promise.then(() => assert.fail("accepted"), (e: unknown) => e);
  assert.ok(error instanceof ConfigError);
  return error;
}

Deno.test("canonicalJson does not depend on key order", () => {
  assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: null }] }), '{"a":[{"c":null,"d":2}],"b":1}');
  assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
});

Deno.test("verifyPlan accepts a fresh artifact and refuses any edited value", async () => {
  const now = new Date("2026-01-01T12:00:00Z");
  const artifact = await sealPlan(body(), now);
  const text = JSON.stringify(artifact, null, 2);
  const ok = await verifyPlan(text, { path: "p.json", now });
  assert.deepEqual(ok.warnings, []);
  assert.equal(ok.artifact.exports[0]!.computed.chunk_count, 2);
  // Reordering keys is not an edit; changing a value is.
  const reordered = JSON.stringify(Object.fromEntries(Object.entries(artifact).reverse()));
  await verifyPlan(reordered, { path: "p.json", now });
  for (
    const edited of [
      text.replace('"end": "15"', '"end": "16"'),
      text.replace('"url_env": "PG"', '"url_env": "PH"'),
      text.replace(artifact.expires_at, "2099-01-01T00:00:00.000Z"),
    ]
  ) {
    assert.notEqual(edited, text);
    const e = await refusal(verifyPlan(edited, { path: "p.json", now, force: true }));
    assert.equal(e.code, "plan.tampered");
  }
  for (const bad of ["{", '{"format": "other"}', JSON.stringify({ ...artifact, version: 2 })]) {
    assert.equal((await refusal(verifyPlan(bad, { path: "p.json", now }))).code, "plan.invalid");
  }
});

Deno.test("verifyPlan: under an hour silent, 1-24 h a warning, older refused unless forced", async () => {
  const created = new Date("2026-01-01T00:00:00Z");
  const text = JSON.stringify(await sealPlan(body(), created));
  const at = (ms: number) => new Date(created.getTime() + ms);
  assert.deepEqual((await verifyPlan(text, { path: "p", now: at(59 * 60_000) })).warnings, []);
  const warm = await verifyPlan(text, { path: "p", now: at(3 * HOUR) });
  assert.match(warm.warnings[0]!, /created 3 h ago/);
  const old = await refusal(verifyPlan(text, { path: "p", now: at(24 * HOUR + 1000) }));
  assert.equal(old.code, "plan.expired");
  assert.match(old.hint ?? "", /--force/);
  const forced = await verifyPlan(text, { path: "p", now: at(30 * HOUR), force: true });
  assert.match(forced.warnings[0]!, /applied \(--force\)/);
});

Deno.test("stripSecrets drops passwords and webhook URLs, masks URL credentials, keeps names", () => {
  const { document, stripped } = stripSecrets({
    type: "postgres",
    url: "postgresql://app:hunter2hunter2@db/x",
    password: "hunter2hunter2",
    password_env: "PG_PASSWORD",
    url_file: "secrets/url",
    nested: [{ webhook_url: "https://hooks.example/T/secret", webhook_url_env: "HOOK" }],
    query: "SELECT 'postgresql://u:p@h' AS doc",
    dsn: "mysql://db:3306/x?password=hunter3hunter3",
    user_only: "postgresql://app@db/x",
  }, "source");
  const text = JSON.stringify(document);
  assert.ok(!text.includes("hunter2"), text);
  assert.ok(!text.includes("hooks.example"), text);
  assert.match(text, /postgresql:\/\/REDACTED@db\/x/);
  assert.match(text, /"password_env":"PG_PASSWORD"/);
  assert.match(text, /"url_file":"secrets\/url"/);
  assert.match(text, /"webhook_url_env":"HOOK"/);
  assert.match(text, /u:p@h/, "query text is left as written");
  assert.ok(!text.includes("hunter3"), text);
  assert.match(text, /"user_only":"postgresql:\/\/app@db\/x"/, "a user name alone is kept");
  assert.deepEqual(stripped.sort(), [
    "source.dsn",
    "source.nested[0].webhook_url",
    "source.password",
    "source.url",
  ]);
});

Deno.test("checkCredentials refuses stripped source credentials, warns for others", async () => {
  const withUrl = await sealPlan(body([planned({
    resolved_plan: { source: {}, export: {}, stripped_secrets: ["source.url"] },
  })]));
  const e = (() => {
    try {
      checkCredentials(withUrl);
    } catch (error) {
      return error;
    }
  })();
  assert.ok(e instanceof ConfigError && e.code === "plan.credentials_missing");
  assert.match(e.hint ?? "", /url_env/);
  const hookOnly = await sealPlan({
    ...body(),
    settings_stripped: ["notifications.slack.webhook_url"],
  });
  assert.match(checkCredentials(hookOnly)[0]!, /notifications\.slack\.webhook_url/);
});

Deno.test("checkCursorSnapshots refuses a moved cursor unless forced, naming both values", async () => {
  const artifact = await sealPlan(body([planned({
    computed: {
      ...planned().computed,
      cursor_snapshot: { cursor_column: "id", last_cursor_value: "5" },
    },
  })]));
  assert.deepEqual(checkCursorSnapshots(artifact, () => "5", false), []);
  assert.throws(() => checkCursorSnapshots(artifact, () => "9", false), (e: unknown) => {
    assert.ok(e instanceof ConfigError && e.code === "plan.cursor_moved");
    assert.match(e.hint ?? "", /from '5' to '9'/);
    return true;
  });
  assert.match(checkCursorSnapshots(artifact, () => null, true)[0]!, /--force/);
});

Deno.test("presetOf gives the runner the recorded chunking and windows", () => {
  const preset = presetOf(planned());
  assert.deepEqual(preset, {
    chunking: { kind: "windows", ...WINDOWS, planHash: "abc" },
    windows: [{ startKey: "1", endKey: "10" }, { startKey: "11", endKey: "15" }],
  });
  assert.equal(
    presetOf(planned({ computed: { ...planned().computed, chunking: null } })),
    undefined,
  );
  assert.deepEqual(
    presetOf(planned({
      computed: { ...planned().computed, chunking: { kind: "snapshot", reason: "small" } },
    })),
    { chunking: { kind: "snapshot", reason: "small" } },
  );
});
