import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError } from "../core/errors.ts";
import type { ExportSpec } from "../core/spec.ts";
import {
  checkGrants,
  grantArgs,
  missingGrants,
  type OperatorGrants,
  parseGrants,
  runGrantFlags,
  withinGrants,
} from "./grants.ts";
import { CODE_REASON, type ExportNeeds } from "./permissions.ts";
import { childCommand } from "./subprocess.ts";

function needs(parts: Partial<Record<"net" | "read" | "write" | "env", string[]>>, allEnv = false) {
  const map = (list: string[] = []) => new Map(list.map((e) => [e, `why ${e}`]));
  return {
    net: map(parts.net),
    read: map(parts.read),
    write: map(parts.write),
    env: map(parts.env),
    allEnv,
    sys: [],
  } satisfies ExportNeeds;
}

Deno.test("parseGrants: lists, relative paths from the cwd, bare flags, nothing given", () => {
  assert.equal(parseGrants({}, "/w"), undefined);
  assert.deepEqual(parseGrants({ net: "db:5432, s3.amazonaws.com", read: "etc,/abs/../x" }, "/w"), {
    net: ["db:5432", "s3.amazonaws.com"],
    read: ["/w/etc", "/x"],
  });
  assert.deepEqual(parseGrants({ env: true }, "/w"), { env: "all" });
  for (const bad of ["", "a,,b", "a,"]) {
    assert.throws(
      () => parseGrants({ write: bad }, "/w"),
      (e) => e instanceof ConfigError && e.code === "cli.bad_grant",
    );
  }
});

Deno.test("missingGrants reads hosts, paths and names as Deno does", async () => {
  const want = needs({
    net: ["db.internal:5432", "[::1]:6543", "sql.internal"],
    read: ["/etc/rivet", "/srv/out/a"],
    write: ["/srv/out/a", "/etc/rivet/.rivet_state.db"],
    env: ["DATABASE_URL", "AWS_*", "RIVET_TEST_CRASH_AT"],
  });
  const missing = (g: OperatorGrants) =>
    missingGrants(want, g).then((m) => m.map((x) => `${x.kind} ${x.entry}`));
  // A host without a port covers every port; a port covers only itself; any-port needs a host.
  assert.deepEqual(await missing({ net: ["DB.internal", "[::1]:6543", "sql.internal"] }), []);
  assert.deepEqual(await missing({ net: ["db.internal:5433", "::1", "sql.internal:1433"] }), [
    "net db.internal:5432",
    "net sql.internal",
  ]);
  // A folder covers what is below it, not a sibling sharing its prefix.
  assert.deepEqual(
    await missing({ read: ["/etc", "/srv/out"], write: ["/srv/out", "/etc/rivet"] }),
    [],
  );
  assert.deepEqual(await missing({ write: ["/srv/ou", "/etc/rivet/.rivet_state.db"] }), [
    "write /srv/out/a",
  ]);
  assert.deepEqual(await missing({ read: ["/"] }), []);
  // Names exactly or by prefix; the test hooks are optional.
  assert.deepEqual(await missing({ env: ["DATABASE_URL", "AWS_*"] }), []);
  assert.deepEqual(await missing({ env: ["DATABASE_URL", "AWS_ACCESS_KEY_ID"] }), ["env AWS_*"]);
  assert.deepEqual(await missing({ env: ["D*", "A*"] }), []);
  // A bare flag grants the whole kind; a kind not given is not narrowed.
  assert.deepEqual(await missing({ net: "all", read: "all", write: "all", env: "all" }), []);
  // Every variable (Azure, SQL Server) needs the bare --allow-env.
  const azure = needs({ env: ["A"] }, true);
  assert.deepEqual((await missingGrants(azure, { env: ["A"] })).map((m) => m.entry), [
    "(every variable)",
  ]);
  assert.deepEqual(await missingGrants(azure, { env: "all" }), []);
});

Deno.test("missingGrants: a granted symlink covers the folder it points to", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "rivet_grants_" }));
  try {
    await Deno.mkdir(join(dir, "real"));
    await Deno.symlink(join(dir, "real"), join(dir, "link"));
    const want = needs({ write: [join(dir, "real", "out")] });
    assert.deepEqual(await missingGrants(want, { write: [join(dir, "link")] }), []);
    assert.equal((await missingGrants(want, { write: [join(dir, "other")] })).length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkGrants names every missing entry and the flags that would grant them", async () => {
  const want = needs({ net: ["db:5432"], write: ["/out/a", "/out/b"], env: ["URL"] });
  await checkGrants(want, { net: ["db"], write: ["/out"] });
  const error = await checkGrants(want, { net: ["other:1"], write: ["/out/a"], env: ["URL"] })
    .then(() => undefined, (e) => e);
  assert.ok(error instanceof ConfigError);
  assert.equal(error.code, "run.not_granted");
  assert.equal(error.exitCode, 1);
  assert.match(
    error.message,
    /--allow-net lacks db:5432 \(why db:5432\); --allow-write lacks \/out\/b/,
  );
  assert.match(error.hint ?? "", /--allow-net=other:1,db:5432 --allow-write=\/out\/a,\/out\/b/);
});

Deno.test("withinGrants drops the ungranted test hooks only when the environment is narrowed", () => {
  const p = { net: [], read: [], write: [], env: ["RIVET_TEST_CRASH_AT", "URL"] };
  assert.deepEqual(withinGrants(p, undefined).env, p.env);
  assert.deepEqual(withinGrants(p, { env: "all" }).env, p.env);
  assert.deepEqual(withinGrants(p, { env: ["URL"] }).env, ["URL"]);
  assert.deepEqual(withinGrants(p, { env: ["URL", "RIVET_TEST_*"] }).env, p.env);
  assert.deepEqual(withinGrants(p, { net: ["x"] }).env, p.env);
});

Deno.test("grantArgs round-trips through parseGrants, and a child gets them after its own flags", () => {
  const grants: OperatorGrants = { net: ["db:5432"], write: ["/out"], env: "all" };
  const args = grantArgs(grants);
  assert.deepEqual(args, ["--allow-net=db:5432", "--allow-write=/out", "--allow-env"]);
  const flags = Object.fromEntries(args.map((a) => {
    const [flag, value] = a.split("=");
    return [flag!.slice("--allow-".length), value ?? true];
  }));
  assert.deepEqual(parseGrants(flags, "/w"), grants);
  const command = childCommand({ name: "orders" } as ExportSpec, {
    configPath: "/etc/plan.yaml",
    permissions: { net: ["db:5432"], read: [], write: ["/out"], env: [] },
    params: {},
    isolation: "worker",
    parentEnv: {},
    grants,
  });
  assert.deepEqual(command.args.slice(-5), ["--process-child", "worker", ...args]);
});

Deno.test("runGrantFlags: the binary's flags leave --allow-sys to its build and rivet's code out", async () => {
  const want = {
    ...needs({ net: ["db:5432"], read: ["/etc"] }),
    sys: ["hostname"],
  };
  want.read.set("/opt/rivet/src", CODE_REASON);
  assert.deepEqual(runGrantFlags(want), ["--allow-net=db:5432", "--allow-read=/etc"]);
  // Nor does the check ask the operator to grant rivet's code.
  assert.deepEqual(await missingGrants(want, { read: ["/etc"] }), []);
});
