import assert from "node:assert/strict";
import {
  analyzeTable,
  chunkCandidates,
  DEFAULT_THRESHOLDS,
  discoveryJson,
  type InventoryColumn,
  type InventoryTable,
  numericOverride,
} from "./inventory.ts";

const col = (
  name: string,
  baseType: string,
  nullable = false,
  type = baseType,
): InventoryColumn => ({
  name,
  type,
  baseType,
  nullable,
});

function table(over: Partial<InventoryTable> = {}): InventoryTable {
  return {
    schema: "s",
    name: "t",
    kind: "table",
    columns: [col("id", "int8", false, "bigint"), col("v", "text", true)],
    keys: [{ name: "t_pkey", primary: true, columns: ["id"] }],
    unsupported: [],
    ...over,
  };
}

Deno.test("size buckets: full up to 100k rows, then chunked with parallel 1, 2, 4", () => {
  const mode = (rows: number) => {
    const s = analyzeTable("postgres", table({ rowEstimate: rows })).suggestion;
    return `${s.mode}${s.parallel === undefined ? "" : `/${s.parallel}`}`;
  };
  assert.equal(mode(0), "full");
  assert.equal(mode(100_000), "full");
  assert.equal(mode(100_001), "chunked/1");
  assert.equal(mode(500_000), "chunked/1");
  assert.equal(mode(500_001), "chunked/2");
  assert.equal(mode(4_999_999), "chunked/2");
  assert.equal(mode(5_000_000), "chunked/4");
  const s = analyzeTable("postgres", table({ rowEstimate: 2_000_000 })).suggestion;
  assert.equal(s.chunkColumn, "id");
  assert.match(s.why, /about 2,000,000 rows .*integer primary key id/);
});

Deno.test("thresholds are parameters: a lower full limit moves the buckets", () => {
  const thresholds = { ...DEFAULT_THRESHOLDS, fullMaxRows: 10 };
  const s = analyzeTable("mysql", table({ rowEstimate: 11 }), { thresholds }).suggestion;
  assert.equal(s.mode, "chunked");
  assert.equal(s.parallel, 1);
});

Deno.test("no integer primary key: incremental on the best cursor, else full for review", () => {
  const columns = [
    col("code", "varchar"),
    col("seen", "timestamp"),
    col("created_at", "timestamptz"),
    col("updated_at", "timestamptz", true),
  ];
  const big = table({ rowEstimate: 1_000_000, columns, keys: [] });
  const a = analyzeTable("postgres", big);
  assert.equal(a.suggestion.mode, "incremental");
  assert.equal(a.suggestion.cursorColumn, "updated_at");
  // updated_at is nullable: coalesced with the NOT NULL creation timestamp of the same type.
  assert.equal(a.suggestion.fallbackColumn, "created_at");
  assert.deepEqual(a.cursorCandidates.map((c) => [c.column, c.reason]), [
    ["updated_at", "updated_at_name"],
    ["created_at", "created_at_name"],
    ["seen", "timestamp_column"],
  ]);
  const text = analyzeTable("postgres", table({ rowEstimate: 1_000_000, keys: [] }));
  assert.equal(text.suggestion.mode, "full");
  assert.match(text.suggestion.review.join(), /exported whole/);
  // A text primary key is no chunk key.
  const textPk = table({
    rowEstimate: 1_000_000,
    columns: [col("code", "varchar"), col("d", "date")],
    keys: [{ name: "pk", primary: true, columns: ["code"] }],
  });
  const b = analyzeTable("postgres", textPk);
  assert.equal(b.suggestion.mode, "incremental");
  assert.match(b.suggestion.review.join(), /d is not an update timestamp/);
});

Deno.test("unknown estimate: chunked when an integer key exists, flagged for review", () => {
  const a = analyzeTable("postgres", table());
  assert.equal(a.suggestion.mode, "chunked");
  assert.equal(a.suggestion.parallel, 1);
  assert.match(a.suggestion.review.join(), /no row estimate \(run ANALYZE/);
  const view = analyzeTable("postgres", table({ kind: "view", keys: [] }));
  assert.equal(view.suggestion.mode, "full");
  assert.match(view.suggestion.review.join(), /a view has no row estimate/);
});

Deno.test("--mode forces the mode when the table allows it, else falls back to full", () => {
  const t = table({ rowEstimate: 5, columns: [...table().columns, col("updated_at", "datetime")] });
  assert.equal(analyzeTable("mysql", t, { mode: "chunked" }).suggestion.mode, "chunked");
  assert.equal(
    analyzeTable("mysql", t, { mode: "incremental" }).suggestion.cursorColumn,
    "updated_at",
  );
  const tw = analyzeTable("mysql", t, { mode: "time_window" }).suggestion;
  assert.equal(tw.mode, "time_window");
  assert.equal(tw.cursorColumn, "updated_at");
  const none = analyzeTable("mysql", table({ keys: [] }), { mode: "chunked" }).suggestion;
  assert.equal(none.mode, "full");
  assert.match(none.review.join(), /no integer key to chunk on/);
  const noCursor = analyzeTable("mysql", table(), { mode: "incremental" }).suggestion;
  assert.equal(noCursor.mode, "full");
});

Deno.test("chunk candidates: single-column integer keys, NOT NULL unless primary", () => {
  const t = table({
    columns: [col("id", "int"), col("n", "bigint", true), col("m", "bigint"), col("a", "int")],
    keys: [
      { name: "u_n", primary: false, columns: ["n"] },
      { name: "u_m", primary: false, columns: ["m"] },
      { name: "u_am", primary: false, columns: ["a", "m"] },
      { name: "PRIMARY", primary: true, columns: ["id"] },
    ],
  });
  assert.deepEqual(chunkCandidates(t).map((c) => [c.column, c.reason]), [
    ["id", "integer_primary_key"],
    ["m", "integer_unique_key"],
  ]);
});

Deno.test("numeric overrides: only what the export cannot carry as it is", () => {
  const n = (type: string, precision?: number, scale?: number): InventoryColumn => ({
    name: "x",
    type,
    baseType: type.replace(/\(.*$/, ""),
    nullable: true,
    ...(precision === undefined ? {} : { precision }),
    ...(scale === undefined ? {} : { scale }),
  });
  assert.equal(numericOverride("postgres", n("numeric"))?.type, "decimal(38,18)");
  assert.equal(numericOverride("postgres", n("numeric(12,2)", 12, 2)), undefined);
  assert.equal(numericOverride("postgres", n("numeric(50,10)", 50, 10))?.type, "text");
  assert.equal(numericOverride("mysql", n("decimal(50,10)", 50, 10))?.type, "decimal(38,10)");
  assert.equal(numericOverride("mysql", n("decimal(10,2)", 10, 2)), undefined);
  assert.equal(numericOverride("mssql", n("decimal(38,4)", 38, 4)), undefined);
  assert.equal(numericOverride("postgres", col("i", "int4")), undefined);
});

Deno.test("discovery JSON: snake_case fields, unsupported columns out of the decisions", () => {
  const t = table({
    rowEstimate: 10,
    totalBytes: 8192,
    columns: [col("id", "int4", false, "integer"), col("geo", "geometry", true)],
    unsupported: [{ column: "geo", type: "geometry", reason: "type geometry is not supported" }],
  });
  const a = analyzeTable("postgres", t);
  const doc = discoveryJson({ kind: "postgres", host: "h", database: "d", tables: [t] }, [a]);
  assert.deepEqual(doc.source, { kind: "postgres", host: "h", database: "d" });
  const [entry] = doc.tables as Record<string, unknown>[];
  assert.deepEqual(Object.keys(entry!), [
    "schema",
    "name",
    "kind",
    "row_estimate",
    "total_bytes",
    "primary_key",
    "unique_keys",
    "columns",
    "suggested_mode",
    "cursor_candidates",
    "suggested_cursor_fallback_column",
    "chunk_candidates",
    "column_overrides",
    "unsupported_columns",
    "notes",
  ]);
  assert.deepEqual(entry!.primary_key, [{ column: "id", type: "integer" }]);
  assert.equal(entry!.suggested_mode, "full");
  assert.match((entry!.notes as string[]).join(), /column geo \(geometry\) cannot be exported/);
});
