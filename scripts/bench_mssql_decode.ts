/**
 * `deno task bench:mssql:decode [--rows N] [--runs N]`: the client-side ceiling of the SQL Server
 * source, measurable without a server. The same 5-column `narrow` rows as the other benchmarks
 * (`bigint`, `int`, `nvarchar(32)`, `datetime2(6)`, `decimal(12,2)`), encoded once as TDS ROW
 * tokens, are parsed by tedious' own token parser:
 * - floor: tedious alone (its own value parsing, rows dropped);
 * - rivet: rivet's exact decoders hooked into the parser plus the columnar batch builder,
 *   cutting 10,000-row Arrow batches.
 * Medians of `--runs` (default 5) over `--rows` (default 1,000,000), each mode in its own process
 * (the decoder hook is process-wide). Prints rows/s, the ratio and peak RSS.
 *
 * A real server adds the network and the server's own work on top; the CI job's `bench:mssql`
 * measures that against `bcp`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import {
  col,
  colMetadata,
  PARSER_OPTIONS,
  row,
  TdsParser,
  val,
} from "../tests/_helpers/tds_tokens.ts";
import {
  installExactDecoders,
  MssqlBatchBuilder,
  type MssqlColumnMeta,
  mssqlColumns,
  mssqlSchema,
} from "../src/sources/mssql/mod.ts";

const BLOCK_ROWS = 1000;

function flag(args: readonly string[], name: string, fallback: number): number {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const n = Number(args[at + 1]);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${name} needs a positive integer`);
  return n;
}

/** One measurement in this process: rows/s of `mode` over `rows` rows. */
export function measure(
  mode: "tedious" | "rivet",
  rows: number,
): { rows: number; batches: number; rowsPerS: number; rssMb: number } {
  if (mode === "rivet") installExactDecoders();
  const columns = [
    col.intN("id", 8),
    col.intN("n", 4),
    col.nvarchar("s", 32),
    col.dateTime2("at", 6),
    col.decimalN("amount", 12, 2),
  ];
  const text = "c4ca4238a0b923820dcc509a6f75849b";
  const parts: Uint8Array[] = [];
  for (let i = 1; i <= BLOCK_ROWS; i++) {
    parts.push(row([
      val.int(BigInt(i), 8),
      val.int((i * 7919) % 1000, 4),
      val.nvarchar(text),
      val.dateTime2(i * 1_000_000, 738_885, 6),
      val.decimal(BigInt(i * 125), 12),
    ]));
  }
  const block = Buffer.concat(parts);
  const parser = new TdsParser(PARSER_OPTIONS);
  parser.write(Buffer.from(colMetadata(columns)));
  let metadata: unknown[] = [];
  for (let t = parser.read(); t !== undefined; t = parser.read()) {
    const token = t as unknown as { name: string; columns: unknown[] };
    if (token.name === "COLMETADATA") metadata = token.columns;
  }
  const planned = mode === "rivet" ? mssqlColumns(metadata as MssqlColumnMeta[], {}) : undefined;
  const builder = planned
    ? new MssqlBatchBuilder(planned, mssqlSchema(planned), { rows: 10_000 })
    : undefined;
  let seen = 0;
  let batches = 0;
  const started = performance.now();
  for (let k = 0; k < Math.ceil(rows / BLOCK_ROWS); k++) {
    parser.write(block);
    for (let t = parser.read(); t !== undefined; t = parser.read()) {
      const token = t as unknown as { name: string; columns: { value: unknown }[] };
      if (token.name !== "ROW") continue;
      seen++;
      if (builder) {
        builder.appendRow(token.columns);
        if (builder.rows >= 10_000) {
          builder.finish();
          batches++;
        }
      }
    }
  }
  if (builder && builder.rows > 0) {
    builder.finish();
    batches++;
  }
  const seconds = (performance.now() - started) / 1000;
  return { rows: seen, batches, rowsPerS: seen / seconds, rssMb: Deno.memoryUsage().rss / 2 ** 20 };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function child(mode: string, rows: number): Promise<{ rowsPerS: number; rssMb: number }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--child", mode, "--rows", `${rows}`],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`${mode} run failed`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

if (import.meta.main) {
  const args = Deno.args;
  const rows = flag(args, "--rows", 1_000_000);
  const childAt = args.indexOf("--child");
  if (childAt >= 0) {
    const mode = args[childAt + 1] === "rivet" ? "rivet" : "tedious";
    console.log(JSON.stringify(measure(mode, rows)));
  } else {
    const runs = flag(args, "--runs", 5);
    const results: Record<string, { rowsPerS: number[]; rssMb: number[] }> = {
      tedious: { rowsPerS: [], rssMb: [] },
      rivet: { rowsPerS: [], rssMb: [] },
    };
    for (let r = 0; r < runs; r++) {
      for (const mode of r % 2 ? ["rivet", "tedious"] : ["tedious", "rivet"]) {
        const m = await child(mode, rows);
        results[mode]!.rowsPerS.push(m.rowsPerS);
        results[mode]!.rssMb.push(m.rssMb);
      }
    }
    const floor = median(results.tedious!.rowsPerS);
    console.log(
      `| ${rows.toLocaleString("en-US")} narrow rows | rows/s | vs tedious alone | RSS |`,
    );
    console.log("|---|---|---|---|");
    for (const mode of ["tedious", "rivet"]) {
      const rps = median(results[mode]!.rowsPerS);
      console.log(
        `| ${mode === "tedious" ? "floor: tedious' own parsing" : "rivet: exact decode + Arrow"} ` +
          `| ${Math.round(rps).toLocaleString("en-US")} | ${(floor / rps).toFixed(2)}× | ` +
          `${Math.round(median(results[mode]!.rssMb))} MB |`,
      );
    }
  }
}
