/**
 * One unit of a chunked export — a chunk window, a keyset page, or the single query of a
 * downgraded plan: read its statement, encode it, commit its parts under their final names, and
 * report what was committed. Transient failures before any commit (a refused connection
 * included: the run is underway) are retried on a new connection after a jittered backoff. The
 * unit never touches the state store: whoever runs it (the chunk loop in this thread, or a Web
 * Worker of the worker engine) reports the parts to the main thread, the only writer of state.
 *
 * Layer: pipeline. Imports core/, plan/, _util/ only.
 *
 * @module
 */
import { type ErrorInfo, toErrorInfo } from "../core/errors.ts";
import type { Destination } from "../core/destination.ts";
import type { EventSink } from "../core/events.ts";
import type { Format } from "../core/format.ts";
import type { ColumnInfo, Source } from "../core/source.ts";
import type { ExportSpec, TuningPlan } from "../core/spec.ts";
import { sleep } from "../_util/abort.ts";
import { crashPoint } from "../_util/test_hook.ts";
import { chunkName, keysetName, partName, randomHex16 } from "./naming.ts";
import { abortUncommitted, readStatement, type StagedPart } from "./part_writer.ts";
import { retriesInRun, retryStep } from "./retry.ts";
import type { StatementStats } from "./quality.ts";

/** What to run: structured-clone safe, so it can be posted to a worker. */
export interface UnitSpec {
  /** Chunk index, or keyset page number. */
  readonly chunkIndex: number;
  /** File naming: `_chunk<i>_<hex>`, `_keyset<page>`, or the plain single-query name. */
  readonly naming: "chunk" | "keyset" | "single";
  readonly sql: string;
  readonly params: readonly (string | number | bigint | boolean | null)[];
  readonly stripColumns?: readonly string[];
  /** Report the last non-NULL value of this column (keyset paging). */
  readonly cursorColumn?: string;
  /** Rows exported before this unit, for running totals in progress events. */
  readonly rowsBefore?: number;
  /**
   * The collision tag of `single` and `keyset` names (another run of the export in the same
   * second holds the plain names; see `fileNameTag`).
   */
  readonly nameTag?: string;
  /** `run --validate`: re-count each part from its bytes before its commit. */
  readonly recount?: boolean;
  /** The worker slot the caller assigned (a pool runs it there when that slot is free). */
  readonly lane?: number;
}

/** A committed part as a unit reports it. */
export interface CommittedPart {
  readonly key: string;
  readonly rows: number;
  readonly size: number;
  /** 16 lowercase hex digits. */
  readonly xxh3: string;
  /** Base64. */
  readonly md5: string;
  /** 0-based position among the unit's parts. */
  readonly partIndex: number;
}

/** What a unit did: structured-clone safe. */
export interface UnitResult {
  readonly chunkIndex: number;
  readonly rows: number;
  readonly parts: readonly CommittedPart[];
  readonly lastCursor?: string;
  /** The cursor column is an integer type (keyset bounds are then inlined as numbers). */
  readonly keyIsInteger?: boolean;
  readonly peakRss: number;
  readonly durationMs: number;
  /** Set when the unit failed after its retries. */
  readonly failure?: ErrorInfo;
  /** What quality gates and shape drift read in this unit (merged by the run). */
  readonly stats?: StatementStats;
}

/** Collaborators of a unit. */
export interface UnitContext {
  readonly spec: ExportSpec;
  readonly tuning: TuningPlan;
  /** Start of the run: every file name's stamp. */
  readonly startedAt: Date;
  readonly format: Format;
  readonly destination: Destination;
  readonly emit: EventSink;
  readonly signal: AbortSignal;
  /** The current connection, opened on first use. */
  readonly connection: () => Promise<Source>;
  /** Drops the current connection after a transient failure (the next use reconnects). */
  readonly dropConnection: () => Promise<void>;
  readonly rss?: () => number;
  readonly pressure?: () => Promise<number | undefined>;
  /** Judges the result's columns before the first write (schema drift). */
  readonly onColumns?: (columns: readonly ColumnInfo[]) => Promise<void> | void;
}

/**
 * Runs one unit to its end. Never throws: a failure is in `result.failure`.
 *
 * @param unit The statement and naming.
 * @param ctx Connection, format, destination, events, settings.
 * @returns The committed parts, rows and, for keyset pages, the last key.
 */
export async function runChunkUnit(unit: UnitSpec, ctx: UnitContext): Promise<UnitResult> {
  const { spec, tuning } = ctx;
  const started = Date.now();
  const ext = ctx.format.extension;
  const hex = randomHex16();
  const at = ctx.startedAt;
  const name = (part: number, split: boolean) => {
    if (unit.naming === "chunk") {
      return chunkName(spec.name, { at, extension: ext, chunk: unit.chunkIndex, hex, part, split });
    }
    const tag = unit.nameTag === undefined ? {} : { tag: unit.nameTag };
    if (unit.naming === "keyset") {
      return keysetName(spec.name, {
        at,
        extension: ext,
        page: unit.chunkIndex,
        part,
        split,
        ...tag,
      });
    }
    return partName(spec.name, { at, extension: ext, index: part, split, ...tag });
  };
  let peakRss = ctx.rss?.() ?? 0;
  let attempt = 0;
  while (true) {
    let staged: StagedPart[] = [];
    const parts: CommittedPart[] = [];
    try {
      const result = await readStatement(
        {
          sql: unit.sql,
          params: unit.params,
          ...(unit.stripColumns ? { stripColumns: unit.stripColumns } : {}),
          ...(unit.cursorColumn ? { cursorColumn: unit.cursorColumn } : {}),
        },
        {
          spec,
          tuning,
          source: await ctx.connection(),
          format: ctx.format,
          destination: ctx.destination,
          emit: ctx.emit,
          signal: ctx.signal,
          // One part unless max_file_size rotates: its final name is known now.
          stagingKey: (index) => name(index, spec.maxFileSize !== undefined),
          ...(ctx.rss ? { rss: ctx.rss } : {}),
          ...(ctx.pressure ? { pressure: ctx.pressure } : {}),
          rowsBefore: unit.rowsBefore ?? 0,
          ...(ctx.onColumns ? { onColumns: ctx.onColumns } : {}),
          ...(unit.recount ? { recount: true } : {}),
        },
      );
      staged = result.staged;
      peakRss = Math.max(peakRss, result.peakRss);
      const split = staged.length > 1;
      for (const part of staged) {
        const key = name(part.index, split);
        part.committed = await part.upload.commit(key);
        parts.push({
          key,
          rows: part.rows,
          size: part.size,
          xxh3: part.xxh3,
          md5: part.md5,
          partIndex: part.index,
        });
        ctx.emit({
          type: "part_committed",
          export: spec.name,
          key,
          rows: part.rows,
          bytes: part.size,
        });
        await crashPoint("after_file_write");
      }
      const cursorType = result.columns.find((c) => c.name === unit.cursorColumn)?.arrowType;
      return {
        chunkIndex: unit.chunkIndex,
        rows: result.rows,
        parts,
        ...(result.lastCursor === undefined ? {} : { lastCursor: result.lastCursor }),
        keyIsInteger: /^u?int\d+$/i.test(String(cursorType)),
        ...(result.stats ? { stats: result.stats } : {}),
        peakRss,
        durationMs: Date.now() - started,
      };
    } catch (error) {
      await abortUncommitted(staged, error);
      const info = toErrorInfo(error);
      // A unit runs only after its export reached the source (the chunk plan was read from it),
      // so a refused connection here is an outage in the middle of the run: retried like any
      // other lost connection, with backoff. A full disk is not retried here (see retriesInRun).
      const retry = retriesInRun(info, { underway: true });
      if (info.exitCode === 2) await ctx.dropConnection();
      if (
        !retry || parts.length > 0 || attempt >= tuning.maxRetries || ctx.signal.aborted
      ) {
        return {
          chunkIndex: unit.chunkIndex,
          rows: 0,
          parts,
          peakRss,
          durationMs: Date.now() - started,
          failure: info,
        };
      }
      attempt += 1;
      const { delayMs, warning } = retryStep(spec.name, info, {
        attempt,
        maxRetries: tuning.maxRetries,
        backoffMs: tuning.retryBackoffMs,
        unit: `${unit.naming === "keyset" ? "page" : "chunk"} ${unit.chunkIndex}`,
      });
      ctx.emit(warning);
      await sleep(delayMs, ctx.signal).catch(() => {});
    }
  }
}
