import assert from "node:assert/strict";
import plugin from "./lint_layers.ts";

const root = "/repo";

function lint(file: string, source: string): string[] {
  return Deno.lint.runPlugin(plugin, `${root}/${file}`, source).map((d) => d.id);
}

Deno.test("a clean family module that imports core/, _util/ and its own privates passes", () => {
  const source = `
import type { Destination } from "../core/destination.ts";
import { redact } from "../_util/redact.ts";
import { checkKey } from "./_keys.ts";
export { LocalDestination } from "./local.ts";
const lazy = await import("./stdout.ts");
import { sleep } from "npm:some-other-package";
`;
  assert.deepEqual(lint("src/destinations/local.ts", source), []);
});

Deno.test("families never import each other, whatever the import form", () => {
  assert.deepEqual(lint("src/formats/csv.ts", `import { x } from "../sources/postgres/read.ts";`), [
    "rivet-layers/family-isolation",
  ]);
  assert.deepEqual(
    lint("src/state/sqlite.ts", `import type { D } from "../destinations/mod.ts";`),
    [
      "rivet-layers/family-isolation",
    ],
  );
  assert.deepEqual(lint("src/sources/mod.ts", `export * from "../formats/mod.ts";`), [
    "rivet-layers/family-isolation",
  ]);
  assert.deepEqual(lint("src/destinations/open.ts", `const m = await import("../state/mod.ts");`), [
    "rivet-layers/family-isolation",
  ]);
});

Deno.test("families do not reach into config/ or plan/ either", () => {
  assert.deepEqual(
    lint("src/sources/postgres/source.ts", `import type { C } from "../../config/connection.ts";`),
    ["rivet-layers/family-isolation"],
  );
  assert.deepEqual(lint("src/formats/csv.ts", `import { p } from "../plan/placeholders.ts";`), [
    "rivet-layers/family-isolation",
  ]);
});

Deno.test("pipeline imports only core, plan and _util", () => {
  assert.deepEqual(
    lint(
      "src/pipeline/run_export.ts",
      `import "../core/spec.ts"; import "../plan/keys.ts"; import "../_util/hash.ts"; import "./manifest.ts";`,
    ),
    [],
  );
  assert.deepEqual(
    lint(
      "src/pipeline/run_export.ts",
      `import { LocalDestination } from "../destinations/local.ts";`,
    ),
    [
      "rivet-layers/pipeline-imports",
    ],
  );
  assert.deepEqual(
    lint("src/pipeline/run_export.ts", `import { main } from "../engines/inline.ts";`),
    [
      "rivet-layers/pipeline-imports",
    ],
  );
});

Deno.test("only cli.ts, src/cli/ and tests import src/cli/", () => {
  const source = `import { main } from "./src/cli/main.ts";`;
  assert.deepEqual(lint("cli.ts", source), []);
  assert.deepEqual(lint("src/cli/commands/run.ts", `import "../render/tty.ts";`), []);
  assert.deepEqual(lint("src/engines/subprocess.ts", `import "../cli/main.ts";`), [
    "rivet-layers/no-cli-imports",
  ]);
  assert.deepEqual(lint("src/cli/main_test.ts", `import "./main.ts";`), []);
});

Deno.test("a private file is imported only from its folder or by the mod.ts above it", () => {
  assert.deepEqual(lint("src/sources/postgres/read.ts", `import "./_types.ts";`), []);
  assert.deepEqual(lint("src/sources/mod.ts", `import "./postgres/_sql.ts";`), []);
  assert.deepEqual(lint("src/engines/workers.ts", `import "./_protocol.ts";`), []);
  assert.deepEqual(
    lint("src/pipeline/run_export.ts", `import "../engines/_protocol.ts";`).sort(),
    ["rivet-layers/no-foreign-private", "rivet-layers/pipeline-imports"],
  );
  assert.deepEqual(lint("src/sources/mysql/read.ts", `import "../postgres/_types.ts";`), [
    "rivet-layers/no-foreign-private",
  ]);
  assert.deepEqual(lint("tests/e2e/x_test.ts", `import "../../src/destinations/_keys.ts";`), [
    "rivet-layers/no-foreign-private",
  ]);
  // _util/ is a folder, not a private file: everyone may import it.
  assert.deepEqual(lint("src/formats/csv.ts", `import "../_util/redact.ts";`), []);
});

Deno.test("only src/core/arrow.ts imports apache-arrow", () => {
  assert.deepEqual(lint("src/core/arrow.ts", `export { Table } from "apache-arrow";`), []);
  for (const specifier of ["apache-arrow", "npm:apache-arrow@21.2.0", "apache-arrow/Arrow.node"]) {
    assert.deepEqual(lint("src/formats/parquet.ts", `import { Table } from "${specifier}";`), [
      "rivet-layers/arrow-single-file",
    ]);
  }
  assert.deepEqual(lint("tests/e2e/t_test.ts", `import * as A from "apache-arrow";`), [
    "rivet-layers/arrow-single-file",
  ]);
  assert.deepEqual(
    lint("src/formats/parquet.ts", `import { tableFromIPC } from "../core/arrow.ts";`),
    [],
  );
});

Deno.test("core imports nothing outside core", () => {
  assert.deepEqual(lint("src/core/spec.ts", `import "./errors.ts";`), []);
  assert.deepEqual(lint("src/core/spec.ts", `import "../_util/redact.ts";`), [
    "rivet-layers/core-isolated",
  ]);
});

Deno.test("a violation names the offending module and a remedy", () => {
  const [diagnostic] = Deno.lint.runPlugin(
    plugin,
    `${root}/src/formats/csv.ts`,
    `import { x } from "../sources/postgres/read.ts";`,
  );
  assert.ok(diagnostic);
  assert.match(
    diagnostic.message,
    /formats\/ imports only core\/ and _util\/, not src\/sources\/postgres\/read\.ts/,
  );
  assert.equal(diagnostic.hint, "rule family-isolation");
});

Deno.test("tests may cross layers but not reach privates or the Arrow package", () => {
  assert.deepEqual(lint("src/pipeline/run_export_test.ts", `import "../formats/mod.ts";`), []);
  assert.deepEqual(lint("tests/e2e/run_test.ts", `import "../../src/cli/main.ts";`), []);
  assert.deepEqual(lint("src/pipeline/run_export_test.ts", `import "../engines/_protocol.ts";`), [
    "rivet-layers/no-foreign-private",
  ]);
  assert.deepEqual(lint("mod.ts", `export * from "./src/cli/main.ts";`), [
    "rivet-layers/no-cli-imports",
  ]);
});

Deno.test("only edge modules use the Deno runtime", () => {
  assert.deepEqual(lint("src/formats/csv.ts", `const x = Deno.env.get("X");`), [
    "rivet-layers/deno-at-edges",
  ]);
  assert.deepEqual(lint("src/pipeline/run_export.ts", `Deno.exit(1);`), [
    "rivet-layers/deno-at-edges",
  ]);
  assert.deepEqual(lint("src/destinations/local.ts", `await Deno.rename("a", "b");`), []);
  assert.deepEqual(lint("src/sources/postgres/connect.ts", `await Deno.connect({ port: 1 });`), []);
  assert.deepEqual(lint("src/sources/postgres/wire.ts", `let c: Deno.Conn | undefined;`), []);
  assert.deepEqual(lint("src/formats/csv_test.ts", `Deno.env.get("X");`), []);
});
