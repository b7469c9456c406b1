/**
 * Unit tests of the replication protocol's byte work: LSN text, the Standby Status Update, the
 * Relation message, and TupleData rewritten into the DataRow layout.
 */
import assert from "node:assert/strict";
import {
  ColumnBytes,
  formatLsn,
  lsnText,
  parseLsn,
  parseRelation,
  standbyStatusUpdate,
  TupleRewriter,
} from "./_replication.ts";

const enc = new TextEncoder();

function bytes(...parts: (number[] | Uint8Array)[]): Uint8Array {
  return Uint8Array.from(parts.flatMap((p) => Array.from(p)));
}
const i16 = (v: number) => [(v >> 8) & 0xff, v & 0xff];
const i32 = (v: number) => [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
const cstr = (s: string) => [...enc.encode(s), 0];

Deno.test("LSN text round-trips and rejects non-LSNs", () => {
  assert.equal(parseLsn("0/16B3748"), 0x16b3748n);
  assert.equal(formatLsn(0xffffffff00000001n), "FFFFFFFF/1");
  assert.equal(formatLsn(parseLsn("A/b0")!), "A/B0");
  for (const [hi, lo] of [[0, 0], [0, 0x10], [0xffffffff, 0xffffffff], [0x1234, 0xabcdef01]]) {
    assert.equal(lsnText(hi!, lo!), formatLsn((BigInt(hi!) << 32n) | BigInt(lo!)));
  }
  for (const bad of ["", "0x1/2", "1/", "/1", "1/2/3", "123456789/0"]) {
    assert.equal(parseLsn(bad), undefined, bad);
  }
});

Deno.test("a Standby Status Update carries the position three times and the reply flag", () => {
  const msg = standbyStatusUpdate(0x1_0000_00a0n, true, 946_684_800_000 + 1);
  const view = new DataView(msg.buffer);
  assert.equal(msg[0], 0x64); // CopyData
  assert.equal(view.getInt32(1), 4 + 34);
  assert.equal(msg[5], 0x72); // r
  for (const at of [6, 14, 22]) assert.equal(view.getBigUint64(at), 0x1_0000_00a0n);
  assert.equal(view.getBigInt64(30), 1000n); // 1 ms after 2000-01-01, in microseconds
  assert.equal(msg[38], 1);
});

Deno.test("a Relation message gives names, types, typmods and key flags", () => {
  const msg = bytes(
    [0x52],
    i32(16384),
    cstr("public"),
    cstr("orders"),
    [0x64],
    i16(2),
    [1],
    cstr("id"),
    i32(23),
    i32(-1),
    [0],
    cstr("note"),
    i32(1043),
    i32(24),
  );
  const rel = parseRelation(msg, new DataView(msg.buffer), 0);
  assert.deepEqual(rel, {
    relid: 16384,
    namespace: "public",
    name: "orders",
    replicaIdentity: "d",
    columns: [
      { name: "id", key: true, typeOid: 23, typeModifier: -1 },
      { name: "note", key: false, typeOid: 1043, typeModifier: 24 },
    ],
  });
});

Deno.test("TupleData becomes a DataRow: nulls, unchanged TOAST, jsonb read as text", () => {
  const tuple = bytes(
    [0xee], // a byte before the tuple: offsets are honoured
    i16(5),
    [0x62],
    i32(4),
    i32(7),
    [0x6e],
    [0x75],
    [0x62],
    i32(3),
    [1, 0x7b, 0x7d], // jsonb: version 1, then "{}"
    [0x74],
    i32(2),
    [0x68, 0x69],
  );
  const rw = new TupleRewriter([
    ColumnBytes.Binary,
    ColumnBytes.Binary,
    ColumnBytes.Binary,
    ColumnBytes.JsonbText,
    ColumnBytes.TextSame,
  ]);
  const facts = rw.rewrite(tuple, new DataView(tuple.buffer), 1);
  assert.equal(facts.end, tuple.length);
  assert.equal(facts.unchanged, 1);
  assert.equal(facts.textColumn, -1);
  const want = bytes(
    i16(5),
    i32(4),
    i32(7),
    i32(-1),
    i32(-1),
    i32(2),
    [0x7b, 0x7d],
    i32(2),
    [0x68, 0x69],
  );
  assert.deepEqual(rw.buf.subarray(0, want.length), want);
});

Deno.test("a text value where binary is expected is reported, and big values grow the buffer", () => {
  const big = new Uint8Array(200_000).fill(7);
  const tuple = bytes(i16(2), [0x74], i32(1), [0x31], [0x62], i32(big.length), big);
  const rw = new TupleRewriter([ColumnBytes.Binary, ColumnBytes.Binary]);
  const facts = rw.rewrite(tuple, new DataView(tuple.buffer), 0);
  assert.equal(facts.textColumn, 0);
  assert.equal(rw.view.getInt32(2 + 4 + 1), big.length);
  assert.deepEqual(rw.buf.subarray(2 + 4 + 1 + 4, 2 + 4 + 1 + 4 + big.length), big);
});
