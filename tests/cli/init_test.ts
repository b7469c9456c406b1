/**
 * `rivet init` against live databases: PostgreSQL (the heuristics on faked catalog estimates, a
 * numeric override, an unsupported column left out, a quoted name, a view, globs, `--discover`,
 * and `rivet run -c` of the scaffold exporting every table), MariaDB and the TDS test server
 * (SQL Server), and every bad input: source flags, bucket flag rules, a bad URL, a wrong password
 * (never printed), an unknown table, an existing `-o` file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runCli, spawnCli } from "../_helpers/cli.ts";
import { startPostgres } from "../_helpers/pg_server.ts";
import { startMariaDb } from "../_helpers/mariadb_server.ts";
import { startTdsServer } from "../_helpers/tds_server.ts";
import { manifestIds } from "../_helpers/exported.ts";
import { readParquet } from "../_helpers/parquet_oracle.ts";
import { loadConfig } from "../../src/config/mod.ts";

const MARKER = "S3CR3T_M4RK3R_init";

function assertNoSecret(res: { stdout: string; stderr: string }, secret = MARKER): void {
  assert.ok(!res.stdout.includes(secret), `secret in stdout: ${res.stdout}`);
  assert.ok(!res.stderr.includes(secret), `secret in stderr: ${res.stderr}`);
}

/** The YAML block of one export (from its `- name:` line to the next blank line). */
function exportBlock(yaml: string, name: string): string {
  const start = yaml.indexOf(`  - name: ${name}\n`);
  assert.ok(start >= 0, `no export ${name} in:\n${yaml}`);
  const end = yaml.indexOf("\n\n", start);
  return yaml.slice(start, end < 0 ? undefined : end);
}

/** The comment lines just above one export. */
function commentsOf(yaml: string, name: string): string {
  const start = yaml.indexOf(`  - name: ${name}\n`);
  const before = yaml.slice(0, start).split("\n");
  const out: string[] = [];
  for (let i = before.length - 2; i >= 0 && before[i]!.startsWith("  #"); i--) {
    out.unshift(before[i]!);
  }
  return out.join("\n");
}

const PG_SETUP = `
CREATE SCHEMA shop;
CREATE TABLE shop.tiny (id int PRIMARY KEY, name text);
INSERT INTO shop.tiny SELECT g, 'n' || g FROM generate_series(1, 10) g;
CREATE TABLE shop.orders (id bigint PRIMARY KEY, amount numeric, price numeric(12,2),
  placed_at timestamp NOT NULL);
INSERT INTO shop.orders SELECT g, g * 1.5, g * 2.25, '2024-01-01'::timestamp + g * interval '1 hour'
  FROM generate_series(1, 50) g;
CREATE TABLE shop.events (event_key text, note text, updated_at timestamptz,
  created_at timestamptz NOT NULL);
INSERT INTO shop.events SELECT 'k' || g, 'n', CASE WHEN g % 3 = 0 THEN NULL ELSE now() END, now()
  FROM generate_series(1, 20) g;
CREATE TABLE shop.shapes (id int PRIMARY KEY, shape point, label text);
INSERT INTO shop.shapes VALUES (1, '(1,2)', 'a'), (2, '(3,4)', 'b');
CREATE TABLE shop."MixedCase" (id int PRIMARY KEY, v text);
INSERT INTO shop."MixedCase" VALUES (1, 'x'), (2, 'y'), (3, 'z');
CREATE TABLE shop.tmp_scratch (id int);
CREATE TABLE shop.measures (id int NOT NULL, day date NOT NULL) PARTITION BY RANGE (day);
CREATE TABLE shop.measures_a PARTITION OF shop.measures FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE shop.measures_b PARTITION OF shop.measures FOR VALUES FROM ('2024-02-01') TO ('2024-03-01');
INSERT INTO shop.measures SELECT g, DATE '2024-01-01' + g FROM generate_series(1, 40) g;
CREATE TABLE public.elsewhere (id int);
CREATE VIEW shop.v_tiny AS SELECT id, name FROM shop.tiny WHERE id <= 5;
ALTER TABLE shop.orders SET (autovacuum_enabled = false);
ALTER TABLE shop.events SET (autovacuum_enabled = false);
ANALYZE;
-- Catalog estimates as a big database would have them (the rows stay few, so tests are fast).
UPDATE pg_class SET reltuples = 2000000 WHERE oid = 'shop.orders'::regclass;
UPDATE pg_class SET reltuples = 300000 WHERE oid = 'shop.events'::regclass;
`;

Deno.test({
  name: "rivet init on PostgreSQL: heuristics, overrides, globs, --discover, and the scaffold runs",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    await using pg = await startPostgres();
    await pg.psql(PG_SETUP);
    const { user, password } = pg.passwordUser;
    await pg.psql(
      `ALTER ROLE ${user} PASSWORD '${password}${MARKER}';` +
        `GRANT USAGE ON SCHEMA shop TO ${user}; GRANT SELECT ON ALL TABLES IN SCHEMA shop TO ${user};`,
    );
    const url = `postgresql://${user}:${
      encodeURIComponent(password + MARKER)
    }@${pg.host}:${pg.port}/postgres`;
    const dir = await Deno.makeTempDir({ prefix: "rivet_init_pg_" });
    Deno.env.set("INIT_TEST_PG_URL", url);
    const base = ["init", "--source-env", "INIT_TEST_PG_URL", "--schema", "shop"];
    try {
      let yaml = "";
      await t.step(
        "the scaffold: one commented export per table, the reason for each mode",
        async () => {
          const res = await runCli([...base, "--exclude", "tmp_*"]);
          assert.equal(res.code, 0, res.stderr);
          assertNoSecret(res);
          yaml = res.stdout;
          assert.match(
            yaml,
            /^source:\n {2}type: postgres\n(?: {2}#.*\n)* {2}url_env: INIT_TEST_PG_URL$/m,
          );
          assert.ok(!yaml.includes("tmp_scratch") && !yaml.includes("elsewhere"), yaml);

          const tiny = exportBlock(yaml, "tiny");
          assert.match(tiny, /table: shop\.tiny\n {4}mode: full\n/);
          assert.match(
            tiny,
            /format: parquet\n {4}destination:\n {6}type: local\n {6}path: \.\/out\/tiny/,
          );
          assert.match(tiny, /# meta_columns: \{exported_at: true, row_hash: true\}/);
          assert.match(commentsOf(yaml, "tiny"), /mode full: about 10 rows/);

          const orders = exportBlock(yaml, "orders");
          assert.match(
            orders,
            /mode: chunked\n {4}chunk_column: id\n {4}chunk_size: 100000\n {4}chunk_checkpoint: true\n {4}parallel: 2\n/,
          );
          assert.match(orders, /columns:\n {6}amount: 'decimal\(38,18\)'/);
          assert.ok(!orders.includes("price:"), "numeric(12,2) needs no override");
          assert.match(commentsOf(yaml, "orders"), /REVIEW: amount is numeric without precision/);
          assert.match(commentsOf(yaml, "orders"), /integer primary key id/);

          const events = exportBlock(yaml, "events");
          assert.match(
            events,
            /mode: incremental\n {4}cursor_column: updated_at\n(?: {4}#.*\n)? {4}incremental_cursor_mode: coalesce\n {4}cursor_fallback_column: created_at\n/,
          );

          const shapes = exportBlock(yaml, "shapes");
          assert.match(shapes, /query: 'SELECT "id", "label" FROM "shop"\."shapes"'/);
          assert.match(commentsOf(yaml, "shapes"), /REVIEW: column shape \(point\) is left out/);

          assert.match(
            exportBlock(yaml, "MixedCase"),
            /query: 'SELECT \* FROM "shop"\."MixedCase"'/,
          );
          assert.match(exportBlock(yaml, "v_tiny"), /table: shop\.v_tiny\n {4}mode: full/);
          assert.match(commentsOf(yaml, "v_tiny"), /REVIEW: a view has no row estimate/);

          // Sorted and deterministic.
          const names = [...yaml.matchAll(/^ {2}- name: (\S+)$/gm)].map((m) => m[1]);
          assert.deepEqual(names, [
            "MixedCase",
            "events",
            "measures",
            "orders",
            "shapes",
            "tiny",
            "v_tiny",
          ]);
          assert.equal((await runCli([...base, "--exclude", "tmp_*"])).stdout, yaml);
        },
      );

      await t.step(
        "-o writes a file that loads unchanged, and rivet run exports every table",
        async () => {
          const path = join(dir, "rivet.yaml");
          const res = await runCli([...base, "--exclude", "tmp_*", "-o", path]);
          assert.equal(res.code, 0, res.stderr);
          assert.equal(res.stdout, "");
          assert.match(res.stderr, /Wrote .*rivet\.yaml: 7 exports\./);
          assert.equal(await Deno.readTextFile(path), yaml);
          const config = await loadConfig(path, { env: () => undefined });
          assert.equal(config.exports.length, 7);

          // The scaffold passes `rivet check` unchanged.
          const check = await spawnCli(["check", "-c", path, "--json"], {
            cwd: dir,
            env: { INIT_TEST_PG_URL: url },
          });
          assert.equal(check.code, 0, check.stdout + check.stderr);
          assert.equal(JSON.parse(check.stdout).ok, true);
          const run = await spawnCli(["run", "-c", path], {
            cwd: dir,
            env: { INIT_TEST_PG_URL: url },
          });
          assert.equal(run.code, 0, run.stderr);
          assertNoSecret(run);
          assert.deepEqual(await manifestIds(join(dir, "out/tiny")), {
            ids: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            success: true,
          });
          const orderIds = (await manifestIds(join(dir, "out/orders"))).ids;
          assert.deepEqual(orderIds, Array.from({ length: 50 }, (_, i) => i + 1));
          assert.deepEqual((await manifestIds(join(dir, "out/shapes"))).ids, [1, 2]);
          assert.deepEqual((await manifestIds(join(dir, "out/MixedCase"))).ids, [1, 2, 3]);
          assert.deepEqual((await manifestIds(join(dir, "out/v_tiny"))).ids, [1, 2, 3, 4, 5]);
          const measures = (await manifestIds(join(dir, "out/measures"))).ids;
          assert.deepEqual(measures, Array.from({ length: 40 }, (_, i) => i + 1));
          const manifest = JSON.parse(
            await Deno.readTextFile(join(dir, "out/events/manifest.json")),
          );
          let events = 0;
          for (const part of manifest.parts as { path: string }[]) {
            events += (await readParquet(join(dir, "out/events", part.path))).rows.length;
          }
          assert.equal(events, 20);
          const firstOrder = await readParquet(
            join(
              dir,
              "out/orders",
              JSON.parse(
                await Deno.readTextFile(join(dir, "out/orders/manifest.json")),
              ).parts[0].path,
            ),
          );
          assert.ok(
            firstOrder.rows.some((r) => String(r.amount).startsWith("1.5")),
            "amount exported",
          );
        },
      );

      await t.step("-o never replaces an existing file unless --force", async () => {
        const path = join(dir, "keep.yaml");
        await Deno.writeTextFile(path, "# hand-edited\n");
        const res = await runCli([...base, "-o", path]);
        assert.equal(res.code, 1);
        assert.match(res.stderr, /keep\.yaml' already exists; it was left unchanged/);
        assert.match(res.stderr, /Hint: pass --force/);
        assert.equal(await Deno.readTextFile(path), "# hand-edited\n");
        const forced = await runCli([...base, "-o", path, "--force"]);
        assert.equal(forced.code, 0, forced.stderr);
        assert.match(await Deno.readTextFile(path), /^# rivet config scaffolded/);
        const leftovers = [...Deno.readDirSync(dir)].filter((e) => e.name.includes("rivet-init"));
        assert.deepEqual(leftovers, []);
      });

      await t.step("--table, --include, --mode, a bucket, --source and --source-file", async () => {
        const one = await runCli([...base.slice(0, 3), "--table", "shop.events", "--mode", "full"]);
        assert.equal(one.code, 0, one.stderr);
        assert.deepEqual([...one.stdout.matchAll(/^ {2}- name: (\S+)$/gm)].map((m) => m[1]), [
          "events",
        ]);
        assert.match(exportBlock(one.stdout, "events"), /mode: full/);

        const tls = await runCli([...base, "--table", "tiny", "--tls-mode", "disable"]);
        assert.equal(tls.code, 0, tls.stderr);
        assert.match(tls.stdout, /url_env: INIT_TEST_PG_URL\n {2}tls:\n {4}mode: disable\n/);

        const globbed = await runCli([
          ...base,
          "--include",
          "?iny",
          "--include",
          "v_*",
          "--s3-bucket",
          "lake",
          "--s3-region",
          "eu-west-1",
        ]);
        assert.equal(globbed.code, 0, globbed.stderr);
        const names = [...globbed.stdout.matchAll(/^ {2}- name: (\S+)$/gm)].map((m) => m[1]);
        assert.deepEqual(names, ["tiny", "v_tiny"]);
        assert.match(
          exportBlock(globbed.stdout, "tiny"),
          /destination:\n {6}type: s3\n {6}bucket: lake\n {6}prefix: tiny\/\n {6}region: eu-west-1/,
        );

        const azure = await runCli([
          ...base,
          "--table",
          "tiny",
          "--azure-container",
          "lake",
          "--azure-account",
          "acct",
        ]);
        assert.equal(azure.code, 0, azure.stderr);
        assert.match(
          azure.stdout,
          /type: azure\n {6}bucket: lake\n {6}prefix: tiny\/\n {6}account_name: acct\n {6}#.*\n {6}account_key_env: AZURE_STORAGE_KEY\n/,
        );
        await Deno.writeTextFile(join(dir, "azure.yaml"), azure.stdout);
        assert.equal(
          (await loadConfig(join(dir, "azure.yaml"))).exports[0]!.destination.kind,
          "azure",
        );

        const inline = await runCli(["init", "--source", url, "--table", "shop.tiny"]);
        assert.equal(inline.code, 0, inline.stderr);
        assertNoSecret(inline);
        assert.ok(!inline.stdout.includes(pg.passwordUser.user + ":"), "no URL in the YAML");
        assert.match(
          inline.stdout,
          /export DATABASE_URL='postgresql:\/\/user:password@host:5432\/database'\n {2}url_env: DATABASE_URL/,
        );

        await Deno.mkdir(join(dir, "conf"));
        await Deno.writeTextFile(join(dir, "pg.url"), url + "\n");
        const cwd = Deno.cwd();
        Deno.chdir(dir);
        try {
          const file = await runCli([
            "init",
            "--source-file",
            "pg.url",
            "--table",
            "shop.tiny",
            "-o",
            "conf/r.yaml",
          ]);
          assert.equal(file.code, 0, file.stderr);
          const text = await Deno.readTextFile(join(dir, "conf/r.yaml"));
          assert.match(text, /url_file: \.\.\/pg\.url/);
          assert.equal((await loadConfig(join(dir, "conf/r.yaml"))).exports.length, 1);
        } finally {
          Deno.chdir(cwd);
        }
      });

      await t.step("--discover: the JSON inventory", async () => {
        const res = await runCli([...base, "--discover", "--exclude", "tmp_*"]);
        assert.equal(res.code, 0, res.stderr);
        const doc = JSON.parse(res.stdout);
        assert.equal(doc.version, 1);
        assert.deepEqual(doc.source, { kind: "postgres", host: pg.host, database: "postgres" });
        const byName = new Map(doc.tables.map((x: { name: string }) => [x.name, x]));
        // deno-lint-ignore no-explicit-any
        const orders = byName.get("orders") as any;
        assert.equal(orders.schema, "shop");
        assert.equal(orders.row_estimate, 2000000);
        assert.ok(orders.total_bytes > 0);
        assert.deepEqual(orders.primary_key, [{ column: "id", type: "bigint" }]);
        assert.equal(orders.suggested_mode, "chunked");
        assert.deepEqual(orders.chunk_candidates, [{
          column: "id",
          type: "bigint",
          reason: "integer_primary_key",
        }]);
        assert.deepEqual(orders.columns[1], { name: "amount", type: "numeric", nullable: true });
        assert.deepEqual(orders.column_overrides, [{ column: "amount", type: "decimal(38,18)" }]);
        // deno-lint-ignore no-explicit-any
        const events = byName.get("events") as any;
        assert.equal(events.suggested_mode, "incremental");
        assert.deepEqual(
          events.cursor_candidates.map((
            c: { column: string; reason: string },
          ) => [c.column, c.reason]),
          [
            ["updated_at", "updated_at_name"],
            ["created_at", "created_at_name"],
          ],
        );
        assert.equal(events.suggested_cursor_fallback_column, "created_at");
        // deno-lint-ignore no-explicit-any
        const shapes = byName.get("shapes") as any;
        assert.equal(shapes.unsupported_columns[0].column, "shape");
        assert.equal(shapes.unsupported_columns[0].type, "point");
        assert.match(shapes.unsupported_columns[0].reason, /not supported/);
        // A partitioned table: its partitions' estimates and sizes, the partitions not listed.
        // deno-lint-ignore no-explicit-any
        const measures = byName.get("measures") as any;
        assert.equal(measures.row_estimate, 40);
        assert.ok(measures.total_bytes > 0);
        assert.ok(!byName.has("measures_a"));
        // deno-lint-ignore no-explicit-any
        const view = byName.get("v_tiny") as any;
        assert.equal(view.kind, "view");
        assert.equal(view.row_estimate, null);
        assertNoSecret(res);
      });

      await t.step(
        "a table the login may not read: a REVIEW comment instead of an export",
        async () => {
          await pg.psql(
            `CREATE ROLE init_ro LOGIN PASSWORD 'ro-${MARKER}'; GRANT USAGE ON SCHEMA shop TO init_ro;` +
              "GRANT SELECT ON shop.tiny TO init_ro;",
          );
          const ro = `postgresql://init_ro:ro-${MARKER}@${pg.host}:${pg.port}/postgres`;
          const res = await runCli([
            "init",
            "--source",
            ro,
            "--schema",
            "shop",
            "--include",
            "tiny",
            "--include",
            "orders",
          ]);
          assert.equal(res.code, 0, res.stderr);
          assertNoSecret(res);
          assert.match(
            res.stdout,
            /# REVIEW: shop\.orders has no export: cannot be read \([\s\S]*permission denied/,
          );
          assert.deepEqual([...res.stdout.matchAll(/^ {2}- name: (\S+)$/gm)].map((m) => m[1]), [
            "tiny",
          ]);
          const discover = await runCli([
            "init",
            "--source",
            ro,
            "--discover",
            "--table",
            "shop.orders",
          ]);
          const orders = JSON.parse(discover.stdout).tables[0];
          assert.equal(orders.suggested_mode, null);
          assert.match(orders.notes.join(), /cannot be read: .*permission denied/);
          const none = await runCli(["init", "--source", ro, "--table", "shop.orders"]);
          assert.equal(none.code, 1);
          assert.match(none.stderr, /none of the 1 selected tables can be exported: shop\.orders/);
          assertNoSecret(none);
        },
      );

      await t.step("bad inputs: exit code, one clear error, no secret", async () => {
        const usage = async (args: string[], pattern: RegExp) => {
          const res = await runCli(args);
          assert.equal(res.code, 2, `${args.join(" ")}: ${res.stderr}`);
          assert.match(res.stderr, pattern);
          assertNoSecret(res);
        };
        await usage(["init"], /exactly one of --source URL, --source-env VAR, --source-file PATH/);
        await usage(["init", "--source", url, "--source-env", "X"], /cannot be used with/);
        await usage(
          [...base, "--s3-region", "eu-west-1"],
          /'--s3-region <region>' requires '--s3-bucket/,
        );
        await usage([...base, "--gcs-credentials-file", "k.json"], /requires '--gcs-bucket/);
        await usage([...base, "--discover", "--s3-bucket", "b"], /cannot be used with/);
        await usage([...base, "--s3-bucket", "b", "--gcs-bucket", "g"], /cannot be used with/);
        await usage([...base, "--table", "tiny", "--include", "t*"], /cannot be used with/);
        await usage(
          [...base, "--tls-ca-file", "ca.pem"],
          /'--tls-ca-file <path>' requires '--tls-mode/,
        );
        await usage([...base, "--force"], /'--force' requires '-o, --output/);
        await usage(
          [...base, "--azure-container", "c"],
          /'--azure-container' and '--azure-account' go together/,
        );
        await usage(
          [...base, "--discover", "--azure-container", "c", "--azure-account", "a"],
          /cannot be used with/,
        );
        await usage(
          [...base, "--s3-bucket", "b", "--azure-container", "c", "--azure-account", "a"],
          /cannot be used with/,
        );
        await usage(
          [...base, "--mode", "weekly"],
          /expected full, incremental, chunked, time_window or cdc/,
        );

        const config = async (args: string[], code: number, pattern: RegExp) => {
          const res = await runCli(args);
          assert.equal(res.code, code, `${args.join(" ")}: ${res.stderr}`);
          assert.match(res.stderr, pattern);
          assertNoSecret(res);
          return res;
        };
        await config(
          ["init", "--source", "http://h/db"],
          1,
          /source URL must start with postgresql:\/\//,
        );
        await config(
          ["init", "--source-env", "INIT_TEST_UNSET_VAR"],
          1,
          /'INIT_TEST_UNSET_VAR' \(--source-env\) is not set/,
        );
        await config(
          ["init", "--source-file", join(dir, "nope.url")],
          1,
          /--source-file '.*nope\.url' does not exist/,
        );
        await config([...base, "--table", "nope"], 1, /table 'shop\.nope' does not exist/);
        await config([...base, "--table", "mixedcase"], 1, /did you mean 'shop\.MixedCase'\?/);
        await config(
          [...base, "--include", "zzz*"],
          1,
          /no table or view matched in schema 'shop'/,
        );
        await config(
          [...base, "-o", join(dir, "no/such/dir/r.yaml")],
          1,
          /cannot write '.*r\.yaml'[\s\S]*Hint: check that the folder exists/,
        );
        await config(
          ["init", "--source", url.replace("127.0.0.1", "db.example.invalid")],
          1,
          /TLS required for non-loopback host[\s\S]*Hint: pass --tls-mode require/,
        );
        const wrong = `postgresql://${user}:wrong-${MARKER}@${pg.host}:${pg.port}/postgres`;
        const res = await config(
          ["init", "--source", wrong],
          1,
          /password authentication failed|auth/i,
        );
        assert.ok(!res.stderr.includes(`wrong-${MARKER}`));
      });
    } finally {
      Deno.env.delete("INIT_TEST_PG_URL");
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "rivet init on MariaDB: tables of the URL's database, keys, cursors, decimals",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using db = await startMariaDb();
    await db.sql(
      `
      CREATE TABLE rivet.items (id int PRIMARY KEY, name varchar(20), price decimal(50,10));
      INSERT INTO rivet.items VALUES (1, 'a', 1.5), (2, 'b', 2.5);
      CREATE TABLE rivet.` + "`order`" +
        ` (code varchar(10) NOT NULL UNIQUE, updated_at datetime NULL,
        created_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP);
      INSERT INTO rivet.` + "`order`" + ` (code, updated_at) VALUES ('x', NOW()), ('y', NULL);
      CREATE VIEW rivet.v_items AS SELECT id, name FROM rivet.items;
    `,
    );
    const dir = await Deno.makeTempDir({ prefix: "rivet_init_my_" });
    try {
      const path = join(dir, "r.yaml");
      const res = await runCli([
        "init",
        "--source",
        db.url,
        "--mode",
        "incremental",
        "--exclude",
        "allowed",
        "-o",
        path,
      ]);
      assert.equal(res.code, 0, res.stderr);
      assertNoSecret(res, db.password);
      const yaml = await Deno.readTextFile(path);
      assert.ok(!yaml.includes(db.password));
      assert.match(yaml, /^ {2}type: mysql$/m);
      assert.match(
        exportBlock(yaml, "order"),
        /query: 'SELECT \* FROM `rivet`\.`order`'\n {4}mode: incremental\n {4}cursor_column: updated_at\n/,
      );
      assert.match(exportBlock(yaml, "order"), /cursor_fallback_column: created_at/);
      assert.match(exportBlock(yaml, "items"), /table: rivet\.items\n {4}mode: full\n/);
      assert.match(commentsOf(yaml, "items"), /no date or timestamp column/);
      assert.match(exportBlock(yaml, "items"), /columns:\n {6}price: 'decimal\(38,10\)'/);
      assert.match(exportBlock(yaml, "v_items"), /table: rivet\.v_items/);
      assert.equal((await loadConfig(path)).exports.length, 3);
      // The scaffold passes `rivet check` unchanged.
      const check = await spawnCli(["check", "-c", path, "--json"], {
        cwd: dir,
        env: { DATABASE_URL: db.url },
      });
      assert.equal(check.code, 0, check.stdout + check.stderr);
      assert.equal(JSON.parse(check.stdout).ok, true);
      const run = await spawnCli(["run", "-c", path], { cwd: dir, env: { DATABASE_URL: db.url } });
      assert.equal(run.code, 0, run.stderr);
      assertNoSecret(run, db.password);
      assert.deepEqual(await manifestIds(join(dir, "out/items")), { ids: [1, 2], success: true });
      assert.deepEqual((await manifestIds(join(dir, "out/v_items"))).ids, [1, 2]);
      const order = JSON.parse(await Deno.readTextFile(join(dir, "out/order/manifest.json")));
      let rows = 0;
      for (const part of order.parts as { path: string }[]) {
        rows += (await readParquet(join(dir, "out/order", part.path))).rows.length;
      }
      assert.equal(rows, 2);

      const discover = await runCli(["init", "--source", db.url, "--discover", "--table", "order"]);
      assert.equal(discover.code, 0, discover.stderr);
      const table = JSON.parse(discover.stdout).tables[0];
      assert.deepEqual(table.primary_key, []);
      assert.deepEqual(table.unique_keys, [{
        name: "code",
        columns: [{ column: "code", type: "varchar(10)" }],
      }]);
      assert.equal(table.suggested_mode, "full");
      assert.deepEqual(table.columns[0], { name: "code", type: "varchar(10)", nullable: false });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "rivet init on SQL Server (TDS test server): keys, unsupported geography, dbo default",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using tds = await startTdsServer();
    await tds.sql(`
      CREATE TABLE dbo.accounts (id bigint NOT NULL PRIMARY KEY, balance decimal(18,4),
        modified_at datetime2 NULL, place geography NULL);
      INSERT INTO dbo.accounts (id, balance, modified_at) VALUES (1, 10.5, '2024-01-01'), (2, 3, NULL);
    `);
    const { user, password } = tds.login;
    const url = `sqlserver://${encodeURIComponent(user)}:${encodeURIComponent(password)}@` +
      `${tds.host}:${tds.port}/${tds.database}`;
    const res = await runCli(["init", "--source", url, "--discover"]);
    assert.equal(res.code, 0, res.stderr);
    assertNoSecret(res, password);
    const doc = JSON.parse(res.stdout);
    assert.equal(doc.source.kind, "mssql");
    const accounts = doc.tables.find((x: { name: string }) => x.name === "accounts");
    assert.equal(accounts.schema, "dbo");
    assert.equal(accounts.row_estimate, 2);
    assert.deepEqual(accounts.primary_key, [{ column: "id", type: "bigint" }]);
    assert.deepEqual(accounts.columns.map((c: { type: string }) => c.type), [
      "bigint",
      "decimal(18,4)",
      "datetime2(7)",
      "geography",
    ]);
    assert.deepEqual(accounts.cursor_candidates.map((c: { column: string }) => c.column), [
      "modified_at",
    ]);
    assert.equal(accounts.unsupported_columns[0].column, "place");

    const yaml = await runCli([
      "init",
      "--source",
      url,
      "--table",
      "accounts",
      "--mode",
      "chunked",
    ]);
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.match(
      yaml.stdout,
      /query: 'SELECT \[id\], \[balance\], \[modified_at\] FROM \[dbo\]\.\[accounts\]'\n {4}mode: chunked\n {4}chunk_column: id\n/,
    );
    assert.match(yaml.stdout, /REVIEW: column place \(geography\) is left out/);

    // The scaffold runs: the chunked export of the supported columns.
    const dir = await Deno.makeTempDir({ prefix: "rivet_init_mssql_" });
    try {
      await Deno.writeTextFile(join(dir, "r.yaml"), yaml.stdout);
      // The scaffold passes `rivet check` unchanged.
      const check = await spawnCli(["check", "-c", join(dir, "r.yaml"), "--json"], {
        cwd: dir,
        env: { DATABASE_URL: url },
      });
      assert.equal(check.code, 0, check.stdout + check.stderr);
      assert.equal(JSON.parse(check.stdout).ok, true);
      const run = await spawnCli(["run", "-c", join(dir, "r.yaml")], {
        cwd: dir,
        env: { DATABASE_URL: url },
      });
      assert.equal(run.code, 0, run.stderr);
      assertNoSecret(run, password);
      assert.deepEqual(await manifestIds(join(dir, "out/accounts")), {
        ids: [1, 2],
        success: true,
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
