/**
 * Columnar batches of SQL Server rows: tedious' row values (already in the exact forms of
 * `_decode.ts`) appended straight into the shared Arrow builders, one batch at a time. No row
 * object outlives `appendRow`: strings are UTF-8 encoded and bytes copied into the builders.
 *
 * Layer: sources (SQL Server).
 *
 * @module
 */
import { DataType, Precision, type RecordBatch, type Schema } from "../../core/arrow.ts";
import { PermanentError } from "../../core/errors.ts";
import {
  assembleBatch,
  BoolBuilder,
  type Builder,
  FixedBuilder,
  planSchema,
  valueTooLarge,
  VarBuilder,
} from "../_arrow_columns.ts";
import type { DayTicks } from "./_decode.ts";
import { type DecodePlan, type MssqlColumn, Write } from "./_types.ts";

const TWO32 = 4_294_967_296;
const TWO21 = 2_097_152;
/** 86_400_000_000 µs a day = 42_187_500 × 2^11. */
const DAY_US_OVER_2048 = 42_187_500;
const DAY_NS = 86_400_000_000_000n;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** Strings up to this many UTF-16 units are encoded in a reused scratch buffer. */
const SCRATCH_CHARS = 1 << 20;

/**
 * The Arrow schema of the columns, with rivet's field metadata.
 *
 * @param columns The result columns, from `mssqlColumns`.
 * @returns The schema.
 * @throws ConfigError `source.unsupported_types` naming every unsupported column at once.
 */
export function mssqlSchema(columns: readonly MssqlColumn[]): Schema {
  return planSchema(columns.map((c) => ({
    name: c.name,
    nativeType: c.nativeType,
    mapping: {
      fidelity: c.fidelity,
      ...(c.plan ? { plan: c.plan } : {}),
      ...(c.logicalType ? { logical: c.logicalType } : {}),
      ...(c.unsupportedReason ? { reason: c.unsupportedReason } : {}),
    },
  }))).schema;
}

/** The builder that holds values of an Arrow type (the types `_types.ts` maps to). */
function builderFor(type: DataType): Builder {
  if (DataType.isBool(type)) return new BoolBuilder();
  if (DataType.isDecimal(type)) return new FixedBuilder(Uint32Array, { width: 4 });
  if (DataType.isFixedSizeBinary(type)) {
    return new FixedBuilder(Uint8Array, { width: type.byteWidth });
  }
  if (DataType.isFloat(type)) {
    return type.precision === Precision.SINGLE
      ? new FixedBuilder(Float32Array)
      : new FixedBuilder(Float64Array);
  }
  const bits = DataType.isInt(type) ? type.bitWidth : DataType.isDate(type) ? 32 : 64;
  if (
    DataType.isInt(type) || DataType.isDate(type) || DataType.isTime(type) ||
    DataType.isTimestamp(type)
  ) {
    // 64-bit values (int64, time64, timestamps) as two Int32 halves.
    return bits === 16
      ? new FixedBuilder(Int16Array)
      : bits === 32
      ? new FixedBuilder(Int32Array)
      : new FixedBuilder(Int32Array, { width: 2, bigint: true });
  }
  return new VarBuilder();
}

/**
 * Writes `days × 86_400_000_000 + micros` as a little-endian int64 (two Int32 halves), exactly
 * for every SQL Server date (0001..9999, beyond the 2^53 a double holds).
 */
function writeDayMicros(days: number, micros: number, out: Int32Array, at: number): void {
  // days × 86_400_000_000 = (days × 42_187_500) × 2^11, and days × 42_187_500 < 2^47.
  const a = days * DAY_US_OVER_2048;
  const high = Math.floor(a / TWO21);
  const low = (a - high * TWO21) * 2048 + micros; // < 2^32 + a day's µs
  const carry = Math.floor(low / TWO32);
  out[at] = low - carry * TWO32;
  out[at + 1] = high + carry;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 0x20;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

/** Parses uuid text (hyphens anywhere) into 16 bytes at `at`; false when it is not a uuid. */
function uuidFromText(text: string, out: Uint8Array, at: number): boolean {
  let nibbles = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 45) continue;
    const digit = hexDigit(code);
    if (digit < 0 || nibbles >= 32) return false;
    const byte = at + (nibbles >> 1);
    out[byte] = (nibbles & 1) === 0 ? digit << 4 : out[byte]! | digit;
    nibbles++;
  }
  return nibbles === 32;
}

/** The signed 128-bit value of four little-endian words. */
function wordsToBigInt(words: Uint32Array, at = 0): bigint {
  const u = (BigInt(words[at + 3]!) << 96n) | (BigInt(words[at + 2]!) << 64n) |
    (BigInt(words[at + 1]!) << 32n) | BigInt(words[at]!);
  return BigInt.asIntN(128, u);
}

function decimalText(value: bigint, scale: number): string {
  const digits = (value < 0n ? -value : value).toString().padStart(scale + 1, "0");
  const sign = value < 0n ? "-" : "";
  if (scale === 0) return sign + digits;
  return `${sign}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

/** Options of {@linkcode MssqlBatchBuilder}. */
export interface MssqlBatchOptions {
  /** Per-value ceiling for text/binary values, in bytes (0 or absent = off). */
  readonly maxValueBytes?: number;
  /** Rows the first batch is sized for (later batches: the previous batch's rows). */
  readonly rows?: number;
}

/**
 * Builds record batches of one SQL Server result shape from tedious' row values. The values must
 * be in the forms of `_decode.ts`: call `installExactDecoders()` before the query's rows are
 * parsed (tedious' own forms, `Date` and floats, are not read here).
 */
export class MssqlBatchBuilder {
  readonly #schema: Schema;
  readonly #plans: readonly DecodePlan[];
  readonly #builders: Builder[];
  readonly #maxValue: number;
  readonly #truncated: boolean[];
  #rows = 0;
  #scratch = new Uint8Array(1024);
  readonly #encoder = new TextEncoder();
  /** One int64 slot seen as two Int32 halves, to split bigints without allocating. */
  readonly #int64 = new BigInt64Array(1);
  readonly #halves = new Int32Array(this.#int64.buffer);

  /**
   * @param columns The result columns (all supported: `mssqlSchema` refused the others).
   * @param schema Their Arrow schema, from {@linkcode mssqlSchema}.
   * @param options Value guard and first batch size.
   */
  constructor(
    columns: readonly MssqlColumn[],
    schema: Schema,
    options: MssqlBatchOptions = {},
  ) {
    this.#schema = schema;
    this.#plans = columns.map((c) => {
      if (!c.plan) throw new Error(`column '${c.name}' (${c.nativeType}) has no decode plan`);
      return c.plan;
    });
    this.#builders = this.#plans.map((p) => builderFor(p.arrowType));
    this.#maxValue = (options.maxValueBytes ?? 0) > 0 ? options.maxValueBytes! : Infinity;
    this.#truncated = this.#plans.map(() => false);
    for (const b of this.#builders) b.reset(options.rows ?? 1024);
  }

  /** Rows appended to the current batch. */
  get rows(): number {
    return this.#rows;
  }

  /** Bytes held by the current batch's buffers. */
  byteSize(): number {
    let n = 0;
    for (const b of this.#builders) n += b.byteSize();
    return n;
  }

  /**
   * Names of the columns where a 100 ns digit was cut to µs so far, over every batch of this
   * builder, in column order: warn once for each.
   */
  truncated(): string[] {
    return this.#plans.filter((_, i) => this.#truncated[i]).map((p) => p.name);
  }

  /**
   * Appends one row.
   *
   * @param values tedious' row (`columns` of a ROW/NBCROW token, `useColumnNames: false`), after
   *   `installExactDecoders`.
   */
  appendRow(values: readonly { readonly value: unknown }[]): void {
    const plans = this.#plans;
    const builders = this.#builders;
    for (let c = 0; c < plans.length; c++) {
      const v = values[c]!.value;
      const b = builders[c]!;
      if (v === null || v === undefined) {
        b.appendNull();
        continue;
      }
      const plan = plans[c]!;
      switch (plan.write) {
        case Write.Bool:
          (b as BoolBuilder).push(v as boolean);
          break;
        case Write.Int16:
        case Write.Int32:
        case Write.Float32:
        case Write.Float64: {
          const fb = b as FixedBuilder<Int32Array>;
          const at = fb.slot(); // before reading .data: slot() may grow it
          fb.data[at] = v as number;
          break;
        }
        case Write.Int64:
          this.#int64Value(b as FixedBuilder<Int32Array>, v as number | bigint);
          break;
        case Write.Decimal:
          this.#decimal(plan, b as FixedBuilder<Uint32Array>, v as Uint32Array);
          break;
        case Write.Date: {
          const fb = b as FixedBuilder<Int32Array>;
          const at = fb.slot(); // before reading .data: slot() may grow it
          fb.data[at] = (v as DayTicks).days;
          break;
        }
        case Write.TimeMicros: {
          const us = this.#micros(c, plan, (v as DayTicks).ticks);
          const fb = b as FixedBuilder<Int32Array>;
          const at = fb.slot() * 2; // before reading .data: slot() may grow it
          writeDayMicros(0, us, fb.data, at);
          break;
        }
        case Write.TimestampMicros: {
          const t = v as DayTicks;
          const fb = b as FixedBuilder<Int32Array>;
          const at = fb.slot() * 2; // before reading .data: slot() may grow it
          writeDayMicros(t.days, this.#micros(c, plan, t.ticks), fb.data, at);
          break;
        }
        case Write.TimestampNanos:
          this.#nanos(plan, b as FixedBuilder<Int32Array>, v as DayTicks);
          break;
        case Write.Var:
          this.#var(plan, b as VarBuilder, v as string | Uint8Array);
          break;
        default:
          this.#uuid(b as FixedBuilder<Uint8Array>, v as Uint8Array | string);
      }
    }
    this.#rows++;
  }

  /** Wraps the current batch as a RecordBatch and starts the next one. */
  finish(): RecordBatch {
    const batch = assembleBatch(
      this.#schema,
      this.#builders.map((builder, i) => ({ builder, type: this.#plans[i]!.arrowType })),
      this.#rows,
    );
    const next = Math.max(this.#rows, 8);
    this.#rows = 0;
    for (const b of this.#builders) b.reset(next);
    return batch;
  }

  #int64Value(fb: FixedBuilder<Int32Array>, v: number | bigint): void {
    const i = fb.slot() * 2;
    if (typeof v === "bigint") {
      this.#int64[0] = v;
      fb.data[i] = this.#halves[0]!;
      fb.data[i + 1] = this.#halves[1]!;
    } else {
      fb.data[i] = v;
      fb.data[i + 1] = v < 0 ? -1 : 0;
    }
  }

  /**
   * µs of a time of day; a cut 100 ns digit marks the column. datetime's 1/300-s ticks are not
   * whole microseconds: they round up to the next one, so the exported value is never below the
   * stored one and an incremental cursor on a datetime column (`col > cursor`) neither re-reads
   * its last row nor can skip one (datetime values are 3.3 ms apart).
   */
  #micros(c: number, plan: DecodePlan, ticks: number): number {
    if (plan.roundTicks) return Math.ceil(ticks / 10);
    const us = Math.floor(ticks / 10);
    if (us * 10 !== ticks) this.#truncated[c] = true;
    return us;
  }

  #decimal(plan: DecodePlan, fb: FixedBuilder<Uint32Array>, words: Uint32Array): void {
    const at = fb.slot() * 4;
    const out = fb.data;
    if (!plan.rescale) {
      out[at] = words[0]!;
      out[at + 1] = words[1]!;
      out[at + 2] = words[2]!;
      out[at + 3] = words[3]!;
      return;
    }
    // A `columns:` decimal override of another scale or fewer digits: checked, never rounded.
    const source = wordsToBigInt(words);
    let v = source;
    const shift = plan.scale - plan.sourceScale;
    if (shift > 0) v *= 10n ** BigInt(shift);
    else if (shift < 0) {
      const divisor = 10n ** BigInt(-shift);
      if (v % divisor !== 0n) throw this.#badDecimal(plan, source, "truncated");
      v /= divisor;
    }
    if ((v < 0n ? -v : v) >= 10n ** BigInt(plan.precision)) {
      throw this.#badDecimal(plan, source, "overflow");
    }
    const u = BigInt.asUintN(128, v);
    for (let w = 0; w < 4; w++) out[at + w] = Number((u >> BigInt(32 * w)) & 0xffffffffn);
  }

  #badDecimal(plan: DecodePlan, value: bigint, why: "truncated" | "overflow"): PermanentError {
    const text = decimalText(value, plan.sourceScale);
    const target = `decimal(${plan.precision},${plan.scale})`;
    return why === "overflow"
      ? new PermanentError(
        `Column '${plan.name}' holds ${text}, which overflows ${target}; widen the columns: override`,
        { code: "source.numeric_overflow" },
      )
      : new PermanentError(
        `Column '${plan.name}' holds ${text}, which has more than ${plan.scale} fractional ` +
          `digits and would be truncated by ${target}; raise the scale of the columns: override`,
        { code: "source.numeric_truncated" },
      );
  }

  #nanos(plan: DecodePlan, fb: FixedBuilder<Int32Array>, t: DayTicks): void {
    // Override path only (timestamp_ns): BigInt is acceptable here.
    const ns = BigInt(t.days) * DAY_NS + BigInt(t.ticks) * 100n;
    if (ns < INT64_MIN || ns > INT64_MAX) {
      const day = new Date(t.days * 86_400_000).toISOString().slice(0, 10);
      throw new PermanentError(
        `Column '${plan.name}' holds a value on ${day}, outside 1677-09-21..2262-04-11, the ` +
          "range of nanosecond timestamps; drop its timestamp_ns override (microseconds cover " +
          "years 1..9999) or filter the rows in the query",
        { code: "source.timestamp_out_of_range" },
      );
    }
    this.#int64Value(fb, ns);
  }

  /** Copies bytes, or UTF-8 encodes a string, into the builder. */
  #var(plan: DecodePlan, vb: VarBuilder, v: string | Uint8Array): void {
    if (typeof v !== "string") {
      if (v.length > this.#maxValue) throw this.#tooLarge(plan, v.length);
      vb.push(v, 0, v.length);
      return;
    }
    const n = v.length;
    if (n > this.#maxValue) throw this.#tooLarge(plan, n);
    let out = this.#scratch;
    if (n * 3 > out.length) {
      // Very long text gets a one-off buffer, so the scratch does not pin its size.
      out = new Uint8Array(Math.max(n * 3, out.length * 2));
      if (n <= SCRATCH_CHARS) this.#scratch = out;
    }
    let len = 0;
    // ASCII, the common case, without the encoder's result object.
    for (; len < n; len++) {
      const code = v.charCodeAt(len);
      if (code >= 0x80) break;
      out[len] = code;
    }
    if (len < n) len = this.#encoder.encodeInto(v, out).written;
    if (len > this.#maxValue) throw this.#tooLarge(plan, len);
    vb.push(out, 0, len);
  }

  #uuid(fb: FixedBuilder<Uint8Array>, v: Uint8Array | string): void {
    const at = fb.slot() * 16;
    let fits = false;
    if (typeof v === "string") fits = uuidFromText(v, fb.data, at);
    else if (v.length === 16) {
      fb.data.set(v, at);
      fits = true;
    }
    if (!fits) {
      // Not a uuid (override on a text or binary column): NULL, as the other sources do.
      fb.data.fill(0, at, at + 16);
      fb.nulls.push(fb.length - 1);
    }
  }

  #tooLarge(plan: DecodePlan, bytes: number): PermanentError {
    return valueTooLarge(plan.name, bytes, this.#maxValue);
  }
}
