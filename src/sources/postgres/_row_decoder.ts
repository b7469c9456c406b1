/**
 * The hot loop: decodes binary DataRow messages, in place in the receive buffer, straight into
 * columnar builders; then wraps the builders as one Arrow RecordBatch. No per-row JS object, no
 * JS string, no BigInt on the common paths (int8 and timestamps move as two 32-bit halves).
 *
 * @module
 */
import type { RecordBatch, Schema } from "../../core/arrow.ts";
import { PermanentError } from "../../core/errors.ts";
import { BoolBuilder, type Builder, FixedBuilder, ListBuilder, VarBuilder } from "./_builders.ts";
import { assembleBatch, valueTooLarge } from "../_arrow_columns.ts";
import {
  decodeNumeric,
  intervalToIso,
  NumericStatus,
  parseUuidText,
  PG_EPOCH_DAYS,
  PG_EPOCH_US_HI,
  PG_EPOCH_US_LO,
} from "./_decode.ts";
import { type DecodePlan, Kind } from "./_types.ts";

const TWO32 = 4294967296;
const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const encoder = new TextEncoder();

function builderFor(plan: DecodePlan): Builder {
  switch (plan.kind) {
    case Kind.Bool:
      return new BoolBuilder();
    case Kind.Int16:
      return new FixedBuilder(Int16Array);
    case Kind.Int32:
    case Kind.Int16As32:
    case Kind.Date:
      return new FixedBuilder(Int32Array);
    case Kind.Int64:
    case Kind.Oid:
    case Kind.Int16As64:
    case Kind.Int32As64:
    case Kind.Time:
    case Kind.Timestamp:
    case Kind.TimestampNs:
      return new FixedBuilder(Int32Array, { width: 2, bigint: true });
    case Kind.Float32:
      return new FixedBuilder(Float32Array);
    case Kind.Float64:
    case Kind.Float32As64:
      return new FixedBuilder(Float64Array);
    case Kind.Numeric:
      return new FixedBuilder(Uint32Array, { width: 4 });
    case Kind.Uuid:
    case Kind.UuidText:
      return new FixedBuilder(Uint8Array, { width: 16 });
    case Kind.Bytes:
    case Kind.Jsonb:
    case Kind.Interval:
      return new VarBuilder();
    case Kind.List:
      return new ListBuilder(builderFor(plan.element!), plan.element!.arrowType);
    default:
      throw new Error(`no builder for decoder kind ${plan.kind}`);
  }
}

/** Options of {@linkcode RowDecoder}. */
export interface RowDecoderOptions {
  /** Largest text/binary value accepted, in bytes (0 = no limit). */
  readonly maxValueBytes: number;
}

/**
 * Decodes DataRows of one result shape into record batches.
 */
export class RowDecoder {
  readonly #plans: readonly DecodePlan[];
  readonly #builders: Builder[];
  readonly #schema: Schema;
  readonly #maxValue: number;
  readonly #numericTarget: { scale: number; precision: number; out: Uint32Array; at: number } = {
    scale: 0,
    precision: 0,
    out: new Uint32Array(0),
    at: 0,
  };
  /** Rows decoded into the current batch. */
  rows = 0;

  /**
   * @param schema Arrow schema matching the plans.
   * @param plans One plan per column.
   * @param options Value-size guard.
   */
  constructor(schema: Schema, plans: readonly DecodePlan[], options: RowDecoderOptions) {
    this.#schema = schema;
    this.#plans = plans;
    this.#builders = plans.map(builderFor);
    this.#maxValue = options.maxValueBytes > 0 ? options.maxValueBytes : INT32_MAX;
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
   * Decodes one DataRow body.
   *
   * @param buf Receive buffer.
   * @param view DataView over it.
   * @param start Body start (the int16 column count).
   */
  row(buf: Uint8Array, view: DataView, start: number): void {
    const plans = this.#plans;
    const builders = this.#builders;
    const n = plans.length;
    let p = start + 2;
    for (let c = 0; c < n; c++) {
      const len = view.getInt32(p);
      p += 4;
      if (len < 0) builders[c]!.appendNull();
      else {
        this.#value(plans[c]!, builders[c]!, buf, view, p, len);
        p += len;
      }
    }
    this.rows++;
  }

  #value(
    plan: DecodePlan,
    b: Builder,
    buf: Uint8Array,
    view: DataView,
    p: number,
    len: number,
  ): void {
    switch (plan.kind) {
      case Kind.Int64:
      case Kind.Time: {
        const f = b as FixedBuilder<Int32Array>;
        const i = f.slot() << 1;
        f.data[i] = view.getInt32(p + 4);
        f.data[i + 1] = view.getInt32(p);
        return;
      }
      case Kind.Int32: {
        const f = b as FixedBuilder<Int32Array>;
        const at = f.slot(); // before reading .data: slot() may grow it
        f.data[at] = view.getInt32(p);
        return;
      }
      case Kind.Bytes: {
        if (len > this.#maxValue) throw this.#tooLarge(plan, len);
        (b as VarBuilder).push(buf, p, len);
        return;
      }
      case Kind.Numeric: {
        const f = b as FixedBuilder<Uint32Array>;
        const t = this.#numericTarget;
        t.at = f.slot();
        t.out = f.data;
        t.scale = plan.scale;
        t.precision = plan.precision;
        const status = decodeNumeric(view, p, t);
        if (status !== NumericStatus.Ok) throw this.#badNumeric(plan, status);
        return;
      }
      case Kind.Timestamp: {
        const lo = view.getUint32(p + 4);
        const hi = view.getInt32(p);
        if ((hi === INT32_MAX && lo === 0xffffffff) || (hi === INT32_MIN && lo === 0)) {
          throw this.#infinite(plan);
        }
        const sum = lo + PG_EPOCH_US_LO;
        const f = b as FixedBuilder<Int32Array>;
        const i = f.slot() << 1;
        f.data[i] = sum; // ToInt32 keeps the low 32 bits
        f.data[i + 1] = hi + PG_EPOCH_US_HI + (sum >= TWO32 ? 1 : 0);
        return;
      }
      case Kind.Bool:
        (b as BoolBuilder).push(buf[p] !== 0);
        return;
      case Kind.Int16: {
        const f = b as FixedBuilder<Int16Array>;
        const at = f.slot(); // before reading .data: slot() may grow it
        f.data[at] = view.getInt16(p);
        return;
      }
      case Kind.Float32: {
        const f = b as FixedBuilder<Float32Array>;
        const at = f.slot(); // before reading .data: slot() may grow it
        f.data[at] = view.getFloat32(p);
        return;
      }
      case Kind.Float64: {
        const f = b as FixedBuilder<Float64Array>;
        const at = f.slot(); // before reading .data: slot() may grow it
        f.data[at] = view.getFloat64(p);
        return;
      }
      case Kind.Date: {
        const d = view.getInt32(p);
        if (d === INT32_MAX || d === INT32_MIN) throw this.#infinite(plan);
        const f = b as FixedBuilder<Int32Array>;
        const at = f.slot(); // before reading .data: slot() may grow it
        f.data[at] = d + PG_EPOCH_DAYS;
        return;
      }
      case Kind.Jsonb: {
        if (len - 1 > this.#maxValue) throw this.#tooLarge(plan, len - 1);
        // Binary jsonb is a version byte (1) followed by the JSON text.
        (b as VarBuilder).push(buf, p + 1, len - 1);
        return;
      }
      case Kind.Uuid: {
        const f = b as FixedBuilder<Uint8Array>;
        const at = f.slot() * 16; // before reading .data: slot() may grow it
        f.data.set(buf.subarray(p, p + 16), at);
        return;
      }
      case Kind.UuidText: {
        const f = b as FixedBuilder<Uint8Array>;
        const i = f.slot();
        if (!parseUuidText(buf.subarray(p, p + len), f.data, i * 16)) {
          // An unparseable uuid becomes NULL (as in the Rust tool), not an error.
          f.data.fill(0, i * 16, i * 16 + 16);
          f.nulls.push(i);
        }
        return;
      }
      case Kind.Oid: {
        const f = b as FixedBuilder<Int32Array>;
        const i = f.slot() << 1;
        f.data[i] = view.getUint32(p);
        f.data[i + 1] = 0;
        return;
      }
      case Kind.Interval: {
        const micros = (BigInt(view.getInt32(p)) << 32n) | BigInt(view.getUint32(p + 4));
        const text = intervalToIso(micros, view.getInt32(p + 8), view.getInt32(p + 12));
        (b as VarBuilder).pushBytes(encoder.encode(text));
        return;
      }
      case Kind.TimestampNs: {
        const hi = view.getInt32(p);
        const lo = view.getUint32(p + 4);
        const f = b as FixedBuilder<Int32Array>;
        if ((hi === INT32_MAX && lo === 0xffffffff) || (hi === INT32_MIN && lo === 0)) {
          throw this.#infinite(plan);
        }
        const us = ((BigInt(hi) << 32n) | BigInt(lo)) + 946_684_800_000_000n;
        const ns = us * 1000n;
        const i = f.slot();
        // Outside the int64 nanosecond range (1677–2262) ⇒ NULL, as in the Rust tool.
        if (ns !== BigInt.asIntN(64, ns)) f.nulls.push(i);
        else {
          f.data[i * 2] = Number(ns & 0xffffffffn) | 0;
          f.data[i * 2 + 1] = Number(BigInt.asIntN(32, ns >> 32n));
        }
        return;
      }
      case Kind.Int16As32: {
        const f = b as FixedBuilder<Int32Array>;
        const at = f.slot(); // before reading .data: slot() may grow it
        f.data[at] = view.getInt16(p);
        return;
      }
      case Kind.Int16As64:
      case Kind.Int32As64: {
        const v = plan.kind === Kind.Int16As64 ? view.getInt16(p) : view.getInt32(p);
        const f = b as FixedBuilder<Int32Array>;
        const i = f.slot() << 1;
        f.data[i] = v;
        f.data[i + 1] = v < 0 ? -1 : 0;
        return;
      }
      case Kind.Float32As64: {
        const f = b as FixedBuilder<Float64Array>;
        const at = f.slot(); // before reading .data: slot() may grow it
        f.data[at] = view.getFloat32(p);
        return;
      }
      case Kind.List:
        this.#array(plan, b as ListBuilder, buf, view, p);
        return;
      default:
        throw new Error(`unknown decoder kind ${plan.kind}`);
    }
  }

  #array(plan: DecodePlan, b: ListBuilder, buf: Uint8Array, view: DataView, p: number): void {
    const ndim = view.getInt32(p);
    if (ndim === 0) {
      b.endList();
      return;
    }
    if (ndim !== 1) {
      throw new PermanentError(
        `Column '${plan.name}' holds a ${ndim}-dimensional array; only 1-D arrays map to Arrow ` +
          `lists: cast it in the query (e.g. ${plan.name}::text) or unnest it`,
        { code: "source.multidimensional_array" },
      );
    }
    const count = view.getInt32(p + 12);
    let q = p + 20; // ndim, hasnull, elemtype, then (size, lbound) for the one dimension
    const element = plan.element!;
    const child = b.child;
    for (let i = 0; i < count; i++) {
      const len = view.getInt32(q);
      q += 4;
      if (len < 0) child.appendNull();
      else {
        this.#value(element, child, buf, view, q, len);
        q += len;
      }
    }
    b.endList();
  }

  #tooLarge(plan: DecodePlan, len: number): PermanentError {
    return valueTooLarge(plan.name, len, this.#maxValue);
  }

  #badNumeric(plan: DecodePlan, status: number): PermanentError {
    if (status === NumericStatus.NotFinite) {
      return new PermanentError(
        `Column '${plan.name}' holds NaN or Infinity, which decimal(${plan.precision},` +
          `${plan.scale}) cannot represent; filter it out or use NULLIF in the query`,
        { code: "source.numeric_not_finite" },
      );
    }
    return new PermanentError(
      `Column '${plan.name}' holds a value with more than ${plan.precision} digits, which ` +
        `overflows decimal(${plan.precision},${plan.scale}); widen the columns: override`,
      { code: "source.numeric_overflow" },
    );
  }

  #infinite(plan: DecodePlan): PermanentError {
    return new PermanentError(
      `Column '${plan.name}' holds 'infinity' or '-infinity', which Arrow dates and timestamps ` +
        `cannot represent; map it in the query, e.g. NULLIF(NULLIF(${plan.name}, 'infinity'), ` +
        "'-infinity')",
      { code: "source.infinite_value" },
    );
  }

  /** Wraps the current batch as a RecordBatch (the builders must be `reset` before reuse). */
  finish(): RecordBatch {
    return assembleBatch(
      this.#schema,
      this.#builders.map((builder, i) => ({ builder, type: this.#plans[i]!.arrowType })),
      this.rows,
    );
  }
}
