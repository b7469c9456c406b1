import assert from "node:assert/strict";
import {
  batchOf,
  binaryCol,
  float64Col,
  int32Col,
  int64Col,
  timestampCol,
  utf8Col,
  uuidCol,
} from "./_test_batches.ts";
import {
  chooseDictionaryColumns,
  type DictionaryChoice,
  estimateDistinct,
  planDictionary,
  SAMPLE_ROWS,
} from "./_dictionary.ts";

/** A deterministic pseudo-random sequence (xorshift), so samples look like real draws. */
function draws(n: number, k: number, seed = 7): number[] {
  let x = seed;
  return Array.from({ length: n }, () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % k;
  });
}

const uuidOf = (v: number) => `00000000-0000-4000-8000-${v.toString(16).padStart(12, "0")}`;

function byName(choices: DictionaryChoice[]): Record<string, DictionaryChoice> {
  return Object.fromEntries(choices.map((c) => [c.column, c]));
}

Deno.test("estimateDistinct recovers the population size from repeats in a sample", () => {
  assert.equal(estimateDistinct(0, 0), 0);
  assert.equal(estimateDistinct(100, 100), Infinity);
  assert.equal(estimateDistinct(100, 1), 1);
  // 16,384 draws from 50,000 values give ~13,985 distinct ones.
  const k = estimateDistinct(16_384, 13_985);
  assert.ok(Math.abs(k - 50_000) < 500, `estimate ${k}`);
  assert.equal(estimateDistinct(1000, 5), 5);
});

Deno.test("dictionary: on for repeating strings, binaries, uuids and ints; off for keys, floats, timestamps", () => {
  const n = 20_000;
  const fk = draws(n, 50_000);
  const choices = byName(chooseDictionaryColumns(batchOf([
    int64Col("id", Array.from({ length: n }, (_, i) => BigInt(i))),
    uuidCol("customer_id", fk.map(uuidOf)),
    uuidCol("order_uuid", Array.from({ length: n }, (_, i) => uuidOf(i))),
    utf8Col("status", draws(n, 5).map((v) => (v === 0 ? null : `status_${v}`))),
    binaryCol("flag", draws(n, 3).map((v) => Uint8Array.of(v))),
    int32Col("qty", draws(n, 10)),
    utf8Col("note", Array.from({ length: n }, (_, i) => `free text number ${i} `.repeat(5))),
    float64Col("price", draws(n, 4).map((v) => v / 4)),
    timestampCol("at", "UTC", draws(n, 3).map((v) => BigInt(v))),
  ])));
  const on = Object.values(choices).filter((c) => c.enabled).map((c) => c.column);
  assert.deepEqual(on, ["customer_id", "status", "flag", "qty"]);
  assert.equal(choices.customer_id!.sampled, SAMPLE_ROWS);
  assert.ok(
    Math.abs(choices.customer_id!.estimatedDistinct - 50_000) < 2_500,
    `fk estimate ${choices.customer_id!.estimatedDistinct}`,
  );
  // NULLs are not sampled: status_0 rows are NULL, four values remain.
  assert.equal(choices.status!.distinct, 4);
  assert.equal(choices.id!.estimatedDistinct, Infinity);
  assert.equal(choices.note!.estimatedDistinct, Infinity);
  assert.equal(choices.price!.sampled, 0, "floats are not sampled");
});

Deno.test("dictionary: a column whose dictionary would outgrow the page limit stays plain", () => {
  const n = 4_000;
  // 3,000 distinct 2 KB values drawn 4,000 times: repeats, but ~6 MB of dictionary.
  const wide = draws(n, 3_000).map((v) => `${v}`.padStart(2048, "x"));
  const [choice] = chooseDictionaryColumns(batchOf([utf8Col("wide", wide)]));
  assert.equal(choice!.enabled, false, JSON.stringify(choice));
  const [allowed] = chooseDictionaryColumns(batchOf([utf8Col("wide", wide)]), 64 * 1024 * 1024);
  assert.equal(allowed!.enabled, true, "the same column fits a larger limit");
});

Deno.test("dictionary: all-NULL and sliced columns", () => {
  const [nulls] = chooseDictionaryColumns(batchOf([utf8Col("s", [null, null, null])]));
  assert.equal(nulls!.enabled, false);
  assert.equal(nulls!.sampled, 0);
  // A batch sliced from a larger one reads its own rows (data offset), not the parent's first.
  const batch = batchOf([int32Col("v", [...Array(100).keys(), ...Array(100).fill(1)])]);
  const [tail] = chooseDictionaryColumns(batch.slice(100, 200));
  assert.equal(tail!.sampled, 100);
  assert.equal(tail!.distinct, 1);
  assert.equal(tail!.enabled, true);
});

Deno.test("dictionary: a uuid foreign key written as text still qualifies; writer v2 only for fixed-size binaries", () => {
  const n = 20_000;
  const fk = draws(n, 50_000, 11);
  const text = planDictionary(batchOf([
    int64Col("id", Array.from({ length: n }, (_, i) => BigInt(i))),
    utf8Col("customer_id", fk.map(uuidOf)),
  ]));
  assert.deepEqual(text, { columns: ["customer_id"], writerV2: false });
  const binary = planDictionary(batchOf([uuidCol("customer_id", fk.map(uuidOf))]));
  assert.deepEqual(binary, { columns: ["customer_id"], writerV2: true });
  const unique = planDictionary(batchOf([uuidCol("id", fk.map((_, i) => uuidOf(i)))]));
  assert.deepEqual(unique, { columns: [], writerV2: false });
});
