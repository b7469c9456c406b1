/**
 * End-to-end: a PostgreSQL `orders`-like table exported to Parquet gets dictionary encoding on its
 * repeating columns (uuid foreign key, status, currency, bytea tag, small int, repeated notes) and
 * none on its unique ones (key, long unique text, timestamps); the independent reader (hyparquet)
 * reads every value back, NULLs included. Expected values come from psql.
 */
import assert from "node:assert/strict";
import { stringify } from "yaml";
import { startPostgres } from "../_helpers/pg_server.ts";
import { readParquet } from "../_helpers/parquet_oracle.ts";
import { runCli } from "../_helpers/cli.ts";

const ROWS = 20_000;

const seed = `
CREATE TABLE orders AS
SELECT g::bigint AS id,
       md5('customer ' || (abs(hashint4(g)::bigint) % 2000))::uuid AS customer_id,
       (ARRAY['new','paid','shipped','delivered','cancelled'])[1 + abs(hashint4(g + 1)::bigint) % 5]
         AS status,
       CASE WHEN g % 9 = 0 THEN NULL
            ELSE (ARRAY['USD','EUR','GBP','JPY'])[1 + abs(hashint4(g + 2)::bigint) % 4] END
         AS currency,
       CASE WHEN g % 7 = 0 THEN NULL ELSE decode(lpad(to_hex(g % 3), 2, '0'), 'hex') END AS tag,
       (g % 10)::int AS qty,
       CASE WHEN g % 4 = 0 THEN NULL ELSE 'note ' || (g % 50) END AS notes,
       repeat(md5(g::text), 4) AS body,
       timestamptz '2025-01-01 00:00:00+00' + g * interval '1 second' AS created_at
FROM generate_series(1, ${ROWS}) AS g;
`;

const expectedSql = `
SELECT coalesce(json_agg(json_build_object(
  'id', id::text, 'customer_id', customer_id::text, 'status', status, 'currency', currency,
  'tag', encode(tag, 'hex'), 'qty', qty, 'notes', notes, 'body', body,
  'created_at', (extract(epoch FROM created_at) * 1000000)::bigint::text
) ORDER BY id), '[]') FROM orders;
`;

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

Deno.test("a PostgreSQL export dictionary-encodes its repeating columns and reads back exactly", async () => {
  await using pg = await startPostgres();
  await pg.psql(seed);
  const dir = await Deno.makeTempDir({ prefix: "rivet_e2e_dict_" });
  try {
    Deno.env.set("PG_DICT_URL", pg.url);
    const cfg = `${dir}/orders.yaml`;
    const exported = { name: "orders", query: "SELECT * FROM orders ORDER BY id" };
    await Deno.writeTextFile(
      cfg,
      stringify({
        source: { type: "postgres", url_env: "PG_DICT_URL" },
        exports: [{
          ...exported,
          format: "parquet",
          compression: "zstd",
          destination: { type: "local", path: `${dir}/out` },
        }],
      }),
    );
    const res = await runCli(["run", "-c", cfg]);
    assert.equal(res.code, 0, res.stderr);
    const file = [...Deno.readDirSync(`${dir}/out`)].find((e) => e.name.endsWith(".parquet"));
    assert.ok(file, "a Parquet file was written");
    const { rows, metadata } = await readParquet(`${dir}/out/${file.name}`);

    const withDictionary = new Set<string>();
    for (const group of metadata.row_groups) {
      for (const chunk of group.columns) {
        const meta = chunk.meta_data;
        if (meta.encodings.includes("RLE_DICTIONARY")) {
          withDictionary.add(meta.path_in_schema.join("."));
        }
      }
    }
    assert.deepEqual(
      [...withDictionary].sort(),
      ["currency", "customer_id", "notes", "qty", "status", "tag"],
    );

    const expected = JSON.parse(await pg.psql(expectedSql)) as Record<string, unknown>[];
    assert.equal(rows.length, ROWS);
    const actual = rows.map((r) => ({
      id: String(r.id),
      customer_id: r.customer_id,
      status: r.status,
      currency: r.currency ?? null,
      tag: r.tag === null || r.tag === undefined ? null : hex(r.tag as Uint8Array),
      qty: r.qty,
      notes: r.notes ?? null,
      body: r.body,
      created_at: String(r.created_at),
    }));
    assert.deepEqual(actual, expected);
  } finally {
    Deno.env.delete("PG_DICT_URL");
    await Deno.remove(dir, { recursive: true });
  }
});
