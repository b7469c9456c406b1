/**
 * Throughput and memory figures of the encoders (not a test): `deno run -A
 * src/formats/_measure.ts <csv|parquet|wide> [rows] [rowGroupMb|none]`. Run each case in its own
 * process, because wasm memory never shrinks.
 *
 * Layer: formats (private tooling).
 *
 * @module
 */
import process from "node:process";
import type { RecordBatch } from "../core/arrow.ts";
import type { FormatSpec } from "../core/spec.ts";
import { createFormat } from "./create_format.ts";
import { parquetWasmMemoryBytes } from "./parquet.ts";
import { batchOf, decimalCol, int32Col, int64Col, timestampCol, utf8Col } from "./_test_batches.ts";

const BATCH = 50_000;

/** The benchmark's `narrow` table shape: bigint, int, numeric(12,2), short text, timestamptz. */
function narrowBatch(seed: number): RecordBatch {
  const ids: bigint[] = [],
    ints: number[] = [],
    decs: bigint[] = [],
    txt: string[] = [],
    ts: bigint[] = [];
  for (let i = 0; i < BATCH; i++) {
    const r = seed * BATCH + i;
    ids.push(BigInt(r));
    ints.push((r * 7919) % 1_000_000);
    decs.push(BigInt((r * 104729) % 10_000_000) - 5_000_000n);
    txt.push(`name_${r % 100_000}`);
    ts.push(1_700_000_000_000_000n + BigInt(r) * 1_000_123n);
  }
  return batchOf([
    int64Col("id", ids),
    int32Col("n", ints),
    decimalCol("amount", { precision: 12, scale: 2 }, decs),
    utf8Col("name", txt),
    timestampCol("created_at", "UTC", ts),
  ]);
}

/** ~800 bytes a row: three texts of 100–400 chars plus numbers and a timestamp. */
function wideBatch(seed: number): RecordBatch {
  const cols: Record<string, string[]> = { a: [], b: [], c: [] };
  const ids: bigint[] = [], ts: bigint[] = [];
  for (let i = 0; i < BATCH; i++) {
    const r = seed * BATCH + i;
    ids.push(BigInt(r));
    ts.push(1_700_000_000_000_000n + BigInt(r));
    for (const [k, len] of [["a", 100], ["b", 250], ["c", 400]] as const) {
      cols[k]!.push(`${k}${r} `.repeat(Math.ceil(len / 8)).slice(0, len - (r % 50)));
    }
  }
  return batchOf([
    int64Col("id", ids),
    utf8Col("a", cols.a!),
    utf8Col("b", cols.b!),
    utf8Col("c", cols.c!),
    timestampCol("ts", "UTC", ts),
  ]);
}

const [kind = "csv", rowsArg = "2000000", groupArg] = Deno.args;
const rows = Number(rowsArg);
const spec: FormatSpec = kind === "csv"
  ? { kind: "csv", compression: "none" }
  : groupArg === undefined
  ? { kind: "parquet", compression: "zstd" }
  : groupArg === "none"
  ? {
    kind: "parquet",
    compression: "zstd",
    parquet: { rowGroupStrategy: "fixed_rows", targetRowGroupMb: 0 },
  }
  : {
    kind: "parquet",
    compression: "zstd",
    parquet: {
      rowGroupStrategy: "auto",
      targetRowGroupMb: 100_000,
      maxRowGroupMb: Number(groupArg),
    },
  };
const make = kind === "wide" ? wideBatch : narrowBatch;
const batches = Array.from({ length: 4 }, (_, i) => make(i));
const format = await createFormat(spec);
let bytes = 0, chunks = 0, peakWasm = 0;
const sink = new WritableStream<Uint8Array>({
  write(c) {
    bytes += c.length;
    chunks++;
  },
});
const encoder = format.createEncoder(batches[0]!.schema, sink);
const t0 = performance.now();
const cpu0 = process.cpuUsage();
for (let done = 0, i = 0; done < rows; done += BATCH, i++) {
  await encoder.write(batches[i % batches.length]!);
  peakWasm = Math.max(peakWasm, parquetWasmMemoryBytes());
}
await encoder.close();
const s = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const cpuS = (cpu.user + cpu.system) / 1e6;
peakWasm = Math.max(peakWasm, parquetWasmMemoryBytes());
const mb = (n: number) => (n / 1048576).toFixed(1);
console.log(
  `${kind} ${spec.kind} rows=${encoder.rowsWritten} ${s.toFixed(2)}s ` +
    `${Math.round(encoder.rowsWritten / s)} rows/s cpu=${cpuS.toFixed(2)}s ` +
    `(${Math.round(encoder.rowsWritten / cpuS)} rows/cpu-s) out=${mb(bytes)}MB chunks=${chunks} ` +
    `peakWasm=${mb(peakWasm)}MB rss=${mb(Deno.memoryUsage().rss)}MB group=${groupArg ?? "default"}`,
);
