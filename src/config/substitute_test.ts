import assert from "node:assert/strict";
import { ConfigError } from "../core/errors.ts";
import { substitutePlaceholders } from "./substitute.ts";

const env = (values: Record<string, string>) => (name: string) => values[name];

Deno.test("substitutePlaceholders lets --param values win over the environment", () => {
  const out = substitutePlaceholders("a: ${X}\nb: ${Y}", {
    params: { X: "param" },
    env: env({ X: "env", Y: "env-y" }),
  });
  assert.equal(out, "a: param\nb: env-y");
});

Deno.test("substitutePlaceholders replaces inside comments and splices values verbatim", () => {
  const out = substitutePlaceholders('# ${A}\nq: "${A}"', { env: env({ A: "x: 'y'" }) });
  assert.equal(out, "# x: 'y'\nq: \"x: 'y'\"");
});

Deno.test("substitutePlaceholders turns ${} into the empty string", () => {
  assert.equal(substitutePlaceholders("a${}b"), "ab");
});

Deno.test("substitutePlaceholders names only the unset variable", () => {
  assert.throws(
    () => substitutePlaceholders("password: hunter2-${NOPE}", { env: env({}) }),
    (error: unknown) => {
      assert.ok(error instanceof ConfigError);
      assert.equal(error.code, "config.missing_env");
      assert.match(error.message, /'NOPE' is not set/);
      assert.ok(!error.message.includes("hunter2"));
      assert.ok(!(error.hint ?? "").includes("hunter2"));
      return true;
    },
  );
});

Deno.test("substitutePlaceholders refuses a value holding a NUL byte", () => {
  assert.throws(
    () => substitutePlaceholders("a: ${V}", { params: { V: "x\0y" } }),
    (error: unknown) => error instanceof ConfigError && /NUL/.test(error.message),
  );
});
