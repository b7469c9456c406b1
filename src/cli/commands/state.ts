/**
 * `rivet state show|reset|files|chunks|reset-chunks|progression`: read (and reset) the state kept
 * in `.rivet_state.db` next to the config (not in the working directory).
 *
 * Every command loads and validates the config first, so a bad `-c` path fails before any state
 * file is touched. Read-only commands never create the state file: when it does not exist they
 * say that nothing ran yet.
 *
 * Layer: cli.
 *
 * @module
 */
import type { ConfigSpec } from "../../core/spec.ts";
import type { ChunkTaskEntry, ProgressionEntry, StateStore } from "../../core/state.ts";
import { loadConfig, selectExports } from "../../config/mod.ts";
import { stateDbPath } from "../../state/mod.ts";
import { openRunStateStore, stateOptions, stateUrlSet } from "../../engines/state.ts";
import { redact } from "../../_util/redact.ts";
import { ConfigError } from "../../core/errors.ts";
import { resolveJob } from "../../plan/resolve.ts";
import { processEnv } from "../../engines/openers.ts";
import { parseParams } from "./run.ts";
import type { CommandContext } from "../main.ts";
import { reportError } from "../main.ts";
import { formatBytes } from "../render/summary.ts";
import { alignTable } from "../render/table.ts";
import {
  chunkRunJson,
  cursorJson,
  jsonDocument,
  type JsonValue,
  partJson,
  progressionJson,
} from "../render/state_json.ts";

/** Options parsed for the `state` subcommands. */
export interface StateFlags {
  readonly config: string;
  /** `-e NAME`: one export. */
  readonly export?: string;
  /** `-l/--last N`: newest rows to show (`state files`). */
  readonly last?: number;
  /** `state reset-chunks --stuck-checkpoints` (alias `--failed`). */
  readonly stuckCheckpoints?: boolean;
  readonly failed?: boolean;
  /** `--json`: one JSON document on stdout instead of the table. */
  readonly json?: boolean;
  /** `-p KEY=VALUE` (`state adopt`: the query's placeholders, as for `rivet run`). */
  readonly param?: readonly string[];
}

/** Default of `state files --last`. */
export const FILES_DEFAULT_LAST = 50;

/** `alignTable` as text ending with a newline. */
function table(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  right: readonly number[] = [],
): string {
  return alignTable(headers, rows, { right }).join("\n") + "\n";
}

/**
 * Loads and validates the config of an inspection command, printing its warnings.
 *
 * @param flags The `-c` path.
 * @param ctx Output.
 * @returns The config.
 */
export async function loadInspectedConfig(
  flags: Pick<StateFlags, "config">,
  ctx: CommandContext,
): Promise<ConfigSpec> {
  const config = await loadConfig(flags.config);
  for (const w of config.warnings) ctx.io.err(`Warning: ${w.message}\n`);
  return config;
}

/**
 * Opens the state store of a config only if its file exists, so that inspecting never creates
 * one. A corrupt file fails with the store's own error and stays untouched.
 *
 * @param config The loaded config.
 * @returns The open store, or undefined when no state file exists yet.
 */
export async function openExistingState(config: ConfigSpec): Promise<StateStore | undefined> {
  // A PostgreSQL state database (RIVET_STATE_URL) is shared: open it whatever this host ran.
  const options = stateOptions(config);
  if (options.urlEnv !== undefined || stateUrlSet()) {
    return await openRunStateStore(config.dir, options);
  }
  try {
    await Deno.lstat(stateDbPath(config.dir));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  return await openRunStateStore(config.dir, options);
}

/**
 * The line printed when the state file does not exist.
 *
 * @param config The loaded config.
 * @returns One line with a newline.
 */
export function neverRanMessage(config: ConfigSpec): string {
  return `No state yet: no export of this config has run (no state file at ` +
    `${stateDbPath(config.dir)})\n`;
}

/** Validates `-e NAME` against the config (exit 1 listing the known exports). */
function checkExportName(config: ConfigSpec, name: string | undefined): void {
  if (name !== undefined) selectExports(config, [name]);
}

/** Runs a command body, turning a thrown error into its printed message and exit code. */
async function guarded(
  ctx: CommandContext,
  body: () => Promise<number>,
): Promise<number> {
  try {
    return await body();
  } catch (error) {
    return reportError(error, ctx);
  }
}

/**
 * The preamble of the read-only inspection commands (`state`, `metrics`, `journal`): loads the
 * config, checks `-e NAME` against it, and runs `body` with the existing state store. Without a
 * state file it prints that no export has run and exits 0: inspecting never creates one. A
 * thrown error prints with its exit code.
 *
 * @param flags `-c` and `-e`.
 * @param ctx Output.
 * @param body What the command prints, given the open store and the config.
 * @param neverRan The text printed when no state file exists (default {@linkcode neverRanMessage}).
 * @returns The exit code.
 */
export function inspectState(
  flags: Pick<StateFlags, "config" | "export">,
  ctx: CommandContext,
  body: (state: StateStore, config: ConfigSpec) => Promise<number>,
  neverRan: (config: ConfigSpec) => string = neverRanMessage,
): Promise<number> {
  return guarded(ctx, async () => {
    const config = await loadInspectedConfig(flags, ctx);
    checkExportName(config, flags.export);
    await using state = await openExistingState(config);
    if (state === undefined) {
      ctx.io.out(neverRan(config));
      return 0;
    }
    return await body(state, config);
  });
}

/**
 * The line printed when a list is empty: `No <what> recorded yet`, naming the export when one
 * was selected.
 */
export function noneRecorded(what: string, exportName: string | undefined): string {
  return exportName === undefined
    ? `No ${what} recorded yet\n`
    : `No ${what} recorded yet for export '${exportName}'\n`;
}

/**
 * The `--json` form of an inspection command: `{"<key>": [...]}` on stdout, with an empty array
 * (and exit 0) when no state file exists yet or nothing is recorded.
 *
 * @param flags `-c` and `-e`.
 * @param ctx Output.
 * @param key The document's top-level key.
 * @param list The array's items, read from the open store.
 * @returns The exit code.
 */
export function inspectJson(
  flags: Pick<StateFlags, "config" | "export">,
  ctx: CommandContext,
  key: string,
  list: (state: StateStore, config: ConfigSpec) => Promise<readonly JsonValue[]>,
): Promise<number> {
  return inspectState(flags, ctx, async (state, config) => {
    ctx.io.out(jsonDocument(key, await list(state, config)));
    return 0;
  }, () => jsonDocument(key, []));
}

/**
 * `rivet state show`: the incremental cursors (EXPORT, LAST CURSOR, LAST RUN).
 *
 * @param flags `-c`.
 * @param ctx Output.
 * @returns The exit code.
 */
export function stateShowCommand(flags: StateFlags, ctx: CommandContext): Promise<number> {
  if (flags.json) {
    return inspectJson(flags, ctx, "cursors", async (s) => (await s.listCursors()).map(cursorJson));
  }
  return inspectState(flags, ctx, async (state) => {
    const cursors = await state.listCursors();
    if (cursors.length === 0) {
      ctx.io.out(
        "No incremental cursor stored: exports have run, but none has advanced a cursor " +
          "(only incremental exports keep one)\n",
      );
      return 0;
    }
    ctx.io.out(table(
      ["EXPORT", "IDENTITY", "LAST CURSOR", "LAST RUN"],
      cursors.map((
        c,
      ) => [c.exportName, c.configIdentity ?? "-", c.lastCursorValue ?? "-", c.lastRunAt]),
    ));
    return 0;
  });
}

/**
 * `rivet state reset -e NAME`: deletes the export's cursor and progression, so that its next
 * run starts from scratch.
 *
 * @param flags `-c`, `-e`.
 * @param ctx Output.
 * @returns The exit code.
 */
export function stateResetCommand(flags: StateFlags, ctx: CommandContext): Promise<number> {
  return guarded(ctx, async () => {
    const config = await loadInspectedConfig(flags, ctx);
    const name = flags.export!;
    checkExportName(config, name);
    await using state = await openExistingState(config);
    const deleted = state === undefined ? false : await state.resetExport(name);
    ctx.io.out(
      deleted
        ? `Reset export '${name}': cursor and progression deleted; its next run starts from ` +
          "the beginning\n"
        : `Nothing to reset for export '${name}': it has no stored cursor or progression\n`,
    );
    return 0;
  });
}

/**
 * `rivet state adopt -e NAME`: gives the export's cursor stored for other data (another source
 * or query: another identity) to this config's identity, so the next run resumes from it. For a
 * deliberate change of the source or the query; `state reset` starts over instead.
 *
 * @param flags `-c`, `-e`, `-p`.
 * @param ctx Output.
 * @returns The exit code.
 */
export function stateAdoptCommand(flags: StateFlags, ctx: CommandContext): Promise<number> {
  return guarded(ctx, async () => {
    const config = await loadInspectedConfig(flags, ctx);
    const name = flags.export!;
    checkExportName(config, name);
    const spec = config.exports.find((e) => e.name === name)!;
    // The identity comes from the resolved source and query, exactly as a run computes it.
    const job = await resolveJob(config, spec, {
      params: parseParams(flags.param ?? []),
      cwd: Deno.cwd(),
      env: processEnv,
    });
    await using state = await openExistingState(config);
    const result = state === undefined ? "none" : await state.adoptCursor(name, job.configIdentity);
    if (result === "ambiguous") {
      throw new ConfigError(
        `export '${name}' has cursors for several other identities; adopt cannot tell which ` +
          "position is right",
        {
          code: "state.adopt_ambiguous",
          hint: `see them with rivet state show -c ${config.path}; start over with rivet state ` +
            `reset -c ${config.path} -e ${name}`,
        },
      );
    }
    ctx.io.out(
      result === "adopted"
        ? `Adopted the cursor of export '${name}' for identity ${job.configIdentity}: its next ` +
          "run resumes from it\n"
        : `Nothing to adopt for export '${name}': no cursor is stored for other data\n`,
    );
    return 0;
  });
}

/**
 * `rivet state files [-e NAME] [-l N]`: the file log, newest first.
 *
 * @param flags `-c`, `-e`, `--last`.
 * @param ctx Output.
 * @returns The exit code.
 */
export function stateFilesCommand(flags: StateFlags, ctx: CommandContext): Promise<number> {
  const list = (state: StateStore) =>
    state.listFiles({
      last: flags.last ?? FILES_DEFAULT_LAST,
      ...(flags.export === undefined ? {} : { exportName: flags.export }),
    });
  if (flags.json) {
    return inspectJson(flags, ctx, "files", async (state) => (await list(state)).map(partJson));
  }
  return inspectState(flags, ctx, async (state) => {
    const files = await list(state);
    if (files.length === 0) {
      ctx.io.out(noneRecorded("files", flags.export));
      return 0;
    }
    ctx.io.out(table(
      ["RUN ID", "FILE", "ROWS", "BYTES", "CREATED"],
      files.map((
        f,
      ) => [f.runId, f.fileName, String(f.rowCount), formatBytes(f.bytes), f.createdAt]),
      [2, 3],
    ));
    return 0;
  });
}

function taskRow(t: ChunkTaskEntry): string[] {
  return [
    String(t.chunkIndex),
    // `failed (permanent)` is retried only by --resume --force; a transient one by --resume.
    t.status === "failed" ? `failed (${t.failure ?? "transient"})` : t.status,
    String(t.attempts),
    t.startKey ?? "-",
    t.endKey ?? "-",
    t.rowsWritten === undefined ? "-" : String(t.rowsWritten),
    t.fileName ?? "-",
    // Who holds (or last held) the task, for runs shared by several hosts.
    t.claimedByHost ?? "-",
    t.claimedByPid === undefined ? "-" : String(t.claimedByPid),
    t.lastError === undefined ? "" : t.lastError.split("\n", 1)[0]!,
  ];
}

/**
 * `rivet state chunks -e NAME`: the newest checkpointed run of an export and its tasks.
 *
 * @param flags `-c`, `-e`.
 * @param ctx Output.
 * @returns The exit code.
 */
export function stateChunksCommand(flags: StateFlags, ctx: CommandContext): Promise<number> {
  if (flags.json) {
    // An array of at most one run (the newest), so that the shape matches the other documents.
    return inspectJson(flags, ctx, "chunk_runs", async (state) => {
      const run = await state.latestChunkRun(flags.export!);
      return run === undefined ? [] : [chunkRunJson(run, await state.listChunkTasks(run.runId))];
    });
  }
  return inspectState(flags, ctx, async (state) => {
    const name = flags.export!;
    const run = await state.latestChunkRun(name);
    if (run === undefined) {
      ctx.io.out(`No checkpointed run for export '${name}'\n`);
      return 0;
    }
    const tasks = await state.listChunkTasks(run.runId);
    const count = (status: string) => tasks.filter((t) => t.status === status).length;
    ctx.io.out(
      [
        `Run:       ${run.runId}`,
        `Plan hash: ${run.planHash}`,
        `Status:    ${run.status}`,
        `Created:   ${run.createdAt}`,
        `Updated:   ${run.updatedAt}`,
        `Tasks:     ${tasks.length} (${count("completed")} completed, ${count("failed")} failed, ` +
        `${count("running")} running, ${count("pending")} pending; max attempts ` +
        `${run.maxAttempts})`,
        "",
      ].map((l) => redact(l)).join("\n") + "\n",
    );
    if (tasks.length > 0) {
      ctx.io.out(table(
        ["CHUNK", "STATUS", "ATTEMPTS", "START", "END", "ROWS", "FILE", "HOST", "PID", "ERROR"],
        tasks.map(taskRow),
        [0, 2, 5, 8],
      ));
    }
    return 0;
  });
}

/**
 * `rivet state reset-chunks (-e NAME | --stuck-checkpoints)`: deletes checkpointed runs.
 *
 * @param flags `-c` and exactly one of `-e` and `--stuck-checkpoints` (main.ts enforces it).
 * @param ctx Output.
 * @returns The exit code.
 */
export function stateResetChunksCommand(
  flags: StateFlags,
  ctx: CommandContext,
): Promise<number> {
  return guarded(ctx, async () => {
    const config = await loadInspectedConfig(flags, ctx);
    checkExportName(config, flags.export);
    await using state = await openExistingState(config);
    if (flags.export !== undefined) {
      const runs = state === undefined ? 0 : await state.resetChunks(flags.export);
      ctx.io.out(
        runs === 0
          ? `Nothing to reset for export '${flags.export}': it has no checkpointed run\n`
          : `Deleted ${runs} checkpointed run${runs === 1 ? "" : "s"} of export ` +
            `'${flags.export}'\n`,
      );
      return 0;
    }
    const reset: string[] = [];
    for (const exp of config.exports) {
      if (state === undefined) break;
      const run = await state.latestChunkRun(exp.name);
      if (run?.status !== "in_progress") continue;
      await state.resetChunks(exp.name);
      reset.push(`Deleted stuck checkpointed run '${run.runId}' of export '${exp.name}'`);
    }
    ctx.io.out(
      reset.length === 0
        ? "No stuck checkpointed run: nothing to reset\n"
        : reset.map((l) => redact(l)).join("\n") + "\n",
    );
    return 0;
  });
}

function boundary(p: ProgressionEntry | undefined): [string, string, string] {
  if (p === undefined) return ["-", "-", "-"];
  const where = p.cursor ?? (p.chunkIndex === undefined ? "-" : `chunk ${p.chunkIndex}`);
  return [p.strategy, where, p.at];
}

/**
 * `rivet state progression [-e NAME]`: the last committed and verified boundaries (advisory).
 *
 * @param flags `-c`, `-e`.
 * @param ctx Output.
 * @returns The exit code.
 */
export function stateProgressionCommand(
  flags: StateFlags,
  ctx: CommandContext,
): Promise<number> {
  const selected = (config: ConfigSpec) =>
    selectExports(config, flags.export === undefined ? [] : [flags.export]);
  if (flags.json) {
    return inspectJson(flags, ctx, "progression", async (state, config) => {
      const items: JsonValue[] = [];
      for (const exp of selected(config)) {
        const p = await state.readProgression(exp.name);
        if (p !== undefined) items.push(progressionJson(p));
      }
      return items;
    });
  }
  return inspectState(flags, ctx, async (state, config) => {
    const exports = selected(config);
    const rows: string[][] = [];
    for (const exp of exports) {
      const p = await state.readProgression(exp.name);
      if (p === undefined) continue;
      const [commMode, committed, committedAt] = boundary(p.committed);
      const [veriMode, verified] = boundary(p.verified);
      rows.push([exp.name, commMode, committed, committedAt, veriMode, verified]);
    }
    if (rows.length === 0) {
      ctx.io.out(noneRecorded("progression", undefined));
      return 0;
    }
    ctx.io.out(table(
      ["EXPORT", "COMM MODE", "COMMITTED", "COMMITTED AT", "VERI MODE", "VERIFIED"],
      rows,
    ));
    ctx.io.out("Advisory only: the next run starts from the cursor of 'rivet state show'\n");
    return 0;
  });
}
