/**
 * Helpers for the source-level end-to-end tests (PostgreSQL and MySQL): drain a read into
 * batches, pull a column out, render a Decimal128 cell from its raw words, expect a RivetError.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { RecordBatch } from "../../src/core/arrow.ts";
import { RivetError } from "../../src/core/errors.ts";
import type { BatchStream, ReadOptions, Source } from "../../src/core/source.ts";

/** Read options with no limits, throttle or overrides. */
export const defaults: ReadOptions = {
  batchSize: 10_000,
  batchMemoryBytes: 0,
  statementTimeoutS: 0,
  lockTimeoutS: 0,
  throttleMs: 0,
  maxValueMb: 0,
  columnOverrides: {},
};

/** Runs `sql` and collects every batch. */
export async function readAll(
  source: Source,
  sql: string,
  options: Partial<ReadOptions> & { params?: (string | number | bigint | boolean | null)[] } = {},
): Promise<{ stream: BatchStream; batches: RecordBatch[] }> {
  const stream = await source.read({ sql, params: options.params ?? [] }, {
    ...defaults,
    ...options,
  });
  const batches: RecordBatch[] = [];
  for await (const b of stream.batches) batches.push(b);
  return { stream, batches };
}

/** All values of a column across batches. */
export function column(batches: RecordBatch[], name: string): unknown[] {
  const out: unknown[] = [];
  for (const b of batches) {
    const v = b.getChild(name)!;
    for (let i = 0; i < v.length; i++) out.push(v.get(i));
  }
  return out;
}

/** Decimal128 cell → text, from the raw little-endian words (independent of Arrow's formatting). */
export function decimalText(
  batch: RecordBatch,
  name: string,
  row: number,
  scale: number,
): string | null {
  const v = batch.getChild(name)!;
  if (!v.isValid(row)) return null;
  const words = v.data[0]!.values as Uint32Array;
  let u = 0n;
  for (let k = 3; k >= 0; k--) u = (u << 32n) | BigInt(words[row * 4 + k]!);
  const n = BigInt.asIntN(128, u);
  const neg = n < 0n;
  const digits = (neg ? -n : n).toString().padStart(scale + 1, "0");
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return (neg ? "-" : "") + text;
}

/** Awaits `promise`, asserts it rejected with a RivetError of the given code and class. */
export async function expectError(
  promise: Promise<unknown>,
  check: { code: string; exitCode: number; includes?: string[]; excludes?: string[] },
): Promise<RivetError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof RivetError, `expected a RivetError, got ${caught}`);
  assert.equal(caught.code, check.code, caught.message);
  assert.equal(caught.exitCode, check.exitCode, caught.message);
  for (const s of check.includes ?? []) assert.ok(caught.message.includes(s), caught.message);
  for (const s of check.excludes ?? []) assert.ok(!caught.message.includes(s), caught.message);
  return caught;
}

/**
 * Every row of `batches` as an object keyed by column name, each value passed through `value`
 * (to make Arrow's decimals, big integers and typed arrays comparable).
 *
 * @param batches The batches, in order.
 * @param value The conversion of one value.
 * @returns The rows.
 */
export function rowObjects(
  batches: readonly RecordBatch[],
  value: (v: unknown) => unknown,
): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const b of batches) {
    for (let i = 0; i < b.numRows; i++) {
      const row: Record<string, unknown> = {};
      for (const f of b.schema.fields) row[f.name] = value(b.getChild(f.name)!.get(i));
      out.push(row);
    }
  }
  return out;
}
