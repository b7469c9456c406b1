/**
 * The wider benchmark tables, each deterministic (`setseed`, `generate_series`) with a row-count
 * parameter and a table comment recording it, so a cached cluster rebuilds a table only when the
 * requested size changes:
 * - `wide`: 21 columns, about 800 bytes a row: text of 100–500 characters stitched from a small
 *   vocabulary, jsonb, uuid, numerics, dates, timestamptz, booleans and NULLs;
 * - `content_items`: 20 columns, about 4.8 KB of very repetitive text a row (blog-like content:
 *   title, body, raw HTML, two jsonb columns, timestamps).
 *
 * `narrow` lives in `_bench_pg.ts`.
 *
 * @module
 */

/** A benchmark table this module can build. */
export type FixtureName = "wide" | "content_items";

function checkRows(rows: number): void {
  if (!Number.isSafeInteger(rows) || rows < 1) throw new RangeError(`bad row count ${rows}`);
}

/**
 * The comment a fixture table carries once built for `rows` rows.
 *
 * @param name The table.
 * @param rows Row count.
 * @returns The comment text.
 */
export function fixtureComment(name: FixtureName, rows: number): string {
  return `rivet bench ${name} v1 rows=${rows}`;
}

/**
 * SQL (for psql) that builds `wide` with `rows` rows.
 *
 * @param rows Row count.
 * @returns The script.
 */
export function wideSql(rows: number): string {
  checkRows(rows);
  const words = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
    "enim",
    "minim",
    "veniam",
    "quis",
    "nostrud",
    "exercitation",
    "ullamco",
    "laboris",
    "nisi",
    "aliquip",
    "ex",
    "commodo",
    "consequat",
    "duis",
    "aute",
    "irure",
    "reprehenderit",
    "voluptate",
    "velit",
    "esse",
    "cillum",
  ].map((w) => `'${w}'`).join(",");
  return `
DROP TABLE IF EXISTS wide;
DROP TABLE IF EXISTS wide_sentences;
SELECT setseed(0.42);
-- 1,000 sentences of 20-39 words; each row's text columns are cut from three of them.
CREATE TABLE wide_sentences AS
SELECT k, string_agg(w, ' ' ORDER BY n) AS s
FROM (
  SELECT k, n,
         (ARRAY[${words}])[1 + floor(random() * 40)::int]
         || CASE WHEN random() < 0.08 THEN '.' WHEN random() < 0.05 THEN ',' ELSE '' END AS w
  FROM generate_series(0, 999) AS k,
       LATERAL generate_series(1, 20 + (k * 37) % 20) AS n
) x
GROUP BY k;
ALTER TABLE wide_sentences ADD PRIMARY KEY (k);
BEGIN;
CREATE TABLE wide (
    id            bigint        NOT NULL,
    account_id    int           NOT NULL,
    title         varchar(200)  NOT NULL,
    body          text          NOT NULL,
    summary       text,
    metadata      jsonb,
    tags          varchar(100),
    author_name   varchar(100)  NOT NULL,
    author_email  varchar(200)  NOT NULL,
    source_url    text,
    category      varchar(50),
    status        varchar(20)   NOT NULL,
    priority      int           NOT NULL,
    view_count    bigint        NOT NULL,
    score         numeric(10,4),
    price         numeric(12,2) NOT NULL,
    is_published  boolean       NOT NULL,
    external_id   uuid          NOT NULL,
    published_on  date,
    created_at    timestamptz   NOT NULL,
    updated_at    timestamptz   NOT NULL
);
INSERT INTO wide
SELECT i,
       (1 + (i * 7919) % 100000)::int,
       initcap(substr(s1.s, 1, 30 + (i % 30)::int)),
       substr(s1.s || ' ' || s2.s || ' ' || s3.s, 1, 100 + ((i * 7919) % 401)::int),
       CASE WHEN i % 10 = 0 THEN NULL
            ELSE substr(s3.s || ' ' || s1.s, 1, 100 + ((i * 104729) % 151)::int) END,
       CASE WHEN i % 20 = 0 THEN NULL ELSE
         jsonb_build_object('reading_time_min', 1 + i % 29, 'version', 1 + i % 19,
                            'featured', i % 5 = 0, 'seo_score', (i * 31) % 100,
                            'og_image', 'https://cdn.example.com/images/' || (1000 + i % 9000) || '.jpg')
       END,
       (ARRAY['rust,postgres','data,etl','arrow,parquet,performance','tutorial',
              'postgres,mysql,mssql'])[1 + (i % 5)::int],
       'Author ' || (i % 5000),
       'author' || (i % 5000) || '@example.com',
       CASE WHEN i % 7 = 0 THEN NULL ELSE 'https://blog.example.com/posts/' || i END,
       (ARRAY['engineering','product','tutorial','news','opinion'])[1 + (i % 5)::int],
       (ARRAY['draft','review','published','archived'])[1 + (i % 4)::int],
       (i % 5)::int,
       (i * 2654435761) % 1000000,
       CASE WHEN i % 9 = 0 THEN NULL ELSE ((i * 7919) % 1000000) / 10000.0 END,
       ((i * 104729) % 10000000) / 100.0,
       i % 3 <> 0,
       md5(i::text)::uuid,
       CASE WHEN i % 4 = 0 THEN NULL ELSE date '2020-01-01' + (i % 2000)::int END,
       timestamptz '2023-01-01 00:00:00+00' + i * interval '15 seconds',
       timestamptz '2023-01-01 00:00:00+00' + i * interval '15 seconds'
         + (i % 86400) * interval '1 second'
FROM generate_series(1::bigint, ${rows}) AS i
JOIN wide_sentences s1 ON s1.k = i % 1000
JOIN wide_sentences s2 ON s2.k = (i * 7) % 997
JOIN wide_sentences s3 ON s3.k = (i * 13) % 991;
ALTER TABLE wide ADD PRIMARY KEY (id);
COMMENT ON TABLE wide IS '${fixtureComment("wide", rows)}';
COMMIT;
DROP TABLE wide_sentences;
VACUUM (FREEZE, ANALYZE) wide;
`;
}

/**
 * SQL (for psql) that builds `content_items` with `rows` rows.
 *
 * @param rows Row count.
 * @returns The script.
 */
export function contentItemsSql(rows: number): string {
  checkRows(rows);
  return `
DROP TABLE IF EXISTS content_items;
BEGIN;
CREATE TABLE content_items (
  id bigint PRIMARY KEY, title text NOT NULL, body text NOT NULL, raw_html text NOT NULL,
  metadata jsonb, tags text, author_name varchar(100) NOT NULL, author_email varchar(200) NOT NULL,
  source_url text, category varchar(50), status varchar(20) NOT NULL, priority int NOT NULL,
  view_count int NOT NULL, comment_count int NOT NULL, word_count int NOT NULL,
  language char(2) NOT NULL, published_at timestamp, updated_at timestamp NOT NULL,
  created_at timestamp NOT NULL, extra_data jsonb
);
INSERT INTO content_items
SELECT n, 'Title ' || n, repeat('lorem ipsum ', 200),
  '<p>' || repeat('lorem ipsum ', 200) || '</p>',
  jsonb_build_object('seed', true, 'i', n), 'pg,etl,data', 'Author ' || n % 1000,
  'author' || n % 1000 || '@example.com', 'https://blog.example.com/posts/' || n,
  (ARRAY['engineering','product','tutorial'])[1 + n % 3],
  (ARRAY['draft','review','published'])[1 + n % 3],
  n % 5, n % 100000, n % 500, 200, 'en',
  CASE WHEN n % 3 = 0 THEN NULL ELSE timestamp '2024-01-01' + (n % 365) * interval '1 day' END,
  timestamp '2024-01-01' + (n % 400) * interval '1 day',
  timestamp '2023-01-01' + (n % 730) * interval '1 day',
  jsonb_build_object('revisions', 1)
FROM generate_series(1::bigint, ${rows}) AS n;
COMMENT ON TABLE content_items IS '${fixtureComment("content_items", rows)}';
COMMIT;
VACUUM (FREEZE, ANALYZE) content_items;
`;
}

/** Runs SQL through psql (as `BenchPg.psql`). */
export type Psql = (sql: string) => Promise<string>;

/**
 * Runs `build` unless `table` already carries `comment`: the comment records what the table was
 * built for (a row count), so a cached cluster rebuilds a table only when that changes. The
 * build script sets the comment last (inside its transaction, or as its final statement), so a
 * build that failed half-way is rebuilt on the next run.
 *
 * @param psql Runs SQL on the benchmark server.
 * @param table The table (in `public`).
 * @param comment The comment a finished build leaves.
 * @param build The build script, called only when needed.
 * @returns Whether it was (re)built, and the seconds it took.
 */
export async function ensureTable(
  psql: Psql,
  table: string,
  comment: string,
  build: () => string,
): Promise<{ built: boolean; seconds: number }> {
  const current = (await psql(
    `SELECT coalesce(obj_description(to_regclass('public.${table}'), 'pg_class'), '')`,
  )).trim();
  if (current === comment) return { built: false, seconds: 0 };
  const started = performance.now();
  await psql(build());
  return { built: true, seconds: (performance.now() - started) / 1000 };
}

/**
 * Builds a fixture table with `rows` rows unless one built for that count is already there.
 *
 * @param psql Runs SQL on the benchmark server.
 * @param name The table.
 * @param rows Row count.
 * @returns Whether it was (re)built, and the seconds it took.
 */
export function ensureFixture(
  psql: Psql,
  name: FixtureName,
  rows: number,
): Promise<{ built: boolean; seconds: number }> {
  return ensureTable(
    psql,
    name,
    fixtureComment(name, rows),
    () => name === "wide" ? wideSql(rows) : contentItemsSql(rows),
  );
}

/**
 * The `columns:` overrides that pin every `numeric(p,s)` column of a build script's
 * `CREATE TABLE` to `decimal(p,s)`. A size read through `SELECT … WHERE id <= N` then writes the
 * same schema as the whole table, whatever type the reader would infer for a query's column.
 *
 * @param sql A build script (e.g. `wideSql(1)`).
 * @returns Column → `decimal(p,s)`.
 */
export function numericOverrides(sql: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of sql.matchAll(/\b(\w+)\s+numeric\((\d+),\s*(\d+)\)/g)) {
    out[m[1]!] = `decimal(${m[2]},${m[3]})`;
  }
  return out;
}

/** The `columns:` overrides of a size of each fixture read through a query. */
export const FIXTURE_QUERY_COLUMNS: Readonly<
  Record<FixtureName, Readonly<Record<string, string>>>
> = {
  wide: numericOverrides(wideSql(1)),
  content_items: numericOverrides(contentItemsSql(1)),
};

/**
 * The `narrow` benchmark table (bigint, int, numeric(12,2), short text, timestamptz;
 * deterministic), with `rows` as the generate_series bound and a table comment recording that
 * bound.
 *
 * @param rows Row count.
 * @returns SQL for psql.
 */
export function narrowSql(rows: number): string {
  if (!Number.isSafeInteger(rows) || rows < 1) throw new RangeError(`bad row count ${rows}`);
  return `
DROP TABLE IF EXISTS narrow;
BEGIN;
CREATE TABLE narrow (
    id          bigint        NOT NULL,
    user_id     int           NOT NULL,
    amount      numeric(12,2) NOT NULL,
    status      text          NOT NULL,
    created_at  timestamptz   NOT NULL
);
INSERT INTO narrow (id, user_id, amount, status, created_at)
SELECT i,
       (1 + (i * 7919) % 1000000)::int,
       ((i * 104729) % 10000000) / 100.0,
       (ARRAY['pending','paid','shipped','delivered','cancelled','refunded'])[1 + i % 6],
       timestamptz '2024-01-01 00:00:00+00' + i * interval '3 seconds'
FROM generate_series(1::bigint, ${rows}) AS i;
ALTER TABLE narrow ADD PRIMARY KEY (id);
COMMENT ON TABLE narrow IS '${narrowComment(rows)}';
COMMIT;
VACUUM (FREEZE, ANALYZE) narrow;
`;
}

/** The comment `narrow` carries once built for `rows` rows. */
export function narrowComment(rows: number): string {
  return `rivet bench narrow v1 rows=${rows}`;
}
