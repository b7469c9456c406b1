/**
 * Builds the demo database: a small shop schema (customers, products, orders, order_items) with
 * every common PostgreSQL type, seeded deterministically with `generate_series` arithmetic (no
 * `random()`), so every archive and every in-memory seed holds the same rows.
 *
 * Run `deno run -A scripts/demo_seed.ts` to rebuild `examples/demo/pgdata.tar.gz`, the pre-seeded
 * PGlite data directory that `scripts/demo.ts` loads in about two seconds instead of running
 * initdb and the seed (several seconds more).
 *
 * @module
 */
import { PGlite } from "@electric-sql/pglite";

/** Row counts of the demo tables; `order_items` follows from the orders (1 to 5 lines each). */
export const DEMO_COUNTS = {
  customers: 10_000,
  products: 500,
  orders: 40_000,
  /** Sum over orders of `1 + (id * 7) % 5` lines. */
  orderItems: 120_000,
} as const;

/** Where the pre-seeded archive lives, relative to the repository root. */
export const DEMO_ARCHIVE_PATH = "examples/demo/pgdata.tar.gz";

/**
 * The whole demo schema and data as one SQL script. Each table covers a share of the types:
 * customers (int4, uuid, varchar, char, date, timestamptz, bool, text[], jsonb, numeric, NULLs),
 * products (int2, numeric, float4, float8, json, bytea, time, int4[]), orders (int8, enum,
 * timestamp, timestamptz, interval, numeric, NULL text) and order_items (composite key, numeric).
 */
export const DEMO_SEED_SQL = `
CREATE TYPE order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded');

CREATE TABLE customers (
    id            int4          PRIMARY KEY,
    uid           uuid          NOT NULL UNIQUE,
    email         varchar(120)  NOT NULL,
    full_name     text          NOT NULL,
    country       char(2)       NOT NULL,
    birth_date    date,
    signed_up_at  timestamptz   NOT NULL,
    is_vip        boolean       NOT NULL,
    credit_limit  numeric(12,2),
    tags          text[],
    preferences   jsonb
);

CREATE TABLE products (
    id              int4          PRIMARY KEY,
    sku             varchar(32)   NOT NULL UNIQUE,
    name            text          NOT NULL,
    category        text          NOT NULL,
    price           numeric(10,2) NOT NULL,
    weight_kg       real,
    rating          double precision,
    stock           smallint      NOT NULL,
    in_stock        boolean       NOT NULL,
    attributes      json,
    thumbnail       bytea,
    restock_time    time,
    related_ids     int4[]
);

CREATE TABLE orders (
    id               int8          PRIMARY KEY,
    customer_id      int4          NOT NULL REFERENCES customers (id),
    status           order_status  NOT NULL,
    ordered_at       timestamptz   NOT NULL,
    promised_local   timestamp,
    delivery_window  interval,
    shipping_fee     numeric(8,2)  NOT NULL,
    priority         smallint      NOT NULL,
    note             text
);

CREATE TABLE order_items (
    order_id    int8           NOT NULL REFERENCES orders (id),
    line_no     smallint       NOT NULL,
    product_id  int4           NOT NULL REFERENCES products (id),
    quantity    int4           NOT NULL,
    unit_price  numeric(10,2)  NOT NULL,
    discount    numeric(4,3)   NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

INSERT INTO customers
SELECT i,
       md5('customer-' || i)::uuid,
       'user' || i || '@example.' || (ARRAY['com', 'org', 'net', 'io'])[1 + i % 4],
       (ARRAY['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Ken', 'Margaret', 'Niklaus'])[1 + i % 10]
         || ' ' ||
       (ARRAY['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Thompson', 'Hamilton', 'Wirth', 'Müller', 'Ørsted'])[1 + (i * 7) % 12],
       (ARRAY['US', 'DE', 'FR', 'GB', 'JP', 'BR', 'IN', 'CA', 'ES', 'NL'])[1 + (i * 13) % 10],
       CASE WHEN i % 17 = 0 THEN NULL ELSE date '1950-01-01' + ((i * 7919) % 20000) END,
       timestamptz '2019-01-01 00:00:00+00' + i * interval '2 hours 13 minutes 7.123456 seconds',
       i % 11 = 0,
       CASE WHEN i % 9 = 0 THEN NULL ELSE ((i * 104729) % 5000000) / 100.0 END,
       CASE WHEN i % 5 = 0 THEN NULL
            WHEN i % 5 = 1 THEN ARRAY[]::text[]
            ELSE ARRAY['newsletter', (ARRAY['early-adopter', 'wholesale', 'returning', NULL])[1 + i % 4]] END,
       CASE WHEN i % 7 = 0 THEN NULL
            ELSE jsonb_build_object('lang', (ARRAY['en', 'de', 'fr', 'ja'])[1 + i % 4],
                                    'marketing', i % 3 = 0,
                                    'score', (i * 31) % 100) END
FROM generate_series(1, ${DEMO_COUNTS.customers}) AS i;

INSERT INTO products
SELECT i,
       'SKU-' || lpad(i::text, 6, '0'),
       (ARRAY['Classic', 'Deluxe', 'Eco', 'Pro', 'Mini', 'Max'])[1 + i % 6] || ' '
         || (ARRAY['kettle', 'lamp', 'chair', 'notebook', 'backpack', 'mug', 'headphones', 'desk'])[1 + (i * 3) % 8]
         || ' ' || i,
       (ARRAY['kitchen', 'lighting', 'furniture', 'stationery', 'travel', 'audio'])[1 + i % 6],
       (199 + (i * 7919) % 49800) / 100.0,
       CASE WHEN i % 10 = 0 THEN NULL ELSE (50 + (i * 37) % 9950) / 1000.0 END,
       CASE WHEN i % 13 = 0 THEN NULL ELSE 1 + ((i * 17) % 400) / 100.0 END,
       (i * 29) % 1200,
       (i * 29) % 1200 > 0,
       json_build_object('color', (ARRAY['red', 'green', 'blue', 'black', 'white'])[1 + i % 5],
                         'sizes', json_build_array('S', 'M', 'L')),
       CASE WHEN i % 4 = 0 THEN NULL ELSE decode(md5('thumb-' || i), 'hex') END,
       time '06:00' + ((i * 97) % 43200) * interval '1 second',
       CASE WHEN i % 6 = 0 THEN NULL
            ELSE ARRAY[1 + (i * 3) % ${DEMO_COUNTS.products}, 1 + (i * 5) % ${DEMO_COUNTS.products}] END
FROM generate_series(1, ${DEMO_COUNTS.products}) AS i;

INSERT INTO orders
SELECT i,
       1 + (i * 7919) % ${DEMO_COUNTS.customers},
       (enum_range(NULL::order_status))[1 + (i * 3) % 6],
       timestamptz '2023-01-01 00:00:00+00' + i * interval '13 minutes 17.5 seconds',
       CASE WHEN i % 8 = 0 THEN NULL
            ELSE timestamp '2023-01-03 09:00:00' + i * interval '13 minutes' END,
       CASE WHEN i % 8 = 0 THEN NULL
            ELSE make_interval(days => 1 + i % 6, hours => (i * 5) % 24, mins => (i * 7) % 60) END,
       ((i * 37) % 1500) / 100.0,
       (i % 3)::smallint,
       CASE WHEN i % 10 = 0 THEN 'Leave at the door, please: "side entrance"'
            WHEN i % 10 = 5 THEN 'Gift wrap, with a note, in 日本語'
            ELSE NULL END
FROM generate_series(1, ${DEMO_COUNTS.orders}) AS i;

INSERT INTO order_items
SELECT o.id,
       l,
       1 + (o.id * 31 + l * 17) % ${DEMO_COUNTS.products},
       1 + (o.id + l) % 4,
       p.price,
       CASE WHEN (o.id + l) % 10 = 0 THEN 0.150 ELSE 0 END
FROM generate_series(1, ${DEMO_COUNTS.orders}) AS o(id)
CROSS JOIN LATERAL generate_series(1, 1 + (o.id * 7) % 5) AS l
JOIN products p ON p.id = 1 + (o.id * 31 + l * 17) % ${DEMO_COUNTS.products};
`;

/** postgresql.conf lines of the seeding instance (kept in the archive). */
const DEMO_POSTGRESQL_CONF = [
  "wal_level = minimal",
  "max_wal_senders = 0",
  "min_wal_size = 32MB",
  "max_wal_size = 64MB",
  "wal_recycle = off",
];

/** A PGlite database, as far as seeding needs it. */
export interface SeedTarget {
  exec(sql: string): Promise<unknown>;
}

/**
 * SHA-256 (hex) of {@linkcode DEMO_SEED_SQL}. `seedDemo` records it as the comment of schema
 * `public`, so the demo can tell when the archive was built from an older seed.
 *
 * @returns 64 lowercase hex digits.
 */
export async function demoSeedDigest(): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(DEMO_SEED_SQL));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Creates the demo schema and rows in an empty database.
 *
 * @param db An empty PGlite (or any object with `exec`).
 */
export async function seedDemo(db: SeedTarget): Promise<void> {
  // One exec is one transaction: with wal_level=minimal the rows then skip the WAL.
  await db.exec(
    `${DEMO_SEED_SQL}\nCOMMENT ON SCHEMA public IS 'rivet demo, seed sha256:${await demoSeedDigest()}';`,
  );
}

/** Options of {@linkcode buildDemoArchive}. */
export interface BuildDemoArchiveOptions {
  /** Called with progress lines. */
  readonly log?: (line: string) => void;
}

/**
 * Seeds a fresh in-memory PGlite and dumps its data directory as a gzipped tarball.
 *
 * @param options Progress logging.
 * @returns The archive bytes, loadable with `PGlite.create({ loadDataDir: new Blob([bytes]) })`.
 */
export async function buildDemoArchive(options: BuildDemoArchiveOptions = {}): Promise<Uint8Array> {
  const log = options.log ?? (() => {});
  const started = performance.now();
  // With wal_level=minimal, rows inserted in the transaction that created their table skip the
  // WAL; small WAL limits and no recycling keep old 16 MB segments out of the archive.
  const db = await PGlite.create({ postgresqlconf: DEMO_POSTGRESQL_CONF });
  try {
    log(`initdb: ${seconds(started)}`);
    await seedDemo(db);
    log(`seeded: ${seconds(started)}`);
    // VACUUM sets hint bits and the visibility map once, here, rather than in every demo run. It
    // writes full-page images (data checksums are on), so switch to a fresh zero-filled WAL
    // segment and checkpoint: with wal_recycle=off the old segments are deleted, not kept as
    // 16 MB of incompressible garbage in the tarball. (Separate calls: a multi-statement exec
    // is one transaction, which VACUUM refuses.)
    await db.exec("VACUUM ANALYZE");
    await db.exec("CHECKPOINT");
    await db.query("SELECT pg_switch_wal()");
    await db.exec("CHECKPOINT");
    const dump = await db.dumpDataDir("gzip");
    log(`dumped: ${seconds(started)}`);
    return new Uint8Array(await dump.arrayBuffer());
  } finally {
    await db.close();
  }
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

if (import.meta.main) {
  const bytes = await buildDemoArchive({ log: (line) => console.error(line) });
  const target = new URL(`../${DEMO_ARCHIVE_PATH}`, import.meta.url);
  await Deno.mkdir(new URL(".", target), { recursive: true });
  await Deno.writeFile(target, bytes);
  console.error(`wrote ${DEMO_ARCHIVE_PATH} (${(bytes.length / 1024 / 1024).toFixed(2)} MB)`);
}
