/**
 * `rivet cdc`: change data capture without a config file. Without `--output`, every change of
 * the named tables is one NDJSON line on stdout (`{op, schema, table, before, after, pos}`), and
 * `--checkpoint FILE` keeps the position after each transaction written, so the next call goes
 * on from there. With `--output DIR`, one table's changes are written as typed Parquet or CSV
 * parts exactly as `mode: cdc` in a config writes them (the same pipeline, checkpoint and
 * manifest).
 *
 * @module
 */
import { resolve } from "node:path";
import type { CdcChunk, CdcPosition } from "../../core/cdc.ts";
import { CDC_DEFAULTS, CDC_OPS } from "../../core/cdc.ts";
import { ConfigError } from "../../core/errors.ts";
import type { SourceKind } from "../../core/spec.ts";
import {
  checkRunnable,
  checkTlsPolicy,
  configFromDocument,
  parseConnectionUrl,
  sourceKindOfUrl,
} from "../../config/mod.ts";
import { openCdcReader } from "../../sources/cdc.ts";
import { writeFileAtomic } from "../../_util/atomic_file.ts";
import { parseCheckpoint } from "../../pipeline/cdc_checkpoint.ts";
import { readFileIfPresent } from "../../_util/atomic_file.ts";
import { runExports } from "../../engines/inline.ts";
import { rowJson } from "../render/row_json.ts";
import { sourceUrl } from "./init.ts";
import { reportRunEnd, startRunEvents } from "./run.ts";
import type { CommandContext } from "../main.ts";
import { reportError } from "../main.ts";

/** Flags of `rivet cdc`. */
export interface CdcFlags {
  readonly source?: string;
  readonly sourceEnv?: string;
  readonly sourceFile?: string;
  readonly table?: string[];
  readonly serverId?: number;
  readonly checkpoint?: string;
  readonly maxEvents?: number;
  readonly output?: string;
  readonly format: "parquet" | "csv";
  readonly rollover?: number;
  readonly slot?: string;
  readonly publication?: string;
  readonly captureInstance?: string;
  readonly untilCurrent?: boolean;
}

const TABLE = /^(?:([A-Za-z0-9_]+)\.)?([A-Za-z0-9_]+)$/;

function tablesOf(flags: CdcFlags): { schema?: string; table: string }[] {
  const values = flags.table ?? [];
  if (values.length === 0) {
    throw new ConfigError("rivet cdc needs at least one --table", {
      code: "cli.cdc_no_table",
      hint: "name each table to capture: --table public.orders (repeatable)",
    });
  }
  return values.map((value) => {
    const m = TABLE.exec(value);
    if (!m) {
      throw new ConfigError(
        `--table '${value}' is not 'name' or 'schema.name' of letters, digits and _`,
        { code: "cli.cdc_bad_table", hint: "give one plain table per --table" },
      );
    }
    return { ...(m[1] === undefined ? {} : { schema: m[1] }), table: m[2]! };
  });
}

function cdcBlock(flags: CdcFlags): Record<string, unknown> {
  const block: Record<string, unknown> = {
    checkpoint: flags.checkpoint,
    until_current: flags.untilCurrent === true ? true : undefined,
    max_events: flags.maxEvents,
    rollover: flags.rollover,
    server_id: flags.serverId,
    slot: flags.slot,
    publication: flags.publication,
    capture_instance: flags.captureInstance,
  };
  return Object.fromEntries(Object.entries(block).filter(([, v]) => v !== undefined));
}

/**
 * Runs `rivet cdc`.
 *
 * @param flags Parsed flags.
 * @param ctx Output and abort signal.
 * @returns The exit code.
 */
export async function cdcCommand(flags: CdcFlags, ctx: CommandContext): Promise<number> {
  try {
    const given = [flags.source, flags.sourceEnv, flags.sourceFile].filter((v) => v !== undefined);
    if (given.length !== 1) {
      throw new ConfigError(
        "rivet cdc needs exactly one of --source, --source-env, --source-file",
        {
          code: "cli.cdc_no_source",
          hint: "e.g. --source-env DATABASE_URL (the URL stays out of the shell history)",
        },
      );
    }
    const tables = tablesOf(flags);
    const url = await sourceUrl(flags);
    const kind: SourceKind = sourceKindOfUrl(url);
    const info = parseConnectionUrl(url, kind);
    // No tls: block on the command line: TLS comes from the URL, or the host is loopback.
    for (const w of checkTlsPolicy(info, undefined, kind).warnings) ctx.io.err(`Warning: ${w}\n`);
    const source = { type: kind, url };
    if (flags.output !== undefined) return await toFiles(flags, tables, source, ctx);
    return await toNdjson(flags, tables, { kind, url }, ctx);
  } catch (error) {
    return reportError(error, ctx);
  }
}

/** `--output DIR`: the config pipeline of `mode: cdc`, one export named after the table. */
async function toFiles(
  flags: CdcFlags,
  tables: { schema?: string; table: string }[],
  source: { type: SourceKind; url: string },
  ctx: CommandContext,
): Promise<number> {
  if (tables.length !== 1) {
    throw new ConfigError("rivet cdc --output writes one table: give exactly one --table", {
      code: "cli.cdc_one_table",
      hint: "run one rivet cdc per table, each with its own --output and --checkpoint",
    });
  }
  const ref = tables[0]!;
  const name = ref.schema ? `${ref.schema}_${ref.table}` : ref.table;
  const cwd = Deno.cwd();
  const document = {
    source,
    exports: [{
      name,
      table: ref.schema ? `${ref.schema}.${ref.table}` : ref.table,
      mode: "cdc",
      format: flags.format,
      destination: { type: "local", path: resolve(cwd, flags.output!) },
      cdc: cdcBlock({
        ...flags,
        ...(flags.checkpoint ? { checkpoint: resolve(cwd, flags.checkpoint) } : {}),
      }),
    }],
  };
  const config = configFromDocument(document, { path: resolve(cwd, "rivet-cdc"), dir: cwd });
  checkRunnable(config, config.exports, { resume: false });
  const run = startRunEvents({ config: config.path }, ctx, [name]);
  const result = await runExports(config, config.exports, {
    emit: run.emit,
    signal: ctx.signal,
    params: {},
    cwd,
  });
  run.finish(result.exitCode, result.outcomes);
  return await reportRunEnd(result, cwd, ctx);
}

/** Without `--output`: one NDJSON line per change on stdout. */
async function toNdjson(
  flags: CdcFlags,
  tables: { schema?: string; table: string }[],
  source: { kind: SourceKind; url: string },
  ctx: CommandContext,
): Promise<number> {
  const checkpointPath = flags.checkpoint === undefined
    ? undefined
    : resolve(Deno.cwd(), flags.checkpoint);
  let start: CdcPosition | undefined;
  if (checkpointPath !== undefined) {
    const text = await readFileIfPresent(checkpointPath, { maxBytes: 64 * 1024 });
    if (text !== undefined && text.trim() !== "") {
      start = parseCheckpoint(text, {
        exportName: "cdc",
        where: checkpointPath,
        engine: source.kind,
        reset: `delete ${checkpointPath}`,
      }).position;
    }
  }
  const { connection, spec } = resolveSource(source);
  await using reader = await openCdcReader(spec, connection, {
    tables,
    ...(start ? { start } : {}),
    untilCurrent: flags.untilCurrent === true,
    batchRows: 1_000,
    slot: flags.slot ?? CDC_DEFAULTS.slot,
    publication: flags.publication ?? flags.slot ?? CDC_DEFAULTS.slot,
    serverId: flags.serverId ?? CDC_DEFAULTS.serverId,
    ...(flags.captureInstance ? { captureInstance: flags.captureInstance } : {}),
    columnOverrides: {},
    signal: ctx.signal,
    onWarning: (w) => ctx.io.err(`Warning: ${w.message}\n`),
  });
  const names = reader.tables.map((t) => {
    const dot = t.name.lastIndexOf(".");
    return { schema: dot > 0 ? t.name.slice(0, dot) : "", table: t.name.slice(dot + 1) };
  });
  const iterator = reader.changes();
  let changes = 0;
  let savedAt = 0;
  let unsaved: CdcPosition | undefined;
  const save = async (position: CdcPosition) => {
    if (checkpointPath !== undefined) {
      await writeFileAtomic(
        checkpointPath,
        JSON.stringify({
          engine: source.kind,
          position,
          next_part: 0,
          saved_at: new Date().toISOString(),
        }) + "\n",
      );
    }
    await reader.acknowledge(position);
    unsaved = undefined;
    savedAt = Date.now();
  };
  const max = flags.maxEvents ?? Infinity;
  let atBoundary = true;
  while (true) {
    if (atBoundary && (ctx.signal.aborted || changes >= max)) break;
    const next: IteratorResult<CdcChunk> | undefined = atBoundary
      ? await nextOrStop(iterator, ctx.signal)
      : await iterator.next();
    if (next === undefined || next.done) break;
    const chunk: CdcChunk = next.value;
    writeLines(chunk, names[chunk.table]!, ctx);
    changes += chunk.batch.numRows;
    atBoundary = chunk.commit !== undefined;
    if (chunk.commit !== undefined) {
      unsaved = chunk.commit;
      // Lines are written before the position moves; at most one save a second.
      if (Date.now() - savedAt >= 1_000) await save(chunk.commit);
    }
  }
  if (unsaved !== undefined) await save(unsaved);
  else if (start === undefined && savedAt === 0 && reader.startedAt !== undefined) {
    // Nothing printed on a first call: still fix where capture starts for the next one.
    await save(reader.startedAt);
  }
  return 0;
}

/** The stream's next chunk, or undefined once the run is stopped while waiting. */
async function nextOrStop(
  iterator: AsyncIterator<CdcChunk>,
  signal: AbortSignal,
): Promise<IteratorResult<CdcChunk> | undefined> {
  if (signal.aborted) return undefined;
  const next = iterator.next();
  next.catch(() => {});
  let onAbort = () => {};
  const stopped = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([next, stopped]);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function writeLines(
  chunk: CdcChunk,
  name: { schema: string; table: string },
  ctx: CommandContext,
): void {
  let text = "";
  for (let i = 0; i < chunk.batch.numRows; i++) {
    const op = CDC_OPS[chunk.ops[i]!] ?? "insert";
    const row = rowJson(chunk.batch, i);
    const pos = JSON.parse(chunk.positions[i]!);
    text += JSON.stringify({
      op,
      schema: name.schema,
      table: name.table,
      before: op === "delete" ? row : null,
      after: op === "delete" ? null : row,
      pos,
    }) + "\n";
  }
  if (text !== "") ctx.io.out(text);
}

/** The source block and connection of a URL given on the command line. */
function resolveSource(source: { kind: SourceKind; url: string }) {
  const connection = parseConnectionUrl(source.url, source.kind);
  const spec = {
    kind: source.kind,
    connection: { form: "url" as const, url: { secret: source.url } },
  };
  return { connection, spec };
}
