/**
 * The hot loop: decodes binary-protocol row packets, in place in mysql2's packet buffer, straight
 * into columnar builders; then wraps the builders as one Arrow RecordBatch. mysql2 never parses a
 * value (no JS object, string, `Date` or BigInt per value on the common paths): 64-bit integers
 * and timestamps move as two 32-bit halves, decimals are parsed from their text into 128-bit words.
 *
 * @module
 */
import type { RecordBatch, Schema } from "../../core/arrow.ts";
import { PermanentError } from "../../core/errors.ts";
import {
  assembleBatch,
  BoolBuilder,
  type Builder,
  FixedBuilder,
  valueTooLarge,
  VarBuilder,
} from "../_arrow_columns.ts";
import {
  daysFromCivil,
  DecimalStatus,
  parseDecimal,
  parseUuidText,
  writeMicros,
} from "./_decode.ts";
import { type DecodePlan, Read, Write } from "./_types.ts";

const INT32_MAX = 2147483647;
const TWO32 = 4294967296;
const DAY_US = 86_400_000_000;
const NS_MIN = -(2n ** 63n);
const NS_MAX = 2n ** 63n - 1n;

function builderFor(plan: DecodePlan): Builder {
  switch (plan.write) {
    case Write.Bool:
    case Write.BitBool:
      return new BoolBuilder();
    case Write.Int16:
      return new FixedBuilder(Int16Array);
    case Write.Int32:
    case Write.Date:
      return new FixedBuilder(Int32Array);
    case Write.Int64:
    case Write.Bits64:
    case Write.BitInt64:
    case Write.TimeMicros:
    case Write.TimestampMicros:
    case Write.TimestampNanos:
      return new FixedBuilder(Int32Array, { width: 2, bigint: true });
    case Write.Float32:
      return new FixedBuilder(Float32Array);
    case Write.Float64:
      return new FixedBuilder(Float64Array);
    case Write.Decimal:
      return new FixedBuilder(Uint32Array, { width: 4 });
    case Write.UuidText:
    case Write.UuidBinary:
      return new FixedBuilder(Uint8Array, { width: 16 });
    default:
      return new VarBuilder();
  }
}

/** Options of {@linkcode RowDecoder}. */
export interface RowDecoderOptions {
  /** Per-value ceiling for text/binary values, in bytes (0 = off). */
  readonly maxValueBytes: number;
}

/** Decodes binary result rows of one result shape into record batches. */
export class RowDecoder {
  /** Rows decoded into the current batch. */
  rows = 0;
  /** Zero dates turned into NULL, per column, over the whole read. */
  readonly zeroDates: number[];
  readonly #schema: Schema;
  readonly #plans: readonly DecodePlan[];
  readonly #builders: Builder[];
  readonly #maxValue: number;
  readonly #bitmapBytes: number;
  #buf: Uint8Array = new Uint8Array(0);
  #view: DataView = new DataView(new ArrayBuffer(0));
  readonly #decimalTarget: { precision: number; scale: number; out: Uint32Array; at: number } = {
    precision: 0,
    scale: 0,
    out: new Uint32Array(0),
    at: 0,
  };

  /**
   * @param schema Arrow schema of the batches.
   * @param plans One plan per column, in order.
   * @param options Value guard.
   */
  constructor(schema: Schema, plans: readonly DecodePlan[], options: RowDecoderOptions) {
    this.#schema = schema;
    this.#plans = plans;
    this.#builders = plans.map(builderFor);
    this.#maxValue = options.maxValueBytes > 0 ? options.maxValueBytes : INT32_MAX;
    this.#bitmapBytes = (plans.length + 7 + 2) >> 3;
    this.zeroDates = plans.map(() => 0);
  }

  /** Starts a batch sized for `rows` rows. */
  reset(rows: number): void {
    this.rows = 0;
    for (const b of this.#builders) b.reset(rows);
  }

  /** Bytes of the current batch's buffers. */
  byteSize(): number {
    let n = 0;
    for (const b of this.#builders) n += b.byteSize();
    return n;
  }

  /**
   * Decodes one binary row packet body (`0x00`, NULL bitmap with a 2-bit offset, values).
   *
   * @param buf Buffer holding the packet.
   * @param start Offset of the body's first byte (the `0x00` header).
   */
  row(buf: Uint8Array, start: number): void {
    if (buf !== this.#buf) {
      this.#buf = buf;
      this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    const view = this.#view;
    const plans = this.#plans;
    const builders = this.#builders;
    const n = plans.length;
    const bitmap = start + 1;
    let p = bitmap + this.#bitmapBytes;
    for (let c = 0; c < n; c++) {
      const bit = c + 2;
      const b = builders[c]!;
      if ((buf[bitmap + (bit >> 3)]! & (1 << (bit & 7))) !== 0) {
        b.appendNull();
        continue;
      }
      const plan = plans[c]!;
      switch (plan.read) {
        case Read.Int8:
          this.#int(plan, b, (buf[p]! << 24) >> 24);
          p += 1;
          break;
        case Read.UInt8:
          this.#int(plan, b, buf[p]!);
          p += 1;
          break;
        case Read.Int16:
          this.#int(plan, b, view.getInt16(p, true));
          p += 2;
          break;
        case Read.UInt16:
          this.#int(plan, b, view.getUint16(p, true));
          p += 2;
          break;
        case Read.Int32:
          this.#int(plan, b, view.getInt32(p, true));
          p += 4;
          break;
        case Read.UInt32:
          this.#int(plan, b, view.getUint32(p, true));
          p += 4;
          break;
        case Read.Int64: {
          const fb = b as FixedBuilder<Int32Array>;
          const i = fb.slot() * 2;
          fb.data[i] = view.getInt32(p, true);
          fb.data[i + 1] = view.getInt32(p + 4, true);
          p += 8;
          break;
        }
        case Read.Float32: {
          const v = view.getFloat32(p, true);
          p += 4;
          if (plan.write === Write.Float32) {
            const fb = b as FixedBuilder<Float32Array>;
            const at = fb.slot(); // before reading .data: slot() may grow it
            fb.data[at] = v;
          } else {
            const fb = b as FixedBuilder<Float64Array>;
            const at = fb.slot(); // before reading .data: slot() may grow it
            fb.data[at] = v;
          }
          break;
        }
        case Read.Float64: {
          const fb = b as FixedBuilder<Float64Array>;
          const at = fb.slot(); // before reading .data: slot() may grow it
          fb.data[at] = view.getFloat64(p, true);
          p += 8;
          break;
        }
        case Read.Bytes: {
          let len = buf[p]!;
          p += 1;
          if (len >= 0xfb) {
            if (len === 0xfc) {
              len = buf[p]! | (buf[p + 1]! << 8);
              p += 2;
            } else if (len === 0xfd) {
              len = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16);
              p += 3;
            } else {
              len = view.getUint32(p, true) + view.getUint32(p + 4, true) * TWO32;
              p += 8;
            }
          }
          this.#bytes(plan, b, buf, p, len, c);
          p += len;
          break;
        }
        case Read.Date: {
          const len = buf[p]!;
          const y = len >= 4 ? view.getUint16(p + 1, true) : 0;
          const m = len >= 4 ? buf[p + 3]! : 0;
          const d = len >= 4 ? buf[p + 4]! : 0;
          p += 1 + len;
          if (m === 0 || d === 0) {
            this.zeroDates[c]!++;
            b.appendNull();
          } else {
            const fb = b as FixedBuilder<Int32Array>;
            const at = fb.slot(); // before reading .data: slot() may grow it
            fb.data[at] = daysFromCivil(y, m, d);
          }
          break;
        }
        case Read.DateTime: {
          const len = buf[p]!;
          const y = len >= 4 ? view.getUint16(p + 1, true) : 0;
          const m = len >= 4 ? buf[p + 3]! : 0;
          const d = len >= 4 ? buf[p + 4]! : 0;
          const hh = len >= 7 ? buf[p + 5]! : 0;
          const mi = len >= 7 ? buf[p + 6]! : 0;
          const ss = len >= 7 ? buf[p + 7]! : 0;
          const us = len >= 11 ? view.getUint32(p + 8, true) : 0;
          p += 1 + len;
          if (m === 0 || d === 0) {
            this.zeroDates[c]!++;
            b.appendNull();
            break;
          }
          const seconds = daysFromCivil(y, m, d) * 86400 + hh * 3600 + mi * 60 + ss;
          if (plan.write === Write.TimestampMicros) {
            const fb = b as FixedBuilder<Int32Array>;
            const at = fb.slot() * 2; // before reading .data: slot() may grow it
            writeMicros(seconds, us, fb.data, at);
          } else {
            this.#nanos(b as FixedBuilder<Int32Array>, seconds, us);
          }
          break;
        }
        case Read.Time: {
          const len = buf[p]!;
          const negative = len >= 8 && buf[p + 1] === 1;
          const days = len >= 8 ? view.getUint32(p + 2, true) : 0;
          const hh = len >= 8 ? buf[p + 6]! : 0;
          const mi = len >= 8 ? buf[p + 7]! : 0;
          const ss = len >= 8 ? buf[p + 8]! : 0;
          const us = len >= 12 ? view.getUint32(p + 9, true) : 0;
          p += 1 + len;
          const total = (((days * 24 + hh) * 60 + mi) * 60 + ss) * 1_000_000 + us;
          if ((negative && total !== 0) || total >= DAY_US) {
            throw this.#timeOutOfRange(plan, negative, days * 24 + hh, mi, ss, us);
          }
          const fb = b as FixedBuilder<Int32Array>;
          const i = fb.slot() * 2;
          fb.data[i] = total % TWO32;
          fb.data[i + 1] = Math.floor(total / TWO32);
          break;
        }
      }
    }
    this.rows++;
  }

  #int(plan: DecodePlan, b: Builder, v: number): void {
    switch (plan.write) {
      case Write.Bool:
        (b as BoolBuilder).push(v !== 0);
        return;
      case Write.Int16: {
        const fb = b as FixedBuilder<Int16Array>;
        const at = fb.slot(); // before reading .data: slot() may grow it
        fb.data[at] = v;
        return;
      }
      case Write.Int32: {
        const fb = b as FixedBuilder<Int32Array>;
        const at = fb.slot(); // before reading .data: slot() may grow it
        fb.data[at] = v;
        return;
      }
      default: {
        const fb = b as FixedBuilder<Int32Array>;
        const i = fb.slot() * 2;
        fb.data[i] = v;
        fb.data[i + 1] = v < 0 ? -1 : 0;
      }
    }
  }

  #bytes(plan: DecodePlan, b: Builder, buf: Uint8Array, p: number, len: number, c: number): void {
    switch (plan.write) {
      case Write.Var:
        if (len > this.#maxValue) throw this.#tooLarge(plan, len);
        (b as VarBuilder).push(buf, p, len);
        return;
      case Write.Decimal: {
        const fb = b as FixedBuilder<Uint32Array>;
        const at = fb.slot() * 4;
        // One target object reused for every value (no allocation per decimal).
        const target = this.#decimalTarget;
        target.precision = plan.precision;
        target.scale = plan.scale;
        target.out = fb.data;
        target.at = at;
        const status = parseDecimal(buf, p, p + len, target);
        if (status !== DecimalStatus.Ok) throw this.#badDecimal(plan, status, buf, p, len);
        return;
      }
      case Write.BitBool: {
        let any = false;
        for (let i = 0; i < len; i++) if (buf[p + i] !== 0) any = true;
        (b as BoolBuilder).push(any);
        return;
      }
      case Write.BitInt64: {
        // Big-endian bits, at most 8 bytes; bit(64) values keep their two's complement bits.
        let hi = 0;
        let lo = 0;
        for (let i = 0; i < len; i++) {
          hi = ((hi << 8) | (lo >>> 24)) >>> 0;
          lo = ((lo << 8) | buf[p + i]!) >>> 0;
        }
        const fb = b as FixedBuilder<Int32Array>;
        const i = fb.slot() * 2;
        fb.data[i] = lo;
        fb.data[i + 1] = hi;
        return;
      }
      case Write.UuidText: {
        const fb = b as FixedBuilder<Uint8Array>;
        const at = fb.slot() * 16;
        if (!parseUuidText(buf, p, p + len, fb.data, at)) {
          fb.data.fill(0, at, at + 16);
          fb.nulls.push(fb.length - 1);
        }
        return;
      }
      case Write.UuidBinary: {
        const fb = b as FixedBuilder<Uint8Array>;
        const at = fb.slot() * 16;
        if (len === 16) fb.data.set(buf.subarray(p, p + 16), at);
        else fb.nulls.push(fb.length - 1); // not a uuid: NULL, as the Rust tool does
        return;
      }
    }
    void c;
  }

  #nanos(fb: FixedBuilder<Int32Array>, seconds: number, us: number): void {
    // Override path only: BigInt is acceptable here; outside 1677..2262 (the int64 nanosecond
    // range) the value is NULL.
    const ns = BigInt(seconds) * 1_000_000_000n + BigInt(us) * 1000n;
    if (ns < NS_MIN || ns > NS_MAX) {
      fb.appendNull();
      return;
    }
    const i = fb.slot() * 2;
    const u = BigInt.asUintN(64, ns);
    fb.data[i] = Number(u & 0xffffffffn);
    fb.data[i + 1] = Number(u >> 32n);
  }

  #timeOutOfRange(
    plan: DecodePlan,
    negative: boolean,
    hours: number,
    mi: number,
    ss: number,
    us: number,
  ): PermanentError {
    const two = (v: number) => String(v).padStart(2, "0");
    const text = `${negative ? "-" : ""}${two(hours)}:${two(mi)}:${two(ss)}` +
      (us > 0 ? `.${String(us).padStart(6, "0")}` : "");
    return new PermanentError(
      `Column '${plan.name}' holds the TIME value ${text}, outside the 00:00:00..23:59:59.999999 ` +
        `time of day that Arrow time64 represents; cast it in the query (e.g. ` +
        `CAST(${plan.name} AS CHAR)) to export it as text`,
      { code: "source.time_out_of_range" },
    );
  }

  #tooLarge(plan: DecodePlan, len: number): PermanentError {
    return valueTooLarge(plan.name, len, this.#maxValue);
  }

  #badDecimal(
    plan: DecodePlan,
    status: number,
    buf: Uint8Array,
    p: number,
    len: number,
  ): PermanentError {
    const text = String.fromCharCode(...buf.subarray(p, p + Math.min(len, 80)));
    const target = `decimal(${plan.precision},${plan.scale})`;
    if (status === DecimalStatus.Overflow) {
      return new PermanentError(
        `Column '${plan.name}' holds ${text}, which has more than ${plan.precision} digits and ` +
          `overflows ${target}; widen the columns: override`,
        { code: "source.numeric_overflow" },
      );
    }
    if (status === DecimalStatus.Truncated) {
      return new PermanentError(
        `Column '${plan.name}' holds ${text}, which has more than ${plan.scale} fractional ` +
          `digits and would be truncated by ${target}; raise the scale of the columns: override`,
        { code: "source.numeric_truncated" },
      );
    }
    return new PermanentError(
      `Column '${plan.name}' holds '${text}', which is not a decimal number; cast it in the query`,
      { code: "source.bad_decimal" },
    );
  }

  /** Wraps the current batch as a RecordBatch; call `reset` before the next one. */
  finish(): RecordBatch {
    return assembleBatch(
      this.#schema,
      this.#builders.map((builder, i) => ({ builder, type: this.#plans[i]!.arrowType })),
      this.rows,
    );
  }
}
