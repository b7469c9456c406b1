import assert from "node:assert/strict";
import {
  DateDay,
  Decimal,
  Field,
  FixedSizeBinary,
  Float64,
  Int64,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  TimeMicrosecond,
  TimestampMicrosecond,
  Utf8,
} from "../../core/arrow.ts";
import { rowJson } from "./row_json.ts";
import type { Data } from "../../core/arrow.ts";

/** Arrow data from plain props (the overloads of makeData want one type per call). */
const data = (props: Record<string, unknown>) => makeData(props as never) as Data;

Deno.test("rowJson keeps every digit and the column's precision", () => {
  const uuidMeta = new Map([["rivet.logical_type", "uuid"]]);
  const jsonMeta = new Map([["rivet.logical_type", "json"]]);
  const fields = [
    new Field("big", new Int64(), true),
    new Field("dec", new Decimal(2, 20, 128), true),
    new Field("f", new Float64(), true),
    new Field("d", new DateDay(), true),
    new Field("t", new TimeMicrosecond(), true),
    new Field("ts", new TimestampMicrosecond(), true),
    new Field("tz", new TimestampMicrosecond("UTC"), true),
    new Field("u", new FixedSizeBinary(16), true, uuidMeta),
    new Field("j", new Utf8(), true, jsonMeta),
  ];
  const schema = new Schema(fields);
  const n = 2;
  // -123456789012345678.25 as a 128-bit two's complement in four little-endian words.
  const dec = BigInt.asUintN(128, -12345678901234567825n);
  const words = new Uint32Array(8);
  for (let w = 0; w < 4; w++) words[w] = Number((dec >> BigInt(32 * w)) & 0xffffffffn);
  const json = new TextEncoder().encode('{"a":[1,null]}');
  const children = [
    data({ type: fields[0]!.type, length: n, data: BigInt64Array.from([2n ** 60n, -5n]) }),
    data({ type: fields[1]!.type, length: n, data: words }),
    data({ type: fields[2]!.type, length: n, data: Float64Array.from([NaN, 1.5]) }),
    data({ type: fields[3]!.type, length: n, data: Int32Array.from([19782, -1]) }),
    data({ type: fields[4]!.type, length: n, data: BigInt64Array.from([47655123456n, 0n]) }),
    data({
      type: fields[5]!.type,
      length: n,
      data: BigInt64Array.from([1709265906789012n, -1n]),
    }),
    data({ type: fields[6]!.type, length: n, data: BigInt64Array.from([0n, 0n]) }),
    data({ type: fields[7]!.type, length: n, data: new Uint8Array(32).fill(0xab) }),
    data({
      type: fields[8]!.type,
      length: n,
      valueOffsets: Int32Array.from([0, json.length, json.length]),
      data: json,
      nullBitmap: Uint8Array.from([1]),
      nullCount: 1,
    }),
  ];
  const batch = new RecordBatch(
    schema,
    makeData({ type: new Struct(fields), length: n, children }),
  );
  assert.deepEqual(rowJson(batch, 0), {
    big: "1152921504606846976",
    dec: "-123456789012345678.25",
    f: "NaN",
    d: "2024-02-29",
    t: "13:14:15.123456",
    ts: "2024-03-01T04:05:06.789012",
    tz: "1970-01-01T00:00:00.000000Z",
    u: "abababab-abab-abab-abab-abababababab",
    j: { a: [1, null] },
  });
  const second = rowJson(batch, 1);
  assert.equal(second.big, -5);
  assert.equal(second.d, "1969-12-31");
  assert.equal(second.ts, "1969-12-31T23:59:59.999999");
  assert.equal(second.j, null);
});
