/**
 * The demo: the embedded database (PGlite from the pre-seeded archive, served over TCP) and the
 * whole `deno task demo` run as a subprocess, checked through its files.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import postgres from "postgres";
import { parquetMetadata } from "hyparquet";
import { startDemoDatabase } from "../../scripts/demo.ts";
import { DEMO_ARCHIVE_PATH, DEMO_COUNTS, demoSeedDigest } from "../../scripts/demo_seed.ts";

const ROOT = new URL("../../", import.meta.url);

// PGlite keeps wasm timers and node:net handles whose teardown the sanitizers cannot see.
const pgliteTest = { sanitizeOps: false, sanitizeResources: false } as const;

Deno.test(
  "the demo database serves the seeded shop over a loopback port",
  pgliteTest,
  async (t) => {
    const size = (await Deno.stat(new URL(DEMO_ARCHIVE_PATH, ROOT))).size;
    assert.ok(size < 10 * 1024 * 1024, `${DEMO_ARCHIVE_PATH} is ${size} bytes, over 10 MB`);
    await using db = await startDemoDatabase();
    assert.equal(db.origin, "archive");
    assert.match(db.url, /^postgresql:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      await t.step("the archive was built from the current seed SQL", async () => {
        const [row] = await sql`
          SELECT obj_description('public'::regnamespace, 'pg_namespace') AS c`;
        assert.match(
          String(row?.c),
          new RegExp(`seed sha256:${await demoSeedDigest()}`),
          "the archive is stale: run `deno run -A scripts/demo_seed.ts`",
        );
      });

      await t.step("each table holds the documented number of rows", async () => {
        const [row] = await sql`
        SELECT (SELECT count(*) FROM customers)   AS customers,
               (SELECT count(*) FROM products)    AS products,
               (SELECT count(*) FROM orders)      AS orders,
               (SELECT count(*) FROM order_items) AS order_items`;
        assert.deepEqual(
          { ...row },
          {
            customers: String(DEMO_COUNTS.customers),
            products: String(DEMO_COUNTS.products),
            orders: String(DEMO_COUNTS.orders),
            order_items: String(DEMO_COUNTS.orderItems),
          },
        );
      });

      await t.step("the schema covers every common type", async () => {
        const rows = await sql`
        SELECT DISTINCT format_type(a.atttypid, NULL) AS t
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relname IN ('customers', 'products', 'orders', 'order_items')
          AND a.attnum > 0 AND NOT a.attisdropped`;
        const types = new Set(rows.map((r) => String(r.t)));
        for (
          const expected of [
            "smallint",
            "integer",
            "bigint",
            "numeric",
            "real",
            "double precision",
            "boolean",
            "text",
            "character varying",
            "character",
            "date",
            "time without time zone",
            "timestamp without time zone",
            "timestamp with time zone",
            "uuid",
            "json",
            "jsonb",
            "bytea",
            "interval",
            "order_status",
            "integer[]",
            "text[]",
          ]
        ) assert.ok(types.has(expected), `no column of type ${expected} (have ${[...types]})`);
      });

      await t.step("the data follows the seed formulas, NULLs included", async () => {
        const n = DEMO_COUNTS.customers;
        const [row] = await sql`
        SELECT count(*) FILTER (WHERE birth_date IS NULL)   AS no_birth_date,
               count(*) FILTER (WHERE credit_limit IS NULL) AS no_credit_limit,
               count(*) FILTER (WHERE tags = '{}')          AS empty_tags,
               (SELECT uid::text FROM customers WHERE id = 1) AS uid1,
               (SELECT count(*) FROM orders WHERE note IS NOT NULL) AS notes,
               (SELECT delivery_window::text FROM orders WHERE id = 1) AS window1,
               (SELECT encode(thumbnail, 'hex') FROM products WHERE id = 1) AS thumb1
        FROM customers`;
        assert.equal(row?.no_birth_date, String(Math.floor(n / 17)));
        assert.equal(row?.no_credit_limit, String(Math.floor(n / 9)));
        assert.equal(row?.empty_tags, String(Math.ceil(n / 5)), "ids ≡ 1 (mod 5) have '{}'");
        assert.equal(row?.notes, String((DEMO_COUNTS.orders / 10) * 2));
        // md5('customer-1') and md5('thumb-1') from the seed, computed here independently.
        assert.equal(row?.uid1, uuidOfHex(md5Hex("customer-1")));
        assert.equal(row?.thumb1, md5Hex("thumb-1"));
        // id 1: days 1 + 1 % 6 = 2, hours 5, minutes 7.
        assert.equal(row?.window1, "2 days 05:07:00");
      });
    } finally {
      await sql.end();
    }
  },
);

/** MD5 hex of a string, via node:crypto (WebCrypto has no MD5). */
function md5Hex(text: string): string {
  return createHash("md5").update(text).digest("hex");
}

function uuidOfHex(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}

const cliReady = await Deno.stat(new URL("src/cli/main.ts", ROOT)).then(() => true, () => false);
if (!cliReady) {
  console.warn("demo_test: src/cli/main.ts does not exist yet; skipping the full demo run");
}

/** Expected exports of examples/demo.yaml: folder, format, rows (undefined: data dependent). */
const EXPORTS = [
  { name: "customers", ext: "parquet", rows: DEMO_COUNTS.customers },
  { name: "products", ext: "parquet", rows: DEMO_COUNTS.products },
  { name: "orders", ext: "parquet", rows: DEMO_COUNTS.orders },
  { name: "revenue_by_country_month", ext: "csv", rows: undefined },
  { name: "order_items", ext: "csv", rows: DEMO_COUNTS.orderItems },
] as const;

Deno.test({
  name: "deno task demo exports every demo table with a manifest and _SUCCESS",
  ignore: !cliReady,
  async fn() {
    const cwd = await Deno.makeTempDir({ prefix: "rivet_demo_" });
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("scripts/demo.ts", ROOT).pathname],
        cwd,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const log = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, `demo failed:\n${log}`);
      assert.match(log, /pre-seeded/);
      assert.match(log, /duckdb -c/);

      for (const exp of EXPORTS) {
        const dir = `${cwd}/out/demo/${exp.name}`;
        const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
        assert.ok(names.includes("manifest.json"), `${exp.name}: no manifest.json in ${names}`);
        assert.ok(names.includes("_SUCCESS"), `${exp.name}: no _SUCCESS in ${names}`);
        const manifest = JSON.parse(await Deno.readTextFile(`${dir}/manifest.json`));
        assert.equal(manifest.status, "success", exp.name);
        assert.equal(manifest.export_name, exp.name);
        const data = names.filter((n) => n.endsWith(`.${exp.ext}`));
        assert.equal(manifest.part_count, data.length, `${exp.name}: parts vs files ${names}`);
        if (exp.rows !== undefined) assert.equal(manifest.row_count, exp.rows, exp.name);
        assert.ok(manifest.row_count > 0, `${exp.name}: no rows`);

        // Count the rows back with readers that are not rivet's.
        let rows = 0;
        for (const name of data) {
          const bytes = await Deno.readFile(`${dir}/${name}`);
          if (exp.ext === "parquet") {
            const meta = parquetMetadata(bytes.buffer as ArrayBuffer);
            rows += Number(meta.num_rows);
          } else {
            rows += countCsvRecords(new TextDecoder().decode(bytes));
          }
        }
        assert.equal(rows, manifest.row_count, `${exp.name}: rows in files vs manifest`);
      }

      const itemParts = [...Deno.readDirSync(`${cwd}/out/demo/order_items`)]
        .filter((e) => e.name.endsWith(".csv"));
      assert.ok(itemParts.length >= 3, `max_file_size did not split: ${itemParts.length} part(s)`);
      for (const part of itemParts) {
        assert.match(part.name, /^order_items_\d{8}_\d{6}_part\d+\.csv$/);
      }
      const revenue = [...Deno.readDirSync(`${cwd}/out/demo/revenue_by_country_month`)]
        .find((e) => e.name.endsWith(".csv"));
      const header = (await Deno.readTextFile(
        `${cwd}/out/demo/revenue_by_country_month/${revenue?.name}`,
      )).split("\n", 1)[0];
      assert.equal(header, "country,month,orders,units,revenue,avg_unit_price");
    } finally {
      await Deno.remove(cwd, { recursive: true });
    }
  },
});

/** Records in a CSV text with a header line, honouring quoted newlines. */
function countCsvRecords(text: string): number {
  let records = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) quoted = !quoted; // '"' (a doubled quote toggles twice)
    else if (c === 10 && !quoted) records++;
  }
  return records - 1; // the header
}
