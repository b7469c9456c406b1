/**
 * SQL Server change data capture: turns the result batches of `cdc.fn_cdc_get_all_changes_*`
 * (`__$start_lsn, __$seqval, __$operation`, then the captured columns) into {@linkcode CdcChunk}s.
 *
 * The `__$` columns are cut off by re-wrapping the remaining column data under the table's
 * schema (no copy, no row loop over values). A transaction is the set of rows sharing one
 * `__$start_lsn` (its commit LSN), so a chunk carries `commit` exactly when its last row is the
 * last of its LSN. Whether a batch's last row is the end of its transaction is known only when
 * the next batch starts (or the window ends), so the rows after a batch's last boundary wait for
 * the next batch: at most one batch is held.
 *
 * Layer: sources.
 *
 * @module
 */
import {
  type Binary,
  type Data,
  makeData,
  RecordBatch,
  type Schema,
  Struct,
  type Vector,
} from "../../core/arrow.ts";
import { CDC_OP_CODE, type CdcChunk } from "../../core/cdc.ts";
import { SchemaDriftError } from "../../core/errors.ts";
import { lsnText } from "./_cdc_sql.ts";

/** `__$operation` → {@linkcode CDC_OP_CODE}; 3 (update before-image) is not asked for. */
const OPS: Readonly<Record<number, number>> = {
  1: CDC_OP_CODE.delete,
  2: CDC_OP_CODE.insert,
  4: CDC_OP_CODE.update,
};

/** Rows of a window batch, split into the parts a chunk needs. */
interface Rows {
  readonly batch: RecordBatch;
  readonly lsns: readonly string[];
  readonly ops: Uint8Array;
  readonly positions: readonly string[];
}

function slice(rows: Rows, begin: number, end: number): Rows {
  return {
    batch: rows.batch.slice(begin, end),
    lsns: rows.lsns.slice(begin, end),
    ops: rows.ops.subarray(begin, end),
    positions: rows.positions.slice(begin, end),
  };
}

function chunk(rows: Rows, commit: boolean): CdcChunk {
  const base = { table: 0, batch: rows.batch, ops: rows.ops, positions: rows.positions };
  return commit ? { ...base, commit: { lsn: rows.lsns[rows.lsns.length - 1]! } } : base;
}

/**
 * Splits window batches into chunks that end at transaction boundaries where they can.
 *
 * @example
 * ```ts ignore
 * const split = new ChunkSplitter(table.schema, "orders");
 * for (const batch of windowBatches) for (const c of split.push(batch)) yield c;
 * for (const c of split.finish()) yield c;
 * ```
 */
export class ChunkSplitter {
  readonly #schema: Schema;
  readonly #table: string;
  #pending: Rows | undefined;

  /**
   * @param schema The table's schema (as a full export types it): the captured columns.
   * @param table Table name, for the schema-change message.
   */
  constructor(schema: Schema, table: string) {
    this.#schema = schema;
    this.#table = table;
  }

  /**
   * Takes one window batch.
   *
   * @param batch `__$start_lsn, __$seqval, __$operation`, then the captured columns.
   * @returns The chunks now complete (0, 1 or 2).
   */
  push(batch: RecordBatch): CdcChunk[] {
    const n = batch.numRows;
    if (n === 0) return [];
    const rows = this.#rows(batch);
    const out: CdcChunk[] = [];
    if (this.#pending) {
      const held = this.#pending;
      out.push(chunk(held, held.lsns[held.lsns.length - 1] !== rows.lsns[0]));
      this.#pending = undefined;
    }
    let last = n - 2;
    while (last >= 0 && rows.lsns[last] === rows.lsns[last + 1]) last--;
    if (last >= 0) {
      out.push(chunk(slice(rows, 0, last + 1), true));
      this.#pending = slice(rows, last + 1, n);
    } else {
      this.#pending = rows;
    }
    return out;
  }

  /**
   * Ends the window: every transaction in it is complete (the window stops at an LSN the
   * capture job has fully written), so the held rows end one.
   *
   * @returns The last chunk, if rows were held.
   */
  finish(): CdcChunk[] {
    const held = this.#pending;
    this.#pending = undefined;
    return held ? [chunk(held, true)] : [];
  }

  #rows(batch: RecordBatch): Rows {
    const n = batch.numRows;
    const children = batch.data.children;
    const fields = this.#schema.fields;
    if (children.length !== fields.length + 3) this.#drift(`${children.length - 3} columns`);
    fields.forEach((f, i) => {
      const got = children[i + 3]!.type;
      if (String(got) !== String(f.type)) this.#drift(`column '${f.name}' as ${got}`);
    });
    const lsnCol = batch.getChildAt(0) as Vector<Binary>;
    const seqCol = batch.getChildAt(1) as Vector<Binary>;
    const opCol = batch.getChildAt(2)!;
    const lsns = new Array<string>(n);
    const positions = new Array<string>(n);
    const ops = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const lsn = lsnText(lsnCol.get(i)!);
      lsns[i] = lsn;
      positions[i] = `{"lsn":"${lsn}","seqval":"${lsnText(seqCol.get(i)!)}"}`;
      const op = OPS[Number(opCol.get(i))];
      if (op === undefined) throw new Error(`unexpected __$operation ${opCol.get(i)}`);
      ops[i] = op;
    }
    const data = makeData({
      type: new Struct(fields),
      length: n,
      nullCount: 0,
      children: children.slice(3) as Data[],
    });
    return { batch: new RecordBatch(this.#schema, data), lsns, ops, positions };
  }

  #drift(what: string): never {
    throw new SchemaDriftError(
      `the change data of '${this.#table}' no longer matches its columns (got ${what})`,
      {
        code: "cdc.schema_changed",
        hint: "the table changed after its capture instance was created: create a new " +
          "capture instance for the new shape (sys.sp_cdc_enable_table with another " +
          "@capture_instance), export the table in full, and point cdc.capture_instance at it",
      },
    );
  }
}
